"""Networks whose hidden stack is built by the user with any Keras layers.

The estimator's ``hidden_stack`` parameter is a callable that takes the Keras
input tensor and returns the last hidden tensor. tfmlp adds the output Dense
layer and activation, initialises every Dense layer with scikit-learn's rule
(drawn from the estimator's RandomState), trains all trainable variables with
scikit-learn's objective (the L2 term covers every Dense kernel), and exposes
the Dense kernels and biases as ``coefs_`` and ``intercepts_``.
"""

from __future__ import annotations

import random
import threading

import numpy as np
import tensorflow as tf

from tfmlp._compat import keeps_keras_policy
from tfmlp._extras import UNSEEDED_DENSE
from tfmlp._network import KERAS_ACTIVATIONS, OUTPUT_ACTIVATIONS
from tfmlp._params import NetSpec, WeightsMismatch

# held while a training trace calls the stack with the layers' flags as built
_TRAINABLE_LOCK = threading.RLock()


class CustomNetwork:
    """A functional Keras model around a user-built hidden stack."""

    custom = True

    def __init__(self, builder, n_features, n_outputs, out_activation, dtype, seed=0):
        import keras

        self.model, self.logits, self.hidden_model = _build(
            builder, n_features, n_outputs, out_activation, np.dtype(dtype).name, seed
        )
        weights = {id(w) for w in self.model.weights}
        self.dense = [  # the Dense layers the network uses (built, called)
            ly
            for ly in _all_layers(self.model)
            if isinstance(ly, keras.layers.Dense)
            and ly.built
            and id(ly.kernel) in weights
        ]
        trainable = self.model.trainable_variables
        self.variables = [v.value for v in trainable]
        positions = {id(v): i for i, v in enumerate(trainable)}
        # a frozen (trainable=False) Dense kernel is no parameter: penalised
        # as it is (None: read from the layer)
        self.coef_positions = tuple(positions.get(id(ly.kernel)) for ly in self.dense)
        # Keras constraints (kernel_constraint=...), applied after each step
        # as a Keras optimizer applies them
        self.constraints = tuple(
            (i, v.constraint)
            for i, v in enumerate(trainable)
            if getattr(v, "constraint", None) is not None
        )
        self.spec = NetSpec.create(len(self.dense) + 1, "identity", out_activation)
        # losses that depend on the rows (activity regularizers, add_loss) or
        # batch statistics (BatchNormalization): padded batches would change
        # them, so such networks train on exact batches (``_loop.make_runner``)
        self.exact_batches = _uses_batch_statistics(self.model) or _has_row_losses(
            self.logits, n_features, np.dtype(dtype)
        )
        self.n_features = int(n_features)
        self.cache: dict = {}
        self._snapshot = self.read()
        # each layer's ``trainable`` as built: the estimator's training reads
        # these whatever is set on ``model_`` later (BatchNormalization uses
        # its batch's statistics only while trainable), so a trace made after
        # that (a copy's, a loaded model's) trains as one made before it
        self._built_trainable = [
            (ly, ly._trainable)
            for ly in _all_layers(self.model)
            if isinstance(getattr(ly, "_trainable", None), bool)
        ]

    # -- the forward-model protocol used by the compiled functions ------------
    def _dense_input(self, x):
        """``x`` dense, with the feature width known while tracing (the
        compiled functions take inputs of any shape; layers such as
        LayerNormalization need their input's width)."""
        if isinstance(x, tf.SparseTensor):
            x = tf.sparse.to_dense(x)
        return tf.ensure_shape(x, [None, self.n_features])

    def __call__(self, params, x, training: bool = True):
        if not training:
            z = self.logits(self._dense_input(x), training=False)
            return z, OUTPUT_ACTIVATIONS[self.spec.out_activation](z)
        with _TRAINABLE_LOCK:  # layers may be shared by estimators' traces
            now = [(ly, ly._trainable) for ly, _ in self._built_trainable]
            try:
                for ly, flag in self._built_trainable:
                    ly._trainable = flag  # (not the setter: variables keep theirs)
                z = self.logits(self._dense_input(x), training=True)
            finally:
                for ly, flag in now:
                    ly._trainable = flag
        return z, OUTPUT_ACTIVATIONS[self.spec.out_activation](z)

    def coefs(self, params):
        return [
            params[i] if i is not None else ly.kernel.value
            for i, ly in zip(self.coef_positions, self.dense)
        ]

    def extra_losses(self):
        """The Keras losses of the last forward call (kernel, bias and
        activity regularizers of the user's layers), summed, or None: added
        to the objective as Keras adds them to a batch's loss."""
        losses = self.logits.losses
        if not losses:
            return None
        dtype = self.dense[0].kernel.value.dtype
        # each summed, as Keras' fit sums a non-scalar add_loss term
        return tf.add_n([tf.reduce_sum(tf.cast(v, dtype)) for v in losses])

    def apply_constraints(self, params) -> None:
        """Project the constrained parameters (after an optimizer step)."""
        for i, constraint in self.constraints:
            params[i].assign(constraint(params[i]))

    def hidden(self, params, x):
        return self.hidden_model(self._dense_input(x), training=False)

    def forward_model(
        self, activation: str, out_activation: str, loss: str | None = None
    ) -> CustomNetwork:
        return self

    # -- the weight-store protocol shared with ``Network`` --------------------
    @property
    def n_weights(self) -> int:
        return len(self.dense)

    @property
    def dtype(self):
        return self.dense[0].kernel.value.dtype.as_numpy_dtype

    def shapes(self) -> list[tuple[int, ...]]:
        return [a.shape for a in self.read()]

    def read(self) -> list[np.ndarray]:
        kernels = [ly.kernel.numpy() for ly in self.dense]
        biases = [
            ly.bias.numpy() if ly.bias is not None else np.zeros(ly.units, k.dtype)
            for ly, k in zip(self.dense, kernels)
        ]
        return kernels + biases

    def check_biases(self, intercepts: list[np.ndarray]) -> None:
        """Refuse a nonzero intercept for a Dense layer without a bias (the
        user's ``intercepts_``; ``assign`` ignores it)."""
        for i, (ly, bias) in enumerate(zip(self.dense, intercepts)):
            if ly.bias is None and np.any(np.asarray(bias) != 0):
                raise WeightsMismatch(
                    f"intercepts_[{i}] must stay zero: the hidden stack's Dense "
                    f"layer {ly.name!r} has no bias (use_bias=False)."
                )

    def assign(self, arrays: list[np.ndarray]) -> None:
        n = len(self.dense)
        for ly, kernel, bias in zip(self.dense, arrays[:n], arrays[n:]):
            ly.kernel.assign(np.asarray(kernel, dtype=self.dtype))
            if ly.bias is not None:
                ly.bias.assign(np.asarray(bias, dtype=self.dtype))
        self._snapshot = self.read()

    def snapshot(self) -> list[np.ndarray]:
        return self._snapshot

    exposed = True  # the user's Keras stack is a Keras model from the start

    def mark_synced(self) -> list[np.ndarray]:
        self._snapshot = self.read()
        return self._snapshot

    def keras_model(self, activation: str, out_activation: str, n_features: int):
        return self.model

    def init_dense(self, rs: np.random.RandomState, activation: str) -> None:
        """scikit-learn's uniform initialisation, Dense layer by Dense layer."""
        factor = 2.0 if activation == "logistic" else 6.0
        arrays_w, arrays_b = [], []
        for ly in self.dense:
            fan_in, fan_out = ly.kernel.shape
            bound = np.sqrt(factor / (fan_in + fan_out))
            arrays_w.append(rs.uniform(-bound, bound, (fan_in, fan_out)))
            arrays_b.append(rs.uniform(-bound, bound, fan_out))
        self.assign(arrays_w + arrays_b)

    def full_state(self) -> list[np.ndarray]:
        """Every weight of the Keras model, then its random-generator states.

        ``get_weights()`` covers trainable and non-trainable weights (e.g.
        batch-normalisation statistics) but not the state of the layers'
        seed generators (e.g. a ``Dropout`` layer's), which decides the next
        masks; it follows the weights so that training continues identically
        after a copy, a save or a rollback.

        Returns
        -------
        list of ndarray
            ``model.get_weights()`` followed by one array per seed generator.
        """
        weights = [np.array(w) for w in self.model.get_weights()]
        return weights + [v.numpy() for v in _seed_states(self.model)]

    def load_full_state(self, weights: list[np.ndarray]) -> None:
        """Set what :meth:`full_state` returned.

        Parameters
        ----------
        weights : list of ndarray
            The weights, optionally followed by the seed-generator states
            (states saved before they were part of the full state are
            absent: the generators then keep their current state).

        Raises
        ------
        ValueError
            If the number of arrays matches neither form.
        """
        n_weights = len(self.model.weights)
        states = _seed_states(self.model)
        if len(weights) not in (n_weights, n_weights + len(states)):
            raise ValueError(
                f"The Keras hidden stack has {n_weights} weights and "
                f"{len(states)} random-generator states; got {len(weights)} "
                "arrays (was the estimator fitted with another hidden stack?)."
            )
        wrong = [
            f"{v.path}: {tuple(v.shape)} vs {np.shape(w)}"
            for v, w in zip(self.model.weights, weights)
            if tuple(v.shape) != np.shape(w)
        ]
        if wrong:
            raise ValueError(
                "The saved Keras weights do not fit the hidden stack ("
                + "; ".join(wrong[:3])
                + "): was the estimator fitted with another hidden stack?"
            )
        self.model.set_weights(weights[:n_weights])
        for variable, value in zip(states, weights[n_weights:]):
            variable.assign(_seed_value(value, variable))
        self._snapshot = self.read()


