"""scikit-learn's SGD and Adam as explicit state plus TensorFlow update rules.

The Python objects keep the schedule (learning rate, Adam's step count) and the
slot variables (velocities, moments); ``apply_sgd``/``apply_adam_at_rate`` are the
per-batch updates that run inside the compiled epoch. Hyperparameters enter
the graph as float64 tensors, never as Python floats (Keras and TensorFlow
would round those through float32).
"""

from __future__ import annotations

import math

import numpy as np
import tensorflow as tf

from tfmlp import _mirrored as mirrored
from tfmlp._precision import initial_state


class _Optimizer:
    """Base: slot variables that pickle as NumPy arrays.

    Under ``compute_dtype="mixed_float16"`` the optimizer also keeps the
    dynamic loss scale, ``[scale, finite steps in a row]`` (``_precision``),
    so that ``partial_fit`` and ``warm_start`` continue with it.
    """

    n_slots_per_param = 1
    _loss_scale = None  # the loss-scale state as an array (pickles, old ones)
    _scale_var = None  # ... and as a variable once training has used it

    def __init__(self, params: list[np.ndarray], learning_rate_init: float):
        self.learning_rate_init = learning_rate_init
        self.learning_rate = float(learning_rate_init)
        self._slot_arrays = [
            np.zeros_like(p) for _ in range(self.n_slots_per_param) for p in params
        ]
        self._slot_vars = None
        self._strategy = None

    def slots(self, strategy=None, model=None) -> list[tf.Variable]:
        """Slot variables (mirrored ones under a ``tf.distribute`` strategy);
        for a forward ``model`` that trains with loss scaling
        (``model.spec.loss_scaling``) the loss-scale variable follows them
        (created at its initial value the first time)."""
        if self._slot_vars is not None and self._strategy is not strategy:
            self._slot_arrays = [mirrored.read(v) for v in self._slot_vars]
            self._slot_vars = None
            self._loss_scale = self.loss_scale_state()
            self._scale_var = None
        if self._slot_vars is None:
            self._slot_vars = _variables(self._slot_arrays, strategy)
            self._strategy = strategy
            self._slot_arrays = None
        if model is None or not model.spec.loss_scaling:
            return self._slot_vars
        if self._scale_var is None:
            state = self._loss_scale
            if state is None:
                state = initial_state()
            self._scale_var = _variables([state], strategy)[0]
            self._loss_scale = None
        return [*self._slot_vars, self._scale_var]

    def fits(self, shapes) -> bool:
        """Whether the slots are those of parameters of these ``shapes``."""
        held = self._slot_vars if self._slot_vars is not None else self._slot_arrays
        if any(s is None for s in shapes):  # (no arrays: a ragged list)
            return False
        expected = [tuple(s) for s in shapes] * self.n_slots_per_param
        return [tuple(a.shape) for a in held] == expected

    def match_dtypes(self, params) -> None:
        """Hold the slots in the dtypes of ``params`` (the network's
        variables): moments of a float32 fit continue a float64 network (an
        lbfgs refit) upcast, as scikit-learn's NumPy arithmetic does."""
        dtypes = [_numpy_dtype(p) for p in params] * self.n_slots_per_param
        held = self._slot_vars if self._slot_vars is not None else self._slot_arrays
        if [_numpy_dtype(a) for a in held] == dtypes:
            return  # (the usual case: no variable is read)
        arrays = self._slot_arrays
        if self._slot_vars is not None:
            arrays = [mirrored.read(v) for v in self._slot_vars]
        self._loss_scale = self.loss_scale_state()  # (kept as an array)
        self._scale_var = None
        self._slot_vars = None
        self._strategy = None
        self._slot_arrays = [np.asarray(a, d) for a, d in zip(arrays, dtypes)]

    def reset_loss_scale(self) -> None:
        """Forget the float16 loss scale (a new network starts at 2^15)."""
        self._loss_scale = None
        self._scale_var = None

    def continue_loss_scale(self, previous: _Optimizer) -> None:
        """Start from ``previous``'s loss scale (a warm start's new optimizer)."""
        state = previous.loss_scale_state()
        self._loss_scale = None if state is None else np.array(state, np.float32)

    def loss_scale_state(self) -> np.ndarray | None:
        """``[scale, finite steps in a row]`` of float16 training, or None."""
        if self._scale_var is not None:
            return mirrored.read(self._scale_var)
        return self._loss_scale

    def __getstate__(self):
        state = self.__dict__.copy()
        if self._slot_vars is not None:
            state["_slot_arrays"] = [mirrored.read(v) for v in self._slot_vars]
        state["_slot_vars"] = None
        state["_strategy"] = None
        scale = self.loss_scale_state()
        if scale is not None:
            state["_loss_scale"] = scale
        state.pop("_scale_var", None)
        return state

    def __setstate__(self, state):
        state.setdefault("_strategy", None)
        self.__dict__.update(state)

    def iteration_ends(self, time_step: int) -> None:
        """Called at the end of every epoch with the number of samples seen."""

    def trigger_stopping(self, msg: str, verbose) -> bool:
        if verbose:
            print(msg + " Stopping.")
        return True


def _numpy_dtype(x) -> np.dtype:
    """The NumPy dtype of an array or a TensorFlow variable."""
    return np.dtype(getattr(x.dtype, "as_numpy_dtype", x.dtype))


def _variables(arrays, strategy) -> list[tf.Variable]:
    if strategy is None:
        return [tf.Variable(a) for a in arrays]
    from tfmlp._distribute import mirrored_variables

    return mirrored_variables(strategy, arrays)


