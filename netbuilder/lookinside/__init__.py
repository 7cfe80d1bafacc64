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
from PySide6.QtGui import QAction, QGuiApplication, QKeySequence
from PySide6.QtWidgets import QDockWidget, QFrame, QPushButton, QScrollArea

import engine
from engine.errors import NetBuilderError
from engine.nodecheck import check_node
from engine.profile import Profile

from ..summary import batch_size_of
from .filters import FilterGridDialog
from .gradcheck_dialog import GradcheckDialog
from .profiling import HeatOverlay, ProfileThread, estimate_text, fill_summary
from .source import TrySource, build_source
from .thumbs import ActivationThumbs
from .tryit import TryItPanel

if TYPE_CHECKING:
    from ..mainwindow import MainWindow

PROFILE_STEPS = 5  # timed training steps (after two untimed ones)


class LookInside(QObject):
    """The Look Inside tools of one MainWindow."""

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.w = window
        self.panel: TryItPanel | None = None
        self.dock: QDockWidget | None = None
        self.dialog: GradcheckDialog | None = None
        self.filter_dialog: FilterGridDialog | None = None
        self.profile: Profile | None = None
        self._profile_key: str | None = None
        self._profile_thread: ProfileThread | None = None
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
            # under the canvas: the pad, the Why view and the answer side by side
            self.w.add_dock(self.dock, Qt.DockWidgetArea.BottomDockWidgetArea)
            self.w.resizeDocks([self.dock], [max(260, self.w.height() * 3 // 8)],
                               Qt.Orientation.Vertical)
            self.dock.visibilityChanged.connect(self._on_dock_visible)
            self.panel.activations.connect(self._show_thumbs)
            self.refresh_source()
        return self.panel

    def show_try_it(self) -> TryItPanel:
        panel = self.ensure_panel()
        assert self.dock is not None
        self.dock.show()
        self.dock.raise_()
        return panel

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
        if ds is not None and tuple(ds.sample_shape) != src.input_shape:
            ds = None
        self.panel.set_source(src, ds)

    def _show_thumbs(self, acts: dict) -> None:
        if acts and self.dock is not None and self.dock.isVisible():
            self.thumbs.show(acts)
        else:
            self.thumbs.clear()

    def _on_dock_visible(self, visible: bool) -> None:
        if visible:
            self._later()
        else:
            self.thumbs.clear()

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
        """Run the check of ``node`` on a float64 copy and show the dialog."""
        QGuiApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)
        try:
            net, label = self.network()
            report = check_node(net, node)
        except NetBuilderError as e:
            self.w.show_status(f"Cannot check {node}: {e.message}", True)
            return None
        finally:
            QGuiApplication.restoreOverrideCursor()
        if self.dialog is not None:
            self.dialog.close()
        self.dialog = GradcheckDialog(report, label, self.w)
        self.dialog.show()
        verdict = "pass" if report.passed else "FAIL"
        self.w.show_status(f"Gradient check of {node}: {verdict} (worst relative error "
                           f"{report.worst:.1e})", not report.passed)
        return self.dialog

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
        fill_summary(self.w.summary, self.profile, estimate_text(self.profile, self.n_train()))

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
        if self._profile_thread is not None:
            self._profile_thread.wait(60_000)

    def eventFilter(self, obj: QObject, ev: QEvent) -> bool:
        if obj is self.w and ev.type() == QEvent.Type.Close:
            self.shutdown()
        return False


def plural_steps(n: int) -> str:
    return f"{n} step" + ("" if n == 1 else "s")
