"""The Try it panel: draw (or pick a dataset sample), see the prediction and the class
probabilities change as you draw, and see why: saliency, SmoothGrad, Grad-CAM on a chosen
convolution, or occlusion sensitivity (in a background thread, with a progress bar) laid
over the input. A sequence model with attention gets ``SequenceTry`` instead: tokens typed
or picked, the prediction per step and each head's attention weights.

The panel questions a ``TrySource`` (``netbuilder.lookinside.source``): the open model with
the weights of its latest finished run, or fresh weights, said above the pad."""

from __future__ import annotations

from typing import Any

import numpy as np
from PySide6.QtCore import QThread, QTimer, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from engine.errors import NetBuilderError
from engine.explain import ExplainCancelledError, grad_cam, occlusion, saliency, saliency_map

from .modes import InputModes
from .pad import DrawingPad
from .sequence import SequenceTry, attention_node_ids
from .source import TrySource
from .views import ImageView, ProbBars, overlay_image

METHODS = ("Saliency", "SmoothGrad", "Grad-CAM", "Occlusion")


class OcclusionThread(QThread):
    """Runs ``engine.explain.occlusion`` on its own copy of the network."""

    progressed = Signal(int, int)
    finished_map = Signal(object)  # (H, W) array, or None when cancelled or failed

    def __init__(self, source: TrySource, x: np.ndarray, cls: int, patch: int,
                 parent: Any = None) -> None:
        super().__init__(parent)
        self.net = source.copy_net()
        self.x, self.cls, self.patch = x, cls, patch
        self.cancel = False
        self.error: str | None = None

    def run(self) -> None:
        try:
            heat = occlusion(self.net, self.x, self.cls, patch=self.patch, stride=1,
                             fill=0.0, batch=32, progress=self.progressed.emit,
                             cancelled=lambda: self.cancel)
        except ExplainCancelledError:
            heat = None
        except NetBuilderError as e:
            self.error, heat = e.message, None
        self.finished_map.emit(heat)


