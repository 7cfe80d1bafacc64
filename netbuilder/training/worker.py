"""The Qt adapter of a RunLoop: trains on a QThread and hands the loop's messages to the
session on the GUI thread through a queued signal. Nothing else: the loop, its messages and
what they mean live in ``netbuilder.session``."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, QThread, Signal

import engine
from engine.training import Trainer

from ..session.loop import RunLoop
from ..session.probes import ProbeData
from ..session.runner import Deliver


class TrainingWorker(QThread):
    """A session runner (``RunSession(spawn=TrainingWorker.spawn)``): ``run()`` trains on the
    thread, ``message`` carries each of the loop's messages to ``deliver`` on the thread this
    object lives on (the GUI thread)."""

    message = Signal(str, object)  # kind, payload

    def __init__(self, loop: RunLoop, deliver: Deliver, parent: Any = None) -> None:
        super().__init__(parent)
        self.loop = loop
        self._deliver = deliver
        loop.post = self.message.emit
        self.message.connect(self._on_message, Qt.ConnectionType.QueuedConnection)

    @classmethod
    def spawn(cls, loop: RunLoop, deliver: Deliver) -> TrainingWorker:
        """Create the worker for ``loop`` and start its thread."""
        wk = cls(loop, deliver)
        wk.start()
        return wk

    def _on_message(self, kind: str, payload: Any) -> None:
        self._deliver(self.loop, kind, payload)

    def run(self) -> None:
        self.loop.run()

    # ----- the session's Runner protocol ---------------------------------------------------
    def wait_done(self, timeout_s: float | None = None) -> bool:
        return self.wait(-1 if timeout_s is None else int(1000 * timeout_s))

    def process(self, timeout_s: float = 0.0) -> int:
        return 0  # messages arrive through the event loop

    # ----- what tests and the shutdown look at ---------------------------------------------
    @property
    def trainer(self) -> Trainer | None:
        return self.loop.trainer

    @property
    def net(self) -> engine.Network | None:
        return self.loop.net

    @property
    def probe(self) -> ProbeData:
        return self.loop.probe

    def stop(self) -> None:
        self.loop.stop()
