"""Sparse prediction on the CPU: the first product by SciPy on all cores."""

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier as SkClassifier
from sklearn.neural_network import MLPRegressor as SkRegressor

from tfmlp import (
    MLPClassifier,
    MLPRegressor,
    _base,
    _data,
    _host_forward,
    _loop,
    _training,
)


def _fit(est, *args):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(*args)


def _sparse(n=300, d=40, density=0.15, seed=0, dtype=np.float64):
    rng = np.random.RandomState(seed)
    X = sp.random(n, d, density=density, format="csr", random_state=rng)
    X = X.astype(dtype)
    X.data[X.indptr[5] : X.indptr[6]] = 0.0  # an empty row
    X.eliminate_zeros()
    y = rng.randint(0, 3, n)
    return X, y


@pytest.mark.parametrize("parts", [1, 2, 3, 7])
def test_sparse_dot_equals_scipy_for_any_split(monkeypatch, parts):
    X, _ = _sparse()
    W = np.random.RandomState(1).randn(40, 6)
    monkeypatch.setattr(_data, "SPARSE_THREADS_MIN_NNZ", 1)
    monkeypatch.setattr(_data, "_cpu_count", lambda: parts)
    np.testing.assert_array_equal(_data.sparse_dot(X, W), X @ W)
    # unsorted indices, explicit zeros, one row, no nonzeros at all
    Y = X.copy()
    Y.indices = Y.indices.copy()
    for r in range(Y.shape[0]):
        lo, hi = Y.indptr[r], Y.indptr[r + 1]
        Y.indices[lo:hi] = Y.indices[lo:hi][::-1]
        Y.data[lo:hi] = Y.data[lo:hi][::-1]
    Y.has_sorted_indices = False
    Y.data[::4] = 0.0
    np.testing.assert_allclose(_data.sparse_dot(Y, W), Y.toarray() @ W, rtol=1e-13)
    np.testing.assert_array_equal(_data.sparse_dot(X[3:4], W), X[3:4] @ W)
    empty = sp.csr_matrix((4, 40))
    np.testing.assert_array_equal(_data.sparse_dot(empty, W), np.zeros((4, 6)))


def test_csr_rows_are_the_rows():
    X, _ = _sparse()
    for a, b in [(0, 300), (10, 50), (5, 6), (299, 300), (7, 7)]:
        rows = _data.csr_rows(X, a, b)
        assert rows.shape == (b - a, X.shape[1])
        np.testing.assert_array_equal(rows.toarray(), X[a:b].toarray())


def _path(monkeypatch):
    """Record whether predictions took the SciPy first-product path (the
    graph's path: small inputs would be predicted in NumPy otherwise)."""
    monkeypatch.setattr(_host_forward, "MAX_VALUES", -1)
    calls = []
    original = _base.sparse_dot

    def spy(X, W):
        calls.append(X.shape[0])
        return original(X, W)

    monkeypatch.setattr(_base, "sparse_dot", spy)
    return calls


