"""tfmlp.save / tfmlp.load (the native format), and pickle / joblib / deepcopy /
clone / GridSearchCV(n_jobs=2) of fitted and unfitted estimators."""

import ast
import copy
import inspect
import io
import json
import os
import pickle
import subprocess
import sys
import textwrap
import warnings
import zipfile

import joblib
import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import make_multilabel_classification
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV
from sklearn.preprocessing import LabelBinarizer

import tfmlp
from tfmlp import MLPClassifier, MLPRegressor
from tfmlp import _persist as persist
from tfmlp._optimizers import _Optimizer

RNG = np.random.RandomState(0)
X = RNG.randn(60, 4)
Y_BINARY = (X[:, 0] + X[:, 1] > 0).astype(int)
Y_WORDS = np.array(["cat", "dog", "emu"], dtype=object)[
    np.digitize(X[:, 0] + 0.5 * X[:, 2], [-0.5, 0.5])
]
Y_MULTILABEL = make_multilabel_classification(
    n_samples=60, n_features=4, n_classes=3, random_state=0
)[1]
Y_REG = np.c_[X @ RNG.randn(4), X[:, 1] ** 2]


def test_a_refit_of_other_layers_saves_and_continues(tmp_path):
    # an lbfgs fit of new layer sizes after an adam fit: the adam fit's
    # optimizer (slots of the old shapes) is not kept, so the file loads and
    # partial_fit starts a new optimizer
    est = _quiet(MLPClassifier((5,), max_iter=3, random_state=0).fit, X, Y_BINARY)
    est.set_params(hidden_layer_sizes=(7,), solver="lbfgs")
    _quiet(est.fit, X, Y_BINARY)
    tfmlp.save(est, tmp_path / "m.tfmlp")
    loaded = tfmlp.load(tmp_path / "m.tfmlp")
    for m in (est, loaded):
        m.set_params(solver="adam").partial_fit(X, Y_BINARY)
    np.testing.assert_array_equal(loaded.coefs_[0], est.coefs_[0])
    assert est.coefs_[0].shape == (4, 7)


@pytest.mark.parametrize("first", [np.float64, np.float32])
def test_an_lbfgs_refit_keeps_an_optimizer_that_fits_as_sklearn_does(first):
    from sklearn.neural_network import MLPClassifier as SkMLP

    kw = dict(hidden_layer_sizes=(5,), max_iter=3, random_state=0)
    ests = [MLPClassifier(**kw), SkMLP(**kw)]
    for est in ests:  # adam, then lbfgs (a new network of the same shapes),
        # then adam's partial_fit continues the first fit's optimizer (a
        # float32 fit's moments upcast for the float64 network)
        _quiet(est.fit, X.astype(first), Y_BINARY)
        _quiet(est.set_params(solver="lbfgs").fit, X, Y_BINARY)
        est.set_params(solver="adam").partial_fit(X, Y_BINARY)
    assert ests[0]._optimizer.t == ests[1]._optimizer.t
    for a, b in zip(
        ests[0].coefs_ + ests[0].intercepts_, ests[1].coefs_ + ests[1].intercepts_
    ):
        # (float32 moments: scikit-learn's float32 rounding, not to 1e-10)
        tol = 1e-10 if first is np.float64 else 1e-6
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol / 100)


def stack(x):
    """A module-level hidden_stack (importable in other processes)."""
    import keras

    return keras.layers.Dense(5, activation="tanh", name="custom_hidden")(x)


def _quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return fn(*args, **kwargs)


# name -> (estimator, X, y, partial_fit kwargs)
def _cases():
    small = dict(hidden_layer_sizes=(5,), max_iter=6, batch_size=16)
    return {
        "binary_adam": (
            MLPClassifier(random_state=0, **small),
            X,
            Y_BINARY,
            {},
        ),
        "words_sgd_early_stopping_f32": (
            MLPClassifier(
                solver="sgd",
                learning_rate="adaptive",
                early_stopping=True,
                random_state=np.random.RandomState(7),
                **small,
            ),
            X.astype(np.float32),
            Y_WORDS,
            {"validation_data": (X[:20].astype(np.float32), Y_WORDS[:20])},
        ),
        "multilabel_dropout_bn": (
            MLPClassifier(
                dropout=0.2, batch_normalization=True, random_state=1, **small
            ),
            X,
            Y_MULTILABEL,
            {},
        ),
        "class_weight_invscaling": (
            MLPClassifier(
                solver="sgd",
                learning_rate="invscaling",
                class_weight={"cat": 2.0, "dog": 1.0, "emu": 0.5},
                random_state=2,
                **small,
            ),
            X,
            Y_WORDS.astype(str),
            {},
        ),
        "regressor_lbfgs": (
            MLPRegressor(solver="lbfgs", random_state=0, **small),
            X,
            Y_REG,
            None,
        ),
        "regressor_adam": (
            MLPRegressor(random_state=3, **small),
            X,
            Y_REG[:, 0],
            {},
        ),
        "mixed_float16_adam": (
            MLPClassifier(compute_dtype="mixed_float16", random_state=4, **small),
            X,
            Y_BINARY,
            {},
        ),
    }


CASES = list(_cases())


@pytest.fixture(scope="module")
def fitted():
    out = {}
    for name, (est, X_, y, pf) in _cases().items():
        out[name] = (_quiet(est.fit, X_, y), X_, y, pf)
    return out


# ------------------------------------------------------------ comparisons
def _same(a, b, where="") -> None:
    """Deep equality: same types, bit-identical arrays (NaN equal to NaN)."""
    assert type(a) is type(b), f"{where}: {type(a)} != {type(b)}"
    if isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.shape == b.shape, where
        if a.dtype.kind == "f":
            assert np.array_equal(a, b, equal_nan=True), where
        else:
            assert np.array_equal(a, b), where
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            _same(x, y, f"{where}[{i}]")
    elif isinstance(a, dict):
        assert list(a) == list(b), where
        for k in a:
            _same(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, np.random.RandomState):
        _same(list(a.get_state()), list(b.get_state()), f"{where}<rng>")
    elif isinstance(a, (LabelBinarizer, _Optimizer)):
        sa, sb = vars(a).copy(), vars(b).copy()
        if hasattr(a, "__getstate__") and not isinstance(a, LabelBinarizer):
            sa, sb = a.__getstate__(), b.__getstate__()
        _same(sa, sb, f"{where}<{type(a).__name__}>")
    elif isinstance(a, (float, np.floating)) and np.isnan(a):
        assert np.isnan(b), where
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def _state(est) -> dict:
    state = est.__getstate__()
    state.pop("_net", None)
    return state


