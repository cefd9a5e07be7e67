"""tf.data.Dataset input and the tfmlp.data file readers."""

import importlib.util
import re
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
import tensorflow as tf
from sklearn.datasets import load_diabetes, load_iris
from sklearn.exceptions import ConvergenceWarning

import tfmlp.data as tfmlp_data
from tfmlp import MLPClassifier, MLPRegressor
from tfmlp.data import read_csv, read_parquet

X, Y = load_iris(return_X_y=True)
XR, YR = load_diabetes(return_X_y=True)


def _quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return fn(*args, **kwargs)


@pytest.mark.parametrize("solver", ["adam", "sgd"])
def test_unshuffled_dataset_equals_array_fit(solver):
    """One pass over the dataset is exactly one epoch of the array path."""
    kw = dict(hidden_layer_sizes=(6,), max_iter=4, shuffle=False, batch_size=32)
    kw.update(solver=solver, random_state=0)
    ref = _quiet(MLPClassifier(**kw).fit, X, Y)
    ds = tf.data.Dataset.from_tensor_slices((X, Y)).batch(32)
    got = _quiet(MLPClassifier(**kw).fit, ds, classes=[0, 1, 2])
    for a, b in zip(ref.coefs_ + ref.intercepts_, got.coefs_ + got.intercepts_):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(ref.loss_curve_, got.loss_curve_, rtol=1e-12)
    assert (got.t_, got.n_iter_, got.n_features_in_) == (ref.t_, 4, 4)
    np.testing.assert_array_equal(got.predict(ds), ref.predict(X))
    np.testing.assert_array_equal(got.predict(ds.map(lambda a, b: a)), ref.predict(X))
    assert got.score(ds) == pytest.approx(ref.score(X, Y))
    # the optimizer continues alike: Adam's step count and current rate
    assert got._optimizer.learning_rate == ref._optimizer.learning_rate
    ref.partial_fit(X, Y)
    got.partial_fit(ds)
    for a, b in zip(ref.coefs_ + ref.intercepts_, got.coefs_ + got.intercepts_):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


def test_regressor_with_sample_weights_and_partial_fit():
    w = np.linspace(0.5, 1.5, len(YR))
    kw = dict(hidden_layer_sizes=(5,), max_iter=3, shuffle=False, batch_size=50)
    ref = _quiet(MLPRegressor(random_state=0, **kw).fit, XR, YR, sample_weight=w)
    ds = tf.data.Dataset.from_tensor_slices((XR, YR, w)).batch(50)
    got = _quiet(MLPRegressor(random_state=0, **kw).fit, ds)
    np.testing.assert_allclose(ref.coefs_[0], got.coefs_[0], rtol=1e-12)
    got.partial_fit(ds)
    assert got.n_iter_ == 1 and got.t_ == 4 * len(YR)
    assert got.predict(ds).shape == (len(YR),)
    assert np.isfinite(got.score(ds))


def test_string_labels_and_errors():
    names = np.array(["setosa", "versicolor", "virginica"])[Y]
    ds = tf.data.Dataset.from_tensor_slices((X.astype("float32"), names)).batch(16)
    clf = _quiet(
        MLPClassifier(hidden_layer_sizes=(5,), max_iter=3).fit,
        ds,
        classes=list(np.unique(names)),
    )
    assert clf.predict(X[:2]).dtype.kind == "U" and clf.coefs_[0].dtype == np.float32
    with pytest.raises(ValueError, match="classes="):
        MLPClassifier(max_iter=1).fit(ds)
    with pytest.raises(ValueError, match="not in classes_"):
        MLPClassifier(max_iter=1).fit(ds, classes=["setosa", "versicolor"])
    with pytest.raises(ValueError, match="validation_data"):
        MLPClassifier(max_iter=1, early_stopping=True).fit(ds, classes=np.unique(names))
    with pytest.raises(ValueError, match=r"\(X, y\)"):
        MLPClassifier(max_iter=1).fit(ds.map(lambda a, b: a), classes=[0])
    with pytest.raises(ValueError, match="features"):
        clf.predict(tf.data.Dataset.from_tensor_slices(X[:, :3]).batch(4))
    with pytest.raises(ValueError, match="lbfgs"):
        MLPClassifier(solver="lbfgs").fit(ds, classes=np.unique(names))


def test_early_stopping_with_validation_dataset():
    ds = tf.data.Dataset.from_tensor_slices((X, Y)).shuffle(150, seed=0).batch(16)
    val = tf.data.Dataset.from_tensor_slices((X[::3], Y[::3])).batch(50)
    clf = _quiet(
        MLPClassifier(
            hidden_layer_sizes=(8,),
            max_iter=30,
            early_stopping=True,
            n_iter_no_change=3,
            random_state=0,
        ).fit,
        ds,
        classes=[0, 1, 2],
        validation_data=val,
    )
    assert len(clf.validation_scores_) == clf.n_iter_ == len(clf.validation_loss_curve_)


@pytest.fixture()
def table_files(tmp_path):
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame(X, columns=["a", "b", "c", "d"])
    df["species"] = np.array(["setosa", "versicolor", "virginica"])[Y]
    df["num"] = Y
    df.iloc[:80].to_csv(tmp_path / "part1.csv", index=False)
    df.iloc[80:].to_csv(tmp_path / "part2.csv", index=False)
    pytest.importorskip("pyarrow")
    df.iloc[:80].to_parquet(tmp_path / "part1.parquet")
    df.iloc[80:].to_parquet(tmp_path / "part2.parquet")
    return tmp_path


@pytest.mark.parametrize("reader, ext", [(read_csv, "csv"), (read_parquet, "parquet")])
def test_readers(table_files, reader, ext):
    ds = reader(
        str(table_files / f"*.{ext}"),
        target="species",
        features=["a", "b", "c", "d"],
        batch_size=32,
        seed=0,
    )
    assert ds.element_spec[0].shape.as_list() == [None, 4]
    assert ds.element_spec[1].dtype == tf.string
    clf = _quiet(
        MLPClassifier(
            hidden_layer_sizes=(10,),
            max_iter=60,
            learning_rate_init=0.02,
            random_state=0,
        ).fit,
        ds,
        classes=["setosa", "versicolor", "virginica"],
    )
    assert clf.t_ == 60 * 150 and clf.score(ds) > 0.9
    numeric = reader(
        str(table_files / f"part1.{ext}"),
        target="num",
        features=["a", "b"],
        shuffle=False,
    )
    assert numeric.element_spec[1].dtype == tf.int64
    with pytest.raises(ValueError, match="No file matches"):
        reader(str(table_files / "*.missing"), target="species")
    with pytest.raises(ValueError, match="no target column 'nope'"):
        reader(str(table_files / f"*.{ext}"), target="nope")
    with pytest.raises(ValueError, match="no feature column"):
        reader(str(table_files / f"*.{ext}"), target="species", features=["zz"])


def test_unreadable_parquet(tmp_path):
    pytest.importorskip("pyarrow")
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"not a parquet file")
    with pytest.raises(ValueError, match="Cannot read Parquet file"):
        read_parquet(str(bad), target="y")


