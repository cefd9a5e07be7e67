"""Memory of the compiled-function cache over many network shapes.

    python benchmarks/cache_memory.py [--fits N] [--every K]

Fits digits (300 rows, 2 epochs) with ``N`` distinct hidden-layer sizes
(5, 6, ...) in one process, as a long hyper-parameter search over shapes
would, and prints the process's RSS after every ``K`` fits. The cache keeps
a bounded number of traces (README "Performance"), so the RSS levels off
instead of growing with every shape. Not part of ``run.py``'s table: no
scikit-learn ratio, no target.
"""

from __future__ import annotations

import argparse
import gc
import sys
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import current_rss_mb, positive_int  # noqa: E402


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fits", type=positive_int, default=150)
    parser.add_argument("--every", type=positive_int, default=30)
    args = parser.parse_args(argv)
    from sklearn.datasets import load_digits

    from tfmlp import MLPClassifier

    X, y = load_digits(return_X_y=True)
    X, y = X[:300] / 16.0, y[:300]
    print("fits  RSS (MB)")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i in range(args.fits):
            est = MLPClassifier(hidden_layer_sizes=(5 + i,), max_iter=2, random_state=0)
            est.fit(X, y).predict(X[:5])
            if (i + 1) % args.every == 0 or i + 1 == args.fits:
                gc.collect()
                print(f"{i + 1:4d}  {current_rss_mb():.0f}", flush=True)


if __name__ == "__main__":
    main()
