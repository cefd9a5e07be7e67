"""Prediction of small inputs in NumPy (``tfmlp._host_forward``) and the
weight synchronisation it relies on."""

from __future__ import annotations

import warnings

import keras
import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.datasets import load_digits, make_multilabel_classification
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier as SkClassifier
from sklearn.neural_network import MLPRegressor as SkRegressor

import tfmlp._host_forward as host
import tfmlp._training as training
from tfmlp import MLPClassifier, MLPRegressor, from_sklearn

warnings.filterwarnings("ignore", category=ConvergenceWarning)


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X[:400] / 16.0, y[:400]


@pytest.fixture
def graph_calls(monkeypatch):
    """Count calls of compiled functions (only prediction runs any while
    a test predicts)."""
    calls = []
    call = training._Compiled.__call__

    def counting(self, *args):
        calls.append(1)
        return call(self, *args)

    monkeypatch.setattr(training._Compiled, "__call__", counting)
    return calls


def _graph(est, method, X):
    """``est.method(X)`` through the compiled function (host path off)."""
    limit = host.MAX_VALUES
    host.MAX_VALUES = -1
    try:
        return getattr(est, method)(X)
    finally:
        host.MAX_VALUES = limit


def _close(a, b, dtype):
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * 1e-2)


@pytest.mark.parametrize("activation", ["identity", "logistic", "tanh", "relu"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_small_classifier_predictions_skip_the_graph(
    digits, activation, dtype, graph_calls
):
    X, y = digits
    X = X.astype(dtype)
    est = MLPClassifier((12, 7), activation=activation, max_iter=5, random_state=0)
    est.fit(X, y)
    graph_calls.clear()
    proba = est.predict_proba(X[:50])
    labels = est.predict(X[:50])
    hidden = est.transform(X[:50])
    assert graph_calls == []  # all three in NumPy
    assert proba.dtype == dtype and hidden.dtype == dtype and hidden.shape == (50, 7)
    _close(proba, _graph(est, "predict_proba", X[:50]), dtype)
    _close(hidden, _graph(est, "transform", X[:50]), dtype)
    np.testing.assert_array_equal(labels, _graph(est, "predict", X[:50]))
    assert graph_calls  # the reference really went through the graph


@pytest.mark.parametrize(
    "case", ["binary", "multilabel", "regressor", "multioutput", "poisson"]
)
def test_output_activations_match_the_graph_and_sklearn(case):
    rng = np.random.RandomState(0)
    if case in ("binary", "multilabel"):
        X, Y = make_multilabel_classification(120, 6, n_classes=3, random_state=0)
        y = Y[:, 0] if case == "binary" else Y
        ours, theirs = MLPClassifier, SkClassifier
    else:
        X = rng.rand(120, 6)
        y = X @ rng.rand(6, 2) + 0.1
        y = y[:, 0] if case != "multioutput" else y
        ours, theirs = MLPRegressor, SkRegressor
    kw = {"loss": "poisson"} if case == "poisson" else {}
    params = dict(hidden_layer_sizes=(9,), max_iter=30, random_state=0, **kw)
    est, ref = ours(**params).fit(X, y), theirs(**params).fit(X, y)
    method = "predict_proba" if ours is MLPClassifier else "predict"
    ours_out = getattr(est, method)(X)
    np.testing.assert_allclose(ours_out, _graph(est, method, X), rtol=1e-12)
    np.testing.assert_allclose(ours_out, getattr(ref, method)(X), rtol=1e-8)
    if ours is MLPClassifier:
        np.testing.assert_array_equal(est.predict(X), ref.predict(X))


def test_sparse_rows_and_no_hidden_layer(digits, graph_calls):
    X, y = digits
    S = sp.csr_matrix(X[:60])
    est = MLPClassifier((10,), max_iter=5, random_state=0).fit(X, y)
    flat = MLPRegressor(hidden_layer_sizes=(), max_iter=5, random_state=0)
    flat.fit(X, y.astype(float))
    graph_calls.clear()
    np.testing.assert_allclose(est.predict_proba(S), est.predict_proba(X[:60]))
    np.testing.assert_allclose(est.predict_proba(S.tocsc()), est.predict_proba(S))
    out = flat.transform(X[:60])  # no hidden layer: the input, as a new array
    assert graph_calls == []
    np.testing.assert_array_equal(out, X[:60])
    out[:] = -1.0
    assert X[0, 0] != -1.0
    np.testing.assert_array_equal(flat.transform(S), X[:60])


def test_large_inputs_and_other_networks_use_the_graph(digits, graph_calls):
    X, y = digits
    est = MLPClassifier((10,), max_iter=5, random_state=0).fit(X, y)
    graph_calls.clear()
    rows = host.MAX_VALUES // 20 + 1  # 10 hidden + 10 output units per row
    est.predict_proba(np.resize(X, (rows, X.shape[1])))
    assert graph_calls  # past MAX_VALUES: compiled
    for other in (
        MLPClassifier((10,), activation="gelu", max_iter=3, random_state=0),
        MLPClassifier((10,), dropout=0.1, max_iter=3, random_state=0),
    ):
        other.fit(X, y)
        graph_calls.clear()
        other.predict_proba(X[:5])
        assert graph_calls


def test_keras_and_in_place_edits_are_seen(digits):
    """The NumPy path reads the estimator's arrays after synchronising them
    with the variables, whichever side changed."""
    X, y = digits
    est = MLPClassifier((10,), max_iter=5, random_state=0).fit(X, y)
    before = est.predict_proba(X[:20])
    est.coefs_[1][:] *= 2.0  # in place, NumPy side
    edited = est.predict_proba(X[:20])
    assert not np.allclose(before, edited)
    np.testing.assert_allclose(edited, _graph(est, "predict_proba", X[:20]))
    model = est.model_
    layer = model.layers[-1]
    kernel, bias = layer.get_weights()
    layer.set_weights([kernel * 0.5, bias])  # Keras side: back to the start
    np.testing.assert_allclose(est.predict_proba(X[:20]), before, rtol=1e-12)
    np.testing.assert_allclose(
        est.predict_proba(X[:20]), model(X[:20]).numpy(), rtol=1e-12
    )


def test_predictions_during_fit_use_the_current_weights(digits):
    """A callback that predicts mid-fit sees the weights being trained, not
    those at the start of the fit."""
    X, y = digits
    seen = []

    class Probe(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            host_out = est.predict_proba(X[:10])
            seen.append((host_out, self.model(X[:10]).numpy()))

    est = MLPClassifier((10,), max_iter=4, random_state=0, callbacks=[Probe()])
    est.fit(X, y)
    assert len(seen) == 4
    for host_out, keras_out in seen:
        np.testing.assert_allclose(host_out, keras_out, rtol=1e-12)
    assert not np.allclose(seen[0][0], seen[-1][0])


def test_refit_and_failed_fit_keep_predictions_consistent(digits):
    X, y = digits
    est = MLPClassifier((10,), max_iter=3, random_state=0).fit(X, y)
    first = est.predict_proba(X[:20])
    with pytest.raises(ValueError):
        est.partial_fit(X[:20], np.full(20, 99))  # a class not seen before
    np.testing.assert_array_equal(est.predict_proba(X[:20]), first)
    est.set_params(max_iter=6).fit(X, y)
    np.testing.assert_allclose(
        est.predict_proba(X[:20]), _graph(est, "predict_proba", X[:20])
    )
    assert not np.allclose(est.predict_proba(X[:20]), first)


def test_fit_failing_mid_training_restores_everything(digits):
    """A callback that raises after an epoch: the estimator's lists, weights,
    optimizer and predictions are those from before the failed call."""
    X, y = digits

    class Boom(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            raise RuntimeError("boom")

    est = MLPClassifier((10,), max_iter=3, random_state=0, early_stopping=True)
    est.fit(X, y)
    before = {
        "loss_curve_": list(est.loss_curve_),
        "validation_scores_": list(est.validation_scores_),
        "coefs_": [c.copy() for c in est.coefs_],
        "proba": est.predict_proba(X[:20]),
        "t_": est.t_,
    }
    moments = [a.copy() for a in est._optimizer.__getstate__()["_slot_arrays"]]
    est.set_params(callbacks=[Boom()], warm_start=True)
    with pytest.raises(RuntimeError, match="boom"):
        est.fit(X, y)
    assert est.loss_curve_ == before["loss_curve_"]
    assert est.validation_scores_ == before["validation_scores_"]
    assert est.t_ == before["t_"]
    for a, b in zip(est.coefs_, before["coefs_"]):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(est.predict_proba(X[:20]), before["proba"])
    np.testing.assert_allclose(
        _graph(est, "predict_proba", X[:20]), before["proba"], rtol=1e-12
    )
    for a, b in zip(est._optimizer.__getstate__()["_slot_arrays"], moments):
        np.testing.assert_array_equal(a, b)
    est.set_params(callbacks=None, early_stopping=False)
    est.partial_fit(X, y)  # and it trains on from there
    assert len(est.loss_curve_) == len(before["loss_curve_"]) + 1


def _blas_threads_seen(est, X, monkeypatch) -> list:
    """BLAS thread counts during the hidden activation of a prediction."""
    from threadpoolctl import ThreadpoolController

    seen = []
    relu = host._ACTIVATIONS["relu"]

    def spy(a):
        info = ThreadpoolController().select(user_api="blas").info()
        seen.append(max(i["num_threads"] for i in info))
        return relu(a)

    monkeypatch.setitem(host._ACTIVATIONS, "relu", spy)
    est.predict(X)
    monkeypatch.undo()
    return seen


def test_small_products_run_on_one_blas_thread(digits, monkeypatch):
    """A second BLAS thread can wait a scheduler slice right after TensorFlow
    has worked: small host products use one, and the limit is undone."""
    from threadpoolctl import ThreadpoolController

    X, y = digits
    est = MLPClassifier(hidden_layer_sizes=(20,), max_iter=3, random_state=0)
    est.fit(X, y)
    blas = ThreadpoolController().select(user_api="blas")
    with blas.limit(limits=2):
        before = blas.info()
        assert _blas_threads_seen(est, X[:50], monkeypatch) == [1]
        assert blas.info() == before  # restored
        monkeypatch.setattr(host, "ONE_THREAD_MACS", 0)  # every product "large"
        seen = _blas_threads_seen(est, X[:50], monkeypatch)
        assert seen == [max(i["num_threads"] for i in before)]


@pytest.mark.parametrize("dtype, scale", [(np.float32, 100.0), (np.float64, 1e4)])
def test_saturated_outputs_are_the_same_on_every_path(dtype, scale):
    # the output activation is scikit-learn's NumPy one on every path: the
    # graph's float32 exp and its flushed float64 subnormals gave other
    # probabilities (and finite log-probabilities where scikit-learn's are
    # -inf) once the outputs saturate
    X, y = load_digits(return_X_y=True)
    X = (X[:300] / 16.0).astype(dtype)
    for target, kw in [(y[:300] > 4, {"activation": "identity"}), (y[:300], {})]:
        params = dict(hidden_layer_sizes=(10,), max_iter=30, random_state=0, **kw)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            sk = SkClassifier(**params).fit(X, target)
        est = from_sklearn(sk)
        A = X * scale
        expected = sk.predict_log_proba(A)
        small = est.predict_log_proba(A)  # NumPy
        graph = _graph(est, "predict_log_proba", A)  # the compiled function
        for got in (small, graph):
            np.testing.assert_array_equal(np.isinf(got), np.isinf(expected))
            finite = np.isfinite(expected)
            np.testing.assert_allclose(
                got[finite], expected[finite], rtol=1e-5, atol=1e-6
            )
