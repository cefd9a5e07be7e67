"""Command line: ``tfmlp demo | train | predict | evaluate | export | info``.

TensorFlow and the estimators are imported inside the subcommand handlers so
that ``tfmlp --help`` stays fast; ``tfmlp train`` generates its estimator flags
from the estimators' parameter definitions (which imports tfmlp).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time


def _demo(args: argparse.Namespace) -> int:
    import warnings

    import numpy as np
    from sklearn.datasets import load_digits
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import train_test_split
    from sklearn.neural_network import MLPClassifier as SkMLP

    _import_tensorflow_quietly()
    from tfmlp import MLPClassifier

    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.25, random_state=0, stratify=y
    )
    params = dict(
        hidden_layer_sizes=(64,),
        solver=args.solver,
        max_iter=args.max_iter,
        random_state=args.random_state,
    )
    print(
        f"Digits: {X_train.shape[0]} training and {X_test.shape[0]} test samples, "
        f"{X.shape[1]} features, 10 classes; MLPClassifier({params})"
    )
    rows = []
    for name, cls in (("scikit-learn", SkMLP), ("tfmlp", MLPClassifier)):
        est = cls(**params)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            start = time.perf_counter()
            est.fit(X_train, y_train)
            elapsed = time.perf_counter() - start
        rows.append((name, est, elapsed))
    sk, tf_est = rows[0][1], rows[1][1]
    diff = max(
        float(np.max(np.abs(a - b)))
        for a, b in zip(sk.coefs_ + sk.intercepts_, tf_est.coefs_ + tf_est.intercepts_)
    )
    print(f"{'':14}{'accuracy':>10}{'fit time (s)':>14}{'epochs':>8}")
    for name, est, elapsed in rows:
        acc = est.score(X_test, y_test)
        print(f"{name:14}{acc:>10.4f}{elapsed:>14.3f}{est.n_iter_:>8}")
    print(f"max |weight difference| tfmlp vs scikit-learn: {diff:.3e}")
    same = np.array_equal(sk.predict(X_test), tf_est.predict(X_test))
    print(f"identical test predictions: {same}")
    return 0


# ====================================================================== helpers
DEBUG_ENV = "TFMLP_DEBUG"


def _debug() -> bool:
    """Whether ``TFMLP_DEBUG`` asks for TensorFlow's notices and tracebacks."""
    import os

    return os.environ.get(DEBUG_ENV, "").strip().lower() not in ("", "0", "false")


def _import_tensorflow_quietly() -> None:
    """Import TensorFlow and start its devices with file descriptor 2 muted.

    TensorFlow's native code writes startup notices straight to the process's
    stderr (absl's "WARNING: All log messages before absl::InitializeLog()",
    oneDNN and CUDA probing lines) whatever ``TF_CPP_MIN_LOG_LEVEL`` says. A
    command line whose errors are one line cannot let them through, so they
    are muted unless ``TFMLP_DEBUG`` is set. ``TF_CPP_MIN_LOG_LEVEL`` defaults
    to 2 (a value the user sets is kept) for TensorFlow's later log lines.
    """
    import os

    if "tensorflow" in sys.modules:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if _debug():
        _start_tensorflow()
        return
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # captured stderr (tests)
        _start_tensorflow()
        return
    sys.stderr.flush()
    saved = os.dup(fd)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    os.close(devnull)
    try:
        _start_tensorflow()
    finally:
        sys.stderr.flush()
        os.dup2(saved, fd)
        os.close(saved)


def _start_tensorflow() -> None:
    """Import TensorFlow and list its devices (their start-up notices, now)."""
    import tensorflow as tf

    tf.config.list_logical_devices()


class _Once(argparse.Action):
    """An option given at most once: argparse keeps the last of a repeated
    one, and a second ``--target`` would silently make the first a feature."""

    def __call__(self, parser, namespace, values, option_string=None):
        seen = f"_{self.dest}_given"
        if getattr(namespace, seen, False):
            parser.error(f"{option_string} given more than once")
        setattr(namespace, seen, True)
        setattr(namespace, self.dest, values)


class CLIError(Exception):
    """A user-facing error: printed as one line, exit code ``code``."""

    def __init__(self, message: str, code: int = 1):
        super().__init__(message)
        self.code = code


_SKIPPED_PARAMS = {"callbacks", "hidden_stack"}  # code/objects: not on a CLI
_ALIASES = {"hidden_layer_sizes": ["--hidden"]}
_NOTES = {"warm_start": "; no effect here: each train run fits a new model"}


def _estimator_params():
    """(name, default, constraints, estimators) for every estimator parameter."""
    import inspect

    from tfmlp import MLPClassifier, MLPRegressor

    seen: dict = {}
    for cls in (MLPClassifier, MLPRegressor):
        sig = inspect.signature(cls.__init__)
        for name, p in sig.parameters.items():
            if name == "self" or name in _SKIPPED_PARAMS:
                continue
            entry = seen.setdefault(
                name, [p.default, cls._parameter_constraints.get(name), []]
            )
            entry[2].append(cls.__name__)
    return [(name, *entry) for name, entry in seen.items()]


def _hidden_sizes(text: str) -> tuple:
    """``--hidden 100,50``: comma-separated positive integers (a trailing
    comma allowed, as in Python's ``(100,)``; an empty item between two is a
    typo, refused)."""
    parts = text.replace(" ", "").split(",")
    if len(parts) > 1 and parts[-1] == "":
        parts.pop()
    import re

    ok = all(re.fullmatch(r"[+-]?[0-9]+", s) for s in parts)  # (not 1_0, ١٠)
    sizes = tuple(int(s) for s in parts) if ok else None
    if not sizes:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers such as 100,50, got {text!r}"
        )
    if min(sizes) < 1:
        raise argparse.ArgumentTypeError(
            f"layer sizes must be positive integers, got {text!r}"
        )
    return sizes


def _bounded(kind, ok, wanted: str):
    """An argparse ``type``: ``text`` read as a ``kind`` number that ``ok``
    accepts, else a usage error saying what was ``wanted``."""

    def convert(text: str):
        value = _parse_number(kind, text)
        if value is None or not ok(value[0]):
            raise argparse.ArgumentTypeError(f"expected {wanted}, got {text!r}")
        return value[0]

    return convert


# ``--test-size``: a fraction in [0, 1); demo's ``--max-iter``: a count >= 1
_test_size = _bounded(float, lambda v: 0 <= v < 1, "a fraction in the range [0, 1)")
_positive_int = _bounded(int, lambda v: v >= 1, "a positive integer")


def _value_spec(constraints) -> tuple[set, list, bool, list]:
    """What a flag accepts: (string options, number types, None, number checks).

    The number checks are the parameter's interval constraints, so that a value
    out of range is a usage error before anything is read or trained.
    """
    from numbers import Integral, Real

    from tfmlp._compat import Interval, Options, StrOptions

    strs, kinds, allow_none, checks = set(), [], False, []
    for c in constraints:
        if c is None:
            allow_none = True
        elif isinstance(c, StrOptions):
            strs |= set(c.options)
        elif isinstance(c, Interval):
            kinds.append(int if c.type is Integral else float)
            checks.append(c)
        elif isinstance(c, Options) and c.type is Real:
            kinds.append(float)
            checks.append(c)
        elif isinstance(c, str) and c == "random_state":  # NumPy's seed range
            kinds.append(int)
            checks.append(Interval(Integral, 0, 2**32 - 1, closed="both"))
            allow_none = True  # its default: a fresh seed each run
    return strs, list(dict.fromkeys(kinds)), allow_none, checks


