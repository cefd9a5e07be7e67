"""Fail early, and cheaply, when Keras is configured for another backend.

Checked without importing Keras or TensorFlow (so ``import tfmlp`` and
``tfmlp --help`` stay fast): the ``KERAS_BACKEND`` variable, then the
``backend`` entry of Keras' config file (``$KERAS_HOME/keras.json`` or
``~/.keras/keras.json``), which is where Keras itself reads it from.
"""

from __future__ import annotations

import functools
import json
import os
import sys

MESSAGE = (
    "tfmlp trains with TensorFlow and needs Keras on the TensorFlow backend, but "
    "Keras is configured to use the {backend!r} backend. Set the environment "
    "variable KERAS_BACKEND=tensorflow (or change 'backend' in {config}) "
    "before importing tfmlp or keras."
)


def configured_backend() -> str:
    """The backend Keras uses or will use, read as Keras reads it.

    Keras already imported: its own answer. Otherwise its config file
    (``$KERAS_HOME/keras.json``, else ``~/.keras/keras.json``, ``/tmp/.keras``
    where the home directory is not writable), overridden by a non-empty
    ``KERAS_BACKEND`` (Keras ignores an empty one). As written: Keras does
    not lower-case or strip the name (``TensorFlow`` fails to import there).
    """
    keras = sys.modules.get("keras")
    if keras is not None:
        try:
            return str(keras.backend.backend()).lower()
        except Exception:  # a partly imported or unusual keras: read the config
            pass
    env = os.environ.get("KERAS_BACKEND")
    if env:
        return env
    try:
        with open(_config_file()) as f:
            return str(json.load(f).get("backend", "tensorflow"))
    except (OSError, ValueError, AttributeError):
        return "tensorflow"


def _config_file() -> str:
    """Where Keras reads its configuration from."""
    if "KERAS_HOME" in os.environ:
        home = os.environ["KERAS_HOME"]
    else:
        base = os.path.expanduser("~")
        home = os.path.join(base if os.access(base, os.W_OK) else "/tmp", ".keras")
    return os.path.expanduser(os.path.join(home, "keras.json"))


def check_backend() -> None:
    backend = configured_backend()
    if backend != "tensorflow":
        message = MESSAGE.format(backend=backend, config=_config_file())
        if backend.strip().lower() == "tensorflow":
            message += " (Keras reads the name as written: lower case, no spaces)"
        raise ImportError(message)


@functools.cache
def freeze_startup_objects() -> None:
    """Move the objects that exist once TensorFlow is imported out of the
    cyclic garbage collector's way (``gc.freeze``), once per process (the
    call is cached: later calls do nothing).

    Importing TensorFlow and Keras leaves ~400,000 long-lived objects (modules,
    classes, op registrations) that every full collection would scan again:
    196-247 ms against 0.003 ms frozen on this project's 2-core machine
    (two runs of ``benchmarks/ablations.py``), a quarter of a small-data
    ``cross_val_score``, at moments set by how much Python has allocated
    since. Frozen, they are never scanned (nor collected: at that point only
    a few hundred objects are garbage, 215 in an ad-hoc count).
    ``TFMLP_GC_FREEZE=0`` leaves the collector as it is.
    """
    if os.environ.get("TFMLP_GC_FREEZE", "1").strip() in ("0", "false", "no"):
        return
    import gc

    gc.freeze()
