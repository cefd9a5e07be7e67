"""The minibatch (sgd / adam) training loop of the estimators, as a mixin.

It follows scikit-learn's epoch rules exactly (loss bookkeeping, tolerance and
``n_iter_no_change``, learning-rate schedules, early stopping with best-weight
restore, warnings and verbose lines) and adds tfmlp's hooks: Keras callbacks,
``history_``, and user-supplied ``validation_data`` with
``validation_loss_curve_``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import tensorflow as tf
from sklearn.base import is_classifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split

from tfmlp._callbacks import CallbackRunner, check_callbacks
from tfmlp._compat import _check_sample_weight, validate_data
from tfmlp._distribute import (
    DistributedRunner,
    check_shardable,
    global_batches,
    resolve_strategy,
)
from tfmlp._extras import check_validation_data
from tfmlp._interrupt import TrainingAborted, deferred_interrupts
from tfmlp._loop import make_runner
from tfmlp._losses import data_loss
from tfmlp._params import STOCHASTIC_SOLVERS, WeightsSumToZero
from tfmlp._precision import initial_state, matmul_dtype, no_step_applied
from tfmlp._streaming import (
    DatasetRunner,
    check_dataset_feature_names,
    check_finite,
    check_label_specs,
    feature_count,
    is_dataset,
)
from tfmlp._warn import warn

# fused epochs (``_train_epochs``) train at most this many rows and epochs
# per call, and as many as took at most MAX_FUSED_SECONDS in the previous
# call: a call stays short (Ctrl-C waits for it to end) and the per-call
# costs (~0.3 ms) stay a small share of it
MAX_FUSED_ROWS = 2**20
MAX_FUSED_EPOCHS = 64
MAX_FUSED_SECONDS = 0.5


@dataclass
class _EpochPlan:
    """What the epoch loop of one fit / partial_fit call works with."""

    runner: object
    net: object
    callbacks: CallbackRunner
    fusable: bool
    validation: tuple | None
    incremental: bool
    early_stopping: bool  # as the call began (a callback may switch it)


class StochasticMixin:
    """``_fit_stochastic`` and its helpers (mixed into ``BaseMLP``)."""

    def _fit_stochastic(self, X, y, sw, incremental: bool, validation_data) -> None:
        strategy = resolve_strategy(self.distribute)
        net = self._network(strategy)
        previous = self.__dict__.get("_optimizer")
        if not incremental or previous is None:
            # a new optimizer (as scikit-learn's) with the loss scale reached
            # so far (a warm start's; a new network's was reset: 2^15)
            self._optimizer = self._make_optimizer([v.numpy() for v in net.variables])
            if previous is not None:
                self._optimizer.continue_loss_scale(previous)
        else:  # an lbfgs fit since may have changed the weights' dtype
            previous.match_dtypes(net.variables)
        if incremental and self.early_stopping and self._best_params is None:
            # a fit restored its best weights (scikit-learn then trains them
            # on): they are what partial_fit's early stopping goes back to
            self._best_params = net.full_state()
        if self.early_stopping and incremental and validation_data is None:
            raise ValueError(
                "partial_fit does not support early_stopping=True without "
                "validation_data: pass partial_fit(X, y, validation_data=(X_val, "
                "y_val)) to score a held-out set after each call."
            )
        if validation_data is not None:
            validation = self._check_validation(validation_data)
            if self.validation_scores_ is None:
                self.validation_scores_ = []
        elif is_dataset(X) and self.early_stopping:
            raise ValueError(
                "early_stopping=True with a tf.data.Dataset needs "
                "validation_data=(X_val, y_val) or a validation dataset: a stream "
                "cannot be split."
            )
        else:
            X, y, sw, validation = self._train_validation_split(X, y, sw)
        if strategy is not None:
            check_shardable(strategy, X)
            batches = global_batches(self, net, X, y, sw)
            runner = DistributedRunner(self, net, strategy, batches, source=X)
        elif is_dataset(X):
            runner = DatasetRunner(self, net, X, y.encode, y.key)
        else:
            runner = make_runner(self, net, X, y, sw)
        loss_type = self._loss_type(X, y, sw)
        early = bool(self.early_stopping)
        callbacks = CallbackRunner(
            check_callbacks(getattr(self, "callbacks", None)),
            lambda: self.model_,
            epochs=1 if incremental else self.max_iter,
            steps=runner.n_batches,
            estimator=self,
        )
        try:
            fusable = self._fusable(runner, callbacks, validation, incremental)
            plan = _EpochPlan(
                runner, net, callbacks, fusable, validation, incremental, early
            )
            # from here training writes the variables: a synchronisation reads
            # them back (before, only Keras could have: ``net.exposed``)
            self.__dict__["_fitting"] = "training"
            with deferred_interrupts() as ctrl_c:
                interrupted, logs = self._run_epochs(plan, loss_type, ctrl_c)
            if interrupted or ctrl_c.requested:
                warn("Training interrupted by user.", like_sklearn=True)
            if early:
                self._restore_best(net, incremental)
            self._params_from_network(net)  # (what on_train_end's callbacks see)
            try:
                callbacks.train_end(logs)
            except KeyboardInterrupt as exc:
                if isinstance(exc, TrainingAborted):
                    raise
                warn("Training interrupted by user.", like_sklearn=True)
            # weights a callback set in on_train_end are the fit's result, checked
            # (in ``_fit_unguarded``) like the training's own
            if callbacks.active:
                self._sync_weights()
        finally:  # after a failed fit too: the estimator still pickles
            callbacks.release()

    def _run_epochs(self, plan, loss_type, ctrl_c) -> tuple[bool, dict]:
        """The epoch loop; returns whether a ``KeyboardInterrupt`` (from a
        callback, or Ctrl-C noted by ``ctrl_c``) ended it, and the last
        epoch's logs."""
        runner, net, callbacks = plan.runner, plan.net, plan.callbacks
        validation, incremental = plan.validation, plan.incremental
        logs: dict = {}
        try:
            self.n_iter_ = 0  # (also when a callback's train_begin interrupts)
            callbacks.train_begin()
            pending: list = []  # losses of epochs trained, not yet recorded
            for epoch in range(self.max_iter):
                if not pending:
                    if ctrl_c.requested:  # every trained epoch is recorded
                        raise KeyboardInterrupt
                    callbacks.epoch_begin(epoch)
                    # an application's own SIGINT handler may raise right
                    # after a call returns, before its epochs are recorded:
                    # one epoch per call then (as scikit-learn, whose
                    # interrupted epoch is not counted either)
                    fusable = plan.fusable and ctrl_c.deferring
                    scale = self._loss_scale_state()
                    pending = self._train_epochs(runner, fusable, epoch)
                    trained = not no_step_applied(
                        scale, self._optimizer.loss_scale_state(), runner.n_batches
                    )
                self._record_epoch(runner, pending.pop(0), loss_type)
                self._update_no_improvement_count(
                    net, validation, plan.early_stopping, trained
                )
                self._optimizer.iteration_ends(self.t_)
                logs = self._epoch_logs(validation)
                self._record_history(logs)  # before the hooks (checkpoints)
                # scikit-learn's stopping check first: callbacks (checkpoints)
                # see the epoch's end state (an adaptive rate already divided)
                converged = False
                if self._no_improvement_count > self.n_iter_no_change:
                    converged = self._optimizer.trigger_stopping(
                        self._stop_message(plan.early_stopping), self.verbose
                    )
                    if not converged:
                        self._no_improvement_count = 0
                shown = set(logs)
                stop = callbacks.epoch_end(
                    epoch, logs, getattr(runner, "n_batches", None)
                )
                self._amend_history({k: logs[k] for k in logs if k not in shown})
                if stop or converged:
                    break
                if incremental:
                    break
                if self.n_iter_ == self.max_iter:
                    warn(
                        "Stochastic Optimizer: Maximum iterations (%d) "
                        "reached and the optimization hasn't converged yet."
                        % self.max_iter,
                        ConvergenceWarning,
                        like_sklearn=True,
                    )
        except KeyboardInterrupt as exc:
            if isinstance(exc, TrainingAborted):
                raise
            return True, logs
        return False, logs

    def _loss_scale_state(self):
        """The optimizer's loss-scale state, the initial one where float16
        training has not yet made it (None without loss scaling)."""
        state = self._optimizer.loss_scale_state()
        if state is None and matmul_dtype(self.compute_dtype) == "float16":
            state = initial_state()
        return state

    def _restore_best(self, net, incremental: bool) -> None:
        """Put back the best validation weights (after fit; in partial_fit once
        the score has not improved for ``n_iter_no_change`` calls)."""
        if incremental:
            if self._no_improvement_count <= self.n_iter_no_change:
                return
            warn(
                "Validation score did not improve more than tol=%f for %d "
                "consecutive partial_fit calls; the best weights were restored."
                % (self.tol, self.n_iter_no_change),
                ConvergenceWarning,
            )
            self._no_improvement_count = 0
        if self._best_params is not None:
            net.load_full_state(self._best_params)
        if not incremental:  # scikit-learn's restored best weights are its
            # live ones (a later warm-start fit trains them); partial_fit
            # keeps the best ones to restore again
            self._best_params = None

    def _fusable(self, runner, callbacks, validation, incremental) -> bool:
        """Whether epochs can be trained several per call (``run_epochs``):
        nothing may look at the network between epochs (validation,
        callbacks) and the optimizer's hyper-parameters must stay fixed
        until a stopping check (SGD's ``invscaling`` changes every epoch)."""
        return (
            getattr(runner, "fused", False)  # EpochRunner's graph-mode path
            and not incremental
            and validation is None
            and not callbacks.active
            and getattr(self._optimizer, "lr_schedule", None) != "invscaling"
            # float16 loss scaling: which epochs applied no step is read
            # from the scale after each epoch (``no_step_applied``)
            and matmul_dtype(self.compute_dtype) != "float16"
        )

    def _train_epochs(self, runner, fusable: bool, epoch: int) -> list:
        """Train the next epoch(s); returns their summed batch losses.

        Fused, it trains as many epochs as cannot reach a stopping check
        that ends training or changes the learning rate: the check fires
        once ``_no_improvement_count`` exceeds ``n_iter_no_change``, so the
        next ``n_iter_no_change + 1 - count`` epochs run without one
        (bounded by ``max_iter``, ``MAX_FUSED_ROWS``, ``MAX_FUSED_EPOCHS``
        and the epochs the previous call's time per epoch fits in
        ``MAX_FUSED_SECONDS``; the first call trains one epoch). Their
        losses are then recorded one by one by the same code as single
        epochs, so every attribute, warning and random draw is as if they
        had run one by one (and the numbers are the same).
        """
        random_state = self._random_state if self.shuffle else None
        k = 1
        seconds = getattr(runner, "epoch_seconds", None)
        if fusable and seconds is not None:
            k = min(  # n_iter_no_change may be np.inf: never the minimum
                self.max_iter - epoch,
                self.n_iter_no_change + 1 - self._no_improvement_count,
                MAX_FUSED_ROWS // max(runner.n_samples, 1),
                MAX_FUSED_EPOCHS,
                MAX_FUSED_SECONDS // max(seconds, 1e-9),
            )
        start = time.perf_counter()
        if k <= 1:
            totals = [runner.run_epoch(random_state)]
        else:
            totals = list(runner.run_epochs(random_state, int(k)))
        runner.epoch_seconds = (time.perf_counter() - start) / len(totals)
        return totals

    def _loss_type(self, X, y, sw=None):
        """The NumPy type of scikit-learn's reported loss (None: the training
        dtype's): float64 for a classifier (its log-loss of boolean targets
        is computed in float64 even for float32 data), else the type of
        targets minus predictions, weighted by ``sw`` (float64 targets or
        weights with float32 data: float64). A ``batch_size`` given as a
        number is a NumPy integer in scikit-learn (``np.clip``), and the batch
        losses it multiplies are float64."""
        if is_classifier(self):
            return np.float64
        if is_dataset(X) or not hasattr(y, "dtype"):
            return None
        if self.solver in STOCHASTIC_SOLVERS and self.batch_size != "auto":
            return np.float64
        # the training dtype: a compute_dtype trains in float32, also where
        # a memory-mapped X is cast chunk by chunk rather than up front
        x_dtype = X.dtype if self.compute_dtype is None else np.dtype(np.float32)
        dtypes = [y.dtype, x_dtype] + ([] if sw is None else [np.asarray(sw).dtype])
        return np.result_type(*dtypes).type

    def _record_epoch(self, runner, total, loss_type=None) -> None:
        """Bookkeeping of one trained epoch with summed batch loss ``total``
        (reported as ``loss_type``, see ``_loss_type``)."""
        n = runner.n_samples
        self.n_iter_ += 1
        self.loss_ = total / n
        if loss_type is not None:
            self.loss_ = loss_type(self.loss_)
        self.t_ += n
        self.loss_curve_.append(self.loss_)
        if self.verbose:
            print("Iteration %d, loss = %.8f" % (self.n_iter_, self.loss_))

    def _train_validation_split(self, X, y, sample_weight):
        if not self.early_stopping:
            return X, y, sample_weight, None
        stratify = y if is_classifier(self) and self.n_outputs_ == 1 else None
        arrays = [X, y] if sample_weight is None else [X, y, sample_weight]
        parts = train_test_split(
            *arrays,
            random_state=self._random_state,
            test_size=self.validation_fraction,
            stratify=stratify,
        )
        X_train, X_val, y_train, y_val = parts[:4]
        sw_train, sw_val = (None, None) if sample_weight is None else parts[4:]
        if X_val.shape[0] < 2:
            raise ValueError(
                "The validation set is too small. Increase 'validation_fraction' "
                "or the size of your dataset."
            )
        if is_classifier(self):
            y_val = self._label_binarizer.inverse_transform(y_val)
        return X_train, y_train, sw_train, (X_val, y_val, sw_val)

    def _check_validation(self, validation_data) -> tuple:
        """Validate user-supplied ``validation_data`` like training data."""
        if is_dataset(validation_data):
            return self._check_validation_dataset(validation_data), None, None
        X_val, y_val, sw_val = check_validation_data(validation_data)
        try:
            X_val = validate_data(
                self, X_val, accept_sparse=["csr", "csc"], reset=False
            )
        except ValueError as exc:  # scikit-learn's message, about X_val
            raise ValueError(f"validation_data: {exc}") from None
        y_val = self._check_validation_targets(y_val)
        if len(y_val) != X_val.shape[0]:
            raise ValueError(
                f"validation_data has {X_val.shape[0]} samples in X_val but "
                f"{len(y_val)} in y_val."
            )
        if sw_val is not None:
            try:
                sw_val = _check_sample_weight(sw_val, X_val)
            except TypeError as exc:
                raise TypeError(f"validation_data's sample_weight: {exc}") from None
            except ValueError as exc:  # its message reads as the training one's
                raise ValueError(f"validation_data's sample_weight: {exc}") from None
            _refuse_zero_sum(sw_val, "validation_data's")  # before training
        return X_val, y_val, sw_val

    def _check_validation_dataset(self, ds):
        """Check what can be checked of a validation dataset before training:
        a finite stream of labelled batches with the training data's features
        (its labels are checked when it is read, after the first epoch)."""
        check_finite(ds, "validation_data")
        check_dataset_feature_names(self, ds)
        spec = ds.element_spec
        if not isinstance(spec, tuple) or len(spec) not in (2, 3):
            raise ValueError(
                "A validation dataset must yield (X, y) or (X, y, sample_weight) "
                f"batches. Its element_spec is {spec!r}."
            )
        check_label_specs(spec, "validation_data")
        n_features = feature_count(spec[0])
        if n_features != self.n_features_in_:
            raise ValueError(
                f"validation_data has {n_features} features, but "
                f"{type(self).__name__} is expecting {self.n_features_in_} "
                "features as input."
            )
        return ds

    def _update_no_improvement_count(
        self, net, validation, early: bool, trained: bool = True
    ) -> None:
        """scikit-learn's stopping bookkeeping; ``early``: whether the call
        (as it began: a callback may switch the parameter) stops early.
        An epoch whose steps were all skipped (``trained`` False: float16
        loss scaling's overflows) does not count as one without improvement:
        its weights did not change."""
        if validation is not None:
            score = self._record_validation(net, *validation)
        # partial_fit after early_stopping was switched since the first fit:
        # the other criterion's best value starts here (scikit-learn raises
        # a TypeError comparing with None)
        if early and self.best_validation_score_ is None:
            self.best_validation_score_ = -np.inf
        if not early and self.best_loss_ is None:
            self.best_loss_ = np.inf
        if early:
            if not score < self.best_validation_score_ + self.tol:
                self._no_improvement_count = 0
            elif trained:
                self._no_improvement_count += 1
            if score > self.best_validation_score_:
                self.best_validation_score_ = score
                self._best_params = net.full_state()
        else:
            if not self.loss_curve_[-1] > self.best_loss_ - self.tol:
                self._no_improvement_count = 0
            elif trained:
                self._no_improvement_count += 1
            if self.loss_curve_[-1] < self.best_loss_:
                self.best_loss_ = self.loss_curve_[-1]

    def _record_validation(self, net, X_val, y_val, sw_val):
        """Score the validation data (one forward pass) and record score and loss."""
        if is_dataset(X_val):
            raw, y_val, sw_val = self._dataset_outputs(X_val, "validation_data")
            y_val = self._check_validation_targets(y_val)
            if sw_val is not None:
                _refuse_zero_sum(sw_val, "the validation dataset's")
        else:
            raw = self._forward(X_val)
        score = self._score_from_output(raw, y_val, sw_val)
        self.validation_scores_.append(score)
        if self.verbose:
            print("Validation score: %f" % self.validation_scores_[-1])
        target = self._encode_targets(y_val).astype(raw.dtype)
        weights = np.ones(len(raw), raw.dtype) if sw_val is None else sw_val
        weights = tf.constant(np.asarray(weights, dtype=raw.dtype))
        loss = data_loss(
            self._forward_model(net).spec.loss,  # no second weight sync
            tf.constant(target),
            tf.constant(raw),
            weights,
            tf.reduce_sum(weights),
        )
        curve = self.__dict__.setdefault("validation_loss_curve_", [])
        # epochs scored without a loss (e.g. by scikit-learn before
        # from_sklearn) are NaN, so the curve lines up with validation_scores_
        curve.extend([np.nan] * (len(self.validation_scores_) - 1 - len(curve)))
        curve.append(float(loss.numpy()))
        return score

    def _epoch_logs(self, validation) -> dict:
        logs = {"loss": float(self.loss_)}
        if validation is not None:
            logs["val_score"] = float(self.validation_scores_[-1])
            logs["val_loss"] = self.validation_loss_curve_[-1]
        return logs

    def _record_history(self, logs: dict) -> None:
        """Append an epoch's logs to ``history_``."""
        history = self.__dict__.setdefault("history_", {})
        # one entry per epoch in every list: NaN where an epoch had no value
        n = max((len(v) for v in history.values()), default=0)
        for key in [*history, *(k for k in logs if k not in history)]:
            _history_column(history, key, n).append(logs.get(key, np.nan))

    def _amend_history(self, added: dict) -> None:
        """Add the numbers callbacks added to the last epoch's logs (e.g.
        Keras' ``learning_rate``) to its ``history_`` entry."""
        history = self.__dict__["history_"]
        n = len(history["loss"])
        for key, value in added.items():
            _history_column(history, key, n)[-1] = value

    def _stop_message(self, early: bool) -> str:
        what = "Validation score" if early else "Training loss"
        return "%s did not improve more than tol=%f for %d consecutive epochs." % (
            what,
            self.tol,
            self.n_iter_no_change,
        )

    def _score_from_output(self, raw, y, sample_weight):
        y_pred = self._decode(raw)
        if np.issubdtype(y_pred.dtype, np.floating) and not np.isfinite(y_pred).all():
            return np.nan
        return self._score_function(y, y_pred, sample_weight=sample_weight)

    def _score(self, X, y, sample_weight=None):
        raw = self._forward_pass_fast(X, check_input=False)
        return self._score_from_output(raw, y, sample_weight)

    def _predict(self, X, check_input=True):
        return self._decode(self._forward_pass_fast(X, check_input=check_input))


def _refuse_zero_sum(sw_val, whose: str) -> None:
    """Validation weights are scored by a weighted average: a zero sum has no
    score (scikit-learn's ZeroDivisionError, as a ValueError naming them)."""
    if np.sum(sw_val) == 0:
        raise WeightsSumToZero(
            f"Weights sum to zero, can't be normalized: {whose} sample weights "
            "sum to 0, so no validation score exists."
        )


def _history_column(history: dict, key: str, n: int) -> list:
    """``history``'s list for ``key``, NaN-padded to ``n`` epochs."""
    values = history.setdefault(key, [])
    values.extend([np.nan] * (n - len(values)))
    return values
