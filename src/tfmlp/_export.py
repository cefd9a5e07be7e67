"""Export a fitted estimator for serving: SavedModel, .keras, ONNX, TFLite.

Every artifact maps a 2-D float matrix of features (input name
``features``) to one 2-D output: ``probabilities`` for a classifier (what
``predict_proba`` returns, two columns for a binary problem) or
``predictions`` for a regressor (``(n_samples, n_outputs)``; ``predict``
returns the single-output case raveled). None of them needs tfmlp to run.

The artifacts compute in the network's dtype (float64 for float64 training
data) unless ``dtype="float32"`` is asked for; TFLite always computes in
float32. The ONNX converter (tf2onnx) is an optional extra:
``pip install "tfmlp[onnx]"``.
"""

from __future__ import annotations

import inspect
import json
import logging
import os
import secrets
import shutil
import tempfile
from contextlib import contextmanager

import numpy as np
from sklearn.base import is_classifier
from sklearn.utils.validation import check_is_fitted

from tfmlp import _mirrored as mirrored
from tfmlp._compat import keeps_keras_policy
from tfmlp._estimators import MLPClassifier, MLPRegressor
from tfmlp._files import (
    atomic_write,
    check_parent,
    destination,
    fsync_directory,
    naming,
    replacing,
    temp_stem,
)
from tfmlp._streaming import tf_error_text

__all__ = ["FORMATS", "export"]

FORMATS = ("savedmodel", "keras", "onnx", "tflite")
ONNX_OPSET = 17
_ONNX_HINT = 'ONNX export needs the onnx extra: pip install "tfmlp[onnx]"'


@keeps_keras_policy
def export(
    est: MLPClassifier | MLPRegressor,
    path: str | bytes | os.PathLike,
    format: str,
    *,
    dtype: str | type | np.dtype | None = None,
) -> str:
    """Write a fitted estimator as a serving artifact that runs without tfmlp.

    Parameters
    ----------
    est : tfmlp.MLPClassifier or tfmlp.MLPRegressor
        A fitted estimator.
    path : str, bytes or os.PathLike
        Destination: a directory for ``"savedmodel"``, a file otherwise (a
        ``"keras"`` path must end in ``.keras``).
    format : {"savedmodel", "keras", "onnx", "tflite"}
        ``"savedmodel"``: a TensorFlow SavedModel whose ``serving_default``
        signature takes ``features`` and returns ``{"probabilities": ...}``
        or ``{"predictions": ...}`` (TF Serving, ``tf.saved_model.load``).
        ``"keras"``: a ``.keras`` file for ``keras.saving.load_model``
        (only built-in Keras layers; its output layer is named like the
        output above). ``"onnx"``: an ONNX model (opset 17) with input
        ``features`` and output ``probabilities`` / ``predictions``, checked
        with onnxruntime when that is installed; needs ``tfmlp[onnx]``.
        ``"tflite"``: a TensorFlow Lite flatbuffer with the same
        ``serving_default`` signature, in float32.
    dtype : {"float32", "float64"} or None, default=None
        The dtype of the features the artifact takes and of its arithmetic.
        None uses the network's (float64 after float64 training: outputs
        equal the estimator's to rounding); TFLite supports only float32.

    Returns
    -------
    str
        The path written.

    Raises
    ------
    TypeError
        If ``est`` is not a tfmlp estimator, or ``path`` is not a path.
    ValueError
        For an empty ``path``, an unknown ``format`` or unsupported
        ``dtype``, a ``"keras"`` path not ending in ``.keras``, a SavedModel
        directory that exists and
        is not an exported SavedModel (or is the working directory), or a
        network the format cannot hold (e.g. ``"keras"`` with a stack layer
        Keras cannot rebuild).
    sklearn.exceptions.NotFittedError
        If the estimator is not fitted.
    ImportError
        For ``"onnx"`` without the onnx extra installed.
    OSError
        If the file cannot be written (``FileNotFoundError`` when its
        directory does not exist, ``NotADirectoryError`` when that is a
        file, checked before any work); the destination then holds what it
        held.
    """
    if format not in FORMATS:
        raise ValueError(
            f"Unknown export format {format!r}; valid formats are "
            f"{', '.join(repr(f) for f in FORMATS)}."
        )
    if not isinstance(est, (MLPClassifier, MLPRegressor)):
        raise TypeError(
            "tfmlp.export expects a fitted tfmlp.MLPClassifier or "
            f"tfmlp.MLPRegressor, got {type(est).__qualname__}."
        )
    check_is_fitted(est)
    path = destination(path)
    check_parent(path)  # before any work: a missing folder
    if format == "keras" and not path.endswith(".keras"):
        raise ValueError(f"A 'keras' export path must end in '.keras', got {path!r}.")
    if format == "onnx":
        _import_onnx()  # fail before doing any work
    dtype = _resolve_dtype(est, dtype, format)
    model = _serving_model(est, dtype, format)
    writer = {
        "savedmodel": _write_savedmodel,
        "keras": _write_keras,
        "onnx": _write_onnx,
        "tflite": _write_tflite,
    }[format]
    writer(model, path, dtype)
    return path


