"""Several epochs per compiled call (``EpochRunner.run_epochs``) must leave
exactly the estimator that epoch-by-epoch training leaves: weights, loss
curve, counters, optimizer state, random state and warnings."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.datasets import load_diabetes, load_digits

import tfmlp._loop as loop
import tfmlp._stochastic as stochastic
from tfmlp import MLPClassifier, MLPRegressor

CONFIGS = [
    ("clf", dict(max_iter=30)),  # stops at max_iter (ConvergenceWarning)
    ("clf", dict(max_iter=200, tol=1e-2)),  # stops on tol/n_iter_no_change
    ("clf", dict(max_iter=25, n_iter_no_change=3, tol=1e-1)),
    ("clf", dict(max_iter=20, shuffle=False, batch_size=64)),
    ("clf", dict(max_iter=20, solver="sgd", momentum=0.9)),
    (
        "clf",
        dict(
            max_iter=40,
            solver="sgd",
            learning_rate="adaptive",
            n_iter_no_change=2,
            tol=1e-1,
        ),
    ),  # the adaptive rate changes between fused calls
    ("clf", dict(max_iter=15, solver="sgd", learning_rate="invscaling")),
    ("clf", dict(max_iter=15, dtype=np.float32)),
    ("clf", dict(max_iter=15, sparse=True)),
    ("clf", dict(max_iter=12, weights=True)),
    ("reg", dict(max_iter=30, layers=(20, 10), activation="tanh")),
]


def _data(kind, options, monkeypatch):
    if kind == "clf":
        X, y = load_digits(return_X_y=True)
        X, y = X[:600] / 16.0, y[:600]
    else:
        X, y = load_diabetes(return_X_y=True)
        y = y / 100.0
    X = X.astype(options.pop("dtype", np.float64))
    if options.pop("sparse", False):  # batches gathered as CSR in the graph
        monkeypatch.setattr(loop, "DENSE_BATCH_MAX_BYTES", 0)
        X = sp.csr_matrix(np.where(X > 0.5, X, 0.0))
    sw = np.linspace(0.5, 2.0, X.shape[0]) if options.pop("weights", False) else None
    return X, y, sw


def _count_epochs_per_call(monkeypatch) -> list:
    """The number of epochs of each ``EpochRunner.run_epochs`` call."""
    calls = []
    real = loop.EpochRunner.run_epochs

    def spy(self, random_state, k):
        calls.append(k)
        return real(self, random_state, k)

    monkeypatch.setattr(loop.EpochRunner, "run_epochs", spy)
    return calls


def _fit(kind, options, monkeypatch, fused: bool):
    options = dict(options)
    X, y, sw = _data(kind, options, monkeypatch)
    kw = dict(hidden_layer_sizes=options.pop("layers", (15,)), random_state=3)
    kw.update(options)
    est = (MLPClassifier if kind == "clf" else MLPRegressor)(**kw)
    calls = _count_epochs_per_call(monkeypatch)
    if not fused:  # one epoch per call
        monkeypatch.setattr(stochastic, "MAX_FUSED_ROWS", 0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        est.fit(X, y, sample_weight=sw)
    monkeypatch.undo()
    return est, calls, [(w.category, str(w.message)) for w in caught]


def _state(est):
    opt = est._optimizer
    return {
        "coefs": est.coefs_,
        "intercepts": est.intercepts_,
        "loss_curve": est.loss_curve_,
        "n_iter": est.n_iter_,
        "t": est.t_,
        "loss": est.loss_,
        "best_loss": est.best_loss_,
        "count": est._no_improvement_count,
        "slots": [v.numpy() for v in opt.slots()],
        "lr": opt.learning_rate,
        "adam_t": getattr(opt, "t", None),
        "rng": est._random_state.get_state()[1],
    }


@pytest.mark.parametrize("kind, options", CONFIGS)
def test_fused_epochs_equal_one_epoch_per_call(kind, options, monkeypatch):
    fused, fused_calls, fused_warnings = _fit(kind, options, monkeypatch, True)
    single, single_calls, single_warnings = _fit(kind, options, monkeypatch, False)
    assert set(single_calls) <= {1}
    invscaling = options.get("learning_rate") == "invscaling"
    if invscaling:  # the rate changes every epoch: never fused
        assert set(fused_calls) <= {1}
    else:
        assert max(fused_calls) > 1
    a, b = _state(fused), _state(single)
    # TensorFlow's CSR product is not bit-reproducible from run to run
    # (two one-epoch-per-call fits differ by ~1e-16 too): rounding only
    same = np.testing.assert_array_equal
    if options.get("sparse"):

        def same(x, y, err_msg):
            np.testing.assert_allclose(x, y, rtol=1e-9, atol=1e-12, err_msg=err_msg)

    for key in a:
        if key in ("coefs", "intercepts", "slots"):
            for x, y in zip(a[key], b[key]):
                same(x, y, err_msg=key)
        elif key in ("n_iter", "t", "count", "rng", "adam_t"):
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)
        else:
            same(a[key], b[key], err_msg=key)
    assert fused_warnings == single_warnings
    X = _data(kind, dict(options), monkeypatch)[0]
    same(fused.predict(X), single.predict(X), err_msg="predict")


def test_a_fused_call_never_passes_a_stopping_check(monkeypatch):
    """Each call trains at most n_iter_no_change + 1 - count epochs, so the
    check that stops training can only fire after a call's last epoch."""
    X, y = load_digits(return_X_y=True)
    counts = []
    real = stochastic.StochasticMixin._train_epochs

    def spy(self, runner, fusable, epoch):
        before = self._no_improvement_count
        out = real(self, runner, fusable, epoch)
        counts.append((before, len(out)))
        return out

    monkeypatch.setattr(stochastic.StochasticMixin, "_train_epochs", spy)
    est = MLPClassifier(
        hidden_layer_sizes=(10,), max_iter=300, n_iter_no_change=4, tol=1e-3
    )
    est.set_params(random_state=0).fit(X / 16.0, y)
    assert est.n_iter_ < 300  # stopped by the tolerance
    assert sum(k for _, k in counts) == est.n_iter_
    assert all(k <= 4 + 1 - before for before, k in counts)


