"""tfmlp's additions beyond scikit-learn: class weights, the built-in dropout /
batch-normalisation stack, and user-supplied validation data.

Every addition is off by default, so scikit-learn parity is untouched.
"""

from __future__ import annotations

import numbers

import numpy as np
from sklearn.utils.class_weight import compute_class_weight, compute_sample_weight

from tfmlp._network import KERAS_ACTIVATIONS
from tfmlp._params import check_activation
from tfmlp._precision import matmul_dtype

# Initializers for the Dense layers tfmlp creates: tfmlp assigns their weights
# right after building them (scikit-learn's rule, drawn from random_state), and
# Keras' default random initializers would each draw a seed from Python's
# global ``random`` module when the layer is created, changing what unrelated
# code gets from it. "zeros" draws nothing.
UNSEEDED_DENSE = {"kernel_initializer": "zeros", "bias_initializer": "zeros"}


def class_sample_weight(
    class_weight, y, sample_weight, *, incremental: bool, classes=None
):
    """Combine ``class_weight`` with ``sample_weight`` (multiplicatively).

    ``classes``: the estimator's ``classes_``; ``partial_fit`` weighs a call's
    labels against all of them (as ``SGDClassifier.partial_fit`` does), since
    one call need not hold every class that ``class_weight`` names.
    """
    if class_weight is None:
        return sample_weight
    if incremental and isinstance(class_weight, str):
        raise ValueError(
            "class_weight='balanced' is not supported by partial_fit: one call "
            "sees only part of the data. Compute the weights on all the data "
            "with sklearn.utils.class_weight.compute_class_weight and pass them "
            "as a dict."
        )
    if isinstance(class_weight, dict):
        _check_class_weights(class_weight)
    y = y.toarray() if hasattr(y, "toarray") else np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:  # a column of labels, e.g. df[["label"]]
        y = y.ravel()
    if y.ndim == 2 and isinstance(class_weight, dict):
        raise ValueError(
            "class_weight for multilabel targets must be 'balanced' (each "
            "label's 0/1 classes weighted as scikit-learn's "
            "compute_sample_weight('balanced', y) does); a dict weighs the "
            "classes of a single target."
        )
    if incremental and classes is not None and y.ndim == 1:
        per_class = compute_class_weight(class_weight, classes=classes, y=y)
        weights = per_class[np.searchsorted(classes, y)]
    elif isinstance(class_weight, str) and sample_weight is not None:
        return _balanced_with_weights(y, np.asarray(sample_weight, dtype=np.float64))
    else:
        weights = compute_sample_weight(class_weight, y)
    if sample_weight is None:
        return weights
    return np.asarray(sample_weight, dtype=np.float64) * weights


def _balanced_with_weights(y, sample_weight):
    """``sample_weight`` times 'balanced' class weights whose class counts
    are weighted by it (scikit-learn's ``compute_class_weight(...,
    sample_weight=)``: ``total / (n_classes * class total)``, so a row of
    weight k counts as k rows; a class of weight 0 weighs 0); a multilabel
    ``y``: the product over its columns, as ``compute_sample_weight``."""
    weights = sample_weight.copy()
    for column in y.T if y.ndim == 2 else [y]:
        classes, index = np.unique(column, return_inverse=True)
        index = index.ravel()
        totals = np.bincount(index, weights=sample_weight, minlength=len(classes))
        weighed = np.bincount(index, weights=sample_weight != 0, minlength=len(classes))
        bad = (totals <= 0) & (weighed > 0)
        if bad.any():
            label = classes[bad][0]
            label = label.item() if isinstance(label, np.generic) else label
            raise ValueError(
                "class_weight='balanced' counts each class by its sample weights, "
                f"and those of class {label!r} sum to {totals[bad][0]:g}: a "
                "class's weights must sum to more than 0 (or all be 0). Pass "
                "class_weight as a dict instead."
            )
        per_class = np.zeros(len(classes))
        np.divide(totals.sum(), len(classes) * totals, out=per_class, where=totals > 0)
        weights *= per_class[index]
    return weights


