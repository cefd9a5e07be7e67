"""Training under tf.distribute strategies, including two workers on loopback."""

import json
import os
import socket
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
import tensorflow as tf
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning

from tfmlp import MLPClassifier, MLPRegressor

X, Y = load_digits(return_X_y=True)
X = X / 16.0


def _fit(est, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(*args, **kwargs)


@pytest.mark.parametrize("solver", ["adam", "sgd"])
def test_mirrored_equals_single_device(solver):
    kw = dict(hidden_layer_sizes=(16,), max_iter=4, random_state=0, solver=solver)
    ref = _fit(MLPClassifier(**kw), X, Y)
    mirrored = _fit(MLPClassifier(distribute="mirrored", **kw), X, Y)
    for a, b in zip(
        ref.coefs_ + ref.intercepts_, mirrored.coefs_ + mirrored.intercepts_
    ):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(ref.loss_curve_, mirrored.loss_curve_, rtol=1e-10)
    assert mirrored.t_ == ref.t_


def test_fit_inside_strategy_scope_with_dataset():
    strategy = tf.distribute.MirroredStrategy()
    ds = tf.data.Dataset.from_tensor_slices((X, Y)).batch(64)
    with strategy.scope():
        clf = _fit(
            MLPRegressor(hidden_layer_sizes=(8,), max_iter=3, random_state=0),
            tf.data.Dataset.from_tensor_slices((X, Y.astype(float))).batch(64),
        )
        cls = _fit(
            MLPClassifier(hidden_layer_sizes=(8,), max_iter=3),
            ds,
            classes=np.arange(10),
        )
    assert clf.t_ == 3 * len(X) and cls.predict(X).shape == (len(X),)


def test_distribute_errors():
    with pytest.raises(ValueError, match="standard network"):
        MLPClassifier(max_iter=1, dropout=0.2, distribute="mirrored").fit(X, Y)
    with pytest.raises(ValueError, match="distribute"):
        MLPClassifier(distribute="tpu").fit(X, Y)
    import scipy.sparse as sp

    with pytest.raises(ValueError, match="Sparse input is not supported"):
        MLPClassifier(max_iter=1, distribute="mirrored").fit(sp.csr_matrix(X), Y)


def test_stream_errors_under_a_strategy():
    """Unseen labels and an empty stream: the same ValueErrors as without a
    strategy, and a fitted model is left as it was."""
    strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
    ds = tf.data.Dataset.from_tensor_slices((X[:200], Y[:200])).batch(64)
    with strategy.scope():
        with pytest.raises(ValueError, match="not in classes_"):
            MLPClassifier(max_iter=1).fit(ds, classes=[0, 1])
        fitted = _fit(
            MLPClassifier(hidden_layer_sizes=(4,), max_iter=2, random_state=0),
            ds,
            classes=np.arange(10),
        )
        before = fitted.predict_proba(X[:50])
        curve = list(fitted.loss_curve_)
        with pytest.raises(ValueError, match="dataset is empty"):
            fitted.partial_fit(ds.take(0))
        with pytest.raises(ValueError, match="dataset is empty"):
            _fit(MLPClassifier(max_iter=1), ds.take(0), classes=np.arange(10))
    np.testing.assert_array_equal(before, fitted.predict_proba(X[:50]))
    assert fitted.loss_curve_ == curve and fitted.n_iter_ == 2


WORKER = textwrap.dedent(
    """
    import json, os, sys, warnings
    warnings.simplefilter("ignore")
    os.environ["TF_CONFIG"] = sys.argv[1]
    import numpy as np, tensorflow as tf
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    from sklearn.datasets import load_digits
    from tfmlp import MLPClassifier
    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = (
        tf.data.experimental.AutoShardPolicy.DATA)
    ds = tf.data.Dataset.from_tensor_slices((X, y)).batch(64).with_options(options)
    with strategy.scope():
        clf = MLPClassifier(hidden_layer_sizes=(32,), max_iter=15,
                            learning_rate_init=0.01, random_state=0)
        clf.fit(ds, classes=np.arange(10))
    flat = np.concatenate([a.ravel() for a in clf.coefs_ + clf.intercepts_])
    print("RESULT", json.dumps({"weights": flat.tolist(), "score": clf.score(X, y),
                                "t": clf.t_}))
    """
)


def _free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


@pytest.mark.slow
def test_two_workers_on_loopback(tmp_path):
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    hosts = [f"127.0.0.1:{p}" for p in _free_ports(2)]
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="-1")
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                str(script),
                json.dumps(
                    {
                        "cluster": {"worker": hosts},
                        "task": {"type": "worker", "index": i},
                    }
                ),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for i in range(2)
    ]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err[-3000:]
        line = [ln for ln in out.splitlines() if ln.startswith("RESULT")][0]
        results.append(json.loads(line[len("RESULT ") :]))
    np.testing.assert_array_equal(results[0]["weights"], results[1]["weights"])
    assert results[0]["t"] == 15 * len(X)
    single = _fit(
        MLPClassifier(
            hidden_layer_sizes=(32,),
            max_iter=15,
            learning_rate_init=0.01,
            random_state=0,
        ),
        tf.data.Dataset.from_tensor_slices((X, Y)).batch(64),
        classes=np.arange(10),
    )
    assert results[0]["score"] > single.score(X, Y) - 0.02


