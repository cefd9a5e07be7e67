"""Public API: parameters, errors, input kinds, dtypes and the backend check."""

import inspect
import json
import os
import re
import subprocess
import sys
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.datasets import load_iris, make_regression
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.neural_network import MLPClassifier as SkClassifier
from sklearn.neural_network import MLPRegressor as SkRegressor

from tfmlp import MLPClassifier, MLPRegressor

X_IRIS, Y_IRIS = load_iris(return_X_y=True)
PAIRS = [(MLPClassifier, SkClassifier), (MLPRegressor, SkRegressor)]


@pytest.mark.parametrize("ours, theirs", PAIRS)
def test_signature_matches_sklearn(ours, theirs):
    a = inspect.signature(ours.__init__).parameters
    b = inspect.signature(theirs.__init__).parameters
    # scikit-learn's parameters first, in its order; tfmlp's extras after them
    assert list(a)[: len(b)] == list(b)
    for name in b:
        assert a[name].default == b[name].default, name
        assert a[name].kind == b[name].kind, name
    ours_params = ours().get_params()
    assert {k: ours_params[k] for k in b if k != "self"} == theirs().get_params()
    for name in list(a)[len(b) :]:
        assert a[name].default in (None, False), name  # extras default to "off"


@pytest.mark.parametrize(
    "params, pattern",
    [
        ({"alpha": -1.0}, r"The 'alpha' parameter of MLP\w+ must be a float"),
        ({"batch_size": 0}, r"'batch_size' parameter .* Got 0 instead"),
        ({"shuffle": 1}, r"'shuffle' parameter .* Got 1 instead"),
        ({"solver": "newton"}, r"'solver' parameter"),
        ({"n_iter_no_change": 2.5}, r"'n_iter_no_change' parameter"),
        ({"random_state": "x"}, r"'random_state' parameter"),
    ],
)
@pytest.mark.parametrize("ours, theirs", PAIRS)
def test_invalid_parameters_same_error(ours, theirs, params, pattern):
    y = Y_IRIS if ours is MLPClassifier else Y_IRIS.astype(float)
    with pytest.raises(ValueError, match=pattern) as ours_err:
        ours(**params).fit(X_IRIS, y)
    with pytest.raises(ValueError) as their_err:
        theirs(**params).fit(X_IRIS, y)
    assert type(ours_err.value) is type(their_err.value)
    # set orderings inside {...} are not stable; compare the text around them
    strip = lambda m: re.sub(r"\{.*?\}", "{}", str(m))  # noqa: E731
    assert strip(ours_err.value) == strip(their_err.value)


def test_hidden_layer_sizes_error():
    with pytest.raises(
        ValueError, match=r"hidden_layer_sizes must be > 0, got \[3, 0\]"
    ):
        MLPClassifier(hidden_layer_sizes=[3, 0]).fit(X_IRIS, Y_IRIS)


def test_not_fitted():
    with pytest.raises(NotFittedError):
        MLPClassifier().predict(X_IRIS)
    assert not hasattr(MLPClassifier(), "coefs_")


def test_lbfgs_has_no_partial_fit():
    assert not hasattr(MLPClassifier(solver="lbfgs"), "partial_fit")
    # scikit-learn's regressor quirk: partial_fit exists for lbfgs
    assert hasattr(MLPRegressor(solver="lbfgs"), "partial_fit")