def _check_class_weights(class_weight: dict) -> None:
    """A class_weight dict's weights must be finite numbers (a NaN one made
    the fit fail only after training, blaming the data)."""
    for label, weight in class_weight.items():
        if isinstance(weight, (bool, np.bool_)) or not isinstance(weight, numbers.Real):
            raise TypeError(
                f"class_weight's weights must be numbers; class {label!r} has "
                f"{weight!r}."
            )
        if not np.isfinite(weight):
            raise ValueError(
                f"class_weight's weights must be finite; class {label!r} has "
                f"{weight!r}."
            )


class StandardStack:
    """The standard hidden stack with dropout and/or batch normalisation.

    Each hidden layer is Dense -> [BatchNormalization] -> activation ->
    [Dropout(rate)]. A plain class (not a closure) so estimators pickle.
    """

    def __init__(self, sizes, activation, dropout, batch_normalization, seed):
        self.sizes = list(sizes)
        self.activation = check_activation(activation)
        self.dropout = dropout
        self.batch_normalization = batch_normalization
        self.seed = int(seed)

    def _layers(self) -> tuple:  # dropout None or 0: no Dropout layer
        return (
            tuple(self.sizes),
            self.activation,
            self.dropout or 0.0,
            bool(self.batch_normalization),
        )

    def __eq__(self, other) -> bool:
        """The same layers (seeds aside): what warm starts compare."""
        if not isinstance(other, StandardStack):
            return NotImplemented
        return self._layers() == other._layers()

    __hash__ = None  # compared by value, mutable

    def __call__(self, x):
        import keras

        for i, units in enumerate(self.sizes):
            x = keras.layers.Dense(units, name=f"hidden_{i + 1}", **UNSEEDED_DENSE)(x)
            if self.batch_normalization:
                x = keras.layers.BatchNormalization(name=f"batch_norm_{i + 1}")(x)
            act = KERAS_ACTIVATIONS[self.activation]
            x = keras.layers.Activation(act, name=f"activation_{i + 1}")(x)
            if self.dropout:
                x = keras.layers.Dropout(
                    self.dropout, seed=self.seed + i, name=f"dropout_{i + 1}"
                )(x)
        return x


def check_extras(est) -> None:
    """Cross-parameter checks for the additions."""
    uses_stack = bool(est.dropout) or bool(est.batch_normalization)
    if uses_stack and est.hidden_stack is not None:
        raise ValueError(
            "'dropout' and 'batch_normalization' apply to the stack built from "
            "'hidden_layer_sizes'; with a custom 'hidden_stack', add Dropout or "
            "BatchNormalization layers inside it instead."
        )
    if (uses_stack or est.hidden_stack is not None) and matmul_dtype(est.compute_dtype):
        raise ValueError(
            f"compute_dtype={est.compute_dtype!r} applies to the standard network "
            "built from 'hidden_layer_sizes' (without 'hidden_stack', 'dropout' or "
            "'batch_normalization'); for a Keras hidden stack, give its layers "
            "Keras dtype policies and leave compute_dtype=None or 'float32'."
        )
    if (uses_stack or est.hidden_stack is not None) and est.solver == "lbfgs":
        raise ValueError(
            "solver='lbfgs' does not support 'hidden_stack', 'dropout' or "
            "'batch_normalization'; use solver='adam' or solver='sgd'."
        )


def check_validation_data(validation_data) -> tuple:
    """Unpack ``validation_data=(X_val, y_val[, sample_weight_val])``."""
    if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (
        2,
        3,
    ):
        got = type(validation_data).__name__
        if isinstance(validation_data, (tuple, list)):
            got = f"a {got} of {len(validation_data)} elements"
        raise ValueError(
            "validation_data must be a tuple (X_val, y_val) or (X_val, y_val, "
            f"sample_weight_val). Got {got} instead."
        )
    X_val, y_val = validation_data[:2]
    sw_val = validation_data[2] if len(validation_data) == 3 else None
    return X_val, y_val, sw_val