# ------------------------------------------------------------ serving model
def _resolve_dtype(est, dtype, format: str) -> str:
    if dtype is None:
        net = str(est.model_.inputs[0].dtype)
        return "float32" if format == "tflite" else net
    try:
        name = np.dtype(dtype).name
    except TypeError:
        name = str(dtype)
    if name not in ("float32", "float64"):
        raise ValueError(f"dtype must be 'float32', 'float64' or None, got {dtype!r}.")
    if format == "tflite" and name != "float32":
        raise ValueError("TFLite computes in float32 only; use dtype='float32'.")
    return name


def _output_name(model_or_est) -> str:
    return "probabilities" if is_classifier(model_or_est) else "predictions"


def _serving_model(est, dtype: str, format: str):
    """A standalone functional Keras model: features -> predict_proba/predict.

    A copy of ``model_`` (same weights, in ``dtype``; a binary classifier's
    already has ``predict_proba``'s ``1 - p`` column) that shares nothing with
    the estimator; the output is an ``Identity`` layer named
    ``probabilities`` / ``predictions``. A hidden stack Keras cannot rebuild
    from its config (a ``Layer`` subclass without a ``get_config`` for its
    arguments) is traced instead (:func:`_traced_model`), except for the
    formats that need the rebuild: '.keras' (Keras loads it by rebuilding)
    and TFLite of a network in another dtype than float32 (a ValueError).
    """
    import keras

    model = est.model_
    try:
        base = _copy_model(model, dtype)
    except _NotRebuildable as exc:
        source = str(model.inputs[0].dtype)
        if format == "keras" or (format == "tflite" and source != dtype):
            why = (
                "a .keras file is loaded by rebuilding it from that config"
                if format == "keras"
                else f"TFLite needs the {source} network rebuilt in {dtype}"
            )
            raise ValueError(
                f"{exc} Cannot export format={format!r}: {why}. Give the "
                "hidden stack's Layer subclasses a get_config() that returns "
                "their constructor arguments, or export format='savedmodel' "
                "or 'onnx'."
            ) from exc
        return _traced_model(est, model, dtype)
    name = _output_name(est)
    if name in {layer.name for layer in base.layers}:  # a hidden stack's layer:
        return _traced_model(est, base, dtype)  # nested, the output keeps its name
    out = keras.layers.Identity(dtype=dtype, name=name)(base.outputs[0])
    return keras.Model(base.inputs[0], out, name="tfmlp_serving")


def _traced_model(est, model, dtype: str):
    """``model_`` itself behind a ``dtype`` input and output (computing in
    its own dtype): for formats that trace the network (SavedModel, ONNX,
    TFLite), which then hold the weights' values at export time."""
    import keras

    features = keras.Input(
        shape=model.inputs[0].shape[1:], dtype=dtype, name="features"
    )
    out = model(_cast(features, str(model.inputs[0].dtype)))
    out = keras.layers.Identity(dtype=dtype, name=_output_name(est))(_cast(out, dtype))
    return keras.Model(features, out, name="tfmlp_serving")


