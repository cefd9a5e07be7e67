"""Conversion of fitted models between scikit-learn and tfmlp, both ways.

``from_sklearn`` turns a fitted ``sklearn.neural_network.MLPClassifier`` /
``MLPRegressor`` into the matching tfmlp estimator; ``to_sklearn`` does the
reverse. Besides the parameters and the public fitted attributes, the private
training state moves too (label binarizer, no-improvement counter, best
weights of early stopping, and the optimizer with its learning rate, step
count and slots), so that ``partial_fit`` or a ``warm_start=True`` ``fit``
continues exactly as it would have on the original side.
"""

from __future__ import annotations

import copy

import numpy as np
from sklearn.neural_network import MLPClassifier as SkMLPClassifier
from sklearn.neural_network import MLPRegressor as SkMLPRegressor
from sklearn.neural_network._stochastic_optimizers import (
    AdamOptimizer,
    SGDOptimizer,
)
from sklearn.utils.validation import check_is_fitted

from tfmlp._estimators import MLPClassifier, MLPRegressor
from tfmlp._network import EXTRA_ACTIVATIONS
from tfmlp._optimizers import SGD, Adam
from tfmlp._params import check_activation
from tfmlp._warn import warn

__all__ = ["from_sklearn", "to_sklearn"]

# Public fitted attributes shared by both libraries (copied when present).
_FITTED_ATTRIBUTES = (
    "classes_",
    "n_features_in_",
    "feature_names_in_",
    "n_layers_",
    "n_outputs_",
    "out_activation_",
    "loss_",
    "best_loss_",
    "loss_curve_",
    "validation_scores_",
    "best_validation_score_",
    "t_",
    "n_iter_",
)
# Private training state with the same name and meaning on both sides.
# (``_random_state`` is not carried: both libraries redraw it from
# ``random_state`` at the start of every fit / partial_fit.)
_PRIVATE_ATTRIBUTES = ("_label_binarizer", "_no_improvement_count")

_NOT_FITTED = (
    "This %(name)s instance is not fitted yet: {fn} converts a fitted "
    "estimator. Call 'fit' (or 'partial_fit') before converting it."
)


def _type_name(obj) -> str:
    """``sklearn.linear_model.LogisticRegression`` rather than its private
    path; for a class passed instead of an instance, says so."""
    if isinstance(obj, type):
        return f"the class {_class_name(obj)} itself, not a fitted instance of it"
    return _class_name(type(obj))


def _class_name(cls: type) -> str:
    public = []
    for part in cls.__module__.split("."):
        if part.startswith("_"):
            break
        public.append(part)
    if not public or public == ["builtins"]:
        return cls.__qualname__
    return ".".join([*public, cls.__qualname__])


def _copy_value(value):
    return copy.deepcopy(value)


def _copy_arrays(arrays) -> list[np.ndarray]:
    return [np.array(a, copy=True) for a in arrays]


def _params_for(target_cls, params: dict) -> dict:
    """``params`` restricted to ``target_cls``'s parameters, copied like clone().

    A ``RandomState`` instance is copied (not shared), so that continuing to
    train the converted model does not advance the original's generator.
    """
    names = target_cls().get_params(deep=False)
    return {k: copy.deepcopy(v) for k, v in params.items() if k in names}


def _copy_fitted(source, target) -> None:
    for name in _FITTED_ATTRIBUTES + _PRIVATE_ATTRIBUTES:
        if name in source.__dict__:
            setattr(target, name, _copy_value(source.__dict__[name]))


