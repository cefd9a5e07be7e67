"""Training and prediction on ``tf.data.Dataset`` streams (data larger than memory).

One pass over the dataset is one epoch: ``n_iter_``, ``loss_curve_`` and
``t_`` advance as for arrays. Batches are used as the dataset yields them
(``batch_size`` does not re-batch a stream, and ``shuffle`` is the dataset's
own business: shuffle it, e.g. with a bounded ``Dataset.shuffle`` buffer as the
``tfmlp.data`` readers do). The whole epoch, dataset iteration included, runs
inside one compiled TensorFlow function.
"""

from __future__ import annotations

import re

import numpy as np
import tensorflow as tf

from tfmlp._csv_errors import explain_csv_error
from tfmlp._losses import loss_and_grads
from tfmlp._optimizers import Adam, update_rule
from tfmlp._params import WeightsSumToZero
from tfmlp._precision import current_scale
from tfmlp._training import _cached, _split_scale, _update, constrain
from tfmlp._warn import warn


def is_dataset(obj) -> bool:
    return isinstance(obj, tf.data.Dataset)


# what TensorFlow raises when a dataset's content does not fit the pipeline
# (a parse error, a failed assertion, a cast that is not supported) or its
# source fails (a file gone or unreadable, a Python error in a generator)
DATA_ERRORS = (
    tf.errors.InvalidArgumentError,
    tf.errors.UnimplementedError,
    tf.errors.NotFoundError,
    tf.errors.PermissionDeniedError,
    tf.errors.DataLossError,
    tf.errors.UnknownError,
    tf.errors.ResourceExhaustedError,  # a MemoryError in a generator, too
    tf.errors.FailedPreconditionError,  # a file that became a directory
)
_SW_ROWS = "TFMLP_SW_ROWS"
_Y_ROWS = "TFMLP_Y_ROWS"
_NEGATIVE_TARGETS = "TFMLP_NEGATIVE_TARGETS"
_NOT_INDICATOR = "TFMLP_NOT_INDICATOR"
_Y_WIDTH = "TFMLP_Y_WIDTH"
# messages of the checks the training epoch makes batch by batch
_BATCH_CHECKS = {
    "TFMLP_NONFINITE_X": "Input X contains NaN or infinity",
    "TFMLP_NONFINITE_Y": "Input y contains NaN or infinity",
    "TFMLP_NONFINITE_SW": "Sample weights contain NaN or infinity",
    _SW_ROWS: "The sample weights are not one number per row of X",
    _Y_ROWS: "y does not have as many rows as X",
    _NEGATIVE_TARGETS: (
        "loss='poisson' needs non-negative targets (counts or rates); y has "
        "negative values"
    ),
    _NOT_INDICATOR: (
        "A multilabel y must be a label-indicator matrix of 0/1 values; it holds "
        "other values"
    ),
    _Y_WIDTH: (
        "y has several columns, but the dataset's element_spec leaves their "
        "number unknown (shape (None, None)), so they were taken for one label "
        "per row: give y's shape as (None, n_labels) for label-indicator rows"
    ),
}
_ZERO_WEIGHTS = "TFMLP_WEIGHTS_SUM_TO_ZERO"


def _fail(msg: str):
    raise ValueError(msg)


def require_samples(n_samples: int, what: str = "The dataset") -> None:
    """Refuse a dataset (named ``what``) that yielded no samples."""
    if n_samples == 0:
        _fail(f"{what} is empty: it yielded no samples.")


def check_finite(ds, what: str = "The dataset") -> None:
    """Refuse an endless dataset: one pass over it (an epoch) never ends.

    Parameters
    ----------
    ds : tf.data.Dataset
        The dataset (an UNKNOWN cardinality is accepted).
    what : str, default="The dataset"
        How the error message names the dataset.
    """
    if int(ds.cardinality()) == tf.data.INFINITE_CARDINALITY:
        _fail(
            f"{what} is endless (infinite cardinality, e.g. from ds.repeat()): "
            "one pass over it (a training epoch, or a prediction) would never "
            "end. Pass a finite dataset (drop the repeat() or use ds.take(n)); "
            "in training, max_iter sets the epochs."
        )


