"""Stream training data from CSV or Parquet files as a ``tf.data.Dataset``.

The datasets yield shuffled ``(X, y)`` batches through a bounded buffer, so
files much larger than memory can be passed straight to ``fit`` /
``partial_fit`` (one pass over the files is one epoch). String labels stay
strings; give a classifier its label set with ``fit(ds, classes=[...])``.
"""

from __future__ import annotations

import csv
import glob
import os

import numpy as np
import tensorflow as tf

__all__ = ["read_csv", "read_parquet"]


def _files(pattern) -> list[str]:
    """One path, a glob pattern, or a list of either -> sorted existing files."""
    patterns = [pattern] if isinstance(pattern, (str, os.PathLike)) else list(pattern)
    files: list[str] = []
    for pat in patterns:
        pat = os.fspath(pat)
        matches = sorted(glob.glob(pat)) if glob.has_magic(pat) else [pat]
        files.extend(m for m in matches if os.path.isfile(m))
    if not files:
        raise ValueError(f"No file matches {pattern!r}.")
    return files


def _columns(path: str, available: list[str], target: str, features) -> list[str]:
    if target not in available:
        raise ValueError(
            f"{path!r} has no target column {target!r}; its columns are {available}."
        )
    if features is None:
        return [c for c in available if c != target]
    missing = [c for c in features if c not in available]
    if missing:
        raise ValueError(f"{path!r} has no feature column(s) {missing}.")
    if target in features:
        raise ValueError(f"The target column {target!r} is also listed in features.")
    return list(features)


def _finish(ds, n_features, batch_size, shuffle, buffer, seed):
    """Rows -> shuffled (bounded buffer) batches of (X, y)."""
    if shuffle:
        ds = ds.shuffle(buffer, seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size)
    return ds.prefetch(tf.data.AUTOTUNE)


def read_csv(
    pattern,
    target: str,
    *,
    batch_size: int = 256,
    features=None,
    shuffle: bool = True,
    shuffle_buffer: int = 10_000,
    seed=None,
) -> tf.data.Dataset:
    """Stream CSV file(s) with a header row as shuffled ``(X, y)`` batches.

    Parameters
    ----------
    pattern : str, path or list
        One file, a glob pattern (``"data/*.csv"``) or a list of either.
    target : str
        Name of the target column.
    batch_size : int, default=256
        Rows per batch.
    features : list of str, default=None
        Feature columns (default: every column but the target), read as
        float32.
    shuffle : bool, default=True
        Shuffle file order and rows (through a buffer of ``shuffle_buffer``
        rows) on every pass.
    shuffle_buffer : int, default=10000
        Rows held in the shuffle buffer: bounds memory.
    seed : int, default=None
        Seed of the shuffles.

    Returns
    -------
    dataset : tf.data.Dataset
        Batches ``(X float32 (batch, n_features), y (batch,))``; ``y`` is a
        string tensor when the target column is not numeric.
    """
    files = _files(pattern)
    header, sample = _csv_head(files[0])
    cols = _columns(files[0], header, target, features)
    for other in files[1:]:
        _columns(other, _csv_head(other)[0], target, cols)
    y_default = _target_default([row[header.index(target)] for row in sample])
    select = sorted(header.index(c) for c in [*cols, target])
    defaults = [y_default if header[i] == target else tf.float32 for i in select]
    pos = {header[i]: k for k, i in enumerate(select)}

    def rows(path):
        return tf.data.experimental.CsvDataset(
            path, defaults, header=True, select_cols=select
        )

    def to_xy(*values):
        x = tf.stack([values[pos[c]] for c in cols])
        return x, values[pos[target]]

    names = tf.data.Dataset.from_tensor_slices(files)
    if shuffle:
        names = names.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
    ds = names.interleave(rows, cycle_length=1).map(to_xy)
    return _finish(ds, len(cols), batch_size, shuffle, shuffle_buffer, seed)


