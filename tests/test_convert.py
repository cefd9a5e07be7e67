"""tfmlp.from_sklearn / tfmlp.to_sklearn: fitted models both ways."""

import copy
import pickle
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
import sklearn.neural_network as sk_nn
from sklearn.datasets import make_multilabel_classification
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.linear_model import LogisticRegression

import tfmlp
from tfmlp import MLPClassifier, MLPRegressor, from_sklearn, to_sklearn

RNG = np.random.RandomState(0)
X = RNG.randn(90, 6)
TARGETS = {
    "binary": (X[:, 0] + X[:, 1] > 0).astype(int),
    "multiclass": np.digitize(X[:, 0] + 0.5 * X[:, 2], [-0.7, 0.0, 0.7]),
    "multilabel": make_multilabel_classification(
        n_samples=90, n_features=6, n_classes=3, random_state=0
    )[1],
    "regression": X @ RNG.randn(6) + 0.1 * RNG.randn(90),
    "multioutput": X @ RNG.randn(6, 2),
}
KINDS = list(TARGETS)
CLASSIFICATION = ("binary", "multiclass", "multilabel")
SOLVERS = ["adam", "sgd", "lbfgs"]
WEIGHT_RTOL = 1e-8


def _classes(kind):
    return (
        (sk_nn.MLPClassifier, MLPClassifier)
        if kind in CLASSIFICATION
        else (
            sk_nn.MLPRegressor,
            MLPRegressor,
        )
    )


def _params(kind, solver, **extra):
    params = dict(
        hidden_layer_sizes=(7,),
        solver=solver,
        max_iter=12,
        random_state=0,
        batch_size=32,
        learning_rate_init=0.01,
        **extra,
    )
    if solver == "sgd":
        params.setdefault("learning_rate", "invscaling")
        params.setdefault("power_t", 0.25)
    return params