# the parts of a TensorFlow error message that only locate it in the graph
_TF_NOISE = (
    r"\{\{function_node [^}]*\}\}",
    r"Detected at node .*?\(most recent call last\):\s*(<stack traces unavailable>)?",
    r"Error in user-defined function passed to \S+ transformation with "
    r"iterator: \S+: ",
    r"assertion failed: ",
    r"\[\[[^\]]*\]*\]\]",
    r"\[Op:[^\]]*\]",
    r"\s+name:\s*$",
)


def tf_error_text(exc) -> str:
    """The informative part of a TensorFlow error (no graph or stack dump).

    TensorFlow puts the op's own message last, after the Python stack of the
    node it failed in, and adds node, op and iterator names around it.
    """
    text = str(getattr(exc, "message", exc))
    raised = _python_exception(text)
    if raised:  # a Python exception inside the pipeline (a generator, py_function)
        return raised
    chunks = [c for c in text.split("\n\n") if c.strip()]
    text = chunks[-1] if chunks else text
    for noise in _TF_NOISE:
        text = re.sub(noise, " ", text.strip(), flags=re.S)
    text = text.replace("\\'", "'")  # quotes escaped in printed string tensors
    text = " ".join(text.split())
    single = re.fullmatch(r"\[([^\[\]]*)\]", text)  # one assertion message
    text = (single.group(1) if single else text) or str(exc)
    if re.search(r"\bin record \d+", text):  # TensorFlow's CSV decoding
        text += (
            " (TensorFlow counts records within the block of lines it was "
            "decoding, not from the start of the file)"
        )
    return text


def _python_exception(text: str) -> str | None:
    """The message of the Python exception whose traceback TensorFlow quotes
    (its last one): the first line after the traceback's indented frames,
    "Name: message" (the message's first line) or a bare "Name" (an
    exception raised without a message, e.g. a bare ``assert``)."""
    marker = "Traceback (most recent call last):"
    if marker not in text:
        return None
    for line in text.rsplit(marker, 1)[1].splitlines():
        if not line.strip() or line[0].isspace():
            continue  # the frames' lines are indented
        name, sep, message = line.rstrip().partition(": ")
        message = message.strip()
        if not sep or not message:
            return f"{name.rstrip(':')} (raised without a message)"
        return message
    return None


def dataset_error(exc, doing: str, ds=None) -> ValueError:
    """The ValueError to raise for a TensorFlow error while reading a dataset.

    Parameters
    ----------
    exc : tf.errors.OpError
        The error TensorFlow raised.
    doing : str
        What failed, e.g. ``"Training on the dataset"``.
    ds : tf.data.Dataset, optional
        The dataset read; one made by (or from) ``tfmlp.data.read_csv`` names
        the file, line and column of a value it could not read as a number.

    Returns
    -------
    error : ValueError
        Names unseen labels plainly; otherwise quotes TensorFlow's message.
    """
    text = str(exc)
    if "UNSEEN_LABEL" in text:
        return ValueError(
            "The dataset contains labels that are not in classes_ "
            "(pass every label with classes=)."
        )
    if _ZERO_WEIGHTS in text:
        return WeightsSumToZero(
            "Weights sum to zero, can't be normalized: a batch of the dataset "
            "has sample weights that sum to 0."
        )
    for marker, message in _BATCH_CHECKS.items():
        if marker in text:
            return ValueError(f"{message} (a batch of the dataset).")
    sources = _csv_sources(ds)
    explained = explain_csv_error(sources, text) if sources else None
    if explained:
        return ValueError(explained)
    return ValueError(f"{doing} failed: {tf_error_text(exc)}")


def _csv_sources(ds, limit: int = 200) -> list:
    """What the ``read_csv`` calls that ``ds`` was made from read (``ds``
    itself, or through ``.map``, ``.take``, ``concatenate``, ``zip``, ...)."""
    sources, seen = [], 0
    todo = [ds] if ds is not None else []
    while todo and seen < limit:
        node = todo.pop()
        seen += 1
        source = getattr(node, "_tfmlp_csv_source", None)
        if source is not None:
            if source not in sources:
                sources.append(source)
            continue
        try:
            todo.extend(reversed(node._inputs()))
        except Exception:  # not a tf.data dataset, or no inputs to walk
            continue
    return sources


