"""Turning validated NumPy / SciPy input into the tensors the compiled code reads.

Dense input becomes one tensor, gathered batch by batch inside the graph.
Sparse input stays sparse: a CSR matrix becomes (indptr, indices, values,
row_ids, n_features) tensors, and each batch is cut out of it by row range, so
the matrix is never densified.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import tensorflow as tf


def is_sparse(X) -> bool:
    return sp.issparse(X)


def dense_tensor(X: np.ndarray, dtype) -> tf.Tensor:
    return tf.convert_to_tensor(np.asarray(X, dtype=dtype))


def csr_tensors(X, dtype) -> tuple:
    """CSR matrix -> (indptr, indices, values, row_ids, n_features) tensors."""
    X = sp.csr_matrix(X)
    if not X.has_sorted_indices:
        X = X.sorted_indices()
    counts = np.diff(X.indptr)
    row_ids = np.repeat(np.arange(X.shape[0], dtype=np.int64), counts)
    return (
        tf.convert_to_tensor(X.indptr.astype(np.int64)),
        tf.convert_to_tensor(X.indices.astype(np.int64)),
        tf.convert_to_tensor(X.data.astype(dtype, copy=False)),
        tf.convert_to_tensor(row_ids),
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


def input_tensors(X, dtype):
    """Dense tensor or CSR tensors for X, in ``dtype``."""
    if is_sparse(X):
        return csr_tensors(X, dtype)
    return dense_tensor(X, dtype)


def row_chunks(n_rows: int, chunk: int):
    """Slices that cover ``range(n_rows)`` in chunks (for batched prediction)."""
    for start in range(0, n_rows, chunk):
        yield slice(start, min(start + chunk, n_rows))
