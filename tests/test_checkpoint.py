"""EstimatorCheckpoint: periodic atomic saves, and resuming a crashed run."""

import warnings

import keras
import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning

import tfmlp
from tfmlp import MLPClassifier
from tfmlp.callbacks import EstimatorCheckpoint

X, Y = load_digits(return_X_y=True)
X = X / 16.0


class Crash(keras.callbacks.Callback):
    def __init__(self, at):
        super().__init__()
        self.at = at

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 == self.at:
            raise RuntimeError("simulated crash")


def test_crashed_run_resumes_from_checkpoint(tmp_path):
    path = tmp_path / "run.tfmlp"
    kw = dict(hidden_layer_sizes=(16,), random_state=0)
    crashing = MLPClassifier(
        max_iter=10, callbacks=[EstimatorCheckpoint(path, every=2), Crash(5)], **kw
    )
    with pytest.raises(RuntimeError, match="simulated crash"):
        crashing.fit(X, Y)
    assert not hasattr(crashing, "coefs_")  # the failed fit left nothing behind
    resumed = tfmlp.load(path)
    assert resumed.n_iter_ == 4 and len(resumed.loss_curve_) == 4
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        reference = MLPClassifier(max_iter=4, **kw).fit(X, Y)
    for a, b in zip(reference.coefs_, resumed.coefs_):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(reference.loss_curve_, resumed.loss_curve_)
    resumed.set_params(warm_start=True, max_iter=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        resumed.fit(X, Y)
    assert len(resumed.loss_curve_) == 7 and resumed.t_ == 7 * len(X)


def test_checkpoint_every_and_final_save(tmp_path):
    path = tmp_path / "ck.tfmlp"
    clf = MLPClassifier(
        hidden_layer_sizes=(8,), max_iter=3, callbacks=[EstimatorCheckpoint(path, 5)]
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X, Y)
    loaded = tfmlp.load(path)  # written at the end of training
    np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))
    with pytest.raises(ValueError, match="every"):
        EstimatorCheckpoint(path, every=0)
    for bad in (2.5, True, "3"):  # not silently truncated or converted
        with pytest.raises(TypeError, match="every"):
            EstimatorCheckpoint(path, every=bad)
    assert EstimatorCheckpoint(path, every=np.int64(3)).every == 3


def test_checkpoints_of_a_pipeline_step(tmp_path):
    # a Pipeline attaches scikit-learn's callback context to its last step
    # during the fit; the checkpoint leaves it out
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    path = tmp_path / "step.tfmlp"
    est = MLPClassifier(
        hidden_layer_sizes=(8,),
        max_iter=3,
        random_state=0,
        callbacks=[EstimatorCheckpoint(path, every=1)],
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        pipe = make_pipeline(StandardScaler(), est).fit(X, Y)
    saved = tfmlp.load(path)
    assert saved.n_iter_ == 3
    Xs = pipe[0].transform(X)
    np.testing.assert_array_equal(saved.predict_proba(Xs), est.predict_proba(Xs))


def _diverging(check, max_iter):
    """Momentum SGD on unscaled data (finite for a few epochs) checkpointed by
    ``check``, and its data."""
    from sklearn.datasets import make_regression

    from tfmlp import MLPRegressor

    Xr, yr = make_regression(n_samples=200, n_features=10, random_state=0)
    est = MLPRegressor(
        solver="sgd",
        learning_rate_init=1e-4,
        momentum=0.9,
        max_iter=max_iter,
        random_state=0,
        callbacks=[check],
    )
    return est, Xr * 1e3, yr


def test_a_diverging_fit_keeps_the_last_finite_checkpoint(tmp_path):
    path = tmp_path / "ck.tfmlp"
    est, Xr, yr = _diverging(EstimatorCheckpoint(path, every=1), 60)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(ValueError, match="non-finite"):
            est.fit(Xr, yr)
    # once per fit, though every later epoch of the run is non-finite too
    diverged = [w for w in caught if "keeps the last finite state" in str(w.message)]
    assert len(diverged) == 1
    assert diverged[0].filename == __file__  # the line that called fit
    saved = tfmlp.load(path)
    assert np.isfinite(saved.loss_)
    assert all(np.isfinite(w).all() for w in saved.coefs_ + saved.intercepts_)


def test_a_reused_checkpoint_warns_again_and_forgets_its_estimator(tmp_path):
    path = tmp_path / "ck.tfmlp"
    check = EstimatorCheckpoint(path, every=1)
    est, Xr, yr = _diverging(check, 20)
    for _ in range(2):  # each diverging fit warns once
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with pytest.raises(ValueError, match="non-finite"):
                est.fit(Xr, yr)
        assert sum("keeps the last finite state" in str(w.message) for w in caught) == 1
    # after training the callback holds no estimator: used elsewhere (a
    # plain Keras fit), it does not write the old estimator over the file
    path.unlink()
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(loss="mse")
    model.fit(np.zeros((4, 2)), np.zeros(4), epochs=1, verbose=0, callbacks=[check])
    assert not path.exists()


def test_an_early_stopping_fit_that_diverged_saves_its_restored_state(tmp_path):
    from sklearn.datasets import make_regression

    from tfmlp import MLPRegressor

    path = tmp_path / "es.tfmlp"
    Xr, yr = make_regression(n_samples=200, n_features=10, random_state=0)
    est = MLPRegressor(
        solver="sgd",
        learning_rate_init=1e-4,
        momentum=0.9,
        max_iter=60,
        early_stopping=True,
        random_state=0,
        callbacks=[EstimatorCheckpoint(path, every=1)],
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(Xr * 1e3, yr)  # diverges; the best weights are restored
    saved = tfmlp.load(path)
    assert saved.n_iter_ == est.n_iter_
    for a, b in zip(saved.coefs_, est.coefs_):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("path", [None, 123, ""])
def test_checkpoint_path_is_checked_when_made(path):
    with pytest.raises((TypeError, ValueError), match="'path' must be"):
        EstimatorCheckpoint(path)
