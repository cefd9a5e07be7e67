"""Numerical parity of tfmlp with scikit-learn's MLPClassifier / MLPRegressor.

Every test fits scikit-learn's estimator and tfmlp's side by side, in the same
process, on float64 data with the same integer ``random_state``, and checks that
the fitted state agrees to ``rtol=1e-8`` (see ``assert_same_fit``): ``coefs_``,
``intercepts_``, ``loss_``, ``loss_curve_``, ``best_loss_``,
``validation_scores_``, ``best_validation_score_``, ``n_iter_``, ``t_``,
``n_outputs_``, ``n_layers_``, ``out_activation_``, ``classes_``, the
predictions and probabilities, which attributes exist at all, and the
ConvergenceWarning / UserWarning messages each call emits.

Self-test of this harness
-------------------------
``TFMLP_PARITY_SELFTEST=1 python -m pytest tests/test_parity.py`` puts
scikit-learn on *both* sides (``TF_IMPL = sklearn.neural_network``). Everything
must then pass (sklearn agrees with itself bit for bit) and the run must stay
fast; use it after editing this file to tell harness bugs from tfmlp bugs.
"""

import itertools
import math
import os
import warnings

import numpy as np
import pytest
import sklearn.neural_network as sk_nn
from sklearn.datasets import (
    load_breast_cancer,
    load_diabetes,
    load_digits,
    load_iris,
    load_wine,
    make_multilabel_classification,
    make_regression,
)
from sklearn.exceptions import ConvergenceWarning
from sklearn.preprocessing import StandardScaler

SELFTEST = os.environ.get("TFMLP_PARITY_SELFTEST", "").strip() not in ("", "0")
if SELFTEST:
    TF_IMPL = sk_nn
else:
    import tfmlp

    TF_IMPL = tfmlp

RTOL = 1e-8
ATOL = 1e-10
F32_RTOL = 1e-4


# --------------------------------------------------------------------------- data


def _scale(X):
    return np.ascontiguousarray(StandardScaler().fit_transform(X), dtype=np.float64)


def _subset(X, y, n, seed):
    idx = np.random.RandomState(seed).permutation(len(X))[:n]
    return X[idx], y[idx]


def _make_datasets():
    d = {}
    # binary: breast cancer (150 rows) and digits 0 vs 1 (250 rows: auto batch
    # 200 leaves a partial last batch of 50).
    bc = load_breast_cancer()
    X, y = _subset(bc.data, bc.target, 150, 0)
    d["binary_bc"] = ("MLPClassifier", _scale(X), y)
    dg = load_digits()
    mask = dg.target < 2
    X, y = _subset(dg.data[mask] / 16.0, dg.target[mask], 250, 1)
    d["binary_digits"] = ("MLPClassifier", np.ascontiguousarray(X), y)
    # multiclass: iris (rows shuffled so chunks hold several classes), wine,
    # digits (300 rows, 10 classes).
    ir = load_iris()
    X, y_iris = _subset(ir.data, ir.target, 150, 2)
    X_iris = _scale(X)
    d["iris"] = ("MLPClassifier", X_iris, y_iris)
    wn = load_wine()
    d["wine"] = ("MLPClassifier", _scale(wn.data), wn.target)
    X, y = _subset(dg.data / 16.0, dg.target, 300, 3)
    d["digits"] = ("MLPClassifier", np.ascontiguousarray(X), y)
    # string / object labels
    names = np.array(["setosa", "versicolor", "virginica"], dtype=object)
    d["iris_object"] = ("MLPClassifier", X_iris, names[y_iris])
    X_bc, y_bc = d["binary_bc"][1], d["binary_bc"][2]
    d["binary_str"] = ("MLPClassifier", X_bc, np.array(["benign", "malign"])[y_bc])
    # multilabel indicator matrix
    X, Y = make_multilabel_classification(
        n_samples=120, n_features=8, n_classes=4, n_labels=2, random_state=0
    )
    d["multilabel"] = ("MLPClassifier", _scale(X), Y)
    # single-output regression: diabetes, standardised target
    db = load_diabetes()
    X, y = _subset(db.data, db.target, 200, 4)
    d["diabetes"] = ("MLPRegressor", _scale(X), (y - y.mean()) / y.std())
    # multi-output regression (3 targets)
    X, Y = make_regression(
        n_samples=150,
        n_features=6,
        n_informative=4,
        n_targets=3,
        noise=0.5,
        random_state=0,
    )
    d["multiout"] = ("MLPRegressor", _scale(X), Y / Y.std(axis=0))
    # non-negative count targets for loss="poisson"
    rs = np.random.RandomState(5)
    X = rs.normal(size=(150, 5))
    lam = np.exp(0.3 * X @ rs.normal(size=5) + 0.2)
    d["poisson"] = ("MLPRegressor", X, rs.poisson(lam).astype(np.float64))
    return d


DATA = _make_datasets()


def data(name):
    return DATA[name]


def weights_for(X, seed=0):
    """Random strictly positive sample weights."""
    return np.random.RandomState(seed + 100).uniform(0.2, 3.0, size=X.shape[0])


# ----------------------------------------------------------------- solver configs

SOLVERS = {
    "adam": dict(solver="adam", learning_rate_init=0.01),
    "sgd-constant-nesterov": dict(
        solver="sgd",
        learning_rate="constant",
        learning_rate_init=0.05,
        momentum=0.9,
        nesterovs_momentum=True,
    ),
    "sgd-constant-classic": dict(
        solver="sgd",
        learning_rate="constant",
        learning_rate_init=0.05,
        momentum=0.9,
        nesterovs_momentum=False,
    ),
    "sgd-constant-nomomentum": dict(
        solver="sgd",
        learning_rate="constant",
        learning_rate_init=0.1,
        momentum=0.0,
    ),
    "sgd-invscaling-nesterov": dict(
        solver="sgd",
        learning_rate="invscaling",
        learning_rate_init=0.5,
        power_t=0.25,
        momentum=0.9,
        nesterovs_momentum=True,
    ),
    "sgd-invscaling-classic": dict(
        solver="sgd",
        learning_rate="invscaling",
        learning_rate_init=0.5,
        power_t=0.25,
        momentum=0.5,
        nesterovs_momentum=False,
    ),
    # tol and patience chosen so that the /5 learning-rate decay actually fires
    "sgd-adaptive": dict(
        solver="sgd",
        learning_rate="adaptive",
        learning_rate_init=0.05,
        momentum=0.9,
        tol=0.05,
        n_iter_no_change=2,
    ),
    "lbfgs": dict(solver="lbfgs"),
}
STOCHASTIC = [k for k in SOLVERS if k != "lbfgs"]
ACTIVATIONS = ["identity", "logistic", "tanh", "relu"]


