"""Saving runs: trained-model bundles, CSV exports, a run's settings back into the model,
and the history of a bundle opened from File ▸ Open."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from engine.bundle import EXTENSION, is_bundle_path
from engine.errors import NetBuilderError

from ..document import SetTraining
from ..session.runs import RunRecord, run_from_bundle

if TYPE_CHECKING:
    from .controller import RunController


class RunFiles:
    """The file half of RunController (a mixin): the dialogs are the presenter's."""

    def save_bundle(self: RunController, run: RunRecord | None = None,
                    path: str | Path | None = None) -> Path | None:
        """Save ``run`` (default: the one shown) as a trained-model bundle."""
        run = run or self.presenter.current_run()
        if run is None or run.weights is None:
            self.w.show_status("No finished run with trained weights to save", True)
            return None
        if path is None:
            path = self.choose_bundle_path(run)
            if not path:
                return None
        p = Path(path)
        if p.suffix.lower() != EXTENSION:
            p = p.with_name(p.name + EXTENSION)
        try:
            out = run.save_bundle(p)
        except NetBuilderError as exc:
            self.w.show_error("Cannot save the trained model", exc.message)
            return None
        run.saved_to = out
        self.w.recovery.drop_run(run.number)
        self.w.show_status(f"Saved {run.name} as {out}")
        return out

    # ----- not losing trained runs ---------------------------------------------------------
    def unsaved_runs(self: RunController) -> list[RunRecord]:
        """Finished runs whose trained weights are nowhere but in this session."""
        return [r for r in self.store.runs if r.unsaved]

    def maybe_keep_runs(self: RunController) -> bool:
        """Before quitting: ask to save trained runs that are not saved (a run still going
        stops first and counts too). False: the user cancelled, do not quit."""
        active = self.session.active if self.session.running else None
        runs = self.unsaved_runs()
        if active is None and not runs:
            return True
        names = [r.name for r in runs] + ([f"{active.name} (still training: it stops)"]
                                           if active is not None else [])
        answer = self.w.ask_save_runs(names)
        if answer != "save":
            return answer == "discard"
        if active is not None:
            self.stop()
            self.wait_stopped()
        # each asks where; cancelling one cancels the quit (all() stops at the first)
        return all(self.save_bundle(run) is not None for run in self.unsaved_runs())

    def keep_for_recovery(self: RunController, run: RunRecord) -> None:
        """Write a finished run's bundle into the recovery folder, so that a crash does not
        lose its training (dropped once the run is saved, removed, or the app quits)."""
        if not run.unsaved:
            return
        try:
            self.w.recovery.write_run(run.number, run.save_bundle)
        except (NetBuilderError, OSError) as exc:
            msg = exc.message if isinstance(exc, NetBuilderError) else str(exc)
            self.w.show_status(f"Could not keep {run.name} for crash recovery: {msg}", True)

    def restore_runs(self: RunController, paths: list[Path]) -> int:
        """Put the runs of a crashed session back into the Runs panel; returns how many."""
        restored = 0
        for path in paths:
            try:
                run = run_from_bundle(path, self.store.next_number(), self.store)
            except NetBuilderError as exc:
                self.w.show_status(f"A trained run could not be restored: {exc.message}", True)
                continue
            run.source = None  # its recovery file goes: the run is unsaved again
            run.message = "restored after a crash"
            self.ensure_views()
            self.store.add(run)
            self.keep_for_recovery(run)
            restored += 1
        if restored:
            self.presenter.show_runs_panel()
        return restored

    def export_csv(self: RunController, run: RunRecord, path: str | Path | None = None) -> Path | None:
        if path is None:
            path = self.choose_csv_path(run)
            if not path:
                return None
        try:
            out = run.write_csv(path)
        except OSError as exc:
            self.w.show_error("Cannot export", f"{path}: {exc.strerror or exc}")
            return None
        self.w.show_status(f"Exported the curves of {run.name} to {out}")
        return out

    def reuse_settings(self: RunController, run: RunRecord) -> None:
        old = self.doc.graph.training
        new = dict(run.settings)
        if old != new:
            try:
                self.w.push(SetTraining(old, new, f"Use the settings of {run.name}"))
            except NetBuilderError as exc:
                self.w.show_status(exc.message, True)

    def _on_file_opened(self: RunController, path: str) -> None:
        if not is_bundle_path(path):
            return
        try:
            run = run_from_bundle(path, self.store.next_number(), self.store)
        except NetBuilderError as exc:
            self.w.show_status(f"The curves of {Path(path).name} could not be read: "
                               f"{exc.message}", True)
            return
        self.presenter.ensure_views()
        self.store.add(run)
        if run.weights is not None:  # Start fine-tunes these weights unless unticked
            self.weights_source = run
            last = run.epochs[-1].epoch if run.epochs else None
            self.presenter.panel.offer_weights(
                Path(path).name + ("" if last is None else f", epoch {last}"))
        self.presenter.show_run(run)
        self.presenter.redraw()
        if len(run.steps) or run.epochs:
            self.presenter.show_monitor(("curves", "grads", "filters", "runs"))
        self.w.show_status(f"Opened {Path(path).name}: the model is on the canvas, its "
                           f"training history in the monitor ({run.name})")
