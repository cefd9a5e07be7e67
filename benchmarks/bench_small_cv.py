"""Small data: 5-fold ``cross_val_score`` on digits, hidden (50,), max_iter=50.

Target (issue 3): tfmlp no slower than scikit-learn (ratio >= 1.0), after the
TensorFlow runtime has started once.

digits (1,797 x 64, float64 as loaded, unscaled), adam, ``random_state=0``,
``cross_val_score(est, X, y, cv=5)``. Each measurement runs in a fresh Python
process that imports its library, makes one tiny fit of a different shape
(this starts the TensorFlow runtime for tfmlp without tracing the benchmarked
configuration; scikit-learn gets the same warm-up for symmetry) and then times
``cross_val_score``: so tfmlp pays its tracing once, as a first
cross-validation does. A second, untargeted ``cross_val_score`` in the same
process (traces cached) is in the notes. Processes of the two libraries are
interleaved; medians of the repeats. ``--quick`` runs one repeat with
``max_iter=20`` and no second ``cross_val_score``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as C  # noqa: E402

SCRIPT = Path(__file__).resolve()


def cv_worker(lib: str, max_iter: int = 50, second: bool = True) -> dict:
    """Worker task: warm-up fit, then a cold and a warm cross_val_score."""
    import_s = C.import_library(lib)
    if lib == "sklearn":
        from sklearn.neural_network import MLPClassifier
    else:
        from tfmlp import MLPClassifier
    from sklearn.datasets import load_digits
    from sklearn.model_selection import cross_val_score

    rng = np.random.RandomState(0)
    Xw, yw = rng.rand(20, 3), np.arange(20) % 2
    warm_s, _ = C.timed(
        MLPClassifier(hidden_layer_sizes=(5,), max_iter=2, random_state=0).fit, Xw, yw
    )
    X, y = load_digits(return_X_y=True)
    est = MLPClassifier(hidden_layer_sizes=(50,), max_iter=max_iter, random_state=0)
    cv_s, scores = C.timed(cross_val_score, est, X, y, cv=5)
    cv2_s = C.timed(cross_val_score, est, X, y, cv=5)[0] if second else None
    return {
        "cv_s": cv_s,
        "cv2_s": cv2_s,
        "acc": float(np.mean(scores)),
        "import_s": import_s,
        "warmup_s": warm_s,
    }


def run(quick: bool = False) -> list[dict]:
    repeats, max_iter = (1, 20) if quick else (3, 50)
    res = {"sklearn": [], "tfmlp": []}
    for _ in range(repeats):
        for lib in ("sklearn", "tfmlp"):
            res[lib].append(
                C.run_worker(SCRIPT, "cv", lib=lib, max_iter=max_iter, second=not quick)
            )

    def med(lib, key):
        return C.median(r[key] for r in res[lib])

    notes = (
        f"digits 1,797 x 64 float64, max_iter={max_iter}, cv=5, fresh process "
        f"each, median of {repeats} "
        f"(sklearn {C.spread(r['cv_s'] for r in res['sklearn'])} s, tfmlp "
        f"{C.spread(r['cv_s'] for r in res['tfmlp'])} s); second cross_val_score in "
        f"the same process: sklearn {C.fmt_num(med('sklearn', 'cv2_s'))} s, tfmlp "
        f"{C.fmt_num(med('tfmlp', 'cv2_s'))} s; runtime warm-up fit (not timed "
        f"above): sklearn {C.fmt_num(med('sklearn', 'warmup_s'))} s, tfmlp "
        f"{C.fmt_num(med('tfmlp', 'warmup_s'))} s; accuracy = mean CV score"
    )
    return [
        C.make_row(
            "digits 5-fold CV",
            med("sklearn", "cv_s"),
            med("tfmlp", "cv_s"),
            1.0,
            unit="s/CV",
            acc_sklearn=med("sklearn", "acc"),
            acc_tfmlp=med("tfmlp", "acc"),
            notes=notes,
        )
    ]


if __name__ == "__main__":
    C.standalone_main(run, {"cv": cv_worker})