def _outputs(est, X_):
    if hasattr(est, "predict_proba"):
        return est.predict(X_), est.predict_proba(X_)
    return (est.predict(X_),)


def _continue(est, X_, y, pf):
    """partial_fit once, then a warm-started fit of 2 epochs; the weights."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.partial_fit(X_, y, **pf)
        after_partial = [w.copy() for w in est.coefs_ + est.intercepts_]
        est.set_params(warm_start=True, max_iter=2).fit(X_, y)
    return after_partial + est.coefs_ + est.intercepts_ + [np.array(est.loss_curve_)]


def _save(est, path, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        tfmlp.save(est, path, **kw)


# ------------------------------------------------------------- round trip
@pytest.mark.parametrize("name", CASES)
def test_round_trip_is_exact(fitted, name, tmp_path):
    est, X_, y, pf = fitted[name]
    path = tmp_path / "model.tfmlp"
    tfmlp.save(est, path)
    loaded = tfmlp.load(path)
    assert type(loaded) is type(est)
    for a, b in zip(_outputs(est, X_), _outputs(loaded, X_)):
        _same(a, b, "outputs")  # bit-identical
    _same(_state(est), _state(loaded), "state")  # params + every attribute
    params, params_loaded = est.get_params(), loaded.get_params()
    _same(params, params_loaded, "get_params")
    if pf is None:
        return
    # continuing to train gives exactly the original's numbers
    original = copy.deepcopy(est)
    _same(_continue(original, X_, y, pf), _continue(loaded, X_, y, pf), "continued")


def test_attribute_values_survive(tmp_path):
    est = _quiet(MLPClassifier((3,), max_iter=3, random_state=0).fit, X, Y_WORDS)
    est.validation_scores_ = [0.5, float("nan"), np.float32("nan"), float("-inf")]
    est.best_validation_score_ = np.float64("nan")
    est.feature_names_in_ = np.array(["a", 1, None, np.float64(2.5)], dtype=object)
    tfmlp.save(est, tmp_path / "m")
    loaded = tfmlp.load(tmp_path / "m")
    _same(_state(est), _state(loaded))
    names = loaded.feature_names_in_
    assert names.dtype == object
    assert [type(v) for v in names] == [type(v) for v in est.feature_names_in_]
    assert loaded.classes_ is loaded._label_binarizer.classes_
    # object arrays are stored element by element in the JSON, never pickled
    with zipfile.ZipFile(tmp_path / "m") as z:
        meta = json.loads(z.read("tfmlp.json"))
    assert meta["attributes"]["feature_names_in_"]["$objarray"][0] == [4]


def test_encoder_round_trips_tagged_values():
    """Values the tags exist for (non-string keys, "$" keys, NumPy scalars,
    tuples) decode to what was encoded."""
    value = {1: (np.int8(3), "x"), "$odd": [None, True, np.str_("s")]}
    encoder = persist._Encoder()
    doc = json.loads(json.dumps(encoder.encode(value, "value")))
    _same(persist._Decoder(encoder.arrays).decode(doc, "value"), value)


def _names_stored_on_self(klass) -> set:
    """Attribute names the methods of ``klass`` assign on ``self``
    (``self.NAME = ...``, ``self.__dict__["NAME"] = ...`` or
    ``self.__dict__.setdefault("NAME", ...)``), read from its source."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
    names = set()
    for node in ast.walk(tree):
        target = None
        if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            target = node.attr if _is_self(node.value) else None
        elif isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Store):
            target = _constant(node.slice) if _is_self_dict(node.value) else None
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "setdefault"
            and _is_self_dict(node.func.value)
        ):
            target = _constant(node.args[0])
        if target is not None:
            names.add(target)
    return names


def _is_self(node) -> bool:
    return isinstance(node, ast.Name) and node.id == "self"


def _is_self_dict(node) -> bool:
    return (
        isinstance(node, ast.Attribute)
        and node.attr == "__dict__"
        and _is_self(node.value)
    )


def _constant(node):
    return node.value if isinstance(node, ast.Constant) else None


@pytest.mark.parametrize("cls", [MLPClassifier, MLPRegressor])
def test_allowed_attributes_are_what_the_code_sets(cls):
    """The format's list of attributes equals the names tfmlp's estimator
    classes assign on ``self`` (less parameters, members and what is never
    stored), so a new attribute cannot be forgotten."""
    derived = set()
    for klass in cls.__mro__:
        if klass.__module__.partition(".")[0] == "tfmlp":
            derived |= _names_stored_on_self(klass)
    derived -= {*persist._NOT_STORED, *cls._get_param_names()}
    derived = {n for n in derived if not persist._is_class_member(cls, n)}
    others = {*persist._SET_BY_SKLEARN, *persist._SET_BY_TFMLP_TOOLS}
    assert persist._stored_attribute_names(cls) - others == derived - others


def test_allowed_attributes_cover_every_fit(fitted):
    """Every attribute a fit sets (and the CLI's record) is loadable; methods,
    properties, parameters and TensorFlow objects are not."""
    from tfmlp._cli import _PRE_ATTR

    for cls in (MLPClassifier, MLPRegressor):
        allowed = persist._stored_attribute_names(cls)
        assert {"t_", "loss_curve_", "validation_loss_curve_", "_optimizer"} <= allowed
        assert {"n_features_in_", "feature_names_in_", _PRE_ATTR} <= allowed
        assert not allowed & {"predict", "coefs_", "model_", "_net", "_fitting"}
        assert not allowed & set(cls._get_param_names())
    for name, (est, *_) in fitted.items():
        allowed = persist._stored_attribute_names(type(est))
        assert set(_state(est)) - set(est.get_params()) <= allowed, name


def test_attributes_the_user_added(tmp_path):
    """Public attributes a user added are kept (plain data); private ones
    tfmlp does not have are refused by save as load would refuse them."""
    est = _quiet(MLPClassifier((3,), max_iter=3, random_state=0).fit, X, Y_WORDS)
    est.threshold_ = 0.7
    est.notes = {"by": "me", "scores": [1, 2.5]}
    tfmlp.save(est, tmp_path / "m")
    back = tfmlp.load(tmp_path / "m")
    assert back.threshold_ == 0.7 and back.notes == {"by": "me", "scores": [1, 2.5]}
    est._misc = 1
    with pytest.raises(ValueError, match="Cannot save attribute '_misc'"):
        tfmlp.save(est, tmp_path / "n")
    assert not (tmp_path / "n").exists()


