"""Parameter constraints (scikit-learn's, verbatim in meaning) and their resolution."""

from __future__ import annotations

from dataclasses import dataclass
from numbers import Integral, Real

import numpy as np

from tfmlp._compat import (
    SKLEARN_CONSTRAINTS,
    SKLEARN_REGRESSOR_LOSS,
    Interval,
    StrOptions,
)

STOCHASTIC_SOLVERS = ("sgd", "adam")

BASE_CONSTRAINTS: dict = {
    **SKLEARN_CONSTRAINTS,  # scikit-learn's, the same objects
    "activation": [
        StrOptions(
            {"identity", "logistic", "tanh", "relu"}
            | {"leaky_relu", "elu", "selu", "gelu", "swish"}  # tfmlp's extras
        )
    ],
    # tfmlp's own parameters (appended after scikit-learn's); checked in fit
    "callbacks": "no_validation",
    "jit_compile": ["boolean", None],
    "compute_dtype": [
        StrOptions({"float32", "mixed_float16", "mixed_bfloat16"}),
        None,
    ],
    "hidden_stack": [callable, None],
    "dropout": [Interval(Real, 0, 1, closed="left"), None],
    "batch_normalization": ["boolean"],
    "distribute": [StrOptions({"mirrored", "multi_worker"}), None],
}

CLASSIFIER_CONSTRAINTS: dict = {
    **BASE_CONSTRAINTS,
    "class_weight": [dict, StrOptions({"balanced"}), None],
}

REGRESSOR_CONSTRAINTS: dict = {
    **BASE_CONSTRAINTS,
    "loss": SKLEARN_REGRESSOR_LOSS,
}


def hidden_sizes(hidden_layer_sizes) -> list[int]:
    """Return the hidden layer sizes as a list, checked like scikit-learn does."""
    sizes = hidden_layer_sizes
    if not hasattr(sizes, "__iter__"):
        sizes = [sizes]
    sizes = list(sizes)
    if np.any(np.array(sizes) <= 0):
        raise ValueError(f"hidden_layer_sizes must be > 0, got {sizes}.")
    for s in sizes:  # scikit-learn fails on these too (a TypeError)
        if isinstance(s, (bool, np.bool_)) or not isinstance(s, Integral):
            raise TypeError(
                "hidden_layer_sizes must contain integers, got "
                f"{s!r} of type {type(s).__name__}."
            )
    return [int(s) for s in sizes]


def resolve_batch_size(batch_size, n_samples: int, warn: bool = True) -> int:
    """scikit-learn's batch size rule: 'auto' is min(200, n); larger values clip
    (with scikit-learn's warning unless ``warn=False``)."""
    from tfmlp import _warn

    if batch_size == "auto":
        return min(200, n_samples)
    if warn and batch_size > n_samples:
        _warn.warn(
            "Got `batch_size` less than 1 or larger than "
            "sample size. It is going to be clipped",
            like_sklearn=True,
        )
    return int(np.clip(batch_size, 1, n_samples))


class WeightsSumToZero(ZeroDivisionError, ValueError):
    """Sample weights of a minibatch (or of the data) sum to zero.

    scikit-learn raises NumPy's ``ZeroDivisionError`` there (its weighted
    loss is ``np.average``); this is that error and a ``ValueError``.
    """


class MissingTargets(TypeError, ValueError):
    """``y`` left out (or None) where ``X`` is not a ``tf.data.Dataset``: a
    ``ValueError`` as scikit-learn's validation of ``y=None`` raises, and a
    ``TypeError`` as its methods raise for the missing argument."""


def require_targets(est, y, method: str) -> None:
    """Raise ``MissingTargets`` when ``y`` is None (for array-like ``X``):
    scikit-learn's message for ``fit``/``partial_fit``, with what ``score``
    needs added for it."""
    if y is None:
        message = (
            f"This {type(est).__name__} estimator requires y to be passed, but "
            "the target y is None."
        )
        if method == "score":
            message += (
                " score(X, y) compares predictions with the true targets of "
                "array-like X (only a tf.data.Dataset of (X, y) batches "
                "carries its own)."
            )
        raise MissingTargets(message)


class WeightsMismatch(ValueError):
    """``coefs_`` / ``intercepts_`` set to arrays that do not form the
    network: a Keras hidden stack cannot hold them (its layers fix the
    shapes), or they do not chain into a network for the fitted inputs and
    outputs (``check_weight_shapes``). Reading them does not raise it;
    predicting and training do, and the fitted network is kept."""


def array_shape(value) -> tuple | None:
    """``np.shape(value)``, or None for what is no array (a ragged list)."""
    try:
        return np.shape(value)
    except ValueError:
        return None


def check_weight_shapes(
    coefs, intercepts, n_features=None, n_outputs=None, chain: bool = True
) -> None:
    """Raise ``WeightsMismatch`` unless ``coefs``/``intercepts`` (as set on an
    estimator, perhaps by hand) are lists of numeric matrices and vectors
    that, with ``chain``, form a network from ``n_features`` inputs to
    ``n_outputs`` outputs (either None: not checked). Without ``chain`` (a
    Keras stack's Dense layers, which need not chain) only the lists and
    their arrays are checked."""
    problem = _weight_lists_problem(coefs, intercepts)
    if not problem and chain:
        problem = _weight_shapes_problem(coefs, intercepts, n_features, n_outputs)
    if problem:
        raise WeightsMismatch(
            f"coefs_/intercepts_ do not form a network: {problem}. Set arrays "
            "of matching shapes, or fit again without warm_start."
        )