def _cast(x, dtype: str):
    import keras

    if str(x.dtype) == dtype:
        return x
    return keras.ops.cast(x, dtype)


class _NotRebuildable(ValueError):
    """``keras.Model.from_config`` failed on the fitted network's config."""


def _copy_model(model, dtype: str):
    """Rebuild ``model`` from its config in ``dtype`` and copy its weights.

    The config comes from the live model in this process, not from a file:
    a hidden stack's ``Lambda`` functions and ``Layer`` subclasses (found on
    the model itself) are rebuilt as they are.
    """
    import keras

    source = str(model.inputs[0].dtype)
    classes = _layer_classes(model)
    try:  # a layer without a usable get_config fails in serialize
        classes[_LIVE_LAMBDA] = _live_lambda(model, source, dtype)
        config = _retype(keras.saving.serialize_keras_object(model), source, dtype)
        _mark_lambdas(config)
        copy = keras.saving.deserialize_keras_object(
            config, custom_objects=classes, safe_mode=False
        )
        # read through mirrored.read: get_weights fails in another
        # tf.distribute strategy's scope than the one the weights were made in
        values = [mirrored.read(getattr(w, "value", w)) for w in model.weights]
        copy.set_weights([np.asarray(w).astype(dtype) for w in values])
    except Exception as exc:
        raise _NotRebuildable(
            "The fitted network cannot be rebuilt from its Keras config "
            f"({type(exc).__name__}: {exc})."
        ) from exc
    _check_rebuilt(model, copy, source, dtype)
    return copy


def _check_rebuilt(model, copy, source: str, dtype: str) -> None:
    """Refuse (``_NotRebuildable``) a copy whose outputs on the probe rows
    differ from the fitted network's: a layer whose ``get_config`` leaves
    out a constructor argument is rebuilt with its default."""
    x, expected = _probe(model, source)
    got = np.asarray(copy(x.astype(dtype), training=False))
    tol = 1e-6 if source == dtype == "float64" else 1e-4
    if got.shape == expected.shape and np.allclose(
        got, expected, rtol=tol, atol=tol, equal_nan=True
    ):
        return
    raise _NotRebuildable(
        "The fitted network rebuilt from its Keras config does not reproduce "
        f"its outputs (largest difference {_largest_difference(got, expected)}): "
        "a hidden stack layer's get_config() may leave out a constructor "
        "argument."
    )


_LIVE_LAMBDA = "tfmlp_export>LiveLambda"


def _mark_lambdas(obj) -> None:
    """Point every ``Lambda`` in a serialised model at ``_live_lambda``
    (Keras consults ``custom_objects`` by a config's ``registered_name``)."""
    if isinstance(obj, dict):
        if obj.get("class_name") == "Lambda" and str(obj.get("module", "")).startswith(
            "keras"
        ):
            obj["registered_name"] = _LIVE_LAMBDA
        for value in obj.values():
            _mark_lambdas(value)
    elif isinstance(obj, list):
        for value in obj:
            _mark_lambdas(value)


def _live_lambda(model, source: str, dtype: str):
    """A stand-in for ``keras.layers.Lambda`` while ``model`` is rebuilt in
    this process: each Lambda gets the original's function objects (Keras
    stores a lambda as bytecode and reloads it without its module's names,
    so ``lambda t: keras.ops.sin(t)`` raised NameError). A config is matched
    to its original by name and serialised function (names repeat across
    nested models)."""
    import keras

    def key(name, config):
        text = json.dumps(_retype(config, source, dtype), sort_keys=True, default=repr)
        return name, text

    live = {}
    for layer in _layers(model):
        if isinstance(layer, keras.layers.Lambda):
            config = keras.saving.serialize_keras_object(layer)["config"]
            live.setdefault(key(layer.name, config.get("function")), layer)

    class LiveLambda(keras.layers.Lambda):
        @classmethod
        def from_config(cls, config, custom_objects=None, safe_mode=None):
            original = live.get(key(config.get("name"), config.get("function")))
            if original is None:
                return keras.layers.Lambda.from_config(config, custom_objects, False)
            config = dict(config, function=original.function)
            config["output_shape"] = original._output_shape
            config["mask"] = original.mask
            config["arguments"] = original.arguments
            return keras.layers.Lambda(**config)

    return LiveLambda


