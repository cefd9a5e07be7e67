"""tfmlp: scikit-learn's MLPClassifier and MLPRegressor, trained by TensorFlow."""

from tfmlp._compat import _check_keras_backend  # noqa: F401  (fails early)
from tfmlp._convert import from_sklearn, to_sklearn
from tfmlp._estimators import MLPClassifier, MLPRegressor

__version__ = "0.1.0"

__all__ = [
    "MLPClassifier",
    "MLPRegressor",
    "__version__",
    "from_sklearn",
    "to_sklearn",
]
