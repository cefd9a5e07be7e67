"""tfmlp's additions beyond scikit-learn (all off by default)."""

import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
from sklearn.datasets import load_digits, make_multilabel_classification
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.utils.class_weight import compute_sample_weight

from tfmlp import MLPClassifier, MLPRegressor

X, Y = load_digits(return_X_y=True)
X = X / 16.0
X_TR, X_VA, Y_TR, Y_VA = train_test_split(X, Y, test_size=0.2, random_state=0)


def _fit(est, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(*args, **kwargs)


def _weights(est):
    return [a.copy() for a in est.coefs_ + est.intercepts_]


@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
def test_balanced_class_weight_equals_sample_weight(solver):
    y = np.where(Y < 7, 0, Y)  # imbalanced
    kw = dict(hidden_layer_sizes=(8,), max_iter=5, random_state=0, solver=solver)
    a = _fit(MLPClassifier(class_weight="balanced", **kw), X, y)
    b = _fit(
        MLPClassifier(**kw), X, y, sample_weight=compute_sample_weight("balanced", y)
    )
    for u, v in zip(_weights(a), _weights(b)):
        np.testing.assert_array_equal(u, v)
    sw = np.linspace(0.5, 2.0, len(y))
    c = _fit(MLPClassifier(class_weight={0: 2.0}, **kw), X, y, sample_weight=sw)
    d = _fit(MLPClassifier(**kw), X, y, sample_weight=sw * np.where(y == 0, 2.0, 1.0))
    for u, v in zip(_weights(c), _weights(d)):
        np.testing.assert_array_equal(u, v)


def test_class_weight_partial_fit():
    clf = MLPClassifier(class_weight="balanced", hidden_layer_sizes=(5,))
    with pytest.raises(ValueError, match="balanced"):
        clf.partial_fit(X, Y, classes=np.arange(10))
    clf.set_params(class_weight={1: 3.0}).partial_fit(X, Y, classes=np.arange(10))
    assert clf.n_iter_ == 1


def test_validation_data_records_curves():
    clf = _fit(
        MLPClassifier(hidden_layer_sizes=(20,), max_iter=7, random_state=0),
        X_TR,
        Y_TR,
        validation_data=(X_VA, Y_VA),
    )
    assert len(clf.validation_loss_curve_) == clf.n_iter_ == 7
    assert len(clf.validation_scores_) == 7
    assert clf.validation_scores_[-1] == pytest.approx(clf.score(X_VA, Y_VA))
    assert clf.best_validation_score_ is None  # no early stopping asked for
    assert np.all(np.isfinite(clf.validation_loss_curve_))
    assert clf.t_ == 7 * len(X_TR)  # no internal split


def test_validation_data_drives_early_stopping():
    clf = _fit(
        MLPClassifier(
            hidden_layer_sizes=(20,),
            max_iter=300,
            random_state=0,
            early_stopping=True,
            n_iter_no_change=3,
            learning_rate_init=0.01,
        ),
        X_TR,
        Y_TR,
        validation_data=(X_VA, Y_VA),
    )
    assert clf.n_iter_ < 300
    assert clf.t_ == clf.n_iter_ * len(X_TR)
    assert len(clf.validation_loss_curve_) == clf.n_iter_
    assert clf.best_validation_score_ == max(clf.validation_scores_)
    assert clf.score(X_VA, Y_VA) == pytest.approx(clf.best_validation_score_)


def test_early_stopping_records_validation_loss():
    reg = _fit(
        MLPRegressor(hidden_layer_sizes=(10,), max_iter=6, early_stopping=True),
        X,
        Y.astype(float),
    )
    assert len(reg.validation_loss_curve_) == reg.n_iter_
    # a fresh fit starts the curve anew; without validation there is none
    _fit(reg.set_params(early_stopping=False, max_iter=4), X, Y.astype(float))
    _fit(reg, X, Y.astype(float), validation_data=(X_VA, Y_VA.astype(float)))
    assert len(reg.validation_loss_curve_) == len(reg.validation_scores_) == 4
    _fit(reg, X, Y.astype(float))
    assert reg.validation_scores_ is None
    assert not hasattr(reg, "validation_loss_curve_")


def test_validation_data_errors():
    clf = MLPClassifier(max_iter=2)
    with pytest.raises(ValueError, match="validation_data must be a tuple"):
        clf.fit(X, Y, validation_data=X_VA)
    with pytest.raises(ValueError, match="Got a tuple of 4 elements"):
        clf.fit(X, Y, validation_data=(X_VA, Y_VA, None, None))
    with pytest.raises(ValueError, match="features"):
        clf.fit(X, Y, validation_data=(X_VA[:, :5], Y_VA))
    with pytest.raises(ValueError, match="not in classes_"):
        clf.fit(X_TR, np.where(Y_TR == 9, 8, Y_TR), validation_data=(X_VA, Y_VA))
    # its sample weights' errors say they are validation_data's, not fit's
    with pytest.raises(ValueError, match="^validation_data's sample_weight: .*3"):
        clf.fit(X, Y, validation_data=(X_VA, Y_VA, np.ones(3)))
    with pytest.raises(ValueError, match="^validation_data's sample_weight: "):
        clf.fit(X, Y, validation_data=(X_VA, Y_VA, np.ones((len(X_VA), 2))))


def test_a_regressors_validation_targets_are_numeric_like_y():
    reg = MLPRegressor(hidden_layer_sizes=(5,), max_iter=2, random_state=0)
    y_tr = Y_TR.astype(float)
    for y_val in (Y_VA.astype(str), np.array(["a"] * len(Y_VA))):
        with pytest.raises(TypeError, match="y_val must be numeric") as info:
            reg.fit(X_TR, y_tr, validation_data=(X_VA, y_val))
        assert isinstance(info.value, ValueError)
    # numbers in an object array are numbers, as in y
    _fit(reg, X_TR, y_tr, validation_data=(X_VA, Y_VA.astype(object)))
    assert len(reg.validation_scores_) == 2


def test_partial_fit_with_early_stopping():
    clf = MLPClassifier(hidden_layer_sizes=(10,), early_stopping=True, random_state=0)
    with pytest.raises(ValueError, match="partial_fit does not support early_stopping"):
        clf.partial_fit(X_TR, Y_TR, classes=np.arange(10))
    for _ in range(4):
        clf.partial_fit(X_TR, Y_TR, classes=np.arange(10), validation_data=(X_VA, Y_VA))
    assert len(clf.validation_scores_) == 4 == len(clf.validation_loss_curve_)
    assert clf.best_validation_score_ == max(clf.validation_scores_)


def test_partial_fit_after_switching_early_stopping():
    """scikit-learn raises a TypeError (it compares with the other mode's
    None); tfmlp starts the switched-to criterion's best value there."""
    clf = MLPClassifier((10,), max_iter=3, early_stopping=True, random_state=0)
    _fit(clf, X_TR, Y_TR)
    clf.set_params(early_stopping=False)
    for _ in range(2):
        clf.partial_fit(X_TR, Y_TR)
    assert clf.best_loss_ == min(clf.loss_curve_[-2:])
    reg = MLPRegressor(hidden_layer_sizes=(10,), max_iter=3, random_state=0)
    _fit(reg, X_TR, Y_TR.astype(float))
    reg.set_params(early_stopping=True)
    reg.partial_fit(X_TR, Y_TR.astype(float), validation_data=(X_VA, Y_VA * 1.0))
    assert reg.validation_scores_ == [reg.best_validation_score_]
    assert np.isfinite(reg.best_validation_score_)


def test_partial_fit_early_stopping_restores_best_after_patience():
    clf = MLPClassifier(
        hidden_layer_sizes=(10,),
        early_stopping=True,
        n_iter_no_change=1,
        tol=10.0,
        random_state=0,
    )
    clf.partial_fit(X_TR, Y_TR, classes=np.arange(10), validation_data=(X_VA, Y_VA))
    clf.partial_fit(X_TR, Y_TR, validation_data=(X_VA, Y_VA))
    with pytest.warns(ConvergenceWarning, match="best weights were restored"):
        clf.partial_fit(X_TR, Y_TR, validation_data=(X_VA, Y_VA))
    assert clf.score(X_VA, Y_VA) == pytest.approx(clf.best_validation_score_)


def test_multilabel_partial_fit():
    Xm, Ym = make_multilabel_classification(200, 10, n_classes=4, random_state=0)
    clf = MLPClassifier(hidden_layer_sizes=(10,), random_state=0)
    for _ in range(3):
        clf.partial_fit(Xm, Ym)
    assert clf.predict(Xm).shape == Ym.shape and clf.n_outputs_ == 4


@pytest.mark.parametrize("activation", ["leaky_relu", "elu", "selu", "gelu", "swish"])
def test_new_activations_train_well(activation):
    clf = _fit(
        MLPClassifier(
            hidden_layer_sizes=(50,),
            activation=activation,
            max_iter=40,
            learning_rate_init=0.01,
            random_state=0,
        ),
        X_TR,
        Y_TR,
    )
    assert clf.score(X_VA, Y_VA) > 0.9
    np.testing.assert_allclose(
        np.asarray(clf.model_(X_VA)), clf.predict_proba(X_VA), rtol=1e-10, atol=1e-12
    )


def test_dropout_changes_training_not_prediction():
    kw = dict(hidden_layer_sizes=(40,), max_iter=20, learning_rate_init=0.01)
    kw["random_state"] = 0
    plain = _fit(MLPClassifier(**kw), X, Y)
    drop = _fit(MLPClassifier(dropout=0.3, **kw), X, Y)
    assert not np.allclose(plain.coefs_[0], drop.coefs_[0])
    np.testing.assert_array_equal(drop.predict_proba(X), drop.predict_proba(X))
    again = _fit(MLPClassifier(dropout=0.3, **kw), X, Y)  # same seed, same result
    for u, v in zip(_weights(drop), _weights(again)):
        np.testing.assert_array_equal(u, v)
    assert drop.score(X, Y) > 0.9


@pytest.mark.parametrize("solver", ["adam", "sgd"])
@pytest.mark.parametrize("hidden", [(20,), ()])
def test_dropout_starts_from_the_standard_networks_weights(solver, hidden):
    # the stack's seed leaves random_state alone: the same initial weights and
    # batch order, so a vanishing dropout trains as scikit-learn
    from sklearn.neural_network import MLPClassifier as SkMLPClassifier

    kw = dict(hidden_layer_sizes=hidden, max_iter=4, random_state=0, solver=solver)
    sk = _fit(SkMLPClassifier(**kw), X, Y)
    drop = _fit(MLPClassifier(dropout=1e-12, **kw), X, Y)
    for u, v in zip(sk.coefs_ + sk.intercepts_, _weights(drop)):
        np.testing.assert_allclose(u, v, rtol=0, atol=1e-8)
    np.testing.assert_allclose(sk.loss_curve_, drop.loss_curve_, rtol=0, atol=1e-8)


def test_batch_normalization_and_alpha():
    kw = dict(hidden_layer_sizes=(30,), max_iter=20, random_state=0)
    bn = _fit(
        MLPClassifier(batch_normalization=True, learning_rate_init=0.01, **kw), X, Y
    )
    assert any("batch_norm" in ly.name for ly in bn.model_.layers)
    assert bn.score(X, Y) > 0.9
    small = _fit(MLPClassifier(batch_normalization=True, alpha=1e-5, **kw), X, Y)
    large = _fit(MLPClassifier(batch_normalization=True, alpha=50.0, **kw), X, Y)
    assert np.linalg.norm(large.coefs_[0]) < np.linalg.norm(small.coefs_[0])
    with pytest.raises(ValueError, match="lbfgs"):
        MLPClassifier(dropout=0.1, solver="lbfgs").fit(X, Y)


def test_transform_as_pipeline_step():
    mlp = _fit(
        MLPClassifier(hidden_layer_sizes=(30, 12), max_iter=20, random_state=0), X, Y
    )
    Z = mlp.transform(X)
    assert Z.shape == (len(X), 12) and np.all(Z >= 0)  # relu
    assert list(mlp.get_feature_names_out()[:2]) == ["mlpclassifier0", "mlpclassifier1"]
    pd = pytest.importorskip("pandas")
    mlp.set_output(transform="pandas")
    frame = mlp.transform(X)
    assert isinstance(frame, pd.DataFrame) and frame.shape == (len(X), 12)
    pipe = make_pipeline(
        MLPClassifier(hidden_layer_sizes=(30,), max_iter=30, random_state=0),
        LogisticRegression(max_iter=1000),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        assert pipe.fit(X_TR, Y_TR).score(X_VA, Y_VA) > 0.85


@pytest.mark.slow
def test_reproducible_and_no_global_side_effects(tmp_path):
    """A Keras model trained after a tfmlp fit behaves as if tfmlp never ran."""
    script = textwrap.dedent(
        """
        import sys, numpy as np, keras, tensorflow as tf
        if sys.argv[1] == "with":
            import tfmlp
            from sklearn.datasets import load_digits
            X, y = load_digits(return_X_y=True)
            stack = lambda x: keras.layers.Dense(4)(x)
            for kw in ({}, {"dropout": 0.2}, {"batch_normalization": True},
                       {"hidden_stack": stack},
                       {"callbacks": [keras.callbacks.History()]}):
                est = tfmlp.MLPClassifier(hidden_layer_sizes=(8,), max_iter=2,
                                          random_state=0, **kw).fit(X / 16, y)
                est.model_
            tfmlp.export(est, sys.argv[2], format="keras")
        from keras.src.backend.common import global_state
        policy = global_state.get_global_attribute("dtype_policy", None)
        keras.config.set_floatx("float64")  # follows floatx unless pinned
        kernel = keras.layers.Dense(2)
        kernel.build((None, 3))
        keras.config.set_floatx("float32")
        state = (keras.config.floatx(), policy, kernel.kernel.dtype,
                 tf.config.get_soft_device_placement())
        keras.utils.set_random_seed(123)
        rng = np.random.RandomState(0)
        X = rng.rand(64, 5).astype("float32"); y = rng.rand(64, 1).astype("float32")
        layers = [keras.Input((5,)), keras.layers.Dense(4, activation="relu"),
                  keras.layers.Dropout(0.5), keras.layers.Dense(1)]
        m = keras.Sequential(layers)
        m.compile("adam", "mse")
        m.fit(X, y, epochs=2, batch_size=16, verbose=0, shuffle=True)
        print(repr(state))
        print(repr([w.tolist() for w in m.get_weights()]))
        """
    )
    path = tmp_path / "probe.py"
    path.write_text(script)
    outs = []
    for mode in ("without", "with"):
        proc = subprocess.run(
            [sys.executable, str(path), mode, str(tmp_path / "m.keras")],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert proc.returncode == 0, proc.stderr[-2000:]
        outs.append(proc.stdout)
    assert outs[0] == outs[1]


def _global_draws():
    """What unrelated code draws next from the seeded global generators."""
    import random

    import keras

    dense = keras.Sequential([keras.Input((5,)), keras.layers.Dense(3)])
    kernel = dense.layers[0].kernel.numpy().copy()
    global_numpy = np.random.random_sample()  # noqa: NPY002 (the global one)
    return random.random(), global_numpy, kernel


def test_building_tfmlp_layers_draws_no_global_seed():
    """tfmlp's Keras layers take no seed from Python's global ``random``: a
    Keras model built after tfmlp fits (dropout, batch normalisation) and
    after ``model_`` is built gets the weights it would get without them."""
    import keras

    keras.utils.set_random_seed(123)
    expected = _global_draws()
    keras.utils.set_random_seed(123)
    kw = dict(hidden_layer_sizes=(8,), max_iter=2, random_state=0)
    for extra in ({"dropout": 0.2}, {"batch_normalization": True}, {}):
        est = _fit(MLPClassifier(**kw, **extra), X[:200], Y[:200])
        assert est.model_ is not None  # builds the Keras model
    reg = _fit(MLPRegressor(dropout=0.1, **kw), X[:200], X[:200, 0])
    assert reg.model_ is not None
    got = _global_draws()
    assert got[:2] == expected[:2]
    np.testing.assert_array_equal(got[2], expected[2])


def test_lbfgs_warns_that_it_ignores_validation_data():
    clf = MLPClassifier(solver="lbfgs", hidden_layer_sizes=(5,), max_iter=5)
    with pytest.warns(UserWarning, match="lbfgs' has no epochs and ignores it") as rec:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            clf.fit(X_TR, Y_TR, validation_data=(X_VA, Y_VA))
    assert any(w.filename == __file__ for w in rec)
    assert not hasattr(clf, "validation_loss_curve_")
    assert not hasattr(clf, "validation_scores_")  # as scikit-learn's lbfgs


@pytest.mark.parametrize(
    "bad, match",
    [
        (lambda: (X_VA[:, :3], Y_VA), "features"),
        (lambda: (X_VA, Y_VA[:-5]), "samples"),
        (lambda: (X_VA, np.full(len(X_VA), 99)), "not in classes_"),
        (lambda: (X_VA,), "tuple"),
    ],
)
def test_lbfgs_refuses_bad_validation_data(bad, match):
    # ignored for training, but checked as adam and sgd check it: a typo in
    # validation_data is an error whatever the solver, and a fitted model
    # stays as it was
    clf = MLPClassifier(solver="lbfgs", hidden_layer_sizes=(5,), max_iter=5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X_TR, Y_TR)
        before = [c.copy() for c in clf.coefs_]
        with pytest.raises(ValueError, match=match):
            clf.fit(X_TR, Y_TR, validation_data=bad())
    for b, c in zip(before, clf.coefs_):
        np.testing.assert_array_equal(b, c)


def test_history_lists_stay_aligned_after_from_sklearn():
    # scikit-learn records no validation loss: continuing an early-stopping
    # model pads the epochs before with NaN, so history_ frames as a table
    from sklearn.neural_network import MLPClassifier as SkMLP

    from tfmlp import from_sklearn

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        sk = SkMLP((5,), max_iter=5, early_stopping=True, random_state=0).fit(X, Y)
        clf = from_sklearn(sk).set_params(warm_start=True, max_iter=3).fit(X, Y)
    lengths = {k: len(v) for k, v in clf.history_.items()}
    assert lengths == {"loss": 8, "val_score": 8, "val_loss": 8}
    assert np.isnan(clf.history_["val_loss"][:5]).all()
    assert not np.isnan(clf.history_["val_loss"][5:]).any()
    assert len(clf.validation_loss_curve_) == len(clf.validation_scores_) == 8
    np.testing.assert_array_equal(clf.history_["val_loss"], clf.validation_loss_curve_)


def test_class_weight_partial_fit_on_a_batch_without_a_weighted_class():
    kw = dict(hidden_layer_sizes=(5,), random_state=0)
    a = MLPClassifier(class_weight={0: 3.0, 4: 0.5}, **kw)
    b = MLPClassifier(**kw)
    no_zero = Y != 0
    for est, sw in ((a, None), (b, np.where(Y == 4, 0.5, np.where(Y == 0, 3.0, 1)))):
        est.partial_fit(X, Y, classes=np.arange(10), sample_weight=sw)
        est.partial_fit(
            X[no_zero], Y[no_zero], sample_weight=None if sw is None else sw[no_zero]
        )
    for wa, wb in zip(_weights(a), _weights(b)):
        np.testing.assert_array_equal(wa, wb)


@pytest.mark.parametrize("multilabel", [False, True])
def test_balanced_counts_classes_by_their_sample_weights(multilabel):
    # scikit-learn's 'balanced' with sample weights: a row of weight k is k
    # rows (check_sample_weight_equivalence); a class of weight 0 weighs 0
    from sklearn.utils.class_weight import compute_class_weight

    rng = np.random.RandomState(0)
    y = np.where(Y < 7, 0, Y)
    if multilabel:
        y = np.column_stack([Y < 3, Y % 2 == 0, Y > 8]).astype(int)
    sw = rng.randint(0, 4, len(Y)).astype(float)
    kw = dict(hidden_layer_sizes=(8,), solver="lbfgs", max_iter=30, random_state=0)
    weighted = _fit(MLPClassifier(class_weight="balanced", **kw), X, y, sw)
    rows = np.repeat(np.arange(len(Y)), sw.astype(int))
    repeated = _fit(MLPClassifier(class_weight="balanced", **kw), X[rows], y[rows])
    np.testing.assert_allclose(
        weighted.predict_proba(X), repeated.predict_proba(X), rtol=0, atol=1e-6
    )
    if not multilabel:
        sw[y == 9] = 0.0  # class 9 weighs nothing
        seen = weighted._class_weights(y, sw, incremental=False)
        assert np.all(seen[y == 9] == 0) and np.all(np.isfinite(seen))
        kept, classes = y != 9, np.unique(y)  # counted as scikit-learn counts
        with np.errstate(divide="ignore", invalid="ignore"):
            per_class = compute_class_weight(
                "balanced", classes=classes, y=y, sample_weight=sw
            )
            expected = sw * per_class[np.searchsorted(classes, y)]
        np.testing.assert_allclose(seen[kept], expected[kept], rtol=1e-12)


def test_balanced_refuses_a_class_whose_weights_sum_to_zero_or_less():
    # its class weight would be infinite or negative: refused by name, the
    # fitted model kept
    clf = _fit(MLPClassifier(hidden_layer_sizes=(5,), max_iter=3), X, Y)
    before = _weights(clf)
    sw = np.ones(len(Y))
    first, second = np.flatnonzero(Y == 2)[:2]
    sw[Y == 2] = 0.0
    sw[first], sw[second] = 1.0, -1.0
    clf.set_params(class_weight="balanced")
    with pytest.raises(ValueError, match="class 2 sum to 0: a class's weights"):
        clf.fit(X, Y, sample_weight=sw)
    for a, b in zip(before, _weights(clf)):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("class_weight", ["balanced", {1: 2.0}])
def test_class_weight_keeps_sklearns_sample_weight_checks(class_weight):
    clf = MLPClassifier(hidden_layer_sizes=(5,), class_weight=class_weight)
    for sw in (np.ones(5), np.ones(1), np.ones((len(Y), 2))):
        with pytest.raises(ValueError, match="(?i)sample.weight"):
            clf.fit(X, Y, sample_weight=sw)


@pytest.mark.parametrize(
    "weight, error", [(np.nan, ValueError), (np.inf, ValueError), (None, TypeError)]
)
@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
def test_class_weights_must_be_finite_numbers(weight, error, solver):
    clf = MLPClassifier(hidden_layer_sizes=(5,), max_iter=3, solver=solver)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X, Y)
    before = [c.copy() for c in clf.coefs_]
    clf.set_params(class_weight={int(Y[0]): weight})
    calls = [clf.fit] + ([clf.partial_fit] if solver != "lbfgs" else [])
    for call in calls:
        with pytest.raises(error, match="class_weight's weights must be"):
            call(X, Y)
    assert all(np.array_equal(a, b) for a, b in zip(before, clf.coefs_))


def test_balanced_class_weight_with_sparse_multilabel_targets():
    import scipy.sparse as sp

    Xm, ym = make_multilabel_classification(n_samples=80, n_classes=4, random_state=0)
    kw = dict(hidden_layer_sizes=(5,), max_iter=3, random_state=0)
    a = _fit(MLPClassifier(class_weight="balanced", **kw), Xm, sp.csr_matrix(ym))
    b = _fit(MLPClassifier(class_weight="balanced", **kw), Xm, ym)
    for wa, wb in zip(_weights(a), _weights(b)):
        np.testing.assert_array_equal(wa, wb)


def test_partial_fit_early_stopping_restores_the_best_weights_every_time():
    from sklearn.datasets import load_wine
    from sklearn.preprocessing import StandardScaler

    Xw, yw = load_wine(return_X_y=True)
    Xw = StandardScaler().fit_transform(Xw)
    p = np.random.RandomState(0).permutation(len(yw))
    Xw, yw = Xw[p], yw[p]
    clf = MLPClassifier(
        hidden_layer_sizes=(10,),
        early_stopping=True,
        n_iter_no_change=1,
        learning_rate_init=0.3,  # unstable: scores fall after the best
        random_state=0,
    )
    val = dict(validation_data=(Xw[120:], yw[120:]))
    clf.partial_fit(Xw[:120], yw[:120], classes=[0, 1, 2], **val)
    restores = 0
    for _ in range(8):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            clf.partial_fit(Xw[:120], yw[:120], **val)
        if any("best weights were restored" in str(w.message) for w in caught):
            restores += 1
            assert clf.score(Xw[120:], yw[120:]) == clf.best_validation_score_
    assert restores >= 2


def test_get_feature_names_out_checks_input_features():
    pd = pytest.importorskip("pandas")
    cols = [f"f{i}" for i in range(X.shape[1])]
    clf = _fit(
        MLPClassifier((3,), max_iter=2, random_state=0),
        pd.DataFrame(X, columns=cols),
        Y,
    )
    assert list(clf.get_feature_names_out(cols)) == [
        f"mlpclassifier{i}" for i in range(3)
    ]
    for bad in (["x"], cols[::-1]):
        with pytest.raises(ValueError, match="input_features"):
            clf.get_feature_names_out(bad)
    plain = _fit(MLPClassifier((3,), max_iter=2, random_state=0), X, Y)
    with pytest.raises(ValueError, match="input_features should have length"):
        plain.get_feature_names_out(["a", "b"])


def test_validation_targets_are_checked_before_training():
    Xr = X[:, :10]
    yr = Y.astype(float)
    reg = MLPRegressor(hidden_layer_sizes=(4,), max_iter=2, loss="poisson")
    with pytest.raises(ValueError, match="non-negative targets"):
        reg.fit(Xr, yr, validation_data=(Xr[:20], -yr[:20]))
    reg.set_params(loss="squared_error")
    with pytest.raises(ValueError, match=r"y_val has 2 output\(s\)"):
        reg.fit(Xr, yr, validation_data=(Xr[:20], np.c_[yr[:20], yr[:20]]))
    Xm, ym = make_multilabel_classification(n_samples=60, n_classes=4, random_state=0)
    clf = MLPClassifier(hidden_layer_sizes=(4,), max_iter=2)
    with pytest.raises(ValueError, match="multilabel model has 4 labels"):
        clf.fit(Xm, ym, validation_data=(Xm[:10], ym[:10, :3]))
    with pytest.raises(ValueError, match="label-indicator matrix of 0/1 values"):
        clf.fit(Xm, ym, validation_data=(Xm[:10], 2 * ym[:10] - 1))


@pytest.mark.parametrize(
    "kind, y_val, match",
    [
        ("clf", lambda y: np.c_[y, y], r"shape \(20, 2\); this classifier"),
        ("clf", lambda y: np.eye(10, dtype=int)[y], r"shape \(20, 10\)"),
        ("clf", lambda y: y.reshape(-1, 1, 1), r"shape \(20, 1, 1\)"),
        ("clf", lambda y: y + 0j, "Complex data not supported"),
        ("reg", lambda y: y.reshape(-1, 1, 1), r"shape \(20, 1, 1\); a regressor"),
        ("reg", lambda y: np.where(y == 3, np.nan, y), "y_val contains NaN"),
        ("reg", lambda y: np.where(y == 3, np.inf, y), "y_val contains infinity"),
        ("clf", lambda y: np.where(y == 3, np.nan, y), "y_val contains NaN"),
        (
            "clf",
            lambda y: np.where(y == 3, np.nan, y.astype(str).astype(object)),
            "y_val: Input contains NaN",
        ),
        (
            "clf",
            lambda y: np.where(y == 3, 3, y.astype(str).astype(object)),
            "mixes label types",
        ),
        ("reg", lambda y: y + 1j, "Complex data not supported"),
    ],
)
def test_validation_targets_of_the_wrong_form_are_refused_before_training(
    kind, y_val, match, capsys
):
    Est = MLPClassifier if kind == "clf" else MLPRegressor
    est = Est(hidden_layer_sizes=(4,), max_iter=2, random_state=0, verbose=True)
    y = Y if kind == "clf" else Y.astype(float)

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no ComplexWarning: refused, not cast
        with pytest.raises(ValueError, match=match):
            est.fit(X, y, validation_data=(X[:20], y_val(Y[:20])))
    assert "Iteration" not in capsys.readouterr().out


def test_validation_targets_with_pandas_missing_values_are_refused():
    import pandas as pd

    y = np.c_[Y, Y].astype(float)
    y_val = pd.DataFrame(y[:20]).astype("Float64")
    y_val.iloc[3, 0] = pd.NA
    reg = MLPRegressor(hidden_layer_sizes=(4,), max_iter=2, random_state=0)
    with pytest.raises(ValueError, match="y_val contains NaN"):
        reg.fit(X, y, validation_data=(X[:20], y_val))


def test_class_weight_partial_fit_with_a_column_of_labels():
    clf = MLPClassifier(hidden_layer_sizes=(5,), class_weight={0: 3.0}, random_state=0)
    clf.partial_fit(X, Y.reshape(-1, 1), classes=np.arange(10))
    rest = Y != 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scikit-learn's column-vector warning
        clf.partial_fit(X[rest], Y[rest].reshape(-1, 1))
    assert len(clf.loss_curve_) == 2


def test_partial_fit_early_stopping_after_an_early_stopping_fit_restores_the_best():
    clf = _fit(
        MLPClassifier(
            hidden_layer_sizes=(10,),
            early_stopping=True,
            n_iter_no_change=1,
            learning_rate_init=0.3,
            max_iter=30,
            random_state=0,
        ),
        X_TR,
        Y_TR,
        validation_data=(X_VA, Y_VA),
    )
    best = [w.copy() for w in _weights(clf)]  # restored by the fit
    assert clf.score(X_VA, Y_VA) == clf.best_validation_score_
    for _ in range(4):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            clf.partial_fit(X_TR, Y_TR, validation_data=(X_VA, Y_VA))
        if any("best weights were restored" in str(w.message) for w in caught):
            assert clf.score(X_VA, Y_VA) == clf.best_validation_score_
            if clf.validation_scores_[-1] <= max(clf.validation_scores_[:-1]):
                for w, b in zip(_weights(clf), best):
                    np.testing.assert_array_equal(w, b)
            return
    pytest.fail("no restore happened")


def test_class_weight_dict_with_multilabel_targets_names_what_works():
    Xm, ym = make_multilabel_classification(n_samples=60, n_classes=3, random_state=0)
    clf = MLPClassifier(hidden_layer_sizes=(4,), max_iter=2, class_weight={0: 2.0})
    with pytest.raises(ValueError, match="multilabel targets must be 'balanced'"):
        clf.fit(Xm, ym)


def test_transform_takes_a_dataset():
    import tensorflow as tf

    clf = _fit(MLPClassifier((7,), max_iter=3, random_state=0), X, Y)
    ds = tf.data.Dataset.from_tensor_slices((X, Y)).batch(100)
    np.testing.assert_allclose(clf.transform(ds), clf.transform(X), rtol=1e-12)
    only_x = tf.data.Dataset.from_tensor_slices(X.astype(np.float32)).batch(64)
    np.testing.assert_allclose(clf.transform(only_x), clf.transform(X), rtol=1e-5)


@pytest.mark.parametrize("as_dataset", [False, True])
def test_validation_weights_summing_to_zero_are_named(as_dataset):
    import tensorflow as tf

    from tfmlp._params import WeightsSumToZero

    clf = MLPClassifier(hidden_layer_sizes=(5,), max_iter=3, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X, Y)
    before = [c.copy() for c in clf.coefs_]
    w_val = np.where(np.arange(40) % 2, -1.0, 1.0)  # sums to 0
    val = (X[:40], Y[:40], w_val)
    if as_dataset:
        val = tf.data.Dataset.from_tensor_slices(val).batch(10)
    clf.set_params(warm_start=True)
    with pytest.raises(WeightsSumToZero, match="validation.*sum to 0"):
        clf.fit(X, Y, validation_data=val)
    assert all(np.array_equal(a, b) for a, b in zip(before, clf.coefs_))
