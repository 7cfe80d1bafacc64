"""Training curves: loss per batch (raw and smoothed) with the per-epoch training and
validation loss, accuracy per epoch (for segmentation: pixel accuracy and mean IoU), and the
learning rate; other runs of the same model can be drawn behind the current one to compare."""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtWidgets import QCheckBox, QWidget

from ..session.runs import RunRecord
from .common import (
    BLUE,
    GREEN,
    ORANGE,
    PURPLE,
    TEXT,
    CompactAxis,
    MonitorPanel,
    RangeKeeper,
    nice_ceil,
    run_color,
    set_title_legend,
)

ONE_ROW_BELOW = 200  # px of plot height: lower than this, the plots sit in one row
SMOOTH = 0.9  # weight of the exponential moving average (debiased, as TensorBoard's)


def smooth(values: np.ndarray, weight: float = SMOOTH, state: tuple[float, int] = (0.0, 0)
           ) -> tuple[np.ndarray, tuple[float, int]]:
    """Debiased EMA of ``values`` continuing from ``state`` (sum, count); NaNs are skipped."""
    s, t = state
    out = np.empty(len(values))
    for i, v in enumerate(values):
        if math.isfinite(v):
            s = weight * s + (1 - weight) * v
            t += 1
        out[i] = s / (1 - weight ** t) if t else math.nan
    return out, (s, t)


class _Smoothed:
    """The smoothed loss of one run, extended as batches arrive."""

    def __init__(self) -> None:
        self.values = np.empty(0)
        self.state = (0.0, 0)

    def update(self, losses: np.ndarray) -> np.ndarray:
        n = len(self.values)
        if len(losses) < n:
            self.values, self.state, n = np.empty(0), (0.0, 0), 0
        if len(losses) > n:
            more, self.state = smooth(losses[n:], state=self.state)
            self.values = np.concatenate([self.values, more])
        return self.values


