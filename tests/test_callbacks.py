"""Keras callbacks, history_, and fits that fail or are interrupted."""

import copy
import warnings

import keras
import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.exceptions import ConvergenceWarning

from tfmlp import MLPClassifier, MLPRegressor

X, Y = load_iris(return_X_y=True)


class Recorder(keras.callbacks.Callback):
    def __init__(self, stop_at=None):
        super().__init__()
        self.events = []
        self.stop_at = stop_at

    def on_train_begin(self, logs=None):
        self.events.append(("begin", None))

    def on_epoch_end(self, epoch, logs=None):
        self.events.append(("epoch", epoch, dict(logs)))
        if self.stop_at is not None and epoch + 1 >= self.stop_at:
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        self.events.append(("end", None))


def _quiet_fit(est, *args):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(*args)


def test_callbacks_receive_loss_and_val_score():
    rec = Recorder()
    clf = MLPClassifier(
        hidden_layer_sizes=(5,),
        max_iter=4,
        early_stopping=True,
        random_state=0,
        callbacks=[rec],
    )
    _quiet_fit(clf, X, Y)
    assert rec.events[0] == ("begin", None) and rec.events[-1] == ("end", None)
    epochs = [e for e in rec.events if e[0] == "epoch"]
    assert [e[1] for e in epochs] == [0, 1, 2, 3]
    assert [e[2]["loss"] for e in epochs] == pytest.approx(clf.loss_curve_)
    assert [e[2]["val_score"] for e in epochs] == pytest.approx(clf.validation_scores_)
    assert clf.history_["loss"] == pytest.approx(clf.loss_curve_)
    assert rec.model is clf.model_


