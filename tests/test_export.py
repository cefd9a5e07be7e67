"""tfmlp.export: SavedModel, .keras, ONNX and TFLite artifacts, each loaded in a
separate interpreter that does not import tfmlp and compared with the
estimator's predict_proba / predict."""

import json
import os
import subprocess
import sys
import textwrap
import warnings
from importlib.util import find_spec

import numpy as np
import pytest
from sklearn.datasets import make_multilabel_classification
from sklearn.exceptions import ConvergenceWarning, NotFittedError

import tfmlp
from tfmlp import MLPClassifier, MLPRegressor
from tfmlp._export import FORMATS as ALL_FORMATS

RNG = np.random.RandomState(0)
X = RNG.randn(50, 5)
Y_MULTILABEL = make_multilabel_classification(
    n_samples=50, n_features=5, n_classes=3, random_state=0
)[1]
TOL = {"savedmodel": 1e-5, "keras": 1e-5, "onnx": 1e-5, "tflite": 1e-4}
SUFFIX = {"savedmodel": "", "keras": ".keras", "onnx": ".onnx", "tflite": ".tflite"}

# the onnx extra is optional (found, not imported: export must do the importing)
HAVE_ONNX = all(find_spec(m) for m in ("tf2onnx", "onnx", "onnxruntime"))
FORMATS = [f for f in ALL_FORMATS if HAVE_ONNX or f != "onnx"]