def _fit_quiet(est, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(*args, **kwargs)


@pytest.mark.parametrize("solver", ["adam", "sgd", "lbfgs"])
def test_sparse_equals_dense(solver):
    rng = np.random.RandomState(0)
    X = rng.rand(60, 12)
    X[X < 0.7] = 0.0
    y = (X.sum(axis=1) > X.sum(axis=1).mean()).astype(int)
    kw = dict(hidden_layer_sizes=(5,), solver=solver, max_iter=5, random_state=1)
    dense = _fit_quiet(MLPClassifier(**kw), X, y)
    for fmt in (sp.csr_matrix, sp.csc_matrix):
        sparse = _fit_quiet(MLPClassifier(**kw), fmt(X), y)
        for a, b in zip(dense.coefs_, sparse.coefs_):
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(
            dense.predict_proba(X), sparse.predict_proba(fmt(X)), rtol=1e-10
        )


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_preserved(dtype):
    X, y = make_regression(50, 4, random_state=0)
    reg = _fit_quiet(
        MLPRegressor(hidden_layer_sizes=(3,), max_iter=3), X.astype(dtype), y
    )
    assert reg.coefs_[0].dtype == dtype
    assert reg.predict(X.astype(dtype)).dtype == dtype
    lb = _fit_quiet(MLPRegressor(solver="lbfgs", max_iter=3), X.astype(dtype), y)
    assert lb.coefs_[0].dtype == np.float64


@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
@pytest.mark.parametrize("batch_size", ["auto", 20, 500])
def test_float32_regression_loss_type_is_sklearns(batch_size, solver):
    # scikit-learn's numeric batch sizes are NumPy integers (np.clip), which
    # make its float32 losses float64
    from sklearn.neural_network import MLPRegressor as SkRegressor

    X, y = make_regression(50, 4, random_state=0)
    X, y = X.astype(np.float32), y.astype(np.float32)
    kw = dict(hidden_layer_sizes=(3,), max_iter=2, batch_size=batch_size)
    ours = _fit_quiet(MLPRegressor(solver=solver, **kw), X, y)
    theirs = _fit_quiet(SkRegressor(solver=solver, **kw), X, y)
    assert type(ours.loss_) is type(theirs.loss_)
    if solver != "lbfgs":  # lbfgs ignores batch_size and keeps no curve
        assert type(ours.best_loss_) is type(theirs.best_loss_)
        assert type(ours.loss_curve_[0]) is type(theirs.loss_curve_[0])


def test_pandas_feature_names():
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame(X_IRIS, columns=["a", "b", "c", "d"])
    clf = _fit_quiet(MLPClassifier(hidden_layer_sizes=(3,), max_iter=3), df, Y_IRIS)
    assert list(clf.feature_names_in_) == ["a", "b", "c", "d"]
    with pytest.warns(UserWarning, match="feature names"):
        clf.predict(X_IRIS)
    with pytest.raises(ValueError, match="feature names"):
        clf.predict(df[["b", "a", "c", "d"]])


def test_coefs_edits_are_seen_by_predict():
    clf = _fit_quiet(MLPClassifier(hidden_layer_sizes=(4,), max_iter=3), X_IRIS, Y_IRIS)
    clf.coefs_[-1][:] = 0.0
    clf.intercepts_[-1][:] = 0.0
    np.testing.assert_allclose(clf.predict_proba(X_IRIS), 1 / 3)


def test_training_runs_in_tensorflow_variables():
    import tensorflow as tf

    clf = _fit_quiet(MLPClassifier(hidden_layer_sizes=(4,), max_iter=2), X_IRIS, Y_IRIS)
    net = clf._network()
    assert all(isinstance(v, tf.Variable) for v in net.variables)
    np.testing.assert_array_equal(net.variables[0].numpy(), clf.coefs_[0])


def test_other_keras_backend_fails_clearly():
    env = dict(os.environ, KERAS_BACKEND="jax")
    proc = subprocess.run(
        [sys.executable, "-c", "import tfmlp"], env=env, capture_output=True, text=True
    )
    assert proc.returncode != 0
    assert "KERAS_BACKEND=tensorflow" in proc.stderr
    assert "'jax' backend" in proc.stderr


def _import_tfmlp(tmp_path, backend_env, config_backend=None):
    env = dict(os.environ, KERAS_HOME=str(tmp_path))
    env.pop("KERAS_BACKEND", None)
    if backend_env is not None:
        env["KERAS_BACKEND"] = backend_env
    if config_backend is not None:
        (tmp_path / "keras.json").write_text(json.dumps({"backend": config_backend}))
    return subprocess.run(
        [sys.executable, "-c", "import tfmlp"], env=env, capture_output=True, text=True
    )


def test_backend_is_read_as_keras_reads_it(tmp_path):
    # an empty KERAS_BACKEND is ignored by Keras: the default (tensorflow)
    assert _import_tfmlp(tmp_path, "").returncode == 0
    # the config file names the backend, unless a non-empty variable overrides it
    proc = _import_tfmlp(tmp_path, "", config_backend="jax")
    assert proc.returncode != 0 and "'jax' backend" in proc.stderr
    assert str(tmp_path / "keras.json") in proc.stderr  # the file Keras reads
    assert _import_tfmlp(tmp_path, "tensorflow", config_backend="jax").returncode == 0


def test_backend_name_is_read_as_written(tmp_path):
    # Keras does not lower-case it: "TensorFlow" fails inside Keras, so here
    proc = _import_tfmlp(tmp_path, "TensorFlow")
    assert proc.returncode != 0 and "as written" in proc.stderr


@pytest.mark.parametrize("how", [["-m", "tfmlp"], ["script"]])
def test_command_line_reports_another_backend_in_one_line(tmp_path, how):
    env = dict(os.environ, KERAS_BACKEND="jax")
    if how == ["script"]:  # the installed `tfmlp` script: argv[0] ends in tfmlp
        script = tmp_path / "tfmlp"
        script.write_text("from tfmlp._cli import main\nraise SystemExit(main())\n")
        how = [str(script)]
    proc = subprocess.run(
        [sys.executable, *how, "--help"], env=env, capture_output=True, text=True
    )
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tfmlp: error: ")
    assert "'jax' backend" in lines[0] and "Traceback" not in proc.stderr


def test_tensorboard_callback_without_tensorboard_names_the_extra(
    monkeypatch, tmp_path
):
    import importlib.util

    import keras

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "tensorboard" else real(name, *a),
    )
    est = MLPClassifier(
        max_iter=2, callbacks=[keras.callbacks.TensorBoard(str(tmp_path))]
    )
    with pytest.raises(ImportError, match=r'pip install "tfmlp\[tensorboard\]"'):
        est.fit(X_IRIS, Y_IRIS)
    assert not hasattr(est, "coefs_")


