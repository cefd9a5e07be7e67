"""tfmlp's native file format: ``save(est, path)`` and ``load(path)``.

One file holds everything an estimator has, fitted or not: its parameters,
every fitted attribute and the private training state (label binarizer,
optimizer with its slots and step count, early-stopping best weights,
no-improvement counter, random generator state), so that a loaded estimator
predicts bit-identically and ``partial_fit`` / ``warm_start`` continue exactly
as the original would have.

The file contains no pickle and loading runs no code from it. It is a ZIP
archive whose members are stored uncompressed, in this order::

    tfmlp.json       UTF-8 JSON: {"format": "tfmlp-estimator",
                     "format_version": 1, "estimator": "MLPClassifier" or
                     "MLPRegressor", "tfmlp_version", "sklearn_version",
                     "numpy_version", "arrays": [member names],
                     "params": {...}, "attributes": {...}}
    arrays/<i>.npy   numeric NumPy arrays (np.save with allow_pickle=False)
    checksum.sha256  hex SHA-256 over the other members (names and bytes)

Values inside ``params`` and ``attributes`` are JSON with a few tagged
objects (a JSON object whose single key starts with ``$``): ``$float``
(nan / inf), ``$tuple``, ``$dict`` (non-string keys), ``$scalar`` (NumPy
scalar with its dtype), ``$array`` (index of an ``arrays/<i>.npy`` member),
``$strarray`` / ``$objarray`` (string or object arrays such as ``classes_``,
element by element, never as object arrays), ``$random_state``,
``$label_binarizer``, ``$optimizer`` and ``$unsaved`` (a parameter that is
code, such as ``hidden_stack`` or ``callbacks``, which the format does not
hold). The loader rebuilds only these types, and only
``tfmlp.MLPClassifier`` / ``tfmlp.MLPRegressor``. It never sets a method,
property, parameter or private attribute the estimators do not have; the
fitted attributes get values of their types; public attributes a user added
are kept as the plain data they decode to.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import inspect
import io
import json
import math
import os
import re
import warnings
import zipfile
from typing import Any

import numpy as np
import sklearn
from numpy.lib import format as npy_format
from sklearn.preprocessing import LabelBinarizer

from tfmlp._compat import keeps_keras_policy
from tfmlp._estimators import MLPClassifier, MLPRegressor
from tfmlp._extras import StandardStack
from tfmlp._files import atomic_write, destination
from tfmlp._network import KERAS_ACTIVATIONS, OUTPUT_ACTIVATIONS
from tfmlp._optimizers import SGD, Adam
from tfmlp._warn import warn

__all__ = ["load", "save"]

FORMAT_NAME = "tfmlp-estimator"
FORMAT_VERSION = 1
METADATA = "tfmlp.json"
CHECKSUM = "checksum.sha256"
_ARRAY_NAME = re.compile(r"arrays/(0|[1-9][0-9]{0,8})\.npy")
_ESTIMATORS = {"MLPClassifier": MLPClassifier, "MLPRegressor": MLPRegressor}
_OPTIMIZERS = {"SGD": SGD, "Adam": Adam}
# Attributes an estimator holds that ``save`` never writes: TensorFlow
# objects, the in-training flag, scikit-learn's pickle version tag, the
# callback context scikit-learn's meta-estimators attach during a fit (a
# Pipeline's last step has it while an ``EstimatorCheckpoint`` saves) and
# metadata-routing requests (``set_fit_request``: set them again after load).
_NOT_STORED = (
    "_net",
    "_fitting",
    "_sklearn_version",
    "_parent_callback_ctx",
    "_skl_callbacks",
    "_skl_callbacks_to_teardown",
    "_metadata_request",
)
# Attributes that scikit-learn's own code sets on tfmlp estimators
# (``validate_data``: feature count and names; ``set_output``: its config).
_SET_BY_SKLEARN = ("n_features_in_", "feature_names_in_", "_sklearn_output_config")
# Attributes tfmlp's tools store on the estimators they train: the command
# line's preprocessing record (``tfmlp._cli._PRE_ATTR``, checked there on use).
_SET_BY_TFMLP_TOOLS = ("_cli_preprocessing",)
# NumPy dtypes allowed in array members and scalars (no objects, no records).
_NUMERIC_DTYPES = {
    np.dtype(name).name: np.dtype(name)
    for name in (
        "bool",
        "int8",
        "int16",
        "int32",
        "int64",
        "uint8",
        "uint16",
        "uint32",
        "uint64",
        "float16",
        "float32",
        "float64",
    )
}
_MAX_DEPTH = 64
_MAX_TEXT_BYTES = 1 << 28
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)


class _FormatError(Exception):
    """A problem with the file's content (reported as ValueError by ``load``)."""


