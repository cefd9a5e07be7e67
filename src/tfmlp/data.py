"""Stream training data from CSV or Parquet files as a ``tf.data.Dataset``.

The datasets yield shuffled ``(X, y)`` batches through a bounded buffer, so
files much larger than memory can be passed straight to ``fit`` /
``partial_fit`` (one pass over the files is one epoch). String labels stay
strings; give a classifier its label set with ``fit(ds, classes=[...])``.
"""

from __future__ import annotations

import csv
import glob
import itertools
import numbers
import os
import re
from collections.abc import Sequence

import numpy as np
import tensorflow as tf

__all__ = ["read_csv", "read_parquet"]

# rows of each CSV file read up front to check the columns and infer the
# target's type
CSV_SAMPLE_ROWS = 1000
CSV_PARSE_LINES = 1024  # lines parsed by one decode_csv call
TARGET_DTYPES = {"int64": tf.int64, "float32": tf.float32, "string": tf.string}
_INTEGER = re.compile(r"\s*[+-]?[0-9]+\s*")


# ------------------------------------------------------------ parameter checks
def _positive_int(value, name: str, maximum: int | None = None) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be a positive integer; got {value!r}.")
    if value < 1:
        raise ValueError(f"{name} must be a positive integer; got {value!r}.")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be at most {maximum}; got {value!r}.")
    return int(value)


# tf.data's shuffle buffer: at most 2**31 - 1 elements (larger ones crash the
# process), and it reserves 24 bytes per element up front
MAX_SHUFFLE_BUFFER = 2**31 - 1