def _quiet(method, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return method(*args, **kwargs)


def _fit_sklearn(kind, solver, **extra):
    cls = _classes(kind)[0]
    return _quiet(cls(**_params(kind, solver, **extra)).fit, X, TARGETS[kind])


def _fit_tfmlp(kind, solver, **extra):
    cls = _classes(kind)[1]
    return _quiet(cls(**_params(kind, solver, **extra)).fit, X, TARGETS[kind])


def _weights(est):
    return [np.array(a) for a in est.coefs_ + est.intercepts_]


def assert_same_weights(a, b, rtol=WEIGHT_RTOL):
    wa, wb = _weights(a), _weights(b)
    assert len(wa) == len(wb)
    for u, v in zip(wa, wb):
        assert u.dtype == v.dtype
        np.testing.assert_allclose(u, v, rtol=rtol, atol=1e-12)


def assert_same_outputs(a, b, atol=1e-6):
    if hasattr(a, "predict_proba"):
        np.testing.assert_array_equal(a.predict(X), b.predict(X))
        np.testing.assert_allclose(a.predict_proba(X), b.predict_proba(X), atol=atol)
    else:
        np.testing.assert_allclose(a.predict(X), b.predict(X), atol=atol)


def assert_same_attributes(a, b):
    for name in (
        "classes_",
        "n_features_in_",
        "n_layers_",
        "n_outputs_",
        "out_activation_",
        "loss_",
        "best_loss_",
        "loss_curve_",
        "validation_scores_",
        "best_validation_score_",
        "t_",
        "n_iter_",
    ):
        assert hasattr(a, name) == hasattr(b, name), name
        if hasattr(a, name):
            va, vb = getattr(a, name), getattr(b, name)
            if va is None or vb is None or isinstance(va, str):
                assert va == vb, name
            else:
                np.testing.assert_allclose(va, vb, rtol=1e-12, err_msg=name)


def _same_params(sk, tf_est):
    sk_params = sk.get_params()
    tf_params = tf_est.get_params()
    assert {k: tf_params[k] for k in sk_params} == sk_params
    defaults = type(tf_est)().get_params()
    for key in set(tf_params) - set(sk_params):
        assert tf_params[key] == defaults[key], key


def _continue(est, mode, kind):
    y = TARGETS[kind]
    if mode == "partial_fit":
        for _ in range(3):
            est.partial_fit(X, y)
    else:
        est.set_params(warm_start=True, max_iter=5)
        _quiet(est.fit, X, y)
    return est


# ------------------------------------------------------------------ from_sklearn
@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("kind", KINDS)
def test_from_sklearn_same_model(kind, solver):
    sk = _fit_sklearn(kind, solver)
    est = from_sklearn(sk)
    assert type(est) is _classes(kind)[1]
    assert est.__sklearn_is_fitted__()
    _same_params(sk, est)
    assert_same_weights(sk, est, rtol=0)
    assert_same_attributes(sk, est)
    assert_same_outputs(sk, est)
    if kind in CLASSIFICATION:
        sure = sk.predict_proba(X) > 1e-3  # log is ill-conditioned near 0
        with np.errstate(divide="ignore"):
            logs = est.predict_log_proba(X), sk.predict_log_proba(X)
        np.testing.assert_allclose(logs[0][sure], logs[1][sure], atol=1e-6)
    assert est.score(X, TARGETS[kind]) == pytest.approx(sk.score(X, TARGETS[kind]))
    # copies, not views: the original is untouched by the converted model
    est.coefs_[0][:] = 0.0
    assert not np.all(sk.coefs_[0] == 0.0)


@pytest.mark.parametrize("mode", ["partial_fit", "warm_start"])
@pytest.mark.parametrize("solver", ["adam", "sgd"])
@pytest.mark.parametrize("kind", ["binary", "multiclass", "multilabel", "regression"])
def test_from_sklearn_continues_like_sklearn(kind, solver, mode):
    sk = _fit_sklearn(kind, solver)
    est = from_sklearn(sk)
    _continue(sk, mode, kind)
    _continue(est, mode, kind)
    assert_same_weights(sk, est)
    assert_same_attributes(sk, est)
    assert sk._no_improvement_count == est._no_improvement_count
    assert est._optimizer.learning_rate == pytest.approx(
        sk._optimizer.learning_rate, rel=1e-12
    )


@pytest.mark.parametrize("solver", ["adam", "sgd"])
def test_from_sklearn_carries_the_optimizer_state(solver):
    """Without the converted slots, partial_fit would give other weights."""
    sk = _fit_sklearn("multiclass", solver)
    est = from_sklearn(sk)
    fresh = from_sklearn(sk)
    del fresh._optimizer  # partial_fit then starts a new optimizer
    if solver == "adam":
        assert est._optimizer.t == sk._optimizer.t > 0
    else:
        assert est._optimizer.learning_rate == sk._optimizer.learning_rate
    for m in (sk, est, fresh):
        m.partial_fit(X, TARGETS["multiclass"])
    assert_same_weights(sk, est)
    assert not np.allclose(est.coefs_[0], fresh.coefs_[0], rtol=1e-6)


def test_from_sklearn_leaves_out_an_optimizer_of_another_network(tmp_path):
    # scikit-learn keeps an adam fit's optimizer through an lbfgs fit of
    # other layer sizes: its slots do not fit the converted weights
    y = TARGETS["multiclass"]
    sk = sk_nn.MLPClassifier((5,), max_iter=3, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        sk.fit(X, y).set_params(hidden_layer_sizes=(7,), solver="lbfgs").fit(X, y)
    est = from_sklearn(sk)
    assert "_optimizer" not in est.__dict__
    tfmlp.save(est, tmp_path / "m.tfmlp")
    loaded = tfmlp.load(tmp_path / "m.tfmlp")
    for m in (est, loaded):  # a new optimizer for the converted network
        m.set_params(solver="adam").partial_fit(X, y)
    np.testing.assert_array_equal(loaded.coefs_[0], est.coefs_[0])


def test_to_sklearn_leaves_out_an_optimizer_of_other_weights():
    """Hidden units pruned by hand: tfmlp's next training call starts a new
    optimizer, and so does the converted scikit-learn model (it failed
    broadcasting the old moments)."""
    y = TARGETS["multiclass"]
    est = MLPClassifier((5,), max_iter=3, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, y)
    est.coefs_ = [est.coefs_[0][:, :4], est.coefs_[1][:4]]
    est.intercepts_ = [est.intercepts_[0][:4], est.intercepts_[1]]
    sk = to_sklearn(est)
    assert not hasattr(sk, "_optimizer")
    sk.set_params(hidden_layer_sizes=(4,)).partial_fit(X, y)
    est.set_params(hidden_layer_sizes=(4,)).partial_fit(X, y)
    for a, b in zip(sk.coefs_, est.coefs_):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


def test_from_sklearn_after_partial_fit_only_and_adaptive_rate():
    y = TARGETS["multiclass"]
    sk = sk_nn.MLPClassifier(hidden_layer_sizes=(5,), random_state=0)
    sk.partial_fit(X, y, classes=[0, 1, 2, 3])
    est = from_sklearn(sk)
    for _ in range(3):
        sk.partial_fit(X, y)
        est.partial_fit(X, y)
    assert_same_weights(sk, est)
    # sgd 'adaptive': the learning rate divided by 5 on the way carries over
    params = _params("multiclass", "sgd", learning_rate="adaptive", tol=0.1)
    sk = _quiet(sk_nn.MLPClassifier(**params, n_iter_no_change=1).fit, X, y)
    est = from_sklearn(sk)
    assert sk._optimizer.learning_rate < sk.learning_rate_init
    assert est._optimizer.learning_rate == sk._optimizer.learning_rate
    for _ in range(4):
        sk.partial_fit(X, y)
        est.partial_fit(X, y)
    assert_same_weights(sk, est)
    assert est._optimizer.learning_rate == sk._optimizer.learning_rate


@pytest.mark.parametrize("kind", ["binary", "regression"])
def test_from_sklearn_early_stopping_state(kind):
    """The best-weight bookkeeping (including sklearn's aliased restore)."""
    sk = _fit_sklearn(kind, "adam", early_stopping=True, n_iter_no_change=3)
    assert sk.coefs_ is sk._best_coefs  # sklearn's restore aliases the lists
    est = from_sklearn(sk)
    assert est._best_params is None
    assert_same_attributes(sk, est)
    _continue(sk, "warm_start", kind)
    _continue(est, "warm_start", kind)
    assert_same_weights(sk, est)
    assert_same_attributes(sk, est)


def test_from_sklearn_best_weights_copied_mid_training():
    sk = sk_nn.MLPClassifier(**_params("binary", "adam", early_stopping=True))
    _quiet(sk.fit, X[:60], TARGETS["binary"][:60])
    sk._best_coefs = [c + 1.0 for c in sk.coefs_]  # an unaliased best
    est = from_sklearn(sk)
    n = len(sk.coefs_)
    for u, v in zip(est._best_params[:n], sk._best_coefs):
        np.testing.assert_array_equal(u, v)
        assert u is not v


def test_from_sklearn_feature_names_and_random_state():
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])
    rs = np.random.RandomState(3)
    sk = _quiet(
        sk_nn.MLPRegressor(hidden_layer_sizes=(4,), max_iter=5, random_state=rs).fit,
        frame,
        TARGETS["regression"],
    )
    est = from_sklearn(sk)
    np.testing.assert_array_equal(est.feature_names_in_, sk.feature_names_in_)
    assert est.random_state is not rs  # copied, like clone(): not advanced by us
    np.testing.assert_allclose(est.predict(frame), sk.predict(frame), atol=1e-6)


