"""Where an XLA training epoch's time goes, op by op (tfmlp only).

    python benchmarks/profile_epoch.py [--float64] [--quick] [--top N]

Fits the MNIST network (784-100-10, adam, batch 200) for two epochs (so the
XLA program is compiled), then profiles one more epoch (``warm_start``)
with TensorFlow's profiler and XLA's per-operation trace events
(``--xla_cpu_enable_xprof_traceme``, added to ``XLA_FLAGS`` before TensorFlow
starts). Prints the epoch's wall time, the time of each compiled operation
summed over the epoch (milliseconds) and per batch (microseconds), and the
totals by kind: matrix products (``dot`` operations, named after
TensorFlow's ``MatMul`` ops; the two largest are the forward and the first
layer's gradient product), row gathers, copies, and the other fused
elementwise and reduction kernels (among them the penalty's square fused
with its matrix-vector sum). The compiled call's time outside every
operation's event is the XLA runtime's scheduling between operations and
the part of the matrix products that its CPU runtime runs as tasks on the
thread pool after their event has ended (a float64 product's event is
shorter than the product can take at this CPU's peak): the products'
events are a lower bound.
``--quick`` profiles 4,000 random rows of MNIST's width (no data files
needed). Not part of ``run.py``: no scikit-learn ratio, no target.
"""

from __future__ import annotations

import argparse
import collections
import glob
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as C  # noqa: E402
import bench_mnist  # noqa: E402

TRACE_FLAG = "--xla_cpu_enable_xprof_traceme=true"
SKIPPED = ("ThunkExecutor::Execute", "SlinkyThreadPool::Await")


def _kind(name: str) -> str:
    lower = name.lower()
    if lower.startswith(("matmul", "dot")):
        return "matrix products"
    if "gather" in lower:
        return "row gathers"
    if lower.startswith("copy"):
        return "copies"
    return "other kernels"


def _operation_times(logdir: str) -> tuple[dict[str, list[float]], float]:
    """Durations (ms) of XLA's per-operation events, by operation name, and
    of the compiled call (the longest event of a traced function)."""
    try:
        from tsl.profiler.protobuf import xplane_pb2
    except ImportError:  # TensorFlow 2.16-2.21 keep it under tensorflow.tsl
        from tensorflow.tsl.profiler.protobuf import xplane_pb2

    (path,) = glob.glob(os.path.join(logdir, "**", "*.xplane.pb"), recursive=True)
    space = xplane_pb2.XSpace()
    with open(path, "rb") as f:
        space.ParseFromString(f.read())
    times: dict[str, list[float]] = collections.defaultdict(list)
    call = 0.0
    for plane in space.planes:
        names = plane.event_metadata
        for line in plane.lines:
            workers = line.name.startswith("tf_numa")  # XLA's thread pool
            for event in line.events:
                name = names[event.metadata_id].name
                ms = event.duration_ps / 1e9
                if not workers:
                    if name.startswith("__inference_"):
                        call = max(call, ms)
                    continue
                if name in SKIPPED or name.startswith(("while", "end: ")):
                    continue
                times[name].append(ms)
    return times, call


def profile(X, y, top: int) -> str:
    import tensorflow as tf

    est = bench_mnist.estimator("tfmlp", 2).set_params(jit_compile=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(X, y)  # compiles the epoch
        est.set_params(warm_start=True, max_iter=1)
        with tempfile.TemporaryDirectory() as logdir:
            tf.profiler.experimental.start(logdir)
            start = time.perf_counter()
            est.fit(X, y)
            wall = time.perf_counter() - start
            tf.profiler.experimental.stop()
            times, call = _operation_times(logdir)
    batches = -(-X.shape[0] // 200)
    total = sum(sum(v) for v in times.values())
    lines = [
        f"{X.shape[0]:,} rows, {X.dtype}, {batches} batches: epoch (one warm "
        f"fit, profiler on) {wall * 1e3:.1f} ms, of which the compiled call "
        f"{call:.1f} ms; the operations' events {total:.1f} ms, in the call "
        f"but outside them {call - total:.1f} ms",
        "operation: ms per epoch, us per batch, calls",
    ]
    ranked = sorted(times.items(), key=lambda kv: -sum(kv[1]))
    for name, durations in ranked[:top]:
        ms = sum(durations)
        lines.append(
            f"  {name}: {ms:.2f} ms, {ms * 1e3 / batches:.1f} us, {len(durations)}"
        )
    kinds: dict[str, float] = collections.Counter()
    for name, durations in times.items():
        kinds[_kind(name)] += sum(durations)
    lines.append(
        "by kind, ms per epoch: "
        + ", ".join(
            f"{k} {v:.1f} ({100 * v / total:.0f}%)"
            for k, v in sorted(kinds.items(), key=lambda kv: -kv[1])
        )
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--float64", action="store_true", help="float64 input")
    parser.add_argument("--quick", action="store_true", help="small random data")
    parser.add_argument("--top", type=int, default=15, help="operations listed")
    args = parser.parse_args(argv)
    if args.top < 1:
        parser.error(f"--top must be a positive integer, got {args.top}")
    flags = os.environ.get("XLA_FLAGS", "")
    if TRACE_FLAG not in flags:  # read once, when XLA first compiles
        os.environ["XLA_FLAGS"] = f"{flags} {TRACE_FLAG}".strip()
    C.cpu_only()
    dtype = np.float64 if args.float64 else np.float32
    if args.quick:
        rng = np.random.RandomState(0)
        X, y = rng.rand(4_000, 784).astype(dtype), rng.randint(0, 10, 4_000)
    else:
        X, y, _, _ = C.load_mnist(dtype, n_test=0)
    print(C.environment())
    print(profile(X, y, args.top))


if __name__ == "__main__":
    main()
