"""Every public entry point rejects bad input with a clear ValueError/TypeError,
never a raw TensorFlow error, and never changes an already fitted model."""

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.datasets import load_iris
from sklearn.exceptions import ConvergenceWarning, NotFittedError

from tfmlp import MLPClassifier, MLPRegressor

X, Y = load_iris(return_X_y=True)
YR = X[:, 0] + Y


def _fitted(cls, **kw):
    est = cls(hidden_layer_sizes=(5,), max_iter=5, random_state=0, **kw)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(X, Y if cls is MLPClassifier else YR)


def _nan(a):
    a = a.copy()
    a[3, 1] = np.nan
    return a


def _inf(a):
    a = a.copy()
    a[0, 0] = np.inf
    return a


FIT_CASES = [
    ("nan", lambda: (_nan(X), Y), {}, ValueError, "NaN"),
    ("inf", lambda: (_inf(X), Y), {}, ValueError, "infinity"),
    ("1d X", lambda: (X[:, 0], Y), {}, ValueError, "Expected 2D array"),
    ("3d X", lambda: (X[:, :, None], Y), {}, ValueError, "dim"),
    ("complex", lambda: (X + 1j, Y), {}, ValueError, "Complex data not supported"),
    ("strings", lambda: (np.array([["a", "b"]] * 150), Y), {}, ValueError, "string"),
    ("empty", lambda: (X[:0], Y[:0]), {}, ValueError, "0 sample"),
    ("length mismatch", lambda: (X, Y[:-1]), {}, ValueError, "inconsistent"),
    (
        "bad sw shape",
        lambda: (X, Y),
        {"sample_weight": np.ones(3)},
        ValueError,
        r"sample_weight.shape",
    ),
    (
        "2d sw",
        lambda: (X, Y),
        {"sample_weight": np.ones((150, 2))},
        ValueError,
        "1D array",
    ),
    (
        "zero sw",
        lambda: (X, Y),
        {"sample_weight": np.zeros(150)},
        ValueError,
        "non-zero",
    ),
    ("continuous y", lambda: (X, X[:, 0]), {}, ValueError, "Unknown label type"),
]


@pytest.mark.parametrize(
    "name, make, kwargs, exc, match", FIT_CASES, ids=[c[0] for c in FIT_CASES]
)
def test_fit_rejects_and_keeps_model(name, make, kwargs, exc, match):
    clf = _fitted(MLPClassifier)
    before = clf.predict_proba(X)
    Xb, yb = make()
    with pytest.raises(exc, match=match):
        clf.fit(Xb, yb, **kwargs)
    np.testing.assert_array_equal(before, clf.predict_proba(X))
    with pytest.raises(exc, match=match):
        MLPClassifier(max_iter=2).fit(Xb, yb, **kwargs)


PREDICT_CASES = [
    ("wrong features", lambda: X[:, :3], ValueError, "expecting 4 features"),
    ("nan", lambda: _nan(X), ValueError, "NaN"),
    ("1d", lambda: X[0], ValueError, "Expected 2D array"),
    ("empty", lambda: X[:0], ValueError, "0 sample"),
    (
        "sparse wrong features",
        lambda: sp.csr_matrix(X[:, :2]),
        ValueError,
        "expecting 4 features",
    ),
]


@pytest.mark.parametrize(
    "name, make, exc, match", PREDICT_CASES, ids=[c[0] for c in PREDICT_CASES]
)
@pytest.mark.parametrize("method", ["predict", "predict_proba", "transform"])
def test_predict_rejects(name, make, exc, match, method):
    clf = _fitted(MLPClassifier)
    with pytest.raises(exc, match=match):
        getattr(clf, method)(make())


def test_feature_names_checked():
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame(X, columns=list("abcd"))
    clf = _fitted(MLPClassifier).fit(df, Y)
    with pytest.raises(ValueError, match="feature names"):
        clf.predict(df.rename(columns={"a": "z"}))


def test_unfitted_entry_points():
    for method in ("predict", "predict_proba", "predict_log_proba", "transform"):
        with pytest.raises(NotFittedError):
            getattr(MLPClassifier(), method)(X)


