"""Keras callbacks attached to the estimator's training loop.

The loop calls ``on_train_begin``, ``on_epoch_begin``, ``on_epoch_end`` (with
``logs={"loss": ..., "val_score": ..., "val_loss": ...}``, the last two with
a validation set) and ``on_train_end`` on standard
``keras.callbacks.Callback`` objects, whose ``model`` is the estimator's
``model_``. A callback that sets ``model.stop_training = True`` ends the fit
after the current epoch.

While a callback runs, ``model.optimizer`` is a stand-in Keras optimizer
whose ``learning_rate`` is the estimator's (SGD: the current rate; Adam: the
base rate ``learning_rate_init`` its steps scale): callbacks that read it
(``TensorBoard``) see it, and a value a callback sets
(``LearningRateScheduler``, ``ReduceLROnPlateau``) is what the following
epochs train with. A model the user compiled keeps its own optimizer (so
that ``ModelCheckpoint`` saves it): callbacks then see that optimizer, not
the estimator's rate.
"""

from __future__ import annotations

import contextlib
import copy
import functools

import numpy as np

from tfmlp._warn import warn


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
    callbacks = _flattened(callbacks)
    for cb in callbacks:
        if not isinstance(cb, keras.callbacks.Callback):
            raise TypeError(
                "Every element of 'callbacks' must be a keras.callbacks.Callback "
                f"instance. Got {cb!r} of type {type(cb).__name__} instead."
            )
        if isinstance(cb, keras.callbacks.TensorBoard):
            _require_tensorboard()
    return list(callbacks)


def _flattened(callbacks) -> list:
    """The callbacks of any ``keras.callbacks.CallbackList`` among them, in
    order (each is then driven, copied and released like the others)."""
    import keras

    flat = []
    for cb in callbacks:
        if isinstance(cb, keras.callbacks.CallbackList):
            flat.extend(_flattened(cb.callbacks))
        else:
            flat.append(cb)
    return flat


def _warn_per_batch(callbacks) -> None:
    """tfmlp trains whole epochs in one graph: a callback that would act
    per batch (its own batch hooks, or an integer ``save_freq`` /
    ``update_freq`` of Keras' callbacks) is told so instead of silently doing
    nothing."""
    import keras

    hooks = ("on_train_batch_begin", "on_train_batch_end", "on_batch_begin",
             "on_batch_end")  # fmt: skip
    for cb in callbacks:
        per_batch = any(h in vars(cb) for h in hooks)  # LambdaCallback
        for hook in hooks:
            owner = next(k for k in type(cb).__mro__ if hook in vars(k))
            if owner.__module__.split(".")[0] != "keras":  # the user's override
                per_batch = True
        for freq in ("save_freq", "update_freq"):
            value = getattr(cb, freq, None)
            if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
                per_batch = True
        if per_batch and not isinstance(cb, keras.callbacks.TerminateOnNaN):
            warn(
                f"{type(cb).__name__}: tfmlp calls callbacks at the start and "
                "end of training and of each epoch, not per batch (an epoch "
                "trains in one compiled call): its batch hooks or integer "
                "save_freq/update_freq do nothing.",
                UserWarning,
            )


