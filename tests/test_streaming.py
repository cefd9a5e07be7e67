"""tf.data.Dataset input and the tfmlp.data file readers."""

import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
import tensorflow as tf
from sklearn.datasets import load_diabetes, load_iris
from sklearn.exceptions import ConvergenceWarning

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
