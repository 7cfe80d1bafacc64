"""Runners: where a RunLoop trains, and how its messages reach the session's thread.

``ThreadRunner`` (no Qt) trains on a ``threading.Thread`` and queues the messages; the
session hands them on when its owner calls ``RunSession.process_events`` (a script, a test,
any event loop). The application uses the Qt adapter ``netbuilder.training.worker`` instead,
which delivers them through queued signals to the GUI thread."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any, Protocol

from .loop import RunLoop

Deliver = Callable[[RunLoop, str, Any], None]


class Runner(Protocol):
    """What the session needs of a runner: it was started, it can be waited for."""

    def wait_done(self, timeout_s: float | None = None) -> bool:
        """Wait until the loop's thread has ended; False if still going after ``timeout_s``."""
        ...

    def process(self, timeout_s: float = 0.0) -> int:
        """Hand queued messages to the session (runners that deliver by themselves: 0)."""
        ...


Spawn = Callable[[RunLoop, Deliver], Runner]


class ThreadRunner:
    """Runs ``loop.run()`` on a daemon thread; ``process()`` delivers its messages, in order,
    on the calling thread."""

    def __init__(self, loop: RunLoop, deliver: Deliver) -> None:
        self.loop = loop
        self.deliver = deliver
        self.queue: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()
        loop.post = lambda kind, payload: self.queue.put((kind, payload))
        self.thread = threading.Thread(target=loop.run, name="netbuilder-run", daemon=True)
        self.thread.start()

    def wait_done(self, timeout_s: float | None = None) -> bool:
        self.thread.join(timeout_s)
        return not self.thread.is_alive()

    def process(self, timeout_s: float = 0.0) -> int:
        """Deliver every queued message, waiting up to ``timeout_s`` (s) for the first one;
        returns how many were delivered."""
        n = 0
        try:
            item = self.queue.get(timeout=timeout_s) if timeout_s > 0 else self.queue.get_nowait()
        except queue.Empty:
            return 0
        while True:
            self.deliver(self.loop, *item)
            n += 1
            try:
                item = self.queue.get_nowait()
            except queue.Empty:
                return n


def spawn_thread(loop: RunLoop, deliver: Deliver) -> ThreadRunner:
    """The default ``Spawn`` of a session: a ThreadRunner."""
    return ThreadRunner(loop, deliver)