class CurvesView(MonitorPanel):
    """Loss / accuracy / learning-rate plots of the current run and overlaid runs."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Training curves", parent)
        self.run: RunRecord | None = None
        self.overlays: list[RunRecord] = []
        self._smooth: dict[int, _Smoothed] = {}
        self.log_box = QCheckBox("log loss")
        self.log_box.setToolTip("Logarithmic loss axis")
        self.log_box.toggled.connect(self._set_log)
        self.add_control(self.log_box)
        self.glw = pg.GraphicsLayoutWidget()
        self.glw.setMinimumSize(240, 150)  # 200 made a 1024×700 window taller than the screen
        self.body.addWidget(self.glw, 1)
        def axes() -> dict[str, CompactAxis]:
            return {"bottom": CompactAxis("bottom"), "left": CompactAxis("left")}
        self.loss_plot = self.glw.addPlot(row=0, col=0, colspan=2, axisItems=axes())
        self.acc_plot = self.glw.addPlot(row=1, col=0, axisItems=axes())
        self.lr_plot = self.glw.addPlot(row=1, col=1, axisItems=axes())
        self.accuracy_shown = True
        self.one_row = False  # a low dock: loss, accuracy and lr side by side (see _place)
        for p, bottom in ((self.loss_plot, "step"), (self.acc_plot, "epoch"),
                          (self.lr_plot, "step")):
            p.setLabel("bottom", bottom)
            p.showGrid(x=True, y=True, alpha=0.15)
            p.setMenuEnabled(False)
            p.getAxis("left").setWidth(44)
        # legends as title lines: above the data, never over a curve
        set_title_legend(self.loss_plot, "Loss", [
            ("batch", "rgba(47,111,219,0.45)", "━"), ("smoothed", BLUE, "━"),
            ("train", GREEN, "●"), ("validation", ORANGE, "■")])
        set_title_legend(self.acc_plot, "Accuracy", [("train", GREEN, "●"),
                                                     ("validation", ORANGE, "■")])
        set_title_legend(self.lr_plot, "Learning rate", [])
        self.glw.installEventFilter(self)  # shorter titles when the plots get narrow
        self.acc_plot.getViewBox().setLimits(yMin=-0.05, yMax=1.05)
        raw_pen = pg.mkPen(color=(47, 111, 219, 90), width=1)
        self.raw_curve = self.loss_plot.plot(pen=raw_pen, name="batch")
        self.smooth_curve = self.loss_plot.plot(pen=pg.mkPen(BLUE, width=2), name="smoothed")
        self.train_curve = self.loss_plot.plot(pen=pg.mkPen(GREEN, width=1.5), symbol="o",
                                               symbolSize=5, symbolBrush=GREEN,
                                               symbolPen=None, name="train (epoch)")
        self.val_curve = self.loss_plot.plot(pen=pg.mkPen(ORANGE, width=2), symbol="s",
                                             symbolSize=6, symbolBrush=ORANGE, symbolPen=None,
                                             name="validation")
        for c in (self.raw_curve, self.smooth_curve):
            c.setClipToView(True)
            c.setDownsampling(auto=True, method="peak")
        self.acc_train = self.acc_plot.plot(pen=pg.mkPen(GREEN, width=1.5), symbol="o",
                                            symbolSize=5, symbolBrush=GREEN, symbolPen=None,
                                            name="train")
        self.acc_val = self.acc_plot.plot(pen=pg.mkPen(ORANGE, width=2), symbol="s",
                                          symbolSize=6, symbolBrush=ORANGE, symbolPen=None,
                                          name="validation")
        dash = Qt.PenStyle.DashLine
        self.iou_train = self.acc_plot.plot(pen=pg.mkPen(GREEN, width=1.5, style=dash),
                                            symbol="t", symbolSize=6, symbolBrush=GREEN,
                                            symbolPen=None, name="train IoU")
        self.iou_val = self.acc_plot.plot(pen=pg.mkPen(ORANGE, width=2, style=dash),
                                          symbol="t", symbolSize=7, symbolBrush=ORANGE,
                                          symbolPen=None, name="validation IoU")
        self.segmentation = False
        self.lr_curve = self.lr_plot.plot(pen=pg.mkPen(PURPLE, width=1.5))
        self.lr_curve.setClipToView(True)
        self.lr_curve.setDownsampling(auto=True, method="peak")
        self._overlay_items: list[tuple[pg.PlotItem, pg.PlotDataItem]] = []
        self._place()
        self.ranges = {k: RangeKeeper(p) for k, p in (("loss", self.loss_plot),
                                                       ("acc", self.acc_plot),
                                                       ("lr", self.lr_plot))}
        self.show_placeholder("Press Start in the Training panel: the loss appears here batch "
                              "by batch.", self.glw)
        pen = pg.mkPen("#6B7280", width=1, style=Qt.PenStyle.DashLine)
        self.markers = {}  # the epoch the timeline shows: a line on the loss and accuracy
        for key, plot in (("step", self.loss_plot), ("epoch", self.acc_plot),
                          ("lr", self.lr_plot)):
            line = pg.InfiniteLine(angle=90, movable=False, pen=pen)
            line.hide()
            plot.addItem(line, ignoreBounds=True)
            self.markers[key] = line

    def set_marker(self, epoch: int | None, step: int | None) -> None:
        """Mark the epoch the timeline went back to (ended at batch ``step``); None: Live."""
        for key, line in self.markers.items():
            x = epoch if key == "epoch" else step
            line.setVisible(x is not None)
            if x is not None:
                line.setValue(x)

    # ----- data ----------------------------------------------------------------------------
    def set_run(self, run: RunRecord | None) -> None:
        if run is not self.run:
            for k in self.ranges.values():
                k.reset()
        self.run = run
        self.refresh()

    def _keep_ranges(self, run: RunRecord, sm: np.ndarray) -> None:
        """Ranges that grow in steps of 1, 2, 2.5, 5 × 10^k: the axes redraw rarely."""
        runs = [run, *self.overlays]
        last = max([int(r.steps.values[-1]) + r.step_offset for r in runs if len(r.steps)]
                   + [1])
        x1 = nice_ceil(1.02 * last)
        if self.log_box.isChecked():
            self.loss_plot.enableAutoRange()
        else:
            tops = [float(np.nanmax(sm)) if np.isfinite(sm).any() else 0.0]
            tops += [e.val_loss for r in runs for e in r.epochs
                     if e.val_loss is not None and math.isfinite(e.val_loss)]
            self.ranges["loss"].set(0, x1, 0, nice_ceil(1.1 * max(tops)))
        epochs = max(len(r.epochs) + r.epoch_offset for r in runs)
        self.ranges["acc"].set(0.5, nice_ceil(max(epochs, 1)) + 0.5, 0, 1.02)
        lrs = run.lrs.values
        top = float(np.nanmax(lrs)) if len(lrs) and np.isfinite(lrs).any() else 1.0
        self.ranges["lr"].set(0, x1, 0, nice_ceil(1.05 * top))

    def set_overlays(self, runs: list[RunRecord]) -> None:
        self.overlays = [r for r in runs if r is not self.run]
        self._draw_overlays()
        if self.run is not None:
            self.refresh()

    def _smoothed(self, run: RunRecord) -> np.ndarray:
        sm = self._smooth.setdefault(run.number, _Smoothed())
        return sm.update(run.losses.values)

    def refresh(self) -> None:
        run = self.run
        if run is None or (len(run.steps) == 0 and not run.epochs):
            for c in (self.raw_curve, self.smooth_curve, self.train_curve, self.val_curve,
                      self.acc_train, self.acc_val, self.iou_train, self.iou_val,
                      self.lr_curve):
                c.setData([], [])
            self.show_placeholder("Press Start in the Training panel: the loss appears here "
                                  "batch by batch.", self.glw)
            self.info.setText("")
            return
        self.show_placeholder(None, self.glw)
        self.show_accuracy(has_accuracy(run))
        x = run.steps.values + run.step_offset  # a branch continues its parent's steps
        y = run.losses.values
        fin = np.isfinite(y)
        if self.log_box.isChecked():
            fin &= y > 0
        self.raw_curve.setData(x[fin], y[fin])
        sm = self._smoothed(run)
        ok = np.isfinite(sm) & ((sm > 0) if self.log_box.isChecked() else True)
        self.smooth_curve.setData(x[ok], sm[ok])
        self.lr_curve.setData(x, run.lrs.values)
        ep = run.epochs
        es = np.array([e.step + run.step_offset for e in ep], float)
        tl = np.array([_nan(e.train_loss) for e in ep])
        vl = np.array([_nan(e.val_loss) for e in ep])
        self.train_curve.setData(es[np.isfinite(tl)], tl[np.isfinite(tl)])
        self.val_curve.setData(es[np.isfinite(vl)], vl[np.isfinite(vl)])
        en = np.array([e.epoch + run.epoch_offset for e in ep], float)
        ta = np.array([_nan(e.train_accuracy) for e in ep])
        va = np.array([_nan(e.val_accuracy) for e in ep])
        self.acc_train.setData(en[np.isfinite(ta)], ta[np.isfinite(ta)])
        self.acc_val.setData(en[np.isfinite(va)], va[np.isfinite(va)])
        ti = np.array([_nan(e.train_iou) for e in ep])
        vi = np.array([_nan(e.val_iou) for e in ep])
        self.iou_train.setData(en[np.isfinite(ti)], ti[np.isfinite(ti)])
        self.iou_val.setData(en[np.isfinite(vi)], vi[np.isfinite(vi)])
        seg = bool(np.isfinite(ti).any() or np.isfinite(vi).any())
        if seg != self.segmentation:
            self.segmentation = seg
            self._fit_titles()
        self._keep_ranges(run, sm[ok])
        parts = [f"<b style='color:{TEXT}'>{run.name}</b>", run.describe_settings()]
        if len(y):
            parts.append(f"loss {y[-1]:.4g}" if math.isfinite(y[-1]) else "loss NaN")
        if ep and ep[-1].val_accuracy is not None:
            parts.append(f"val {'pixel ' if seg else ''}acc {100 * ep[-1].val_accuracy:.1f} %")
        if ep and ep[-1].val_iou is not None:
            parts.append(f"val mIoU {ep[-1].val_iou:.3f}")
        self.info.setText(" · ".join(parts))

    def eventFilter(self, obj: QObject, ev: QEvent) -> bool:
        if obj is self.glw and ev.type() == QEvent.Type.Resize:
            h, w = self.glw.height(), self.glw.width()
            one_row = h < ONE_ROW_BELOW and w >= 1.5 * h
            if one_row != self.one_row:
                self.one_row = one_row
                self._place()
            self._fit_titles()
        return False

    def _place(self) -> None:
        """Loss above, accuracy and learning rate below it; in a low dock (a 1024×700 window's
        Monitor), where stacked plots left no height for data, loss and accuracy side by side
        (or loss and learning rate for runs without an accuracy)."""
        lay = self.glw.ci
        for p in (self.loss_plot, self.acc_plot, self.lr_plot):
            if p in lay.items:
                lay.removeItem(p)
        grid = lay.layout
        acc = self.accuracy_shown
        if self.one_row:  # the learning rate is in the Training panel's status line
            lay.addItem(self.loss_plot, row=0, col=0)
            lay.addItem(self.acc_plot if acc else self.lr_plot, row=0, col=1)
            grid.setRowStretchFactor(0, 1)
            grid.setRowStretchFactor(1, 0)
        else:
            lay.addItem(self.loss_plot, row=0, col=0, colspan=2)
            if acc:
                lay.addItem(self.acc_plot, row=1, col=0)
                lay.addItem(self.lr_plot, row=1, col=1)
            else:
                lay.addItem(self.lr_plot, row=1, col=0, colspan=2)
            grid.setRowStretchFactor(0, 3)
            grid.setRowStretchFactor(1, 2)
        self.acc_plot.setVisible(acc)
        self.lr_plot.setVisible(not (self.one_row and acc))

    def _fit_titles(self) -> None:
        narrow = (self.glw.width() < 460 and self.accuracy_shown) or self.one_row
        if self.one_row:  # titles no wider than half the dock
            set_title_legend(self.loss_plot, "Loss", [("smoothed", BLUE, "━"),
                                                      ("val", ORANGE, "■")])
        else:
            set_title_legend(self.loss_plot, "Loss", [
                ("batch", "rgba(47,111,219,0.45)", "━"), ("smoothed", BLUE, "━"),
                ("train", GREEN, "●"), ("validation", ORANGE, "■")])
        set_title_legend(self.lr_plot, "lr" if narrow else "Learning rate", [])
        if self.segmentation:  # pixel accuracy (solid) and mean IoU (dashed, triangles)
            set_title_legend(self.acc_plot, "Pixel acc." if narrow else "Pixel accuracy",
                             [("train", GREEN, "●"), ("val", ORANGE, "■"),
                              ("mIoU" if narrow else "mean IoU", ORANGE, "▲")])
            return
        set_title_legend(self.acc_plot, "Acc." if narrow else "Accuracy",
                         [("train", GREEN, "●"), ("val" if narrow else "validation", ORANGE,
                                                  "■")])

    def show_accuracy(self, on: bool) -> None:
        """The Accuracy plot only for runs that measure one (not e.g. an autoencoder's mse):
        without it the learning rate takes the whole row."""
        if on == self.accuracy_shown:
            return
        self.accuracy_shown = on
        self._place()
        self._fit_titles()

    def _draw_overlays(self) -> None:
        for plot, it in self._overlay_items:
            plot.removeItem(it)
        self._overlay_items = []
        for r in self.overlays:
            color = pg.mkColor(run_color(r.number))
            pen = pg.mkPen(color, width=1.5, style=Qt.PenStyle.DashLine)
            if len(r.steps):
                sm = self._smoothed(r)
                xs = r.steps.values + r.step_offset
                it = pg.PlotDataItem(xs, sm, pen=pen)
                it.setZValue(-5)
                self.loss_plot.addItem(it)
                self._overlay_items.append((self.loss_plot, it))
                lr = pg.PlotDataItem(xs, r.lrs.values, pen=pen)
                lr.setZValue(-5)
                self.lr_plot.addItem(lr)
                self._overlay_items.append((self.lr_plot, lr))
            va = [(e.epoch + r.epoch_offset,
                   e.val_accuracy if e.val_accuracy is not None else e.train_accuracy)
                  for e in r.epochs]
            va = [(a, b) for a, b in va if b is not None]
            if va:
                it = pg.PlotDataItem([a for a, _ in va], [b for _, b in va], pen=pen,
                                     symbol="t", symbolSize=5, symbolBrush=color, symbolPen=None)
                it.setZValue(-5)
                self.acc_plot.addItem(it)
                self._overlay_items.append((self.acc_plot, it))
        names = ", ".join(f"<span style='color:{run_color(r.number)}'>{r.name}</span>"
                          for r in self.overlays)
        self.setToolTip(f"Dashed: {names}" if names else "")
        if self.overlays:
            self.show_placeholder(None, self.glw)

    def _set_log(self, on: bool) -> None:
        self.loss_plot.setLogMode(y=on)
        self.ranges["loss"].reset()
        self.refresh()

    # ----- export --------------------------------------------------------------------------
    def png_widget(self) -> QWidget:
        return self.glw

    def csv_table(self) -> tuple[list[str], list[list[object]]]:
        run = self.run
        header = ["run", "step", "batch_loss", "smoothed_loss", "batch_accuracy", "lr",
                  "epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy",
                  "train_iou", "val_iou"]
        rows: list[list[object]] = []
        for r in ([run] if run is not None else []) + self.overlays:
            sm = self._smoothed(r)
            by_step = {e.step: e for e in r.epochs}
            for i, s in enumerate(r.steps.values):
                e = by_step.get(int(s))
                rows.append([r.number, int(s), float(r.losses.values[i]), float(sm[i]),
                             float(r.accuracies.values[i]), float(r.lrs.values[i]),
                             *([e.epoch, e.train_loss, e.train_accuracy, e.val_loss,
                                e.val_accuracy, e.train_iou, e.val_iou] if e else [None] * 7)])
        return header, rows


def has_accuracy(run: RunRecord) -> bool:
    """True when ``run`` measures an accuracy (a classification head)."""
    if any(e.train_accuracy is not None or e.val_accuracy is not None for e in run.epochs):
        return True
    acc = run.accuracies.values
    return bool(len(acc)) and bool(np.isfinite(acc).any())


def _nan(v: float | None) -> float:
    return math.nan if v is None else float(v)
