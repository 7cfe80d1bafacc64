"""After each epoch: the confusion matrix (rows: true class, columns: predicted; shaded by the
share of each true class) and a gallery of the most confidently wrong samples."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import QGridLayout, QLabel, QScrollArea, QVBoxLayout, QWidget

from engine.text import plural

from ..training.probes import EpochAnalysis
from .common import DIM, MonitorPanel
from .feature_maps import sample_image

THUMB = 64


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
        pi.setAspectLocked(True)
        pi.setLabel("left", "true class")
        pi.setLabel("bottom", "predicted class")
        pi.getViewBox().setMouseEnabled(x=False, y=False)
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
        cm = a.confusion
        self.matrix = cm
        self.epoch = epoch
        self.show_placeholder(None, self.plot)
        k = cm.shape[0]
        rows = cm.sum(axis=1, keepdims=True).astype(float)
        share = np.divide(cm, rows, out=np.zeros(cm.shape), where=rows > 0)
        rgb = blue_lut()[np.clip(share * 255, 0, 255).astype(np.uint8)]
        self.img.setImage(rgb, autoLevels=False)
        self.img.setRect(-0.5, -0.5, k, k)
        pi = self.plot.getPlotItem()
        for t in self.texts:
            pi.removeItem(t)
        self.texts = []
        if k <= 16:
            for i in range(k):
                for j in range(k):
                    if cm[i, j] == 0 and i != j:
                        continue
                    color = "#FFFFFF" if share[i, j] > 0.55 else "#1F2430"
                    t = pg.TextItem(str(int(cm[i, j])), color=color, anchor=(0.5, 0.5))
                    t.setPos(j, i)
                    pi.addItem(t)
                    self.texts.append(t)
        names = [self.class_names[i] if i < len(self.class_names) else str(i) for i in range(k)]
        short = [n if len(n) <= 10 else n[:9] + "…" for n in names]
        ticks = [list(enumerate(short))]
        pi.getAxis("bottom").setTicks(ticks)
        pi.getAxis("left").setTicks(ticks)
        pi.getViewBox().setRange(xRange=(-0.5, k - 0.5), yRange=(-0.5, k - 0.5), padding=0.02)
        total = int(cm.sum())
        acc = np.trace(cm) / total if total else 0.0
        self.info.setText(f"epoch {epoch} · {a.part} · {plural(total, 'sample')} · "
                          f"accuracy {100 * acc:.1f} %")

    def clear(self) -> None:
        self.matrix = None
        self.info.setText("")
        self.show_placeholder("After each epoch, the confusion matrix of the validation samples "
                              "appears here (classification models).", self.plot)

    def png_widget(self) -> QWidget:
        return self.plot

    def csv_table(self) -> tuple[list[str], list[list[object]]]:
        cm = self.matrix
        if cm is None:
            return ["true \\ predicted"], []
        k = cm.shape[0]
        names = [self.class_names[i] if i < len(self.class_names) else str(i) for i in range(k)]
        return (["true \\ predicted", *names],
                [[names[i], *[int(v) for v in cm[i]]] for i in range(k)])


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
