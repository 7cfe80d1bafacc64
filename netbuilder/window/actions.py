"""The main window's actions, menus, toolbar, docks and status bar: what the window is
built of (a mixin of MainWindow; the slots are the window's)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import QDockWidget, QLabel, QPushButton, QSizePolicy, QToolBar, QWidget

from ..docklayout import BUILD
from ..icons import tool_icon

if TYPE_CHECKING:
    from ..mainwindow import MainWindow


class WindowActions:
    """Builds the window's actions, menus, toolbar, docks and status bar."""

    def _action(self: MainWindow, text: str, slot, shortcut=None, icon: str | None = None,
                tip: str = "") -> QAction:
        a = QAction(text, self)
        if icon:
            a.setIcon(tool_icon(icon))
        if shortcut is not None:
            keys = shortcut if isinstance(shortcut, list) else [shortcut]
            a.setShortcuts([QKeySequence(k) for k in keys])
        if tip:
            a.setToolTip(tip)
            a.setStatusTip(tip)
        a.triggered.connect(slot)
        self.addAction(a)
        return a

    def _make_actions(self: MainWindow) -> None:
        std = QKeySequence.StandardKey
        self.act_new = self._action("&New", self.new_file, std.New, "new", "New empty model")
        self.act_open = self._action("&Open…", lambda: self.open_file(), std.Open, "open",
                                     "Open a model file")
        self.act_save = self._action("&Save", self.save, std.Save, "save", "Save the model")
        self.act_save_as = self._action("Save &As…", lambda: self.save_as(), "Ctrl+Shift+S")
        self.act_quit = self._action("&Quit", self.close, "Ctrl+Q")  # std.Quit is empty on
        # Windows and on platforms without a desktop theme
        self.act_undo = self.undo_stack.createUndoAction(self, "&Undo")
        self.act_undo.setShortcuts([QKeySequence("Ctrl+Z")])
        self.act_undo.setIcon(tool_icon("undo"))
        self.act_redo = self.undo_stack.createRedoAction(self, "&Redo")
        self.act_redo.setShortcuts([QKeySequence("Ctrl+Shift+Z"), QKeySequence("Ctrl+Y")])
        self.act_redo.setIcon(tool_icon("redo"))
        self.act_undo.triggered.disconnect()
        self.act_undo.triggered.connect(self.undo)
        self.act_redo.triggered.disconnect()
        self.act_redo.triggered.connect(self.redo)
        self.addAction(self.act_undo)
        self.addAction(self.act_redo)
        self.act_copy = self._action("&Copy", self.copy, std.Copy)
        self.act_cut = self._action("Cu&t", self.cut, std.Cut)
        self.act_paste = self._action("&Paste", self.paste, std.Paste)
        self.act_duplicate = self._action("D&uplicate", self.duplicate, "Ctrl+D", "duplicate",
                                          "Duplicate the selected nodes")
        self.act_delete = self._action("&Delete", self.delete, ["Del", "Backspace"], "delete",
                                       "Delete the selection")
        self.act_select_all = self._action("Select &All", self.select_all, std.SelectAll)
        self.act_zoom_in = self._action("Zoom &In", self.view.zoom_in, ["Ctrl++", "Ctrl+="],
                                        "zoom_in", "Zoom in")
        self.act_zoom_out = self._action("Zoom &Out", self.view.zoom_out, "Ctrl+-", "zoom_out",
                                         "Zoom out")
        self.act_zoom_reset = self._action("&Actual Size", self.view.reset_zoom, "Ctrl+0")
        self.act_fit = self._action("&Fit to Window", lambda: self.view.fit_all(), "F", "fit",
                                    "Show the whole graph (F)")
        self.act_layout = self._action("Automatic &Layout", self.auto_layout, "Ctrl+L", "layout",
                                       "Arrange the graph in layers, few crossings (Ctrl+L)")
        self.act_snap = self._action("&Snap to Grid", self._toggle_snap)
        self.act_snap.setCheckable(True)
        self.act_snap.setChecked(self.scene.snap_enabled)
        self.act_next_error = self._action("Go to Next &Problem", self.goto_next_error, "F8")
        self.act_build_mode = self._action(
            "&Build Layout", lambda: self.layouts.set_mode(BUILD), "Ctrl+1", "build",
            "Arrange the window for building: layers, canvas, inspector (Ctrl+1)")
        self.act_monitor_mode = self._action(
            "&Monitor Layout", lambda: self.training.show_monitor(), "Ctrl+2", "monitor",
            "Arrange the window for watching a run: canvas, plots, training (Ctrl+2)")
        self.mode_group = QActionGroup(self)
        for a in (self.act_build_mode, self.act_monitor_mode):
            a.setCheckable(True)
            self.mode_group.addAction(a)
        self.act_build_mode.setChecked(True)
        self.act_reset_layout = self._action(
            "&Reset Layout", lambda: self.layouts.reset(), None, None,
            "Put the panels of this layout back where they were at first")
        self.act_shortcuts = self._action("&Keyboard Shortcuts", self._show_shortcuts)
        self.act_about = self._action("&About NetBuilder", self._about)

    def _make_menus(self: MainWindow) -> None:
        mb = self.menuBar()
        m = mb.addMenu("&File")
        m.addActions([self.act_new, self.act_open])
        self.recent_menu = m.addMenu("Open &Recent")
        self.recent_menu.aboutToShow.connect(self._fill_recent)
        self.examples_menu = m.addMenu("&Examples")
        self.examples_menu.aboutToShow.connect(self._fill_examples)
        m.addSeparator()
        m.addActions([self.act_save, self.act_save_as])
        self.file_menu = m
        m.addSeparator()
        m.addAction(self.act_quit)
        m = mb.addMenu("&Edit")
        m.addActions([self.act_undo, self.act_redo])
        m.addSeparator()
        m.addActions([self.act_cut, self.act_copy, self.act_paste, self.act_duplicate,
                      self.act_delete])
        m.addSeparator()
        m.addAction(self.act_select_all)
        m = mb.addMenu("&View")
        m.addActions([self.act_zoom_in, self.act_zoom_out, self.act_zoom_reset, self.act_fit])
        m.addSeparator()
        m.addActions([self.act_layout, self.act_snap, self.act_next_error])
        m.addSeparator()
        m.addActions([self.act_build_mode, self.act_monitor_mode, self.act_reset_layout])
        self.panels_menu = m.addMenu("&Panels")
        self.help_menu = mb.addMenu("&Help")
        self.help_menu.addActions([self.act_shortcuts, self.act_about])

    def _make_toolbar(self: MainWindow) -> None:
        tb = QToolBar("Main")
        tb.setObjectName("mainToolbar")
        tb.setMovable(False)
        tb.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonIconOnly)
        tb.addActions([self.act_new, self.act_open, self.act_save])
        tb.addSeparator()
        tb.addActions([self.act_undo, self.act_redo])
        tb.addSeparator()
        tb.addActions([self.act_duplicate, self.act_delete])
        tb.addSeparator()
        tb.addActions([self.act_zoom_in, self.act_zoom_out, self.act_fit, self.act_layout])
        spacer = QWidget()
        spacer.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        tb.addWidget(spacer)
        for a in (self.act_build_mode, self.act_monitor_mode):
            a.setIconText(a.text().replace("&", "").replace(" Layout", ""))
            tb.addAction(a)
            button = tb.widgetForAction(a)
            button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
            button.setObjectName("modeButton")
        self.addToolBar(tb)
        self.toolbar = tb

    def _make_docks(self: MainWindow) -> None:
        """The docks; DockLayouts arranges them (and those the training parts add)."""
        self.setDockNestingEnabled(True)
        self.setCorner(Qt.Corner.BottomRightCorner, Qt.DockWidgetArea.RightDockWidgetArea)
        self.setCorner(Qt.Corner.TopRightCorner, Qt.DockWidgetArea.RightDockWidgetArea)
        self.setCorner(Qt.Corner.BottomLeftCorner, Qt.DockWidgetArea.LeftDockWidgetArea)
        self.setCorner(Qt.Corner.TopLeftCorner, Qt.DockWidgetArea.LeftDockWidgetArea)
        self.palette_dock = self._dock("Layers", "paletteDock", self.palette)
        self.inspector_dock = self._dock("Inspector", "inspectorDock", self.inspector)
        self.summary_dock = self._dock("Model Summary", "summaryDock", self.summary)
        self.history_dock = self._dock("History", "historyDock", self.history)
        self.panels_menu.addSection("Build")
        self.add_dock(self.palette_dock, Qt.DockWidgetArea.LeftDockWidgetArea)
        for d in (self.inspector_dock, self.summary_dock, self.history_dock):
            self.add_dock(d)

    def _dock(self: MainWindow, title: str, name: str, widget: QWidget) -> QDockWidget:
        d = QDockWidget(title, self)
        d.setObjectName(name)
        d.setWidget(widget)
        d.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable
                      | QDockWidget.DockWidgetFeature.DockWidgetClosable
                      | QDockWidget.DockWidgetFeature.DockWidgetFloatable)
        return d

    def _make_status_bar(self: MainWindow) -> None:
        sb = self.statusBar()
        self.status_message = QLabel()
        self.status_message.setObjectName("statusMessage")
        self.errors_button = QPushButton()
        self.errors_button.setObjectName("errorsButton")
        self.errors_button.setFlat(True)
        self.errors_button.setCursor(Qt.CursorShape.PointingHandCursor)
        self.errors_button.clicked.connect(self.goto_next_error)
        self.summary_label = QLabel()
        self.summary_label.setObjectName("summaryLabel")
        self.zoom_label = QLabel()
        self.zoom_label.setObjectName("zoomLabel")
        self.zoom_label.setToolTip("Zoom of the canvas: Ctrl+0 for 100 %, F to fit the graph")
        self._show_zoom(self.view.zoom)
        sb.addWidget(self.status_message, 1)
        sb.addPermanentWidget(self.errors_button)
        sb.addPermanentWidget(self.summary_label)
        sb.addPermanentWidget(self.zoom_label)
        self._status_timer = QTimer(self)
        self._status_timer.setSingleShot(True)
        self._status_timer.timeout.connect(lambda: self.status_message.setText(""))