def _make_converter(name, constraints):
    """An argparse ``type`` that turns a string into a value the constraints take."""
    if name == "hidden_layer_sizes":
        return _hidden_sizes, "N[,N...]"
    strs, kinds, allow_none, checks = _value_spec(list(constraints or []))

    def convert(text):
        if text in strs:
            return text
        if allow_none and text.lower() == "none":
            return None
        numbers = [v for v in (_parse_number(kind, text) for kind in kinds) if v]
        for (value,) in numbers:
            if not checks or any(check.is_satisfied_by(value) for check in checks):
                return value
        if numbers:
            wanted = " or ".join(str(check) for check in checks)
        else:
            choices = sorted(strs) + (["none"] if allow_none else [])
            wanted = " or ".join(
                [k.__name__ for k in kinds] + [repr(s) for s in choices]
            )
        raise argparse.ArgumentTypeError(f"expected {wanted}, got {text!r}")

    metavar = "|".join(sorted(strs)) if strs and not kinds else None
    if not metavar:
        parts = [k.__name__.upper() for k in kinds] + sorted(strs)
        metavar = "|".join(parts) or "VALUE"
    return convert, metavar


def _parse_number(kind, text: str):
    """``(value,)`` when ``text`` reads as a ``kind`` number, else None."""
    try:
        return (kind(text),)
    except ValueError:
        return None


def _add_estimator_flags(parser: argparse.ArgumentParser) -> None:
    """Add one flag per estimator parameter, generated from the definitions."""
    group = parser.add_argument_group(
        "estimator parameters",
        "Generated from MLPClassifier/MLPRegressor's parameters; omitted ones keep "
        "the estimator's default.",
    )
    for name, default, constraints, owners in _estimator_params():
        flag = "--" + name.replace("_", "-")
        only = "" if len(owners) == 2 else f" ({owners[0]} only)"
        help_text = f"default: {default!r}{only}{_NOTES.get(name, '')}"
        flags = [flag] + _ALIASES.get(name, [])
        constraints = list(constraints or [])
        if "boolean" in constraints or name == "verbose":
            group.add_argument(
                *flags,
                dest=name,
                action=argparse.BooleanOptionalAction,
                default=argparse.SUPPRESS,
                help=help_text,
            )
            continue
        convert, metavar = _make_converter(name, constraints)
        group.add_argument(
            *flags,
            dest=name,
            type=convert,
            metavar=metavar,
            default=argparse.SUPPRESS,
            help=help_text,
        )


def _read_table(path: str, keep=()):
    """The table at ``path`` as a DataFrame (CSV, TSV or Parquet); ``keep``:
    columns a model was trained on (never dropped as a saved index)."""
    import os

    if not os.path.exists(path):
        raise CLIError(f"data file not found: {path}")
    if os.path.isdir(path):
        raise CLIError(f"data path is a directory, not a file: {path}")
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover
        raise CLIError(
            'reading tables needs pandas: pip install "tfmlp[pandas]"'
        ) from None
    sep = _separator(path)
    if sep is None:
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise CLIError(
                'reading Parquet files needs pyarrow: pip install "tfmlp[parquet]"'
            ) from None
    try:
        if sep is None:
            frame = _decimals_as_floats(pd.read_parquet(path))
        else:
            frame = _read_text_table(pd, path, sep)
    except CLIError:
        raise
    except Exception as exc:  # pandas / pyarrow raise many types
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise CLIError(
            f"cannot read data file {path}: {reason or type(exc).__name__}"
        ) from None
    if len(frame) == 0:
        raise CLIError(f"data file {path} has no rows")
    names = [str(c) for c in frame.columns]  # Parquet may name them by integers
    if len(set(names)) < len(names):
        raise CLIError(f"data file {path} names two columns the same as text")
    frame.columns = names
    return _without_saved_index(frame, keep)


# what a pipe (/dev/stdin, a FIFO) held: it can be read only once, and
# ``_text_columns`` reads the table again
_PIPED: dict = {}


def _read_text_table(pd, path: str, sep: str):
    """A CSV/TSV file as a DataFrame, refusing a header that names a column
    twice (pandas would rename the second ``x`` to ``x.1``, a column the file
    never names). A pipe is read into memory first: its header is read twice."""
    import os

    if os.path.isfile(path):
        _PIPED.pop(path, None)  # (a pipe of that name before)
    else:
        with open(path, "rb") as pipe:
            _PIPED[path] = pipe.read()
    header = pd.read_csv(**_text_source(path), sep=sep, header=None, nrows=1, dtype=str)
    names = [n for n in header.iloc[0].tolist() if isinstance(n, str)]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise CLIError(f"data file {path} names columns {repeated} more than once")
    # in one pass: each column typed from all its values (no DtypeWarning of a
    # mixed column); index_col=False: rows ending in a separator the header
    # lacks are not read shifted by one column
    return pd.read_csv(**_text_source(path), sep=sep, low_memory=False, index_col=False)


def _text_source(path: str) -> dict:
    """Where ``pd.read_csv`` reads ``path`` from: the file, or what a pipe of
    that name held (read once by ``_read_text_table``); the compression by
    the name, also for a pipe's bytes."""
    import io

    from pandas.io.common import infer_compression

    source = io.BytesIO(_PIPED[path]) if path in _PIPED else path
    return {
        "filepath_or_buffer": source,
        "compression": infer_compression(path, "infer"),
    }


def _separator(path: str):
    """The field separator of a text table by its extension (tab for .tsv /
    .tab, else a comma), or None for a Parquet file (by its extension or,
    named otherwise, ``df.parquet.gzip`` say, by its first bytes)."""
    name = path.lower()
    for compressed in (".gz", ".bz2", ".xz", ".zip", ".zst"):  # pandas decompresses
        if name.endswith(compressed):
            name = name[: -len(compressed)]
            break
    if name.endswith((".parquet", ".pq")):
        return None
    if name.endswith((".tsv", ".tab")):
        return "\t"
    if name.endswith((".csv", ".txt")):
        return ","
    if _parquet_magic(path):
        return None
    other = os.path.splitext(name)[1].lstrip(".")
    if other in _OTHER_FORMATS:  # else read as CSV, whatever its name
        raise CLIError(
            f"data file {path}: .{other} files are not read; the command line "
            "reads CSV / TSV (.csv, .tsv, .txt, also compressed) and Parquet"
        )
    return ","  # the file is read once here


# table formats pandas reads by other functions: refused by name (read as CSV
# they would give a confusing error or a table of nonsense)
_OTHER_FORMATS = frozenset(
    "json jsonl ndjson xlsx xls xlsm ods feather arrow ipc orc avro h5 hdf hdf5 "
    "npy npz pkl pickle sav dta sas7bdat xml html".split()
)


