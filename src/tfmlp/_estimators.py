"""MLPClassifier and MLPRegressor: scikit-learn's API over TensorFlow training."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from sklearn.base import ClassifierMixin, RegressorMixin
from sklearn.exceptions import DataConversionWarning
from sklearn.metrics import accuracy_score, r2_score
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils import column_or_1d
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import type_of_target, unique_labels
from sklearn.utils.validation import check_array, check_is_fitted

from tfmlp._base import BaseMLP
from tfmlp._compat import _fit_context, validate_data
from tfmlp._extras import class_sample_weight
from tfmlp._params import (
    CLASSIFIER_CONSTRAINTS,
    REGRESSOR_CONSTRAINTS,
    require_targets,
)
from tfmlp._streaming import StreamTargets, is_dataset, label_encoder, training_spec
from tfmlp._warn import warn


def _same_labels(classes, labels) -> bool:
    """Whether ``classes`` (any order) are exactly the sorted ``labels``."""
    try:
        return np.array_equal(unique_labels(classes), labels)
    except (TypeError, ValueError):  # mixed or unorderable label types
        return False


def _check_classes_of_y(y, classes) -> None:
    """``fit(X, y, classes=...)`` with arrays: the classes are the labels of
    ``y`` (as in scikit-learn), so ``classes`` may only repeat them; a
    different list is an error, not silently ignored."""
    try:
        labels = unique_labels(y)
    except (TypeError, ValueError):
        return  # fit reports what is wrong with y
    if not _same_labels(classes, labels):
        raise ValueError(
            f"classes={classes!r} does not match the labels of y {labels!r}. "
            "With array input the classes are the labels found in y; classes= "
            "is for a tf.data.Dataset, whose labels cannot be scanned first "
            "(partial_fit takes classes= for arrays)."
        )


def _check_multilabel_classes(classes, n_labels: int) -> None:
    """A dataset's label-indicator y names its classes by column: 0..n-1."""
    if not _same_labels(classes, np.arange(n_labels)):
        raise ValueError(
            f"classes={list(classes)!r} do not name the {n_labels} columns of the "
            "dataset's label-indicator y: a multilabel model's classes are its "
            f"column numbers, 0 to {n_labels - 1} (or leave classes out)."
        )


def _check_partial_fit_first_call(est, classes) -> bool:
    """True on the first partial_fit call (and set ``classes_``), as scikit-learn."""
    if getattr(est, "classes_", None) is None and classes is None:
        raise ValueError("classes must be passed on the first call to partial_fit.")
    if classes is not None:
        if getattr(est, "classes_", None) is not None:
            if not np.array_equal(est.classes_, unique_labels(classes)):
                raise ValueError(
                    f"`classes={classes!r}` is not the same as on last call "
                    f"to partial_fit, was: {est.classes_!r}"
                )
        else:
            est.classes_ = unique_labels(classes)
            return True
    return False


class NonNumericTargets(TypeError, ValueError):
    """Text (or other non-numeric) regression targets: a ValueError, and a
    TypeError as scikit-learn's own failure on them is."""


