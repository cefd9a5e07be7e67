"""Reading and writing variables made under a ``tf.distribute`` strategy from
anywhere, the scope of another strategy included (a notebook cell that runs
``with tf.distribute.MirroredStrategy().scope(): est.fit(...)`` again makes a
new strategy each time, and TensorFlow refuses to touch one strategy's
mirrored variables in another's scope)."""

from __future__ import annotations

import numpy as np
import tensorflow as tf


def local_copy(variable):
    """A mirrored variable's first copy (every copy holds the same value);
    any other variable as it is."""
    values = getattr(variable, "values", None)
    return values[0] if isinstance(values, (list, tuple)) and values else variable


def read(variable) -> np.ndarray:
    """The variable's value as a NumPy array, in any strategy's scope."""
    return local_copy(variable).numpy()


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
