"""Branching and replaying runs from the Runs panel: a branch starts a run of the model as
it is now from another run's checkpoint; a replay trains a finished run again on a QThread
and says whether its weights come out bit for bit the same."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QThread, Signal

from ..session.lineage import ReplayVerdict, replay_run
from ..session.runs import RunRecord

if TYPE_CHECKING:
    from .controller import RunController


class ReplayWorker(QThread):
    """Replays one run on its own thread; ``done(run, verdict)`` on the GUI thread."""

    done = Signal(object, object)  # RunRecord, ReplayVerdict

    def __init__(self, run: RunRecord, base_dir: Any, parent: Any = None) -> None:
        super().__init__(parent)
        self.run_record = run
        self.base_dir = base_dir

    def run(self) -> None:
        try:
            verdict = replay_run(self.run_record, self.base_dir)
        except Exception as exc:
            verdict = ReplayVerdict(False, f"replay failed: {type(exc).__name__}: {exc}")
        self.done.emit(self.run_record, verdict)


class RunBranching:
    """The branch/replay half of RunController (a mixin)."""

    def branch(self: RunController, run: RunRecord, epoch: int) -> bool:
        """Start a run of the open model from ``run``'s checkpoint after ``epoch``."""
        return self.start(branch=(run, epoch))

    def replay(self: RunController, run: RunRecord) -> bool:
        """Replay ``run`` in the background; the verdict lands in ``run.replay_result`` and
        the Runs panel. False when it cannot start now."""
        if self.session.running or self.replaying is not None:
            self.w.show_status("Replay waits until the run going on has finished", True)
            return False
        if run.replay is None or run.weights is None:
            self.w.show_status(f"{run.name} kept no replay log", True)
            return False
        run.replay_result = "replaying…"
        self.store.notify_changed(run)
        wk = ReplayWorker(run, self.presenter.data.base_dir, self)
        wk.done.connect(self._on_replayed)
        self.replaying = wk
        self.w.show_status(f"Replaying {run.name}…")
        wk.start()
        return True

    def _on_replayed(self: RunController, run: RunRecord, verdict: ReplayVerdict) -> None:
        wk, self.replaying = self.replaying, None
        if wk is not None:
            wk.wait()
            wk.deleteLater()
        run.replay_result = verdict.text
        self.store.notify_changed(run)
        self.w.show_status(f"{run.name}: {verdict.text}", not verdict.match)
