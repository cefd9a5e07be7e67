"""Ctrl-C during training stops it between epochs, never inside one.

Python runs a signal handler between bytecodes, so a ``KeyboardInterrupt``
from Ctrl-C would surface right after a compiled call returns: after the
call has changed the weights but before the epochs it trained are recorded
(``n_iter_``, ``loss_curve_``, Adam's step count). While training, tfmlp
notes the first Ctrl-C instead and stops at the next point where the weights
and the records agree; a second Ctrl-C aborts the call at once, and the
estimator is then put back as it was before the call.
"""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager


class TrainingAborted(KeyboardInterrupt):
    """A second Ctrl-C: the call is abandoned (the estimator is restored)."""


class InterruptRequest:
    """Whether Ctrl-C was pressed since training started."""

    def __init__(self) -> None:
        self.requested = False
        # False where a KeyboardInterrupt can still surface between two
        # statements (an application's own SIGINT handler in the main thread)
        self.deferring = True


@contextmanager
def deferred_interrupts():
    """Note Ctrl-C (SIGINT) during the block instead of raising at once.

    Only where Python's own SIGINT handler is installed and in the main
    thread (elsewhere signals cannot be handled and nothing changes); a
    handler the application installed is left alone.

    Yields
    ------
    InterruptRequest
        Its ``requested`` becomes True at the first Ctrl-C.
    """
    request = InterruptRequest()
    if threading.current_thread() is not threading.main_thread():
        yield request  # (signals are handled in the main thread only)
        return
    handler = signal.getsignal(signal.SIGINT)
    if handler is not signal.default_int_handler:
        # an application's own function may raise KeyboardInterrupt; SIG_IGN
        # and SIG_DFL (a background job's) never reach Python
        request.deferring = not callable(handler)
        yield request
        return

    def note(signum, frame):
        if request.requested:
            signal.signal(signal.SIGINT, signal.default_int_handler)
            raise TrainingAborted
        request.requested = True

    signal.signal(signal.SIGINT, note)
    try:
        yield request
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
