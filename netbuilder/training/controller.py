"""The run controller: starts a TrainingWorker for the open model, turns its messages into
curves, plots, canvas badges and wire tints, keeps the runs, and locks the model against
edits while a run is active. Everything here runs on the GUI thread and never waits for
the worker."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QCoreApplication, QEventLoop, QObject, Qt, QTimer
from PySide6.QtGui import QAction, QKeySequence

import engine
from engine.errors import NetBuilderError
from engine.text import plural

from ..document import Change
from ..monitor.docks import MonitorDocks
from ..panels.data_panel import DataPanel, spec_text
from ..panels.runs_panel import RunsPanel
from ..panels.section import SectionWriter
from ..panels.training_panel import TrainingPanel, fmt_time
from .files import RunFiles
from .frames import FrameDrawing
from .kernel_prep import KernelPrepStatus
from .probes import Head, MonitorRequest, ProbeData, pair_nodes
from .runs import EpochRow, RunRecord, RunsStore, model_key
from .worker import (
    EpochReport,
    RunInfo,
    RunOutcome,
    Snapshot,
    TrainingJob,
    TrainingWorker,
    empty_snapshot,
    measure_images,
)

if TYPE_CHECKING:
    from ..mainwindow import MainWindow

LOCK_MESSAGE = ("A training run is using this model: stop it (■ Stop in the Training panel) "
                "before changing layers, wires or parameters. Moving nodes is fine.")
Q = Qt.ConnectionType.QueuedConnection


class RunController(FrameDrawing, RunFiles, QObject):
    """Training for one MainWindow: panels, monitor docks, runs, the worker thread."""

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.w = window
        self.doc = window.document
        self.store = RunsStore(self)
        self.writer = SectionWriter(window.document, window.push, window.show_status)
        self.panel = TrainingPanel(self.writer)
        self.data = DataPanel(self.writer, host=window)
        self.runs_panel = RunsPanel(self.store)
        self.docks = MonitorDocks(window, self.panel, self.data, self.runs_panel)
        self.views_ready = False  # the plot views are built on first use
        self.worker: TrainingWorker | None = None
        self._finished_workers: list[TrainingWorker] = []
        self.active: RunRecord | None = None
        self.shown: RunRecord | None = None
        self.info: RunInfo | None = None
        self.state = "idle"
        self.last_outcome: RunOutcome | None = None
        self._idle_net: engine.Network | None = None  # the last run's network, for inspection
        self.detached = False  # the active run is of a model no longer open
        self._idle_probe: ProbeData | None = None
        self._init_frames()
        self.prep = KernelPrepStatus(window)
        self.choose_bundle_path = self._choose_bundle_path
        self.choose_csv_path = self._choose_csv_path
        self._make_menu()

        p = self.panel
        p.start_requested.connect(lambda: self.start())
        p.pause_requested.connect(self.pause)
        p.resume_requested.connect(self.resume)
        p.stop_requested.connect(self.stop)
        p.step_requested.connect(self.step)
        p.live_lr_changed.connect(self.set_lr)
        self.data.changed.connect(self._on_data_changed)
        self.runs_panel.run_selected.connect(self.show_run)
        self.runs_panel.save_requested.connect(lambda r: self.save_bundle(r))
        self.runs_panel.csv_requested.connect(lambda r: self.export_csv(r))
        self.runs_panel.reuse_requested.connect(self.reuse_settings)
        self.store.overlay_changed.connect(self._update_overlays)
        self.store.removed.connect(lambda run: window.recovery.drop_run(run.number))
        window.selection_changed.connect(self._on_selection)
        window.document_replaced.connect(self._on_replaced)
        window.file_opened.connect(self._on_file_opened)
        self.doc.subscribe(self._on_doc_change)
        self._on_data_changed()

    def ensure_views(self) -> None:
        """Build the plot views and docks (the first run, a bundle or the menu needs them)."""
        if self.views_ready:
            return
        d = self.docks
        d.build()
        self.curves, self.maps, self.filters = d.curves, d.maps, d.filters
        self.grads, self.confusion, self.gallery, self.fit = d.grads, d.confusion, d.gallery, d.fit
        self.pairs = d.pairs
        self.views_ready = True
        self.maps.node_chosen.connect(lambda _n: self._request_changed())
        self.maps.sample_chosen.connect(lambda _i: self._request_changed())
        self.filters.conv_chosen.connect(lambda _n: self._request_changed())
        self.grads.node_chosen.connect(lambda _n: self._request_changed())
        self.pairs.node_chosen.connect(lambda _n: self._request_changed())
        for dock in d.plots.values():
            dock.visibilityChanged.connect(lambda _v: self._request_changed())
        self._set_model_nodes()

    def show_monitor(self, front: tuple[str, ...] = ("curves", "maps", "filters",
                                                     "confusion")) -> None:
        self.ensure_views()
        self.docks.show_monitor(front)

    # ----- menu ----------------------------------------------------------------------------
    def _make_menu(self) -> None:
        m = self.w.add_menu("&Training")
        self.menu = m

        def act(text: str, slot: Any, key: str | None = None) -> QAction:
            a = QAction(text, self.w)
            if key:
                a.setShortcut(QKeySequence(key))
            a.triggered.connect(slot)
            m.addAction(a)
            return a
        self.act_start = act("&Start", lambda: self.start(), "F5")
        self.act_pause = act("&Pause / Resume", self.toggle_pause, "F6")
        self.act_step = act("Step One &Batch", self.step, "F10")
        self.act_stop = act("S&top", self.stop, "Shift+F5")
        m.addSeparator()
        act("Show &Monitor", lambda: self.show_monitor())
        self.act_graph = act("Live Values on the &Graph", self._toggle_graph)
        self.act_graph.setCheckable(True)
        self.act_graph.setChecked(True)
        self.act_graph.setToolTip("Badges with activation statistics on the nodes and wires "
                                  "tinted by the gradient flowing back, while training")
        act("Save Trained &Model…", lambda: self.save_bundle())
        self._update_actions()

    def _toggle_graph(self, on: bool) -> None:
        if not on:
            self.w.scene.clear_monitor()
        self._request_changed()

    def _update_actions(self) -> None:
        s = self.state
        self.act_start.setEnabled(s == "idle")
        self.act_pause.setEnabled(s in ("running", "paused", "starting"))
        self.act_stop.setEnabled(s in ("running", "paused", "starting"))
        self.act_step.setEnabled(s in ("idle", "paused"))

    # ----- model ---------------------------------------------------------------------------
    def _set_model_nodes(self) -> None:
        if not self.views_ready:
            return
        an = self.doc.analysis
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

    def _on_doc_change(self, ch: Change) -> None:
        if ch.affects_shapes and self.active is None:
            self.w.scene.clear_monitor()
            self._idle_net = None
            self._set_model_nodes()
        if ch.reset:
            self._set_model_nodes()

    def _on_replaced(self) -> None:
        """Another model is open: every view shows it, or its empty state. A run still
        going belongs to the old model: it stops, and its last messages only reach its
        record in the Runs panel."""
        if self.worker is not None:
            self.detached = True
            self.stop()
            self.w.show_status("Stopped the training run: another model was opened")
        self._idle_net = None
        self._idle_probe = None
        self.shown = None
        self._pending = self._frame = empty_snapshot()  # nothing drawn late for the old one
        self._pending_epoch = self._frame_epoch = None
        self.w.scene.clear_monitor()
        self.panel.show_ready()
        if not self.views_ready:
            return
        self._set_model_nodes()
        for v in (self.maps, self.filters, self.grads, self.confusion, self.gallery, self.pairs):
            v.clear()
        self.maps.set_probe(None)
        self.pairs.set_probe(None)
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
        self.maps.select_node(nid)
        if node.type == "Conv2D":
            self.filters.select_conv(nid)
        self.grads.select_node(nid)
        self.pairs.select_node(nid)

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

    # ----- request -------------------------------------------------------------------------
    def request(self) -> MonitorRequest:
        graph = self.act_graph.isChecked()
        if not self.views_ready:
            return MonitorRequest(feature_maps=False, filters=False, histograms=False,
                                  regions=False, epoch_report=False, graph=graph, pairs=False)
        v = self.docks.visible
        return MonitorRequest(
            node=self.maps.node, sample=self.maps.sample_box.value(), conv=self.filters.conv,
            hist_node=self.grads.node, feature_maps=v("maps"), filters=v("filters"),
            histograms=v("grads"), graph=graph or v("grads"), regions=v("fit"),
            epoch_report=v("confusion") or v("gallery"), pair_node=self.pairs.node,
            pairs=v("pairs") and self.pairs.node is not None)

    def _request_changed(self) -> None:
        req = self.request()
        if self.worker is not None:
            self.worker.request = req
        elif self._idle_net is not None and self._idle_probe is not None:
            self._inspect_idle(req)

    def _inspect_idle(self, req: MonitorRequest) -> None:
        """After a run: show what the final network does for the current choices (the
        worker is gone, so this thread owns the network)."""
        net = self._idle_net
        if net is None or self._idle_probe is None:
            return
        try:
            snap = measure_images(net, self._idle_probe, Head.of(net), req, empty_snapshot())
        except NetBuilderError:
            return
        self._show_images(snap)

    # ----- running -------------------------------------------------------------------------
    def start(self, paused: bool = False) -> bool:
        """Start a run of the open model (paused: wait for Step). False, with a message,
        when the model, the settings or the data are not ready."""
        if self.worker is not None:
            return False
        an = self.doc.analysis
        if an.error_count:
            first = (an.graph_errors + list(an.errors.values()))[0]
            self._refuse(f"The model has a problem: {first.message}", first.node_id)
            return False
        section = dict(self.doc.graph.training)
        try:
            settings = engine.TrainSettings.from_dict(section)
        except NetBuilderError as exc:
            self._refuse(f"Training settings: {exc.message}")
            return False
        if settings.dataset is None:
            self._refuse("Choose the data to train on in the Data panel first.")
            self.docks.data.raise_()
            return False
        ds = None
        dp = self.data
        wait = dp.start_blocker()
        if wait:  # never a silent download on the training thread
            self._refuse(f"Waiting for the data: {wait}")
            self.docks.data.raise_()
            return False
        if dp.dataset is not None and dp.loaded_spec == spec_text(settings.dataset):
            if dp.problems:
                p = dp.problems[0]
                self._refuse(f"The data does not fit the model: {p.message}", p.node_id)
                self.docks.data.raise_()
                return False
            ds = dp.dataset
        self.ensure_views()
        graph = self.doc.graph.copy()
        run = RunRecord(self.store.next_number(), graph.name or "model", model_key(graph),
                        graph, section)
        self.active = run
        self._pending = empty_snapshot()
        self._pending_epoch = None
        self.last_outcome = None
        self._idle_net = None
        self.info = None
        job = TrainingJob(graph, section, ds, dp.base_dir, start_paused=paused,
                          threads=self.panel.threads_choice())
        worker = TrainingWorker(job, self.request())
        worker.phase.connect(self._on_phase, Q)
        worker.info.connect(self._on_info, Q)
        worker.snapshot.connect(self._on_snapshot, Q)
        worker.epoch.connect(self._on_epoch, Q)
        worker.done.connect(self._on_done, Q)
        worker.finished.connect(self._reap, Q)
        self.worker = worker
        self.store.add(run)
        self.show_run(run)
        self.w.set_edit_lock(LOCK_MESSAGE)
        self.w.scene.clear_monitor()
        for v in (self.confusion, self.gallery, self.maps, self.filters, self.grads, self.pairs):
            v.clear()
        self._set_state("paused" if paused else "starting")
        self.panel.show_message("")
        self.panel.show_phase("starting…")
        self.data.set_running(True)
        first = not self.docks.shown
        self.docks.show_monitor()
        if first:
            QTimer.singleShot(0, self._frame_canvas)
        worker.request = self.request()
        worker.start()
        if paused:
            worker.step()
        return True

    def _frame_canvas(self) -> None:
        """The canvas is a column now: show the graph at a readable zoom."""
        self.w.frame_canvas()

    def _refuse(self, text: str, node: str | None = None) -> None:
        if node and node in self.w.scene.nodes:
            self.w.focus_node(node)
        self.panel.show_refusal(text)
        self.w.show_status(text, True)
        self.docks.training.raise_()

    def pause(self) -> None:
        if self.worker is not None and self.state in ("running", "starting"):
            self.worker.pause()
            self._set_state("paused")
            self.w.show_status("Paused: Step trains one batch, Resume carries on")

    def resume(self) -> None:
        if self.worker is not None and self.state == "paused":
            self.worker.resume()
            self._set_state("running")

    def toggle_pause(self) -> None:
        if self.state == "paused":
            self.resume()
        else:
            self.pause()

    def stop(self) -> None:
        if self.worker is not None:
            self.worker.stop()
            self.panel.status.setText("stopping after this batch…")
            self._set_state("stopping")

    def wait_stopped(self, timeout_s: float = 120.0) -> bool:
        """Serve events until the run asked to stop has ended (its last batch and its
        weights are in); False if it is still going after ``timeout_s``."""
        end = time.monotonic() + timeout_s
        while self.worker is not None and time.monotonic() < end:
            QCoreApplication.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 50)
            if self.worker is not None:
                self.worker.wait(20)
        return self.worker is None

    def step(self) -> None:
        if self.worker is None:
            self.start(paused=True)
        elif self.state == "paused":
            self.worker.step()

    def set_lr(self, lr: float) -> None:
        if self.worker is None:
            return
        try:
            self.worker.set_lr(lr)
        except NetBuilderError as exc:
            self.w.show_status(exc.message, True)
            return
        self.w.show_status(f"Learning rate {lr:.3g} from the next batch on")

    def shutdown(self, timeout_ms: int = 5000) -> None:
        """Stop any run and wait for its thread (closing the window). Stop takes effect after
        the current batch (a first kernel compile is killed at once); a thread still running
        after ``timeout_ms`` is waited for, since Qt aborts if a running thread is destroyed."""
        workers = [wk for wk in [self.worker, *self._finished_workers] if wk is not None]
        for wk in workers:
            wk.stop()
        self.prep.shutdown()
        self.data.shutdown()
        for wk in workers:
            if not wk.wait(timeout_ms):
                self.w.show_status("Waiting for the training thread to finish its batch…")
                wk.wait()

    def _set_state(self, state: str) -> None:
        self.state = state
        self.panel.set_state(state)
        self._update_actions()

    # ----- messages from the worker ------------------------------------------------------
    def _from_current(self) -> bool:
        return self.sender() is self.worker and self.worker is not None

    def _on_phase(self, text: str, done: int, total: int) -> None:
        if self._from_current() and not self.detached:
            self.panel.show_phase(text, done, total)

    def _on_info(self, info: RunInfo) -> None:
        if not self._from_current() or self.active is None:
            return
        self.info = info
        run = self.active
        run.total_steps = info.total_steps
        run.dataset = info.dataset_meta
        run.normalizer = info.normalizer
        if self.detached:
            return
        self.maps.set_probe(info.probe)
        self.fit.set_probe(info.probe)
        self.pairs.set_probe(info.probe)
        self.confusion.set_class_names(info.class_names)
        self.gallery.set_class_names(info.class_names)
        front = ["curves", "confusion"]
        front.append("fit" if info.probe.kind else "maps")
        front.append("pairs" if self.pairs.node else "filters" if self.filters.conv
                     else "gallery")
        g = run.graph
        head = next((g.nodes[n] for n in g.topological_order() if g.nodes[n].type == "Output"),
                    None)  # the Output the confusion matrix reads
        if info.task != "classification" or head is None or head.params.get("loss") == "mse":
            front[1] = "runs"
        self.docks.show_monitor(tuple(k for k in front if k in self.docks.plots or k == "runs"))
        self._request_changed()

    def _on_snapshot(self, snap: Snapshot) -> None:
        """Keep the data; the views are drawn by the frame timer (bounded GUI work)."""
        run = self.active
        if not self._from_current() or run is None:
            return
        if len(snap.steps):
            run.steps.extend(snap.steps)
            run.losses.extend(snap.losses)
            run.lrs.extend(snap.lrs)
            run.accuracies.extend(snap.accuracies)
        if snap.layer_norms is not None:
            run.add_grad_norms(*snap.layer_norms)
        if snap.event is not None and self.state == "starting":
            self._set_state("running")
            run.status = "running"
        if self.detached:
            return
        p = self._pending
        for key in ("event", "stats", "wires", "maps", "filters", "hists", "regions", "curve",
                    "pairs"):
            v = getattr(snap, key)
            if v is not None:
                setattr(p, key, v)
        self._schedule()

    def _on_epoch(self, rep: EpochReport) -> None:
        run = self.active
        if not self._from_current() or run is None:
            return
        e = rep.event
        if not rep.repeat:
            run.epochs.append(EpochRow(e.epoch, e.step, e.train_loss, e.train_accuracy,
                                       e.val_loss, e.val_accuracy, e.lr, e.elapsed))
            self._runs_changed = True
        if rep.analysis is not None and not self.detached:
            self._pending_epoch = rep
        self._schedule()

    def _on_done(self, out: RunOutcome) -> None:
        worker = self.worker
        run = self.active
        if self.sender() is not worker or worker is None or run is None:
            return
        self.last_outcome = out
        run.status = out.status
        run.message = out.message
        run.error_node = out.error_node
        run.weights = out.weights
        run.history = out.history
        self.worker = None
        self.active = None
        self._finished_workers.append(worker)
        detached, self.detached = self.detached, False
        self._idle_net = None if detached else worker.net
        self._idle_probe = None if detached else worker.probe
        self.w.set_edit_lock(None)
        self.data.set_running(False)
        self._set_state("idle")
        self._draw_now()
        self.keep_for_recovery(run)
        self.store.changed.emit(run)
        self.runs_panel._update_buttons()
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
            summary += f", accuracy {100 * acc:.1f} %"
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
        self._request_changed()

    def _reap(self) -> None:
        wk = self.sender()
        if wk in self._finished_workers:
            self._finished_workers.remove(wk)
            wk.deleteLater()

    # ----- showing runs --------------------------------------------------------------------
    def show_run(self, run: RunRecord) -> None:
        """Draw ``run``'s curves (the active run is shown as soon as it starts)."""
        if self.active is not None and run is not self.active:
            return
        self.ensure_views()
        self.shown = run
        self.curves.set_run(run)
        self.grads.set_run(run)
        self.runs_panel.select(run)
        self._update_overlays()

    def _update_overlays(self) -> None:
        if not self.views_ready:
            return
        key = self.shown.model_key if self.shown is not None else None
        self.curves.set_overlays(self.store.overlaid(key))

    def _redraw(self) -> None:
        if self.shown is not None and self.views_ready:
            self._drawn_curves = self._drawn_norms = None
            self.curves.refresh()
            self.grads.refresh_norms()