@pytest.mark.parametrize(
    "options",
    [
        dict(early_stopping=True),
        dict(verbose=False, callbacks="spy"),
        dict(warm_start=False, partial=True),
    ],
)
def test_epochs_that_something_watches_run_one_per_call(options, monkeypatch):
    import keras

    X, y = load_digits(return_X_y=True)
    X = X[:400] / 16.0
    y = y[:400]
    ks = _count_epochs_per_call(monkeypatch)
    options = dict(options)
    partial = options.pop("partial", False)
    if options.get("callbacks") == "spy":
        options["callbacks"] = [keras.callbacks.Callback()]
    est = MLPClassifier(hidden_layer_sizes=(8,), max_iter=6, random_state=0, **options)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if partial:
            for _ in range(3):
                est.partial_fit(X, y, classes=np.arange(10))
        else:
            est.fit(X, y)
    assert ks and set(ks) == {1}


def test_calls_are_bounded_in_epochs_and_rows(monkeypatch):
    """With stopping checks far apart, a call trains at most
    MAX_FUSED_EPOCHS epochs and MAX_FUSED_ROWS rows (the first call one,
    to time it; the time bound is lifted here)."""
    X, y = load_digits(return_X_y=True)
    X, y = X[:300] / 16.0, y[:300]
    calls = _count_epochs_per_call(monkeypatch)
    monkeypatch.setattr(stochastic, "MAX_FUSED_SECONDS", float("inf"))
    kw = dict(hidden_layer_sizes=(5,), max_iter=150, tol=0.0, n_iter_no_change=10**6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        MLPClassifier(random_state=0, **kw).fit(X, y)
        assert calls == [1, 64, 64, 21]
        calls.clear()
        monkeypatch.setattr(stochastic, "MAX_FUSED_ROWS", 300 * 40)
        MLPClassifier(random_state=0, **kw).fit(X, y)
        assert calls == [1, 40, 40, 40, 29]


def test_fused_calls_are_bounded_by_time(monkeypatch):
    """The first call trains one epoch; later calls as many as took at most
    MAX_FUSED_SECONDS in the call before, so Ctrl-C (which waits for the
    call) is seen within about that time, whatever the network's size."""
    X, y = load_digits(return_X_y=True)
    X, y = X[:600] / 16.0, y[:600]
    calls = _count_epochs_per_call(monkeypatch)
    seen = []
    real = stochastic.StochasticMixin._train_epochs

    def spy(self, runner, fusable, epoch):
        seconds = getattr(runner, "epoch_seconds", None)
        out = real(self, runner, fusable, epoch)
        seen.append((seconds, len(out)))
        return out

    monkeypatch.setattr(stochastic.StochasticMixin, "_train_epochs", spy)
    monkeypatch.setattr(stochastic, "MAX_FUSED_SECONDS", 0.02)
    est = MLPClassifier(hidden_layer_sizes=(15,), max_iter=150, tol=0.0, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(X, y)
    assert seen[0] == (None, 1)
    assert max(calls) > 1  # fused, ...
    for seconds, k in seen[1:]:  # ... within the time the last call measured
        assert k == 1 or k <= 0.02 / seconds
    monkeypatch.setattr(stochastic, "MAX_FUSED_SECONDS", 0.0)
    calls.clear()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        slow = MLPClassifier(**est.get_params()).fit(X, y)
    assert set(calls) == {1}  # never fused: the same numbers
    for a, b in zip(est.coefs_, slow.coefs_):
        np.testing.assert_array_equal(a, b)


def test_under_an_applications_own_sigint_handler_epochs_are_not_fused(monkeypatch):
    """A KeyboardInterrupt from the application's handler surfaces right
    after a compiled call, before its epochs are recorded: with one epoch
    per call the weights can be at most that epoch ahead of ``n_iter_`` (64
    fused epochs were lost)."""
    import signal

    X, y = load_digits(return_X_y=True)
    kw = dict(hidden_layer_sizes=(20,), max_iter=30, tol=0, random_state=0)
    calls = _count_epochs_per_call(monkeypatch)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        MLPClassifier(**kw).fit(X / 16.0, y)
        assert max(calls) > 1  # Python's own handler: fused
        calls.clear()

        def handler(signum, frame):
            raise KeyboardInterrupt

        previous = signal.signal(signal.SIGINT, handler)
        try:
            est = MLPClassifier(**kw).fit(X / 16.0, y)
        finally:
            signal.signal(signal.SIGINT, previous)
    assert calls == [1] * 30 and est.n_iter_ == 30


@pytest.mark.parametrize("handler", ["SIG_IGN", "SIG_DFL"])
def test_ignored_or_default_sigint_keeps_epochs_fused(handler, monkeypatch):
    """No KeyboardInterrupt reaches Python (a background job's SIG_IGN)."""
    import signal

    X, y = load_digits(return_X_y=True)
    calls = _count_epochs_per_call(monkeypatch)
    previous = signal.signal(signal.SIGINT, getattr(signal, handler))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            MLPClassifier(hidden_layer_sizes=(20,), max_iter=30, tol=0).fit(X / 16, y)
    finally:
        signal.signal(signal.SIGINT, previous)
    assert max(calls) > 1