@pytest.mark.slow
def test_streaming_memory_is_bounded(tmp_path):
    """Train on a generated Parquet file in a subprocess; assert its peak RSS."""
    pytest.importorskip("pyarrow")
    script = textwrap.dedent(
        f"""
        import numpy as np, pyarrow as pa, pyarrow.parquet as pq
        path = {str(tmp_path / "big.parquet")!r}
        rng = np.random.default_rng(0)
        writer = None
        for _ in range(8):  # 8 x 100k rows x 40 float32 columns ~ 130 MB
            cols = {{f"f{{i}}": rng.random(100_000, dtype=np.float32)
                    for i in range(40)}}
            cols["y"] = (cols["f0"] + cols["f1"] > 1).astype(np.int64)
            table = pa.table(cols)
            writer = writer or pq.ParquetWriter(path, table.schema)
            writer.write_table(table)
        writer.close()
        del cols, table
        from tfmlp import MLPClassifier
        from tfmlp.data import read_parquet
        ds = read_parquet(path, target="y", batch_size=512, shuffle_buffer=20_000)
        clf = MLPClassifier(hidden_layer_sizes=(32,), max_iter=1)
        clf.fit(ds, classes=[0, 1])
        # VmHWM, not ru_maxrss: on Linux ru_maxrss survives exec, so a child
        # of a big pytest process would report the parent's peak.
        hwm = [ln for ln in open("/proc/self/status") if ln.startswith("VmHWM")]
        peak_mb = int(hwm[0].split()[1]) / 1024
        print("ROWS", clf.t_, "PEAK_MB", round(peak_mb))
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("ROWS")][0]
    rows, peak = int(line.split()[1]), float(line.split()[3])
    assert rows == 800_000
    assert peak < 1500, f"peak RSS {peak} MB"


def _ds(*arrays, batch=32):
    return tf.data.Dataset.from_tensor_slices(arrays).batch(batch)


@pytest.mark.parametrize("Est, x, y", [(MLPClassifier, X, Y), (MLPRegressor, XR, YR)])
def test_score_uses_the_dataset_sample_weights(Est, x, y):
    kw = dict(hidden_layer_sizes=(8,), max_iter=30, learning_rate_init=0.02)
    est = _quiet(Est(random_state=0, **kw).fit, x, y)
    w = np.where(np.arange(len(y)) % 3 == 0, 0.0, 2.0)
    expected = est.score(x, y, sample_weight=w)
    assert expected != pytest.approx(est.score(x, y))
    assert est.score(_ds(x, y, w)) == pytest.approx(expected, rel=1e-12)
    assert est.score(_ds(x, y), sample_weight=w) == pytest.approx(expected, rel=1e-12)
    with pytest.raises(ValueError, match="sample_weight=None"):
        est.score(_ds(x, y, w), sample_weight=w)


def test_multilabel_partial_fit_on_a_dataset_without_classes():
    from sklearn.datasets import make_multilabel_classification

    xm, ym = make_multilabel_classification(n_samples=60, n_features=5, n_classes=3)
    clf = MLPClassifier(hidden_layer_sizes=(4,), random_state=0)
    clf.partial_fit(_ds(xm, ym, batch=20))
    np.testing.assert_array_equal(clf.classes_, [0, 1, 2])
    assert clf.n_iter_ == 1 and clf.predict(xm).shape == (60, 3)


def test_label_dtype_mismatch_is_a_clear_error():
    clf = _quiet(MLPClassifier(hidden_layer_sizes=(4,), max_iter=2).fit, X, Y)
    before = clf.predict_proba(X)
    with pytest.raises(ValueError, match="classes= holds"):
        clf.fit(_ds(X, Y), classes=["a", "b", "c"])
    with pytest.raises(ValueError, match="cannot all be represented"):
        MLPClassifier(max_iter=1).fit(_ds(X, Y.astype(np.uint8)), classes=[-1, 0, 1])
    with pytest.raises(ValueError, match="numeric targets"):
        MLPRegressor(max_iter=1).fit(_ds(X, Y.astype(str)))
    np.testing.assert_array_equal(before, clf.predict_proba(X))
    # string labels with numeric classes= are refused too: predictions (the
    # numbers) could not be scored against the dataset's strings
    with pytest.raises(ValueError, match="labels are strings but classes= holds"):
        MLPClassifier(max_iter=1).fit(_ds(X, Y.astype(str)), classes=[0, 1, 2])


def test_an_endless_dataset_is_refused():
    ds = _ds(X, Y)
    clf = _quiet(
        MLPClassifier(hidden_layer_sizes=(4,), max_iter=2).fit, ds, classes=[0, 1, 2]
    )
    endless = ds.repeat()
    calls = [
        lambda: MLPClassifier(max_iter=1).fit(endless, classes=[0, 1, 2]),
        lambda: MLPClassifier().partial_fit(endless, classes=[0, 1, 2]),
        lambda: clf.predict(endless),
        lambda: clf.score(endless),
        lambda: clf.fit(ds, classes=[0, 1, 2], validation_data=endless),
    ]
    for call in calls:
        with pytest.raises(ValueError, match="endless"):
            call()
    unknown = ds.filter(lambda a, b: True)  # UNKNOWN cardinality is fine
    assert unknown.cardinality() == tf.data.UNKNOWN_CARDINALITY
    assert _quiet(MLPClassifier(max_iter=1).fit, unknown, classes=[0, 1, 2]).t_ == 150


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_dataset_without_features_is_refused(dtype):
    ds = _ds(np.zeros((10, 0), dtype), np.arange(10) % 2, batch=5)
    with pytest.raises(ValueError, match="0 feature"):
        MLPClassifier(max_iter=1).fit(ds, classes=[0, 1])
    with pytest.raises(ValueError, match="0 feature"):
        MLPRegressor(max_iter=1).partial_fit(ds)


def test_validation_dataset_sample_weights_and_labels():
    w = np.where(Y == 0, 0.0, 1.0)
    kw = dict(hidden_layer_sizes=(4,), max_iter=2, random_state=0)
    ref = _quiet(MLPClassifier(**kw).fit, X, Y, validation_data=(X, Y, w))
    got = _quiet(MLPClassifier(**kw).fit, X, Y, validation_data=_ds(X, Y, w, batch=50))
    np.testing.assert_allclose(got.validation_scores_, ref.validation_scores_)
    np.testing.assert_allclose(
        got.validation_loss_curve_, ref.validation_loss_curve_, rtol=1e-10
    )
    before = got.predict_proba(X)
    with pytest.raises(ValueError, match="not in classes_"):
        got.fit(X, Y, validation_data=_ds(X, Y + 7, batch=50))
    with pytest.raises(ValueError, match="not in classes_"):
        got.partial_fit(X, Y, validation_data=_ds(X, Y + 7, batch=50))
    with pytest.raises(ValueError, match="expecting 4 features"):
        got.fit(X, Y, validation_data=_ds(X[:, :3], Y))
    np.testing.assert_array_equal(before, got.predict_proba(X))
    assert len(got.validation_scores_) == 2


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: _ds(X, Y).take(0), "^validation_data is empty"),
        (lambda: (X[:0], Y[:0]), "^validation_data: Found array with 0 sample"),
        (lambda: (X[:, :3], Y), "^validation_data: X has 3 features"),
    ],
)
def test_validation_data_errors_name_it(make, match):
    clf = _quiet(MLPClassifier(hidden_layer_sizes=(4,), max_iter=2).fit, X, Y)
    before = clf.predict_proba(X)
    with pytest.raises(ValueError, match=match):
        clf.fit(_ds(X, Y), classes=[0, 1, 2], validation_data=make())
    np.testing.assert_array_equal(before, clf.predict_proba(X))


def test_read_csv_files_with_columns_in_other_orders(tmp_path):
    pd = pytest.importorskip("pandas")
    pd.DataFrame({"a": [1.0, 2.0], "b": [10.0, 20.0], "y": [0, 1]}).to_csv(
        tmp_path / "p1.csv", index=False
    )
    pd.DataFrame({"y": [0, 1], "b": [30.0, 40.0], "a": [3.0, 4.0]}).to_csv(
        tmp_path / "p2.csv", index=False
    )
    pd.DataFrame({"a": [5.0], "b": [50.0], "y": [1]}).to_csv(
        tmp_path / "p3.csv", index=False
    )
    pattern = str(tmp_path / "p*.csv")
    ds = read_csv(pattern, target="y", features=["a", "b"], shuffle=False)
    x, y = next(iter(ds.unbatch().batch(10)))
    np.testing.assert_array_equal(
        x.numpy(), [[1, 10], [2, 20], [3, 30], [4, 40], [5, 50]]
    )
    np.testing.assert_array_equal(y.numpy(), [0, 1, 0, 1, 1])
    shuffled = read_csv(pattern, target="y", features=["a", "b"], seed=0)
    x = np.concatenate([b[0].numpy() for b in shuffled])
    assert sorted(map(tuple, x)) == [(k, 10 * k) for k in range(1, 6)]


def test_read_parquet_dictionary_encoded_target(tmp_path):
    pd = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    df = pd.DataFrame(X, columns=list("abcd"))
    df["species"] = pd.Categorical(np.array(["s", "v", "g"])[Y])
    df["code"] = pd.Categorical(np.array([10, 20, 30])[Y])
    df.to_parquet(tmp_path / "iris.parquet")
    path = str(tmp_path / "iris.parquet")
    ds = read_parquet(path, target="species", features=list("abcd"), seed=0)
    assert ds.element_spec[1].dtype == tf.string
    clf = _quiet(MLPClassifier(max_iter=2).fit, ds, classes=["g", "s", "v"])
    assert set(clf.predict(ds)) <= {"g", "s", "v"}
    codes = read_parquet(path, target="code", features=list("abcd"), shuffle=False)
    assert codes.element_spec[1].dtype == tf.int64
    np.testing.assert_array_equal(
        np.concatenate([b[1].numpy() for b in codes]), np.array([10, 20, 30])[Y]
    )


def test_readers_reject_non_numeric_features(tmp_path, monkeypatch):
    pd = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    df = pd.DataFrame({"a": X[:, 0], "color": np.where(Y == 0, "red", "blue")})
    df["kind"] = pd.Categorical(df["color"])
    df["y"] = Y
    df.to_csv(tmp_path / "t.csv", index=False)
    df.to_parquet(tmp_path / "t.parquet")
    for reader, ext in [(read_csv, "csv"), (read_parquet, "parquet")]:
        with pytest.raises(ValueError, match="'color'.*not numeric"):
            reader(str(tmp_path / f"t.{ext}"), target="y")
        with pytest.raises(ValueError, match="'kind'.*not numeric"):
            reader(str(tmp_path / f"t.{ext}"), target="y", features=["a", "kind"])
    # a bad value past the rows sampled up front: a clear error when read
    monkeypatch.setattr(tfmlp_data, "CSV_SAMPLE_ROWS", 10)
    df[["color", "y"]].assign(color=["1"] * 50 + ["red"] * 100).to_csv(
        tmp_path / "late.csv", index=False
    )
    ds = read_csv(str(tmp_path / "late.csv"), target="y")
    clf = _quiet(MLPClassifier(max_iter=1).fit, np.ones((4, 1)), [0, 1, 0, 1])
    late = "line 52: the feature column 'color' holds 'red', which is not a number"
    with pytest.raises(ValueError, match=late):
        clf.predict(ds)
    with pytest.raises(ValueError, match=late):
        clf.fit(ds, classes=[0, 1, 2])


def test_read_csv_target_type(tmp_path, monkeypatch):
    rows = [f"{k},{k % 3}" for k in range(30)] + ["30,2.5", "31,1"]
    (tmp_path / "t.csv").write_text("x,t\n" + "\n".join(rows) + "\n")
    path = str(tmp_path / "t.csv")
    monkeypatch.setattr(tfmlp_data, "CSV_SAMPLE_ROWS", 10)
    ds = read_csv(path, target="t", shuffle=False)
    assert ds.element_spec[1].dtype == tf.int64  # integer class labels
    with pytest.raises(ValueError, match="target_dtype='float32'.*2.5"):
        MLPRegressor(max_iter=1).fit(ds)
    as_float = read_csv(path, target="t", target_dtype="float32", shuffle=False)
    y = np.concatenate([b[1].numpy() for b in as_float])
    assert y.dtype == np.float32 and y[-2] == 2.5
    monkeypatch.setattr(tfmlp_data, "CSV_SAMPLE_ROWS", 1000)
    assert read_csv(path, target="t").element_spec[1].dtype == tf.float32
    (tmp_path / "f.csv").write_text("x,t\n1,1.0\n2,0.0\n")
    assert read_csv(str(tmp_path / "f.csv"), target="t").element_spec[1].dtype == (
        tf.float32
    )
    (tmp_path / "h.csv").write_text("x,t\n")
    with pytest.raises(ValueError, match="dataset is empty"):
        read_csv(str(tmp_path / "h.csv"), target="t")


def test_read_csv_whole_numbers_beyond_int64(tmp_path, monkeypatch):
    big, top = "12345678901234567890", str(2**63 - 1)
    rows = [f"{k},{k % 2}" for k in range(20)] + [f"20,{top}", f"21,-{top}"]
    (tmp_path / "t.csv").write_text("x,t\n" + "\n".join(rows + [f"22,{big}"]))
    path = str(tmp_path / "t.csv")
    with pytest.raises(ValueError, match=f"holds whole numbers beyond int64 .{big}"):
        read_csv(path, target="t")
    labels = read_csv(path, target="t", target_dtype="string", shuffle=False)
    assert np.concatenate([b[1].numpy() for b in labels])[-1] == big.encode()
    # past the sampled rows: the reader's own error, naming the column
    monkeypatch.setattr(tfmlp_data, "CSV_SAMPLE_ROWS", 10)
    ds = read_csv(path, target="t", shuffle=False)
    with pytest.raises(ValueError, match=f"'t' was read as int64.*{big}") as info:
        MLPClassifier(max_iter=1).fit(ds, classes=[0, 1, 2**63 - 1, -(2**63 - 1)])
    assert top not in str(info.value)  # int64's extremes are read
    (tmp_path / "long.csv").write_text("x,t\n1,0\n2," + "9" * 5000 + "\n")
    with pytest.raises(ValueError, match="'t' holds whole numbers beyond int64"):
        read_csv(str(tmp_path / "long.csv"), target="t")  # not int()'s limit
    padded = "0" * 4400  # leading zeros do not count
    (tmp_path / "pad.csv").write_text(f"x,t\n1,-{padded}{top}\n2,{padded}{top}\n")
    assert read_csv(str(tmp_path / "pad.csv"), target="t").element_spec[1].dtype == (
        tf.int64
    )
    (tmp_path / "pad.csv").write_text(f"x,t\n1,0\n2,{padded}{2**63}\n")
    with pytest.raises(ValueError, match="'t' holds whole numbers beyond int64"):
        read_csv(str(tmp_path / "pad.csv"), target="t")


BAD_READER_PARAMETERS = [
    (dict(batch_size=0), ValueError, "batch_size"),
    (dict(batch_size=-1), ValueError, "batch_size"),
    (dict(batch_size=2.5), TypeError, "batch_size"),
    (dict(batch_size=True), TypeError, "batch_size"),
    (dict(shuffle_buffer=0), ValueError, "shuffle_buffer"),
    (dict(shuffle_buffer="10"), TypeError, "shuffle_buffer"),
    (dict(shuffle_buffer=2**31), ValueError, "shuffle_buffer must be at most"),
    (dict(seed=1.5), TypeError, "seed"),
    (dict(seed=-1), ValueError, "seed"),
    (dict(shuffle="yes"), TypeError, "shuffle"),
    (dict(features="a"), TypeError, "features"),
    (dict(features=[]), ValueError, "features is empty"),
    (dict(target=["y"]), TypeError, "target"),
]
PARQUET_ONLY = [
    (dict(read_rows=0), ValueError, "read_rows"),
    (dict(read_rows=1.5), TypeError, "read_rows"),
]


@pytest.mark.parametrize(
    "ext, kwargs, error, match",
    [("csv", *case) for case in BAD_READER_PARAMETERS]
    + [("parquet", *case) for case in BAD_READER_PARAMETERS + PARQUET_ONLY],
)
def test_reader_parameters_are_checked(tmp_path, ext, kwargs, error, match):
    pd = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    df = pd.DataFrame({"a": [1.0, 2.0], "y": [0, 1]})
    path = tmp_path / f"t.{ext}"
    df.to_csv(path, index=False) if ext == "csv" else df.to_parquet(path)
    reader = read_csv if ext == "csv" else read_parquet
    with pytest.raises(error, match=match):
        reader(str(path), **{"target": "y", **kwargs})


@pytest.mark.parametrize("reader", [read_csv, read_parquet])
@pytest.mark.parametrize("pattern", [None, 3, b"t.csv", ["t.csv", None]])
def test_reader_patterns_of_other_types_are_type_errors(reader, pattern):
    with pytest.raises(TypeError, match="pattern must be a file path"):
        reader(pattern, target="y")


def test_a_shuffle_buffer_larger_than_the_file_shuffles_as_one_that_fits(tmp_path):
    pd = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    df = pd.DataFrame({"a": np.arange(50.0), "y": np.arange(50) % 3})
    df.to_csv(tmp_path / "t.csv", index=False)
    df.to_parquet(tmp_path / "t.parquet")
    for reader, ext, batch in ((read_csv, "csv", 4), (read_parquet, "parquet", 1)):
        path = str(tmp_path / f"t.{ext}")
        orders = [
            np.concatenate(
                [
                    x[:, 0]
                    for x, _ in reader(
                        path, "y", batch_size=batch, shuffle_buffer=size, seed=3
                    ).as_numpy_iterator()
                ]
            )
            for size in (50, 10**9)  # tf.data would reserve 24 GB for 10**9
        ]
        np.testing.assert_array_equal(orders[0], orders[1])


def test_a_late_malformed_csv_row_says_how_tensorflow_numbers_it(tmp_path):
    # past the rows read_csv checks when opening the file, TensorFlow's
    # record number counts from the start of the block it decodes
    path = tmp_path / "late.csv"
    good = "".join(f"{i % 7},{i % 2}\n" for i in range(1500))
    path.write_text("x,y\n" + good + "1,2,3\n")
    ds = read_csv(str(path), target="y", batch_size=100, shuffle=False)
    clf = MLPClassifier(hidden_layer_sizes=(3,), max_iter=1)
    with pytest.raises(ValueError, match=r"in record \d+ \(TensorFlow counts records"):
        _quiet(clf.fit, ds, classes=[0, 1])


def _late_text_csv(path, header, bad_row, bad, n=1500):
    # numbers in every row but ``bad_row`` (0-based), past the rows read_csv
    # samples when it opens the file
    rows = [f"{i % 7}.5,{i % 3},{i % 2}" for i in range(n)]
    rows[bad_row] = bad
    path.write_text(header + "\n" + "\n".join(rows) + "\n")
    return str(path)


@pytest.mark.filterwarnings("ignore:X has feature names")
def test_a_late_text_feature_value_names_file_line_and_column(tmp_path):
    path = _late_text_csv(tmp_path / "late.csv", "a,b,y", 1200, "1.5,oops,1")
    fitted = _quiet(
        MLPClassifier(hidden_layer_sizes=(3,), max_iter=1, random_state=0).fit,
        X[:20, :2],
        [0, 1] * 10,
    )
    coefs = [c.copy() for c in fitted.coefs_]
    message = (
        f"CSV file '{path}', line 1202: the feature column 'b' holds 'oops', "
        "which is not a number"
    )
    for call in (
        lambda ds: fitted.fit(ds, classes=[0, 1]),
        lambda ds: fitted.partial_fit(ds.map(lambda x, y: (x, y))),
        lambda ds: fitted.predict(ds.take(100)),
        lambda ds: fitted.score(ds),
    ):
        ds = read_csv(path, target="y", batch_size=64, seed=0)
        with pytest.raises(ValueError, match=re.escape(message)):
            _quiet(call, ds)
    for before, after in zip(coefs, fitted.coefs_):
        np.testing.assert_array_equal(before, after)


def test_a_late_text_value_in_one_of_several_files_names_that_file(tmp_path):
    first = _late_text_csv(tmp_path / "p1.csv", "a,b,y", 0, "1,2,0")
    second = _late_text_csv(tmp_path / "p2.csv", "y,b,a", 1499, "0,2, n/a ")
    ds = read_csv([first, second], target="y", seed=1)
    message = f"CSV file '{second}', line 1501: the feature column 'a' holds 'n/a'"
    with pytest.raises(ValueError, match=re.escape(message)):
        _quiet(MLPClassifier(max_iter=1).fit, ds, classes=[0, 1])


def test_a_late_text_value_in_a_float_target_names_it(tmp_path):
    path = _late_text_csv(tmp_path / "t.csv", "a,b,y", 1100, "1,2,high")
    ds = read_csv(path, target="y", target_dtype="float32", seed=0)
    with pytest.raises(ValueError) as info:
        _quiet(MLPRegressor(max_iter=1).fit, ds)
    text = str(info.value)
    assert f"CSV file '{path}', line 1102: the target column 'y' holds 'high'" in text
    assert "target_dtype='string'" in text and "StringToNumber" not in text


def test_a_late_text_value_with_a_quoted_line_break_names_the_column(tmp_path):
    # such files are read record by record; the value is not searched for
    rows = ['0.5,1,"0\n"'] + [f"{i}.5,{i % 3},{i % 2}" for i in range(1500)]
    rows[1300] = '1,"x\ny",1'
    path = tmp_path / "quoted.csv"
    path.write_text("a,b,y\n" + "\n".join(rows) + "\n")
    ds = read_csv(str(path), target="y", target_dtype="string", seed=0)
    with pytest.raises(ValueError) as info:
        _quiet(MLPClassifier(max_iter=1).fit, ds, classes=["0", "1", "0\n"])
    text = str(info.value)
    assert f"a row of CSV file '{path}': the feature column 'b' holds" in text
    assert "which is not a number" in text and "[Op:" not in text


def test_late_text_in_files_of_other_layouts_names_the_right_file(tmp_path):
    # the field index TensorFlow reports is a position in the failing file:
    # in another file that position may hold the target (whose labels are
    # text) or an unread column
    labels = "\n".join(f"{'cat' if i % 2 else 'dog'},1,2,3,note" for i in range(1500))
    first = tmp_path / "part1.csv"
    first.write_text("y,a,b,c,memo\n" + labels + "\n")
    rows = [f"{i % 5},1,2,{'cat' if i % 2 else 'dog'}" for i in range(1500)]
    rows[1200] = "cat,1,2,dog"
    second = tmp_path / "part2.csv"
    second.write_text("a,b,c,y\n" + "\n".join(rows) + "\n")
    ds = read_csv([str(first), str(second)], "y", features=["a", "b", "c"], seed=0)
    message = f"CSV file '{second}', line 1202: the feature column 'a' holds 'cat'"
    with pytest.raises(ValueError, match=re.escape(message)):
        _quiet(MLPClassifier(max_iter=1).fit, ds, classes=["cat", "dog"])


def test_late_text_in_one_of_two_concatenated_readers_names_its_file(tmp_path):
    bad = _late_text_csv(tmp_path / "bad.csv", "a,b,y", 1300, '1,"5"" x 7""",0')
    good = _late_text_csv(tmp_path / "good.csv", "a,b,y", 0, "1,2,0")
    ds = read_csv(bad, "y", seed=0).concatenate(read_csv(good, "y", seed=0))
    # a quoted value with a doubled quote: found as the file writes it
    message = f"CSV file '{bad}', line 1302: the feature column 'b' holds '5\" x 7\"'"
    with pytest.raises(ValueError, match=re.escape(message)):
        _quiet(MLPClassifier(max_iter=1).fit, ds, classes=[0, 1])


def test_a_late_quoted_line_break_names_file_and_line(tmp_path):
    rows = [f"{i % 7},{i % 3},{i % 2}" for i in range(1500)]
    rows[1400] = '1,"bad\nvalue",0'
    path = tmp_path / "late_break.csv"
    path.write_text("a,b,y\n" + "\n".join(rows) + "\n")
    ds = read_csv(str(path), "y", seed=0)
    message = f"CSV file '{path}', line 1402: a quoted value holds a line break"
    with pytest.raises(ValueError, match=re.escape(message)):
        _quiet(MLPClassifier(max_iter=1).fit, ds, classes=[0, 1])


def test_read_csv_skips_blank_lines_and_a_byte_order_mark(tmp_path):
    # pandas reads these files; so must read_csv (an empty last line used to
    # stop training with "Field 0 is required but missing in record")
    blank = tmp_path / "blank.csv"
    blank.write_text("x1,x2,label\n1,2,a\n\n3,4,b\n   \n5,6,a\n\n")
    bom = tmp_path / "bom.csv"
    bom.write_text("label,x1,x2\r\na,1,2\r\nb,3,4\r\n", encoding="utf-8-sig")
    for path, rows in [(blank, 3), (bom, 2)]:
        ds = read_csv(str(path), target="label", shuffle=False)
        x, y = (np.concatenate([b[i].numpy() for b in ds]) for i in (0, 1))
        assert x.shape == (rows, 2) and y.tolist() == [b"a", b"b", b"a"][:rows]
        assert x[1].tolist() == [3.0, 4.0]
        clf = _quiet(
            MLPClassifier(hidden_layer_sizes=(3,), max_iter=2).fit,
            ds,
            classes=["a", "b"],
        )
        assert clf.n_iter_ == 2


@pytest.mark.parametrize(
    "text, match",
    [
        (
            "x1,x2,label\n1,,a\n3,4,b\n",
            "empty or NaN values in the feature column.* 'x2'",
        ),
        (
            "x1,x2,label\n1,2,a\nnan,4,b\n",
            "empty or NaN values in the feature column.* 'x1'",
        ),
        ("x1,x2,label\n1,2,\n3,4,b\n", "empty values in the target column 'label'"),
    ],
)
def test_read_csv_missing_values_are_named(tmp_path, text, match):
    path = tmp_path / "m.csv"
    path.write_text(text)
    clf = MLPClassifier(hidden_layer_sizes=(3,), max_iter=2).fit(
        X[:10, :2], np.array(["a", "b"] * 5)
    )
    before = [c.copy() for c in clf.coefs_]
    with pytest.raises(ValueError, match=f"CSV file '{path}' has {match}"):
        clf.set_params(warm_start=True).fit(
            read_csv(str(path), target="label"), classes=["a", "b"]
        )
    for a, b in zip(before, clf.coefs_):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    "text, match",
    [
        ("", "is empty"),
        ("\n\n", "is empty"),
        ("\nx1,label\n1,a\n", "the first line is blank"),
    ],
)
def test_read_csv_empty_files_and_a_blank_first_line_are_named(tmp_path, text, match):
    path = tmp_path / "e.csv"
    path.write_text(text)
    with pytest.raises(ValueError, match=f"CSV file '{path}'.*{match}"):
        read_csv(str(path), target="label")