def _module_names(fn) -> list[str]:
    """The module-level names a Python function reads (nested functions
    included) and the modules its closure holds: a ``.keras`` file loses
    them."""
    import types

    code = getattr(fn, "__code__", None)
    if code is None or getattr(fn, "__name__", None) != "<lambda>":
        return []  # Keras stores a named function by name, not as bytecode
    found = [
        name
        for name, cell in zip(code.co_freevars, fn.__closure__ or ())
        if isinstance(_cell_value(cell), types.ModuleType)
    ]
    stack = [code]
    while stack:
        current = stack.pop()
        found += [n for n in current.co_names if n in fn.__globals__]
        stack += [c for c in current.co_consts if hasattr(c, "co_names")]
    return sorted(set(found))


def _cell_value(cell):
    try:
        return cell.cell_contents
    except ValueError:  # an empty cell
        return None


def _check_lambdas_portable(model) -> None:
    """Refuse a ``.keras`` export whose Lambda functions read module-level
    names: Keras writes a lambda's bytecode without them, and the loaded
    model raises NameError when called."""
    import keras

    for layer in _layers(model):
        if not isinstance(layer, keras.layers.Lambda):
            continue
        names = _module_names(layer.function)
        if names:
            raise ValueError(
                f"Cannot export format='keras': the Lambda layer {layer.name!r} "
                f"uses module-level names ({', '.join(names)}), which a .keras "
                "file does not hold (Keras stores a lambda's bytecode only; the "
                "loaded model would raise NameError). Export format='savedmodel', "
                "'onnx' or 'tflite', or write the computation as a Layer subclass "
                "with a get_config()."
            )


def _layer_classes(model) -> dict:
    """The classes of the network's layers by name, for Keras'
    ``custom_objects`` (its own layers' and the user's subclasses)."""
    return {type(layer).__name__: type(layer) for layer in _layers(model)}


def _layers(model) -> list:
    """Every layer inside ``model``, nested ones included."""
    flatten = getattr(model, "_flatten_layers", None)
    if flatten is None:
        return list(model.layers)
    return list(flatten(include_self=False, recursive=True))


def _retype(obj, source: str, target: str):
    """The config with every ``source`` float dtype (policy) set to ``target``."""
    if isinstance(obj, dict):
        if obj.get("class_name") == "DTypePolicy" and isinstance(
            obj.get("config"), dict
        ):
            if obj["config"].get("name") == source:
                return {**obj, "config": {**obj["config"], "name": target}}
            return obj
        return {
            k: (target if k == "dtype" and v == source else _retype(v, source, target))
            for k, v in obj.items()
        }
    if isinstance(obj, list):
        return [_retype(v, source, target) for v in obj]
    return obj


def _input_spec(model, dtype: str):
    import tensorflow as tf

    n_features = int(model.inputs[0].shape[-1])
    return tf.TensorSpec([None, n_features], tf.as_dtype(dtype), name="features")


# ----------------------------------------------------------------- writers
def _write_bytes(path: str, data: bytes) -> None:
    atomic_write(path, lambda f: f.write(data))


def _export_archive(model, path: str, dtype: str) -> None:
    """Write the SavedModel (TensorFlow's absl logging would otherwise add a
    handler to Python's root logger, as tf2onnx's note would)."""
    with _root_logging_untouched():
        _write_archive(model, path, dtype)


def _write_archive(model, path: str, dtype: str) -> None:
    import keras

    name = model.layers[-1].name
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(
        name="serving_default",
        fn=lambda x: {name: model(x, training=False)},
        input_signature=[_input_spec(model, dtype)],
    )
    if "verbose" in inspect.signature(archive.write_out).parameters:
        archive.write_out(path, verbose=False)  # (else it prints a summary)
    else:
        archive.write_out(path)


