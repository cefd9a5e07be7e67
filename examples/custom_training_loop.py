"""Train the tfmlp-built network with your own ``tf.GradientTape`` loop.

One ``partial_fit`` epoch builds the network (with scikit-learn's weight
initialisation); from then on a hand-written TensorFlow loop trains
``clf.model_``, here with a class-weighted loss and an L2 penalty, and the
estimator's ``score`` reports the result.
"""

import numpy as np
import tensorflow as tf
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from tfmlp import MLPClassifier

X, y = load_breast_cancer(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)
scaler = StandardScaler().fit(X_train)
X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)

clf = MLPClassifier(hidden_layer_sizes=(32,), random_state=0)
clf.partial_fit(X_train, y_train, classes=[0, 1])
model = clf.model_  # features -> predict_proba: [P(class 0), P(class 1)], float64

optimizer = tf.keras.optimizers.Adam(learning_rate=1e-2)
class_weight = tf.constant(
    len(y_train) / (2.0 * np.bincount(y_train)), dtype=tf.float64
)
dataset = (
    tf.data.Dataset.from_tensor_slices((X_train, y_train.astype(np.float64)))
    .shuffle(len(y_train), seed=0)
    .batch(32)
)


@tf.function
def train_step(x, t):
    with tf.GradientTape() as tape:
        p = model(x, training=True)[:, 1]
        p = tf.clip_by_value(p, 1e-7, 1 - 1e-7)
        nll = -(t * tf.math.log(p) + (1 - t) * tf.math.log(1 - p))
        w = tf.gather(class_weight, tf.cast(t, tf.int32))
        l2 = tf.add_n([tf.reduce_sum(v**2) for v in model.trainable_variables])
        loss = tf.reduce_mean(w * nll) + 1e-4 * l2
    grads = tape.gradient(loss, model.trainable_variables)
    optimizer.apply_gradients(zip(grads, model.trainable_variables))
    return loss


for epoch in range(1, 21):
    for x, t in dataset:
        loss = train_step(x, t)
    if epoch % 5 == 0:
        print(f"epoch {epoch}: last batch loss {float(loss):.4f}")
print(f"accuracy: {clf.score(X_test, y_test):.4f}")
