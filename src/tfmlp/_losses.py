"""scikit-learn's MLP objectives as TensorFlow functions.

``reported_loss`` is the value scikit-learn reports (``loss_``, ``loss_curve_``);
``gradient_surrogate`` has the gradient scikit-learn uses. The two differ on
purpose: scikit-learn clips probabilities in the reported log-loss only, and
its multi-output squared-error gradient is that of the *sum* over outputs while
the reported loss is the mean (scikit-learn issue #8349).
"""

from __future__ import annotations

import tensorflow as tf

from tfmlp._network import OUTPUT_ACTIVATIONS
from tfmlp._precision import scaled, unscaled
from tfmlp._warn import warn

LOG_LOSSES = ("log_loss", "binary_log_loss")


def _weighted_average(values, sw, sw_sum):
    """np.average(values, weights=sw, axis=0): per-output weighted mean."""
    return tf.reduce_sum(values * sw[:, None], axis=0) / sw_sum


def data_loss(name: str, y, p, sw, sw_sum, dtype=None, dtype_sw_sum=None):
    """The data term of the objective for one batch (no penalty).

    ``dtype``: the log-losses' value is computed in it from the probabilities
    clipped in their own dtype, as scikit-learn computes its float32 log-loss
    in float64 (SciPy's ``xlogy`` of its boolean targets); ``sw`` is then
    summed in ``dtype`` unless ``dtype_sw_sum`` gives that sum (a slice of
    the rows: the whole batch's sum).
    """
    if name == "squared_error":
        return 0.5 * tf.reduce_mean(_weighted_average(tf.square(y - p), sw, sw_sum))
    if name == "poisson":
        terms = tf.math.xlogy(y, y / p) - y + p
        return tf.reduce_sum(_weighted_average(terms, sw, sw_sum))
    eps = tf.constant(_machine_eps(p.dtype), p.dtype)
    p = tf.clip_by_value(p, eps, 1 - eps)
    if dtype is not None and dtype != p.dtype:
        p, y, sw = (tf.cast(t, dtype) for t in (p, y, sw))
        # np.average's sum of the weights
        sw_sum = tf.reduce_sum(sw) if dtype_sw_sum is None else dtype_sw_sum
    if name == "log_loss":
        terms = tf.math.xlogy(y, p)
    else:
        terms = tf.math.xlogy(y, p) + tf.math.xlogy(1 - y, 1 - p)
    return -tf.reduce_sum(_weighted_average(terms, sw, sw_sum))


def _machine_eps(dtype) -> float:
    import numpy as np

    return float(np.finfo(dtype.as_numpy_dtype).eps)


def l2_penalty(coefs, alpha, sw_sum, norms=None):
    """(alpha / 2) * sum_l ||W_l||^2 / sw_sum; intercepts are not penalised.

    ``norms``: the sum ``squared_norms(coefs)`` where the caller has it.
    """
    values = squared_norms(coefs) if norms is None else norms
    return (0.5 * alpha) * values / sw_sum


def squared_norms(coefs):
    """sum_l ||W_l||^2 over the weight matrices ``coefs``."""
    return tf.add_n([_squared_norm(w) for w in coefs])


def _squared_norm(w):
    """sum(w ** 2), with the row sums taken as a matrix-vector product: XLA's
    CPU reductions are slow, and squaring and reducing a whole weight matrix
    at every batch made an MNIST epoch take 0.229 s instead of 0.187 s
    (``benchmarks/ablations.py``)."""
    if w.shape.rank != 2 or w.shape[1] is None:
        return tf.reduce_sum(tf.square(w))
    ones = tf.ones([w.shape[1], 1], w.dtype)
    return tf.reduce_sum(tf.matmul(tf.square(w), ones))


def gradient_surrogate(z, p, y, sw, sw_sum):
    """A scalar whose gradient w.r.t. z is (p - y) * sw / sw_sum (canonical link).

    This is the output-layer delta scikit-learn backpropagates for every
    output activation (identity, exp, logistic, softmax).
    """
    delta = tf.stop_gradient((p - y) * sw[:, None])
    return tf.reduce_sum(delta * z) / sw_sum