def _write_savedmodel(model, path: str, dtype: str) -> None:
    """Write into a new directory next to ``path``, then swap it in: a failed
    export leaves an existing SavedModel at ``path`` untouched."""
    import tensorflow as tf

    if os.path.exists(path) and not os.path.isdir(path):
        raise ValueError(f"{path!r} exists and is not a directory.")
    if os.path.islink(path):  # write through the link: replace its target
        path = os.path.realpath(path)
    _check_replaceable(path)
    tmp = _temp_dir(path)
    try:
        try:
            _export_archive(model, tmp, dtype)
        except _file_errors(tf) as exc:  # a full disk, a quota: TensorFlow's
            # file errors name the hidden directory; report them against path
            raise OSError(
                f"Cannot write the SavedModel {path!r}: {tf_error_text(exc)}"
            ) from None
        _publish_directory(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


# what an exported SavedModel directory holds: only such a directory (or an
# empty one) is replaced by a new export
_SAVEDMODEL_ENTRIES = {
    "saved_model.pb",
    "saved_model.pbtxt",
    "fingerprint.pb",
    "keras_metadata.pb",
    "variables",
    "assets",
}


def _check_replaceable(path: str) -> None:
    """Refuse to replace a directory that is not an exported SavedModel (its
    files would be lost) or the working directory."""
    if not os.path.isdir(path):
        return
    if os.path.samefile(path, os.getcwd()):
        raise ValueError(
            f"Cannot export a SavedModel to {path!r}: it is the current working "
            "directory; export to a new or empty directory."
        )
    entries = set(os.listdir(path))
    if entries and ("saved_model.pb" not in entries or entries - _SAVEDMODEL_ENTRIES):
        raise ValueError(
            f"Cannot export a SavedModel to {path!r}: the directory exists and "
            f"is not an exported SavedModel (it holds {sorted(entries)[:5]}), "
            "and exporting would replace it. Export to a new or empty directory."
        )


def _file_errors(tf) -> tuple:
    """TensorFlow's errors for a file that cannot be written."""
    e = tf.errors
    return (
        e.ResourceExhaustedError,  # no space left, a quota
        e.OutOfRangeError,  # a file size limit
        e.PermissionDeniedError,
        e.NotFoundError,
        e.FailedPreconditionError,
        e.DataLossError,
        e.UnavailableError,
    )


def _temp_dir(path: str) -> str:
    """Create a new hidden directory next to ``path`` (mode 0o777 - umask)."""
    directory = check_parent(path)
    for _ in range(100):
        name = f".{temp_stem(path)}.{secrets.token_hex(6)}.tmp"
        tmp = os.path.join(directory, name)
        try:
            with naming(path):  # (named by the destination, not the hidden name)
                os.mkdir(tmp, 0o777)
            return tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"Could not create a temporary directory next to {path!r}.")


def _publish_directory(tmp: str, path: str) -> None:
    """Move the finished directory ``tmp`` to ``path``, replacing an old one."""
    if not os.path.isdir(path):
        os.rename(tmp, path)
    else:  # two renames: the old export stays whole until the new one is in place
        old = tmp + ".old"
        os.rename(path, old)
        try:
            os.rename(tmp, path)
        except BaseException:
            os.rename(old, path)
            raise
        shutil.rmtree(old, ignore_errors=True)
    fsync_directory(os.path.dirname(os.path.abspath(path)))


def _write_keras(model, path: str, dtype: str) -> None:
    _check_lambdas_portable(model)
    with replacing(path, suffix=".keras") as tmp:
        with naming(path):  # (a full disk: named)
            model.save(tmp, overwrite=True)
        _check_keras_file(tmp, model, dtype)


def _check_keras_file(path: str, model, dtype: str) -> None:
    """Load the written file back (as a user would, with the network's own
    layer classes and ``safe_mode=False``) and compare it with ``model``."""
    import keras

    x, expected = _probe(model, dtype)
    try:
        loaded = keras.saving.load_model(
            path, custom_objects=_layer_classes(model), compile=False, safe_mode=False
        )
        got = np.asarray(loaded(x, training=False))
    except Exception as exc:
        raise ValueError(
            "The .keras file of this network does not load back "
            f"({type(exc).__name__}: {_first_line(exc)}). Export "
            "format='savedmodel' or 'onnx'."
        ) from exc
    tol = 1e-5 if dtype == "float64" else 1e-4  # (layers made in float32)
    _require_outputs(got, expected, tol, "The .keras file", equal_nan=True)


