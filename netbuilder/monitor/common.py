"""Shared pieces of the monitor views: pyqtgraph set-up (PySide6, white background, row-major
images), tile mosaics, colour maps, and the panel frame with its PNG / CSV export."""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")

import numpy as np
import pyqtgraph as pg
import PySide6  # noqa: F401  (pyqtgraph must find PySide6 first)
from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QColor, QImage, QPainter
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QMenu,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from ..settings import save_folder

pg.setConfigOptions(imageAxisOrder="row-major", background="w", foreground="#3C4350",
                    antialias=False)

TEXT = "#1F2430"
DIM = "#5E6673"
BLUE = "#2F6FDB"
ORANGE = "#D9801A"
GREEN = "#1E9E5A"
RED = "#D93025"
PURPLE = "#7047C2"
RUN_COLORS = ["#2F6FDB", "#D9801A", "#1E9E5A", "#BF3F78", "#7047C2", "#138D7F", "#A8512A",
              "#6B7280"]


def run_color(number: int) -> str:
    return RUN_COLORS[(number - 1) % len(RUN_COLORS)]


def gray_lut() -> np.ndarray:
    return np.repeat(np.arange(256, dtype=np.uint8)[:, None], 3, axis=1)


def viridis_lut() -> np.ndarray:
    return pg.colormap.get("viridis").getLookupTable(nPts=256, alpha=False)


def diverging_lut() -> np.ndarray:
    """Blue (negative) – white (0) – red (positive), 256 entries."""
    t = np.linspace(-1, 1, 256)[:, None]
    blue, white, red = np.array([40, 90, 200.0]), np.array([255, 255, 255.0]), \
        np.array([200, 50, 40.0])
    lut = np.where(t < 0, white + (blue - white) * (-t), white + (red - white) * t)
    return lut.astype(np.uint8)


def grid_shape(n: int, tile_hw: tuple[int, int], aspect: float = 1.4) -> tuple[int, int]:
    """(rows, cols) for ``n`` tiles so the mosaic is about ``aspect`` wide per high."""
    th, tw = max(1, tile_hw[0]), max(1, tile_hw[1])
    best, best_cost = (1, n), math.inf
    for cols in range(1, n + 1):
        rows = math.ceil(n / cols)
        ratio = (cols * (tw + 1)) / max(1, rows * (th + 1))
        cost = abs(math.log(ratio / aspect)) + 0.02 * (rows * cols - n)
        if cost < best_cost:
            best, best_cost = (rows, cols), cost
    return best


def mosaic(tiles: np.ndarray, cols: int | None = None, symmetric: bool = False,
           aspect: float = 1.4, gap: int = 1) -> tuple[np.ndarray, int, int]:
    """(N, H, W) or (N, H, W, 3) -> one float image in [0, 1] with each tile scaled on its
    own (symmetric: 0 maps to 0.5), ``gap`` pixels apart (value NaN -> background).
    Returns (image, rows, cols)."""
    n, h, w = tiles.shape[:3]
    rgb = tiles.ndim == 4
    if cols is None:
        rows, cols = grid_shape(n, (h, w), aspect)
    else:
        rows = math.ceil(n / max(1, cols))
    t = tiles.astype(np.float32, copy=False)
    flat = t.reshape(n, -1)
    fin = np.where(np.isfinite(flat), flat, 0.0)
    if symmetric:
        m = np.abs(fin).max(axis=1)
        m[m == 0] = 1.0
        norm = 0.5 + 0.5 * fin / m[:, None]
    else:
        lo, hi = fin.min(axis=1), fin.max(axis=1)
        span = hi - lo
        span[span == 0] = 1.0
        norm = (fin - lo[:, None]) / span[:, None]
    norm = norm.reshape(t.shape)
    shape = (rows * (h + gap) - gap, cols * (w + gap) - gap) + ((3,) if rgb else ())
    out = np.full(shape, np.nan, np.float32)
    for i in range(n):
        r, c = divmod(i, cols)
        out[r * (h + gap):r * (h + gap) + h, c * (w + gap):c * (w + gap) + w] = norm[i]
    return out, rows, cols