def test_partial_fit_errors_keep_model():
    clf = MLPClassifier(hidden_layer_sizes=(5,), random_state=0)
    with pytest.raises(ValueError, match="classes must be passed"):
        clf.partial_fit(X, Y)
    clf.partial_fit(X, Y, classes=[0, 1, 2])
    before = clf.predict_proba(X)
    with pytest.raises(ValueError, match="has classes not in"):
        clf.partial_fit(X, np.full(150, 5))
    with pytest.raises(ValueError, match="is not the same as on last call"):
        clf.partial_fit(X, Y, classes=[0, 1])
    with pytest.raises(ValueError, match="expecting 4 features"):
        clf.partial_fit(X[:, :2], Y)
    np.testing.assert_array_equal(before, clf.predict_proba(X))


def test_a_refused_first_partial_fit_leaves_the_estimator_unfitted():
    # classes= that do not cover the labels: the corrected call must not be
    # refused as naming other classes than the failed one
    import tensorflow as tf

    text = np.array(["a", "b", "c"])[Y]
    ds = tf.data.Dataset.from_tensor_slices((X, text)).batch(32)
    for data, target in ((X, text), (ds, None)):
        clf = MLPClassifier(hidden_layer_sizes=(5,), max_iter=3, random_state=0)
        with pytest.raises(ValueError):
            clf.partial_fit(data, target, classes=[0, 1, 2])
        assert not hasattr(clf, "classes_")
        assert "_label_binarizer" not in clf.__dict__
        with pytest.raises(NotFittedError):
            clf.predict(X)
        clf.partial_fit(data, target, classes=["a", "b", "c"])
        assert list(clf.classes_) == ["a", "b", "c"]


def test_regressor_targets():
    reg = _fitted(MLPRegressor)
    before = reg.predict(X)
    with pytest.raises(ValueError, match="numeric targets"):
        reg.fit(X, np.array(["a"] * 150))
    with pytest.raises(TypeError, match="numeric targets"):  # as scikit-learn's
        reg.fit(X, np.array(["a"] * 150))
    with pytest.raises(ValueError, match="NaN"):
        reg.fit(X, np.where(np.arange(150) == 3, np.nan, YR))
    with pytest.raises(ValueError, match="non-negative"):
        MLPRegressor(loss="poisson", max_iter=2).fit(X, YR - 10)
    np.testing.assert_array_equal(before, reg.predict(X))


@pytest.mark.parametrize(
    "params",
    [
        {"alpha": -1},
        {"hidden_layer_sizes": (0,)},
        {"activation": "softsign"},
        {"dropout": 1.5},
        {"compute_dtype": "int8"},
        {"callbacks": 3},
    ],
)
def test_invalid_parameters_keep_model(params):
    clf = _fitted(MLPClassifier)
    before = clf.predict_proba(X)
    old = {k: v for k, v in clf.get_params().items() if k in params}
    with pytest.raises((ValueError, TypeError)):
        clf.set_params(**params).fit(X, Y)
    clf.set_params(**old)  # predict uses the current parameters, as in sklearn
    np.testing.assert_array_equal(before, clf.predict_proba(X))


@pytest.mark.parametrize("sizes", [(5.5,), (5.0,), (True,), (4, 2.5)])
def test_hidden_layer_sizes_must_be_integers(sizes):
    # scikit-learn fails on these as well (a TypeError from NumPy)
    clf = _fitted(MLPClassifier)
    before = clf.predict_proba(X)
    with pytest.raises(TypeError, match="hidden_layer_sizes must contain integers"):
        clf.set_params(hidden_layer_sizes=sizes).fit(X, Y)
    clf.set_params(hidden_layer_sizes=(5,))
    np.testing.assert_array_equal(before, clf.predict_proba(X))
    assert MLPClassifier(hidden_layer_sizes=(np.int64(3),), max_iter=1).fit(X, Y)


@pytest.mark.parametrize("solver", ["adam", "sgd", "lbfgs"])
def test_changed_number_of_outputs_keeps_model(solver):
    Y2 = np.c_[YR, -YR]
    reg = MLPRegressor(hidden_layer_sizes=(4,), max_iter=3, solver=solver)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        reg.set_params(random_state=0).fit(X, Y2)
    before = reg.predict(X)
    calls = [lambda: reg.set_params(warm_start=True).fit(X, YR)]
    calls.append(lambda: reg.set_params(warm_start=True).fit(X, np.c_[Y2, YR]))
    if solver != "lbfgs":
        calls.append(lambda: reg.partial_fit(X, np.c_[Y2, YR]))
        calls.append(lambda: reg.partial_fit(X, YR))
    for call in calls:
        with pytest.raises(ValueError, match=r"y has \d output\(s\) but this"):
            call()
        assert reg.n_outputs_ == 2
        np.testing.assert_array_equal(before, reg.predict(X))


