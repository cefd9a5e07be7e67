"""BaseMLP: parameters, validation and fitted attributes shared by both estimators.

The estimator owns the state; the numeric work is delegated to ``_training``
(compiled TensorFlow functions) and ``_lbfgs`` (SciPy's L-BFGS-B).
"""

from __future__ import annotations

import contextlib
import copy
import threading
import weakref
from abc import ABC, abstractmethod

import numpy as np
import tensorflow as tf
from sklearn.base import BaseEstimator, is_classifier
from sklearn.utils import TransformerTags, check_random_state
from sklearn.utils.validation import check_is_fitted

from tfmlp._compat import (
    _check_feature_names_in,
    _check_sample_weight,
    _SetOutputMixin,
    validate_data,
)
from tfmlp._custom import CustomNetwork
from tfmlp._data import (
    cpu_only,
    csr_rows,
    input_tensors,
    is_sparse,
    row_chunks,
    sparse_dot,
)
from tfmlp._extras import StandardStack, check_extras
from tfmlp._host_forward import host_forward, host_forward_ok, output_activation
from tfmlp._lbfgs import fit_lbfgs
from tfmlp._loop import memory_mapped, sparse_mode
from tfmlp._network import (
    Network,
    StandardForward,
    init_params,
    is_standard,
    with_both_classes,
)
from tfmlp._optimizers import SGD, Adam
from tfmlp._params import (
    BASE_CONSTRAINTS,
    STOCHASTIC_SOLVERS,
    NetSpec,
    WeightsMismatch,
    WeightsSumToZero,
    array_shape,
    check_weight_shapes,
    hidden_sizes,
    require_targets,
)
from tfmlp._precision import matmul_dtype
from tfmlp._stochastic import StochasticMixin
from tfmlp._streaming import (
    DatasetMixin,
    check_dataset_feature_names,
    is_dataset,
    predict_batches,
)
from tfmlp._training import predict_function, transform_function
from tfmlp._warn import warn

_PREDICT_CHUNK = 65536


def _weights_property(name: str, doc: str):
    def get(self):
        if name not in self.__dict__:
            raise AttributeError(
                f"{type(self).__name__!r} object has no attribute {name[1:] + '_'!r}"
            )
        try:
            self._sync_weights()
        except WeightsMismatch:  # the arrays as set; predict and fit say why
            pass
        return self.__dict__[name]

    def set_(self, value):
        # a tuple is kept as a list, as training and saving use them
        self.__dict__[name] = list(value) if isinstance(value, tuple) else value

    return property(get, set_, doc=doc)


def _weight_arrays(d: dict) -> list | None:
    """``coefs + intercepts`` as set on the estimator (its ``__dict__``), or
    None where either is no list (set to None by hand, say)."""
    coefs, intercepts = d["_coefs"], d["_intercepts"]
    if isinstance(coefs, list) and isinstance(intercepts, list):
        return coefs + intercepts
    return None


def _fits_variable(array, snap) -> bool:
    """Whether a weight array set on the estimator can be assigned to the
    variable whose values are ``snap``: numbers of its shape."""
    if array_shape(array) != snap.shape:  # (None for a ragged list)
        return False
    return np.asarray(array).dtype.kind in "biuf"


def _stack_mismatch(arrays, snap) -> WeightsMismatch:
    return WeightsMismatch(
        "coefs_/intercepts_ were set to arrays of other shapes "
        f"({[array_shape(a) for a in arrays]}) than the Dense layers of "
        f"the fitted Keras hidden stack ({[s.shape for s in snap]}): "
        "set arrays of those shapes (the fitted network is kept), "
        "or change the parameters and fit again."
    )


def _first_product_outside(X, model, sparse) -> bool:
    """Whether prediction takes the first layer's product outside the graph.

    On the CPU, for the standard network with a hidden layer: a CSR matrix
    is multiplied by SciPy on all cores (``_data.sparse_dot``), and a dense
    array by NumPy, which reads it in place where TensorFlow first copies it
    into an aligned tensor. MNIST float32 ``predict_proba``: dense 0.079 s
    against 0.106 s in the graph, CSR 0.075 s against 0.215 s with
    TensorFlow's CSR product (``benchmarks/ablations.py``). GPUs and Keras
    stacks keep the whole pass in the graph.
    """
    if not (is_standard(model) and model.spec.n_layers > 2 and cpu_only()):
        return False
    return sparse == "csr" or (not sparse and isinstance(X, np.ndarray))


_NUMBER_LISTS = ("loss_curve_", "validation_scores_")


def _copy_attribute(name: str, value):
    """A copy of a fitted attribute for ``_backup_state``.

    Attributes named neither ``_x`` nor ``x_`` are not the estimator's (a
    user's ``est.lock = threading.Lock()``): kept as they are, as training
    does not touch them (a deep copy may fail, or copy much at every call).
    """
    if name in _NUMBER_LISTS and isinstance(value, list):
        return list(value)  # floats: immutable
    if not (name.startswith("_") or name.endswith("_")):
        return value
    return copy.deepcopy(value)