def _seed_states(model) -> list:
    """The model's variables that are not weights: its seed-generator states."""
    weight_ids = {id(w) for w in model.weights}
    return [v for v in model.variables if id(v) not in weight_ids]


def _seed_value(value, variable) -> np.ndarray:
    """``value`` checked against a seed-generator ``variable``'s shape."""
    value = np.asarray(value)
    if value.shape != tuple(variable.shape) or value.dtype.kind not in "iu":
        raise ValueError(
            f"A random-generator state must be an integer array of shape "
            f"{tuple(variable.shape)}; got {value.dtype} {value.shape}."
        )
    return value.astype(variable.dtype)


@keeps_keras_policy
def _build(builder, n_features, n_outputs, out_activation, dtype: str, seed=0):
    """Call the user's builder with Keras' dtype policy set to ``dtype`` and
    Python's ``random`` seeded with ``seed``.

    Keras draws the seeds of layers and initializers built without one
    (a ``Dropout``'s masks, a custom layer's random weights) from Python's
    ``random``: seeded from the estimator's ``random_state``, the same stack
    is built the same way every time. The previous policy and ``random``
    state are restored right after, so nothing built elsewhere is affected.
    Builds in other threads (``GridSearchCV`` with the threading backend)
    wait for each other, as ``random`` is one for the whole process.
    """
    with _BUILD_LOCK:
        return _build_seeded(
            builder, n_features, n_outputs, out_activation, dtype, seed
        )


