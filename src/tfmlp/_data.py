"""Turning validated NumPy / SciPy input into the tensors the compiled code reads.

Dense input becomes one tensor, gathered batch by batch inside the graph.
Sparse input stays sparse: a CSR matrix becomes (indptr, indices, values,
row_ids, n_features) tensors, and each batch is cut out of it by row range, so
the matrix is never densified.
"""

from __future__ import annotations

import functools
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import scipy.sparse as sp
import tensorflow as tf

try:  # TensorFlow's CSR matrix ops live in private modules
    from tensorflow.python.ops import handle_data_util
    from tensorflow.python.ops.linalg.sparse import (
        gen_sparse_csr_matrix_ops as csr_ops,
    )
    from tensorflow.python.ops.linalg.sparse import sparse_csr_matrix_ops

    CSR_AVAILABLE = True
except ImportError:  # a TensorFlow without them: the tf.SparseTensor paths
    CSR_AVAILABLE = False


def is_sparse(X) -> bool:
    return sp.issparse(X)


@functools.lru_cache(maxsize=1)
def cpu_only() -> bool:
    """Whether TensorFlow sees no GPU. Host arrays are read in place, and the
    CSR kernels and the single-threaded executor are used, only then."""
    return not tf.config.list_logical_devices("GPU")


def dense_tensor(X: np.ndarray, dtype) -> tf.Tensor:
    """``X`` in ``dtype`` as a tensor, with one copy at most at any time.

    On the CPU, ``X`` is copied (and converted) into an aligned buffer that
    the tensor reads in place: ``tf.convert_to_tensor`` held two copies of
    a read-only 190 MB array at its peak (a QA measurement).
    """
    X = np.asarray(X)
    if not cpu_only() or X.size == 0:
        return tf.convert_to_tensor(np.asarray(X, dtype=dtype))
    buffer = aligned_array(X.shape, dtype)
    np.copyto(buffer, X, casting="unsafe")
    return shared_tensor(buffer)


def aligned_array(shape: tuple, dtype) -> np.ndarray:
    """An uninitialised array whose data starts on a 64-byte boundary."""
    size = int(np.prod(shape)) * np.dtype(dtype).itemsize
    raw = np.empty(size + 64, np.uint8)
    offset = -raw.ctypes.data % 64
    return raw[offset : offset + size].view(dtype).reshape(shape)


def shared_tensor(a: np.ndarray) -> tf.Tensor:
    """A tensor over ``a``'s memory (DLPack: no copy), or a copy of ``a``.

    The caller must not change ``a`` while a computation may still read it.
    TensorFlow requires 64-byte aligned data for zero-copy use (see
    ``aligned_array``); anything else is copied.
    """
    if a.ctypes.data % 64 == 0 and a.flags.c_contiguous and a.size:
        try:
            return tf.experimental.dlpack.from_dlpack(a.__dlpack__())
        except Exception:  # an old NumPy/TensorFlow without DLPack: copy
            pass
    return tf.constant(a)


def csr_tensors(X, dtype, row_ids: bool = True) -> tuple:
    """CSR matrix -> (indptr, indices, values, row_ids, n_features) tensors.

    ``row_ids`` (each value's row, which ``sparse_rows`` needs) is left empty
    with ``row_ids=False``; ``gathered_rows`` does not read it.
    """
    X = sp.csr_matrix(X)
    if not X.has_sorted_indices:
        X = X.sorted_indices()
    if row_ids:
        counts = np.diff(X.indptr)
        ids = np.repeat(np.arange(X.shape[0], dtype=np.int64), counts)
    else:
        ids = np.zeros(0, np.int64)
    return (
        tf.convert_to_tensor(X.indptr.astype(np.int64)),
        tf.convert_to_tensor(X.indices.astype(np.int64)),
        tf.convert_to_tensor(X.data.astype(dtype, copy=False)),
        tf.convert_to_tensor(ids),
        tf.convert_to_tensor(np.int64(X.shape[1])),
    )