def training_spec(ds) -> tuple[int, tf.TensorSpec, bool]:
    """(n_features, y spec, has sample weights) of a finite training dataset."""
    check_finite(ds)
    spec = ds.element_spec
    if not isinstance(spec, tuple) or len(spec) not in (2, 3):
        _fail(
            "A tf.data.Dataset passed to fit/partial_fit must yield (X, y) or "
            f"(X, y, sample_weight) batches. Its element_spec is {spec!r}."
        )
    n_features = feature_count(spec[0])
    check_label_specs(spec)
    return n_features, spec[1], len(spec) == 3


def check_label_specs(spec, what: str = "The dataset") -> None:
    """The y (and sample-weight) parts of an ``(X, y[, sample_weight])``
    element_spec can be read as arrays: one tensor of labels, one number a
    row (``what`` names the dataset in the message)."""
    y_spec = spec[1]
    if not isinstance(y_spec, tf.TensorSpec) or y_spec.shape.rank not in (1, 2):
        _fail(f"{what}'s y must be a 1-D or 2-D tensor batch; got {y_spec!r}.")
    if len(spec) == 3:
        sw_spec = spec[2]
        one_per_row = isinstance(sw_spec, tf.TensorSpec) and (
            sw_spec.shape.rank == 1
            or (sw_spec.shape.rank == 2 and sw_spec.shape[1] in (1, None))
        )
        if not one_per_row or not _is_numeric(sw_spec.dtype):
            _fail(
                f"{what}'s sample weights must be one number per row, a 1-D "
                f"numeric tensor batch; got {sw_spec!r}."
            )


def feature_count(x_spec) -> int:
    """Number of features from the X part of an element_spec."""
    if not isinstance(x_spec, tf.TensorSpec):
        _fail(
            "The dataset's X must be one dense tensor batch of shape (batch, "
            f"n_features); got {x_spec!r}. Stack a dict of columns into one "
            "tensor (ds.map(lambda x, y: (tf.stack(list(x.values()), axis=1), "
            "y))) and make a SparseTensor dense (tf.sparse.to_dense)."
        )
    if x_spec.shape.rank != 2 or x_spec.shape[1] is None:
        hint = " Batch the dataset (ds.batch(n))." if x_spec.shape.rank == 1 else ""
        _fail(
            "The dataset's X must be batches of shape (batch, n_features) with a "
            f"known n_features; got {x_spec!r}.{hint}"
        )
    if not _is_numeric(x_spec.dtype):
        _fail(f"The dataset's X must be numeric; got dtype {x_spec.dtype.name}.")
    if x_spec.shape[1] == 0:
        _fail(
            "Found a dataset with 0 feature(s) (X batches of shape (batch, 0)) "
            "while a minimum of 1 is required."
        )
    return int(x_spec.shape[1])


def _is_numeric(dtype) -> bool:
    return dtype.is_floating or dtype.is_integer or dtype.is_bool


def _class_table(classes, y_dtype):
    """The classes as a tensor of the dataset's label dtype (checked)."""
    classes = np.asarray(classes)
    if y_dtype == tf.string:
        if classes.dtype.kind not in "USO" or not all(
            isinstance(c, (str, bytes)) for c in classes.tolist()
        ):
            _fail(
                "The dataset's labels are strings but classes= holds "
                f"{classes.dtype} values {classes.tolist()[:5]}: give classes "
                "of the labels' type."
            )
        return tf.constant(classes.astype(str))
    if not _is_numeric(y_dtype):
        _fail(f"The dataset's labels have the unsupported dtype {y_dtype.name}.")
    if classes.dtype.kind not in "biuf":
        _fail(
            f"The dataset's labels are numbers ({y_dtype.name}) but classes= "
            f"holds {classes.dtype} values {classes.tolist()[:5]}: give classes "
            "of the labels' type."
        )
    table = classes.astype(y_dtype.as_numpy_dtype)
    if not np.array_equal(table, classes):
        _fail(
            f"classes={classes.tolist()[:5]} cannot all be represented as the "
            f"dataset's {y_dtype.name} labels."
        )
    return tf.constant(table)