class MLPClassifier(ClassifierMixin, BaseMLP):
    """Multi-layer perceptron classifier trained by TensorFlow.

    A drop-in replacement for :class:`sklearn.neural_network.MLPClassifier`:
    the same parameters, attributes, methods, warnings and errors, and with
    float64 data and the same ``random_state`` the same fitted numbers. The
    minibatch epochs run as compiled TensorFlow graphs; ``solver='lbfgs'`` uses
    SciPy's L-BFGS-B with loss and gradient computed by TensorFlow.

    Parameters
    ----------
    hidden_layer_sizes : array-like of shape (n_layers - 2,), default=(100,)
        Number of units in each hidden layer; an int means one layer and an
        empty tuple means no hidden layer.
    activation : {'identity', 'logistic', 'tanh', 'relu', 'leaky_relu', \
            'elu', 'selu', 'gelu', 'swish'}, default='relu'
        Activation of the hidden layers. The first four are scikit-learn's;
        the others (not in scikit-learn) follow Keras' definitions.
    solver : {'lbfgs', 'sgd', 'adam'}, default='adam'
        Weight optimiser.
    alpha : float, default=0.0001
        Strength of the L2 penalty, divided by the batch's sample (weight) sum.
    batch_size : int or 'auto', default='auto'
        Minibatch size for the stochastic solvers; 'auto' is
        ``min(200, n_samples)``.
    learning_rate : {'constant', 'invscaling', 'adaptive'}, default='constant'
        Learning-rate schedule for ``solver='sgd'``.
    learning_rate_init : float, default=0.001
        Initial learning rate for 'sgd' and 'adam'.
    power_t : float, default=0.5
        Exponent of the 'invscaling' schedule.
    max_iter : int, default=200
        Maximum number of epochs (stochastic solvers) or iterations (lbfgs).
    shuffle : bool, default=True
        Whether to shuffle samples every epoch.
    random_state : int, RandomState instance or None, default=None
        Seeds weight initialisation, the early-stopping split and shuffling,
        drawn in scikit-learn's order.
    tol : float, default=1e-4
        Improvement threshold for stopping.
    verbose : bool, default=False
        Print progress lines like scikit-learn.
    warm_start : bool, default=False
        Continue from the previous solution on the next ``fit``.
    momentum : float, default=0.9
        Momentum for 'sgd'.
    nesterovs_momentum : bool, default=True
        Use Nesterov's momentum with 'sgd'.
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the data and stop when the
        validation score stops improving.
    validation_fraction : float, default=0.1
        Fraction of the training data held out for early stopping.
    beta_1 : float, default=0.9
        Adam's first-moment decay.
    beta_2 : float, default=0.999
        Adam's second-moment decay.
    epsilon : float, default=1e-8
        Adam's numerical stability term.
    n_iter_no_change : int, default=10
        Epochs without ``tol`` improvement before stopping.
    max_fun : int, default=15000
        Maximum number of loss evaluations for 'lbfgs'.
    callbacks : list of keras.callbacks.Callback, default=None
        Keras callbacks for the stochastic solvers (not a scikit-learn
        parameter). They get ``on_train_begin``, ``on_epoch_begin``,
        ``on_epoch_end`` with ``logs={"loss": ..., "val_score": ...,
        "val_loss": ...}`` (the last two when a validation set is used: early
        stopping's split or ``validation_data``) and ``on_train_end``; their
        ``model`` is :attr:`model_`. Setting ``model.stop_training = True``
        ends the fit after the current epoch. During each call
        ``model.optimizer`` carries the estimator's learning rate: callbacks
        may read it (``TensorBoard``) or set it (``LearningRateScheduler``,
        ``ReduceLROnPlateau``) for the following epochs. ``solver="lbfgs"``
        does not call them (it warns).
    jit_compile : bool, default=None
        Whether the stochastic solvers compile each epoch with XLA (not a
        scikit-learn parameter). None chooses automatically: XLA for dense
        inputs of at least one million values, where it runs epochs faster
        and its one-off compilation (about a second) pays for itself; plain
        graph execution otherwise. Both give the same numbers up to rounding.
    compute_dtype : {'float32', 'mixed_float16', 'mixed_bfloat16'}, default=None
        Opt-in speed modes (not a scikit-learn parameter). None trains in the
        input's dtype (float32 stays float32, anything else float64), which
        is what scikit-learn does and what parity needs. 'float32' trains
        float64 input in float32 (an MNIST epoch on this project's 2-core CPU:
        ~0.19 s against ~0.32 s for the float64 default), with weights,
        losses and predictions that differ from scikit-learn's at the
        float32 rounding level (see the README's Performance section).
        'mixed_float16' and 'mixed_bfloat16' are mixed precision, as Keras'
        policies of those names: float32 weights, optimizer state,
        activations and loss, with the matrix products of training in
        float16/bfloat16 (fast on GPUs with tensor cores; on most CPUs slower
        than 'float32'). 'mixed_float16' scales the loss dynamically (steps
        with overflowing gradients are skipped and the scale adapts; the
        scale is kept for ``partial_fit`` and ``warm_start``). A network
        trained in these modes predicts in float32 (one fitted in float64
        keeps its float64 weights when a later ``warm_start`` fit or
        ``partial_fit`` sets a mode); ``solver='lbfgs'`` evaluates its objective in
        float32 on the float32-rounded input and returns float64 weights
        (as scikit-learn's L-BFGS on float32 data);
        the policies apply to the standard network only
        (not with ``hidden_stack``, ``dropout`` or ``batch_normalization``).
    hidden_stack : callable, default=None
        Builds the hidden layers with any Keras layers (not a scikit-learn
        parameter): called with the Keras input tensor, it returns the last
        hidden tensor, e.g. ``lambda x: keras.layers.Dropout(0.2)(
        keras.layers.Dense(64, activation="relu")(x))``. tfmlp adds the output
        layer and loss, initialises every Dense layer like scikit-learn, and
        reports the Dense kernels and biases as ``coefs_``/``intercepts_``;
        ``hidden_layer_sizes`` and ``activation`` are then not used for the
        architecture. Use a module-level function (not a lambda) when the
        estimator must be pickled or used with ``n_jobs``. Supported by the
        'adam' and 'sgd' solvers.
    dropout : float, default=None
        Dropout rate after each hidden layer of the standard stack (not a
        scikit-learn parameter; training only, predictions are deterministic).
    batch_normalization : bool, default=False
        Batch normalisation after each hidden Dense layer of the standard
        stack (not a scikit-learn parameter). With ``dropout`` or
        ``batch_normalization`` the network is a Keras model (see
        ``hidden_stack``); the L2 penalty ``alpha`` still applies to every
        Dense kernel.
    distribute : {'mirrored', 'multi_worker'}, default=None
        Train under a ``tf.distribute`` strategy (not a scikit-learn
        parameter): 'mirrored' uses every local GPU (or the CPU),
        'multi_worker' the cluster described by the ``TF_CONFIG`` environment
        variable. None trains on one device, unless ``fit`` is called inside
        ``with strategy.scope():``, whose strategy is then used. Gradients are
        summed across replicas and scaled by the global batch weight, so a
        step equals a single-device step on the same global batch.
    class_weight : dict, 'balanced' or None, default=None
        Weights per class, multiplied into ``sample_weight`` (not a
        scikit-learn parameter). 'balanced' uses
        ``n_samples / (n_classes * np.bincount(y))`` as in scikit-learn,
        with the classes counted by their ``sample_weight`` (a row of
        weight 2 counts twice; a class whose weights sum to 0 or less is
        refused unless they are all 0); ``partial_fit`` accepts only a dict.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels.
    loss_ : float
        Training loss of the last epoch (or the final lbfgs objective).
    best_loss_ : float or None
        Lowest ``loss_curve_`` value; None with early stopping.
    loss_curve_ : list of float
        Training loss per epoch (stochastic solvers only).
    validation_scores_ : list of float or None
        Validation accuracy per epoch when a validation set is used (early
        stopping's split or ``validation_data``), else None.
    validation_loss_curve_ : list of float
        Loss on the validation set (early stopping's split or
        ``validation_data``) per epoch: the data term of ``loss_curve_``'s
        objective (no L2 penalty); only set when a validation set was used,
        started again by every fit that initialises the network. One value
        per epoch scored, so it lines up with ``validation_scores_`` (epochs
        trained without a validation set, e.g. ``partial_fit`` without
        ``validation_data``, add to neither).
    best_validation_score_ : float or None
        Best validation score with early stopping, else None.
    t_ : int
        Number of training samples seen.
    coefs_ : list of ndarray
        Weight matrices; ``coefs_[i]`` maps layer i to layer i + 1.
    intercepts_ : list of ndarray
        Bias vectors.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Feature names, when X had string column names.
    n_iter_ : int
        Epochs (or lbfgs iterations) run by the last call.
    history_ : dict of list
        Per-epoch logs passed to callbacks (``"loss"``, and ``"val_score"``
        and ``"val_loss"`` when a validation set is used, and the numbers
        callbacks add to the logs, e.g. the ``"learning_rate"`` of Keras' LR
        callbacks), accumulated like ``loss_curve_``.
    model_ : keras.Model
        The network as a functional Keras model sharing the estimator's
        weights, mapping features to :meth:`predict_proba` (a binary
        problem's two columns included; see :attr:`BaseMLP.model_`).
    n_layers_ : int
        Number of layers, input and output included.
    n_outputs_ : int
        Number of outputs.
    out_activation_ : str
        Output activation ('logistic' or 'softmax').

    See Also
    --------
    MLPRegressor : The regressor.
    sklearn.neural_network.MLPClassifier : The scikit-learn original.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from tfmlp import MLPClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = MLPClassifier(hidden_layer_sizes=(10,), solver="lbfgs",
    ...                     max_iter=500, random_state=0).fit(X, y)
    >>> clf.predict(X[:3])
    array([0, 0, 0])
    """

    _parameter_constraints: dict = dict(CLASSIFIER_CONSTRAINTS)

    def __init__(
        self,
        hidden_layer_sizes=(100,),
        activation="relu",
        *,
        solver="adam",
        alpha=0.0001,
        batch_size="auto",
        learning_rate="constant",
        learning_rate_init=0.001,
        power_t=0.5,
        max_iter=200,
        shuffle=True,
        random_state=None,
        tol=1e-4,
        verbose=False,
        warm_start=False,
        momentum=0.9,
        nesterovs_momentum=True,
        early_stopping=False,
        validation_fraction=0.1,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        n_iter_no_change=10,
        max_fun=15000,
        callbacks=None,
        jit_compile=None,
        compute_dtype=None,
        hidden_stack=None,
        dropout=None,
        batch_normalization=False,
        distribute=None,
        class_weight=None,
    ):
        super().__init__(
            hidden_layer_sizes=hidden_layer_sizes,
            activation=activation,
            solver=solver,
            alpha=alpha,
            batch_size=batch_size,
            learning_rate=learning_rate,
            learning_rate_init=learning_rate_init,
            power_t=power_t,
            max_iter=max_iter,
            loss="log_loss",
            shuffle=shuffle,
            random_state=random_state,
            tol=tol,
            verbose=verbose,
            warm_start=warm_start,
            momentum=momentum,
            nesterovs_momentum=nesterovs_momentum,
            early_stopping=early_stopping,
            validation_fraction=validation_fraction,
            beta_1=beta_1,
            beta_2=beta_2,
            epsilon=epsilon,
            n_iter_no_change=n_iter_no_change,
            max_fun=max_fun,
            callbacks=callbacks,
            jit_compile=jit_compile,
            compute_dtype=compute_dtype,
            hidden_stack=hidden_stack,
            dropout=dropout,
            batch_normalization=batch_normalization,
            distribute=distribute,
        )
        self.class_weight = class_weight

    def _output_activation(self) -> str:
        if self._label_binarizer.y_type_ == "multiclass":
            return "softmax"
        return "logistic"

    def _validate_input(self, X, y, incremental, reset):
        X, y = validate_data(
            self,
            X,
            y,
            accept_sparse=["csr", "csc"],
            multi_output=True,
            dtype=(np.float64, np.float32),
            reset=reset,
        )
        if y.ndim == 2 and y.shape[1] == 1:
            y = _column_to_1d(y)
        if (not hasattr(self, "classes_")) or (not self.warm_start and not incremental):
            self._label_binarizer = LabelBinarizer()
            self._label_binarizer.fit(y)
            self.classes_ = self._label_binarizer.classes_
        else:
            classes = unique_labels(y)
            if self.warm_start:
                if set(classes) != set(self.classes_):
                    raise ValueError(
                        "warm_start can only be used where `y` has the same "
                        "classes as in the previous call to fit. Previously "
                        f"got {self.classes_}, `y` has {classes}"
                    )
            elif len(np.setdiff1d(classes, self.classes_, assume_unique=True)):
                raise ValueError(
                    "`y` has classes not in `self.classes_`. "
                    f"`self.classes_` has {self.classes_}. 'y' has {classes}."
                )
        y = self._label_binarizer.transform(y).astype(bool)
        return X, y

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None, sample_weight=None, validation_data=None, classes=None):
        """Fit the model to data matrix X and target(s) y.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features) or \
                tf.data.Dataset
            The input data, or a dataset of ``(X, y)`` / ``(X, y,
            sample_weight)`` batches (then ``y`` is None; one pass is one epoch).
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Class labels, or a label-indicator matrix for multilabel targets.
        sample_weight : array-like of shape (n_samples,), default=None
            Sample weights.
        validation_data : tuple, default=None
            ``(X_val, y_val)`` or ``(X_val, y_val, sample_weight_val)``: held-out
            data scored after every epoch (not a scikit-learn argument). It
            replaces the internal ``validation_fraction`` split for early
            stopping, and with or without early stopping fills
            ``validation_scores_`` and ``validation_loss_curve_``. May also be
            a ``tf.data.Dataset`` of ``(X, y)`` batches.
        classes : array-like, default=None
            All labels, needed when ``X`` is a ``tf.data.Dataset`` (a stream
            cannot be scanned for its labels first). With array input the
            classes are the labels of ``y``; a ``classes`` that lists others
            raises a ValueError.

        Returns
        -------
        self : MLPClassifier
            The fitted estimator.
        """
        if classes is not None and not is_dataset(X):
            require_targets(self, y, "fit")
            _check_classes_of_y(y, classes)
        return self._fit(
            X,
            y,
            sample_weight,
            incremental=False,
            validation_data=validation_data,
            classes=classes,
        )

    @available_if(lambda est: est._check_solver())
    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(
        self, X, y=None, sample_weight=None, classes=None, validation_data=None
    ):
        """Train one epoch over the given data.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features) or \
                tf.data.Dataset
            The input data, or a dataset of ``(X, y[, sample_weight])``
            batches (then ``y`` is None).
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            The target values.
        sample_weight : array-like of shape (n_samples,), default=None
            Sample weights.
        classes : array of shape (n_classes,), default=None
            All classes that will ever be seen; required on the first call.
        validation_data : tuple, default=None
            ``(X_val, y_val)`` or ``(X_val, y_val, sample_weight_val)``: held-out
            data scored after every epoch (not a scikit-learn argument). It
            replaces the internal ``validation_fraction`` split for early
            stopping, and with or without early stopping fills
            ``validation_scores_`` and ``validation_loss_curve_``.

        Returns
        -------
        self : MLPClassifier
            The trained estimator.
        """
        return self._fit(
            X,
            y,
            sample_weight,
            incremental=True,
            validation_data=validation_data,
            # under the training lock and guard: a refused first call leaves
            # the estimator without classes, as before it
            setup=lambda: self._first_call_classes(X, y, classes),
        )

    def _first_call_classes(self, X, y, classes) -> None:
        """``partial_fit``'s classes: set on the first call (with the label
        binarizer), checked against ``classes_`` on later calls."""
        multilabel = False
        if getattr(self, "classes_", None) is None:  # the first call
            # as scikit-learn, the target's type is only read on the first call
            try:
                multilabel = self._multilabel_target(X, y)
            except (TypeError, ValueError):
                if classes is None and not is_dataset(X):
                    # scikit-learn asks for classes before it looks at y
                    _check_partial_fit_first_call(self, classes)
                raise
            if multilabel:
                n_labels = (
                    training_spec(X)[1].shape[1] if is_dataset(X) else np.shape(y)[1]
                )
                if classes is None:
                    # a label-indicator matrix names its own classes (tfmlp extension)
                    classes = np.arange(n_labels)
                elif is_dataset(X):  # (arrays: as scikit-learn checks them)
                    _check_multilabel_classes(classes, n_labels)
        if _check_partial_fit_first_call(self, classes):
            self._label_binarizer = LabelBinarizer()
            if multilabel and is_dataset(X):
                self._label_binarizer.fit(np.eye(len(classes), dtype=int))
            elif multilabel:  # scikit-learn fits it on y (sparse y: sparse output)
                self._label_binarizer.fit(y)
            else:
                self._label_binarizer.fit(classes)

    @staticmethod
    def _multilabel_target(X, y) -> bool:
        """Whether ``y`` (or a dataset's y batches) is a label-indicator matrix."""
        if is_dataset(X):
            y_spec = training_spec(X)[1]
            return y_spec.shape.rank == 2 and y_spec.shape[1] not in (None, 1)
        return type_of_target(y).startswith("multilabel")

    def predict(self, X):
        """Predict class labels (or label indicators for multilabel).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features) or \
                tf.data.Dataset
            The input data, or a dataset of ``X`` (or ``(X, y[, sample_weight])``)
            batches.

        Returns
        -------
        y : ndarray of shape (n_samples,) or (n_samples, n_classes)
            The predicted classes.
        """
        from sklearn.utils.validation import check_is_fitted

        check_is_fitted(self)
        return self._predict(X)

    _score_function = staticmethod(accuracy_score)

    def _decode(self, raw):
        if self.n_outputs_ == 1:
            raw = raw.ravel()
        return self._label_binarizer.inverse_transform(raw)

    def _encode_targets(self, y):
        return np.asarray(self._label_binarizer.transform(y), dtype=np.float64)

    def _check_validation_targets(self, y):
        y = _validation_target_array(y.toarray() if sp.issparse(y) else y)
        if y.ndim == 2 and y.shape[1] == 1:
            y = y.ravel()
        multilabel = self._label_binarizer.y_type_.startswith("multilabel")
        if not multilabel and y.ndim != 1:
            raise ValueError(
                f"validation_data's y_val has shape {y.shape}; this classifier "
                "takes one label per sample (a 1-D array, like y)."
            )
        if multilabel:
            if y.ndim != 2 or y.shape[1] != self.n_outputs_:
                raise ValueError(
                    f"validation_data's y_val has shape {y.shape}; this "
                    f"multilabel model has {self.n_outputs_} labels."
                )
            values = np.unique(y)
            if not np.isin(values, [0, 1]).all():
                raise ValueError(
                    "validation_data's y_val must be a label-indicator matrix of "
                    f"0/1 values, like y; it holds {values[:10]}."
                )
            return y
        try:
            labels = np.unique(y)
        except TypeError:  # e.g. strings and numbers
            kinds = sorted({type(v).__name__ for v in y})
            raise ValueError(
                f"validation_data's y_val mixes label types {kinds}; the labels "
                f"must be like classes_ {self.classes_}."
            ) from None
        unseen = np.setdiff1d(labels, self.classes_)
        if len(unseen):
            raise ValueError(
                f"validation_data has labels {unseen} that are not in classes_ "
                f"{self.classes_}."
            )
        return y

    def _dataset_targets(self, y_spec, classes, first_pass: bool, incremental: bool):
        multilabel = y_spec.shape.rank == 2 and y_spec.shape[1] not in (None, 1)
        if multilabel and classes is not None:
            _check_multilabel_classes(classes, int(y_spec.shape[1]))
        if not (first_pass and not incremental):
            self._check_same_target_kind(multilabel, y_spec)
        # partial_fit has already set the labels from ``classes`` on its first call
        if first_pass and not incremental:
            lb = LabelBinarizer()
            if multilabel:
                lb.fit(np.eye(int(y_spec.shape[1]), dtype=int))
            elif classes is None:
                raise ValueError(
                    "Training a classifier on a tf.data.Dataset needs the label "
                    "set: pass classes=[...] with every label that can occur."
                )
            else:
                lb.fit(np.asarray(classes))
            self._label_binarizer = lb
            self.classes_ = lb.classes_
        elif classes is not None and set(unique_labels(classes)) != set(self.classes_):
            raise ValueError(
                f"classes={list(classes)} differ from the fitted classes_ "
                f"{self.classes_}."
            )
        n_outputs = (
            1 if len(self.classes_) <= 2 and not multilabel else len(self.classes_)
        )
        encode = label_encoder(
            None if multilabel else self.classes_, y_spec, multilabel, n_outputs
        )
        # everything ``encode`` depends on: the compiled epoch is shared
        key = (
            "clf",
            y_spec.dtype.name,
            y_spec.shape.rank,  # a (n, 1) column's width is checked
            multilabel,
            tuple(map(str, self.classes_)),
        )
        return n_outputs, StreamTargets(encode, key)

    def _check_same_target_kind(self, multilabel: bool, y_spec) -> None:
        """A dataset that continues training has the fitted kind of target:
        label-indicator rows for a multilabel model (as many as its labels),
        labels for the others (scikit-learn's errors for arrays)."""
        fitted = self._label_binarizer.y_type_.startswith("multilabel")
        if multilabel and not fitted:
            raise ValueError(
                "The object was not fitted with multilabel input: the dataset's y "
                f"has {y_spec.shape[1]} columns, a label-indicator matrix."
            )
        if fitted and not multilabel:
            raise ValueError(
                "The object was fitted with multilabel input: the dataset's y must "
                f"be a label-indicator matrix with {len(self.classes_)} columns."
            )
        if multilabel and int(y_spec.shape[1]) != len(self.classes_):
            raise ValueError(
                f"The dataset's y has {y_spec.shape[1]} label columns; this "
                f"multilabel model has {len(self.classes_)}."
            )

    def score(self, X, y=None, sample_weight=None):
        """Mean accuracy on (X, y), or on a ``tf.data.Dataset`` of (X, y) batches.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or tf.data.Dataset
            Test samples.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            True labels (None for a dataset).
        sample_weight : array-like of shape (n_samples,), default=None
            Sample weights.

        Returns
        -------
        score : float
            Accuracy (subset accuracy for multilabel targets).
        """
        if is_dataset(X):
            check_is_fitted(self)
            _no_y_with_a_dataset(y)
            return self._score_dataset(X, sample_weight)
        require_targets(self, y, "score")
        return super().score(X, y, sample_weight=sample_weight)

    def _class_weights(self, y, sample_weight, incremental: bool):
        return class_sample_weight(
            self.class_weight,
            y,
            sample_weight,
            incremental=incremental,
            classes=self.classes_,
        )

    def predict_proba(self, X):
        """Probability estimates.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features) or \
                tf.data.Dataset
            The input data, or a dataset of ``X`` (or ``(X, y[, sample_weight])``)
            batches.

        Returns
        -------
        y_prob : ndarray of shape (n_samples, n_classes)
            Class probabilities in the order of ``classes_``.
        """
        y_pred = self._checked_forward(X)
        if self.n_outputs_ == 1:
            y_pred = y_pred.ravel()
        if y_pred.ndim == 1:
            return np.vstack([1 - y_pred, y_pred]).T
        return y_pred

    def _binary_proba(self) -> bool:
        return self.n_outputs_ == 1

    def predict_log_proba(self, X):
        """Logarithm of :meth:`predict_proba`.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features) or \
                tf.data.Dataset
            The input data, or a dataset of ``X`` (or ``(X, y[, sample_weight])``)
            batches.

        Returns
        -------
        log_y_prob : ndarray of shape (n_samples, n_classes)
            Log-probabilities in the order of ``classes_``.
        """
        y_prob = self.predict_proba(X)
        return np.log(y_prob, out=y_prob)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags


