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
from sklearn.neural_network import MLPRegressor as _SkRegressor  # noqa: E402
from sklearn.neural_network._multilayer_perceptron import (  # noqa: E402
    BaseMultilayerPerceptron as _SkBase,
)
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

# scikit-learn's own parameter constraints: the very objects, so that error
# messages list the options in the same order (a set's order can differ
# between processes that compiled the modules)
SKLEARN_CONSTRAINTS = dict(_SkBase._parameter_constraints)
SKLEARN_REGRESSOR_LOSS = _SkRegressor._parameter_constraints["loss"]

__all__ = [
    "SKLEARN_CONSTRAINTS",
    "SKLEARN_REGRESSOR_LOSS",
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
