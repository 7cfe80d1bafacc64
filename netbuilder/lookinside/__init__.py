"""Look Inside: question the open model directly (issue 22).

``LookInside(window)`` adds a *Look Inside* menu, the *Try it* dock (draw or pick a sample,
see the prediction and why: ``tryit``), *Check Gradients* on a node (context menu, the
Inspector's button, the menu: ``gradcheck_dialog``) and *Profile* (per-node time as a heat
overlay on the canvas, Model Summary columns and an epoch estimate: ``profiling``).

Everything reads the open model and the weights of its latest finished run (fresh weights
when it has none) and works on copies, so a training run goes on undisturbed."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QEvent, QObject, Qt, QTimer
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QDockWidget, QFrame, QPushButton, QScrollArea, QWidget

import engine
from engine.errors import NetBuilderError
from engine.profile import Profile

from ..panels.data_panel import spec_text
from ..summary import batch_size_of
from .filters import FilterGridDialog
from .gradcheck_dialog import GradcheckDialog, GradcheckThread
from .profiling import HeatOverlay, ProfileThread, estimate_text, fill_summary
from .source import TrySource, build_source
from .thumbs import ActivationThumbs
from .tryit import TryItPanel

if TYPE_CHECKING:
    from ..mainwindow import MainWindow

PROFILE_STEPS = 5  # timed training steps (after two untimed ones)
LIVE_PROFILE_EVERY = 20  # live profiling times one training step in this many
LIVE_SMOOTHING = 0.3  # weight of the newest live timing in the running average


class LookInside(QObject):
    """The Look Inside tools of one MainWindow."""

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.w = window
        self.panel: TryItPanel | None = None
        self.dock: QDockWidget | None = None
        self.dialog: GradcheckDialog | None = None
        self._try_viewport: QWidget | None = None  # the Try it dock's scroll viewport
        self.filter_dialog: FilterGridDialog | None = None
        self.profile: Profile | None = None
        self._profile_key: str | None = None
        self._profile_thread: ProfileThread | None = None
        self._check_threads: list[GradcheckThread] = []
        self.overlay = HeatOverlay(window.scene)
        self.thumbs = ActivationThumbs(window.scene)
        self._refresh = QTimer(self)
        self._refresh.setSingleShot(True)
        self._refresh.setInterval(250)
        self._refresh.timeout.connect(self.refresh_source)

        m = window.add_menu("&Look Inside")
        self.menu = m

        def act(text: str, slot: Any, key: str | None = None, tip: str = "") -> QAction:
            a = QAction(text, window)
            if key:
                a.setShortcut(QKeySequence(key))
            a.setStatusTip(tip)
            a.triggered.connect(slot)
            m.addAction(a)
            return a
        self.act_try = act("&Try It…", self.show_try_it, "Ctrl+T",
                           "Draw an input or pick a sample; see the prediction and why")
        self.act_cam = act("&Why: Grad-CAM on This Node", self.grad_cam_selected, None,
                           "Show Grad-CAM of the selected convolution in the Try it panel")
        self.act_filters = act("What This &Filter Looks For", self.filters_selected, None,
                               "Synthesise the input that most excites each channel of the "
                               "selected convolution")
        self.act_check = act("Check &Gradients of This Node", self.check_selected,
                             "Ctrl+Shift+G", "Float64 finite-difference check of the "
                             "selected node's input and parameter gradients")
        m.addSeparator()
        self.act_profile = act("&Profile the Model", self.run_profile, "Ctrl+Shift+P",
                               "Time forward and backward per node over a few steps")
        self.act_live = act("Profile &Live While Training", self.set_live_profile, None,
                            f"Time one training step in {LIVE_PROFILE_EVERY} per node and "
                            f"show it on the canvas while the model trains")
        self.act_live.setCheckable(True)
        self.act_clear = act("&Clear Profile", self.clear_profile)
        window.view.context_actions += [None, self.act_check, self.act_cam, self.act_filters]
        self.check_button = QPushButton("Check gradients")
        self.check_button.setObjectName("checkGradients")
        self.check_button.setToolTip(self.act_check.statusTip())
        self.check_button.clicked.connect(self.check_selected)
        window.inspector.add_node_widget(self.check_button)

        window.document.subscribe(self._on_doc_change)
        window.document_replaced.connect(self._on_replaced)
        window.scene.analysed.connect(lambda _an: self._fill_summary())
        tr = window.training
        tr.store.changed.connect(lambda _run: self._later())
        tr.data.changed.connect(self._later)
        tr.presenter.views_built.connect(self.feed_feature_maps)
        tr.presenter.views_built.connect(
            lambda: self.w.training.fit.point_clicked.connect(self.try_point))
        tr.presenter.live_profile.connect(self._on_live_profile)
        self.live_steps = 0  # live timings received since live profiling was switched on
        window.installEventFilter(self)

    # ----- the network questioned ----------------------------------------------------------
    def _run_weights(self) -> tuple[Any, str]:
        """The latest finished run of the open model with weights, and a label."""
        from ..session.runs import model_key
        key = model_key(self.w.document.graph)
        for run in reversed(self.w.training.store.runs):
            if run.weights is not None and run.model_key == key and not run.active:
                return run, f"weights of {run.name}"
        return None, ""

    def network(self) -> tuple[engine.Network, str]:
        """The open model compiled with the latest run's weights (or fresh ones)."""
        graph = self.w.document.graph
        net = engine.Network(graph, seed=int(graph.training.get("seed", 0) or 0)
                             if isinstance(graph.training, dict) else 0)
        run, label = self._run_weights()
        if run is not None:
            net.load_state_dict(run.weights, strict=False)
            return net, label
        return net, "untrained weights"

    def source(self) -> TrySource:
        graph = self.w.document.graph
        run, label = self._run_weights()
        dp = self.w.training.data
        seed = graph.training.get("seed", 0) if isinstance(graph.training, dict) else 0
        return build_source(graph, run.weights if run else None,
                            run.normalizer if run else None, dp.dataset,
                            dp.normalize.currentData() or "none", int(seed or 0),
                            label or None)

    # ----- Try it --------------------------------------------------------------------------
    def ensure_panel(self) -> TryItPanel:
        if self.panel is None:
            self.panel = TryItPanel()
            self.dock = QDockWidget("Try It", self.w)
            self.dock.setObjectName("tryItDock")
            scroll = QScrollArea()
            scroll.setWidgetResizable(True)
            scroll.setFrameShape(QFrame.Shape.NoFrame)
            scroll.setWidget(self.panel)
            self.dock.setWidget(scroll)
            self._try_viewport = scroll.viewport()
            self._try_viewport.installEventFilter(self)  # its width picks the arrangement
            # under the canvas: the pad, the Why view and the answer side by side
            self.w.add_dock(self.dock, Qt.DockWidgetArea.BottomDockWidgetArea)
            self.w.resizeDocks([self.dock], [max(260, self.w.height() * 3 // 8)],
                               Qt.Orientation.Vertical)
            self.dock.visibilityChanged.connect(self._on_dock_visible)
            self.panel.activations.connect(self._show_thumbs)
            self.panel.region_pad.moved.connect(self._mark_point)
            self.refresh_source()
        return self.panel

    def show_try_it(self) -> TryItPanel:
        panel = self.ensure_panel()
        assert self.dock is not None
        self.dock.show()
        self.dock.raise_()
        return panel

    def try_point(self, a: float, b: float) -> None:
        """Question a 2-D point model at (a, b): a click on the monitor's decision regions."""
        panel = self.show_try_it()
        if panel.source is None or panel.source.input_kind != "points":
            self.w.show_status("Try it at a point needs the model with a 2-D Input that is "
                               "open (train it, or open it again)", True)
            return
        panel.region_pad.set_point(a, b)
        panel.try_point(a, b)

    def _mark_point(self, a: float, b: float) -> None:
        if self.w.training.views_ready:
            self.w.training.fit.mark_point(a, b)

    def refresh_source(self) -> None:
        """Rebuild what the panel questions (the model, its weights or the data changed)."""
        if self.panel is None:
            return
        dp = self.w.training.data
        try:
            src = self.source()
        except NetBuilderError as e:
            self.panel.set_source(None, note=f"Cannot try this model: {e.message}")
            return
        ds = dp.dataset
        if dp.loaded_spec != spec_text(dp.spec):
            ds = None  # still the data of another model (this one's is loading or missing)
        if ds is not None and tuple(ds.sample_shape) != src.input_shape:
            ds = None
        self.panel.set_source(src, ds)

    def _show_thumbs(self, acts: dict) -> None:
        if acts and self.dock is not None and self.dock.isVisible():
            self.thumbs.show(acts)
        else:
            self.thumbs.clear()
        self.feed_feature_maps()

    def feed_feature_maps(self) -> None:
        """Offer the Try it input's activations to the Feature Maps view (its *Try-it input*
        choice), or take them back when the panel is hidden or has no input."""
        tr = self.w.training
        if not tr.views_ready:
            return
        p = self.panel
        live = (p is not None and p.source is not None and p.x is not None and
                self.dock is not None and self.dock.isVisible() and bool(getattr(p, "acts", None)))
        if live:
            tr.maps.set_tryit(p.acts, p.x[0], p.prediction.text())
        else:
            tr.maps.set_tryit(None)

    def _on_dock_visible(self, visible: bool) -> None:
        if visible:
            self._later()
        else:
            self.thumbs.clear()
        self.feed_feature_maps()

    def _later(self) -> None:
        if self.panel is not None and self.dock is not None and self.dock.isVisible():
            self._refresh.start()

    def grad_cam_selected(self) -> None:
        ids = self.w.selected_node_ids()
        panel = self.show_try_it()
        if len(ids) == 1 and not panel.set_node(ids[0]):
            self.w.show_status(f"'{ids[0]}' has no feature maps for Grad-CAM: choose a "
                               "convolution", True)

    def filters_selected(self) -> FilterGridDialog | None:
        """Activation maximisation of every channel of the selected node, in a dialog."""
        ids = self.w.selected_node_ids()
        if len(ids) != 1:
            self.w.show_status("Select one convolution to see what its filters look for", True)
            return None
        try:
            net, label = self.network()
        except NetBuilderError as e:
            self.w.show_status(f"Cannot look inside: {e.message}", True)
            return None
        if len(net.shapes.get(ids[0], ())) != 3 or ids[0] in net.input_ids:
            self.w.show_status(f"'{ids[0]}' has no feature maps: choose a convolution", True)
            return None
        if self.filter_dialog is not None:
            self.filter_dialog.close()
        self.filter_dialog = FilterGridDialog(net, ids[0], label, self.w)
        self.filter_dialog.show()
        return self.filter_dialog

    # ----- gradient check ------------------------------------------------------------------
    def check_selected(self) -> GradcheckDialog | None:
        ids = self.w.selected_node_ids()
        if len(ids) != 1:
            self.w.show_status("Select one node to check its gradients", True)
            return None
        return self.check_node(ids[0])

    def check_node(self, node: str) -> GradcheckDialog | None:
        """Check ``node`` on a float64 copy in a background thread; the dialog shows the
        progress (with Cancel) and then the verdict."""
        try:
            net, label = self.network()
        except NetBuilderError as e:
            self.w.show_status(f"Cannot check {node}: {e.message}", True)
            return None
        self._cancel_check()
        if self.dialog is not None:
            self.dialog.close()
        dlg = self.dialog = GradcheckDialog(None, label, self.w, node=node)
        t = GradcheckThread(net, node, self)
        t.progressed.connect(dlg.set_progress)
        t.done.connect(lambda result, t=t, dlg=dlg: self._on_checked(t, dlg, result))
        dlg.cancel_requested.connect(lambda t=t: setattr(t, "cancel", True))
        self._check_threads.append(t)
        dlg.show()
        self.w.show_status(f"Checking the gradients of {node} in the background…")
        t.start()
        return dlg

    def _on_checked(self, t: GradcheckThread, dlg: GradcheckDialog, result: Any) -> None:
        t.wait()
        if t in self._check_threads:
            self._check_threads.remove(t)
        if result is None:
            self.w.show_status(f"Gradient check of {t.node} cancelled")
            return
        if isinstance(result, str):
            dlg.set_failed(f"Cannot check {t.node}: {result}")
            self.w.show_status(f"Cannot check {t.node}: {result}", True)
            return
        dlg.set_report(result)
        verdict = "pass" if result.passed else "FAIL"
        self.w.show_status(f"Gradient check of {t.node}: {verdict} (worst relative error "
                           f"{result.worst:.1e})", not result.passed)

    def _cancel_check(self) -> None:
        for t in self._check_threads:
            t.cancel = True

    def wait_check(self, timeout_ms: int = 120_000) -> bool:
        """Wait for the running gradient checks (tests, closing)."""
        return all(t.wait(timeout_ms) for t in list(self._check_threads))

    # ----- profile -------------------------------------------------------------------------
    def run_profile(self) -> None:
        """Time the model in a thread; the overlay and columns appear when it is done."""
        if self._profile_thread is not None and self._profile_thread.isRunning():
            return
        try:
            net, _label = self.network()
        except NetBuilderError as e:
            self.w.show_status(f"Cannot profile: {e.message}", True)
            return
        from ..session.runs import model_key
        batch = batch_size_of(self.w.document.graph) or 32
        self._profile_key = model_key(self.w.document.graph)
        t = ProfileThread(net, batch, steps=PROFILE_STEPS, parent=self)
        t.done.connect(self._on_profiled)
        self._profile_thread = t
        self.w.show_status(f"Profiling {plural_steps(PROFILE_STEPS)} of batch {batch}…")
        t.start()

    def set_live_profile(self, on: bool) -> None:
        """Live profiling on or off: a running (or the next) training run times one step in
        ``LIVE_PROFILE_EVERY`` per node, through the engine's hooks, and the canvas shows a
        running average."""
        pres = self.w.training.presenter
        pres.profile_every = LIVE_PROFILE_EVERY if on else 0
        self.act_live.setChecked(on)
        self.live_steps = 0
        pres.request_changed()
        self.w.show_status("Live profiling on: the canvas shows per-node time while the model "
                           "trains" if on else "Live profiling off")

    def _on_live_profile(self, prof: Profile) -> None:
        if not self.act_live.isChecked():
            return
        from ..session.runs import model_key
        key = model_key(self.w.document.graph)
        old = self.profile if self.live_steps and self._profile_key == key else None
        if old is not None and set(old.nodes) == set(prof.nodes):
            a = LIVE_SMOOTHING
            for nid, t in prof.nodes.items():
                o = old.nodes[nid]
                t.forward_ms = a * t.forward_ms + (1 - a) * o.forward_ms
                t.backward_ms = a * t.backward_ms + (1 - a) * o.backward_ms
            prof.step_ms = a * prof.step_ms + (1 - a) * old.step_ms
        self.live_steps += 1
        self.profile, self._profile_key = prof, key
        self.overlay.show(prof)
        self._fill_summary()

    def wait_profile(self, timeout_ms: int = 120_000) -> bool:
        t = self._profile_thread
        return t is None or t.wait(timeout_ms)

    def _on_profiled(self, result: Profile | str) -> None:
        if isinstance(result, str):
            self.w.show_status(f"Profile failed: {result}", True)
            return
        self.profile = result
        self.overlay.show(result)
        self._fill_summary()
        self.w.show_status(estimate_text(result, self.n_train()).replace("<b>", "")
                           .replace("</b>", ""))

    def clear_profile(self) -> None:
        self.profile = None
        self.overlay.clear()
        self.w.summary.update_from(self.w.document.graph, self.w.document.analysis)
        fill_summary(self.w.summary, None)

    def n_train(self) -> int | None:
        """Training samples per epoch with the Data panel's dataset and split."""
        dp = self.w.training.data
        ds = dp.dataset
        if ds is None:
            return None
        n = len(ds)
        if dp.limit.value():
            n = min(n, dp.limit.value())
        test = 0.0 if ds.test is not None else dp.test_split.value()
        return n - round(n * dp.val_split.value()) - round(n * test)

    def _fill_summary(self) -> None:
        if self.profile is None:
            return
        from ..session.runs import model_key
        if model_key(self.w.document.graph) != self._profile_key:
            self.profile = None
            self.overlay.clear()
            fill_summary(self.w.summary, None)
            return
        how = "live while training" if self.act_live.isChecked() and self.live_steps \
            else "by Profile"
        fill_summary(self.w.summary, self.profile,
                     estimate_text(self.profile, self.n_train(), how))

    # ----- housekeeping --------------------------------------------------------------------
    def _on_doc_change(self, ch: Any) -> None:
        if ch.affects_shapes or ch.training or ch.reset:
            self._later()

    def _on_replaced(self) -> None:
        self.clear_profile()
        self._later()

    def shutdown(self) -> None:
        if self.panel is not None:
            self.panel.shutdown()
        if self.filter_dialog is not None:
            self.filter_dialog.close()
        self._cancel_check()
        self.wait_check(60_000)
        if self._profile_thread is not None:
            self._profile_thread.wait(60_000)

    def eventFilter(self, obj: QObject, ev: QEvent) -> bool:
        if obj is self.w and ev.type() == QEvent.Type.Close:
            self.shutdown()
        elif ev.type() == QEvent.Type.Resize and self.panel is not None \
                and obj is self._try_viewport:
            self.panel.fit_width(obj.width())
        return False


def plural_steps(n: int) -> str:
    return f"{n} step" + ("" if n == 1 else "s")
