"""Test-only fault points on the engine's write path. Inert unless a test arms one.

The fault tests (tests/faults) use them to kill a worker at an exact moment, e.g. after a run's
data files are written and before the parent commits them. Nothing in RAT arms a point.

A point fires when armed in-process with `arm()` (a test runner plugin does this inside worker
processes, whose environment is scrubbed), or when the process environment has
`RAT_FAULT_<POINT>=kill` (in-process engine runs): the process then SIGKILLs itself.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from typing import Any

BEFORE_COMMIT = "before_commit"
Action = Callable[[dict[str, Any]], None]
_ARMED: dict[str, Action] = {}


def arm(name: str, action: Action) -> None:
    _ARMED[name] = action


def disarm(name: str) -> None:
    _ARMED.pop(name, None)


def kill_self(_info: dict[str, Any]) -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def point(name: str, **info: Any) -> None:
    """Mark fault point `name`; runs its armed action (which may never return)."""
    action = _ARMED.get(name)
    if action is None and os.environ.get(f"RAT_FAULT_{name.upper()}") == "kill":
        action = kill_self
    if action is not None:
        action(info)