def test_non_finite_loss_raises_and_keeps_model():
    # Adam keeps the weights finite while the squared error overflows
    reg = _fitted(MLPRegressor)
    before, curve = reg.predict(X), list(reg.loss_curve_)
    with pytest.raises(ValueError, match="non-finite loss"):
        reg.set_params(warm_start=True).fit(X, np.full(len(X), 1e200))
    np.testing.assert_array_equal(before, reg.predict(X))
    assert reg.loss_curve_ == curve
    with pytest.raises(ValueError, match="non-finite loss"):
        MLPRegressor(max_iter=2).fit(X, np.full(len(X), 1e200))


def test_class_weight_with_y_none_is_sklearns_error():
    with pytest.raises(ValueError, match="requires y to be passed"):
        MLPClassifier(class_weight="balanced").fit(X, None)


@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
def test_transform_dtype_tag_holds(solver):
    # lbfgs trains float64 weights (as scikit-learn's L-BFGS), so its
    # transform keeps float64 only
    from sklearn.utils.estimator_checks import check_transformer_preserve_dtypes

    est = MLPClassifier(solver=solver, max_iter=20, random_state=0)
    want = ["float64"] if solver == "lbfgs" else ["float64", "float32"]
    assert est.__sklearn_tags__().transformer_tags.preserves_dtype == want
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        check_transformer_preserve_dtypes(type(est).__name__, est)


@pytest.mark.parametrize("cls", [MLPClassifier, MLPRegressor])
@pytest.mark.parametrize(
    "solver, sw, kw",
    [
        ("adam", np.r_[np.zeros(10), np.ones(140)], dict(batch_size=10, shuffle=False)),
        ("sgd", np.tile([1.0, -1.0], 75), dict(batch_size=2)),
        ("adam", np.tile([1.0, -1.0], 75), dict(batch_size=2, jit_compile=True)),
        ("lbfgs", np.tile([1.0, -1.0], 75), {}),
    ],
)
def test_weights_summing_to_zero_are_sklearns_error(cls, solver, sw, kw):
    # scikit-learn: np.average's ZeroDivisionError at the first such batch;
    # tfmlp's error is that and a ValueError, raised before any NaN training
    from sklearn.neural_network import MLPClassifier as SkC
    from sklearn.neural_network import MLPRegressor as SkR

    y = Y if cls is MLPClassifier else YR
    sk = SkC if cls is MLPClassifier else SkR
    params = dict(hidden_layer_sizes=(5,), solver=solver, max_iter=2, random_state=0)
    with pytest.raises(ZeroDivisionError, match="Weights sum to zero"):
        sk(**params, **{k: v for k, v in kw.items() if k != "jit_compile"}).fit(
            X, y, sample_weight=sw
        )
    est = _fitted(cls)
    before = [c.copy() for c in est.coefs_]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no ConvergenceWarning from NaN epochs
        with pytest.raises(ValueError, match="Weights sum to zero") as info:
            est.set_params(**params, **kw).fit(X, y, sample_weight=sw)
    assert isinstance(info.value, ZeroDivisionError)
    for a, b in zip(before, est.coefs_):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    "solver, new",
    [(s, n) for s in ("adam", "sgd", "lbfgs") for n in [(7, 3), ()]]
    + [("lbfgs", (7,))],
)
def test_continuing_with_another_number_of_hidden_layers_is_refused(solver, new):
    # warm_start / partial_fit continue the fitted network: scikit-learn
    # raises an unrelated error or trains a mispacked network here
    est = _fitted(MLPClassifier, solver=solver, warm_start=True)
    before = [c.copy() for c in est.coefs_]
    est.set_params(hidden_layer_sizes=new)
    with pytest.raises(
        ValueError, match=r"does not match the fitted network's hidden layers \(5,\)"
    ):
        est.fit(X, Y)
    if solver != "lbfgs":
        with pytest.raises(ValueError, match="does not match"):
            est.partial_fit(X, Y)
    for a, b in zip(before, est.coefs_):
        np.testing.assert_array_equal(a, b)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.set_params(warm_start=False).fit(X, Y)  # a new network
    assert [c.shape[1] for c in est.coefs_[:-1]] == list(new)