# ---------------------------------------------------------------------- harness

_FOREIGN_WARNING_SOURCES = (
    "/tensorflow/",
    "/keras/",
    "/absl/",
    "/google/",
    "/tf_keras/",
)


def _relevant_warnings(records):
    """(category name, message) of the sklearn-level warnings among ``records``.

    ConvergenceWarning is a UserWarning; UserWarnings raised from inside
    TensorFlow / Keras themselves are framework noise, not estimator behaviour.
    """
    out = set()
    for r in records:
        if not issubclass(r.category, UserWarning):
            continue
        fname = (r.filename or "").replace("\\", "/")
        if any(s in fname for s in _FOREIGN_WARNING_SOURCES):
            continue
        out.add((r.category.__name__, str(r.message)))
    return out


def _call(est, method, *args, **kwargs):
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        getattr(est, method)(*args, **kwargs)
    return _relevant_warnings(rec)


def make_pair(estimator, **params):
    """The same estimator class with the same params, from sklearn and tfmlp."""
    return getattr(sk_nn, estimator)(**params), getattr(TF_IMPL, estimator)(**params)


def call_both(sk, tf, method, *args, compare_messages=True, **kwargs):
    """Call ``method`` on both estimators and compare the warnings emitted."""
    w_sk = _call(sk, method, *args, **kwargs)
    w_tf = _call(tf, method, *args, **kwargs)
    if compare_messages:
        assert w_tf == w_sk, (
            f"{method}: warnings differ\n sklearn: {w_sk}\n tfmlp:   {w_tf}"
        )
    else:
        cats_sk = {c for c, _ in w_sk}
        cats_tf = {c for c, _ in w_tf}
        assert cats_tf == cats_sk, (
            f"{method}: warning categories differ: {cats_sk} vs {cats_tf}"
        )
    return w_sk


def fit_both(estimator, params, X, y, **fit_kwargs):
    sk, tf = make_pair(estimator, **params)
    call_both(sk, tf, "fit", X, y, **fit_kwargs)
    return sk, tf


def _describe(tf_val, sk_val, rtol, atol):
    """One line saying how far tfmlp's value is from sklearn's."""
    a = np.asarray(sk_val, dtype=np.float64)
    b = np.asarray(tf_val, dtype=np.float64)
    if a.shape != b.shape:
        return f"shape {b.shape} vs sklearn {a.shape}"
    with np.errstate(all="ignore"):
        diff = np.abs(a - b)
        rel = diff / np.maximum(np.abs(a), 1e-300)
        bad = ~((diff <= atol + rtol * np.abs(a)) | (np.isnan(a) & np.isnan(b)))
    fin_rel, fin_abs = rel[np.isfinite(rel)], diff[np.isfinite(diff)]
    line = (
        f"max rel diff {fin_rel.max() if fin_rel.size else 0.0:.3e}, "
        f"max abs diff {fin_abs.max() if fin_abs.size else 0.0:.3e}, "
        f"{int(bad.sum())}/{bad.size} elements off"
    )
    if a.ndim == 1 and bad.any():
        i = int(np.argmax(bad))
        line += f"; first at index {i}: tfmlp {b[i]!r}, sklearn {a[i]!r}"
    return line


def _close(tf_val, sk_val, what, rtol=RTOL, atol=ATOL):
    np.testing.assert_allclose(
        np.asarray(tf_val, dtype=np.float64),
        np.asarray(sk_val, dtype=np.float64),
        rtol=rtol,
        atol=atol,
        equal_nan=True,
        err_msg=f"{what}: tfmlp != sklearn ({_describe(tf_val, sk_val, rtol, atol)})",
    )


class _Mismatches:
    """Collects every difference, so one failure reports all of them."""

    def __init__(self):
        self.items = []

    def check(self, ok, msg):
        if not ok:
            self.items.append(msg)

    def equal(self, tf_val, sk_val, what):
        self.check(tf_val == sk_val, f"{what}: tfmlp {tf_val!r}, sklearn {sk_val!r}")

    def close(self, tf_val, sk_val, what, rtol=RTOL, atol=ATOL):
        try:
            np.testing.assert_allclose(
                np.asarray(tf_val, dtype=np.float64),
                np.asarray(sk_val, dtype=np.float64),
                rtol=rtol,
                atol=atol,
                equal_nan=True,
            )
        except (AssertionError, ValueError, TypeError):
            self.items.append(f"{what}: {_describe(tf_val, sk_val, rtol, atol)}")

    def optional_close(self, tf_val, sk_val, what):
        if sk_val is None or tf_val is None:
            self.check(
                tf_val is None and sk_val is None,
                f"{what}: tfmlp {tf_val!r}, sklearn {sk_val!r}",
            )
        else:
            self.close(tf_val, sk_val, what)

    def raise_if_any(self, header="tfmlp differs from sklearn"):
        if self.items:
            raise AssertionError(header + ":\n  " + "\n  ".join(self.items))


ATTRIBUTES = (
    "coefs_",
    "intercepts_",
    "n_iter_",
    "t_",
    "loss_",
    "loss_curve_",
    "best_loss_",
    "validation_scores_",
    "best_validation_score_",
    "n_outputs_",
    "n_layers_",
    "out_activation_",
    "classes_",
    "n_features_in_",
    "feature_names_in_",
)


