"""The monitor's docks: the Training, Data and Runs panels and, built on first use (they cost
start-up time), one dock per plot view. Where they go is netbuilder.docklayout's business;
``show_monitor`` switches the window to its Monitor arrangement and brings views to the
front. View ▸ Panels lists every plot from the start: picking one before the plots exist
builds them."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from PySide6.QtGui import QAction
from PySide6.QtWidgets import QDockWidget, QWidget

from ..docklayout import MONITOR
from .attention import AttentionView
from .confusion import ConfusionView, GalleryView
from .curves import CurvesView
from .feature_maps import FeatureMapView
from .filters import FilterView
from .histograms import GradientsView
from .pairs import PairsView
from .regions import DataFitView

if TYPE_CHECKING:
    from ..mainwindow import MainWindow

# key: (dock title, object name); the order of View ▸ Panels and of the tabs
PLOT_DOCKS = {
    "curves": ("Training Curves", "curvesDock"),
    "grads": ("Gradients", "gradientsDock"),
    "maps": ("Feature Maps", "featureMapsDock"),
    "filters": ("Filters", "filtersDock"),
    "fit": ("Data Fit", "dataFitDock"),
    "pairs": ("Input vs Output", "pairsDock"),
    "attention": ("Attention", "attentionDock"),
    "confusion": ("Confusion", "confusionDock"),
    "gallery": ("Mistakes", "mistakesDock"),
}


def make_dock(window: MainWindow, title: str, name: str, widget: QWidget) -> QDockWidget:
    d = QDockWidget(title, window)
    d.setObjectName(name)
    d.setWidget(widget)
    d.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable
                  | QDockWidget.DockWidgetFeature.DockWidgetClosable
                  | QDockWidget.DockWidgetFeature.DockWidgetFloatable)
    return d


class MonitorDocks:
    """Creates the monitor panels' docks and the plot views. ``ensure_views`` builds the
    views with everything they are wired to (the presenter's), when View ▸ Panels asks for
    a plot before they exist."""

    def __init__(self, window: MainWindow, training: QWidget, data: QWidget,
                 runs: QWidget, ensure_views: Callable[[], None] | None = None) -> None:
        self.w = window
        self.ensure_views = ensure_views or self.build
        w = window
        self.training = make_dock(w, "Training", "trainingDock", training)
        self.data = make_dock(w, "Data", "dataDock", data)
        self.runs = make_dock(w, "Runs", "runsDock", runs)
        for d in (self.training, self.data, self.runs):
            w.add_dock(d)
        self.plots: dict[str, QDockWidget] = {}
        self.shown = False  # the monitor was shown once
        w.panels_menu.addSection("Monitor")
        self._stand_ins: dict[str, QAction] = {}
        for key, (title, _name) in PLOT_DOCKS.items():
            a = w.panels_menu.addAction(title)
            a.setCheckable(True)
            a.triggered.connect(lambda _on=False, key=key: self._open_view(key))
            self._stand_ins[key] = a

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
        self.attention = AttentionView()
        views = {"curves": self.curves, "grads": self.grads, "maps": self.maps,
                 "filters": self.filters, "fit": self.fit, "pairs": self.pairs,
                 "attention": self.attention, "confusion": self.confusion,
                 "gallery": self.gallery}
        for key, (title, name) in PLOT_DOCKS.items():
            dock = make_dock(w, title, name, views[key])
            self.plots[key] = dock
            stand_in = self._stand_ins.pop(key)
            real = dock.toggleViewAction()
            w.panels_menu.insertAction(stand_in, real)
            w.panels_menu.removeAction(stand_in)
            stand_in.deleteLater()
            w.layouts.place(dock)

    def _open_view(self, key: str) -> None:
        """View ▸ Panels picked a plot before the plots existed: build them, show it."""
        self.ensure_views()
        dock = self.plots[key]
        dock.show()
        dock.raise_()

    def views(self) -> list[QWidget]:
        return [self.curves, self.maps, self.filters, self.grads, self.confusion, self.gallery,
                self.fit, self.pairs, self.attention]

    def visible(self, key: str) -> bool:
        """True when the view ``key`` is on screen (not closed, not behind another tab)."""
        d = self.plots.get(key)
        return d is not None and d.isVisible() and not d.visibleRegion().isEmpty()

    def has_content(self, key: str) -> bool:
        """False for a view that has nothing to show for the model (no Conv2D for the
        Filters, no MultiHeadAttention for the Attention, no pair node for Input vs Output)."""
        if key == "filters":
            return self.filters.conv is not None
        if key == "attention":
            return self.attention.node is not None
        if key == "pairs":
            return self.pairs.node is not None
        return True

    def show_monitor(self, front: tuple[str, ...] = ("curves", "maps", "filters",
                                                     "confusion")) -> None:
        """Switch to the Monitor arrangement and bring the views ``front`` (plot keys, or
        "runs" / "data") to the top of their tab groups; views the user closed stay closed."""
        self.build()
        self.w.layouts.set_mode(MONITOR)
        extra = {"runs": self.runs, "data": self.data}
        for key in front:
            if not self.has_content(key):
                continue  # the Filters of a model without Conv2D would say just that
            d = self.plots.get(key) or extra.get(key)
            if d is not None and not d.isHidden():
                d.raise_()
        if "confusion" not in front and "gallery" not in front \
                and not self.w.summary_dock.isHidden():
            self.w.summary_dock.raise_()  # nothing to classify: the summary in their place
        self.training.raise_()
        self.shown = True