def test_demo_runs(capsys):
    from tfmlp._cli import main

    assert main(["demo", "--max-iter", "3"]) == 0
    out = capsys.readouterr().out
    assert "scikit-learn" in out and "tfmlp" in out
    assert "max |weight difference|" in out


def test_compute_dtype_float32_opt_in():
    X = X_IRIS.astype(np.float64)
    clf = _fit_quiet(
        MLPClassifier(
            hidden_layer_sizes=(5,), max_iter=5, random_state=0, compute_dtype="float32"
        ),
        X,
        Y_IRIS,
    )
    ref = _fit_quiet(
        MLPClassifier(hidden_layer_sizes=(5,), max_iter=5, random_state=0), X, Y_IRIS
    )
    assert clf.coefs_[0].dtype == np.float32 and ref.coefs_[0].dtype == np.float64
    np.testing.assert_allclose(clf.predict_proba(X), ref.predict_proba(X), atol=1e-4)
    with pytest.raises(ValueError, match="compute_dtype"):
        MLPClassifier(compute_dtype="float16").fit(X, Y_IRIS)


@pytest.mark.parametrize("setting, frozen", [(None, True), ("0", False)])
def test_startup_objects_are_frozen_once_unless_disabled(setting, frozen, monkeypatch):
    """TensorFlow's import-time objects leave the garbage collector's scans
    (``gc.freeze``, once per process); TFMLP_GC_FREEZE=0 keeps them."""
    import gc

    import tfmlp._backend as backend

    calls = []
    monkeypatch.setattr(gc, "freeze", lambda: calls.append(1))
    backend.freeze_startup_objects.cache_clear()
    if setting is None:
        monkeypatch.delenv("TFMLP_GC_FREEZE", raising=False)
    else:
        monkeypatch.setenv("TFMLP_GC_FREEZE", setting)
    backend.freeze_startup_objects()
    backend.freeze_startup_objects()
    assert calls == ([1] if frozen else [])


@pytest.mark.slow
def test_importing_the_estimators_freezes_startup_objects():
    code = (
        "import gc; n = gc.get_freeze_count(); from tfmlp import MLPClassifier; "
        "print(n, gc.get_freeze_count())"
    )
    for env, grows in [({}, True), ({"TFMLP_GC_FREEZE": "0"}, False)]:
        proc = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            env={**os.environ, **env},
            check=True,
        )
        before, after = map(int, proc.stdout.split())
        assert (after > before + 100_000) is grows, proc.stdout


@pytest.mark.parametrize(
    "ours, theirs, y, sw",
    [
        (MLPClassifier, SkClassifier, Y_IRIS, None),
        (MLPRegressor, SkRegressor, Y_IRIS.astype(np.float64), None),
        (MLPRegressor, SkRegressor, Y_IRIS.astype(np.float32), None),
        (MLPRegressor, SkRegressor, Y_IRIS.astype(np.float32), np.float64),
        (MLPRegressor, SkRegressor, Y_IRIS.astype(np.float32), np.float32),
        (MLPRegressor, SkRegressor, Y_IRIS.astype(np.float32), int),
    ],
)
@pytest.mark.parametrize("solver", ["adam", "early_stopping", "lbfgs"])
def test_reported_loss_types_follow_sklearn(ours, theirs, y, sw, solver):
    # float32 data: scikit-learn reports a classifier's loss (and a regressor's
    # with float64 targets or sample weights) as float64
    X = X_IRIS.astype(np.float32)
    kw = dict(max_iter=3, random_state=0, early_stopping=solver == "early_stopping")
    kw["solver"] = "lbfgs" if solver == "lbfgs" else "adam"
    sw = None if sw is None else np.ones(len(X), sw)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        a = theirs(**kw).fit(X, y, sample_weight=sw)
        b = ours(**kw).fit(X, y, sample_weight=sw)
    for name in ("loss_", "best_loss_"):
        assert type(getattr(b, name, None)) is type(getattr(a, name, None)), name
    curves = [getattr(e, "loss_curve_", []) for e in (a, b)]
    assert [type(v) for v in curves[1]] == [type(v) for v in curves[0]]