def _weight_lists_problem(coefs, intercepts) -> str:
    for name, value, ndim in (("coefs_", coefs, 2), ("intercepts_", intercepts, 1)):
        if not isinstance(value, (list, tuple)) or not value:
            return (
                f"{name} must be a non-empty list of arrays, one per layer, "
                f"not {type(value).__name__}"
                + (" (empty)" if isinstance(value, (list, tuple)) else "")
            )
        for i, array in enumerate(value):
            shape = array_shape(array)
            if shape is None or np.asarray(array).dtype.kind not in "biuf":
                return f"{name}[{i}] is not an array of numbers"
            if len(shape) != ndim:
                return f"{name}[{i}] has shape {shape}, not " + (
                    "(inputs, units)" if ndim == 2 else "(units,)"
                )
    return ""


def _weight_shapes_problem(coefs, intercepts, n_features, n_outputs) -> str:
    if len(coefs) != len(intercepts):
        return (
            f"coefs_ holds {len(coefs)} arrays and intercepts_ {len(intercepts)}; "
            "each layer has one of each"
        )
    shapes = [np.shape(c) for c in coefs]
    for i, (shape, bias) in enumerate(zip(shapes, intercepts)):
        if np.shape(bias) != (shape[1],):
            return (
                f"intercepts_[{i}] has shape {np.shape(bias)} where coefs_[{i}] "
                f"{shape} needs ({shape[1]},)"
            )
        if i and shapes[i - 1][1] != shape[0]:
            return (
                f"coefs_[{i}] has {shape[0]} rows but coefs_[{i - 1}] "
                f"{shapes[i - 1]} has {shapes[i - 1][1]} columns"
            )
    if n_features is not None and shapes[0][0] != n_features:
        return (
            f"coefs_[0] has {shapes[0][0]} rows but the estimator was fitted on "
            f"{n_features} features (n_features_in_)"
        )
    if n_outputs is not None and shapes[-1][1] != n_outputs:
        return (
            f"coefs_[-1] has {shapes[-1][1]} columns but the estimator has "
            f"{n_outputs} outputs"
        )
    return ""


def signed_weights(sample_weight) -> np.ndarray | None:
    """``sample_weight`` if some batch of it could sum to zero (a weight is
    zero or negative), else None: nothing to check per epoch."""
    if sample_weight is None:
        return None
    sw = np.asarray(sample_weight)
    return sw if (sw <= 0).any() else None


def check_batch_weights(sw, order: np.ndarray, batch_size: int) -> None:
    """Raise ``WeightsSumToZero`` if a batch of rows ``order`` (cut into
    ``batch_size`` rows) has weights ``sw`` summing to zero."""
    if sw is None:
        return
    sums = np.add.reduceat(sw[order], np.arange(0, len(order), batch_size))
    if (sums == 0).any():
        first = int(np.flatnonzero(sums == 0)[0])
        raise WeightsSumToZero(
            "Weights sum to zero, can't be normalized: the sample weights of "
            f"minibatch {first} (rows {first * batch_size} to "
            f"{min((first + 1) * batch_size, len(order)) - 1} of this epoch's "
            "order) sum to 0."
        )


@dataclass(frozen=True)
class NetSpec:
    """What the compiled functions need to know about the network."""

    n_layers: int
    activation: str
    out_activation: str
    loss: str  # squared_error | poisson | log_loss | binary_log_loss
    # training's matrix products under a mixed policy (``_precision``)
    matmul_dtype: str | None = None

    @property
    def loss_scaling(self) -> bool:
        return self.matmul_dtype == "float16"

    @classmethod
    def create(
        cls,
        n_layers: int,
        activation: str,
        out_activation: str,
        matmul_dtype: str | None = None,
        loss: str | None = None,
    ) -> NetSpec:
        """``loss``: the reported objective (default: the output's own)."""
        check_activation(activation)
        default = (
            _OUTPUT_LOSS.get(out_activation)
            if isinstance(out_activation, str)
            else None
        )
        if default is None:
            raise ValueError(
                f"out_activation_ must be one of {sorted(_OUTPUT_LOSS)}; got "
                f"{out_activation!r}."
            )
        return cls(n_layers, activation, out_activation, loss or default, matmul_dtype)


# the output activations, each with the loss that goes with it when none is
# given (the estimators give theirs: ``BaseMLP._objective``); tanh and relu
# only as an ``out_activation_`` set after fit, which scikit-learn predicts with
_OUTPUT_LOSS = {
    "identity": "squared_error",
    "tanh": "squared_error",
    "relu": "squared_error",
    "exp": "poisson",
    "softmax": "log_loss",
    "logistic": "binary_log_loss",
}


def check_activation(activation) -> str:
    """``activation`` if it is one the estimators take, else a ValueError.

    ``fit`` checks the parameters; this covers what runs without that check
    on a fitted estimator after ``set_params`` (``partial_fit``, prediction,
    ``transform``, ``model_``, export), where a dictionary lookup would
    otherwise fail with a bare ``KeyError``.
    """
    options = BASE_CONSTRAINTS["activation"][0].options
    if not isinstance(activation, str) or activation not in options:
        raise ValueError(
            f"The 'activation' parameter must be one of {sorted(options)}; got "
            f"{activation!r}."
        )
    return activation
