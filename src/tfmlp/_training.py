"""Compiled TensorFlow functions: one whole training epoch (or several in one
call), the full-batch loss and gradient (for L-BFGS), and the forward pass for
prediction.

Every function takes the weight and optimizer variables as arguments instead of
capturing them, and is cached per forward model (for the standard network a
``StandardForward``, i.e. layer count, activations and loss), solver and input
kind. Estimators, clones and cross-validation folds that share these reuse one
trace per set of weight shapes; sample counts are dynamic. The cache keeps
the 64 most recently used functions, each with the traces of at most 16 sets
of weight shapes (then it starts afresh), so a long search over network
shapes does not grow without bound. A Keras network (a hidden stack, dropout,
batch normalization) keeps its compiled functions on its own network object.
"""

from __future__ import annotations

import collections
import contextlib
import threading

import tensorflow as tf
from tensorflow.core.protobuf import config_pb2
from tensorflow.python.eager import context

from tfmlp._data import (
    CsrMatrix,
    FirstProduct,
    cpu_only,
    csr_batch,
    gathered_rows,
    sparse_rows,
)
from tfmlp._losses import (
    LOG_LOSSES,
    add_penalty,
    data_loss,
    loss_and_grads,
    manual_data_grads,
    squared_norms,
)
from tfmlp._network import is_standard
from tfmlp._optimizers import adam_rate, apply_adam_at_rate, apply_sgd
from tfmlp._precision import current_scale, guarded_step


class _Recent(collections.OrderedDict):
    """A dict of compiled functions that keeps the ``size`` most recently
    used: a long hyper-parameter search over many network shapes would
    otherwise keep every trace (~2-5 MB each) for the life of the process."""

    def __init__(self, size: int):
        super().__init__()
        self.size = size
        self._lock = threading.Lock()

    def get(self, key, default=None):
        with self._lock:
            value = super().get(key, default)
            if key in self:
                self.move_to_end(key)
            return value

    def __setitem__(self, key, value):
        with self._lock:
            super().__setitem__(key, value)
            self.move_to_end(key)
            while len(self) > self.size:
                self.popitem(last=False)


# functions per (forward model, kind): each holds the traces of its _SHAPES
# most recently used sets of weight shapes
_CACHE = _Recent(64)
_SHAPES = 32


class _Compiled:
    """A ``tf.function`` whose tensor arguments are traced with unknown shapes.

    The first call traces a concrete function in which every tensor argument
    has all dimensions unknown, so later calls with other sample counts (folds,
    validation sets, prediction chunks) reuse it. Variables keep their exact
    shapes: TensorFlow traces once per distinct set of weight shapes.
    """

    def __init__(self, python_function, jit_compile=False, autograph=True, lean=False):
        self._make = lambda: tf.function(  # noqa: E731
            python_function, jit_compile=jit_compile or None, autograph=autograph
        )
        self._fn = self._make()
        self._concrete = _Recent(_SHAPES)
        self.traces = 0
        self._lean = lean
        self._xla = bool(jit_compile)

    def __call__(self, *args):
        leaves = tf.nest.flatten(args)
        eager = tf.config.functions_run_eagerly() and not self._xla
        if eager or any(isinstance(v, tf.distribute.DistributedValues) for v in leaves):
            # tf.function's dispatch, TensorFlow's defaults: mirrored
            # variables; run_functions_eagerly(True) (a user debugging a
            # hidden stack's layers) runs the Python function as written,
            # except an XLA function (its inputs may be views of the user's
            # arrays that only XLA's code can read: kept compiled)
            return self._fn(*args)
        if not self._lean:
            return self._call(args, leaves)
        with _lean_calls():
            return self._call(args, leaves)

    def _call(self, args, leaves):
        # Calling the concrete function directly skips tf.function's dispatch
        # (hashing every argument's trace type), which costs about a
        # millisecond per call: as much as a whole small-data epoch.
        key = tuple(_signature(v) for v in leaves)
        concrete = self._concrete.get(key)
        if concrete is None:
            # one tf.function per trace: dropping the least recently used
            # trace from ``_concrete`` frees it (a tf.function keeps all its own)
            relaxed = tf.nest.map_structure(_relaxed, args)
            concrete = self._make().get_concrete_function(*relaxed)
            self._concrete[key] = concrete
            self.traces += 1
        flat = [_flat_input(v) for v in leaves if isinstance(v, _TENSOR_TYPES)]
        call_flat = getattr(concrete, "_call_flat", None)
        captured = concrete.captured_inputs
        if call_flat is None or len(flat) + len(captured) != len(concrete.inputs):
            return concrete(*args)
        # the tensors in trace order: skips binding the arguments to the
        # signature again (~0.15 ms a call, a few % of a small-data fit)
        return call_flat(flat, captured)