def _require_tensorboard() -> None:
    """TensorBoard's summaries need the tensorboard package, which recent
    TensorFlow releases no longer install: named before training, not as
    TensorFlow's error after the first epoch."""
    import importlib.util

    if importlib.util.find_spec("tensorboard") is None:
        raise ImportError(
            "keras.callbacks.TensorBoard needs the tensorboard package: pip install "
            '"tfmlp[tensorboard]"'
        )


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
        self._estimator = estimator
        self._stand_in = None
        self._ended = False
        self._steps = steps
        for cb in callbacks:  # from now on, copies taken during the fit too
            _leave_model_out_of_copies(cb)
        _warn_per_batch(callbacks)
        self._list = keras.callbacks.CallbackList(
            callbacks,
            add_history=False,
            add_progbar=False,
            model=self.model,
            epochs=epochs,
            steps=steps,
            verbose=0,
        )
        for cb in self._list.callbacks:
            if isinstance(cb, keras.callbacks.ProgbarLogger):
                # one line an epoch, as Keras' fit(verbose=2): no batch hooks
                cb.verbose = 2

    def train_begin(self) -> None:
        if self.active:
            # what an earlier fit's BackupAndRestore left (it sets it only
            # when it finds a backup)
            self.model._initial_epoch = None
            self._call("on_train_begin", {})
            resumed = getattr(self.model, "_initial_epoch", None)
            if resumed:  # Keras' BackupAndRestore found a backup
                warn(
                    f"A callback restored the weights of epoch {resumed} (Keras' "
                    "BackupAndRestore); tfmlp trains its epochs from there but "
                    "counts them from 0 (n_iter_, max_iter) and does not restore "
                    "the shuffling: to resume a fit where it stopped, use "
                    "tfmlp.callbacks.EstimatorCheckpoint and fit with "
                    "warm_start=True."
                )

    def epoch_begin(self, epoch: int) -> None:
        if self.active:
            self._call("on_epoch_begin", epoch, {})

    def epoch_end(self, epoch: int, logs: dict, n_batches=None) -> bool:
        """Notify; True when a callback asked training to stop. Numeric
        entries the callbacks added to the logs (Keras' LR callbacks add
        ``learning_rate``) are added to ``logs``, as Keras' History records
        them."""
        if not self.active:
            return False
        import keras

        if self._steps is None and n_batches:  # a stream of unknown length
            for cb in self._list.callbacks:
                if isinstance(cb, keras.callbacks.ProgbarLogger):
                    cb.target, cb.seen = None, int(n_batches)  # its line's count
        seen = _float64_logs(logs)
        for cb in self._list.callbacks:
            # its one hook is per batch: it checks the epoch's loss instead
            if isinstance(cb, keras.callbacks.TerminateOnNaN):
                cb.on_batch_end(int(n_batches or self._steps or 1) - 1, seen)
        self._call("on_epoch_end", epoch, seen)
        logs.update(_added_numbers(seen, logs))
        return bool(getattr(self.model, "stop_training", False))

    def train_end(self, logs: dict) -> None:
        if self.active:
            self._call("on_train_end", _float64_logs(logs))
            self._ended = True

    def release(self) -> None:
        """After training, ended or failed (the fit calls it once, in a
        ``finally``): drop what callbacks keep but cannot copy. When
        ``on_train_end`` did not complete, Keras' own file writers are closed
        first, as their ``on_train_end`` closes them."""
        if self.active:
            for callback in self._list.callbacks:
                if not self._ended:
                    _close_after_failure(callback)
                _release_closed_resources(callback)

    def _call(self, hook: str, *args) -> None:
        """Run one hook of every callback; weights a callback set through
        ``coefs_``/``intercepts_`` are put into the network before training
        goes on (as weights set through the Keras model are)."""
        self._call_hooks(hook, *args)
        if self._estimator is not None:
            self._estimator._sync_weights()

    def _each(self, hook: str, *args) -> None:
        # each callback's hook directly: Keras' CallbackList would turn the
        # float64 logs into Python floats (see ``_float64_logs``)
        for callback in self._list.callbacks:
            getattr(callback, hook)(*args)

    def _call_hooks(self, hook: str, *args) -> None:
        """Run one hook of every callback with the stand-in optimizer
        attached to the model (see the module docstring)."""
        optimizer = getattr(self._estimator, "_optimizer", None)
        if (
            optimizer is None
            or not hasattr(optimizer, "learning_rate_init")
            or getattr(self.model, "optimizer", None) is not None
        ):  # a model the user compiled keeps its optimizer (checkpoints save it)
            self._each(hook, *args)
            return
        if self._stand_in is None:
            self._stand_in = _stand_in_optimizer(type(optimizer).__name__)
        rate = _base_rate(optimizer)
        self._stand_in.learning_rate = rate
        had = hasattr(self.model, "optimizer")  # None: set, and put back
        self.model.optimizer = self._stand_in
        try:
            self._each(hook, *args)
        finally:
            # (unless a callback compiled the model: it keeps that optimizer)
            if getattr(self.model, "optimizer", None) is self._stand_in:
                if had:
                    self.model.optimizer = None
                else:
                    del self.model.optimizer
        if self._stand_in.learning_rate != rate:
            _set_base_rate(optimizer, self._stand_in.learning_rate)


def _float64_logs(logs: dict) -> dict:
    """The logs as NumPy float64 numbers: Keras converts a Python float to a
    float32 tensor to compare it (EarlyStopping, ReduceLROnPlateau), which
    fails for a finite float64 loss above float32's range."""
    return {k: np.float64(v) for k, v in logs.items()}


def _added_numbers(seen: dict, logs: dict) -> dict:
    """The real scalar entries of ``seen`` that ``logs`` lacks, as floats."""
    added = {}
    for key, value in seen.items():
        if key in logs or not isinstance(key, str):
            continue
        try:
            number = np.asarray(value)
        except Exception:  # noqa: BLE001 - anything a callback stored
            continue
        if number.shape == () and number.dtype.kind in "biuf":
            added[key] = float(number)
    return added


def _base_rate(optimizer) -> float:
    """The rate a Keras optimizer would show: SGD's current learning rate,
    Adam's ``learning_rate_init`` (its steps scale it, as Keras' Adam does)."""
    if hasattr(optimizer, "rates"):  # tfmlp._optimizers.Adam
        return float(optimizer.learning_rate_init)
    return float(optimizer.learning_rate)


def _set_base_rate(optimizer, rate: float) -> None:
    if not np.isfinite(rate) or rate <= 0:
        raise ValueError(
            f"A callback set the learning rate to {rate!r}; it must be a "
            "positive finite number."
        )
    if hasattr(optimizer, "rates"):
        optimizer.learning_rate_init = rate
        return
    if getattr(optimizer, "lr_schedule", None) == "invscaling":
        # the rate is learning_rate_init / t**power_t, recomputed each epoch:
        # scale the schedule, so the next epochs keep the change
        optimizer.learning_rate_init *= rate / optimizer.learning_rate
    optimizer.learning_rate = rate


