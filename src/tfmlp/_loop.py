"""One epoch of minibatch training, driven from Python once per epoch.

The shuffle is drawn in NumPy from the estimator's RandomState, exactly as
scikit-learn draws it (permutations compose across epochs).

Two runners share one interface (``n_samples``, ``n_batches``, ``run_epoch``;
``EpochRunner`` in graph mode also trains several epochs per call with
``run_epochs``, see ``_stochastic._train_epochs``):

* ``EpochRunner`` holds the training data as tensors and runs the whole epoch
  (batch gathering, forward, backward, update) in one compiled function. Used
  for sparse input, for small dense input, and under XLA for dense input that
  XLA can read in place (a C-contiguous array in the training dtype: no copy)
  or that is at most ``RESIDENT_MAX_BYTES`` (copied): faster per epoch than
  through chunks (``benchmarks/ablations.py``).
* ``ChunkRunner`` leaves large dense input in the caller's NumPy array: each
  epoch is cut into chunks of whole batches (8-64 MB, see ``CHUNK_BYTES``), the
  rows of a chunk are gathered in shuffled order with NumPy (on a helper
  thread, while TensorFlow trains the previous chunk) and one compiled call,
  XLA by default, trains all batches of the chunk. Peak memory is the input
  plus a few chunks, not a second copy of the input. It also takes sparse
  input whose rows are not too wide or too empty (``_dense_chunks_ok``): each
  chunk's rows are written out dense (SciPy, on the helper thread) and train
  like dense rows, ~3x faster than sparse products in graph mode on MNIST.
"""

from __future__ import annotations

import mmap
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import tensorflow as tf

from tfmlp._data import (
    CSR_AVAILABLE,
    aligned_array,
    cpu_only,
    csr_tensors,
    input_tensors,
    is_sparse,
    shared_tensor,
)
from tfmlp._network import is_standard
from tfmlp._optimizers import Adam, update_rule
from tfmlp._params import check_batch_weights, resolve_batch_size, signed_weights
from tfmlp._training import chunk_function, epochs_function, xla_epoch_function

XLA_MIN_VALUES = 1_000_000
CHUNK_BYTES = 8 * 2**20  # chunk size, raised to CHUNK_MIN_BATCHES batches,
CHUNK_MIN_BATCHES = 48  # so that the ~2 ms cost of a call stays a few percent,
CHUNK_MAX_BYTES = 64 * 2**20  # but never beyond this
CHUNK_MIN_BYTES = 32 * 2**20  # inputs this large are chunked even without XLA
RESIDENT_MAX_BYTES = 256 * 2**20  # XLA epochs over tensors up to this size
# sparse input is trained through dense chunks on the CPU when a batch of its
# rows, written out dense, is at most this large and has at least this share
# of nonzeros. MNIST as CSR (19% nonzeros): 0.25 s an epoch through dense
# chunks, 0.84 s as CSR batches (``benchmarks/ablations.py``); the limits
# keep the dense products and buffers small for wide or very empty rows.
DENSE_BATCH_MAX_BYTES = 4 * 2**20
DENSE_MIN_DENSITY = 0.01


def use_xla(jit_compile, X, sparse: bool) -> bool:
    """XLA for dense input when asked, or by default for large inputs.

    Not while TensorFlow op callbacks are on (``tf.debugging.
    enable_check_numerics()``, ``enable_dump_debug_info``): XLA cannot
    compile the ops they add, so the default falls back to graph mode and
    ``jit_compile=True`` is refused clearly.
    """
    if sparse or jit_compile is False:
        return False
    if _op_callbacks_on():
        if jit_compile:
            raise ValueError(
                "jit_compile=True cannot train while TensorFlow op callbacks are "
                "on (tf.debugging.enable_check_numerics() or "
                "enable_dump_debug_info()): XLA cannot compile the ops they add. "
                "Use jit_compile=None or False, or disable the callbacks."
            )
        return False
    return bool(jit_compile) or X.shape[0] * X.shape[1] >= XLA_MIN_VALUES