def test_user_dicts_with_tuple_keys_round_trip(tmp_path):
    est = _quiet(MLPClassifier((3,), max_iter=3, random_state=0).fit, X, Y_WORDS)
    est.pair_counts = {("cat", "dog"): 3, (1, (2, None)): [0.5]}
    tfmlp.save(est, tmp_path / "m")
    assert tfmlp.load(tmp_path / "m").pair_counts == est.pair_counts


@pytest.mark.parametrize(
    "change",
    [
        {"activation": "tanh"},
        {"hidden_layer_sizes": (3,)},
        {"batch_normalization": False, "dropout": 0.3},
    ],
)
def test_stack_changed_after_fit_is_the_one_loaded(tmp_path, change):
    """set_params after a dropout / batch-normalization fit does not change
    the network predict uses; a saved and loaded copy predicts the same, and
    continuing to train with the changed parameters is refused as before."""
    est = MLPClassifier(
        hidden_layer_sizes=(6,), batch_normalization=True, max_iter=5, random_state=0
    )
    _quiet(est.fit, X, Y_WORDS)
    tfmlp.save(est, tmp_path / "fitted")
    est.set_params(**change)
    tfmlp.save(est, tmp_path / "m")
    loaded = tfmlp.load(tmp_path / "m")
    _same(loaded.predict_proba(X), est.predict_proba(X))
    _same(pickle.loads(pickle.dumps(loaded)).predict_proba(X), est.predict_proba(X))
    # load(path, **params) is load(path).set_params(**params)
    given = tfmlp.load(tmp_path / "fitted", **change)
    _same(given.predict_proba(X), est.predict_proba(X))
    for model in (est, loaded, given):
        with pytest.raises(ValueError):
            model.partial_fit(X, Y_WORDS)


def test_load_with_another_stack_is_a_clear_error(tmp_path):
    import keras

    est = _quiet(
        MLPClassifier(hidden_stack=stack, max_iter=3, random_state=0).fit, X, Y_BINARY
    )
    _save(est, tmp_path / "m")
    wider = lambda x: keras.layers.Dense(7, activation="tanh")(x)  # noqa: E731
    loaded = tfmlp.load(tmp_path / "m", hidden_stack=wider)
    with pytest.raises(ValueError, match="do not fit the hidden stack"):
        loaded.predict(X)


def test_feature_names_and_label_dtypes(tmp_path):
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(X, columns=["a", "b", "c", "d"])
    for y in (Y_WORDS.astype(str), Y_BINARY.astype(bool), Y_BINARY * 2.0):
        est = _quiet(MLPClassifier((3,), max_iter=2, random_state=0).fit, frame, y)
        tfmlp.save(est, tmp_path / "m")
        loaded = tfmlp.load(tmp_path / "m")
        _same(loaded.feature_names_in_, est.feature_names_in_)
        _same(loaded.classes_, est.classes_)
        _same(loaded.predict(frame), est.predict(frame))


def test_unfitted_round_trip(tmp_path):
    est = MLPRegressor(hidden_layer_sizes=[7, 3], random_state=np.random.RandomState(5))
    tfmlp.save(est, tmp_path / "m")
    loaded = tfmlp.load(tmp_path / "m")
    _same(_state(est), _state(loaded))
    assert not hasattr(loaded, "coefs_")
    a = _quiet(est.fit, X, Y_REG).predict(X)
    b = _quiet(loaded.fit, X, Y_REG).predict(X)
    _same(a, b)


def test_code_parameters_are_not_stored(tmp_path):
    import keras

    est = MLPClassifier(
        hidden_stack=stack,
        callbacks=[keras.callbacks.History()],
        max_iter=3,
        random_state=0,
    )
    _quiet(est.fit, X, Y_BINARY)
    with pytest.warns(UserWarning) as record:
        tfmlp.save(est, tmp_path / "m")
    messages = " ".join(str(w.message) for w in record)
    assert "hidden_stack=" in messages and "test_persist.stack" in messages
    assert "callbacks=[History]" in messages
    with pytest.warns(UserWarning, match="pass it to tfmlp.load") as record:
        bare = tfmlp.load(tmp_path / "m")
    assert record[0].filename == __file__  # the line that called load
    assert bare.hidden_stack is None and bare.callbacks is None
    loaded = tfmlp.load(tmp_path / "m", hidden_stack=stack)
    _same(loaded.predict_proba(X), est.predict_proba(X))


def test_save_rejects_what_it_cannot_store(tmp_path):
    with pytest.raises(TypeError, match="MLPClassifier"):
        tfmlp.save(object(), tmp_path / "m")
    est = MLPClassifier()
    est.extra_ = object()
    with pytest.raises(ValueError, match="attribute 'extra_'"):
        tfmlp.save(est, tmp_path / "m")
    assert not os.listdir(tmp_path)


def test_file_is_deterministic(fitted, tmp_path):
    est = fitted["binary_adam"][0]
    tfmlp.save(est, tmp_path / "a")
    tfmlp.save(est, tmp_path / "b")
    assert (tmp_path / "a").read_bytes() == (tmp_path / "b").read_bytes()


