"""Training under a ``tf.distribute`` strategy (several devices or machines).

The estimator trains under the strategy when ``fit`` is called inside
``with strategy.scope():`` or when ``distribute="mirrored"`` /
``"multi_worker"`` is set. Each global batch is split across replicas; every
replica computes its share of the objective against the *global* sample
(weight) sum, the gradients are summed across replicas, and the L2 term
``alpha * W / S_global`` is added once, so one step equals the step a single
device would take on the same global batch. Weights and optimizer slots are
mirrored variables updated identically on every replica.
"""

from __future__ import annotations

import warnings

import numpy as np
import tensorflow as tf

from tfmlp._losses import data_loss, gradient_surrogate, l2_penalty
from tfmlp._optimizers import Adam, update_rule
from tfmlp._precision import current_scale, scaled, unscaled
from tfmlp._streaming import (
    DATA_ERRORS,
    checked_batch,
    dataset_error,
    require_samples,
    without_empty_batches,
)
from tfmlp._training import _split_scale, _update

_STRATEGIES: dict = {}
_OPTIONS_NOTE = "To make it possible to preserve tf.data options"


def resolve_strategy(distribute):
    """The strategy to train under, or None for plain single-device training."""
    if distribute is None:
        return tf.distribute.get_strategy() if tf.distribute.has_strategy() else None
    if tf.distribute.has_strategy() and (
        tf.distribute.get_strategy() is not _STRATEGIES.get(distribute)
    ):
        raise ValueError(
            f"distribute={distribute!r} was set inside the scope of another "
            "tf.distribute strategy; TensorFlow trains under one strategy at a "
            "time. Set distribute=None to train under the scope's strategy, or "
            "fit outside the scope."
        )
    if distribute not in _STRATEGIES:
        if distribute == "mirrored":
            _STRATEGIES[distribute] = tf.distribute.MirroredStrategy()
        else:  # "multi_worker": the cluster comes from the TF_CONFIG variable
            logger = tf.get_logger()  # its start-up notice ("Collective ops
            level = logger.level  # is not configured at program startup")
            logger.setLevel("ERROR")  # is about TensorFlow's own setup
            try:
                _STRATEGIES[distribute] = tf.distribute.MultiWorkerMirroredStrategy()
            except RuntimeError as exc:  # TensorFlow already ran something
                raise ValueError(
                    "distribute='multi_worker' could not start: TensorFlow "
                    "configures a cluster's collective ops only before it runs "
                    "anything in the process, and something already ran (a fit, "
                    "a prediction, another TensorFlow call). Fit first thing in "
                    "the worker process, or create tf.distribute."
                    "MultiWorkerMirroredStrategy() at program start and fit in "
                    f"its scope (TensorFlow: {exc})."
                ) from None
            finally:
                logger.setLevel(level)
    return _STRATEGIES[distribute]


def check_shardable(strategy, X) -> None:
    """Refuse a reader dataset shuffled without a seed on several workers:
    TensorFlow splits its batches between the workers by position, and each
    worker's own order would give some rows twice an epoch and others never."""
    multi_worker = getattr(strategy.extended, "_in_multi_worker_mode", None)
    if getattr(X, "_tfmlp_unseeded_shuffle", False) and multi_worker and multi_worker():
        raise ValueError(
            "Under a multi-worker strategy every worker must read the data in "
            "the same order: pass the same seed= to read_csv/read_parquet on "
            "every worker (or shuffle=False)."
        )


def mirrored_variables(strategy, arrays: list[np.ndarray]) -> list[tf.Variable]:
    """Variables created in the strategy's scope, written by the first replica."""
    with strategy.scope():
        return [
            tf.Variable(a, aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)
            for a in arrays
        ]


def _replica_step(model, solver, nesterov, params, slots, batch, hyper, alpha, step):
    x, y, sw = batch
    ctx = tf.distribute.get_replica_context()
    slots, scale = _split_scale(model, slots)
    with tf.GradientTape() as tape:
        tape.watch(params)
        z, p = model(params, x)
        total_weight = ctx.all_reduce(tf.distribute.ReduceOp.SUM, tf.reduce_sum(sw))
        surrogate = gradient_surrogate(z, p, y, sw, total_weight)
        surrogate = scaled(surrogate, current_scale(scale))  # float16 training
    grads = ctx.all_reduce(tf.distribute.ReduceOp.SUM, tape.gradient(surrogate, params))
    grads = unscaled(grads, current_scale(scale))
    coefs = model.coefs(params)
    n_coefs = len(coefs)
    grads = [
        g + alpha * w / total_weight for g, w in zip(grads[:n_coefs], coefs)
    ] + list(grads[n_coefs:])
    data = ctx.all_reduce(
        tf.distribute.ReduceOp.SUM, data_loss(model.spec.loss, y, p, sw, total_weight)
    )
    loss = data + l2_penalty(coefs, alpha, total_weight)
    rows = ctx.all_reduce(tf.distribute.ReduceOp.SUM, tf.shape(x, out_type=tf.int64)[0])
    rate = _update(solver, nesterov, params, grads, slots, hyper, step - 1, 0, scale)
    return loss, rows, rate


