"""Attention maps: for the selected MultiHeadAttention node and one chosen validation sample,
each head's (T × T) softmax weights as a heat map (row = the query step, column = the key
step it looks at), the sample's tokens on the axes when the data has a vocabulary, refreshed
while training runs."""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Signal
from PySide6.QtGui import QResizeEvent
from PySide6.QtWidgets import QComboBox, QSpinBox, QWidget

from engine.text import plural

from ..session.probes import AttentionMaps, ProbeData
from .common import TEXT, MonitorPanel, NodeChooser, viridis_lut

NO_NODES = ("This model has no MultiHeadAttention node, so there are no attention weights to "
            "show.")
WAITING = ("Start training: for one validation sample, each head's attention weights appear "
           "here (row = a step, columns = the steps it looks at).")
MAX_TICKS = 16  # token labels per axis at most (longer sequences label every k-th step)


# room a head's plot takes besides its map (px): the left axis's labels; the title and the
# bottom axis's labels
AXIS_W, TITLE_AXIS_H = 34, 62


def tick_labels(tokens: tuple[str, ...], t: int,
                most: int = MAX_TICKS) -> list[tuple[float, str]]:
    """(position, text) ticks at the centres of ``t`` steps: the tokens (or step numbers),
    every k-th so that at most ``most`` (and MAX_TICKS) are drawn."""
    step = max(1, math.ceil(t / max(1, min(most, MAX_TICKS))))
    names = tokens if len(tokens) == t else tuple(str(i) for i in range(t))
    return [(i + 0.5, names[i]) for i in range(0, t, step)]


