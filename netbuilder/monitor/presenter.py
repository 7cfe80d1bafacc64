"""The monitor presenter: owns the training widgets (Training, Data and Runs panels, the
plot docks, the Training menu, the kernel bar) and keeps them in step with the run session
by subscribing to its events. It draws; it decides nothing about the run (that is the
session's job, and the RunController's to turn the user's commands into session calls)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QFileDialog

from engine.blocks import flatten, output_of
from engine.bundle import EXTENSION
from engine.errors import NetBuilderError
from engine.text import plural

from ..analysis import analyse
from ..panels.data_panel import DataPanel, spec_text
from ..panels.runs_panel import RunsPanel
from ..panels.section import SectionWriter
from ..panels.training_panel import TrainingPanel, fmt_time
from ..session.messages import EpochReport, RunInfo, RunOutcome, Snapshot, empty_snapshot, measure_images
from ..session.probes import Head, MonitorRequest, attention_nodes, pair_nodes
from ..session.runs import RunRecord
from ..session.session import RunSession
from ..session.state import RunState
from ..settings import save_folder
from ..training.kernel_prep import KernelPrepStatus
from .docks import MonitorDocks
from .frames import FrameDrawing
from .scrub import IMAGE_KEYS, TimelineDrawing

if TYPE_CHECKING:
    from ..mainwindow import MainWindow

LOCK_MESSAGE = ("A training run is using this model: pause it (Pause in the Training panel) "
                "to change layers, wires or parameters; Resume keeps the weights of what you "
                "left alone. Moving nodes is fine.")
PANEL_STATE = {RunState.IDLE: "idle", RunState.COMPILING: "starting",
               RunState.RUNNING: "running", RunState.PAUSED: "paused",
               RunState.STOPPING: "stopping", RunState.FINISHED: "idle",
               RunState.FAILED: "idle"}


def panel_state(state: RunState) -> str:
    """The Training panel's name for a session state (a run that ended is idle again)."""
    return PANEL_STATE[state]