def _op_callbacks_on() -> bool:
    try:
        from tensorflow.python.eager import context

        return bool(context.context().op_callbacks)
    except Exception:  # private API moved: assume none
        return False


def make_runner(est, net, X, y, sample_weight):
    """The runner for in-memory input: chunked for large dense arrays."""
    sparse = is_sparse(X)
    if getattr(net, "exact_batches", False):  # a Keras stack whose losses
        # count rows (activity regularizers) or that normalises by batch
        # statistics: only the graph-mode epoch cuts the last batch to its
        # rows instead of padding it with zero-weight rows
        return EpochRunner(est, net, X, y, sample_weight)
    xla = use_xla(est.jit_compile, X, sparse)
    if sparse and _dense_chunks_ok(X, net.dtype, est.batch_size):
        xla = use_xla(est.jit_compile, X, False)
        return ChunkRunner(est, net, X, y, sample_weight, xla)
    if sparse:
        return EpochRunner(est, net, X, y, sample_weight)
    nbytes = X.shape[0] * X.shape[1] * np.dtype(net.dtype).itemsize
    resident = nbytes <= RESIDENT_MAX_BYTES and not memory_mapped(X)
    if xla and (_xla_view_ok(X, net.dtype) or resident):
        return EpochRunner(est, net, X, y, sample_weight, xla=True)
    own = X.shape[0] * X.shape[1] * X.dtype.itemsize  # (a memory map's file)
    if xla or max(nbytes, own) >= CHUNK_MIN_BYTES:
        return ChunkRunner(est, net, X, y, sample_weight, xla)
    return EpochRunner(est, net, X, y, sample_weight)


