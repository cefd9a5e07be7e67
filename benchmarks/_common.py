"""Shared helpers for the benchmark scripts (data, timing, subprocess workers, table).

Every benchmark script in this folder imports this module as ``_common``; the
folder is on ``sys.path`` both when a script is run directly
(``python benchmarks/bench_mnist.py``) and when ``benchmarks/run.py`` imports
the scripts.
"""

from __future__ import annotations

import gzip
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
MNIST_DIR = Path(
    os.environ.get("TFMLP_MNIST_DIR", REPO.parent / "shared" / "data" / "mnist")
)
CACHE_DIR = Path(
    os.environ.get("TFMLP_BENCH_CACHE", Path(tempfile.gettempdir()) / "tfmlp-bench")
)
RESULT_MARKER = "BENCH_RESULT "
BIG = 10**9  # n_iter_no_change that never triggers

COLUMNS = (
    "case",
    "sklearn_s",
    "tfmlp_s",
    "ratio",
    "target",
    "met",
    "acc_sklearn",
    "acc_tfmlp",
    "notes",
)


# --------------------------------------------------------------------------- data

MNIST_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}


def _read_idx(path: Path) -> np.ndarray:
    """Parse a gzipped IDX file (the MNIST format) with NumPy."""
    with gzip.open(path, "rb") as f:
        data = f.read()
    if data[:2] != b"\x00\x00" or data[2] != 0x08:
        raise ValueError(f"{path} is not an unsigned-byte IDX file")
    ndim = data[3]
    shape = tuple(
        int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)
    )
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def load_mnist(dtype=np.float32, n_train: int | None = None, n_test: int | None = None):
    """MNIST as ``(X_train, y_train, X_test, y_test)``: pixels / 255 in ``dtype``.

    Reads the four gzipped IDX files from ``../shared/data/mnist/`` (override
    with ``TFMLP_MNIST_DIR``); nothing is downloaded.
    """
    paths = [MNIST_DIR / name for pair in MNIST_FILES.values() for name in pair]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise FileNotFoundError(
            "MNIST files not found: "
            + ", ".join(missing)
            + ". Put the four gzipped IDX files (train-images-idx3-ubyte.gz, "
            "train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, "
            "t10k-labels-idx1-ubyte.gz) there or set TFMLP_MNIST_DIR; the "
            "benchmarks never download data."
        )
    out = []
    for split, n in (("train", n_train), ("test", n_test)):
        img_name, lbl_name = MNIST_FILES[split]
        images = _read_idx(MNIST_DIR / img_name)
        labels = _read_idx(MNIST_DIR / lbl_name)
        images = images.reshape(images.shape[0], -1)[:n]
        X = images.astype(dtype) / np.asarray(255, dtype=dtype)
        out += [X, labels[:n].astype(np.int64)]
    return tuple(out)


def cached_classification(n_samples: int, n_features: int = 100, n_classes: int = 10):
    """Paths of ``(X.npy, y.npy)`` for the large case, generated once and cached.

    ``make_classification(n_samples, n_features, n_informative=50,
    n_classes=n_classes, random_state=0)`` in float32, stored under
    ``TFMLP_BENCH_CACHE`` (default ``<tmp>/tfmlp-bench``) so that worker
    subprocesses load the same data without paying for (or measuring the
    memory of) generating it.
    """
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    stem = f"classif_{n_samples}x{n_features}_c{n_classes}_s0"
    x_path, y_path = CACHE_DIR / f"{stem}_X.npy", CACHE_DIR / f"{stem}_y.npy"
    if not (x_path.is_file() and y_path.is_file()):
        from sklearn.datasets import make_classification

        X, y = make_classification(
            n_samples=n_samples,
            n_features=n_features,
            n_informative=50,
            n_classes=n_classes,
            random_state=0,
        )
        tmp_x, tmp_y = x_path.with_suffix(".tmp.npy"), y_path.with_suffix(".tmp.npy")
        np.save(tmp_x, X.astype(np.float32))
        np.save(tmp_y, y.astype(np.int64))
        del X, y
        os.replace(tmp_x, x_path)
        os.replace(tmp_y, y_path)
    return x_path, y_path


# --------------------------------------------------------------------------- memory


def peak_rss_mb() -> float:
    """Peak resident set size of this process in MB (VmHWM, else ru_maxrss)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 1024 if sys.platform != "darwin" else rss / 2**20


def current_rss_mb() -> float:
    """Current resident set size of this process in MB (VmRSS), NaN if unknown."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


# --------------------------------------------------------------------------- timing