def test_read_parquet_refuses_missing_values(tmp_path):
    pd = pytest.importorskip("pandas")
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    df = pd.DataFrame({"x1": X[:30, 0], "x2": X[:30, 1]})
    df["y"] = pd.array(Y[:30], dtype="Int64")
    df.loc[3, "y"] = pd.NA
    df.to_parquet(tmp_path / "t.parquet")  # null counts in the footer
    with pytest.raises(ValueError, match="null.* in the column 'y'"):
        read_parquet(str(tmp_path / "t.parquet"), target="y")
    # written without statistics: found while reading, named all the same
    features = pd.DataFrame({"x1": pd.array(np.arange(30), dtype="Int64"), "y": Y[:30]})
    features.loc[5, "x1"] = pd.NA
    labels = pd.DataFrame({"x1": X[:30, 0], "s": ["a", None, "b"] * 10})
    cases = [
        (features, "x1", "y", MLPRegressor(max_iter=1), {}),
        (labels, "s", "s", MLPClassifier(max_iter=1), {"classes": ["a", "b"]}),
    ]
    for frame, column, target, est, kw in cases:
        path = str(tmp_path / f"nostats_{column}.parquet")
        pq.write_table(pa.Table.from_pandas(frame), path, write_statistics=False)
        ds = read_parquet(path, target=target)
        match = f"Parquet file '{path}' has missing .* column '{column}'"
        with pytest.raises(ValueError, match=match):
            est.fit(ds, **kw)