def sparse_rows(data: tuple, start, size) -> tf.SparseTensor:
    """Rows [start, start + size) of CSR tensors, as a tf.SparseTensor (in graph)."""
    indptr, indices, values, row_ids, n_features = data
    start = tf.cast(start, tf.int64)
    size = tf.cast(size, tf.int64)
    lo = indptr[start]
    hi = indptr[start + size]
    rows = tf.slice(row_ids, [lo], [hi - lo]) - start
    cols = tf.slice(indices, [lo], [hi - lo])
    vals = tf.slice(values, [lo], [hi - lo])
    return tf.SparseTensor(
        tf.stack([rows, cols], axis=1), vals, tf.stack([size, n_features])
    )


class CsrMatrix:
    """TensorFlow's CSR sparse-matrix handle (a variant tensor) inside a graph.

    Its product with a dense matrix (``SparseMatrixMatMul``) runs several times
    faster than ``tf.sparse.sparse_dense_matmul`` over a ``tf.SparseTensor`` of
    the same rows and, for float64 data that is mostly zeros, faster than the
    dense product (``benchmarks/ablations.py``). The full-batch lbfgs
    objective builds its handles once per fit (:func:`csr_handle`); sparse
    training builds one per batch inside the graph (:func:`csr_batch`).
    """

    def __init__(self, handle: tf.Tensor, dtype, transpose_first: bool = False):
        # a graph placeholder of dtype variant carries no shape or dtype; the
        # matmul op's shape inference reads them from the handle data
        proto = sparse_csr_matrix_ops._create_handle_data_proto(
            tf.TensorShape([None, None]).as_proto(), tf.as_dtype(dtype).as_datatype_enum
        )
        handle_data_util.set_handle_data(handle, proto)
        self.handle = handle
        self.dtype = tf.as_dtype(dtype)
        self.transpose_first = transpose_first

    def to_dense(self):
        return csr_ops.csr_sparse_matrix_to_dense(self.handle, type=self.dtype)

    def matmul(self, w, transpose: bool = False):
        """``self @ w``, or ``self.T @ w`` with ``transpose``.

        The kernel's ``transpose_a`` product sums per-thread partial results
        in no fixed order (not bit-reproducible). With ``transpose_first``
        the matrix is transposed first (a sequential counting sort) and
        multiplied as is: the sums then run in row order, equal to SciPy's
        ``X.T @ w`` bit for bit, and for a minibatch this is also faster
        (200-row batches: MNIST's 1.27 against 1.47 ms, a 10000 x 50000
        matrix's with 0.2% non-zeros 17 against 67 ms,
        ``benchmarks/ablations.py``). For
        the thousands of rows of an lbfgs slice it is slower (13.4 against
        7.8 ms for 5184 MNIST rows, ad hoc), so those keep the kernel's.
        """
        if transpose and self.transpose_first:
            flipped = csr_ops.sparse_matrix_transpose(self.handle, type=self.dtype)
            return csr_ops.sparse_matrix_mat_mul(flipped, w)
        return csr_ops.sparse_matrix_mat_mul(self.handle, w, transpose_a=transpose)


def csr_handle(X, dtype) -> tf.Tensor:
    """A CSR sparse-matrix handle (variant tensor) holding X in ``dtype``.

    X is a dense array or a SciPy sparse matrix (built once, eagerly).
    """
    return _csr_variant(sparse_rows(csr_tensors(X, dtype), 0, X.shape[0]))


def _csr_variant(rows: tf.SparseTensor) -> tf.Tensor:
    return csr_ops.sparse_tensor_to_csr_sparse_matrix(
        rows.indices, rows.values, rows.dense_shape
    )


