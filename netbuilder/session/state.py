"""The run's state machine: which state follows which, checked on every change.

    idle ──start──▶ compiling ──first batch──▶ running ◀──resume── paused
                        │  ╲                      │ ──pause──▶
                        │   ╲──pause──▶ paused    │
                        ▼                         ▼
                     stopping ◀──stop── (compiling, running, paused)
                        │
                        ▼
              finished (completed, stopped early or by the user) · failed (an error, a NaN)

``finished`` and ``failed`` are like ``idle``: a new run may start. ``compiling`` covers
everything before the first batch (the data, the network, the first kernel compile)."""

from __future__ import annotations

from enum import StrEnum

from .events import Event


class RunState(StrEnum):
    """Where the session's run is (the value is the name views show and tests compare)."""

    IDLE = "idle"
    COMPILING = "compiling"
    RUNNING = "running"
    PAUSED = "paused"
    STOPPING = "stopping"
    FINISHED = "finished"
    FAILED = "failed"

    @property
    def active(self) -> bool:
        """A run exists and has not ended (its loop may still send messages)."""
        return self in ACTIVE


ACTIVE = frozenset({RunState.COMPILING, RunState.RUNNING, RunState.PAUSED, RunState.STOPPING})
_ENDS = {RunState.FINISHED, RunState.FAILED}
TRANSITIONS: dict[RunState, frozenset[RunState]] = {
    RunState.IDLE: frozenset({RunState.COMPILING}),
    RunState.COMPILING: frozenset({RunState.RUNNING, RunState.PAUSED, RunState.STOPPING,
                                   *_ENDS}),
    RunState.RUNNING: frozenset({RunState.PAUSED, RunState.STOPPING, *_ENDS}),
    RunState.PAUSED: frozenset({RunState.RUNNING, RunState.STOPPING, *_ENDS}),
    RunState.STOPPING: frozenset(_ENDS),
    RunState.FINISHED: frozenset({RunState.COMPILING, RunState.IDLE}),
    RunState.FAILED: frozenset({RunState.COMPILING, RunState.IDLE}),
}


class TransitionError(RuntimeError):
    """A change of state the machine does not allow (a bug in the caller, not the user's)."""


class StateMachine:
    """The current ``RunState``; ``changed(old, new)`` after every change."""

    def __init__(self) -> None:
        self.state = RunState.IDLE
        self.changed = Event("state changed")

    def can(self, new: RunState) -> bool:
        """Whether ``new`` may follow the current state."""
        return new in TRANSITIONS[self.state]

    def to(self, new: RunState) -> None:
        """Change to ``new`` (TransitionError if it may not follow the current state)."""
        new = RunState(new)
        if not self.can(new):
            raise TransitionError(f"the run cannot go from {self.state} to {new}")
        old, self.state = self.state, new
        self.changed.emit(old, new)

    @property
    def active(self) -> bool:
        return self.state.active