def test_dataset_classes_must_have_the_labels_type():
    ds = tf.data.Dataset.from_tensor_slices((X, np.array(["0", "1", "2"])[Y])).batch(50)
    with pytest.raises(ValueError, match="labels are strings but classes= holds int"):
        MLPClassifier(max_iter=1).fit(ds, classes=[0, 1, 2])


def test_single_class_dataset_equals_the_array_fit():
    # scikit-learn's LabelBinarizer encodes a single class as 0, not 1
    y0 = np.zeros(len(X), int)
    kw = dict(hidden_layer_sizes=(3,), max_iter=2, random_state=0, batch_size=50)
    kw["shuffle"] = False
    a = _quiet(MLPClassifier(**kw).fit, X, y0)
    ds = tf.data.Dataset.from_tensor_slices((X, y0)).batch(50)
    b = _quiet(MLPClassifier(**kw).fit, ds, classes=[0])
    np.testing.assert_allclose(b.loss_curve_, a.loss_curve_, rtol=1e-12)
    c = _quiet(MLPClassifier(**kw).partial_fit, ds, classes=[0])
    np.testing.assert_allclose(c.loss_, a.loss_curve_[0], rtol=1e-12)


def test_read_csv_quoted_line_breaks_and_nan_targets(tmp_path):
    # a free-text column with line breaks inside quotes (read record by
    # record); a NaN regression target is named instead of diverging later
    path = tmp_path / "notes.csv"
    path.write_text('a,b,note,y\n1,2,"multi\nline",x\n3,1,ok,z\n', newline="")
    ds = read_csv(str(path), target="y", features=["a", "b"], shuffle=False)
    x, y = next(iter(ds))
    assert x.numpy().tolist() == [[1.0, 2.0], [3.0, 1.0]]
    assert y.numpy().tolist() == [b"x", b"z"]
    nan = tmp_path / "nan.csv"
    nan.write_text("a,b,y\n1,2,0.5\n3,4,nan\n")
    with pytest.raises(ValueError, match="target column 'y' holds NaN"):
        MLPRegressor(max_iter=1).fit(read_csv(str(nan), target="y"))


def test_parquet_null_check_reads_top_level_columns_only(tmp_path):
    # a struct field and a top-level column named with a dot share the
    # Parquet path "s.x": only the selected top-level column's nulls count
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    n = 40
    a = np.linspace(-1, 1, n)
    mask = np.zeros(n, bool)
    mask[4] = True
    struct = pa.StructArray.from_arrays([pa.array(np.ones(n), mask=mask)], names=["x"])
    for order in ("struct first", "column first"):
        cols = {"s": struct, "s.x": pa.array(a), "y": pa.array((a > 0).astype(int))}
        if order == "column first":
            cols = {k: cols[k] for k in ("s.x", "s", "y")}
        path = str(tmp_path / "dot.parquet")
        pq.write_table(pa.table(cols), path)
        ds = read_parquet(path, target="y", features=["s.x"])
        assert sum(int(b[0].shape[0]) for b in ds) == n


def test_non_finite_dataset_input_is_refused_at_predict_and_fit():
    clf = _quiet(MLPClassifier((5,), max_iter=3, random_state=0).fit, X, Y)
    before = clf.predict_proba(X)
    bad = X.copy()
    bad[7, 1] = np.nan
    for call in (clf.predict, clf.predict_proba, lambda ds: clf.score(ds)):
        with pytest.raises(ValueError, match="Input X contains NaN"):
            call(_ds(bad, Y))
    bad[7, 1] = np.inf
    with pytest.raises(ValueError, match="Input X contains NaN or infinity"):
        clf.partial_fit(_ds(bad, Y))
    yr = YR.copy()
    yr[3] = np.nan
    reg = MLPRegressor(hidden_layer_sizes=(5,), max_iter=2, random_state=0)
    with pytest.raises(ValueError, match="Input y contains NaN or infinity"):
        _quiet(reg.fit, _ds(XR, yr))
    sw = np.ones(len(Y))
    sw[4] = np.inf
    with pytest.raises(ValueError, match="Sample weights contain NaN"):
        clf.partial_fit(_ds(X, Y, sw))
    np.testing.assert_array_equal(clf.predict_proba(X), before)