class TryItPanel(InputModes, QWidget):
    """Pad + sample picker (or the decision regions of a 2-D input, or a sequence), the
    Why view, prediction and probabilities (or every Output's answer).
    ``activations(dict)``: each node's output for the current input (one sample), or an
    empty dict when there is none or the canvas should not show them."""

    activations = Signal(dict)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("tryItPanel")
        self.source: TrySource | None = None
        self.dataset: Any = None
        self.x: np.ndarray | None = None  # the current input, normalised (1, C, H, W)
        self.probs: np.ndarray | None = None
        self.heat: np.ndarray | None = None  # the Why map (H, W) in 0..1
        self.sample_label: int | None = None
        self.thread: OcclusionThread | None = None
        self._old_threads: list[OcclusionThread] = []

        self.source_note = QLabel("Open a model with an Input and an Output to try it.")
        self.source_note.setObjectName("dim")
        self.source_note.setWordWrap(True)
        self.pad = DrawingPad()
        self.brush = QSpinBox()
        self.brush.setRange(4, 60)
        self.brush.setValue(self.pad.brush)
        self.brush.setSuffix(" px")
        self.brush.setToolTip("Brush size (pad pixels; the pad is 224 wide)")
        self.brush.valueChanged.connect(lambda v: setattr(self.pad, "brush", v))
        self.clear_btn = QPushButton("Clear")
        self.clear_btn.clicked.connect(self._clear)
        self.invert = QCheckBox("Invert")
        self.invert.setToolTip("Dark ink on light paper, for data drawn that way")
        self.invert.toggled.connect(self.pad.set_inverted)
        tools = QHBoxLayout()
        tools.setSpacing(4)
        tools.addWidget(QLabel("Brush"))
        tools.addWidget(self.brush)
        tools.addWidget(self.invert)
        self.on_canvas = QCheckBox("on the nodes")
        self.on_canvas.setChecked(True)
        self.on_canvas.setToolTip("Show each node's activation for this input beside its "
                                  "card on the canvas")
        self.on_canvas.toggled.connect(lambda _on: self._publish())
        tools.addStretch(1)
        tools.addWidget(self.clear_btn)
        self.open_btn = QPushButton("Open…")
        self.open_btn.setToolTip("Put an image file on the pad (or drop one on it)")
        self.open_btn.clicked.connect(self._open_image)
        self.choose_image_path = self._choose_image_path
        self.sample = QSpinBox()
        self.sample.setRange(0, 0)
        self.sample.setToolTip("Index of a dataset sample")
        self.sample_btn = QPushButton("Show")
        self.sample_btn.clicked.connect(lambda: self.show_sample(self.sample.value()))
        picker = QHBoxLayout()
        picker.addWidget(QLabel("Sample"))
        picker.addWidget(self.sample, 1)
        picker.addWidget(self.sample_btn)
        picker.addWidget(self.open_btn)

        self.prediction = QLabel("—")
        self.prediction.setObjectName("prediction")
        self.prediction.setStyleSheet("font-size: 15pt; font-weight: bold;")
        self.bars = ProbBars()

        self.method = QComboBox()
        self.method.addItems(METHODS)
        self.method.setToolTip("Saliency: the gradient of the class score with respect to "
                               "the input. SmoothGrad averages it over noisy copies. Grad-CAM "
                               "weighs a convolution's maps by their gradient. Occlusion hides "
                               "a patch at every place and measures the drop of the score.")
        self.klass = QComboBox()
        self.klass.setToolTip("The class to explain (the predicted one by default)")
        self.node = QComboBox()
        self.node.setToolTip("The convolution Grad-CAM reads")
        self.patch = QSpinBox()
        self.patch.setRange(1, 16)
        self.patch.setValue(3)
        self.patch.setToolTip("Occlusion patch size (input pixels)")
        self.progress = QProgressBar()
        self.progress.setTextVisible(True)
        self.progress.hide()
        self.why_view = ImageView()
        self.why_view.setObjectName("whyView")
        self.why_note = QLabel("")
        self.why_note.setObjectName("dim")
        self.why_note.setWordWrap(True)
        why = self._why_box = QWidget()
        wf = QFormLayout(why)
        wf.setContentsMargins(0, 0, 0, 0)
        wf.setVerticalSpacing(3)
        wf.addRow("Method", self.method)
        wf.addRow("Class", self.klass)
        wf.addRow("Conv node", self.node)
        wf.addRow("Patch", self.patch)
        wf.addRow("Activations", self.on_canvas)
        wf.addRow(self.progress)
        self._why_form = wf

        # three columns for a wide, low dock under the canvas: the pad, the Why view, the
        # answer (prediction, probabilities) above the Why settings
        self.image_page = QWidget()
        self.sequence = SequenceTry()
        self.sequence.hide()
        outer = QVBoxLayout(self)
        outer.setContentsMargins(6, 4, 6, 4)
        outer.addWidget(self.source_note)
        outer.addWidget(self.image_page, 1)
        outer.addWidget(self.sequence, 1)
        grid = QGridLayout(self.image_page)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.setHorizontalSpacing(10)
        pad_page = QWidget()
        left = QVBoxLayout(pad_page)
        left.setContentsMargins(0, 0, 0, 0)
        left.addWidget(self.pad, 1)
        left.addLayout(tools)
        self._files = QHBoxLayout()  # Clear and Open… on a row of their own when narrow
        left.addLayout(self._files)
        left.addLayout(picker)
        self._tools, self._picker = tools, picker
        self._narrow = False
        self._wide_pad_w = 0
        self._grid = grid
        self._modes = self._build_modes(pad_page)
        answer = self._answer = QVBoxLayout()
        answer.addWidget(self.prediction)
        answer.addWidget(self.bars, 1)
        answer.addWidget(self.recon_view, 1)
        answer.addWidget(self.outputs_note)
        answer.addWidget(self.why_note)
        self._cols = 0
        self._arrange(3)

        self.why_timer = QTimer(self)
        self.why_timer.setSingleShot(True)
        self.why_timer.setInterval(120)
        self.why_timer.timeout.connect(self.explain)
        self.pad.changed.connect(self._on_drawn)
        for combo in (self.method, self.klass, self.node):
            combo.currentIndexChanged.connect(lambda _i: self._why_later())
        self.patch.valueChanged.connect(lambda _v: self._why_later())
        self.method.currentIndexChanged.connect(lambda _i: self._show_method_rows())
        self._show_method_rows()
        self.setEnabled(False)

    # ----- arrangement ---------------------------------------------------------------------
    def _arrange(self, cols: int) -> None:
        """Three columns (pad | Why view over its settings | answer); two (the pad over the
        Why view and its settings, the answer beside them); or one (pad, answer, Why view,
        its settings, top to bottom)."""
        if cols == self._cols:
            return
        self._cols = cols
        g = self._grid
        for w in (self._modes, self.why_view, self._why_box):
            g.removeWidget(w)
        g.removeItem(self._answer)
        for r in range(6):
            g.setRowStretch(r, 0)
        for c in range(3):
            g.setColumnStretch(c, 0)
        if cols == 1:
            g.addWidget(self._modes, 1, 0)
            g.addLayout(self._answer, 2, 0)
            g.addWidget(self.why_view, 3, 0)
            g.addWidget(self._why_box, 4, 0)
            stretch: tuple[int, ...] = (1,)
            rows: tuple[int, ...] = (1, 3)
        elif cols == 2:
            g.addWidget(self._modes, 1, 0)
            g.addWidget(self.why_view, 2, 0)
            g.addWidget(self._why_box, 3, 0)
            g.addLayout(self._answer, 1, 1, 3, 1)
            stretch, rows = (3, 2), (1, 2)
        else:
            g.addWidget(self._modes, 1, 0, 3, 1)
            g.addWidget(self.why_view, 1, 1)
            g.addWidget(self._why_box, 2, 1, 2, 1)
            g.addLayout(self._answer, 1, 2, 3, 1)
            stretch, rows = (3, 3, 4), (1,)
        for r in rows:
            g.setRowStretch(r, 1)
        for c, k in enumerate(stretch):
            g.setColumnStretch(c, k)

    def fit_width(self, width: int) -> None:
        """Choose the arrangement for ``width`` px (the dock's viewport): as many columns as
        fit. The dock under the canvas is about 430 px wide in a 1024 px window and about
        350 px in the Monitor layout, where three columns (about 650 px) made it scroll
        sideways."""
        sp = self._grid.horizontalSpacing()
        m = self.layout().contentsMargins()
        margins = m.left() + m.right()
        if not self._narrow:
            self._wide_pad_w = self._modes.minimumSizeHint().width()
        pad_w = self._wide_pad_w
        why_w = max(self.why_view.minimumSizeHint().width(),
                    self._why_box.minimumSizeHint().width())
        answer_w = self._answer.minimumSize().width()
        if width >= pad_w + why_w + answer_w + 2 * sp + margins:
            cols = 3
        elif width >= max(pad_w, why_w) + answer_w + sp + margins:
            cols = 2
        else:
            cols = 1
        self._arrange(cols)
        self._set_narrow(cols == 1 and width < pad_w + margins)

    def _set_narrow(self, narrow: bool) -> None:
        """Under the pad, Clear and Open… on a row of their own (``narrow``), or at the
        ends of the brush and sample rows: the Monitor layout's canvas column of a 1024 px
        window, about 240 px, is narrower than those two rows."""
        if narrow == self._narrow:
            return
        self._narrow = narrow
        for w in (self.clear_btn, self.open_btn):
            for lay in (self._tools, self._picker, self._files):
                lay.removeWidget(w)
        if narrow:
            self._files.addWidget(self.clear_btn)
            self._files.addWidget(self.open_btn)
        else:
            self._tools.addWidget(self.clear_btn)
            self._picker.addWidget(self.open_btn)

    # ----- what is questioned --------------------------------------------------------------
    def set_source(self, source: TrySource | None, dataset: Any = None,
                   note: str | None = None) -> None:
        """Question ``source`` (None: nothing to try, ``note`` says why)."""
        self._stop_thread()
        seq = source is not None and not source.is_image and \
            len(source.input_shape) in (1, 2) and bool(attention_node_ids(source))
        self.image_page.setVisible(not seq)
        self.sequence.setVisible(seq)
        if seq:
            self.source = None
            self.acts = {}
            self._publish()
            self.setEnabled(True)
            self.source_note.setText(f"{source.net.graph.name or 'model'}: {source.label}. "
                                     "Type tokens (Enter) or show a sample.")
            self.sequence.set_source(source, dataset)
            return
        self.source = source
        self.sample_label = None
        self.dataset = dataset if self.source is not None else None
        if self.source is None:
            self.source_note.setText(note or "Try it needs a model with one Input and an "
                                     "Output.")
            self.setEnabled(False)
            self.x = self.probs = self.heat = None
            self.bars.set_probs(np.zeros(0), [])
            self.prediction.setText("—")
            self.outputs_note.setText("")
            self.recon_view.hide()
            self.why_view.set_image(None)
            self.source_note.setEnabled(True)
            self.acts = {}
            self._publish()
            return
        self.setEnabled(True)
        src = self.source
        how = {"points": "Click or drag on the decision regions to choose the point.",
               "tokens": "Pick a sample or type tokens.",
               "sequence": "Pick a sample.", "vector": "Pick a sample."}
        if src.is_image:
            _c, h, w = src.input_shape
            how["image"] = f"Drawing read at {h}×{w}."
        self.source_note.setText(f"{src.net.graph.name or 'model'}: {src.label}. "
                                 f"{how[src.input_kind]}")
        keep = self.klass.currentIndex()
        self.klass.blockSignals(True)
        self.klass.clear()
        self.klass.addItem("predicted", -1)
        for k in range(src.n_classes):
            self.klass.addItem(src.class_name(k), k)
        self.klass.setCurrentIndex(keep if 0 <= keep < self.klass.count() else 0)
        self.klass.blockSignals(False)
        convs = [n for n in src.net.order if len(src.net.shapes[n]) == 3
                 and n not in src.net.input_ids]
        current = self.node.currentText()
        self.node.blockSignals(True)
        self.node.clear()
        for n in convs:
            self.node.addItem(f"{n} ({src.net.layers[n].type_name})", n)
        last_conv = [i for i, n in enumerate(convs) if src.net.layers[n].type_name == "Conv2D"]
        idx = self.node.findText(current)
        self.node.setCurrentIndex(idx if idx >= 0 else (last_conv[-1] if last_conv else 0))
        self.node.blockSignals(False)
        n = len(dataset) if dataset is not None else 0
        self.sample.setRange(0, max(0, n - 1))
        self.sample.setEnabled(n > 0)
        self.sample_btn.setEnabled(n > 0)
        self._enter_mode()

    def set_node(self, node_id: str) -> bool:
        """Choose the node Grad-CAM reads (and Grad-CAM itself); False if it has no maps."""
        i = self.node.findData(node_id)
        if i < 0:
            return False
        self.node.setCurrentIndex(i)
        self.method.setCurrentText("Grad-CAM")
        return True

    def show_sample(self, index: int) -> None:
        """Put dataset sample ``index`` on the pad (its first channel, scaled to 0..1)."""
        if self.dataset is None or self.source is None:
            return
        raw = np.asarray(self.dataset.x[index], dtype=np.float64)
        lo, hi = self.source.raw_range
        img = raw[0] if raw.ndim == 3 else raw
        self.sample_label = int(self.dataset.y[index]) if self.dataset.y is not None \
            and self.dataset.task == "classification" else None
        self.pad.set_ink((img - lo) / (hi - lo))
        self.sample_index = index
        self._show_answers()

    def _choose_image_path(self) -> str:
        return QFileDialog.getOpenFileName(self, "Open an image", "",
                                           "Images (*.png *.jpg *.jpeg *.bmp *.gif)")[0]

    def _open_image(self) -> None:
        path = self.choose_image_path()
        if path and not self.pad.load_image(path):
            self.why_note.setText(f"Cannot read {path} as an image")
        else:
            self.sample_label = None

    # ----- prediction ----------------------------------------------------------------------
    def _clear(self) -> None:
        self.sample_label = None
        self.pad.clear()

    def _on_drawn(self) -> None:
        src = self.source
        if src is None or not src.is_image:
            return
        _c, h, w = src.input_shape
        self.ink = self.pad.ink(h, w)
        self.sample_index = None
        self.answer(src.prepare(self.ink), "drawing")

    def _publish(self) -> None:
        on = self.source is not None and self.on_canvas.isChecked()
        self.activations.emit(getattr(self, "acts", {}) if on else {})

    def predicted(self) -> int | None:
        return None if self.probs is None else int(np.argmax(self.probs))

    def target_class(self) -> int:
        k = self.klass.currentData()
        return int(k) if k is not None and k >= 0 else (self.predicted() or 0)

    # ----- why -----------------------------------------------------------------------------
    def _show_method_rows(self) -> None:
        m = self.method.currentText()
        self._why_form.setRowVisible(self.node, m == "Grad-CAM")
        self._why_form.setRowVisible(self.patch, m == "Occlusion")

    def _why_later(self) -> None:
        if self.source is not None and self.source.is_image and self.source.classifies:
            self.why_timer.start()

    def explain(self) -> None:
        """Compute the chosen explanation for the current input (occlusion in a thread)."""
        self.why_timer.stop()
        src, x = self.source, self.x
        if src is None or x is None or not src.is_image or not src.classifies:
            return
        m = self.method.currentText()
        cls = self.target_class()
        self._stop_thread()
        self.progress.hide()
        what = f"for class {src.class_name(cls)}"
        try:
            if m in ("Saliency", "SmoothGrad"):
                g = saliency(src.net, x, cls, smooth=12 if m == "SmoothGrad" else 0)[0]
                self._show_heat(saliency_map(g), f"|d score / d input| {what}")
            elif m == "Grad-CAM":
                node = self.node.currentData()
                if node is None:
                    self._show_heat(None, "Grad-CAM needs a node with feature maps.")
                    return
                cam = grad_cam(src.net, x, cls, node)
                note = f"Grad-CAM on {node} {what}"
                if cam.cam[0].max() <= 0:
                    note += ": no positive evidence in this node"
                self._show_heat(cam.heatmap[0], note)
            else:
                self.progress.setRange(0, 1)
                self.progress.setValue(0)
                self.progress.show()
                t = OcclusionThread(src, x[0], cls, self.patch.value(), self)
                t.progressed.connect(self._on_progress)
                t.finished_map.connect(lambda heat, t=t: self._on_occluded(t, heat))
                self.thread = t
                self.why_note.setText(f"Occlusion {what}: sliding a {self.patch.value()}"
                                      f"-pixel patch…")
                t.start()
        except NetBuilderError as e:
            self._show_heat(None, e.message)

    def _on_progress(self, done: int, total: int) -> None:
        self.progress.setRange(0, total)
        self.progress.setValue(done)

    def _on_occluded(self, t: OcclusionThread, heat: np.ndarray | None) -> None:
        if t is not self.thread:
            return
        self.thread = None
        self.progress.hide()
        if heat is None:
            if t.error:
                self._show_heat(None, t.error)
            return
        top = float(np.max(heat))
        cls = self.source.class_name(t.cls) if self.source else str(t.cls)
        self._show_heat(np.maximum(heat, 0) / top if top > 0 else np.zeros_like(heat),
                        f"Occlusion for class {cls}: bright where hiding the pixels lowers "
                        f"the score most")

    def _show_heat(self, heat: np.ndarray | None, note: str) -> None:
        self.heat = heat
        base = getattr(self, "ink", None)
        if base is not None:
            self.why_view.set_image(overlay_image(base, heat))
        self.why_note.setText(note)

    def _stop_thread(self) -> None:
        t = self.thread
        if t is not None:
            t.cancel = True
            self._old_threads.append(t)
            self.thread = None
        self._old_threads = [o for o in self._old_threads if o.isRunning()]

    def shutdown(self, timeout_ms: int = 5000) -> None:
        """Cancel and wait for a running occlusion (window closing)."""
        self._stop_thread()
        for t in self._old_threads:
            t.wait(timeout_ms)