def test_callbacks_and_model_under_a_strategy_keep_the_training():
    # a callback reads model_: building that Keras view used to swap the
    # variables the compiled steps train, so the fit ended at its start
    import keras

    kw = dict(hidden_layer_sizes=(16,), max_iter=4, random_state=0)
    ref = _fit(MLPClassifier(**kw), X, Y)
    seen = []
    cb = keras.callbacks.LambdaCallback(on_epoch_end=lambda e, logs: seen.append(e))
    got = _fit(MLPClassifier(distribute="mirrored", callbacks=[cb], **kw), X, Y)
    assert seen == [0, 1, 2, 3]
    for a, b in zip(ref.coefs_ + ref.intercepts_, got.coefs_ + got.intercepts_):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(
        got.model_(X[:50]).numpy(), got.predict_proba(X[:50]), rtol=1e-6
    )


def test_model_read_between_distributed_fits_on_two_replicas():
    # after model_ was read, each step was applied once per replica
    code = textwrap.dedent(
        """
        import warnings; warnings.simplefilter("ignore")
        import tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        import numpy as np
        from sklearn.datasets import load_iris
        from tfmlp import MLPClassifier
        X, y = load_iris(return_X_y=True); X = (X - X.mean(0)) / X.std(0)
        s = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
        kw = dict(hidden_layer_sizes=(8,), max_iter=3, random_state=0,
                  batch_size=150, solver="sgd", momentum=0.0)
        a = MLPClassifier(**kw).fit(X, y); a.model_; a.partial_fit(X, y)
        with s.scope():
            b = MLPClassifier(**kw).fit(X, y)
        b.model_  # outside the scope
        with s.scope():
            b.partial_fit(X, y)
        print(max(np.abs(u - v).max() for u, v in zip(a.coefs_, b.coefs_)))
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert float(out.stdout.split()[-1]) < 1e-10


def test_two_replicas_equal_one_device_in_float64_and_round_alike_in_float32():
    # README: to 1e-10 with float64 data; in float32 the replicas' partial
    # sums round differently (weights agree to float32 rounding)
    code = textwrap.dedent(
        """
        import warnings; warnings.simplefilter("ignore")
        import tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        import numpy as np
        from sklearn.datasets import load_wine
        from tfmlp import MLPClassifier
        X, y = load_wine(return_X_y=True); X = (X - X.mean(0)) / X.std(0)
        for dtype, extra in [(np.float64, {}), (np.float32, {}),
                             (np.float64, {"compute_dtype": "float32"})]:
            kw = dict(hidden_layer_sizes=(8,), max_iter=5, random_state=0,
                      batch_size=32, **extra)
            a = MLPClassifier(**kw).fit(X.astype(dtype), y)
            b = MLPClassifier(distribute="mirrored", **kw).fit(X.astype(dtype), y)
            diff = max(np.abs(u - v).max() for u, v in zip(
                a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_))
            print(diff)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr[-2000:]
    f64, f32, compute32 = map(float, out.stdout.split()[-3:])
    assert f64 < 1e-10
    assert f32 < 1e-5 and compute32 < 1e-5


def test_lbfgs_and_zero_weight_batches_under_a_strategy():
    from tfmlp._params import WeightsSumToZero

    with pytest.raises(ValueError, match="lbfgs' does not train under a tf.distribute"):
        MLPClassifier(solver="lbfgs", distribute="mirrored").fit(X, Y)
    with tf.distribute.MirroredStrategy(["/cpu:0"]).scope():
        with pytest.raises(ValueError, match="lbfgs' does not train under"):
            MLPClassifier(solver="lbfgs").fit(X, Y)
    sw = np.ones(len(X))
    sw[:10] = 0
    est = MLPRegressor(batch_size=10, shuffle=False, max_iter=2, distribute="mirrored")
    with pytest.raises(WeightsSumToZero, match="minibatch 0"):
        est.fit(X, Y.astype(float), sample_weight=sw)


def test_streams_under_a_strategy_are_checked_as_on_one_device():
    spec = (tf.TensorSpec([None, 64], tf.float64), tf.TensorSpec([None], tf.int64))

    def chunks(with_empty):
        def gen():
            yield X[:50], Y[:50]
            if with_empty:  # a generator's empty chunk is skipped
                yield X[:0], Y[:0]
            yield X[50:300], Y[50:300]

        return tf.data.Dataset.from_generator(gen, output_signature=spec)

    kw = dict(hidden_layer_sizes=(8,), max_iter=2, random_state=0)
    classes = np.arange(10)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # TensorFlow's notes hidden
        warnings.simplefilter("ignore", ConvergenceWarning)
        ref = MLPClassifier(distribute="mirrored", **kw).fit(
            chunks(False), classes=classes
        )
        got = MLPClassifier(distribute="mirrored", **kw).fit(
            chunks(True), classes=classes
        )
    np.testing.assert_array_equal(got.loss_curve_, ref.loss_curve_)
    bad = X[:300].copy()
    bad[40, 3] = np.nan
    ds = tf.data.Dataset.from_tensor_slices((bad, Y[:300])).batch(32)
    with pytest.raises(ValueError, match="Input X contains NaN"):
        _fit(MLPClassifier(distribute="mirrored", **kw), ds, classes=classes)


def test_an_unseeded_reader_is_refused_on_several_workers(tmp_path):
    from types import SimpleNamespace

    from tfmlp._distribute import check_shardable
    from tfmlp.data import read_csv

    path = tmp_path / "t.csv"
    path.write_text("a,y\n" + "\n".join(f"{i},{i % 2}" for i in range(20)))
    workers = SimpleNamespace(
        extended=SimpleNamespace(_in_multi_worker_mode=lambda: True)
    )
    one = SimpleNamespace(extended=SimpleNamespace(_in_multi_worker_mode=lambda: False))
    with pytest.raises(ValueError, match="same seed= to read_csv/read_parquet"):
        check_shardable(workers, read_csv(str(path), target="y"))
    check_shardable(workers, read_csv(str(path), target="y", seed=0))
    check_shardable(workers, read_csv(str(path), target="y", shuffle=False))
    check_shardable(one, read_csv(str(path), target="y"))


@pytest.mark.slow
def test_a_bad_batch_on_two_replicas_raises_every_time():
    """A NaN batch under a two-replica MirroredStrategy raised, or, now and
    then, left one replica waiting for the other for ever (the failed batch
    reached only one device's prefetch)."""
    code = textwrap.dedent(
        """
        import warnings; warnings.simplefilter("ignore")
        import tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        import numpy as np
        from sklearn.datasets import load_iris
        from tfmlp import MLPClassifier
        X, y = load_iris(return_X_y=True)
        bad = X.copy(); bad[100] = np.nan
        ds = tf.data.Dataset.from_tensor_slices((bad, y)).batch(30)
        strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
        m = MLPClassifier(hidden_layer_sizes=(8,), max_iter=3, random_state=0).fit(X, y)
        before = [c.copy() for c in m.coefs_]
        for i in range(12):
            try:
                with strategy.scope():
                    m.partial_fit(ds)
            except ValueError as exc:
                assert "contains NaN" in str(exc)
            else:
                raise AssertionError("a NaN batch was accepted")
        assert all(np.array_equal(a, b) for a, b in zip(before, m.coefs_))
        print("raised 12 times")
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=180
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "raised 12 times" in out.stdout


def test_a_new_strategy_object_takes_over_a_fitted_estimator():
    """Re-running `with tf.distribute.MirroredStrategy().scope(): est.fit(...)`
    (a notebook cell) makes a new strategy each time: the estimator fitted
    under the old one predicts and trains under the new one, with the same
    numbers as on one device."""
    kw = dict(hidden_layer_sizes=(8,), max_iter=3, random_state=0)
    ref = _fit(MLPClassifier(**kw), X, Y)
    ref.partial_fit(X, Y)
    _fit(ref.set_params(warm_start=True), X, Y)
    est = MLPClassifier(**kw)
    with tf.distribute.MirroredStrategy(["/cpu:0"]).scope():
        _fit(est, X, Y)
    with tf.distribute.MirroredStrategy(["/cpu:0"]).scope():
        est.predict(X[:5])
        est.partial_fit(X, Y)
    with tf.distribute.MirroredStrategy(["/cpu:0"]).scope():
        _fit(est.set_params(warm_start=True), X, Y)
    for a, b in zip(ref.coefs_ + ref.intercepts_, est.coefs_ + est.intercepts_):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(est.predict_proba(X), ref.predict_proba(X), atol=1e-10)


def test_partial_fit_under_a_strategy_reuses_its_compiled_epoch():
    strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
    ref = MLPClassifier(hidden_layer_sizes=(8,), random_state=0)
    est = MLPClassifier(hidden_layer_sizes=(8,), random_state=0)
    functions = set()
    for _ in range(3):
        ref.partial_fit(X, Y, classes=np.arange(10))
        with strategy.scope():
            est.partial_fit(X, Y, classes=np.arange(10))
        functions.add(id(est._net._distributed_epoch[1]))
    assert len(functions) == 1  # traced once, not at every call
    for a, b in zip(ref.coefs_, est.coefs_):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


def test_distribute_inside_another_strategys_scope_and_export_there(tmp_path):
    import tfmlp

    kw = dict(hidden_layer_sizes=(8,), max_iter=2, random_state=0)
    est = MLPClassifier(**kw)
    with tf.distribute.MirroredStrategy(["/cpu:0"]).scope():
        _fit(est, X, Y)
    before = est.predict_proba(X)
    with tf.distribute.MirroredStrategy(["/cpu:0"]).scope():
        # a notebook cell run again: a new strategy, then Keras export there
        tfmlp.export(est, tmp_path / "m.keras", format="keras")
        with pytest.raises(ValueError, match="inside the scope of another"):
            MLPClassifier(distribute="mirrored", **kw).fit(X, Y)
        with pytest.raises(ValueError, match="inside the scope of another"):
            est.set_params(distribute="mirrored").partial_fit(X, Y)
    np.testing.assert_array_equal(before, est.predict_proba(X))
    import keras

    loaded = keras.saving.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(np.asarray(loaded(X)), before, rtol=1e-12, atol=1e-14)


@pytest.mark.slow
def test_multi_worker_parameter_reads_tf_config(tmp_path):
    worker = textwrap.dedent(
        """
        import warnings
        from sklearn.datasets import load_iris
        from tfmlp import MLPClassifier
        warnings.simplefilter("ignore")
        X, y = load_iris(return_X_y=True)
        est = MLPClassifier(hidden_layer_sizes=(8,), max_iter=2, random_state=0,
                            distribute="multi_worker").fit(X, y)
        print("FITTED", est.n_iter_)
        """
    )
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    cluster = {"cluster": {"worker": [f"127.0.0.1:{port}"]}}
    env = dict(
        os.environ,
        TF_CPP_MIN_LOG_LEVEL="3",
        TF_CONFIG=json.dumps({**cluster, "task": {"type": "worker", "index": 0}}),
    )
    proc = subprocess.run(
        [sys.executable, "-c", worker], env=env, capture_output=True, text=True,
        timeout=240,
    )  # fmt: skip
    assert "FITTED 2" in proc.stdout, proc.stderr[-2000:]
