"""L-BFGS through SciPy's L-BFGS-B, with loss and gradient computed by TensorFlow.

Parameters are packed like scikit-learn does: every coefficient matrix (C
order) first, then every intercept vector. SciPy works in float64, so the
fitted weights are float64 whatever the input dtype; it evaluates the
objective in the starting weights' dtype (float32 for a first fit on float32
data), as it does for scikit-learn; a classifier's loss value is float64
there too, as scikit-learn's (``_losses.data_loss``).
"""

from __future__ import annotations

import contextvars

import numpy as np
import scipy.optimize
import scipy.sparse as sp
import tensorflow as tf
from sklearn.exceptions import ConvergenceWarning

from tfmlp._data import (
    CSR_AVAILABLE,
    cpu_only,
    csr_handle,
    csr_tensors,
    dense_tensor,
    is_sparse,
)
from tfmlp._interrupt import deferred_interrupts
from tfmlp._training import loss_grad_function
from tfmlp._warn import warn

# Called after each L-BFGS iteration as ``hook(iteration, loss)`` while set
# (the command line's progress output; the estimators have no such option,
# as scikit-learn's lbfgs has none).
ITERATION_HOOK: contextvars.ContextVar = contextvars.ContextVar(
    "tfmlp_lbfgs_iteration_hook", default=None
)

# Dense input this large with at most this share of nonzeros is multiplied as
# a CSR matrix: for MNIST in float64 (19% nonzeros) one evaluation takes
# ~0.19 s instead of ~0.28 s dense; the sparse cost grows with the nonzeros
# and meets the dense one near 30% (``benchmarks/ablations.py``). In float32
# the dense product is faster (oneDNN) and the two meet near 13%: MNIST
# evaluates in ~0.20 s dense and ~0.23 s as CSR, random data at 10%
# nonzeros in ~0.22 s dense and ~0.18 s as CSR (``ablations.py``'s float32
# lines, AVX2 host).
CSR_MAX_DENSITY = 0.25
CSR_MAX_DENSITY_FLOAT32 = 0.10
CSR_MIN_SIZE = 1_000_000
_INT32_MAX = 2**31 - 1


# On the CPU, a model with a hand-written backward pass evaluates the
# objective over slices of rows whose layer activations hold about this many
# values each (4 MB in float64), at least PASS_MIN_ROWS rows: every
# activation of a single pass over all rows took fresh memory from the
# system at each evaluation (page faults: ~0.08 s of system time of a
# ~0.35 s MNIST evaluation, ad hoc), and slices stay in the cache.
PASS_VALUES = 2**19
PASS_MIN_ROWS = 1024