_BUILD_LOCK = threading.RLock()  # a builder may build another stack


def _build_seeded(builder, n_features, n_outputs, out_activation, dtype, seed):
    import keras

    previous = keras.config.dtype_policy()
    python_random = random.getstate()
    keras.config.set_dtype_policy(dtype)  # layers the builder creates use dtype
    random.seed(seed)
    try:
        inputs = keras.Input(shape=(n_features,), dtype=dtype, name="features")
        hidden = builder(inputs)
        if not isinstance(hidden, keras.KerasTensor) or len(hidden.shape) != 2:
            # a tensor of another rank is a wrong value (ValueError); anything
            # else a wrong type
            error = ValueError if isinstance(hidden, keras.KerasTensor) else TypeError
            raise error(
                "The 'hidden_stack' callable must return the last hidden Keras "
                "tensor, of shape (batch, units), built from the input tensor it "
                f"receives. Got {hidden!r} instead."
            )
        z = keras.layers.Dense(n_outputs, dtype=dtype, name="output", **UNSEEDED_DENSE)(
            hidden
        )
        act = KERAS_ACTIVATIONS[out_activation]
        p = keras.layers.Activation(act, dtype=dtype, name="output_activation")(z)
    finally:
        keras.config.set_dtype_policy(previous)
        random.setstate(python_random)
    try:
        model = keras.Model(inputs, p, name="tfmlp_network")
    except ValueError as exc:  # Keras: "Output ... is not connected to inputs"
        if "should be unique" in str(exc):
            raise ValueError(
                "The 'hidden_stack' layers need unique names, and 'features', "
                "'output' and 'output_activation' are tfmlp's own (Keras: "
                f"{str(exc).splitlines()[0]})"
            ) from None
        raise ValueError(
            "The 'hidden_stack' callable must build its layers on the input "
            "tensor it receives; the tensor it returned does not depend on "
            f"that input (Keras: {str(exc).splitlines()[0]})"
        ) from None
    _check_weight_dtypes(model, dtype)
    logits = keras.Model(inputs, z, name="tfmlp_logits")
    return model, logits, keras.Model(inputs, hidden, name="tfmlp_hidden")