def positive_int(text: str) -> int:
    """An ``argparse`` type: an integer of at least 1 (else a usage error)."""
    import argparse

    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def timed(fn: Callable, *args, **kwargs) -> tuple[float, object]:
    """``(seconds, result)`` of one call, with ConvergenceWarnings silenced."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0 = time.perf_counter()
        result = fn(*args, **kwargs)
        return time.perf_counter() - t0, result


def median(values: Iterable[float]) -> float:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else float("nan")


def spread(values: Iterable[float]) -> str:
    """'min-max' of a few repeats, for the notes."""
    values = [v for v in values if v is not None]
    if not values:
        return "-"
    return f"{fmt_num(min(values))}-{fmt_num(max(values))}"


def epoch_time(make_estimator: Callable, X, y, k: int) -> dict:
    """Steady-state seconds per epoch from one ``fit(max_iter=k)``.

    Both scikit-learn and tfmlp call ``self._update_no_improvement_count``
    exactly once at the end of every epoch. That method is wrapped on the
    estimator instance (nothing else changes: no callbacks, same code path) to
    take a timestamp; the intervals between consecutive timestamps are whole
    epochs 2..k, each with its per-epoch bookkeeping, and their median is the
    figure. Everything paid once per fit or once per process (validation,
    weight initialisation, copying data into tensors, tracing, XLA
    compilation) lands before the first timestamp and is returned separately
    as ``first`` (seconds from the start of ``fit`` to the end of epoch 1).
    The median of several epochs shrugs off a burst of load on a shared
    machine, where differencing two fits' totals does not. The estimator must
    not stop early (``tol=0``, huge ``n_iter_no_change``). If the hook is
    missing, falls back to :func:`epoch_time_by_difference`.
    """
    est = make_estimator(k)
    hook = getattr(est, "_update_no_improvement_count", None)
    stamps: list[float] = []
    if hook is not None:

        def stamped(*args, **kwargs):
            stamps.append(time.perf_counter())
            return hook(*args, **kwargs)

        est._update_no_improvement_count = stamped
    # tfmlp trains several epochs per call where nothing watches them
    # (``_train_epochs``): their timestamps come together after the call, so
    # such fits are timed by the difference of two fits instead
    per_call: list[int] = []
    train = getattr(est, "_train_epochs", None)
    if train is not None:

        def counted(*args, **kwargs):
            out = train(*args, **kwargs)
            per_call.append(len(out))
            return out

        est._train_epochs = counted
    t0 = time.perf_counter()
    fit_s, est = timed(est.fit, X, y)
    if est.n_iter_ != k:
        raise RuntimeError(f"the fit stopped early: n_iter_ {est.n_iter_} != {k}")
    if len(stamps) != k or any(n > 1 for n in per_call):
        return epoch_time_by_difference(make_estimator, X, y, k)
    intervals = np.diff(stamps).tolist()
    return {
        "epoch": median(intervals),
        "intervals": intervals,
        "first": stamps[0] - t0,
        "fit": fit_s,
        "method": "per-epoch timestamps",
    }


def epoch_time_by_difference(make_estimator: Callable, X, y, k: int) -> dict:
    """Fallback: ``(fit(max_iter=k) - fit(max_iter=1)) / (k - 1)``.

    Per-fit costs cancel in the difference; an untimed first ``fit(max_iter=1)``
    absorbs the once-per-process ones (tracing, XLA compilation). A difference
    that noise makes negative is returned as is (the row then has no ratio).
    """
    first, est = timed(make_estimator(1).fit, X, y)
    del est
    t1, est = timed(make_estimator(1).fit, X, y)
    n1 = est.n_iter_
    del est  # nothing of the first fit stays alive during the second
    tk, est = timed(make_estimator(k).fit, X, y)
    if (n1, est.n_iter_) != (1, k):
        raise RuntimeError(f"a fit stopped early: n_iter_ {n1} and {est.n_iter_}")
    return {
        "epoch": (tk - t1) / (k - 1),
        "intervals": [],
        "first": first,
        "fit": tk,
        "method": "difference of fits",
    }


def cpu_only() -> str:
    """Hide GPUs from TensorFlow in this process (the CPU cases); '' or a warning.

    Worker subprocesses of the CPU cases get ``CUDA_VISIBLE_DEVICES=-1``
    instead (``run_worker(..., cpu=True)``); only ``bench_gpu`` uses a GPU.
    """
    import tensorflow as tf

    try:
        tf.config.set_visible_devices([], "GPU")
    except (RuntimeError, ValueError):
        if tf.config.get_visible_devices("GPU"):
            return "GPU visible: TensorFlow was initialised before hiding it"
    return ""


# --------------------------------------------------------------------------- workers


def worker_main(tasks: dict[str, Callable[..., dict]]) -> bool:
    """If argv is ``--worker TASK JSON``, run ``tasks[TASK](**JSON)`` and print it.

    Returns False when the script was not started as a worker.
    """
    if len(sys.argv) < 2 or sys.argv[1] != "--worker":
        return False
    name, kwargs = sys.argv[2], json.loads(sys.argv[3])
    result = tasks[name](**kwargs)
    print(RESULT_MARKER + json.dumps(result), flush=True)
    return True


def run_worker(
    script: str | Path,
    task: str,
    *,
    cpu: bool = True,
    timeout: float = 1800,
    env: dict | None = None,
    **kwargs,
) -> dict:
    """Run ``task`` of ``script`` in a fresh Python process and return its dict.

    A fresh process means cold TensorFlow trace and XLA caches and a peak RSS
    that belongs to this one measurement. ``cpu=True`` hides GPUs from it;
    ``env`` adds environment variables.
    """
    cmd = [sys.executable, str(script), "--worker", task, json.dumps(kwargs)]
    env = {**os.environ, **(env or {})}
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if cpu:
        env["CUDA_VISIBLE_DEVICES"] = "-1"
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(RESULT_MARKER):
            return json.loads(line[len(RESULT_MARKER) :])
    raise RuntimeError(
        f"benchmark worker {Path(script).name}:{task} failed "
        f"(exit {proc.returncode}):\n{proc.stderr[-4000:]}"
    )


def import_library(lib: str) -> float:
    """Import what a fit of ``lib`` needs; returns the seconds it took.

    For tfmlp that is its estimators and TensorFlow (``import tfmlp`` alone
    imports TensorFlow lazily, on first use), so that timed fits measure
    training, not imports.
    """
    t0 = time.perf_counter()
    if lib == "sklearn":
        from sklearn.neural_network import MLPClassifier  # noqa: F401
    else:
        import tensorflow  # noqa: F401

        from tfmlp import MLPClassifier  # noqa: F401, F811
    return time.perf_counter() - t0


def tf_runtime_rss() -> dict:
    """Worker task: RSS of NumPy alone, then of TensorFlow imported and started."""
    base = current_rss_mb()
    t0 = time.perf_counter()
    import tensorflow as tf

    import_s = time.perf_counter() - t0
    float(tf.reduce_sum(tf.ones((4, 4))))
    return {
        "numpy_rss_mb": base,
        "tf_rss_mb": current_rss_mb(),
        "tf_peak_mb": peak_rss_mb(),
        "tf_import_s": import_s,
    }


# --------------------------------------------------------------------------- rows


def _finite(v):
    return None if v is None or not np.isfinite(v) else float(v)


def make_row(
    case: str,
    sklearn_s,
    tfmlp_s,
    target_ratio: float | None,
    *,
    unit: str = "s",
    acc_sklearn=None,
    acc_tfmlp=None,
    acc_tol_pp: float | None = None,
    notes: str = "",
    met=None,
    target: str | None = None,
    timed: bool = True,
) -> dict:
    """One table row; ``ratio`` is sklearn / tfmlp (> 1 means tfmlp is faster;
    none for a row that is not ``timed``, such as memory)."""
    sklearn_s, tfmlp_s = _finite(sklearn_s), _finite(tfmlp_s)
    ratio = None
    if timed and sklearn_s is not None and tfmlp_s is not None and tfmlp_s > 0:
        ratio = sklearn_s / tfmlp_s
    if target is None:
        target = f">= {target_ratio:g}x" if target_ratio is not None else "-"
    if met is None and target_ratio is not None and ratio is not None:
        met = bool(ratio >= target_ratio)
    if acc_tol_pp is not None and acc_sklearn is not None and acc_tfmlp is not None:
        acc_ok = abs(acc_sklearn - acc_tfmlp) * 100 <= acc_tol_pp
        target += f", |d acc| <= {acc_tol_pp:g} pp"
        met = acc_ok if met is None else bool(met and acc_ok)
    return {
        "case": case,
        "sklearn_s": sklearn_s,
        "tfmlp_s": tfmlp_s,
        "unit": unit,
        "ratio": ratio,
        "target": target,
        "met": met,
        "acc_sklearn": acc_sklearn,
        "acc_tfmlp": acc_tfmlp,
        "notes": notes,
    }


def fmt_num(v) -> str:
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return "-"
    v = float(v)
    if v == 0:
        return "0"
    if abs(v) >= 100:
        return f"{v:.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    if abs(v) >= 0.1:
        return f"{v:.3f}"
    if abs(v) >= 0.001:
        return f"{v:.4f}"
    return f"{v:.2e}"


def _cells(row: dict) -> list[str]:
    unit = row.get("unit", "s")

    def value(v):
        return "-" if v is None else f"{fmt_num(v)} {unit}"

    def acc(v):
        return "-" if v is None else f"{100 * v:.2f}%"

    met = row.get("met")
    return [
        row["case"],
        value(row.get("sklearn_s")),
        value(row.get("tfmlp_s")),
        "-" if row.get("ratio") is None else f"{row['ratio']:.2f}x",
        row.get("target") or "-",
        "-" if met is None else ("yes" if met else "NO"),
        acc(row.get("acc_sklearn")),
        acc(row.get("acc_tfmlp")),
    ]


TABLE_HEADER = [
    "case",
    "scikit-learn",
    "tfmlp",
    "ratio",
    "target",
    "met",
    "acc sklearn",
    "acc tfmlp",
]


def format_table(rows: list[dict]) -> str:
    """A Markdown table of the rows, the notes listed under it."""
    body = [_cells(r) for r in rows]
    widths = [max(len(c) for c in col) for col in zip(TABLE_HEADER, *body)]

    def line(cells):
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths)) + " |"

    out = [line(TABLE_HEADER), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += [line(cells) for cells in body]
    notes = [f"- {r['case']}: {r['notes']}" for r in rows if r.get("notes")]
    if notes:
        out += ["", "Notes (ratio = scikit-learn / tfmlp, > 1 means tfmlp is faster):"]
        out += notes
    return "\n".join(out)


_BLAS_LIMIT = []


def limit_blas_threads(n: int) -> None:
    """Limit BLAS to ``n`` threads here and in worker processes started later."""
    from threadpoolctl import threadpool_limits

    os.environ["OPENBLAS_NUM_THREADS"] = str(n)
    os.environ["MKL_NUM_THREADS"] = str(n)
    _BLAS_LIMIT.append(threadpool_limits(limits=n, user_api="blas"))


def cpu_description(cpuinfo: str | None = None) -> str:
    """The processor's name, family/model and widest vector instructions.

    Hosts of the same name differ: the runs of this project have met AMD EPYC
    processors with and without AVX-512, and scikit-learn's OpenBLAS and
    TensorFlow's kernels gain differently from it, so ratios are only
    comparable between runs on the same kind of processor.
    """
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return platform.processor() or platform.machine()
    fields: dict[str, str] = {}
    for row in cpuinfo.splitlines():
        key, sep, value = row.partition(":")
        if not sep:
            if fields:
                break  # the first processor's block is enough
            continue
        fields.setdefault(key.strip(), value.strip())
    flags = set(fields.get("flags", "").split())
    isa = [f for f in ("avx512f", "avx512_bf16", "amx_tile") if f in flags]
    if not isa:
        isa = [f for f in ("avx2", "fma") if f in flags] or ["no avx2"]
    name = fields.get("model name") or platform.processor() or platform.machine()
    family, model = fields.get("cpu family"), fields.get("model")
    where = f" family {family} model {model}" if family and model else ""
    return f"{name}{where}, {'+'.join(isa)}"


def environment() -> str:
    """One paragraph on what the numbers depend on."""
    import sklearn

    parts = [
        f"python {platform.python_version()}",
        f"numpy {np.__version__}",
        f"scikit-learn {sklearn.__version__}",
        f"{os.cpu_count()} CPUs ({cpu_description()})",
    ]
    try:
        from threadpoolctl import threadpool_info

        for info in threadpool_info():
            if info.get("user_api") == "blas":
                parts.append(
                    f"{info.get('internal_api')} {info.get('version')} "
                    f"({info.get('architecture')}, {info.get('num_threads')} threads)"
                )
                break
    except Exception:  # pragma: no cover - informative only
        pass
    env_vars = {
        k: v
        for k, v in os.environ.items()
        if k.startswith(("OPENBLAS", "OMP_", "MKL_", "TF_", "XLA_", "GOTO"))
        and k != "TF_CLI_CONFIG_FILE"
    }
    if env_vars:
        parts.append("env " + " ".join(f"{k}={v}" for k, v in sorted(env_vars.items())))
    try:
        load = os.getloadavg()
        parts.append("load average %.2f %.2f %.2f" % load)
    except OSError:  # pragma: no cover
        pass
    return "; ".join(parts)


def standalone_main(run: Callable[[bool], list[dict]], tasks: dict | None = None):
    """``__main__`` of a benchmark script: worker mode, or run and print a table."""
    if tasks is not None and worker_main(tasks):
        return
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="small smoke version")
    parser.add_argument("--json", metavar="PATH", help="also write the rows as JSON")
    args = parser.parse_args()
    rows = run(args.quick)
    print(format_table(rows))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2, default=str))
