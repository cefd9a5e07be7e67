"""The only module that imports private scikit-learn or Keras API or checks the Keras
backend.

Importing it fails early, with a clear message, when Keras is configured for a
backend other than TensorFlow.
"""

from __future__ import annotations

import functools


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


def keeps_keras_policy(function):
    """Run ``function`` with Keras' global dtype policy left as it was.

    Keras' own getter (``keras.config.dtype_policy()``, which ``keras.Input``
    and layers call) stores a policy of the current ``floatx`` the first time
    anything reads it while none is set; after that, ``keras.config.set_floatx``
    no longer changes the dtype of the user's new layers. tfmlp builds Keras
    models (``model_``, export, hidden stacks), so it puts back exactly what
    was there, nothing included (Keras' private global state; without it the
    function just runs).
    """

    @functools.wraps(function)
    def run(*args, **kwargs):
        try:
            from keras.src.backend.common import global_state
        except ImportError:  # pragma: no cover - a Keras without this module
            return function(*args, **kwargs)
        previous = global_state.get_global_attribute("dtype_policy", None)
        try:
            return function(*args, **kwargs)
        finally:
            global_state.set_global_attribute("dtype_policy", previous)

    return run


__all__ = [
    "SKLEARN_CONSTRAINTS",
    "keeps_keras_policy",
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
