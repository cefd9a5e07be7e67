"""One epoch of minibatch training, driven from Python once per epoch.

The shuffle is drawn in NumPy from the estimator's RandomState, exactly as
scikit-learn draws it (permutations compose across epochs); everything inside
the epoch (batch gathering, forward, backward, update) runs in one compiled
TensorFlow function.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf
from sklearn.utils import shuffle

from tfmlp._data import csr_tensors, input_tensors, is_sparse
from tfmlp._optimizers import Adam
from tfmlp._params import resolve_batch_size
from tfmlp._training import epoch_function

XLA_MIN_VALUES = 1_000_000


def use_xla(jit_compile, X, sparse: bool) -> bool:
    """XLA for dense input when asked, or by default for large inputs."""
    if sparse or jit_compile is False:
        return False
    return bool(jit_compile) or X.shape[0] * X.shape[1] >= XLA_MIN_VALUES


class EpochRunner:
    """Training data as tensors plus the compiled epoch for one fit call."""

    def __init__(self, est, net, X, y, sample_weight):
        self.net = net
        self.optimizer = est._optimizer
        self.n_samples = X.shape[0]
        self.batch_size = resolve_batch_size(est.batch_size, self.n_samples)
        self.n_batches = -(-self.n_samples // self.batch_size)
        self.sparse = is_sparse(X)
        dtype = net.dtype
        self.X = X.tocsr() if self.sparse else X
        self.x = csr_tensors(self.X, dtype) if self.sparse else input_tensors(X, dtype)
        self.y = tf.constant(np.asarray(y, dtype=dtype))
        if sample_weight is None:
            sample_weight = np.ones(self.n_samples, dtype=dtype)
        self.sw = tf.constant(np.asarray(sample_weight, dtype=dtype))
        self.sample_idx = np.arange(self.n_samples, dtype=int)
        self.identity = tf.constant(self.sample_idx, tf.int64)
        xla = use_xla(est.jit_compile, X, self.sparse)
        self.fn = epoch_function(
            est._forward_model(net),
            est.solver,
            est.nesterovs_momentum,
            self.sparse,
            xla_batch=self.batch_size if xla else 0,
        )
        self.alpha = tf.constant(float(est.alpha), tf.float64)
        self.batch = tf.constant(self.batch_size, tf.int64)

    def run_epoch(self, random_state) -> np.floating:
        """Train one epoch; ``random_state`` None means no shuffling."""
        x, order = self.x, self.identity
        if random_state is not None:
            self.sample_idx = shuffle(self.sample_idx, random_state=random_state)
            order = tf.constant(self.sample_idx, tf.int64)
            if self.sparse:
                x = csr_tensors(self.X[self.sample_idx], self.net.dtype)
        opt = self.optimizer
        is_adam = isinstance(opt, Adam)
        step0 = float(opt.t) if is_adam else 0.0
        total, rate = self.fn(
            self.net.variables,
            opt.slots(),
            x,
            self.y,
            self.sw,
            order,
            self.batch,
            tf.constant(opt.hyper()),
            self.alpha,
            tf.constant(step0, tf.float64),
        )
        if is_adam:
            opt.t += self.n_batches
            opt.learning_rate = float(rate.numpy())
        return total.numpy()
