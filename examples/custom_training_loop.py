"""Train the tfmlp-built network with your own ``tf.GradientTape`` loop.

The same digits problem as the other two examples. One ``partial_fit`` epoch
builds the network (with scikit-learn's weight initialisation); from then on
a hand-written TensorFlow loop trains ``clf.model_``, here with a
class-weighted cross-entropy and an L2 penalty, and the estimator's ``score``
reports the result.
"""

import numpy as np
import tensorflow as tf
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from tfmlp import MLPClassifier

X, y = load_digits(return_X_y=True)
X = X / 16.0
X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)

clf = MLPClassifier(hidden_layer_sizes=(64,), random_state=0)
clf.partial_fit(X_train, y_train, classes=np.arange(10))
model = clf.model_  # features -> predict_proba (10 columns, float64)

optimizer = tf.keras.optimizers.Adam(learning_rate=1e-2)
# "balanced" class weights: n_samples / (n_classes * count of each class)
class_weight = tf.constant(len(y_train) / (10.0 * np.bincount(y_train)), tf.float64)
dataset = (
    tf.data.Dataset.from_tensor_slices((X_train, y_train))
    .shuffle(len(y_train), seed=0)
    .batch(64)
)


@tf.function
def train_step(x, t):
    with tf.GradientTape() as tape:
        p = tf.clip_by_value(model(x, training=True), 1e-12, 1.0)
        nll = -tf.math.log(tf.gather(p, t, batch_dims=1))
        w = tf.gather(class_weight, t)
        l2 = tf.add_n([tf.reduce_sum(v**2) for v in model.trainable_variables])
        loss = tf.reduce_sum(w * nll) / tf.reduce_sum(w) + 1e-4 * l2
    grads = tape.gradient(loss, model.trainable_variables)
    optimizer.apply_gradients(zip(grads, model.trainable_variables))
    return loss


for epoch in range(1, 21):
    for x, t in dataset:
        loss = train_step(x, t)
    if epoch % 5 == 0:
        print(f"epoch {epoch}: last batch loss {float(loss):.4f}")
print(f"accuracy: {clf.score(X_test, y_test):.4f}")