def test_fit_classes_with_arrays_must_be_the_labels_of_y():
    X, y = load_iris(return_X_y=True)
    labels = np.array(["a", "b", "c"])[y]
    clf = MLPClassifier(hidden_layer_sizes=(4,), max_iter=3, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X, labels, classes=["c", "a", "b"])  # the same labels: accepted
        fitted = [c.copy() for c in clf.coefs_]
        for classes in (["a", "b", "c", "d"], ["a", "b"], [0, 1, 2]):
            with pytest.raises(ValueError, match="does not match the labels of y"):
                clf.fit(X, labels, classes=classes)
    np.testing.assert_array_equal(clf.classes_, ["a", "b", "c"])
    for before, after in zip(fitted, clf.coefs_):
        np.testing.assert_array_equal(before, after)


@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
def test_sparse_regression_targets_are_refused_clearly(solver):
    reg = _fitted(MLPRegressor)
    before = reg.predict(X)
    Y = np.c_[YR, -YR]
    for sparse_y in (sp.csr_matrix(Y), sp.csc_array(Y), sp.csr_matrix(YR[:, None])):
        fresh = MLPRegressor(solver=solver, max_iter=2, random_state=0)
        with pytest.raises(TypeError, match="Sparse data was passed for y"):
            fresh.fit(X, sparse_y)
        with pytest.raises(TypeError, match="Sparse data was passed for y"):
            reg.partial_fit(X, sparse_y)
    with pytest.raises(TypeError, match="Sparse data was passed for validation"):
        reg.fit(X, YR, validation_data=(X, sp.csr_matrix(YR[:, None])))
    np.testing.assert_array_equal(before, reg.predict(X))


@pytest.mark.parametrize("dropout", [None, 0.1])
def test_an_invalid_activation_set_after_fit_is_a_value_error(dropout, tmp_path):
    import tfmlp

    clf = _fitted(MLPClassifier, dropout=dropout)
    before = clf.predict_proba(X)
    clf.set_params(activation="Relu")
    uses_parameter = [  # a dropout network keeps the stack it was fitted with
        lambda: clf.predict_proba(np.repeat(X, 200, axis=0)),  # the graph path
        lambda: clf.transform(X),
        lambda: clf.model_,
        lambda: tfmlp.export(clf, tmp_path / "m.keras", format="keras"),
    ]
    for call in [lambda: clf.partial_fit(X, Y)] + uses_parameter * (dropout is None):
        with pytest.raises(ValueError, match="'activation' parameter must be"):
            call()
    clf.set_params(activation="relu")
    np.testing.assert_array_equal(before, clf.predict_proba(X))


def test_a_failed_call_never_removes_a_fitted_attribute_while_it_restores():
    """Another thread (a predict, a pickle) reading the estimator while a
    failed call puts it back must find every fitted attribute: objects the
    failed call left are freed, and can observe the estimator, only once
    the backed-up attributes are in place."""
    est = _fitted(MLPClassifier)
    backup = est._backup_state()
    fitted = set(backup) - {"_net_state"}
    missing = []

    class Seen:
        def __del__(self):
            missing.append(fitted - set(est.__dict__))

    for key in ("loss_curve_", "_optimizer", "n_iter_", "_label_binarizer"):
        est.__dict__[key] = Seen()  # as a failed call could have left them
    est.__dict__["_left_by_the_call"] = Seen()
    est._restore_state(backup)
    assert len(missing) == 5 and not any(missing), missing
    assert "_left_by_the_call" not in est.__dict__ and "_net_state" not in est.__dict__
    est.predict(X)


@pytest.mark.parametrize("method", ["fit", "partial_fit"])
def test_attributes_a_user_attached_are_left_alone(method):
    """Not the estimator's own (neither ``_x`` nor ``x_``): not copied for
    the rollback (a lock cannot be), kept by a failed call."""
    import threading

    est = _fitted(MLPClassifier, warm_start=True)
    lock, log = threading.Lock(), {"rows": [1, 2]}
    est.lock, est.log = lock, log
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        getattr(est, method)(X, Y)
    assert est.lock is lock and est.log is log
    with pytest.raises(ValueError):
        getattr(est, method)(_nan(X), Y)
    assert est.lock is lock and est.log is log