@pytest.mark.parametrize("rows", [5, 60_000])
def test_float32_network_predicts_float64_input_as_sklearn(rows):
    # scikit-learn's X @ coefs_ promotes a float32 network's products to
    # float64 for float64 (and integer) input
    from tfmlp import to_sklearn

    rng = np.random.RandomState(0)
    X32 = X_IRIS.astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf = MLPClassifier(max_iter=5, random_state=0).fit(X32, Y_IRIS)
        reg = MLPRegressor(max_iter=5, random_state=0).fit(X32, Y_IRIS * 1.0)
    X = rng.rand(rows, 4) * 8
    for ours in (clf, reg):
        theirs = to_sklearn(ours)  # the same float32 weights
        for data in (X, (X * 10).astype(np.int64), sp.csr_matrix(X)):
            method = "predict_proba" if ours is clf else "predict"
            a, b = getattr(theirs, method)(data), getattr(ours, method)(data)
            assert b.dtype == a.dtype == np.float64
            np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-15)
        assert getattr(ours, method)(X.astype(np.float32)).dtype == np.float32


def test_multilabel_partial_fit_binarizer_is_fitted_on_y_as_sklearn():
    # scikit-learn fits the label binarizer on y itself on the first call:
    # a sparse y gives sparse predictions, and classes= may name more labels
    from sklearn.datasets import make_multilabel_classification

    X, Y = make_multilabel_classification(60, 5, n_classes=3, random_state=0)
    kw = dict(hidden_layer_sizes=(4,), random_state=0)
    for y, classes in [(sp.csr_matrix(Y), [0, 1, 2]), (Y, [0, 1, 2, 3])]:
        a = SkClassifier(**kw).partial_fit(X, y, classes=classes)
        b = MLPClassifier(**kw).partial_fit(X, y, classes=classes)
        np.testing.assert_array_equal(b.classes_, a.classes_)
        assert b.n_outputs_ == a.n_outputs_
        pa, pb = a.predict(X), b.predict(X)
        assert sp.issparse(pb) == sp.issparse(pa)
        assert b.partial_fit(X, y).loss_ == pytest.approx(a.partial_fit(X, y).loss_)


def test_partial_fit_reads_the_target_type_on_the_first_call_only():
    # later calls get scikit-learn's errors for a missing or scalar y
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        fitted = [
            cls(max_iter=2, random_state=0).fit(X_IRIS, Y_IRIS)
            for cls in (SkClassifier, MLPClassifier)
        ]
    for bad, error in [(None, ValueError), (1, TypeError)]:
        messages = []
        for est in fitted:
            with pytest.raises(error) as info:
                est.partial_fit(X_IRIS, bad)
            messages.append(str(info.value))
        assert messages[1] == messages[0]


def test_float32_network_keeps_float32_for_inputs_numpy_keeps_there():
    # X @ coefs_ stays float32 for bool, int8/int16 and float16 input in
    # scikit-learn (NumPy's promotion); int64 and float64 promote
    X32 = X_IRIS.astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        sk = SkClassifier(hidden_layer_sizes=(5,), max_iter=5, random_state=0).fit(
            X32, Y_IRIS
        )
        ours = MLPClassifier(hidden_layer_sizes=(5,), max_iter=5, random_state=0).fit(
            X32, Y_IRIS
        )
    for X in (
        X32 > 3,
        X32.astype(np.int8),
        X32.astype(np.float16),
        X32.astype(np.int64),
        X_IRIS,
    ):
        for method in ("predict_proba", "predict_log_proba"):
            a, b = getattr(sk, method)(X), getattr(ours, method)(X)
            assert b.dtype == a.dtype, (X.dtype, method)