@pytest.mark.slow
def test_new_process(fitted, good_file, tmp_path):
    """Load in a fresh interpreter: same predictions, same continued training;
    and the hostile files are refused there too, without running anything."""
    marker = tmp_path / "MARKER"
    hostile = [str(p) for _, p in _hostile_files(good_file, tmp_path, marker)]
    names = ["binary_adam", "words_sgd_early_stopping_f32", "multilabel_dropout_bn"]
    expected = {}
    for name in names:
        est, X_, y, pf = fitted[name]
        tfmlp.save(est, tmp_path / f"{name}.tfmlp")
        outputs = _outputs(est, X_)
        expected[name] = (outputs, _continue(copy.deepcopy(est), X_, y, pf))
        with open(tmp_path / f"{name}.pkl", "wb") as f:  # test data only
            pickle.dump((X_, y, pf), f)
    script = textwrap.dedent(
        f"""
        import pickle, sys, warnings
        sys.path.insert(0, {os.path.dirname(__file__)!r})
        import tfmlp
        from test_persist import _continue, _outputs
        out = {{}}
        for name in {names!r}:
            est = tfmlp.load({str(tmp_path)!r} + f"/{{name}}.tfmlp")
            with open({str(tmp_path)!r} + f"/{{name}}.pkl", "rb") as f:
                X_, y, pf = pickle.load(f)
            out[name] = (_outputs(est, X_), _continue(est, X_, y, pf))
        for path in {hostile!r}:
            try:
                tfmlp.load(path)
            except ValueError:
                pass
            else:
                raise SystemExit("loaded " + path)
        sys.stdout.buffer.write(pickle.dumps(out))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, timeout=180
    )
    assert result.returncode == 0, result.stderr.decode()[-3000:]
    got = pickle.loads(result.stdout)
    for name in names:
        _same(got[name], expected[name], name)
    assert not marker.exists()


# ------------------------------------------------------------- atomicity
class _DiskFull(OSError):
    pass


@pytest.mark.parametrize("error", [_DiskFull(28, "No space left"), KeyboardInterrupt])
def test_failed_save_keeps_the_old_file(fitted, tmp_path, monkeypatch, error):
    path = tmp_path / "model.tfmlp"
    est = fitted["binary_adam"][0]
    tfmlp.save(est, path)
    good = path.read_bytes()
    real = persist._write_archive

    def failing(fileobj, members):
        real(fileobj, members[:1])  # part of the data reaches the disk
        fileobj.flush()
        raise error

    monkeypatch.setattr(persist, "_write_archive", failing)
    other = fitted["regressor_adam"][0]
    with pytest.raises(type(error) if isinstance(error, OSError) else error):
        tfmlp.save(other, path)
    assert path.read_bytes() == good
    assert os.listdir(tmp_path) == ["model.tfmlp"]  # no temporary file left
    monkeypatch.undo()
    _same(tfmlp.load(path).predict_proba(X), est.predict_proba(X))


def test_save_replaces_and_keeps_permissions(fitted, tmp_path):
    umask = os.umask(0o022)
    os.umask(umask)
    tfmlp.save(MLPClassifier(), tmp_path / "new.tfmlp")
    assert os.stat(tmp_path / "new.tfmlp").st_mode & 0o777 == 0o666 & ~umask
    path = tmp_path / "model.tfmlp"
    path.write_bytes(b"old")
    os.chmod(path, 0o640)
    tfmlp.save(fitted["binary_adam"][0], path)
    assert os.stat(path).st_mode & 0o777 == 0o640
    assert zipfile.is_zipfile(path)


# ------------------------------------------------- damaged / hostile files
def _members(path) -> list[tuple[str, bytes]]:
    with zipfile.ZipFile(path) as z:
        return [(i.filename, z.read(i)) for i in z.infolist()]


def _write(path, members, *, fix_checksum=True, compression=zipfile.ZIP_STORED):
    members = [(n, d) for n, d in members if n != persist.CHECKSUM]
    if fix_checksum:
        members.append((persist.CHECKSUM, persist._checksum(members).encode("ascii")))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # duplicate names
        with zipfile.ZipFile(path, "w", compression) as z:
            for name, data in members:
                z.writestr(name, data)


def _edit_json(members, edit):
    meta = json.loads(members[0][1])
    edit(meta)
    return [(members[0][0], json.dumps(meta).encode())] + members[1:]


class _Marker:
    """Unpickling this creates the marker file: proof that code ran."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def _npy(array_bytes_or_array) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array_bytes_or_array, allow_pickle=True)
    return buf.getvalue()


@pytest.fixture()
def good_file(fitted, tmp_path):
    path = tmp_path / "good.tfmlp"
    tfmlp.save(fitted["words_sgd_early_stopping_f32"][0], path)
    return path


def _hostile_files(good, tmp_path, marker):
    """(description, file) pairs, each of which load must refuse."""
    members = _members(good)
    payload = pickle.dumps(_Marker(str(marker)))
    obj_array = np.empty(1, dtype=object)
    obj_array[0] = _Marker(str(marker))
    files = []

    def add(what, data=None, **kw):
        path = tmp_path / f"hostile_{len(files)}"
        if isinstance(data, bytes):
            path.write_bytes(data)
        else:
            _write(path, data, **kw)
        files.append((what, path))

    add("raw pickle", payload)
    add("empty file", b"")
    add("text file", b"hello, world\n" * 20)
    add("pickle member", members + [("model.pkl", payload)])
    add("pickle as metadata", [("tfmlp.json", payload)] + members[1:])
    add(
        "object array member",
        [members[0], ("arrays/0.npy", _npy(obj_array))] + members[2:],
    )
    add("traversal", members + [("../../evil.tfmlp", b"x")])
    add("absolute", members + [("/etc/evil", b"x")])
    add("extra member", members + [("arrays/999.npy", members[1][1])])
    add("missing member", [m for m in members if m[0] != "arrays/1.npy"])
    add("compressed", members, compression=zipfile.ZIP_DEFLATED)
    add("duplicate", members + [members[1]])
    wrong = members[:-1] + [(persist.CHECKSUM, b"0" * 64)]
    path = tmp_path / "hostile_checksum"
    with zipfile.ZipFile(path, "w") as z:
        for name, data in wrong:
            z.writestr(name, data)
    files.append(("wrong checksum", path))
    for what, edit in {
        "os.system class": lambda m: m.update(estimator="os.system"),
        "class path": lambda m: m.update(estimator="sklearn.svm.SVC"),
        "other format": lambda m: m.update(format="pickle"),
        "version 2": lambda m: m.update(format_version=2),
        "version as bool": lambda m: m.update(format_version=True),
        "unknown param": lambda m: m["params"].update(evil="x"),
        "bad param value": lambda m: m["params"].update(activation="os.system"),
        "unknown tag": lambda m: m["attributes"].update(
            n_iter_={"$pickle": payload.hex()}
        ),
        "optimizer class": lambda m: m["attributes"]["_optimizer"][
            "$optimizer"
        ].__setitem__(0, "os.system"),
        "dunder attribute": lambda m: m["attributes"].update(__class__="x"),
        "bad weights": lambda m: m["attributes"].update(_coefs=[1, 2]),
        "deep value": lambda m: m["attributes"].update(
            loss_curve_=json.loads("[" * 200 + "]" * 200)
        ),
        "huge strarray": lambda m: m["attributes"].update(
            classes_={"$strarray": [10**9, [2], ["a", "b"]]}
        ),
        **_shadowing_edits(),
    }.items():
        add(what, _edit_json(members, edit))
    text = members[0][1].replace(
        b'"attributes": {',
        b'"attributes": {"deep_": ' + b"[" * 100000 + b"]" * 100000 + b", ",
        1,
    )
    add("deep JSON", [(members[0][0], text)] + members[1:])
    # an .npy header declaring far more data than the member holds
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "<f8", "fortran_order": False, "shape": (10**12,)}
    )
    add(
        "huge npy shape",
        [members[0], ("arrays/0.npy", header.getvalue() + b"\0" * 8)] + members[2:],
    )
    # a central directory declaring a huge member size
    blob = bytearray(good.read_bytes())
    central = blob.find(b"PK\x01\x02")
    blob[central + 20 : central + 28] = (0x7FFFFFF0).to_bytes(4, "little") * 2
    add("huge declared size", bytes(blob))
    return files


