"""``model_``: the fitted network as a plain functional Keras model."""

import warnings

import keras
import numpy as np
import pytest
import sklearn.neural_network as sk_nn
from sklearn.datasets import load_digits, make_multilabel_classification
from sklearn.exceptions import ConvergenceWarning, NotFittedError

from tfmlp import MLPClassifier, MLPRegressor, from_sklearn

X_DIGITS, Y_DIGITS = load_digits(return_X_y=True)
X_DIGITS, Y_DIGITS = X_DIGITS[:400], Y_DIGITS[:400]
# noise makes the inputs not float32-representable, so that Keras' float32
# cast in model_.predict is actually exercised
X = X_DIGITS / 16.0 + 0.01 * np.random.RandomState(0).randn(*X_DIGITS.shape)
TARGETS = {
    "binary": (Y_DIGITS > 4).astype(int),
    "multiclass": Y_DIGITS,
    "multilabel": make_multilabel_classification(
        n_samples=len(X), n_features=5, n_classes=4, random_state=0
    )[1],
    "regression": Y_DIGITS.astype(float),
    "multioutput": np.c_[Y_DIGITS, X[:, 20:22].sum(axis=1)],
}


def _fit(kind, solver="adam", X=X, **kw):
    cls = MLPRegressor if kind in ("regression", "multioutput") else MLPClassifier
    est = cls(hidden_layer_sizes=(12,), max_iter=8, random_state=0, solver=solver)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.set_params(**kw).fit(X, TARGETS[kind])


def _expected(est, X):
    """What model_ maps X to: predict_proba (a binary classifier's two
    columns included) or predict, as 2-D."""
    if hasattr(est, "predict_proba"):
        return est.predict_proba(X)
    return est.predict(X).reshape(len(X), -1)


def _same(a, b):
    """Keras' outputs and the estimator's predictions: the same function of
    the same weights, equal to float64 rounding (the estimator predicts few
    rows in NumPy and, on the CPU, takes the first layer's product of more
    with NumPy; Keras computes with TensorFlow)."""
    np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-15)


def test_model_is_one_object():
    est = _fit("multiclass")
    model = est.model_
    assert model is est.model_
    est.predict(X)
    assert est.model_ is model


def test_unfitted_has_no_model():
    with pytest.raises(NotFittedError):
        _ = MLPClassifier().model_


@pytest.mark.parametrize(
    "kind, solver",
    [
        ("binary", "adam"),
        ("multiclass", "sgd"),
        ("multiclass", "lbfgs"),
        ("multilabel", "adam"),
        ("regression", "adam"),
        ("multioutput", "lbfgs"),
    ],
)
def test_model_outputs_equal_predictions(kind, solver):
    est = _fit(kind, solver)
    model = est.model_
    out = model(X)
    assert out.dtype == "float64"
    _same(np.asarray(out), _expected(est, X))
    # Keras' predict casts float64 input to float32 on the way in
    np.testing.assert_allclose(
        model.predict(X, verbose=0), _expected(est, X), rtol=1e-6, atol=1e-6
    )


def test_float32_model():
    X32 = X.astype(np.float32)
    est = _fit("multiclass", X=X32)
    out = est.model_(X32)
    assert out.dtype == "float32"
    proba = est.predict_proba(X32)  # few rows: in NumPy, float32 rounding
    assert proba.dtype == np.float32
    np.testing.assert_allclose(np.asarray(out), proba, rtol=1e-6, atol=1e-7)


def test_standard_layers_only():
    est = _fit("multiclass", hidden_layer_sizes=(12, 7), activation="tanh")
    model = est.model_
    assert isinstance(model, keras.Model)
    assert type(model).__name__ == "Functional"
    assert [type(layer).__name__ for layer in model.layers] == [
        "InputLayer",
        "Dense",
        "Dense",
        "Dense",
    ]
    assert [layer.name for layer in model.layers[1:]] == [
        "hidden_1",
        "hidden_2",
        "output",
    ]
    dense = model.layers[1:]
    assert [layer.units for layer in dense] == [12, 7, 10]
    assert [layer.activation.__name__ for layer in dense] == ["tanh", "tanh", "softmax"]
    for layer, coef, intercept in zip(dense, est.coefs_, est.intercepts_):
        kernel, bias = layer.get_weights()
        np.testing.assert_array_equal(kernel, coef)
        np.testing.assert_array_equal(bias, intercept)
    # a plain Keras model: its config rebuilds an equivalent model from scratch
    clone = keras.Model.from_config(model.get_config())
    clone.set_weights(model.get_weights())
    np.testing.assert_allclose(np.asarray(clone(X)), est.predict_proba(X), rtol=1e-12)


def _brier(y_true, y_pred):
    """A custom Keras loss (not the estimator's log-loss)."""
    return keras.ops.mean(keras.ops.sum(keras.ops.square(y_true - y_pred), axis=-1))