_TENSOR_TYPES = (tf.Variable, tf.Tensor)


@contextlib.contextmanager
def _lean_calls():
    """Trace and run the graph functions inside the lean way (see ``_cached``).

    Without Grappler's rewrites: Grappler optimises a function's graph on its
    first call, ~50 ms for a digits epoch function, a tenth of a small-data
    fit, for a few percent per epoch at most. On the single-threaded executor
    (CPU only): it runs each op inline instead of scheduling it on the
    inter-op thread pool, which cut a digits epoch (8 batches of ~150 small
    ops) from 2.7-3.4 to ~2.2 ms (``benchmarks/ablations.py``); a function traced
    under it keeps its ``tf.while_loop`` as one functional ``While`` op (this
    executor runs no lowered control flow). Prediction keeps TensorFlow's
    defaults. TensorFlow has no public per-function
    switch; the call options of the eager context are what ``tf.function``
    passes to the runtime and reads while tracing. If they cannot be set (a
    TensorFlow version without these attributes), functions are called as
    usual.
    """
    try:
        ctx = context.context()
        old = ctx.function_call_options
        key = (old.config_proto_serialized, old.executor_type)
        options = _LEAN_OPTIONS.get(key)
        if options is None:  # derived from the current options, whatever the
            config = config_pb2.ConfigProto()  # user has configured since
            config.ParseFromString(old.config_proto_serialized)
            config.graph_options.rewrite_options.disable_meta_optimizer = True
            executor = _SINGLE_THREADED if cpu_only() else old.executor_type
            options = context.FunctionCallOptions(
                executor_type=executor, config_proto=config
            )
            _LEAN_OPTIONS.clear()
            _LEAN_OPTIONS[key] = options
        ctx.function_call_options = options
    except Exception:  # private API moved: keep TensorFlow's defaults
        yield
        return
    try:
        yield
    finally:
        ctx.function_call_options = old


_SINGLE_THREADED = "SINGLE_THREADED_EXECUTOR"
_LEAN_OPTIONS: dict = {}  # the current call options -> their lean version


def _flat_input(value):
    return value.handle if isinstance(value, tf.Variable) else value


def _signature(value):
    if isinstance(value, tf.Variable):
        return ("var", type(value), tuple(value.shape), value.dtype)
    if isinstance(value, tf.Tensor):
        return ("tensor", value.shape.rank, value.dtype)
    if isinstance(value, tf.data.Dataset):
        # by its structure, not the object: each new dataset of the same
        # structure (a chunk streamed per partial_fit) reuses the trace, and
        # the cache holds no dataset (nor the data it captured)
        return ("dataset", tf.data.DatasetSpec.from_value(value))
    return ("python", type(value), value)


def _relaxed(value):
    if isinstance(value, tf.data.Dataset):
        return tf.data.DatasetSpec.from_value(value)
    if isinstance(value, tf.Variable) or not isinstance(value, tf.Tensor):
        return value
    return tf.TensorSpec([None] * value.shape.rank, value.dtype)


def _cached(model, key, build, jit_compile=False, autograph=True, lean=False):
    """The compiled function for ``key``, built and cached on first use.

    ``autograph=False`` (for functions written with explicit ``tf.while_loop``)
    is honoured for the standard network only: converting the whole call tree
    with AutoGraph costs seconds per trace, while a custom Keras hidden stack
    may hold user layers whose Python control flow needs AutoGraph.
    """
    cache = getattr(model, "cache", None)
    standard = cache is None
    if standard:  # a StandardForward: shared, keyed by its value
        cache, key = _CACHE, (model, *key)
    else:
        autograph = True
    fn = cache.get(key)
    if fn is None:
        # ``lean=True`` (the standard network's graph-mode training loops, see
        # ``_lean_calls``) is honoured without XLA and for the standard
        # network only; user-built Keras stacks keep TensorFlow's defaults.
        lean = lean and not jit_compile and standard
        fn = cache[key] = _Compiled(build(), jit_compile, autograph, lean)
    return fn