def pass_rows(X, model, shapes) -> int:
    """Rows per slice of the objective over ``X`` (0: one pass); ``shapes``
    are the parameters' shapes."""
    if not (getattr(model, "manual_backward", False) and cpu_only()):
        return 0
    width = max(shape[-1] for shape in shapes)
    # a multiple of 64 rows: each slice of a dense input then starts on a
    # 64-byte boundary and TensorFlow reads it in place instead of copying it
    rows = max(PASS_MIN_ROWS, PASS_VALUES // width // 64 * 64)
    return rows if X.shape[0] >= 2 * rows else 0


def objective_input(X, model, dtype=np.float64, rows: int = 0) -> tuple[object, str]:
    """``(x, kind)`` for ``loss_grad_function``: X in ``dtype`` as a CSR handle
    where that multiplies faster, else as dense or sparse-row tensors.

    ``rows`` (from ``pass_rows``): a CSR ``x`` is a vector of handles, one
    per slice of ``rows`` rows; sparse-row tensors are not sliced.
    """
    if _csr_faster(X, model, dtype):
        if not rows:
            return csr_handle(X, dtype), "csr"
        X = sp.csr_matrix(X) if is_sparse(X) else X  # (rows sliceable)
        handles = [
            csr_handle(X[a : a + rows], dtype) for a in range(0, X.shape[0], rows)
        ]
        return tf.stack(handles), "csr"
    if is_sparse(X):
        return csr_tensors(X, dtype), "sparse"
    return dense_tensor(X, dtype), "dense"


def _csr_faster(X, model, dtype) -> bool:
    # the CSR product runs on the CPU (the GPU keeps the tested tensor paths)
    # and only the hand-written backward pass multiplies by it
    if not (CSR_AVAILABLE and getattr(model, "manual_backward", False)):
        return False
    if not cpu_only() or max(X.shape) > _INT32_MAX:
        return False
    if is_sparse(X):
        return X.nnz <= _INT32_MAX
    nnz = np.count_nonzero(X)
    density = CSR_MAX_DENSITY if dtype == np.float64 else CSR_MAX_DENSITY_FLOAT32
    return X.size >= CSR_MIN_SIZE and nnz <= min(density * X.size, _INT32_MAX)


def pack(arrays: list[np.ndarray]) -> np.ndarray:
    return np.hstack([a.ravel() for a in arrays])


def unpack(flat: np.ndarray, shapes: list[tuple[int, ...]]) -> list[np.ndarray]:
    out, start = [], 0
    for shape in shapes:
        size = int(np.prod(shape))
        out.append(flat[start : start + size].reshape(shape))
        start += size
    return out


def fit_lbfgs(params, X, y, sw, model, *, alpha, max_iter, max_fun, tol):
    """Minimise the objective over validated ``X`` from ``params``.

    As scikit-learn's call to SciPy: the search runs in float64, but SciPy
    hands the objective each point in the dtype of the starting point (the
    weights' dtype: float32 for a first fit on float32 data), so the loss and
    gradient are evaluated there, in the dtype ``X @ weights`` has.
    ``y`` and ``sw`` are arrays. Returns ``(arrays (float64), loss,
    n_iter)`` and warns like scikit-learn when SciPy reports that it did not
    converge.
    """
    shapes = [p.shape for p in params]
    point_dtype = np.result_type(*params)
    if point_dtype not in (np.float32, np.float64):
        point_dtype = np.dtype(np.float64)
    dtype = np.result_type(point_dtype, X.dtype)  # of the evaluation
    rows = pass_rows(X, model, shapes)
    x, kind = objective_input(X, model, dtype, rows)
    y = tf.constant(np.asarray(y, dtype=dtype))
    sw = tf.constant(np.asarray(sw, dtype=dtype))
    fn = loss_grad_function(model, kind, 0 if kind == "sparse" else rows)
    alpha_t = tf.constant(alpha, tf.float64)

    def fun(flat):
        point = flat.astype(point_dtype, copy=False)  # SciPy's rounding
        tensors = [tf.constant(a.astype(dtype)) for a in unpack(point, shapes)]
        loss, grads = fn(tensors, x, y, sw, alpha_t)
        return float(loss.numpy()), pack([g.numpy() for g in grads]).astype(np.float64)

    hook = ITERATION_HOOK.get()
    iterations = [0]
    with deferred_interrupts() as ctrl_c:

        def stop_on_ctrl_c(intermediate_result):  # SciPy's name for the form
            iterations[0] += 1
            if hook is not None:
                hook(iterations[0], float(intermediate_result.fun))
            if ctrl_c.requested:  # SciPy returns this iterate
                raise StopIteration

        res = scipy.optimize.minimize(
            fun,
            pack(params).astype(np.float64),
            method="L-BFGS-B",
            jac=True,
            options={"maxfun": max_fun, "maxiter": max_iter, "gtol": tol},
            callback=stop_on_ctrl_c,
        )
    n_iter = min(res.nit, max_iter)
    if ctrl_c.requested:
        warn("Training interrupted by user.", like_sklearn=True)
    elif res.status != 0:
        _warn_not_converged(res, n_iter, max_iter)
    return unpack(res.x, shapes), np.float64(res.fun), n_iter  # x0's float64


def _warn_not_converged(res, n_iter: int, max_iter: int) -> None:
    msg = (
        f"lbfgs failed to converge after {n_iter} iteration(s) "
        f"(status={res.status}):\n{res.message}\n"
    )
    if n_iter == max_iter:
        msg += (
            "\nIncrease the number of iterations to improve the "
            f"convergence (max_iter={max_iter})."
        )
    msg += (
        "\nYou might also want to scale the data as shown in:\n"
        "    https://scikit-learn.org/stable/modules/preprocessing.html"
    )
    warn(msg, ConvergenceWarning, like_sklearn=True)