class MonitorPresenter(TimelineDrawing, FrameDrawing, QObject):
    """The training views of one MainWindow, following ``session``. ``commands`` is what the
    buttons and the menu call (the RunController: start, toggle_pause, step, stop, …).
    ``views_built`` once the plot views exist; ``live_profile(Profile)`` with the per-node
    times of a recent step while ``profile_every`` > 0 (live profiling)."""

    views_built = Signal()
    live_profile = Signal(object)
    profile_every = 0  # time one training step per node every this many steps (0: off)

    def __init__(self, window: MainWindow, session: RunSession, commands: Any) -> None:
        super().__init__(window)
        self.w = window
        self.doc = window.document
        self.session = session
        self.store = session.store
        self.writer = SectionWriter(window.document, window.push, window.show_status)
        self.panel = TrainingPanel(self.writer)
        self.data = DataPanel(self.writer, host=window)
        self.runs_panel = RunsPanel(self.store)
        self.docks = MonitorDocks(window, self.panel, self.data, self.runs_panel,
                                  self.ensure_views)
        self.prep = KernelPrepStatus(window)
        self.views_ready = False  # the plot views are built on first use
        self.shown: RunRecord | None = None
        self._init_frames()
        self._init_timeline()
        self._make_menu(commands)

        self.data.changed.connect(self._on_data_changed)
        self.runs_panel.run_selected.connect(self.show_run)
        self.store.overlay_changed.connect(self._update_overlays)
        window.selection_changed.connect(self._on_selection)
        s = session
        s.state_changed.connect(self._on_state)
        s.started.connect(self._on_started)
        s.phase.connect(self._on_phase)
        s.info_ready.connect(self._on_info)
        s.snapshot.connect(self._on_snapshot)
        s.epoch.connect(self._on_epoch)
        s.ended.connect(self._on_ended)
        self._on_data_changed()

    @property
    def active(self) -> RunRecord | None:
        return self.session.active

    @property
    def info(self) -> RunInfo | None:
        return self.session.info

    def ensure_views(self) -> None:
        """Build the plot views and docks (the first run, a bundle or the menu needs them)."""
        if self.views_ready:
            return
        d = self.docks
        d.build()
        self.curves, self.maps, self.filters = d.curves, d.maps, d.filters
        self.grads, self.confusion, self.gallery, self.fit = d.grads, d.confusion, d.gallery, d.fit
        self.pairs, self.attention = d.pairs, d.attention
        self.views_ready = True
        self.maps.node_chosen.connect(lambda _n: self.request_changed())
        self.maps.sample_chosen.connect(lambda _i: self.request_changed())
        self.filters.conv_chosen.connect(lambda _n: self.request_changed())
        self.grads.node_chosen.connect(lambda _n: self.request_changed())
        self.pairs.node_chosen.connect(lambda _n: self.request_changed())
        self.attention.node_chosen.connect(lambda _n: self.request_changed())
        self.attention.sample_chosen.connect(lambda _i: self.request_changed())
        for dock in d.plots.values():
            dock.visibilityChanged.connect(lambda _v: self.request_changed())
        self.set_model_nodes()
        self.views_built.emit()
        self._build_timeline_bar()
        self._on_selection(self.w.selected_node_ids())  # a node selected before the views

    def show_monitor(self, front: tuple[str, ...] = ("curves", "maps", "filters",
                                                     "confusion")) -> None:
        self.ensure_views()
        self.docks.show_monitor(front)

    # ----- menu ----------------------------------------------------------------------------
    def _make_menu(self, c: Any) -> None:
        m = self.w.add_menu("&Training")
        self.menu = m

        def act(text: str, slot: Any, key: str | None = None) -> QAction:
            a = QAction(text, self.w)
            if key:
                a.setShortcut(QKeySequence(key))
            a.triggered.connect(slot)
            m.addAction(a)
            return a
        self.act_start = act("&Start", lambda: c.start(), "F5")
        self.act_pause = act("&Pause / Resume", c.toggle_pause, "F6")
        self.act_step = act("Step One &Batch", c.step, "F10")
        self.act_stop = act("S&top", c.stop, "Shift+F5")
        m.addSeparator()
        act("Show &Monitor", lambda: self.show_monitor())
        self.act_graph = act("Live Values on the &Graph", self._toggle_graph)
        self.act_graph.setCheckable(True)
        self.act_graph.setChecked(True)
        self.act_graph.setToolTip("Badges with activation statistics on the nodes and wires "
                                  "tinted by the gradient flowing back, while training")
        act("Save Trained &Model…", lambda: c.save_bundle())
        self._update_actions()

    def _toggle_graph(self, on: bool) -> None:
        if not on:
            self.w.scene.clear_monitor()
        self.request_changed()

    def _update_actions(self) -> None:
        s = panel_state(self.session.state)
        self.act_start.setEnabled(s == "idle")
        self.act_pause.setEnabled(s in ("running", "paused", "starting"))
        self.act_stop.setEnabled(s in ("running", "paused", "starting"))
        self.act_step.setEnabled(s in ("idle", "paused"))

    # ----- the model -----------------------------------------------------------------------
    def set_model_nodes(self) -> None:
        """Offer the open model's layers in the views that pick one: the flat network's, so
        the layers inside a collapsed block can be picked too (``block1-conv``)."""
        if not self.views_ready:
            return
        g = self.doc.graph
        an = self.doc.analysis
        if any(n.block is not None for n in g.nodes.values()):
            try:
                g = g.flatten()
                an = analyse(g)
            except NetBuilderError:
                g = self.doc.graph
        try:
            order = g.topological_order()
        except NetBuilderError:
            order = list(g.nodes)
        shapes = {n: an.nodes[n].out_shape for n in order
                  if n in an.nodes and an.nodes[n].out_shape is not None}
        types = {n: g.nodes[n].type for n in order}
        self.maps.set_nodes(shapes, types)
        self.filters.set_convs([n for n in order if types[n] == "Conv2D"])
        self.grads.set_layers([n for n in order if n in an.nodes and (an.nodes[n].params or 0)])
        self.pairs.set_nodes(pair_nodes(g))
        self.attention.set_nodes(attention_nodes(g))

    def model_replaced(self) -> None:
        """Another model is open: every view shows it, or its empty state."""
        self.shown = None
        self._follow_run(None)
        self._pending = self._frame = empty_snapshot()  # nothing drawn late for the old one
        self._pending_epoch = self._frame_epoch = None
        self.w.scene.clear_monitor()
        self.panel.show_ready()
        if not self.views_ready:
            return
        self.set_model_nodes()
        for v in (self.maps, self.filters, self.grads, self.confusion, self.gallery, self.pairs,
                  self.attention):
            v.clear()
        self.maps.set_probe(None)
        self.pairs.set_probe(None)
        self.attention.set_probe(None)
        self.fit.set_probe(None)
        self.confusion.set_class_names([])
        self.gallery.set_class_names([])
        self.curves.set_run(None)
        self.grads.set_run(None)
        self._update_overlays()

    def _on_selection(self, ids: list[str]) -> None:
        if len(ids) != 1 or not self.views_ready:
            return
        nid = ids[0]
        node = self.doc.graph.nodes.get(nid)
        if node is None:
            return
        inner = [nid]
        if node.block is not None:  # a collapsed block: its output, its first conv/weights
            nid = output_of(nid, node)
            inner = list(flatten({ids[0]: node}, []).nodes)
        self.maps.select_node(nid)
        conv = next((i for i in inner if i in self.filters.convs), None)
        if conv is not None:
            self.filters.select_conv(conv)
        self.grads.select_node(next((i for i in inner if i in self.grads.layers), nid))
        self.pairs.select_node(nid)
        self.attention.select_node(nid)

    def _on_data_changed(self) -> None:
        dp = self.data
        wait = dp.start_blocker()
        self.panel.set_data_wait(wait)
        if wait:
            self.panel.set_data_note(f"Data: {wait}", False)
        elif dp.load_error:
            self.panel.set_data_note(f"Data: {dp.load_error}", True)
        elif dp.problems:
            self.panel.set_data_note("Data: " + dp.problems[0].message, True)
        elif dp.dataset is not None:
            self.panel.set_data_note(f"Data: {dp.dataset.describe()}", False)
        elif dp.spec is None:
            self.panel.set_data_note("Data: none chosen yet (Data panel)", True)
        else:
            self.panel.set_data_note(f"Data: {spec_text(dp.spec)} (loading…)", False)

    # ----- what the views want measured ----------------------------------------------------
    def request(self) -> MonitorRequest:
        graph = self.act_graph.isChecked()
        if not self.views_ready:
            return MonitorRequest(feature_maps=False, filters=False, histograms=False,
                                  regions=False, epoch_report=False, graph=graph, pairs=False,
                                  profile_every=self.profile_every, attention=False)
        v = self.docks.visible
        return MonitorRequest(
            node=self.maps.node, sample=self.maps.sample, conv=self.filters.conv,
            hist_node=self.grads.node, feature_maps=v("maps"), filters=v("filters"),
            histograms=v("grads"), graph=graph or v("grads"), regions=v("fit"),
            epoch_report=v("confusion") or v("gallery"), pair_node=self.pairs.node,
            pairs=v("pairs") and self.pairs.node is not None,
            profile_every=self.profile_every,
            attn_node=self.attention.node, attn_sample=self.attention.sample,
            attention=v("attention") and self.attention.node is not None)

    def request_changed(self) -> None:
        """The views want something else: the run measures it, or after a run this thread
        measures it on the final network (the loop is gone, so this thread owns it). On a
        recorded epoch (the timeline scrubbed back) the recording shows it."""
        req = self.request()
        s = self.session
        if self.scrubbed and self.views_ready:
            if s.running:
                s.request = req
            self._show_recorded(self.timeline.epoch)
        elif s.running:
            s.request = req
        elif s.final_net is not None and s.final_probe is not None:
            try:
                snap = measure_images(s.final_net, s.final_probe, Head.of(s.final_net), req,
                                      empty_snapshot())
            except NetBuilderError:
                return
            self._show_images(snap)

    # ----- refusals, dialogs ---------------------------------------------------------------
    def show_refusal(self, text: str, node: str | None = None, front: str = "") -> None:
        """A start refused: the reason in the panel and the status bar, the node it names in
        view; ``front``: "data" also brings the Data panel forward."""
        if node and node in self.w.scene.nodes:
            self.w.focus_node(node)
        self.panel.show_refusal(text)
        self.w.show_status(text, True)
        self.docks.training.raise_()
        if front == "data":
            self.docks.data.raise_()

    def show_runs_panel(self) -> None:
        """Bring the Runs panel forward (runs were restored into it)."""
        self.docks.runs.raise_()

    def current_run(self) -> RunRecord | None:
        """The run picked in the Runs panel, else the one shown."""
        return self.runs_panel.current() or self.shown

    def choose_bundle_path(self, run: RunRecord) -> str | None:
        start = save_folder(self.doc.path)
        name = f"{(run.model_name or 'model').replace(' ', '_')}_run{run.number}{EXTENSION}"
        path, _ = QFileDialog.getSaveFileName(self.w, "Save trained model", str(start / name),
                                              f"Trained models (*{EXTENSION})")
        return path or None

    def choose_csv_path(self, run: RunRecord) -> str | None:
        start = save_folder(self.doc.path)
        path, _ = QFileDialog.getSaveFileName(self.w, "Export curves",
                                              str(start / f"run{run.number}.csv"),
                                              "CSV files (*.csv)")
        return path or None

    def shutdown(self) -> None:
        """The window closes: the kernel bar's and the data panel's threads end."""
        self.prep.shutdown()
        self.data.shutdown()

    # ----- the session's events ------------------------------------------------------------
    def _on_state(self, old: RunState, new: RunState) -> None:
        if new in (RunState.FINISHED, RunState.FAILED):
            self.w.set_edit_lock(None)
            self.data.set_running(False)
        if new == RunState.STOPPING:
            self.panel.show_stopping()
        self.panel.set_state(panel_state(new))
        self._update_actions()

    def _on_started(self, run: RunRecord) -> None:
        self._pending = empty_snapshot()
        self._pending_epoch = None
        self.show_run(run)
        self.w.set_edit_lock(LOCK_MESSAGE)
        self.w.scene.clear_monitor()
        for v in (self.confusion, self.gallery, self.maps, self.filters, self.grads, self.pairs,
                  self.attention):
            v.clear()
        self.panel.show_message("")
        self.panel.show_phase("starting…")
        self.data.set_running(True)
        first = not self.docks.shown
        self.docks.show_monitor()
        if first:
            QTimer.singleShot(0, self.w.frame_canvas)  # the canvas is a column now
        self.session.request = self.request()

    def _on_phase(self, text: str, done: int, total: int) -> None:
        if not self.session.detached:
            self.panel.show_phase(text, done, total)

    def _on_info(self, info: RunInfo) -> None:
        run = self.session.active
        if self.session.detached or run is None:
            return
        self.maps.set_probe(info.probe)
        self.fit.set_probe(info.probe)
        self.pairs.set_probe(info.probe)
        self.attention.set_probe(info.probe)
        self.confusion.set_class_names(info.class_names)
        self.gallery.set_class_names(info.class_names)
        front = ["curves", "confusion"]
        front.append("fit" if info.probe.kind else "maps")
        front.append("pairs" if self.pairs.node else "attention" if self.attention.node
                     else "filters" if self.filters.conv else "gallery")
        g = run.graph
        head = next((n for n in g.topological_order() if g.nodes[n].type == "Output"),
                    None)  # the Output the confusion matrix reads
        if info.task != "classification" or head is None or \
                g.nodes[head].params.get("loss") == "mse" or \
                len(info.shapes.get(head, ())) != 1:  # one class per step: no matrix
            front[1] = "runs"
        self.docks.show_monitor(tuple(k for k in front if k in self.docks.plots or k == "runs"))
        self.request_changed()

    def _on_snapshot(self, snap: Snapshot) -> None:
        """Keep the data; the views are drawn by the frame timer (bounded GUI work)."""
        if self.session.detached:
            return
        self._keep_latest(snap)
        p = self._pending
        for key in ("event", "profile", "attention") if self.scrubbed else \
                ("event", "profile", "attention", *IMAGE_KEYS):
            v = getattr(snap, key)
            if v is not None:
                setattr(p, key, v)
        self._schedule()

    def _on_epoch(self, rep: EpochReport) -> None:
        if not rep.repeat:
            self._runs_changed = True
        if rep.analysis is not None and not self.session.detached:
            self._latest_epoch = rep
            if not self.scrubbed:  # a scrubbed confusion matrix stays at its epoch
                self._pending_epoch = rep
        self._schedule()

    def _on_ended(self, run: RunRecord, out: RunOutcome, detached: bool) -> None:
        self._draw_now()
        if detached:
            self.panel.show_ready()
            self.w.show_status(f"{run.name} of {run.model_name} {out.message} (Runs panel)")
            return
        steps = len(run.steps)
        m = run.last_metrics()
        acc = m.get("val_accuracy") if m.get("val_accuracy") is not None else \
            m.get("train_accuracy")
        summary = f"{run.name} {out.message}: {plural(steps, 'batch')}"
        if m:
            summary += f", {plural(m['epoch'], 'epoch')}"
        if acc is not None:
            summary += f", {'pixel ' if m.get('val_iou') is not None else ''}accuracy " \
                f"{100 * acc:.1f} %"
        if m.get("val_iou") is not None:
            summary += f", mean IoU {m['val_iou']:.3f}"
        if out.result is not None and out.result.elapsed:
            summary += f" in {fmt_time(out.result.elapsed)}"
        if out.status == "failed":
            text = f"{run.name} failed: {out.message}"
            self.panel.show_message(text, True)
            self.panel.finish_progress("failed")
            self.w.show_status(text, True)
            if out.error_node:
                self.w.scene.set_monitor(badges={out.error_node: (
                    "NaN/Inf here", "nan", f"first non-finite value: {out.message}")})
                self.w.focus_node(out.error_node)
                self.docks.training.raise_()  # the message stays in front of the Inspector
            if out.details:
                self.w.show_error("Training failed", f"{out.message}\n\nThe application is "
                                  "fine and your model is unchanged.")
        else:
            self.panel.show_message(summary, False)
            self.panel.finish_progress(out.message)
            self.w.show_status(summary)
        self.request_changed()

    # ----- showing runs --------------------------------------------------------------------
    def show_run(self, run: RunRecord) -> None:
        """Draw ``run``'s curves (the active run is shown as soon as it starts)."""
        active = self.session.active
        if active is not None and run is not active:
            return
        self.ensure_views()
        if run is not self.shown:
            self.shown = run
            self._follow_run(run)
        self.curves.set_run(run)
        self.grads.set_run(run)
        self.runs_panel.select(run)
        self._update_overlays()

    def _update_overlays(self) -> None:
        if not self.views_ready:
            return
        key = self.shown.model_key if self.shown is not None else None
        self.curves.set_overlays(self.store.overlaid(key, self.shown))

    def redraw(self) -> None:
        """Draw the shown run's curves and gradient norms again, whole."""
        if self.shown is not None and self.views_ready:
            self._drawn_curves = self._drawn_norms = None
            self.curves.refresh()
            self.grads.refresh_norms()