def test_dataset_batch_weights_summing_to_zero_raise_sklearns_error():
    clf = _quiet(MLPClassifier((5,), max_iter=3, random_state=0).fit, X, Y)
    before = clf.predict_proba(X)
    sw = np.ones(len(Y))
    sw[32:64] = 0.0  # the second batch of 32
    with pytest.raises(ZeroDivisionError, match="Weights sum to zero"):
        clf.partial_fit(_ds(X, Y, sw))
    np.testing.assert_array_equal(clf.predict_proba(X), before)


def test_empty_batches_of_a_stream_are_skipped():
    def chunks(sizes):
        def gen():
            start = 0
            for n in sizes:
                yield X[start : start + n], Y[start : start + n]
                start += n

        spec = (
            tf.TensorSpec([None, 4], tf.float64),
            tf.TensorSpec([None], tf.int64),
        )
        return tf.data.Dataset.from_generator(gen, output_signature=spec)

    kw = dict(hidden_layer_sizes=(6,), max_iter=2, random_state=0)
    ref = _quiet(MLPClassifier(**kw).fit, chunks([50, 100]), classes=[0, 1, 2])
    got = _quiet(MLPClassifier(**kw).fit, chunks([50, 0, 100, 0]), classes=[0, 1, 2])
    np.testing.assert_array_equal(got.loss_curve_, ref.loss_curve_)
    assert got.t_ == ref.t_ == 300  # samples seen, as scikit-learn counts
    np.testing.assert_array_equal(got.predict(chunks([0, 150])), ref.predict(X))


def test_a_failing_stream_source_is_a_clear_error(tmp_path):
    clf = _quiet(MLPClassifier((5,), max_iter=3, random_state=0).fit, X, Y)
    before = clf.predict_proba(X)
    path = tmp_path / "gone.csv"
    path.write_text("a,b,c,d,y\n" + "\n".join("1,2,3,4,0" for _ in range(9)))
    ds = read_csv(str(path), target="y", batch_size=4)
    path.unlink()
    with pytest.raises(ValueError, match="gone.csv"):
        clf.partial_fit(ds)

    def gen():
        yield X[:10], Y[:10]
        raise OSError("the disk went away")

    spec = (tf.TensorSpec([None, 4], tf.float64), tf.TensorSpec([None], tf.int64))
    with pytest.raises(ValueError, match="the disk went away"):
        clf.partial_fit(tf.data.Dataset.from_generator(gen, output_signature=spec))

    def too_big():
        yield X[:10], Y[:10]
        raise MemoryError("chunk too large to decode")

    for call in (clf.partial_fit, clf.predict):  # (TensorFlow: ResourceExhausted)
        with pytest.raises(ValueError, match="chunk too large"):
            call(tf.data.Dataset.from_generator(too_big, output_signature=spec))

    def bare_assert():
        yield X[:10], Y[:10]
        raise AssertionError  # (an exception without a message)

    for call in (clf.partial_fit, clf.predict, clf.score):
        with pytest.raises(ValueError, match="AssertionError .raised without a mess"):
            call(tf.data.Dataset.from_generator(bare_assert, output_signature=spec))

    class BadRow(Exception):  # printed without its module
        pass

    for error, shown in (
        (BadRow("row 17 has 3 fields"), "row 17 has 3 fields"),
        (ValueError("missing column:\nsales.Price"), "failed: missing column:$"),
    ):

        def failing(error=error):
            yield X[:10], Y[:10]
            raise error

        with pytest.raises(ValueError, match=shown):
            clf.predict(tf.data.Dataset.from_generator(failing, output_signature=spec))
    np.testing.assert_array_equal(clf.predict_proba(X), before)


@pytest.mark.parametrize("ext", ["csv", "parquet"])
def test_readers_name_each_missing_file_and_repeated_columns(tmp_path, ext):
    pd = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    reader = read_csv if ext == "csv" else read_parquet
    path = tmp_path / f"ok.{ext}"
    df = pd.DataFrame({"a": [1.0, 2.0], "b": [3.0, 4.0], "y": [0, 1]})
    df.to_csv(path, index=False) if ext == "csv" else df.to_parquet(path)
    with pytest.raises(ValueError, match=r"No file matches \[\]"):
        reader([], target="y")
    for missing in [tmp_path / f"typo.{ext}", str(tmp_path / "none*")]:
        with pytest.raises(ValueError, match="No file matches .*(typo|none)"):
            reader([str(path), missing], target="y")
    with pytest.raises(ValueError, match="is a directory"):
        reader([str(path), str(tmp_path)], target="y")
    with pytest.raises(ValueError, match=r"features lists \['a'\] more than once"):
        reader(str(path), target="y", features=["a", "a"])
    if ext == "csv":
        dup = tmp_path / "dup.csv"
        dup.write_text("a,a,y\n1,2,0\n3,4,1\n")
        with pytest.raises(ValueError, match=r"more than one column named \['a'\]"):
            read_csv(str(dup), target="y")


