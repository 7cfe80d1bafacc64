"""What the network has learnt about the data itself: for 2-D point datasets the decision
regions with the training points over them, for 1-D regression (``sine``) the fitted curve
over the data; both updated live. A click on the regions emits ``point_clicked(x0, x1)``
(Look Inside's Try it questions the network there) and the point tried is marked."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QWidget

from ..session.probes import FittedCurve, ProbeData, Regions, class_color
from .common import RED, MonitorPanel


class DataFitView(MonitorPanel):
    """Decision regions (classification of 2-D points) or fitted curve (1-D regression)."""

    point_clicked = Signal(float, float)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Data fit", parent)
        self.probe: ProbeData | None = None
        self.regions: Regions | None = None
        self.curve_data: FittedCurve | None = None
        self.plot = pg.PlotWidget()
        pi = self.plot.getPlotItem()
        pi.setMenuEnabled(False)
        pi.showGrid(x=True, y=True, alpha=0.12)
        self.img = pg.ImageItem()
        self.img.setZValue(-10)
        pi.addItem(self.img)
        self.points = pg.ScatterPlotItem(size=6, pen=pg.mkPen("#FFFFFF", width=0.8))
        pi.addItem(self.points)
        self.curve = pg.PlotDataItem(pen=pg.mkPen(RED, width=2.5))
        pi.addItem(self.curve)
        self.marker = pg.ScatterPlotItem(size=16, symbol="o", brush=None,
                                         pen=pg.mkPen("#000000", width=2.5))
        self.marker.setZValue(10)
        pi.addItem(self.marker)
        self.plot.scene().sigMouseClicked.connect(self._on_click)
        self.plot.setMinimumSize(200, 180)
        self.body.addWidget(self.plot, 1)
        self.show_placeholder("For 2-D point datasets (xor, spirals, moons, circles) the "
                              "decision regions appear here; for sine, the fitted curve.",
                              self.plot)

    @property
    def kind(self) -> str:
        return self.probe.kind if self.probe is not None else ""

    def set_probe(self, probe: ProbeData | None) -> None:
        self.probe = probe
        self.regions = None
        self.curve_data = None
        self.img.clear()
        self.curve.setData([], [])
        if probe is None or not probe.kind or probe.points is None:
            self.points.setData([])
            self.info.setText("")
            self.show_placeholder("For 2-D point datasets (xor, spirals, moons, circles) the "
                                  "decision regions appear here; for sine, the fitted curve.",
                                  self.plot)
            return
        self.show_placeholder(None, self.plot)
        pi = self.plot.getPlotItem()
        if probe.kind == "regions":
            lab = probe.point_labels.astype(int) if probe.point_labels is not None else \
                np.zeros(len(probe.points), int)
            brushes = [pg.mkBrush(*class_color(int(k))) for k in lab]
            self.points.setData(x=probe.points[:, 0], y=probe.points[:, 1], brush=brushes)
            x0, x1, y0, y1 = probe.extent
            pi.setAspectLocked(False)  # the regions fill the plot
            pi.setRange(xRange=(x0, x1), yRange=(y0, y1), padding=0)
            pi.setLabel("bottom", "x₀")
            pi.setLabel("left", "x₁")
            names = probe.labels or []
            legend = " ".join(f"<span style='color:rgb{class_color(k)}'>●</span> {n}"
                              for k, n in enumerate(names))
            self.info.setText(f"decision regions · {legend}")
        else:
            self.points.setData(x=probe.points, y=probe.point_labels,
                                brush=pg.mkBrush(47, 111, 219, 150), size=5, pen=None)
            pi.setAspectLocked(False)
            pi.setLabel("bottom", "x")
            pi.setLabel("left", "y")
            pi.enableAutoRange()
            self.info.setText("training data (dots) and the network's prediction (red line)")

    def _on_click(self, ev) -> None:
        if self.kind != "regions" or ev.button() != Qt.MouseButton.LeftButton:
            return
        vb = self.plot.getPlotItem().getViewBox()
        if not vb.sceneBoundingRect().contains(ev.scenePos()):
            return
        p = vb.mapSceneToView(ev.scenePos())
        self.mark_point(p.x(), p.y())
        self.point_clicked.emit(float(p.x()), float(p.y()))

    def mark_point(self, x0: float | None, x1: float | None = None) -> None:
        """Ring the point Try it questions (None: no mark)."""
        if x0 is None or x1 is None or self.kind != "regions":
            self.marker.setData([])
        else:
            self.marker.setData(x=[x0], y=[x1])

    def show_regions(self, r: Regions) -> None:
        if self.kind != "regions":
            return
        self.regions = r
        x0, x1, y0, y1 = r.extent
        self.img.setImage(r.rgb, autoLevels=False)
        self.img.setRect(x0, y0, x1 - x0, y1 - y0)

    def show_curve(self, c: FittedCurve) -> None:
        if self.kind != "curve":
            return
        self.curve_data = c
        self.curve.setData(c.xs, c.ys)

    def png_widget(self) -> QWidget:
        return self.plot

    def csv_table(self) -> tuple[list[str], list[list[object]]]:
        if self.curve_data is not None:
            c = self.curve_data
            return ["x", "prediction"], [[float(a), float(b)] for a, b in zip(c.xs, c.ys)]
        p = self.probe
        if p is not None and p.points is not None and p.kind == "regions":
            lab = p.point_labels if p.point_labels is not None else np.zeros(len(p.points))
            return ["x0", "x1", "label"], [[float(a), float(b), int(k)]
                                           for (a, b), k in zip(p.points, lab)]
        return ["x", "y"], []
