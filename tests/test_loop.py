"""The epoch runners: which one is chosen, and the chunk buffers they feed."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

import tfmlp._loop as loop
from tfmlp import MLPClassifier, MLPRegressor


def test_aligned_buffers_are_read_without_a_copy():
    buf = loop.aligned_array((7, 5), np.float64)
    assert buf.ctypes.data % 64 == 0 and buf.flags.c_contiguous
    buf[...] = np.arange(35.0).reshape(7, 5)
    t = loop.shared_tensor(buf)
    np.testing.assert_array_equal(t.numpy(), buf)
    buf[0, 0] = -1.0  # zero copy: the tensor reads the buffer itself
    assert float(t[0, 0]) == -1.0


@pytest.mark.parametrize("offset", [1, 2, 3])
def test_misaligned_or_strided_arrays_are_copied(offset):
    base = np.arange(400.0, dtype=np.float32)
    view = base[offset : offset + 200].reshape(20, 10)  # not 64-byte aligned
    t = loop.shared_tensor(view)
    np.testing.assert_array_equal(t.numpy(), view)
    strided = np.arange(60.0).reshape(6, 10)[:, ::2]
    np.testing.assert_array_equal(loop.shared_tensor(strided).numpy(), strided)
    empty = np.zeros((0, 3))
    assert loop.shared_tensor(empty).shape == (0, 3)


def _runner_kind(est, X, y, monkeypatch):
    seen = []
    real = loop.make_runner

    def spy(*args):
        runner = real(*args)
        xla = getattr(runner, "xla", False) and type(runner) is loop.EpochRunner
        seen.append(type(runner).__name__ + ("[xla]" if xla else ""))
        return runner

    monkeypatch.setattr("tfmlp._stochastic.make_runner", spy)
    with pytest.warns(Warning):
        est.fit(X, y)
    return seen[0]


def test_runner_choice(monkeypatch):
    rng = np.random.RandomState(0)
    small = rng.rand(100, 4)
    y = rng.randint(0, 2, 100)
    kw = dict(hidden_layer_sizes=(3,), max_iter=1)
    assert _runner_kind(MLPClassifier(**kw), small, y, monkeypatch) == "EpochRunner"
    forced = MLPClassifier(jit_compile=True, **kw)  # XLA reads X in place
    assert _runner_kind(forced, small, y, monkeypatch) == "EpochRunner[xla]"
    monkeypatch.setattr(loop, "RESIDENT_MAX_BYTES", 0)
    assert _runner_kind(forced, small, y, monkeypatch) == "EpochRunner[xla]"
    # not readable in place (Fortran order): copied up to RESIDENT_MAX_BYTES,
    # chunks beyond
    fortran = np.asfortranarray(small)
    monkeypatch.setattr(loop, "RESIDENT_MAX_BYTES", 100 * 4 * 8 - 1)
    assert _runner_kind(forced, fortran, y, monkeypatch) == "ChunkRunner"
    monkeypatch.setattr(loop, "RESIDENT_MAX_BYTES", 100 * 4 * 8)
    assert _runner_kind(forced, fortran, y, monkeypatch) == "EpochRunner[xla]"
    import scipy.sparse as sp

    sparse = sp.csr_matrix(small)  # narrow rows: trained through dense chunks
    assert _runner_kind(MLPClassifier(**kw), sparse, y, monkeypatch) == "ChunkRunner"
    emptier = sp.csr_matrix(small * (rng.rand(*small.shape) < 0.3))
    monkeypatch.setattr(loop, "DENSE_MIN_DENSITY", 0.5)  # too empty: sparse
    assert _runner_kind(MLPClassifier(**kw), emptier, y, monkeypatch) == "EpochRunner"
    monkeypatch.setattr(loop, "DENSE_MIN_DENSITY", 0.01)
    monkeypatch.setattr(loop, "DENSE_BATCH_MAX_BYTES", 100 * 4 * 8 - 1)  # too wide
    assert _runner_kind(MLPClassifier(**kw), sparse, y, monkeypatch) == "EpochRunner"
    monkeypatch.setattr(loop, "DENSE_BATCH_MAX_BYTES", 4 * 2**20)
    monkeypatch.setattr(loop, "CHUNK_MIN_BYTES", 100 * 4 * 8)
    reg = MLPRegressor(jit_compile=False, **kw)
    assert _runner_kind(reg, small, rng.rand(100), monkeypatch) == "ChunkRunner"


def test_chunks_cover_every_row_once(monkeypatch):
    """Chunk k holds rows order[k*R:(k+1)*R], the last one zero-padded."""
    monkeypatch.setattr(loop, "CHUNK_BYTES", 2 * 8 * 3 * 8)  # two batches of 8
    monkeypatch.setattr(loop, "CHUNK_MIN_BATCHES", 1)
    rng = np.random.RandomState(1)
    X = rng.rand(37, 3)
    y = rng.rand(37, 2)
    est = MLPRegressor(hidden_layer_sizes=(2,), batch_size=8, max_iter=1)
    with pytest.warns(Warning):
        est.fit(X, y)
    runner = loop.ChunkRunner(est, est._network(), X, y, None, False)
    assert runner.chunk_rows == 16
    order = rng.permutation(37)
    rows = []
    for k in range(3):
        m, x, yy, sw = runner._chunk(order, k)
        x, yy, sw = x.numpy(), yy.numpy(), sw.numpy()
        np.testing.assert_array_equal(x[:m], X[order[16 * k : 16 * k + m]])
        np.testing.assert_array_equal(yy[:m], y[order[16 * k : 16 * k + m]])
        assert (sw[:m] == 1).all() and (sw[m:] == 0).all() and (x[m:] == 0).all()
        rows.append(m)
    assert rows == [16, 16, 5]
    tf.debugging.assert_equal(runner.ones, tf.ones([16], tf.float64))


MEMMAP_SCRIPT = r"""
import sys, warnings
import numpy as np
warnings.simplefilter("ignore")
from tfmlp import MLPClassifier