def test_read_parquet_batches_run_across_chunk_and_file_ends(tmp_path):
    pd = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    Xf = X.astype(np.float32)
    for i, (a, b) in enumerate([(0, 37), (37, 100), (100, 150)]):
        cols = {f"f{j}": Xf[a:b, j] for j in range(4)}
        pd.DataFrame({**cols, "y": Y[a:b]}).to_parquet(tmp_path / f"p{i}.parquet")
    pattern = str(tmp_path / "p*.parquet")
    for read_rows, bs in [(20, 11), (5, 11), (3, 4), (1000, 32)]:
        ds = read_parquet(
            pattern, target="y", batch_size=bs, read_rows=read_rows, shuffle=False
        )
        sizes = [len(batch[1]) for batch in ds]
        assert sizes == [bs] * (150 // bs) + [150 % bs], (read_rows, bs)
        np.testing.assert_array_equal(np.concatenate([b[0] for b in ds]), Xf)
    shuffled = read_parquet(pattern, target="y", batch_size=16, read_rows=10, seed=3)
    rows = np.concatenate([b[0] for b in shuffled])
    assert sorted(map(tuple, rows)) == sorted(map(tuple, Xf))
    assert sorted(len(b[1]) for b in shuffled) == [6] + [16] * 9


@pytest.mark.parametrize("ext", ["csv", "parquet"])
def test_readers_read_a_named_file_and_keep_reading_it(tmp_path, monkeypatch, ext):
    # a file named with glob characters is read as named (as pandas does),
    # not as a pattern matching another file; and the dataset reads the file
    # it checked after the working directory changes
    pd = pytest.importorskip("pandas")
    if ext == "parquet":
        pytest.importorskip("pyarrow")
    reader = read_csv if ext == "csv" else read_parquet
    write = "to_csv" if ext == "csv" else "to_parquet"
    for sub in ("a", "b"):
        (tmp_path / sub).mkdir()
    monkeypatch.chdir(tmp_path / "a")
    mine = pd.DataFrame({"x": [1.0, 2.0, 3.0], "y": [0, 1, 0]})
    getattr(mine, write)(f"data[1].{ext}", index=False)
    other = pd.DataFrame({"x": [7.0, 8.0], "y": [1, 1]})
    getattr(other, write)(f"data1.{ext}", index=False)
    ds = reader(f"data[1].{ext}", "y", shuffle=False)
    moved = pd.DataFrame({"y": [5, 6, 7], "x": [9.0, 9.0, 9.0]})
    getattr(moved, write)(tmp_path / "b" / f"data[1].{ext}", index=False)
    monkeypatch.chdir(tmp_path / "b")
    x, y = (np.concatenate([b[i] for b in ds.as_numpy_iterator()]) for i in (0, 1))
    assert x.ravel().tolist() == [1.0, 2.0, 3.0] and y.tolist() == [0, 1, 0]
    # a path through a link to another folder, then "..": the folder the
    # system reaches (the link's parent), not the one the text names
    top = pd.DataFrame({"x": [4.0, 4.0], "y": [3, 3]})
    getattr(top, write)(tmp_path / f"data[1].{ext}", index=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a" / "lnk").symlink_to(tmp_path / "b")
    via = reader(f"a/lnk/../data[1].{ext}", "y", shuffle=False)
    assert np.concatenate([b[1] for b in via.as_numpy_iterator()]).tolist() == [3, 3]
    # a pattern still matches as one
    monkeypatch.chdir(tmp_path / "a")
    matched = reader(f"data[0-9].{ext}", "y", shuffle=False)
    assert np.concatenate(
        [b[0] for b in matched.as_numpy_iterator()]
    ).ravel().tolist() == [7.0, 8.0]


@pytest.mark.parametrize("suffix", ["gz", "bz2", "xz", "zip"])
def test_read_csv_names_a_compressed_file(tmp_path, suffix):
    pd = pytest.importorskip("pandas")
    path = tmp_path / f"t.csv.{suffix}"
    pd.DataFrame({"a": [1.0, 2.0], "y": [0, 1]}).to_csv(path, index=False)
    with pytest.raises(ValueError, match="compressed: read_csv reads plain-text"):
        read_csv(str(path), target="y")
    plain = tmp_path / f"plain_{suffix}.csv"  # a header that starts as bzip2's
    plain.write_text("BZh_ratio,y\n1.5,0\n2.5,1\n")
    x = np.concatenate([b[0] for b in read_csv(str(plain), "y", shuffle=False)])
    assert x.ravel().tolist() == [1.5, 2.5]


def test_read_parquet_shuffles_rows_within_its_chunks(tmp_path):
    # the batch shuffle buffer only reorders whole batches: rows are mixed
    # by shuffling each chunk read, so a batch is not a run of file rows
    pd = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    path = tmp_path / "t.parquet"
    pd.DataFrame({"a": np.arange(200.0), "y": np.arange(200) % 2}).to_parquet(path)
    ds = read_parquet(str(path), target="y", batch_size=10, read_rows=100, seed=0)
    for epoch in range(2):
        batches = [np.sort(x[:, 0]) for x, _ in ds.as_numpy_iterator()]
        assert np.array_equal(np.sort(np.concatenate(batches)), np.arange(200.0))
        runs = [np.array_equal(b, np.arange(b[0], b[0] + len(b))) for b in batches]
        assert not any(runs), epoch
        # a chunk's rows stay in it: each batch comes from one chunk
        assert all(b[-1] < 100 or b[0] >= 100 for b in batches)


def test_read_parquet_refuses_uint64_labels_beyond_int64(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    path = tmp_path / "u64.parquet"
    labels = pa.array([2**63 + 1, 1], pa.uint64())
    pq.write_table(pa.table({"a": [1.0, 2.0], "y": labels}), path)
    ds = read_parquet(str(path), target="y", shuffle=False)
    with pytest.raises(ValueError, match="beyond the int64 labels"):
        MLPClassifier(max_iter=1).fit(ds, classes=[1, 2**62])


def test_continuing_on_a_dataset_of_the_other_target_kind_is_refused():
    from sklearn.datasets import make_multilabel_classification

    Xm, Ym = make_multilabel_classification(n_samples=60, n_classes=3, random_state=0)
    kw = dict(hidden_layer_sizes=(4,), max_iter=2, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        multiclass = MLPClassifier(**kw).fit(Xm, Ym.argmax(1))
        multilabel = MLPClassifier(**kw).fit(Xm, Ym)
    indicator = tf.data.Dataset.from_tensor_slices((Xm, Ym)).batch(20)
    labels = tf.data.Dataset.from_tensor_slices((Xm, Ym.argmax(1))).batch(20)
    wider = tf.data.Dataset.from_tensor_slices((Xm, np.c_[Ym, Ym[:, :1]])).batch(20)
    for est, ds, match in [
        (multiclass, indicator, "not fitted with multilabel input"),
        (multilabel, labels, "fitted with multilabel input"),
        (multilabel, wider, "has 4 label columns; this multilabel model has 3"),
    ]:
        before = [c.copy() for c in est.coefs_]
        with pytest.raises(ValueError, match=match):
            est.partial_fit(ds)
        with pytest.raises(ValueError, match=match):
            est.set_params(warm_start=True).fit(ds)
        est.set_params(warm_start=False)
        assert all(np.array_equal(a, b) for a, b in zip(before, est.coefs_))
    for classes in (["a", "b", "c"], [0, 1, 2, 3, 4]):
        fresh = MLPClassifier(**kw)
        with pytest.raises(ValueError, match="do not name the 3 columns"):
            fresh.partial_fit(indicator, classes=classes)
        assert not hasattr(fresh, "classes_")
        with pytest.raises(ValueError, match="do not name the 3 columns"):
            MLPClassifier(**kw).fit(indicator, classes=classes)
    fresh.partial_fit(indicator, classes=[0, 1, 2])  # the column numbers
    np.testing.assert_array_equal(fresh.classes_, [0, 1, 2])


@pytest.mark.parametrize("value", [2.0, 0.5, -1.0])
def test_a_multilabel_dataset_must_hold_0_and_1(value):
    from sklearn.datasets import make_multilabel_classification

    Xm, Ym = make_multilabel_classification(n_samples=60, n_classes=3, random_state=0)
    kw = dict(hidden_layer_sizes=(4,), max_iter=2, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est = MLPClassifier(**kw).fit(Xm, Ym)
    before = [c.copy() for c in est.coefs_]
    bad = Ym.astype(float)
    bad[45, 1] = value  # in the third batch
    ds = tf.data.Dataset.from_tensor_slices((Xm, bad)).batch(20)
    for call in (
        lambda: MLPClassifier(**kw).fit(ds),
        lambda: est.partial_fit(ds),
        lambda: est.set_params(warm_start=True).fit(ds),
    ):
        with pytest.raises(ValueError, match="label-indicator matrix of 0/1 values"):
            call()
    assert all(np.array_equal(a, b) for a, b in zip(before, est.coefs_))


def test_a_float32_model_predicts_float64_batches_in_float64():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est = MLPClassifier(hidden_layer_sizes=(5,), max_iter=3, random_state=0)
        est.fit(X.astype(np.float32), Y)
    ds = tf.data.Dataset.from_tensor_slices(X).batch(40)
    got = est.predict_proba(ds)
    assert got.dtype == np.float64
    np.testing.assert_array_equal(got, est.predict_proba(X))


def test_read_csv_rows_with_another_number_of_fields_are_errors(tmp_path):
    """As pandas: a row with more (or fewer) fields than the header is an error,
    not read with its columns shifted or its extra fields dropped."""
    lines = ["a,b,y"] + [f"{i % 7},{i % 3},{i % 2}" for i in range(3000)]
    for bad in (3, 2500):  # in the first rows read ahead, and beyond them
        for row in (lines[bad] + ",9", lines[bad].rsplit(",", 1)[0]):
            path = tmp_path / f"f{bad}_{len(row)}.csv"
            path.write_text("\n".join([*lines[:bad], row, *lines[bad + 1 :]]) + "\n")
            with pytest.raises(ValueError, match="fields"):
                ds = read_csv(str(path), target="y", batch_size=100)
                _quiet(MLPClassifier(max_iter=1).fit, ds, classes=[0, 1])


def test_dataset_sample_weights_must_be_one_per_row():
    ds = tf.data.Dataset.from_tensor_slices((X, Y, np.ones((150, 2)))).batch(30)
    with pytest.raises(ValueError, match="one number per row"):
        MLPClassifier(max_iter=1).fit(ds, classes=[0, 1, 2])
    spec = (
        tf.TensorSpec([None, 4], tf.float64),
        tf.TensorSpec([None], tf.int64),
        tf.TensorSpec([None], tf.float64),
    )
    short = tf.data.Dataset.from_generator(
        lambda: iter([(X[:30], Y[:30], np.ones(29))]), output_signature=spec
    )
    with pytest.raises(ValueError, match="not one number per row of X"):
        MLPClassifier(max_iter=1).fit(short, classes=[0, 1, 2])
    column = tf.data.Dataset.from_tensor_slices((X, Y, np.ones((150, 1)))).batch(30)
    _quiet(MLPClassifier(max_iter=1).fit, column, classes=[0, 1, 2])
    # a weight column of unknown width (a generator's (None, None)) is taken
    # as the same weights one per row
    w = np.linspace(0.5, 1.5, 150)
    kw = dict(hidden_layer_sizes=(5,), max_iter=2, shuffle=False, batch_size=30)
    ref = _quiet(MLPClassifier(random_state=0, **kw).fit, X, Y, sample_weight=w)
    unknown = tf.data.Dataset.from_generator(
        lambda: (
            (X[i : i + 30], Y[i : i + 30], w[i : i + 30, None])
            for i in range(0, 150, 30)
        ),
        output_signature=(*spec[:2], tf.TensorSpec([None, None], tf.float64)),
    )
    got = _quiet(MLPClassifier(random_state=0, **kw).fit, unknown, classes=[0, 1, 2])
    np.testing.assert_allclose(got.coefs_[0], ref.coefs_[0], rtol=1e-12)


def _unaligned(*parts):
    """A dataset zipping separately batched arrays (``(array, batch size)``)."""
    return tf.data.Dataset.zip(
        tuple(tf.data.Dataset.from_tensor_slices(a).batch(b) for a, b in parts)
    )


@pytest.mark.parametrize("make", ["classifier", "partial_fit", "regressor", "multi"])
def test_dataset_y_must_have_a_row_per_row_of_x(make):
    # X and y batched apart (30 vs 32 rows): named, not TensorFlow's shape
    # message; a fitted model is left as it was
    rng = np.random.RandomState(0)
    Y2 = rng.rand(150, 2)
    fitted = _quiet(MLPRegressor(max_iter=2, random_state=0).fit, X, Y2)
    before = [c.copy() for c in fitted.coefs_]
    calls = {
        "classifier": lambda: MLPClassifier(max_iter=1).fit(
            _unaligned((X, 32), (Y, 30)), classes=[0, 1, 2]
        ),
        "partial_fit": lambda: MLPClassifier().partial_fit(
            _unaligned((X, 32), (Y, 30)), classes=[0, 1, 2]
        ),
        "regressor": lambda: MLPRegressor(max_iter=1).fit(
            _unaligned((X, 32), (Y2[:, 0], 31))
        ),
        "multi": lambda: fitted.partial_fit(_unaligned((X, 32), (Y2, 30))),
    }
    with pytest.raises(ValueError, match="y does not have as many rows as X"):
        calls[make]()
    for a, b in zip(before, fitted.coefs_):
        np.testing.assert_array_equal(a, b)


def test_dataset_sample_weights_must_be_numeric():
    ds = _unaligned((X, 30), (Y, 30), (np.array(["1"] * 150), 30))
    with pytest.raises(ValueError, match="numeric tensor batch"):
        MLPClassifier(max_iter=1).fit(ds, classes=[0, 1, 2])


def test_negative_poisson_targets_in_a_stream_are_refused():
    rng = np.random.RandomState(0)
    Xp = rng.rand(80, 3)
    yp = Xp.sum(1)
    kw = dict(loss="poisson", hidden_layer_sizes=(4,), max_iter=3, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est = MLPRegressor(**kw).fit(Xp, yp)
    before = [c.copy() for c in est.coefs_]
    bad = yp.copy()
    bad[50] = -1.0  # in the third batch
    ds = tf.data.Dataset.from_tensor_slices((Xp, bad)).batch(20)
    valid = tf.data.Dataset.from_tensor_slices((Xp, yp)).batch(20)
    for call in (
        lambda: MLPRegressor(**kw).fit(ds),
        lambda: MLPRegressor(**kw, early_stopping=True).fit(ds, validation_data=valid),
        lambda: est.partial_fit(ds),
    ):
        with pytest.raises(ValueError, match="non-negative targets"):
            call()
    assert all(np.array_equal(a, b) for a, b in zip(before, est.coefs_))
    assert np.isfinite(est.score(ds))  # scoring any targets is fine


def test_boolean_features_stream_as_arrays_do_and_other_x_is_named():
    rng = np.random.RandomState(0)
    Xb = rng.rand(60, 4) > 0.5
    yb = Xb[:, 0].astype(int)
    kw = dict(hidden_layer_sizes=(3,), max_iter=2, random_state=0, shuffle=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        arrays = MLPClassifier(**kw).fit(Xb, yb)
        stream = MLPClassifier(**kw).fit(
            tf.data.Dataset.from_tensor_slices((Xb, yb)).batch(200), classes=[0, 1]
        )
    np.testing.assert_array_equal(stream.coefs_[0], arrays.coefs_[0])
    columns = tf.data.Dataset.from_tensor_slices(({"a": Xb[:, 0] * 1.0}, yb))
    with pytest.raises(ValueError, match="one dense tensor batch.*Stack a dict"):
        MLPClassifier().fit(columns.batch(5), classes=[0, 1])
    with pytest.raises(ValueError, match=r"Batch the dataset \(ds.batch"):
        MLPClassifier().fit(
            tf.data.Dataset.from_tensor_slices((Xb, yb)), classes=[0, 1]
        )


def test_fit_transform_takes_a_dataset_without_y():
    rng = np.random.RandomState(0)
    Xf = rng.rand(60, 4)
    yf = (Xf[:, 0] > 0.5).astype(int)
    ds = tf.data.Dataset.from_tensor_slices((Xf, yf)).batch(20)
    est = MLPClassifier(hidden_layer_sizes=(3,), max_iter=2, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        hidden = est.fit_transform(ds, classes=[0, 1])
    np.testing.assert_array_equal(hidden, est.transform(Xf))
    with pytest.raises(ValueError, match="requires y to be passed"):
        MLPClassifier().fit_transform(Xf)


def test_read_csv_names_bare_carriage_return_line_ends(tmp_path):
    path = tmp_path / "mac.csv"
    path.write_bytes(b"x1,label\r1,a\r2,b\r")
    with pytest.raises(ValueError, match="bare carriage return"):
        read_csv(str(path), target="label")
    path.write_bytes(b"x1,label\r\n1,a\r\n2,b\r\n")  # Windows line ends read
    ds = read_csv(str(path), target="label", batch_size=5, shuffle=False)
    xs = np.concatenate([x[:, 0] for x, _ in ds.as_numpy_iterator()])
    np.testing.assert_array_equal(xs, [1.0, 2.0])


def test_read_csv_buffer_counts_the_rows_of_every_file_by_its_width(tmp_path):
    wide = ",".join(f"c{i}" for i in range(31))
    (tmp_path / "a.csv").write_text(f"x,y,{wide}\n0,0,{','.join(['0'] * 31)}\n")
    (tmp_path / "b.csv").write_text(
        "x,y\n" + "".join(f"{i},{i % 2}\n" for i in range(1, 301))
    )
    files = str(tmp_path / "*.csv")
    orders = [
        np.concatenate(
            [
                x[:, 0]
                for x, _ in read_csv(
                    files, "y", features=["x"], batch_size=50, seed=5,
                    shuffle_buffer=size,
                ).as_numpy_iterator()
            ]
        )
        for size in (301, 10_000)
    ]  # fmt: skip
    np.testing.assert_array_equal(orders[0], orders[1])
    # a buffer sized by the wide file's columns (~60 rows) kept the order:
    # the first rows out all came from the first ~90 of the 300
    assert orders[1][:30].max() > 150


@pytest.mark.parametrize("dtype", [np.uint8, np.float16, np.bool_, np.int64])
def test_transform_of_a_dataset_has_the_arrays_dtype(dtype):
    # a float32 network: NumPy's promotion decides, as for arrays
    Xf = (X[:, :4] > 3).astype(dtype) if dtype is np.bool_ else X.astype(dtype)
    est = _quiet(
        MLPClassifier(hidden_layer_sizes=(5,), max_iter=3, random_state=0).fit,
        X.astype(np.float32),
        Y,
    )
    ds = tf.data.Dataset.from_tensor_slices(Xf).batch(40)
    want = est.transform(Xf)
    got = est.transform(ds)
    assert got.dtype == want.dtype == np.result_type(dtype, np.float32)
    np.testing.assert_allclose(got, want, rtol=1e-6)


def test_read_parquet_leaves_out_a_stored_pandas_index(tmp_path):
    # DataFrame.to_parquet stores a non-default index as a column; pandas
    # reads it back as the index, not as data: so do the default features
    pd = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    frame = pd.DataFrame({"a": np.arange(40.0), "b": np.arange(40.0) % 7})
    frame["y"] = np.arange(40) % 2
    frame.sample(frac=1.0, random_state=0).to_parquet(tmp_path / "a.parquet")
    frame.to_parquet(tmp_path / "b.parquet", index=False)  # no index here
    ds = read_parquet(str(tmp_path / "*.parquet"), target="y", shuffle=False)
    assert ds.element_spec[0].shape[1] == 2
    x = np.concatenate([b[0].numpy() for b in ds])
    want = pd.concat(
        [pd.read_parquet(tmp_path / n) for n in ("a.parquet", "b.parquet")]
    )
    np.testing.assert_array_equal(x, want[["a", "b"]].to_numpy(np.float32))


def test_read_parquet_with_only_a_stored_index_beside_the_target_says_so(tmp_path):
    # the index is not a feature, so there is none: the index was used before
    pd = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    frame = pd.DataFrame({"t": [0, 1, 0, 1]}, index=pd.Index([7, 8, 9, 5], name="id"))
    frame.to_parquet(tmp_path / "a.parquet")
    with pytest.raises(ValueError, match=r"no feature column.*pandas index \['id'\]"):
        read_parquet(str(tmp_path / "a.parquet"), target="t")
    ds = read_parquet(str(tmp_path / "a.parquet"), "t", features=["id"], shuffle=False)
    assert np.concatenate([b[0].numpy() for b in ds]).ravel().tolist() == [7, 8, 9, 5]
    frame.to_parquet(tmp_path / "b.parquet", index=False)  # the target alone
    with pytest.raises(ValueError, match="its only column is the target"):
        read_parquet(str(tmp_path / "b.parquet"), target="t")


def test_read_csv_refuses_missing_value_markers_in_a_numeric_target(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("a,y\n" + "".join(f"{i},{i % 3}\n" for i in range(20)) + "5,NA\n")
    with pytest.raises(ValueError, match=r"missing values \('NA'\) in the target"):
        read_csv(str(path), target="y")


def test_a_parquet_file_spoilt_after_read_parquet_names_the_cause(tmp_path):
    pd = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    path = tmp_path / "f.parquet"
    pd.DataFrame({"a": np.arange(40.0), "y": np.arange(40) % 2}).to_parquet(path)
    ds = read_parquet(str(path), target="y", shuffle=False)
    path.write_bytes(b"")  # truncated by another writer
    for call in (
        lambda: MLPClassifier(max_iter=1).fit(ds, classes=[0, 1]),
        lambda: _quiet(MLPClassifier(max_iter=1).fit, X[:, :1], Y % 2).predict(ds),
    ):
        with pytest.raises(ValueError) as info:
            call()
        message = str(info.value)
        assert "0 bytes" in message and "Traceback" not in message, message


def test_a_csv_path_that_became_a_directory_is_a_clear_error(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("a,y\n" + "".join(f"{i},{i % 2}\n" for i in range(20)))
    ds = read_csv(str(path), target="y", shuffle=False)
    path.unlink()
    path.mkdir()
    with pytest.raises(ValueError, match="failed"):
        MLPClassifier(max_iter=1).fit(ds, classes=[0, 1])


def test_reader_datasets_carry_their_feature_names(tmp_path):
    """A read_csv/read_parquet dataset's columns are its feature names, as a
    DataFrame's: a model fitted on a DataFrame scored a CSV whose columns were
    in another order without a word (accuracy 0.97 -> 0.59)."""
    pd = pytest.importorskip("pandas")
    cols = ["a", "b", "c", "d"]
    frame = pd.DataFrame(X, columns=cols).assign(y=Y)
    frame.to_csv(tmp_path / "same.csv", index=False)
    frame[["b", "a", "d", "c", "y"]].to_csv(tmp_path / "swapped.csv", index=False)
    same = read_csv(str(tmp_path / "same.csv"), target="y", batch_size=50)
    swapped = read_csv(str(tmp_path / "swapped.csv"), target="y", batch_size=50)
    kw = dict(hidden_layer_sizes=(6,), max_iter=30, random_state=0)
    clf = _quiet(MLPClassifier(**kw).fit, frame[cols], Y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert clf.score(same) == pytest.approx(clf.score(frame[cols], Y))
    for call in (clf.score, clf.predict, clf.transform, clf.partial_fit):
        with pytest.raises(ValueError, match="must be in the same order"):
            call(swapped)
    with pytest.raises(ValueError, match="same order"):
        clf.fit(frame[cols], Y, validation_data=swapped)
    with pytest.warns(UserWarning, match="X does not have valid feature names"):
        clf.predict(tf.data.Dataset.from_tensor_slices(X).batch(50))
    # fitted on a reader's dataset: its columns are feature_names_in_
    streamed = _quiet(MLPClassifier(**kw).fit, same, classes=[0, 1, 2])
    assert list(streamed.feature_names_in_) == cols
    with pytest.raises(ValueError, match="same order"):
        streamed.predict(frame[["b", "a", "d", "c"]])
    with pytest.warns(UserWarning, match="X does not have valid feature names"):
        streamed.predict(X)
    plain = _quiet(MLPClassifier(**kw).fit, X, Y)
    with pytest.warns(UserWarning, match="X has feature names, but MLPClassifier"):
        plain.predict(same)
    if importlib.util.find_spec("pyarrow") is not None:
        frame.to_parquet(tmp_path / "t.parquet")
        parquet = read_parquet(str(tmp_path / "t.parquet"), target="y")
        assert streamed.score(parquet) == pytest.approx(streamed.score(same))
    unnamed = tf.data.Dataset.from_tensor_slices((X, Y)).batch(50)
    refit = _quiet(streamed.fit, unnamed, classes=[0, 1, 2])
    assert not hasattr(refit, "feature_names_in_")


def test_the_epoch_draws_batches_in_its_own_loop(monkeypatch):
    """No ``tf.data`` reduce function in the compiled epoch: TensorFlow would
    instantiate and optimise the whole training step again on every epoch
    (0.1-0.5 s an epoch, whatever the data's size)."""
    from tfmlp import _training

    monkeypatch.setattr(_training, "_CACHE", _training._Recent(64))
    ds = tf.data.Dataset.from_tensor_slices((X, Y)).batch(50)
    clf = MLPClassifier(hidden_layer_sizes=(7, 3), max_iter=2)
    _quiet(clf.fit, ds, classes=[0, 1, 2])
    (fn,) = [f for k, f in _training._CACHE.items() if k[1] == "dataset_epoch"]
    (concrete,) = fn._concrete.values()
    graph = concrete.graph.as_graph_def()
    ops = {n.op for n in graph.node}
    for function in graph.library.function:
        ops |= {n.op for n in function.node_def}
    assert "ReduceDataset" not in ops
    assert "IteratorGetNextAsOptional" in ops
    assert ops & {"While", "StatelessWhile"}
    assert clf.n_iter_ == 2 and clf.t_ == 2 * len(Y)


def test_datasets_of_one_structure_share_a_trace_and_are_not_kept():
    """A new dataset per ``partial_fit`` (a chunk streamed at a time) reuses
    the compiled epoch, and the cache does not keep the datasets alive (each
    was a new trace holding its data: ~30 MB a call for 16 MB chunks)."""
    import gc
    import weakref

    from tfmlp import _training

    clf = MLPClassifier(hidden_layer_sizes=(9,), random_state=0)
    refs = []
    traces = sum(f.traces for f in _training._CACHE.values())
    for start in range(0, 150, 30):
        ds = tf.data.Dataset.from_tensor_slices(
            (X[start : start + 30], Y[start : start + 30])
        ).batch(10)
        _quiet(clf.partial_fit, ds, classes=[0, 1, 2])
        refs.append(weakref.ref(ds))
        del ds
    gc.collect()
    assert sum(f.traces for f in _training._CACHE.values()) - traces <= 1
    assert all(r() is None for r in refs)


def test_score_of_a_dataset_refuses_a_separate_y():
    ds = tf.data.Dataset.from_tensor_slices((X, Y)).batch(50)
    clf = _quiet(MLPClassifier(max_iter=2).fit, ds, classes=[0, 1, 2])
    with pytest.raises(ValueError, match="pass y=None"):
        clf.score(ds, 2 - Y)
    dsr = tf.data.Dataset.from_tensor_slices((XR, YR)).batch(50)
    reg = _quiet(MLPRegressor(max_iter=2).fit, dsr)
    with pytest.raises(ValueError, match="pass y=None"):
        reg.score(dsr, YR)
    assert np.isfinite(reg.score(dsr))


def test_label_rows_of_unknown_width_holding_several_columns_are_refused():
    """A generator's natural signature, y of shape (None, None): label
    indicator rows were flattened into labels (a raw shape error)."""
    onehot = np.eye(3)[Y]

    def gen():
        for s in range(0, 150, 40):
            yield X[s : s + 40], onehot[s : s + 40]

    sig = (
        tf.TensorSpec((None, 4), tf.float64),
        tf.TensorSpec((None, None), tf.float64),
    )
    ds = tf.data.Dataset.from_generator(gen, output_signature=sig)
    with pytest.raises(ValueError, match=r"give y's shape as \(None, n_labels\)"):
        MLPClassifier(max_iter=1).fit(ds, classes=[0, 1, 2])
    labels = tf.data.Dataset.from_generator(
        lambda: ((X[s : s + 40], Y[s : s + 40, None]) for s in range(0, 150, 40)),
        output_signature=(sig[0], tf.TensorSpec((None, None), tf.int64)),
    )  # one label per row, width unknown: still labels
    clf = _quiet(MLPClassifier(max_iter=2).fit, labels, classes=[0, 1, 2])
    assert clf.n_outputs_ == 3


def test_poisson_stream_with_nan_targets_names_the_nan():
    # in the compiled graph ~(y < 0) is rewritten y >= 0, false for NaN
    y = np.abs(YR[:64]).astype(np.float64)
    y[5] = np.nan
    with pytest.raises(ValueError, match="contains NaN"):
        MLPRegressor(loss="poisson", max_iter=1).fit(_ds(XR[:64], y))
    y[5] = -1.0
    with pytest.raises(ValueError, match="non-negative"):
        MLPRegressor(loss="poisson", max_iter=1).fit(_ds(XR[:64], y))


def test_a_stream_of_only_empty_batches_is_empty():
    clf = _quiet(MLPClassifier(hidden_layer_sizes=(4,), max_iter=2).fit, X, Y)

    def chunks():
        for _ in range(2):
            yield np.zeros((0, 4)), np.zeros(0, np.int64)

    ds = tf.data.Dataset.from_generator(
        chunks,
        output_signature=(
            tf.TensorSpec([None, 4], tf.float64),
            tf.TensorSpec([None], tf.int64),
        ),
    )
    for call in (clf.predict, clf.score, clf.predict_proba):
        with pytest.raises(ValueError, match="dataset is empty"):
            call(ds)
    with pytest.raises(ValueError, match="dataset is empty"):
        MLPClassifier(max_iter=1).fit(ds, classes=[0, 1, 2])


def test_class_weight_with_a_dataset_is_refused():
    with pytest.raises(ValueError, match="class_weight is not supported"):
        MLPClassifier(class_weight={0: 2.0}, max_iter=1).fit(
            _ds(X, Y), classes=[0, 1, 2]
        )


def test_csv_numbers_tensorflow_cannot_parse_are_not_features(tmp_path):
    """Python's float() takes '1_000' and non-ASCII digits, TensorFlow's CSV
    decoding does not: such columns are refused when the file is opened
    (fit failed later, naming neither file nor column)."""
    for value in ("1_000", "\u0661\u0662", "\uff11\uff12"):
        path = tmp_path / "u.csv"
        path.write_text("a,b,y\n" + "".join(f"{value},{i},{i % 2}\n" for i in range(6)))
        with pytest.raises(ValueError, match="'a' of .*u.csv.* not numeric"):
            read_csv(str(path), target="y")


def test_the_compiled_stream_epoch_is_not_shared_across_label_ranks():
    """A stream of (n, 1) labels and one of (n,) labels train in one process
    as each does alone (the shared compiled epoch kept the first one's
    label encoding)."""
    col = tf.data.Dataset.from_tensor_slices((X, Y[:, None])).batch(16)
    flat = tf.data.Dataset.from_tensor_slices((X, Y)).batch(16)
    kw = dict(hidden_layer_sizes=(4,), max_iter=2, random_state=0)
    a = _quiet(MLPClassifier(**kw).fit, col, classes=[0, 1, 2])
    b = _quiet(MLPClassifier(**kw).fit, flat, classes=[0, 1, 2])
    for u, v in zip(a.coefs_, b.coefs_):
        np.testing.assert_array_equal(u, v)
    two = tf.data.Dataset.from_generator(  # labels of unknown width: 2
        lambda: ((X[i : i + 16], np.c_[Y, Y][i : i + 16]) for i in range(0, 150, 16)),
        output_signature=(
            tf.TensorSpec([None, 4], tf.float64),
            tf.TensorSpec([None, None], tf.int64),
        ),
    )
    with pytest.raises(ValueError, match="several columns.*shape \\(None, None\\)"):
        _quiet(MLPClassifier(**kw).fit, two, classes=[0, 1, 2])


def test_prediction_reads_only_x_of_any_labelled_stream():
    """Keras-style (X, {"label": y}) or (X, SparseTensor) datasets predict
    from X (an AttributeError before); what needs their labels (score,
    validation_data) refuses them clearly, before training."""
    est = _quiet(
        MLPClassifier(hidden_layer_sizes=(4,), max_iter=3, random_state=0).fit, X, Y
    )
    keyed = tf.data.Dataset.from_tensor_slices((X, {"label": Y})).batch(32)
    sparse = tf.data.Dataset.from_tensor_slices((X, Y)).batch(32)
    sparse = sparse.map(lambda x, y: (x, tf.sparse.from_dense(y[:, None])))
    for ds in (keyed, sparse):
        np.testing.assert_array_equal(est.predict(ds), est.predict(X))
        np.testing.assert_allclose(est.predict_proba(ds), est.predict_proba(X), 1e-12)
        with pytest.raises(ValueError, match="dataset's y must be a 1-D or 2-D tensor"):
            est.score(ds)
        before = [c.copy() for c in est.coefs_]
        with pytest.raises(
            ValueError, match="validation_data's y must be a 1-D or 2-D"
        ):
            est.partial_fit(X, Y, validation_data=ds)
        for u, v in zip(before, est.coefs_):
            np.testing.assert_array_equal(u, v)


@pytest.mark.parametrize("dtype", [tf.bfloat16, tf.float16])
def test_prediction_refuses_nan_in_half_precision_streams(dtype):
    est = _quiet(
        MLPClassifier(hidden_layer_sizes=(4,), max_iter=3, random_state=0).fit, X, Y
    )
    Xn = X.copy()
    Xn[5, 1] = np.nan
    ds = tf.data.Dataset.from_tensor_slices(tf.cast(Xn, dtype)).batch(32)
    for method in (est.predict, est.predict_proba):
        with pytest.raises(ValueError, match="Input X contains NaN"):
            method(ds)
    finite = tf.data.Dataset.from_tensor_slices(tf.cast(X, dtype)).batch(32)
    assert est.predict(finite).shape == Y.shape
