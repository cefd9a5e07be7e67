"""Warnings of the training path, attributed where users' filters expect them."""

from __future__ import annotations

import sys
import warnings


def warn(message: str, category=UserWarning, *, like_sklearn: bool = False) -> None:
    """``warnings.warn`` attributed to the first frame outside tfmlp.

    ``like_sklearn``: a warning scikit-learn's MLP also gives (its
    ConvergenceWarning, the batch-size clipping, the interrupt): attributed to
    the first frame outside tfmlp, which for ``fit``/``partial_fit`` is
    scikit-learn's fit wrapper (``sklearn.base``), so that filters written for
    scikit-learn's own warnings (``filterwarnings(..., module="sklearn")``,
    as in its examples) apply to ours. Otherwise (tfmlp's own warnings) the
    first frame outside tfmlp and scikit-learn: the user's line. Frames of
    TensorFlow and Keras (a warning given while a function is traced, or
    from a callback Keras calls) are passed over too.
    """
    skip = _FRAMEWORKS + (("tfmlp",) if like_sklearn else ("tfmlp", "sklearn"))
    frame, level = sys._getframe(1), 1
    while frame is not None and _skipped(_module(frame), skip):
        frame, level = frame.f_back, level + 1
    # stacklevel 1 is this function's frame; frame ``level`` steps up is
    # stacklevel ``level + 1``
    warnings.warn(message, category, stacklevel=level + 1)


_FRAMEWORKS = ("tensorflow", "keras")


def _skipped(module: str, skip: tuple) -> bool:
    # AutoGraph's converted functions live in modules of generated names
    return module.split(".")[0] in skip or module.startswith("__autograph_generated")


def _module(frame) -> str:
    return frame.f_globals.get("__name__", "") or ""