def epochs_function(model, solver: str, nesterov: bool, sparse):
    """A compiled function that trains one or several epochs in one call
    (graph mode, no XLA; see ``xla_epoch_function`` for XLA).

    Signature: ``fn(params, slots, x, y, sw, orders, batch_size, hyper, alpha,
    rates) -> totals``: ``orders[e]`` gives epoch ``e``'s rows of ``y``/``sw``
    (and of dense ``x``) in training order, ``rates[e, i]`` is Adam's
    learning rate for its batch ``i`` (unused by SGD) and ``totals[e]`` its
    summed batch loss. ``sparse``: False for a dense tensor ``x``; ``"csr"``
    for ``csr_tensors`` whose rows are gathered by the order batch by batch
    and multiplied as a CSR matrix (the hand-written backward pass only);
    True for ``csr_tensors`` already in the (single) epoch's training order,
    multiplied as a ``tf.SparseTensor``. Several epochs per call save the
    per-call costs (dispatch, the runtime's function call, Python
    bookkeeping): a digits 50-epoch fit took 110 ms this way against 159 ms
    one epoch per call (``benchmarks/ablations.py``).
    """
    key = ("epochs", solver, bool(nesterov), sparse)
    build = lambda: _make_epochs(model, solver, bool(nesterov), sparse)  # noqa: E731
    return _cached(model, key, build, autograph=False, lean=True)


def _make_epochs(model, solver, nesterov, sparse):
    def epochs(params, slots, x, y, sw, orders, batch_size, hyper, alpha, rates):
        alpha = tf.cast(alpha, y.dtype)
        train = _batch_trainer(model, solver, nesterov, params, slots, hyper, alpha)
        n = tf.shape(orders, out_type=tf.int64)[1]
        n_epochs = tf.shape(orders)[0]

        def body(e, totals):
            order, epoch_rates = tf.gather(orders, e), tf.gather(rates, e)
            total = _epoch_loop(
                train, x, y, sw, order, n, batch_size, epoch_rates, sparse
            )
            return e + 1, totals.write(e, total)

        _, totals = tf.while_loop(
            lambda e, totals: e < n_epochs,
            body,
            (tf.zeros([], tf.int32), tf.TensorArray(y.dtype, size=n_epochs)),
            parallel_iterations=1,
        )
        return totals.stack()

    return epochs


def _batch_rows(x, idx, start, size, sparse):
    """Batch rows ``idx`` (rows ``[start, start + size)`` of pre-ordered
    sparse tensors) in the form ``epochs_function``'s ``sparse`` names."""
    if sparse == "csr":
        return csr_batch(gathered_rows(x, idx))
    if sparse:
        return sparse_rows(x, start, size)
    return tf.gather(x, idx)


def xla_epoch_function(model, solver: str, nesterov: bool, batch: int):
    """A compiled (XLA) function that trains one epoch of dense data held as
    tensors, gathering every batch's rows inside the loop.

    Signature: ``fn(params, slots, x, y, sw, order, n_rows, hyper, alpha,
    rates) -> summed_batch_loss``; ``y`` may hold 0/1
    targets as ``uint8`` (cast per batch to ``sw``'s dtype). ``order`` is the
    training order of the ``n_rows`` rows padded (with any valid row index)
    to a whole number of batches: every batch has the static shape XLA needs,
    and the padding positions of the last batch get zero weight, so they add
    exact zeros to every sum.
    """
    key = ("xla_epoch", solver, bool(nesterov), int(batch))
    build = lambda: _make_xla_epoch(model, solver, bool(nesterov), batch)  # noqa: E731
    return _cached(model, key, build, jit_compile=True, autograph=False)


def _update(solver, nesterov, params, grads, slots, hyper, step0, i, scale=None):
    """Apply one optimizer step; returns the step's learning rate (Adam).

    With ``scale`` (the loss-scale variable of float16 training, else None)
    the step is skipped if a gradient is not finite
    (``_precision.guarded_step``).
    """
    if solver == "adam":
        rate = adam_rate(hyper, step0 + tf.cast(i + 1, tf.float64))

        def apply():
            apply_adam_at_rate(params, grads, slots, hyper, rate)

    else:
        rate = hyper[0]

        def apply():
            apply_sgd(params, grads, slots, hyper, nesterov)

    guarded_step(apply, grads, scale, [*params, *slots])
    return rate