def _write_tflite(model, path: str, dtype: str) -> None:
    """Convert through a SavedModel in a new folder in the system's temporary
    folder (TensorFlow reads it back by a glob pattern: not next to the
    destination, whose name may hold glob characters), removed after."""
    import tensorflow as tf

    with tempfile.TemporaryDirectory(prefix="tfmlp-") as tmpdir:
        try:
            _export_archive(model, tmpdir, dtype)
        except _file_errors(tf) as exc:  # a full temporary folder
            raise OSError(
                f"Cannot write {path!r}: writing its intermediate SavedModel "
                f"failed: {tf_error_text(exc)}"
            ) from None
        try:
            data = tf.lite.TFLiteConverter.from_saved_model(tmpdir).convert()
        except Exception as exc:  # its ConverterError quotes MLIR diagnostics
            raise ValueError(
                f"TFLite cannot convert this network ({_converter_reason(exc)}). "
                "Export format='savedmodel' or 'onnx'."
            ) from exc
    _write_bytes(path, data)


# -------------------------------------------------------------------- ONNX
def _import_onnx():
    # importing tf2onnx sets TF_CPP_MIN_LOG_LEVEL for the whole process: undo it
    previous = os.environ.get("TF_CPP_MIN_LOG_LEVEL")
    try:
        import onnx
        import tf2onnx
        import tf2onnx.convert  # noqa: F401
    except ImportError as exc:
        raise ImportError(f"{_ONNX_HINT} ({exc}).") from exc
    finally:
        if previous is None:
            os.environ.pop("TF_CPP_MIN_LOG_LEVEL", None)
        else:
            os.environ["TF_CPP_MIN_LOG_LEVEL"] = previous
    return onnx, tf2onnx


def _write_onnx(model, path: str, dtype: str) -> None:
    import tensorflow as tf

    onnx, tf2onnx = _import_onnx()
    spec = _input_spec(model, dtype)
    fn = tf.function(lambda x: model(x, training=False), input_signature=[spec])
    with _root_logging_untouched(), _no_activity_regularizers(model):
        proto, _ = tf2onnx.convert.from_function(
            fn,
            input_signature=[spec],
            opset=ONNX_OPSET,
            # tf2onnx has no Erfc (exact GELU): keep it, _portable_ops rewrites it
            custom_op_handlers={"Erfc": (_keep_node, [])},
        )
    _rename_output(proto, model.layers[-1].name)
    _portable_ops(proto, onnx, dtype)
    proto.producer_name = "tfmlp"
    try:
        onnx.checker.check_model(proto)
    except onnx.checker.ValidationError as exc:
        raise ValueError(
            f"The ONNX conversion of this network is not a valid ONNX model "
            f"({_first_line(exc)}).{_float32_hint(dtype)}"
        ) from exc
    data = proto.SerializeToString()
    _check_onnx(data, model, dtype)
    _write_bytes(path, data)


@contextmanager
def _no_activity_regularizers(model):
    """Layers' activity regularizers set aside while the network is traced
    for ONNX: they only add a training loss, and the ops they leave in the
    traced graph made tf2onnx's import fail ("Failed to import metagraph")."""
    layers = [
        layer
        for layer in _layers(model)
        if getattr(layer, "activity_regularizer", None) is not None
    ]
    kept = [layer.activity_regularizer for layer in layers]
    try:
        for layer in layers:
            layer.activity_regularizer = None
        yield
    finally:
        for layer, regularizer in zip(layers, kept):
            layer.activity_regularizer = regularizer


class _DropRootNotes(logging.Filter):
    def filter(self, record) -> bool:
        return not record.getMessage().startswith("For now, onnxruntime only")