def make_epoch(strategy, model, solver, nesterov, params, slots):
    """A compiled epoch over a distributed dataset of (x, y, sw) batches."""

    @tf.function
    def epoch(dist_ds, hyper, alpha, step0):
        dtype = params[0].dtype
        alpha = tf.cast(alpha, dtype)
        total = tf.zeros([], dtype)
        rows = tf.zeros([], tf.int64)
        steps = tf.zeros([], tf.int64)
        rate = hyper[0]
        for batch in dist_ds:
            step = step0 + tf.cast(steps + 1, tf.float64)
            out = strategy.run(
                _replica_step,
                args=(
                    model,
                    solver,
                    nesterov,
                    params,
                    slots,
                    batch,
                    hyper,
                    alpha,
                    step,
                ),
            )
            loss, n_b, rate = (strategy.experimental_local_results(v)[0] for v in out)
            total += loss * tf.cast(n_b, dtype)
            rows += n_b
            steps += 1
        return total, rows, steps, rate

    return epoch


class DistributedRunner:
    """The ``EpochRunner`` interface under a ``tf.distribute`` strategy."""

    def __init__(self, est, net, strategy, batches, source=None):
        self.strategy = strategy
        self.source = source  # the dataset fit was given, named in errors
        self.optimizer = est._optimizer
        self.batches = batches  # callable: random_state -> tf.data.Dataset
        self.n_samples = 0
        self.n_batches = None
        # the compiled epoch holds on to net.variables: build Keras' view of
        # the network (which replaces them by its own, mirrored, variables)
        # first, not later when a callback reads model_
        net.keras_model(est.activation, est.out_activation_, est.n_features_in_)
        model = est._train_model(net)
        slots = self.optimizer.slots(strategy, model=model)
        rule = update_rule(est._optimizer)
        # the compiled epoch of the last call, reused while nothing it holds
        # changed (each partial_fit would otherwise trace a new one)
        key = (
            id(strategy),
            model.spec,
            rule,
            tuple(map(id, net.variables)),
            tuple(map(id, slots)),
        )
        cached = getattr(net, "_distributed_epoch", None)
        if cached is not None and cached[0] == key:
            self.fn = cached[1]
        else:
            self.fn = make_epoch(strategy, model, *rule, net.variables, slots)
            net._distributed_epoch = (key, self.fn)
        self.alpha = tf.constant(float(est.alpha), tf.float64)

    def run_epoch(self, random_state):
        opt = self.optimizer
        is_adam = isinstance(opt, Adam)
        try:
            with warnings.catch_warnings():  # TensorFlow's note on tf.data
                # options read in graph mode, by its own distributed iterator
                warnings.filterwarnings("ignore", _OPTIONS_NOTE, UserWarning)
                dist = self.strategy.experimental_distribute_dataset(
                    self.batches(random_state),
                    tf.distribute.InputOptions(experimental_fetch_to_device=False),
                )
                total, rows, steps, rate = self.fn(
                    dist,
                    tf.constant(opt.hyper()),
                    self.alpha,
                    tf.constant(float(opt.t) if is_adam else 0.0, tf.float64),
                )
        except DATA_ERRORS as exc:
            raise dataset_error(exc, "Training on the dataset", self.source) from None
        self.n_samples = int(rows.numpy())
        self.n_batches = int(steps.numpy())
        require_samples(self.n_samples)
        if is_adam:
            opt.t += self.n_batches
            opt.learning_rate = float(rate.numpy())
        return total.numpy()


def global_batches(est, net, X, y, sw):
    """Callable ``random_state -> Dataset`` of global (x, y, sw) batches.

    Arrays keep scikit-learn's batching and per-epoch shuffle (composed
    permutations drawn from the estimator's RandomState); a ``tf.data``
    stream is used as it comes, its labels encoded in the pipeline.
    """
    from sklearn.utils import shuffle as sk_shuffle

    from tfmlp._data import is_sparse
    from tfmlp._params import check_batch_weights, resolve_batch_size, signed_weights
    from tfmlp._streaming import is_dataset

    dtype = tf.as_dtype(net.dtype)
    if is_dataset(X):
        encode = y.encode

        def to_xyw(*batch):  # checked as single-device streams are
            return checked_batch(batch, encode, dtype)

        mapped = without_empty_batches(X).map(to_xyw)
        return lambda random_state: mapped
    if is_sparse(X):
        raise ValueError(
            "Sparse input is not supported under a tf.distribute strategy; pass "
            "a dense array or a tf.data.Dataset."
        )
    n = X.shape[0]
    batch_size = resolve_batch_size(est.batch_size, n)
    X = np.asarray(X, dtype=net.dtype)
    y = np.asarray(y, dtype=net.dtype)
    signed = signed_weights(sw)  # weights a batch could sum to zero with
    sw = np.ones(n, net.dtype) if sw is None else np.asarray(sw, dtype=net.dtype)
    order = {"idx": np.arange(n)}

    def batches(random_state):
        if random_state is not None:
            order["idx"] = sk_shuffle(order["idx"], random_state=random_state)
        idx = order["idx"]
        check_batch_weights(signed, idx, batch_size)
        ds = tf.data.Dataset.from_tensor_slices((X[idx], y[idx], sw[idx]))
        return ds.batch(batch_size)

    return batches