def test_from_sklearn_float32():
    sk = _quiet(
        sk_nn.MLPClassifier(hidden_layer_sizes=(5,), max_iter=5, random_state=0).fit,
        X.astype(np.float32),
        TARGETS["multiclass"],
    )
    est = from_sklearn(sk)
    assert est.coefs_[0].dtype == np.float32
    X32 = X.astype(np.float32)
    np.testing.assert_allclose(est.predict_proba(X32), sk.predict_proba(X32), atol=1e-5)
    sk.partial_fit(X32, TARGETS["multiclass"])
    est.partial_fit(X32, TARGETS["multiclass"])
    for u, v in zip(_weights(sk), _weights(est)):
        np.testing.assert_allclose(u, v, rtol=1e-4, atol=1e-5)


# -------------------------------------------------------------------- to_sklearn
@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("kind", KINDS)
def test_to_sklearn_same_model(kind, solver):
    est = _fit_tfmlp(kind, solver)
    sk = to_sklearn(est)
    assert type(sk) is _classes(kind)[0]
    _same_params(sk, est)
    assert_same_weights(sk, est, rtol=0)
    assert_same_attributes(sk, est)
    assert_same_outputs(sk, est)
    if solver != "lbfgs":
        assert type(sk._optimizer).__module__.startswith("sklearn.")
        native = _fit_sklearn(kind, solver)._optimizer.learning_rate
        assert type(sk._optimizer.learning_rate) is type(native)
    back = from_sklearn(sk)  # and the round trip
    assert_same_weights(back, est, rtol=0)
    assert_same_outputs(back, est)


