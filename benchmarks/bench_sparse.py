"""Sparse input: MNIST as a SciPy CSR matrix (784-100-10, adam, batch 200).

No target in issue 3 (its sparse requirement is that sparse input is
multiplied sparsely); this shows what training and prediction on a CSR
matrix cost next to scikit-learn, which multiplies it with SciPy. MNIST
pixels / 255 in float32 as ``scipy.sparse.csr_matrix`` (19% nonzeros). Rows:
the steady-state epoch (``_common.epoch_time``: median of epochs 2..k of one
fit, fits of the two libraries interleaved, median of the repeats) and
``predict_proba`` on the 60,000 training rows (median of 3 calls after one
warm-up call). ``--quick``: 5,000 rows, k=3, one repeat, and random data of
MNIST's shape and sparsity when the MNIST files are missing.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as C  # noqa: E402
from bench_mnist import estimator  # noqa: E402  (the same network)


def _data(quick: bool):
    """``(X as CSR, y, name)``: MNIST, or in quick mode without the MNIST
    files random data of its shape and density (named so in the table)."""
    try:
        X, y, _, _ = C.load_mnist(np.float32, n_train=5_000 if quick else None)
        name = "MNIST"
    except FileNotFoundError:
        if not quick:
            raise
        rng = np.random.RandomState(0)
        X = rng.rand(5_000, 784).astype(np.float32)
        X[rng.rand(*X.shape) >= 0.19] = 0.0
        y = rng.randint(0, 10, 5_000)
        name = "random (no MNIST files)"
    return sp.csr_matrix(X), y, name


def _fitted(lib: str, X, y):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # one epoch: not converged
        return estimator(lib, 1).fit(X, y)


def _predict_time(est, X) -> float:
    est.predict_proba(X[:1000])
    times = []
    for _ in range(3):
        start = time.perf_counter()
        est.predict_proba(X)
        times.append(time.perf_counter() - start)
    return C.median(times)


def run(quick: bool = False) -> list[dict]:
    C.cpu_only()
    X, y, name = _data(quick)
    k, repeats = (3, 1) if quick else (4, 3)
    epoch = {"sklearn": [], "tfmlp": []}
    predict = {"sklearn": [], "tfmlp": []}
    for _ in range(repeats):
        for lib in epoch:
            res = C.epoch_time(lambda k, lib=lib: estimator(lib, k), X, y, k)
            epoch[lib].append(res["epoch"])
            fitted = _fitted(lib, X, y)
            predict[lib].append(_predict_time(fitted, X))
    notes = (
        f"{X.shape[0]:,} x {X.shape[1]} CSR float32, "
        f"{X.nnz / np.prod(X.shape):.0%} nonzeros, median of {repeats} "
        f"(epoch: sklearn {C.spread(epoch['sklearn'])} s, tfmlp "
        f"{C.spread(epoch['tfmlp'])} s; predict_proba: sklearn "
        f"{C.spread(predict['sklearn'])} s, tfmlp {C.spread(predict['tfmlp'])} s)"
    )
    rows = [
        (f"sparse {name} epoch", epoch, "s/epoch"),
        (f"sparse {name} predict_proba", predict, "s"),
    ]
    return [
        C.make_row(
            case,
            C.median(times["sklearn"]),
            C.median(times["tfmlp"]),
            None,
            unit=unit,
            notes=notes if k == 0 else "",
        )
        for k, (case, times, unit) in enumerate(rows)
    ]


if __name__ == "__main__":
    C.standalone_main(run)