@pytest.mark.parametrize(
    "ours, theirs", [(MLPClassifier, SkClassifier), (MLPRegressor, SkRegressor)]
)
def test_shared_parameters_use_sklearns_own_constraints(ours, theirs):
    """The same constraint objects: error messages list the options in the
    same order (set order may differ between separately compiled modules)."""
    for name, constraint in theirs._parameter_constraints.items():
        if name != "activation":  # tfmlp adds activations
            assert ours._parameter_constraints[name] is constraint, name


@pytest.mark.parametrize(
    "params",
    [
        {"learning_rate_init": np.float32(0.01)},
        {"beta_1": np.float32(0.3)},  # 1 - beta_1 rounds in float32
        {"beta_2": np.float32(0.99), "beta_1": np.float16(0.8)},
    ],
)
def test_numpy_float32_adam_hyperparameters_keep_parity(params):
    X, y = load_iris(return_X_y=True)
    kw = dict(hidden_layer_sizes=(5,), max_iter=10, random_state=0, **params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours, theirs = MLPClassifier(**kw).fit(X, y), SkClassifier(**kw).fit(X, y)
    for a, b in zip(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-12)


@pytest.mark.parametrize("kind", ["sgd", "adam", "lbfgs", "batch_size", "pipeline"])
def test_sklearn_module_warning_filters_apply(kind):
    """scikit-learn's examples silence its MLP warnings with
    filterwarnings(..., module="sklearn"): the same filter silences ours."""
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    fits = {
        "sgd": lambda cls: cls(solver="sgd", max_iter=2).fit(X_IRIS, Y_IRIS),
        "adam": lambda cls: cls(max_iter=2).fit(X_IRIS, Y_IRIS),
        "lbfgs": lambda cls: cls(solver="lbfgs", max_iter=2).fit(X_IRIS, Y_IRIS),
        "batch_size": lambda cls: cls(max_iter=2, batch_size=500).fit(X_IRIS, Y_IRIS),
        "pipeline": lambda cls: make_pipeline(StandardScaler(), cls(max_iter=2)).fit(
            X_IRIS, Y_IRIS
        ),
    }
    for cls in (SkClassifier, MLPClassifier):
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            fits[kind](cls)
        assert any(issubclass(w.category, UserWarning) for w in seen)
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            warnings.filterwarnings("ignore", category=UserWarning, module="sklearn")
            fits[kind](cls)
        assert [w for w in seen if issubclass(w.category, UserWarning)] == [], cls


def test_own_partial_fit_convergence_warning_points_at_the_caller():
    est = MLPClassifier(early_stopping=True, n_iter_no_change=1, tol=10.0)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        for _ in range(3):
            est.partial_fit(
                X_IRIS, Y_IRIS, classes=[0, 1, 2], validation_data=(X_IRIS, Y_IRIS)
            )
    (record,) = [w for w in seen if "best weights were restored" in str(w.message)]
    assert record.filename == __file__


@pytest.mark.parametrize("cls", [MLPClassifier, MLPRegressor])
@pytest.mark.parametrize("name", ["coefs_", "intercepts_"])
def test_unfitted_weights_attribute_error_names_the_attribute(cls, name):
    with pytest.raises(AttributeError) as info:
        getattr(cls(), name)
    assert str(info.value) == f"{cls.__name__!r} object has no attribute {name!r}"
    assert not hasattr(cls(), name)


@pytest.mark.parametrize("classes", [None, [0, 1, 2]])
def test_partial_fit_without_y_says_y_is_required(classes):
    clf = MLPClassifier()
    with pytest.raises(ValueError, match="requires y to be passed"):
        clf.partial_fit(X_IRIS, classes=classes)
    assert not hasattr(clf, "coefs_")


@pytest.mark.parametrize("bad", [np.nan, "text", [[1, 2], [3]], 1 + 2j])
def test_partial_fit_asks_for_classes_before_reading_y(bad):
    """scikit-learn checks for ``classes`` before it looks at y's type."""
    y = np.full(len(X_IRIS), bad, dtype=object) if not isinstance(bad, list) else bad
    for est in (MLPClassifier(), SkClassifier()):
        with pytest.raises(ValueError, match="classes must be passed on the first"):
            est.partial_fit(X_IRIS[: len(y)], y)


@pytest.mark.parametrize("cls", [MLPClassifier, MLPRegressor])
def test_column_vector_y_warning_is_filtered_as_sklearns(cls):
    """scikit-learn's DataConversionWarning comes from a scikit-learn module:
    a ``module="sklearn"`` filter silences ours as well."""
    from sklearn.exceptions import DataConversionWarning

    y = Y_IRIS.reshape(-1, 1)
    for method in ("fit", "partial_fit"):
        est = cls(max_iter=2)
        kwargs = (
            {"classes": [0, 1, 2]} if cls is MLPClassifier and method != "fit" else {}
        )
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            warnings.filterwarnings(
                "ignore", category=DataConversionWarning, module="sklearn"
            )
            warnings.simplefilter("ignore", ConvergenceWarning)
            getattr(est, method)(X_IRIS, y, **kwargs)
        assert not [w for w in caught if w.category is DataConversionWarning]
        with pytest.warns(DataConversionWarning, match="A column-vector y was passed"):
            getattr(cls(max_iter=2), method)(X_IRIS, y, **kwargs)


@pytest.mark.parametrize("act", ["relu", "tanh"])
def test_out_activation_set_after_fit_is_used_as_scikit_learn_uses_it(act):
    rng = np.random.RandomState(0)
    X = rng.rand(40, 3)
    y = X.sum(1) - 1.0
    kw = dict(hidden_layer_sizes=(4,), max_iter=3, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours, theirs = MLPRegressor(**kw).fit(X, y), SkRegressor(**kw).fit(X, y)
    ours.out_activation_ = theirs.out_activation_ = act
    np.testing.assert_allclose(ours.predict(X), theirs.predict(X), rtol=1e-8)
    np.testing.assert_allclose(
        ours.predict(np.tile(X, (30_000, 1)))[:40], theirs.predict(X), rtol=1e-6
    )
    ours.out_activation_ = "softplus"
    with pytest.raises(ValueError, match="out_activation_ must be one of"):
        ours.predict(X)


def test_partial_fit_docstring_lists_parameters_in_signature_order():
    for cls in (MLPClassifier, MLPRegressor):
        for name in ("fit", "partial_fit"):
            method = getattr(cls, name)
            params = [p for p in inspect.signature(method).parameters if p != "self"]
            doc = method.__doc__
            listed = re.findall(r"^\s{8}(\w+) :", doc, flags=re.M)
            assert listed[: len(params)] == params, (cls.__name__, name, listed)


def test_a_sparse_column_y_is_scikit_learns_error():
    y = sp.csr_matrix(Y_IRIS.reshape(-1, 1))
    for est in (MLPClassifier(max_iter=2), SkClassifier(max_iter=2)):
        with pytest.raises(TypeError, match="Sparse data was passed for y"):
            est.fit(X_IRIS, y)


@pytest.mark.parametrize("act", ["tanh", "relu", "identity"])
def test_a_classifier_reports_log_loss_whatever_out_activation_is_set(act):
    """scikit-learn's loss follows the estimator (log-loss for a classifier),
    not the output activation a user set after fit."""
    kw = dict(hidden_layer_sizes=(6,), max_iter=3, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours, theirs = (
            MLPClassifier(**kw).fit(X_IRIS, Y_IRIS),
            SkClassifier(**kw).fit(X_IRIS, Y_IRIS),
        )
        ours.out_activation_ = theirs.out_activation_ = act
        with np.errstate(all="ignore"):
            ours.partial_fit(X_IRIS, Y_IRIS)
            theirs.partial_fit(X_IRIS, Y_IRIS)
    np.testing.assert_allclose(ours.loss_, theirs.loss_, rtol=1e-8)
    for a, b in zip(ours.coefs_, theirs.coefs_):
        np.testing.assert_allclose(a, b, rtol=1e-8, atol=1e-12)


def test_a_fit_that_starts_over_replaces_weights_of_other_shapes():
    """coefs_ set to other shapes (fewer layers), then a fit with
    warm_start=False: it starts over, as scikit-learn's does (its backup
    of the state took them for weights set while training)."""
    import warnings

    from sklearn.datasets import load_iris
    from sklearn.exceptions import ConvergenceWarning

    from tfmlp import MLPClassifier

    X, y = load_iris(return_X_y=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est = MLPClassifier((5,), max_iter=3, random_state=0).fit(X, y)
        est.coefs_, est.intercepts_ = est.coefs_[:1], est.intercepts_[:1]
        est.set_params(hidden_layer_sizes=(4,)).fit(X, y)
        ref = MLPClassifier((4,), max_iter=3, random_state=0).fit(X, y)
    for a, b in zip(est.coefs_ + est.intercepts_, ref.coefs_ + ref.intercepts_):
        np.testing.assert_array_equal(a, b)
