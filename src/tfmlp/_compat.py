"""The only module that imports private scikit-learn API or checks the Keras backend.

Importing it fails early, with a clear message, when Keras is configured for a
backend other than TensorFlow.
"""

from __future__ import annotations

import os

_BACKEND_MESSAGE = (
    "tfmlp trains with TensorFlow and needs Keras on the TensorFlow backend, but "
    "Keras is configured to use the {backend!r} backend. Set the environment "
    "variable KERAS_BACKEND=tensorflow (or change 'backend' in ~/.keras/keras.json) "
    "before importing tfmlp or keras."
)


def _check_keras_backend() -> None:
    env_backend = os.environ.get("KERAS_BACKEND")
    if env_backend is not None and env_backend.strip().lower() != "tensorflow":
        raise ImportError(_BACKEND_MESSAGE.format(backend=env_backend))
    import keras

    backend = keras.backend.backend()
    if backend != "tensorflow":
        raise ImportError(_BACKEND_MESSAGE.format(backend=backend))


_check_keras_backend()

# scikit-learn's private helpers that keep our validation identical to its own.
from sklearn.base import _fit_context  # noqa: E402
from sklearn.utils._param_validation import (  # noqa: E402
    Interval,
    InvalidParameterError,
    Options,
    StrOptions,
)
from sklearn.utils._set_output import _SetOutputMixin  # noqa: E402
from sklearn.utils.validation import _check_sample_weight, validate_data  # noqa: E402

__all__ = [
    "Interval",
    "InvalidParameterError",
    "Options",
    "StrOptions",
    "_SetOutputMixin",
    "_check_sample_weight",
    "_fit_context",
    "validate_data",
]
