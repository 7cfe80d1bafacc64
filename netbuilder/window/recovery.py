"""Crash recovery from the window: the autosave of unsaved work and, at start, the offer to
restore what a session that did not close cleanly left (its model and its trained runs;
netbuilder.recovery keeps the files). A mixin of MainWindow."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from engine.text import plural

from ..recovery import RecoveryStore

if TYPE_CHECKING:
    from ..mainwindow import MainWindow


class WindowRecovery:
    """Autosave and restore."""

    def autosave(self: MainWindow) -> Path | None:
        """Write the recovery file if there is unsaved work not yet in it (trained runs are
        kept as they finish: ``RunController.keep_for_recovery``)."""
        if not self.document.dirty:
            self.recovery.clear_model()
            self._autosaved = -1
            return None
        if self._autosaved == self.document.revision:
            return None
        try:
            f = self.recovery.write(self.document.graph, self.document.path)
        except OSError as exc:
            self.show_status(f"Could not write the recovery file: {exc.strerror or exc}", True)
            return None
        self._autosaved = self.document.revision
        return f

    def check_recovery(self: MainWindow) -> bool:
        """Offer to restore work left by a session that did not close cleanly: its model
        and its trained runs. True when a model was restored onto the canvas."""
        entries = self.recovery.orphans()
        if not entries:
            return False
        restored = False
        if self.ask_restore(entries[0]):
            e = entries[0]
            if e.graph is not None:
                self.load_graph(e.graph, e.source, dirty=True)
                restored = True
            runs = self.training.restore_runs(e.runs)
            what = " and ".join(
                t for t in ("the model" if restored else "",
                            f"{plural(runs, 'trained run')} (Runs panel)" if runs else "") if t)
            self.show_status(f"Restored unsaved work, {what}: save it to keep it")
        RecoveryStore.discard(entries)
        if restored:
            self.autosave()
        return restored
