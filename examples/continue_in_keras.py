"""Fit tfmlp's MLPClassifier, then keep training its network in Keras.

``clf.model_`` is the very Keras model the estimator trains: ``compile`` /
``fit`` it like any Keras model, and the estimator (``predict``, ``score``,
``coefs_``) sees the new weights.
"""

import warnings

import keras
import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split

from tfmlp import MLPClassifier

warnings.simplefilter("ignore", ConvergenceWarning)  # a deliberately short fit
keras.utils.set_random_seed(0)  # Keras shuffling

X, y = load_digits(return_X_y=True)
X = X / 16.0
X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)

# 1. scikit-learn's API: a few epochs of sklearn's Adam and log-loss
clf = MLPClassifier(hidden_layer_sizes=(64,), max_iter=5, random_state=0)
clf.fit(X_train, y_train)
print(f"tfmlp accuracy after {clf.n_iter_} epochs: {clf.score(X_test, y_test):.4f}")

# 2. Keras' API on the same network: compile and fit model_
model = clf.model_  # features -> predict_proba, a functional keras.Model
targets = np.searchsorted(clf.classes_, y_train)  # column index of each label
model.compile(
    optimizer=keras.optimizers.Adam(learning_rate=1e-3),
    loss="sparse_categorical_crossentropy",
)
model.fit(X_train, targets, epochs=10, batch_size=32, verbose=0)

# 3. back in the estimator: it predicts with the Keras-trained weights
print(f"accuracy: {clf.score(X_test, y_test):.4f}")