class AttentionGrid(pg.GraphicsLayoutWidget):
    """One heat map per head of attention weights (heads, T, T), rows = query steps, columns
    = key steps, all on one colour scale (dark = 0, yellow = the largest weight shown), in a
    grid whose shape suits the widget's size; ``tokens`` name the steps on the axes."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMinimumSize(220, 160)
        self.ci.setSpacing(4)
        self.plots: list[pg.PlotItem] = []
        self.images: list[pg.ImageItem] = []
        self.weights: np.ndarray | None = None
        self.tokens: tuple[str, ...] = ()
        self._cols = 0
        self._lut = viridis_lut()

    def show_weights(self, weights: np.ndarray, tokens: tuple[str, ...] = ()) -> float:
        """Draw ``weights`` (heads, T, T); returns the top of the colour scale."""
        self.weights, self.tokens = weights, tokens
        heads, t, _ = weights.shape
        self._arrange(heads, t)
        top = float(np.nanmax(weights)) if weights.size else 1.0
        top = top if math.isfinite(top) and top > 0 else 1.0
        names = tokens if len(tokens) == t else tuple(str(i) for i in range(t))
        fm = self.fontMetrics()
        side_px = self._map_side(heads, self._cols)
        wide = max(fm.horizontalAdvance(n) for n in names) + 6 if names else 1
        per_axis = {"bottom": tick_labels(tokens, t, int(side_px // wide)),
                    "left": tick_labels(tokens, t, int(side_px // (fm.height() + 1)))}
        for h, (plot, img) in enumerate(zip(self.plots, self.images)):
            img.setImage(weights[h], levels=(0.0, top), lut=self._lut, autoLevels=False)
            for side, ticks in per_axis.items():
                plot.getAxis(side).setTicks([ticks])
            plot.setRange(xRange=(0, t), yRange=(0, t), padding=0)
        return top

    def clear_weights(self) -> None:
        self.weights = None
        for img in self.images:
            img.clear()

    def _map_side(self, heads: int, cols: int) -> float:
        """The side (px) of each head's square map with ``cols`` heads per row."""
        rows = math.ceil(heads / max(1, cols))
        return min(self.width() / max(1, cols) - AXIS_W,
                   self.height() / rows - TITLE_AXIS_H)

    def _want_cols(self, heads: int, t: int) -> int:
        """Heads per row that make the maps largest (fewer rows on a tie): a plain aspect
        match put four heads of a 520 × 230 view in 3 + 1 maps a third of the size."""
        best, best_side = 1, -math.inf
        for cols in range(1, max(1, heads) + 1):
            side = self._map_side(heads, cols)
            if side > best_side + 0.5:
                best, best_side = cols, side
        return best

    def _arrange(self, heads: int, t: int) -> None:
        cols = self._want_cols(heads, t)
        if len(self.plots) == heads and cols == self._cols:
            return
        self.ci.clear()
        self.plots, self.images, self._cols = [], [], cols
        for h in range(heads):
            plot = self.ci.addPlot(row=h // cols, col=h % cols)
            plot.setMenuEnabled(False)
            plot.hideButtons()
            plot.invertY(True)
            plot.setAspectLocked(True)
            plot.setMouseEnabled(x=False, y=False)
            plot.setTitle(f"head {h}", color=TEXT, size="8pt")
            for side in ("left", "bottom"):
                plot.getAxis(side).setStyle(tickLength=0)
            img = pg.ImageItem()
            plot.addItem(img)
            self.plots.append(plot)
            self.images.append(img)

    def resizeEvent(self, ev: QResizeEvent) -> None:
        super().resizeEvent(ev)
        w = getattr(self, "weights", None)  # pyqtgraph resizes while it is being built
        if w is not None:  # the arrangement and how many labels fit follow the size
            self.show_weights(w, self.tokens)


class AttentionView(NodeChooser, MonitorPanel):
    """The attention weights of ``node`` for probe sample ``sample``: one heat map per head,
    all on one colour scale (dark = 0, yellow = the largest weight shown)."""

    node_chosen = Signal(str)
    sample_chosen = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Attention", parent)
        self.node: str | None = None
        self.maps: AttentionMaps | None = None
        self.probe: ProbeData | None = None
        self._nodes: list[str] = []
        self.node_box = QComboBox()
        self.node_box.setToolTip("The MultiHeadAttention node whose weights are shown (or "
                                 "select it on the canvas)")
        self.node_box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.node_box.activated.connect(self._on_node_box)
        self.sample_box = QSpinBox()
        self.sample_box.setPrefix("sample ")
        self.sample_box.setToolTip("Which validation sample goes through the network")
        self.sample_box.valueChanged.connect(self.sample_chosen.emit)
        self.add_control(self.node_box)
        self.add_control(self.sample_box)
        self.canvas = AttentionGrid()
        self.body.addWidget(self.canvas, 1)
        self.show_placeholder(NO_NODES, self.canvas)

    # ----- model and data ------------------------------------------------------------------
    def set_nodes(self, nodes: list[str]) -> None:
        """The model's MultiHeadAttention nodes (topological order); the first is chosen
        unless the current one is still there."""
        self._nodes = list(nodes)
        self.node_box.blockSignals(True)
        self.node_box.clear()
        for nid in self._nodes:
            self.node_box.addItem(nid, nid)
        self.node_box.blockSignals(False)
        self.node_box.setVisible(len(self._nodes) > 1)
        if self.node in self._nodes:
            self.node_box.setCurrentIndex(self._nodes.index(self.node))
        else:
            self.node = None
            self.clear()
            if self._nodes:
                self.select_node(self._nodes[0])

    def node_ids(self) -> list[str]:
        return list(self._nodes)

    def set_probe(self, probe: ProbeData | None) -> None:
        self.probe = probe
        n = 0 if probe is None or probe.x is None else len(probe.x)
        self.sample_box.blockSignals(True)
        self.sample_box.setRange(0, max(0, n - 1))
        self.sample_box.blockSignals(False)
        self.sample_box.setEnabled(n > 1)

    @property
    def sample(self) -> int:
        """The probe sample whose weights are shown (index into the probe samples)."""
        return self.sample_box.value()

    # ----- updates -------------------------------------------------------------------------
    def show_attention(self, am: AttentionMaps) -> None:
        """Draw ``am`` (ignored when it is not the chosen node's)."""
        if am.node != self.node:
            return
        self.maps = am
        self.show_placeholder(None, self.canvas)
        heads, t, _ = am.weights.shape
        top = self.canvas.show_weights(am.weights, am.tokens)
        what = f"{plural(heads, 'head')} × {t}×{t}"
        tokens = f" · tokens {' '.join(am.tokens[:24])}{' …' if t > 24 else ''}" \
            if am.tokens else ""
        label = f" · label {am.label}" if am.label else ""
        causal = " · causal" if am.causal else ""
        self.info.setText(f"<b>{am.node}</b> · {what}{causal} · sample {am.sample}{tokens}"
                          f"{label} · colour 0 … {top:.2f}")
        self.info.setToolTip("Row i: how much step i (query) takes from each step j (key); "
                             "every row sums to 1. Dark = 0, yellow = the largest weight shown.")

    def clear(self) -> None:
        self.maps = None
        self.info.setText("")
        self.canvas.clear_weights()
        self.show_placeholder(WAITING if self._nodes else NO_NODES, self.canvas)

    @property
    def plots(self) -> list[pg.PlotItem]:
        return self.canvas.plots

    @property
    def images(self) -> list[pg.ImageItem]:
        """The heat maps, one per head (their ``image`` is the head's weights)."""
        return self.canvas.images

    # ----- export --------------------------------------------------------------------------
    def png_widget(self) -> QWidget:
        return self.canvas

    def csv_table(self) -> tuple[list[str], list[list[object]]]:
        am = self.maps
        header = ["head", "query_step", "key_step", "query_token", "key_token", "weight"]
        if am is None:
            return header, []
        heads, t, _ = am.weights.shape
        tok = am.tokens if len(am.tokens) == t else tuple(str(i) for i in range(t))
        return header, [[h, i, j, tok[i], tok[j], float(am.weights[h, i, j])]
                        for h in range(heads) for i in range(t) for j in range(t)]
