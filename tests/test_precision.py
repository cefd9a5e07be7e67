"""Mixed precision (``compute_dtype="mixed_float16"/"mixed_bfloat16"``)."""

import pickle
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
import tensorflow as tf
from sklearn.datasets import load_diabetes, load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split

import tfmlp
from tfmlp import MLPClassifier, MLPRegressor
from tfmlp import _precision as precision
from tfmlp._losses import loss_and_grads
from tfmlp._network import StandardForward
from tfmlp._params import NetSpec

X, Y = load_digits(return_X_y=True)
X = X / 16.0
XA, XB, YA, YB = train_test_split(X, Y, random_state=0)
POLICIES = ["mixed_float16", "mixed_bfloat16"]


def _fit(est, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(*args, **kwargs)


def _clf(**kw):
    params = dict(hidden_layer_sizes=(32,), max_iter=15, random_state=0)
    return MLPClassifier(**{**params, **kw})


@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("solver", ["adam", "sgd"])
@pytest.mark.parametrize("jit", [False, True])
def test_mixed_training_is_close_to_float32(policy, solver, jit):
    kw = dict(solver=solver, jit_compile=jit, learning_rate_init=0.01)
    ref = _fit(_clf(compute_dtype="float32", **kw), XA, YA)
    mixed = _fit(_clf(compute_dtype=policy, **kw), XA, YA)
    for w in mixed.coefs_ + mixed.intercepts_:
        assert w.dtype == np.float32  # float32 weights ("master copies")
    assert mixed.predict_proba(XB).dtype == np.float32
    # the products were rounded: not float32's trajectory, but close to it
    assert not np.allclose(mixed.coefs_[0], ref.coefs_[0], rtol=0, atol=1e-6)
    np.testing.assert_allclose(mixed.loss_curve_, ref.loss_curve_, rtol=0.05)
    assert abs(mixed.score(XB, YB) - ref.score(XB, YB)) <= 0.03
    state = mixed._optimizer.loss_scale_state()
    if policy == "mixed_float16":
        steps = mixed.n_iter_ * -(-len(XA) // 200)
        assert state[0] == precision.INITIAL_SCALE and state[1] == steps
    else:  # bfloat16 needs no loss scaling
        assert state is None


@pytest.mark.parametrize("dtype, scaled", [(tf.float16, True), (tf.bfloat16, False)])
def test_training_products_run_in_the_policy_dtype(dtype, scaled):
    spec = NetSpec.create(3, "relu", "softmax", dtype.name)
    model = StandardForward(spec)
    rng = np.random.RandomState(0)
    params = [
        tf.constant(rng.randn(*s).astype(np.float32))
        for s in [(8, 5), (5, 3), (5,), (3,)]
    ]
    x = tf.constant(rng.randn(4, 8).astype(np.float32))
    y = tf.constant(np.eye(3, dtype=np.float32)[[0, 1, 2, 0]])
    sw = tf.ones([4])
    scale = tf.constant(8.0) if scaled else None
    fn = tf.function(
        lambda p: loss_and_grads(p, x, y, sw, model, tf.constant(0.1), scale)
    )
    graph = fn.get_concrete_function(params).graph
    products = [op for op in graph.get_operations() if op.type == "MatMul"]
    half = [op for op in products if op.get_attr("T") == dtype]
    # forward (2), weight gradients (2), delta into the hidden layer (1); the
    # penalty's squared norms (float32 matrix-vector products) are the rest
    assert len(half) == 5
    assert all(op.get_attr("T") == tf.float32 for op in products if op not in half)
    loss, grads = fn(params)
    ref_loss, ref_grads = loss_and_grads(
        params,
        x,
        y,
        sw,
        StandardForward(NetSpec.create(3, "relu", "softmax")),
        tf.constant(0.1),
    )
    assert all(g.dtype == tf.float32 for g in grads)
    np.testing.assert_allclose(loss, ref_loss, rtol=0.05)
    for g, r in zip(grads, ref_grads):  # the scale is divided out again
        np.testing.assert_allclose(g, r, rtol=0.1, atol=0.05)


def _state(scale, good):
    return tf.Variable(np.array([scale, good], np.float32))


def _guarded(grads, state):
    target = tf.Variable(0.0)
    precision.guarded_step(lambda: target.assign_add(1.0), grads, state, [target])
    return float(target.numpy()), state.numpy().tolist()


def test_guarded_step_applies_finite_steps_and_counts_them():
    applied, state = _guarded([tf.constant([1.0, 2.0])], _state(1024.0, 5))
    assert applied == 1.0 and state == [1024.0, 6.0]


@pytest.mark.parametrize("bad", [np.inf, -np.inf, np.nan])
def test_guarded_step_skips_non_finite_steps_and_halves_the_scale(bad):
    grads = [tf.constant([1.0, 2.0]), tf.constant([[bad]])]
    applied, state = _guarded(grads, _state(1024.0, 7))
    assert applied == 0.0 and state == [512.0, 0.0]
    applied, state = _guarded(grads, _state(1.0, 0))  # never below 1
    assert applied == 0.0 and state == [1.0, 0.0]


def test_guarded_step_doubles_the_scale_after_the_growth_interval():
    grads = [tf.constant([1.0])]
    interval = precision.GROWTH_INTERVAL
    applied, state = _guarded(grads, _state(256.0, interval - 1))
    assert applied == 1.0 and state == [512.0, 0.0]
    applied, state = _guarded(grads, _state(256.0, interval - 2))
    assert state == [256.0, interval - 1]


def test_float16_overflow_is_skipped_and_the_scale_adapts():
    # large inputs: at the initial scale the scaled float16 gradients overflow
    big = XA * 300.0
    ref = _fit(_clf(compute_dtype="float32", max_iter=5), big, YA)
    clf = _fit(_clf(compute_dtype="mixed_float16", max_iter=5), big, YA)
    scale, good = clf._optimizer.loss_scale_state()
    assert 1.0 <= scale < precision.INITIAL_SCALE
    assert 0 < good < 5 * -(-len(XA) // 200)  # skipped steps, then applied ones
    for w in clf.coefs_ + clf.intercepts_:
        assert np.isfinite(w).all()
    assert clf.loss_curve_[-1] < 1.25 * ref.loss_curve_[-1]


def test_loss_scale_state_survives_partial_fit_pickle_and_save(tmp_path):
    clf = _clf(compute_dtype="mixed_float16", max_iter=1)
    classes = np.unique(Y)
    for _ in range(3):
        clf.partial_fit(XA * 300.0, YA, classes=classes)
    state = clf._optimizer.loss_scale_state()
    assert state[0] < precision.INITIAL_SCALE  # adapted, and carried along
    restored = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(restored._optimizer.loss_scale_state(), state)
    tfmlp.save(clf, tmp_path / "m.tfmlp")
    loaded = tfmlp.load(tmp_path / "m.tfmlp")
    np.testing.assert_array_equal(loaded._optimizer.loss_scale_state(), state)
    # training goes on from the saved scale, the same in all three copies
    for est in (clf, restored, loaded):
        est.partial_fit(XA * 300.0, YA)
    np.testing.assert_array_equal(
        restored._optimizer.loss_scale_state(), clf._optimizer.loss_scale_state()
    )
    np.testing.assert_allclose(loaded.coefs_[0], clf.coefs_[0], rtol=0, atol=0)


def test_a_warm_start_keeps_the_loss_scale():
    rng = np.random.RandomState(0)
    X, y = rng.randn(120, 3), 3000 * rng.randn(120)  # overflows at 2**15
    kw = dict(hidden_layer_sizes=(4,), batch_size=20, shuffle=False)
    est = _fit(MLPRegressor(max_iter=3, compute_dtype="mixed_float16", **kw), X, y)
    state = est._optimizer.loss_scale_state()
    assert state[0] < precision.INITIAL_SCALE
    before = est.coefs_[0].copy()
    adam_t = est._optimizer.t
    _fit(est.set_params(warm_start=True, max_iter=1), X, y)
    # a new optimizer (as scikit-learn's: Adam starts again) with the scale
    assert est._optimizer.t == 6 < adam_t
    assert est._optimizer.loss_scale_state()[0] <= state[0]
    assert not np.array_equal(est.coefs_[0], before)  # not all steps skipped
    # a new network (warm_start=False) starts with the initial scale again
    _fit(est.set_params(warm_start=False, max_iter=1), X, y)
    fresh = _fit(MLPRegressor(max_iter=1, compute_dtype="mixed_float16", **kw), X, y)
    np.testing.assert_array_equal(
        est._optimizer.loss_scale_state(), fresh._optimizer.loss_scale_state()
    )


@pytest.mark.parametrize(
    "before, after, n, skipped",
    [
        ([2.0**15, 7], [2.0**12, 0], 3, True),
        ([2.0**15, 7], [2.0**13, 0], 3, False),  # a step applied
        ([2.0**15, 7], [2.0**12, 1], 3, False),
        ([2.0**3, 0], [1.0, 0], 3, True),
        ([4.0, 0], [1.0, 0], 3, False),  # stopped at the lowest scale: unknown
        ([2.0**15, 0], [1.0, 0], 10_000, False),
        (None, None, 3, False),  # no loss scaling
    ],
)
def test_no_step_applied_is_read_from_the_loss_scale(before, after, n, skipped):
    assert precision.no_step_applied(before, after, n) is skipped


@pytest.mark.parametrize("early_stopping", [False, True])
def test_epochs_of_skipped_steps_do_not_count_toward_stopping(early_stopping):
    # one batch an epoch and large targets: the first ~12 epochs' steps
    # overflow at the initial scale and are skipped; they must not end the
    # fit as converged (n_iter_no_change=10) before it has trained
    X, y = load_diabetes(return_X_y=True)
    X, y = X[:150] * 10, y[:150] * 100
    est = MLPRegressor(
        hidden_layer_sizes=(16,),
        max_iter=40,
        learning_rate_init=0.01,
        compute_dtype="mixed_float16",
        early_stopping=early_stopping,
        random_state=0,
    )
    _fit(est, X, y)
    if early_stopping:  # the skipped epochs score alike (the same weights);
        # the trained epochs after them decide when to stop
        scores = est.validation_scores_
        skipped = sum(score == scores[0] for score in scores)
        assert skipped > 5
        assert est.n_iter_ >= skipped + est.n_iter_no_change + 1
    else:  # the loss improves, though slowly: tol decides nothing here
        assert est.n_iter_ == 40
        assert est.loss_curve_[-1] < est.loss_curve_[0]


@pytest.mark.parametrize("policy", POLICIES)
def test_mixed_policies_with_sparse_input(policy):
    dense = _fit(_clf(compute_dtype=policy), XA, YA)
    sparse = _fit(_clf(compute_dtype=policy), sp.csr_matrix(XA), YA)
    assert sparse.coefs_[0].dtype == np.float32
    assert abs(sparse.score(XB, YB) - dense.score(XB, YB)) <= 0.03


def test_mixed_float16_with_a_dataset_and_a_regressor():
    Xd, yd = load_diabetes(return_X_y=True)
    Xd = (Xd - Xd.mean(0)) / Xd.std(0)
    yd = (yd - yd.mean()) / yd.std()
    kw = dict(hidden_layer_sizes=(16,), max_iter=20, random_state=0, shuffle=False)
    ref = _fit(MLPRegressor(compute_dtype="float32", **kw), Xd, yd)
    arrays = _fit(MLPRegressor(compute_dtype="mixed_float16", **kw), Xd, yd)
    ds = tf.data.Dataset.from_tensor_slices((Xd, yd)).batch(200)
    streamed = _fit(MLPRegressor(compute_dtype="mixed_float16", **kw), ds)
    assert streamed.coefs_[0].dtype == np.float32
    for est in (arrays, streamed):
        np.testing.assert_allclose(est.loss_curve_, ref.loss_curve_, rtol=0.05)
        steps = est.n_iter_ * -(-len(Xd) // 200)
        assert est._optimizer.loss_scale_state()[1] == steps


@pytest.mark.parametrize("factor", [1.0, 300.0])
def test_mixed_float16_under_a_mirrored_strategy(factor):
    # factor 300: overflowing steps are put back instead of skipped by a cond
    kw = dict(compute_dtype="mixed_float16", max_iter=4)
    ref = _fit(_clf(**kw), X * factor, Y)
    mirrored = _fit(_clf(distribute="mirrored", **kw), X * factor, Y)
    np.testing.assert_allclose(mirrored.loss_curve_, ref.loss_curve_, rtol=1e-2)
    np.testing.assert_array_equal(
        mirrored._optimizer.loss_scale_state(), ref._optimizer.loss_scale_state()
    )
    for w in mirrored.coefs_ + mirrored.intercepts_:
        assert np.isfinite(w).all()


def test_lbfgs_computes_in_float32_under_a_mixed_policy():
    kw = dict(solver="lbfgs", hidden_layer_sizes=(8,), max_iter=20, random_state=0)
    ref = _fit(MLPClassifier(compute_dtype="float32", **kw), XA, YA)
    mixed = _fit(MLPClassifier(compute_dtype="mixed_float16", **kw), XA, YA)
    for a, b in zip(ref.coefs_ + ref.intercepts_, mixed.coefs_ + mixed.intercepts_):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    "extra",
    [
        {"dropout": 0.1},
        {"batch_normalization": True},
        {"hidden_stack": lambda x: tf.keras.layers.Dense(4)(x)},
    ],
)
@pytest.mark.parametrize("policy", POLICIES)
def test_mixed_policies_reject_keras_stacks(policy, extra):
    fitted = _fit(_clf(), XA, YA)
    before = fitted.predict_proba(XB)
    fitted.set_params(compute_dtype=policy, warm_start=True, **extra)
    with pytest.raises(ValueError, match="dtype policies"):
        fitted.fit(XA, YA)
    np.testing.assert_array_equal(fitted.predict_proba(XB), before)


@pytest.mark.parametrize("activation", ["logistic", "tanh", "identity", "gelu"])
def test_mixed_float16_with_other_activations(activation):
    # gelu: the GradientTape path (scaled surrogate), the others hand-written
    kw = dict(activation=activation, solver="sgd", learning_rate_init=0.05)
    ref = _fit(_clf(compute_dtype="float32", **kw), XA, YA)
    mixed = _fit(_clf(compute_dtype="mixed_float16", **kw), XA, YA)
    np.testing.assert_allclose(mixed.loss_curve_, ref.loss_curve_, rtol=0.05)
    assert not np.allclose(mixed.coefs_[0], ref.coefs_[0], rtol=0, atol=1e-6)
    assert mixed._optimizer.loss_scale_state()[0] == precision.INITIAL_SCALE


@pytest.mark.parametrize("jit", [False, True])
def test_mixed_float16_on_the_chunked_path(monkeypatch, jit):
    """Inputs fed chunk by chunk (large or not readable in place) train the
    same way as the in-memory epoch under a mixed policy."""
    from tfmlp import _loop

    kinds = []
    original = _loop.ChunkRunner.__init__

    def spy(self, *args, **kwargs):
        kinds.append("chunks")
        original(self, *args, **kwargs)

    kw = dict(compute_dtype="mixed_float16", jit_compile=jit, shuffle=False)
    ref = _fit(_clf(**kw), XA, YA)
    monkeypatch.setattr(_loop.ChunkRunner, "__init__", spy)
    monkeypatch.setattr(_loop, "CHUNK_MIN_BYTES", 0)
    monkeypatch.setattr(_loop, "RESIDENT_MAX_BYTES", 0)
    chunked = _fit(_clf(**kw), np.asfortranarray(XA), YA)
    assert kinds == ["chunks"]
    np.testing.assert_allclose(chunked.loss_curve_, ref.loss_curve_, rtol=1e-4)
    np.testing.assert_array_equal(
        chunked._optimizer.loss_scale_state(), ref._optimizer.loss_scale_state()
    )


@pytest.mark.slow
def test_float16_training_with_one_inter_op_thread_finishes():
    # the skip-step conditional waited forever for a second inter-op thread
    script = textwrap.dedent(
        """
        import warnings
        import tensorflow as tf
        tf.config.threading.set_inter_op_parallelism_threads(1)
        from sklearn.datasets import load_digits
        from tfmlp import MLPClassifier
        warnings.simplefilter("ignore")
        X, y = load_digits(return_X_y=True)
        for jit in (False, True):
            MLPClassifier(hidden_layer_sizes=(10,), max_iter=2, random_state=0,
                          compute_dtype="mixed_float16",
                          jit_compile=jit).fit(X[:300] / 16, y[:300])
        print("FITTED")
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert "FITTED" in proc.stdout, proc.stderr[-2000:]


def test_compute_dtype_on_memory_mapped_input_reports_the_loss_as_in_memory(tmp_path):
    # a memory-mapped X is cast chunk by chunk, not up front: the reported
    # loss's type still follows the float32 training dtype
    from tfmlp import MLPRegressor

    rng = np.random.RandomState(0)
    X = rng.randn(200, 5)
    y = (X @ rng.randn(5)).astype(np.float32)
    mapped = np.lib.format.open_memmap(
        tmp_path / "x.npy", mode="w+", dtype=np.float64, shape=X.shape
    )
    mapped[:] = X
    kw = dict(
        hidden_layer_sizes=(8,), max_iter=3, random_state=0, compute_dtype="float32"
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = MLPRegressor(**kw).fit(X, y)
        got = MLPRegressor(**kw).fit(mapped, y)
    for est in (ref, got):
        assert type(est.loss_) is type(est.best_loss_) is np.float32
        assert {type(v) for v in est.loss_curve_} == {np.float32}
    assert got.loss_curve_ == ref.loss_curve_


@pytest.mark.parametrize(
    "first, then, dtype",
    [
        (None, "float32", np.float64),
        (None, "mixed_float16", np.float64),
        ("float32", None, np.float32),
        ("mixed_bfloat16", None, np.float32),
    ],
)
def test_switching_compute_dtype_under_warm_start_keeps_the_weights_dtype(
    first, then, dtype
):
    # as the README says: a warm start continues the weights it has, in
    # their dtype (scikit-learn keeps float32 weights for float64 data too)
    est = _fit(_clf(max_iter=10, warm_start=True, compute_dtype=first), XA, YA)
    assert est.coefs_[0].dtype == dtype
    before = est.coefs_[0].copy()
    _fit(est.set_params(compute_dtype=then), XA, YA)
    assert all(c.dtype == dtype for c in est.coefs_ + est.intercepts_)
    assert not np.array_equal(before, est.coefs_[0])  # it trained on
    assert est.score(XB, YB) > 0.8