# ---------------------------------------------------------------- from_sklearn
def from_sklearn(
    est: SkMLPClassifier | SkMLPRegressor,
) -> MLPClassifier | MLPRegressor:
    """A fitted tfmlp estimator equivalent to a fitted scikit-learn MLP.

    Parameters
    ----------
    est : sklearn.neural_network.MLPClassifier or MLPRegressor
        A fitted scikit-learn estimator (binary, multiclass, multilabel or
        regression; any solver).

    Returns
    -------
    tfmlp.MLPClassifier or tfmlp.MLPRegressor
        A new fitted estimator with the same parameters (``get_params()``
        equal on scikit-learn's keys; tfmlp's extra parameters at their
        defaults), copies of the weights and fitted attributes, and the
        training state (optimizer, no-improvement counter, early-stopping best
        weights), so ``partial_fit`` and ``warm_start=True`` ``fit`` continue
        exactly as scikit-learn would. The original is not modified.

    Raises
    ------
    TypeError
        If ``est`` is not a scikit-learn ``MLPClassifier``/``MLPRegressor``.
    sklearn.exceptions.NotFittedError
        If ``est`` is not fitted.
    """
    if isinstance(est, SkMLPClassifier):
        target_cls = MLPClassifier
    elif isinstance(est, SkMLPRegressor):
        target_cls = MLPRegressor
    else:
        hint = (
            " (it is already a tfmlp estimator; to_sklearn converts the other way)"
            if isinstance(est, (MLPClassifier, MLPRegressor))
            else ""
        )
        raise TypeError(
            "from_sklearn expects a fitted sklearn.neural_network.MLPClassifier "
            f"or sklearn.neural_network.MLPRegressor, got {_type_name(est)}{hint}."
        )
    check_is_fitted(est, "coefs_", msg=_NOT_FITTED.format(fn="from_sklearn"))
    _check_structure(est)

    new = target_cls(**_params_for(target_cls, est.get_params(deep=False)))
    coefs = _copy_arrays(est.coefs_)
    intercepts = _copy_arrays(est.intercepts_)
    new.coefs_ = coefs
    new.intercepts_ = intercepts
    new.__dict__["_net"] = None  # the TensorFlow variables are built on demand
    new.__dict__["_keras_weights"] = None
    _copy_fitted(est, new)
    new._best_params = _best_params_from_sklearn(est)
    if "loss_curve_" in est.__dict__:
        history = {"loss": [float(v) for v in est.loss_curve_]}
        scores = getattr(est, "validation_scores_", None)
        if scores is not None and len(scores) == len(history["loss"]):
            history["val_score"] = [float(v) for v in scores]
        new.history_ = history
    optimizer = est.__dict__.get("_optimizer")
    if optimizer is not None:
        converted = _optimizer_from_sklearn(optimizer, coefs + intercepts)
        if converted is not None:
            new._optimizer = converted
    return new


def _best_params_from_sklearn(est):
    """tfmlp's ``_best_params``: a copy of sklearn's best weights, or None.

    After an early-stopping restore scikit-learn's ``coefs_`` *is*
    ``_best_coefs`` (the same arrays, which later warm-start epochs update in
    place); tfmlp records that state as None ("the current weights").
    """
    best_coefs = est.__dict__.get("_best_coefs")
    best_intercepts = est.__dict__.get("_best_intercepts")
    if best_coefs is None or best_intercepts is None:
        return _copy_arrays(list(est.coefs_) + list(est.intercepts_))
    aliased = all(a is b for a, b in zip(best_coefs, est.coefs_)) and all(
        a is b for a, b in zip(best_intercepts, est.intercepts_)
    )
    if aliased:
        return None
    return _copy_arrays(list(best_coefs) + list(best_intercepts))


def _slots_like(arrays, params) -> list[np.ndarray]:
    return [np.array(a, dtype=p.dtype, copy=True) for a, p in zip(arrays, params)]