def _fit(est, X_, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(X_, y)


def _models():
    small = dict(hidden_layer_sizes=(6,), max_iter=20, random_state=0)
    y_words = np.array(["a", "b", "c"])[np.digitize(X[:, 0], [-0.5, 0.5])]
    return {
        # name: (estimator, training X, y, export kwargs)
        "binary": (MLPClassifier(**small), X, (X[:, 0] > 0).astype(int), {}),
        "multiclass_dropout_bn_gelu": (
            MLPClassifier(
                activation="gelu", dropout=0.1, batch_normalization=True, **small
            ),
            X,
            y_words,
            {},
        ),
        "multilabel_elu": (
            MLPClassifier(activation="elu", **small),
            X,
            Y_MULTILABEL,
            {},
        ),
        "multioutput_selu": (
            MLPRegressor(activation="selu", **small),
            X,
            np.c_[X.sum(axis=1), X[:, 0] * X[:, 1]],
            {},
        ),
        "poisson_float32": (
            MLPRegressor(loss="poisson", activation="tanh", **small),
            X.astype(np.float32),
            np.exp(X[:, 0]).astype(np.float32),
            {},
        ),
        "float32_export_of_float64": (
            MLPClassifier(activation="logistic", **small),
            X,
            (X[:, 1] > 0).astype(int),
            {"dtype": "float32"},
        ),
    }


def _expected(est, X_):
    if hasattr(est, "predict_proba"):
        return est.predict_proba(X_)
    return est.predict(X_).reshape(len(X_), -1)


def _global_settings():
    import logging
    import os

    import keras
    import tensorflow as tf

    return (
        os.environ.get("TF_CPP_MIN_LOG_LEVEL"),
        keras.config.floatx(),
        keras.config.dtype_policy().name,
        tf.get_logger().level,
        tuple(logging.getLogger().handlers),
    )


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """Every model exported in every format, plus the expected outputs."""
    root = tmp_path_factory.mktemp("export")
    settings = _global_settings()
    jobs = []
    for name, (est, X_, y, kw) in _models().items():
        _fit(est, X_, y)
        np.save(root / f"{name}_X.npy", X_)
        np.save(root / f"{name}_expected.npy", _expected(est, X_))
        for fmt in FORMATS:
            path = root / f"{name}{SUFFIX[fmt]}"
            if fmt == "tflite":
                kw = {k: v for k, v in kw.items() if k != "dtype"}
            assert tfmlp.export(est, path, fmt, **kw) == str(path)
            jobs.append(
                {
                    "name": name,
                    "format": fmt,
                    "path": str(path),
                    "X": str(root / f"{name}_X.npy"),
                    "key": "probabilities"
                    if hasattr(est, "classes_")
                    else "predictions",
                    "dtype": kw.get("dtype", X_.dtype.name)
                    if fmt != "tflite"
                    else "float32",
                }
            )
    assert _global_settings() == settings  # export changes no process settings
    return root, jobs


RUNNER = textwrap.dedent(
    """
    import json, sys, warnings
    import numpy as np
    import tensorflow as tf
    import keras

    jobs = json.loads(sys.argv[1])
    results = {}
    for job in jobs:
        X = np.load(job["X"]).astype(job["dtype"])
        fmt, key = job["format"], job["key"]
        if fmt == "savedmodel":
            sig = tf.saved_model.load(job["path"]).signatures["serving_default"]
            names = sorted(sig.structured_input_signature[1])
            out = sig(features=tf.constant(X))
            assert names == ["features"] and sorted(out) == [key], (names, list(out))
            got = [out[key].numpy()]
        elif fmt == "keras":
            model = keras.saving.load_model(job["path"])
            assert model.output.name.startswith(key) or model.layers[-1].name == key
            got = [np.asarray(model(X)), model.predict(X, verbose=0)]
        elif fmt == "onnx":
            import onnxruntime as ort
            session = ort.InferenceSession(job["path"])
            assert [i.name for i in session.get_inputs()] == ["features"]
            assert [o.name for o in session.get_outputs()] == [key]
            got = session.run(None, {"features": X})
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # tf.lite.Interpreter deprecation
                interpreter = tf.lite.Interpreter(model_path=job["path"])
            runner = interpreter.get_signature_runner("serving_default")
            got = [runner(features=X)[key]]
        results[job["name"] + "/" + fmt] = [np.asarray(g, np.float64).tolist()
                                            for g in got]
    assert "tfmlp" not in sys.modules, "the artifact pulled in tfmlp"
    print(json.dumps(results))
    """
)


def test_artifacts_match_the_estimator(exported):
    root, jobs = exported
    result = subprocess.run(
        [sys.executable, "-c", RUNNER, json.dumps(jobs)],
        capture_output=True,
        timeout=300,
        cwd=root,
    )
    assert result.returncode == 0, result.stderr.decode()[-4000:]
    results = json.loads(result.stdout.decode().strip().splitlines()[-1])
    assert len(results) == len(jobs)
    for job in jobs:
        expected = np.load(root / f"{job['name']}_expected.npy")
        for got in results[job["name"] + "/" + job["format"]]:
            tol = TOL[job["format"]]
            np.testing.assert_allclose(
                np.asarray(got),
                expected,
                rtol=tol,
                atol=tol,
                err_msg=f"{job['name']} / {job['format']}",
            )


def test_float64_artifacts_are_exact(exported):
    """In float64 the SavedModel reproduces predict_proba to rounding."""
    import tensorflow as tf

    root, _ = exported
    est, X_, y, _ = _models()["binary"]
    _fit(est, X_, y)
    sig = tf.saved_model.load(str(root / "binary")).signatures["serving_default"]
    got = sig(features=tf.constant(X_))["probabilities"].numpy()
    np.testing.assert_allclose(got, est.predict_proba(X_), rtol=1e-12, atol=1e-15)


def test_export_leaves_the_estimator_alone(tmp_path):
    est = _fit(MLPClassifier((4,), max_iter=5, random_state=0), X, X[:, 0] > 0)
    model = est.model_
    before = est.predict_proba(X)
    weights = [w.copy() for w in est.coefs_ + est.intercepts_]
    tfmlp.export(est, tmp_path / "m.keras", "keras")
    tfmlp.export(est, tmp_path / "m.tflite", "tflite")
    assert est.model_ is model
    np.testing.assert_array_equal(est.predict_proba(X), before)
    for a, b in zip(weights, est.coefs_ + est.intercepts_):
        np.testing.assert_array_equal(a, b)
    est.partial_fit(X, X[:, 0] > 0)  # still trains


def test_bad_arguments(tmp_path):
    est = _fit(MLPRegressor(hidden_layer_sizes=(3,), max_iter=3), X, X[:, 0])
    with pytest.raises(ValueError, match="'savedmodel', 'keras', 'onnx', 'tflite'"):
        tfmlp.export(est, tmp_path / "m", "pmml")
    with pytest.raises(NotFittedError):
        tfmlp.export(MLPClassifier(), tmp_path / "m", "savedmodel")
    with pytest.raises(TypeError, match="MLPClassifier"):
        tfmlp.export(object(), tmp_path / "m", "savedmodel")
    with pytest.raises(ValueError, match=r"\.keras"):
        tfmlp.export(est, tmp_path / "m.h5", "keras")
    with pytest.raises(ValueError, match="float32"):
        tfmlp.export(est, tmp_path / "m.tflite", "tflite", dtype="float64")
    with pytest.raises(ValueError, match="dtype"):
        tfmlp.export(est, tmp_path / "m", "savedmodel", dtype="int32")
    assert list(tmp_path.iterdir()) == []


def test_missing_onnx_extra_names_the_install(tmp_path, monkeypatch):
    est = _fit(MLPRegressor(hidden_layer_sizes=(3,), max_iter=3), X, X[:, 0])
    monkeypatch.setitem(sys.modules, "tf2onnx", None)  # import fails
    with pytest.raises(ImportError, match=r'pip install "tfmlp\[onnx\]"'):
        tfmlp.export(est, tmp_path / "m.onnx", "onnx")
    assert not (tmp_path / "m.onnx").exists()


def _serve(path, rows):
    import tensorflow as tf

    loaded = tf.saved_model.load(str(path))
    out = loaded.signatures["serving_default"](features=tf.constant(rows))
    return next(iter(out.values())).numpy()


def test_savedmodel_is_replaced_whole_or_not_at_all(tmp_path, monkeypatch):
    """Re-exporting swaps the directory; a failed export keeps the old one."""
    import tfmlp._export as ex

    rows = X[:5]
    first = _fit(MLPRegressor(hidden_layer_sizes=(3,), max_iter=3), X, X[:, 0])
    second = _fit(
        MLPRegressor(hidden_layer_sizes=(4,), max_iter=3, random_state=1), X, X[:, 1]
    )
    dest = tmp_path / "model"
    tfmlp.export(first, dest, "savedmodel")
    np.testing.assert_allclose(_serve(dest, rows).ravel(), first.predict(rows), 1e-6)
    tfmlp.export(second, dest, "savedmodel")  # over an existing export
    np.testing.assert_allclose(_serve(dest, rows).ravel(), second.predict(rows), 1e-6)

    real = ex._export_archive

    def fails_midway(model, path, dtype):
        real(model, path, dtype)  # files written, then the export fails
        raise OSError("disk full")

    monkeypatch.setattr(ex, "_export_archive", fails_midway)
    with pytest.raises(OSError, match="disk full"):
        tfmlp.export(first, dest, "savedmodel")
    np.testing.assert_allclose(_serve(dest, rows).ravel(), second.predict(rows), 1e-6)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]  # no leftovers
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="not a directory"):
        tfmlp.export(first, tmp_path / "file", "savedmodel")


