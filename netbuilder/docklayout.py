"""Where the panels go: two arrangements of the same docks, one per task.

Build: the layer palette on the left, the canvas, and on the right the inspector (with the
Training and Data settings a tab away) over the model summary, history and runs.

Monitor (Start switches to it): the canvas becomes a column on the left (a top-to-bottom
graph fits a tall column, and its live badges sit beside the cards), the plots fill the
middle in two tab groups (curves and gradients above; feature maps, filters, data fit and
inputs vs outputs below), and the right column holds Training, Data and Runs above the
confusion matrix, the mistakes and the model summary. The palette, inspector and history
wait a click away (View ▸ Panels): the model is locked while it trains.

Each arrangement is kept apart when the user changes it and saved across launches
(QSettings, tagged with LAYOUT_VERSION so a state saved by an older layout is ignored);
View ▸ Reset Layout brings back the default."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from PySide6.QtCore import QByteArray, QEvent, QObject, Qt, QTimer, Signal
from PySide6.QtWidgets import QDockWidget, QMainWindow, QTabBar

from . import settings

if TYPE_CHECKING:
    from .mainwindow import MainWindow

LAYOUT_VERSION = 4  # bump when the default arrangements or dock names change
BUILD, MONITOR = "build", "monitor"
MODES = (BUILD, MONITOR)
Area = Qt.DockWidgetArea


@dataclass(frozen=True)
class Group:
    """Docks stacked as tabs, in this order; ``hidden`` ones are placed in the group but
    closed, so that View ▸ Panels opens them as a tab here."""

    docks: tuple[str, ...]
    hidden: tuple[str, ...] = ()
    share: float = 1.0  # of its column's height

    def front(self, docks: dict[str, QDockWidget]) -> QDockWidget | None:
        """The first dock of the group that exists and is not closed."""
        return next((docks[n] for n in self.docks if n in docks and not docks[n].isHidden()),
                    None)


@dataclass(frozen=True)
class Column:
    """Groups stacked top to bottom. ``width``: share of the window width, at least, at most
    (px); a share of 0 takes what the other columns and the canvas leave (at least ``lo``)."""

    groups: tuple[Group, ...]
    width: tuple[float, int, int]


@dataclass(frozen=True)
class Arrangement:
    left: tuple[Column, ...]
    right: tuple[Column, ...]
    canvas: tuple[float, int, int] = (0.0, 0, 0)  # as Column.width; given up first


PLOTS_TOP = ("curvesDock", "gradientsDock", "attentionDock")
PLOTS_BOTTOM = ("featureMapsDock", "filtersDock", "dataFitDock", "pairsDock")
EPOCH_VIEWS = ("confusionDock", "mistakesDock")
PLOTS = PLOTS_TOP + PLOTS_BOTTOM + EPOCH_VIEWS
SETTINGS_WIDTH = (0.28, 380, 440)  # the Training panel's form needs 380 px

ARRANGEMENTS = {
    BUILD: Arrangement(
        left=(Column((Group(("paletteDock",)),), (0.17, 190, 260)),),
        right=(Column((Group(("inspectorDock", "trainingDock", "dataDock"), share=0.62),
                       Group(("summaryDock", "historyDock", "runsDock", *PLOTS), hidden=PLOTS,
                             share=0.38)),
                      SETTINGS_WIDTH),)),
    MONITOR: Arrangement(
        left=(Column((Group(("paletteDock",), hidden=("paletteDock",)),), (0.17, 190, 260)),),
        right=(Column((Group(PLOTS_TOP, share=0.5), Group(PLOTS_BOTTOM, share=0.5)),
                      (0.0, 390, 4000)),
               Column((Group(("trainingDock", "dataDock", "runsDock", "inspectorDock",
                              "historyDock"), hidden=("inspectorDock", "historyDock"),
                             share=0.56),
                       Group((*EPOCH_VIEWS, "summaryDock"), share=0.44)),
                      SETTINGS_WIDTH)),
        canvas=(0.28, 250, 480)),
}


def hide_stale_tab_bars(window: QMainWindow) -> int:
    """Hide dock tab bars Qt left behind (Qt 6.11 shows the old bar of a tab group that was
    rearranged, or grew before the window was first shown). A bar is kept when the dock of
    its current tab sits right above it, as wide as it; returns how many were hidden. A
    bar hidden before its group had settled is shown again once it fits (two open docks
    or more, the current one right above it): else the group lost its tabs for good."""
    docks = [d for d in window.findChildren(QDockWidget) if d.isVisible()]
    hidden = 0
    for bar in window.findChildren(QTabBar):
        if bar.parent() is not window:
            continue
        titles = {bar.tabText(i) for i in range(bar.count())}
        g = bar.geometry()
        fits = any(d.windowTitle() in titles and abs(d.geometry().x() - g.x()) <= 3
                   and abs(d.geometry().width() - g.width()) <= 3
                   and abs(d.geometry().bottom() + 1 - g.top()) <= 3 for d in docks)
        if bar.isVisible() and not fits:
            bar.hide()
            hidden += 1
        elif not bar.isVisible() and fits and bar.count() > 1 and sum(
                not d.isHidden() and not d.isFloating() and d.windowTitle() in titles
                for d in window.findChildren(QDockWidget)) > 1:
            bar.show()
    return hidden


class DockLayouts(QObject):
    """The Build and Monitor arrangements of ``window``'s docks."""

    mode_changed = Signal(str)

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.w = window
        self.mode = BUILD
        self.states: dict[str, QByteArray] = {}
        self._sized = False  # the default sizes wait for the window's real size
        self._tidy = QTimer(self)
        self._tidy.setSingleShot(True)
        self._tidy.setInterval(0)
        self._tidy.timeout.connect(self.tidy)
        window.installEventFilter(self)
        for d in self.docks().values():
            self.watch(d)

    # ----- docks ---------------------------------------------------------------------------
    def docks(self) -> dict[str, QDockWidget]:
        return {d.objectName(): d for d in self.w.findChildren(QDockWidget)
                if d.parent() is self.w}

    def watch(self, dock: QDockWidget) -> None:
        """Tidy the tab bars after the user moves ``dock``."""
        dock.dockLocationChanged.connect(lambda _a: self._tidy.start())
        dock.topLevelChanged.connect(lambda _t: self._tidy.start())

    def tidy(self) -> None:
        hide_stale_tab_bars(self.w)
        for bar in self.w.findChildren(QTabBar):
            if bar.parent() is self.w:
                bar.setElideMode(Qt.TextElideMode.ElideNone)
                bar.setUsesScrollButtons(True)

    def eventFilter(self, obj: QObject, ev: QEvent) -> bool:
        if obj is self.w and ev.type() == QEvent.Type.Show:
            if not self._sized:
                self._sized = True
                QTimer.singleShot(0, self.apply_sizes)
            self._tidy.start()
        return False

    # ----- arranging -----------------------------------------------------------------------
    def arrange(self, mode: str | None = None) -> None:
        """Put every dock where ``mode``'s default arrangement has it (docks it does not name
        stay where they are)."""
        mode = mode or self.mode
        spec = ARRANGEMENTS[mode]
        docks = self.docks()
        named = [n for side in (spec.left, spec.right) for c in side for g in c.groups
                 for n in g.docks if n in docks]
        for n in named:
            docks[n].setFloating(False)
            self.w.removeDockWidget(docks[n])
        # columns first, then the groups within each, then the tabs: Qt adds a dock split off
        # a tabbed dock as one more tab, and a vertical split made before the columns would
        # span them all
        groups: list[tuple[Group, list[QDockWidget]]] = []
        for area, columns in ((Area.LeftDockWidgetArea, spec.left),
                              (Area.RightDockWidgetArea, spec.right)):
            column_groups = []
            for col in columns:
                present_groups = [(g, [docks[n] for n in g.docks if n in docks])
                                  for g in col.groups]
                present_groups = [(g, p) for g, p in present_groups if p]
                if present_groups:
                    column_groups.append(present_groups)
            prev_column: QDockWidget | None = None
            for present_groups in column_groups:
                first = present_groups[0][1][0]
                if prev_column is None:
                    self.w.addDockWidget(area, first)
                else:
                    self.w.splitDockWidget(prev_column, first, Qt.Orientation.Horizontal)
                prev_column = first
            for present_groups in column_groups:
                prev_group = present_groups[0][1][0]
                for _g, present in present_groups[1:]:
                    self.w.splitDockWidget(prev_group, present[0], Qt.Orientation.Vertical)
                    prev_group = present[0]
                groups.extend(present_groups)
        for group, present in groups:
            for d in present[1:]:
                self.w.tabifyDockWidget(present[0], d)
            for d in present:
                d.setVisible(d.objectName() not in group.hidden)
            front = group.front(docks)
            if front is not None:
                front.raise_()
        self.apply_sizes(mode)
        if self.w.isVisible():
            QTimer.singleShot(0, lambda: self.apply_sizes(mode))
        self._tidy.start()

    def apply_sizes(self, mode: str | None = None) -> None:
        """Column widths and group heights of ``mode``'s default arrangement, for the
        window's current size (the canvas takes what is left)."""
        mode = mode or self.mode
        if mode != self.mode:
            return
        spec = ARRANGEMENTS[mode]
        docks = self.docks()
        width, height = self.w.width(), self.w.height()
        columns = []
        for col in (*spec.left, *spec.right):
            shown = [(g, f) for g in col.groups if (f := g.front(docks)) is not None]
            if shown:
                columns.append((col, shown))
        if not columns:
            return

        def clamp(share: float, lo: int, hi: int) -> int:
            return int(min(hi, max(lo, share * width)))

        widths = [clamp(*c.width) if c.width[0] else 0 for c, _ in columns]
        flexible = [i for i, (c, _) in enumerate(columns) if not c.width[0]]
        if flexible:
            canvas = clamp(*spec.canvas)
            rest = width - sum(widths) - canvas - 4 * len(columns)
            lo = columns[flexible[0]][0].width[1]
            widths[flexible[0]] = max(lo, rest)
        self.w.resizeDocks([shown[0][1] for _, shown in columns], widths,
                           Qt.Orientation.Horizontal)
        avail = height - 140  # menu, toolbar, status bar, dock titles
        for _col, shown in columns:
            if len(shown) > 1:
                total = sum(g.share for g, _ in shown)
                self.w.resizeDocks([f for _, f in shown],
                                   [max(120, int(avail * g.share / total)) for g, _ in shown],
                                   Qt.Orientation.Vertical)
        self._tidy.start()  # the tab bars once the docks have their sizes

    def place(self, dock: QDockWidget) -> None:
        """A dock created late (the plots, on first use): put it where the current mode's
        default has it, beside the docks of its group, shown or hidden as they are."""
        self.watch(dock)
        docks = self.docks()
        spec = ARRANGEMENTS[self.mode]
        for side in (spec.left, spec.right):
            for col in side:
                for group in col.groups:
                    if dock.objectName() not in group.docks:
                        continue
                    mates = [docks[n] for n in group.docks
                             if n in docks and docks[n] is not dock
                             and self.w.dockWidgetArea(docks[n]) != Area.NoDockWidgetArea]
                    if mates:
                        self.w.tabifyDockWidget(mates[-1], dock)
                    else:
                        self.w.addDockWidget(Area.RightDockWidgetArea, dock)
                    dock.setVisible(dock.objectName() not in group.hidden)
                    self._tidy.start()
                    return
        self.w.addDockWidget(Area.RightDockWidgetArea, dock)

    # ----- modes ---------------------------------------------------------------------------
    def set_mode(self, mode: str) -> None:
        """Switch to ``mode``'s arrangement: the user's own if there is one, else the
        default. The current one is kept for the way back."""
        if mode not in MODES:
            raise ValueError(f"unknown layout mode {mode!r}")
        if mode == self.mode:
            return
        self.states[self.mode] = self.w.saveState(LAYOUT_VERSION)
        if mode == MONITOR:
            self.w.training.ensure_views()  # the plot docks must exist before a restore
        self.mode = mode
        state = self.states.get(mode)
        if state is None or not self.w.restoreState(state, LAYOUT_VERSION):
            self.arrange(mode)
        self._tidy.start()
        self.mode_changed.emit(mode)

    def reset(self) -> None:
        """Forget the user's arrangements (both modes) and apply the current mode's default."""
        self.states.clear()
        for mode in MODES:
            settings.remove(f"layout/{mode}")
        self.arrange()

    # ----- across launches -----------------------------------------------------------------
    def save(self) -> None:
        self.states[self.mode] = self.w.saveState(LAYOUT_VERSION)
        settings.set_value("layout/version", LAYOUT_VERSION)
        settings.set_value("window/geometry", self.w.saveGeometry())
        for mode, state in self.states.items():
            settings.set_value(f"layout/{mode}", state)

    def restore(self) -> bool:
        """The window's size and place, and the saved arrangements when they were saved by
        this layout version (the Build one is applied); else the default Build arrangement.
        True if a saved arrangement was used."""
        geo = settings.get_value("window/geometry")
        if isinstance(geo, QByteArray | bytes):
            self.w.restoreGeometry(QByteArray(geo))
        self.states.clear()
        version = settings.get_value("layout/version")
        if str(version) == str(LAYOUT_VERSION):
            for mode in MODES:
                state = settings.get_value(f"layout/{mode}")
                if isinstance(state, QByteArray | bytes):
                    self.states[mode] = QByteArray(state)
        self.mode = BUILD
        state = self.states.get(BUILD)
        if state is not None and self.w.restoreState(state, LAYOUT_VERSION):
            self._sized = True
            self._tidy.start()
            return True
        self.arrange(BUILD)
        return False