def _check_structure(est) -> None:
    """The fitted weights must make one network (a ValueError, not a model
    that fails at its first prediction): one intercept per weight matrix,
    each matrix's rows matching the units before it, ``n_features_in_``
    inputs and ``n_outputs_`` outputs."""
    coefs, intercepts = list(est.coefs_), list(getattr(est, "intercepts_", []))
    units = [getattr(est, "n_features_in_", None)]
    problem = None
    if not coefs or len(intercepts) != len(coefs):
        problem = f"{len(coefs)} weight matrices and {len(intercepts)} intercepts"
    else:
        for i, (w, b) in enumerate(zip(coefs, intercepts)):
            w, b = np.asarray(w), np.asarray(b)
            if w.ndim != 2 or b.shape != (w.shape[1],):
                problem = f"coefs_[{i}] {w.shape} and intercepts_[{i}] {b.shape}"
                break
            if units[-1] is not None and w.shape[0] != units[-1]:
                problem = f"coefs_[{i}] has {w.shape[0]} rows for {units[-1]} inputs"
                break
            units.append(w.shape[1])
    n_layers = getattr(est, "n_layers_", len(coefs) + 1)
    if problem is None and n_layers != len(coefs) + 1:
        problem = f"n_layers_={n_layers} with {len(coefs)} weight matrices"
    n_outputs = getattr(est, "n_outputs_", units[-1])
    if problem is None and units[-1] != n_outputs:
        problem = f"{units[-1]} outputs where n_outputs_={n_outputs}"
    if problem is not None:
        raise ValueError(
            f"from_sklearn: the fitted {type(est).__name__}'s weights do not make "
            f"one network ({problem})."
        )


def _optimizer_from_sklearn(opt, params):
    """tfmlp's optimizer for scikit-learn's, or None: none of its kind, or
    one left by a fit of another network (scikit-learn keeps an earlier
    fit's optimizer through an lbfgs fit of other layer sizes)."""
    slots = getattr(opt, "velocities", None) or getattr(opt, "ms", None) or []
    if [np.shape(s) for s in slots] != [p.shape for p in params]:
        return None
    if isinstance(opt, SGDOptimizer):
        new = SGD(
            params,
            opt.learning_rate_init,
            opt.lr_schedule,
            opt.momentum,
            opt.nesterov,
            opt.power_t,
        )
        new._slot_arrays = _slots_like(opt.velocities, params)
    elif isinstance(opt, AdamOptimizer):
        new = Adam(params, opt.learning_rate_init, opt.beta_1, opt.beta_2, opt.epsilon)
        new.t = int(opt.t)
        new._slot_arrays = _slots_like(opt.ms, params) + _slots_like(opt.vs, params)
    else:
        return None
    new.learning_rate = float(opt.learning_rate)
    return new


# ------------------------------------------------------------------ to_sklearn
def to_sklearn(
    est: MLPClassifier | MLPRegressor,
) -> SkMLPClassifier | SkMLPRegressor:
    """A genuine fitted scikit-learn MLP equivalent to a fitted tfmlp estimator.

    The result holds only NumPy arrays and scikit-learn objects: it pickles
    and predicts where TensorFlow and tfmlp are not installed.

    Parameters
    ----------
    est : tfmlp.MLPClassifier or tfmlp.MLPRegressor
        A fitted tfmlp estimator with scikit-learn's architecture (no
        ``hidden_stack``, ``dropout`` or ``batch_normalization``, and one of
        scikit-learn's activations).

    Returns
    -------
    sklearn.neural_network.MLPClassifier or MLPRegressor
        A new fitted estimator with the same parameters (tfmlp's extra
        parameters are dropped), copies of the weights (including changes made
        through ``model_``) and fitted attributes, and the training state, so
        scikit-learn's ``partial_fit`` and ``warm_start=True`` ``fit`` continue
        as tfmlp would.

    Raises
    ------
    TypeError
        If ``est`` is not a tfmlp ``MLPClassifier``/``MLPRegressor``.
    sklearn.exceptions.NotFittedError
        If ``est`` is not fitted.
    ValueError
        If the network uses something scikit-learn's MLP cannot represent.
    """
    if isinstance(est, MLPClassifier):
        target_cls = SkMLPClassifier
    elif isinstance(est, MLPRegressor):
        target_cls = SkMLPRegressor
    else:
        hint = (
            " (it is already a scikit-learn estimator; from_sklearn converts the "
            "other way)"
            if isinstance(est, (SkMLPClassifier, SkMLPRegressor))
            else ""
        )
        raise TypeError(
            "to_sklearn expects a fitted tfmlp.MLPClassifier or "
            f"tfmlp.MLPRegressor, got {_type_name(est)}{hint}."
        )
    check_is_fitted(est, msg=_NOT_FITTED.format(fn="to_sklearn"))
    _check_representable(est)
    est._check_weight_shapes()  # (set by hand, perhaps)

    new = target_cls(**_params_for(target_cls, est.get_params(deep=False)))
    coefs = _copy_arrays(est.coefs_)  # the public property syncs model_ edits
    intercepts = _copy_arrays(est.intercepts_)
    new.coefs_ = coefs
    new.intercepts_ = intercepts
    _copy_fitted(est, new)
    new.n_layers_ = len(coefs) + 1  # (weights of other sizes set by hand)
    best = est.__dict__.get("_best_params", ())
    if best is None:  # tfmlp's "the best weights are the current ones"
        new._best_coefs = new.coefs_
        new._best_intercepts = new.intercepts_
    else:
        current = coefs + intercepts
        if [np.shape(a) for a in best] != [a.shape for a in current]:
            best = current  # none kept, or those of weights replaced by hand
        best = _copy_arrays(best)
        new._best_coefs = best[: len(coefs)]
        new._best_intercepts = best[len(coefs) :]
    optimizer = est.__dict__.get("_optimizer")
    if optimizer is not None:
        new._optimizer = _optimizer_to_sklearn(optimizer, coefs + intercepts)
    return new