class SGD(_Optimizer):
    """scikit-learn's SGD with momentum / Nesterov and its three schedules."""

    def __init__(
        self, params, learning_rate_init, lr_schedule, momentum, nesterov, power_t
    ):
        super().__init__(params, learning_rate_init)
        self.lr_schedule = lr_schedule
        self.momentum = momentum
        self.nesterov = nesterov
        self.power_t = power_t

    def hyper(self) -> np.ndarray:
        return np.array([self.learning_rate, self.momentum], dtype=np.float64)

    def iteration_ends(self, time_step: int) -> None:
        if self.lr_schedule == "invscaling":
            self.learning_rate = (
                float(self.learning_rate_init) / (time_step + 1) ** self.power_t
            )

    def trigger_stopping(self, msg: str, verbose) -> bool:
        if self.lr_schedule != "adaptive":
            return super().trigger_stopping(msg, verbose)
        if self.learning_rate <= 1e-6:
            if verbose:
                print(msg + " Learning rate too small. Stopping.")
            return True
        self.learning_rate /= 5.0
        if verbose:
            print(msg + " Setting learning rate to %f" % self.learning_rate)
        return False


class Adam(_Optimizer):
    """scikit-learn's Adam (epsilon added to the uncorrected sqrt(v))."""

    n_slots_per_param = 2

    def __init__(self, params, learning_rate_init, beta_1, beta_2, epsilon):
        super().__init__(params, learning_rate_init)
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.t = 0

    def hyper(self) -> np.ndarray:
        # ``1 - beta`` in the parameter's own type, as scikit-learn computes
        # it (a NumPy float32 beta gives a float32-rounded complement)
        b1, b2 = self.beta_1, self.beta_2
        values = [self.learning_rate_init, b1, 1 - b1, b2, 1 - b2, self.epsilon]
        return np.array([float(v) for v in values], dtype=np.float64)

    def rates(self, n_steps: int) -> np.ndarray:
        """The learning rates of the next ``n_steps`` steps (from ``t + 1``).

        Computed step by step with scikit-learn's own expression and types:
        NumPy's vectorised ``power`` differs from the scalar ``**`` in the
        last bit for some steps, and NumPy float32 hyper-parameters make
        scikit-learn compute the rate in float32 (``np.sqrt`` of Python
        floats is ``math.sqrt``'s value, which is faster per step).
        """
        lr0, b1, b2 = self.learning_rate_init, self.beta_1, self.beta_2
        sqrt = math.sqrt
        if any(_narrow(v) for v in (lr0, b1, b2)):
            sqrt = np.sqrt
        steps = range(self.t + 1, self.t + n_steps + 1)
        return np.array(
            [lr0 * sqrt(1 - b2**t) / (1 - b1**t) for t in steps], dtype=np.float64
        )


def _narrow(value) -> bool:
    """Whether ``value`` is a NumPy scalar narrower than float64 (whose
    arithmetic scikit-learn's expressions then keep in its precision)."""
    return isinstance(value, np.generic) and np.dtype(type(value)).itemsize < 8


def update_rule(optimizer) -> tuple[str, bool]:
    """``(solver, nesterov)`` of the update ``optimizer`` applies.

    Taken from the optimizer object, not from the estimator's parameters:
    as in scikit-learn, ``partial_fit`` keeps training with the optimizer it
    has even after ``set_params(solver=...)`` or ``nesterovs_momentum=...``.
    """
    if isinstance(optimizer, Adam):
        return "adam", False
    return "sgd", bool(optimizer.nesterov)


def apply_sgd(params, grads, slots, hyper, nesterov: bool):
    """One SGD step; ``hyper`` = [learning_rate, momentum] (float64)."""
    for param, grad, velocity in zip(params, grads, slots):
        lr = tf.cast(hyper[0], param.dtype)
        momentum = tf.cast(hyper[1], param.dtype)
        new_velocity = momentum * velocity - lr * grad
        velocity.assign(new_velocity)
        update = momentum * new_velocity - lr * grad if nesterov else new_velocity
        param.assign_add(update)


def adam_rate(hyper, step):
    """Adam's bias-corrected learning rate at (1-based, float64) ``step``."""
    lr0, b1, b2 = hyper[0], hyper[1], hyper[3]
    return lr0 * tf.sqrt(1 - tf.pow(b2, step)) / (1 - tf.pow(b1, step))


def apply_adam_at_rate(params, grads, slots, hyper, learning_rate):
    """One Adam step with the step's (bias-corrected, float64) learning rate."""
    b1, one_b1, b2, one_b2, eps = (hyper[i] for i in range(1, 6))
    n = len(params)
    neg_rate = -learning_rate
    cast: dict = {}  # the hyper-parameters in each weight dtype, cast once
    for param, grad, m, v in zip(params, grads, slots[:n], slots[n:]):
        dtype = param.dtype
        if dtype not in cast:
            cast[dtype] = [tf.cast(h, dtype) for h in (b1, one_b1, b2, one_b2, eps)]
        b1_, one_b1_, b2_, one_b2_, eps_ = cast[dtype]
        new_m = b1_ * m + one_b1_ * grad
        new_v = b2_ * v + one_b2_ * tf.square(grad)
        m.assign(new_m)
        v.assign(new_v)
        denom = tf.sqrt(new_v) + eps_
        if dtype == tf.float64:
            param.assign_add(neg_rate * new_m / denom)
        else:  # scikit-learn computes this update in float64 and rounds once
            update = neg_rate * tf.cast(new_m, tf.float64)
            update = update / tf.cast(denom, tf.float64)
            param.assign(tf.cast(tf.cast(param, tf.float64) + update, dtype))
    return learning_rate