class _Runner:
    """What both runners share: sizes, the optimizer and the Adam step count."""

    fused = False  # whether ``run_epochs`` trains several epochs per call

    def __init__(self, est, net, n_samples: int, sample_weight=None):
        self.net = net
        self.optimizer = est._optimizer
        self.n_samples = n_samples
        self.batch_size = resolve_batch_size(est.batch_size, n_samples)
        self.n_batches = -(-n_samples // self.batch_size)
        self.sample_idx = np.arange(n_samples, dtype=int)
        self.alpha = tf.constant(float(est.alpha), tf.float64)
        # weights that a batch could sum to zero with (checked per epoch)
        self.signed_weights = signed_weights(sample_weight)

    def _shuffle(self, random_state) -> np.ndarray:
        """This epoch's row order (None: unchanged).

        The same draws as scikit-learn's ``sklearn.utils.shuffle(sample_idx,
        random_state=random_state)`` (it permutes ``arange(n)`` with
        ``random_state.shuffle`` and indexes with it), without its input
        validation, which costs as much as a small-data epoch.
        """
        if random_state is not None:
            perm = np.arange(self.n_samples)
            random_state.shuffle(perm)
            self.sample_idx = self.sample_idx[perm]
        check_batch_weights(self.signed_weights, self.sample_idx, self.batch_size)
        return self.sample_idx

    def _rates(self, length: int, steps: int | None = None) -> np.ndarray:
        """Adam's learning rates for the next ``steps`` batches (default: one
        epoch's), padded to ``length`` (zeros: SGD reads its rate from
        ``hyper``)."""
        steps = self.n_batches if steps is None else steps
        rates = np.zeros(length, np.float64)
        if isinstance(self.optimizer, Adam):
            rates[:steps] = self.optimizer.rates(steps)
        return rates

    def _end_epoch(self, rates: np.ndarray, epochs: int = 1) -> None:
        steps = epochs * self.n_batches
        if isinstance(self.optimizer, Adam):
            self.optimizer.t += steps
            self.optimizer.learning_rate = float(rates[steps - 1])


class EpochRunner(_Runner):
    """Training data as tensors plus the compiled epoch for one fit call."""

    def __init__(self, est, net, X, y, sample_weight, xla: bool = False):
        super().__init__(est, net, X.shape[0], sample_weight)
        self.sparse = is_sparse(X)
        self.xla = xla and not self.sparse
        dtype = net.dtype
        self.X = X.tocsr() if self.sparse else X
        self.model = model = est._train_model(net)
        solver, nesterov = update_rule(est._optimizer)
        # sparse rows in "csr" mode: each batch is gathered from the matrix
        # as given and multiplied as CSR (no reordered copy of the matrix per
        # epoch; ``benchmarks/ablations.py``); else the matrix is reordered
        # each epoch and batches are row ranges of it
        self.sparse_kind = sparse_mode(model, training=True) if self.sparse else False
        self.reorder = self.sparse_kind is True
        if self.xla:  # arrays read in place where possible (``_viewable``)
            self.x = _xla_view(X) if _xla_view_ok(X, dtype) else input_tensors(X, dtype)
            self.y, self.sw = _xla_targets(y, sample_weight, self.n_samples, dtype)
            self.fn = xla_epoch_function(model, solver, nesterov, self.batch_size)
            self.batch = tf.constant(self.n_samples, tf.int64)  # rows, not batch
            # one order buffer, padded to whole batches
            self._order = np.zeros(self.n_batches * self.batch_size, np.int64)
            self._order_view = (
                _xla_view(self._order) if _viewable(self._order) else None
            )
        else:
            self.x = (
                csr_tensors(self.X, dtype, row_ids=self.reorder)
                if self.sparse
                else input_tensors(X, dtype)
            )
            self.y = tf.constant(np.asarray(y, dtype=dtype))
            if sample_weight is None:
                sample_weight = np.ones(self.n_samples, dtype=dtype)
            self.sw = tf.constant(np.asarray(sample_weight, dtype=dtype))
            # several epochs per call (``run_epochs``) unless the matrix is
            # reordered in NumPy each epoch
            self.fused = not self.reorder
            self.fn = epochs_function(model, solver, nesterov, self.sparse_kind)
            self.batch = tf.constant(self.batch_size, tf.int64)

    def _order_tensor(self) -> tf.Tensor:
        """This epoch's ``sample_idx`` in the XLA epoch's padded buffer (the
        previous epoch has finished reading it)."""
        self._order[: self.n_samples] = self.sample_idx
        if self._order_view is not None:
            return self._order_view
        return tf.constant(self._order)

    def run_epochs(self, random_state, k: int) -> np.ndarray:
        """Train ``k`` epochs in one graph-mode call (``k`` > 1 only for
        ``fused`` runners); returns each epoch's summed batch loss. The row
        orders and learning rates are drawn for all ``k`` epochs first, as
        ``k`` calls of one epoch would draw them."""
        orders = np.empty((k, self.n_samples), np.int64)
        for e in range(k):
            orders[e] = self._shuffle(random_state)
        x = self.x
        if random_state is not None and self.reorder:  # k == 1
            x = csr_tensors(self.X[self.sample_idx], self.net.dtype)
        opt = self.optimizer
        rates = self._rates(k * self.n_batches, k * self.n_batches)
        totals = self.fn(
            self.net.variables,
            opt.slots(model=self.model),
            x,
            self.y,
            self.sw,
            tf.constant(orders),
            self.batch,
            tf.constant(opt.hyper()),
            self.alpha,
            tf.constant(rates.reshape(k, self.n_batches)),
        )
        self._end_epoch(rates, k)
        return totals.numpy()

    def run_epoch(self, random_state) -> np.floating:
        """Train one epoch; ``random_state`` None means no shuffling."""
        if not self.xla:
            return self.run_epochs(random_state, 1)[0]
        self._shuffle(random_state)
        order = self._order_tensor()
        opt = self.optimizer
        rates = self._rates(self.n_batches)
        total = self.fn(
            self.net.variables,
            opt.slots(model=self.model),
            self.x,
            self.y,
            self.sw,
            order,
            self.batch,  # under XLA the number of rows
            tf.constant(opt.hyper()),
            self.alpha,
            tf.constant(rates),
        )
        self._end_epoch(rates)
        return total.numpy()


def _dense_chunks_ok(X, dtype, batch_size) -> bool:
    """Whether sparse ``X`` trains faster written out dense chunk by chunk."""
    n, d = X.shape
    rows = resolve_batch_size(batch_size, n, warn=False)
    dense_batch = rows * d * np.dtype(dtype).itemsize
    return (
        cpu_only()  # a GPU keeps the sparse path
        and dense_batch <= DENSE_BATCH_MAX_BYTES
        and X.nnz >= DENSE_MIN_DENSITY * n * d
    )


class ChunkRunner(_Runner):
    """Large dense input (or sparse input, see ``_dense_chunks_ok``): NumPy
    gathers chunks of batches, TensorFlow trains them."""

    def __init__(self, est, net, X, y, sample_weight, xla: bool):
        super().__init__(est, net, X.shape[0], sample_weight)
        n_features = X.shape[1]
        self.dtype = dtype = net.dtype
        # sparse rows are written out dense per chunk, in the training dtype
        self.sparse = is_sparse(X)
        self.X = X.tocsr().astype(dtype, copy=False) if self.sparse else X
        y = np.asarray(y).reshape(self.n_samples, -1)
        # targets stay as they are (a classifier's are bool): cast per chunk
        self.Y = y if y.dtype in (np.bool_, dtype) else y.astype(dtype)
        if sample_weight is None:
            self.sw = None
        else:
            self.sw = np.asarray(sample_weight, dtype=dtype)
        per_batch = max(self.batch_size * n_features * np.dtype(dtype).itemsize, 1)
        batches = max(CHUNK_BYTES // per_batch, CHUNK_MIN_BATCHES)
        batches = max(1, min(batches, CHUNK_MAX_BYTES // per_batch, self.n_batches))
        self.chunk_rows = batches * self.batch_size
        rows = self.chunk_rows
        self.buffers = [
            (
                aligned_array((rows, n_features), dtype),
                aligned_array((rows, self.Y.shape[1]), dtype),
                aligned_array((rows,), dtype),
            )
            for _ in range(2)
        ]
        self.ones = tf.ones([rows], dtype)
        self.model = est._train_model(net)
        self.fn = chunk_function(
            self.model, *update_rule(est._optimizer), self.batch_size, xla
        )

    def _chunk(self, order, k):
        """``(n_rows, x, y, sw)`` of chunk ``k``: rows in training order, the
        last chunk padded with zero-weight rows.

        Rows are gathered into one of two reusable buffers (chunk ``k`` uses
        buffer ``k % 2``; the chunk that used it before has been trained by
        the time ``k`` is gathered), so no memory is allocated per chunk.
        """
        start = k * self.chunk_rows
        idx = order[start : start + self.chunk_rows]
        m = len(idx)
        x, y, sw = self.buffers[k % 2]
        if self.sparse:
            self.X[idx].toarray(out=x[:m])
        elif self.X.dtype == self.dtype:  # mode="clip": take without a temporary
            np.take(self.X, idx, axis=0, out=x[:m], mode="clip")
        else:  # compute_dtype differs from the input's: cast chunk by chunk
            x[:m] = self.X[idx]
        if self.Y.dtype == self.dtype:
            np.take(self.Y, idx, axis=0, out=y[:m], mode="clip")
        else:
            y[:m] = self.Y[idx]
        if self.sw is not None:
            np.take(self.sw, idx, out=sw[:m], mode="clip")
        elif m < self.chunk_rows:
            sw[:m] = 1
        if m < self.chunk_rows:
            x[m:], y[m:], sw[m:] = 0, 0, 0
        if self.sw is None and m == self.chunk_rows:
            return m, shared_tensor(x), shared_tensor(y), self.ones
        return m, shared_tensor(x), shared_tensor(y), shared_tensor(sw)

    def run_epoch(self, random_state) -> np.floating:
        """Train one epoch; ``random_state`` None means no shuffling."""
        order = self._shuffle(random_state)
        opt = self.optimizer
        hyper = tf.constant(opt.hyper())
        total = tf.zeros([], self.dtype)
        n_chunks = -(-self.n_samples // self.chunk_rows)
        per_chunk = self.chunk_rows // self.batch_size  # batches, static
        rates = self._rates(n_chunks * per_chunk)
        with ThreadPoolExecutor(1) as pool:
            pending = pool.submit(self._chunk, order, 0)
            for k in range(n_chunks):
                m, x, y, sw = pending.result()
                if k + 1 < n_chunks:  # gather the next chunk meanwhile, into
                    total.numpy()  # the buffer of chunk k - 1: wait until done
                    pending = pool.submit(self._chunk, order, k + 1)
                total = self.fn(
                    self.net.variables,
                    opt.slots(model=self.model),
                    x,
                    y,
                    sw,
                    tf.constant(m, tf.int64),
                    hyper,
                    self.alpha,
                    tf.constant(rates[k * per_chunk : (k + 1) * per_chunk]),
                    total,
                )
        self._end_epoch(rates)
        return total.numpy()


def memory_mapped(a) -> bool:
    """Whether the array ``a`` (or an array it views) is memory-mapped from
    a file (``np.memmap``, ``np.load(..., mmap_mode=...)``): such input is
    read chunk by chunk, never copied whole."""
    while a is not None:
        if isinstance(a, (np.memmap, mmap.mmap)):
            return True
        a = getattr(a, "base", None)
    return False


def _xla_view_ok(X, dtype) -> bool:
    """Whether the XLA epoch can read the input ``X`` in place."""
    return _viewable(X) and X.dtype == dtype and X.ndim == 2


def _viewable(a) -> bool:
    """Whether XLA-compiled code can read ``a`` in place (see ``_xla_view``).

    Memory-mapped arrays are left to the chunked path, which reads them a
    chunk at a time; read-only arrays cannot be exported.
    """
    return (
        cpu_only()  # on a GPU a host array would be copied at every epoch
        and type(a) is np.ndarray
        and a.size > 0
        and a.flags.c_contiguous
        and a.flags.aligned  # each element on its own size's boundary
        and a.flags.writeable
    )


def sparse_mode(model, training: bool = False):
    """How sparse rows meet the weights: ``"csr"`` (TensorFlow's CSR kernels)
    for the standard network on the CPU (in training, with its hand-written
    backward pass), else True (a ``tf.SparseTensor``: custom Keras stacks and
    tape-differentiated activations take those, and the CSR path is untested
    on GPUs)."""
    standard = is_standard(model)
    if training:
        standard = standard and model.manual_backward
    return "csr" if standard and CSR_AVAILABLE and cpu_only() else True


def _xla_view(X: np.ndarray) -> tf.Tensor:
    """A tensor over ``X``'s own memory (DLPack), for XLA-compiled code only.

    TensorFlow's own kernels require 64-byte aligned data (large NumPy arrays
    are 16-byte aligned) and abort the process on anything else; XLA's CPU
    code reads any alignment, and the resident XLA epoch is the only code
    that ever touches this tensor. The tensor keeps ``X`` alive. If DLPack
    is unavailable, the data is copied.
    """
    try:
        return tf.experimental.dlpack.from_dlpack(X.__dlpack__())
    except Exception:  # an old NumPy/TensorFlow without DLPack
        return tf.constant(X)


def _xla_targets(y, sample_weight, n: int, dtype) -> tuple:
    """Targets and sample weights for the XLA epoch, read in place.

    A classifier's 0/1 targets stay one byte each (the epoch casts each
    batch): a float copy would cost 40 MB on 1M rows and 10 classes.
    """
    y = np.asarray(y).reshape(n, -1)
    if y.dtype == np.bool_:
        y = np.ascontiguousarray(y).view(np.uint8)
    elif y.dtype != dtype:
        y = y.astype(dtype)
    if sample_weight is None:
        sw = np.ones(n, dtype)
    else:
        sw = np.asarray(sample_weight, dtype=dtype)
    return _xla_array(y), _xla_array(sw)


def _xla_array(a: np.ndarray) -> tf.Tensor:
    """``a`` for XLA-compiled code only: in place where possible, else copied."""
    a = np.ascontiguousarray(a)
    return _xla_view(a) if _viewable(a) else tf.constant(a)
