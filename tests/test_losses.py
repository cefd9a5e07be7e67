"""The objective's gradients: the hand-written backward pass against a tape."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import tensorflow as tf

from tfmlp._data import csr_tensors, sparse_rows
from tfmlp._losses import _squared_norm, l2_penalty, loss_and_grads
from tfmlp._network import StandardForward, init_params
from tfmlp._params import NetSpec


class TapeForward(StandardForward):
    """The same network, differentiated by a GradientTape."""

    manual_backward = False


def _problem(activation, out_activation, sparse, dtype=np.float64):
    rng = np.random.RandomState(0)
    n, units = 23, [6, 5, 4, 3]
    X = rng.rand(n, units[0]) * (rng.rand(n, units[0]) < 0.5)
    coefs, intercepts = init_params(rng, units, activation, dtype)
    params = [tf.Variable(a) for a in coefs + intercepts]
    if out_activation == "softmax":
        y = np.eye(units[-1])[rng.randint(0, units[-1], n)]
    elif out_activation == "logistic":
        y = (rng.rand(n, units[-1]) < 0.5).astype(float)
    else:
        y = rng.rand(n, units[-1]) * 2
    if sparse:
        x = sparse_rows(csr_tensors(sp.csr_matrix(X), dtype), 0, n)
    else:
        x = tf.constant(X.astype(dtype))
    sw = tf.constant(rng.rand(n).astype(dtype) + 0.5)
    spec = NetSpec.create(len(units), activation, out_activation)
    return params, x, tf.constant(y.astype(dtype)), sw, spec


@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "sparse"])
@pytest.mark.parametrize("out_activation", ["identity", "softmax", "logistic", "exp"])
@pytest.mark.parametrize("activation", ["identity", "logistic", "tanh", "relu"])
def test_manual_backward_matches_the_tape(activation, out_activation, sparse):
    params, x, y, sw, spec = _problem(activation, out_activation, sparse)
    manual, tape = StandardForward(spec), TapeForward(spec)
    assert manual.manual_backward and not tape.manual_backward
    alpha = tf.constant(0.3, tf.float64)
    loss_m, grads_m = loss_and_grads(params, x, y, sw, manual, alpha)
    loss_t, grads_t = loss_and_grads(params, x, y, sw, tape, alpha)
    assert float(loss_m) == pytest.approx(float(loss_t), rel=1e-14)
    assert len(grads_m) == len(params)
    for gm, gt, p in zip(grads_m, grads_t, params):
        assert gm.shape == p.shape and gm.dtype == p.dtype
        np.testing.assert_allclose(gm.numpy(), gt.numpy(), rtol=1e-12, atol=1e-15)


def test_extra_activations_use_the_tape():
    spec = NetSpec.create(3, "gelu", "softmax")
    assert not StandardForward(spec).manual_backward


@pytest.mark.parametrize("shape", [(7, 5), (1, 9), (9,), (4, 1)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_squared_norm_and_penalty(shape, dtype):
    w = np.random.RandomState(1).randn(*shape).astype(dtype)
    got = _squared_norm(tf.constant(w)).numpy()
    assert got.dtype == dtype
    np.testing.assert_allclose(got, np.dot(w.ravel(), w.ravel()), rtol=1e-6)
    pen = l2_penalty([tf.constant(w), tf.constant(2 * w)], 0.5, tf.constant(4, dtype))
    np.testing.assert_allclose(pen.numpy(), 0.25 * 5 * (w**2).sum() / 4, rtol=1e-6)
