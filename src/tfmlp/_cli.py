"""Command line: ``tfmlp demo`` (more subcommands to come)."""

from __future__ import annotations

import argparse
import sys
import time


def _demo(args: argparse.Namespace) -> int:
    import warnings

    import numpy as np
    from sklearn.datasets import load_digits
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import train_test_split
    from sklearn.neural_network import MLPClassifier as SkMLP

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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tfmlp",
        description="scikit-learn's MLP estimators, trained by TensorFlow.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
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
    demo.add_argument("--max-iter", type=int, default=50)
    demo.add_argument("--random-state", type=int, default=0)
    demo.set_defaults(func=_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the ``tfmlp`` command line; returns the exit code."""
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TF's C++ logs quiet
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