def _rows_at_most(files: list[str], n_columns: list[int]) -> int:
    """An upper bound on the data rows of CSV files: a row of a file with
    ``n`` columns takes at least ``n`` bytes (separators and line end). A
    shuffle buffer of this many rows shuffles as a larger one does."""
    return sum(os.path.getsize(f) // max(1, n) + 1 for f, n in zip(files, n_columns))


def _check_params(target, features, shuffle, seed) -> list[str] | None:
    """Check the readers' common parameters; returns ``features`` as a list."""
    if not isinstance(target, str):
        raise TypeError(f"target must be a column name (str); got {target!r}.")
    if not isinstance(shuffle, (bool, np.bool_)):
        raise TypeError(f"shuffle must be True or False; got {shuffle!r}.")
    bad_seed = isinstance(seed, (bool, np.bool_)) or not isinstance(
        seed, (numbers.Integral, type(None))
    )
    if bad_seed:
        raise TypeError(f"seed must be None or an integer; got {seed!r}.")
    if seed is not None and seed < 0:
        raise ValueError(f"seed must be a non-negative integer; got {seed!r}.")
    if features is None:
        return None
    if isinstance(features, str) or not all(isinstance(c, str) for c in features):
        raise TypeError(f"features must be a list of column names; got {features!r}.")
    features = list(features)
    repeated = sorted({c for c in features if features.count(c) > 1})
    if repeated:
        raise ValueError(f"features lists {repeated} more than once.")
    if not features:
        raise ValueError(
            "features is empty: at least one feature column is required "
            "(features=None uses every column but the target)."
        )
    return features


def _check_target_dtype(target_dtype):
    if target_dtype is None:
        return None
    if target_dtype not in TARGET_DTYPES:
        raise ValueError(
            f"target_dtype must be None or one of {sorted(TARGET_DTYPES)}; got "
            f"{target_dtype!r}."
        )
    return TARGET_DTYPES[target_dtype]


# -------------------------------------------------------------- files, columns
def _files(pattern) -> list[str]:
    """One path, a glob pattern, or a list of either -> sorted existing files."""
    paths = (str, os.PathLike)
    try:
        patterns = [pattern] if isinstance(pattern, paths) else list(pattern)
    except TypeError:
        patterns = None
    if patterns is None or not all(isinstance(p, paths) for p in patterns):
        raise TypeError(
            "pattern must be a file path, a glob pattern or a list of them; got "
            f"{pattern!r}."
        )
    files: list[str] = []
    for pat in patterns:
        pat = os.fspath(pat)
        # a file of that very name (``data[1].csv``) is read, as pandas reads
        # it, not taken as a pattern (that matches ``data1.csv``)
        literal = os.path.isfile(pat) or not glob.has_magic(pat)
        matches = [pat] if literal else sorted(glob.glob(pat))
        # resolved (links followed, as the system does before "..") to
        # absolute paths: the dataset reads the files checked here even
        # after the working directory has changed
        found = [os.path.realpath(m) for m in matches if os.path.isfile(m)]
        if not found:  # each path or pattern of a list must name a file
            where = "" if len(patterns) == 1 else f" (in {pattern!r})"
            what = "is a directory, not a file" if os.path.isdir(pat) else "matches"
            if what == "matches":
                raise ValueError(f"No file matches {pat!r}{where}.")
            raise ValueError(f"{pat!r} {what}{where}.")
        files.extend(found)
    if not files:  # an empty list
        raise ValueError(f"No file matches {pattern!r}.")
    return files


def _columns(path: str, available: list[str], target: str, features) -> list[str]:
    repeated = sorted({c for c in available if available.count(c) > 1})
    if repeated and (features is None or {target, *features} & set(repeated)):
        raise ValueError(
            f"{path!r} has more than one column named {repeated}: name each "
            "column once (or leave the repeated ones out with features=[...])."
        )
    if target not in available:
        raise ValueError(
            f"{path!r} has no target column {target!r}; its columns are {available}."
        )
    if features is None:
        cols = [c for c in available if c != target]
        if not cols:
            raise ValueError(
                f"{path!r} has no feature column: its only column is the target "
                f"{target!r}; at least one feature is required."
            )
        return cols
    missing = [c for c in features if c not in available]
    if missing:
        raise ValueError(f"{path!r} has no feature column(s) {missing}.")
    if target in features:
        raise ValueError(f"The target column {target!r} is also listed in features.")
    return list(features)


def _pandas_index(schema) -> set:
    """The columns that hold a pandas index stored by ``DataFrame.to_parquet``
    (``__index_level_0__``, or a named index): pandas reads them back as the
    index, not as data."""
    try:
        meta = schema.pandas_metadata or {}
    except Exception:  # metadata that is not pandas' JSON
        return set()
    return {c for c in meta.get("index_columns", []) if isinstance(c, str)}


def _not_numeric(path: str, column: str, what: str) -> ValueError:
    return ValueError(
        f"Feature column {column!r} of {path!r} is not numeric ({what}): the "
        "features are read as float32. Choose numeric columns with "
        "features=[...] (encode categorical columns as numbers first)."
    )


def _merge_kinds(kinds: list[str], target: str, files: list[str]) -> tf.DType:
    """One target dtype for the target types seen in several files."""
    if not kinds:
        which = (
            f"{files[0]!r} has" if len(files) == 1 else f"the {len(files)} files have"
        )
        raise ValueError(
            f"The dataset is empty: {which} no data rows (no {target!r} values)."
        )
    kinds = set(kinds)
    if "string" in kinds and len(kinds) > 1:
        raise ValueError(
            f"The target column {target!r} holds text in some files and numbers "
            "in others."
        )
    if len(kinds) > 1:  # int64 and float32
        return tf.float32
    return TARGET_DTYPES[kinds.pop()]


def _finish(ds, batch_size, shuffle, buffer, seed):
    """Rows -> shuffled (bounded buffer) batches."""
    if shuffle:
        ds = ds.shuffle(buffer, seed=seed, reshuffle_each_iteration=True)
    return ds.batch(batch_size)


# ------------------------------------------------------------------------ CSV
def read_csv(
    pattern: str | os.PathLike | Sequence[str | os.PathLike],
    target: str,
    *,
    batch_size: int = 256,
    features: Sequence[str] | None = None,
    shuffle: bool = True,
    shuffle_buffer: int = 10_000,
    seed: int | None = None,
    target_dtype: str | None = None,
) -> tf.data.Dataset:
    """Stream CSV file(s) with a header row as shuffled ``(X, y)`` batches.

    Blank lines and a UTF-8 byte-order mark are skipped (a file whose first
    ``CSV_SAMPLE_ROWS`` rows hold a quoted value with a line break is read
    record by record, where blank lines are an error). An empty or NaN value
    in a feature or the target column stops the pass (training) with an
    error naming the column (and, but for a NaN target, the file); so does a
    text value in a feature (or float32 target) column past the rows sampled
    when the file is opened, naming the file, line, column and value.

    Parameters
    ----------
    pattern : str, path or list
        One file, a glob pattern (``"data/*.csv"``) or a list of either. The
        files may list their columns in different orders. An existing file
        is read as named even where its name has glob characters
        (``"data[1].csv"``). The files found are read by their absolute
        paths, also after the working directory changes.
    target : str
        Name of the target column.
    batch_size : int, default=256
        Rows per batch.
    features : list of str, default=None
        Feature columns (default: every column but the target of the first
        file), read as float32; they must be numeric.
    shuffle : bool, default=True
        Shuffle file order and rows (through a buffer of ``shuffle_buffer``
        rows) on every pass.
    shuffle_buffer : int, default=10000
        Rows held in the shuffle buffer: bounds memory (tf.data reserves
        the buffer up front, 24 bytes a row; tfmlp sizes it to at most the
        rows the files can hold). At most 2**31 - 1.
    seed : int, default=None
        Seed of the shuffles.
    target_dtype : {"int64", "float32", "string"}, default=None
        Type of ``y``. By default it is inferred from the first
        ``CSV_SAMPLE_ROWS`` rows of every file: int64 when they all hold
        integers (class labels), float32 for other numbers, else string;
        whole numbers beyond int64 there are refused (pass a type). A later
        value that does not fit the type raises a clear error while
        training; pass ``"float32"`` for a numeric target whose first rows
        happen to be whole numbers.

    Returns
    -------
    dataset : tf.data.Dataset
        Batches ``(X float32 (batch, n_features), y (batch,))``; ``y`` is a
        string tensor when the target column is not numeric.
    """
    batch_size = _positive_int(batch_size, "batch_size")
    shuffle_buffer = _positive_int(shuffle_buffer, "shuffle_buffer", MAX_SHUFFLE_BUFFER)
    features = _check_params(target, features, shuffle, seed)
    y_dtype = _check_target_dtype(target_dtype)
    files = _files(pattern)
    heads = [_csv_head(path) for path in files]
    cols = _columns(files[0], heads[0][0], target, features)
    kinds = []
    for path, (header, sample, _) in zip(files, heads):
        _columns(path, header, target, cols)
        _check_csv_features(path, header, sample, cols)
        kinds.extend(_csv_target_kinds(path, header, sample, target))
    if y_dtype is None:
        y_dtype = _merge_kinds(kinds, target, files)
        for path, (header, sample, _) in zip(files, heads):
            if y_dtype == tf.int64:
                _check_int64_labels(path, _csv_values(header, sample, target), target)
    widths = [len(header) for header, _, _ in heads]
    layouts = [
        (_csv_layout(header, cols, target), multiline, width)
        for (header, _, multiline), width in zip(heads, widths)
    ]
    ds = _csv_rows(files, layouts, [*cols, target], shuffle, seed)
    buffer = min(shuffle_buffer, _rows_at_most(files, widths))
    ds = _finish(ds, batch_size, shuffle, buffer, seed)
    parse = _target_parser(y_dtype, target)
    ds = ds.map(lambda x, y: (x, parse(y)), num_parallel_calls=tf.data.AUTOTUNE)
    ds = _tagged(ds.prefetch(tf.data.AUTOTUNE), shuffle, seed, cols)
    # what the errors TensorFlow raises while reading are explained against
    # (``_csv_errors``): a later value the opening checks did not see
    ds._tfmlp_csv_source = (tuple(files), target, frozenset(cols))
    return ds


def _csv_head(path: str):
    """The header, (up to ``CSV_SAMPLE_ROWS``) first rows of a CSV file and
    whether they hold a quoted value with a line break."""
    _refuse_compressed(path)
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f)
            _refuse_cr_line_ends(f, path)
            header = next(reader, [])
            if not "".join(header).strip():
                if not any("".join(row).strip() for row in reader):
                    raise ValueError(f"CSV file {path!r} is empty (no header line).")
                raise ValueError(
                    f"CSV file {path!r}: the first line is blank; it must be the "
                    "header (the column names)."
                )
            sample = []
            for row in itertools.islice(reader, CSV_SAMPLE_ROWS):
                if not "".join(row).strip():  # a blank line, skipped as pandas does
                    continue
                if len(row) != len(header):
                    raise ValueError(
                        f"CSV file {path!r}: expected {len(header)} fields (the "
                        f"header's), saw {len(row)} in line {reader.line_num}."
                    )
                sample.append(row)
    except (OSError, UnicodeDecodeError, StopIteration, csv.Error) as exc:
        raise ValueError(f"Cannot read CSV file {path!r}: {exc}") from None
    values = itertools.chain(header, *sample)
    return header, sample, any("\n" in v or "\r" in v for v in values)