def _update_at(solver, nesterov, params, grads, slots, hyper, rates, i, after=None):
    """Apply one optimizer step; Adam's rate for batch ``i`` is ``rates[i]``.

    ``hyper`` is the list of ``_hyper_scalars``, sliced once per call.
    ``after`` (from ``_ordered_after``, always 0): the step's rate is read
    at an index that depends on what ``after`` was computed from, so that XLA
    computes that before the step.
    """
    if solver == "adam":
        index = i if after is None else i + after
        apply_adam_at_rate(params, grads, slots, hyper, tf.gather(rates, index))
    else:
        if after is not None:
            # read from [rate, momentum]: from a one-element vector XLA would
            # see that the index does not matter and drop the dependency
            hyper = [tf.gather(tf.stack(hyper[:2]), after), *hyper[1:]]
        apply_sgd(params, grads, slots, hyper, nesterov)


def _ordered_after(value, index):
    """``index`` (an integer tensor) unchanged, computed from ``value``.

    ``min(index, index + isfinite(value))`` is ``index`` for every
    ``value``, NaN included, but XLA cannot prove it, so whatever takes the
    result runs after ``value`` is computed. The weights' squared norm (the
    reported loss's penalty, which nothing else reads) is made an input of
    the optimizer step this way: otherwise XLA may schedule it after the step
    has overwritten the weights and so copies every weight matrix at every
    batch to keep the old values (MNIST float32 epoch 0.188 s ordered, 0.210 s
    not, ``benchmarks/ablations.py``).
    """
    return tf.minimum(index, index + tf.cast(tf.math.is_finite(value), index.dtype))


def _hyper_scalars(solver, hyper) -> list:
    """The optimizer's hyper-parameter vector as scalars, sliced outside the
    batch loop (inside it, every slice is a few graph nodes per batch)."""
    return [hyper[k] for k in range(6 if solver == "adam" else 2)]


def _batch_trainer(model, solver, nesterov, params, slots, hyper, alpha, xla=False):
    """``train(i, xb, yb, swb, rates) -> batch loss``: forward, backward and
    the optimizer step for batch ``i`` (Adam's rate ``rates[i]``). Called
    outside the batch loop, so that the hyper-parameters are sliced once per
    call; ``alpha`` comes in the training dtype. Under float16 loss scaling
    (``_precision``) the last of ``slots`` is the loss-scale variable.
    ``xla``: the step is compiled by XLA, where the penalty is ordered
    before the update (``_ordered_after``). Graph mode keeps its ops as they
    were: ordered the same way, a digits fit showed no difference beyond the
    noise (ad hoc)."""
    hyper = _hyper_scalars(solver, hyper)
    slots, scale = _split_scale(model, slots)

    def train(i, xb, yb, swb, rates):
        current = _batch_params(model, params)
        norms = after = None
        if xla and getattr(model, "manual_backward", False):
            norms = squared_norms(model.coefs(current))
            after = _ordered_after(norms, tf.zeros([], i.dtype))
        loss, grads = loss_and_grads(
            current, xb, yb, swb, model, alpha, current_scale(scale), norms
        )
        guarded_step(
            lambda: _update_at(
                solver, nesterov, params, grads, slots, hyper, rates, i, after
            ),
            grads,
            scale,
            [*params, *slots],
        )
        constrain(model, params)
        return loss

    return train


def constrain(model, params) -> None:
    """Apply a Keras stack's weight constraints after an optimizer step."""
    apply = getattr(model, "apply_constraints", None)
    if apply is not None:
        apply(params)


def _split_scale(model, slots):
    """``(optimizer slots, loss-scale variable or None)``."""
    spec = getattr(model, "spec", None)
    if spec is not None and spec.loss_scaling:
        return list(slots[:-1]), slots[-1]
    return slots, None


def _batch_params(model, params):
    """The standard network reads each weight once per batch (one tensor for
    the forward pass, the penalty and its gradient); other networks get the
    variables themselves."""
    if not is_standard(model):
        return params
    return [tf.convert_to_tensor(p) for p in params]


def batch_loop(n_batches, step, total0):
    """``total = total0; for i in range(n_batches): total += step(i)`` as one
    ``tf.while_loop`` (the additions in scikit-learn's order).

    ``step(i)`` trains batch ``i`` and returns its weighted loss. The
    learning rates are the runners' (computed in NumPy), so the loop carries
    nothing else.
    """
    _, total = tf.while_loop(
        lambda i, total: i < n_batches,
        lambda i, total: (i + 1, total + step(i)),
        (tf.zeros([], n_batches.dtype), total0),
        parallel_iterations=1,
    )
    return total


