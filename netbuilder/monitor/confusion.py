"""After each epoch: the confusion matrix (rows: true class, columns: predicted; shaded by the
share of each true class) and a gallery of the most confidently wrong samples.

The matrix has one row and column per class of the dataset (named by the dataset), even when
the Output has more units than there are classes; predictions on the spare units are counted
in one "other" column, shown only when there are some."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QFontMetrics, QImage, QPixmap
from PySide6.QtWidgets import QGridLayout, QLabel, QScrollArea, QVBoxLayout, QWidget

from engine.text import plural

from ..session.probes import EpochAnalysis
from .common import DIM, MonitorPanel
from .feature_maps import sample_image

THUMB = 64
OTHER = "other"  # the column of predictions on Output units no class uses


def fold_extra_units(cm: np.ndarray, n_classes: int) -> tuple[np.ndarray, int]:
    """A (k, k) matrix of an Output with k ≥ ``n_classes`` units → (n, n) or, when some
    predictions fell on the spare units, (n, n + 1) with those in the last column; also
    returns how many such predictions there were."""
    k = cm.shape[0]
    n = n_classes if 0 < n_classes <= k else k
    core = cm[:n, :n]
    extra = int(cm[:n, n:].sum())
    if extra:
        core = np.concatenate([core, cm[:n, n:].sum(axis=1, keepdims=True)], axis=1)
    return core, extra


def abbreviate(names: list[str], width_px: float, fm: QFontMetrics) -> list[str]:
    """Names short enough to fit ``width_px`` each: whole, else cut to the longest prefix that
    still tells them apart ("circ.", "squa."), else their numbers."""
    longest = max((len(n) for n in names), default=0)
    for keep in range(longest, 1, -1):
        cut = [n if len(n) <= keep else n[:keep] + "." for n in names]
        if len(set(cut)) == len(cut) and max(fm.horizontalAdvance(c) for c in cut) + 6 \
                <= width_px:
            return cut
    return [str(i) for i in range(len(names))]


def blue_lut() -> np.ndarray:
    t = np.linspace(0, 1, 256)[:, None]
    lo, hi = np.array([247, 249, 252.0]), np.array([33, 84, 170.0])
    return (lo + (hi - lo) * t).astype(np.uint8)


def pixmap_of(rgb: np.ndarray, size: int = THUMB) -> QPixmap:
    """An (H, W, 3) uint8 image as a pixmap scaled to ``size`` (nearest neighbour)."""
    rgb = np.ascontiguousarray(rgb)
    h, w = rgb.shape[:2]
    img = QImage(rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()
    return QPixmap.fromImage(img.scaled(size, size, Qt.AspectRatioMode.KeepAspectRatio,
                                        Qt.TransformationMode.FastTransformation))


class ConfusionView(MonitorPanel):
    """The confusion matrix of the last epoch's analysis."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Confusion matrix", parent)
        self.matrix: np.ndarray | None = None
        self.class_names: list[str] = []
        self.epoch = 0
        self.plot = pg.PlotWidget()
        pi = self.plot.getPlotItem()
        pi.setMenuEnabled(False)
        pi.hideButtons()
        pi.invertY(True)
        # cells fill the plot: a square lock left a wide, low dock's columns too narrow for
        # the class names (numbers instead) beside empty space
        pi.setAspectLocked(False)
        pi.setLabel("left", "true class")
        pi.setLabel("bottom", "predicted class")
        pi.getViewBox().setMouseEnabled(x=False, y=False)
        pi.getViewBox().sigResized.connect(self._label_axes)
        pi.getViewBox().sigRangeChanged.connect(lambda *_a: self._label_axes())
        self.col_names: list[str] = []
        self.row_names: list[str] = []
        self.extra = 0
        self.img = pg.ImageItem()
        pi.addItem(self.img)
        self.texts: list[pg.TextItem] = []
        self.plot.setMinimumSize(200, 180)
        self.body.addWidget(self.plot, 1)
        self.show_placeholder("After each epoch, the confusion matrix of the validation samples "
                              "appears here (classification models).", self.plot)

    def set_class_names(self, names: list[str]) -> None:
        self.class_names = list(names)

    def show_analysis(self, a: EpochAnalysis, epoch: int) -> None:
        cm, extra = fold_extra_units(a.confusion, len(self.class_names))
        self.matrix = cm
        self.extra = extra
        self.epoch = epoch
        self.show_placeholder(None, self.plot)
        rows, cols = cm.shape
        self.row_names = [self.class_names[i] if i < len(self.class_names) else str(i)
                          for i in range(rows)]
        self.col_names = self.row_names + ([OTHER] if cols > rows else [])
        totals = cm.sum(axis=1, keepdims=True).astype(float)
        share = np.divide(cm, totals, out=np.zeros(cm.shape), where=totals > 0)
        rgb = blue_lut()[np.clip(share * 255, 0, 255).astype(np.uint8)]
        self.img.setImage(rgb, autoLevels=False)
        self.img.setRect(-0.5, -0.5, cols, rows)
        pi = self.plot.getPlotItem()
        for t in self.texts:
            pi.removeItem(t)
        self.texts = []
        if max(rows, cols) <= 16:
            for i in range(rows):
                for j in range(cols):
                    if cm[i, j] == 0 and i != j:
                        continue
                    color = "#FFFFFF" if share[i, j] > 0.55 else "#1F2430"
                    t = pg.TextItem(str(int(cm[i, j])), color=color, anchor=(0.5, 0.5))
                    t.setPos(j, i)
                    pi.addItem(t)
                    self.texts.append(t)
        pi.getViewBox().setRange(xRange=(-0.5, cols - 0.5), yRange=(-0.5, rows - 0.5),
                                 padding=0.02)
        self._label_axes()
        total = int(cm.sum())
        acc = np.trace(cm[:, :rows]) / total if total else 0.0
        text = (f"epoch {epoch} · {a.part} · {plural(total, 'sample')} · {plural(rows, 'class')} · "
                f"accuracy {100 * acc:.1f} %")
        if extra:
            text += (f" · {extra} predicted on Output units {rows}–{a.confusion.shape[0] - 1}, "
                     "which no class uses (column “other”)")
        self.info.setText(text)

    def _label_axes(self) -> None:
        """Class names on both axes: whole on the left, on the bottom cut to the column
        width (the tooltip has them all)."""
        if not self.col_names:
            return
        pi = self.plot.getPlotItem()
        left, bottom = pi.getAxis("left"), pi.getAxis("bottom")
        left.setTicks([list(enumerate(n if len(n) <= 12 else n[:11] + "…"
                                      for n in self.row_names))])
        px_x = pi.getViewBox().viewPixelSize()[0]  # data units (columns) per pixel
        col_px = 1.0 / px_x if px_x > 0 else 0.0
        short = abbreviate(self.col_names, col_px, QFontMetrics(bottom.font()))
        bottom.setTicks([list(enumerate(short))])
        cut = [f"{s} = {n}" for s, n in zip(short, self.col_names) if s != n]
        self.plot.setToolTip("predicted: " + ", ".join(cut) if cut else "")

    def clear(self) -> None:
        self.matrix = None
        self.row_names, self.col_names, self.extra = [], [], 0
        self.info.setText("")
        self.show_placeholder("After each epoch, the confusion matrix of the validation samples "
                              "appears here (classification models).", self.plot)

    def png_widget(self) -> QWidget:
        return self.plot

    def csv_table(self) -> tuple[list[str], list[list[object]]]:
        cm = self.matrix
        if cm is None:
            return ["true \\ predicted"], []
        return (["true \\ predicted", *self.col_names],
                [[self.row_names[i], *[int(v) for v in cm[i]]] for i in range(cm.shape[0])])