# magic numbers (bzip2's "BZh": then a block size and a block's start)
_COMPRESSED = {
    rb"\x1f\x8b": "gzip",
    rb"BZh[1-9]1AY&SY": "bzip2",
    rb"\xfd7zXZ\x00": "xz",
    rb"PK\x03\x04": "zip",
}


def _refuse_compressed(path: str) -> None:
    """A compressed file is not read as text (a codec error); say what it is."""
    try:
        with open(path, "rb") as f:
            start = f.read(10)
    except OSError:
        return  # reported by the reading itself
    kind = next((k for magic, k in _COMPRESSED.items() if re.match(magic, start)), None)
    if kind is not None:
        raise ValueError(
            f"CSV file {path!r} is {kind}-compressed: read_csv reads plain-text "
            "CSV files; decompress it first (pandas.read_csv and the tfmlp "
            "command line read compressed ones)."
        )


def _refuse_cr_line_ends(f, path: str) -> None:
    """TensorFlow's line reader splits lines at ``\n`` only: a file whose
    lines end in a bare ``\r`` (classic Mac, Excel's "CSV (Macintosh)") would
    read as one line and yield no rows."""
    head = f.read(65536)
    f.seek(0)
    if "\r" in head and "\n" not in head.rstrip("\r"):
        raise ValueError(
            f"CSV file {path!r} ends its lines with a bare carriage return "
            "(\\r, classic Mac); write it with \\n or \\r\\n line ends."
        )