class MLPRegressor(RegressorMixin, BaseMLP):
    """Multi-layer perceptron regressor trained by TensorFlow.

    A drop-in replacement for :class:`sklearn.neural_network.MLPRegressor`
    with the same parameters, attributes and numbers; see
    :class:`MLPClassifier` for how training runs.

    Parameters
    ----------
    loss : {'squared_error', 'poisson'}, default='squared_error'
        Loss to minimise; 'poisson' uses an exponential output.
    hidden_layer_sizes : array-like of shape (n_layers - 2,), default=(100,)
        Number of units in each hidden layer.
    activation : {'identity', 'logistic', 'tanh', 'relu', 'leaky_relu', \
            'elu', 'selu', 'gelu', 'swish'}, default='relu'
        Activation of the hidden layers. The first four are scikit-learn's;
        the others (not in scikit-learn) follow Keras' definitions.
    solver : {'lbfgs', 'sgd', 'adam'}, default='adam'
        Weight optimiser.
    alpha : float, default=0.0001
        Strength of the L2 penalty.
    batch_size : int or 'auto', default='auto'
        Minibatch size; 'auto' is ``min(200, n_samples)``.
    learning_rate : {'constant', 'invscaling', 'adaptive'}, default='constant'
        Learning-rate schedule for 'sgd'.
    learning_rate_init : float, default=0.001
        Initial learning rate.
    power_t : float, default=0.5
        Exponent of the 'invscaling' schedule.
    max_iter : int, default=200
        Maximum number of epochs or lbfgs iterations.
    shuffle : bool, default=True
        Whether to shuffle samples every epoch.
    random_state : int, RandomState instance or None, default=None
        Seeds initialisation, the early-stopping split and shuffling.
    tol : float, default=1e-4
        Improvement threshold for stopping.
    verbose : bool, default=False
        Print progress lines like scikit-learn.
    warm_start : bool, default=False
        Continue from the previous solution on the next ``fit``.
    momentum : float, default=0.9
        Momentum for 'sgd'.
    nesterovs_momentum : bool, default=True
        Use Nesterov's momentum with 'sgd'.
    early_stopping : bool, default=False
        Stop when the held-out R^2 stops improving.
    validation_fraction : float, default=0.1
        Fraction held out for early stopping.
    beta_1 : float, default=0.9
        Adam's first-moment decay.
    beta_2 : float, default=0.999
        Adam's second-moment decay.
    epsilon : float, default=1e-8
        Adam's numerical stability term.
    n_iter_no_change : int, default=10
        Epochs without ``tol`` improvement before stopping.
    max_fun : int, default=15000
        Maximum number of loss evaluations for 'lbfgs'.
    callbacks : list of keras.callbacks.Callback, default=None
        Keras callbacks for the stochastic solvers (not a scikit-learn
        parameter). They get ``on_train_begin``, ``on_epoch_begin``,
        ``on_epoch_end`` with ``logs={"loss": ..., "val_score": ...,
        "val_loss": ...}`` (the last two when a validation set is used: early
        stopping's split or ``validation_data``) and ``on_train_end``; their
        ``model`` is :attr:`model_`. Setting ``model.stop_training = True``
        ends the fit after the current epoch. During each call
        ``model.optimizer`` carries the estimator's learning rate: callbacks
        may read it (``TensorBoard``) or set it (``LearningRateScheduler``,
        ``ReduceLROnPlateau``) for the following epochs. ``solver="lbfgs"``
        does not call them (it warns).
    jit_compile : bool, default=None
        Whether the stochastic solvers compile each epoch with XLA (not a
        scikit-learn parameter). None chooses automatically: XLA for dense
        inputs of at least one million values, where it runs epochs faster
        and its one-off compilation (about a second) pays for itself; plain
        graph execution otherwise. Both give the same numbers up to rounding.
    compute_dtype : {'float32', 'mixed_float16', 'mixed_bfloat16'}, default=None
        Opt-in speed modes (not a scikit-learn parameter). None trains in the
        input's dtype (float32 stays float32, anything else float64), which
        is what scikit-learn does and what parity needs. 'float32' trains
        float64 input in float32 (an MNIST epoch on this project's 2-core CPU:
        ~0.19 s against ~0.32 s for the float64 default), with weights,
        losses and predictions that differ from scikit-learn's at the
        float32 rounding level (see the README's Performance section).
        'mixed_float16' and 'mixed_bfloat16' are mixed precision, as Keras'
        policies of those names: float32 weights, optimizer state,
        activations and loss, with the matrix products of training in
        float16/bfloat16 (fast on GPUs with tensor cores; on most CPUs slower
        than 'float32'). 'mixed_float16' scales the loss dynamically (steps
        with overflowing gradients are skipped and the scale adapts; the
        scale is kept for ``partial_fit`` and ``warm_start``). A network
        trained in these modes predicts in float32 (one fitted in float64
        keeps its float64 weights when a later ``warm_start`` fit or
        ``partial_fit`` sets a mode); ``solver='lbfgs'`` evaluates its objective in
        float32 on the float32-rounded input and returns float64 weights
        (as scikit-learn's L-BFGS on float32 data);
        the policies apply to the standard network only
        (not with ``hidden_stack``, ``dropout`` or ``batch_normalization``).
    hidden_stack : callable, default=None
        Builds the hidden layers with any Keras layers (not a scikit-learn
        parameter): called with the Keras input tensor, it returns the last
        hidden tensor, e.g. ``lambda x: keras.layers.Dropout(0.2)(
        keras.layers.Dense(64, activation="relu")(x))``. tfmlp adds the output
        layer and loss, initialises every Dense layer like scikit-learn, and
        reports the Dense kernels and biases as ``coefs_``/``intercepts_``;
        ``hidden_layer_sizes`` and ``activation`` are then not used for the
        architecture. Use a module-level function (not a lambda) when the
        estimator must be pickled or used with ``n_jobs``. Supported by the
        'adam' and 'sgd' solvers.
    dropout : float, default=None
        Dropout rate after each hidden layer of the standard stack (not a
        scikit-learn parameter; training only, predictions are deterministic).
    batch_normalization : bool, default=False
        Batch normalisation after each hidden Dense layer of the standard
        stack (not a scikit-learn parameter). With ``dropout`` or
        ``batch_normalization`` the network is a Keras model (see
        ``hidden_stack``); the L2 penalty ``alpha`` still applies to every
        Dense kernel.
    distribute : {'mirrored', 'multi_worker'}, default=None
        Train under a ``tf.distribute`` strategy (not a scikit-learn
        parameter): 'mirrored' uses every local GPU (or the CPU),
        'multi_worker' the cluster described by the ``TF_CONFIG`` environment
        variable. None trains on one device, unless ``fit`` is called inside
        ``with strategy.scope():``, whose strategy is then used. Gradients are
        summed across replicas and scaled by the global batch weight, so a
        step equals a single-device step on the same global batch.

    Attributes
    ----------
    loss_ : float
        Training loss of the last epoch (or the final lbfgs objective).
    best_loss_ : float or None
        Lowest ``loss_curve_`` value; None with early stopping.
    loss_curve_ : list of float
        Training loss per epoch (stochastic solvers only).
    validation_scores_ : list of float or None
        Validation R^2 per epoch when a validation set is used (early
        stopping's split or ``validation_data``), else None.
    validation_loss_curve_ : list of float
        Loss on the validation set (early stopping's split or
        ``validation_data``) per epoch: the data term of ``loss_curve_``'s
        objective (no L2 penalty); only set when a validation set was used,
        started again by every fit that initialises the network. One value
        per epoch scored, so it lines up with ``validation_scores_`` (epochs
        trained without a validation set, e.g. ``partial_fit`` without
        ``validation_data``, add to neither).
    best_validation_score_ : float or None
        Best validation score with early stopping, else None.
    t_ : int
        Number of training samples seen.
    coefs_ : list of ndarray
        Weight matrices.
    intercepts_ : list of ndarray
        Bias vectors.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Feature names, when X had string column names.
    n_iter_ : int
        Epochs (or lbfgs iterations) run by the last call.
    history_ : dict of list
        Per-epoch logs passed to callbacks (``"loss"``, and ``"val_score"``
        and ``"val_loss"`` when a validation set is used, and the numbers
        callbacks add to the logs, e.g. the ``"learning_rate"`` of Keras' LR
        callbacks), accumulated like ``loss_curve_``.
    model_ : keras.Model
        The network as a functional Keras model sharing the estimator's
        weights (see :attr:`BaseMLP.model_`).
    n_layers_ : int
        Number of layers.
    n_outputs_ : int
        Number of outputs.
    out_activation_ : str
        'identity' (squared error) or 'exp' (poisson).

    See Also
    --------
    MLPClassifier : The classifier.
    sklearn.neural_network.MLPRegressor : The scikit-learn original.

    Examples
    --------
    >>> from sklearn.datasets import load_diabetes
    >>> from tfmlp import MLPRegressor
    >>> X, y = load_diabetes(return_X_y=True)
    >>> reg = MLPRegressor(hidden_layer_sizes=(20,), solver="lbfgs",
    ...                    max_iter=50, random_state=0).fit(X, y)  # doctest: +SKIP
    >>> reg.predict(X[:2]).shape
    (2,)
    """

    _parameter_constraints: dict = dict(REGRESSOR_CONSTRAINTS)

    def __init__(
        self,
        loss="squared_error",
        hidden_layer_sizes=(100,),
        activation="relu",
        *,
        solver="adam",
        alpha=0.0001,
        batch_size="auto",
        learning_rate="constant",
        learning_rate_init=0.001,
        power_t=0.5,
        max_iter=200,
        shuffle=True,
        random_state=None,
        tol=1e-4,
        verbose=False,
        warm_start=False,
        momentum=0.9,
        nesterovs_momentum=True,
        early_stopping=False,
        validation_fraction=0.1,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        n_iter_no_change=10,
        max_fun=15000,
        callbacks=None,
        jit_compile=None,
        compute_dtype=None,
        hidden_stack=None,
        dropout=None,
        batch_normalization=False,
        distribute=None,
    ):
        super().__init__(
            hidden_layer_sizes=hidden_layer_sizes,
            activation=activation,
            solver=solver,
            alpha=alpha,
            batch_size=batch_size,
            learning_rate=learning_rate,
            learning_rate_init=learning_rate_init,
            power_t=power_t,
            max_iter=max_iter,
            loss=loss,
            shuffle=shuffle,
            random_state=random_state,
            tol=tol,
            verbose=verbose,
            warm_start=warm_start,
            momentum=momentum,
            nesterovs_momentum=nesterovs_momentum,
            early_stopping=early_stopping,
            validation_fraction=validation_fraction,
            beta_1=beta_1,
            beta_2=beta_2,
            epsilon=epsilon,
            n_iter_no_change=n_iter_no_change,
            max_fun=max_fun,
            callbacks=callbacks,
            jit_compile=jit_compile,
            compute_dtype=compute_dtype,
            hidden_stack=hidden_stack,
            dropout=dropout,
            batch_normalization=batch_normalization,
            distribute=distribute,
        )

    def _output_activation(self) -> str:
        return "exp" if self.loss == "poisson" else "identity"

    def _validate_input(self, X, y, incremental, reset):
        _refuse_sparse_targets(y, "y")
        X, y = validate_data(
            self,
            X,
            y,
            accept_sparse=["csr", "csc"],
            multi_output=True,
            y_numeric=True,
            dtype=(np.float64, np.float32),
            reset=reset,
        )
        if y.dtype.kind not in "biuf":  # scikit-learn fails with a TypeError
            raise NonNumericTargets(
                f"MLPRegressor needs numeric targets; y has dtype {y.dtype}. Use "
                "MLPClassifier for class labels."
            )
        if self.loss == "poisson" and np.any(y < 0):
            raise ValueError(
                "loss='poisson' needs non-negative targets (counts or rates); y "
                f"has values down to {y.min()}."
            )
        if y.ndim == 2 and y.shape[1] == 1:
            y = _column_to_1d(y)
        return X, y

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None, sample_weight=None, validation_data=None):
        """Fit the model to data matrix X and target(s) y.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features) or \
                tf.data.Dataset
            The input data, or a dataset of ``(X, y[, sample_weight])``
            batches (then ``y`` is None).
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            The target values.
        sample_weight : array-like of shape (n_samples,), default=None
            Sample weights.
        validation_data : tuple, default=None
            ``(X_val, y_val)`` or ``(X_val, y_val, sample_weight_val)``: held-out
            data scored after every epoch (not a scikit-learn argument). It
            replaces the internal ``validation_fraction`` split for early
            stopping, and with or without early stopping fills
            ``validation_scores_`` and ``validation_loss_curve_``.

        Returns
        -------
        self : MLPRegressor
            The fitted estimator.
        """
        return self._fit(
            X, y, sample_weight, incremental=False, validation_data=validation_data
        )

    @available_if(lambda est: est._check_solver)
    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y=None, sample_weight=None, validation_data=None):
        """Train one epoch over the given data.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features) or \
                tf.data.Dataset
            The input data, or a dataset of ``(X, y[, sample_weight])``
            batches (then ``y`` is None).
        y : ndarray of shape (n_samples,) or (n_samples, n_outputs)
            The target values.
        sample_weight : array-like of shape (n_samples,), default=None
            Sample weights.
        validation_data : tuple, default=None
            ``(X_val, y_val)`` or ``(X_val, y_val, sample_weight_val)``: held-out
            data scored after every epoch (not a scikit-learn argument). It
            replaces the internal ``validation_fraction`` split for early
            stopping, and with or without early stopping fills
            ``validation_scores_`` and ``validation_loss_curve_``.

        Returns
        -------
        self : MLPRegressor
            The trained estimator.
        """
        return self._fit(
            X, y, sample_weight, incremental=True, validation_data=validation_data
        )

    def predict(self, X):
        """Predict with the fitted network.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features) or \
                tf.data.Dataset
            The input data, or a dataset of ``X`` (or ``(X, y[, sample_weight])``)
            batches.

        Returns
        -------
        y : ndarray of shape (n_samples,) or (n_samples, n_outputs)
            The predicted values.
        """
        from sklearn.utils.validation import check_is_fitted

        check_is_fitted(self)
        return self._predict(X)

    _score_function = staticmethod(r2_score)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # loss="poisson" refuses negative targets (a Poisson deviance needs
        # y >= 0), as scikit-learn's Poisson regressors declare
        tags.target_tags.positive_only = self.loss == "poisson"
        return tags

    def _decode(self, raw):
        return raw.ravel() if raw.shape[1] == 1 else raw

    def _encode_targets(self, y):
        y = np.asarray(y, dtype=np.float64)
        return y.reshape(-1, 1) if y.ndim == 1 else y

    def _check_validation_targets(self, y):
        _refuse_sparse_targets(y, "validation_data's y_val")
        y = _validation_target_array(y)
        if y.dtype.kind == "O":  # as y: an object array is made numbers
            try:
                y = y.astype(np.float64)
            except (TypeError, ValueError):
                pass
        if y.dtype.kind not in "biuf":  # as y (``_validate_input``)
            raise NonNumericTargets(
                f"validation_data's y_val must be numeric targets, like y; it "
                f"has dtype {y.dtype}."
            )
        y = np.asarray(y, dtype=np.float64)
        if y.ndim not in (1, 2):
            raise ValueError(
                f"validation_data's y_val has shape {y.shape}; a regressor takes "
                "a 1-D array or a 2-D array with one column per output, like y."
            )
        y = y.ravel() if y.ndim == 2 and y.shape[1] == 1 else y
        n_outputs = y.shape[1] if y.ndim == 2 else 1
        if n_outputs != self.n_outputs_:
            raise ValueError(
                f"validation_data's y_val has {n_outputs} output(s) (shape "
                f"{y.shape}); the model has {self.n_outputs_}."
            )
        if self.loss == "poisson" and np.any(y < 0):
            raise ValueError(
                "loss='poisson' needs non-negative targets (counts or rates); "
                f"validation_data's y_val has values down to {y.min()}."
            )
        return y

    def _dataset_targets(self, y_spec, classes, first_pass: bool, incremental: bool):
        if classes is not None:
            raise ValueError("classes= is for classifiers; a regressor has none.")
        rank2 = y_spec.shape.rank == 2
        if rank2 and y_spec.shape[1] is None:
            raise ValueError("The dataset's y must have a known number of columns.")
        n_outputs = int(y_spec.shape[1]) if rank2 else 1
        if not first_pass and n_outputs != self.n_outputs_:
            raise ValueError(
                f"The dataset's y has {n_outputs} outputs; the model has "
                f"{self.n_outputs_}."
            )
        poisson = self.loss == "poisson"
        encode = label_encoder(None, y_spec, False, n_outputs, nonnegative=poisson)
        return n_outputs, StreamTargets(encode, ("reg", n_outputs, poisson))

    def score(self, X, y=None, sample_weight=None):
        """R^2 on (X, y), or on a ``tf.data.Dataset`` of (X, y) batches.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or tf.data.Dataset
            Test samples.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            True values (None for a dataset).
        sample_weight : array-like of shape (n_samples,), default=None
            Sample weights.

        Returns
        -------
        score : float
            Coefficient of determination.
        """
        if is_dataset(X):
            check_is_fitted(self)
            _no_y_with_a_dataset(y)
            return self._score_dataset(X, sample_weight)
        require_targets(self, y, "score")
        return super().score(X, y, sample_weight=sample_weight)