def loss_and_grads(
    params, x, y, sw, model, alpha, scale=None, norms=None, loss_dtype=None
):
    """Reported batch objective and scikit-learn's gradients for ``params``.

    ``model`` is a forward model (see ``_network.StandardForward``): called as
    ``model(params, x)`` it returns ``(z, p)``; ``model.coefs(params)`` are the
    penalised weight matrices; ``model.spec.loss`` names the objective.
    ``scale`` (float16 training, ``_precision``): the data term's gradient is
    backpropagated multiplied by it and divided by it at the end, so that
    small float16 products do not underflow; the result is the same gradient.
    ``loss_dtype``: the reported log-loss's dtype (see ``data_loss``); the
    penalty, computed in the weights' dtype, is added in it.
    """
    sw_sum = tf.reduce_sum(sw)
    if getattr(model, "manual_backward", False):
        p, grads, penalty = _manual_grads(
            params, x, y, sw, sw_sum, model, alpha, scale, norms
        )
    else:
        with tf.GradientTape() as tape:
            tape.watch(params)
            z, p = model(params, x)
            penalty = l2_penalty(model.coefs(params), alpha, sw_sum)
            extra = getattr(model, "extra_losses", lambda: None)()
            if extra is not None:  # a Keras stack's own regularizers
                penalty = penalty + extra
            surrogate = gradient_surrogate(z, p, y, sw, sw_sum) + penalty
            surrogate = scaled(surrogate, scale)  # recorded by the tape
        grads = unscaled(connected(tape.gradient(surrogate, params), params), scale)
    loss = data_loss(model.spec.loss, y, p, sw, sw_sum, loss_dtype)
    return loss + tf.cast(penalty, loss.dtype), grads


def connected(grads, params) -> list:
    """``grads`` with zeros for the weights the loss does not reach (a
    ``stop_gradient`` or a non-differentiable operation in a hidden stack):
    as in Keras' ``fit``, they are not trained, with a warning when traced."""
    missing = [p for g, p in zip(grads, params) if g is None]
    if not missing:
        return list(grads)
    names = ", ".join(str(getattr(p, "path", None) or p.name) for p in missing)
    warn(
        f"Gradients do not exist for {names}: the loss does not depend on "
        "them (a stop_gradient or a non-differentiable operation in the "
        "hidden_stack?), so they are not trained."
    )
    return [tf.zeros_like(p) if g is None else g for g, p in zip(grads, params)]


def _manual_grads(params, x, y, sw, sw_sum, model, alpha, scale=None, norms=None):
    """``(p, grads, penalty)`` by the model's hand-written backward pass."""
    p, grads = manual_data_grads(params, x, y, sw, sw_sum, model, scale)
    grads, penalty = add_penalty(grads, model.coefs(params), alpha, sw_sum, norms)
    return p, grads, penalty


def manual_data_grads(params, x, y, sw, sw_sum, model, scale=None):
    """``(p, grads)``: the output activation and the data term's gradients
    (no penalty) by the model's hand-written backward pass. ``sw_sum``
    normalises them: the whole batch's, also for a slice of its rows."""
    activations = model.forward_all(params, x)
    p = OUTPUT_ACTIVATIONS[model.spec.out_activation](activations[-1])
    delta = (p - y) * sw[:, None] / sw_sum  # gradient_surrogate's, w.r.t. z
    grads = unscaled(model.backward(params, activations, scaled(delta, scale)), scale)
    return p, grads


def add_penalty(grads, coefs, alpha, sw_sum, norms=None):
    """``(grads, penalty)``: the L2 penalty's gradient added to the first
    ``len(coefs)`` gradients, and the penalty."""
    # d/dW of (alpha / 2) ||W||^2 / sw_sum, the scalar factor first: with a
    # division per weight XLA wrote this term out as a matrix for the two
    # Adam moments to read: 4.5-5.0 ms of a ~0.2 s MNIST epoch in XLA's
    # per-operation profile (as ``benchmarks/profile_epoch.py`` prints it)
    factor = alpha / sw_sum
    grads = list(grads)
    for i, w in enumerate(coefs):
        grads[i] = grads[i] + w * factor
    return grads, l2_penalty(coefs, alpha, sw_sum, norms)
