"""The lbfgs objective's input: CSR products for sparse and mostly-zero data."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
import tensorflow as tf
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning

import tfmlp._lbfgs as lbfgs
from test_parity import assert_same_fit, fit_both
from tfmlp._data import CsrMatrix
from tfmlp._lbfgs import objective_input
from tfmlp._network import StandardForward, init_params
from tfmlp._params import NetSpec
from tfmlp._training import loss_grad_function


def _mostly_zeros(n, d, density, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.rand(n, d) * 3 - 1
    X[rng.rand(n, d) >= density] = 0.0
    return X


def _model(activation="relu", out="softmax", units=(40, 7, 3)):
    return StandardForward(NetSpec.create(len(units), activation, out))


def test_kind_follows_density_size_and_format():
    low = _mostly_zeros(2000, 600, 0.1)  # 1.2M elements, 10% nonzeros
    assert objective_input(low, _model())[1] == "csr"
    assert objective_input(sp.csr_matrix(low), _model())[1] == "csr"
    assert objective_input(sp.csr_matrix(low[:10]), _model())[1] == "csr"
    dense = _mostly_zeros(2000, 600, 0.6)
    assert objective_input(dense, _model())[1] == "dense"
    assert objective_input(low[:100], _model())[1] == "dense"  # small: dense
    # activations differentiated by a GradientTape keep the tensor paths
    assert objective_input(low, _model("gelu"))[1] == "dense"
    assert objective_input(sp.csr_matrix(low), _model("gelu"))[1] == "sparse"


def test_float32_multiplies_as_csr_only_below_its_own_density():
    # float32's dense product is faster (oneDNN): CSR pays off at fewer nonzeros
    mid, low = _mostly_zeros(2000, 600, 0.19), _mostly_zeros(2000, 600, 0.05)
    assert objective_input(mid, _model(), np.float64)[1] == "csr"
    assert objective_input(mid, _model(), np.float32)[1] == "dense"
    assert objective_input(low, _model(), np.float32)[1] == "csr"
    assert objective_input(sp.csr_matrix(mid), _model(), np.float32)[1] == "csr"


def test_kind_on_a_gpu_keeps_the_tensor_paths(monkeypatch):
    monkeypatch.setattr(lbfgs, "cpu_only", lambda: False)  # as with a GPU
    low = _mostly_zeros(2000, 600, 0.1)
    assert objective_input(low, _model())[1] == "dense"
    assert objective_input(sp.csr_matrix(low), _model())[1] == "sparse"


@pytest.mark.parametrize("out", ["softmax", "logistic", "identity", "exp"])
@pytest.mark.parametrize("activation", ["identity", "logistic", "tanh", "relu"])
def test_csr_objective_equals_the_dense_one(activation, out):
    rng = np.random.RandomState(1)
    units = [30, 8, 6, 4]
    X = _mostly_zeros(57, units[0], 0.2, seed=2)
    X[3] = 0.0  # an empty row
    coefs, intercepts = init_params(rng, units, activation, np.float64)
    params = [tf.constant(a) for a in coefs + intercepts]
    if out == "softmax":
        y = np.eye(units[-1])[rng.randint(0, units[-1], len(X))]
    else:
        y = (rng.rand(len(X), units[-1]) < 0.5).astype(float)
    y, sw = tf.constant(y), tf.constant(rng.rand(len(X)) + 0.5)
    alpha = tf.constant(0.2, tf.float64)
    model = StandardForward(NetSpec.create(len(units), activation, out))
    results = {}
    for kind, x in [
        ("dense", lbfgs.dense_tensor(X, np.float64)),
        ("csr", lbfgs.csr_handle(X, np.float64)),
        ("sparse", lbfgs.csr_tensors(sp.csr_matrix(X), np.float64)),
    ]:
        loss, grads = loss_grad_function(model, kind)(params, x, y, sw, alpha)
        results[kind] = [loss.numpy()] + [g.numpy() for g in grads]
    for kind in ("csr", "sparse"):
        for a, b in zip(results[kind], results["dense"]):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)


def test_csr_handle_reads_explicit_zeros_and_any_sparse_format():
    X = _mostly_zeros(20, 9, 0.3)
    coo = sp.coo_matrix(X)
    coo.data[0] = 0.0  # an explicit zero
    expected = coo.toarray()
    w = tf.constant(np.random.RandomState(0).rand(9, 4))
    for fmt in (coo, coo.tocsc(), coo.tocsr(), expected):
        handle = lbfgs.csr_handle(fmt, np.float64)
        fn = tf.function(lambda h, w: CsrMatrix(h, tf.float64).matmul(w))
        np.testing.assert_allclose(fn(handle, w).numpy(), expected @ w.numpy())


def test_mostly_zero_data_fits_like_sklearn():
    """A dataset past the CSR thresholds: same fit as scikit-learn's (1e-8)."""
    rng = np.random.RandomState(5)
    X = _mostly_zeros(1800, 600, 0.15, seed=5)
    y = (X[:, :30].sum(axis=1) > rng.rand(1800) * 2).astype(int) + (X[:, 0] > 0)
    model = _model("relu", "softmax", (600, 12, 3))
    assert objective_input(X, model)[1] == "csr"
    params = dict(solver="lbfgs", hidden_layer_sizes=(12,), max_iter=15, random_state=0)
    sk, tf_est = fit_both("MLPClassifier", params, X, y)
    assert_same_fit(sk, tf_est, X)
    sk, tf_est = fit_both("MLPClassifier", params, sp.csr_matrix(X), y)
    assert_same_fit(sk, tf_est, X)