# ====================================================================== save
def save(est: MLPClassifier | MLPRegressor, path: str | os.PathLike) -> None:
    """Save a tfmlp estimator (fitted or not) to one file.

    The file holds the parameters, every fitted attribute and the training
    state; :func:`load` gives back an estimator with bit-identical
    predictions that continues training (``partial_fit``, ``warm_start``)
    exactly like the original. It contains no pickle: JSON metadata, NumPy
    arrays and a SHA-256 checksum in a ZIP archive whose members are stored
    uncompressed: ``tfmlp.json`` (parameters and attributes, with a few
    tagged types), ``arrays/<i>.npy`` (``np.save`` without pickle) and
    ``checksum.sha256``; loading rebuilds only tfmlp's estimators and the
    types they hold.

    The write is atomic: the data goes to a temporary file in the same
    directory, is flushed to disk, and then replaces ``path`` in one rename,
    so an interrupted save never leaves a partial file or destroys an
    earlier file at ``path``.

    Parameters that are code (a ``hidden_stack`` callable, Keras
    ``callbacks``) are not stored (a warning says so); pass them to
    :func:`load` again.

    Parameters
    ----------
    est : tfmlp.MLPClassifier or tfmlp.MLPRegressor
        The estimator to save.
    path : str, bytes or os.PathLike
        Destination file (``.tfmlp`` is a good suffix; none is required).

    Raises
    ------
    TypeError
        If ``est`` is not a tfmlp estimator, or ``path`` is not a path.
    ValueError
        If the estimator holds a value the format cannot represent, or
        ``path`` is empty.
    OSError
        If the file cannot be written (``FileNotFoundError`` when its
        directory does not exist, ``NotADirectoryError`` when that is a
        file); an earlier file at ``path`` is then left as it was.
    """
    name = type(est).__name__
    if type(est) not in (MLPClassifier, MLPRegressor):
        raise TypeError(
            "tfmlp.save expects a tfmlp.MLPClassifier or tfmlp.MLPRegressor, got "
            f"{type(est).__module__}.{type(est).__qualname__}."
        )
    try:  # load checks them: a file it would refuse is not written
        est._validate_params()
    except ValueError as exc:
        raise ValueError(f"Cannot save {name}: {exc}") from None
    path = destination(path)
    members, arrays = _encode_estimator(est, name)
    try:  # a file load would refuse is not written (the arrays are not copied)
        _build(type(est), _parse_metadata(members[0][1]), arrays)
    except Exception as exc:
        detail = str(exc) if isinstance(exc, _FormatError) else f"{exc!r}"
        raise ValueError(
            f"Cannot save {name}: tfmlp.load would refuse the file: {detail}"
        ) from None
    del arrays
    atomic_write(path, lambda f: _write_archive(f, members))


def _encode_estimator(est, name: str) -> tuple[list[tuple[str, bytes]], list]:
    """The archive's members (metadata first) and the arrays they hold."""
    state = dict(est.__getstate__())  # synced weights; no TensorFlow objects
    for key in _NOT_STORED:
        state.pop(key, None)
    if type(state.get("_fitted_stack")) is not StandardStack:
        # a user's stack is code (``load`` takes hidden_stack from its caller);
        # the dropout / batch-normalisation stack is data, kept when set_params
        # has changed the parameters that describe it since the fit
        state.pop("_fitted_stack", None)
    param_names = set(type(est)._get_param_names())
    enc = _Encoder()
    params = {}
    for key in sorted(param_names):
        value = state.get(key, getattr(est, key, None))
        unsaved = _unsaved_param(key, value)
        if unsaved is not None:
            warnings.warn(
                f"tfmlp.save does not store {key}={unsaved}: the format holds "
                f"no code. Pass it again when loading: tfmlp.load(path, {key}=...).",
                UserWarning,
                stacklevel=3,
            )
            params[key] = {"$unsaved": unsaved}
            continue
        params[key] = enc.encode(value, f"parameter {key!r}")
    attributes = {}
    for key, value in state.items():
        if key in param_names:
            continue
        _check_storable(type(est), key)
        if (
            key == "_random_state"
            and value is not None
            and value is state.get("random_state")
        ):
            attributes[key] = {"$random_state": "random_state"}
            continue
        attributes[key] = enc.encode(value, f"attribute {key!r}")
    names = [f"arrays/{i}.npy" for i in range(len(enc.arrays))]
    metadata = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "estimator": name,
        "tfmlp_version": _tfmlp_version(),
        "sklearn_version": sklearn.__version__,
        "numpy_version": np.__version__,
        "arrays": names,
        "params": params,
        "attributes": attributes,
    }
    text = json.dumps(metadata, allow_nan=False, indent=1, ensure_ascii=True)
    members = [(METADATA, text.encode("utf-8"))]
    for member, array in zip(names, enc.arrays):
        buffer = io.BytesIO()
        np.save(buffer, array, allow_pickle=False)
        members.append((member, buffer.getvalue()))
    members.append((CHECKSUM, _checksum(members).encode("ascii")))
    return members, enc.arrays


def _check_storable(cls, key: str) -> None:
    """Refuse to write an attribute that :func:`load` would refuse."""
    try:
        _check_attribute_name(cls, key)
    except _FormatError as exc:
        raise ValueError(
            f"Cannot save attribute {key!r}: the tfmlp format holds the "
            "estimator's parameters, its fitted attributes and public "
            f"attributes you added ({exc})"
        ) from None


def _tfmlp_version() -> str:
    import tfmlp

    return str(getattr(tfmlp, "__version__", "unknown"))


def _unsaved_param(key: str, value):
    """A description of a parameter value that is code, or None."""
    if key == "hidden_stack" and value is not None:
        return _describe_callable(value)
    if key == "callbacks" and value is not None:
        if not isinstance(value, (list, tuple)):
            return type(value).__name__
        if len(value):
            return "[" + ", ".join(type(c).__name__ for c in value) + "]"
    return None


def _describe_callable(fn) -> str:
    module = getattr(fn, "__module__", None) or type(fn).__module__
    qualname = getattr(fn, "__qualname__", None) or type(fn).__qualname__
    return f"{module}.{qualname}"


