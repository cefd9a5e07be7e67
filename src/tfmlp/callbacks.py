"""Callbacks that work on the estimator (not only on its Keras model)."""

from __future__ import annotations

import numbers
import os

import keras
import numpy as np

__all__ = ["EstimatorCheckpoint"]


class EstimatorCheckpoint(keras.callbacks.Callback):
    """Save the whole estimator every ``every`` epochs with :func:`tfmlp.save`.

    The write is atomic (temporary file, then rename), so a crash mid-save
    never destroys the previous checkpoint. A crashed run resumes with
    ``est = tfmlp.load(path); est.set_params(warm_start=True).fit(X, y)``:
    weights, ``loss_curve_``, ``t_`` and the early-stopping state continue
    from the checkpoint (a warm-start fit starts a new optimizer, as in
    scikit-learn); ``partial_fit`` also continues the optimizer's state
    (velocities, Adam's moments, the current learning rate). A checkpoint
    taken at an epoch's end holds the state after that epoch's stopping
    check (an adaptive learning rate already divided).

    Parameters
    ----------
    path : str or path-like
        File to (over)write.
    every : int, default=1
        Save after every ``every``-th epoch of a ``fit`` / ``partial_fit`` call
        (and always at the end of training).
    """

    def __init__(self, path: str | os.PathLike, every: int = 1) -> None:
        super().__init__()
        if isinstance(every, bool) or not isinstance(every, numbers.Integral):
            raise TypeError(f"'every' must be an int >= 1. Got {every!r} instead.")
        if every < 1:
            raise ValueError(f"'every' must be an int >= 1. Got {every!r} instead.")
        try:
            name = os.fspath(path)
        except TypeError:
            raise TypeError(
                f"'path' must be a file path (str or os.PathLike). Got {path!r}."
            ) from None
        if not isinstance(name, str) or not name:
            raise ValueError(f"'path' must be a non-empty file path. Got {path!r}.")
        self.path = path
        self.every = int(every)
        self._estimator = None
        self._skipped = False  # a non-finite state was not saved (warned)

    def set_estimator(self, estimator) -> None:
        """Called by tfmlp before training starts."""
        self._estimator = estimator
        self._skipped = False

    def _save(self) -> None:
        import warnings

        from tfmlp._persist import save
        from tfmlp._warn import warn

        if self._estimator is None:
            return
        est = self._estimator
        loss = getattr(est, "loss_", None)
        weights = est.coefs_ + est.intercepts_  # synchronised with training
        # early stopping ends a diverged run with its best (finite) weights
        # and a non-finite loss_, as scikit-learn does: that state is saved
        loss_ok = loss is None or np.isfinite(loss) or est.early_stopping
        if not (loss_ok and all(np.isfinite(w).all() for w in weights)):
            # a diverged run: the last finite checkpoint stays
            if not self._skipped:
                warn(
                    f"EstimatorCheckpoint: training diverged (non-finite loss or "
                    f"weights); {self.path!r} keeps the last finite state."
                )
            self._skipped = True
            return
        with warnings.catch_warnings():  # the callbacks themselves are not saved
            warnings.filterwarnings(
                "ignore", message="tfmlp.save does not store callbacks"
            )
            save(self._estimator, self.path)

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every == 0:
            self._save()

    def on_train_end(self, logs=None):
        self._save()
        self._estimator = None  # no reference kept between fits (clone, pickle)