@pytest.mark.parametrize("mode", ["partial_fit", "warm_start"])
@pytest.mark.parametrize("solver", ["adam", "sgd"])
@pytest.mark.parametrize("kind", ["binary", "multiclass", "multilabel", "regression"])
def test_to_sklearn_continues_like_tfmlp(kind, solver, mode):
    est = _fit_tfmlp(kind, solver)
    sk = to_sklearn(est)
    _continue(est, mode, kind)
    _continue(sk, mode, kind)
    assert_same_weights(sk, est)
    assert_same_attributes(sk, est)
    assert sk._no_improvement_count == est._no_improvement_count


def test_to_sklearn_early_stopping_state():
    est = _fit_tfmlp("binary", "adam", early_stopping=True, n_iter_no_change=3)
    assert est._best_params is None
    sk = to_sklearn(est)
    assert sk._best_coefs is sk.coefs_ and sk._best_intercepts is sk.intercepts_
    _continue(est, "warm_start", "binary")
    _continue(sk, "warm_start", "binary")
    assert_same_weights(sk, est)
    assert_same_attributes(sk, est)


def test_to_sklearn_sees_weights_changed_through_keras():
    est = _fit_tfmlp("multiclass", "adam")
    layer = est.model_.get_layer("output")
    kernel, bias = layer.get_weights()
    layer.set_weights([kernel * 2.0, bias + 1.0])
    sk = to_sklearn(est)
    np.testing.assert_array_equal(sk.coefs_[-1], kernel * 2.0)
    np.testing.assert_allclose(sk.predict_proba(X), est.predict_proba(X), atol=1e-12)