def anon_mb():
    for line in open("/proc/self/status"):
        if line.startswith("RssAnon"):
            return int(line.split()[1]) / 1024

X = np.load(sys.argv[1], mmap_mode="r")
y = (np.asarray(X[:, 0]) > 0.5).astype(int)
MLPClassifier(hidden_layer_sizes=(4,), max_iter=1).fit(X[:1000], y[:1000])
for jit in (False, None):  # graph-mode chunks; the default, XLA chunks
    before = anon_mb()
    est = MLPClassifier(hidden_layer_sizes=(16,), max_iter=2, jit_compile=jit,
                        random_state=0).fit(X, y)
    print(anon_mb() - before, est.score(X[:5000], y[:5000]))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.slow
def test_memory_mapped_input_is_not_loaded_into_memory(tmp_path):
    """np.load(..., mmap_mode="r") trains chunk by chunk: anonymous memory grows
    by far less than the 200 MB file (a copy of X would be 200 MB)."""
    path = tmp_path / "X.npy"
    rng = np.random.RandomState(0)
    X = np.lib.format.open_memmap(path, "w+", np.float32, (500_000, 100))
    for start in range(0, 500_000, 100_000):
        X[start : start + 100_000] = rng.rand(100_000, 100)
    X.flush()
    del X
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.run(
        [sys.executable, "-c", MEMMAP_SCRIPT, str(path)],
        capture_output=True, text=True, env=env, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    values = list(map(float, proc.stdout.split()[-4:]))
    # graph mode measured ~18 MB; XLA ~90-100 MB (its two chunk buffers and
    # compilation); a copy of X alone would be 200 MB
    for (growth, score), bound in zip((values[:2], values[2:]), (100, 160)):
        assert growth < bound, f"anonymous memory grew by {growth:.0f} MB"
        assert score > 0.9


def test_memory_mapped_arrays_go_to_chunks(tmp_path, monkeypatch):
    """Under XLA a memory-mapped array (or a view of one) is read chunk by
    chunk, never copied whole, also when compute_dtype must convert it;
    read-only arrays in memory are copied once."""
    rng = np.random.RandomState(0)
    X, y = rng.rand(100, 4), rng.randint(0, 2, 100)
    np.save(tmp_path / "X.npy", X)
    mapped = np.load(tmp_path / "X.npy", mmap_mode="r")
    assert loop.memory_mapped(mapped) and loop.memory_mapped(np.asarray(mapped)[10:])
    assert not loop.memory_mapped(X)
    frozen = X.copy()
    frozen.flags.writeable = False
    kw = dict(hidden_layer_sizes=(3,), max_iter=1, jit_compile=True)
    kind = _runner_kind(MLPClassifier(**kw), mapped, y, monkeypatch)
    assert kind == "ChunkRunner"
    f32 = MLPClassifier(compute_dtype="float32", **kw)
    assert _runner_kind(f32, mapped, y, monkeypatch) == "ChunkRunner"
    assert _runner_kind(MLPClassifier(**kw), frozen, y, monkeypatch) == (
        "EpochRunner[xla]"
    )


def _misaligned(X):
    """A C-contiguous, writeable copy of X whose data is not 64-byte aligned."""
    raw = np.empty(X.size + 16, X.dtype)
    start = next(i for i in range(1, 16) if raw[i:].ctypes.data % 64)
    out = raw[start : start + X.size].reshape(X.shape)
    out[...] = X
    assert out.ctypes.data % 64 and out.flags.c_contiguous
    return out


def test_xla_epochs_read_the_array_in_place():
    X = _misaligned(np.random.RandomState(0).rand(50, 3))
    view = loop._xla_view(X)
    first = tf.function(lambda x: x[0, 0] * 1.0, jit_compile=True)
    X[0, 0] = 7.0  # no copy was made: XLA sees the change
    assert float(first(view)) == 7.0


def test_misaligned_input_trains_as_an_aligned_copy(monkeypatch):
    rng = np.random.RandomState(2)
    X, y = rng.rand(300, 5), rng.randint(0, 3, 300)
    runners = []
    real = loop.make_runner
    monkeypatch.setattr(
        "tfmlp._stochastic.make_runner",
        lambda *a: runners.append(real(*a)) or runners[-1],
    )
    kw = dict(hidden_layer_sizes=(6,), max_iter=3, batch_size=32, random_state=0)
    fits = []
    for data in (_misaligned(X), np.ascontiguousarray(X)):
        with pytest.warns(Warning):
            fits.append(MLPClassifier(jit_compile=True, **kw).fit(data, y))
    assert all(type(r) is loop.EpochRunner and r.xla for r in runners)
    assert runners[0].y.dtype == tf.uint8  # one-hot targets stay one byte each
    assert fits[0].loss_curve_ == fits[1].loss_curve_
    for a, b in zip(fits[0].coefs_, fits[1].coefs_):
        np.testing.assert_array_equal(a, b)


def test_arrays_xla_cannot_read_in_place_are_copied():
    X = np.random.RandomState(0).rand(20, 3)
    assert loop._xla_view_ok(X, np.float64)
    raw = np.zeros(X.nbytes + 1, np.uint8)[1:]  # elements off their boundary
    odd = raw.view(np.float64).reshape(X.shape)
    odd[...] = X
    assert not odd.flags.aligned and not loop._xla_view_ok(odd, np.float64)
    frozen = X.copy()
    frozen.flags.writeable = False
    assert not loop._xla_view_ok(frozen, np.float64)
    assert not loop._xla_view_ok(np.asfortranarray(X), np.float64)
    assert not loop._xla_view_ok(X, np.float32)


def test_without_in_place_reads_the_xla_epoch_trains_the_same(monkeypatch):
    """With a GPU visible, host arrays are copied once instead of read in
    place (the shuffled order is a new tensor each epoch): same numbers."""
    rng = np.random.RandomState(4)
    X, y = rng.rand(250, 6), rng.randint(0, 3, 250)
    kw = dict(hidden_layer_sizes=(5,), max_iter=4, batch_size=40, random_state=0)
    with pytest.warns(Warning):
        ref = MLPClassifier(jit_compile=True, **kw).fit(X, y)
    monkeypatch.setattr(loop, "cpu_only", lambda: False)
    assert not loop._xla_view_ok(X, np.float64)
    with pytest.warns(Warning):
        other = MLPClassifier(jit_compile=True, **kw).fit(X, y)
    assert other.loss_curve_ == ref.loss_curve_
    for a, b in zip(other.coefs_, ref.coefs_):
        np.testing.assert_array_equal(a, b)


def _sparse_problem(n=230, d=40, seed=0):
    import scipy.sparse as sp

    rng = np.random.RandomState(seed)
    X = rng.rand(n, d) * 2 - 0.5
    X[rng.rand(n, d) < 0.8] = 0.0
    X[5] = 0.0  # an empty row
    y = (X[:, :10].sum(axis=1) > 0.2).astype(int) + (X[:, 10] > 0)
    return sp.csr_matrix(X), y


def _sparse_modes(monkeypatch, est, X, y, **fit_kw):
    """The epoch function's sparse mode used by a fit, and the fitted estimator."""
    modes = []
    real = loop.epochs_function

    def spy(model, solver, nesterov, sparse):
        modes.append(sparse)
        return real(model, solver, nesterov, sparse)

    monkeypatch.setattr(loop, "epochs_function", spy)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(X, y, **fit_kw)
    monkeypatch.setattr(loop, "epochs_function", real)
    return set(modes), est


@pytest.mark.parametrize(
    "params",
    [
        dict(solver="adam", batch_size=32),
        dict(solver="sgd", batch_size=50, momentum=0.8, nesterovs_momentum=True),
        dict(solver="sgd", batch_size=64, learning_rate="adaptive"),
        dict(solver="adam", early_stopping=True, batch_size=40),
    ],
)
def test_sparse_batches_gathered_as_csr_match_scikit_learn(monkeypatch, params):
    """On the CPU, sparse batches too wide for dense chunks are gathered from
    the matrix as given and multiplied as CSR; the fit is scikit-learn's (and
    the reordering path's, used where a GPU is visible)."""
    from test_parity import assert_same_fit, fit_both

    monkeypatch.setattr(loop, "DENSE_BATCH_MAX_BYTES", 0)
    X, y = _sparse_problem()
    params = dict(hidden_layer_sizes=(7, 4), max_iter=6, random_state=3, **params)
    sk, ours = fit_both("MLPClassifier", params, X, y)
    assert_same_fit(sk, ours, X)
    modes, gathered = _sparse_modes(monkeypatch, MLPClassifier(**params), X, y)
    assert modes == {"csr"}
    monkeypatch.setattr(loop, "cpu_only", lambda: False)  # as with a GPU
    modes, reordered = _sparse_modes(monkeypatch, MLPClassifier(**params), X, y)
    assert modes == {True}
    for a, b in zip(gathered.coefs_, reordered.coefs_):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-13)