class _Encoder:
    """Python / NumPy values -> tagged JSON (numeric arrays set aside)."""

    def __init__(self):
        self.arrays: list[np.ndarray] = []

    def encode(self, value, where: str, depth: int = 0):
        if depth > _MAX_DEPTH:
            raise ValueError(f"Cannot save {where}: nested too deeply.")
        sub = depth + 1
        if isinstance(value, np.generic):  # before float / str: subclasses
            return _encode_scalar(value, where)
        if value is None or isinstance(value, (bool, str)):
            return value
        if isinstance(value, int):
            return int(value)
        if isinstance(value, float):
            return _encode_float(value)
        if isinstance(value, np.ndarray):
            return self._encode_array(value, where)
        if isinstance(value, tuple):
            return {"$tuple": [self.encode(v, where, sub) for v in value]}
        if isinstance(value, list):
            return [self.encode(v, where, sub) for v in value]
        if isinstance(value, dict):
            if all(isinstance(k, str) and not k.startswith("$") for k in value):
                return {k: self.encode(v, where, sub) for k, v in value.items()}
            return {
                "$dict": [
                    [self.encode(k, where, sub), self.encode(v, where, sub)]
                    for k, v in value.items()
                ]
            }
        if isinstance(value, np.random.RandomState):
            kind, keys, pos, has_gauss, cached = value.get_state(legacy=True)
            return {
                "$random_state": {
                    "keys": self._encode_array(np.asarray(keys), where),
                    "pos": int(pos),
                    "has_gauss": int(has_gauss),
                    "cached_gaussian": _encode_float(float(cached)),
                }
            }
        if type(value) is LabelBinarizer:
            return {"$label_binarizer": self._encode_fields(vars(value), where, sub)}
        if type(value) is StandardStack:
            return {"$standard_stack": self._encode_fields(vars(value), where, sub)}
        if type(value) in (SGD, Adam):
            state = value.__getstate__()  # slot variables read back as arrays
            fields = dict(state)
            fields["_slot_arrays"] = [np.asarray(a) for a in fields["_slot_arrays"]]
            fields["_slot_vars"] = fields["_strategy"] = None
            return {
                "$optimizer": [
                    type(value).__name__,
                    self._encode_fields(fields, where, sub),
                ]
            }
        raise ValueError(
            f"Cannot save {where}: values of type "
            f"{type(value).__module__}.{type(value).__qualname__} are not "
            "supported by the tfmlp format."
        )

    def _encode_fields(self, fields: dict, where: str, depth: int) -> dict:
        return {k: self.encode(v, f"{where}.{k}", depth) for k, v in fields.items()}

    def _encode_array(self, array: np.ndarray, where: str):
        kind = array.dtype.kind
        if kind in "biuf" and array.dtype.name in _NUMERIC_DTYPES:
            self.arrays.append(array)
            return {"$array": len(self.arrays) - 1}
        shape = [int(n) for n in array.shape]
        if kind == "U":
            width = array.dtype.itemsize // 4
            return {"$strarray": [width, shape, array.ravel().tolist()]}
        if kind == "O":
            items = [_encode_item(v, where) for v in array.ravel().tolist()]
            return {"$objarray": [shape, items]}
        raise ValueError(
            f"Cannot save {where}: arrays of dtype {array.dtype} are not supported "
            "by the tfmlp format."
        )


def _encode_float(value: float):
    if math.isfinite(value):
        return float(value)
    return {"$float": "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")}


def _encode_scalar(value: np.generic, where: str):
    if isinstance(value, np.str_):
        return {"$scalar": ["str", str(value)]}
    name = value.dtype.name
    if name not in _NUMERIC_DTYPES:
        raise ValueError(
            f"Cannot save {where}: NumPy scalars of dtype {value.dtype} are not "
            "supported by the tfmlp format."
        )
    item = value.item()
    return {"$scalar": [name, _encode_float(item) if name[0] == "f" else item]}


def _encode_item(value, where: str):
    """An element of an object array (a label): a plain scalar."""
    if isinstance(value, np.generic):
        return _encode_scalar(value, where)
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return _encode_float(value)
    raise ValueError(
        f"Cannot save {where}: object arrays may hold str, int, float, bool or "
        f"None, not {type(value).__qualname__}."
    )


def _checksum(members: list[tuple[str, bytes]]) -> str:
    digest = hashlib.sha256()
    for name, data in members:
        encoded = name.encode("utf-8")
        digest.update(len(encoded).to_bytes(8, "big") + encoded)
        digest.update(len(data).to_bytes(8, "big"))
        digest.update(data)
    return digest.hexdigest()


def _write_archive(fileobj, members: list[tuple[str, bytes]]) -> None:
    """Write the members to ``fileobj`` as an uncompressed ZIP archive."""
    with zipfile.ZipFile(fileobj, "w", zipfile.ZIP_STORED) as archive:
        for name, data in members:
            info = zipfile.ZipInfo(name, date_time=_ZIP_DATE)
            info.compress_type = zipfile.ZIP_STORED
            info.external_attr = 0o644 << 16
            archive.writestr(info, data)


# ====================================================================== load
@keeps_keras_policy
def load(path: str | os.PathLike, **params: Any) -> MLPClassifier | MLPRegressor:
    """Load an estimator written by :func:`save`.

    Parameters
    ----------
    path : str or os.PathLike
        The file.
    **params
        Parameters to set on the loaded estimator, typically those the file
        cannot hold because they are code: ``hidden_stack`` (needed to
        predict with a model fitted with one) and ``callbacks``.

    Returns
    -------
    tfmlp.MLPClassifier or tfmlp.MLPRegressor
        The estimator, fitted if it was when saved.

    Raises
    ------
    ValueError
        If the file is not a tfmlp model file, is damaged (checksum or CRC
        mismatch, truncated), was written by a newer format version, or holds
        anything the format does not allow. The message names the file and
        the problem. Nothing from the file is ever executed.
    OSError
        If the file cannot be read (e.g. FileNotFoundError).
    """
    path = os.fspath(path)
    with open(path, "rb") as f:
        blob = f.read()
    try:
        est, unsaved = _decode_file(blob)
        est._validate_params()
    except _FormatError as exc:
        raise ValueError(f"Cannot load tfmlp model from {path!r}: {exc}") from None
    except Exception as exc:  # anything else a malformed file can provoke
        raise ValueError(
            f"Cannot load tfmlp model from {path!r}: invalid or damaged file "
            f"({type(exc).__name__}: {exc})"
        ) from None
    if "hidden_stack" in params:  # the code the file could not hold
        est.set_params(hidden_stack=params["hidden_stack"])
    if (
        est.__dict__.get("_keras_weights") is not None
        and "_fitted_stack" not in est.__dict__
        and callable(est._stack_builder())
    ):  # as unpickling does: the stack the file was fitted with stays the one
        # predict and training use, whatever set_params changes later (the
        # other parameters given here included, as load(path).set_params)
        est.__dict__["_fitted_stack"] = est._stack_builder()
    if params:
        est.set_params(**params)
    missing = {k: v for k, v in unsaved.items() if k not in params}
    if "hidden_stack" in missing and est.__dict__.get("_keras_weights") is not None:
        warn(
            f"{path!r} was fitted with hidden_stack={missing['hidden_stack']}, "
            "which the file does not hold: pass it to tfmlp.load(path, "
            "hidden_stack=...) (or set_params) before predicting or training."
        )
    return est