class BaseMLP(StochasticMixin, DatasetMixin, _SetOutputMixin, BaseEstimator, ABC):
    """Base class of :class:`MLPClassifier` and :class:`MLPRegressor`."""

    _parameter_constraints: dict = dict(BASE_CONSTRAINTS)

    @abstractmethod
    def __init__(
        self,
        hidden_layer_sizes,
        activation,
        solver,
        alpha,
        batch_size,
        learning_rate,
        learning_rate_init,
        power_t,
        max_iter,
        loss,
        shuffle,
        random_state,
        tol,
        verbose,
        warm_start,
        momentum,
        nesterovs_momentum,
        early_stopping,
        validation_fraction,
        beta_1,
        beta_2,
        epsilon,
        n_iter_no_change,
        max_fun,
        callbacks=None,
        jit_compile=None,
        compute_dtype=None,
        hidden_stack=None,
        dropout=None,
        batch_normalization=False,
        distribute=None,
    ):
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.loss = loss
        self.hidden_layer_sizes = hidden_layer_sizes
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.max_fun = max_fun
        self.callbacks = callbacks
        self.jit_compile = jit_compile
        self.compute_dtype = compute_dtype
        self.hidden_stack = hidden_stack
        self.dropout = dropout
        self.batch_normalization = batch_normalization
        self.distribute = distribute

    # ------------------------------------------------------------------ weights
    coefs_ = _weights_property("_coefs", "Weight matrices, one per layer.")
    intercepts_ = _weights_property("_intercepts", "Bias vectors, one per layer.")

    def __sklearn_is_fitted__(self) -> bool:
        return "_coefs" in self.__dict__ and hasattr(self, "n_outputs_")

    def _sync_weights(self) -> None:
        """Reconcile the NumPy weight lists with the TensorFlow variables.

        Whichever side changed since the last synchronisation wins (NumPy
        first): so ``coefs_`` edited in place and weights changed through
        ``model_`` (Keras) are both seen by the estimator. The variables are
        read back only while training runs or once Keras holds them
        (``net.exposed``): otherwise the estimator's own code wrote them last
        and synchronised after it. Afterwards the arrays equal the variables
        (``_forward`` predicts small inputs from the arrays).
        """
        with _weights_if_free(self) as free:
            # else another thread trains this estimator (or synchronises it):
            # only it writes
            if free:
                self._sync_weights_locked()

    def _sync_weights_locked(self) -> None:
        net = self.__dict__.get("_net")
        if net is None:
            self._forget_optimizer_of_other_weights()
            return
        arrays = _weight_arrays(self.__dict__)
        if arrays is None:
            if net.custom:  # its Keras weights are kept
                check_weight_shapes(self._coefs, self._intercepts, chain=False)
            self.__dict__["_net"] = None  # the network is built from them,
            return  # and checked, on demand
        snap = net.snapshot()
        if len(arrays) != len(snap) or not all(map(_fits_variable, arrays, snap)):
            if net.custom:  # the stack's layers fix the shapes: keep it
                raise _stack_mismatch(arrays, snap)
            if self.__dict__.get("_fitting") == "training":  # (by a callback)
                raise ValueError(
                    "coefs_/intercepts_ were set to arrays of other shapes "
                    f"({[array_shape(a) for a in arrays]}) while the network "
                    f"({[s.shape for s in snap]}) trains: set weights of the "
                    "same shapes, or change hidden_layer_sizes and fit again."
                )
            self.__dict__["_net"] = None  # replaced by hand: rebuild on demand
            self._forget_optimizer_of_other_weights()
            return
        if not all(_same_values(a, s) for a, s in zip(arrays, snap)):
            if net.custom:
                net.check_biases(self.__dict__["_intercepts"])
            net.assign(arrays)
            return
        if not (net.exposed or self.__dict__.get("_fitting") == "training"):
            return  # every other writer of the variables synchronised after it
        current = net.read()
        if not all(_same_values(c, s) for c, s in zip(current, snap)):
            self._store_weights(net.mark_synced())

    def _arrays_to_read(self, net) -> tuple[list, list]:
        """The weight arrays to predict with: the estimator's (synchronised
        by ``_network``), or, while another thread trains it, the variables'
        current values."""
        with _weights_if_free(self) as free:
            if free:
                return self.__dict__["_coefs"], self.__dict__["_intercepts"]
        arrays = net.read()
        n = len(arrays) // 2
        return arrays[:n], arrays[n:]

    def _store_weights(self, arrays: list[np.ndarray]) -> None:
        n = len(arrays) // 2
        self.__dict__["_coefs"] = [a.copy() for a in arrays[:n]]
        self.__dict__["_intercepts"] = [a.copy() for a in arrays[n:]]

    def _network(self, strategy=None) -> Network:
        """The TensorFlow variables for the current weights (built on demand).

        With a ``tf.distribute`` strategy the variables are (re)built mirrored
        in its scope. While another thread trains the estimator, its variables
        (or, before it has built them, variables made for this call only).
        """
        with _weights_if_free(self) as free:
            if not free:  # another thread trains it
                net = self.__dict__.get("_net")
                return self._build_network(strategy) if net is None else net
            self._sync_weights()
            net = self.__dict__.get("_net")
            self._check_strategy(net, strategy)
            if net is None or (strategy is not None and net.strategy is not strategy):
                net = self.__dict__["_net"] = self._build_network(strategy)
            return net

    def _check_strategy(self, net, strategy) -> None:
        if strategy is not None and net is not None:
            if net.custom:
                raise ValueError(
                    "Training under a tf.distribute strategy supports the standard "
                    "network only, not hidden_stack / dropout / batch_normalization."
                )

    def _check_weight_shapes(self) -> None:
        """``check_weight_shapes`` of the estimator's arrays, for its fitted
        inputs and outputs."""
        d = self.__dict__
        check_weight_shapes(
            d["_coefs"], d["_intercepts"], d.get("n_features_in_"), d.get("n_outputs_")
        )

    def _build_network(self, strategy) -> Network:
        """Variables holding the weight arrays (not stored on the estimator)."""
        stack = self.__dict__.get("_keras_weights") is not None
        if stack:  # (a stack's Dense layers need not chain)
            check_weight_shapes(self._coefs, self._intercepts, chain=False)
        else:
            self._check_weight_shapes()
        coefs = [np.asarray(c) for c in self.__dict__["_coefs"]]
        intercepts = [np.asarray(b) for b in self.__dict__["_intercepts"]]
        dtype = coefs[0].dtype
        if dtype not in (np.float32, np.float64):
            dtype = np.float64
        if stack:
            net = self._build_custom(dtype)
            net.load_full_state(self.__dict__["_keras_weights"])
            if len(coefs) == net.n_weights:
                snap = net.snapshot()
                if not all(map(_fits_variable, coefs + intercepts, snap)):
                    raise _stack_mismatch(coefs + intercepts, snap)
                net.assign(coefs + intercepts)
            else:  # saved by a version that found fewer Dense layers:
                # the Keras weights hold them all
                self._store_weights(net.mark_synced())
        else:
            net = Network(
                [c.astype(dtype) for c in coefs],
                [b.astype(dtype) for b in intercepts],
                strategy,
            )
        return net

    def _uses_keras_stack(self) -> bool:
        return (
            self.hidden_stack is not None
            or bool(self.dropout)
            or bool(self.batch_normalization)
        )

    def _stack_builder(self):
        """What builds the Keras hidden stack the parameters describe: the
        ``hidden_stack`` callable, a ``StandardStack`` for dropout / batch
        normalisation, or None (the standard network)."""
        if self.hidden_stack is None and (self.dropout or self.batch_normalization):
            return StandardStack(
                hidden_sizes(self.hidden_layer_sizes),
                self.activation,
                self.dropout,
                self.batch_normalization,
                self.__dict__.get("_stack_seed", 0),
            )
        return self.hidden_stack

    def _build_custom(self, dtype) -> CustomNetwork:
        # the stack the weights were trained with, even if set_params has
        # changed the parameters since (unknown after tfmlp.load, which
        # takes hidden_stack from its caller)
        builder = self.__dict__.get("_fitted_stack") or self._stack_builder()
        if not callable(builder):
            raise ValueError(
                "This estimator was fitted with a Keras hidden stack; set the same "
                "'hidden_stack' (or dropout / batch_normalization) again to "
                "rebuild it."
            )
        return CustomNetwork(
            builder,
            self.n_features_in_,
            self.n_outputs_,
            self.out_activation_,
            dtype,
            seed=self.__dict__.get("_stack_seed", 0),
        )

    def _forward_model(self, net):
        return net.forward_model(
            self.activation, self.out_activation_, loss=self._objective()
        )

    def _objective(self) -> str:
        """The reported loss, chosen as scikit-learn's ``_backprop`` chooses it
        (also for an ``out_activation_`` a user set after fit): a classifier's
        log-loss (binary with a logistic output), a regressor's ``loss``."""
        if is_classifier(self):
            return (
                "binary_log_loss" if self.out_activation_ == "logistic" else "log_loss"
            )
        return self.loss

    def _train_model(self, net):
        """The forward model of training: under a mixed ``compute_dtype`` the
        standard network's products run in float16/bfloat16 (``_precision``);
        prediction keeps ``_forward_model`` (float32)."""
        dtype = matmul_dtype(self.compute_dtype)
        if dtype is None or net.custom:
            return self._forward_model(net)
        return net.forward_model(
            self.activation, self.out_activation_, dtype, loss=self._objective()
        )

    def _set_trained_weights(self, arrays: list[np.ndarray]) -> None:
        """Store weights produced by training into both NumPy and the network."""
        net = self.__dict__.get("_net")
        fits = (
            net is not None
            and net.dtype == arrays[0].dtype
            and net.shapes() == [a.shape for a in arrays]
        )
        if fits:
            net.assign(arrays)
        self._store_weights(arrays)
        if not fits:
            # a network in the weights' dtype and shapes now, not at the first
            # prediction (which would then change the estimator's __dict__)
            self.__dict__["_net"] = None
            self._network()

    def _params_from_network(self, net: Network) -> None:
        """Copy the trained variables into the NumPy lists (no reconciliation)."""
        self._store_weights(net.mark_synced())

    def __getstate__(self):
        try:
            self._sync_weights()
        except WeightsMismatch as exc:
            raise WeightsMismatch(
                f"Cannot copy, pickle or save this {type(self).__name__}: {exc}"
            ) from None
        # a copy: for non-sklearn modules BaseEstimator returns __dict__ itself
        state = dict(super().__getstate__())
        state.pop("_fitting", None)  # a copy taken during fit is not training
        net = state.pop("_net", None)
        if net is not None and net.custom:
            state["_keras_weights"] = net.full_state()
        fitted = state.get("_fitted_stack")
        if fitted is not None and fitted == self._stack_builder():
            del state["_fitted_stack"]  # the parameters describe it
        return state

    def __copy__(self):
        """``copy.copy``: the parameters are shared, as in any shallow copy,
        the fitted state is not. Training the copy (``partial_fit``,
        ``warm_start``) leaves the original exactly as it was, optimizer
        state included (a shallow copy of a scikit-learn MLP shares its
        weight arrays, so the two train each other). Keras layers made
        before a ``hidden_stack`` callable builds on them are parameters too:
        shared, with their weights, by the copy."""
        state = self.__getstate__()
        params = self.get_params(deep=False)
        fitted = {k: v for k, v in state.items() if k not in params}
        state.update(copy.deepcopy(fitted))
        new = type(self).__new__(type(self))
        new.__setstate__(state)
        return new

    def __setstate__(self, state):
        super().__setstate__(state)
        if state.get("_keras_weights") is not None and "_fitted_stack" not in state:
            self.__dict__["_fitted_stack"] = self._stack_builder()

    # --------------------------------------------------------------- the model
    @property
    def model_(self):
        """The fitted network as a functional ``keras.Model``.

        It maps raw features to what ``predict_proba`` returns (classifier; a
        binary classifier's network ends in P(class 1), and the model adds
        the ``1 - p`` column before it) or ``predict`` returns (regressor).
        It holds the very variables the
        estimator trains and predicts with: weights changed through Keras
        (``model_.fit``, ``layer.set_weights``) are seen by the estimator, and
        later ``partial_fit`` and ``fit(warm_start=True)`` calls train this
        same model; a fit that starts over (``warm_start=False``) builds a new
        network, so read ``model_`` again after it. Read while another
        thread trains the estimator, it is a model over a copy of the
        weights as they are then (the training keeps its own variables).
        """
        check_is_fitted(self)
        with _weights_if_free(self) as free:
            net = self._network()
            if (
                not free
                and not net.custom
                and not net.has_keras_model(self.activation, self.out_activation_)
            ):  # building it would swap the variables the other thread trains
                arrays = net.read()
                n = len(arrays) // 2
                net = Network(arrays[:n], arrays[n:])
            model = net.keras_model(
                self.activation, self.out_activation_, self.n_features_in_
            )
        if self._binary_proba():  # the network's one column is P(class 1)
            return with_both_classes(model)
        return model

    def _binary_proba(self) -> bool:
        """Whether ``predict_proba`` adds a ``1 - p`` column to the network's
        output (a binary classifier)."""
        return False

    def _forward(self, X, make_function=predict_function) -> np.ndarray:
        """Output activations for validated X (dense or sparse), in chunks."""
        net = self._network()
        sparse = is_sparse(X)
        model = self._forward_model(net)
        if sparse:
            X = X.tocsr()
            sparse = sparse_mode(model)
        coefs, intercepts = self._arrays_to_read(net)
        hidden = make_function is transform_function
        if self._promotes(X, net):
            if host_forward_ok(X, model, coefs, any_size=True):
                return host_forward(
                    X, coefs, intercepts, model.spec, np.float64, hidden
                )
            X = X.astype(np.float32)  # a Keras stack: float32, reported as float64
            return self._forward(X, make_function).astype(np.float64)
        if host_forward_ok(X, model, coefs):  # few rows: NumPy, no graph call
            return host_forward(X, coefs, intercepts, model.spec, net.dtype, hidden)
        if _first_product_outside(X, model, sparse):
            W1 = np.asarray(coefs[0], dtype=net.dtype)
            out = self._forward_first_product(X, W1, net, model, make_function)
        else:
            fn = make_function(model, sparse)
            outputs = []
            for rows in row_chunks(X.shape[0], _PREDICT_CHUNK):
                x = input_tensors(X[rows], net.dtype)
                n_rows = tf.constant(rows.stop - rows.start, tf.int64)
                outputs.append(fn(net.variables, x, n_rows).numpy())
            out = np.concatenate(outputs, axis=0)
        if hidden:
            return out
        return output_activation(out, model.spec.out_activation)  # of logits

    def _promotes(self, X, net) -> bool:
        """Whether scikit-learn would compute this float32 network's outputs
        in float64: for input whose ``X @ coefs_`` promotes (float64, int32,
        int64; not bool, int8/16 or float16, which NumPy keeps in float32).
        Not under ``compute_dtype``, whose networks predict in float32."""
        return (
            self.compute_dtype is None
            and net.dtype == np.float32
            and np.result_type(X.dtype, np.float32) != np.float32  # bool: no
        )

    def _forward_first_product(self, X, W1, net, model, make_function) -> np.ndarray:
        """``_forward`` with the first layer's product ``X @ W1`` taken by
        SciPy/NumPy (see ``_first_product_outside``; ``W1`` the synchronised
        array) and the rest of the network compiled."""
        fn = make_function(model, "product")
        outputs = []
        for rows in row_chunks(X.shape[0], _PREDICT_CHUNK):  # cast chunk by chunk
            if is_sparse(X):
                part = csr_rows(X, rows.start, rows.stop)
                h = sparse_dot(part.astype(W1.dtype, copy=False), W1)
            else:
                h = X[rows].astype(W1.dtype, copy=False) @ W1
            n_rows = tf.constant(rows.stop - rows.start, tf.int64)
            outputs.append(fn(net.variables, tf.constant(h), n_rows).numpy())
        return np.concatenate(outputs, axis=0)

    def transform(self, X):
        """Activations of the last hidden layer: the network as an embedding.

        Lets a fitted MLP act as a feature step in a Pipeline (not a
        scikit-learn method). Without hidden layers the input is returned.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data, or a ``tf.data.Dataset`` of ``X`` or
            ``(X, y, ...)`` batches.

        Returns
        -------
        X_hidden : ndarray of shape (n_samples, n_hidden_units)
            Last hidden layer activations (inference mode: no dropout).
        """
        check_is_fitted(self)
        if is_dataset(X):  # batch by batch, as predict takes a dataset
            check_dataset_feature_names(self, X)
            return predict_batches(X, self.n_features_in_, self._transform_batch)[0]
        X = validate_data(self, X, accept_sparse=["csr", "csc"], reset=False)
        return self._forward(X, transform_function)

    def _transform_batch(self, x: np.ndarray) -> np.ndarray:
        # any numeric dtype, as validate_data leaves an array's: ``_forward``
        # computes in the dtype scikit-learn's NumPy promotion gives
        return self._forward(np.asarray(x), transform_function)

    def fit_transform(self, X, y=None, **fit_params):
        """Fit, then return :meth:`transform` of the training data.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features) or \
                tf.data.Dataset
            The input data, or a dataset of ``(X, y[, sample_weight])``
            batches (as :meth:`fit` takes it).
        y : array-like of shape (n_samples,) or (n_samples, n_outputs), \
                default=None
            The targets; None when ``X`` is a dataset.
        **fit_params : dict
            Passed to :meth:`fit` (``sample_weight``, ``validation_data``,
            and a classifier's ``classes`` for a dataset).

        Returns
        -------
        X_hidden : ndarray of shape (n_samples, n_hidden_units)
            Last hidden layer activations.
        """
        return self.fit(X, y, **fit_params).transform(X)

    def get_feature_names_out(self, input_features=None):
        """Names of the :meth:`transform` outputs: ``"<classname>0"``, ...

        Parameters
        ----------
        input_features : array-like of str or None, default=None
            Only checked, as scikit-learn's transformers check it: if given,
            it must equal ``feature_names_in_`` (or have ``n_features_in_``
            names when the estimator saw none).

        Returns
        -------
        feature_names_out : ndarray of str objects
            One name per last-hidden-layer unit.
        """
        check_is_fitted(self)
        _check_feature_names_in(self, input_features, generate_names=False)
        n_out = self.coefs_[-1].shape[0]
        prefix = type(self).__name__.lower()
        return np.asarray([f"{prefix}{i}" for i in range(n_out)], dtype=object)

    def _forward_pass_fast(self, X, check_input: bool = True) -> np.ndarray:
        if is_dataset(X):
            return self._forward_dataset(X)[0]
        if check_input:
            X = validate_data(self, X, accept_sparse=["csr", "csc"], reset=False)
        return self._forward(X)

    # --------------------------------------------------------------- training
    def _fit(
        self,
        X,
        y,
        sample_weight=None,
        incremental=False,
        validation_data=None,
        classes=None,
        setup=None,
    ):
        """Train; on any error the estimator is left exactly as it was.

        While training runs, ``_fitting`` tells ``_sync_weights`` that the
        variables change (for callbacks and validation that read the weights).
        ``setup()`` runs first, under the same lock and error guard (a
        classifier's first ``partial_fit`` call setting its classes).
        """
        if not is_dataset(X):
            require_targets(self, y, "partial_fit" if incremental else "fit")
        if self.__dict__.get("_fitting"):
            raise RuntimeError(
                f"This {type(self).__name__} is being trained: fit/partial_fit "
                "cannot be called on it again until that training ends (from "
                "one of its callbacks, or another thread). Train a copy "
                "(sklearn.clone(est)) instead."
            )
        # held while training: the weights are synchronised by this thread
        # only (a predict in another thread must not write stale arrays back)
        with _weights_lock(self):
            self.__dict__["_fitting"] = True
            try:
                return self._fit_guarded(
                    X, y, sample_weight, incremental, validation_data, classes, setup
                )
            finally:
                self.__dict__.pop("_fitting", None)

    def _fit_guarded(
        self, X, y, sample_weight, incremental, validation_data, classes, setup=None
    ):
        backup = self._backup_state()
        # a RandomState given as random_state is drawn from in place
        rng = self.random_state
        rng_state = rng.get_state() if isinstance(rng, np.random.RandomState) else None
        try:
            if setup is not None:
                setup()
            return self._fit_unguarded(
                X, y, sample_weight, incremental, validation_data, classes
            )
        except BaseException:
            self._restore_state(backup)
            if rng_state is not None:
                rng.set_state(rng_state)
            raise

    def _backup_state(self) -> dict:
        """Copies of every fitted (non-parameter) attribute.

        Lists of numbers that training appends to are copied shallowly (a
        deep copy of a long ``loss_curve_`` made every ``partial_fit`` call
        slower than the last); the standard network's state is the copy of
        its synchronised weight arrays (no second read of the variables).
        """
        try:
            self._sync_weights()
        except WeightsMismatch:  # kept as set: a fit that starts over may
            pass  # replace them, a continued one reports them
        params = self.get_params(deep=False)
        # kept as they are: the network (its state is saved below), the
        # generator, and the user's stack builder (compared by identity)
        keep = ("_net", "_random_state", "_fitted_stack")
        backup = {
            k: (v if k in keep else _copy_attribute(k, v))
            for k, v in self.__dict__.items()
            if k not in params
        }
        net = backup.get("_net")
        if net is not None:
            backup["_net_state"] = (
                net.full_state()
                if net.custom
                else backup["_coefs"] + backup["_intercepts"]
            )
        return backup

    def _restore_state(self, backup: dict) -> None:
        """Put back what ``_backup_state`` copied. The backed-up attributes
        are written over in one ``dict.update`` before the ones the failed
        call added are removed: another thread reading the estimator (a
        predict, a pickle) never finds a fitted attribute missing."""
        backup = dict(backup)
        net_state = backup.pop("_net_state", None)
        params = self.get_params(deep=False)
        self.__dict__.update(backup)
        for key in [k for k in self.__dict__ if k not in params and k not in backup]:
            self.__dict__.pop(key, None)
        net = backup.get("_net")
        if net is not None:  # training changed the variables in place: undo
            net.load_full_state(net_state)

    def _fit_unguarded(
        self, X, y, sample_weight, incremental, validation_data, classes
    ):
        check_extras(self)
        if self.distribute is not None:
            # before anything here runs TensorFlow: a multi-worker strategy
            # configures the cluster's collective ops only then
            from tfmlp._distribute import resolve_strategy

            resolve_strategy(self.distribute)
        hidden = hidden_sizes(self.hidden_layer_sizes)
        first_pass = "_coefs" not in self.__dict__ or (
            not self.warm_start and not incremental
        )
        if not first_pass:
            self._check_same_hidden_layers(hidden)
        if is_dataset(X):
            y, targets, n_features, dtype = self._validate_dataset(
                X, y, sample_weight, first_pass, incremental, classes
            )
        else:
            labels = y  # class_weight weighs the labels as given
            X, y = self._validate_input(X, y, incremental, reset=first_pass)
            if sample_weight is not None:  # checked before class weights
                # multiply it; scikit-learn's dtype (float32 kept, else
                # float64: it sets the reported loss's type); the runners
                # cast to the training dtype
                sample_weight = _check_sample_weight(sample_weight, X)
            sample_weight = self._class_weights(labels, sample_weight, incremental)
            n_features, dtype = X.shape[1], X.dtype
            if self.compute_dtype is not None and X.dtype != np.float32:
                dtype = np.dtype(np.float32)  # opt-in speed modes: float32 weights
                if not (self.solver in STOCHASTIC_SOLVERS and memory_mapped(X)):
                    X = X.astype(np.float32)  # else cast chunk by chunk
            if y.ndim == 1:
                y = y.reshape((-1, 1))
        if not first_pass and y.shape[1] != self.n_outputs_:
            raise ValueError(
                f"y has {y.shape[1]} output(s) but this {type(self).__name__} "
                f"was fitted with {self.n_outputs_}; fit with warm_start=False "
                "to train a network with a different number of outputs."
            )
        self.n_outputs_ = y.shape[1]
        layer_units = [n_features, *hidden, self.n_outputs_]
        self._random_state = check_random_state(self.random_state)
        if first_pass:
            self._initialize(y, layer_units, dtype)
        if is_dataset(X):
            y = targets
        if self.solver in STOCHASTIC_SOLVERS:
            self._start_stochastic_state()
            self._fit_stochastic(X, y, sample_weight, incremental, validation_data)
        else:
            if validation_data is not None:  # as early_stopping, which it serves
                self._check_validation(validation_data)  # bad data still refused
                warn(
                    "validation_data is scored after the epochs of solver='adam' "
                    "and 'sgd'; solver='lbfgs' has no epochs and ignores it."
                )
            self._fit_lbfgs(X, y, sample_weight)
        weights = self.__dict__["_coefs"] + self.__dict__["_intercepts"]
        if not all(np.isfinite(w).all() for w in weights):
            raise ValueError(
                "Solver produced non-finite parameter weights. The input data may"
                " contain large values and need to be preprocessed."
            )
        loss = getattr(self, "loss_", None)
        # with early stopping the best (finite) weights are restored: a
        # diverged run still ends with a usable model (scikit-learn's
        # test_mlp_diverging_loss)
        if loss is not None and not np.isfinite(loss) and not self.early_stopping:
            raise ValueError(
                f"Solver produced a non-finite loss ({loss}). The input data may"
                " contain large values and need to be preprocessed."
            )
        return self

    def _check_same_hidden_layers(self, hidden: list[int]) -> None:
        """Refuse to continue a network whose hidden layers differ from what
        the parameters describe (``hidden_layer_sizes``, or ``hidden_stack`` /
        ``dropout`` / ``batch_normalization`` / ``activation`` for a Keras
        stack, changed by ``set_params`` since the fit), where scikit-learn
        fails with an unrelated error or trains a mispacked network.

        As scikit-learn, adam and sgd keep training the fitted standard
        network when only the sizes of its hidden layers changed (with a
        warning here)."""
        if self.__dict__.get("_keras_weights") is not None:
            self._check_same_stack()
            return
        self._check_weight_shapes()  # (set by hand since, perhaps)
        if self._uses_keras_stack():
            raise ValueError(
                "This estimator was fitted with the standard network, and "
                "hidden_stack / dropout / batch_normalization now ask for a Keras "
                "hidden stack: warm_start=True and partial_fit continue training "
                "the fitted network. Set warm_start=False and call fit to train "
                "a new network, or set those parameters back."
            )
        fitted = [c.shape[1] for c in self.__dict__["_coefs"][:-1]]
        if fitted == list(hidden):
            return
        if self.solver in STOCHASTIC_SOLVERS and len(fitted) == len(hidden):
            # scikit-learn keeps training the fitted layers here (no error):
            # the same, said aloud
            warn(
                f"hidden_layer_sizes={self.hidden_layer_sizes!r} differs from the "
                f"fitted network's hidden layers {tuple(fitted)}: warm_start=True "
                "and partial_fit continue training the fitted network, as "
                "scikit-learn does, and ignore the change. Set warm_start=False "
                "and call fit to train a new network."
            )
            return
        raise ValueError(
            f"hidden_layer_sizes={self.hidden_layer_sizes!r} does not match "
            f"the fitted network's hidden layers {tuple(fitted)}: "
            "warm_start=True and partial_fit continue training the fitted "
            "network. Set warm_start=False and call fit to train a new "
            "network, or set hidden_layer_sizes back."
        )

    def _check_same_stack(self) -> None:
        """The Keras hidden stack the parameters describe is the fitted one
        (not checked after ``tfmlp.load``, whose caller passes the stack)."""
        fitted = self.__dict__.get("_fitted_stack")
        # a user's callable compares by identity unless it defines ==
        if fitted is not None and fitted != self._stack_builder():
            raise ValueError(
                "hidden_stack / dropout / batch_normalization / activation / "
                "hidden_layer_sizes no longer describe the fitted Keras hidden "
                "stack: warm_start=True and partial_fit continue training the "
                "fitted network. Set warm_start=False and call fit to train a "
                "new network, or set the parameters back."
            )

    def _initialize(self, y, layer_units: list[int], dtype) -> None:
        self.n_iter_ = 0
        self.t_ = 0
        self.n_outputs_ = y.shape[1]
        self.n_layers_ = len(layer_units)
        self.out_activation_ = self._output_activation()
        self.__dict__.pop("validation_loss_curve_", None)  # a new curve
        self.__dict__["_net"] = None
        self.__dict__["_keras_weights"] = None
        self.__dict__.pop("_fitted_stack", None)
        if self._uses_keras_stack():
            # drawn from a copy: the initial weights and the batch order are
            # the standard network's for the same random_state
            draw = copy.deepcopy(self._random_state).randint(2**31 - 1)
            self.__dict__["_stack_seed"] = int(draw)
            net = self._build_custom(dtype)
            self.__dict__["_fitted_stack"] = self._stack_builder()
            net.init_dense(self._random_state, self.activation)
            self.__dict__["_net"] = net
            self.__dict__["_keras_weights"] = net.full_state()
            self.n_layers_ = net.n_weights + 1
            self._store_weights(net.mark_synced())
        else:
            coefs, intercepts = init_params(
                self._random_state, layer_units, self.activation, dtype
            )
            self._store_weights(coefs + intercepts)
        self._best_params = self._network().full_state()
        self._forget_other_optimizer()
        if self.solver in STOCHASTIC_SOLVERS:  # started afresh by the fit
            self.__dict__.pop("loss_curve_", None)

    def _forget_other_optimizer(self) -> None:
        """A new network keeps an earlier fit's optimizer only where its slots
        fit the new weights: scikit-learn keeps it (through an lbfgs fit too)
        and a later ``partial_fit`` continues it; slots of other shapes (new
        layer sizes) are dropped, where scikit-learn's ``partial_fit`` fails.
        The float16 loss scale always starts afresh with a new network."""
        if self._keep_optimizer_if_fits([v.shape for v in self._network().variables]):
            self._optimizer.reset_loss_scale()

    def _forget_optimizer_of_other_weights(self) -> None:
        """Weights of other shapes set by hand (``coefs_``) are a new
        network's: an optimizer whose slots no longer fit them is dropped,
        so training, ``save`` and ``to_sklearn`` start a new one (a Keras
        stack's optimizer has a slot per Keras variable: kept)."""
        d = self.__dict__
        if "_optimizer" in d and "_coefs" in d and d.get("_keras_weights") is None:
            arrays = _weight_arrays(d)
            if arrays is not None:  # (else checked before any use)
                self._keep_optimizer_if_fits([array_shape(a) for a in arrays])

    def _keep_optimizer_if_fits(self, shapes) -> bool:
        """Drop the optimizer unless its slots are those of parameters of
        these ``shapes``; whether one is kept."""
        opt = self.__dict__.get("_optimizer")
        if opt is not None and not opt.fits(shapes):
            del self.__dict__["_optimizer"]
            return False
        return opt is not None

    def _start_stochastic_state(self) -> None:
        """Start what the stochastic solvers keep between epochs, where it is
        missing: all of it on a first fit; on a continued one (``warm_start``,
        ``partial_fit``) what the fit before did not create: an lbfgs fit
        keeps no loss curve, a fit without early stopping no validation
        scores (scikit-learn fails on both continuations with an
        AttributeError)."""
        if self.__dict__.get("loss_curve_") is None:
            self.loss_curve_ = []
            self.history_ = {}
            self._no_improvement_count = 0
            self.best_loss_ = None if self.early_stopping else np.inf
            self.validation_scores_ = None
            self.best_validation_score_ = None
        if self.early_stopping and self.__dict__.get("validation_scores_") is None:
            self.validation_scores_ = []
            self.best_validation_score_ = -np.inf

    def _make_optimizer(self, params: list[np.ndarray]):
        if self.solver == "sgd":
            return SGD(
                params,
                self.learning_rate_init,
                self.learning_rate,
                self.momentum,
                self.nesterovs_momentum,
                self.power_t,
            )
        return Adam(
            params, self.learning_rate_init, self.beta_1, self.beta_2, self.epsilon
        )

    def _fit_lbfgs(self, X, y, sample_weight) -> None:
        if self.distribute is not None or tf.distribute.has_strategy():
            raise ValueError(
                "solver='lbfgs' does not train under a tf.distribute strategy "
                "(distribute= or a strategy's scope): it optimises on one "
                "device through SciPy. Use solver='adam' or 'sgd' to distribute."
            )
        if self.__dict__.get("_keras_weights") is not None:
            raise ValueError(
                "This estimator was fitted with a Keras hidden stack, which "
                "solver='lbfgs' does not support; use solver='adam' or 'sgd'."
            )
        if getattr(self, "callbacks", None):
            warn(
                "callbacks are called by the epochs of solver='adam' and 'sgd'; "
                "solver='lbfgs' has no epochs and does not call them."
            )
        # in their dtype: SciPy evaluates the objective in it
        weights = self.__dict__["_coefs"] + self.__dict__["_intercepts"]
        params = [np.asarray(a) for a in weights]
        loss_type = self._loss_type(X, y, sample_weight)  # scikit-learn's
        if sample_weight is None:
            sample_weight = np.ones(X.shape[0])
        elif np.sum(sample_weight) == 0:
            raise WeightsSumToZero(
                "Weights sum to zero, can't be normalized: solver='lbfgs' "
                "weighs all samples at once and their weights sum to 0."
            )
        arrays, loss, n_iter = fit_lbfgs(
            params,
            X,
            y,
            sample_weight,
            StandardForward(
                NetSpec.create(
                    self.n_layers_,
                    self.activation,
                    self.out_activation_,
                    loss=self._objective(),
                )
            ),
            alpha=float(self.alpha),
            max_iter=self.max_iter,
            max_fun=self.max_fun,
            tol=self.tol,
        )
        self.n_iter_ = n_iter
        self.loss_ = loss if loss_type is None else loss_type(loss)
        self._set_trained_weights(arrays)

    def _class_weights(self, y, sample_weight, incremental: bool):
        return sample_weight  # the classifier applies ``class_weight``

    def _check_solver(self) -> bool:
        if self.solver not in STOCHASTIC_SOLVERS:
            raise AttributeError(
                "partial_fit is only available for stochastic"
                " optimizers. %s is not stochastic." % self.solver
            )
        return True

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        # ``transform`` (the last hidden layer) makes the MLP usable as a
        # feature step; its output keeps the training dtype, which lbfgs
        # makes float64 (as scikit-learn's L-BFGS does) and compute_dtype
        # float32 for the stochastic solvers
        if self.solver == "lbfgs":
            preserved = ["float64"]
        elif self.compute_dtype is not None:
            preserved = ["float32"]
        else:
            preserved = ["float64", "float32"]
        tags.transformer_tags = TransformerTags(preserves_dtype=preserved)
        return tags

    @abstractmethod
    def _output_activation(self) -> str: ...

    @abstractmethod
    def _validate_input(self, X, y, incremental, reset): ...

    @abstractmethod
    def _decode(self, raw): ...

    @abstractmethod
    def _encode_targets(self, y): ...

    @abstractmethod
    def _check_validation_targets(self, y): ...

    def _checked_forward(self, X) -> np.ndarray:
        check_is_fitted(self)
        return self._forward_pass_fast(X)


def _same_values(a, b) -> bool:
    """``a`` equals ``b``, NaN equal to NaN. The plain comparison first: with
    ``equal_nan`` NumPy masks copies of both arrays, ~8x slower, and every
    prediction compares all the weights (a 76 MB first layer: ~40 ms)."""
    return bool(np.array_equal(a, b) or np.array_equal(a, b, equal_nan=True))


_LOCKS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_LOCKS_LOCK = threading.Lock()


def _weights_lock(estimator) -> threading.RLock:
    """The estimator's lock over its weights (not an attribute: copies and
    pickles of the estimator never see it)."""
    with _LOCKS_LOCK:
        lock = _LOCKS.get(estimator)
        if lock is None:
            lock = _LOCKS[estimator] = threading.RLock()
        return lock


@contextlib.contextmanager
def _weights_if_free(estimator):
    """Holds the estimator's weights lock if no other thread does (a fit
    holds it throughout); yields whether it got it, never waits."""
    lock = _weights_lock(estimator)
    free = lock.acquire(blocking=False)
    try:
        yield free
    finally:
        if free:
            lock.release()