def assert_same_fit(sk, tf, X=None):
    """Assert that a fitted tfmlp estimator matches the fitted sklearn one.

    Floating attributes: ``assert_allclose(rtol=1e-8, atol=1e-10)``; ``n_iter_``,
    ``t_`` and the other integers/strings: exact; attribute presence: ``hasattr``.
    With ``X``, also compares predict / predict_proba / predict_log_proba on it.
    All differences are collected and reported together.
    """
    m = _Mismatches()
    for name in ATTRIBUTES:
        m.equal(hasattr(tf, name), hasattr(sk, name), f"hasattr({name})")
    if sk.solver == "lbfgs":
        m.check(
            not hasattr(tf, "loss_curve_") and not hasattr(tf, "best_loss_"),
            "lbfgs: tfmlp has loss_curve_/best_loss_, sklearn has neither",
        )
    for name in (
        "n_iter_",
        "t_",
        "n_outputs_",
        "n_layers_",
        "out_activation_",
        "n_features_in_",
    ):
        if hasattr(sk, name) and hasattr(tf, name):
            m.equal(getattr(tf, name), getattr(sk, name), name)
    if hasattr(sk, "classes_") and hasattr(tf, "classes_"):
        m.equal(np.asarray(tf.classes_).dtype, sk.classes_.dtype, "classes_.dtype")
        m.check(
            np.array_equal(np.asarray(tf.classes_), sk.classes_),
            f"classes_: tfmlp {tf.classes_!r}, sklearn {sk.classes_!r}",
        )

    # training trajectories first: they show the first epoch that diverged
    if hasattr(sk, "loss_curve_") and hasattr(tf, "loss_curve_"):
        m.check(
            isinstance(tf.loss_curve_, list),
            f"loss_curve_ is {type(tf.loss_curve_).__name__}, not list",
        )
        m.close(tf.loss_curve_, sk.loss_curve_, "loss_curve_")
    if hasattr(sk, "validation_scores_") and hasattr(tf, "validation_scores_"):
        if sk.validation_scores_ is not None:
            m.check(
                isinstance(tf.validation_scores_, list),
                f"validation_scores_ is {type(tf.validation_scores_).__name__}",
            )
        m.optional_close(
            tf.validation_scores_, sk.validation_scores_, "validation_scores_"
        )
        m.optional_close(
            tf.best_validation_score_,
            sk.best_validation_score_,
            "best_validation_score_",
        )
    if hasattr(sk, "best_loss_") and hasattr(tf, "best_loss_"):
        m.optional_close(tf.best_loss_, sk.best_loss_, "best_loss_")
    if hasattr(tf, "loss_"):
        m.close(tf.loss_, sk.loss_, "loss_")

    for kind in ("coefs_", "intercepts_"):
        sk_list, tf_list = getattr(sk, kind), list(getattr(tf, kind, []))
        m.equal(len(tf_list), len(sk_list), f"len({kind})")
        for i, (a, b) in enumerate(zip(sk_list, tf_list, strict=False)):
            b = np.asarray(b)
            m.equal(b.dtype, a.dtype, f"{kind}[{i}].dtype")
            m.close(b, a, f"{kind}[{i}]")

    if X is not None:
        _compare_predictions(m, sk, tf, X)
    m.raise_if_any()


def _compare_predictions(m, sk, tf, X, rtol=RTOL, atol=ATOL):
    p_sk, p_tf = sk.predict(X), np.asarray(tf.predict(X))
    m.equal(p_tf.shape, p_sk.shape, "predict shape")
    m.equal(p_tf.dtype, p_sk.dtype, "predict dtype")
    if hasattr(sk, "predict_proba"):
        if p_tf.shape == p_sk.shape:
            n_bad = int(np.sum(np.asarray(p_tf != p_sk)))
            m.check(n_bad == 0, f"predict: {n_bad} of {p_sk.size} labels differ")
        m.close(tf.predict_proba(X), sk.predict_proba(X), "predict_proba", rtol, atol)
        # log only where proba is not tiny: for the binary/logistic case the
        # first column is 1 - p, whose cancellation error (~1e-16 absolute) the
        # log turns into a large relative error when p is within 1e-12 of 1.
        with np.errstate(divide="ignore"):
            lp_sk, lp_tf = sk.predict_log_proba(X), np.asarray(tf.predict_log_proba(X))
        if lp_tf.shape == lp_sk.shape:
            big = np.exp(lp_sk) > 1e-6
            m.close(lp_tf[big], lp_sk[big], "predict_log_proba", rtol, max(atol, 1e-8))
        else:
            m.equal(lp_tf.shape, lp_sk.shape, "predict_log_proba shape")
    else:
        m.close(p_tf, p_sk, "predict", rtol, atol)


def assert_same_predictions(sk, tf, X, rtol=RTOL, atol=ATOL):
    m = _Mismatches()
    _compare_predictions(m, sk, tf, X, rtol, atol)
    m.raise_if_any()


def _case_id(value):
    """Readable pytest ids for the dict / bool / tuple parameters."""
    if isinstance(value, dict):
        return ",".join(f"{k}={v}" for k, v in value.items()) or "defaults"
    if isinstance(value, bool):
        return "weighted" if value else "unweighted"
    if isinstance(value, tuple):
        return "hidden" + "x".join(map(str, value)) if value else "no_hidden"
    return None


def _params(solver_key, **extra):
    return {**SOLVERS[solver_key], **extra}


# ------------------------------------------------------------------------- tests


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("solver_key", list(SOLVERS))
def test_activation_solver_cross_classifier(activation, solver_key):
    """Full activation x solver cross on iris (multiclass, softmax)."""
    est, X, y = data("iris")
    params = _params(
        solver_key,
        hidden_layer_sizes=(7,),
        activation=activation,
        max_iter=15,
        random_state=0,
    )
    sk, tf = fit_both(est, params, X, y)
    assert_same_fit(sk, tf, X)


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("solver_key", ["adam", "sgd-constant-nesterov", "lbfgs"])
def test_activation_solver_cross_regressor(activation, solver_key):
    est, X, y = data("diabetes")
    lr = {"sgd-constant-nesterov": dict(learning_rate_init=0.01)}.get(solver_key, {})
    params = _params(
        solver_key,
        hidden_layer_sizes=(7,),
        activation=activation,
        max_iter=15,
        random_state=1,
        **lr,
    )
    sk, tf = fit_both(est, params, X, y)
    assert_same_fit(sk, tf, X)


