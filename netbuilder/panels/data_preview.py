"""The Data panel's preview of a loaded dataset: a few samples of each class with their class
names (images; for segmentation each image beside its label mask laid over it, coloured by
class), a scatter of 2-D points or a curve, rows of numbers otherwise, and the number of
samples (pixels, for segmentation) per class."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QFontMetrics
from PySide6.QtWidgets import QGridLayout, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from engine.data import Dataset

from ..monitor.common import BLUE, pg
from ..monitor.confusion import pixmap_of
from ..monitor.feature_maps import sample_image
from ..session.probes import class_color

PREVIEW_MAX = 24
PER_CLASS_MAX = 3
THUMB_PX = 44
COLUMNS = 6
MAX_NAMED_BARS = 24
BAR_ROW_PX = 17


def preview_indices(ds: Dataset) -> np.ndarray:
    """The same number of samples of each class (up to three, PREVIEW_MAX in all; the first
    ones when the data has no classes) for the preview grid."""
    y = ds.y
    if ds.task == "classification" and y is not None and y.ndim == 1:
        n_classes = min(ds.n_classes or 0, PREVIEW_MAX)
        per = max(1, min(PER_CLASS_MAX, PREVIEW_MAX // max(1, n_classes)))
        idx: list[int] = []
        for k in range(n_classes):
            idx.extend(np.flatnonzero(y == k)[:per].tolist())
            if len(idx) >= PREVIEW_MAX:
                break
        return np.array(idx[:PREVIEW_MAX], int)
    return np.arange(min(len(ds), PREVIEW_MAX))


SEG_PREVIEW_MAX = 12
SEG_COLUMNS = 3
MASK_ALPHA = 0.55


def is_segmentation(ds: Dataset) -> bool:
    """Images with a class label per pixel: ``y`` shaped (N, H, W) like the images."""
    y = ds.y
    return (ds.is_image and ds.task == "classification" and y is not None and y.ndim == 3
            and tuple(y.shape[1:]) == tuple(ds.x.shape[2:]))


def mask_overlay(rgb: np.ndarray, mask: np.ndarray, alpha: float = MASK_ALPHA) -> np.ndarray:
    """An (H, W, 3) uint8 image with every pixel of class k > 0 blended with class k's
    colour (``alpha`` of it); class 0 (background) is left as it is."""
    colors = np.array([class_color(k) for k in range(int(mask.max()) + 1)], np.float64)
    out = rgb.astype(np.float64)
    fg = mask > 0
    out[fg] = (1.0 - alpha) * out[fg] + alpha * colors[mask[fg]]
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def classes_in(ds: Dataset, i: int) -> str:
    """The classes other than background in sample ``i``'s mask, e.g. "circle, triangle"."""
    present = [int(k) for k in np.unique(ds.y[i]) if k > 0]
    return ", ".join(ds.class_name(k) for k in present) or ds.class_name(0)


def sample_label(ds: Dataset, i: int) -> str:
    """Sample ``i``'s class name, or its first target values."""
    y = ds.y
    if y is None:
        return ""
    v = np.ravel(y[i])
    if ds.task == "classification" and v.size == 1:
        return ds.class_name(int(v[0]))
    return ", ".join(f"{a:.3g}" for a in v[:3])