def test_sparse_regressor_weights_and_partial_fit_match_scikit_learn(monkeypatch):
    from test_parity import assert_same_fit, call_both, make_pair

    monkeypatch.setattr(loop, "DENSE_BATCH_MAX_BYTES", 0)
    X, y = _sparse_problem(seed=1)
    target = np.asarray(X[:, :5].sum(axis=1)).ravel() + 0.1 * y
    sw = np.random.RandomState(2).rand(X.shape[0]) + 0.5
    params = dict(hidden_layer_sizes=(6,), max_iter=5, random_state=0, batch_size=45)
    sk, ours = make_pair("MLPRegressor", **params)
    call_both(sk, ours, "fit", X, target, sample_weight=sw)
    for _ in range(2):
        call_both(sk, ours, "partial_fit", X.tocsc(), target)
    assert_same_fit(sk, ours, X)
    modes, _ = _sparse_modes(monkeypatch, MLPRegressor(**params), X, target)
    assert modes == {"csr"}


def test_sparse_batches_with_a_tape_activation_reorder(monkeypatch):
    """Activations without the hand-written backward pass keep the
    tf.SparseTensor path, and train like the dense input."""
    monkeypatch.setattr(loop, "DENSE_BATCH_MAX_BYTES", 0)
    X, y = _sparse_problem(seed=4)
    params = dict(
        hidden_layer_sizes=(5,), activation="gelu", max_iter=3, random_state=0
    )
    modes, sparse = _sparse_modes(monkeypatch, MLPClassifier(**params), X, y)
    assert modes == {True}
    _, dense = _sparse_modes(monkeypatch, MLPClassifier(**params), X.toarray(), y)
    for a, b in zip(sparse.coefs_, dense.coefs_):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("jit_compile", [None, True, False])