def test_savedmodel_write_errors_name_the_destination(tmp_path, monkeypatch):
    """TensorFlow's file errors (a full disk) name the hidden temporary
    directory: an OSError naming the destination instead, as the other
    formats give."""
    import tensorflow as tf

    import tfmlp._export as ex

    est = _fit(MLPRegressor(hidden_layer_sizes=(3,), max_iter=3), X, X[:, 0])
    dest = tmp_path / "model"
    tfmlp.export(est, dest, "savedmodel")
    before = sorted(p.name for p in dest.rglob("*"))

    def disk_full(model, path, dtype):
        raise tf.errors.ResourceExhaustedError(
            None, None, f"{path}/variables/variables.data: No space left on device"
        )

    monkeypatch.setattr(ex, "_export_archive", disk_full)
    with pytest.raises(OSError, match="No space left on device") as info:
        tfmlp.export(est, dest, "savedmodel")
    assert repr(str(dest)) in str(info.value)
    assert sorted(p.name for p in dest.rglob("*")) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_write_errors_leave_out_tensorflows_graph_node_text(tmp_path, monkeypatch):
    """A real full disk failed inside the SaveV2 op: its message began with
    ``{{function_node __wrapped__SaveV2...}}`` and ended in ``[Op:SaveV2]``."""
    import tensorflow as tf

    import tfmlp._export as ex

    est = _fit(MLPRegressor(hidden_layer_sizes=(3,), max_iter=3), X, X[:, 0])
    node = (
        "{{function_node __wrapped__SaveV2_dtypes_4_device_/job:localhost/replica:0}}"
    )

    def disk_full(model, path, dtype):
        raise tf.errors.ResourceExhaustedError(
            None, None, f"{node} {path}/v.data; File too large [Op:SaveV2] name: "
        )

    monkeypatch.setattr(ex, "_export_archive", disk_full)
    for fmt, name in [("savedmodel", "sm"), ("tflite", "m.tflite")]:
        with pytest.raises(OSError, match="File too large") as info:
            tfmlp.export(est, tmp_path / name, fmt)
        text = str(info.value)
        assert "function_node" not in text and "[Op:" not in text, text
        assert text.endswith("; File too large"), text


