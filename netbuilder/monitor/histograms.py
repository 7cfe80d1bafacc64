"""Weights and gradients: histograms of the selected layer's weights and gradients, and the
gradient norm of every layer over time on a log scale, so vanishing and exploding gradients
show as curves falling to the floor or shooting up."""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Signal
from PySide6.QtWidgets import QComboBox, QLabel, QVBoxLayout, QWidget

from ..session.probes import Histograms
from ..session.runs import RunRecord
from .common import (
    BLUE,
    ORANGE,
    RUN_COLORS,
    TEXT,
    CompactAxis,
    MonitorPanel,
    RangeKeeper,
    legend_html,
    nice_ceil,
)

FLOOR = 1e-12


class GradientsView(MonitorPanel):
    """Histograms of ``node``'s parameters and the per-layer gradient norms of the run."""

    node_chosen = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Weights and gradients", parent)
        self.node: str | None = None
        self.hists: Histograms | None = None
        self.run: RunRecord | None = None
        self._layers: list[str] = []
        self.node_box = QComboBox()
        self.node_box.setToolTip("The layer whose weights and gradients are histogrammed")
        self.node_box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.node_box.activated.connect(lambda i: self.select_node(self.node_box.itemData(i)))
        self.add_control(self.node_box)
        self.plots = QWidget()  # the plots with their legend under them (what PNG exports)
        box = QVBoxLayout(self.plots)
        box.setContentsMargins(0, 0, 0, 0)
        box.setSpacing(2)
        self.glw = pg.GraphicsLayoutWidget()
        self.glw.setMinimumSize(240, 130)  # its legend may wrap: the 1024×700 Monitor fits
        box.addWidget(self.glw, 1)
        self.body.addWidget(self.plots, 1)
        self.w_plot = self.glw.addPlot(row=0, col=0)
        self.g_plot = self.glw.addPlot(row=0, col=1)
        self.n_plot = self.glw.addPlot(row=1, col=0, colspan=2,
                                       axisItems={"bottom": CompactAxis("bottom")})
        for p, title in ((self.w_plot, "Weights"), (self.g_plot, "Gradients"),
                         (self.n_plot, "Gradient norm per layer")):
            p.setTitle(title, color=TEXT, size="9pt")
            p.setMenuEnabled(False)
            p.showGrid(x=True, y=True, alpha=0.15)
        self.n_plot.setLogMode(y=True)
        self.n_plot.getAxis("left").setStyle(maxTextLevel=0)
        self.glw.ci.layout.setRowStretchFactor(0, 2)
        self.glw.ci.layout.setRowStretchFactor(1, 3)
        self.n_plot.setLabel("bottom", "step")
        # the layers' colours under the plots, not over the curves
        self.n_legend = QLabel()
        self.n_legend.setObjectName("normLegend")
        self.n_legend.setWordWrap(True)
        self.n_legend.setStyleSheet(f"color: {TEXT}; font-size: 8pt; background: white;")
        box.addWidget(self.n_legend)
        self.w_items: list[pg.PlotDataItem] = []
        self.g_items: list[pg.PlotDataItem] = []
        self.ranges = {"w": RangeKeeper(self.w_plot), "g": RangeKeeper(self.g_plot),
                       "n": RangeKeeper(self.n_plot)}
        self.norm_curves: dict[str, pg.PlotDataItem] = {}
        self.show_placeholder("Start training: the weights and gradients of the selected layer "
                              "and the gradient norm of every layer appear here.", self.glw)

    def show_placeholder(self, text: str | None, content: QWidget | None = None) -> None:
        super().show_placeholder(text, self.plots if content is self.glw else content)

    @property
    def layers(self) -> list[str]:
        """The nodes with parameters offered, in graph order."""
        return list(self._layers)

    def set_layers(self, layers: list[str]) -> None:
        """Nodes with parameters, in graph order."""
        self._layers = list(layers)
        self.node_box.blockSignals(True)
        self.node_box.clear()
        for nid in layers:
            self.node_box.addItem(nid, nid)
        self.node_box.blockSignals(False)
        if self.node in layers:
            self.node_box.setCurrentIndex(layers.index(self.node))
        elif layers:
            self.select_node(layers[0])
        for c in self.norm_curves.values():
            self.n_plot.removeItem(c)
        self.norm_curves = {}
        for k, nid in enumerate(layers):
            c = RUN_COLORS[k % len(RUN_COLORS)]
            self.norm_curves[nid] = self.n_plot.plot(pen=pg.mkPen(c, width=1.5), name=nid)
        self.n_legend.setText("Gradient norm: " + legend_html(
            (nid, RUN_COLORS[k % len(RUN_COLORS)], "━") for k, nid in enumerate(layers)))

    def select_node(self, nid: str | None) -> None:
        if nid is None or nid not in self._layers or nid == self.node:
            return
        self.node = nid
        self.hists = None
        self.node_box.setCurrentIndex(self._layers.index(nid))
        self.clear()
        self.node_chosen.emit(nid)

    def show_hists(self, h: Histograms) -> None:
        if h.node != self.node:
            return
        self.hists = h
        self.show_placeholder(None, self.glw)
        for plot, data, color, items, keeper in (
                (self.w_plot, h.weights, BLUE, self.w_items, self.ranges["w"]),
                (self.g_plot, h.grads, ORANGE, self.g_items, self.ranges["g"])):
            while len(items) > len(data):
                plot.removeItem(items.pop())
            lo = hi = top = 0.0
            for k, (counts, edges) in enumerate(data.values()):
                if k == len(items):
                    c = pg.mkColor(color if k == 0 else RUN_COLORS[(k + 3) % len(RUN_COLORS)])
                    c.setAlpha(150 if k == 0 else 90)
                    items.append(plot.plot(stepMode="center", fillLevel=0, brush=c,
                                           pen=pg.mkPen(c.darker(130), width=1)))
                items[k].setData(edges, counts)
                lo, hi = min(lo, float(edges[0])), max(hi, float(edges[-1]))
                top = max(top, float(counts.max()))
            m = nice_ceil(max(abs(lo), abs(hi)))
            keeper.set(-m, m, 0, nice_ceil(1.05 * top))
        names = ", ".join(h.weights)
        self.info.setText(f"<b>{h.node}</b> · {names}")

    def set_run(self, run: RunRecord | None) -> None:
        self.run = run
        self.refresh_norms()

    def refresh_norms(self) -> None:
        run = self.run
        if run is None or not run.grad_norm_steps:
            for c in self.norm_curves.values():
                c.setData([], [])
            return
        self.show_placeholder(None, self.glw)
        x = np.asarray(run.grad_norm_steps, float)
        lo, hi = math.inf, 0.0
        for nid, curve in self.norm_curves.items():
            ys = run.grad_norms.get(nid)
            if ys is None:
                curve.setData([], [])
                continue
            y = np.maximum(np.asarray(ys, float), FLOOR)
            ok = np.isfinite(y)
            curve.setData(x[ok], y[ok])
            if ok.any():
                lo, hi = min(lo, float(y[ok].min())), max(hi, float(y[ok].max()))
        if hi > 0:  # log axis: whole decades, at least three (fewer get crowded labels)
            top = math.ceil(math.log10(hi) + 0.01)
            self.ranges["n"].set(0, nice_ceil(1.02 * x[-1]),
                                 min(math.floor(math.log10(lo)), top - 3), top)

    def clear(self) -> None:
        self.hists = None
        self.info.setText("")
        for plot, items in ((self.w_plot, self.w_items), (self.g_plot, self.g_items)):
            for it in items:
                plot.removeItem(it)
            items.clear()

    def png_widget(self) -> QWidget:
        return self.plots

    def csv_table(self) -> tuple[list[str], list[list[object]]]:
        run = self.run
        if run is None:
            return ["step"], []
        layers = list(run.grad_norms)
        rows = []
        for i, s in enumerate(run.grad_norm_steps):
            rows.append([s] + [run.grad_norms[n][i] if i < len(run.grad_norms[n]) else math.nan
                               for n in layers])
        return ["step"] + [f"grad_norm_{n}" for n in layers], rows
