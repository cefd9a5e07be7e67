"""The opt-in speed modes: float64 MNIST trained with ``compute_dtype``.

No target in issue 3; this measures what each opt-in costs in accuracy and
what it buys in time. MNIST 784-100-10, adam, batch 200, 20 epochs, pixels /
255 in float64 (the parity dtype). Whole fits, each in a fresh process and
interleaved: scikit-learn (float64), tfmlp's default (float64, the parity
path) and tfmlp with ``compute_dtype`` "float32", "mixed_bfloat16" and
"mixed_float16" (mixed precision is meant for GPUs; on a CPU it shows the
accuracy cost and whatever the CPU makes of half-precision products). Rows
compare each tfmlp mode with scikit-learn (time ratio and test accuracy); the
notes give the largest probability difference between the mode and tfmlp's
float64 default on 2,000 test rows. ``--quick``: 5,000 rows, 3 epochs, one
repeat.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as C  # noqa: E402

SCRIPT = Path(__file__).resolve()
MODES = {
    "sklearn": ("sklearn", None),
    "f64": ("tfmlp", None),
    "f32": ("tfmlp", "float32"),
    "bf16": ("tfmlp", "mixed_bfloat16"),
    "f16": ("tfmlp", "mixed_float16"),
}
LABELS = {
    "f64": "default (float64)",
    "f32": "compute_dtype=float32",
    "bf16": "compute_dtype=mixed_bfloat16",
    "f16": "compute_dtype=mixed_float16",
}


def fit_worker(mode: str, n_train, max_iter: int) -> dict:
    """Worker task: one fit of float64 MNIST, test accuracy and probabilities."""
    lib, compute_dtype = MODES[mode]
    C.import_library(lib)
    X, y, Xt, yt = C.load_mnist(np.float64, n_train=n_train)
    if lib == "sklearn":
        from sklearn.neural_network import MLPClassifier

        extra = {}
    else:
        from tfmlp import MLPClassifier

        extra = {"compute_dtype": compute_dtype}
    est = MLPClassifier(
        hidden_layer_sizes=(100,),
        max_iter=max_iter,
        tol=0.0,
        n_iter_no_change=C.BIG,
        random_state=0,
        **extra,
    )
    fit_s, _ = C.timed(est.fit, X, y)
    proba = est.predict_proba(Xt[:2000])
    return {
        "fit_s": fit_s,
        "acc": float(est.score(Xt, yt)),
        "proba": proba.astype(np.float64).ravel().tolist(),
    }


def run(quick: bool = False) -> list[dict]:
    n_train, max_iter, repeats = (5_000, 3, 1) if quick else (None, 20, 3)
    res: dict = {mode: [] for mode in MODES}
    for _ in range(repeats):
        for mode in MODES:
            res[mode].append(
                C.run_worker(
                    SCRIPT, "fit", mode=mode, n_train=n_train, max_iter=max_iter
                )
            )

    def med(mode, key):
        return C.median(r[key] for r in res[mode])

    p64 = np.asarray(res["f64"][0]["proba"])
    rows = []
    for mode, label in LABELS.items():
        diff = float(np.max(np.abs(p64 - np.asarray(res[mode][0]["proba"]))))
        notes = (
            f"float64 MNIST ({n_train or 60000:,} rows), {max_iter} epochs, fresh "
            f"process each, median of {repeats} (sklearn "
            f"{C.spread(r['fit_s'] for r in res['sklearn'])} s, tfmlp "
            f"{C.spread(r['fit_s'] for r in res[mode])} s); largest |predict_proba "
            f"difference| vs tfmlp's float64 default on 2,000 test rows: "
            f"{diff:.2e}; no target (informational)"
        )
        rows.append(
            C.make_row(
                f"mnist f64 fit, {label}",
                med("sklearn", "fit_s"),
                med(mode, "fit_s"),
                None,
                unit="s/fit",
                acc_sklearn=med("sklearn", "acc"),
                acc_tfmlp=med(mode, "acc"),
                notes=notes,
            )
        )
    return rows


if __name__ == "__main__":
    C.standalone_main(run, {"fit": fit_worker})