def _digits_600():
    """600 digits rows scaled to [0, 1], their labels and sample weights."""
    X, y = load_digits(return_X_y=True)
    return X[:600] / 16.0, y[:600], np.random.RandomState(0).rand(600) + 0.5


def _spy(monkeypatch, name: str, pick) -> list:
    """Calls of ``lbfgs.<name>`` from now on, each recorded as
    ``pick(args, result)``."""
    real, seen = getattr(lbfgs, name), []

    def spy(*args):
        out = real(*args)
        seen.append(pick(args, out))
        return out

    monkeypatch.setattr(lbfgs, name, spy)
    return seen


@pytest.mark.parametrize("activation", ["logistic", "tanh", "identity"])
def test_csr_path_forced_on_digits_fits_like_sklearn(monkeypatch, activation):
    monkeypatch.setattr(lbfgs, "CSR_MIN_SIZE", 0)
    monkeypatch.setattr(lbfgs, "CSR_MAX_DENSITY", 1.0)
    X, y, sample_weight = _digits_600()
    seen = _spy(monkeypatch, "objective_input", lambda args, out: out[1])
    params = dict(
        solver="lbfgs",
        activation=activation,
        hidden_layer_sizes=(9, 6),
        max_iter=12,
        random_state=2,
        alpha=0.01,
    )
    sk, tf_est = fit_both(
        "MLPRegressor", params, X, y.astype(float), sample_weight=sample_weight
    )
    assert seen == ["csr"]
    assert_same_fit(sk, tf_est, X)