def test_history_keeps_the_numbers_callbacks_add():
    # Keras' LR callbacks add learning_rate to the logs and History keeps it
    class Extra(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            logs["note"] = "text"  # not a number: left out
            logs["vector"] = np.ones(3)  # not a scalar: left out
            if epoch == 1:
                logs["once"] = np.int32(7)

    schedule = keras.callbacks.LearningRateScheduler(lambda e, lr: 0.01 * 0.5**e)
    clf = MLPClassifier(
        hidden_layer_sizes=(5,),
        max_iter=3,
        random_state=0,
        callbacks=[schedule, Extra()],
    )
    _quiet_fit(clf, X, Y)
    assert set(clf.history_) == {"loss", "learning_rate", "once"}
    assert clf.history_["learning_rate"] == pytest.approx([0.01, 0.005, 0.0025])
    np.testing.assert_array_equal(clf.history_["once"], [np.nan, 7.0, np.nan])
    # later fits without callbacks keep the lists aligned
    _quiet_fit(clf.set_params(callbacks=None, warm_start=True, max_iter=2), X, Y)
    assert {len(v) for v in clf.history_.values()} == {5}
    assert np.isnan(clf.history_["learning_rate"][3:]).all()


def test_progbar_logger_prints_a_line_an_epoch(capsys):
    clf = MLPClassifier(
        hidden_layer_sizes=(5,),
        max_iter=2,
        batch_size=50,
        random_state=0,
        callbacks=[keras.callbacks.ProgbarLogger()],
    )
    _quiet_fit(clf, X, Y)
    out = capsys.readouterr().out
    assert "Epoch 1/2" in out and "Epoch 2/2" in out
    lines = [line for line in out.splitlines() if line.startswith("3/3 ")]
    assert len(lines) == 2 and all("loss:" in line for line in lines)


def test_callback_stops_training_cleanly():
    rec = Recorder(stop_at=3)
    clf = MLPClassifier(hidden_layer_sizes=(5,), max_iter=50, callbacks=[rec])
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        clf.fit(X, Y)
    assert clf.n_iter_ == 3
    assert len(clf.loss_curve_) == 3
    assert clf.predict(X).shape == (150,)


def test_keras_early_stopping_and_csv_logger(tmp_path):
    path = tmp_path / "log.csv"
    cbs = [
        keras.callbacks.EarlyStopping(monitor="loss", patience=0, min_delta=10.0),
        keras.callbacks.CSVLogger(str(path)),
    ]
    reg = MLPRegressor(hidden_layer_sizes=(4,), max_iter=30, callbacks=cbs)
    reg.fit(X, Y.astype(float))
    assert reg.n_iter_ == 2  # first epoch sets the best, the second fails min_delta
    lines = path.read_text().strip().splitlines()
    assert lines[0].split(",")[:2] == ["epoch", "loss"] and len(lines) == 3
    assert float(lines[1].split(",")[1]) == pytest.approx(reg.loss_curve_[0])


def test_model_checkpoint_writes_keras_file(tmp_path):
    path = tmp_path / "best.keras"
    cb = keras.callbacks.ModelCheckpoint(str(path), monitor="loss")
    _quiet_fit(MLPClassifier(hidden_layer_sizes=(3,), max_iter=2, callbacks=[cb]), X, Y)
    assert path.exists()


def test_bad_callbacks_type():
    with pytest.raises(TypeError, match="keras.callbacks.Callback"):
        MLPClassifier(max_iter=2, callbacks=["not a callback"]).fit(X, Y)
    with pytest.raises(TypeError, match="'callbacks' parameter"):
        MLPClassifier(max_iter=2, callbacks=42).fit(X, Y)


def test_interrupt_from_callback_keeps_a_usable_model():
    class Interrupt(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                raise KeyboardInterrupt

    clf = MLPClassifier(hidden_layer_sizes=(5,), max_iter=20, callbacks=[Interrupt()])
    with pytest.warns(UserWarning, match="Training interrupted by user"):
        clf.fit(X, Y)
    assert clf.n_iter_ == 2 and len(clf.loss_curve_) == 2
    assert clf.predict_proba(X).shape == (150, 3)


def test_interrupt_with_early_stopping_restores_best():
    class Interrupt(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 5:
                raise KeyboardInterrupt

    clf = MLPClassifier(
        hidden_layer_sizes=(5,),
        max_iter=50,
        early_stopping=True,
        random_state=1,
        learning_rate_init=0.05,
        callbacks=[Interrupt()],
    )
    with pytest.warns(UserWarning, match="interrupted"):
        clf.fit(X, Y)
    assert clf.n_iter_ == 6
    assert clf.best_validation_score_ == max(clf.validation_scores_)


@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_divergence_keeps_previous_model(solver):
    reg = MLPRegressor(
        hidden_layer_sizes=(5,), max_iter=5, random_state=0, solver=solver
    )
    _quiet_fit(reg, X, Y.astype(float))
    state = {k: copy.deepcopy(v) for k, v in vars(reg).items() if k.endswith("_")}
    before = [a.copy() for a in reg.coefs_ + reg.intercepts_]
    pred = reg.predict(X)
    reg.set_params(warm_start=True, learning_rate_init=1e12, alpha=0.0)
    with pytest.raises(ValueError, match="non-finite parameter weights"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            reg.fit(X * 1e150, Y.astype(float) * 1e150)
    for a, b in zip(before, reg.coefs_ + reg.intercepts_):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(pred, reg.predict(X))
    for key, value in state.items():
        assert repr(getattr(reg, key)) == repr(value), key


def test_bad_input_does_not_touch_fitted_model():
    clf = _quiet_fit(MLPClassifier(hidden_layer_sizes=(5,), max_iter=3), X, Y)
    proba = clf.predict_proba(X)
    with pytest.raises(ValueError):
        clf.partial_fit(X, np.full(150, 7))  # unseen label
    with pytest.raises(ValueError):
        clf.partial_fit(X[:, :3], Y)
    np.testing.assert_array_equal(proba, clf.predict_proba(X))


@pytest.mark.parametrize("solver", ["adam", "sgd"])
def test_tensorboard_writes_the_loss_and_learning_rate(tmp_path, solver):
    pytest.importorskip("tensorboard")
    from tensorflow.core.util import event_pb2
    from tensorflow.python.lib.io import tf_record

    board = keras.callbacks.TensorBoard(str(tmp_path))
    clf = MLPClassifier(max_iter=3, solver=solver, random_state=0, callbacks=[board])
    _quiet_fit(clf, X, Y)
    tags = set()
    for path in (tmp_path / "train").glob("events.out.tfevents.*"):
        for record in tf_record.tf_record_iterator(str(path)):
            tags.update(v.tag for v in event_pb2.Event.FromString(record).summary.value)
    assert {"epoch_loss", "epoch_learning_rate"} <= tags
    assert not hasattr(clf.model_, "optimizer")  # only attached during calls


@pytest.mark.parametrize("solver", ["adam", "sgd"])
def test_learning_rate_scheduler_sets_the_estimators_rate(solver):
    # a schedule that sets 0.01 from the first epoch trains like
    # learning_rate_init=0.01
    sched = keras.callbacks.LearningRateScheduler(lambda epoch, lr: 0.01)
    ours = MLPClassifier(max_iter=4, solver=solver, random_state=0, callbacks=[sched])
    plain = MLPClassifier(
        max_iter=4, solver=solver, random_state=0, learning_rate_init=0.01
    )
    _quiet_fit(ours, X, Y)
    _quiet_fit(plain, X, Y)
    assert ours.learning_rate_init == 0.001  # the parameter is not changed
    for a, b in zip(ours.coefs_, plain.coefs_):
        np.testing.assert_array_equal(a, b)


def test_reduce_lr_on_plateau_lowers_the_rate():
    reduce = keras.callbacks.ReduceLROnPlateau(
        monitor="loss", patience=0, factor=0.5, min_delta=100.0
    )
    clf = MLPClassifier(max_iter=3, solver="sgd", random_state=0, callbacks=[reduce])
    _quiet_fit(clf, X, Y)
    assert clf._optimizer.learning_rate == 0.001 * 0.5**2  # epochs 2 and 3


def test_a_compiled_models_optimizer_is_kept():
    clf = _quiet_fit(MLPClassifier(max_iter=2, random_state=0), X, Y)
    clf.model_.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    optimizer = clf.model_.optimizer
    seen = []

    class Look(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            seen.append(self.model.optimizer.learning_rate)

    optimizer.learning_rate = 0.25
    _quiet_fit(clf.set_params(warm_start=True, callbacks=[Look()]), X, Y)
    assert seen == [0.25, 0.25]  # the user's optimizer, not a stand-in
    assert clf.model_.optimizer is optimizer


def test_a_bad_learning_rate_from_a_callback_keeps_model():
    clf = _quiet_fit(MLPClassifier(max_iter=2, random_state=0), X, Y)
    before = clf.predict_proba(X)
    sched = keras.callbacks.LearningRateScheduler(lambda epoch, lr: -1.0)
    with pytest.raises(ValueError, match="learning rate to -1.0"):
        clf.set_params(warm_start=True, callbacks=[sched]).fit(X, Y)
    np.testing.assert_array_equal(before, clf.predict_proba(X))


def test_validation_loss_curve_starts_again_on_refit():
    clf = MLPClassifier(max_iter=6, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X, Y, validation_data=(X, Y))
        clf.set_params(max_iter=3).fit(X, Y, validation_data=(X, Y))
    assert len(clf.validation_loss_curve_) == clf.n_iter_ == 3
    _quiet_fit(clf.set_params(early_stopping=True, max_iter=4), X, Y)
    assert len(clf.validation_loss_curve_) == len(clf.validation_scores_)
    _quiet_fit(clf.set_params(early_stopping=False), X, Y)
    assert not hasattr(clf, "validation_loss_curve_")


def test_lbfgs_says_it_does_not_call_callbacks():
    recorder = Recorder()
    clf = MLPClassifier(solver="lbfgs", max_iter=5, callbacks=[recorder])
    with pytest.warns(UserWarning, match="lbfgs' has no epochs"):
        _quiet_fit(clf, X, Y)
    assert recorder.events == []


def test_lbfgs_warning_points_at_the_caller():
    clf = MLPClassifier(solver="lbfgs", max_iter=5, callbacks=[Recorder()])
    with warnings.catch_warnings(record=True) as records:
        warnings.simplefilter("always")
        clf.fit(X, Y)
    (record,) = [r for r in records if "no epochs" in str(r.message)]
    assert record.filename == __file__


def test_estimators_with_file_callbacks_pickle_and_clone_after_fit(tmp_path):
    import copy
    import pickle

    from sklearn.base import clone

    log = tmp_path / "log.csv"
    callbacks = [
        keras.callbacks.CSVLogger(str(log)),
        keras.callbacks.TensorBoard(str(tmp_path / "tb")),
    ]
    est = MLPClassifier((4,), max_iter=3, random_state=0, callbacks=callbacks)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(X, Y)
        again = clone(est)
        pickle.loads(pickle.dumps(est)).predict(X[:2])
        copy.deepcopy(est)
        log.unlink()
        again.fit(X, Y)  # the cloned callbacks open their files again
    assert len(log.read_text().splitlines()) == 4  # header + 3 epochs


def test_weights_a_callback_sets_at_train_end_are_checked():
    class Poison(keras.callbacks.Callback):
        def on_train_end(self, logs=None):
            self.model.set_weights([w * np.nan for w in self.model.get_weights()])

    est = _quiet_fit(
        MLPClassifier(hidden_layer_sizes=(5,), max_iter=3, random_state=0), X, Y
    )
    before = [c.copy() for c in est.coefs_]
    est.set_params(callbacks=[Poison()], warm_start=True)
    with pytest.raises(ValueError, match="non-finite"):
        est.fit(X, Y)
    for a, b in zip(before, est.coefs_):
        np.testing.assert_array_equal(a, b)


def test_backup_and_restore_resuming_says_how_tfmlp_counts(tmp_path):
    class Crash(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 2:
                raise RuntimeError("crash")

    backup = keras.callbacks.BackupAndRestore(str(tmp_path / "backup"))
    est = MLPClassifier(hidden_layer_sizes=(5,), max_iter=5, random_state=0)
    est.set_params(callbacks=[backup, Crash()])
    with pytest.raises(RuntimeError, match="crash"):
        est.fit(X, Y)
    est.set_params(callbacks=[backup])
    with pytest.warns(UserWarning, match="BackupAndRestore") as rec:
        est.fit(X, Y)
    said = [w for w in rec if "BackupAndRestore" in str(w.message)]
    assert said[0].filename == __file__  # the line that called fit


def test_callbacks_see_the_batch_count_of_a_dataset_that_knows_it():
    import tensorflow as tf

    seen = []

    class Steps(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            seen.append(self.params["steps"])

    Xd, yd = X[:60], Y[:60]
    ds = tf.data.Dataset.from_tensor_slices((Xd, yd)).batch(20)
    unknown = ds.filter(lambda x, y: True)  # tf.data cannot count these
    for data, steps in ((ds, 3), (unknown, None)):
        seen.clear()
        clf = MLPClassifier(hidden_layer_sizes=(3,), max_iter=2, callbacks=[Steps()])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            clf.fit(data, classes=np.unique(Y))
        assert seen[0] == steps and len(seen) == 2


class _OnEpochEnd(keras.callbacks.Callback):
    def __init__(self, action):
        super().__init__()
        self.action = action

    def on_epoch_end(self, epoch, logs=None):
        self.action(epoch)


def test_fit_called_from_its_own_callback_is_refused():
    """A nested fit of the estimator being trained replaced its network and
    counters under the running fit (n_iter_ 9 with max_iter=5, or a model
    whose n_features_in_ disagreed with its weights)."""
    est = _quiet_fit(MLPClassifier((5,), max_iter=3, random_state=0), X, Y)
    before = [c.copy() for c in est.coefs_]
    est.set_params(callbacks=[_OnEpochEnd(lambda epoch: est.fit(X[:, :2], Y))])
    with pytest.raises(RuntimeError, match="is being trained"):
        est.fit(X, Y)
    est.set_params(callbacks=None)
    assert est.n_features_in_ == 4 and est.n_iter_ == 3
    for a, b in zip(est.coefs_, before):
        np.testing.assert_array_equal(a, b)
    est.partial_fit(X, Y)  # no longer marked as training
    assert len(est.loss_curve_) == 4


def test_early_stopping_switched_on_by_a_callback_applies_from_the_next_fit():
    est = MLPClassifier((5,), max_iter=4, random_state=0)
    est.set_params(
        callbacks=[_OnEpochEnd(lambda epoch: est.set_params(early_stopping=True))]
    )
    _quiet_fit(est, X, Y)  # was an UnboundLocalError from the epoch loop
    assert est.n_iter_ == 4 and est.validation_scores_ is None


def test_weights_a_callback_sets_through_coefs_are_trained_from():
    """As weights set through the Keras model: the next epoch trains from
    them (they were written into the network only when coefs_ was next read,
    over the epochs trained in between)."""
    params = dict(hidden_layer_sizes=(5,), max_iter=3, random_state=0, solver="sgd")

    def through_coefs(est, epoch):
        if epoch == 0:
            coefs = [c.copy() for c in est.coefs_]
            coefs[0][:] = 0.5
            est.coefs_ = coefs
        if epoch == 2:
            _ = est.coefs_  # a read, as a logger's

    def through_keras(est, epoch):
        if epoch == 0:
            layer = est.model_.layers[1]
            kernel, bias = layer.get_weights()
            layer.set_weights([np.full_like(kernel, 0.5), bias])

    fits = []
    for edit in (through_coefs, through_keras):
        est = MLPClassifier(**params)
        est.set_params(
            callbacks=[_OnEpochEnd(lambda e, est=est, edit=edit: edit(est, e))]
        )
        fits.append(_quiet_fit(est, X, Y))
    assert not np.all(fits[0].coefs_[0] == 0.5)
    for a, b in zip(
        fits[0].coefs_ + fits[0].intercepts_, fits[1].coefs_ + fits[1].intercepts_
    ):
        np.testing.assert_array_equal(a, b)


@pytest.mark.slow
def test_predicting_in_another_thread_leaves_a_fit_unchanged():
    """A predict in another thread wrote its (stale) weight arrays into the
    variables a fit was training, now and then (a few in 20 attempts)."""
    import sys
    import threading

    params = dict(
        hidden_layer_sizes=(5,),
        max_iter=40,
        random_state=0,
        early_stopping=True,
        n_iter_no_change=1000,
    )
    reference = _quiet_fit(MLPClassifier(**params), X, Y)
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        for _ in range(6):
            est = _quiet_fit(MLPClassifier(**params), X, Y)
            done = threading.Event()

            def predict(est=est, done=done):
                while not done.is_set():
                    est.predict_proba(X[:2])

            reader = threading.Thread(target=predict)
            reader.start()
            try:
                _quiet_fit(est, X, Y)
            finally:
                done.set()
                reader.join()
            assert est.loss_curve_ == reference.loss_curve_
            for a, b in zip(est.coefs_, reference.coefs_):
                np.testing.assert_array_equal(a, b)
    finally:
        sys.setswitchinterval(interval)


def test_while_a_fit_runs_only_its_thread_writes_the_weights():
    """The race above, made certain: another thread's predict, whose arrays
    differ from the variables, must not write them into the network."""
    import threading

    est = MLPClassifier((5,), max_iter=3, random_state=0, solver="sgd")
    seen = {}

    def predict_from_another_thread(epoch):
        if epoch == 1:
            original = est.__dict__["_coefs"]
            stale = [np.zeros_like(c) for c in original]
            est.__dict__["_coefs"] = stale  # what a reader may hold mid-update
            reader = threading.Thread(target=lambda: est.predict_proba(X[:200]))
            reader.start()
            reader.join()
            seen["kernel"] = est._net.variables[0].numpy().copy()
            est.__dict__["_coefs"] = original

    est.set_params(callbacks=[_OnEpochEnd(predict_from_another_thread)])
    _quiet_fit(est, X, Y)
    assert np.any(seen["kernel"] != 0)


def test_a_model_a_callback_compiles_keeps_its_optimizer():
    class Compile(keras.callbacks.Callback):
        def on_train_end(self, logs=None):
            self.model.compile(optimizer="adam", loss="categorical_crossentropy")

    est = _quiet_fit(MLPClassifier((5,), max_iter=2, callbacks=[Compile()]), X, Y)
    assert est.model_.optimizer is not None
    est.model_.fit(X, keras.utils.to_categorical(Y, 3), epochs=1, verbose=0)


def _digits(n=300):
    from sklearn.datasets import load_digits

    Xd, yd = load_digits(return_X_y=True)
    return Xd[:n] / 16.0, yd[:n]


def test_monitoring_callbacks_take_a_float64_loss_beyond_float32():
    """Keras compares a monitored Python float as a float32 tensor: a finite
    float64 loss of 5e40 crashed EarlyStopping / ReduceLROnPlateau."""
    rng = np.random.RandomState(0)
    Xr = rng.rand(100, 3)
    yr = Xr @ np.array([1.0, 2.0, 3.0]) * 1e20
    kw = dict(hidden_layer_sizes=(5,), max_iter=3, random_state=0)
    plain = _quiet_fit(MLPRegressor(**kw), Xr, yr)
    assert 3.5e38 < plain.loss_ < np.inf
    watchers = [
        keras.callbacks.EarlyStopping(monitor="loss", patience=5),
        keras.callbacks.ReduceLROnPlateau(monitor="loss", patience=5),
    ]
    watched = _quiet_fit(MLPRegressor(callbacks=watchers, **kw), Xr, yr)
    assert watched.loss_curve_ == plain.loss_curve_


def test_a_checkpoint_holds_the_state_after_the_epochs_stopping_check(tmp_path):
    """The adaptive rate is divided at the end of an epoch before callbacks
    run, so a checkpoint taken then resumes as the uninterrupted run goes on
    (it held the undivided rate: 5x too large)."""
    import tfmlp
    from tfmlp.callbacks import EstimatorCheckpoint

    class Crash(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 3:
                raise RuntimeError("machine died")

    Xd, yd = _digits()
    path = tmp_path / "run.tfmlp"
    kw = dict(hidden_layer_sizes=(10,), solver="sgd", learning_rate="adaptive",
              learning_rate_init=0.1, shuffle=False, tol=10.0, n_iter_no_change=1,
              random_state=0)  # fmt: skip
    full = _quiet_fit(MLPClassifier(max_iter=6, **kw), Xd, yd)
    crashing = MLPClassifier(
        max_iter=6, callbacks=[EstimatorCheckpoint(path), Crash()], **kw
    )
    with pytest.raises(RuntimeError, match="machine died"):
        _quiet_fit(crashing, Xd, yd)
    resumed = tfmlp.load(path)  # saved at the end of epoch 3
    assert resumed._optimizer.learning_rate == pytest.approx(0.02)
    for _ in range(3):
        resumed.partial_fit(Xd, yd)
    np.testing.assert_allclose(resumed.loss_curve_, full.loss_curve_, rtol=1e-10)


def test_a_callback_list_is_taken_apart(tmp_path):
    """keras.callbacks.CallbackList([...]) as callbacks=: its EstimatorCheckpoint
    wrote nothing, its CSVLogger made the estimator unpicklable."""
    import pickle

    from sklearn.base import clone

    from tfmlp.callbacks import EstimatorCheckpoint

    cbs = keras.callbacks.CallbackList(
        [
            EstimatorCheckpoint(tmp_path / "m.tfmlp"),
            keras.callbacks.CSVLogger(str(tmp_path / "log.csv")),
        ]
    )
    est = _quiet_fit(
        MLPClassifier((5,), max_iter=3, random_state=0, callbacks=cbs), X, Y
    )
    assert (tmp_path / "m.tfmlp").exists()
    assert len((tmp_path / "log.csv").read_text().splitlines()) == 4
    pickle.loads(pickle.dumps(est))
    clone(est)


def test_reduce_lr_on_plateau_lasts_under_invscaling():
    """invscaling recomputes the rate from learning_rate_init every epoch: a
    cut by ReduceLROnPlateau lasted one epoch."""
    Xd, yd = _digits(200)
    rates = {}

    class Rates(keras.callbacks.Callback):
        def __init__(self, key):
            super().__init__()
            self.key = key

        def on_epoch_begin(self, epoch, logs=None):
            rates.setdefault(self.key, []).append(
                float(self.model.optimizer.learning_rate)
            )

    plateau = keras.callbacks.ReduceLROnPlateau(
        monitor="loss", factor=0.01, patience=0, min_delta=1e9, cooldown=100
    )
    kw = dict(hidden_layer_sizes=(10,), solver="sgd", learning_rate="invscaling",
              learning_rate_init=0.5, max_iter=6, random_state=0)  # fmt: skip
    _quiet_fit(MLPClassifier(callbacks=[Rates("cut"), plateau], **kw), Xd, yd)
    _quiet_fit(MLPClassifier(callbacks=[Rates("plain")], **kw), Xd, yd)
    ratio = np.array(rates["cut"]) / np.array(rates["plain"])
    np.testing.assert_allclose(ratio, [1, 1, 0.01, 0.01, 0.01, 0.01], rtol=1e-9)


def test_a_backup_restored_once_is_not_reported_by_later_fits(tmp_path):
    Xd, yd = _digits(200)

    class Crash(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                raise RuntimeError("simulated crash")

    backup = keras.callbacks.BackupAndRestore(str(tmp_path / "backup"))
    est = MLPClassifier((10,), max_iter=4, random_state=0, callbacks=[backup, Crash()])
    with pytest.raises(RuntimeError):
        est.fit(Xd, yd)
    est.set_params(callbacks=[backup])
    with pytest.warns(UserWarning, match="restored the weights of epoch"):
        _quiet_fit(est, Xd, yd)
    est.set_params(warm_start=True, callbacks=[keras.callbacks.History()])
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        _quiet_fit(est, Xd, yd)
        est.partial_fit(Xd, yd)


def test_callbacks_that_act_per_batch_are_warned_about(tmp_path):
    class PerBatch(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            pass

    silent = [
        keras.callbacks.ModelCheckpoint(str(tmp_path / "m.keras")),
        keras.callbacks.EarlyStopping(monitor="loss"),
        keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: None),
        keras.callbacks.TerminateOnNaN(),
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        _quiet_fit(MLPClassifier((5,), max_iter=2, callbacks=silent), X, Y)
    for cb in (
        keras.callbacks.ModelCheckpoint(str(tmp_path / "m.keras"), save_freq=2),
        keras.callbacks.LambdaCallback(on_train_batch_end=lambda batch, logs: None),
        PerBatch(),
    ):
        with pytest.warns(UserWarning, match="not per batch"):
            _quiet_fit(MLPClassifier((5,), max_iter=2, callbacks=[cb]), X, Y)


def test_a_predict_in_another_thread_sees_the_current_weights():
    import threading

    Xd, yd = _digits(400)
    got = {}

    def predict_from_both_threads(epoch):
        if epoch == 2:
            reader = threading.Thread(
                target=lambda: got.update(other=est.predict_proba(Xd[:3]))
            )
            reader.start()
            reader.join()
            got["own"] = est.predict_proba(Xd[:3])

    est = MLPClassifier((8,), max_iter=4, random_state=0)
    est.set_params(callbacks=[_OnEpochEnd(predict_from_both_threads)])
    _quiet_fit(est, Xd, yd)
    np.testing.assert_allclose(got["other"], got["own"], rtol=1e-6)


def test_early_stopping_switched_off_mid_fit_keeps_the_calls_criterion():
    kw = dict(hidden_layer_sizes=(5,), max_iter=30, random_state=0,
              early_stopping=True, n_iter_no_change=2)  # fmt: skip
    plain = _quiet_fit(MLPClassifier(**kw), X, Y)
    switched = MLPClassifier(**kw)
    switched.set_params(
        callbacks=[_OnEpochEnd(lambda e: switched.set_params(early_stopping=False))]
    )
    _quiet_fit(switched, X, Y)
    assert switched.n_iter_ == plain.n_iter_
    for a, b in zip(switched.coefs_, plain.coefs_):
        np.testing.assert_array_equal(a, b)


def test_weights_of_other_shapes_set_mid_fit_are_refused():
    est = _quiet_fit(MLPClassifier((8,), max_iter=2, random_state=0), X, Y)
    before = [c.copy() for c in est.coefs_]

    def reshape(epoch):
        est.coefs_ = [np.zeros((4, 3)), np.zeros((3, 3))]
        est.intercepts_ = [np.zeros(3), np.zeros(3)]

    est.set_params(warm_start=True, callbacks=[_OnEpochEnd(reshape)])
    with pytest.raises(ValueError, match="arrays of other shapes"):
        est.fit(X, Y)
    for a, b in zip(est.coefs_, before):
        np.testing.assert_array_equal(a, b)


def test_a_stopped_fit_does_not_stop_the_next():
    class StopFirst(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if not getattr(self, "done", False):
                self.done = True
                self.model.stop_training = True

    clf = MLPClassifier(hidden_layer_sizes=(5,), max_iter=5, callbacks=[StopFirst()])
    _quiet_fit(clf, X, Y)
    assert clf.n_iter_ == 1
    _quiet_fit(clf.set_params(warm_start=True), X, Y)
    assert clf.n_iter_ == 5


def test_a_schedule_setting_a_zero_rate_is_refused():
    schedule = keras.callbacks.LearningRateScheduler(lambda e, lr: 0.0)
    with pytest.raises(ValueError, match="positive finite number"):
        _quiet_fit(MLPClassifier(max_iter=2, callbacks=[schedule]), X, Y)


class _FailsAtEpoch1(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        if epoch == 1:
            raise RuntimeError("boom")


def test_a_failed_fit_closes_csv_logger_and_pickles(tmp_path):
    import pickle

    log = keras.callbacks.CSVLogger(str(tmp_path / "log.csv"))
    clf = MLPClassifier(max_iter=4, callbacks=[log, _FailsAtEpoch1()])
    with pytest.raises(RuntimeError, match="boom"):
        _quiet_fit(clf, X, Y)
    assert log.csv_file is None or log.csv_file.closed
    pickle.loads(pickle.dumps(clf))


class _HistoryProbe(keras.callbacks.Callback):
    """Records, at each epoch's end, how long history_ and loss_curve_ are."""

    def set_estimator(self, est):
        self.est, self.seen = est, []

    def on_epoch_end(self, epoch, logs=None):
        self.seen.append((len(self.est.history_["loss"]), len(self.est.loss_curve_)))


def test_callbacks_see_the_epoch_in_history():
    probe = _HistoryProbe()
    _quiet_fit(
        MLPClassifier(hidden_layer_sizes=(5,), max_iter=3, callbacks=[probe]), X, Y
    )
    assert probe.seen == [(1, 1), (2, 2), (3, 3)]


def test_progbar_logger_counts_a_stream_of_unknown_length(capsys):
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices((X, Y)).batch(50).filter(lambda x, y: True)
    clf = MLPClassifier(max_iter=2, callbacks=[keras.callbacks.ProgbarLogger()])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(ds, classes=[0, 1, 2])
    out = capsys.readouterr().out
    assert len([line for line in out.splitlines() if line.startswith("3/3 ")]) == 2


@pytest.mark.parametrize("raise_error", [False, True])
def test_terminate_on_nan_stops_a_diverging_fit_at_its_epoch(raise_error):
    # its one hook is per batch: tfmlp runs it on each epoch's loss (with
    # early stopping a diverging fit goes on, as scikit-learn's)
    from sklearn.datasets import load_diabetes

    Xd, yd = load_diabetes(return_X_y=True)
    params = dict(solver="sgd", learning_rate_init=1e4, momentum=0.99)
    params.update(max_iter=40, n_iter_no_change=1000, early_stopping=True)
    free = _quiet_fit(MLPRegressor(**params, random_state=0), Xd, yd * 100)
    first_bad = int(np.flatnonzero(~np.isfinite(free.loss_curve_))[0])
    assert free.n_iter_ == 40 and first_bad < 30
    stop = keras.callbacks.TerminateOnNaN(raise_error=raise_error)
    est = MLPRegressor(**params, random_state=0, callbacks=[stop])
    if raise_error:
        with pytest.raises(RuntimeError, match="NaN or Inf loss"):
            _quiet_fit(est, Xd, yd * 100)
        assert not hasattr(est, "coefs_")  # the fit failed: left unfitted
    else:
        _quiet_fit(est, Xd, yd * 100)
        assert est.n_iter_ == first_bad + 1


_TRAINING: dict = {}  # the estimator _CopyAtEpoch1 copies (not its attribute)


class _CopyAtEpoch1(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        import pickle

        from sklearn.base import clone

        if epoch == 1:
            est = _TRAINING["est"]
            _TRAINING.update(pickle=pickle.loads(pickle.dumps(est)), clone=clone(est))
            _TRAINING["deepcopy"] = copy.deepcopy(est)


@pytest.mark.parametrize("kind", ["csv", "tensorboard", "tensorboard per batch"])
def test_a_callback_may_copy_the_estimator_while_a_logger_writes(tmp_path, kind):
    if kind.startswith("tensorboard"):
        pytest.importorskip("tensorboard")
        # per batch: it enters its writer's context at on_train_begin
        freq = 1 if kind.endswith("batch") else "epoch"
        logger = keras.callbacks.TensorBoard(
            log_dir=str(tmp_path / "tb"), update_freq=freq
        )
    else:
        logger = keras.callbacks.CSVLogger(str(tmp_path / "log.csv"))
    est = MLPClassifier(
        (5,), max_iter=3, random_state=0, callbacks=[logger, _CopyAtEpoch1()]
    )
    _TRAINING.clear()
    _TRAINING["est"] = est
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "TensorBoard: tfmlp calls callbacks")
        _quiet_fit(est, X, Y)
    assert {"pickle", "clone", "deepcopy"} <= set(_TRAINING)
    assert est.n_iter_ == 3
    if kind == "csv":  # the original kept writing
        assert len((tmp_path / "log.csv").read_text().splitlines()) == 4
    # a copy trains and logs on its own
    twin = _TRAINING["deepcopy"]
    assert twin.callbacks[0] is not logger
    _quiet_fit(twin.set_params(callbacks=twin.callbacks[:1]), X, Y)
    assert twin.n_iter_ == 3
    _TRAINING.clear()


class _Fail(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        raise ValueError("stop here")


def test_a_tensorboard_logging_per_batch_leaves_a_failed_fit_copyable(tmp_path):
    import pickle

    pytest.importorskip("tensorboard")

    board = keras.callbacks.TensorBoard(log_dir=str(tmp_path / "tb"), update_freq=1)
    est = MLPClassifier((5,), max_iter=3, random_state=0, callbacks=[board, _Fail()])
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "TensorBoard: tfmlp calls callbacks")
        with pytest.raises(ValueError, match="stop here"):
            est.fit(X, Y)
    assert not board._prev_summary_state  # its writer context was left
    pickle.loads(pickle.dumps(est))


def test_an_interrupt_in_train_begin_trains_no_epoch_and_counts_none():
    class Interrupt(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            raise KeyboardInterrupt

    est = _quiet_fit(MLPClassifier((5,), max_iter=5, random_state=0), X, Y)
    est.set_params(warm_start=True, callbacks=[Interrupt()])
    with pytest.warns(UserWarning, match="interrupted"):
        _quiet_fit(est, X, Y)
    assert est.n_iter_ == 0  # as for Ctrl-C there (scikit-learn resets it)