@pytest.mark.parametrize("activation", ["relu", "tanh", "logistic", "gelu"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sparse_predictions_equal_dense_ones(monkeypatch, activation, dtype):
    X, y = _sparse(dtype=dtype)
    kw = dict(hidden_layer_sizes=(8, 5), activation=activation, max_iter=3)
    clf = _fit(MLPClassifier(random_state=0, **kw), X.toarray(), y)
    calls = _path(monkeypatch)
    monkeypatch.setattr(_base, "_PREDICT_CHUNK", 64)  # several chunks
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-12)
    dense = clf.predict_proba(X.toarray())
    for fmt in ("csr", "csc", "coo"):
        np.testing.assert_allclose(clf.predict_proba(X.asformat(fmt)), dense, **tol)
        assert clf.predict_proba(X.asformat(fmt)).dtype == dtype
    np.testing.assert_array_equal(clf.predict(X), clf.predict(X.toarray()))
    np.testing.assert_allclose(clf.transform(X), clf.transform(X.toarray()), **tol)
    assert calls and max(calls) <= 64 and sum(calls[:5]) == X.shape[0]


def test_sparse_regressor_predictions_match_scikit_learn(monkeypatch):
    _path(monkeypatch)  # the SciPy first product, not the small-input path
    X, _ = _sparse(seed=3)
    y = np.random.RandomState(3).rand(X.shape[0], 2)
    kw = dict(hidden_layer_sizes=(7,), max_iter=5, random_state=0, solver="lbfgs")
    ours = _fit(MLPRegressor(**kw), X, y)
    theirs = _fit(SkRegressor(**kw), X, y)
    np.testing.assert_allclose(ours.predict(X), theirs.predict(X), rtol=1e-9)
    clf_kw = dict(hidden_layer_sizes=(6,), max_iter=4, random_state=0)
    yc = np.random.RandomState(4).randint(0, 2, X.shape[0])
    ours = _fit(MLPClassifier(**clf_kw), X, yc)
    theirs = _fit(SkClassifier(**clf_kw), X, yc)
    np.testing.assert_allclose(
        ours.predict_proba(X), theirs.predict_proba(X), rtol=1e-9, atol=1e-12
    )


def test_other_networks_keep_the_in_graph_sparse_product(monkeypatch):
    X, y = _sparse()
    calls = _path(monkeypatch)
    no_hidden = _fit(MLPClassifier(hidden_layer_sizes=(), max_iter=2), X, y)
    no_hidden.predict_proba(X)  # the input is the output layer's input
    stack = _fit(MLPClassifier(dropout=0.1, max_iter=2, random_state=0), X, y)
    stack.predict_proba(X)  # a Keras stack
    assert calls == []
    standard = _fit(MLPClassifier(hidden_layer_sizes=(4,), max_iter=2), X, y)
    expected = standard.predict_proba(X)
    assert calls
    calls.clear()
    monkeypatch.setattr(_loop, "cpu_only", lambda: False)  # as on a GPU
    np.testing.assert_allclose(standard.predict_proba(X), expected, rtol=1e-12)
    assert calls == []
    assert ("predict", "product") in {k[1:] for k in _training._CACHE}


def test_a_float32_network_predicts_float64_rows_as_sklearn(monkeypatch):
    # scikit-learn's X @ coefs_ promotes: float64 rows give float64 outputs
    # of the float32 weights, also past the small-input limit
    from tfmlp import to_sklearn

    _path(monkeypatch)  # large inputs: not the small-input path
    X, y = _sparse(dtype=np.float64)
    clf = _fit(
        MLPClassifier(hidden_layer_sizes=(6,), max_iter=3), X.astype(np.float32), y
    )
    monkeypatch.setattr(_base, "_PREDICT_CHUNK", 50)
    single = clf.predict_proba(X.astype(np.float32))
    assert single.dtype == np.float32
    for rows in (X, X.toarray()):
        got = clf.predict_proba(rows)
        assert got.dtype == np.float64
        want = to_sklearn(clf).predict_proba(rows)
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(got, single, rtol=1e-6, atol=1e-7)


_ONE_COPY_SCRIPT = """
import resource, sys
import numpy as np
from tfmlp._data import dense_tensor

def peak_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

dense_tensor(np.ones((10, 10)), np.float32)  # the runtime's own first use
X = np.random.RandomState(0).rand(500_000, 100)  # 381 MB float64
if sys.argv[1] == "fortran":
    X = np.asfortranarray(X)
X.flags.writeable = False
dtype = np.float32 if sys.argv[1] == "convert" else np.float64
want = X.size * np.dtype(dtype).itemsize / 2**20
before = peak_mb()
t = dense_tensor(X, dtype)
grown = peak_mb() - before
assert float(t[123, 45]) == float(X[123, 45].astype(dtype))
print(f"{grown:.0f} MB for a {want:.0f} MB tensor")
sys.exit(0 if grown < 1.5 * want else 1)
"""


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["readonly", "convert"])
def test_dense_tensor_holds_one_copy_at_most(kind):
    """A read-only, Fortran-order or converted array becomes a tensor with
    one copy of the data at its peak (TensorFlow's conversion held two)."""
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-c", _ONE_COPY_SCRIPT, kind],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr[-2000:]


def test_csr_batch_transposed_products_repeat_and_equal_scipy():
    # TensorFlow's transposed CSR product sums per-thread parts in no fixed
    # order; a batch is transposed first, so X.T @ delta repeats bit for bit
    import tensorflow as tf

    rng = np.random.RandomState(0)
    X = sp.random(400, 20_000, density=0.005, format="csr", random_state=rng)
    delta = tf.constant(rng.randn(400, 30))
    data = _data.csr_tensors(X, np.float64)

    @tf.function
    def product():
        batch = _data.csr_batch(_data.sparse_rows(data, 0, 400))
        return batch.matmul(delta, transpose=True)

    runs = [product().numpy() for _ in range(8)]
    for run in runs:
        np.testing.assert_array_equal(run, X.T @ delta.numpy())


def test_sparse_minibatch_training_repeats_bit_for_bit():
    # rows this wide train as CSR batches gathered in the graph (a dense
    # batch would take more than _loop.DENSE_BATCH_MAX_BYTES)
    rng = np.random.RandomState(0)
    X = sp.random(3000, 3000, density=0.01, format="csr", random_state=rng)
    y = rng.randint(0, 3, 3000)
    fits = [
        _fit(MLPClassifier(hidden_layer_sizes=(30,), max_iter=3, random_state=0), X, y)
        for _ in range(3)
    ]
    for other in fits[1:]:
        for a, b in zip(
            fits[0].coefs_ + fits[0].intercepts_, other.coefs_ + other.intercepts_
        ):
            np.testing.assert_array_equal(a, b)
        assert other.loss_curve_ == fits[0].loss_curve_
