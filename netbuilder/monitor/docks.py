"""The monitor's docks and where they go: the Training and Data panels beside the inspector,
Runs beside the summary, and the plots under the canvas (curves, feature maps, filters side
by side; gradients, data fit, mistakes, inputs vs outputs and the confusion matrix a tab
away), so that curves, feature maps and filters are in view together at 1600×1000."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QEvent, QObject, Qt, QTimer
from PySide6.QtWidgets import QDockWidget, QMainWindow, QTabBar, QWidget

from .confusion import ConfusionView, GalleryView
from .curves import CurvesView
from .feature_maps import FeatureMapView
from .filters import FilterView
from .histograms import GradientsView
from .pairs import PairsView
from .regions import DataFitView

if TYPE_CHECKING:
    from ..mainwindow import MainWindow

Area = Qt.DockWidgetArea


def hide_stale_tab_bars(window: QMainWindow) -> int:
    """Hide dock tab bars Qt left behind (Qt 6.11 shows the old bar of a tab group that grew
    before the window was first shown). A bar is kept when one of its docks sits right
    above it, as wide as it; returns how many were hidden."""
    docks = [d for d in window.findChildren(QDockWidget) if d.isVisible()]
    hidden = 0
    for bar in window.findChildren(QTabBar):
        if bar.parent() is not window or not bar.isVisible():
            continue
        titles = {bar.tabText(i) for i in range(bar.count())}
        g = bar.geometry()
        if not any(d.windowTitle() in titles and abs(d.geometry().x() - g.x()) <= 3
                   and abs(d.geometry().width() - g.width()) <= 3 for d in docks):
            bar.hide()
            hidden += 1
    return hidden


def make_dock(window: MainWindow, title: str, name: str, widget: QWidget) -> QDockWidget:
    d = QDockWidget(title, window)
    d.setObjectName(name)
    d.setWidget(widget)
    d.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable
                  | QDockWidget.DockWidgetFeature.DockWidgetClosable
                  | QDockWidget.DockWidgetFeature.DockWidgetFloatable)
    return d


class MonitorDocks:
    """Creates the monitor views and docks them into ``window``."""

    def __init__(self, window: MainWindow, training: QWidget, data: QWidget,
                 runs: QWidget) -> None:
        self.w = window
        w = window
        self.training = make_dock(w, "Training", "trainingDock", training)
        self.data = make_dock(w, "Data", "dataDock", data)
        self.runs = make_dock(w, "Runs", "runsDock", runs)
        self.plots: dict[str, QDockWidget] = {}
        w.setCorner(Qt.Corner.BottomRightCorner, Area.RightDockWidgetArea)
        w.setCorner(Qt.Corner.BottomLeftCorner, Area.BottomDockWidgetArea)
        w.add_dock(self.training, Area.RightDockWidgetArea, tabify_with=w.inspector_dock)
        w.add_dock(self.data, Area.RightDockWidgetArea, tabify_with=self.training)
        w.add_dock(self.runs, Area.RightDockWidgetArea, tabify_with=w.history_dock)
        w.inspector_dock.raise_()
        w.summary_dock.raise_()
        self.docked = False  # the plots join the window when first shown
        self.shown = False
        self._tidy = QTimer(w)
        self._tidy.setSingleShot(True)
        self._tidy.setInterval(0)
        self._tidy.timeout.connect(lambda: hide_stale_tab_bars(w))
        w.installEventFilter(self._filter_host(w))
        for d in (self.training, self.data, self.runs):
            self._watch(d)

    def _watch(self, d: QDockWidget) -> None:
        d.dockLocationChanged.connect(lambda _a: self._tidy.start())
        d.topLevelChanged.connect(lambda _t: self._tidy.start())

    @property
    def built(self) -> bool:
        return bool(self.plots)

    def build(self) -> None:
        """Create the plot views and their docks (on first use: they cost start-up time)."""
        if self.plots:
            return
        w = self.w
        self.curves = CurvesView()
        self.maps = FeatureMapView()
        self.filters = FilterView()
        self.grads = GradientsView()
        self.confusion = ConfusionView()
        self.gallery = GalleryView()
        self.fit = DataFitView()
        self.pairs = PairsView()
        self.plots = {
            "curves": make_dock(w, "Training Curves", "curvesDock", self.curves),
            "maps": make_dock(w, "Feature Maps", "featureMapsDock", self.maps),
            "filters": make_dock(w, "Filters", "filtersDock", self.filters),
            "grads": make_dock(w, "Gradients", "gradientsDock", self.grads),
            "fit": make_dock(w, "Data Fit", "dataFitDock", self.fit),
            "gallery": make_dock(w, "Mistakes", "mistakesDock", self.gallery),
            "pairs": make_dock(w, "Input vs Output", "pairsDock", self.pairs),
            "confusion": make_dock(w, "Confusion Matrix", "confusionDock", self.confusion),
        }
        for d in self.plots.values():
            self._watch(d)

    def _filter_host(self, w: QMainWindow) -> QObject:
        tidy = self._tidy

        class ShowFilter(QObject):
            def eventFilter(self, obj: QObject, ev: QEvent) -> bool:
                if ev.type() == QEvent.Type.Show:
                    tidy.start()
                return False
        self._show_filter = ShowFilter(w)
        return self._show_filter

    def _dock_plots(self) -> None:
        w, p = self.w, self.plots
        w.add_dock(p["curves"], Area.BottomDockWidgetArea)
        w.splitDockWidget(p["curves"], p["maps"], Qt.Orientation.Horizontal)
        w.splitDockWidget(p["maps"], p["filters"], Qt.Orientation.Horizontal)
        w.add_dock(p["grads"], Area.BottomDockWidgetArea, tabify_with=p["curves"])
        w.add_dock(p["fit"], Area.BottomDockWidgetArea, tabify_with=p["maps"])
        w.add_dock(p["gallery"], Area.BottomDockWidgetArea, tabify_with=p["filters"])
        w.add_dock(p["pairs"], Area.BottomDockWidgetArea, tabify_with=p["filters"])
        w.add_dock(p["confusion"], Area.RightDockWidgetArea, tabify_with=self.runs)
        self.docked = True

    def views(self) -> list[QWidget]:
        return [self.curves, self.maps, self.filters, self.grads, self.confusion, self.gallery,
                self.fit, self.pairs]

    def visible(self, key: str) -> bool:
        d = self.plots.get(key)
        return self.docked and d is not None and d.isVisible() \
            and not d.visibleRegion().isEmpty()

    def show_monitor(self, front: tuple[str, ...] = ("curves", "maps", "filters",
                                                     "confusion")) -> None:
        """Show every plot, bring ``front`` to the top of its tab stack, and size the
        bottom row (first time only: later the user's arrangement stays)."""
        w = self.w
        self.build()
        p = self.plots
        if not self.docked:
            self._dock_plots()
        for d in p.values():
            if d.isHidden():
                d.show()
        extra = {"runs": self.runs, "data": self.data}
        for key in front:
            d = p.get(key) or extra.get(key)
            if d is not None:
                d.raise_()
        self.training.raise_()
        if not self.shown:
            self.shown = True
            width = max(900, w.width() - 420)
            w.resizeDocks([p["curves"], p["maps"], p["filters"]],
                          [int(width * 0.38), int(width * 0.35), int(width * 0.27)],
                          Qt.Orientation.Horizontal)
            w.resizeDocks([p["curves"]], [max(300, int(w.height() * 0.42))],
                          Qt.Orientation.Vertical)
            w.resizeDocks([self.training, p["confusion"]],
                          [int(w.height() * 0.55), int(w.height() * 0.35)],
                          Qt.Orientation.Vertical)
        self._tidy.start()