TARGET_CASES = {
    # dataset: extra params (activation etc.)
    "binary_bc": dict(activation="relu"),
    "binary_digits": dict(activation="logistic"),
    "iris": dict(activation="tanh"),
    "wine": dict(activation="relu"),
    "digits": dict(activation="relu", hidden_layer_sizes=(10,)),
    "iris_object": dict(activation="relu"),
    "binary_str": dict(activation="tanh"),
    "multilabel": dict(activation="relu"),
    "diabetes": dict(activation="tanh"),
    "multiout": dict(activation="relu"),
    "poisson": dict(activation="tanh", loss="poisson"),
}
TARGET_SOLVER_LR = {  # smaller sgd steps for the regressors
    "diabetes": 0.01,
    "multiout": 0.01,
    "poisson": 0.005,
}


@pytest.mark.parametrize("solver_key", ["adam", "sgd-constant-nesterov", "lbfgs"])
@pytest.mark.parametrize("dataset", list(TARGET_CASES))
def test_target_types(dataset, solver_key):
    est, X, y = data(dataset)
    extra = dict(TARGET_CASES[dataset])
    extra.setdefault("hidden_layer_sizes", (7,))
    if solver_key.startswith("sgd") and dataset in TARGET_SOLVER_LR:
        extra["learning_rate_init"] = TARGET_SOLVER_LR[dataset]
    params = _params(solver_key, max_iter=12, random_state=3, **extra)
    sk, tf = fit_both(est, params, X, y)
    assert_same_fit(sk, tf, X)


SAMPLE_WEIGHT_CASES = [
    ("binary_bc", "adam", {}),
    ("binary_bc", "lbfgs", {}),
    ("iris", "sgd-constant-nesterov", dict(batch_size=32)),
    ("iris", "lbfgs", {}),
    ("wine", "sgd-invscaling-classic", {}),
    ("multilabel", "adam", {}),
    ("diabetes", "adam", dict(batch_size=64)),
    ("diabetes", "lbfgs", {}),
    ("multiout", "sgd-constant-nomomentum", dict(learning_rate_init=0.01)),
    ("poisson", "adam", dict(loss="poisson")),
]


@pytest.mark.parametrize("dataset,solver_key,extra", SAMPLE_WEIGHT_CASES, ids=_case_id)
def test_sample_weight(dataset, solver_key, extra):
    est, X, y = data(dataset)
    sw = weights_for(X)
    params = _params(
        solver_key, hidden_layer_sizes=(7,), max_iter=12, random_state=4, **extra
    )
    sk, tf = fit_both(est, params, X, y, sample_weight=sw)
    assert_same_fit(sk, tf, X)


EARLY_STOPPING_CASES = [
    # dataset, solver, extra, sample_weight?
    ("binary_bc", "adam", dict(n_iter_no_change=2), False),
    ("binary_digits", "sgd-constant-nesterov", dict(validation_fraction=0.2), False),
    ("binary_str", "adam", dict(n_iter_no_change=2), True),
    ("iris", "adam", dict(n_iter_no_change=3), False),
    ("wine", "sgd-adaptive", {}, False),
    ("digits", "adam", dict(n_iter_no_change=2, validation_fraction=0.15), False),
    ("multilabel", "adam", dict(n_iter_no_change=2), False),
    ("diabetes", "adam", dict(n_iter_no_change=2, tol=1e-3), False),
    ("diabetes", "sgd-invscaling-nesterov", dict(learning_rate_init=0.05), True),
    ("multiout", "adam", dict(n_iter_no_change=3), False),
]


@pytest.mark.parametrize(
    "dataset,solver_key,extra,use_sw", EARLY_STOPPING_CASES, ids=_case_id
)
def test_early_stopping(dataset, solver_key, extra, use_sw):
    est, X, y = data(dataset)
    params = _params(
        solver_key,
        hidden_layer_sizes=(7,),
        max_iter=30,
        early_stopping=True,
        random_state=5,
        **extra,
    )
    fit_kw = dict(sample_weight=weights_for(X, 1)) if use_sw else {}
    sk, tf = fit_both(est, params, X, y, **fit_kw)
    assert isinstance(sk.validation_scores_, list)  # the case does exercise it
    assert sk.best_loss_ is None
    assert_same_fit(sk, tf, X)


@pytest.mark.parametrize("dataset", ["binary_bc", "iris", "diabetes", "multiout"])
def test_early_stopping_stops_and_restores_best(dataset):
    """Early stopping that stops before max_iter, with the best epoch not the
    last one, so the restored ``_best_coefs`` differ from the last weights."""
    est, X, y = data(dataset)
    params = _params(
        "adam",
        hidden_layer_sizes=(7,),
        max_iter=100,
        early_stopping=True,
        n_iter_no_change=2,
        tol=1e-3,
        learning_rate_init=0.05,
        random_state=6,
    )
    sk, tf = fit_both(est, params, X, y)
    assert sk.n_iter_ < 100
    assert int(np.argmax(sk.validation_scores_)) < sk.n_iter_ - 1
    assert_same_fit(sk, tf, X)


WARM_START_CASES = {
    "iris-adam-newdata": ("iris", "adam", {}, dict(max_iter=5), True),
    "iris-sgd-adaptive": ("iris", "sgd-adaptive", {}, dict(max_iter=6), False),
    "diabetes-sgd-invscaling": (
        "diabetes",
        "sgd-invscaling-nesterov",
        dict(learning_rate_init=0.05),
        dict(max_iter=7),
        False,
    ),
    "binary-sgd-classic": (
        "binary_bc",
        "sgd-constant-classic",
        {},
        dict(max_iter=4),
        False,
    ),
    "iris-lbfgs": ("iris", "lbfgs", dict(max_iter=10), dict(max_iter=20), False),
    "multiout-lbfgs": (
        "multiout",
        "lbfgs",
        dict(max_iter=10),
        dict(max_iter=15),
        False,
    ),
    # first fit stops on the tol criterion; the counter persists, so the warm
    # fit stops after one epoch (spec P9)
    "bc-adam-stopped": (
        "binary_bc",
        "adam",
        dict(tol=1e-2, n_iter_no_change=2, max_iter=200),
        dict(max_iter=50),
        False,
    ),
    # early stopping across warm starts: validation_scores_ accumulate (P10)
    "iris-adam-early-stopping": (
        "iris",
        "adam",
        dict(early_stopping=True, n_iter_no_change=2),
        dict(max_iter=10),
        False,
    ),
    "multilabel-adam": ("multilabel", "adam", {}, dict(max_iter=5), False),
}