def to_rgb(img: np.ndarray, lut: np.ndarray, background: tuple[int, int, int] = (236, 238, 242)
           ) -> np.ndarray:
    """A [0, 1] float image (NaN = background) through ``lut`` to uint8 RGB."""
    if img.ndim == 3:
        out = np.clip(np.nan_to_num(img, nan=0.0) * 255, 0, 255).astype(np.uint8)
        out[np.isnan(img).any(axis=2)] = background
        return out
    bad = np.isnan(img)
    idx = np.clip(np.nan_to_num(img, nan=0.0) * 255, 0, 255).astype(np.uint8)
    out = lut[idx]
    out[bad] = background
    return out


def write_csv(path: str | Path, header: list[str], rows: Iterable[Iterable[object]]) -> Path:
    p = Path(path)
    with open(p, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        for r in rows:
            w.writerow(["" if v is None or (isinstance(v, float) and math.isnan(v)) else
                        (f"{v:.8g}" if isinstance(v, float) else v) for v in r])
    return p


def nice_ceil(v: float) -> float:
    """The smallest of 1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8 × 10^k at or above ``v`` (> 0)."""
    if not math.isfinite(v) or v <= 0:
        return 1.0
    k = math.floor(math.log10(v))
    for m in (1.0, 1.2, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0):
        if m * 10.0 ** k >= v * (1 - 1e-9):
            return m * 10.0 ** k
    return 10.0 ** (k + 1)


class RangeKeeper:
    """Sets a plot's range itself, only when it must change (autoscaling on every update
    repaints the axes each time: the costliest part of a live plot), until the user pans or
    zooms; pyqtgraph's "A" button hands the range back."""

    def __init__(self, plot: pg.PlotItem) -> None:
        self.plot = plot
        self.managed = True
        self.current: tuple[float, float, float, float] | None = None
        vb = plot.getViewBox()
        vb.sigRangeChangedManually.connect(self._manual)
        plot.disableAutoRange()

    def _manual(self, *_args: object) -> None:
        self.managed = False

    def reset(self) -> None:
        self.managed = True
        self.current = None
        self.plot.disableAutoRange()

    def set(self, x0: float, x1: float, y0: float, y1: float) -> None:
        if not self.managed or not all(map(math.isfinite, (x0, x1, y0, y1))):
            return
        if x1 <= x0:
            x1 = x0 + 1
        if y1 <= y0:
            y1 = y0 + 1
        want = (x0, x1, y0, y1)
        if want != self.current:
            self.current = want
            self.plot.setRange(xRange=(x0, x1), yRange=(y0, y1), padding=0.02)


EXPORT_WIDTH = 1600  # px: exported images are at least this wide (and 2× the screen)


def compact_number(v: float) -> str:
    """Tick text that stays short: 2000 → 2k, 1500000 → 1.5M, 0.002 → 0.002."""
    a = abs(v)
    for div, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if a >= div:
            return f"{v / div:.3g}{suffix}"
    if a == 0 or a >= 0.001:
        return f"{v:.4g}"
    return f"{v:.1e}"


class CompactAxis(pg.AxisItem):
    """An axis whose labels never run together: short numbers (2k, 4k) and no more ticks
    than their text fits, whatever the axis length."""

    def __init__(self, orientation: str, **kw: Any) -> None:
        super().__init__(orientation, **kw)
        self.setStyle(maxTextLevel=0)

    def tickStrings(self, values: list[float], scale: float, spacing: float) -> list[str]:
        if self.logMode:
            return super().tickStrings(values, scale, spacing)
        return [compact_number(v * scale) for v in values]

    def fits(self, lo: float, hi: float, size: float, step: float) -> bool:
        """True when labels every ``step`` over [lo, hi] fit ``size`` px without touching."""
        fm = pg.QtGui.QFontMetrics(self.font())
        px_per_step = size * step / abs(hi - lo)
        if self.orientation in ("left", "right"):
            return px_per_step >= fm.height() * 1.4
        first = math.ceil(min(lo, hi) / step)
        last = math.floor(max(lo, hi) / step)
        if last - first > 200:
            return False
        widest = max((fm.horizontalAdvance(compact_number(k * step))
                      for k in range(first, last + 1)), default=0)
        return px_per_step >= widest + fm.horizontalAdvance("00")

    def tickSpacing(self, minVal: float, maxVal: float, size: float) -> list:
        levels = super().tickSpacing(minVal, maxVal, size)
        if not levels or self.logMode or size <= 0 or maxVal == minVal:
            return levels
        major = levels[0][0]
        while not self.fits(minVal, maxVal, size, major):
            major = _next_step(major)
        return [(major, 0), (major / (4 if _mantissa(major) == 2 else 5), 0)]


def _mantissa(step: float) -> int:
    """1, 2 or 5 for a step of 1, 2 or 5 × 10^k."""
    m = step / 10 ** math.floor(math.log10(step) + 1e-9)
    return 1 if m < 1.5 else 2 if m < 3.5 else 5


def _next_step(step: float) -> float:
    """The next of 1, 2, 5, 10, 20, 50… × 10^k."""
    return step * (2.5 if _mantissa(step) == 2 else 2)


def legend_html(entries: Iterable[tuple[str, str, str]]) -> str:
    """A legend as text: (name, CSS colour, mark) with mark a line "━", a dot "●", a square
    "■" or a dashed line "┅". A word-wrapped label breaks it between entries only (joined
    by non-breaking spaces alone, a long legend was one unbreakable line as wide as all
    its names, and it widened the whole column of docks)."""
    return "&nbsp; ".join(f"<span style='color:{c}'>{mark}</span>&nbsp;{name}"
                               for name, c, mark in entries)


def set_title_legend(plot: pg.PlotItem, title: str, entries: Iterable[tuple[str, str, str]]
                     ) -> None:
    """The plot's title followed by its legend, above the data (never over the curves)."""
    legend = legend_html(entries)
    text = f"<b>{title}</b>" + (f"&nbsp;&nbsp;&nbsp;<span style='font-size:8pt'>{legend}</span>"
                                if legend else "")
    plot.setTitle(text, color=TEXT, size="9pt")


def render_image(widget: QWidget, min_width: int = EXPORT_WIDTH) -> QImage:
    """``widget`` drawn again at a scale that makes it at least ``min_width`` px wide (and at
    least twice its size on screen): text and lines are re-drawn, not enlarged."""
    w = max(1, widget.width())
    scale = max(2.0, math.ceil(min_width / w))
    img = QImage(int(w * scale), int(max(1, widget.height()) * scale),
                 QImage.Format.Format_ARGB32_Premultiplied)
    img.setDevicePixelRatio(scale)
    img.fill(QColor("#FFFFFF"))
    painter = QPainter(img)
    QWidget.render(widget, painter, QPoint(0, 0))  # QGraphicsView.render means its scene
    painter.end()
    img.setDevicePixelRatio(1.0)
    return img


def plot_widget(title: str = "", left: str = "", bottom: str = "") -> pg.PlotWidget:
    w = pg.PlotWidget()
    pi = w.getPlotItem()
    if title:
        pi.setTitle(title, color=TEXT, size="9pt")
    if left:
        pi.setLabel("left", left)
    if bottom:
        pi.setLabel("bottom", bottom)
    pi.showGrid(x=True, y=True, alpha=0.15)
    pi.setMenuEnabled(False)
    w.setMinimumSize(160, 120)
    return w


def image_plot() -> tuple[pg.PlotWidget, pg.ImageItem]:
    """A plot holding one image, y pointing down, aspect locked, no axes."""
    w = pg.PlotWidget()
    pi = w.getPlotItem()
    pi.hideAxis("left")
    pi.hideAxis("bottom")
    pi.setMenuEnabled(False)
    pi.invertY(True)
    pi.setAspectLocked(True)
    pi.hideButtons()
    img = pg.ImageItem()
    pi.addItem(img)
    w.setMinimumSize(160, 120)
    return w, img


class NodeChooser:
    """For views with a ``node_box`` combo of node ids (``node_ids()``, in its order): the
    user's pick, or a node selected on the canvas, sets ``node`` and emits ``node_chosen``."""

    node: str | None
    node_box: Any
    node_chosen: Any

    def node_ids(self) -> list[str]:
        raise NotImplementedError

    def select_node(self, nid: str | None) -> None:
        ids = self.node_ids()
        if nid is None or nid not in ids or nid == self.node:
            return
        self.node = nid
        self.node_box.setCurrentIndex(ids.index(nid))
        self.node_chosen.emit(nid)

    def _on_node_box(self, index: int) -> None:
        nid = self.node_box.itemData(index)
        if nid and nid != self.node:
            self.node = nid
            self.node_chosen.emit(nid)


class MonitorPanel(QWidget):
    """A monitor view: a header (title text, controls, export menu) over its content.

    Subclasses fill ``self.body`` and implement ``csv_table()`` -> (header, rows). ``PNG``
    export saves what is shown. ``choose_path(title, filter, suggested)`` is replaceable."""

    choose_path: Callable[[QWidget, str, str, str], str | None] | None = None

    def __init__(self, title: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.title = title
        lay = QVBoxLayout(self)
        lay.setContentsMargins(6, 4, 6, 6)
        lay.setSpacing(4)
        self.header = QHBoxLayout()
        self.header.setSpacing(6)
        self.header.addStretch(1)
        self.info = QLabel()
        self.info.setObjectName("monitorInfo")
        self.info.setStyleSheet(f"color: {DIM};")
        self.info.setWordWrap(True)
        self.info.setMinimumWidth(60)
        self.export_button = QToolButton()
        self.export_button.setText("Export")
        self.export_button.setToolTip("Save this view as a PNG image, or its data as CSV")
        self.export_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        menu = QMenu(self.export_button)
        menu.addAction("Save Image (PNG)…", self._export_png)
        menu.addAction("Save Data (CSV)…", self._export_csv)
        self.export_button.setMenu(menu)
        self.header.addWidget(self.export_button)
        lay.addLayout(self.header)
        lay.addWidget(self.info)
        self.live_note = QLabel()
        self.live_note.setObjectName("liveNote")
        self.live_note.setWordWrap(True)
        self.live_note.setStyleSheet("background: #FFF4D6; color: #6B4E00; padding: 3px 6px; "
                                     "border: 1px solid #E8C66A; border-radius: 3px;")
        self.live_note.hide()
        lay.addWidget(self.live_note)
        self.body = QVBoxLayout()
        self.body.setSpacing(4)
        lay.addLayout(self.body, 1)
        self.placeholder = QLabel()
        self.placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.placeholder.setWordWrap(True)
        self.placeholder.setStyleSheet(f"color: {DIM}; padding: 12px;")
        self.placeholder.hide()
        self.body.addWidget(self.placeholder)

    def add_control(self, w: QWidget) -> None:
        """A control in the header row, left of the others' stretch."""
        self.header.insertWidget(self.header.count() - 2, w)

    def show_placeholder(self, text: str | None, content: QWidget | None = None) -> None:
        """Show ``text`` instead of ``content`` (or the content when text is None)."""
        self.placeholder.setText(text or "")
        self.placeholder.setVisible(bool(text))
        if content is not None:
            content.setVisible(not text)

    def set_live_note(self, epoch: int | None) -> None:
        """Say, while the timeline is on recorded ``epoch``, that this view is not recorded
        and still shows the latest values (None: Live again, no note)."""
        self.live_note.setVisible(epoch is not None)
        if epoch is not None:
            self.live_note.setText(f"Not recorded: this view shows the latest values, not "
                                   f"epoch {epoch}. Press Live on the timeline to follow the run.")

    def csv_table(self) -> tuple[list[str], list[list[object]]]:
        return [], []

    def png_widget(self) -> QWidget:
        return self

    def export_png(self, path: str | Path) -> Path:
        """The view as shown, drawn again at least EXPORT_WIDTH px wide."""
        p = Path(path)
        if not render_image(self.png_widget()).save(str(p)):
            raise OSError(f"could not write {p}")
        return p

    def export_csv(self, path: str | Path) -> Path:
        header, rows = self.csv_table()
        return write_csv(path, header, rows)

    def _choose(self, what: str, filt: str, suffix: str) -> str | None:
        name = self.title.lower().replace(" ", "_") + suffix
        chooser = MonitorPanel.choose_path
        if chooser is not None:
            return chooser(self, what, filt, name)
        path, _ = QFileDialog.getSaveFileName(self, what, str(save_folder() / name), filt)
        return path or None

    def _export_png(self) -> None:
        path = self._choose(f"Save {self.title} as PNG", "PNG images (*.png)", ".png")
        if path:
            self.export_png(path)

    def _export_csv(self) -> None:
        path = self._choose(f"Save {self.title} data as CSV", "CSV files (*.csv)", ".csv")
        if path:
            self.export_csv(path)