def _csv_values(header, sample, column: str) -> list[str]:
    k = header.index(column)
    return [row[k].strip() for row in sample if len(row) > k and row[k].strip()]


def _is_number(text: str) -> bool:
    """Whether TensorFlow's CSV decoding reads ``text`` as a number (Python's
    ``float`` also takes '1_000' and non-ASCII digits; TensorFlow does not)."""
    if not text.isascii() or "_" in text:
        return False
    try:
        float(text)
    except ValueError:
        return False
    return True


def _check_csv_features(path: str, header, sample, cols) -> None:
    """Reject feature columns whose sampled values are not numbers."""
    for col in cols:
        bad = [v for v in _csv_values(header, sample, col) if not _is_number(v)]
        if bad:
            raise _not_numeric(path, col, f"it holds e.g. {bad[0]!r}")


# what pandas reads as a missing value (besides an empty field)
# ("nan" reads as a number here: the NaN check names it while reading)
_NA_TOKENS = {"NA", "N/A", "n/a", "NULL", "null", "None", "<NA>", "#N/A", "#NA"}


def _csv_target_kinds(path: str, header, sample, target: str) -> list[str]:
    """ "int64" / "float32" / "string" for the sampled target values (or []).

    Numbers with a missing-value marker among them (``NA``, ``null``, which
    pandas reads as NaN) are refused: read as text they would be labels.
    """
    values = _csv_values(header, sample, target)
    if not values:
        return []
    markers = sorted({v.strip() for v in values} & _NA_TOKENS)
    numbers = [v for v in values if v.strip() not in _NA_TOKENS]
    if markers and numbers and all(map(_is_number, numbers)):
        raise ValueError(
            f"CSV file {path!r} has missing values ({', '.join(map(repr, markers))})"
            f" in the target column {target!r}: drop those rows."
        )
    if all(_INTEGER.fullmatch(v) for v in values):
        return ["int64"]
    return ["float32" if all(map(_is_number, values)) else "string"]


def _check_int64_labels(path: str, values: list[str], target: str) -> None:
    """Whole numbers that int64 cannot hold are refused (not read as labels),
    by the same test as the reader's (``_fits_int64``)."""
    text = tf.strings.strip(tf.constant(values))
    fits = _fits_int64(text, tf.ones_like(text, dtype=tf.bool)).numpy()
    big = [v.strip() for v, ok in zip(values, fits) if not ok]
    if big:
        shown = big[0] if len(big[0]) <= 40 else big[0][:20] + "..." + big[0][-10:]
        raise ValueError(
            f"CSV file {path!r}: the target column {target!r} holds whole numbers "
            f"beyond int64 ({shown}); pass target_dtype='string' (labels) or "
            "'float32' (numbers)."
        )


