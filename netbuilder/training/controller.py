"""The run controller: turns the user's commands (Start, Pause, Stop, Step, the learning
rate, saving runs) into calls on the window's RunSession, and runs the session's loops on
QThreads (``TrainingWorker``). It builds no widget: the MonitorPresenter owns the views and
follows the session's events. Everything here runs on the GUI thread and never waits for
the worker (except ``wait_stopped`` and ``shutdown``, which say so)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QCoreApplication, QEventLoop, QObject, Qt

import engine
from engine.errors import NetBuilderError

from ..document import Change
from ..monitor.presenter import LOCK_MESSAGE, MonitorPresenter, panel_state
from ..panels.data_panel import spec_text
from ..session.lineage import branch_start, fine_tune_start
from ..session.loop import RunLoop
from ..session.messages import RunOutcome
from ..session.runner import Deliver
from ..session.runs import RunRecord
from ..session.session import RunSession
from ..session.state import RunState
from .branching import ReplayWorker, RunBranching
from .files import RunFiles
from .worker import TrainingWorker

if TYPE_CHECKING:
    from ..mainwindow import MainWindow

__all__ = ["LOCK_MESSAGE", "RunController"]
Q = Qt.ConnectionType.QueuedConnection

# the presenter's views and widgets, read through the controller (``window.training.panel``)
VIEWS = ("panel", "data", "runs_panel", "docks", "prep", "menu", "act_start", "act_pause",
         "act_step", "act_stop", "act_graph", "views_ready", "shown", "curves", "maps",
         "filters", "grads", "confusion", "gallery", "fit", "pairs", "attention")


class RunController(RunFiles, RunBranching, QObject):
    """Training for one MainWindow: a RunSession, its presenter, the worker threads."""

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.w = window
        self.doc = window.document
        self.session = RunSession(spawn=self._spawn)
        self.store = self.session.store
        self._workers: list[TrainingWorker] = []  # threads not yet finished
        self.replaying: ReplayWorker | None = None  # a replay going on (Runs panel)
        self.weights_source: RunRecord | None = None  # the opened bundle's run: fine-tuning
        self.session.ended.connect(self._on_ended)  # before the presenter: recovery first
        self.presenter = MonitorPresenter(window, self.session, self)
        self.choose_bundle_path = self.presenter.choose_bundle_path
        self.choose_csv_path = self.presenter.choose_csv_path

        p = self.presenter.panel
        p.start_requested.connect(lambda: self.start())
        p.pause_requested.connect(self.pause)
        p.resume_requested.connect(self.resume)
        p.stop_requested.connect(self.stop)
        p.step_requested.connect(self.step)
        p.live_lr_changed.connect(self.set_lr)
        rp = self.presenter.runs_panel
        rp.save_requested.connect(lambda r: self.save_bundle(r))
        rp.csv_requested.connect(lambda r: self.export_csv(r))
        rp.reuse_requested.connect(self.reuse_settings)
        rp.branch_requested.connect(self.branch)
        rp.replay_requested.connect(self.replay)
        self.store.removed.connect(lambda run: window.recovery.drop_run(run.number))
        window.document_replaced.connect(self._on_replaced)
        window.file_opened.connect(self._on_file_opened)
        self.doc.subscribe(self._on_doc_change)

    # ----- the session, read by the window and the tests -----------------------------------
    @property
    def state(self) -> str:
        """idle, starting, running, paused or stopping (the Training panel's words)."""
        return panel_state(self.session.state)

    @property
    def worker(self) -> TrainingWorker | None:
        """The thread of the run going on (None between runs)."""
        r = self.session.runner
        return r if isinstance(r, TrainingWorker) else None

    @property
    def active(self) -> RunRecord | None:
        return self.session.active

    @property
    def info(self) -> Any:
        return self.session.info

    @property
    def last_outcome(self) -> RunOutcome | None:
        return self.session.last_outcome

    def request(self) -> Any:
        """What the monitor's views want measured (a MonitorRequest)."""
        return self.presenter.request()

    def ensure_views(self) -> None:
        self.presenter.ensure_views()

    def show_monitor(self, front: tuple[str, ...] = ("curves", "maps", "filters",
                                                     "confusion")) -> None:
        self.presenter.show_monitor(front)

    def show_run(self, run: RunRecord) -> None:
        self.presenter.show_run(run)

    # ----- the model -----------------------------------------------------------------------
    def _on_doc_change(self, ch: Change) -> None:
        idle_edit = ch.affects_shapes and self.session.active is None
        if idle_edit:  # the last run's network no longer matches the model
            self.w.scene.clear_monitor()
            self.session.forget_final()
        if idle_edit or ch.reset:
            self.presenter.set_model_nodes()

    def _on_replaced(self) -> None:
        """Another model is open: every view shows it, or its empty state. A run still
        going belongs to the old model: it stops, and its last messages only reach its
        record in the Runs panel."""
        if self.session.running:
            self.session.detach()
            self.stop()
            self.w.show_status("Stopped the training run: another model was opened")
        self.weights_source = None  # a trained bundle's open offers its own (files.py)
        self.presenter.panel.offer_weights(None)
        self.session.forget_final()
        self.presenter.model_replaced()

    # ----- commands ------------------------------------------------------------------------
    def start(self, paused: bool = False, branch: tuple[RunRecord, int] | None = None
              ) -> bool:
        """Start a run of the open model (paused: wait for Step; ``branch``: from that run's
        checkpoint after that epoch). False, with a message, when the model, the settings
        or the data are not ready."""
        if self.session.running:
            return False
        if self.replaying is not None:  # replay sets the engine's thread count: one at a time
            self.w.show_status("A replay is going on: start when it has finished", True)
            return False
        refuse = self.presenter.show_refusal
        an = self.doc.analysis
        if an.error_count:
            first = (an.graph_errors + list(an.errors.values()))[0]
            refuse(f"The model has a problem: {first.message}", first.node_id)
            return False
        section = dict(self.doc.graph.training)
        try:
            settings = engine.TrainSettings.from_dict(section)
        except NetBuilderError as exc:
            refuse(f"Training settings: {exc.message}")
            return False
        if settings.dataset is None:
            refuse("Choose the data to train on in the Data panel first.", front="data")
            return False
        ds = None
        dp = self.presenter.data
        wait = dp.start_blocker()
        if wait:  # never a silent download on the training thread
            refuse(f"Waiting for the data: {wait}", front="data")
            return False
        if dp.dataset is not None and dp.loaded_spec == spec_text(settings.dataset):
            if dp.problems:
                p = dp.problems[0]
                refuse(f"The data does not fit the model: {p.message}", p.node_id, front="data")
                return False
            ds = dp.dataset
        start = parent = None
        if branch is not None:
            parent = branch[0]
            try:
                start, report = branch_start(parent, branch[1], self.doc.graph, section)
            except NetBuilderError as exc:
                refuse(f"Cannot branch from {parent.name}: {exc.message}")
                return False
            lost = report.reinitialised + report.added
            self.w.show_status(f"Branching from {parent.name} at epoch {branch[1]}"
                               + (f"; starting fresh: {', '.join(lost)}" if lost else ""))
        weights_from = None
        src = self.weights_source
        if branch is None and src is not None and self.presenter.panel.start_from_weights():
            try:
                start, report, weights_from = fine_tune_start(src, self.doc.graph, section)
            except NetBuilderError as exc:
                refuse(f"Cannot start from the weights of {src.name}: {exc.message}")
                return False
            parent = src
            lost = report.reinitialised + report.added
            self.w.show_status(
                f"Fine-tuning from {src.name}: {len(report.kept)} nodes keep their weights"
                + (f"; starting fresh: {', '.join(lost)}" if lost else ""))
        self.presenter.ensure_views()
        self.session.request = self.presenter.request()
        self.session.start(self.doc.graph, section, ds, dp.base_dir, paused=paused,
                           threads=self.presenter.panel.threads_choice(),
                           record_budget=self.presenter.panel.record_budget(), start=start,
                           parent=parent, weights_from=weights_from)
        return True

    def _spawn(self, loop: RunLoop, deliver: Deliver) -> TrainingWorker:
        """The session's runner: a QThread whose messages arrive on the GUI thread."""
        wk = TrainingWorker(loop, deliver)
        wk.finished.connect(self._reap, Q)
        self._workers.append(wk)
        wk.start()
        return wk

    def _reap(self) -> None:
        wk = self.sender()
        if wk in self._workers and wk is not self.session.runner:
            self._workers.remove(wk)
            wk.deleteLater()

    def pause(self) -> None:
        if self.session.pause():
            self.w.show_status("Paused: Step trains one batch, Resume carries on; edit the "
                               "model now and Resume keeps the weights of what you left alone")

    def _edit_to_send(self) -> tuple[bool, engine.Graph | None]:
        """(go on?, the model edited while paused or None). A model with a problem is
        refused, with the problem shown on its node: the run stays paused, nothing lost."""
        if not self.session.is_edited(self.doc.graph):
            return True, None
        an = self.doc.analysis
        if an.error_count:
            first = (an.graph_errors + list(an.errors.values()))[0]
            self.presenter.show_refusal(f"Cannot resume with the edited model: "
                                        f"{first.message}", first.node_id)
            return False, None
        return True, self.doc.graph

    def _send(self, command: Any) -> None:
        go, graph = self._edit_to_send()
        if not go:
            return
        try:
            command(graph)
        except NetBuilderError as exc:
            self.presenter.show_refusal(f"Cannot resume with the edited model: {exc.message}",
                                        exc.node_id)

    def resume(self) -> None:
        """Resume; a model edited while paused trains from here, keeping the weights of
        every node whose shapes are unchanged (the session's ``edited`` reports which)."""
        self._send(self.session.resume)

    def apply_edits(self) -> None:
        """While paused: train the edited model from the next batch, swapped in now, and
        stay paused, so the canvas shows which nodes keep their weights before Resume."""
        if self.session.state == RunState.PAUSED:
            self._send(self.session.edit)

    def toggle_pause(self) -> None:
        if self.state == "paused":
            self.resume()
        else:
            self.pause()

    def stop(self) -> None:
        self.session.stop()

    def step(self) -> None:
        if not self.session.running:
            self.start(paused=True)
        else:
            self._send(self.session.step)

    def set_lr(self, lr: float) -> None:
        try:
            if not self.session.set_lr(lr):
                return
        except NetBuilderError as exc:
            self.w.show_status(exc.message, True)
            return
        self.w.show_status(f"Learning rate {lr:.3g} from the next batch on")

    def wait_stopped(self, timeout_s: float = 120.0) -> bool:
        """Serve events until the run asked to stop has ended (its last batch and its
        weights are in); False if it is still going after ``timeout_s``."""
        end = time.monotonic() + timeout_s
        while self.worker is not None and time.monotonic() < end:
            QCoreApplication.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 50)
            if self.worker is not None:
                self.worker.wait(20)
        return self.worker is None

    def shutdown(self, timeout_ms: int = 5000) -> None:
        """Stop any run and wait for its thread (closing the window). Stop takes effect after
        the current batch (a first kernel compile is killed at once); a thread still running
        after ``timeout_ms`` is waited for, since Qt aborts if a running thread is destroyed."""
        workers = list(self._workers)
        for wk in workers:
            wk.stop()
        if self.replaying is not None:  # a replay cannot be interrupted: wait for it
            self.replaying.wait()
        self.presenter.shutdown()
        for wk in workers:
            if not wk.wait(timeout_ms):
                self.w.show_status("Waiting for the training thread to finish its batch…")
                wk.wait()

    def _on_ended(self, run: RunRecord, out: RunOutcome, detached: bool) -> None:
        self.keep_for_recovery(run)


def _view(name: str) -> property:
    return property(lambda self: getattr(self.presenter, name),
                    doc=f"The presenter's ``{name}``.")


for _name in VIEWS:
    setattr(RunController, _name, _view(_name))
