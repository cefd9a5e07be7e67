"""Extend the tfmlp-built network with the Keras functional API.

The fitted estimator's ``model_`` is a plain functional model, so its layers
and their symbolic outputs can be reused: here a new, wider head is put on the
last hidden layer and trained while the fitted hidden layers stay frozen.
"""

import warnings

import keras
import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split

from tfmlp import MLPClassifier

warnings.simplefilter("ignore", ConvergenceWarning)  # short demo fits
keras.utils.set_random_seed(0)  # Keras shuffling and dropout

X, y = load_digits(return_X_y=True)
X = X / 16.0
X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)

clf = MLPClassifier(hidden_layer_sizes=(64, 32), max_iter=40, random_state=0)
clf.fit(X_train, y_train)
print(f"tfmlp accuracy: {clf.score(X_test, y_test):.4f}")

base = clf.model_
print("tfmlp layers:", [layer.name for layer in base.layers])
features = base.get_layer("hidden_2").output  # the last hidden layer's tensor
for layer in base.layers:
    layer.trainable = False  # keep the fitted features as they are

x = keras.layers.Dense(64, activation="relu", name="head_dense")(features)
x = keras.layers.Dropout(0.2, name="head_dropout")(x)
outputs = keras.layers.Dense(len(clf.classes_), activation="softmax", name="head")(x)
extended = keras.Model(base.input, outputs, name="extended")

targets = np.searchsorted(clf.classes_, y_train)
extended.compile(
    optimizer=keras.optimizers.Adam(learning_rate=3e-3),
    loss="sparse_categorical_crossentropy",
    metrics=["accuracy"],
)
extended.fit(X_train, targets, epochs=10, batch_size=32, verbose=0)

proba = extended.predict(X_test, verbose=0)
accuracy = np.mean(clf.classes_[proba.argmax(axis=1)] == y_test)
print(f"accuracy: {accuracy:.4f}")
