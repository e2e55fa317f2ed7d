"""Ctrl-C (SIGINT) and SIGTERM during `ds2 fit`: finish the step, save, and stop cleanly.

Users press Ctrl-C and cloud schedulers preempt with SIGTERM; either used to lose everything
since the last checkpoint. While a `StopRequests` is active, the first such signal is only
recorded: the training callbacks (checkpoints.Checkpointer) finish the current step or
validation, save, and stop, and fit raises `FitInterrupted`. The first signal also restores
the default actions, so a second one ends the process at once (the last whole checkpoint
stays, as after kill -9).
"""
from __future__ import annotations

import signal
import threading
from types import FrameType

from ds2_keras.core.errors import DS2Error

HANDLED = (signal.SIGINT, signal.SIGTERM)


class FitInterrupted(DS2Error):
    """Training stopped on a signal after saving; exit status 128 + the signal's number (130, 143),
    as a shell reports a process the signal ended."""

    def __init__(self, message: str, signal_number: int):
        super().__init__(message)
        self.exit_code = 128 + signal_number


class StopRequests:
    """Context manager that turns SIGINT/SIGTERM into a request (`signal_number`) while it is active."""

    def __init__(self) -> None:
        self.signal_number: int | None = None
        self._previous: dict[int, object] = {}

    @property
    def requested(self) -> bool:
        return self.signal_number is not None

    @property
    def signal_name(self) -> str:
        return signal.Signals(self.signal_number).name if self.signal_number else ""

    def _record(self, signal_number: int, frame: FrameType | None) -> None:
        self.signal_number = signal_number
        for handled in HANDLED:  # a second signal acts at once
            signal.signal(handled, signal.SIG_DFL)

    def __enter__(self) -> "StopRequests":
        if threading.current_thread() is threading.main_thread():  # only it may set handlers
            self._previous = {number: signal.signal(number, self._record) for number in HANDLED}
        return self

    def __exit__(self, *exc) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, handler)