def _parquet_magic(path: str) -> bool:
    """Whether ``path`` is a regular file that starts and ends with Parquet's
    magic bytes (a pipe or a terminal is not read: its data would be gone)."""
    import os
    import stat

    try:
        if not stat.S_ISREG(os.stat(path).st_mode) or os.path.getsize(path) < 8:
            return False
        with open(path, "rb") as f:
            head = f.read(4)
            f.seek(-4, os.SEEK_END)
            return head == f.read(4) == b"PAR1"
    except OSError:
        return False


def _decimals_as_floats(frame):
    """Parquet decimal columns (prices, amounts from databases) as float64:
    pandas gives them as Python ``Decimal`` objects, which would read as text."""
    import decimal

    import numpy as np

    for name in frame.columns:
        series = frame[name]
        if series.dtype != object:
            continue
        present = series.dropna()
        if len(present) and all(isinstance(v, decimal.Decimal) for v in present):
            frame[name] = np.array(
                [np.nan if v is None else float(v) for v in series], dtype=np.float64
            )
    return frame


def _without_saved_index(frame, keep=()):
    """Drop a pandas row index saved with the data (``df.to_csv(path)``
    writes it as a first column without a name, read back as ``Unnamed:
    0`` holding 0..n-1): row numbers are no feature, and a sorted file's
    numbers give the label away. Said on stderr."""
    import numpy as np

    first = frame.columns[0]
    if not (isinstance(first, str) and first.startswith("Unnamed: ")):
        return frame
    if first in keep:  # a feature of the model that reads the table
        return frame
    values = frame[first].to_numpy()
    if values.dtype.kind not in "iu" or not np.array_equal(
        values, np.arange(len(values))
    ):
        return frame
    print(
        f"warning: column {first!r} (no name, holding the row numbers 0..n-1: a "
        "saved pandas index) is not used",
        file=sys.stderr,
    )
    return frame.drop(columns=[first])


def _load_model(path: str, notes: list | None = None):
    """The model in ``path``; ``notes`` (if given) gets the messages of the
    warnings loading gave (e.g. a ``hidden_stack`` the file cannot hold)."""
    import os
    import warnings

    if not os.path.exists(path):
        raise CLIError(f"model file not found: {path}")
    _import_tensorflow_quietly()
    import tfmlp

    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            est = tfmlp.load(path)
    except (ValueError, OSError, TypeError) as exc:
        raise CLIError(f"cannot read model file {path}: {exc}") from None
    if notes is not None:
        notes.extend(str(w.message) for w in caught)
    return est


def _fitted_model(path: str):
    """:func:`_load_model`, refusing a model that was saved before fitting."""
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.validation import check_is_fitted

    est = _load_model(path)
    try:
        check_is_fitted(est)
    except NotFittedError:
        raise CLIError(
            f"the model in {path} is not fitted (saved before training); train it first"
        ) from None
    return est


def _preprocessing_of(est):
    from tfmlp._preprocess import TablePreprocessor

    record = est.__dict__.get(_PRE_ATTR)
    if record is None:
        return None
    return TablePreprocessor.from_dict(record)


_PRE_ATTR = "_cli_preprocessing"


def _features(est, frame, pre, path=None):
    """The model's feature matrix for ``frame``.

    With stored preprocessing (a model written by ``tfmlp train``) the table
    goes through it. A model saved by ``tfmlp.save`` after fitting on a
    DataFrame gets its columns by name (``feature_names_in_`` order, extra
    columns ignored); one fitted on an array gets every column as it is.
    """
    from tfmlp._preprocess import PreprocessError

    if pre is not None:
        raw = None
        if path is not None:  # category columns as the file writes them
            names = {str(c): c for c in frame.columns}
            wanted = [names[n] for n in pre.categorical_names() if n in names]
            raw = _text_columns(path, wanted) if wanted else None
            raw = None if raw is None else raw.loc[frame.index]
        try:
            X = pre.transform(frame, raw=raw)
        except PreprocessError as exc:
            raise CLIError(str(exc)) from None
    else:
        X = _plain_features(est, frame)
    expected = getattr(est, "n_features_in_", None)
    if expected is not None and X.shape[1] != expected:
        raise CLIError(
            f"feature mismatch: the model expects {expected} features, the data "
            f"gives {X.shape[1]}"
        )
    return X


def _plain_features(est, frame):
    """The numeric columns of ``frame`` for a model without preprocessing."""
    import numpy as np

    names = getattr(est, "feature_names_in_", None)
    if names is not None:
        available = {str(c): c for c in frame.columns}
        missing = [str(n) for n in names if str(n) not in available]
        if missing:
            raise CLIError(
                "the data lacks column(s) the model was trained on: "
                + ", ".join(repr(m) for m in missing)
            )
        frame = frame[[available[str(n)] for n in names]]
        frame.columns = [str(n) for n in names]
    text = [str(c) for c in frame.columns if not _number_like(frame[c])]
    if text:
        raise CLIError(
            "this model has no stored preprocessing (not written by `tfmlp "
            "train`), so its data columns must be numeric; not numeric: "
            + ", ".join(repr(t) for t in text)
        )
    if names is None:
        return frame.to_numpy(dtype=np.float64, na_value=np.nan)
    return frame.astype(np.float64)


MAX_AUTO_CLASSES = 20


def _decide_task(y) -> str:
    """``classify`` for text/bool/categorical targets and for whole-number targets
    with at most ``MAX_AUTO_CLASSES`` distinct values (ints, or floats such as
    0.0/1.0 that a missing value turned into floats); ``regress`` otherwise."""
    import numpy as np
    import pandas as pd

    api = pd.api.types
    if api.is_bool_dtype(y) or not api.is_numeric_dtype(y):
        return "classify"
    if y.nunique() > MAX_AUTO_CLASSES:
        return "regress"
    if api.is_integer_dtype(y):
        return "classify"
    finite = np.isfinite(y.to_numpy(dtype=np.float64)).all()
    return "classify" if finite and _continuous(y) is None else "regress"


def _continuous(y):
    """A non-integer value of a numeric target column (None if it has none)."""
    import numpy as np
    import pandas as pd

    if pd.api.types.is_bool_dtype(y) or not pd.api.types.is_numeric_dtype(y):
        return None
    values = y.to_numpy(dtype=np.float64)
    fractional = values[np.isfinite(values) & (values != np.round(values))]
    return fractional[0] if len(fractional) else None


def _report(task, y_true, y_pred) -> list[tuple[str, float]]:
    """The metrics' rows; their warnings (an R^2 of one row is undefined)
    become ``warning:`` lines on stderr, as the fit's do."""
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rows = _metrics(task, y_true, y_pred)
    _print_warnings(caught)
    return rows


def _print_warnings(caught) -> None:
    for w in caught:
        if issubclass(w.category, UserWarning):  # ConvergenceWarning included
            print(f"warning: {_first_sentence(str(w.message))}", file=sys.stderr)


def _metrics(task, y_true, y_pred) -> list[tuple[str, float]]:
    from sklearn import metrics

    if task == "classify":
        return [
            ("accuracy", metrics.accuracy_score(y_true, y_pred)),
            (
                "f1_macro",
                metrics.f1_score(y_true, y_pred, average="macro", zero_division=0),
            ),
        ]
    return [
        ("r2", metrics.r2_score(y_true, y_pred)),
        ("mae", metrics.mean_absolute_error(y_true, y_pred)),
    ]


