"""Mixed precision for the stochastic solvers (``compute_dtype="mixed_*"``).

Under a mixed policy the weights, the optimizer's state, the activations and
the loss stay float32; only the matrix products of training run in float16 or
bfloat16 (their operands are cast, their results cast back), as Keras' mixed
policies do for Dense layers. float16 gradients underflow, so float16 training
scales the loss dynamically, with Keras' defaults: the output delta is
multiplied by the scale before the backward products and the gradients are
divided by it afterwards; a step whose gradients are not all finite is skipped
(weights and moments unchanged; the batch still counts in ``t_`` and in
Adam's step count, which the epoch's learning rates are computed from) and
halves the scale; after ``GROWTH_INTERVAL`` finite steps in a row the scale
doubles. bfloat16 has float32's exponent range and needs no scaling.

Prediction, ``transform`` and ``model_`` compute in float32; the L-BFGS solver
evaluates its objective in float32 on the float32-rounded input and returns
float64 weights (as scikit-learn's on float32 data), which predict in float64.
"""

from __future__ import annotations

import math

import numpy as np
import tensorflow as tf

MIXED_POLICIES = {"mixed_float16": "float16", "mixed_bfloat16": "bfloat16"}
INITIAL_SCALE = 2.0**15
GROWTH_INTERVAL = 2000
MIN_SCALE = 1.0  # never below 1: a plain float16 step, as without scaling


def matmul_dtype(compute_dtype) -> str | None:
    """The products' dtype name for an estimator's ``compute_dtype``."""
    return MIXED_POLICIES.get(compute_dtype)


def initial_state() -> np.ndarray:
    """The loss-scale state ``[scale, finite steps in a row]`` of a new fit."""
    return np.array([INITIAL_SCALE, 0.0], np.float32)


def no_step_applied(before, after, n_steps: int) -> bool:
    """Whether all ``n_steps`` steps between the loss-scale states ``before``
    and ``after`` were skipped (False without loss scaling).

    Each skipped step halves the scale and zeroes the count of finite steps,
    and a finite step never lowers the scale, so they all were exactly when
    the count is 0 and the scale ``n_steps`` halvings lower. Where the scale
    stopped at ``MIN_SCALE`` it cannot tell, and answers False.
    """
    if before is None or n_steps < 1:
        return False
    expected = math.ldexp(float(before[0]), -int(n_steps))
    return float(after[1]) == 0 and float(after[0]) == expected >= MIN_SCALE


def cast_matmul(a, b, dtype=None, transpose_a=False, transpose_b=False):
    """``a @ b`` computed in ``dtype`` (a mixed policy's "float16"/"bfloat16")
    and returned in ``a``'s dtype; with ``dtype`` None a plain ``tf.matmul``."""
    if dtype is None:
        return tf.matmul(a, b, transpose_a=transpose_a, transpose_b=transpose_b)
    product = tf.matmul(
        tf.cast(a, dtype),
        tf.cast(b, dtype),
        transpose_a=transpose_a,
        transpose_b=transpose_b,
    )
    return tf.cast(product, a.dtype)


def current_scale(state):
    """The scale in the loss-scale variable ``state`` (None: no scaling)."""
    return None if state is None else state[0]


def scaled(x, scale):
    """``x`` multiplied by the loss scale (``x`` itself when ``scale`` is None)."""
    return x if scale is None else x * tf.cast(scale, x.dtype)


def unscaled(grads, scale):
    """Gradients of a scaled loss divided back by the scale."""
    if scale is None:
        return grads
    return [g / tf.cast(scale, g.dtype) for g in grads]


def all_finite(tensors) -> tf.Tensor:
    return tf.reduce_all([tf.reduce_all(tf.math.is_finite(t)) for t in tensors])


def guarded_step(apply, grads, state, variables):
    """Run ``apply()`` only if every gradient is finite, and update ``state``
    (the loss-scale variable ``[scale, finite steps]``) as described above.
    Without a ``state`` (no loss scaling) ``apply()`` simply runs.

    ``apply()`` always runs and ``variables`` (those it changes) are put back
    if a gradient was not finite: no conditional, which in a ``tf.distribute``
    replica context may not hold the variables' cross-replica updates, and
    which, as a nested function in the graph-mode epoch loop, waited forever
    for a second inter-op thread when the user had allowed TensorFlow one
    (``tf.config.threading.set_inter_op_parallelism_threads(1)``).
    """
    if state is None:
        apply()
        return
    finite = all_finite(grads)
    before = [v.read_value() for v in variables]
    with tf.control_dependencies(before):
        apply()
    for v, old in zip(variables, before):
        v.assign(tf.where(finite, v.read_value(), old))
    scale, good = state[0], state[1] + 1
    grow = good >= GROWTH_INTERVAL
    new_scale = tf.where(
        finite,
        tf.where(grow, scale * 2, scale),
        tf.maximum(scale / 2, MIN_SCALE),
    )
    new_good = tf.where(finite & ~grow, good, tf.zeros_like(good))
    state.assign(tf.stack([new_scale, new_good]))
