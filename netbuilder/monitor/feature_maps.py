"""Feature maps: the output of the selected node for one chosen sample, one tile per channel
(images), a heat map (sequences) or bars (vectors), refreshed while training runs. With
*Try-it input* ticked the maps are those of the input of the Try it panel instead (what the
user draws or picks there), updated as it changes."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from engine.text import plural

from ..session.probes import FeatureMaps, ProbeData
from .common import BLUE, DIM, MonitorPanel, NodeChooser, gray_lut, image_plot, mosaic, to_rgb, viridis_lut


def sample_image(x: np.ndarray) -> np.ndarray | None:
    """A (C, H, W) sample as an RGB uint8 image (grey for one channel), else None."""
    if x.ndim != 3:
        return None
    c = x.shape[0]
    t = np.moveaxis(x, 0, -1) if c == 3 else x[0]
    lo, hi = float(np.nanmin(t)), float(np.nanmax(t))
    n = (t - lo) / (hi - lo) if hi > lo else np.zeros_like(t)
    return to_rgb(n.astype(np.float32), gray_lut())


def unit_step(n: int, most: int = 10) -> int:
    """A whole 1, 2 or 5 × 10^k step between labels of ``n`` units: at most ``most`` of
    them."""
    k = 1
    while True:
        for m in (1, 2, 5):
            if n / (m * k) <= most:
                return m * k
        k *= 10


class FeatureMapView(NodeChooser, MonitorPanel):
    """Output of ``node`` for probe sample ``sample``; ``node_chosen`` when the user picks."""

    node_chosen = Signal(str)
    sample_chosen = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Feature maps", parent)
        self.node: str | None = None
        self.maps: np.ndarray | None = None
        self.probe: ProbeData | None = None
        self._shapes: dict[str, tuple[int, ...]] = {}
        self.node_box = QComboBox()
        self.node_box.setToolTip("The node whose output is shown (or select it on the canvas)")
        self.node_box.setMinimumContentsLength(10)
        self.node_box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.node_box.activated.connect(self._on_node_box)
        self.sample_box = QSpinBox()
        self.sample_box.setPrefix("sample ")
        self.sample_box.setToolTip("Which validation sample goes through the network")
        self.sample_box.valueChanged.connect(self._on_sample)
        self.tryit_box = QCheckBox("Try-it input")
        self.tryit_box.setObjectName("tryitInput")
        self.tryit_box.setToolTip("Show the maps of the Try it panel's input (Look Inside ▸ "
                                  "Try It) instead of a validation sample")
        self.tryit_box.setEnabled(False)
        self.tryit_box.toggled.connect(self._on_tryit_toggled)
        self.tryit: tuple[dict[str, np.ndarray], np.ndarray | None, str] | None = None
        self.add_control(self.node_box)
        self.add_control(self.sample_box)
        self.add_control(self.tryit_box)
        self.node_chosen.connect(lambda _n: self._show_tryit())
        row = QHBoxLayout()
        row.setSpacing(6)
        side = QVBoxLayout()
        side.setSpacing(2)
        self.input_plot, self.input_img = image_plot()
        self.input_plot.setFixedSize(96, 96)
        self.input_label = QLabel()
        self.input_label.setWordWrap(True)
        self.input_label.setFixedWidth(96)
        self.input_label.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignHCenter)
        self.input_label.setStyleSheet(f"color: {DIM}; font-size: 8pt;")
        side.addWidget(self.input_plot)
        side.addWidget(self.input_label, 1)
        self.side = QWidget()
        self.side.setLayout(side)
        self.side.setFixedWidth(100)
        row.addWidget(self.side)
        self.plot, self.img = image_plot()
        self.plot.setMinimumSize(200, 160)
        self.bar_plot = pg.PlotWidget()
        self.bar_plot.getPlotItem().setMenuEnabled(False)
        self.bar_plot.getPlotItem().showGrid(y=True, alpha=0.15)
        self.bar_plot.getPlotItem().setLabel("bottom", "unit")
        self.bars = pg.BarGraphItem(x=[], height=[], width=0.8, brush=BLUE, pen=None)
        self.bar_plot.addItem(self.bars)
        self.bar_plot.hide()
        row.addWidget(self.plot, 1)
        row.addWidget(self.bar_plot, 1)
        self.content = QWidget()
        self.content.setLayout(row)
        self.body.addWidget(self.content, 1)
        self.show_placeholder("Select a node on the canvas and start training: its output "
                              "for one sample appears here, one tile per channel.", self.content)

    # ----- model and data ------------------------------------------------------------------
    def set_nodes(self, shapes: dict[str, tuple[int, ...]], types: dict[str, str]) -> None:
        """The nodes that may be shown (all but Outputs), with their per-sample shapes."""
        self._shapes = {n: s for n, s in shapes.items() if types.get(n) != "Output"}
        cur = self.node
        self.node_box.blockSignals(True)
        self.node_box.clear()
        for nid, shp in self._shapes.items():
            self.node_box.addItem(f"{nid}  {'×'.join(map(str, shp))}", nid)
        self.node_box.blockSignals(False)
        if cur in self._shapes:
            self.node_box.setCurrentIndex(list(self._shapes).index(cur))
        elif self._shapes:
            self.select_node(default_node(self._shapes, types))

    def set_probe(self, probe: ProbeData | None) -> None:
        self.probe = probe
        n = 0 if probe is None or probe.x is None else len(probe.x)
        self.sample_box.blockSignals(True)
        self.sample_box.setRange(0, max(0, n - 1))
        self.sample_box.blockSignals(False)
        self.sample_box.setEnabled(n > 1 and not self.showing_tryit)
        self._show_input(self.sample_box.value())

    @property
    def sample(self) -> int:
        """The probe sample whose maps are shown (index into the probe samples)."""
        return self.sample_box.value()

    def node_ids(self) -> list[str]:
        return list(self._shapes)

    def _on_sample(self, i: int) -> None:
        self._show_input(i)
        self.sample_chosen.emit(i)

    # ----- the Try it panel's input ---------------------------------------------------------
    @property
    def showing_tryit(self) -> bool:
        return self.tryit_box.isChecked()

    def set_tryit(self, acts: dict[str, np.ndarray] | None, x: np.ndarray | None = None,
                  prediction: str = "") -> None:
        """The Try it panel's input changed: each node's activation ``acts`` for it (one
        sample), the input ``x`` as the network sees it and the answer; None when the panel
        has no input (the choice is then switched off)."""
        self.tryit = (acts, x, prediction) if acts else None
        self.tryit_box.setEnabled(self.tryit is not None)
        if self.tryit is None and self.tryit_box.isChecked():
            self.tryit_box.setChecked(False)
        self._show_tryit()

    def _on_tryit_toggled(self, on: bool) -> None:
        self.sample_box.setEnabled(not on and self.probe is not None and self.probe.x is not None
                                   and len(self.probe.x) > 1)
        if on:
            self._show_tryit()
        else:
            self._show_input(self.sample_box.value())
            self.sample_chosen.emit(self.sample_box.value())  # the run's maps again

    def _show_tryit(self) -> None:
        if not self.showing_tryit or self.tryit is None or self.node is None:
            return
        acts, x, prediction = self.tryit
        if self.node not in acts:
            return
        img = sample_image(np.asarray(x)) if x is not None else None
        self.side.setVisible(img is not None)
        if img is not None:
            self.input_img.setImage(img, autoLevels=False)
            self.input_plot.getPlotItem().autoRange(padding=0)
        self._render(FeatureMaps(self.node, -1, np.asarray(acts[self.node]), "", prediction))

    def _show_input(self, i: int) -> None:
        if self.showing_tryit:
            return
        p = self.probe
        if p is None or p.x is None or not len(p.x):
            self.side.hide()
            return
        i = min(i, len(p.x) - 1)
        img = sample_image(p.x[i])
        self.side.setVisible(img is not None)
        if img is not None:
            self.input_img.setImage(img, autoLevels=False)
            self.input_plot.getPlotItem().autoRange(padding=0)

    # ----- updates -------------------------------------------------------------------------
    def show_maps(self, fm: FeatureMaps) -> None:
        """The run's maps of a validation sample (ignored while the Try-it input is shown)."""
        if fm.node != self.node or self.showing_tryit:
            return
        self._render(fm)

    def _render(self, fm: FeatureMaps) -> None:
        a = fm.maps
        self.maps = a
        self.show_placeholder(None, self.content)
        shape = "×".join(map(str, a.shape))
        if a.ndim == 3:
            img, _, _ = mosaic(a)
            self.img.setImage(to_rgb(img, viridis_lut()), autoLevels=False)
            self.plot.getPlotItem().autoRange(padding=0.01)
            what = f"{plural(a.shape[0], 'channel')} of {a.shape[1]}×{a.shape[2]}"
            self.bar_plot.hide()
            self.plot.show()
        elif a.ndim == 2:
            img, _, _ = mosaic(a[None])
            self.img.setImage(to_rgb(img, viridis_lut()), autoLevels=False)
            self.plot.getPlotItem().autoRange(padding=0.01)
            what = f"{plural(a.shape[0], 'step')} × {plural(a.shape[1], 'feature')}"
            self.bar_plot.hide()
            self.plot.show()
        else:
            v = a.reshape(-1)
            self.bars.setOpts(x=np.arange(len(v)), height=v, width=0.8)
            step = unit_step(len(v))  # whole units: pyqtgraph numbered 4 units 0, 0.5, 1…
            self.bar_plot.getPlotItem().getAxis("bottom").setTickSpacing(step, step)
            self.bar_plot.getPlotItem().enableAutoRange()
            what = plural(len(v), "unit")
            self.plot.hide()
            self.bar_plot.show()
        label = f"label <b>{fm.label}</b>" if fm.label else ""
        pred = f"predicted<br><b>{fm.prediction}</b>" if fm.prediction else ""
        self.input_label.setText("<br>".join(t for t in (label, pred) if t))
        which = "Try-it input" if fm.sample < 0 else f"sample {fm.sample}"
        self.info.setText(f"<b>{fm.node}</b> · {what} (shape {shape}) · {which}")
        self.info.setToolTip("Each tile is scaled on its own: dark = lowest, yellow = highest")

    def clear(self) -> None:
        self.maps = None
        self.info.setText("")
        self.input_label.setText("")
        self.show_placeholder("Select a node on the canvas and start training: its output "
                              "for one sample appears here, one tile per channel.", self.content)

    # ----- export --------------------------------------------------------------------------
    def png_widget(self) -> QWidget:
        return self.content

    def csv_table(self) -> tuple[list[str], list[list[object]]]:
        a = self.maps
        if a is None:
            return ["index", "value"], []
        header = [f"dim{i}" for i in range(a.ndim)] + ["value"]
        rows = [[*idx, float(v)] for idx, v in np.ndenumerate(a)]
        return header, rows


def default_node(shapes: dict[str, tuple[int, ...]], types: dict[str, str]) -> str:
    """The first activation after a convolution, else the first image-shaped node after the
    Input, else the first hidden node."""
    ids = list(shapes)
    for i, nid in enumerate(ids):
        if types.get(nid) == "Conv2D":
            nxt = ids[i + 1] if i + 1 < len(ids) else nid
            return nxt if len(shapes.get(nxt, ())) == 3 else nid
    for nid in ids:
        if types.get(nid) != "Input" and len(shapes[nid]) == 3:
            return nid
    hidden = [n for n in ids if types.get(n) != "Input"]
    return hidden[0] if hidden else ids[0]
