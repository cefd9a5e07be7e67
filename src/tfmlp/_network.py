"""The network: scikit-learn's weight initialisation, the TensorFlow forward pass,
and the holder of the weight variables (with its Keras model, built on request).
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from tfmlp import _mirrored as mirrored
from tfmlp._compat import keeps_keras_policy
from tfmlp._data import CsrMatrix, FirstProduct
from tfmlp._params import NetSpec, check_activation
from tfmlp._precision import cast_matmul

# Activations beyond scikit-learn's four use Keras' own functions, so that the
# estimator and ``model_`` compute exactly the same thing.
EXTRA_ACTIVATIONS = ("leaky_relu", "elu", "selu", "gelu", "swish")


def _keras_activation(name: str):
    def apply(x):
        import keras

        return keras.activations.get(name)(x)

    return apply


@tf.custom_gradient
def expit(z):
    """``1 / (1 + exp(-z))``, SciPy's ``expit`` formula (scikit-learn's
    logistic activation), with the derivative ``p * (1 - p)``.

    ``tf.math.sigmoid`` computes ``e / (1 + e)`` with ``e = exp(z)``: a few
    ulps apart near 1, which the log-loss's ``log(1 - p)`` turned into
    relative errors up to 2.5e-4 in the reported loss on saturated outputs
    (unscaled breast_cancer, ad hoc) and so a different L-BFGS path
    (``test_parity.py``'s saturated-logistic test). The derivative is
    written out because automatic differentiation of this formula gives NaN where
    ``exp(-z)`` overflows.
    """
    p = 1 / (1 + tf.math.exp(-z))

    def grad(upstream):
        return upstream * (p * (1 - p))

    return p, grad


HIDDEN_ACTIVATIONS = {
    "identity": tf.identity,
    "logistic": expit,
    "tanh": tf.math.tanh,
    "relu": tf.nn.relu,
    **{name: _keras_activation(name) for name in EXTRA_ACTIVATIONS},
}

# scikit-learn sets identity / logistic / softmax (and predicts with any of its
# activations set as ``out_activation_`` after fit); exp: loss="poisson"
OUTPUT_ACTIVATIONS = {
    "identity": tf.identity,
    "logistic": expit,
    "softmax": tf.nn.softmax,
    "tanh": tf.math.tanh,
    "relu": tf.nn.relu,
    "exp": tf.math.exp,
}

KERAS_ACTIVATIONS = {
    "identity": "linear",
    "logistic": "sigmoid",
    "tanh": "tanh",
    "relu": "relu",
    "softmax": "softmax",
    "exp": "exponential",
    **{name: name for name in EXTRA_ACTIVATIONS},
}


def init_params(
    rs: np.random.RandomState, layer_units: list[int], activation: str, dtype
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Draw initial weights exactly as scikit-learn does (W1, b1, W2, b2, ...)."""
    factor = 2.0 if activation == "logistic" else 6.0
    coefs, intercepts = [], []
    for fan_in, fan_out in zip(layer_units[:-1], layer_units[1:]):
        bound = np.sqrt(factor / (fan_in + fan_out))
        coef = rs.uniform(-bound, bound, (fan_in, fan_out))
        intercept = rs.uniform(-bound, bound, fan_out)
        coefs.append(coef.astype(dtype, copy=False))
        intercepts.append(intercept.astype(dtype, copy=False))
    return coefs, intercepts


def matmul(x, w, dtype=None):
    """x @ w for a dense tensor, a tf.SparseTensor, a ``CsrMatrix`` or a
    ``FirstProduct`` x (whose value is the product).

    ``dtype`` (a mixed policy's "float16"/"bfloat16"): a dense product is
    computed in it and returned in ``x``'s dtype; sparse products stay in
    ``x``'s dtype.
    """
    if isinstance(x, CsrMatrix):
        return x.matmul(w)
    if isinstance(x, tf.SparseTensor):
        return tf.sparse.sparse_dense_matmul(x, w)
    if isinstance(x, FirstProduct):  # computed outside the graph (prediction)
        return x.value
    return cast_matmul(x, w, dtype)


def matmul_t(a, d, dtype=None):
    """a.T @ d for a dense tensor, a tf.SparseTensor or a ``CsrMatrix`` a
    (``dtype`` as for ``matmul``)."""
    if isinstance(a, CsrMatrix):
        return a.matmul(d, transpose=True)
    if isinstance(a, tf.SparseTensor):
        return tf.sparse.sparse_dense_matmul(a, d, adjoint_a=True)
    return cast_matmul(a, d, dtype, transpose_a=True)


def forward(params, x, spec):
    """Return (z, p): the output layer's pre-activation and its activation.

    ``params`` is ``coefs + intercepts`` (scikit-learn's order).
    """
    activations = forward_all(params, x, spec)
    return activations[-1], OUTPUT_ACTIVATIONS[spec.out_activation](activations[-1])


def forward_all(params, x, spec) -> list:
    """``[x, a_1, ..., a_{L-1}, z_L]``: the input, every hidden layer's
    activation and the output layer's pre-activation."""
    n = spec.n_layers - 1
    hidden = HIDDEN_ACTIVATIONS[spec.activation]
    activations = [x]
    for i in range(n):
        z = matmul(activations[-1], params[i], spec.matmul_dtype) + params[n + i]
        activations.append(hidden(z) if i < n - 1 else z)
    return activations


def _scale_by_derivative(delta, a, activation: str):
    """``delta * f'(z)`` written with the activation ``a = f(z)`` (as
    scikit-learn's ``DERIVATIVES`` do)."""
    if activation == "relu":
        return tf.where(a > 0, delta, tf.zeros([], delta.dtype))
    if activation == "logistic":
        return delta * a * (1 - a)
    if activation == "tanh":
        return delta * (1 - tf.square(a))
    return delta  # identity


# hidden activations whose derivative ``backward`` writes out by hand; the
# others (Keras' extra activations) are differentiated by a GradientTape
MANUAL_BACKWARD = ("identity", "logistic", "tanh", "relu")


def backward(params, activations, delta, spec):
    """Gradients of ``sum(delta * z_L)`` for every weight (coefs + intercepts).

    Backpropagation written out: per layer one product for the weight
    gradient, one for the next delta (none into the input), a column sum for
    the intercept. The same arithmetic as a GradientTape over ``forward``,
    without the tape's bookkeeping, so traces and XLA programs are smaller.
    """
    n = spec.n_layers - 1
    coef_grads, intercept_grads = [None] * n, [None] * n
    for i in range(n - 1, -1, -1):
        coef_grads[i] = matmul_t(activations[i], delta, spec.matmul_dtype)
        intercept_grads[i] = tf.reduce_sum(delta, axis=0)
        if i > 0:
            delta = cast_matmul(delta, params[i], spec.matmul_dtype, transpose_b=True)
            delta = _scale_by_derivative(delta, activations[i], spec.activation)
    return coef_grads + intercept_grads


@dataclass(frozen=True)
class StandardForward:
    """Forward model of the standard network (Dense stack over ``params``)."""

    spec: NetSpec

    def __call__(self, params, x, training: bool = True):
        return forward(params, x, self.spec)

    def coefs(self, params):
        return params[: self.spec.n_layers - 1]

    @property
    def manual_backward(self) -> bool:
        return self.spec.activation in MANUAL_BACKWARD

    def forward_all(self, params, x):
        return forward_all(params, x, self.spec)

    def backward(self, params, activations, delta):
        return backward(params, activations, delta, self.spec)

    def hidden(self, params, x):
        """Activations of the last hidden layer (x itself without hidden layers)."""
        n = self.spec.n_layers - 1
        act = HIDDEN_ACTIVATIONS[self.spec.activation]
        a = x
        for i in range(n - 1):
            a = act(matmul(a, params[i]) + params[n + i])
        if isinstance(a, CsrMatrix):  # no hidden layer: x itself
            return a.to_dense()
        return tf.sparse.to_dense(a) if isinstance(a, tf.SparseTensor) else a


# base Keras model -> its two-column view (``with_both_classes``), built once
_BOTH_CLASSES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


@keeps_keras_policy
def with_both_classes(model):
    """A binary classifier's network with ``predict_proba``'s two columns.

    ``model`` maps features to P(class 1) (one column); the view adds the
    ``1 - p`` column before it with standard layers (``Rescaling`` by -1 plus
    1, ``Concatenate``), over the same layers and so the same variables:
    training either trains both. Built once per ``model``.
    """
    view = _BOTH_CLASSES.get(model)
    if view is None:
        import keras

        out = model.outputs[0]
        dtype = str(model.inputs[0].dtype)
        taken = {layer.name for layer in model.layers}
        negative = keras.layers.Rescaling(
            scale=-1.0,
            offset=1.0,
            dtype=dtype,
            name=unused_name("negative_class", taken),
        )(out)
        both = keras.layers.Concatenate(
            axis=-1, dtype=dtype, name=unused_name("both_classes", taken)
        )([negative, out])
        view = keras.Model(model.inputs[0], both, name=model.name)
        _BOTH_CLASSES[model] = view
    return view


def unused_name(name: str, taken: set) -> str:
    """``name``, or ``name_1``, ``name_2``, ... : the first not in ``taken``
    (a layer name a user's hidden stack may already hold)."""
    candidate, i = name, 0
    while candidate in taken:
        i += 1
        candidate = f"{name}_{i}"
    return candidate


def is_standard(model) -> bool:
    """Whether a forward model is the standard network (not a Keras stack)."""
    return isinstance(model, StandardForward)


class Network:
    """Weight variables of one fitted network, in scikit-learn's order.

    The variables are plain ``tf.Variable`` objects until :meth:`keras_model` is
    called; from then on they are the Keras model's own variables, so training
    through the estimator and through Keras changes the same weights.
    """

    custom = False

    def __init__(self, coefs, intercepts, strategy=None):
        if strategy is None:
            self.variables = [tf.Variable(a) for a in coefs + intercepts]
        else:  # mirrored across the replicas of a tf.distribute strategy
            from tfmlp._distribute import mirrored_variables

            self.variables = mirrored_variables(strategy, coefs + intercepts)
        self.strategy = strategy
        self._keras = None
        self._keras_for = None  # the (hidden, output) activations of _keras
        self._snapshot = [np.array(a) for a in coefs + intercepts]  # = read()

    @property
    def exposed(self) -> bool:
        """Whether code outside the estimator holds these variables (its
        Keras model was built): only then can they change unseen."""
        return self._keras is not None

    def forward_model(
        self,
        activation: str,
        out_activation: str,
        matmul_dtype: str | None = None,
        loss: str | None = None,
    ) -> StandardForward:
        """The forward model; ``matmul_dtype`` (training under a mixed policy)
        computes its dense matrix products in float16/bfloat16; ``loss``: the
        reported objective (default: the one that goes with the output)."""
        return StandardForward(
            NetSpec.create(
                self.n_weights + 1, activation, out_activation, matmul_dtype, loss
            )
        )

    @property
    def n_weights(self) -> int:
        return len(self.variables) // 2

    @property
    def dtype(self):
        return self.variables[0].dtype.as_numpy_dtype

    def shapes(self) -> list[tuple[int, ...]]:
        return [tuple(v.shape) for v in self.variables]

    def read(self) -> list[np.ndarray]:
        return [mirrored.read(v) for v in self.variables]

    def assign(self, arrays: list[np.ndarray]) -> None:
        for v, a in zip(self.variables, arrays):
            mirrored.assign(v, np.asarray(a, dtype=self.dtype), self.strategy)
        self._snapshot = self.read()

    def full_state(self) -> list[np.ndarray]:
        """Every weight of the network (here: coefs + intercepts)."""
        return self.read()

    def load_full_state(self, arrays: list[np.ndarray]) -> None:
        self.assign(arrays)

    def snapshot(self) -> list[np.ndarray]:
        """The values at the last synchronisation with the estimator's arrays."""
        return self._snapshot

    def mark_synced(self) -> list[np.ndarray]:
        self._snapshot = self.read()
        return self._snapshot

    def has_keras_model(self, activation: str, out_activation: str) -> bool:
        """Whether ``keras_model`` returns a model built before (it builds
        one, taking new variables, on first use or for other activations)."""
        return self._keras is not None and self._keras_for == (
            activation,
            out_activation,
        )

    def keras_model(self, activation: str, out_activation: str, n_features: int):
        """A functional ``keras.Model`` (Dense layers only) over these weights."""
        if self.has_keras_model(activation, out_activation):
            return self._keras
        # first use, or activations changed by set_params since (prediction
        # follows them, as scikit-learn's does): a model over the same values
        if self.strategy is not None:  # its variables mirrored as these are
            with self.strategy.scope():
                return self._build_keras_model(activation, out_activation, n_features)
        return self._build_keras_model(activation, out_activation, n_features)

    @keeps_keras_policy
    def _build_keras_model(self, activation: str, out_activation: str, n_features: int):
        import keras

        check_activation(activation)

        n = self.n_weights
        dtype = tf.as_dtype(self.dtype).name
        inputs = keras.Input(shape=(n_features,), dtype=dtype, name="features")
        x = inputs
        layers = []
        for i in range(n):
            last = i == n - 1
            layer = keras.layers.Dense(
                self.variables[i].shape[1],
                activation=KERAS_ACTIVATIONS[out_activation if last else activation],
                dtype=dtype,
                name="output" if last else f"hidden_{i + 1}",
                # the weights are assigned below: an initializer that draws no
                # seed from Python's global ``random`` (Keras' default does)
                kernel_initializer="zeros",
                bias_initializer="zeros",
            )
            x = layer(x)
            layers.append(layer)
        model = keras.Model(inputs, x, name="tfmlp_network")
        values = self.read()
        for i, layer in enumerate(layers):
            layer.kernel.assign(values[i])
            layer.bias.assign(values[n + i])
        self.variables = [ly.kernel.value for ly in layers] + [
            ly.bias.value for ly in layers
        ]
        self._keras = model
        self._keras_for = (activation, out_activation)
        return model
