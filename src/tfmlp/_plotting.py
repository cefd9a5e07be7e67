"""``plot_loss_curve``: the training loss (and validation score) of a fitted MLP."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # (matplotlib is optional)
    from matplotlib.axes import Axes
    from sklearn.base import BaseEstimator

__all__ = ["plot_loss_curve"]


def _pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            'plot_loss_curve needs matplotlib: pip install "tfmlp[plot]"'
        ) from exc
    return plt


def plot_loss_curve(est: BaseEstimator, ax: Axes | None = None) -> Axes:
    """Draw ``est.loss_curve_`` and, when present, ``est.validation_scores_``.

    Parameters
    ----------
    est : fitted MLPClassifier or MLPRegressor (tfmlp's or scikit-learn's)
        Trained with ``solver="adam"`` or ``"sgd"`` (lbfgs records a single
        final loss, drawn as one point at its iteration count ``n_iter_``).
    ax : matplotlib Axes, optional
        Where to draw; a new figure is created when omitted.

    Returns
    -------
    matplotlib.axes.Axes
        The Axes holding the loss curve. The validation score (with
        ``early_stopping=True``) is drawn on a twin y axis to its right.

    Raises
    ------
    sklearn.exceptions.NotFittedError
        If ``est`` is not fitted.
    TypeError
        If ``est`` is not an estimator, or ``ax`` not a matplotlib Axes.
    """
    from sklearn.exceptions import NotFittedError

    if not hasattr(est, "get_params"):
        raise TypeError(
            "plot_loss_curve expects a fitted MLPClassifier or MLPRegressor "
            f"(tfmlp's or scikit-learn's), got {type(est).__qualname__}."
        )
    loss = getattr(est, "loss_curve_", None)
    unit, first = "epoch", 1
    if loss is None:
        loss_value = getattr(est, "loss_", None)
        if loss_value is None:
            raise NotFittedError(
                f"This {type(est).__name__} instance is not fitted yet (no "
                "loss_curve_ or loss_): fit it before plot_loss_curve."
            )
        # lbfgs: its final loss, after n_iter_ iterations
        loss, unit = [loss_value], "iteration"
        first = int(getattr(est, "n_iter_", 1) or 1)
    plt = _pyplot()
    if ax is None:
        _, ax = plt.subplots(figsize=(6.4, 4.0))
    elif not isinstance(ax, plt.Axes):
        raise TypeError(
            f"ax must be a matplotlib Axes (or None for a new figure); got "
            f"{type(ax).__qualname__}."
        )
    epochs = list(range(first, first + len(loss)))
    lines = ax.plot(epochs, loss, color="tab:blue", marker="" if len(loss) > 1 else "o")
    lines[0].set_label("training loss")
    ax.set_xlabel(unit)
    ax.set_ylabel("training loss")
    ax.set_title(f"{type(est).__name__} training")
    handles = list(lines)
    scores = getattr(est, "validation_scores_", None)
    if scores is not None and len(scores):
        ax2 = ax.twinx()
        vlines = ax2.plot(*_score_points(est, scores, epochs), color="tab:orange")
        vlines[0].set_label("validation score")
        ax2.set_ylabel("validation score")
        handles += vlines
    ax.legend(handles=handles, loc="best")
    ax.grid(True, alpha=0.3)
    return ax


def _score_points(est, scores, epochs: list) -> tuple[list, list]:
    """The epochs ``validation_scores_`` were recorded at, and the scores.

    Scoring may start after the first epoch (a ``warm_start`` fit that turns
    ``early_stopping`` on, ``partial_fit`` given ``validation_data`` from
    some call on) or stop before the last: ``history_``, one entry per epoch
    with NaN where an epoch was not scored, says which (NaN draws a gap).
    Without it (scikit-learn's estimators) the scores are the last epochs'.
    """
    column = (getattr(est, "history_", None) or {}).get("val_score")
    if column is not None and len(column) == len(epochs):
        scored = [v for v in column if not np.isnan(v)]
        if scored and scored == [v for v in scores if not np.isnan(v)]:
            at = [i for i, v in enumerate(column) if not np.isnan(v)]
            keep = slice(at[0], at[-1] + 1)  # gaps inside stay NaN
            return epochs[keep], list(column[keep])
    return epochs[max(len(epochs) - len(scores), 0) :], list(scores)
