"""Training and prediction on ``tf.data.Dataset`` streams (data larger than memory).

One pass over the dataset is one epoch: ``n_iter_``, ``loss_curve_`` and
``t_`` advance as for arrays. Batches are used as the dataset yields them
(``batch_size`` does not re-batch a stream, and ``shuffle`` is the dataset's
own business: shuffle it, e.g. with a bounded ``Dataset.shuffle`` buffer as the
``tfmlp.data`` readers do). The whole epoch, dataset iteration included, runs
inside one compiled TensorFlow function.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from tfmlp._losses import loss_and_grads
from tfmlp._optimizers import Adam
from tfmlp._precision import current_scale
from tfmlp._training import _cached, _split_scale, _update


def is_dataset(obj) -> bool:
    return isinstance(obj, tf.data.Dataset)


def _fail(msg: str):
    raise ValueError(msg)


def training_spec(ds) -> tuple[int, tf.TensorSpec, bool]:
    """(n_features, y spec, has sample weights) of a training dataset."""
    spec = ds.element_spec
    if not isinstance(spec, tuple) or len(spec) not in (2, 3):
        _fail(
            "A tf.data.Dataset passed to fit/partial_fit must yield (X, y) or "
            f"(X, y, sample_weight) batches. Its element_spec is {spec!r}."
        )
    n_features = feature_count(spec[0])
    y_spec = spec[1]
    if not isinstance(y_spec, tf.TensorSpec) or y_spec.shape.rank not in (1, 2):
        _fail(f"The dataset's y must be a 1-D or 2-D tensor batch; got {y_spec!r}.")
    return n_features, y_spec, len(spec) == 3


def feature_count(x_spec) -> int:
    """Number of features from the X part of an element_spec."""
    if (
        not isinstance(x_spec, tf.TensorSpec)
        or x_spec.shape.rank != 2
        or x_spec.shape[1] is None
    ):
        _fail(
            "The dataset's X must be batches of shape (batch, n_features) with a "
            f"known n_features; got {x_spec!r}. Batch the dataset (ds.batch(n))."
        )
    if not (x_spec.dtype.is_floating or x_spec.dtype.is_integer):
        _fail(f"The dataset's X must be numeric; got dtype {x_spec.dtype.name}.")
    return int(x_spec.shape[1])


def label_encoder(classes, y_spec, multilabel: bool, n_outputs: int):
    """Graph function mapping a batch of labels to the encoded float targets."""
    if multilabel:
        return lambda y, dtype: tf.cast(y, dtype)
    if classes is None:  # regression

        def encode_reg(y, dtype):
            return tf.reshape(tf.cast(y, dtype), [-1, n_outputs])

        return encode_reg
    if y_spec.dtype == tf.string:
        table = tf.constant(np.asarray(classes).astype(str))
    else:
        table = tf.cast(tf.constant(np.asarray(classes)), y_spec.dtype)

    def encode(y, dtype):
        y = tf.reshape(y, [-1])
        onehot = tf.cast(tf.equal(y[:, None], table[None, :]), dtype)
        tf.debugging.assert_equal(
            tf.reduce_max(onehot, axis=1) if len(classes) > 0 else onehot,
            tf.ones_like(onehot[:, 0]),
            message="UNSEEN_LABEL",
        )
        return onehot[:, 1:] if len(classes) == 2 else onehot

    return encode


def dataset_epoch_function(model, solver: str, nesterov: bool, encode, key):
    """Compiled ``fn(params, slots, ds, hyper, alpha, step0)`` -> epoch totals."""

    def epoch(params, slots, ds, hyper, alpha, step0):
        slots, scale = _split_scale(model, slots)
        dtype = params[0].dtype
        alpha = tf.cast(alpha, dtype)
        total = tf.zeros([], dtype)
        rows = tf.zeros([], tf.int64)
        steps = tf.zeros([], tf.int64)
        rate = hyper[0]
        for batch in ds:
            x = tf.cast(batch[0], dtype)
            y = encode(batch[1], dtype)
            n_b = tf.shape(x, out_type=tf.int64)[0]
            sw = tf.cast(batch[2], dtype) if len(batch) == 3 else tf.ones([n_b], dtype)
            loss, grads = loss_and_grads(
                params,
                x,
                y,
                tf.reshape(sw, [-1]),
                model,
                alpha,
                current_scale(scale),
            )
            rate = _update(
                solver, nesterov, params, grads, slots, hyper, step0, steps, scale
            )
            total += loss * tf.cast(n_b, dtype)
            rows += n_b
            steps += 1
        return total, rows, steps, rate

    return _cached(
        model, ("dataset_epoch", solver, bool(nesterov), *key), lambda: epoch
    )


class DatasetRunner:
    """The ``EpochRunner`` interface over a ``tf.data.Dataset``."""

    def __init__(self, est, net, ds, encode, encode_key):
        self.net = net
        self.optimizer = est._optimizer
        self.ds = ds
        self.n_samples = 0
        self.n_batches = None  # unknown until the first pass
        self.model = est._train_model(net)
        self.fn = dataset_epoch_function(
            self.model,
            est.solver,
            est.nesterovs_momentum,
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
        except tf.errors.InvalidArgumentError as exc:
            if "UNSEEN_LABEL" in str(exc):
                raise ValueError(
                    "The dataset contains labels that are not in classes_ "
                    "(pass every label with classes=)."
                ) from None
            raise ValueError(f"Training on the dataset failed: {exc.message}") from None
        self.n_samples = int(rows.numpy())
        self.n_batches = int(steps.numpy())
        if self.n_samples == 0:
            raise ValueError("The dataset is empty: it yielded no samples.")
        if is_adam:
            opt.t += self.n_batches
            opt.learning_rate = float(rate.numpy())
        return total.numpy()


def predict_batches(ds, n_features: int, forward_batch):
    """Apply ``forward_batch`` to every X batch of ``ds``; concatenate."""
    spec = ds.element_spec
    x_spec = spec[0] if isinstance(spec, tuple) else spec
    if feature_count(x_spec) != n_features:
        _fail(
            f"The dataset's X has {x_spec.shape[1]} features, but the estimator "
            f"is expecting {n_features} features as input."
        )
    outputs, targets = [], []
    for batch in ds:
        x = batch[0] if isinstance(batch, tuple) else batch
        outputs.append(forward_batch(x.numpy()))
        if isinstance(batch, tuple) and len(batch) > 1:
            targets.append(batch[1].numpy())
    if not outputs:
        _fail("The dataset is empty: it yielded no samples.")
    y = decode_labels(np.concatenate(targets)) if targets else None
    return np.concatenate(outputs, axis=0), y


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
            self.__dict__.pop("feature_names_in_", None)
        elif n_features != self.n_features_in_:
            _fail(
                f"X has {n_features} features, but {type(self).__name__} is "
                f"expecting {self.n_features_in_} features as input."
            )
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
        net = self._network()
        fn = self._batch_forward(net)
        return predict_batches(ds, self.n_features_in_, fn)

    def _batch_forward(self, net):
        from tfmlp._training import predict_function

        fn = predict_function(self._forward_model(net), False)

        def forward(x):
            x = tf.constant(np.asarray(x, dtype=net.dtype))
            n_rows = tf.constant(x.shape[0], tf.int64)
            return fn(net.variables, x, n_rows).numpy()

        return forward


def decode_labels(y):
    """tf.string batches come back from TensorFlow as bytes: make them str."""
    if y is not None and y.dtype == object and len(y) and isinstance(y.flat[0], bytes):
        return np.array([v.decode() for v in y.ravel()]).reshape(y.shape)
    return y