@pytest.mark.parametrize("solver", ["adam", "sgd"])
@pytest.mark.parametrize("how", ["warm_start", "partial_fit"])
def test_other_sizes_of_the_same_hidden_layers_are_ignored_as_sklearn(solver, how):
    # scikit-learn's adam and sgd keep training the fitted layers; tfmlp too,
    # and says so
    from sklearn.neural_network import MLPClassifier as SkMLPClassifier

    fitted = []
    for cls in (SkMLPClassifier, MLPClassifier):
        est = cls(hidden_layer_sizes=(5,), max_iter=5, random_state=0)
        est.set_params(solver=solver, warm_start=how == "warm_start")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            est.fit(X, Y).set_params(hidden_layer_sizes=(3,))
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            est.fit(X, Y) if how == "warm_start" else est.partial_fit(X, Y)
        fitted.append((est, [str(w.message) for w in seen]))
    (sk, _), (est, messages) = fitted
    assert [c.shape for c in est.coefs_] == [(4, 5), (5, 3)]
    assert any("ignore the change" in m for m in messages)
    for a, b in zip(sk.coefs_ + sk.intercepts_, est.coefs_ + est.intercepts_):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-8)
    np.testing.assert_allclose(sk.loss_curve_, est.loss_curve_, rtol=0, atol=1e-8)


def _set_coef0(est, value):
    est.coefs_[0] = value


WEIGHT_EDITS = {
    "too few rows": (lambda e: _set_coef0(e, np.ones((2, 5))), "fitted on 4 features"),
    "transposed": (lambda e: _set_coef0(e, np.ones((5, 4))), r"intercepts_\[0\]"),
    "1-D": (lambda e: _set_coef0(e, np.ones(20)), "not \\(inputs, units\\)"),
    "bias length": (
        lambda e: e.intercepts_.__setitem__(0, np.ones(6)),
        r"intercepts_\[0\] has shape \(6,\)",
    ),
    "outputs": (
        lambda e: (
            e.coefs_.__setitem__(1, np.ones((5, 2))),
            e.intercepts_.__setitem__(1, np.ones(2)),
        ),
        "has 2 columns but the estimator has 3 outputs",
    ),
    "layer dropped": (lambda e: setattr(e, "coefs_", e.coefs_[:1]), "holds 1 arrays"),
    "None": (lambda e: setattr(e, "coefs_", None), "not NoneType"),
    "ragged": (
        lambda e: e.coefs_.__setitem__(1, [[1.0, 2.0], [3.0]]),
        r"coefs_\[1\] is not an array of numbers",
    ),
    "text": (
        lambda e: _set_coef0(e, np.full((4, 5), "a")),
        r"coefs_\[0\] is not an array of numbers",
    ),
}
WEIGHT_CALLS = {
    "predict": lambda e: e.predict(X),
    "predict_proba": lambda e: e.predict_proba(X),
    "partial_fit": lambda e: e.partial_fit(X, Y),
    "warm fit": lambda e: e.set_params(warm_start=True).fit(X, Y),
    "warm lbfgs fit": lambda e: e.set_params(warm_start=True, solver="lbfgs").fit(X, Y),
    "to_sklearn": lambda e: __import__("tfmlp").to_sklearn(e),
}


@pytest.mark.parametrize("call", list(WEIGHT_CALLS))
@pytest.mark.parametrize("edit", list(WEIGHT_EDITS))
def test_weights_set_by_hand_that_do_not_form_the_network_are_named(edit, call):
    # scikit-learn fails in NumPy somewhere; TensorFlow raised its own graph
    # errors (InvalidArgumentError is not a ValueError) or IndexError
    est = _fitted(MLPClassifier)
    change, match = WEIGHT_EDITS[edit]
    change(est)
    with pytest.raises(ValueError, match="do not form a network: .*" + match):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            WEIGHT_CALLS[call](est)
    est.coefs_  # reading them stays possible  # noqa: B018
    # a fit that starts over replaces them
    est.set_params(warm_start=False, solver="adam", max_iter=5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, Y)
    assert est.score(X, Y) > 0.3


@pytest.mark.parametrize("cls", [MLPClassifier, MLPRegressor])
@pytest.mark.parametrize("method", ["fit", "partial_fit", "score"])
def test_targets_left_out_for_arrays_are_named(cls, method):
    # scikit-learn raises TypeError for the missing argument and ValueError
    # for y=None; tfmlp's y is optional (a dataset carries its own), and its
    # error is both, naming y (score used to fail inside accuracy_score)
    est = _fitted(cls)
    before = [c.copy() for c in est.coefs_]
    for call in (
        lambda: getattr(est, method)(X),
        lambda: getattr(est, method)(X, None),
    ):
        with pytest.raises(TypeError, match="requires y to be passed"):
            call()
        with pytest.raises(ValueError, match="the target y is None") as info:
            call()
        assert ("score(X, y) compares" in str(info.value)) == (method == "score")
    for b, c in zip(before, est.coefs_):
        np.testing.assert_array_equal(b, c)