class DataPreview(QWidget):
    """Shows one Dataset (``show``) or nothing (``clear``)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(6)
        self.grid_host = QWidget()
        self.grid = QGridLayout(self.grid_host)
        self.grid.setSpacing(4)
        self.grid.setContentsMargins(0, 0, 0, 0)
        self.grid.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        lay.addWidget(self.grid_host)
        self.plots_host = QVBoxLayout()  # point and class-count plots, built when needed
        self.plots_host.setContentsMargins(0, 0, 0, 0)
        lay.addLayout(self.plots_host)
        self.points_plot: pg.PlotWidget | None = None
        self.counts_plot: pg.PlotWidget | None = None
        self.count_bars: pg.BarGraphItem | None = None

    def _ensure_plots(self) -> None:
        if self.points_plot is not None:
            return
        self.points_plot = pg.PlotWidget()
        self.points_plot.setFixedHeight(200)
        self.points_plot.getPlotItem().setMenuEnabled(False)
        self.points_plot.getPlotItem().showGrid(x=True, y=True, alpha=0.12)
        self.points = pg.ScatterPlotItem(size=5, pen=None)
        self.points_plot.addItem(self.points)
        self.points_plot.hide()
        self.plots_host.addWidget(self.points_plot)
        self.counts_plot = pg.PlotWidget()
        self.counts_plot.setFixedHeight(120)
        cp = self.counts_plot.getPlotItem()
        cp.setMenuEnabled(False)
        cp.hideButtons()
        cp.setTitle("samples per class", size="8pt")
        self.counts_title = "samples per class"
        cp.getViewBox().setMouseEnabled(x=False, y=False)
        self.count_bars = pg.BarGraphItem(x0=0, y=[], width=[], height=0.7, brush=BLUE, pen=None)
        self.counts_plot.addItem(self.count_bars)
        self.counts_plot.hide()
        self.plots_host.addWidget(self.counts_plot)

    def clear(self) -> None:
        while self.grid.count():
            it = self.grid.takeAt(0)
            if it.widget() is not None:
                it.widget().hide()  # at once: deleteLater waits for the event loop
                it.widget().deleteLater()
        if self.points_plot is not None:
            self.points_plot.hide()
            self.counts_plot.hide()

    def show_dataset(self, ds: Dataset) -> None:
        self._ensure_plots()
        self.clear()
        if is_segmentation(ds):
            self._masks(ds)
        elif ds.is_image:
            self._images(ds)
        elif ds.x.ndim == 2 and ds.x.shape[1] in (1, 2):
            self._points(ds)
        else:
            rows = [", ".join(f"{v:.3g}" for v in np.ravel(ds.x[i])[:8])
                    + (" …" if np.size(ds.x[i]) > 8 else "") + f"  → {sample_label(ds, i)}"
                    for i in range(min(6, len(ds)))]
            lab = QLabel("<br>".join(rows))
            lab.setStyleSheet("font-family: 'DejaVu Sans Mono'; font-size: 8pt;")
            self.grid.addWidget(lab, 0, 0)
        self._counts(ds)

    def _masks(self, ds: Dataset) -> None:
        """Each sample as its image and, beside it, the image under its coloured mask."""
        cell_w = 2 * THUMB_PX + 12
        for n in range(min(len(ds), SEG_PREVIEW_MAX)):
            img = sample_image(ds.x[n])
            cell = QWidget()
            cell.setObjectName("maskSample")
            cell.setFixedWidth(cell_w)
            v = QVBoxLayout(cell)
            v.setContentsMargins(0, 0, 0, 0)
            v.setSpacing(0)
            row = QHBoxLayout()
            row.setSpacing(2)
            for rgb in (img, mask_overlay(img, ds.y[n])):
                pic = QLabel()
                pic.setPixmap(pixmap_of(rgb, THUMB_PX))
                row.addWidget(pic)
            v.addLayout(row)
            self._caption(v, classes_in(ds, n), cell, cell_w)
            r, c = divmod(n, SEG_COLUMNS)
            self.grid.addWidget(cell, r, c)

    def _caption(self, v: QVBoxLayout, name: str, cell: QWidget, cell_w: int) -> None:
        cap = QLabel()
        cap.setObjectName("sampleCaption")
        cap.setAlignment(Qt.AlignmentFlag.AlignCenter)
        cap.setStyleSheet("font-size: 7.5pt; color: #3C4350;")
        cap.setProperty("fullText", name)
        cap.ensurePolished()
        # a long class name ("automobile", "T-shirt/top") is cut to the cell, whole in
        # the tooltip, so the grid keeps its width in a narrow dock
        cap.setText(QFontMetrics(cap.font()).elidedText(name, Qt.TextElideMode.ElideRight,
                                                        cell_w))
        cell.setToolTip(name)
        v.addWidget(cap)

    def _images(self, ds: Dataset) -> None:
        cell_w = THUMB_PX + 8
        for n, i in enumerate(preview_indices(ds)):
            img = sample_image(ds.x[i])
            cell = QWidget()
            cell.setFixedWidth(cell_w)
            v = QVBoxLayout(cell)
            v.setContentsMargins(0, 0, 0, 0)
            v.setSpacing(0)
            pic = QLabel()
            pic.setPixmap(pixmap_of(img, THUMB_PX))
            pic.setAlignment(Qt.AlignmentFlag.AlignCenter)
            v.addWidget(pic)
            self._caption(v, sample_label(ds, i), cell, cell_w)
            r, c = divmod(n, COLUMNS)
            self.grid.addWidget(cell, r, c)

    def _points(self, ds: Dataset) -> None:
        n = min(len(ds), 2000)
        pi = self.points_plot.getPlotItem()
        if ds.x.shape[1] == 2:
            lab = np.asarray(ds.y[:n]).reshape(n, -1)[:, 0].astype(int) \
                if ds.task == "classification" else np.zeros(n, int)
            self.points.setData(x=ds.x[:n, 0], y=ds.x[:n, 1],
                                brush=[pg.mkBrush(*class_color(k)) for k in lab])
            pi.setAspectLocked(True)
        else:
            yv = np.asarray(ds.y[:n], float).reshape(n, -1)[:, 0] if ds.y is not None \
                else np.zeros(n)
            self.points.setData(x=ds.x[:n, 0], y=yv, brush=pg.mkBrush(47, 111, 219, 160))
            pi.setAspectLocked(False)
        pi.enableAutoRange()
        self.points_plot.show()

    def _counts(self, ds: Dataset) -> None:
        """One horizontal bar per class, its name on the left (long names such as
        "T-shirt/top" or "automobile" stay readable in a narrow dock)."""
        counts = ds.class_counts()
        if not len(counts):
            return
        n = len(counts)
        self.counts_title = "pixels per class" if is_segmentation(ds) else "samples per class"
        self.counts_plot.getPlotItem().setTitle(self.counts_title, size="8pt")
        self.count_bars.setOpts(x0=0, y=np.arange(n), width=counts, height=0.7, x=None,
                                brushes=[pg.mkBrush(*class_color(k)) for k in range(n)])
        names = [ds.class_name(k) for k in range(n)]
        pi = self.counts_plot.getPlotItem()
        left = pi.getAxis("left")
        if n <= MAX_NAMED_BARS:
            short = [nm if len(nm) <= 12 else nm[:11] + "…" for nm in names]
            left.setTicks([list(enumerate(short))])
            labels = short
        else:  # too many to name: numbered, the names in the tooltip
            left.setTicks(None)
            labels = [str(n)]
        # the axis as wide as its longest name now (it would only widen after a repaint)
        fm = QFontMetrics(left.style.get("tickFont") or self.counts_plot.font())
        left.setWidth(max(fm.horizontalAdvance(t) for t in labels) + 14)
        self.counts_plot.setFixedHeight(int(np.clip(34 + BAR_ROW_PX * n, 90, 320)))
        pi.setXRange(0, max(1, int(counts.max())) * 1.05, padding=0)
        pi.setYRange(-0.6, n - 0.4, padding=0)
        pi.getViewBox().invertY(True)  # the first class on top, as in the grid above
        self.counts_plot.setToolTip("\n".join(f"{nm}: {c}" for nm, c in zip(names, counts)))
        self.counts_plot.show()