def _csv_layout(header, cols, target) -> tuple[int, ...]:
    """Where the feature columns and then the target sit in a file's header."""
    return tuple(header.index(c) for c in [*cols, target])


def _csv_layout_rows(files, layout, names, shuffle, seed):
    """Rows ``(x float32 (n_features,), y string)`` of files sharing a layout
    ``(column positions, multiline, number of columns)``.

    Lines are read as text (blank lines skipped, as pandas does) and parsed
    ``CSV_PARSE_LINES`` at a time. Files whose first rows hold a quoted value
    with a line break (``multiline``) are parsed as records instead (blank
    lines are then an error). An empty feature or target value, or a feature
    that reads as NaN, stops the pass with an error naming the file and the
    columns (``names``: the feature columns, then the target).
    """
    positions, multiline, n_columns = layout
    pos = list(positions)
    # every column parsed (the others as text), so that a row with more or
    # fewer fields than the header is an error rather than misread
    defaults = [tf.constant([""])] * n_columns
    for k in pos[:-1]:
        defaults[k] = tf.constant([np.nan], tf.float32)
    features = tf.constant(names[:-1])
    target = names[-1]

    def checked(path, values):
        x = tf.stack([values[k] for k in pos[:-1]], axis=1)
        y = values[pos[-1]]
        bad = tf.reduce_any(tf.math.is_nan(x), axis=0)
        named = tf.boolean_mask(features, bad)
        checks = [
            _csv_check(
                ~tf.reduce_any(bad),
                [path, "or NaN values in the feature column(s) '"]
                + [tf.strings.reduce_join(named, separator="', '")]
                + ["': fill or drop them first."],
            ),
            _csv_check(
                tf.reduce_all(tf.strings.length(tf.strings.strip(y)) > 0),
                [path, f"values in the target column {target!r}: drop those rows."],
            ),
        ]
        with tf.control_dependencies(checks):
            return tf.identity(x), tf.identity(y)

    def rows(path):
        if multiline:
            records = tf.data.experimental.CsvDataset(
                path, defaults, header=True
            ).batch(CSV_PARSE_LINES)
            return records.map(lambda *v: checked(path, v)).unbatch()
        lines = tf.data.TextLineDataset(path).skip(1)  # the header
        lines = lines.filter(lambda line: tf.strings.length(tf.strings.strip(line)) > 0)
        lines = lines.batch(CSV_PARSE_LINES)
        parse = lambda b: tf.io.decode_csv(b, defaults)  # noqa: E731
        return lines.map(lambda b: checked(path, parse(b))).unbatch()

    paths = tf.data.Dataset.from_tensor_slices(files)
    if shuffle:
        paths = paths.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
    return paths.interleave(rows, cycle_length=1)


def _csv_check(ok, parts: list):
    """Assert ``ok``; the message reads "CSV file '<path>' has empty <rest>"
    (``parts``: the path, then the rest, as strings or string tensors)."""
    path, *rest = parts
    message = tf.strings.join(["CSV file '", path, "' has empty ", *rest])
    return tf.debugging.Assert(ok, [message])


def _csv_rows(files, layouts, names, shuffle, seed):
    """Rows of every file, each file read with its own column positions.

    Unshuffled, the files are read in order; shuffled, files with the same
    layout are read in a shuffled order and the layouts are mixed randomly.
    """
    if not shuffle:
        runs = itertools.groupby(zip(files, layouts), key=lambda fl: fl[1])
        parts = [
            _csv_layout_rows([f for f, _ in run], layout, names, False, seed)
            for layout, run in runs
        ]
    else:
        groups: dict = {}
        for path, layout in zip(files, layouts):
            groups.setdefault(layout, []).append(path)
        parts = [
            _csv_layout_rows(paths, layout, names, True, seed)
            for layout, paths in groups.items()
        ]
        if len(parts) > 1:
            return tf.data.Dataset.sample_from_datasets(
                parts, seed=seed, rerandomize_each_iteration=True
            )
    ds = parts[0]
    for part in parts[1:]:
        ds = ds.concatenate(part)
    return ds