def test_keras_fit_with_custom_loss_is_seen_by_estimator():
    est = _fit("multiclass")
    model = est.model_
    before = est.predict_proba(X).copy()
    coefs_before = [c.copy() for c in est.coefs_]
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss=_brier)
    history = model.fit(
        X, np.eye(10)[TARGETS["multiclass"]], epochs=2, batch_size=64, verbose=0
    )
    assert len(history.history["loss"]) == 2
    after = est.predict_proba(X)
    assert np.abs(after - before).max() > 1e-3
    _same(np.asarray(model(X)), after)
    for layer, coef, old in zip(model.layers[1:], est.coefs_, coefs_before):
        assert not np.array_equal(coef, old)
        np.testing.assert_array_equal(coef, layer.get_weights()[0])
    # and the estimator keeps training from the Keras-trained weights
    est.set_params(warm_start=True, max_iter=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, TARGETS["multiclass"])
    _same(np.asarray(model(X)), est.predict_proba(X))


@pytest.mark.parametrize("how", ["warm_start", "partial_fit", "lbfgs"])
def test_estimator_training_changes_model_outputs(how):
    est = _fit("multiclass", solver="lbfgs" if how == "lbfgs" else "adam")
    model = est.model_
    before = np.asarray(model(X)).copy()
    if how == "partial_fit":
        est.partial_fit(X, TARGETS["multiclass"])
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            est.set_params(warm_start=True, max_iter=3).fit(X, TARGETS["multiclass"])
    assert est.model_ is model
    now = np.asarray(model(X))
    assert np.abs(now - before).max() > 1e-6
    _same(now, est.predict_proba(X))


def test_set_weights_and_coefs_edits_are_shared():
    est = _fit("regression")
    model = est.model_
    kernel, bias = model.get_layer("output").get_weights()
    model.get_layer("output").set_weights([kernel, bias + 5.0])
    np.testing.assert_allclose(est.intercepts_[-1], bias + 5.0)
    _same(est.predict(X), np.asarray(model(X)).ravel())
    est.coefs_[0][:] = 0.0  # in-place edit of the NumPy view
    est.predict(X)
    np.testing.assert_array_equal(model.get_layer("hidden_1").get_weights()[0], 0.0)
    est.coefs_[0][0, 0] = np.nan  # NaN edits are edits too, once
    est.predict(X)
    assert np.isnan(model.get_layer("hidden_1").get_weights()[0][0, 0])
    est.coefs_[0][0, 0] = 0.0
    est.predict(X)
    np.testing.assert_array_equal(model.get_layer("hidden_1").get_weights()[0], 0.0)


def test_model_of_a_converted_sklearn_estimator():
    sk = sk_nn.MLPClassifier(hidden_layer_sizes=(12,), max_iter=8, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        sk.fit(X, TARGETS["multiclass"])
    model = from_sklearn(sk).model_
    np.testing.assert_allclose(
        np.asarray(model(X)), sk.predict_proba(X), rtol=1e-10, atol=1e-12
    )


def test_pickling_keeps_the_live_model():
    """Pickling (or saving) must not detach model_ from the estimator."""
    import pickle

    from sklearn.datasets import load_iris

    from tfmlp import MLPClassifier

    X, y = load_iris(return_X_y=True)
    clf = MLPClassifier(hidden_layer_sizes=(4,), max_iter=2, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf.fit(X, y)
    model = clf.model_
    pickle.dumps(clf)
    assert clf.model_ is model


def test_model_follows_activations_changed_by_set_params():
    # predict_proba uses the new activation at once (as scikit-learn's); so
    # does model_, over the same fitted values
    y = Y_DIGITS
    kw = dict(hidden_layer_sizes=(6,), max_iter=5, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est = MLPClassifier(**kw).fit(X, y)
    assert est.model_ is not None
    est.set_params(activation="tanh")
    got = est.model_(X).numpy()
    np.testing.assert_allclose(got, est.predict_proba(X), rtol=1e-6, atol=1e-9)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.set_params(warm_start=True).fit(X, y)  # trains the model now exposed
    got = est.model_(X).numpy()
    np.testing.assert_allclose(got, est.predict_proba(X), rtol=1e-6, atol=1e-9)


def test_model_read_while_another_thread_trains_leaves_its_variables():
    """model_ read from another thread during a fit (tfmlp.export does so)
    is a model over a copy of the weights: building the shared one swaps in
    new variables, and the training went on with corrupted state."""
    import threading

    from tfmlp._base import _weights_lock

    X, y = load_digits(return_X_y=True)
    est = MLPClassifier((8,), max_iter=2, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X / 16, y)
    net = est._network()
    variables = list(net.variables)
    held, release = threading.Event(), threading.Event()

    def train_elsewhere():  # holds the weights as a fit in progress does
        with _weights_lock(est):
            held.set()
            release.wait(30)

    worker = threading.Thread(target=train_elsewhere)
    worker.start()
    try:
        assert held.wait(30)
        model = est.model_
        assert all(a is b for a, b in zip(net.variables, variables))
        kernels = [w for w in model.get_weights() if w.ndim == 2]
        for k, c in zip(kernels, est.coefs_):
            np.testing.assert_array_equal(k, c)
        assert not any(v is w for v in variables for w in model.weights)
    finally:
        release.set()
        worker.join()
    shared = est.model_  # the estimator's own variables once it is free
    assert {id(v.value) for v in shared.weights} == {id(v) for v in net.variables}
