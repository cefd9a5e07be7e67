"""The ``hidden_stack`` parameter: a user-built Keras hidden stack."""

import copy
import pickle
import random
import threading
import time
import warnings

import keras
import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV

from tfmlp import MLPClassifier, MLPRegressor

X, Y = load_digits(return_X_y=True)
X = X / 16.0


def dropout_stack(x):
    x = keras.layers.Dense(32, activation="relu")(x)
    return keras.layers.Dropout(0.2)(x)


def bn_stack(x):
    x = keras.layers.Dense(24)(x)
    x = keras.layers.BatchNormalization()(x)
    return keras.layers.Activation("relu")(x)


def _fit(est, X=X, y=Y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(X, y)


def test_dropout_stack_trains_and_reports_dense_weights():
    clf = _fit(
        MLPClassifier(
            hidden_stack=dropout_stack,
            max_iter=15,
            learning_rate_init=0.01,
            random_state=0,
        )
    )
    assert clf.score(X, Y) > 0.9
    assert [c.shape for c in clf.coefs_] == [(64, 32), (32, 10)]
    assert [b.shape for b in clf.intercepts_] == [(32,), (10,)]
    assert clf.n_layers_ == 3 and clf.out_activation_ == "softmax"
    layer_types = {type(ly).__name__ for ly in clf.model_.layers}
    assert "Dropout" in layer_types
    # inference is deterministic (dropout off) and equals the Keras model
    p1, p2 = clf.predict_proba(X), clf.predict_proba(X)
    np.testing.assert_array_equal(p1, p2)
    np.testing.assert_allclose(np.asarray(clf.model_(X)), p1, rtol=1e-12)


def test_same_seed_same_dense_init():
    a = MLPClassifier(hidden_stack=bn_stack, max_iter=1, random_state=3)
    b = MLPClassifier(hidden_stack=bn_stack, max_iter=1, random_state=3)
    _fit(a), _fit(b)
    for u, v in zip(a.coefs_, b.coefs_):
        np.testing.assert_array_equal(u, v)


def test_batchnorm_stack_updates_moving_stats():
    clf = MLPClassifier(
        hidden_stack=bn_stack, max_iter=30, learning_rate_init=0.01, random_state=0
    )
    _fit(clf)
    bn = next(ly for ly in clf.model_.layers if "batch_norm" in ly.name)
    assert not np.allclose(bn.moving_mean.numpy(), 0.0)
    assert clf.score(X, Y) > 0.95  # inference uses the moving statistics


@pytest.mark.parametrize(
    "first",
    [
        lambda: keras.layers.LayerNormalization(),
        lambda: keras.layers.GroupNormalization(groups=4),
    ],
)
def test_layers_that_need_the_input_width_can_come_first(first):
    # the compiled functions take inputs of any shape: the stack still sees
    # the feature width (LayerNormalization builds its weights from it)
    def stack(x):
        return keras.layers.Dense(8, activation="relu")(first()(x))

    import scipy.sparse as sp
    import tensorflow as tf

    clf = _fit(MLPClassifier(hidden_stack=stack, max_iter=3, random_state=0))
    clf.partial_fit(X[:100], Y[:100])
    proba = clf.predict_proba(X)
    np.testing.assert_allclose(clf.predict_proba(sp.csr_matrix(X)), proba, atol=1e-12)
    np.testing.assert_allclose(np.asarray(clf.model_(X)), proba, rtol=1e-10)
    assert clf.transform(X).shape == (len(X), 8)
    ds = tf.data.Dataset.from_tensor_slices((X, Y)).batch(100)
    reg = MLPRegressor(hidden_stack=stack, max_iter=2, random_state=0)
    _fit(reg, ds, None)
    assert reg.predict(X).shape == (len(X),)


def test_clone_pickle_and_grid_search():
    clf = MLPClassifier(hidden_stack=dropout_stack, max_iter=5, random_state=0)
    assert clone(clf).get_params()["hidden_stack"] is dropout_stack
    _fit(clf)
    restored = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(restored.predict_proba(X), clf.predict_proba(X))
    bn = _fit(MLPClassifier(hidden_stack=bn_stack, max_iter=3, random_state=0))
    bn2 = pickle.loads(pickle.dumps(bn))
    np.testing.assert_allclose(bn2.predict_proba(X), bn.predict_proba(X), rtol=1e-12)
    search = GridSearchCV(
        MLPClassifier(hidden_stack=dropout_stack, max_iter=3, random_state=0),
        {"alpha": [1e-4, 1e-2]},
        cv=2,
    )
    _fit(search)
    assert search.best_estimator_.hidden_stack is dropout_stack


def test_warm_start_and_partial_fit_continue():
    clf = _fit(MLPClassifier(hidden_stack=dropout_stack, max_iter=2, random_state=0))
    before = clf.coefs_[0].copy()
    clf.partial_fit(X, Y)
    assert not np.array_equal(before, clf.coefs_[0])
    clf.set_params(warm_start=True)
    _fit(clf)
    assert clf.n_iter_ == 2 and len(clf.loss_curve_) == 5


def test_regressor_with_stack_and_errors():
    y = X[:, :3].sum(axis=1)
    reg = _fit(MLPRegressor(hidden_stack=bn_stack, max_iter=10, random_state=0), X, y)
    assert reg.predict(X).shape == (len(X),)
    with pytest.raises(ValueError, match="solver='lbfgs' does not support"):
        MLPRegressor(hidden_stack=bn_stack, solver="lbfgs").fit(X, y)
    with pytest.raises(TypeError, match="hidden_stack"):
        MLPRegressor(hidden_stack=lambda x: 3, max_iter=1).fit(X, y)
    with pytest.raises(ValueError, match="hidden_stack"):
        MLPRegressor(hidden_stack="dense", max_iter=1).fit(X, y)


class _Crash(keras.callbacks.Callback):
    """Fails the fit after its first epoch (the dropout masks have advanced)."""

    def on_epoch_end(self, epoch, logs=None):
        raise RuntimeError("simulated failure")


def test_dropout_state_survives_copies_and_rollback():
    """A user Dropout layer's generator state is part of the estimator's
    state: a copy, and the original after a failed fit rolled back, continue
    training exactly like a copy taken before."""
    clf = _fit(MLPClassifier(hidden_stack=dropout_stack, max_iter=2, random_state=0))
    reference = pickle.loads(pickle.dumps(clf))
    clf.set_params(warm_start=True, callbacks=[_Crash()])
    with pytest.raises(RuntimeError, match="simulated failure"):
        clf.fit(X, Y)
    clf.set_params(warm_start=False, callbacks=None)
    for est in (clf, reference):
        est.partial_fit(X, Y)
    np.testing.assert_array_equal(clf.predict_proba(X), reference.predict_proba(X))


def _noisy_stack(x):
    # layers whose seeds Keras draws from Python's random when none is given
    x = keras.layers.Dense(16, activation="relu")(x)
    x = keras.layers.Dropout(0.3)(x)
    x = keras.layers.GaussianNoise(0.1)(x)
    # not a Dense layer, so tfmlp does not draw its weights: Keras does
    return keras.layers.EinsumDense("ab,bc->ac", output_shape=8)(x)


def _state(est):
    return [w.copy() for w in est.model_.get_weights()]


@pytest.mark.slow
def test_a_stack_with_unseeded_random_layers_is_reproducible():
    import random
    import subprocess
    import sys

    kw = dict(hidden_stack=_noisy_stack, max_iter=3, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        python_random = random.getstate()
        a = MLPClassifier(**kw).fit(X[:300], Y[:300])
        assert random.getstate() == python_random  # left as it was
        b = clone(a).fit(X[:300], Y[:300])
        c = MLPClassifier(**{**kw, "random_state": 1}).fit(X[:300], Y[:300])
    for u, v in zip(_state(a), _state(b)):
        np.testing.assert_array_equal(u, v)
    assert any(not np.array_equal(u, v) for u, v in zip(_state(a), _state(c)))
    code = (
        "import warnings; warnings.simplefilter('ignore'); import numpy as np\n"
        "from test_hidden_stack import MLPClassifier, X, Y, _noisy_stack\n"
        "m = MLPClassifier(hidden_stack=_noisy_stack, max_iter=3, random_state=0)\n"
        "m.fit(X[:300], Y[:300])\n"
        "print(float(sum(np.abs(w).sum() for w in m.model_.get_weights())))"
    )
    import os

    here = os.path.dirname(__file__)
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=here,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    total = float(sum(np.abs(w).sum() for w in _state(a)))
    assert float(out.stdout.split()[-1]) == pytest.approx(total, rel=1e-12)


def test_a_stack_not_built_on_its_input_is_a_clear_error():
    def unconnected(x):
        return keras.layers.Dense(4)(keras.Input((3,)))

    with pytest.raises(ValueError, match="must build its layers on the input tensor"):
        MLPClassifier(hidden_stack=unconnected, max_iter=1).fit(X, Y)


def small_stack(x):
    return keras.layers.Dense(5, activation="tanh")(x)


@pytest.mark.parametrize(
    "stack",
    [
        lambda x: keras.layers.Dense(8, activation="relu", dtype="float32")(x),
        keras.Sequential([keras.layers.Dense(6, activation="relu")]),  # float32
    ],
)
def test_layers_in_another_dtype_are_a_clear_error(stack):
    clf = _fit(MLPClassifier(hidden_stack=small_stack, max_iter=2, random_state=0))
    before = clf.predict_proba(X[:20])
    clf.set_params(hidden_stack=stack, warm_start=False)
    with pytest.raises(ValueError, match="keep their weights in another dtype"):
        clf.fit(X, Y)  # float64 data: the network trains in float64
    np.testing.assert_array_equal(clf.predict_proba(X[:20]), before)


def test_a_changed_stack_is_not_trained_as_the_fitted_one():
    clf = _fit(MLPClassifier(hidden_stack=dropout_stack, max_iter=2, random_state=0))
    before = clf.predict_proba(X[:20])
    clf.set_params(hidden_stack=small_stack)
    # a copy rebuilds the stack it was trained with, as the original predicts
    np.testing.assert_array_equal(
        pickle.loads(pickle.dumps(clf)).predict_proba(X[:20]), before
    )
    clf.set_params(warm_start=True)
    for call in (lambda: clf.fit(X, Y), lambda: clf.partial_fit(X, Y)):
        with pytest.raises(ValueError, match="no longer describe the fitted"):
            call()
    np.testing.assert_array_equal(clf.predict_proba(X[:20]), before)
    clf.set_params(warm_start=False)
    assert [c.shape for c in _fit(clf).coefs_] == [(64, 5), (5, 10)]


@pytest.mark.parametrize(
    "change",
    [
        {"dropout": 0.3},
        {"batch_normalization": True},
        {"activation": "tanh"},
        {"hidden_layer_sizes": (9,)},
        {"dropout": 0.0},  # back to the standard network
    ],
)
def test_changed_standard_stack_parameters_refuse_to_continue(change):
    clf = _fit(MLPClassifier((12,), dropout=0.2, max_iter=2, random_state=0))
    clf.set_params(warm_start=True, **change)
    with pytest.raises(ValueError, match="warm_start=True and partial_fit continue"):
        clf.fit(X, Y)
    clf.set_params(dropout=0.2, activation="relu", hidden_layer_sizes=(12,))
    clf.set_params(batch_normalization=False)
    _fit(clf)  # the fitted stack's parameters again: continues


def test_dropout_none_and_zero_are_the_same_stack_for_a_warm_start():
    clf = _fit(MLPClassifier((12,), batch_normalization=True, max_iter=2))
    before = clf.coefs_[0].copy()
    for dropout in (0.0, None):  # no Dropout layer either way
        clf.set_params(dropout=dropout, warm_start=True, max_iter=1)
        _fit(clf)
        assert len(clf.loss_curve_) == 3 + (dropout is None)
    assert np.abs(clf.coefs_[0] - before).max() < 0.1  # continued, not new


def test_a_standard_network_does_not_continue_as_a_stack():
    clf = _fit(MLPClassifier((12,), max_iter=2, random_state=0, warm_start=True))
    clf.set_params(hidden_stack=small_stack)
    with pytest.raises(ValueError, match="fitted with the standard network"):
        clf.fit(X, Y)
    with pytest.raises(ValueError, match="fitted with the standard network"):
        clf.set_params(hidden_stack=None, dropout=0.1).partial_fit(X, Y)


class _Counter(keras.layers.Layer):
    """Identity with an integer state weight (not trained)."""

    def build(self, input_shape):
        self.count = self.add_weight(
            shape=(), dtype="int64", initializer="zeros", trainable=False
        )

    def call(self, x):
        return x


def counter_stack(x):
    return _Counter(name="counter")(keras.layers.Dense(6, activation="relu")(x))


def test_integer_state_weights_are_not_refused():
    clf = _fit(MLPClassifier(hidden_stack=counter_stack, max_iter=2, random_state=0))
    assert [c.shape for c in clf.coefs_] == [(64, 6), (6, 10)]


def test_a_failed_call_keeps_a_partial_or_object_stack_continuable():
    import functools

    def widths(x, units):
        return keras.layers.Dense(units, activation="relu")(x)

    stack = functools.partial(widths, units=7)
    clf = MLPClassifier(hidden_stack=stack, random_state=0)
    clf.partial_fit(X, Y, classes=np.arange(10))
    with pytest.raises(ValueError, match="features"):
        clf.partial_fit(X[:, :5], Y)
    clf.partial_fit(X, Y)  # the state put back holds the same stack object
    assert len(clf.loss_curve_) == 2


def test_dropout_none_and_zero_build_the_same_stack():
    clf = _fit(
        MLPClassifier(
            (6,), dropout=0.0, batch_normalization=True, max_iter=2, random_state=0
        )
    )
    clf.set_params(dropout=None, warm_start=True)
    _fit(clf)  # continues: the same layers


def _regularized(kind):
    def stack(x):
        if kind == "kernel":
            return keras.layers.Dense(8, kernel_regularizer=keras.regularizers.L2(1.0))(
                x
            )
        if kind == "activity":
            x = keras.layers.Dense(8, activation="relu")(x)
            return keras.layers.ActivityRegularization(l1=1.0)(x)
        return keras.layers.Dense(8)(x)

    return stack


@pytest.mark.parametrize("jit", [False, True])
@pytest.mark.parametrize("kind", ["kernel", "activity"])
def test_keras_regularizers_of_the_stack_join_the_objective(kind, jit):
    kw = dict(max_iter=3, random_state=0, jit_compile=jit, learning_rate_init=0.01)
    plain = _fit(MLPClassifier(hidden_stack=_regularized(None), **kw))
    reg = _fit(MLPClassifier(hidden_stack=_regularized(kind), **kw))
    assert not np.allclose(plain.coefs_[0], reg.coefs_[0])
    assert reg.loss_curve_[0] > plain.loss_curve_[0]  # the penalty is reported


def test_a_kernel_regularizer_adds_its_penalty_once():
    # one batch, a rate too small to move the weights: the first epoch's loss
    # is the plain network's plus lambda * ||W||^2 (Keras' L2, which keeps
    # lambda in float32)
    kw = dict(solver="sgd", momentum=0.0, batch_size=len(X), max_iter=1)
    kw.update(learning_rate_init=1e-12, random_state=0)
    plain = _fit(MLPClassifier(hidden_stack=_regularized(None), **kw))
    reg = _fit(MLPClassifier(hidden_stack=_regularized("kernel"), **kw))
    np.testing.assert_allclose(reg.coefs_[0], plain.coefs_[0], rtol=1e-9)
    penalty = float(np.float32(1.0)) * np.sum(reg.coefs_[0] ** 2)
    np.testing.assert_allclose(
        reg.loss_curve_[0] - plain.loss_curve_[0], penalty, rtol=1e-6
    )


def nonneg_stack(x):
    return keras.layers.Dense(8, kernel_constraint=keras.constraints.NonNeg())(x)


@pytest.mark.parametrize("jit", [False, True])
def test_keras_constraints_of_the_stack_hold_after_each_step(jit):
    clf = _fit(
        MLPClassifier(
            hidden_stack=nonneg_stack, max_iter=5, random_state=0, jit_compile=jit
        )
    )
    assert clf.coefs_[0].min() >= 0 and clf.coefs_[0].max() > 0


class _Block(keras.layers.Layer):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.inner = keras.layers.Dense(6, activation="relu")

    def call(self, x):
        return self.inner(x)


def frozen_and_nested_stack(x):
    x = keras.layers.Dense(7, trainable=False, name="frozen")(x)
    return _Block()(x)


def test_frozen_dense_layers_and_dense_inside_custom_layers():
    clf = _fit(
        MLPClassifier(hidden_stack=frozen_and_nested_stack, max_iter=1, random_state=0)
    )
    assert [c.shape for c in clf.coefs_] == [(64, 7), (7, 6), (6, 10)]
    frozen, inner = clf.coefs_[0].copy(), clf.coefs_[1].copy()
    clf.partial_fit(X, Y)
    np.testing.assert_array_equal(clf.coefs_[0], frozen)  # not trained
    assert not np.array_equal(clf.coefs_[1], inner)  # trained


class _MeanSquareLoss(keras.layers.Layer):
    """Adds a non-scalar loss (Keras' fit sums it)."""

    def call(self, x):
        self.add_loss(0.01 * keras.ops.mean(keras.ops.square(x), axis=0))
        return x


class _Spare(keras.layers.Layer):
    """Holds a Dense it never calls."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.spare = keras.layers.Dense(4)

    def call(self, x):
        return x * 2.0


def row_loss_stack(x):
    x = keras.layers.Dense(6, activation="relu")(x)
    x = keras.layers.ActivityRegularization(l1=0.05)(x)
    return _Spare()(_MeanSquareLoss()(x))


def tied_stack(x):
    shared = keras.layers.Dense(6, activation="relu")
    return keras.layers.Add()([shared(x), shared(x)])


def test_row_losses_and_odd_layers_train_the_same_on_every_path():
    # 150 rows in batches of 64: the padded XLA epoch would count padding rows
    kw = dict(hidden_stack=row_loss_stack, max_iter=2, batch_size=64, random_state=0)
    plain = _fit(MLPClassifier(jit_compile=False, **kw), X[:150], Y[:150])
    jit = _fit(MLPClassifier(jit_compile=True, **kw), X[:150], Y[:150])
    np.testing.assert_allclose(jit.loss_curve_, plain.loss_curve_, rtol=1e-12)
    assert [c.shape for c in plain.coefs_] == [(64, 6), (6, 10)]  # spare: unused
    tied = _fit(MLPClassifier(hidden_stack=tied_stack, max_iter=2, random_state=0))
    assert [c.shape for c in tied.coefs_] == [(64, 6), (6, 10)]  # counted once


def test_a_stack_layer_named_like_tfmlps_own_is_a_clear_error():
    def stack(x):
        return keras.layers.Dense(5, name="output")(x)

    with pytest.raises(
        ValueError, match="'output' and 'output_activation' are tfmlp's own"
    ):
        MLPClassifier(hidden_stack=stack, max_iter=1).fit(X, Y)


@pytest.mark.parametrize("solver", ["adam", "sgd"])
def test_weights_the_loss_does_not_reach_are_left_as_keras_leaves_them(solver):
    """A stop_gradient (a frozen feature extractor): as in Keras' fit, the
    weights without a gradient are not trained, with a warning; the rest is."""

    def stack(x):
        frozen = keras.layers.Dense(8, activation="relu", name="frozen")(x)
        frozen = keras.ops.stop_gradient(frozen)
        return keras.layers.Dense(6, activation="tanh", name="trained")(frozen)

    est = MLPClassifier(
        hidden_stack=stack, solver=solver, alpha=0.0, max_iter=3, random_state=0
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        est.fit(X[:200], Y[:200])
    missing = [w for w in caught if "Gradients do not exist" in str(w.message)]
    assert missing and all(w.filename == __file__ for w in missing)  # fit's line
    # the same start, one epoch: the frozen layer is where it began
    one_epoch = dict(
        zip(*_layer_weights(_fit(clone(est).set_params(max_iter=1), X[:200], Y[:200])))
    )
    final = dict(zip(*_layer_weights(est)))
    np.testing.assert_array_equal(one_epoch["frozen/kernel"], final["frozen/kernel"])
    np.testing.assert_array_equal(one_epoch["frozen/bias"], final["frozen/bias"])
    assert not np.array_equal(one_epoch["trained/kernel"], final["trained/kernel"])


def _layer_weights(est):
    weights = est.model_.weights
    return [w.path for w in weights], [np.asarray(w) for w in weights]


def test_a_stack_output_of_another_rank_is_a_value_error():
    def stack(x):
        return keras.layers.Reshape((2, 2))(keras.layers.Dense(4)(x))

    with pytest.raises(ValueError, match="shape \\(batch, units\\)"):
        MLPClassifier(hidden_stack=stack, max_iter=1).fit(X, Y)
    with pytest.raises(TypeError, match="must return the last hidden Keras tensor"):
        MLPClassifier(hidden_stack=lambda x: None, max_iter=1).fit(X, Y)


@pytest.mark.parametrize("use_stack", [True, False])
def test_batch_statistics_never_see_padding_rows(use_stack):
    """BatchNormalization's batch mean and variance (and moving statistics)
    are taken over the batch's rows only: the XLA and CSR paths, which pad a
    short last batch, train such networks as the exact-batch path does."""
    import scipy.sparse as sp

    extra = {"hidden_stack": bn_stack} if use_stack else {"batch_normalization": True}
    kw = dict(max_iter=3, batch_size=64, random_state=0, **extra)
    rows = slice(0, 150)  # 150 rows in batches of 64: a short last batch
    plain = _fit(MLPClassifier(jit_compile=False, **kw), X[rows], Y[rows])
    for est, data in [
        (MLPClassifier(jit_compile=True, **kw), X[rows]),
        (MLPClassifier(**kw), sp.csr_matrix(X[rows])),
    ]:
        _fit(est, data, Y[rows])
        np.testing.assert_allclose(est.loss_curve_, plain.loss_curve_, rtol=1e-10)
        for a, b in zip(est.coefs_, plain.coefs_):
            np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)


class _Scale(keras.layers.Layer):
    """A layer class Keras cannot find by name (not registered)."""

    def build(self, shape):
        self.s = self.add_weight(shape=(shape[-1],), initializer="ones")

    def call(self, x):
        return x * self.s


def _scaled_stack(x):
    return _Scale()(keras.layers.Dense(6, activation="relu")(x))


def test_stacks_built_in_threads_draw_as_when_built_alone():
    # Keras draws unseeded layers' seeds from Python's random, which the
    # build seeds from random_state: two builds at once must not interleave
    draws = {}

    def drawing_stack(x):
        first = random.random()
        time.sleep(0.05)  # another thread's build would run here
        draws.setdefault(threading.get_ident(), []).append((first, random.random()))
        return keras.layers.Dense(4)(x)

    def fit(seed):
        est = MLPClassifier(hidden_stack=drawing_stack, max_iter=1, random_state=seed)
        _fit(est, X[:200], Y[:200])

    before = random.getstate()
    threads = [threading.Thread(target=fit, args=(seed,)) for seed in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert random.getstate() == before
    alone = {}
    for seed in (0, 1):
        fit(seed)
        alone[seed] = draws.pop(threading.get_ident())[-1]
    threaded = sorted(d[0] for d in draws.values())
    assert threaded == sorted(alone.values())


def test_a_fitted_stack_with_own_layers_and_callbacks_clones_and_pickles():
    history = keras.callbacks.History()
    clf = MLPClassifier(
        hidden_stack=_scaled_stack, max_iter=3, random_state=0, callbacks=[history]
    )
    _fit(clf, X[:300], Y[:300])
    assert history.model is clf.model_  # kept after the fit, as by Keras' fit
    copies = [copy.deepcopy(clf), pickle.loads(pickle.dumps(clf))]
    for twin in copies:
        np.testing.assert_array_equal(twin.predict_proba(X), clf.predict_proba(X))
        assert twin.callbacks[0].model is None
    fresh = clone(clf)
    assert fresh.callbacks[0] is not history and fresh.callbacks[0].model is None
    _fit(fresh, X[:300], Y[:300])
    np.testing.assert_array_equal(fresh.predict_proba(X), clf.predict_proba(X))
    assert history.model is clf.model_


class _LockedCallback(keras.callbacks.Callback):
    """A callback holding what does not pickle, dropped by its own state."""

    def __init__(self):
        super().__init__()
        self.lock = threading.Lock()

    def __getstate__(self):
        state = dict(self.__dict__)
        del state["lock"]
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self.lock = threading.Lock()


def test_callbacks_copy_their_own_way_and_after_a_failed_fit():
    import tensorflow as tf

    locked = _LockedCallback()
    clf = MLPClassifier(
        hidden_stack=_scaled_stack, max_iter=2, random_state=0, callbacks=[locked]
    )
    _fit(clf, X[:300], Y[:300])
    for twin in (copy.deepcopy(clf), pickle.loads(pickle.dumps(clf)), clone(clf)):
        assert isinstance(twin.callbacks[0].lock, type(threading.Lock()))
        assert twin.callbacks[0].model is None
    assert locked.model is clf.model_
    # a fit that fails in training (a NaN batch) leaves copies model-free too
    bad = X[:60].copy()
    bad[45, 0] = np.nan
    history = keras.callbacks.History()
    clf.set_params(callbacks=[history])
    stream = tf.data.Dataset.from_tensor_slices((bad, Y[:60])).batch(20)
    with pytest.raises(ValueError, match="NaN"):
        clf.partial_fit(stream)
    for twin in (copy.deepcopy(clf), clone(clf)):
        assert twin.callbacks[0].model is None


class _TrainingOnlyPenalty(keras.layers.Layer):
    """Adds a loss from the rows only while training."""

    def call(self, x, training=False):
        if training:
            self.add_loss(1e-2 * keras.ops.mean(keras.ops.square(x)))
        return x


def _training_only_loss_stack(x):
    return _TrainingOnlyPenalty()(keras.layers.Dense(6, activation="relu")(x))


def test_a_loss_added_only_while_training_gets_exact_batches():
    # 300 rows in batches of 64: a padded last batch would enter the loss
    kw = dict(hidden_stack=_training_only_loss_stack, max_iter=2, batch_size=64)
    plain = _fit(
        MLPClassifier(jit_compile=False, random_state=0, **kw), X[:300], Y[:300]
    )
    jit = _fit(MLPClassifier(jit_compile=True, random_state=0, **kw), X[:300], Y[:300])
    np.testing.assert_allclose(jit.loss_curve_, plain.loss_curve_, rtol=1e-12)
    for a, b in zip(jit.coefs_, plain.coefs_):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


class _CopyEachEpoch(keras.callbacks.Callback):
    """Keeps a deep copy of the estimator after every epoch."""

    def __init__(self, est):
        super().__init__()
        self.est, self.copies = est, []

    def on_epoch_end(self, epoch, logs=None):
        self.copies.append(copy.deepcopy(self.est))


class _Fail(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        raise RuntimeError("a callback failed")


def test_copies_taken_while_training_and_after_a_failed_fit(tmp_path):
    clf = MLPClassifier(hidden_stack=_scaled_stack, max_iter=2, random_state=0)
    snapshots = _CopyEachEpoch(clf)
    clf.set_params(callbacks=[snapshots])
    _fit(clf, X[:300], Y[:300])  # the first fit: copies while training
    assert len(snapshots.copies) == 2
    np.testing.assert_array_equal(
        snapshots.copies[-1].predict_proba(X), clf.predict_proba(X)
    )
    # a failed fit leaves a CSVLogger's file open, then closed: copies work
    logger = keras.callbacks.CSVLogger(str(tmp_path / "log.csv"))
    clf.set_params(callbacks=[logger, _Fail()], warm_start=True)
    before = [c.copy() for c in clf.coefs_]
    with pytest.raises(RuntimeError, match="a callback failed"):
        clf.fit(X[:300], Y[:300])
    assert all(np.array_equal(a, b) for a, b in zip(before, clf.coefs_))
    for twin in (pickle.loads(pickle.dumps(clf)), clone(clf), copy.deepcopy(clf)):
        assert twin.callbacks[0].writer is None
    assert (tmp_path / "log.csv").read_text().startswith("epoch,")


def test_weights_a_stack_cannot_hold_are_refused_and_the_fit_kept():
    """coefs_/intercepts_ of another number or shape of layers (or a bias for
    a Dense without one) raise a ValueError where they are used; the fitted
    network is kept (it was rebuilt from its initial weights, or failed in
    Keras), so setting the arrays back predicts as before."""
    est = _fit(
        MLPClassifier(hidden_layer_sizes=(8,), batch_normalization=True, max_iter=3)
    )
    before = est.predict_proba(X)
    coefs, intercepts = list(est.coefs_), list(est.intercepts_)
    for bad_coefs, bad_intercepts in (
        (coefs[:1], intercepts[:1]),  # another number of layers
        ([coefs[0][:, :4], coefs[1][:4]], [intercepts[0][:4], intercepts[1]]),
    ):
        est.coefs_, est.intercepts_ = bad_coefs, bad_intercepts
        assert est.coefs_ is bad_coefs  # reading them does not raise
        with pytest.raises(ValueError, match="other shapes .* Keras hidden stack"):
            est.predict(X)
        with pytest.raises(ValueError, match="other shapes .* Keras hidden stack"):
            est.partial_fit(X, Y)
        with pytest.raises(ValueError, match="Cannot copy, pickle or save"):
            pickle.dumps(est)
        est.coefs_, est.intercepts_ = coefs, intercepts
        np.testing.assert_array_equal(est.predict_proba(X), before)
    est.coefs_ = coefs[:1]  # a fit that starts over replaces them
    _fit(est.set_params(hidden_layer_sizes=(5,)))
    assert est.coefs_[0].shape == (64, 5)

    def no_bias(x):
        return keras.layers.Dense(6, activation="relu", use_bias=False)(x)

    est = _fit(MLPClassifier(hidden_stack=no_bias, max_iter=3))
    before = est.predict_proba(X)
    assert not est.intercepts_[0].any()
    est.intercepts_[0][:] = 5.0
    with pytest.raises(ValueError, match=r"intercepts_\[0\] must stay zero.*use_bias"):
        est.predict(X)
    est.intercepts_[0][:] = 0.0
    np.testing.assert_array_equal(est.predict_proba(X), before)


def test_freezing_a_layer_of_model_does_not_change_a_later_trace():
    """layer.trainable = False on model_ leaves the estimator's training as
    it was, also where its training function is traced after the change (a
    copy's, a loaded model's): BatchNormalization kept training on batch
    statistics (its call reads the flag while tracing)."""
    kw = dict(batch_normalization=True, max_iter=3, random_state=0)
    est = _fit(MLPClassifier((8,), **kw))
    frozen, plain = copy.deepcopy(est), copy.deepcopy(est)
    for layer in frozen.model_.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.trainable = False
    frozen.partial_fit(X, Y)
    plain.partial_fit(X, Y)
    for a, b in zip(frozen.model_.get_weights(), plain.model_.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert not any(  # the user's flag stays set for Keras' own fit
        ly.trainable
        for ly in frozen.model_.layers
        if isinstance(ly, keras.layers.BatchNormalization)
    )


def _skip_connection(x):
    h = keras.layers.Dense(16, activation="relu")(x)
    return keras.layers.Concatenate()([h, x])  # the output layer sees both


def test_a_stack_whose_dense_layers_do_not_chain_predicts_copies_and_continues(
    tmp_path,
):
    # the shape check of weights set by hand is the standard network's: a
    # stack's Dense kernels (here (64, 16) and (80, 10)) need not chain
    import tfmlp

    est = _fit(MLPClassifier(hidden_stack=_skip_connection, max_iter=5, random_state=0))
    assert [c.shape for c in est.coefs_] == [(64, 16), (80, 10)]
    expected = est.predict_proba(X)
    np.testing.assert_array_equal(
        pickle.loads(pickle.dumps(est)).predict_proba(X), expected
    )
    tfmlp.save(est, tmp_path / "m.tfmlp")
    loaded = tfmlp.load(tmp_path / "m.tfmlp", hidden_stack=_skip_connection)
    np.testing.assert_array_equal(loaded.predict_proba(X), expected)
    est.set_params(warm_start=True)
    _fit(est)
    est.partial_fit(X, Y)
    assert not np.array_equal(est.predict_proba(X), expected)


@pytest.mark.parametrize("edit", ["none", "shape"])
def test_bad_weights_set_on_an_unpickled_stack_are_refused_by_name(edit):
    # the network of an unpickled (or loaded) stack is built on demand, from
    # the arrays as set: they are checked there as on a live network
    est = _fit(MLPClassifier(dropout=0.2, hidden_layer_sizes=(8,), max_iter=2))
    copy_ = pickle.loads(pickle.dumps(est))
    if edit == "none":
        copy_.coefs_ = None
        match = "not NoneType"
    else:
        copy_.coefs_[0] = np.ones((3, 8))
        match = "other shapes"
    with pytest.raises(ValueError, match=match):
        copy_.predict(X)