def gathered_rows(data: tuple, idx) -> tf.SparseTensor:
    """Rows ``idx`` (in that order) of CSR tensors, as a tf.SparseTensor (in graph).

    Each row's slice of ``indices``/``values`` is gathered by position, so
    shuffled batches come straight from the matrix as it was given.
    """
    indptr, indices, values, _, n_features = data
    positions = tf.ragged.range(tf.gather(indptr, idx), tf.gather(indptr, idx + 1))
    flat = positions.flat_values
    rows = positions.value_rowids()
    return tf.SparseTensor(
        tf.stack([rows, tf.gather(indices, flat)], axis=1),
        tf.gather(values, flat),
        tf.stack([tf.size(idx, out_type=tf.int64), n_features]),
    )


def csr_batch(rows: tf.SparseTensor) -> CsrMatrix:
    """A tf.SparseTensor in row-major order as a ``CsrMatrix`` (in graph),
    whose transposed products are bit-reproducible."""
    return CsrMatrix(_csr_variant(rows), rows.values.dtype, transpose_first=True)


def input_tensors(X, dtype):
    """Dense tensor or CSR tensors for X, in ``dtype``."""
    if is_sparse(X):
        return csr_tensors(X, dtype)
    return dense_tensor(X, dtype)


def row_chunks(n_rows: int, chunk: int):
    """Slices that cover ``range(n_rows)`` in chunks (for batched prediction)."""
    for start in range(0, n_rows, chunk):
        yield slice(start, min(start + chunk, n_rows))


# ------------------------------------------------ sparse prediction on the CPU
SPARSE_THREADS_MIN_NNZ = 200_000  # smaller products run on one thread


class FirstProduct:
    """The first layer's product ``x @ W1``, computed outside the graph.

    Prediction on the CPU multiplies dense rows with NumPy and CSR rows with
    SciPy (``sparse_dot`` below); the network's first ``matmul`` then returns
    this value instead of multiplying (see ``_network.matmul``).
    """

    def __init__(self, value: tf.Tensor):
        self.value = value


def csr_rows(X: sp.csr_matrix, start: int, stop: int) -> sp.csr_matrix:
    """Rows ``[start, stop)`` of a CSR matrix, built from slices of X's
    arrays (SciPy keeps them as views where it can; ``X[start:stop]`` takes
    its general indexing path and copies)."""
    lo, hi = X.indptr[start], X.indptr[stop]
    return sp.csr_matrix(
        (X.data[lo:hi], X.indices[lo:hi], X.indptr[start : stop + 1] - lo),
        shape=(stop - start, X.shape[1]),
        copy=False,
    )


def sparse_dot(X: sp.csr_matrix, W: np.ndarray) -> np.ndarray:
    """``X @ W`` by SciPy, the rows split over the CPU's cores.

    SciPy's sparse-times-dense kernel is single-threaded and releases the GIL,
    so row blocks of about equal nonzero counts run in parallel threads
    (``predict_proba`` of MNIST's 60,000 rows as CSR: 0.075 s on two cores,
    0.113 s on one, 0.215 s with TensorFlow's CSR product in the graph;
    ``benchmarks/ablations.py``). Each row is summed in SciPy's order, as in
    scikit-learn's own product.
    """
    n = X.shape[0]
    parts = min(_cpu_count(), max(1, X.nnz // SPARSE_THREADS_MIN_NNZ))
    if parts <= 1 or n < 2:
        return X @ W
    out = np.empty((n, W.shape[1]), np.result_type(X.dtype, W.dtype))
    targets = np.linspace(0, X.nnz, parts + 1)[1:-1]
    inner = np.searchsorted(X.indptr, targets).clip(1, n - 1)
    bounds = [0, *sorted(set(inner.tolist())), n]

    def block(k):
        a, b = bounds[k], bounds[k + 1]
        out[a:b] = csr_rows(X, a, b) @ W

    with ThreadPoolExecutor(len(bounds) - 1) as pool:
        list(pool.map(block, range(len(bounds) - 1)))
    return out


@functools.lru_cache(maxsize=1)
def _cpu_count() -> int:
    try:
        return max(1, min(8, len(os.sched_getaffinity(0))))
    except (AttributeError, OSError):
        return max(1, min(8, os.cpu_count() or 1))