@pytest.mark.parametrize("fmt", ["csr", "csc"])
def test_sparse_rows_through_dense_chunks_match_scikit_learn(
    monkeypatch, jit_compile, fmt
):
    """Narrow sparse input is written out dense chunk by chunk (several chunks
    here, the last one partial) and fits like scikit-learn on the sparse
    matrix, with sample weights and a later partial_fit."""
    from test_parity import assert_same_fit, call_both, make_pair

    monkeypatch.setattr(loop, "CHUNK_BYTES", 1)  # CHUNK_MIN_BATCHES per chunk
    monkeypatch.setattr(loop, "CHUNK_MIN_BATCHES", 2)
    X, y = _sparse_problem(n=257, seed=6)
    X = X.asformat(fmt)
    sw = np.random.RandomState(1).rand(X.shape[0]) + 0.5
    params = dict(hidden_layer_sizes=(8,), max_iter=4, random_state=2, batch_size=30)
    sk, ours = make_pair("MLPClassifier", **params)
    ours.set_params(jit_compile=jit_compile)
    kinds = []
    real = loop.make_runner

    def spy(*args):
        runner = real(*args)
        kinds.append((type(runner).__name__, getattr(runner, "chunk_rows", 0)))
        return runner

    monkeypatch.setattr("tfmlp._stochastic.make_runner", spy)
    call_both(sk, ours, "fit", X, y, sample_weight=sw)
    call_both(sk, ours, "partial_fit", X, y)
    assert_same_fit(sk, ours, X)
    assert kinds and all(k == ("ChunkRunner", 60) for k in kinds), kinds