@pytest.mark.parametrize("case", list(WARM_START_CASES))
def test_warm_start(case):
    dataset, solver_key, extra, second, new_data = WARM_START_CASES[case]
    est, X, y = data(dataset)
    params = _params(
        solver_key,
        hidden_layer_sizes=(7,),
        warm_start=True,
        random_state=7,
        **{"max_iter": 8, **extra},
    )
    sk, tf = fit_both(est, params, X, y)
    assert_same_fit(sk, tf, X)
    sk.set_params(**second)
    tf.set_params(**second)
    X2, y2 = (X[15:], y[15:]) if new_data else (X, y)
    call_both(sk, tf, "fit", X2, y2)
    assert_same_fit(sk, tf, X)


@pytest.mark.parametrize("solver_key", ["adam", "sgd-constant-nesterov"])
def test_continuing_an_lbfgs_fit_with_a_stochastic_solver(solver_key):
    # scikit-learn fails here (no loss_curve_ after lbfgs); given the state a
    # first stochastic fit starts with, it continues as tfmlp does
    est, X, y = data("iris")
    params = _params("lbfgs", hidden_layer_sizes=(7,), max_iter=6, random_state=3)
    sk, tf = fit_both(est, dict(params, warm_start=True), X, y)
    sk.loss_curve_, sk._no_improvement_count, sk.best_loss_ = [], 0, np.inf
    sk.validation_scores_ = sk.best_validation_score_ = None
    for e in (sk, tf):
        e.set_params(**SOLVERS[solver_key], max_iter=4)
    call_both(sk, tf, "fit", X, y)
    call_both(sk, tf, "partial_fit", X, y)
    assert_same_fit(sk, tf, X)


def test_turning_early_stopping_on_under_warm_start_scores_from_there():
    # scikit-learn fails here (validation_scores_ is None after the first fit)
    est, X, y = data("iris")
    tf = make_pair(est, **_params("adam", max_iter=3, warm_start=True))[1]
    _call(tf, "fit", X, y)
    _call(tf.set_params(early_stopping=True), "fit", X, y)
    assert len(tf.validation_scores_) == 3 and len(tf.loss_curve_) == 6
    assert tf.best_validation_score_ == max(tf.validation_scores_)


@pytest.mark.parametrize("solver_key", ["adam", "lbfgs"])
def test_refit_without_warm_start_reinitialises(solver_key):
    est, X, y = data("wine")
    sk, tf = fit_both(
        est,
        _params(solver_key, hidden_layer_sizes=(7,), max_iter=6, random_state=8),
        X,
        y,
    )
    sk.set_params(max_iter=9)
    tf.set_params(max_iter=9)
    call_both(sk, tf, "fit", X[:120], y[:120])
    assert_same_fit(sk, tf, X)


def _chunks(n, bounds):
    edges = [0, *bounds, n]
    return [slice(a, b) for a, b in itertools.pairwise(edges)]


PARTIAL_FIT_CASES = {
    # dataset, solver, extra, chunk bounds, pass classes on every call, sw
    "iris-adam": ("iris", "adam", {}, (50, 110), False, False),
    "binary-str-sgd": (
        "binary_str",
        "sgd-constant-nesterov",
        {},
        (40, 100),
        True,
        False,
    ),
    "digits-sgd-invscaling": (
        "digits",
        "sgd-invscaling-classic",
        {},
        (150,),
        False,
        False,
    ),
    "multilabel-adam": ("multilabel", "adam", {}, (60,), False, False),
    "iris-adam-sample-weight": ("iris", "adam", {}, (70,), False, True),
    "diabetes-sgd-invscaling": (
        "diabetes",
        "sgd-invscaling-nesterov",
        dict(learning_rate_init=0.05),
        (80, 150),
        False,
        False,
    ),
    "multiout-adam": ("multiout", "adam", {}, (75,), False, False),
    "poisson-sgd": (
        "poisson",
        "sgd-constant-nomomentum",
        dict(loss="poisson", learning_rate_init=0.01),
        (100,),
        False,
        False,
    ),
}


@pytest.mark.parametrize("case", list(PARTIAL_FIT_CASES))
def test_partial_fit(case):
    dataset, solver_key, extra, bounds, classes_always, use_sw = PARTIAL_FIT_CASES[case]
    est, X, y = data(dataset)
    params = _params(solver_key, hidden_layer_sizes=(7,), random_state=9, **extra)
    sk, tf = make_pair(est, **params)
    sw = weights_for(X, 2) if use_sw else None
    is_clf = est == "MLPClassifier"
    classes = (
        (np.arange(y.shape[1]) if y.ndim == 2 else np.unique(y)) if is_clf else None
    )
    # the chunks, then the whole data set twice more
    for i, sl in enumerate([*_chunks(len(X), bounds), slice(None), slice(None)]):
        kw = {}
        if is_clf and (i == 0 or classes_always):
            kw["classes"] = classes
        if sw is not None:
            kw["sample_weight"] = sw[sl]
        call_both(sk, tf, "partial_fit", X[sl], y[sl], **kw)
        assert sk.n_iter_ == 1
        assert_same_fit(sk, tf, X)


@pytest.mark.parametrize("dataset", ["iris", "diabetes"])
def test_partial_fit_after_fit(dataset):
    est, X, y = data(dataset)
    params = _params("adam", hidden_layer_sizes=(7,), max_iter=5, random_state=10)
    sk, tf = fit_both(est, params, X, y)
    for sl in (slice(0, 90), slice(90, None), slice(None)):
        call_both(sk, tf, "partial_fit", X[sl], y[sl])
        assert_same_fit(sk, tf, X)