class GalleryView(MonitorPanel):
    """The validation samples the network got wrong with the highest confidence."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Confident mistakes", parent)
        self.analysis: EpochAnalysis | None = None
        self.class_names: list[str] = []
        self.scroll = QScrollArea()
        self.scroll.setWidgetResizable(True)
        self.grid_host = QWidget()
        self.grid = QGridLayout(self.grid_host)
        self.grid.setSpacing(6)
        self.grid.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.scroll.setWidget(self.grid_host)
        self.body.addWidget(self.scroll, 1)
        self.cells: list[QWidget] = []
        self._cols = 0
        self.show_placeholder("After each epoch, the validation samples the network got wrong "
                              "most confidently appear here.", self.scroll)

    def set_class_names(self, names: list[str]) -> None:
        self.class_names = list(names)

    def _name(self, k: int) -> str:
        return self.class_names[k] if 0 <= k < len(self.class_names) else str(k)

    def show_analysis(self, a: EpochAnalysis, epoch: int) -> None:
        self.analysis = a
        for c in self.cells:
            c.setParent(None)
            c.deleteLater()
        self.cells = []
        if not a.wrong:
            self.show_placeholder(f"Epoch {epoch}: no mistakes on the {a.part} samples.",
                                  self.scroll)
            self.info.setText(f"epoch {epoch}")
            return
        self.show_placeholder(None, self.scroll)
        for s in a.wrong:
            cell = QWidget()
            lay = QVBoxLayout(cell)
            lay.setContentsMargins(0, 0, 0, 0)
            lay.setSpacing(1)
            img = sample_image(s.x)
            pic = QLabel()
            pic.setAlignment(Qt.AlignmentFlag.AlignCenter)
            if img is not None:
                pic.setPixmap(pixmap_of(img))
            else:
                pic.setText(", ".join(f"{v:.2f}" for v in np.ravel(s.x)[:4]))
                pic.setStyleSheet(f"color: {DIM}; font-size: 8pt;")
            cap = QLabel(f"<b>{self._name(s.true)}</b> → <span style='color:#B3261E'>"
                         f"{self._name(s.pred)}</span><br>{100 * s.confidence:.0f} % · #{s.index}")
            cap.setAlignment(Qt.AlignmentFlag.AlignCenter)
            cap.setStyleSheet("font-size: 8pt;")
            cap.setToolTip(f"sample {s.index} of the {a.part} part: true class "
                           f"{self._name(s.true)}, predicted {self._name(s.pred)} with "
                           f"{100 * s.confidence:.1f} % confidence")
            lay.addWidget(pic)
            lay.addWidget(cap)
            self.cells.append(cell)
        self._cols = 0
        self._relayout()
        self.info.setText(f"epoch {epoch} · {len(a.wrong)} most confident "
                          f"mistake{'s' if len(a.wrong) != 1 else ''} "
                          f"({a.part}) · true → predicted")

    def _relayout(self) -> None:
        """As many columns as fit the width."""
        cw = max((c.sizeHint().width() for c in self.cells), default=THUMB) + 8
        cols = max(1, (self.scroll.viewport().width() - 8) // cw)
        if cols == self._cols:
            return
        self._cols = cols
        for c in self.cells:
            self.grid.removeWidget(c)
        for n, c in enumerate(self.cells):
            r, col = divmod(n, cols)
            self.grid.addWidget(c, r, col)

    def resizeEvent(self, ev) -> None:
        super().resizeEvent(ev)
        if self.cells:
            self._relayout()

    def clear(self) -> None:
        self.analysis = None
        self.info.setText("")
        for c in self.cells:
            c.setParent(None)
            c.deleteLater()
        self.cells = []
        self.show_placeholder("After each epoch, the validation samples the network got wrong "
                              "most confidently appear here.", self.scroll)

    def png_widget(self) -> QWidget:
        return self.scroll

    def csv_table(self) -> tuple[list[str], list[list[object]]]:
        a = self.analysis
        header = ["index", "true", "predicted", "confidence"]
        if a is None:
            return header, []
        return header, [[s.index, self._name(s.true), self._name(s.pred), s.confidence]
                        for s in a.wrong]