@contextmanager
def _root_logging_untouched():
    """tf2onnx logs a float64 note through ``logging.warning`` and
    TensorFlow's SavedModel writer logs through absl, both of which would
    call ``logging.basicConfig()`` (a process-wide root handler): prevent that
    and drop tf2onnx's note."""
    root = logging.getLogger()
    guard = logging.NullHandler() if not root.handlers else None
    note = _DropRootNotes()
    if guard is not None:
        root.addHandler(guard)
    root.addFilter(note)
    try:
        yield
    finally:
        root.removeFilter(note)
        if guard is not None:
            root.removeHandler(guard)


def _keep_node(ctx, node, name, args) -> None:
    """tf2onnx handler that leaves a node as it is (rewritten afterwards)."""


def _rename_output(proto, name: str) -> None:
    graph = proto.graph
    old = graph.output[0].name
    for node in graph.node:
        node.output[:] = [name if o == old else o for o in node.output]
        node.input[:] = [name if i == old else i for i in node.input]
    graph.output[0].name = name


def _portable_ops(proto, onnx, dtype: str) -> None:
    """Replace ops onnxruntime lacks kernels for (tf2onnx emits them as is).

    ``Erfc`` (exact GELU) becomes ``1 - Erf``; in float64, ``Elu``/``Selu``
    become ``Where``/``Exp`` arithmetic (exact) and ``Erf`` is computed in
    float32 between two casts (onnxruntime has no float64 Erf; the error is
    ~1e-7 relative).
    """
    from onnx import TensorProto, helper

    graph = proto.graph
    double = dtype == "float64"
    elem = TensorProto.DOUBLE if double else TensorProto.FLOAT
    nodes = []
    counter = [0]

    def fresh(stem: str) -> str:
        counter[0] += 1
        return f"tfmlp_{stem}_{counter[0]}"

    def const(value: float) -> str:
        name = fresh("const")
        graph.initializer.append(helper.make_tensor(name, elem, [], [float(value)]))
        return name

    def erf(x: str, out: str) -> list:
        if not double:
            return [helper.make_node("Erf", [x], [out], name=fresh("erf"))]
        x32, y32 = fresh("erf_in"), fresh("erf_out")
        return [
            helper.make_node("Cast", [x], [x32], to=TensorProto.FLOAT, name=fresh("c")),
            helper.make_node("Erf", [x32], [y32], name=fresh("erf")),
            helper.make_node(
                "Cast", [y32], [out], to=TensorProto.DOUBLE, name=fresh("c")
            ),
        ]

    def elu(x: str, out: str, alpha: float, gamma: float | None) -> list:
        pos, ex, em1, neg, sel = (fresh(s) for s in ("pos", "exp", "em1", "neg", "sel"))
        result = [
            helper.make_node("Greater", [x, const(0.0)], [pos], name=fresh("gt")),
            helper.make_node("Exp", [x], [ex], name=fresh("exp")),
            helper.make_node("Sub", [ex, const(1.0)], [em1], name=fresh("sub")),
            helper.make_node("Mul", [em1, const(alpha)], [neg], name=fresh("mul")),
        ]
        if gamma is None:
            result.append(
                helper.make_node("Where", [pos, x, neg], [out], name=fresh("w"))
            )
        else:
            result += [
                helper.make_node("Where", [pos, x, neg], [sel], name=fresh("w")),
                helper.make_node("Mul", [sel, const(gamma)], [out], name=fresh("mul")),
            ]
        return result

    for node in graph.node:
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        x, out = (node.input[0], node.output[0]) if node.input else (None, None)
        if node.op_type == "Erfc":
            e = fresh("erf")
            nodes += erf(x, e)
            nodes.append(
                helper.make_node("Sub", [const(1.0), e], [out], name=fresh("s"))
            )
        elif node.op_type == "Erf" and double:
            nodes += erf(x, out)
        elif node.op_type == "Elu" and double:
            nodes += elu(x, out, attrs.get("alpha", 1.0), None)
        elif node.op_type == "Selu" and double:
            # ONNX attributes are float32: use SELU's float64 constants again
            alpha = _exact(attrs.get("alpha", _SELU_ALPHA), _SELU_ALPHA)
            gamma = _exact(attrs.get("gamma", _SELU_SCALE), _SELU_SCALE)
            nodes += elu(x, out, alpha, gamma)
        else:
            nodes.append(node)
    del graph.node[:]
    graph.node.extend(nodes)