def test_float32_data_is_evaluated_in_float32_as_sklearn():
    # scikit-learn's L-BFGS starts from float32 weights on float32 data and
    # SciPy evaluates every point in that dtype: evaluating in float64 instead
    # took another path after a few iterations (4% apart in the weights here)
    from sklearn.neural_network import MLPClassifier as SkClassifier

    from tfmlp import MLPClassifier

    X, y = load_digits(return_X_y=True)
    X, y = (X[:500] / 16.0).astype(np.float32), y[:500]
    params = dict(hidden_layer_sizes=(16,), solver="lbfgs", max_iter=20, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        sk = SkClassifier(**params).fit(X, y)
        ours = MLPClassifier(**params).fit(X, y)
        for a, b in zip(sk.coefs_, ours.coefs_):
            assert a.dtype == b.dtype == np.float64
            assert np.abs(a - b).max() <= 1e-3 * np.abs(a).max()
        assert ours.loss_ == pytest.approx(sk.loss_, rel=1e-4)
        # a warm start from the float64 weights evaluates in float64, as SciPy
        sk.set_params(warm_start=True, max_iter=3).fit(X, y)
        ours.set_params(warm_start=True, max_iter=3).fit(X, y)
    assert ours.loss_ == pytest.approx(sk.loss_, rel=1e-3)


@pytest.mark.parametrize("n_classes", [2, 3])
def test_float32_classifier_objective_value_is_float64_as_sklearn(n_classes):
    # scikit-learn's float32 log-loss is computed in float64 (SciPy's xlogy
    # of boolean targets): the value its line search reads is not float32-
    # rounded (both still part by the float32 forward pass's rounding).
    from sklearn.neural_network import MLPClassifier as SkClassifier

    from tfmlp import MLPClassifier

    rng = np.random.RandomState(0)
    X = rng.randint(0, 5, size=(60, 4)).astype(np.float32)
    y = rng.randint(0, n_classes, 60)
    sw = rng.uniform(0.5, 2.0, 60).astype(np.float32)
    params = dict(solver="lbfgs", max_fun=1, random_state=0, alpha=0.01)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for weights in (None, sw):
            sk = SkClassifier(**params).fit(X, y, sample_weight=weights)
            ours = MLPClassifier(**params).fit(X, y, sample_weight=weights)
            assert np.float32(ours.loss_) != ours.loss_  # not float32-rounded
            assert ours.loss_ == pytest.approx(sk.loss_, rel=1e-6)


# ------------------------------------------- the objective over slices of rows
def _objective_case(activation, out, n=57, dtype=np.float64, seed=1):
    rng = np.random.RandomState(seed)
    units = [30, 8, 6, 4]
    X = _mostly_zeros(n, units[0], 0.2, seed=2)
    X[3:12] = 0.0  # empty rows: a whole slice of them below
    coefs, intercepts = init_params(rng, units, activation, dtype)
    params = [tf.constant(a) for a in coefs + intercepts]
    if out == "softmax":
        y = np.eye(units[-1])[rng.randint(0, units[-1], n)]
    else:
        y = (rng.rand(n, units[-1]) < 0.5).astype(float)
    y = tf.constant(y.astype(dtype))
    sw = tf.constant((rng.rand(n) + 0.5).astype(dtype))
    return X.astype(dtype), params, y, sw, tf.constant(0.2, tf.float64), units


def _objective(model, X, params, y, sw, alpha, kind, rows):
    dtype = y.dtype.as_numpy_dtype
    if kind == "dense":
        x = lbfgs.dense_tensor(X, dtype)
    else:  # forced: these sizes are below the CSR thresholds
        x = lbfgs.objective_input(X, model, dtype, rows)[0] if rows else None
        x = lbfgs.csr_handle(X, dtype) if x is None else x
    loss, grads = loss_grad_function(model, kind, rows)(params, x, y, sw, alpha)
    return [loss.numpy()] + [g.numpy() for g in grads]


@pytest.mark.parametrize("kind", ["dense", "csr"])
@pytest.mark.parametrize(
    "activation, out, loss",
    [
        ("relu", "softmax", "log_loss"),
        ("tanh", "logistic", "binary_log_loss"),
        ("logistic", "identity", "squared_error"),
        ("identity", "exp", "poisson"),
    ],
)
def test_objective_over_slices_of_rows_equals_one_pass(
    monkeypatch, kind, activation, out, loss
):
    monkeypatch.setattr(lbfgs, "CSR_MIN_SIZE", 0)
    X, params, y, sw, alpha, units = _objective_case(activation, out)
    model = StandardForward(NetSpec.create(len(units), activation, out, loss=loss))
    whole = _objective(model, X, params, y, sw, alpha, kind, 0)
    for rows in (1, 9, 20, 56, 57, 100):  # a last slice of 1, 9, 17 ... rows
        sliced = _objective(model, X, params, y, sw, alpha, kind, rows)
        for a, b in zip(sliced, whole):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)


