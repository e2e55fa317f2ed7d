"""Test-only fault injection: the process signals itself the Nth time it reaches a named point.

Fault tests (kill -9 mid-checkpoint, Ctrl-C during validation) must hit the same instant on
any machine; racing a poll loop against a fast machine cannot. Unset, as everywhere but the
tests, this module costs one environment lookup at import and one comparison per point.

    DS2_FAULT="POINT:N[:SIGNAL][,POINT:N[:SIGNAL]...]"   e.g. checkpoint_write:3  step:7:INT

SIGNAL is a signal name without SIG (default KILL). Points: `step` (the end of each training
batch), `checkpoint_write` (a model file written to its temporary, not yet renamed into place),
`validation` (an epoch's validation inference done, not yet scored), `export_staging` (`ds2
export`'s staging directory made).
"""
from __future__ import annotations

import os
import signal
from collections import Counter

VARIABLE = "DS2_FAULT"


def _parse(spec: str) -> dict[str, list[tuple[int, signal.Signals]]]:
    """{point: [(n, signal), ...]} from DS2_FAULT; a malformed value is a broken test, so it raises."""
    plan: dict[str, list[tuple[int, signal.Signals]]] = {}
    for entry in filter(None, (part.strip() for part in spec.split(","))):
        point, count, name = (entry.split(":") + ["KILL"])[:3]
        plan.setdefault(point, []).append((int(count), signal.Signals[f"SIG{name.upper()}"]))
    return plan


_PLAN = _parse(os.environ.get(VARIABLE, ""))
_reached: Counter[str] = Counter()


def reached(point: str) -> None:
    """Mark one more arrival at `point`; send the signal planned for this arrival, if any."""
    if not _PLAN or point not in _PLAN:
        return
    _reached[point] += 1
    for count, signal_number in _PLAN[point]:
        if count == _reached[point]:
            os.kill(os.getpid(), signal_number)
