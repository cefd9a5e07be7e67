"""Micro-measurements behind the README's "Where the time goes" paragraph.

    python benchmarks/micro.py [--quick]

Prints, on this machine (medians of repeated calls, milliseconds):
- float64 matrix products of the lbfgs evaluation (60,000 x 784 @ 784 x 100
  and its transposed gradient product): NumPy/OpenBLAS vs TensorFlow;
- one MNIST batch's two large products (200 x 784 @ 784 x 100 and the
  transposed one) in float32 vs bfloat16 (XLA);
- a minimal XLA-compiled loop over 200-row batches with only the two large
  products, ReLU, softmax and a plain SGD step: ms per batch and compile time;
- the two large products of an MNIST batch alone (200 x 784 @ 784 x 100 and
  the transposed gradient product, with a tiny weight update so that batches
  depend on each other), looped over 300 batches: NumPy/OpenBLAS, a
  TensorFlow graph loop (oneDNN kernels) and an XLA loop, and the last two
  again in a process pinned to one core (how well each uses a second core).
Not part of ``run.py``'s table: no scikit-learn ratio, no target.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time


def _args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Micro-measurements behind the README's 'Where the time "
        "goes' paragraph (milliseconds; no scikit-learn ratio, no target)."
    )
    parser.add_argument(
        "--quick", action="store_true", help="a tenth of the repetitions (a smoke run)"
    )
    parser.add_argument("--one-core", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


ARGS = _args() if __name__ == "__main__" else _args([])
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ONE_CORE = ARGS.one_core
if ONE_CORE:  # before TensorFlow sizes its thread pools from the affinity
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402


def _ms(fn, repeats: int) -> float:
    if ARGS.quick:
        repeats = max(1, repeats // 10)
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def lbfgs_products() -> None:
    rng = np.random.RandomState(0)
    X, W, D = rng.rand(60_000, 784), rng.rand(784, 100), rng.rand(60_000, 100)
    tX, tW, tD = (tf.constant(a) for a in (X, W, D))
    fwd = tf.function(lambda a, b: tf.matmul(a, b))
    grad = tf.function(lambda a, b: tf.matmul(a, b, transpose_a=True))
    print(
        f"float64 X @ W: numpy {_ms(lambda: X @ W, 5):.0f} ms, tensorflow "
        f"{_ms(lambda: fwd(tX, tW).numpy(), 5):.0f} ms; X.T @ D: numpy "
        f"{_ms(lambda: X.T @ D, 5):.0f} ms, tensorflow "
        f"{_ms(lambda: grad(tX, tD).numpy(), 5):.0f} ms"
    )


def bfloat16_batch() -> None:
    rng = np.random.RandomState(0)
    x = tf.constant(rng.rand(200, 784).astype(np.float32))
    w = tf.constant(rng.rand(784, 100).astype(np.float32))
    d = tf.constant(rng.rand(200, 100).astype(np.float32))

    def products(dtype):
        def run(x, w, d):
            xb = tf.cast(x, dtype)
            out = tf.matmul(xb, tf.cast(w, dtype))
            g = tf.matmul(xb, tf.cast(d, dtype), transpose_a=True)
            return tf.cast(out, tf.float32), tf.cast(g, tf.float32)

        return tf.function(run, jit_compile=True)

    f32, b16 = products(tf.float32), products(tf.bfloat16)
    print(
        f"MNIST batch products (XLA): float32 "
        f"{_ms(lambda: f32(x, w, d)[0].numpy(), 300):.2f} ms, bfloat16 "
        f"{_ms(lambda: b16(x, w, d)[0].numpy(), 300):.2f} ms"
    )


def minimal_loop(rows: int = 9_600, batch: int = 200) -> None:
    rng = np.random.RandomState(0)
    x = tf.constant(rng.rand(rows, 784).astype(np.float32))
    y = tf.constant(np.eye(10, dtype=np.float32)[rng.randint(0, 10, rows)])
    w1 = tf.Variable(rng.randn(784, 100).astype(np.float32) * 0.05)
    w2 = tf.Variable(rng.randn(100, 10).astype(np.float32) * 0.05)

    def epoch(x, y):
        def body(i, total):
            xb = tf.slice(x, [i * batch, 0], [batch, 784])
            yb = tf.slice(y, [i * batch, 0], [batch, 10])
            a = tf.nn.relu(xb @ w1)
            d2 = tf.nn.softmax(a @ w2) - yb
            d1 = tf.matmul(d2, w2, transpose_b=True) * tf.cast(a > 0, tf.float32)
            w1.assign_sub(1e-4 * tf.matmul(xb, d1, transpose_a=True))
            w2.assign_sub(1e-4 * tf.matmul(a, d2, transpose_a=True))
            return i + 1, total + tf.reduce_sum(d2)

        start = (tf.constant(0), tf.constant(0.0))
        return tf.while_loop(lambda i, t: i < rows // batch, body, start)[1]

    fn = tf.function(epoch, jit_compile=True, autograph=False)
    start = time.perf_counter()
    fn(x, y).numpy()
    first = time.perf_counter() - start
    per_epoch = _ms(lambda: fn(x, y).numpy(), 5)
    print(
        f"minimal XLA loop: {per_epoch / (rows // batch):.2f} ms per batch; first "
        f"call (trace + compile + one epoch) {first:.2f} s"
    )


def batch_products(batches: int = 300, batch: int = 200) -> None:
    rng = np.random.RandomState(0)
    X = rng.rand(batches * batch, 784).astype(np.float32)
    W = rng.rand(784, 100).astype(np.float32)
    D = rng.rand(batch, 100).astype(np.float32)

    def numpy_loop():
        w = W.copy()
        for i in range(batches):
            xb = X[i * batch : (i + 1) * batch]
            xb @ w
            w -= 1e-9 * (xb.T @ D)

    def tf_loop(x, w, d):
        def body(i, acc):
            xb = tf.slice(x, [i * batch, 0], [batch, 784])
            out = tf.matmul(xb, w)
            w.assign_sub(1e-9 * tf.matmul(xb, d, transpose_a=True))
            return i + 1, acc + out[0, 0]

        return tf.while_loop(lambda i, a: i < batches, body, (0, 0.0))[1]

    tX, tD = tf.constant(X), tf.constant(D)
    line = "" if ONE_CORE else f"numpy {_ms(numpy_loop, 5) / batches:.3f}, "
    for name, jit in (("tensorflow graph", False), ("xla", True)):
        w = tf.Variable(W)
        fn = tf.function(tf_loop, jit_compile=jit, autograph=False)
        per = _ms(lambda: fn(tX, w, tD).numpy(), 5) / batches  # noqa: B023
        line += f"{name} {per:.3f}" + (", " if not jit else "")
    if ONE_CORE:  # read by the parent process
        print(line)
        return
    line = f"MNIST batch products, ms per batch: {line}"
    if hasattr(os, "sched_getaffinity") and len(os.sched_getaffinity(0)) > 1:
        pinned = subprocess.run(
            [sys.executable, __file__, "--one-core"] + ["--quick"] * ARGS.quick,
            capture_output=True,
            text=True,
            check=True,
        )
        line += f"; on one core: {pinned.stdout.strip().splitlines()[-1]}"
    print(line)


if __name__ == "__main__":
    if ONE_CORE:  # the child process of batch_products
        batch_products()
        sys.exit()
    lbfgs_products()
    bfloat16_batch()
    minimal_loop()
    batch_products()
