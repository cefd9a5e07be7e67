"""Ctrl-C (SIGINT) during training: the fit ends between epochs with every
trained epoch recorded; a second Ctrl-C abandons the call."""

import signal
import warnings

import keras
import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning

from tfmlp import MLPClassifier, MLPRegressor, _lbfgs, _loop

X, Y = load_digits(return_X_y=True)
X = X / 16.0
KW = dict(hidden_layer_sizes=(20,), random_state=0, tol=0, n_iter_no_change=10**6)


def _quiet_fit(est, *args):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(*args)


def _weights(est):
    return est.coefs_ + est.intercepts_


def _ctrl_c_after(monkeypatch, cls, name, calls, presses=1):
    """Send SIGINT to this process when ``cls.name`` returns for the
    ``calls``-th time (as if Ctrl-C arrived during that compiled call)."""
    original = getattr(cls, name)
    seen = []

    def wrapped(*args, **kwargs):
        out = original(*args, **kwargs)
        seen.append(1)
        if len(seen) == calls:
            for _ in range(presses):
                signal.raise_signal(signal.SIGINT)
        return out

    monkeypatch.setattr(cls, name, wrapped)


@pytest.mark.parametrize("method", ["run_epochs", "run_epoch"])
def test_ctrl_c_stops_after_the_epochs_the_call_trained(monkeypatch, method):
    # fused (several epochs per call: no callbacks) or one epoch per call
    kw = dict(
        KW, callbacks=None if method == "run_epochs" else [keras.callbacks.History()]
    )
    _ctrl_c_after(monkeypatch, _loop.EpochRunner, method, calls=2)
    with pytest.warns(UserWarning, match="Training interrupted by user"):
        est = _quiet_fit(MLPClassifier(max_iter=300, **kw), X, Y)
    assert 2 <= est.n_iter_ < 300
    assert len(est.loss_curve_) == est.n_iter_ and est.t_ == est.n_iter_ * len(Y)
    monkeypatch.undo()
    ref = _quiet_fit(MLPClassifier(max_iter=est.n_iter_, **kw), X, Y)
    for a, b in zip(_weights(est), _weights(ref)):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(est.loss_curve_, ref.loss_curve_)
    assert est._optimizer.t == ref._optimizer.t
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_second_ctrl_c_abandons_the_call(monkeypatch):
    est = _quiet_fit(MLPClassifier(max_iter=3, **KW), X, Y)
    before = [w.copy() for w in _weights(est)]
    curve = list(est.loss_curve_)
    _ctrl_c_after(monkeypatch, _loop.EpochRunner, "run_epochs", calls=1, presses=2)
    with pytest.raises(KeyboardInterrupt):
        est.set_params(warm_start=True, max_iter=200).fit(X, Y)
    for a, b in zip(_weights(est), before):
        np.testing.assert_array_equal(a, b)
    assert est.loss_curve_ == curve and est.n_iter_ == 3
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_ctrl_c_during_lbfgs_keeps_the_iterate_reached(monkeypatch):
    original = _lbfgs.loss_grad_function
    calls = []

    def counting(*args, **kwargs):
        fn = original(*args, **kwargs)

        def evaluate(*a):
            calls.append(1)
            if len(calls) == 12:
                signal.raise_signal(signal.SIGINT)
            return fn(*a)

        return evaluate

    monkeypatch.setattr(_lbfgs, "loss_grad_function", counting)
    kw = dict(hidden_layer_sizes=(10,), solver="lbfgs", random_state=0)
    with pytest.warns(UserWarning, match="Training interrupted by user"):
        est = MLPRegressor(max_iter=500, **kw).fit(X, Y.astype(float))
    assert 1 <= est.n_iter_ < 20
    monkeypatch.undo()
    ref = _quiet_fit(MLPRegressor(max_iter=est.n_iter_, **kw), X, Y.astype(float))
    for a, b in zip(_weights(est), _weights(ref)):
        np.testing.assert_array_equal(a, b)
    assert est.loss_ == ref.loss_


@pytest.mark.parametrize("hook", ["on_train_begin", "on_train_end"])
def test_an_interrupt_from_train_begin_or_end_keeps_the_model(hook):
    class Stop(keras.callbacks.Callback):
        pass

    def interrupt(self, logs=None):
        raise KeyboardInterrupt

    setattr(Stop, hook, interrupt)
    with pytest.warns(UserWarning, match="Training interrupted by user"):
        est = _quiet_fit(MLPClassifier(max_iter=4, callbacks=[Stop()], **KW), X, Y)
    assert est.n_iter_ == (0 if hook == "on_train_begin" else 4)
    assert est.predict(X[:3]).shape == (3,)


def test_a_failed_call_leaves_a_random_state_generator_as_it_was():
    rng = np.random.RandomState(5)
    reg = MLPRegressor(solver="sgd", hidden_layer_sizes=(5,), random_state=rng)
    _quiet_fit(reg, X, Y.astype(float))
    state = rng.get_state()[1].copy()
    with pytest.raises(ValueError):
        reg.partial_fit(X * 1e150, Y * 1e150)  # diverges
    np.testing.assert_array_equal(rng.get_state()[1], state)