def _decode_file(blob: bytes):
    members = _read_members(blob)
    try:
        metadata = _parse_metadata(members[METADATA])
    except Exception as exc:
        _verify_checksum(members)  # a damaged file says so first
        raise _FormatError(f"the metadata is not valid JSON ({exc}).") from None
    if not isinstance(metadata, dict) or metadata.get("format") != FORMAT_NAME:
        _verify_checksum(members)
        raise _FormatError(
            f"not a tfmlp model file (its metadata does not say format "
            f"{FORMAT_NAME!r})."
        )
    version = metadata.get("format_version")
    if type(version) is not int or version != FORMAT_VERSION:
        raise _FormatError(
            f"unsupported format version {version!r}; this tfmlp "
            f"({_tfmlp_version()}) reads version {FORMAT_VERSION}"
            + (
                " (the file was written by a newer tfmlp)."
                if _is_newer(version)
                else "."
            )
        )
    _verify_checksum(members)
    cls_name = metadata.get("estimator")
    if not isinstance(cls_name, str) or cls_name not in _ESTIMATORS:
        raise _FormatError(
            f"unknown estimator class {cls_name!r}; the format holds only "
            f"{' or '.join(sorted(_ESTIMATORS))}."
        )
    names = metadata.get("arrays")
    if not isinstance(names, list) or [*names] != [
        f"arrays/{i}.npy" for i in range(len(names))
    ]:
        raise _FormatError("the metadata's array list is malformed.")
    expected = {METADATA, CHECKSUM, *names}
    if set(members) != expected:
        extra = sorted(set(members) - expected)
        lacking = sorted(expected - set(members))
        raise _FormatError(
            f"the archive's members do not match its metadata (unexpected: "
            f"{extra}, missing: {lacking})."
        )
    arrays = [_read_npy(members[name], name) for name in names]
    return _build(_ESTIMATORS[cls_name], metadata, arrays)


def _parse_metadata(text: bytes):
    return json.loads(
        text.decode("utf-8"),
        parse_constant=_reject_constant,
        object_pairs_hook=_no_duplicate_keys,
    )


def _is_newer(version) -> bool:
    return type(version) is int and version > FORMAT_VERSION


def _reject_constant(name: str):
    raise ValueError(f"non-standard JSON constant {name}")


def _no_duplicate_keys(pairs):
    out = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key!r}")
        out[key] = value
    return out