def _target_parser(y_dtype, target: str):
    """Graph function: a batch of target strings -> ``y_dtype`` values."""
    if y_dtype == tf.string:
        return lambda y: y
    if y_dtype == tf.float32:
        nan_message = (
            f"read_csv: the target column {target!r} holds NaN or infinite "
            "values; drop those rows first."
        )

        def parse_float(y):
            y = tf.strings.to_number(y, tf.float32)
            check = tf.debugging.Assert(
                tf.reduce_all(tf.math.is_finite(y)), [nan_message]
            )
            with tf.control_dependencies([check]):
                return tf.identity(y)

        return parse_float
    message = (
        f"read_csv: the target column {target!r} was read as int64 (class "
        "labels: target_dtype='int64', or its first rows hold whole numbers) "
        "but also holds these values, which int64 cannot hold; pass "
        "target_dtype='float32' (numbers) or 'string' (labels):"
    )

    def parse_int(y):
        y = tf.strings.strip(y)
        ok = tf.strings.regex_full_match(y, _INTEGER.pattern)
        ok = ok & _fits_int64(y, ok)
        check = tf.debugging.Assert(
            tf.reduce_all(ok), [message, tf.boolean_mask(y, ~ok)], summarize=5
        )
        with tf.control_dependencies([check]):
            return tf.strings.to_number(y, tf.int64)

    return parse_int


def _fits_int64(y, whole):
    """Graph function: which of the stripped strings ``y`` (``whole``: those
    that are whole numbers) int64 holds; 19 digits are compared in halves."""
    digits = tf.strings.regex_replace(y, r"^[+-]?0*", "")
    n = tf.strings.length(digits)
    long = whole & tf.equal(n, 19)
    padded = tf.where(long, digits, "0" * 19)
    head = tf.strings.to_number(tf.strings.substr(padded, 0, 10), tf.int64)
    tail = tf.strings.to_number(tf.strings.substr(padded, 10, 9), tf.int64)
    negative = tf.strings.regex_full_match(y, "-.*")
    limit = 854_775_807 + tf.cast(negative, tf.int64)  # 2**63 - 1, -2**63
    top = (head < 9_223_372_036) | ((head == 9_223_372_036) & (tail <= limit))
    return (n < 19) | (long & top)


