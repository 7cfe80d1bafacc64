"""Plain-Python events: how views follow the run session without the session knowing them.

    ev = Event("changed")
    unsubscribe = ev.connect(callback)
    ev.emit(run)          # every callback, in the order they connected
    unsubscribe()         # or ev.disconnect(callback)

No Qt: callbacks run on the thread that emits. The session emits on the thread that owns
it (the GUI thread in the application; a Qt adapter marshals the training thread's messages
there first)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Callback = Callable[..., Any]


class Event:
    """A list of callbacks called with the emitted arguments (same spelling as a Qt signal:
    ``connect``, ``disconnect``, ``emit``)."""

    def __init__(self, name: str = "") -> None:
        self.name = name
        self._callbacks: list[Callback] = []

    def connect(self, callback: Callback) -> Callable[[], None]:
        """Call ``callback`` on every emit from now on; returns a function that disconnects it."""
        if not callable(callback):
            raise TypeError(f"an event callback must be callable, got {type(callback).__name__}")
        self._callbacks.append(callback)
        return lambda: self.disconnect(callback)

    def disconnect(self, callback: Callback) -> None:
        """Stop calling ``callback`` (nothing happens if it is not connected)."""
        if callback in self._callbacks:
            self._callbacks.remove(callback)

    def emit(self, *args: Any) -> None:
        """Call every connected callback with ``args`` (a copy of the list: a callback may
        connect or disconnect others)."""
        for cb in list(self._callbacks):
            cb(*args)

    def __len__(self) -> int:
        return len(self._callbacks)

    def __repr__(self) -> str:
        return f"Event({self.name!r}, {len(self)} callbacks)"
