"""Keras callbacks attached to the estimator's training loop.

The loop calls ``on_train_begin``, ``on_epoch_begin``, ``on_epoch_end`` (with
``logs={"loss": ..., "val_score": ...}``) and ``on_train_end`` on standard
``keras.callbacks.Callback`` objects, whose ``model`` is the estimator's
``model_``. A callback that sets ``model.stop_training = True`` ends the fit
after the current epoch.
"""

from __future__ import annotations


def check_callbacks(callbacks) -> list:
    """Validate the ``callbacks`` parameter; return a list (maybe empty)."""
    if callbacks is None:
        return []
    import keras

    if isinstance(callbacks, keras.callbacks.Callback):
        callbacks = [callbacks]
    if not isinstance(callbacks, (list, tuple)):
        raise TypeError(
            "The 'callbacks' parameter must be None or a list of "
            f"keras.callbacks.Callback instances. Got {callbacks!r} instead."
        )
    for cb in callbacks:
        if not isinstance(cb, keras.callbacks.Callback):
            raise TypeError(
                "Every element of 'callbacks' must be a keras.callbacks.Callback "
                f"instance. Got {cb!r} of type {type(cb).__name__} instead."
            )
    return list(callbacks)


class CallbackRunner:
    """Drive a list of Keras callbacks from the estimator's epoch loop."""

    def __init__(
        self, callbacks: list, model_getter, *, epochs: int, steps, estimator=None
    ):
        self.active = bool(callbacks)
        self.model = None
        if not self.active:
            return
        import keras

        for cb in callbacks:  # e.g. tfmlp.callbacks.EstimatorCheckpoint
            if hasattr(cb, "set_estimator"):
                cb.set_estimator(estimator)

        self.model = model_getter()
        self.model.stop_training = False
        self._list = keras.callbacks.CallbackList(
            callbacks,
            add_history=False,
            add_progbar=False,
            model=self.model,
            epochs=epochs,
            steps=steps,
            verbose=0,
        )

    def train_begin(self) -> None:
        if self.active:
            self._list.on_train_begin({})

    def epoch_begin(self, epoch: int) -> None:
        if self.active:
            self._list.on_epoch_begin(epoch, {})

    def epoch_end(self, epoch: int, logs: dict) -> bool:
        """Notify; True when a callback asked training to stop."""
        if not self.active:
            return False
        self._list.on_epoch_end(epoch, dict(logs))
        return bool(getattr(self.model, "stop_training", False))

    def train_end(self, logs: dict) -> None:
        if self.active:
            self._list.on_train_end(dict(logs))