def test_to_sklearn_result_needs_no_tensorflow(tmp_path):
    """Pickled, then unpickled and used where TensorFlow/tfmlp cannot import."""
    models = {
        "clf": to_sklearn(_fit_tfmlp("multiclass", "adam")),
        "reg": to_sklearn(_fit_tfmlp("multioutput", "lbfgs")),
    }
    expected = {
        "clf": models["clf"].predict_proba(X),
        "reg": models["reg"].predict(X),
    }
    path = tmp_path / "models.pkl"
    path.write_bytes(pickle.dumps((models, X)))
    script = textwrap.dedent(
        f"""
        import importlib.abc, pickle, sys

        class Block(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in ("tensorflow", "keras", "tfmlp"):
                    raise ImportError(f"blocked: {{name}}")
                return None

        sys.meta_path.insert(0, Block())
        try:
            import tensorflow  # noqa: F401
        except ImportError:
            pass
        else:
            raise SystemExit("the import blocker does not work")
        models, X = pickle.loads(open({str(path)!r}, "rb").read())
        clf, reg = models["clf"], models["reg"]
        clf.partial_fit(X, clf.predict(X))  # sklearn can keep training it too
        out = {{"clf": models["clf"], "reg": reg.predict(X),
               "modules": sorted(m for m in sys.modules
                                 if m.split(".")[0] in ("tensorflow", "keras",
                                                        "tfmlp"))}}
        sys.stdout.buffer.write(pickle.dumps(out))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, timeout=120
    )
    assert result.returncode == 0, result.stderr.decode()
    out = pickle.loads(result.stdout)
    assert out["modules"] == []
    np.testing.assert_allclose(out["reg"], expected["reg"], rtol=0, atol=1e-12)
    trained = out["clf"]
    assert trained.n_iter_ == 1 and trained.t_ > models["clf"].t_
    # the unpickled copy before training predicted what tfmlp predicted
    np.testing.assert_allclose(
        pickle.loads(path.read_bytes())[0]["clf"].predict_proba(X),
        expected["clf"],
        atol=1e-12,
    )


def test_to_sklearn_refuses_what_sklearn_cannot_represent():
    y = TARGETS["binary"]
    for extra in (
        dict(dropout=0.1),
        dict(batch_normalization=True),
        dict(activation="gelu"),
    ):
        est = _quiet(
            MLPClassifier(hidden_layer_sizes=(4,), max_iter=2, **extra).fit, X, y
        )
        with pytest.raises(ValueError, match="cannot represent"):
            to_sklearn(est)


def test_to_sklearn_warns_about_class_weight():
    est = _fit_tfmlp("binary", "adam", class_weight={0: 2.0})
    with pytest.warns(UserWarning, match="class_weight") as record:
        sk = to_sklearn(est)
    assert record[0].filename == __file__  # the line that called to_sklearn
    assert_same_outputs(sk, est)


@pytest.mark.parametrize("kind", ["multiclass", "binary", "multilabel"])
def test_to_sklearn_of_weights_of_other_sizes_set_by_hand(kind):
    # a valid network of other hidden sizes (tfmlp predicts with it): the
    # scikit-learn model gets its layer count and predicts the same
    est = _fit_tfmlp(kind, "adam")
    rng = np.random.RandomState(0)
    n_in, n_out = est.coefs_[0].shape[0], est.coefs_[-1].shape[1]
    shapes = [(n_in, 7), (7, 2), (2, n_out)]
    est.coefs_ = [rng.normal(size=s) for s in shapes]
    est.intercepts_ = [rng.normal(size=s[1]) for s in shapes]
    sk = to_sklearn(est)
    assert sk.n_layers_ == 4
    assert_same_outputs(sk, est)


# ------------------------------------------------------------------------ errors
@pytest.mark.parametrize(
    "convert, unfitted",
    [
        (from_sklearn, sk_nn.MLPClassifier()),
        (from_sklearn, sk_nn.MLPRegressor()),
        (to_sklearn, MLPClassifier()),
        (to_sklearn, MLPRegressor()),
    ],
)
def test_unfitted_is_refused(convert, unfitted):
    name = convert.__name__
    with pytest.raises(NotFittedError, match=f"not fitted yet: {name} converts"):
        convert(unfitted)


@pytest.mark.parametrize(
    "convert, foreign, named",
    [
        (from_sklearn, LogisticRegression(), "sklearn.linear_model.LogisticRegression"),
        (from_sklearn, "MLPClassifier", "str"),
        (to_sklearn, LogisticRegression(), "sklearn.linear_model.LogisticRegression"),
        (to_sklearn, None, "NoneType"),
    ],
)
def test_foreign_object_is_refused(convert, foreign, named):
    accepted = (
        "sklearn.neural_network.MLPClassifier"
        if convert is from_sklearn
        else ("tfmlp.MLPClassifier")
    )
    with pytest.raises(TypeError, match=accepted) as info:
        convert(foreign)
    assert named in str(info.value)


def test_wrong_direction_is_refused_with_a_hint():
    sk = _fit_sklearn("binary", "lbfgs")
    est = from_sklearn(sk)
    with pytest.raises(TypeError, match="to_sklearn converts the other way"):
        from_sklearn(est)
    with pytest.raises(TypeError, match="from_sklearn converts the other way"):
        to_sklearn(sk)
    # the failed calls changed nothing
    assert_same_outputs(sk, est)


def test_exported():
    assert tfmlp.from_sklearn is from_sklearn and tfmlp.to_sklearn is to_sklearn
    assert {"from_sklearn", "to_sklearn"} <= set(tfmlp.__all__)
    assert copy.deepcopy(from_sklearn(_fit_sklearn("binary", "lbfgs"))).predict(X).shape


@pytest.mark.parametrize(
    "break_it",
    [
        lambda e: setattr(e, "coefs_", e.coefs_[:1]),
        lambda e: e.intercepts_.__setitem__(0, np.zeros(e.intercepts_[0].size + 1)),
        lambda e: e.coefs_.__setitem__(1, e.coefs_[1][1:]),
        lambda e: setattr(e, "n_outputs_", e.n_outputs_ + 1),
    ],
)
def test_from_sklearn_refuses_weights_that_make_no_network(break_it):
    est = _fit_sklearn("multiclass", "adam")
    break_it(est)
    with pytest.raises(ValueError, match="weights do not make one network"):
        from_sklearn(est)


def test_to_sklearn_refuses_an_invalid_activation_set_after_the_fit():
    est = _fit_tfmlp("multiclass", "adam")
    est.set_params(activation="Relu")
    with pytest.raises(ValueError, match="'activation' parameter must be"):
        to_sklearn(est)


@pytest.mark.parametrize("convert", [from_sklearn, to_sklearn])
def test_a_class_instead_of_an_instance_is_named_as_such(convert):
    from sklearn.neural_network import MLPClassifier as SkMLP

    cls = SkMLP if convert is from_sklearn else tfmlp.MLPClassifier
    with pytest.raises(TypeError, match="class .*MLPClassifier itself, not a fitted"):
        convert(cls)