def _no_y_with_a_dataset(y) -> None:
    if y is not None:
        raise ValueError(
            "With a tf.data.Dataset as X, y comes from the dataset's (X, y) "
            "elements; pass y=None."
        )


def _column_to_1d(y):
    """A column-vector ``y`` as 1-D, with scikit-learn's DataConversionWarning
    attributed as scikit-learn's (``filterwarnings(..., module="sklearn")``)."""
    y = column_or_1d(y)  # (and scikit-learn's error for a sparse column)
    warn(
        "A column-vector y was passed when a 1d array was expected. Please "
        "change the shape of y to (n_samples, ), for example using ravel().",
        DataConversionWarning,
        like_sklearn=True,
    )
    return y


def _refuse_sparse_targets(y, name: str) -> None:
    """Regression targets must be dense (scikit-learn's words for a sparse
    one-column ``y``; a sparse multi-output ``y`` would otherwise get past
    validation and fail in training with NumPy's words)."""
    if sp.issparse(y):
        raise TypeError(
            f"Sparse data was passed for {name}, but dense data is required. Use "
            "'.toarray()' to convert to a dense numpy array."
        )


def _validation_target_array(y) -> np.ndarray:
    """``validation_data``'s targets as an array, checked as scikit-learn
    checks y (complex values, NaN/inf, pandas' missing values) before any
    epoch trains, in scikit-learn's words."""
    name = "validation_data's y_val"
    try:
        return check_array(
            y,
            ensure_2d=False,
            allow_nd=True,
            dtype=None,
            ensure_min_samples=0,
            input_name=name,
        )
    except ValueError as exc:
        if name in str(exc):
            raise
        raise ValueError(f"{name}: {exc}") from None  # (object arrays)