def test_savedmodel_into_a_directory_taking_no_files_names_the_destination(
    tmp_path, monkeypatch
):
    import os

    est = _fit(MLPRegressor(hidden_layer_sizes=(3,), max_iter=3), X, X[:, 0])
    dest = tmp_path / "sm"

    def refused(path, mode=0o777):
        raise PermissionError(1, "Operation not permitted", path)

    monkeypatch.setattr(os, "mkdir", refused)
    with pytest.raises(PermissionError) as info:
        tfmlp.export(est, dest, "savedmodel")
    assert repr(str(dest)) in str(info.value) and ".tmp" not in str(info.value)


def test_savedmodel_export_never_replaces_other_directories(tmp_path, monkeypatch):
    # an export replaces a directory whole, so only an earlier SavedModel (or
    # an empty directory) may be at the path: other files would be lost
    est = _fit(MLPRegressor(hidden_layer_sizes=(3,), max_iter=3), X, X[:, 0])
    project = tmp_path / "project"
    (project / "data").mkdir(parents=True)
    (project / "data" / "train.csv").write_text("precious")
    for path in [project, f"{project}/"]:
        with pytest.raises(ValueError, match="is not an exported SavedModel"):
            tfmlp.export(est, path, "savedmodel")
    assert (project / "data" / "train.csv").read_text() == "precious"
    exported = tmp_path / "exported"
    tfmlp.export(est, exported, "savedmodel")
    (exported / "notes.txt").write_text("mine")  # a user's file beside it
    with pytest.raises(ValueError, match="is not an exported SavedModel"):
        tfmlp.export(est, exported, "savedmodel")
    assert (exported / "notes.txt").exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    tfmlp.export(est, empty, "savedmodel")
    assert (empty / "saved_model.pb").exists()
    monkeypatch.chdir(empty)  # an earlier SavedModel, but the working directory
    with pytest.raises(ValueError, match="current working directory"):
        tfmlp.export(est, ".", "savedmodel")


def test_tflite_write_errors_name_the_destination(tmp_path, monkeypatch):
    """File errors writing the intermediate SavedModel of a TFLite export
    (in the system's temporary folder) are OSErrors naming the destination;
    nothing is left behind."""
    import tensorflow as tf

    import tfmlp._export as ex

    est = _fit(MLPRegressor(hidden_layer_sizes=(3,), max_iter=3), X, X[:, 0])
    dest = tmp_path / "m.tflite"
    dest.write_bytes(b"earlier")
    written = []

    def disk_full(model, path, dtype):
        written.append(path)
        raise tf.errors.OutOfRangeError(None, None, f"{path}/variables: File too large")

    monkeypatch.setattr(ex, "_export_archive", disk_full)
    with pytest.raises(OSError, match="File too large") as info:
        tfmlp.export(est, dest, "tflite")
    assert repr(str(dest)) in str(info.value)
    assert not os.path.exists(written[0])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.tflite"]
    assert dest.read_bytes() == b"earlier"


def test_tflite_export_to_a_path_with_glob_characters(tmp_path):
    est = _fit(MLPRegressor(hidden_layer_sizes=(3,), max_iter=3), X, X[:, 0])
    folder = tmp_path / "run[1]"
    folder.mkdir()
    tfmlp.export(est, folder / "m[1].tflite", "tflite")
    assert (folder / "m[1].tflite").stat().st_size > 0
    assert os.listdir(folder) == ["m[1].tflite"]