def label_encoder(
    classes, y_spec, multilabel: bool, n_outputs: int, nonnegative: bool = False
):
    """Graph function mapping a batch of labels to the encoded float targets.

    Parameters
    ----------
    classes : array-like or None
        The classifier's labels; None for regression and multilabel targets.
    y_spec : tf.TensorSpec
        Spec of the dataset's y batches.
    multilabel : bool
        Whether y is a label-indicator matrix.
    n_outputs : int
        Number of network outputs.
    nonnegative : bool, default=False
        Regression targets must not be negative (``loss="poisson"``).

    Returns
    -------
    encode : callable
        ``encode(y, dtype)`` -> float targets of shape (batch, n_outputs).
    """
    if (multilabel or classes is None) and not _is_numeric(y_spec.dtype):
        kind = "label-indicator (multilabel)" if multilabel else "MLPRegressor"
        _fail(
            f"{kind} needs numeric targets; the dataset's y has dtype "
            f"{y_spec.dtype.name}. Use MLPClassifier with classes= for labels."
        )
    if multilabel:

        def encode_indicator(y, dtype):
            y = tf.cast(y, dtype)
            # 0/1 only (NaN and infinity get their own check's message)
            ok = tf.equal(y, 0) | tf.equal(y, 1) | ~tf.math.is_finite(y)
            tf.debugging.Assert(tf.reduce_all(ok), [_NOT_INDICATOR])
            return y

        return encode_indicator
    if classes is None:  # regression

        def encode_reg(y, dtype):
            y = tf.reshape(tf.cast(y, dtype), [-1, n_outputs])
            if nonnegative:  # NaN gets the finiteness check's message
                # (not ``~(y < 0)``: graph optimisation rewrites it y >= 0)
                ok = tf.reduce_all((y >= 0) | tf.math.is_nan(y))
                tf.debugging.Assert(ok, [_NEGATIVE_TARGETS])
            return y

        return encode_reg
    table = _class_table(classes, y_spec.dtype)

    def encode(y, dtype):
        if y_spec.shape.rank == 2:  # one label per row: (n, 1)
            width = tf.debugging.assert_equal(
                tf.shape(y)[1], 1, message=_Y_WIDTH, summarize=1
            )
            with tf.control_dependencies([width]):
                y = tf.identity(y)
        y = tf.reshape(y, [-1])
        onehot = tf.cast(tf.equal(y[:, None], table[None, :]), dtype)
        tf.debugging.assert_equal(
            tf.reduce_max(onehot, axis=1) if len(classes) > 0 else onehot,
            tf.ones_like(onehot[:, 0]),
            message="UNSEEN_LABEL",
        )
        if len(classes) == 1:  # scikit-learn's LabelBinarizer: all zeros
            return tf.zeros_like(onehot)
        return onehot[:, 1:] if len(classes) == 2 else onehot

    return encode


def dataset_epoch_function(model, solver: str, nesterov: bool, encode, key):
    """Compiled ``fn(params, slots, ds, hyper, alpha, step0)`` -> epoch totals.

    The batches are drawn by an explicit ``tf.while_loop`` over the dataset's
    iterator. (AutoGraph's ``for batch in ds`` makes the loop body a
    ``tf.data`` reduce function, which TensorFlow instantiates and optimises
    again on every call: ~0.1-0.5 s an epoch whatever the data's size.)
    """

    def epoch(params, slots, ds, hyper, alpha, step0):
        slots, scale = _split_scale(model, slots)
        dtype = params[0].dtype
        alpha = tf.cast(alpha, dtype)
        iterator = iter(ds)

        def train(batch, total, rows, steps, rate):
            x, y, sw = checked_batch(batch, encode, dtype)
            n_b = tf.shape(x, out_type=tf.int64)[0]

            def step():
                loss, grads = loss_and_grads(
                    params, x, y, sw, model, alpha, current_scale(scale)
                )
                new_rate = _update(
                    solver, nesterov, params, grads, slots, hyper, step0, steps, scale
                )
                constrain(model, params)
                return (
                    total + loss * tf.cast(n_b, dtype),
                    rows + n_b,
                    steps + 1,
                    new_rate,
                )

            # an empty batch (a generator's empty chunk) is skipped
            return tf.cond(n_b > 0, step, lambda: (total, rows, steps, rate))

        def body(more, total, rows, steps, rate):
            nxt = iterator.get_next_as_optional()
            return tf.cond(
                nxt.has_value(),
                lambda: (True, *train(nxt.get_value(), total, rows, steps, rate)),
                lambda: (False, total, rows, steps, rate),
            )

        start = (
            tf.constant(True),
            tf.zeros([], dtype),
            tf.zeros([], tf.int64),
            tf.zeros([], tf.int64),
            tf.convert_to_tensor(hyper[0]),
        )
        _, total, rows, steps, rate = tf.while_loop(lambda more, *_: more, body, start)
        return total, rows, steps, rate

    return _cached(
        model, ("dataset_epoch", solver, bool(nesterov), *key), lambda: epoch
    )


