"""lbfgs on MNIST (784-100-10, float64): time per loss-and-gradient evaluation.

Target (issue 3): each evaluation at least 1.5x faster than scikit-learn's.

Both libraries hand their objective to ``scipy.optimize.minimize(fun, ...,
method='L-BFGS-B', jac=True)`` and look it up as ``scipy.optimize.minimize``
at call time. While a fit runs, that attribute is replaced by a wrapper that
times every call of ``fun`` (unpacking the flat parameter vector, forward and
backward pass over all rows, packing the gradient: one evaluation, exactly as
L-BFGS-B sees it). The first evaluation of each fit is left out (tfmlp traces
there; the notes show it), the median of the rest is that fit's figure, and
the reported value is the median over interleaved repeats. The notes also give
whole-fit seconds per evaluation and the test accuracy after ``max_iter``
iterations. ``--quick`` uses 5,000 training rows and 3 iterations;
``--float32`` loads MNIST in float32 (both libraries then evaluate in float32).
"""

from __future__ import annotations

import contextlib
import sys
import time
from pathlib import Path

import numpy as np
import scipy.optimize

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as C  # noqa: E402


@contextlib.contextmanager
def timed_objective(times: list[float]):
    """Patch ``scipy.optimize.minimize`` so that ``fun``'s call times land in
    ``times``."""
    original = scipy.optimize.minimize

    def minimize(fun, x0, *args, **kwargs):
        def timed_fun(x, *fargs):
            t0 = time.perf_counter()
            out = fun(x, *fargs)
            times.append(time.perf_counter() - t0)
            return out

        return original(timed_fun, x0, *args, **kwargs)

    scipy.optimize.minimize = minimize
    try:
        yield
    finally:
        scipy.optimize.minimize = original


def estimator(lib: str, max_iter: int):
    if lib == "sklearn":
        from sklearn.neural_network import MLPClassifier
    else:
        from tfmlp import MLPClassifier
    return MLPClassifier(
        hidden_layer_sizes=(100,), solver="lbfgs", max_iter=max_iter, random_state=0
    )


def one_fit(lib: str, X, y, Xt, yt, max_iter: int) -> dict:
    times: list[float] = []
    est = estimator(lib, max_iter)
    with timed_objective(times):
        fit_s, _ = C.timed(est.fit, X, y)
    if len(times) < 2:
        raise RuntimeError(f"{lib} evaluated the objective only {len(times)} time(s)")
    return {
        "eval": C.median(times[1:]),
        "first": times[0],
        "nfev": len(times),
        "fit_per_eval": fit_s / len(times),
        "acc": float(est.score(Xt, yt)) if len(Xt) else None,
    }


def run(quick: bool = False, dtype=np.float64) -> list[dict]:
    device_warning = C.cpu_only()
    n_train, max_iter, repeats = (5_000, 3, 1) if quick else (None, 15, 3)
    X, y, Xt, yt = C.load_mnist(dtype, n_train=n_train)
    res = {"sklearn": [], "tfmlp": []}
    for _ in range(repeats):
        for lib in ("sklearn", "tfmlp"):
            res[lib].append(one_fit(lib, X, y, Xt, yt, max_iter))

    def med(lib, key):
        return C.median(r[key] for r in res[lib])

    notes = (
        f"{X.shape[0]:,} rows {np.dtype(dtype).name}, max_iter={max_iter} "
        "(evaluations per fit: "
        f"sklearn {sorted({r['nfev'] for r in res['sklearn']})}, tfmlp "
        f"{sorted({r['nfev'] for r in res['tfmlp']})}), median over evaluations "
        f"2.., median of {repeats} fits (sklearn "
        f"{C.spread(r['eval'] for r in res['sklearn'])} s, tfmlp "
        f"{C.spread(r['eval'] for r in res['tfmlp'])} s); first evaluation: sklearn "
        f"{C.fmt_num(med('sklearn', 'first'))} s, tfmlp "
        f"{C.fmt_num(med('tfmlp', 'first'))} s (trace); whole fit / evaluations: "
        f"sklearn {C.fmt_num(med('sklearn', 'fit_per_eval'))} s, tfmlp "
        f"{C.fmt_num(med('tfmlp', 'fit_per_eval'))} s; accuracy after max_iter "
        "iterations (no target)"
    )
    if device_warning:
        notes += f"; {device_warning}"
    return [
        C.make_row(
            "mnist lbfgs eval" + ("" if dtype == np.float64 else " (float32)"),
            med("sklearn", "eval"),
            med("tfmlp", "eval"),
            1.5,
            unit="s/eval",
            acc_sklearn=med("sklearn", "acc"),
            acc_tfmlp=med("tfmlp", "acc"),
            notes=notes,
        )
    ]


if __name__ == "__main__":
    # --float32: MNIST in float32 (evaluated in float32 by both libraries)
    float32 = "--float32" in sys.argv
    if float32:
        sys.argv.remove("--float32")
    C.standalone_main(lambda quick: run(quick, np.float32 if float32 else np.float64))
