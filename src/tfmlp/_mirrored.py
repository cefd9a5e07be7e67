"""Reading and writing variables made under a ``tf.distribute`` strategy from
anywhere, the scope of another strategy included (a notebook cell that runs
``with tf.distribute.MirroredStrategy().scope(): est.fit(...)`` again makes a
new strategy each time, and TensorFlow refuses to touch one strategy's
mirrored variables in another's scope)."""

from __future__ import annotations

import numpy as np
import tensorflow as tf
from tensorflow.python.ops.gen_resource_variable_ops import (
    read_variable_op as _read_variable_op,
)


def local_copy(variable):
    """A mirrored variable's first copy (every copy holds the same value);
    any other variable as it is."""
    values = getattr(variable, "values", None)
    return values[0] if isinstance(values, (list, tuple)) and values else variable


def read(variable) -> np.ndarray:
    """The variable's value as a NumPy array, in any strategy's scope.

    A TensorFlow variable is read by its one ``ReadVariableOp`` (its
    ``numpy()`` runs two more eager operations: ~4x the time, which every
    ``partial_fit`` call paid several times over its weights and Adam's
    moments); other variables (Keras') by their own ``numpy()``.
    """
    variable = local_copy(variable)
    handle = getattr(variable, "handle", None)
    if not isinstance(variable, tf.Variable) or handle is None:
        return variable.numpy()
    return _read_variable_op(handle, variable.dtype).numpy()


def assign(variable, value, strategy) -> None:
    """Set ``variable`` (made under ``strategy``, or None) to ``value``."""
    values = getattr(variable, "values", None)
    current = tf.distribute.get_strategy() if tf.distribute.has_strategy() else None
    other = current is not None and current is not strategy
    if strategy is not None and other and isinstance(values, (list, tuple)):
        for component in values:  # every replica's copy
            component.assign(value)
    else:
        variable.assign(value)