def _set_attribute(name, value):
    return lambda m: m["attributes"].update({name: value})


def _set_optimizer_field(name, value):
    return lambda m: m["attributes"]["_optimizer"]["$optimizer"][1].update(
        {name: value}
    )


def _set_binarizer_field(name, value):
    return lambda m: m["attributes"]["_label_binarizer"]["$label_binarizer"].update(
        {name: value}
    )


def _shadowing_edits():
    """Files (with a valid checksum) that set names which shadow methods or
    internals, or give fitted attributes values of the wrong type."""
    return {
        "shadow method": _set_attribute("predict", 1),
        "shadow property": _set_attribute("coefs_", [1]),
        "network object": _set_attribute("_net", {"x": 1}),
        "in-training flag": _set_attribute("_fitting", True),
        "unknown private attribute": _set_attribute("_misc", 1),
        "dunder dict": _set_attribute("__dict__", {}),
        "t_ string": _set_attribute("t_", "abc"),
        "n_iter_ float": _set_attribute("n_iter_", 1.5),
        "n_iter_ bool": _set_attribute("n_iter_", True),
        "negative count": _set_attribute("_no_improvement_count", -1),
        "loss_ string": _set_attribute("loss_", "abc"),
        "loss_curve_ string": _set_attribute("loss_curve_", "abc"),
        "loss_curve_ strings": _set_attribute("loss_curve_", ["a"]),
        "validation_scores_ dict": _set_attribute("validation_scores_", {"a": 1}),
        "best_loss_ list": _set_attribute("best_loss_", [1.0]),
        "history_ list": _set_attribute("history_", [1]),
        "classes_ number": _set_attribute("classes_", 3),
        "optimizer as number": _set_attribute("_optimizer", 3),
        "binarizer as dict": _set_attribute("_label_binarizer", {"a": 1}),
        "classifier loss": _set_attribute("loss", "squared_error"),
        "optimizer rate string": _set_optimizer_field("learning_rate", "abc"),
        "optimizer extra field": _set_optimizer_field("hyper", 1),
        "optimizer schedule": _set_optimizer_field("lr_schedule", "os.system"),
        "binarizer method": _set_binarizer_field("transform", 1),
        "binarizer y_type_": _set_binarizer_field("y_type_", 3),
    }


def test_hostile_files_are_refused(good_file, tmp_path):
    marker = tmp_path / "MARKER"
    files = _hostile_files(good_file, tmp_path, marker)
    for what, path in files:
        with pytest.raises(ValueError) as info:
            tfmlp.load(path)
        message = str(info.value)
        assert str(path) in message, (what, message)
        assert "Cannot load tfmlp model" in message, (what, message)
        assert not marker.exists(), what
    # the loader's messages name the problem
    for what, needle in [
        ("version 2", "newer tfmlp"),
        ("os.system class", "unknown estimator class 'os.system'"),
        ("traversal", "unsafe archive member '../../evil.tfmlp'"),
        ("object array member", "only numeric arrays"),
        ("wrong checksum", "checksum mismatch"),
        ("huge declared size", "declares"),
        ("huge npy shape", "does not match"),
        ("empty file", "not a readable ZIP"),
        ("deep value", "nested too deeply"),
        ("deep JSON", "not valid JSON"),
        ("shadow method", "'predict' cannot be set .*method or property"),
        ("network object", "'_net' cannot be set"),
        ("t_ string", "'t_' must be a non-negative integer"),
        ("loss_curve_ string", "'loss_curve_' must be a list of numbers"),
        ("optimizer extra field", "expected the fields"),
        ("classifier loss", "'loss' must be 'log_loss'"),
    ]:
        path = dict(files)[what]
        with pytest.raises(ValueError, match=needle):
            tfmlp.load(path)


@pytest.mark.parametrize("value", ["abc", -1, 2.5, None])
def test_adam_step_count_must_be_a_count(fitted, tmp_path, value):
    good = tmp_path / "adam.tfmlp"
    tfmlp.save(fitted["binary_adam"][0], good)
    path = tmp_path / "bad.tfmlp"
    _write(path, _edit_json(_members(good), _set_optimizer_field("t", value)))
    with pytest.raises(
        ValueError, match=r"Cannot load .*\.t must be a non-negative integer"
    ):
        tfmlp.load(path)


