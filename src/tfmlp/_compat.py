"""The only module that imports private scikit-learn API or checks the Keras backend.

Importing it fails early, with a clear message, when Keras is configured for a
backend other than TensorFlow.
"""

from __future__ import annotations


def _check_keras_backend() -> None:
    """Cheap configuration check, then Keras' own word on its backend."""
    from tfmlp._backend import MESSAGE, check_backend

    check_backend()
    import keras

    if keras.backend.backend() != "tensorflow":
        raise ImportError(MESSAGE.format(backend=keras.backend.backend()))


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
from sklearn.utils.validation import (  # noqa: E402
    _check_feature_names_in,
    _check_sample_weight,
    validate_data,
)

__all__ = [
    "Interval",
    "InvalidParameterError",
    "Options",
    "StrOptions",
    "_SetOutputMixin",
    "_check_feature_names_in",
    "_check_sample_weight",
    "_fit_context",
    "validate_data",
]