@functools.cache
def _stand_in_class():
    import keras

    class EstimatorOptimizer(keras.optimizers.SGD):
        """A Keras optimizer object that only carries a learning rate (a
        Python float, so a callback's value reaches the estimator exactly);
        the estimator's own solver does the training."""

        @property
        def learning_rate(self):
            return self._estimator_rate

        @learning_rate.setter
        def learning_rate(self, value):
            self._estimator_rate = float(keras.ops.convert_to_numpy(value))

    return EstimatorOptimizer


def _stand_in_optimizer(solver: str):
    return _stand_in_class()(learning_rate=0.001, name=solver.lower())


def _release_closed_resources(callback) -> None:
    """Drop what a Keras callback keeps after training but neither pickles
    nor deep-copies (the estimator, whose ``callbacks`` parameter holds it,
    must still pickle and clone): closed files (``CSVLogger``) and
    TensorBoard's closed writers and summary module. Keras opens or creates
    them again when they are next needed."""
    import io

    import keras

    for name, value in list(vars(callback).items()):
        if isinstance(value, io.IOBase) and value.closed:
            setattr(callback, name, None)
    if isinstance(callback, keras.callbacks.TensorBoard):
        callback._writers = {}  # closed by its on_train_end
        callback._summary_module = None  # imported again on use


def _close_after_failure(callback) -> None:
    """What ``on_train_end`` of Keras' ``CSVLogger`` and ``TensorBoard``
    close, closed when a fit failed before it (their next
    ``on_train_begin`` opens them again)."""
    import keras

    if isinstance(callback, keras.callbacks.CSVLogger):
        if callback.csv_file is not None and not callback.csv_file.closed:
            callback.csv_file.close()
        callback.writer = None
    elif isinstance(callback, keras.callbacks.TensorBoard):
        # the writer contexts its on_train_begin entered (a per-batch
        # update_freq), left as its on_train_end leaves them
        contexts = getattr(callback, "_prev_summary_state", None)
        while contexts and hasattr(callback, "_pop_writer"):
            callback._pop_writer()
        close = getattr(callback, "_close_writers", None)
        if close is not None:
            close()


def _leave_model_out_of_copies(callback) -> None:
    """Once a fit has given a callback its ``model`` (the estimator's Keras
    model, which it keeps after the fit, as after Keras' own fit), its copies
    and pickles (``clone`` or a pickle of the estimator, whose ``callbacks``
    parameter holds it, during or after the fit) leave the model out: Keras
    copies a model by saving and loading it, which fails for a hidden stack
    with the user's own layer classes and is wasted work for any other. The
    hooks go on the instance and run the class's own copying (its
    ``__getstate__``, ``__deepcopy__``...) with the model set aside, so they
    last until the callback is copied."""

    def deepcopy(memo):
        with _model_set_aside(callback):
            return copy.deepcopy(callback, memo)

    def reduce_ex(protocol):
        with _model_set_aside(callback):
            reduced = type(callback).__reduce_ex__(callback, protocol)
            if len(reduced) > 2 and reduced[2] is vars(callback):
                # the live attributes, pickled later: a snapshot of them now
                reduced = (*reduced[:2], dict(reduced[2]), *reduced[3:])
            return reduced

    vars(callback).update({"__deepcopy__": deepcopy, "__reduce_ex__": reduce_ex})


_COPY_HOOKS = ("__deepcopy__", "__reduce_ex__")


@contextlib.contextmanager
def _model_set_aside(callback):
    """The callback without its model, copy hooks and open resources
    (``_open_resources``), put back after."""
    attributes = vars(callback)
    hooks = {k: attributes.pop(k) for k in _COPY_HOOKS if k in attributes}
    aside = {k: attributes[k] for k in ("_model",) if k in attributes}
    aside.update(_open_resources(callback))
    for name, value in aside.items():
        attributes[name] = type(value)() if isinstance(value, (dict, list)) else None
    try:
        yield
    finally:
        attributes.update(aside)
        attributes.update(hooks)


def _open_resources(callback) -> dict:
    """What Keras' ``CSVLogger`` and ``TensorBoard`` hold while they train
    that neither pickles nor deep-copies: the open file and its CSV writer,
    the summary writers and module. A copy made during a fit gets none
    (Keras opens them again at its next ``on_train_begin``); other
    callbacks' attributes are copied as they are."""
    import keras

    attributes = vars(callback)
    if isinstance(callback, keras.callbacks.CSVLogger):
        names = ("csv_file", "writer")
    elif isinstance(callback, keras.callbacks.TensorBoard):
        # (with a per-batch update_freq, the writer contexts it entered)
        names = ("_writers", "_summary_module", "_prev_summary_state")
    else:
        return {}
    return {name: attributes[name] for name in names if name in attributes}