@pytest.mark.parametrize("fmt", FORMATS)
def test_empty_and_bytes_paths(tmp_path, monkeypatch, fmt):
    if fmt == "onnx" and not HAVE_ONNX:
        pytest.skip("needs tfmlp[onnx]")
    est = _fit(MLPRegressor(hidden_layer_sizes=(3,), max_iter=3), X, X[:, 0])
    with pytest.raises(ValueError, match="empty path"):
        tfmlp.export(est, "", fmt)
    with pytest.raises(TypeError, match="str or os.PathLike"):
        tfmlp.export(est, 3, fmt)
    monkeypatch.chdir(tmp_path)
    name = f"m{SUFFIX[fmt]}"
    assert tfmlp.export(est, os.fsencode(name), fmt) == name  # as open() takes it
    assert os.path.exists(name) and len(os.listdir(tmp_path)) == 1


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_missing_directory_is_named(tmp_path, fmt):
    est = _fit(MLPRegressor(hidden_layer_sizes=(3,), max_iter=3), X, X[:, 0])
    path = tmp_path / "nope" / f"m{SUFFIX[fmt]}"
    with pytest.raises(
        FileNotFoundError, match=f"its directory '{tmp_path / 'nope'}' does not exist"
    ):
        tfmlp.export(est, path, fmt)
    assert list(tmp_path.iterdir()) == []


def test_savedmodel_export_through_a_symlink_replaces_its_target(tmp_path):
    import os

    est = _fit(MLPRegressor(hidden_layer_sizes=(3,), max_iter=3), X, X[:, 0])
    target = tmp_path / "target"
    target.mkdir()
    link = tmp_path / "link"
    os.symlink(target, link)
    for _ in range(2):  # into the empty target, then over that export
        tfmlp.export(est, link, "savedmodel")
    assert link.is_symlink() and (target / "saved_model.pb").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link", "target"]


def _lambda_stack(x):
    import keras

    x = keras.layers.Dense(5, activation="relu")(x)
    return keras.layers.Lambda(lambda t: t * 2.0)(x)


def _tflite_predict(path, rows):
    import tensorflow as tf

    interpreter = tf.lite.Interpreter(model_path=str(path))
    index = interpreter.get_input_details()[0]["index"]
    interpreter.resize_tensor_input(index, rows.shape)
    interpreter.allocate_tensors()
    interpreter.set_tensor(index, rows.astype(np.float32))
    interpreter.invoke()
    return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])


@pytest.mark.parametrize("fmt", FORMATS)
def test_stack_with_a_lambda_layer_exports(tmp_path, fmt):
    """A Lambda of a Python function is rebuilt from the live model (Keras'
    safe mode guards files, not the process's own network)."""
    import keras

    est = _fit(
        MLPClassifier(hidden_stack=_lambda_stack, max_iter=5, random_state=0),
        X,
        X[:, 0] > 0,
    )
    path = tmp_path / f"m{SUFFIX[fmt]}"
    tfmlp.export(est, path, format=fmt, dtype="float32")
    if fmt == "savedmodel":
        got = _serve(path, X.astype(np.float32))
    elif fmt == "keras":
        model = keras.saving.load_model(path, safe_mode=False)
        got = np.asarray(model(X.astype(np.float32)))
    elif fmt == "tflite":
        got = _tflite_predict(path, X)
    else:
        import onnxruntime

        session = onnxruntime.InferenceSession(str(path))
        got = session.run(None, {session.get_inputs()[0].name: X.astype(np.float32)})[0]
    np.testing.assert_allclose(got, est.predict_proba(X), rtol=1e-4, atol=1e-4)


class _Box:  # an argument Keras' automatic config cannot serialise
    def __init__(self, value):
        self.value = value