def checked_batch(batch, encode, dtype):
    """``(x, y, sample_weight)`` of a training batch in ``dtype``, checked as
    scikit-learn checks arrays: finite values, weights that do not sum to 0."""
    x = tf.debugging.assert_all_finite(tf.cast(batch[0], dtype), "TFMLP_NONFINITE_X")
    rows = tf.debugging.assert_equal(
        tf.shape(batch[1])[0], tf.shape(x)[0], message=_Y_ROWS, summarize=1
    )
    with tf.control_dependencies([rows]):
        y = encode(batch[1], dtype)
    y = tf.debugging.assert_all_finite(y, "TFMLP_NONFINITE_Y")
    if len(batch) < 3:
        return x, y, tf.ones(tf.shape(x)[:1], dtype)
    sw = tf.reshape(tf.cast(batch[2], dtype), [-1])
    rows = tf.debugging.assert_equal(
        tf.size(sw), tf.shape(x)[0], message=_SW_ROWS, summarize=1
    )
    with tf.control_dependencies([rows]):
        sw = tf.debugging.assert_all_finite(sw, "TFMLP_NONFINITE_SW")
    empty = tf.equal(tf.size(sw), 0)  # skipped by the epoch
    check = tf.debugging.Assert(empty | (tf.reduce_sum(sw) != 0), [_ZERO_WEIGHTS])
    with tf.control_dependencies([check]):
        return x, y, tf.identity(sw)


def without_empty_batches(ds):
    """``ds`` less the batches with no rows (a generator's empty chunk): they
    would be an optimizer step on a zero weight sum. (The single-device epoch
    skips them in its loop instead: in a review's ad hoc timing the filter
    added ~15-20% to an epoch of 32-row batches.)"""
    return ds.filter(lambda x, *rest: tf.shape(x)[0] > 0)


class DatasetRunner:
    """The ``EpochRunner`` interface over a ``tf.data.Dataset``."""

    def __init__(self, est, net, ds, encode, encode_key):
        self.net = net
        self.optimizer = est._optimizer
        self.ds = ds
        self.n_samples = 0
        # the dataset's own count when it knows it (tf.data), else unknown
        # until the first pass (callbacks' params["steps"] until then)
        known = int(ds.cardinality())
        self.n_batches = known if known >= 0 else None
        self.model = est._train_model(net)
        self.fn = dataset_epoch_function(
            self.model,
            *update_rule(est._optimizer),
            encode,
            encode_key,
        )
        self.alpha = tf.constant(float(est.alpha), tf.float64)

    def run_epoch(self, random_state) -> np.floating:
        opt = self.optimizer
        is_adam = isinstance(opt, Adam)
        step0 = float(opt.t) if is_adam else 0.0
        try:
            total, rows, steps, rate = self.fn(
                self.net.variables,
                opt.slots(model=self.model),
                self.ds,
                tf.constant(opt.hyper()),
                self.alpha,
                tf.constant(step0, tf.float64),
            )
        except DATA_ERRORS as exc:
            raise dataset_error(exc, "Training on the dataset", self.ds) from None
        self.n_samples = int(rows.numpy())
        self.n_batches = int(steps.numpy())
        require_samples(self.n_samples)
        if is_adam:
            opt.t += self.n_batches
            opt.learning_rate = float(rate.numpy())
        return total.numpy()