# -------------------------------------------------------------------- Parquet
def read_parquet(
    pattern: str | os.PathLike | Sequence[str | os.PathLike],
    target: str,
    *,
    batch_size: int = 256,
    features: Sequence[str] | None = None,
    shuffle: bool = True,
    shuffle_buffer: int = 10_000,
    seed: int | None = None,
    read_rows: int = 65_536,
) -> tf.data.Dataset:
    """Stream Parquet file(s) as shuffled ``(X, y)`` batches (needs pyarrow).

    Parameters
    ----------
    pattern : str, path or list
        One file, a glob pattern or a list of either, found as in
        :func:`read_csv`.
    target : str
        Name of the target column. Text (also dictionary-encoded, e.g. a
        pandas categorical) gives string labels, integers int64, other
        numbers float32.
    batch_size : int, default=256
        Rows per batch.
    features : list of str, default=None
        Feature columns (default: every column but the target), as float32;
        they must be numeric.
    shuffle : bool, default=True
        On every pass: shuffle the file order, the rows within each chunk of
        ``read_rows`` rows, and the batches through a buffer of about
        ``shuffle_buffer`` rows.
    shuffle_buffer : int, default=10000
        Rows (in whole batches) held in the batch shuffle buffer; at most
        2**31 - 1.
    seed : int, default=None
        Seed of the shuffles.
    read_rows : int, default=65536
        Rows read from disk at a time (the other bound on memory; pyarrow
        decodes a whole row group at a time, so files much larger than
        memory should be written with row groups of ~50,000-100,000 rows).

    Returns
    -------
    dataset : tf.data.Dataset
        Batches ``(X float32 (batch, n_features), y (batch,))``.
    """
    try:
        import pyarrow.parquet as pq
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError(
            'read_parquet needs pyarrow: pip install "tfmlp[parquet]"'
        ) from None
    batch_size = _positive_int(batch_size, "batch_size")
    shuffle_buffer = _positive_int(shuffle_buffer, "shuffle_buffer", MAX_SHUFFLE_BUFFER)
    read_rows = _positive_int(read_rows, "read_rows")
    features = _check_params(target, features, shuffle, seed)
    files = _files(pattern)
    heads = [_parquet_head(pq, path) for path in files]
    names = heads[0][0].names
    if features is None:  # not pandas' stored index, as pandas reads it
        index = _pandas_index(heads[0][0])
        features = [c for c in names if c != target and c not in index]
        if not features and target in names and index & set(names):
            raise ValueError(
                f"{files[0]!r} has no feature column: apart from the target "
                f"{target!r} it holds only the pandas index {sorted(index)} "
                "(stored by DataFrame.to_parquet); to train on the index, name "
                "it in features=[...]."
            )
        features = features or None  # the target alone: _columns says so
    cols = _columns(files[0], names, target, features)
    kinds = []
    for path, (schema, meta) in zip(files, heads):
        _columns(path, schema.names, target, cols)
        for col in cols:
            _check_parquet_feature(path, col, schema.field(col).type)
        _check_parquet_nulls(path, meta, [*cols, target])
        if meta.num_rows:
            kinds.append(_arrow_kind(path, target, schema.field(target).type))
    y_dtype = _merge_kinds(kinds, target, files)
    batches = _parquet_batches(files, cols, target, y_dtype, batch_size, read_rows)
    signature = (
        tf.TensorSpec([None, len(cols)], tf.float32),
        tf.TensorSpec([None], y_dtype),
    )
    rng = np.random.default_rng(seed)
    ds = tf.data.Dataset.from_generator(
        lambda: batches(rng if shuffle else None), output_signature=signature
    )
    if shuffle:  # mix batches across chunks through a bounded buffer
        # at most one slot a row (there are fewer batches): it shuffles the
        # same, and tf.data reserves every slot up front
        rows = sum(meta.num_rows for _, meta in heads)
        n_buffer = max(1, min(shuffle_buffer // batch_size, rows))
        ds = ds.shuffle(n_buffer, seed=seed, reshuffle_each_iteration=True)
    return _tagged(ds.prefetch(tf.data.AUTOTUNE), shuffle, seed, cols)


def _tagged(ds, shuffle: bool, seed, features):
    """Mark a reader's dataset with its feature columns' names (what a
    DataFrame's columns are to the estimators: ``feature_names_in_``, checked
    at predict time) and whether its order no seed fixes: each process draws
    its own, so workers of a multi-worker strategy, which each take their
    share of the batches, would not split one order between them
    (``_distribute.check_shardable``)."""
    ds._tfmlp_unseeded_shuffle = bool(shuffle) and seed is None
    ds._tfmlp_feature_names = tuple(str(c) for c in features)
    return ds


def _parquet_head(pq, path: str):
    """(Arrow schema, footer metadata) of a Parquet file."""
    try:
        return pq.read_schema(path), pq.read_metadata(path)
    except Exception as exc:  # pyarrow raises several types
        raise ValueError(f"Cannot read Parquet file {path!r}: {exc}") from None


def _check_parquet_nulls(path: str, meta, columns: list[str]) -> None:
    """Refuse columns whose footer statistics count missing (null) values
    (files written without statistics are checked while reading)."""
    first_leaf = _top_level_leaves(meta.schema.to_arrow_schema())
    for column in columns:
        j = first_leaf.get(column)
        if j is None:  # not a top-level column of one leaf: checked while reading
            continue
        for i in range(meta.num_row_groups):
            stats = meta.row_group(i).column(j).statistics
            if stats is not None and stats.has_null_count and stats.null_count:
                raise _null_values(path, column)


def _top_level_leaves(arrow_schema) -> dict:
    """Top-level columns stored as a single leaf -> that leaf's index in the
    Parquet metadata (a struct's field may carry the same dotted path as a
    top-level column named with a dot, so paths are not looked up)."""

    def leaves(arrow_type) -> int:
        n = getattr(arrow_type, "num_fields", 0)
        return sum(leaves(arrow_type.field(k).type) for k in range(n)) if n else 1

    out, j = {}, 0
    for field in arrow_schema:
        n = leaves(field.type)
        if n == 1 and getattr(field.type, "num_fields", 0) == 0:
            out[field.name] = j
        j += n
    return out


def _null_values(path: str, column: str) -> ValueError:
    return ValueError(
        f"Parquet file {path!r} has missing (null) values in the column "
        f"{column!r}: fill or drop them first."
    )


def _value_type(arrow_type):
    """The type of the values (a dictionary-encoded column's dictionary)."""
    import pyarrow as pa

    return arrow_type.value_type if pa.types.is_dictionary(arrow_type) else arrow_type


def _is_arrow_numeric(t) -> bool:
    import pyarrow as pa

    return (
        pa.types.is_integer(t)
        or pa.types.is_floating(t)
        or pa.types.is_boolean(t)
        or pa.types.is_decimal(t)
    )


def _is_arrow_text(t) -> bool:
    import pyarrow as pa

    string_view = getattr(pa.types, "is_string_view", lambda _: False)
    return pa.types.is_string(t) or pa.types.is_large_string(t) or string_view(t)


def _check_parquet_feature(path: str, column: str, arrow_type) -> None:
    if not _is_arrow_numeric(_value_type(arrow_type)):
        raise _not_numeric(path, column, f"Parquet type {arrow_type}")


def _arrow_kind(path: str, target: str, arrow_type) -> str:
    """ "int64" / "float32" / "string" for a Parquet target column's type."""
    import pyarrow as pa

    t = _value_type(arrow_type)
    if _is_arrow_text(t):
        return "string"
    if pa.types.is_integer(t) or pa.types.is_boolean(t):
        return "int64"
    if pa.types.is_floating(t) or pa.types.is_decimal(t):
        return "float32"
    raise ValueError(
        f"The target column {target!r} of {path!r} has the unsupported Parquet "
        f"type {arrow_type}: use text or numbers."
    )


def _column_numpy(batch, column: str, path: str) -> np.ndarray:
    """A record batch's column as NumPy values (dictionaries decoded); a
    missing (null) value is an error naming the file and the column."""
    import pyarrow as pa

    values = batch.column(column)
    if values.null_count:
        raise _null_values(path, column)
    if pa.types.is_dictionary(values.type):
        values = values.dictionary_decode()
    return values.to_numpy(zero_copy_only=False)


def _parquet_batches(files, cols, target, y_dtype, batch_size, read_rows):
    """Generator function ``rng -> batches``: row chunks shuffled in NumPy."""
    import pyarrow.parquet as pq

    np_y = str if y_dtype == tf.string else y_dtype.as_numpy_dtype

    def chunks(rng):
        order = rng.permutation(len(files)) if rng is not None else range(len(files))
        for k in order:
            # read through a 1 MiB buffered stream, without pre-buffering:
            # a row group's compressed column chunks are not held whole in
            # memory (pyarrow still decodes a whole row group at a time)
            pf = pq.ParquetFile(files[k], pre_buffer=False, buffer_size=1 << 20)
            for rb in pf.iter_batches(batch_size=read_rows, columns=[*cols, target]):
                x = np.column_stack([_column_numpy(rb, c, files[k]) for c in cols])
                x = x.astype(np.float32, copy=False)
                y = _column_numpy(rb, target, files[k])
                if y.dtype == np.uint64 and y.size and y.max() > np.iinfo(np.int64).max:
                    raise ValueError(
                        f"Target column {target!r} of {files[k]!r} holds {y.max()}, "
                        "beyond the int64 labels the reader yields."
                    )
                y = y.astype(np_y)
                if rng is not None:
                    rows = rng.permutation(len(y))
                    x, y = x[rows], y[rows]
                yield x, y

    def batches(rng):
        """Whole batches across chunk and file ends (as ``read_csv`` and an
        array cut by ``batch_size``); only the last batch may be short."""
        x_left, y_left = np.zeros((0, len(cols)), np.float32), np.zeros(0, np_y)
        for x, y in chunks(rng):
            start = min(batch_size - len(y_left), len(y)) if len(y_left) else 0
            if start:  # the rows left over from the previous chunk, completed
                x_left = np.concatenate([x_left, x[:start]])
                y_left = np.concatenate([y_left, y[:start]])
                if len(y_left) < batch_size:
                    continue
                yield x_left, y_left
            end = start + (len(y) - start) // batch_size * batch_size
            for first in range(start, end, batch_size):
                yield x[first : first + batch_size], y[first : first + batch_size]
            x_left, y_left = x[end:], y[end:]
        if len(y_left):
            yield x_left, y_left

    return batches