def test_without_tensorflow_csr_ops_sparse_input_uses_sparse_tensors(monkeypatch):
    """If TensorFlow's private CSR ops cannot be imported, sparse input takes
    the tf.SparseTensor paths (training, lbfgs, prediction) with the same fit."""
    import tfmlp._lbfgs as lbfgs

    monkeypatch.setattr(loop, "DENSE_BATCH_MAX_BYTES", 0)
    X, y = _sparse_problem(seed=7)
    for solver in ("adam", "lbfgs"):
        params = dict(
            hidden_layer_sizes=(5,), max_iter=4, random_state=0, solver=solver
        )
        _, with_csr = _sparse_modes(monkeypatch, MLPClassifier(**params), X, y)
        monkeypatch.setattr(loop, "CSR_AVAILABLE", False)
        monkeypatch.setattr(lbfgs, "CSR_AVAILABLE", False)
        modes, without = _sparse_modes(monkeypatch, MLPClassifier(**params), X, y)
        assert modes == ({True} if solver == "adam" else set())
        assert lbfgs.objective_input(X, _standard_forward("relu"))[1] == "sparse"
        assert loop.sparse_mode(_standard_forward("relu")) is True
        for a, b in zip(with_csr.coefs_, without.coefs_):
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-13)
        np.testing.assert_allclose(
            with_csr.predict_proba(X), without.predict_proba(X), rtol=1e-10
        )
        monkeypatch.setattr(loop, "CSR_AVAILABLE", True)
        monkeypatch.setattr(lbfgs, "CSR_AVAILABLE", True)


def _standard_forward(activation):
    from tfmlp._network import StandardForward
    from tfmlp._params import NetSpec

    return StandardForward(NetSpec.create(3, activation, "softmax"))


def test_check_numerics_trains_in_graph_mode_and_refuses_forced_xla():
    rng = np.random.RandomState(0)
    X = rng.rand(loop.XLA_MIN_VALUES // 20, 20)  # XLA by default
    y = X[:, 0] + X[:, 1]
    kw = dict(hidden_layer_sizes=(4,), max_iter=1, random_state=0)
    reference = MLPRegressor(**kw, jit_compile=False).fit(X, y)
    tf.debugging.enable_check_numerics()
    try:
        assert not loop.use_xla(None, X, False)
        est = MLPRegressor(**kw).fit(X, y)
        with pytest.raises(ValueError, match="jit_compile=True cannot train"):
            MLPRegressor(**kw, jit_compile=True).fit(X, y)
    finally:
        tf.debugging.disable_check_numerics()
    assert loop.use_xla(None, X, False)
    np.testing.assert_array_equal(est.coefs_[0], reference.coefs_[0])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_arrays_are_chunked_from_their_training_size_in_bytes(dtype, monkeypatch):
    """Without XLA, arrays from CHUNK_MIN_BYTES of training data are chunked
    (float32 arrays were sized at 8 bytes a value: chunked at half the size)."""
    rng = np.random.RandomState(0)
    X, y = rng.rand(100, 4).astype(dtype), rng.rand(100)
    size = X.shape[0] * X.shape[1] * np.dtype(dtype).itemsize
    reg = MLPRegressor(hidden_layer_sizes=(3,), max_iter=1, jit_compile=False)
    monkeypatch.setattr(loop, "CHUNK_MIN_BYTES", size + 1)
    assert _runner_kind(reg, X, y, monkeypatch) == "EpochRunner"
    monkeypatch.setattr(loop, "CHUNK_MIN_BYTES", size)
    assert _runner_kind(reg, X, y, monkeypatch) == "ChunkRunner"


def test_a_memory_map_is_chunked_by_its_own_size(tmp_path, monkeypatch):
    """A float64 file trained in float32 (``compute_dtype``) is chunked from
    its own size: the training tensor's (half) kept it whole in memory."""
    rng = np.random.RandomState(0)
    path = tmp_path / "X.npy"
    np.save(path, rng.rand(100, 4))
    X = np.load(path, mmap_mode="r")
    reg = MLPRegressor(
        hidden_layer_sizes=(3,), max_iter=1, jit_compile=False, compute_dtype="float32"
    )
    monkeypatch.setattr(loop, "CHUNK_MIN_BYTES", 100 * 4 * 8)
    assert _runner_kind(reg, X, rng.rand(100), monkeypatch) == "ChunkRunner"