def _check_weight_dtypes(model, dtype: str) -> None:
    """Refuse layers that keep floating-point weights in another dtype than
    the network's (integer state such as a counter is not trained): the
    loss, its L2 penalty and the optimizer work in one dtype
    (layers created outside the builder, e.g. a ready-made ``Sequential``,
    or with ``dtype=``, do not follow the policy ``_build`` sets)."""
    wrong = sorted(
        {
            f"{layer.name!r} ({weight.dtype})"
            for layer in _all_layers(model)
            for weight in layer.weights
            if "float" in str(weight.dtype) and weight.dtype != dtype
        }
    )
    if wrong:
        raise ValueError(
            f"The 'hidden_stack' layers {', '.join(wrong)} keep their weights in "
            f"another dtype than the network's {dtype} (the training data's "
            "dtype, or compute_dtype's). Create the layers inside the "
            "hidden_stack callable without dtype= (tfmlp builds them in the "
            f"network's dtype), or pass {dtype} layers."
        )


def _all_layers(model) -> list:
    """Layers in order, descending into nested models (e.g. a Sequential)
    and into custom layers that hold layers of their own (a ``Layer``
    subclass built around a ``Dense``)."""
    import keras

    out, seen = [], set()
    for layer in model.layers:
        if hasattr(layer, "layers"):
            found = _all_layers(layer)
        else:
            found = [layer]
            if not isinstance(layer, keras.layers.Dense):
                found += layer._flatten_layers(include_self=False)
        for ly in found:  # a layer used twice (tied weights) counts once
            if id(ly) not in seen:
                seen.add(id(ly))
                out.append(ly)
    return out


def _uses_batch_statistics(model) -> bool:
    """Whether a layer normalises with the batch's own statistics."""
    import keras

    return any(
        isinstance(layer, keras.layers.BatchNormalization)
        for layer in _all_layers(model)
    )


def _has_row_losses(logits, n_features: int, dtype) -> bool:
    """Whether a forward call adds losses computed from the rows (activity
    regularizers, ``add_loss``), besides the weights' regularizers."""
    weight_losses = sum(  # Keras adds one per regularized trainable weight
        getattr(w, "regularizer", None) is not None for w in logits.trainable_weights
    )
    counts = []

    def probe(x):  # traced, never run: a training call's state updates
        # (batch statistics, dropout seeds) stay unapplied
        logits(x, training=True)  # losses a layer adds only while training
        counts.append(len(logits.losses))
        return tf.zeros([])

    spec = tf.TensorSpec([2, n_features], dtype)
    tf.function(probe, autograph=False).get_concrete_function(spec)
    logits(np.zeros((2, n_features), dtype), training=False)  # eager losses again
    counts.append(len(logits.losses))
    return max(counts) > weight_losses
