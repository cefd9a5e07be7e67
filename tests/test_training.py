"""The compiled-function wrapper and the epoch shuffle."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import tensorflow as tf
from sklearn.utils import shuffle as sk_shuffle

import tfmlp._loop as loop
from tfmlp._training import _Compiled


def _step(params, x, n, scale):
    params[0].assign_add(tf.reduce_sum(x, axis=0))
    return params[0] * scale + tf.cast(n, params[0].dtype), tf.shape(x)[0]


def test_compiled_function_is_called_flat_and_traced_once():
    fn = _Compiled(_step, autograph=False)
    params = [tf.Variable(np.zeros(3)), tf.Variable(np.ones(2))]
    out, rows = fn(params, tf.constant(np.ones((4, 3))), tf.constant(2, tf.int64), 3.0)
    np.testing.assert_array_equal(out.numpy(), [14.0, 14.0, 14.0])
    assert int(rows) == 4
    (concrete,) = fn._concrete.values()
    calls = []
    real = concrete._call_flat
    concrete._call_flat = lambda *a: calls.append(a) or real(*a)
    # another sample count: the same trace, through the flat call
    out, rows = fn(params, tf.constant(np.ones((7, 3))), tf.constant(0, tf.int64), 3.0)
    np.testing.assert_array_equal(out.numpy(), [33.0, 33.0, 33.0])
    assert int(rows) == 7 and len(calls) == 1 and len(fn._concrete) == 1
    np.testing.assert_array_equal(params[0].numpy(), [11.0, 11.0, 11.0])
    fn(params, tf.constant(np.ones((1, 3))), tf.constant(0, tf.int64), 1.0)
    assert len(fn._concrete) == 2  # a Python argument is part of the trace


def test_epoch_shuffle_draws_as_scikit_learn():
    class Est:
        _optimizer = None
        batch_size = 7
        alpha = 0.0

    runner = loop._Runner(Est(), None, 50)
    mine, theirs = np.random.RandomState(3), np.random.RandomState(3)
    expected = np.arange(50)
    for _ in range(4):  # permutations compose across epochs
        expected = sk_shuffle(expected, random_state=theirs)
        np.testing.assert_array_equal(runner._shuffle(mine), expected)
    assert runner._shuffle(None) is runner.sample_idx


def test_standard_graph_functions_run_lean_and_restore_the_context():
    from tensorflow.python.eager import context

    from tfmlp._network import StandardForward
    from tfmlp._params import NetSpec
    from tfmlp._training import (
        _lean_calls,
        chunk_function,
        epochs_function,
        predict_function,
    )

    model = StandardForward(NetSpec.create(3, "relu", "softmax"))
    assert epochs_function(model, "adam", False, False)._lean
    assert chunk_function(model, "adam", False, 8, False)._lean
    assert not predict_function(model, False)._lean  # inference keeps defaults
    assert not chunk_function(model, "adam", False, 8, True)._lean  # XLA
    ctx = context.context()
    before = ctx.function_call_options
    with _lean_calls():
        inside = ctx.function_call_options
        assert inside is not before
        config = tf.compat.v1.ConfigProto()
        config.ParseFromString(inside.config_proto_serialized)
        assert config.graph_options.rewrite_options.disable_meta_optimizer
        assert inside.executor_type == "SINGLE_THREADED_EXECUTOR"  # no GPU here
    assert ctx.function_call_options is before


def test_lean_epoch_keeps_its_loop_unlowered_and_trains_like_the_default(monkeypatch):
    """Traced for the single-threaded executor, the batch loop is not lowered
    to Switch/Merge (that executor cannot run them), and the fit equals one
    on TensorFlow's defaults (Grappler, lowered loop, default executor)."""
    import tfmlp._training as training
    from tfmlp import MLPClassifier

    X, y = np.random.RandomState(0).rand(300, 7), np.arange(300) % 3
    real_init = training._Compiled.__init__
    fits = {}
    for lean in (True, False):
        if not lean:  # every compiled function on TensorFlow's defaults
            monkeypatch.setattr(
                training._Compiled,
                "__init__",
                lambda self, fn, jit=False, ag=True, lean=False: real_init(
                    self, fn, jit, ag, False
                ),
            )
        training._CACHE.clear()
        est = MLPClassifier(
            hidden_layer_sizes=(6,), max_iter=3, random_state=0, jit_compile=False
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fits[lean] = est.fit(X, y)
        (fn,) = [f for k, f in training._CACHE.items() if k[1] == "epochs"]
        assert fn._lean is lean
        (concrete,) = fn._concrete.values()
        # the loop over epochs, and the loop over batches in its body
        (loop,) = [
            op
            for op in concrete.graph.get_operations()
            if op.type in ("While", "StatelessWhile")
        ]
        inner = [
            node
            for f in concrete.graph._functions.values()
            for node in f.cached_definition.node_def
            if node.op in ("While", "StatelessWhile")
        ]
        assert len(inner) == 1
        try:
            lowered = loop.get_attr("_lower_using_switch_merge")
        except ValueError:  # not set: not lowered
            lowered = False
        assert lowered is not lean
        attr = inner[0].attr.get("_lower_using_switch_merge")
        assert (attr is not None and attr.b) is not lean
    training._CACHE.clear()
    for a, b in zip(fits[True].coefs_, fits[False].coefs_):
        np.testing.assert_allclose(a, b, rtol=1e-12)
    assert fits[True].loss_curve_ == pytest.approx(fits[False].loss_curve_, rel=1e-12)


def test_adam_rates_are_scikit_learns_bit_for_bit():
    from sklearn.neural_network._stochastic_optimizers import AdamOptimizer

    from tfmlp._optimizers import Adam

    for lr, b1, b2 in ((1e-3, 0.9, 0.999), (0.3, 0.95, 0.9999)):
        params = [np.zeros(2)]
        ours = Adam(params, lr, b1, b2, 1e-8)
        theirs = AdamOptimizer(params, lr, b1, b2, 1e-8)
        ours.t = 37
        rates = ours.rates(5000)
        theirs.t = 37
        for k in range(5000):
            theirs.update_params(params, [np.zeros(2)])  # t += 1, sets its rate
            assert rates[k] == theirs.learning_rate, (k, lr, b1, b2)


def _traces():
    from tfmlp._training import _CACHE

    return sum(f.traces for f in _CACHE.values())


def test_folds_clones_and_refits_reuse_one_trace(monkeypatch):
    """cross_val_score / clones / refits with other sample counts trace the
    epoch and predict functions once per configuration."""
    from sklearn.base import clone
    from sklearn.datasets import load_iris
    from sklearn.model_selection import cross_val_score

    import tfmlp._host_forward as host
    from tfmlp import MLPClassifier

    monkeypatch.setattr(host, "MAX_VALUES", -1)  # score through the graph

    X, y = load_iris(return_X_y=True)
    est = MLPClassifier(  # a configuration no other test traces
        hidden_layer_sizes=(13, 5), activation="tanh", max_iter=3, random_state=0
    )
    before = _traces()
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cross_val_score(est, X, y, cv=5)
        first = _traces() - before
        assert 1 <= first <= 3  # epoch + predict (+ nothing per fold)
        cross_val_score(clone(est), X, y, cv=3)  # other fold sizes, a clone
        clone(est).set_params(alpha=0.5, learning_rate_init=0.01).fit(X[::3], y[::3])
    assert _traces() - before == first


def test_lean_options_follow_the_current_call_options():
    from tensorflow.core.protobuf import config_pb2
    from tensorflow.python.eager import context

    from tfmlp._training import _lean_calls

    ctx = context.context()
    before = ctx.function_call_options
    config = config_pb2.ConfigProto()
    config.ParseFromString(before.config_proto_serialized)
    config.allow_soft_placement = not config.allow_soft_placement  # a user change
    ctx.function_call_options = context.FunctionCallOptions(
        executor_type=before.executor_type, config_proto=config
    )
    try:
        with _lean_calls():
            inside = config_pb2.ConfigProto()
            inside.ParseFromString(ctx.function_call_options.config_proto_serialized)
        assert inside.allow_soft_placement == config.allow_soft_placement
        assert inside.graph_options.rewrite_options.disable_meta_optimizer
    finally:
        ctx.function_call_options = before


def _xla_program(monkeypatch, est, X, y):
    """``(name, optimised HLO)`` of the first XLA function ``est.fit`` calls."""
    calls = []
    real = _Compiled.__call__

    def spy(self, *args):
        if self._fn._jit_compile:
            calls.append((self, args))
        return real(self, *args)

    monkeypatch.setattr(_Compiled, "__call__", spy)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(X, y)
    assert calls
    fn, args = calls[0]
    hlo = fn._fn.experimental_get_compiler_ir(*args)(stage="optimized_hlo")
    return fn._fn.python_function.__name__, hlo


@pytest.mark.parametrize(
    "solver, dtype, chunked",
    [
        ("adam", np.float32, False),
        ("sgd", np.float64, False),
        ("adam", np.float64, True),
    ],
)
def test_xla_steps_update_the_weights_without_copying_them(
    monkeypatch, solver, dtype, chunked
):
    # the penalty reads the weights before the step writes them
    # (``_ordered_after``); if XLA could schedule that read after the write,
    # it would copy the weight matrix at every batch
    from tfmlp import MLPClassifier

    rng = np.random.RandomState(0)
    X = rng.rand(600, 37).astype(dtype)
    y = rng.randint(0, 3, 600)
    if chunked:  # not readable in place and over the resident limit
        X = np.asfortranarray(X)
        monkeypatch.setattr(loop, "RESIDENT_MAX_BYTES", 0)
    est = MLPClassifier(
        hidden_layer_sizes=(23,), solver=solver, max_iter=1, jit_compile=True
    )
    name, hlo = _xla_program(monkeypatch, est, X, y)
    assert name == ("chunk" if chunked else "epoch")
    kind = "f32" if dtype == np.float32 else "f64"
    assert "while" in hlo and f"{kind}[37,23]" in hlo
    copies = [
        line
        for line in hlo.splitlines()
        if f"{kind}[37,23]" in line and " copy(" in line
    ]
    assert copies == []


@pytest.mark.parametrize("jit", [False, True])
def test_ordered_after_returns_the_index_for_every_value(jit):
    from tfmlp._training import _ordered_after

    fn = tf.function(_ordered_after, jit_compile=jit)
    for value in (0.0, 2.5, -1.0, np.inf, -np.inf, np.nan):
        for index in (0, 7):
            got = fn(tf.constant(value, tf.float64), tf.constant(index, tf.int64))
            assert int(got) == index


def test_recent_cache_keeps_the_most_recently_used():
    from tfmlp._training import _Recent

    cache = _Recent(2)
    cache["a"], cache["b"] = 1, 2
    assert cache.get("a") == 1  # now the most recent
    cache["c"] = 3
    assert list(cache) == ["a", "c"]
    assert cache.get("b") is None


def test_compiled_function_cache_is_bounded(monkeypatch):
    """A search over many network shapes does not keep every trace: each
    function starts afresh after _SHAPES sets of weight shapes, and the
    functions themselves are the most recently used; results unchanged."""
    from sklearn.datasets import load_digits

    import tfmlp._training as training
    from tfmlp import MLPClassifier

    X, y = load_digits(return_X_y=True)
    X, y = X[:200] / 16.0, y[:200]
    monkeypatch.setattr(training, "_SHAPES", 3)
    monkeypatch.setattr(training, "_CACHE", training._Recent(4))
    fits = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for size in range(2, 10):
            est = MLPClassifier(hidden_layer_sizes=(size,), max_iter=2, random_state=0)
            fits[size] = est.fit(X, y).predict_proba(X)
            assert len(training._CACHE) <= 4
            for fn in training._CACHE.values():
                assert len(fn._concrete) <= 3
        # traced again after the reset: the same numbers
        est = MLPClassifier(hidden_layer_sizes=(2,), max_iter=2, random_state=0)
        np.testing.assert_array_equal(est.fit(X, y).predict_proba(X), fits[2])


def test_compiled_function_cache_evicts_the_least_recent_trace(monkeypatch):
    """Past _SHAPES sets of weight shapes only the least recently used trace
    is dropped: a shape used again just before keeps its trace."""
    from sklearn.datasets import load_digits

    import tfmlp._training as training
    from tfmlp import MLPClassifier

    X, y = load_digits(return_X_y=True)
    X, y = X[:200] / 16.0, y[:200]
    monkeypatch.setattr(training, "_SHAPES", 3)
    monkeypatch.setattr(training, "_CACHE", training._Recent(8))

    def epochs_traces(size):
        est = MLPClassifier(hidden_layer_sizes=(size,), max_iter=2, random_state=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est.fit(X, y)
        (fn,) = [f for k, f in training._CACHE.items() if k[1] == "epochs"]
        return list(fn._concrete.values())

    first = epochs_traces(2)[0]
    epochs_traces(3)
    epochs_traces(4)
    epochs_traces(2)  # used again: now the most recent
    kept = epochs_traces(5)  # drops size 3's trace, the least recent
    assert len(kept) == 3
    assert any(c is first for c in kept)
    assert any(c is first for c in epochs_traces(2))


def test_run_functions_eagerly_runs_training_eagerly():
    """As Keras' fit: tf.config.run_functions_eagerly(True) runs a hidden
    stack's layers eagerly (print/pdb/.numpy() for debugging), same result."""
    import keras
    from sklearn.datasets import load_digits

    from tfmlp import MLPClassifier

    X, y = load_digits(return_X_y=True)
    X, y = X[:400] / 16.0, y[:400]
    calls = []

    class Spy(keras.layers.Layer):
        def call(self, x):
            if tf.executing_eagerly():
                calls.append(int(x.shape[0]))
            return x

    def stack(x):
        return Spy()(keras.layers.Dense(8, activation="relu")(x))

    kw = dict(hidden_stack=stack, batch_size=200, max_iter=3, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        graph = MLPClassifier(**kw).fit(X, y)
        assert 200 not in calls  # (Keras may probe a layer with 2 rows)
        tf.config.run_functions_eagerly(True)
        try:
            eager = MLPClassifier(**kw).fit(X, y)
        finally:
            tf.config.run_functions_eagerly(False)
    assert calls.count(200) >= 6  # 3 epochs of 2 batches
    for a, b in zip(graph.coefs_, eager.coefs_):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


@pytest.mark.slow
def test_run_functions_eagerly_keeps_xla_epochs_compiled():
    """XLA epochs read views of the user's arrays that only XLA's code may
    read: under run_functions_eagerly(True) they stay compiled (running them
    eagerly aborted the process in TensorFlow's gather)."""
    import subprocess
    import sys

    child = (
        "import warnings, numpy as np, tensorflow as tf\n"
        "from tfmlp import MLPClassifier\n"
        "warnings.simplefilter('ignore')\n"
        "rng = np.random.RandomState(0)\n"
        "X, y = rng.rand(300, 64), rng.randint(0, 3, 300)\n"
        "ref = MLPClassifier(max_iter=2, jit_compile=True, random_state=0).fit(X, y)\n"
        "tf.config.run_functions_eagerly(True)\n"
        "got = MLPClassifier(max_iter=2, jit_compile=True, random_state=0).fit(X, y)\n"
        "assert all((a == b).all() for a, b in zip(ref.coefs_, got.coefs_))\n"
        "print('FIT-DONE')\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", child], capture_output=True, text=True, timeout=300
    )
    assert "FIT-DONE" in proc.stdout, proc.stderr[-2000:]


def test_a_partial_fit_reads_the_variables_once(monkeypatch):
    """A ``partial_fit`` call reads the network's variables once after
    training and Adam's moments once for the rollback copy: reads before
    training (nothing but Keras can have changed them) and a second one
    after it cost several eager operations each (a small-batch
    ``partial_fit`` loop spent a third of its time there)."""
    from sklearn.datasets import load_digits

    from tfmlp import MLPClassifier, _mirrored

    X, y = load_digits(return_X_y=True)
    est = MLPClassifier(hidden_layer_sizes=(20,), random_state=0)
    est.partial_fit(X[:50], y[:50], classes=np.arange(10))
    reads = []
    real = _mirrored.read
    monkeypatch.setattr(_mirrored, "read", lambda v: reads.append(1) or real(v))
    est.partial_fit(X[50:100], y[50:100])
    assert len(reads) == 4 + 8  # 2 weights + 2 biases; Adam's m and v of each
    ref = MLPClassifier(hidden_layer_sizes=(20,), random_state=0)
    ref.partial_fit(X[:50], y[:50], classes=np.arange(10))
    ref.partial_fit(X[50:100], y[50:100])
    for a, b in zip(est.coefs_ + est.intercepts_, ref.coefs_ + ref.intercepts_):
        np.testing.assert_array_equal(a, b)