def _print_report(title, rows) -> None:
    print(title)
    for name, value in rows:
        print(f"  {name:10} {value:.4f}")


def _progress_callback(max_iter: int, stream=None, unit="epoch", bar=True):
    """A Keras callback printing epoch n/max, loss, val score, elapsed, ETA
    (``unit``: what n counts); a redrawn bar on a terminal unless ``bar`` is
    False (plain lines then, as on a pipe)."""
    import keras

    stream = stream if stream is not None else sys.stderr

    class Progress(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.tty = bar and _isatty(stream)
            self.start = None
            self.width = 0

        def on_train_begin(self, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            logs = logs or {}
            n = epoch + 1
            elapsed = time.perf_counter() - (self.start or time.perf_counter())
            eta = elapsed / n * max(max_iter - n, 0)
            parts = [f"{unit} {n}/{max_iter}"]
            if logs.get("loss") is not None:
                parts.append(f"loss {float(logs['loss']):.6f}")
            if logs.get("val_score") is not None:
                parts.append(f"val score {float(logs['val_score']):.4f}")
            parts.append(f"elapsed {elapsed:.1f}s")
            parts.append(f"ETA {eta:.1f}s")
            text = ", ".join(parts)
            if self.tty:
                done = int(20 * min(n / max_iter, 1.0))
                line = f"\r[{'#' * done}{'.' * (20 - done)}] {text}"
                pad = max(self.width - len(line), 0)
                self.width = len(line)
                stream.write(line + " " * pad)
            else:
                stream.write(text + "\n")
            stream.flush()

        def on_train_end(self, logs=None):
            if self.tty:
                stream.write("\n")
                stream.flush()

    return Progress()


def _same_file(a, b) -> bool:
    """Whether paths ``a`` and ``b`` name the same file (existing or not)."""
    import os

    if not a or not b:
        return False
    try:
        if os.path.exists(a) and os.path.exists(b):
            return os.path.samefile(a, b)
    except OSError:
        pass
    return os.path.realpath(a) == os.path.realpath(b)


def _refuse_overwriting(path, flag: str, others) -> None:
    """Refuse an output ``path`` that is one of ``others`` ((path, what)):
    the user's data or model file would be overwritten."""
    for other, what in others:
        if _same_file(path, other):
            raise CLIError(f"{flag} {path} is the {what} file: it would be overwritten")


def _isatty(stream) -> bool:
    return bool(getattr(stream, "isatty", lambda: False)())


@contextlib.contextmanager
def _lbfgs_progress(progress):
    """Report each L-BFGS iteration through ``progress`` (a
    ``_progress_callback``), or nothing when it is None."""
    if progress is None:
        yield
        return
    from tfmlp._lbfgs import ITERATION_HOOK

    progress.on_train_begin()

    def report(n, loss):
        progress.on_epoch_end(n - 1, {"loss": loss})

    token = ITERATION_HOOK.set(report)
    try:
        yield
    finally:
        ITERATION_HOOK.reset(token)
        progress.on_train_end()


# ===================================================================== train
def _train_inputs(args: argparse.Namespace):
    """Read and check the table and paths: ``(frame, target column, task)``.

    Runs before TensorFlow is imported, so that mistakes in the data or the
    paths are reported at once.
    """
    from tfmlp._preprocess import PreprocessError, TablePreprocessor

    frame = _read_table(args.data)
    if args.target not in frame.columns:
        raise CLIError(
            f"target column {args.target!r} not found in {args.data}; columns: "
            + ", ".join(str(c) for c in frame.columns)
        )
    _check_writable(args.out, "model file")
    _refuse_overwriting(args.out, "--out", [(args.data, "data")])
    if args.plot is not None:  # (an empty name is refused, not ignored)
        _check_writable(args.plot, "plot", in_place_ok=True)
        others = [(args.out, "--out model"), (args.data, "data")]
        _refuse_overwriting(args.plot, "--plot", others)
        _require_matplotlib()
    frame = _typed_target(args.data, frame, args.target, args.task)
    if len(frame) == 0:
        raise CLIError(f"target column {args.target!r} has no values")
    y = frame[args.target]
    task = args.task or _decide_task(y)
    if task == "classify" and _whole_floats(y):  # 1.0, 2.0 from a missing value
        y = frame[args.target] = y.astype("int64")
    if task == "regress" and not _numeric_column(y):
        raise CLIError(f"target column {args.target!r} is not numeric: cannot regress")
    fractional = _continuous(y) if task == "classify" else None
    if fractional is not None:
        raise CLIError(
            f"target column {args.target!r} holds continuous values (e.g. "
            f"{fractional}): --task classify needs class labels; use "
            "--task regress"
        )
    try:  # every feature column must be encodable (checked on the whole table)
        TablePreprocessor(target=args.target, task=task).fit(frame)
    except PreprocessError as exc:
        raise CLIError(str(exc)) from None
    return frame, y, task


def _train(args: argparse.Namespace) -> int:
    import warnings

    checked = getattr(args, "checked_inputs", None)
    frame, y, task = checked if checked is not None else _train_inputs(args)

    from sklearn.model_selection import train_test_split

    from tfmlp import MLPClassifier, MLPRegressor, save
    from tfmlp._preprocess import PreprocessError, TablePreprocessor

    params = {
        k: v for k, v in vars(args).items() if k in {p[0] for p in _estimator_params()}
    }
    cls = MLPClassifier if task == "classify" else MLPRegressor
    wrong = sorted(set(params) - set(cls._get_param_names()))
    if wrong:
        raise CLIError(
            f"{', '.join('--' + w.replace('_', '-') for w in wrong)} does not apply "
            f"to {cls.__name__} (--task {task})",
            code=2,  # a bad flag, as argparse's usage errors
        )
    if args.test_size > 0:
        stratify = y if task == "classify" and y.value_counts().min() >= 2 else None
        seed = params.get("random_state", 0)
        split = dict(test_size=args.test_size, random_state=seed)
        try:
            try:
                train, test = train_test_split(frame, stratify=stratify, **split)
            except ValueError:  # too few test rows to hold every class
                if stratify is None:
                    raise
                train, test = train_test_split(frame, **split)
        except ValueError as exc:
            raise CLIError(f"cannot split the data: {exc}") from None
    else:
        train, test = frame, None
    pre = TablePreprocessor(target=args.target, task=task)
    try:  # the whole table passed the checks (``_train_inputs``)
        X_train = pre.fit(train, checked=True).transform(train)
    except PreprocessError as exc:
        raise CLIError(str(exc)) from None
    y_train = train[args.target].to_numpy()
    est = cls(**params)
    progress = None
    if args.progress:
        # scikit-learn's verbose lines on the same terminal would land on the bar
        verbose_tty = bool(est.verbose) and _isatty(sys.stdout)
        lbfgs = est.solver == "lbfgs"  # no epochs: its iterations are counted
        progress = _progress_callback(
            est.max_iter, unit="iteration" if lbfgs else "epoch", bar=not verbose_tty
        )
        if not lbfgs:
            est.set_params(callbacks=[progress])
    how = "" if args.task else " (task detected from the target; --task overrides)"
    print(
        f"Training {cls.__name__}{how} on {X_train.shape[0]} rows, "
        f"{X_train.shape[1]} features ({len(pre.columns)} columns)"
        + (f", testing on {len(test)} rows" if test is not None else ""),
        flush=True,
    )
    start = time.perf_counter()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with _lbfgs_progress(progress if est.solver == "lbfgs" else None):
                est.fit(X_train, y_train)
    except ValueError as exc:
        raise CLIError(f"training failed: {exc}") from None
    _print_warnings(caught)
    elapsed = time.perf_counter() - start
    est.set_params(callbacks=None)
    loss = getattr(est, "loss_", float("nan"))
    unit = "iterations" if est.solver == "lbfgs" else "epochs"
    print(f"Fitted in {elapsed:.2f}s, {est.n_iter_} {unit}, final loss {loss:.6f}")
    if test is not None:
        X_test = pre.transform(test)
        _print_report(
            f"Held-out report ({len(test)} rows):",
            _report(task, test[args.target].to_numpy(), est.predict(X_test)),
        )
    est.__dict__[_PRE_ATTR] = pre.to_dict()
    try:
        save(est, args.out)
    except (OSError, ValueError) as exc:
        raise CLIError(f"cannot write model file {args.out}: {exc}") from None
    print(f"Saved model and preprocessing to {args.out}")
    if args.plot:
        _write_plot(est, args.plot)
        print(f"Wrote loss curve to {args.plot}")
    return 0


def _first_sentence(message: str) -> str:
    """A warning's first line, joined with the next one when it ends in ':'."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    if not lines:
        return ""
    if lines[0].endswith(":") and len(lines) > 1:
        return f"{lines[0]} {lines[1]}"
    return lines[0]


def _check_writable(
    path: str, what: str, directory_ok: bool = False, in_place_ok: bool = False
) -> None:
    """Fail before the work when ``path`` cannot be written.

    Parameters
    ----------
    path : str
        The file (or, with ``directory_ok``, folder) to write.
    what : str
        What is written, for the message.
    directory_ok : bool, default=False
        Whether ``path`` may be an existing folder (a SavedModel replaces one).
    in_place_ok : bool, default=False
        Whether ``path`` may be written in place, as ``_write_output`` does
        for a device or pipe (``/dev/stdout``) and for a writable file in a
        folder that takes no new file; a model file is always a new file
        renamed over the old one.
    """
    import os
    import stat

    if not path:
        raise CLIError(f"the {what} path is empty")
    if os.path.isdir(path) and not directory_ok:
        raise CLIError(f"{what} {path} is a directory")
    if path.endswith(("/", os.sep)) and not directory_ok:
        raise CLIError(f"{what} {path} names a directory (it ends with a separator)")
    if os.path.exists(path) and not os.path.isdir(path) and not in_place_ok:
        if not stat.S_ISREG(os.stat(path).st_mode):  # /dev/null, a pipe
            raise CLIError(f"{what} {path} exists and is not a regular file")
    from tfmlp._files import folder_of, through_link

    target = through_link(path)  # (a symbolic link is written through)
    parent = folder_of(path)
    if os.path.exists(parent) and not os.path.isdir(parent):
        raise CLIError(f"cannot write {what} {path}: {parent} is a file, not a folder")
    if not os.path.isdir(parent):
        raise CLIError(f"cannot write {what} {path}: folder {parent} does not exist")
    # written in place: a device (/dev/null), a pipe, or a writable file in
    # a folder that takes no new file
    in_place = in_place_ok and os.path.exists(target) and os.access(target, os.W_OK)
    if not os.access(parent, os.W_OK) and not in_place:
        raise CLIError(f"cannot write {what} {path}: folder {parent} is not writable")


def _require_matplotlib():
    try:
        import matplotlib
    except ImportError:
        raise CLIError('--plot needs matplotlib: pip install "tfmlp[plot]"') from None
    return matplotlib


def _write_plot(est, path) -> None:
    matplotlib = _require_matplotlib()
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from tfmlp._plotting import plot_loss_curve

    ax = plot_loss_curve(est)
    # the format its extension names (.svg, .pdf...), else PNG; not pgf,
    # which needs a LaTeX installation
    kind = os.path.splitext(path)[1][1:].lower()
    if kind == "pgf" or kind not in ax.figure.canvas.get_supported_filetypes():
        kind = "png"
    try:
        _write_output(
            path,
            lambda f: ax.figure.savefig(f, format=kind, dpi=100, bbox_inches="tight"),
        )
    except OSError as exc:
        raise CLIError(f"cannot write plot {path}: {_os_reason(exc)}") from None
    except ValueError as exc:
        raise CLIError(f"cannot write plot {path}: {exc}") from None
    finally:
        plt.close(ax.figure)


def _write_output(path, write) -> None:
    """``write(binary file)`` into ``path`` through a temporary file renamed
    over it, so a failed write (a full disk) leaves an earlier file whole; a
    pipe or device (``/dev/stdout``), or a file whose directory takes no new
    files (the temporary one), is written in place."""
    import stat

    from tfmlp._files import atomic_write

    path = os.fspath(path)
    if os.path.exists(path) and not stat.S_ISREG(os.stat(path).st_mode):
        with open(path, "wb") as f:
            write(f)
        return
    try:
        atomic_write(path, write)
    except PermissionError:  # the directory refused the temporary file
        if not os.path.isfile(path):
            raise
        with open(path, "wb") as f:
            write(f)


def _os_reason(exc: OSError) -> str:
    """An OSError's reason without the path it may repeat."""
    return os.strerror(exc.errno) if exc.errno else str(exc)


def _model_columns(est, pre) -> set:
    """The table columns a model reads: its preprocessing's (``pre``)
    features and target, else the feature names it was fitted with."""
    if pre is not None:
        return {c["name"] for c in pre.columns} | {pre.target}
    return {str(n) for n in getattr(est, "feature_names_in_", [])}


def _target_names(pre) -> set:
    """The training target's name, for a model with stored preprocessing."""
    return set() if pre is None else {pre.target}


# ================================================================== predict
def _predict(args: argparse.Namespace) -> int:
    import numpy as np

    est = _fitted_model(args.model)
    if args.proba and not hasattr(est, "predict_proba"):
        raise CLIError("--proba needs a classifier model", code=2)
    if args.out is not None:  # (an empty name is refused, not stdout)
        _check_writable(args.out, "predictions file", in_place_ok=True)
        _refuse_overwriting(
            args.out, "--out", [(args.data, "data"), (args.model, "model")]
        )
    pre = _preprocessing_of(est)
    frame = _read_table(args.data, keep=_model_columns(est, pre))
    if pre is not None and pre.target in frame.columns:
        frame = frame.drop(columns=[pre.target])
    X = _features(est, frame, pre, args.data)
    import pandas as pd  # (there: _read_table named the extra if missing)

    out = pd.DataFrame(index=range(len(frame)))
    if args.proba:
        proba = est.predict_proba(X)
        if len(est.classes_) == 1:  # (scikit-learn's two columns: not labelled)
            proba = np.ones((len(frame), 1))
        for i, cls in enumerate(est.classes_):
            out[f"proba_{cls}"] = proba[:, i]
    prediction = est.predict(X)
    if hasattr(prediction, "toarray"):  # multilabel fitted on a sparse y
        prediction = prediction.toarray()
    if prediction.ndim == 1:
        out["prediction"] = prediction
    else:  # multilabel indicators or several regression outputs: a column each
        names = getattr(est, "classes_", range(prediction.shape[1]))
        for k, name in enumerate(names):
            out[f"prediction_{name}"] = prediction[:, k]
    if args.out:
        from pandas.io.common import infer_compression

        # a file object: pandas takes the compression from the name only
        # when given the name (preds.csv.gz)
        compression = infer_compression(args.out, "infer")
        try:
            _write_output(
                args.out,
                lambda f: out.to_csv(f, index=False, compression=compression),
            )
        except OSError as exc:
            raise CLIError(f"cannot write {args.out}: {_os_reason(exc)}") from None
        except ValueError as exc:
            raise CLIError(f"cannot write {args.out}: {exc}") from None
        print(f"Wrote {len(out)} predictions to {args.out}")
    else:
        out.to_csv(sys.stdout, index=False)
    return 0


# ================================================================= evaluate
def _evaluate(args: argparse.Namespace) -> int:
    import numpy as np
    from sklearn.base import is_classifier

    est = _fitted_model(args.model)
    pre = _preprocessing_of(est)
    frame = _read_table(args.data, keep=_model_columns(est, pre))
    outputs = _target_columns(est)
    if outputs > 1:  # multilabel / multi-output: one target column cannot score it
        raise CLIError(
            f"evaluate scores one --target column; this model predicts {outputs} "
            "outputs (multilabel or multi-output): score it in Python "
            "(est.score(X, Y))"
        )
    target = args.target
    if target is None:
        target = pre.target if pre is not None else None
    if target is None:
        raise CLIError("--target is required for this model")
    if target not in frame.columns:
        raise CLIError(f"target column {target!r} not found in {args.data}")
    if target in _model_columns(est, pre) - _target_names(pre):
        raise CLIError(
            f"target column {target!r} is one of the model's input features; "
            "--target names the label column (default: the training target)"
        )
    frame = frame[frame[target].notna()]
    if len(frame) == 0:
        raise CLIError(f"target column {target!r} has no values")
    X = _features(est, frame.drop(columns=[target]), pre, args.data)
    task = "classify" if is_classifier(est) else "regress"
    if task == "regress" and not _numeric_column(frame[target]):
        raise CLIError(
            f"target column {target!r} is not numeric, but the model is a regressor"
        )
    y_true = frame[target].infer_objects()
    if task == "classify":
        y_true = _labels_like(est.classes_, args.data, y_true)
        _check_known_labels(est.classes_, np.asarray(y_true), target)
    _print_report(
        f"Report on {args.data} ({len(frame)} rows):",
        _report(task, np.asarray(y_true), est.predict(X)),
    )
    return 0


def _check_known_labels(classes, y_true, target: str) -> None:
    """Refuse a label column with none of the model's classes (scoring it
    would report accuracy 0, or fail on mixed label types)."""
    import numpy as np

    known = {c.item() if isinstance(c, np.generic) else c for c in classes}
    values = y_true.tolist()
    if not any(v in known for v in values):
        shown = ", ".join(repr(c) for c in list(known)[:10])
        raise CLIError(
            f"target column {target!r} holds none of the model's classes "
            f"({shown}{', ...' if len(known) > 10 else ''}, e.g. not "
            f"{values[0]!r}): is it the label column the model was trained on?"
        )


def _target_columns(est) -> int:
    """How many target columns the model predicts (``n_outputs_`` counts a
    multiclass model's output units, one per class, for one column)."""
    from sklearn.base import is_classifier

    if not is_classifier(est):
        return est.n_outputs_
    binarizer = getattr(est, "_label_binarizer", None)
    y_type = getattr(binarizer, "y_type_", "")
    return est.n_outputs_ if y_type.startswith("multilabel") else 1


def _typed_target(path: str, frame, target: str, task):
    """The rows with a target value, the target typed as the file writes it:
    bools or integers that a missing value left as objects are inferred
    again, and whole numbers written with leading zeros (zip codes, ids)
    stay text labels unless ``--task regress``."""
    frame = frame[frame[target].notna()].copy()
    y = frame[target].infer_objects()
    if task != "regress" and _numeric_column(y):
        raw = _text_column(path, target)
        if raw is not None:
            text = raw.loc[frame.index].str.strip()
            if text.str.fullmatch(r"[+-]?0\d+").any():
                y = text
    frame[target] = y
    return frame


def _whole_floats(y) -> bool:
    import numpy as np
    import pandas as pd

    values = y.to_numpy() if pd.api.types.is_float_dtype(y) else None
    return (
        values is not None
        and _continuous(y) is None
        and bool((np.abs(values) <= 2**53).all())  # exact as integers
    )


def _labels_like(classes, path: str, y):
    """True labels comparable with the model's ``classes_``: text classes
    compare with the file's text (a column of digits that pandas reads as
    numbers, or with leading zeros), numeric ones with numbers."""
    import numpy as np
    import pandas as pd

    kind = np.asarray(classes).dtype.kind
    if kind in "OUS":  # the reading of the labels that matches most classes
        return max(_text_readings(path, y), key=lambda t: np.isin(t, classes).sum())
    if not _numeric_column(y):
        converted = pd.to_numeric(y, errors="coerce")
        if converted.notna().all():
            return converted.to_numpy()
    return y.to_numpy()


def _text_readings(path: str, y) -> list:
    """Ways to read label column ``y`` as text: as pandas typed it, as the
    file writes it (stripped or not), and whole numbers as integers (a
    missing value makes pandas read ``1`` as ``1.0``)."""
    import numpy as np

    readings = []  # the file's own text first: it wins ties
    raw = _text_column(path, y.name)
    if raw is not None:
        raw = raw.loc[y.index]
        readings += [raw.to_numpy(dtype=object), raw.str.strip().to_numpy(dtype=object)]
    readings.append(y.astype(str).to_numpy(dtype=object))
    if _whole_floats(y):
        readings.append(y.astype(np.int64).astype(str).to_numpy(dtype=object))
    return readings


def _text_column(path: str, column: str):
    """A CSV/TSV file's column as written (strings; None for Parquet, whose
    columns keep their types, or if it cannot be read so)."""
    table = _text_columns(path, [column])
    return None if table is None else table[column]


def _text_columns(path: str, columns: list):
    """CSV/TSV columns as the file writes them (a frame of strings; None for
    Parquet, whose columns keep their types, or if they cannot be read so)."""
    import pandas as pd

    sep = _separator(path)
    if sep is None:
        return None
    try:
        return pd.read_csv(
            **_text_source(path), sep=sep, usecols=list(columns), dtype=str,
            index_col=False,
        )  # fmt: skip
    except Exception:  # the typed read succeeded; fall back to it
        return None


def _number_like(series) -> bool:
    """Numbers or booleans: what scikit-learn's input check reads as numbers."""
    import pandas as pd

    return pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series)


def _numeric_column(series) -> bool:
    import pandas as pd

    api = pd.api.types
    return api.is_numeric_dtype(series) and not api.is_bool_dtype(series)


# =================================================================== export
def _export(args: argparse.Namespace) -> int:
    import tfmlp

    est = _fitted_model(args.model)
    try:
        _check_writable(args.out, "artifact", args.format == "savedmodel")
        _refuse_overwriting(args.out, "--out", [(args.model, "model")])
    except CLIError as exc:
        raise CLIError(f"export failed: {exc}") from None
    try:
        path = tfmlp.export(est, args.out, format=args.format)
    except ImportError as exc:
        raise CLIError(str(exc).splitlines()[0]) from None
    except OSError as exc:  # name the user's path, not a temporary one
        reason = exc.strerror or str(exc).splitlines()[0]
        raise CLIError(f"export failed: cannot write {args.out}: {reason}") from None
    except ValueError as exc:
        raise CLIError(f"export failed: {str(exc).splitlines()[0]}") from None
    print(f"Wrote {args.format} to {path}")
    if _preprocessing_of(est) is not None:
        print(
            "note: the artifact takes the preprocessed features (see `tfmlp info`), "
            "not the raw table columns"
        )
    return 0


# ===================================================================== info
def _info(args: argparse.Namespace) -> int:
    notes: list[str] = []
    est = _load_model(args.model, notes)
    pre = _preprocessing_of(est)
    print(f"{type(est).__name__} ({args.model})")
    defaults = type(est)().get_params()
    changed = {
        k: v
        for k, v in est.get_params().items()
        if k not in _SKIPPED_PARAMS and repr(v) != repr(defaults.get(k))
    }
    print(
        "parameters (non-default): "
        + (", ".join(f"{k}={v!r}" for k, v in changed.items()) or "none")
    )
    _print_custom_network(est, notes)
    if hasattr(est, "classes_"):
        print(f"classes: {', '.join(str(c) for c in est.classes_)}")
    if pre is not None:
        print(f"target: {pre.target} (task: {pre.task})")
        print(f"columns ({len(pre.columns)}):")
        for col in pre.columns:
            if col["kind"] == "numeric":
                desc = f"numeric, mean {col['mean']:.4g}, scale {col['scale']:.4g}"
            else:
                desc = f"one-hot over {len(col['categories'])} categories"
            print(f"  {col['name']}: {desc}")
    print(f"features: {getattr(est, 'n_features_in_', '?')}")
    names = pre.feature_names if pre is not None else None
    if names is None and hasattr(est, "feature_names_in_"):
        names = [str(n) for n in est.feature_names_in_]
    if names:  # the model's (and its exports') input columns, in order
        print(f"  in order: {', '.join(names)}")
    if hasattr(est, "n_iter_"):
        curve = getattr(est, "loss_curve_", None)
        unit = "iterations" if est.solver == "lbfgs" else "epochs"
        # no loss_ where a fit was interrupted before its first epoch ended
        loss = getattr(est, "loss_", float("nan"))
        line = f"training: {est.n_iter_} {unit}, final loss {loss:.6f}"
        if curve:
            line += f", first loss {curve[0]:.6f}, best loss {min(curve):.6f}"
        print(line)
        scores = getattr(est, "validation_scores_", None)
        if scores:
            print(f"validation: best score {max(scores):.4f}")
    else:
        print("training: not fitted")
    return 0


def _print_custom_network(est, notes: list[str]) -> None:
    """A model fitted with a ``hidden_stack`` (its ``hidden_layer_sizes`` and
    ``activation`` did not shape the network): the stack the file names
    (``notes``: loading's warnings; the file cannot hold the code) and,
    where the stack is at hand, the fitted layers."""
    import re

    said = [m for n in notes if (m := re.search(r"hidden_stack=(.*?), which", n))]
    stack = getattr(est, "hidden_stack", None)
    keras_fitted = est.__dict__.get("_keras_weights") is not None
    builder = est.__dict__.get("_fitted_stack") or est._stack_builder()
    if said or (keras_fitted and not callable(builder)):
        # (unnamed: hidden_stack was set back to None before saving)
        name = f"hidden_stack={said[0].group(1)}" if said else "a custom hidden_stack"
        print(
            f"network: fitted with {name}, code the file does not hold: tfmlp "
            "predict/evaluate/export cannot rebuild it; in Python, "
            "tfmlp.load(path, hidden_stack=...)"
        )
    if stack is None:
        return
    name = getattr(stack, "__qualname__", None) or type(stack).__name__
    print(
        f"network: hidden_stack={name} (hidden_layer_sizes and activation are not used)"
    )
    model = getattr(est, "model_", None) if hasattr(est, "n_iter_") else None
    if model is None:
        return
    layers = []
    for layer in model.layers:
        kind = type(layer).__name__
        if kind == "InputLayer":
            continue
        units = getattr(layer, "units", None)
        layers.append(f"{kind}({units})" if units is not None else kind)
    print(f"  layers: {' -> '.join(layers)}")


# ==================================================================== parser
class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (and exit status 2)."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def build_parser(with_estimator_flags: bool = False) -> argparse.ArgumentParser:
    parser = _Parser(
        prog="tfmlp",
        description="scikit-learn's MLP estimators, trained by TensorFlow.",
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    demo = sub.add_parser(
        "demo",
        help="fit scikit-learn's and tfmlp's MLPClassifier on digits side by side",
        description=(
            "Fit scikit-learn's and tfmlp's MLPClassifier on the digits data that "
            "ships with scikit-learn and print accuracy, fit time and the largest "
            "weight difference. Example: tfmlp demo --solver sgd"
        ),
    )
    demo.add_argument("--solver", default="adam", choices=["adam", "sgd", "lbfgs"])
    demo.add_argument("--max-iter", type=_positive_int, default=50)
    demo.add_argument(
        "--random-state",
        type=_bounded(int, lambda v: 0 <= v < 2**32, "an integer in [0, 2**32)"),
        default=0,
    )
    demo.set_defaults(func=_demo)

    fmt = argparse.RawDescriptionHelpFormatter
    train = sub.add_parser(
        "train",
        help="fit an MLP on a CSV/Parquet table and save it with its preprocessing",
        formatter_class=fmt,
        description=(
            "Read a CSV or Parquet table, standardise numeric columns and one-hot "
            "encode categorical ones, fit MLPClassifier or MLPRegressor, print a "
            "held-out report and save model + preprocessing (no pickle).\n\n"
            "example:\n  tfmlp train iris.csv --target species --hidden 32,16 "
            "--max-iter 300 --early-stopping --random-state 0 --out iris.tfmlp "
            "--plot loss.png"
        ),
    )
    train.add_argument("data", help="CSV (.csv, .tsv) or Parquet (.parquet) file")
    train.add_argument(
        "--target", required=True, action=_Once, help="the column to predict"
    )
    train.add_argument(
        "--task",
        choices=["classify", "regress"],
        default=None,
        help="default: classify for text/bool/few-integer targets, else regress",
    )
    train.add_argument(
        "--test-size",
        type=_test_size,
        default=0.2,
        help="fraction held out for the report (0 to train on everything)",
    )
    train.add_argument("--out", required=True, help="model file to write (.tfmlp)")
    train.add_argument(
        "--plot",
        default=None,
        help="write the loss curve as PNG (or as .svg, .pdf, ... by its extension)",
    )
    train.add_argument(
        "--no-progress",
        dest="progress",
        action="store_false",
        help="do not print per-epoch progress on stderr",
    )
    if with_estimator_flags:
        _add_estimator_flags(train)
    else:
        train.epilog = "(estimator flags are listed by `tfmlp train --help`)"
    train.set_defaults(func=_train)

    predict = sub.add_parser(
        "predict",
        help="predict a table with a trained model",
        formatter_class=fmt,
        description=(
            "Write a CSV whose column `prediction` holds the predicted labels or "
            "values; --proba adds one probability column per class before it.\n\n"
            "example:\n  tfmlp predict iris.tfmlp new.csv --proba --out preds.csv"
        ),
    )
    predict.add_argument("model", help="model file written by `tfmlp train`")
    predict.add_argument("data", help="CSV or Parquet file")
    predict.add_argument("--out", default=None, help="CSV to write (default stdout)")
    predict.add_argument(
        "--proba", action="store_true", help="add class probability columns"
    )
    predict.set_defaults(func=_predict)

    evaluate = sub.add_parser(
        "evaluate",
        help="score a trained model on a labelled table",
        formatter_class=fmt,
        description=(
            "Print accuracy/F1 (classifier) or R2/MAE (regressor).\n\n"
            "example:\n  tfmlp evaluate iris.tfmlp test.csv --target species"
        ),
    )
    evaluate.add_argument("model", help="model file written by `tfmlp train`")
    evaluate.add_argument("data", help="CSV or Parquet file")
    evaluate.add_argument(
        "--target",
        default=None,
        action=_Once,
        help="label column (default: the training target)",
    )
    evaluate.set_defaults(func=_evaluate)

    export = sub.add_parser(
        "export",
        help="write a serving artifact (SavedModel, Keras, ONNX, TFLite)",
        formatter_class=fmt,
        description=(
            "Export the network with tfmlp.export; the artifact takes the "
            "preprocessed features.\n\n"
            "example:\n  tfmlp export iris.tfmlp --format onnx --out iris.onnx"
        ),
    )
    export.add_argument("model", help="model file")
    export.add_argument(
        "--format", required=True, choices=["savedmodel", "keras", "onnx", "tflite"]
    )
    export.add_argument("--out", required=True, help="destination path")
    export.set_defaults(func=_export)

    info = sub.add_parser(
        "info",
        help="show a model's parameters, classes, features and training curve",
        formatter_class=fmt,
        description="Describe a model file.\n\nexample:\n  tfmlp info iris.tfmlp",
    )
    info.add_argument("model", help="model file")
    info.set_defaults(func=_info)
    return parser


_SUBCOMMANDS = ("demo", "train", "predict", "evaluate", "export", "info")
# the arguments that ``_train_inputs`` reads (checked before TensorFlow loads)
_EARLY_FIELDS = ("data", "target", "task", "test_size", "out", "plot")


def main(argv: list[str] | None = None) -> int:
    """Run the ``tfmlp`` command line; returns the exit code.

    Parameters
    ----------
    argv : list of str, optional
        The arguments after the program name (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        0 on success, 1 for an error, 2 for a usage error (argparse exits
        with ``SystemExit`` for those and for ``--help``), 130 when
        interrupted outside training (a Ctrl-C during ``train`` ends training
        at the end of the epoch and saves the model, as the estimators keep
        an interrupted fit: 0).
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    first = next((a for a in argv if not a.startswith("-")), None)
    prog = f"tfmlp {first}" if first in _SUBCOMMANDS else "tfmlp"
    stdout = sys.stdout
    if first != "predict":  # their work (a saved model, an export) is not
        # their output: a reader that goes away (`| head`) stops the output
        sys.stdout = _OutputMayEnd(stdout)
    try:
        return _run(argv, first)
    except CLIError as exc:  # one line, whatever a message it quotes holds
        lines = str(exc).strip().splitlines() or [""]
        print(f"{prog}: error: {lines[0]}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `tfmlp predict ... | head`
        _silence_stdout()
        return 0
    except Exception as exc:  # anything not anticipated: one line, no traceback
        if _debug():
            raise
        print(f"{prog}: error: {_describe(exc)}", file=sys.stderr)
        return 1
    finally:
        sys.stdout = stdout


class _OutputMayEnd:
    """A stdout whose reader may go away: writes then stop, the work goes on."""

    def __init__(self, stream):
        self._stream = stream
        self._gone = False

    def write(self, text: str) -> int:
        if not self._gone:
            try:
                return self._stream.write(text)
            except BrokenPipeError:
                self._end()
        return len(text)

    def flush(self) -> None:
        if not self._gone:
            try:
                self._stream.flush()
            except BrokenPipeError:
                self._end()

    def _end(self) -> None:
        self._gone = True
        _silence_stdout()

    def __getattr__(self, name):
        return getattr(self._stream, name)


def _run(argv: list[str], first: str | None) -> int:
    """Parse ``argv`` and run its subcommand (errors are raised)."""
    checked = None
    if first == "train" and not {"-h", "--help"} & set(argv):
        # Only `train` needs the estimator flags (and so TensorFlow). Its data
        # and paths are checked first, so that their errors come at once.
        known, extras = build_parser().parse_known_args(argv)
        if not _data_may_be_a_flag_value(argv, known.data, extras):
            checked = _train_inputs(known), known
    if first == "train":
        _import_tensorflow_quietly()
    args = build_parser(with_estimator_flags=first == "train").parse_args(argv)
    if checked is not None and _same_fields(checked[1], args, _EARLY_FIELDS):
        args.checked_inputs = checked[0]
    return args.func(args)


def _data_may_be_a_flag_value(argv: list[str], data: str, extras: list[str]) -> bool:
    """Whether the early parse may have taken an estimator flag's value for DATA.

    The early parser does not know the estimator flags (they need TensorFlow),
    so in ``train --hidden 8 data.csv`` it reads ``8`` as DATA. That can only
    happen to a token that follows an unknown option written without ``=``.
    """
    unknown = {a for a in extras if a.startswith("-") and "=" not in a}
    return any(
        token == data and argv[i - 1] in unknown
        for i, token in enumerate(argv)
        if i > 0
    )


def _same_fields(a: argparse.Namespace, b: argparse.Namespace, fields) -> bool:
    """Whether two parses agree on ``fields``."""
    return all(getattr(a, f, None) == getattr(b, f, None) for f in fields)


def _describe(exc: BaseException) -> str:
    """One line for an unexpected exception: its type and first message line."""
    text = str(exc).strip()
    reason = text.splitlines()[0] if text else ""
    if isinstance(exc, MemoryError):
        return "out of memory" + (f": {reason}" if reason else "")
    if isinstance(exc, (ValueError, TypeError, OSError)) and reason:
        return reason
    name = type(exc).__name__
    hint = f" (set {DEBUG_ENV}=1 for the traceback)"
    return (f"{name}: {reason}" if reason else name) + hint


def _silence_stdout() -> None:
    """Point stdout at the null device (its reader has gone away)."""
    import os

    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # pragma: no cover
        pass


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