@pytest.mark.parametrize("factor", [0.5, _Box(0.5)], ids=["number", "object"])
def test_stack_layer_without_config_exports_where_it_can(tmp_path, factor):
    """A Layer subclass Keras cannot rebuild (no get_config for its
    arguments; an object argument fails already in serialisation):
    SavedModel traces the fitted network; .keras, which Keras loads by
    rebuilding, is a clear error."""
    import keras

    class Scaled(keras.layers.Layer):
        def __init__(self, factor):
            super().__init__()
            self.factor = factor
            self.dense = keras.layers.Dense(4, activation="tanh")

        def call(self, x):
            return self.dense(x) * getattr(self.factor, "value", self.factor)

    est = _fit(
        MLPRegressor(
            hidden_stack=lambda x: Scaled(factor)(x), max_iter=5, random_state=0
        ),
        X,
        X[:, 0],
    )
    for dtype in ("float32", "float64"):
        tfmlp.export(est, tmp_path / dtype, format="savedmodel", dtype=dtype)
        got = _serve(tmp_path / dtype, X.astype(dtype))
        np.testing.assert_allclose(got.ravel(), est.predict(X), rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="get_config"):
        tfmlp.export(est, tmp_path / "m.keras", format="keras")
    assert not (tmp_path / "m.keras").exists()


