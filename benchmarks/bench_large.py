"""1M rows: make_classification(1_000_000, 100 features, 10 classes), (256, 128).

float32 input, adam, batch 200 (the default 'auto' batch size), on the CPU.
Two rows (issue 3's large-data targets):

- ``large f32 epoch``: steady-state seconds per epoch (target >= 2.5x): the
  median of epochs 2..k of one ``fit(max_iter=k)`` (``tol=0``, huge
  ``n_iter_no_change``), timed at each epoch's end as described in
  ``bench_mnist.py``; the first epoch (setup, tracing, XLA compilation) is in
  the notes. Each library runs in its own fresh process, the processes
  interleaved. tfmlp runs on the CPU (GPUs hidden; ``bench_gpu.py`` is the
  GPU case).
- ``large peak RSS``: peak resident memory (VmHWM) of those same processes,
  which import the library, load the cached float32 data (``np.load``, 400 MB
  at 1M rows) and run the fit. The issue's target "peak RSS no more than
  scikit-learn's" is read as in ``../shared/PERF_NOTES.md``: no more than
  scikit-learn's plus the TensorFlow runtime's own memory, measured here as
  the RSS of a process that imports TensorFlow and runs one op minus that of a
  process with only NumPy. The notes also give each side's growth during the
  fits (peak minus the RSS once data are loaded).

The data are generated once (``make_classification(..., n_informative=50,
random_state=0)``) and cached as ``.npy`` under ``TFMLP_BENCH_CACHE`` (default
``<tmp>/tfmlp-bench``), so generating them is neither timed nor counted in any
peak. ``--quick`` uses 30,000 rows, ``k = 3`` and one repeat.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as C  # noqa: E402

SCRIPT = Path(__file__).resolve()
HIDDEN = (256, 128)


def estimator(lib: str, max_iter: int, compute_dtype: str | None = None):
    if lib == "sklearn":
        from sklearn.neural_network import MLPClassifier

        extra = {}
    else:
        from tfmlp import MLPClassifier

        extra = {"compute_dtype": compute_dtype} if compute_dtype else {}
    return MLPClassifier(
        hidden_layer_sizes=HIDDEN,
        solver="adam",
        max_iter=max_iter,
        tol=0.0,
        n_iter_no_change=C.BIG,
        random_state=0,
        **extra,
    )


def epoch_worker(
    lib: str,
    n_samples: int,
    k: int,
    monitor_gpu: bool = False,
    compute_dtype: str | None = None,
) -> dict:
    """Worker task: import, load the cached data, one timed fit, peak RSS
    (``compute_dtype``: tfmlp's opt-in mode, e.g. mixed precision on a GPU)."""
    import_s = C.import_library(lib)
    rss_import = C.current_rss_mb()
    x_path, y_path = C.cached_classification(n_samples)
    X, y = np.load(x_path), np.load(y_path)
    rss_data = C.current_rss_mb()
    gpu = None
    if monitor_gpu:
        import _gpu_monitor

        with _gpu_monitor.GpuMonitor() as gpu:
            res = C.epoch_time(lambda m: estimator(lib, m, compute_dtype), X, y, k)
        gpu = gpu.summary()
    else:
        res = C.epoch_time(lambda m: estimator(lib, m, compute_dtype), X, y, k)
    out = dict(
        res,
        import_s=import_s,
        rss_import_mb=rss_import,
        rss_data_mb=rss_data,
        peak_rss_mb=C.peak_rss_mb(),
        gpu=gpu,
    )
    if lib == "tfmlp":
        import tensorflow as tf

        out["devices"] = [d.name for d in tf.config.get_visible_devices()]
        try:
            from tfmlp._loop import use_xla

            out["xla"] = bool(use_xla(None, X, False))
        except Exception:
            out["xla"] = None
    return out


def run_epochs(n_samples: int, k: int, repeats: int) -> dict[str, list[dict]]:
    """Interleaved fresh-process measurements of both libraries (CPU only)."""
    C.cached_classification(n_samples)
    res = {"sklearn": [], "tfmlp": []}
    for _ in range(repeats):
        for lib in ("sklearn", "tfmlp"):
            res[lib].append(
                C.run_worker(SCRIPT, "epoch", lib=lib, n_samples=n_samples, k=k)
            )
    return res


def run(quick: bool = False) -> list[dict]:
    n_samples, k, repeats = (30_000, 3, 1) if quick else (1_000_000, 4, 3)
    res = run_epochs(n_samples, k, repeats)
    tf_rt = C.run_worker(SCRIPT, "tf_rss")

    def med(lib, key):
        return C.median(r[key] for r in res[lib])

    sk_ep, tf_ep = med("sklearn", "epoch"), med("tfmlp", "epoch")
    xla = res["tfmlp"][0].get("xla")
    epoch_notes = (
        f"{n_samples:,} x 100 float32, fresh process per fit, median epoch time of "
        f"epochs 2..{k} of fit(max_iter={k}) ({res['tfmlp'][0]['method']}), median "
        f"of {repeats} (all epochs: sklearn "
        f"{C.spread(t for r in res['sklearn'] for t in r['intervals'])} s, tfmlp "
        f"{C.spread(t for r in res['tfmlp'] for t in r['intervals'])} s); first "
        f"epoch (incl. setup, trace, compile): sklearn "
        f"{C.fmt_num(med('sklearn', 'first'))} s, tfmlp "
        f"{C.fmt_num(med('tfmlp', 'first'))} s; XLA "
        f"{'on' if xla else 'off' if xla is not None else '?'}"
    )
    epoch_row = C.make_row(
        "large f32 epoch", sk_ep, tf_ep, 2.5, unit="s/ep", notes=epoch_notes
    )

    sk_peak, tf_peak = med("sklearn", "peak_rss_mb"), med("tfmlp", "peak_rss_mb")
    tf_runtime = tf_rt["tf_rss_mb"] - tf_rt["numpy_rss_mb"]
    budget = sk_peak + tf_runtime
    rss_notes = (
        f"peak RSS (VmHWM) of the epoch processes; budget = sklearn peak + TF "
        f"runtime = {sk_peak:.0f} + {tf_runtime:.0f} = {budget:.0f} MB (TF runtime "
        f"= RSS after `import tensorflow` and one op, {tf_rt['tf_rss_mb']:.0f} MB, "
        f"minus NumPy-only {tf_rt['numpy_rss_mb']:.0f} MB); RSS after imports: "
        f"sklearn {med('sklearn', 'rss_import_mb'):.0f} MB, tfmlp "
        f"{med('tfmlp', 'rss_import_mb'):.0f} MB; growth during the fits (peak - "
        f"RSS with data loaded): sklearn "
        f"{sk_peak - med('sklearn', 'rss_data_mb'):.0f} MB, tfmlp "
        f"{tf_peak - med('tfmlp', 'rss_data_mb'):.0f} MB; X itself "
        f"{n_samples * 100 * 4 / 2**20:.0f} MB"
    )
    rss_row = C.make_row(
        "large peak RSS",
        sk_peak,
        tf_peak,
        None,
        unit="MB",
        target=f"tfmlp <= {budget:.0f} MB",
        met=bool(tf_peak <= budget),
        notes=rss_notes,
        timed=False,  # no speed ratio for memory
    )
    return [epoch_row, rss_row]


if __name__ == "__main__":
    C.standalone_main(run, {"epoch": epoch_worker, "tf_rss": C.tf_runtime_rss})