def _csv_head(path: str, n: int = 200):
    try:
        with open(path, newline="") as f:
            reader = csv.reader(f)
            header = next(reader)
            sample = [row for _, row in zip(range(n), reader)]
    except (OSError, UnicodeDecodeError, StopIteration, csv.Error) as exc:
        raise ValueError(f"Cannot read CSV file {path!r}: {exc}") from None
    return header, sample


def _target_default(values: list[str]):
    """int64 / float32 / string type of the target, sniffed from a sample."""
    try:
        numbers = [float(v) for v in values]
    except ValueError:
        return tf.string
    if all(n.is_integer() for n in numbers):
        return tf.int64
    return tf.float32


def read_parquet(
    pattern,
    target: str,
    *,
    batch_size: int = 256,
    features=None,
    shuffle: bool = True,
    shuffle_buffer: int = 10_000,
    seed=None,
    read_rows: int = 65_536,
) -> tf.data.Dataset:
    """Stream Parquet file(s) as shuffled ``(X, y)`` batches (needs pyarrow).

    Parameters
    ----------
    pattern : str, path or list
        One file, a glob pattern or a list of either.
    target : str
        Name of the target column.
    batch_size : int, default=256
        Rows per batch.
    features : list of str, default=None
        Feature columns (default: every column but the target), as float32.
    shuffle : bool, default=True
        On every pass: shuffle the file order, the rows within each chunk of
        ``read_rows`` rows, and the batches through a buffer of about
        ``shuffle_buffer`` rows.
    shuffle_buffer : int, default=10000
        Rows (in whole batches) held in the batch shuffle buffer.
    seed : int, default=None
        Seed of the shuffles.
    read_rows : int, default=65536
        Rows read from disk at a time (the other bound on memory).

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
    files = _files(pattern)
    schemas = []
    for path in files:
        try:
            schemas.append(pq.read_schema(path))
        except Exception as exc:  # pyarrow raises several types
            raise ValueError(f"Cannot read Parquet file {path!r}: {exc}") from None
    cols = _columns(files[0], schemas[0].names, target, features)
    for path, schema in zip(files[1:], schemas[1:]):
        _columns(path, schema.names, target, cols)
    y_type = schemas[0].field(target).type
    import pyarrow as pa

    y_dtype = (
        tf.string
        if pa.types.is_string(y_type) or pa.types.is_large_string(y_type)
        else (tf.int64 if pa.types.is_integer(y_type) else tf.float32)
    )
    rng = np.random.default_rng(seed)
    np_y = str if y_dtype == tf.string else y_dtype.as_numpy_dtype

    def batches():
        """Batches cut from row chunks shuffled in NumPy (no per-row tf.data)."""
        order = rng.permutation(len(files)) if shuffle else range(len(files))
        for k in order:
            pf = pq.ParquetFile(files[k], pre_buffer=False)  # else it buffers all
            for rb in pf.iter_batches(batch_size=read_rows, columns=[*cols, target]):
                x = np.column_stack(
                    [rb.column(c).to_numpy(zero_copy_only=False) for c in cols]
                ).astype(np.float32, copy=False)
                y = rb.column(target).to_numpy(zero_copy_only=False).astype(np_y)
                rows = rng.permutation(len(y)) if shuffle else np.arange(len(y))
                for start in range(0, len(y), batch_size):
                    pick = rows[start : start + batch_size]
                    yield x[pick], y[pick]

    signature = (
        tf.TensorSpec([None, len(cols)], tf.float32),
        tf.TensorSpec([None], y_dtype),
    )
    ds = tf.data.Dataset.from_generator(batches, output_signature=signature)
    if shuffle:  # mix batches across chunks through a bounded buffer
        n_buffer = max(1, shuffle_buffer // batch_size)
        ds = ds.shuffle(n_buffer, seed=seed, reshuffle_each_iteration=True)
    return ds.prefetch(tf.data.AUTOTUNE)