_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def _exact(value: float, constant: float) -> float:
    """``constant`` if ``value`` is its float32 rounding, else ``value``."""
    return constant if float(np.float32(constant)) == float(value) else float(value)


def _check_onnx(data: bytes, model, dtype: str) -> None:
    """Run the ONNX model in onnxruntime (if installed) against Keras."""
    try:
        import onnxruntime as ort
    except ImportError:
        return
    x, expected = _probe(model, dtype)
    try:
        session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
        got = session.run(None, {"features": x})[0]
    except Exception as exc:
        raise ValueError(
            "The ONNX conversion of this network does not run in onnxruntime "
            f"({exc}).{_float32_hint(dtype)}"
        ) from exc
    tol = 1e-6 if dtype == "float64" else 1e-4
    _require_outputs(got, expected, tol, "The ONNX conversion", equal_nan=True)


def _probe(model, dtype: str) -> tuple[np.ndarray, np.ndarray]:
    """32 random rows in ``dtype`` and the network's outputs for them: what
    an exported file is checked against. Half of them are positive, for
    networks defined there only (a log of the features): outputs that are
    not finite must be so in the file too."""
    n_features = int(model.inputs[0].shape[-1])
    x = np.random.RandomState(0).normal(size=(32, n_features))
    x[16:] = np.abs(x[16:])
    x = x.astype(dtype)
    return x, np.asarray(model(x, training=False))


def _require_outputs(got, expected, tol: float, what: str, equal_nan=False) -> None:
    """Refuse an export whose outputs differ from the network's; warn when
    the network gives no finite output to compare on the probe rows."""
    nothing_finite = not np.isfinite(expected).any() and not np.isfinite(got).any()
    if equal_nan and got.shape == expected.shape and nothing_finite:
        from tfmlp._warn import warn

        warn(
            f"{what} of this network was written without a check: the "
            "network's outputs on the random rows it is checked with are not "
            "finite (a network defined on part of the input space only). "
            "Compare its predictions on your data."
        )
        return
    if got.shape != expected.shape or not np.allclose(
        got, expected, rtol=tol, atol=tol, equal_nan=equal_nan
    ):
        raise ValueError(
            f"{what} of this network does not reproduce its outputs "
            f"(largest difference {_largest_difference(got, expected)})."
        )


def _largest_difference(got, expected) -> str:
    if got.shape != expected.shape:
        return f"shape {got.shape} instead of {expected.shape}"
    with np.errstate(invalid="ignore"):
        diff = np.abs(got.astype(np.float64) - expected.astype(np.float64))
    apart = np.isnan(got) != np.isnan(expected)
    if apart.any():
        return f"{int(apart.sum())} output(s) NaN in one and not the other"
    return f"{np.nanmax(diff):.3g}" if (~np.isnan(diff)).any() else "nan"


def _first_line(exc) -> str:
    """The first non-empty line of an error's message."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


def _float32_hint(dtype: str) -> str:
    """onnxruntime lacks float64 kernels for many operations (Conv, LSTM,
    GroupNormalization, ...): say what to try."""
    if dtype != "float64":
        return ""
    return (
        " onnxruntime has no float64 kernels for several operations: try "
        "dtype='float32', or format='savedmodel'."
    )


def _converter_reason(exc) -> str:
    """The first error of a TFLite ConverterError, without the MLIR source
    location before it (``<unknown>:0: error: loc(...): <reason>``)."""
    for line in str(exc).splitlines():
        head, found, reason = line.partition("error: ")
        if not found:
            continue
        if reason.startswith("loc("):  # skip the balanced loc(...) group
            depth, end = 0, len(reason)
            for index, char in enumerate(reason[3:], start=3):
                depth += {"(": 1, ")": -1}.get(char, 0)
                if depth == 0:
                    end = index
                    break
            reason = reason[end + 1 :].lstrip(": ")
        if reason.strip():
            return reason.strip()[:300]
    return _first_line(exc)[:300]