@pytest.mark.slow
def test_savedmodel_export_leaves_the_root_logger_alone(tmp_path):
    """In a process whose root logger has no handler (pytest's has one), a
    SavedModel / TFLite export adds none: TensorFlow's absl logging would
    call logging.basicConfig(), after which the user's own basicConfig does
    nothing."""
    code = textwrap.dedent(
        f"""
        import logging, warnings
        warnings.simplefilter("ignore")
        import numpy as np
        import tfmlp
        X = np.random.RandomState(0).randn(30, 3)
        est = tfmlp.MLPRegressor(hidden_layer_sizes=(3,), max_iter=2).fit(X, X[:, 0])
        tfmlp.export(est, {str(tmp_path / "sm")!r}, format="savedmodel")
        tfmlp.export(est, {str(tmp_path / "m.tflite")!r}, format="tflite")
        print("handlers", len(logging.getLogger().handlers))
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "handlers 0" in out.stdout


def test_savedmodel_export_to_a_long_directory_name(tmp_path):
    est = _fit(MLPClassifier((4,), max_iter=3, random_state=0), X, X[:, 0] > 0)
    path = tmp_path / ("d" * 250)  # the system's limit on a name is 255 bytes
    tfmlp.export(est, path, format="savedmodel")
    np.testing.assert_allclose(_serve(path, X), est.predict_proba(X), rtol=1e-12)


@pytest.mark.skipif(not HAVE_ONNX, reason="needs tfmlp[onnx]")
def test_a_stack_with_an_activity_regularizer_exports_to_onnx(tmp_path):
    import keras
    import onnxruntime

    def stack(x):
        reg = keras.regularizers.L1(1e-4)
        return keras.layers.Dense(6, activation="relu", activity_regularizer=reg)(x)

    est = _fit(
        MLPClassifier(hidden_stack=stack, max_iter=5, random_state=0), X, X[:, 0] > 0
    )
    tfmlp.export(est, tmp_path / "m.onnx", format="onnx")
    session = onnxruntime.InferenceSession(str(tmp_path / "m.onnx"))
    got = session.run(None, {session.get_inputs()[0].name: X})[0]
    np.testing.assert_allclose(got, est.predict_proba(X), rtol=1e-10, atol=1e-12)
    layer = est.model_.get_layer(index=1)
    assert layer.activity_regularizer is not None  # put back after the export


def _sine_stack(x):
    import keras

    x = keras.layers.Dense(6)(x)
    x = keras.layers.Lambda(lambda t: keras.ops.sin(t))(x)  # reads `keras`
    return keras.layers.Dense(4, activation="relu")(x)


def test_a_lambda_reading_module_names_exports_in_process(tmp_path):
    """Keras reloads a lambda's bytecode without its module's names: the
    in-process rebuild keeps the live function; a .keras file cannot hold
    it and is refused (its loaded model would raise NameError)."""
    import tensorflow as tf

    est = _fit(
        MLPRegressor(hidden_stack=_sine_stack, max_iter=3, random_state=0), X, X[:, 0]
    )
    tfmlp.export(est, tmp_path / "sm", format="savedmodel")
    np.testing.assert_allclose(
        _serve(tmp_path / "sm", X).ravel(), est.predict(X), rtol=1e-10
    )
    tfmlp.export(est, tmp_path / "m.tflite", format="tflite")  # rebuilt in float32
    interpreter = tf.lite.Interpreter(model_path=str(tmp_path / "m.tflite"))
    assert interpreter.get_input_details()[0]["dtype"] == np.float32
    with pytest.raises(ValueError, match="module-level names \\(keras\\)"):
        tfmlp.export(est, tmp_path / "m.keras", format="keras")
    assert not (tmp_path / "m.keras").exists()


def test_converter_errors_are_value_errors(tmp_path):
    import keras

    def recurrent(x):
        x = keras.layers.Reshape((5, 1))(x)
        return keras.layers.LSTM(3)(x)

    est = _fit(
        MLPRegressor(hidden_stack=recurrent, max_iter=2, random_state=0), X, X[:, 0]
    )
    with pytest.raises(ValueError, match=r"^TFLite cannot convert this network \('tf"):
        tfmlp.export(est, tmp_path / "m.tflite", format="tflite")
    assert not (tmp_path / "m.tflite").exists()
    if find_spec("onnx") is None:
        return

    def binned(x):
        x = keras.layers.Discretization(bin_boundaries=[0.0])(x)
        return keras.layers.Dense(3)(x)

    est = _fit(
        MLPRegressor(hidden_stack=binned, max_iter=2, random_state=0), X, X[:, 0]
    )
    with pytest.raises(ValueError, match="not a valid ONNX model"):
        tfmlp.export(est, tmp_path / "m.onnx", format="onnx")
    assert not (tmp_path / "m.onnx").exists()


def _named_stack(x):
    import keras

    def half(t):
        return t * 0.5

    x = keras.layers.Dense(6, activation="tanh")(x)
    # Lambdas of one name in two nested models; a named function (stored by
    # name, not as bytecode); a square root, NaN outside the data's range
    one = keras.Sequential([keras.layers.Lambda(lambda t: t * 0.5, name="f")])
    two = keras.Sequential([keras.layers.Lambda(lambda t: -t, name="f")])
    x = keras.layers.Lambda(keras.activations.relu)(two(one(x)) + half(x) + 1.0)
    return keras.layers.Lambda(lambda t: t**0.5)(x)


def test_lambda_stacks_export_what_the_estimator_predicts(tmp_path):
    import keras

    est = _fit(
        MLPRegressor(hidden_stack=_named_stack, max_iter=3, random_state=0), X, X[:, 0]
    )
    tfmlp.export(est, tmp_path / "sm", format="savedmodel")
    np.testing.assert_allclose(
        _serve(tmp_path / "sm", X).ravel(), est.predict(X), rtol=1e-10
    )
    tfmlp.export(est, tmp_path / "m.keras", format="keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras", safe_mode=False)
    np.testing.assert_allclose(
        np.asarray(loaded(X)).ravel(), est.predict(X), rtol=1e-10
    )


def _layer_named(name):
    def stack(x):
        import keras

        return keras.layers.Dense(4, activation="tanh", name=name)(x)

    return stack


def _artifact_outputs(path, fmt, rows):
    """``(output name or None, outputs)`` of an exported file for ``rows``."""
    import keras

    if fmt == "savedmodel":
        import tensorflow as tf

        out = tf.saved_model.load(str(path)).signatures["serving_default"](
            features=tf.constant(rows)
        )
        (name,) = out
        return name, out[name].numpy()
    if fmt == "keras":
        loaded = keras.saving.load_model(path, compile=False, safe_mode=False)
        return loaded.layers[-1].name, np.asarray(loaded(rows))
    if fmt == "onnx":
        import onnxruntime

        session = onnxruntime.InferenceSession(str(path))
        name = session.get_outputs()[0].name
        return name, session.run(None, {"features": rows})[0]
    return None, _tflite_predict(path, rows)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize(
    "kind, layer",
    [
        ("regressor", "predictions"),
        ("classifier", "probabilities"),
        ("classifier", "both_classes"),
        ("classifier", "negative_class"),
    ],
)
def test_stack_layers_named_like_the_exports_own_layers_export(
    tmp_path, fmt, kind, layer
):
    # a binary classifier's model_ adds 'negative_class' and 'both_classes'
    # layers, the export an output layer named after what it returns
    cls, y = (
        (MLPRegressor, X[:, 0]) if kind == "regressor" else (MLPClassifier, X[:, 0] > 0)
    )
    est = _fit(cls(hidden_stack=_layer_named(layer), max_iter=3, random_state=0), X, y)
    expected = _expected(est, X)
    names = [each.name for each in est.model_.layers]  # (the binary view's)
    assert layer in names and len(set(names)) == len(names)
    path = tmp_path / f"m{SUFFIX[fmt]}"
    tfmlp.export(est, path, format=fmt)
    name, got = _artifact_outputs(path, fmt, X)
    if name is not None:
        assert name == ("predictions" if kind == "regressor" else "probabilities")
    np.testing.assert_allclose(
        got.reshape(expected.shape), expected, rtol=TOL[fmt], atol=TOL[fmt]
    )


@pytest.mark.skipif(not HAVE_ONNX, reason="needs the onnx extra")
def test_onnx_export_of_a_network_defined_on_positive_inputs_only(tmp_path):
    # a log of the features: NaN on the negative rows the export is checked
    # with, as in the ONNX file (the check refused it)
    import keras
    import onnxruntime

    def log_stack(x):
        x = keras.layers.Lambda(keras.ops.log)(x)
        return keras.layers.Dense(5, activation="tanh")(x)

    positive = np.abs(X) + 0.1
    est = _fit(
        MLPClassifier(hidden_stack=log_stack, max_iter=5, random_state=0),
        positive,
        X[:, 0] > 0,
    )
    tfmlp.export(est, tmp_path / "m.onnx", format="onnx")
    session = onnxruntime.InferenceSession(str(tmp_path / "m.onnx"))
    got = session.run(None, {"features": positive})[0]
    # (tf2onnx computes the log in float32: export's own float64 tolerance)
    np.testing.assert_allclose(got, est.predict_proba(positive), rtol=1e-6, atol=1e-6)


@pytest.mark.skipif(not HAVE_ONNX, reason="needs the onnx extra")
def test_an_export_that_cannot_be_checked_says_so(tmp_path):
    # a network defined only far from the random check rows: nothing to
    # compare, so the file is written with a warning (not silently)
    import keras

    def stack(x):
        x = keras.layers.Lambda(lambda t: keras.ops.log(t - 100.0))(x)
        return keras.layers.Dense(3, activation="tanh")(x)

    far = X + 200.0
    est = _fit(
        MLPClassifier(hidden_stack=stack, max_iter=2, random_state=0), far, X[:, 0] > 0
    )
    with pytest.warns(UserWarning, match="written without a check"):
        tfmlp.export(est, tmp_path / "m.onnx", format="onnx")
    assert (tmp_path / "m.onnx").exists()


def test_a_layer_config_leaving_out_an_argument_is_not_exported_wrong(tmp_path):
    # Keras rebuilds it with the argument's default: the rebuilt network is
    # compared with the fitted one (the files were checked against the
    # rebuilt copy only, and predicted otherwise than the estimator)
    import keras

    class Shifted(keras.layers.Layer):
        def __init__(self, offset=0.0, **kwargs):
            super().__init__(**kwargs)
            self.offset = offset

        def call(self, x):
            return x + self.offset

        def get_config(self):  # Keras' own would record ``offset``
            config = super().get_config()
            config.pop("offset", None)
            return config

    def stack(x):
        return keras.layers.Dense(4, activation="tanh")(Shifted(3.0)(x))

    est = _fit(MLPRegressor(hidden_stack=stack, max_iter=5, random_state=0), X, X[:, 0])
    tfmlp.export(est, tmp_path / "sm", format="savedmodel")  # traced instead
    np.testing.assert_allclose(_serve(tmp_path / "sm", X).ravel(), est.predict(X))
    with pytest.raises(ValueError, match="does not reproduce its outputs"):
        tfmlp.export(est, tmp_path / "m.keras", format="keras")
    assert not (tmp_path / "m.keras").exists()