def _epoch_loop(train, x, y, sw, order, n, batch_size, rates, sparse):
    """One epoch: ``train`` on the ``n`` rows ``order`` batch by batch (Adam's
    rates ``rates``); returns the summed, weighted batch losses."""
    dtype = y.dtype
    n_batches = (n + batch_size - 1) // batch_size

    def step(i):
        start = i * batch_size
        size = tf.minimum(batch_size, n - start)
        idx = tf.slice(order, [start], [size])
        xb = _batch_rows(x, idx, start, size, sparse)
        yb, swb = tf.gather(y, idx), tf.gather(sw, idx)
        return train(i, xb, yb, swb, rates) * tf.cast(size, dtype)

    return batch_loop(n_batches, step, tf.zeros([], dtype))


def _make_xla_epoch(model, solver, nesterov, batch):
    bs = tf.constant(batch, tf.int64)

    def epoch(params, slots, x, y, sw, order, n_rows, hyper, alpha, rates):
        dtype = sw.dtype  # y may be 0/1 bytes: cast batch by batch
        alpha = tf.cast(alpha, dtype)
        train = _batch_trainer(
            model, solver, nesterov, params, slots, hyper, alpha, xla=True
        )
        n_batches = (n_rows + bs - 1) // bs
        positions = tf.range(bs)

        def step(i):
            start = i * bs
            idx = tf.slice(order, tf.reshape(start, [1]), [batch])
            valid = tf.cast(positions < n_rows - start, dtype)
            xb, yb = tf.gather(x, idx), tf.cast(tf.gather(y, idx), dtype)
            swb = tf.gather(sw, idx) * valid
            return train(i, xb, yb, swb, rates) * tf.cast(
                tf.minimum(bs, n_rows - start), dtype
            )

        return batch_loop(n_batches, step, tf.zeros([], dtype))

    return epoch


def chunk_function(model, solver: str, nesterov: bool, batch: int, xla: bool):
    """A compiled function that trains the batches of one chunk of rows.

    Signature: ``fn(params, slots, x, y, sw, n_rows, hyper, alpha, rates,
    total0) -> total0 + summed_batch_loss``;
    ``rates[i]`` is Adam's learning rate for the chunk's batch ``i``. The rows of
    ``x``/``y``/``sw`` are already in training order; batch ``i`` is rows
    ``[i * batch, (i + 1) * batch)`` of the first ``n_rows``. Rows past
    ``n_rows`` (padding that gives every chunk the same shape, so XLA compiles
    once) must have zero weight; a partial last batch keeps the static batch
    shape with zero-weight rows, which add exact zeros to every sum.
    """
    key = ("chunk", solver, bool(nesterov), int(batch), bool(xla))
    build = lambda: _make_chunk(model, solver, bool(nesterov), batch, xla)  # noqa: E731
    return _cached(model, key, build, jit_compile=xla, autograph=False, lean=True)


def _make_chunk(model, solver, nesterov, batch, xla):
    bs = tf.constant(batch, tf.int64)

    def chunk(params, slots, x, y, sw, n_rows, hyper, alpha, rates, total0):
        dtype = y.dtype
        alpha = tf.cast(alpha, dtype)
        train = _batch_trainer(
            model, solver, nesterov, params, slots, hyper, alpha, xla=xla
        )
        n_batches = (n_rows + bs - 1) // bs
        n_features = tf.shape(x, out_type=tf.int64)[1]
        n_outputs = tf.shape(y, out_type=tf.int64)[1]

        def step(i):
            start = i * bs
            xb = tf.slice(x, tf.stack([start, 0]), tf.stack([bs, n_features]))
            yb = tf.slice(y, tf.stack([start, 0]), tf.stack([bs, n_outputs]))
            swb = tf.slice(sw, [start], [bs])
            return train(i, xb, yb, swb, rates) * tf.cast(
                tf.minimum(bs, n_rows - start), dtype
            )

        return batch_loop(n_batches, step, tf.cast(total0, dtype))

    return chunk