def test_partial_fit_availability():
    """Classifier lbfgs has no partial_fit; the regressor's does (sklearn quirk)."""
    for est in ("MLPClassifier", "MLPRegressor"):
        for solver in ("adam", "sgd", "lbfgs"):
            sk, tf = make_pair(est, solver=solver)
            assert hasattr(tf, "partial_fit") == hasattr(sk, "partial_fit"), (
                est,
                solver,
            )


def test_regressor_lbfgs_partial_fit_runs_full_lbfgs():
    est, X, y = data("diabetes")
    sk, tf = make_pair(
        est, solver="lbfgs", hidden_layer_sizes=(5,), max_iter=15, random_state=11
    )
    call_both(sk, tf, "partial_fit", X, y)
    assert_same_fit(sk, tf, X)


BATCH_CASES = [
    ("iris", "adam", dict(shuffle=False)),
    (
        "diabetes",
        "sgd-constant-nesterov",
        dict(shuffle=False, batch_size=32, learning_rate_init=0.01),
    ),
    ("iris", "adam", dict(batch_size=7)),  # 150 = 21*7 + 3
    ("iris", "sgd-constant-classic", dict(batch_size=50)),  # divides n
    ("binary_bc", "adam", dict(batch_size=1000)),  # > n: UserWarning + clip
    ("diabetes", "adam", dict(batch_size=1, max_iter=3)),
    ("digits", "sgd-invscaling-nesterov", dict(batch_size=64)),  # 300 = 4*64 + 44
    ("multilabel", "adam", dict(batch_size=25, shuffle=False)),
    ("poisson", "adam", dict(batch_size=40, loss="poisson")),
]


@pytest.mark.parametrize("dataset,solver_key,extra", BATCH_CASES, ids=_case_id)
def test_batch_size_and_shuffle(dataset, solver_key, extra):
    est, X, y = data(dataset)
    params = _params(
        solver_key,
        hidden_layer_sizes=(7,),
        random_state=12,
        **{"max_iter": 10, **extra},
    )
    sk, tf = fit_both(est, params, X, y)
    assert_same_fit(sk, tf, X)


HIDDEN_CASES = [
    ("iris", "adam", (), "relu"),
    ("binary_bc", "sgd-constant-nesterov", (), "identity"),
    ("diabetes", "lbfgs", (), "relu"),
    ("poisson", "adam", (), "relu"),
    ("iris", "lbfgs", (10, 5), "tanh"),
    ("binary_bc", "sgd-invscaling-classic", (10, 5), "logistic"),
    ("multilabel", "adam", (10, 5), "relu"),
    ("multiout", "adam", (10, 5), "tanh"),
    ("digits", "sgd-constant-nomomentum", (10, 5), "relu"),
    ("wine", "adam", (6, 5, 4), "logistic"),
]


@pytest.mark.parametrize(
    "dataset,solver_key,hidden,activation", HIDDEN_CASES, ids=_case_id
)
def test_hidden_layer_sizes(dataset, solver_key, hidden, activation):
    est, X, y = data(dataset)
    extra = {"loss": "poisson"} if dataset == "poisson" else {}
    if dataset in TARGET_SOLVER_LR and solver_key.startswith("sgd"):
        extra["learning_rate_init"] = TARGET_SOLVER_LR[dataset]
    params = _params(
        solver_key,
        hidden_layer_sizes=hidden,
        activation=activation,
        max_iter=12,
        random_state=13,
        **extra,
    )
    sk, tf = fit_both(est, params, X, y)
    assert sk.n_layers_ == len(hidden) + 2
    assert_same_fit(sk, tf, X)


STOPPING_CASES = {
    # dataset, solver, extra, sklearn stops before max_iter?
    "adam-tol": ("binary_bc", "adam", dict(tol=3e-3, n_iter_no_change=2), True),
    "sgd-constant-tol": (
        "iris",
        "sgd-constant-nesterov",
        dict(tol=1e-2, n_iter_no_change=3),
        True,
    ),
    # adaptive: lr /5 on every trigger until it is <= 1e-6, then stop
    "sgd-adaptive-lr-too-small": (
        "iris",
        "sgd-adaptive",
        dict(learning_rate_init=1e-4, tol=10.0, n_iter_no_change=1),
        True,
    ),
    "sgd-adaptive-decays": (
        "wine",
        "sgd-adaptive",
        dict(learning_rate_init=0.05, tol=0.02, n_iter_no_change=1),
        None,
    ),
    "never-stop-inf-patience": (
        "iris",
        "adam",
        dict(tol=10.0, n_iter_no_change=math.inf, max_iter=12),
        False,
    ),
    "regressor-adam-tol": (
        "diabetes",
        "adam",
        dict(tol=1e-3, n_iter_no_change=2),
        True,
    ),
    "regressor-sgd-invscaling-tol": (
        "multiout",
        "sgd-invscaling-classic",
        dict(learning_rate_init=0.05, tol=1e-2, n_iter_no_change=2),
        True,
    ),
    "lbfgs-gtol": ("iris", "lbfgs", dict(tol=1e-2, max_iter=200), True),
}


@pytest.mark.parametrize("case", list(STOPPING_CASES))
def test_tol_and_n_iter_no_change(case):
    dataset, solver_key, extra, expect_stop = STOPPING_CASES[case]
    est, X, y = data(dataset)
    params = _params(
        solver_key,
        hidden_layer_sizes=(7,),
        random_state=14,
        **{"max_iter": 60, **extra},
    )
    sk, tf = make_pair(est, **params)
    w_sk = call_both(sk, tf, "fit", X, y)
    if expect_stop is not None:  # the case exercises what it claims to
        assert (sk.n_iter_ < params["max_iter"]) == expect_stop, sk.n_iter_
        warned = ConvergenceWarning.__name__ in {c for c, _ in w_sk}
        assert warned == (not expect_stop)
    assert_same_fit(sk, tf, X)


FLOAT32_CASES = [
    ("iris", "adam"),
    ("iris", "sgd-constant-nesterov"),
    ("iris", "lbfgs"),
    ("binary_bc", "adam"),
    ("multilabel", "sgd-invscaling-classic"),
    ("diabetes", "adam"),
    ("diabetes", "lbfgs"),
    ("multiout", "sgd-constant-nomomentum"),
]