def _check_representable(est) -> None:
    check_activation(est.activation)  # set_params checks nothing
    reasons = []
    if est.hidden_stack is not None:
        reasons.append("a custom hidden_stack")
    if est.dropout:
        reasons.append(f"dropout={est.dropout!r}")
    if est.batch_normalization:
        reasons.append("batch_normalization=True")
    if est.activation in EXTRA_ACTIVATIONS:
        reasons.append(f"activation={est.activation!r}")
    if est.__dict__.get("_keras_weights") is not None and not reasons:
        reasons.append(
            "a Keras hidden stack (fitted with hidden_stack, dropout "
            "or batch_normalization)"
        )
    if reasons:
        raise ValueError(
            "to_sklearn cannot convert this estimator: it uses "
            + ", ".join(reasons)
            + ", which scikit-learn's MLP cannot represent. Only networks with "
            "scikit-learn's architecture and activations ('identity', "
            "'logistic', 'tanh', 'relu') can be converted."
        )
    if getattr(est, "class_weight", None) is not None:
        warn(
            "to_sklearn drops class_weight: scikit-learn's MLPClassifier has no "
            "such parameter. The fitted weights are kept; further training in "
            "scikit-learn will not weight the classes."
        )


def _tfmlp_slots(opt) -> list[np.ndarray]:
    """The optimizer's slot values as NumPy arrays (variables read if built)."""
    return _copy_arrays(opt.__getstate__()["_slot_arrays"])


def _optimizer_to_sklearn(opt, params):
    slots = _tfmlp_slots(opt)
    if isinstance(opt, SGD):
        new = SGDOptimizer(
            params,
            opt.learning_rate_init,
            opt.lr_schedule,
            opt.momentum,
            opt.nesterov,
            opt.power_t,
        )
        new.velocities = _slots_like(slots, params)
    else:
        n = len(params)
        new = AdamOptimizer(
            params, opt.learning_rate_init, opt.beta_1, opt.beta_2, opt.epsilon
        )
        new.t = int(opt.t)
        new.ms = _slots_like(slots[:n], params)
        new.vs = _slots_like(slots[n:], params)
    # scikit-learn's Adam computes its rate with NumPy (np.float64), SGD's is
    # a Python float
    rate = float(opt.learning_rate)
    new.learning_rate = rate if isinstance(opt, SGD) else np.float64(rate)
    return new