def loss_grad_function(model, kind: str, rows: int = 0):
    """Compiled full-batch ``fn(params, x, y, sw, alpha) -> (loss, grads)``.

    ``kind`` says what ``x`` is: ``"dense"`` (a tensor), ``"sparse"`` (the
    tensors of ``csr_tensors``) or ``"csr"`` (a ``csr_handle``). A
    classifier's loss comes in float64 whatever the evaluation's dtype: SciPy's
    line search reads scikit-learn's float32 log-loss in float64
    (``data_loss``). ``rows`` (a model with a hand-written backward pass,
    ``"dense"`` or ``"csr"``): the rows are taken ``rows`` at a time, the
    gradients and the loss summed over the slices (see ``_lbfgs.pass_rows``);
    ``x`` is then, for ``"csr"``, a vector of CSR handles, one per slice.
    """
    report = None if model.spec.loss not in LOG_LOSSES else tf.float64
    if rows:
        build = lambda: _sliced_loss_grad(model, kind, rows, report)  # noqa: E731
        return _cached(model, ("loss_grad", kind, rows), build, autograph=False)

    def loss_grad(params, x, y, sw, alpha):
        if kind == "sparse":
            x = sparse_rows(x, 0, tf.shape(y, out_type=tf.int64)[0])
        elif kind == "csr":
            x = CsrMatrix(x, y.dtype)
        alpha = tf.cast(alpha, y.dtype)
        return loss_and_grads(params, x, y, sw, model, alpha, loss_dtype=report)

    return _cached(model, ("loss_grad", kind), lambda: loss_grad, autograph=False)


def _sliced_loss_grad(model, kind: str, rows: int, report):
    """``loss_grad_function``'s objective over slices of ``rows`` rows.

    The same sums as one pass over all rows, in another order: each slice's
    gradients are normalised by the whole batch's weight sum and added up,
    then the penalty. Each layer's activations then stay small (and in the
    cache) instead of taking fresh memory from the system at every
    evaluation.
    """

    def loss_grad(params, x, y, sw, alpha):
        sw_sum = tf.reduce_sum(sw)
        report_sum = None if report is None else tf.reduce_sum(tf.cast(sw, report))
        n = tf.shape(y)[0]

        def body(i, loss, grads):
            a = i * rows
            b = tf.minimum(a + rows, n)
            xs = CsrMatrix(x[i], y.dtype) if kind == "csr" else x[a:b]
            ys, sws = y[a:b], sw[a:b]
            p, part = manual_data_grads(params, xs, ys, sws, sw_sum, model)
            term = data_loss(model.spec.loss, ys, p, sws, sw_sum, report, report_sum)
            return i + 1, loss + term, [g + h for g, h in zip(grads, part)]

        start = (
            tf.constant(0),
            tf.zeros([], report or y.dtype),
            [tf.zeros_like(p) for p in params],
        )
        _, loss, grads = tf.while_loop(lambda i, *_: i * rows < n, body, start)
        alpha = tf.cast(alpha, y.dtype)
        grads, penalty = add_penalty(grads, model.coefs(params), alpha, sw_sum)
        return loss + tf.cast(penalty, loss.dtype), grads

    return loss_grad


def predict_function(model, sparse):
    """Compiled ``fn(params, x, n_rows) -> output layer's pre-activations``
    (inference mode; ``_host_forward.output_activation`` finishes them in
    NumPy, as scikit-learn computes them: TensorFlow's float32 ``exp`` and
    its flushing of subnormals differ where the outputs saturate).

    ``sparse``: False for a dense tensor ``x``; True for ``csr_tensors``
    multiplied as a ``tf.SparseTensor``; ``"csr"`` for ``csr_tensors``
    multiplied as a CSR matrix; ``"product"`` for ``x`` = the first layer's
    product ``X @ W1``, computed outside (``_data.sparse_dot``). The last two
    for the standard network only.
    """

    def predict(params, x, n_rows):
        return model(params, _all_rows(x, n_rows, sparse), training=False)[0]

    return _cached(model, ("predict", sparse), lambda: predict, autograph=False)


def transform_function(model, sparse):
    """Compiled ``fn(params, x, n_rows) -> last hidden layer activations``
    (``sparse`` as for ``predict_function``)."""

    def transform(params, x, n_rows):
        return model.hidden(params, _all_rows(x, n_rows, sparse))

    return _cached(model, ("transform", sparse), lambda: transform, autograph=False)


def _all_rows(x, n_rows, sparse):
    if not sparse:
        return x
    if sparse == "product":
        return FirstProduct(x)
    rows = sparse_rows(x, 0, n_rows)
    return csr_batch(rows) if sparse == "csr" else rows