@pytest.mark.parametrize("dataset,solver_key", FLOAT32_CASES)
def test_float32_input(dataset, solver_key):
    """float32 X: predictions to ~1e-4 rel; parameter dtypes as sklearn's."""
    est, X, y = data(dataset)
    X32 = X.astype(np.float32)
    extra = {}
    if dataset in TARGET_SOLVER_LR and solver_key.startswith("sgd"):
        extra["learning_rate_init"] = TARGET_SOLVER_LR[dataset]
    # patience disabled so both sides run the same number of epochs
    params = _params(
        solver_key,
        hidden_layer_sizes=(7,),
        max_iter=10,
        random_state=15,
        **{"n_iter_no_change": 1000, **extra},
    )
    sk, tf = make_pair(est, **params)
    call_both(sk, tf, "fit", X32, y, compare_messages=False)
    expected = np.float64 if solver_key == "lbfgs" else np.float32
    for kind in ("coefs_", "intercepts_"):
        for a, b in zip(getattr(sk, kind), getattr(tf, kind), strict=True):
            assert a.dtype == expected
            assert np.asarray(b).dtype == a.dtype, (
                f"{kind} dtype {b.dtype} vs {a.dtype}"
            )
    p_sk, p_tf = sk.predict(X32), tf.predict(X32)
    assert np.asarray(p_tf).dtype == np.asarray(p_sk).dtype
    if hasattr(sk, "predict_proba"):
        pr_sk, pr_tf = sk.predict_proba(X32), tf.predict_proba(X32)
        _close(pr_tf, pr_sk, "predict_proba (float32)", F32_RTOL, 1e-6)
        # labels must agree wherever the decision is not within float32 noise
        if pr_sk.shape[1] == 2 or sk.out_activation_ == "logistic":
            margin = np.abs(pr_sk - 0.5).min(axis=1)
        else:
            top2 = np.sort(pr_sk, axis=1)[:, -2:]
            margin = top2[:, 1] - top2[:, 0]
        safe = margin > 1e-3
        np.testing.assert_array_equal(np.asarray(p_tf)[safe], np.asarray(p_sk)[safe])
    else:
        scale = np.abs(p_sk).max()
        _close(p_tf, p_sk, "predict (float32)", F32_RTOL, F32_RTOL * scale)


def _fit_pair_weighted(est, X, y, params, weighted, **tf_params):
    """Fit scikit-learn's and tfmlp's estimator (random sample weights if
    ``weighted``), check they agree and return both."""
    fit_kwargs = {"sample_weight": weights_for(X)} if weighted else {}
    sk = getattr(sk_nn, est)(**params)
    tf = getattr(TF_IMPL, est)(**tf_params, **params)
    call_both(sk, tf, "fit", X, y, **fit_kwargs)
    assert_same_fit(sk, tf, X)
    return sk, tf


XLA_CASES = [
    ("iris", "adam", dict(batch_size=32)),
    ("binary_bc", "sgd-constant-nesterov", dict(batch_size=64)),
    ("multilabel", "adam", {}),
    ("poisson", "adam", dict(loss="poisson")),
    ("wine", "sgd-invscaling-classic", dict(early_stopping=True)),
]


@pytest.mark.skipif(SELFTEST, reason="jit_compile is a tfmlp parameter")
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("dataset,solver_key,extra", XLA_CASES, ids=_case_id)
def test_xla_epochs_keep_parity(dataset, solver_key, extra, weighted):
    """jit_compile=True (padded static batches under XLA) gives the same numbers."""
    est, X, y = data(dataset)
    params = _params(
        solver_key, hidden_layer_sizes=(7,), max_iter=8, random_state=5, **extra
    )
    _fit_pair_weighted(est, X, y, params, weighted, jit_compile=True)


CHUNK_CASES = [
    ("iris", "adam", dict(batch_size=16)),
    ("digits", "sgd-constant-nesterov", dict(batch_size=32)),
    ("multilabel", "adam", dict(batch_size=20)),
    ("multiout", "sgd-invscaling-classic", dict(batch_size=25)),
    ("poisson", "adam", dict(loss="poisson", batch_size=40)),
    ("wine", "adam", dict(early_stopping=True, batch_size=16)),
    ("binary_digits", "adam", dict(shuffle=False)),
]


@pytest.mark.skipif(SELFTEST, reason="chunked training is tfmlp's")
@pytest.mark.parametrize("xla", [False, True], ids=["graph", "xla"])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("dataset,solver_key,extra", CHUNK_CASES, ids=_case_id)
def test_chunked_epochs_keep_parity(
    dataset, solver_key, extra, weighted, xla, monkeypatch
):
    """Large dense input is fed in chunks of batches gathered by NumPy (padded
    last chunk, partial last batch): same numbers as scikit-learn."""
    import tfmlp._loop as loop

    est, X, y = data(dataset)
    bs = extra.get("batch_size", 200)
    # three batches a chunk, and chunking for every size
    monkeypatch.setattr(loop, "CHUNK_BYTES", 3 * bs * X.shape[1] * 8)
    monkeypatch.setattr(loop, "CHUNK_MIN_BYTES", 0)
    monkeypatch.setattr(loop, "CHUNK_MIN_BATCHES", 1)
    monkeypatch.setattr(loop, "RESIDENT_MAX_BYTES", 0)
    monkeypatch.setattr(loop, "_xla_view_ok", lambda X, dtype: False)
    params = _params(
        solver_key, hidden_layer_sizes=(7,), max_iter=6, random_state=3, **extra
    )
    sk, tf = _fit_pair_weighted(est, X, y, params, weighted, jit_compile=xla)
    if not extra.get("early_stopping"):  # one more epoch, continuing the state
        fit_kwargs = {"sample_weight": weights_for(X)} if weighted else {}
        call_both(sk, tf, "partial_fit", X, y, **fit_kwargs)
        assert_same_fit(sk, tf, X)