def predict_batches(
    ds, n_features: int, forward_batch, what: str = "The dataset", labels: bool = False
):
    """Apply ``forward_batch`` to every X batch of ``ds`` (named ``what`` in
    errors); with ``labels``, collect its y and sample weights too (else they
    are not read: prediction takes any ``(X, ...)`` elements).

    Parameters
    ----------
    ds : tf.data.Dataset
        Batches of ``X``, ``(X, y)`` or ``(X, y, sample_weight)``.
    n_features : int
        The number of features the estimator expects.
    forward_batch : callable
        Maps an X batch (ndarray) to the network's output batch.

    Returns
    -------
    outputs : ndarray
        The concatenated outputs.
    y : ndarray or None
        The concatenated labels (strings decoded), if the dataset has them.
    sample_weight : ndarray or None
        The concatenated sample weights, if the dataset has them.
    """
    check_finite(ds)
    spec = ds.element_spec
    x_spec = spec[0] if isinstance(spec, tuple) else spec
    labels = labels and isinstance(spec, tuple) and len(spec) > 1
    if labels:
        check_label_specs(spec, what)
    if feature_count(x_spec) != n_features:
        _fail(
            f"The dataset's X has {x_spec.shape[1]} features, but the estimator "
            f"is expecting {n_features} features as input."
        )
    parts: tuple[list, list, list] = ([], [], [])
    try:
        for batch in ds:
            _collect_batch(batch, forward_batch, parts, labels)
    except DATA_ERRORS as exc:
        raise dataset_error(exc, f"Reading {what[:1].lower()}{what[1:]}", ds) from None
    outputs, targets, weights = parts
    require_samples(sum(len(out) for out in outputs), what)
    y = decode_labels(np.concatenate(targets)) if targets else None
    sw = np.concatenate(weights) if weights else None
    return np.concatenate(outputs, axis=0), y, sw


def _collect_batch(batch, forward_batch, parts, labels: bool) -> None:
    """Append one batch's outputs (and, with ``labels``, its labels and sample
    weights) to ``parts``."""
    outputs, targets, weights = parts
    if not isinstance(batch, tuple):
        batch = (batch,)
    x = batch[0]
    if x.dtype.is_floating and not bool(tf.reduce_all(tf.math.is_finite(x))):
        # (in TensorFlow: NumPy does not know bfloat16 as a float kind)
        kind = "NaN" if bool(tf.reduce_any(tf.math.is_nan(x))) else "infinity"
        _fail(f"Input X contains {kind} (a batch of the dataset).")
    outputs.append(forward_batch(x.numpy()))
    if not labels:
        return
    if len(batch) > 1:
        targets.append(batch[1].numpy())
    if len(batch) > 2:
        weights.append(np.asarray(batch[2].numpy(), dtype=np.float64).reshape(-1))


class StreamTargets:
    """How a stream's labels are encoded in the graph (and the cache key for it)."""

    def __init__(self, encode, key):
        self.encode = encode
        self.key = key


