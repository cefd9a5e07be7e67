"""Run the issue-3 benchmarks and print one table: scikit-learn vs tfmlp.

    python benchmarks/run.py                  # every case (several minutes)
    python benchmarks/run.py --quick          # small smoke version (~2 minutes)
    python benchmarks/run.py --case mnist --case small_cv --json results.json
    python benchmarks/run.py --blas-threads 1   # scikit-learn's BLAS on 1 thread

Cases (one script each, also runnable alone): mnist (float32/float64 epoch,
whole 20-epoch fit with test accuracy), large (1M x 100 epoch and peak RSS),
lbfgs (time per loss-and-gradient evaluation), small_cv (5-fold CV on
digits), float32 (what compute_dtype="float32" costs in accuracy and buys in
time on float64 MNIST; no target), sparse (MNIST as a CSR matrix: epoch and
predict_proba; no target), gpu (skipped without a GPU).
ratio = scikit-learn time / tfmlp time, so > 1 means tfmlp is faster; "met"
compares it with the issue's target.

Numbers depend on the machine and its load: measurements of the two libraries
are interleaved and medians of a few repeats are reported, but on a shared
machine absolute times drift and only ratios from one run are comparable.
The BLAS build and its environment (OPENBLAS_CORETYPE, OPENBLAS_NUM_THREADS,
OMP_NUM_THREADS, ...) change scikit-learn's times, TensorFlow's thread
settings change tfmlp's; the header line shows what was in effect. When other
processes compete for the cores, multi-threaded OpenBLAS can slow down many
times over while TensorFlow degrades gracefully, which inflates the ratios in
tfmlp's favour; ``--blas-threads 1`` shows how much of a ratio that is.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as C  # noqa: E402

CASES = {
    "mnist": "bench_mnist",
    "large": "bench_large",
    "lbfgs": "bench_lbfgs",
    "small_cv": "bench_small_cv",
    "float32": "bench_float32",
    "sparse": "bench_sparse",
    "gpu": "bench_gpu",
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--case",
        action="append",
        choices=list(CASES),
        help="run only this case (repeatable); default: all",
    )
    parser.add_argument("--quick", action="store_true", help="small smoke version")
    parser.add_argument("--json", metavar="PATH", help="also write the rows as JSON")
    parser.add_argument(
        "--blas-threads",
        type=int,
        metavar="N",
        help="limit BLAS threads (scikit-learn's matrix products) to N, in this "
        "process and, through OPENBLAS_NUM_THREADS, in the worker processes; "
        "default: leave the environment as it is",
    )
    args = parser.parse_args(argv)
    if args.blas_threads is not None:
        if args.blas_threads < 1:
            parser.error(f"--blas-threads must be at least 1, got {args.blas_threads}")
        C.limit_blas_threads(args.blas_threads)

    rows, failed = [], False
    t_start = time.perf_counter()
    for name in args.case or list(CASES):
        print(f"[benchmarks] running {name}...", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        try:
            module = importlib.import_module(CASES[name])
            rows += module.run(args.quick)
        except Exception as exc:  # one broken case must not hide the others
            failed = True
            traceback.print_exc()
            rows.append(
                C.make_row(
                    name, None, None, None, notes=f"error: {type(exc).__name__}: {exc}"
                )
            )
        print(
            f"[benchmarks] {name} done in {time.perf_counter() - t0:.0f} s",
            file=sys.stderr,
            flush=True,
        )
    total = time.perf_counter() - t_start

    mode = "quick (smoke sizes, not the issue's targets)" if args.quick else "full"
    print(f"Environment: {C.environment()}")
    print(f"Mode: {mode}; wall time {total:.0f} s")
    print()
    print(C.format_table(rows))
    if args.json:
        payload = {"environment": C.environment(), "mode": mode, "rows": rows}
        Path(args.json).write_text(json.dumps(payload, indent=2, default=str))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
