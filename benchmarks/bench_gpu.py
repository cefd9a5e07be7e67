"""GPU: the 1M-row case of ``bench_large.py`` with tfmlp on a GPU.

Target (issue 3): at least 20x scikit-learn's CPU epoch. scikit-learn's epoch
is measured on the CPU exactly as in ``bench_large.py`` (median of epochs
2..k of one fit); tfmlp's in a fresh process that sees the GPU, while
``nvidia-smi`` samples utilisation every 200 ms (mean and max over the fit,
first epoch included; 'n/a' when ``nvidia-smi`` is not installed).

Whether a GPU is visible is checked in a fresh process
(``tf.config.list_physical_devices('GPU')``), because the CPU cases hide GPUs
from the runner's own process; that check is skipped (no TensorFlow import)
when the machine has neither ``/dev/nvidia<N>`` nor ``nvidia-smi``. Without a
GPU the case returns one row that says it was skipped. A second,
informational row runs tfmlp on the GPU with ``compute_dtype="mixed_float16"``
(float16 products, float32 weights; Keras' mixed policy). ``--quick`` uses
30,000 rows and ``k = 3``.
"""

from __future__ import annotations

import glob
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as C  # noqa: E402
import bench_large  # noqa: E402

SCRIPT = Path(__file__).resolve()


def gpu_worker() -> dict:
    """Worker task: the GPUs TensorFlow sees."""
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    names = []
    for gpu in gpus:
        try:
            details = tf.config.experimental.get_device_details(gpu)
            names.append(details.get("device_name", gpu.name))
        except Exception:
            names.append(gpu.name)
    return {"gpus": names}


def _nvidia_present() -> bool:
    """Cheap pre-check: an NVIDIA device node or nvidia-smi on this machine."""
    return (
        bool(glob.glob("/dev/nvidia[0-9]*")) or shutil.which("nvidia-smi") is not None
    )


def run(quick: bool = False) -> list[dict]:
    gpus = C.run_worker(SCRIPT, "gpus", cpu=False)["gpus"] if _nvidia_present() else []
    if not gpus:
        return [
            C.make_row(
                "gpu large f32 epoch",
                None,
                None,
                20.0,
                unit="s/ep",
                notes="skipped: no GPU visible to TensorFlow "
                "(tf.config.list_physical_devices('GPU') is empty)",
            )
        ]
    n_samples, k, repeats = (30_000, 3, 1) if quick else (1_000_000, 4, 2)
    C.cached_classification(n_samples)
    res = {"sklearn": [], "tfmlp": [], "mixed": []}
    for _ in range(repeats):
        res["sklearn"].append(
            C.run_worker(
                bench_large.SCRIPT, "epoch", lib="sklearn", n_samples=n_samples, k=k
            )
        )
        for key, compute_dtype in (("tfmlp", None), ("mixed", "mixed_float16")):
            res[key].append(
                C.run_worker(
                    bench_large.SCRIPT,
                    "epoch",
                    cpu=False,
                    lib="tfmlp",
                    n_samples=n_samples,
                    k=k,
                    monitor_gpu=True,
                    compute_dtype=compute_dtype,
                )
            )
    sk = C.median(r["epoch"] for r in res["sklearn"])
    rows = []
    for key, name, target in (
        ("tfmlp", "gpu large f32 epoch", 20.0),
        ("mixed", "gpu large epoch, mixed_float16", None),
    ):
        notes = f"{', '.join(gpus)}; " + _notes(res[key], n_samples, k, repeats)
        tf = C.median(r["epoch"] for r in res[key])
        rows.append(C.make_row(name, sk, tf, target, unit="s/ep", notes=notes))
    return rows


def _notes(runs: list[dict], n_samples: int, k: int, repeats: int) -> str:
    gpu_stats = [r["gpu"] for r in runs if r.get("gpu") and r["gpu"]["n"]]
    if gpu_stats:
        util = (
            f"GPU utilisation during the fits: mean "
            f"{C.median(g['util_mean'] for g in gpu_stats):.0f}%, max "
            f"{max(g['util_max'] for g in gpu_stats):.0f}%, GPU memory max "
            f"{max(g['mem_max_mb'] for g in gpu_stats):.0f} MiB"
        )
    else:
        util = "GPU utilisation n/a (nvidia-smi not found)"
    first = C.median(r["first"] for r in runs)
    return (
        f"{n_samples:,} x 100 float32, sklearn on the CPU, tfmlp devices "
        f"{runs[0].get('devices')}; median epoch time of epochs 2..{k} of "
        f"fit(max_iter={k}), median of {repeats}; tfmlp first epoch incl. "
        f"trace/compile {C.fmt_num(first)} s; {util}"
    )


if __name__ == "__main__":
    C.standalone_main(run, {"gpus": gpu_worker})