@pytest.mark.skipif(SELFTEST, reason="chunked training is tfmlp's")
def test_chunk_runner_is_used_and_float32_matches(monkeypatch):
    """The runner choice, and float32 input through chunks (to ~1e-4)."""
    import tfmlp._loop as loop

    est_name, X, y = data("digits")
    monkeypatch.setattr(loop, "CHUNK_BYTES", 2 * 32 * X.shape[1] * 4)
    monkeypatch.setattr(loop, "CHUNK_MIN_BYTES", 0)
    monkeypatch.setattr(loop, "CHUNK_MIN_BATCHES", 1)
    monkeypatch.setattr(loop, "RESIDENT_MAX_BYTES", 0)
    monkeypatch.setattr(loop, "_xla_view_ok", lambda X, dtype: False)
    used = []
    real = loop.ChunkRunner.run_epoch
    monkeypatch.setattr(
        loop.ChunkRunner,
        "run_epoch",
        lambda self, rs: used.append(self) or real(self, rs),
    )
    params = dict(hidden_layer_sizes=(9,), max_iter=5, batch_size=32, random_state=0)
    X32 = X.astype(np.float32)
    sk = sk_nn.MLPClassifier(**params)
    tf = TF_IMPL.MLPClassifier(**params)
    call_both(sk, tf, "fit", X32, y, compare_messages=False)
    assert used and used[0].chunk_rows == 64
    _close(tf.loss_curve_, sk.loss_curve_, "loss_curve_ (float32)", F32_RTOL, 1e-6)
    for a, b in zip(sk.coefs_, tf.coefs_, strict=True):
        assert b.dtype == np.float32
        _close(b, a, "coefs_ (float32)", F32_RTOL, 1e-5)


# ------------------------------------------------- saturated logistic outputs
@pytest.mark.parametrize(
    "params",
    [
        dict(solver="adam", max_iter=20),
        dict(solver="sgd", max_iter=20),
        dict(solver="lbfgs", max_iter=40),
        dict(solver="adam", max_iter=5, activation="logistic", jit_compile=True),
    ],
    ids=_case_id,
)
def test_saturated_logistic_output_reports_sklearns_loss(params):
    """Unscaled breast_cancer drives the logistic output to within ulps of 1,
    where the log-loss's ``log(1 - p)`` needs ``p`` computed as SciPy's
    ``expit`` does (``tf.math.sigmoid`` rounds differently there: up to ~1e-4
    relative in the loss, and a different L-BFGS path)."""
    X, y = load_breast_cancer(return_X_y=True)
    params = dict(params, random_state=0)
    tf_only = {k: params.pop(k) for k in ("jit_compile",) if k in params}
    sk, tf = make_pair("MLPClassifier", **params)
    if not SELFTEST:
        tf.set_params(**tf_only)
    call_both(sk, tf, "fit", X, y)
    assert_same_fit(sk, tf, X)


@pytest.mark.parametrize(
    "first, change",
    [
        ("adam", {"solver": "sgd"}),
        ("sgd", {"solver": "adam"}),
        ("sgd", {"nesterovs_momentum": False}),
    ],
    ids=_case_id,
)
def test_partial_fit_keeps_the_optimizer_it_has(first, change):
    """As in scikit-learn, ``partial_fit`` goes on with the fitted optimizer
    (its kind and Nesterov flag) after ``set_params`` changed the solver."""
    est, X, y = data("iris")
    params = dict(solver=first, hidden_layer_sizes=(5,), max_iter=6, random_state=0)
    sk, tf = fit_both(est, params, X, y)
    sk.set_params(**change)
    tf.set_params(**change)
    for _ in range(2):
        call_both(sk, tf, "partial_fit", X, y)
    assert_same_fit(sk, tf, X)


@pytest.mark.parametrize(
    "name, params",
    [
        # a loss / validation score that never changes ties the best exactly:
        # with tol=0 that is no improvement (``>`` / ``<``, not ``>=``)
        ("diabetes", dict(learning_rate_init=1e-300, tol=0.0, shuffle=False)),
        ("iris", dict(learning_rate_init=1e-300, tol=0.0, early_stopping=True)),
        # the adaptive rate stops training once it is at or below 1e-6
        (
            "iris",
            dict(
                solver="sgd",
                learning_rate="adaptive",
                learning_rate_init=1e-6,
                tol=100.0,
                n_iter_no_change=1,
            ),
        ),
    ],
    ids=_case_id,
)
def test_stopping_rules_at_their_boundaries(name, params):
    est, X, y = data(name)
    params = dict(params, hidden_layer_sizes=(5,), max_iter=15, random_state=0)
    sk, tf = fit_both(est, params, X, y)
    assert_same_fit(sk, tf, X)


def test_warm_start_after_early_stopping_keeps_the_live_weights():
    """A warm-start fit that never beats the first fit's best validation score
    ends with the weights it trained (scikit-learn keeps no best weights from
    the earlier fit)."""
    est, X, y = data("digits")
    first = dict(hidden_layer_sizes=(8,), early_stopping=True, max_iter=100)
    sk, tf = fit_both(est, dict(first, random_state=0), X[:300], y[:300])
    change = dict(warm_start=True, learning_rate_init=1.0, tol=0.5, n_iter_no_change=1)
    sk.set_params(**change)
    tf.set_params(**change)
    call_both(sk, tf, "fit", X[:300], y[:300])
    assert_same_fit(sk, tf, X[:300])


@pytest.mark.parametrize(
    "method, params, rows",
    [
        # warm start on labels that lack a class of the first fit
        ("fit", dict(warm_start=True), lambda y: y != 2),
        # an early-stopping split of one sample
        ("fit", dict(early_stopping=True), lambda y: slice(45, 55)),
    ],
    ids=["warm-start-classes", "one-validation-sample"],
)
def test_errors_at_boundaries_match(method, params, rows):
    est, X, y = data("iris")
    base = dict(hidden_layer_sizes=(5,), max_iter=3, random_state=0)
    sk, tf = fit_both(est, base, X, y)
    before = tf.predict_proba(X)
    sk.set_params(**params)
    tf.set_params(**params)
    rows = rows(y)
    with pytest.raises(ValueError) as sk_error:
        getattr(sk, method)(X[rows], y[rows])
    with pytest.raises(ValueError) as tf_error:
        getattr(tf, method)(X[rows], y[rows])
    assert str(tf_error.value) == str(sk_error.value)
    np.testing.assert_array_equal(tf.predict_proba(X), before)
