"""Per-call cost of ``partial_fit`` on small batches: tfmlp vs scikit-learn.

A loop of ``partial_fit`` calls over digits in batches of ``--rows`` rows
(the usual out-of-core pattern), both libraries interleaved call by call in
this process after a first call; prints the median milliseconds per call,
their ratio (scikit-learn / tfmlp) and tfmlp's variable reads per call.
No target in the performance issue: at such sizes both libraries spend the
call on validation and bookkeeping, not on arithmetic.

    python benchmarks/bench_partial_fit.py [--rows 50] [--calls 400]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import positive_int  # noqa: E402


def run(rows: int = 50, calls: int = 400) -> dict:
    import numpy as np
    from sklearn.datasets import load_digits
    from sklearn.neural_network import MLPClassifier as SkMLP

    from tfmlp import MLPClassifier, _mirrored

    X, y = load_digits(return_X_y=True)
    classes = np.arange(10)
    ests = {
        "scikit-learn": SkMLP(random_state=0),
        "tfmlp": MLPClassifier(random_state=0),
    }
    reads = [0]
    real = _mirrored.read

    def counted(variable):
        reads[0] += 1
        return real(variable)

    times: dict = {name: [] for name in ests}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for est in ests.values():
            est.partial_fit(X[:rows], y[:rows], classes=classes)
        _mirrored.read = counted
        try:
            for i in range(calls):
                start = (i * rows) % (len(X) - rows)
                for name, est in ests.items():
                    t = time.perf_counter()
                    est.partial_fit(X[start : start + rows], y[start : start + rows])
                    times[name].append(time.perf_counter() - t)
        finally:
            _mirrored.read = real
    ms = {name: 1000 * statistics.median(t) for name, t in times.items()}
    return {"rows": rows, "ms": ms, "reads_per_call": reads[0] / calls}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=positive_int, default=50)
    parser.add_argument("--calls", type=positive_int, default=400)
    args = parser.parse_args(argv)
    res = run(args.rows, args.calls)
    sk, tf_ = res["ms"]["scikit-learn"], res["ms"]["tfmlp"]
    print(f"partial_fit on {res['rows']}-row digits batches, median of {args.calls}")
    print(
        f"scikit-learn {sk:.2f} ms/call, tfmlp {tf_:.2f} ms/call, ratio {sk / tf_:.2f}x"
    )
    print(f"tfmlp variable reads per call: {res['reads_per_call']:.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