class DatasetMixin:
    """Dataset-specific steps of fit / predict (mixed into ``BaseMLP``)."""

    def _validate_dataset(self, ds, y, sample_weight, first_pass, incremental, classes):
        if y is not None or sample_weight is not None:
            _fail(
                "With a tf.data.Dataset as X, y and sample weights come from the "
                "dataset's (X, y[, sample_weight]) elements; pass y=None."
            )
        if self.solver == "lbfgs":
            _fail(
                "solver='lbfgs' needs the whole training set in memory; use "
                "solver='adam' or 'sgd' with a tf.data.Dataset."
            )
        if getattr(self, "class_weight", None) is not None:
            _fail(
                "class_weight is not supported with a tf.data.Dataset: put the "
                "weights in the dataset's third (sample_weight) element."
            )
        n_features, y_spec, _ = training_spec(ds)
        if first_pass:
            self.n_features_in_ = n_features
        elif n_features != self.n_features_in_:
            _fail(
                f"X has {n_features} features, but {type(self).__name__} is "
                f"expecting {self.n_features_in_} features as input."
            )
        check_dataset_feature_names(self, ds, reset=first_pass)
        x_dtype = ds.element_spec[0].dtype
        dtype = np.float32 if x_dtype == tf.float32 else np.float64
        if self.compute_dtype is not None:  # float32 or a mixed policy
            dtype = np.float32
        n_outputs, targets = self._dataset_targets(
            y_spec, classes, first_pass, incremental
        )
        return np.zeros((1, n_outputs)), targets, n_features, dtype

    def _forward_dataset(self, ds):
        """(outputs, y or None) for every batch of a dataset."""
        check_dataset_feature_names(self, ds)
        return self._dataset_outputs(ds, labels=False)[:2]

    def _dataset_outputs(self, ds, what: str = "The dataset", labels: bool = True):
        """(outputs, y or None, sample weights or None) over a dataset (y and
        the weights None without ``labels``)."""
        net = self._network()
        fn = self._batch_forward(net)
        return predict_batches(ds, self.n_features_in_, fn, what, labels)

    def _score_dataset(self, ds, sample_weight=None) -> float:
        """``score`` on a dataset of ``(X, y)`` or ``(X, y, sample_weight)``.

        Parameters
        ----------
        ds : tf.data.Dataset
            The labelled dataset.
        sample_weight : array-like, default=None
            Weights for a dataset without its own third element.

        Returns
        -------
        score : float
            The estimator's score (accuracy or R^2), weighted when the
            dataset (or ``sample_weight``) gives weights.
        """
        check_dataset_feature_names(self, ds)
        raw, y_true, weights = self._dataset_outputs(ds)
        if y_true is None:
            _fail("score needs a dataset of (X, y) or (X, y, sample_weight) batches.")
        if weights is not None and sample_weight is not None:
            _fail(
                "The dataset yields sample weights (its third element): pass "
                "sample_weight=None."
            )
        if weights is None:
            weights = sample_weight
        return self._score_function(y_true, self._decode(raw), sample_weight=weights)

    def _batch_forward(self, net):
        from tfmlp._host_forward import output_activation
        from tfmlp._training import predict_function

        model = self._forward_model(net)
        fn = predict_function(model, False)

        def forward(x):
            x = np.asarray(x)
            if self._promotes(x, net):  # as for arrays: float64 outputs
                return self._forward(x)
            x = tf.constant(np.asarray(x, dtype=net.dtype))
            n_rows = tf.constant(x.shape[0], tf.int64)
            z = fn(net.variables, x, n_rows).numpy()
            return output_activation(z, model.spec.out_activation)

        return forward


def decode_labels(y):
    """tf.string batches come back from TensorFlow as bytes: make them str."""
    if y is not None and y.dtype == object and len(y) and isinstance(y.flat[0], bytes):
        return np.array([v.decode() for v in y.ravel()]).reshape(y.shape)
    return y


def check_dataset_feature_names(estimator, ds, reset: bool = False) -> None:
    """Feature names of a dataset from ``tfmlp.data`` (its columns), checked
    as scikit-learn checks a DataFrame's: ``reset`` (a first fit) sets or
    clears ``feature_names_in_``; otherwise other names or another order are
    a ValueError, and names on one side only a UserWarning, in scikit-learn's
    words. Other datasets carry no names (as arrays)."""
    names = getattr(ds, "_tfmlp_feature_names", None)
    if reset:
        if names:
            estimator.feature_names_in_ = np.asarray(names, dtype=object)
        else:
            estimator.__dict__.pop("feature_names_in_", None)
        return
    fitted = getattr(estimator, "feature_names_in_", None)
    kind = type(estimator).__name__
    if fitted is None or names is None:
        if fitted is not None:
            warn(
                f"X does not have valid feature names, but {kind} was fitted "
                "with feature names",
                UserWarning,
                like_sklearn=True,
            )
        elif names is not None:
            warn(
                f"X has feature names, but {kind} was fitted without feature names",
                UserWarning,
                like_sklearn=True,
            )
        return
    fitted, names = [str(n) for n in fitted], list(names)
    if fitted == names:
        return
    message = "The feature names should match those that were passed during fit.\n"
    unseen = [n for n in names if n not in fitted]
    missing = [n for n in fitted if n not in names]
    for title, group in (
        ("Feature names unseen at fit time:", unseen),
        ("Feature names seen at fit time, yet now missing:", missing),
    ):
        if group:
            message += title + "\n" + "".join(f"- {n}\n" for n in group)
    if not unseen and not missing:
        message += "Feature names must be in the same order as they were in fit.\n"
    raise ValueError(message)