def _read_members(blob: bytes) -> dict[str, bytes]:
    """The archive's members, after checking names, sizes and CRCs."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(blob))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError) as exc:
        raise _FormatError(
            f"not a tfmlp model file: not a readable ZIP archive ({exc}); it may "
            "be truncated or of another format."
        ) from None
    with archive:
        infos = archive.infolist()
        seen: set[str] = set()
        total = 0
        for info in infos:
            name = info.filename
            if not (name in (METADATA, CHECKSUM) or _ARRAY_NAME.fullmatch(name)):
                unsafe = (
                    name.startswith(("/", "\\"))
                    or ".." in name.replace("\\", "/").split("/")
                    or ":" in name
                )
                raise _FormatError(
                    f"{'unsafe' if unsafe else 'unexpected'} archive member {name!r}."
                )
            if name in seen:
                raise _FormatError(f"duplicate archive member {name!r}.")
            seen.add(name)
            if info.flag_bits & 0x1:
                raise _FormatError(f"archive member {name!r} is encrypted.")
            if info.compress_type != zipfile.ZIP_STORED:
                raise _FormatError(
                    f"archive member {name!r} is compressed; the format stores "
                    "members uncompressed."
                )
            total += info.file_size
            if info.file_size != info.compress_size or total > len(blob):
                raise _FormatError(
                    f"archive member {name!r} declares {info.file_size} bytes, "
                    f"more than the {len(blob)}-byte file holds (damaged or "
                    "hostile file)."
                )
        for name in (METADATA, CHECKSUM):
            if name not in seen:
                raise _FormatError(f"the archive has no {name!r} member.")
        members = {}
        for info in infos:
            try:
                members[info.filename] = archive.read(info)
            except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
                raise _FormatError(
                    f"archive member {info.filename!r} is damaged ({exc})."
                ) from None
    return members


def _verify_checksum(members: dict[str, bytes]) -> None:
    stored = members[CHECKSUM].strip()
    ordered = [(k, v) for k, v in members.items() if k != CHECKSUM]
    actual = _checksum(ordered).encode("ascii")
    if not hmac.compare_digest(stored, actual):
        raise _FormatError(
            "checksum mismatch: the file is damaged (or was modified after it "
            "was written)."
        )


def _read_npy(data: bytes, name: str) -> np.ndarray:
    """An ``.npy`` member, after checking its header against its size."""
    fp = io.BytesIO(data)
    try:
        version = npy_format.read_magic(fp)
        if version == (1, 0):
            shape, fortran, dtype = npy_format.read_array_header_1_0(fp)
        elif version == (2, 0):
            shape, fortran, dtype = npy_format.read_array_header_2_0(fp)
        else:
            raise ValueError(f"unsupported .npy version {version}")
    except ValueError as exc:
        raise _FormatError(f"array member {name!r} is malformed ({exc}).") from None
    if dtype.hasobject or dtype.fields is not None or dtype.kind not in "biuf":
        raise _FormatError(
            f"array member {name!r} has dtype {dtype}; the format allows only "
            "numeric arrays (no objects, no pickles)."
        )
    count = math.prod(shape)
    if count * dtype.itemsize != len(data) - fp.tell():
        raise _FormatError(
            f"array member {name!r} declares shape {shape} ({dtype}), which does "
            f"not match its {len(data) - fp.tell()} bytes of data."
        )
    fp.seek(0)
    return np.load(fp, allow_pickle=False)


# ------------------------------------------------------ what a file may set
def _is_count(value) -> bool:
    return (
        isinstance(value, (int, np.integer))
        and not isinstance(value, bool)
        and value >= 0
    )


def _is_real(value) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not (
        isinstance(value, bool)
    )


def _is_bool(value) -> bool:
    return isinstance(value, (bool, np.bool_))


def _is_str(value) -> bool:
    return isinstance(value, str)


def _is_reals(value) -> bool:
    return isinstance(value, list) and all(_is_real(v) for v in value)


def _is_arrays(value) -> bool:
    return isinstance(value, list) and all(isinstance(a, np.ndarray) for a in value)


def _is_vector(value) -> bool:
    return isinstance(value, np.ndarray) and value.ndim == 1


def _is_names(value) -> bool:
    return _is_vector(value) and value.dtype.kind in "OU"


def _is_history(value) -> bool:
    return isinstance(value, dict) and all(
        isinstance(k, str) and isinstance(v, list) for k, v in value.items()
    )


def _is_output_config(value) -> bool:
    return isinstance(value, dict) and all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    )


def _is_out_activation(value) -> bool:
    return isinstance(value, str) and value in OUTPUT_ACTIVATIONS


def _is_optimizer(value) -> bool:
    return type(value) in _OPTIMIZERS.values()


def _or_none(check):
    def check_or_none(value) -> bool:
        return value is None or check(value)

    return check_or_none


# The type of each fitted attribute's value (see the estimators' docstrings).
_ATTRIBUTE_CHECKS = {
    **dict.fromkeys(
        (
            "n_iter_",
            "t_",
            "n_layers_",
            "n_outputs_",
            "n_features_in_",
            "_no_improvement_count",
            "_stack_seed",
        ),
        (_is_count, "a non-negative integer"),
    ),
    "loss_": (_is_real, "a number"),
    "best_loss_": (_or_none(_is_real), "a number or null"),
    "best_validation_score_": (_or_none(_is_real), "a number or null"),
    "loss_curve_": (_is_reals, "a list of numbers"),
    "validation_loss_curve_": (_is_reals, "a list of numbers"),
    "validation_scores_": (_or_none(_is_reals), "a list of numbers or null"),
    "history_": (_is_history, "a dict of lists"),
    "out_activation_": (_is_out_activation, "an output activation name"),
    "classes_": (_is_vector, "a 1-D array"),
    "feature_names_in_": (_is_names, "a 1-D array of names"),
    "_coefs": (_is_arrays, "a list of arrays"),
    "_intercepts": (_is_arrays, "a list of arrays"),
    "_best_params": (_or_none(_is_arrays), "a list of arrays or null"),
    "_keras_weights": (_or_none(_is_arrays), "a list of arrays or null"),
    "_fitted_stack": (
        lambda v: type(v) is StandardStack,
        "a standard hidden stack (dropout / batch normalization)",
    ),
    "_label_binarizer": (
        lambda v: type(v) is LabelBinarizer,
        "a label binarizer",
    ),
    "_optimizer": (_is_optimizer, "an SGD or Adam state"),
    "_random_state": (
        lambda v: isinstance(v, np.random.RandomState),
        "a random generator",
    ),
    "_sklearn_output_config": (_is_output_config, "a dict of strings"),
    "_cli_preprocessing": (lambda v: isinstance(v, dict), "a preprocessing record"),
}
# The optimizers' scalar fields and their types; the slot fields are checked
# in ``_Decoder._optimizer``.
_OPTIMIZER_SLOT_FIELDS = ("_slot_arrays", "_slot_vars", "_strategy")
_OPTIMIZER_OPTIONAL = ("_loss_scale",)  # mixed float16 training only
_OPTIMIZER_FIELDS = {
    "SGD": {
        "learning_rate_init": _is_real,
        "learning_rate": _is_real,
        "lr_schedule": lambda v: v in ("constant", "invscaling", "adaptive"),
        "momentum": _is_real,
        "nesterov": _is_bool,
        "power_t": _is_real,
    },
    "Adam": {
        "learning_rate_init": _is_real,
        "learning_rate": _is_real,
        "beta_1": _is_real,
        "beta_2": _is_real,
        "epsilon": _is_real,
        "t": _is_count,
    },
}
_BINARIZER_CHECKS = {
    "neg_label": _is_real,
    "pos_label": _is_real,
    "sparse_output": _is_bool,
    "y_type_": _is_str,
    "sparse_input_": _is_bool,
    "classes_": _is_vector,
}


# The attributes tfmlp's estimators set on themselves (fitted attributes and
# private training state); ``tests/test_persist.py`` checks these lists
# against the names the estimator classes' code assigns on ``self``.
_FITTED_ATTRIBUTES = frozenset(
    {
        "_best_params",
        "_coefs",
        "_fitted_stack",
        "_intercepts",
        "_keras_weights",
        "_no_improvement_count",
        "_optimizer",
        "_random_state",
        "_stack_seed",
        "best_loss_",
        "best_validation_score_",
        "history_",
        "loss_",
        "loss_curve_",
        "n_iter_",
        "n_layers_",
        "n_outputs_",
        "out_activation_",
        "t_",
        "validation_loss_curve_",
        "validation_scores_",
    }
)
_CLASSIFIER_ATTRIBUTES = frozenset({"_label_binarizer", "classes_", "loss"})


@functools.cache
def _stored_attribute_names(cls) -> frozenset[str]:
    """The tfmlp and scikit-learn attributes a file may set on a ``cls``
    estimator (each with a value of its type), less the parameters, what
    ``save`` never writes and anything the class itself defines (methods,
    properties such as ``coefs_``).

    Parameters
    ----------
    cls : type
        ``MLPClassifier`` or ``MLPRegressor``.

    Returns
    -------
    frozenset of str
        The allowed attribute names.
    """
    names = {*_FITTED_ATTRIBUTES, *_SET_BY_SKLEARN, *_SET_BY_TFMLP_TOOLS}
    if cls is MLPClassifier:
        names |= _CLASSIFIER_ATTRIBUTES
    names -= {*_NOT_STORED, *cls._get_param_names()}
    return frozenset(n for n in names if not _is_class_member(cls, n))


def _is_class_member(cls, name: str) -> bool:
    """Whether ``cls`` defines ``name`` itself (method, property, constant)."""
    missing = object()
    return inspect.getattr_static(cls, name, missing) is not missing


def _check_attribute_name(cls, key) -> None:
    if not _is_attribute_name(key):
        raise _FormatError(f"invalid attribute name {key!r}.")
    if key in _stored_attribute_names(cls):
        return
    if _is_class_member(cls, key):
        why = "it names a method or property of the class"
    elif key in cls._get_param_names():
        why = "it is a parameter"
    elif key.startswith("_"):
        why = f"a fitted {cls.__name__} has no such private attribute"
    else:
        return  # an attribute the user added: plain data, as decoded
    raise _FormatError(f"attribute {key!r} cannot be set ({why}).")


def _check_value(checks: dict, name: str, value, where: str) -> None:
    """Raise if ``checks`` has a type check for ``name`` that ``value`` fails."""
    check = checks.get(name)
    if check is None:
        return
    test, what = check if isinstance(check, tuple) else (check, _describe(check))
    if not test(value):
        raise _FormatError(
            f"{where} must be {what}, not {type(value).__name__} {_short(value)}."
        )


def _describe(check) -> str:
    """What a value passing ``check`` is, in words."""
    words = {
        _is_count: "a non-negative integer",
        _is_real: "a number",
        _is_bool: "a boolean",
        _is_str: "a string",
        _is_vector: "a 1-D array",
    }
    return words.get(check, "a valid value")


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


# ------------------------------------------------------------ reconstruction
def _build(cls, metadata: dict, arrays: list[np.ndarray]):
    dec = _Decoder(arrays)
    params_doc = metadata.get("params")
    attrs_doc = metadata.get("attributes")
    if not isinstance(params_doc, dict) or not isinstance(attrs_doc, dict):
        raise _FormatError("the metadata lacks 'params' / 'attributes' objects.")
    est = cls()
    valid = set(cls._get_param_names())
    params, unsaved = {}, {}
    for key, doc in params_doc.items():
        if key not in valid:
            raise _FormatError(
                f"unknown parameter {key!r} for {cls.__name__} (written by "
                "another tfmlp version?)."
            )
        if isinstance(doc, dict) and set(doc) == {"$unsaved"}:
            if not isinstance(doc["$unsaved"], str):
                raise _FormatError(f"malformed value of parameter {key!r}.")
            unsaved[key] = doc["$unsaved"]
            continue
        params[key] = dec.decode(doc, f"parameter {key!r}")
    est.set_params(**params)
    constants = {k: v for k, v in vars(est).items() if k not in valid}
    for key, doc in attrs_doc.items():
        _check_attribute_name(cls, key)
        if key == "_random_state" and doc == {"$random_state": "random_state"}:
            if not isinstance(est.random_state, np.random.RandomState):
                raise _FormatError("'_random_state' refers to a missing generator.")
            est.__dict__[key] = est.random_state
            continue
        value = dec.decode(doc, f"attribute {key!r}")
        _check_value(_ATTRIBUTE_CHECKS, key, value, f"attribute {key!r}")
        if key in constants and not _same_constant(value, constants[key]):
            raise _FormatError(
                f"attribute {key!r} must be {constants[key]!r}, as every "
                f"{cls.__name__} has it."
            )
        est.__dict__[key] = value
    _link_classes(est)
    _check_fitted_state(est)
    return est, unsaved


def _same_constant(value, constant) -> bool:
    """Whether ``value`` equals an attribute every new estimator has (such
    as the classifier's ``loss``, set by its constructor)."""
    return type(value) is type(constant) and bool(value == constant)


def _is_attribute_name(key) -> bool:
    return isinstance(key, str) and key.isidentifier() and not key.startswith("__")


def _link_classes(est) -> None:
    """``classes_`` is the label binarizer's own array, as after ``fit``."""
    lb = est.__dict__.get("_label_binarizer")
    classes = est.__dict__.get("classes_")
    if (
        isinstance(lb, LabelBinarizer)
        and isinstance(classes, np.ndarray)
        and isinstance(getattr(lb, "classes_", None), np.ndarray)
        and lb.classes_.dtype == classes.dtype
        and np.array_equal(lb.classes_, classes)
    ):
        lb.classes_ = classes


def _check_fitted_state(est) -> None:
    """Reject fitted state that could not have come from training."""
    d = est.__dict__
    if "_coefs" not in d and "_intercepts" not in d:
        return
    coefs, intercepts = d.get("_coefs"), d.get("_intercepts")
    if not (
        isinstance(coefs, list)
        and isinstance(intercepts, list)
        and len(coefs) == len(intercepts) >= 1
        and all(_float_array(c, 2) for c in coefs)
        and all(_float_array(b, 1) for b in intercepts)
        and all(c.shape[1] == b.shape[0] for c, b in zip(coefs, intercepts))
    ):
        raise _FormatError("the weights (coefs_ / intercepts_) are malformed.")
    if len({a.dtype for a in coefs + intercepts}) != 1 or coefs[0].dtype not in (
        np.float32,
        np.float64,
    ):
        raise _FormatError("the weights must all be float32 or all float64.")
    custom = d.get("_keras_weights") is not None
    if not custom and any(
        a.shape[1] != b.shape[0] for a, b in zip(coefs[:-1], coefs[1:])
    ):
        raise _FormatError("the weight matrices do not chain (shape mismatch).")
    if custom and not (
        isinstance(d["_keras_weights"], list)
        and all(isinstance(w, np.ndarray) for w in d["_keras_weights"])
    ):
        raise _FormatError("the Keras weights are malformed.")
    if d.get("out_activation_") not in OUTPUT_ACTIVATIONS:
        raise _FormatError(f"unknown output activation {d.get('out_activation_')!r}.")
    if not custom and d.get("n_layers_", len(coefs) + 1) != len(coefs) + 1:
        raise _FormatError(
            f"n_layers_ is {d['n_layers_']}, but the {len(coefs)} weight matrices "
            f"make {len(coefs) + 1} layers."
        )
    names = d.get("feature_names_in_")
    if names is not None and len(names) != d.get("n_features_in_"):
        raise _FormatError(
            f"feature_names_in_ names {len(names)} features, but n_features_in_ "
            f"is {d.get('n_features_in_')}."
        )
    if d.get("_stack_seed", 0) >= 2**31:  # fit draws it below 2**31 - 1
        raise _FormatError("'_stack_seed' is out of range.")
    if d.get("n_outputs_") != coefs[-1].shape[1] or (
        not custom and d.get("n_features_in_") != coefs[0].shape[0]
    ):
        raise _FormatError("n_outputs_ / n_features_in_ do not match the weights.")
    if isinstance(est, MLPClassifier):
        lb = d.get("_label_binarizer")
        if not isinstance(lb, LabelBinarizer) or not isinstance(
            d.get("classes_"), np.ndarray
        ):
            raise _FormatError("a fitted classifier needs classes_ and its binarizer.")
        n_classes = len(d["classes_"])
        multilabel = str(lb.y_type_).startswith("multilabel")
        if multilabel:  # one output per column the binarizer was fitted on
            # (partial_fit's classes= may name more labels, as scikit-learn's)
            n_labels = len(getattr(lb, "classes_", ()))
            if d["n_outputs_"] != n_labels:
                raise _FormatError(
                    f"the label binarizer's {n_labels} labels do not match the "
                    f"network's {d['n_outputs_']} output(s)."
                )
        elif d["n_outputs_"] != (n_classes if n_classes > 2 else 1):
            raise _FormatError(
                f"{n_classes} classes_ do not match the network's "
                f"{d['n_outputs_']} output(s)."
            )
        elif not np.array_equal(lb.classes_, d["classes_"]):  # (dtypes may differ)
            raise _FormatError("the label binarizer's classes differ from classes_.")
        kind = "binary" if n_classes <= 2 else "multiclass"
        if lb.y_type_ != ("multilabel-indicator" if multilabel else kind):
            raise _FormatError(
                f"the label binarizer's y_type_ {lb.y_type_!r} does not match "
                f"{n_classes} classes_."
            )
    optimizer = d.get("_optimizer")
    if optimizer is not None and not custom:  # (custom: one slot per variable)
        if not optimizer.fits([w.shape for w in coefs + intercepts]):
            raise _FormatError("the optimizer's slots do not match the weights.")


def _is_key(key) -> bool:
    """A key ``save`` writes in a ``$dict``: a scalar or a tuple of keys
    (hashable values the format holds)."""
    if isinstance(key, tuple):
        return all(_is_key(k) for k in key)
    return isinstance(key, (str, int, float, bool, np.generic)) or key is None


_STACK_FIELDS = {
    "sizes": (
        lambda v: isinstance(v, list) and all(_is_count(n) and n > 0 for n in v),
        "a list of positive integers",
    ),
    "activation": (lambda v: v in KERAS_ACTIVATIONS, "an activation name"),
    "dropout": (
        lambda v: v is None or (_is_real(v) and 0 <= v < 1),
        "null or a rate in [0, 1)",
    ),
    "batch_normalization": (_is_bool, "a boolean"),
    "seed": (_is_count, "a non-negative integer"),
}


def _float_array(a, ndim: int) -> bool:
    return isinstance(a, np.ndarray) and a.ndim == ndim and a.dtype.kind == "f"


class _Decoder:
    """Tagged JSON -> values; only the types the format defines."""

    def __init__(self, arrays: list[np.ndarray]):
        self.arrays = arrays

    def decode(self, doc, where: str, depth: int = 0):
        if depth > _MAX_DEPTH:
            raise _FormatError(f"{where} is nested too deeply.")
        sub = depth + 1
        if doc is None or isinstance(doc, (bool, int, str)):
            return doc
        if isinstance(doc, float):
            return doc
        if isinstance(doc, list):
            return [self.decode(v, where, sub) for v in doc]
        if not isinstance(doc, dict):
            raise _FormatError(f"{where} has an unsupported JSON value.")
        tags = [k for k in doc if k.startswith("$")]
        if not tags:
            return {k: self.decode(v, where, sub) for k, v in doc.items()}
        if len(doc) != 1:
            raise _FormatError(f"{where} has a malformed tagged value {sorted(doc)}.")
        tag, body = tags[0], doc[tags[0]]
        handler = {
            "$float": self._float,
            "$tuple": self._tuple,
            "$dict": self._dict,
            "$scalar": self._scalar,
            "$array": self._array,
            "$strarray": self._strarray,
            "$objarray": self._objarray,
            "$random_state": self._random_state,
            "$label_binarizer": self._label_binarizer,
            "$optimizer": self._optimizer,
            "$standard_stack": self._standard_stack,
        }.get(tag)
        if handler is None:
            raise _FormatError(f"{where} has an unknown value type {tag!r}.")
        try:
            return handler(body, where, sub)
        except _FormatError:
            raise
        except Exception as exc:
            raise _FormatError(
                f"{where} has a malformed {tag} value ({exc})."
            ) from None

    def _float(self, body, where, depth):
        values = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}
        if body not in values:
            raise ValueError(f"{body!r}")
        return values[body]

    def _tuple(self, body, where, depth):
        _expect(isinstance(body, list), "a list")
        return tuple(self.decode(v, where, depth) for v in body)

    def _standard_stack(self, body, where, depth):
        _expect(isinstance(body, dict), "an object")
        fields = {k: self.decode(v, where, depth) for k, v in body.items()}
        _expect(set(fields) == set(_STACK_FIELDS), f"the fields {_STACK_FIELDS}")
        for name, (check, what) in _STACK_FIELDS.items():
            _expect(check(fields[name]), f"{name} {what}")
        return StandardStack(**fields)

    def _dict(self, body, where, depth):
        _expect(isinstance(body, list), "a list of pairs")
        out = {}
        for pair in body:
            _expect(isinstance(pair, list) and len(pair) == 2, "key-value pairs")
            key = self.decode(pair[0], where, depth)
            _expect(_is_key(key), "scalar keys or tuples of them")
            out[key] = self.decode(pair[1], where, depth)
        return out

    def _scalar(self, body, where, depth):
        _expect(isinstance(body, list) and len(body) == 2, "[dtype, value]")
        name, value = body
        if name == "str":
            _expect(isinstance(value, str), "a string")
            return np.str_(value)
        _expect(name in _NUMERIC_DTYPES, "a numeric dtype")
        if isinstance(value, dict):
            value = self._float(value.get("$float"), where, depth)
        _expect(isinstance(value, (bool, int, float)), "a number")
        return _NUMERIC_DTYPES[name].type(value)

    def _array(self, body, where, depth):
        _expect(type(body) is int and 0 <= body < len(self.arrays), "an array index")
        return self.arrays[body]

    def _shape(self, shape) -> tuple[int, ...]:
        _expect(
            isinstance(shape, list)
            and len(shape) <= 32
            and all(type(n) is int and n >= 0 for n in shape),
            "a shape",
        )
        return tuple(shape)

    def _strarray(self, body, where, depth):
        _expect(isinstance(body, list) and len(body) == 3, "[width, shape, items]")
        width, shape, items = body
        shape = self._shape(shape)
        _expect(type(width) is int and 1 <= width, "a string width")
        _expect(
            isinstance(items, list)
            and len(items) == math.prod(shape)
            and all(isinstance(s, str) and len(s) <= width for s in items),
            "strings matching the shape",
        )
        _expect(len(items) * width * 4 <= _MAX_TEXT_BYTES, "a reasonable size")
        return np.array(items, dtype=f"U{width}").reshape(shape)

    def _objarray(self, body, where, depth):
        _expect(isinstance(body, list) and len(body) == 2, "[shape, items]")
        shape, items = body
        shape = self._shape(shape)
        _expect(
            isinstance(items, list) and len(items) == math.prod(shape),
            "items matching the shape",
        )
        out = np.empty(len(items), dtype=object)
        for i, item in enumerate(items):
            value = self.decode(item, where, depth)
            _expect(
                value is None or isinstance(value, (str, int, float, np.generic)),
                "scalar items",
            )
            out[i] = value
        return out.reshape(shape)

    def _random_state(self, body, where, depth):
        _expect(
            isinstance(body, dict)
            and set(body) == {"keys", "pos", "has_gauss", "cached_gaussian"},
            "a generator state",
        )
        keys = self.decode(body["keys"], where, depth)
        _expect(
            isinstance(keys, np.ndarray)
            and keys.shape == (624,)
            and keys.dtype == np.uint32,
            "624 uint32 keys",
        )
        pos, has_gauss = body["pos"], body["has_gauss"]
        _expect(type(pos) is int and 0 <= pos <= 624, "a position")
        _expect(has_gauss in (0, 1), "a has_gauss flag")
        cached = self.decode(body["cached_gaussian"], where, depth)
        _expect(isinstance(cached, float), "a cached gaussian")
        rs = np.random.RandomState()
        rs.set_state(("MT19937", keys, pos, has_gauss, cached))
        return rs

    def _label_binarizer(self, body, where, depth):
        _expect(isinstance(body, dict), "binarizer fields")
        lb = LabelBinarizer()
        for key, doc in body.items():
            _expect(
                key in _binarizer_fields(), f"fields of {sorted(_binarizer_fields())}"
            )
            value = self.decode(doc, where, depth)
            _check_value(_BINARIZER_CHECKS, key, value, f"{where}.{key}")
            setattr(lb, key, value)
        return lb

    def _optimizer(self, body, where, depth):
        _expect(isinstance(body, list) and len(body) == 2, "[class, fields]")
        kind, fields = body
        _expect(kind in _OPTIMIZERS, "SGD or Adam")
        scalars = _OPTIMIZER_FIELDS[kind]
        required = {*scalars, *_OPTIMIZER_SLOT_FIELDS}
        _expect(
            isinstance(fields, dict)
            and required <= set(fields) <= required | set(_OPTIMIZER_OPTIONAL),
            f"the fields {sorted(required)} (and optionally {_OPTIMIZER_OPTIONAL})",
        )
        state = {k: self.decode(v, where, depth) for k, v in fields.items()}
        for key in scalars:
            _check_value(scalars, key, state[key], f"{where}.{key}")
        _expect(
            state["_slot_vars"] is None and state["_strategy"] is None,
            "no slot variables",
        )
        slots = state["_slot_arrays"]
        _expect(
            isinstance(slots, list)
            and all(isinstance(s, np.ndarray) and s.dtype.kind == "f" for s in slots),
            "float slot arrays",
        )
        scale = state.get("_loss_scale")
        _expect(
            scale is None
            or (
                isinstance(scale, np.ndarray)
                and scale.shape == (2,)
                and scale.dtype == np.float32
                and bool(np.isfinite(scale).all())
                and scale[0] >= 1
                and scale[1] >= 0
            ),
            "a loss scale [scale >= 1, steps >= 0] in float32",
        )
        opt = _OPTIMIZERS[kind].__new__(_OPTIMIZERS[kind])
        opt.__setstate__(state)
        return opt


@functools.cache
def _binarizer_fields() -> frozenset[str]:
    """The fields of a fitted ``LabelBinarizer`` (its parameters included)."""
    return frozenset(vars(LabelBinarizer().fit([0, 1])))


def _expect(condition: bool, what: str) -> None:
    if not condition:
        raise ValueError(f"expected {what}")