def test_every_truncation_is_refused(good_file, tmp_path):
    blob = good_file.read_bytes()
    path = tmp_path / "cut.tfmlp"
    for size in list(range(0, len(blob), max(1, len(blob) // 300))):
        path.write_bytes(blob[:size])
        with pytest.raises(ValueError, match="cut.tfmlp"):
            tfmlp.load(path)


def test_flipped_bytes_never_load_a_different_model(good_file, tmp_path):
    """A flipped byte is refused (checksum / CRC / structure), or it hit bytes
    that carry no content (e.g. a ZIP timestamp) and the model is unchanged."""
    blob = good_file.read_bytes()
    reference = tfmlp.load(good_file)
    expected = reference.predict_proba(X.astype(np.float32))
    path = tmp_path / "flipped.tfmlp"
    refused = 0
    positions = range(0, len(blob), max(1, len(blob) // 600))
    for i in positions:
        damaged = bytearray(blob)
        damaged[i] ^= 0x10
        path.write_bytes(bytes(damaged))
        try:
            loaded = tfmlp.load(path)
        except ValueError as exc:
            assert "flipped.tfmlp" in str(exc)
            refused += 1
            continue
        _same(_state(loaded), _state(reference))
        _same(loaded.predict_proba(X.astype(np.float32)), expected)
    assert refused > 0.8 * len(positions)
    # a flip inside the JSON metadata or an array is reported as damage
    start = blob.find(b'"format"')
    damaged = bytearray(blob)
    damaged[start + 2] ^= 0x01
    path.write_bytes(bytes(damaged))
    with pytest.raises(ValueError, match="damaged"):
        tfmlp.load(path)


def test_missing_file_is_an_os_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        tfmlp.load(tmp_path / "nope.tfmlp")


# --------------------------------------- pickle, joblib, deepcopy, clone
def _copies(est):
    buffer = io.BytesIO()
    joblib.dump(est, buffer)
    buffer.seek(0)
    return {
        "pickle": pickle.loads(pickle.dumps(est)),
        "joblib": joblib.load(buffer),
        "deepcopy": copy.deepcopy(est),
    }


@pytest.mark.parametrize("name", ["binary_adam", "multilabel_dropout_bn"])
def test_pickle_joblib_deepcopy_fitted(fitted, name):
    est, X_, y, pf = fitted[name]
    est = copy.deepcopy(est)
    expected = _outputs(est, X_)
    continued = _continue(copy.deepcopy(est), X_, y, pf)
    for how, other in _copies(est).items():
        _same(_outputs(other, X_), expected, how)
        _same(_state(other), _state(est), how)
        _same(_continue(other, X_, y, pf), continued, how)
    # the original keeps working after being copied
    _same(_outputs(est, X_), expected)


@pytest.mark.parametrize("name", ["binary_adam", "multilabel_dropout_bn"])
def test_a_shallow_copy_trains_without_touching_the_original(fitted, name):
    est, X_, y, pf = fitted[name]
    est = copy.deepcopy(est)
    twin = copy.deepcopy(est)
    shallow = copy.copy(est)
    assert shallow.get_params() == est.get_params()
    _same(_outputs(shallow, X_), _outputs(est, X_))
    _continue(shallow, X_, y, pf)  # trains the copy: weights and optimizer
    _same(_state(est), _state(twin), "original after the copy trained")
    _same(_continue(est, X_, y, pf), _continue(twin, X_, y, pf), "continued")


def test_pickle_joblib_deepcopy_clone_unfitted():
    est = MLPClassifier((3,), max_iter=3, random_state=0, dropout=0.1)
    reference = _quiet(clone(est).fit, X, Y_BINARY).predict_proba(X)
    for how, other in {**_copies(est), "clone": clone(est)}.items():
        assert other.get_params() == est.get_params(), how
        _same(_quiet(other.fit, X, Y_BINARY).predict_proba(X), reference, how)


def test_clone_of_fitted_is_unfitted(fitted):
    est = fitted["binary_adam"][0]
    other = clone(est)
    assert other.get_params() == est.get_params()
    assert not hasattr(other, "coefs_")


@pytest.mark.slow
def test_grid_search_two_jobs():
    search = GridSearchCV(
        MLPClassifier((4,), max_iter=15, random_state=0),
        {"alpha": [1e-4, 1.0]},
        cv=2,
        n_jobs=2,
    )
    _quiet(search.fit, X, Y_BINARY)
    serial = GridSearchCV(
        MLPClassifier((4,), max_iter=15, random_state=0),
        {"alpha": [1e-4, 1.0]},
        cv=2,
    )
    _quiet(serial.fit, X, Y_BINARY)
    np.testing.assert_array_equal(
        search.cv_results_["mean_test_score"], serial.cv_results_["mean_test_score"]
    )
    _same(
        search.best_estimator_.predict_proba(X),
        serial.best_estimator_.predict_proba(X),
    )


@pytest.mark.parametrize(
    "bad",
    [
        np.array([1024.0, 3.0, 1.0], np.float32),  # wrong shape
        np.array([0.5, 3.0], np.float32),  # scale below 1
        np.array([np.inf, 3.0], np.float32),
        np.array([1024.0, 3.0], np.float64),  # wrong dtype
    ],
)
def test_a_damaged_loss_scale_is_refused(fitted, tmp_path, bad):
    good = tmp_path / "mixed.tfmlp"
    tfmlp.save(fitted["mixed_float16_adam"][0], good)
    members = _members(good)
    meta = json.loads(members[0][1])
    index = meta["attributes"]["_optimizer"]["$optimizer"][1]["_loss_scale"]["$array"]
    name = f"arrays/{index}.npy"
    members = [(n, _npy(bad) if n == name else d) for n, d in members]
    path = tmp_path / "bad.tfmlp"
    _write(path, members)
    with pytest.raises(ValueError, match="loss scale"):
        tfmlp.load(path)


# ------------------------------------- dropout: the Keras generator state
def _dropout_model():
    est = MLPClassifier((6,), dropout=0.3, max_iter=3, batch_size=16, random_state=0)
    return _quiet(est.fit, X, Y_WORDS)


def test_dropout_training_continues_identically_after_copies(tmp_path):
    """The Dropout masks come from a Keras seed generator whose state is not a
    weight: save / load, pickle and deepcopy keep it, so the copies continue
    training exactly like the original itself (not just like another copy)."""
    original = _dropout_model()
    path = tmp_path / "dropout.tfmlp"
    tfmlp.save(original, path)
    copies = {"load": tfmlp.load(path), **_copies(original)}
    expected = _continue(original, X, Y_WORDS, {})
    for how, other in copies.items():
        _same(_continue(other, X, Y_WORDS, {}), expected, how)


def test_dropout_checkpoint_resumes_identically(tmp_path):
    """Resuming from an EstimatorCheckpoint equals the uninterrupted run."""
    from tfmlp.callbacks import EstimatorCheckpoint

    path = tmp_path / "run.tfmlp"
    kw = dict(dropout=0.3, batch_size=16, random_state=0)
    ck = MLPClassifier((6,), max_iter=2, callbacks=[EstimatorCheckpoint(path)], **kw)
    _quiet(ck.fit, X, Y_WORDS)
    resumed = tfmlp.load(path).set_params(warm_start=True, max_iter=2)
    straight = MLPClassifier((6,), max_iter=2, **kw)
    _quiet(straight.fit, X, Y_WORDS)
    straight.set_params(warm_start=True)
    _same(
        _quiet(resumed.fit, X, Y_WORDS).predict_proba(X),
        _quiet(straight.fit, X, Y_WORDS).predict_proba(X),
    )


def test_files_without_the_generator_state_still_load(tmp_path, monkeypatch):
    """Files written before the generator state was saved (Keras weights
    only) load, predict the same and keep training."""
    from tfmlp._custom import CustomNetwork

    original = _dropout_model()
    expected = original.predict_proba(X)
    with monkeypatch.context() as patch:
        patch.setattr(
            CustomNetwork, "full_state", lambda self: self.model.get_weights()
        )
        tfmlp.save(original, tmp_path / "old.tfmlp")
    loaded = tfmlp.load(tmp_path / "old.tfmlp")
    n_weights = len(loaded.__dict__["_keras_weights"])
    _same(loaded.predict_proba(X), expected)
    _quiet(loaded.partial_fit, X, Y_WORDS)
    assert len(loaded.__getstate__()["_keras_weights"]) == n_weights + 1


def test_metadata_requests_are_left_out(tmp_path):
    import sklearn

    with sklearn.config_context(enable_metadata_routing=True):
        est = _quiet(MLPClassifier((3,), max_iter=3, random_state=0).fit, X, Y_WORDS)
        est.set_fit_request(sample_weight=True)
        tfmlp.save(est, tmp_path / "m")
        back = tfmlp.load(tmp_path / "m")
    assert "_metadata_request" not in back.__dict__
    np.testing.assert_array_equal(back.predict_proba(X), est.predict_proba(X))


def test_save_names_a_missing_directory_or_a_directory_path(fitted, tmp_path):
    est = next(iter(fitted.values()))[0]
    with pytest.raises(FileNotFoundError, match=f"its directory '{tmp_path / 'nope'}'"):
        tfmlp.save(est, tmp_path / "nope" / "m.tfmlp")
    with pytest.raises(IsADirectoryError, match="it names a directory"):
        tfmlp.save(est, tmp_path)
    with pytest.raises(IsADirectoryError, match="it names a directory"):
        tfmlp.save(est, f"{tmp_path}/new/")  # a trailing slash
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(FileNotFoundError, match="does not exist"):
        tfmlp.save(est, f"{tmp_path}/sub/../m.tfmlp")  # "sub/.." needs sub
    (tmp_path / "afile").write_text("")
    with pytest.raises(NotADirectoryError, match="is a file, not a directory"):
        tfmlp.save(est, tmp_path / "afile" / "m.tfmlp")
    with pytest.raises(ValueError, match="empty path"):
        tfmlp.save(est, "")
    with pytest.raises(TypeError, match="str or os.PathLike"):
        tfmlp.save(est, None)


def test_save_names_its_path_in_write_errors_and_takes_bytes(
    fitted, tmp_path, monkeypatch
):
    import errno

    est = next(iter(fitted.values()))[0]
    path = tmp_path / "m.tfmlp"
    tfmlp.save(est, os.fsencode(path))  # a bytes path, as open() takes
    before = path.read_bytes()

    def too_large(fileobj, members):
        raise OSError(errno.EFBIG, "File too large")

    monkeypatch.setattr(persist, "_write_archive", too_large)
    with pytest.raises(OSError, match=f"Cannot write {str(path)!r}: File too large"):
        tfmlp.save(est, path)
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["m.tfmlp"]


def _resigned(path, out, edit):
    """``path``'s file with ``edit(meta, arrays)`` applied, checksum fixed."""
    members = dict(_members(path))
    meta = json.loads(members[persist.METADATA])
    arrays = {k: v for k, v in members.items() if k.startswith("arrays/")}
    edit(meta, arrays)
    order = sorted(arrays, key=lambda k: int(k[len("arrays/") : -len(".npy")]))
    _write(
        out,
        [(persist.METADATA, json.dumps(meta).encode())]
        + [(k, arrays[k]) for k in order],
    )
    return out


def test_load_refuses_weights_of_mixed_dtypes_and_classes_the_network_lacks(tmp_path):
    est = _quiet(MLPClassifier((5,), max_iter=5, random_state=0).fit, X, Y_WORDS)
    good = tmp_path / "good.tfmlp"
    tfmlp.save(est, good)

    def mixed(meta, arrays):
        key = f"arrays/{meta['attributes']['_coefs'][0]['$array']}.npy"
        arrays[key] = _npy(np.load(io.BytesIO(arrays[key])).astype(np.float32))

    def more_classes(meta, arrays):
        key = f"arrays/{len(meta['arrays'])}.npy"
        meta["arrays"].append(key)
        arrays[key] = _npy(np.arange(len(set(Y_WORDS)) + 4))
        meta["attributes"]["classes_"] = {"$array": len(meta["arrays"]) - 1}

    for edit, match in (
        (mixed, "all be float32 or all float64"),
        (more_classes, "classes_ do not match"),
    ):
        path = _resigned(good, tmp_path / f"{edit.__name__}.tfmlp", edit)
        with pytest.raises(ValueError, match=f"{edit.__name__}.tfmlp.*{match}"):
            tfmlp.load(path)


def test_save_refuses_parameters_load_would_refuse(tmp_path):
    est = MLPRegressor(alpha=-1.0)
    with pytest.raises(ValueError, match="Cannot save MLPRegressor: .*'alpha'"):
        tfmlp.save(est, tmp_path / "bad.tfmlp")
    assert not (tmp_path / "bad.tfmlp").exists()


def test_save_writes_only_regular_files_and_names_the_path(tmp_path):
    import os

    est = _quiet(MLPClassifier((3,), max_iter=2, random_state=0).fit, X, Y_BINARY)
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(ValueError, match="not a regular file"):
        tfmlp.save(est, fifo)
    assert fifo.is_fifo()
    with pytest.raises(ValueError, match="empty path"):
        tfmlp.save(est, "")
    # the system's limit is 255 bytes; 84 three-byte characters are 252
    for long_name in (tmp_path / ("m" * 250), tmp_path / ("模" * 84 + ".t")):
        tfmlp.save(est, long_name)
        _same(tfmlp.load(long_name).predict_proba(X), est.predict_proba(X))
    target = tmp_path / "real.tfmlp"
    link = tmp_path / "link.tfmlp"
    tfmlp.save(est, target)
    link.symlink_to(target)
    est2 = _quiet(MLPClassifier((3,), max_iter=3, random_state=1).fit, X, Y_BINARY)
    tfmlp.save(est2, link)  # written through the link, which stays a link
    assert link.is_symlink()
    _same(tfmlp.load(target).predict_proba(X), est2.predict_proba(X))
    if os.path.isdir("/proc/self"):  # a directory no file can be created in
        with pytest.raises(OSError, match="Cannot write '/proc/m.tfmlp'"):
            tfmlp.save(est, "/proc/m.tfmlp")
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]


@pytest.mark.parametrize("which", ["second coefs", "first Adam slot"])
def test_weights_and_optimizer_state_of_other_shapes_are_refused(tmp_path, which):
    # arrays of valid types whose shapes do not fit together: refused on load
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = MLPClassifier(hidden_layer_sizes=(5,), max_iter=2, random_state=0)
        est.fit(X, Y_WORDS)
    good = tmp_path / "good.tfmlp"
    tfmlp.save(est, good)
    members = _members(good)
    attrs = json.loads(members[0][1])["attributes"]
    if which == "second coefs":  # 6 x 3 after a 4 x 5 matrix
        index, array = attrs["_coefs"][1]["$array"], np.zeros((6, 3))
        needle = "do not chain"
    else:  # Adam's first moment of the first matrix, transposed
        slots = attrs["_optimizer"]["$optimizer"][1]["_slot_arrays"]
        index, array = slots[0]["$array"], np.zeros((5, 4))
        needle = "slots do not match"
    name = f"arrays/{index}.npy"
    bad = tmp_path / "bad.tfmlp"
    _write(bad, [(n, _npy(array) if n == name else d) for n, d in members])
    with pytest.raises(ValueError, match=needle):
        tfmlp.load(bad)


def test_weights_edited_by_hand_save_as_the_estimator_trains_them(tmp_path):
    """save never writes a file load refuses: weights replaced as a tuple or
    pruned by hand (the optimizer's slots no longer fit: left out, as the
    next training call drops them) load back; weights of mixed dtypes are
    refused before anything is written."""
    est = _quiet(MLPClassifier((5,), max_iter=5, random_state=0).fit, X, Y_WORDS)
    tupled = copy.deepcopy(est)
    tupled.coefs_ = tuple(tupled.coefs_)
    tfmlp.save(tupled, tmp_path / "t.tfmlp")
    _same(tfmlp.load(tmp_path / "t.tfmlp").predict_proba(X), est.predict_proba(X))

    est.coefs_ = [est.coefs_[0][:, :4], est.coefs_[1][:4]]
    est.intercepts_ = [est.intercepts_[0][:4], est.intercepts_[1]]
    tfmlp.save(est, tmp_path / "p.tfmlp")
    loaded = tfmlp.load(tmp_path / "p.tfmlp")
    assert "_optimizer" not in vars(loaded)
    _same(loaded.predict_proba(X), est.predict_proba(X))
    for model in (est, loaded):  # a new optimizer, not a raw shape error
        _quiet(model.set_params(hidden_layer_sizes=(4,)).partial_fit, X, Y_WORDS)
        assert model._optimizer.t == 1
    _same(loaded.coefs_ + loaded.intercepts_, est.coefs_ + est.intercepts_)
    _same(loaded._optimizer, est._optimizer)

    est.coefs_[0] = est.coefs_[0].astype(np.float32)
    with pytest.raises(ValueError, match="Cannot save MLPClassifier: .*all float64"):
        tfmlp.save(est, tmp_path / "m.tfmlp")
    assert not (tmp_path / "m.tfmlp").exists()


def test_load_refuses_state_training_cannot_reach(tmp_path):
    """Files with a valid checksum (anyone can recompute it) whose fitted
    state is inconsistent are refused at load, not left to fail (or to
    predict labels outside classes_) later."""
    est = _quiet(MLPClassifier((5,), max_iter=5, random_state=0).fit, X, Y_WORDS)
    tfmlp.save(est, tmp_path / "good.tfmlp")
    stacked = _quiet(
        MLPClassifier((5,), dropout=0.2, max_iter=3, random_state=0).fit, X, Y_WORDS
    )
    tfmlp.save(stacked, tmp_path / "stack.tfmlp")

    def n_layers(meta, arrays):
        meta["attributes"]["n_layers_"] = 7

    def binarizer_classes(meta, arrays):
        lb = meta["attributes"]["_label_binarizer"]["$label_binarizer"]
        lb["classes_"] = {"$strarray": [3, [3], ["cat", "dog", "yak"]]}

    def stack_seed(meta, arrays):
        meta["attributes"]["_stack_seed"] = 2**70

    def binarizer_kind(meta, arrays):
        lb = meta["attributes"]["_label_binarizer"]["$label_binarizer"]
        lb["y_type_"] = "binary"  # three classes

    def feature_names(meta, arrays):
        meta["attributes"]["feature_names_in_"] = {"$strarray": [1, [2], ["a", "b"]]}

    for good, edit, match in (
        ("good", n_layers, "n_layers_ is 7, but the 2 weight matrices make 3"),
        ("good", binarizer_classes, "binarizer's classes differ"),
        ("good", binarizer_kind, "y_type_ 'binary' does not match 3 classes_"),
        ("good", feature_names, "names 2 features, but n_features_in_ is 4"),
        ("stack", stack_seed, "'_stack_seed' is out of range"),
    ):
        path = tmp_path / f"{good}.tfmlp"
        bad = _resigned(path, tmp_path / f"{edit.__name__}.tfmlp", edit)
        with pytest.raises(ValueError, match=f"{edit.__name__}.tfmlp.*{match}"):
            tfmlp.load(bad)


def test_multilabel_classes_of_another_dtype_save_and_load(tmp_path):
    """partial_fit's classes= for indicator targets may be floats or int32
    while the binarizer's are int64 (equal labels: the new binarizer check
    compared the arrays' identity), or name more labels than the columns
    (scikit-learn accepts that; save refused it): the file loads."""
    for classes in ([0.0, 1.0, 2.0], np.arange(3, dtype=np.int32), [0, 1, 2, 3]):
        est = MLPClassifier((4,), random_state=0)
        _quiet(est.partial_fit, X, Y_MULTILABEL, classes=classes)
        tfmlp.save(est, tmp_path / "m.tfmlp")
        loaded = tfmlp.load(tmp_path / "m.tfmlp")
        _same(loaded.predict_proba(X), est.predict_proba(X))
        _same(loaded.classes_, est.classes_)