def test_float32_objective_over_slices_reports_the_float64_log_loss(monkeypatch):
    # the float32 evaluation's log-loss is summed in float64 with the weights'
    # float64 sum over all rows (not each slice's); float32 products of other
    # row counts may round differently
    monkeypatch.setattr(lbfgs, "CSR_MIN_SIZE", 0)
    monkeypatch.setattr(lbfgs, "CSR_MAX_DENSITY_FLOAT32", 1.0)
    X, params, y, sw, alpha, units = _objective_case("relu", "softmax", n=90)
    X, y, sw = X.astype(np.float32), tf.cast(y, tf.float32), tf.cast(sw, tf.float32)
    params = [tf.cast(p, tf.float32) for p in params]
    model = StandardForward(NetSpec.create(len(units), "relu", "softmax"))
    for kind in ("dense", "csr"):
        whole = _objective(model, X, params, y, sw, alpha, kind, 0)
        sliced = _objective(model, X, params, y, sw, alpha, kind, 13)
        assert whole[0].dtype == sliced[0].dtype == np.float64
        assert sliced[0] == pytest.approx(whole[0], rel=1e-6)
        for a, b in zip(sliced[1:], whole[1:]):
            assert a.dtype == np.float32
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)


def test_pass_rows_follow_the_widest_layer_the_model_and_the_device(monkeypatch):
    shapes = [(784, 100), (100, 10), (100,), (10,)]
    X = np.zeros((60_000, 784))
    rows = lbfgs.pass_rows(X, _model(), shapes)
    assert rows == lbfgs.PASS_VALUES // 100 // 64 * 64  # 64-byte aligned slices
    wide = [(784, 3000), (3000, 10), (3000,), (10,)]
    assert lbfgs.pass_rows(X, _model(), wide) == lbfgs.PASS_MIN_ROWS
    assert lbfgs.pass_rows(X[: 2 * rows - 1], _model(), shapes) == 0  # one pass
    assert lbfgs.pass_rows(X[: 2 * rows], _model(), shapes) == rows
    assert lbfgs.pass_rows(X, _model("gelu"), shapes) == 0  # a GradientTape
    monkeypatch.setattr(lbfgs, "cpu_only", lambda: False)  # as with a GPU
    assert lbfgs.pass_rows(X, _model(), shapes) == 0


@pytest.mark.parametrize("form", ["dense", "csr", "sparse csr"])
def test_fit_over_slices_of_rows_fits_like_sklearn(monkeypatch, form):
    monkeypatch.setattr(lbfgs, "PASS_VALUES", 1)
    monkeypatch.setattr(lbfgs, "PASS_MIN_ROWS", 170)  # 600 rows: 4 slices
    if form != "dense":
        monkeypatch.setattr(lbfgs, "CSR_MIN_SIZE", 0)
        monkeypatch.setattr(lbfgs, "CSR_MAX_DENSITY", 1.0)
    X, y, sample_weight = _digits_600()
    X = sp.csr_matrix(X) if form == "sparse csr" else X
    seen = _spy(monkeypatch, "loss_grad_function", lambda args, out: args[1:])
    params = dict(
        solver="lbfgs", hidden_layer_sizes=(9, 6), max_iter=12, random_state=2
    )
    sk, tf_est = fit_both("MLPClassifier", params, X, y, sample_weight=sample_weight)
    assert seen == [("dense" if form == "dense" else "csr", 170)]  # (kind, rows)
    assert_same_fit(sk, tf_est, X)
