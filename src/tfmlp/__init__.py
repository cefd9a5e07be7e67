"""tfmlp: scikit-learn's MLPClassifier and MLPRegressor, trained by TensorFlow.

The public names are imported on first use, so ``import tfmlp`` (and the
command line's ``--help``) does not pay for importing TensorFlow.
"""

import sys as _sys

from tfmlp._backend import check_backend

try:
    check_backend()  # fail early if Keras is set to another backend
except ImportError as _exc:
    # the command line (the `tfmlp` script, `python -m tfmlp`) reports it as
    # its other errors: one line, no traceback
    _argv = getattr(_sys, "orig_argv", _sys.argv)
    _cli = _sys.argv[0].endswith(("/tfmlp", "\\tfmlp", "tfmlp.exe")) or (
        _argv[1:3] == ["-m", "tfmlp"]
    )
    if _cli:
        print(f"tfmlp: error: {_exc}", file=_sys.stderr)
        raise SystemExit(1) from None
    raise

__version__ = "0.1.0"

_LAZY = {
    "MLPClassifier": "tfmlp._estimators",
    "MLPRegressor": "tfmlp._estimators",
    "export": "tfmlp._export",
    "from_sklearn": "tfmlp._convert",
    "load": "tfmlp._persist",
    "plot_loss_curve": "tfmlp._plotting",
    "save": "tfmlp._persist",
    "to_sklearn": "tfmlp._convert",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        from tfmlp._backend import freeze_startup_objects

        freeze_startup_objects()  # TensorFlow is imported now
        return value
    raise AttributeError(f"module 'tfmlp' has no attribute {name!r}")


def __dir__():
    return sorted(__all__)
