"""Prediction for small inputs in NumPy (SciPy for sparse rows), no graph call.

For a few rows, calling a compiled TensorFlow function (argument conversion,
dispatch, a first call's trace) costs more than the arithmetic: one MNIST
row's ``predict_proba`` (100 hidden units) takes 0.31 ms this way against
0.64 ms through the graph. Inputs whose activations hold at most ``MAX_VALUES`` values
are computed on the host from the estimator's weight arrays (synchronised
with the variables by ``_sync_weights`` first), with the graph's formulas
(and scikit-learn's); larger inputs keep the compiled function, which also
serves GPUs (``python benchmarks/ablations.py``: "predict_proba of N rows").
"""

from __future__ import annotations

import contextlib
import functools
import threading

import numpy as np
from scipy.special import expit

from tfmlp._network import is_standard

# rows x (units of every layer after the input) up to which prediction runs
# in NumPy: ~9,500 rows of a 100-unit network
MAX_VALUES = 2**20

# products of up to this many multiply-adds (rows x weights) run on one BLAS
# thread: right after TensorFlow has worked, its thread pool still holds the
# cores, and a second BLAS thread can wait a scheduler time slice (~7 ms for
# 360 digits rows, against 0.05 ms of arithmetic; ad hoc, 2 cores)
ONE_THREAD_MACS = 2**23
_BLAS_LOCK = threading.Lock()


@functools.lru_cache(maxsize=1)
def _blas_controller():
    """threadpoolctl's controller of the loaded BLAS libraries (scanning the
    process's libraries once), or None without a usable threadpoolctl."""
    try:
        from threadpoolctl import ThreadpoolController

        return ThreadpoolController().select(user_api="blas")
    except Exception:  # BLAS keeps its own threading
        return None


@contextlib.contextmanager
def _blas_threads(macs: int):
    """One BLAS thread for small products (``ONE_THREAD_MACS``), restored
    after; the lock keeps concurrent callers from restoring each other's
    limit."""
    if macs > ONE_THREAD_MACS:
        yield
        return
    with _BLAS_LOCK:
        blas = _blas_controller()
        if blas is None:
            yield
            return
        with blas.limit(limits=1):
            yield


def _softmax(a: np.ndarray) -> np.ndarray:
    a -= a.max(axis=1, keepdims=True)
    np.exp(a, out=a)
    a /= a.sum(axis=1, keepdims=True)
    return a


# in place on a fresh product; scikit-learn's four hidden activations and
# the output activations (Keras' extra activations keep the graph)
_ACTIVATIONS = {
    "identity": lambda a: a,
    "logistic": lambda a: expit(a, out=a),
    "tanh": lambda a: np.tanh(a, out=a),
    "relu": lambda a: np.maximum(a, 0, out=a),
    "softmax": _softmax,
    "exp": lambda a: np.exp(a, out=a),
}


def host_forward_ok(X, model, coefs, any_size: bool = False) -> bool:
    """Whether ``host_forward`` computes ``model``'s outputs for ``X`` (with
    weight matrices ``coefs``): the standard network with NumPy-known
    activations and float products, a dense array or CSR matrix, and few
    values (``MAX_VALUES``) unless ``any_size``."""
    if not is_standard(model) or model.spec.matmul_dtype is not None:
        return False
    spec = model.spec
    if spec.activation not in _ACTIVATIONS or spec.out_activation not in _ACTIVATIONS:
        return False
    if not (isinstance(X, np.ndarray) or getattr(X, "format", None) == "csr"):
        return False
    return any_size or X.shape[0] * sum(np.shape(c)[1] for c in coefs) <= MAX_VALUES


def output_activation(z: np.ndarray, name: str) -> np.ndarray:
    """scikit-learn's output activation ``name`` of the pre-activations ``z``
    (a fresh array, changed in place)."""
    return _ACTIVATIONS[name](z)


def host_forward(X, coefs, intercepts, spec, dtype, hidden_only=False) -> np.ndarray:
    """Output activations (or, with ``hidden_only``, the last hidden layer's)
    of the network ``coefs``/``intercepts`` for ``X``, in ``dtype``."""
    n = len(coefs)
    layers = n - 1 if hidden_only else n
    if layers == 0:  # transform without hidden layers: the input, as a copy
        dense = X.toarray() if hasattr(X, "toarray") else X
        return np.array(dense, dtype=dtype)
    a = X.astype(dtype, copy=False)
    with _blas_threads(X.shape[0] * sum(np.size(c) for c in coefs[:layers])):
        for i in range(layers):
            a = a @ np.asarray(coefs[i], dtype=dtype)
            a += np.asarray(intercepts[i], dtype=dtype)
            act = spec.activation if i < n - 1 else spec.out_activation
            a = _ACTIVATIONS[act](a)
    return a
