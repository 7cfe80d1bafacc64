"""The main window: canvas in the centre, palette, inspector, summary and history docks
(arranged for building or for watching a run: netbuilder.docklayout), menus, toolbar, status
bar, files, recent files, examples and crash recovery.

Other parts of the app extend it with ``add_dock`` and ``add_menu``; they read the model
from ``window.document`` and follow ``selection_changed``. Dialogs go through replaceable
attributes (``ask_save_changes``, ``ask_save_runs``, ``ask_restore``, ``show_error``,
``choose_open_path``, ``choose_save_path``, ``choose_dataset_files``) so tests can answer
them."""

from __future__ import annotations

import json
from pathlib import Path

from PySide6.QtCore import QPointF, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QActionGroup, QCloseEvent, QGuiApplication, QKeySequence, QUndoStack
from PySide6.QtWidgets import (
    QDockWidget,
    QLabel,
    QMainWindow,
    QMenu,
    QMessageBox,
    QPushButton,
    QSizePolicy,
    QToolBar,
    QUndoView,
    QWidget,
)

import engine
from engine.errors import NetBuilderError
from engine.resources import examples_dir
from engine.text import plural

from . import clipboard, dialogs, settings
from .analysis import Analysis
from .canvas import CanvasScene, CanvasView
from .docklayout import BUILD, MONITOR, DockLayouts
from .document import Command, Composite, Document, MoveNodes, SetTraining
from .icons import tool_icon
from .inspector import Inspector
from .palette import Palette
from .recovery import RecoveryEntry, RecoveryStore
from .summary import SummaryPanel, batch_size_of, summary_text
from .undo import UndoBridge

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES_DIR = examples_dir()  # the checkout's resources/examples, or the installed package's


class MainWindow(QMainWindow):
    """NetBuilder's window on one Document."""

    selection_changed = Signal(list)  # ids of the selected nodes
    document_replaced = Signal()  # after New, Open or a restore
    file_opened = Signal(str)  # path of a model file or trained bundle just opened

    def __init__(self, document: Document | None = None, recovery: RecoveryStore | None = None,
                 examples_dir: str | Path | None = None, autosave_ms: int = 60_000) -> None:
        super().__init__()
        self.document = document if document is not None else Document()
        self.recovery = recovery if recovery is not None else RecoveryStore()
        self.examples_dir = Path(examples_dir) if examples_dir else EXAMPLES_DIR
        self.undo_stack = QUndoStack(self)
        self.bridge = UndoBridge(self.document, self.undo_stack)
        self.ask_save_changes = self._ask_save_changes
        self.ask_restore = self._ask_restore
        self.ask_save_runs = self._ask_save_runs
        self.show_error = self._show_error
        self.choose_open_path = self._choose_open_path
        self.choose_save_path = self._choose_save_path
        self.choose_dataset_files = self._choose_dataset_files
        self._autosaved = -1
        self.edit_lock: str | None = None  # why the model cannot change now (a training run)

        self.scene = CanvasScene(self.document, self.push, self)
        self.view = CanvasView(self.scene)
        self.setCentralWidget(self.view)
        self.scene.snap_enabled = settings.get_bool("snap_to_grid", True)

        self.palette = Palette()
        self.inspector = Inspector(self.document, self.push)
        self.summary = SummaryPanel()
        self.history = QUndoView(self.undo_stack)
        self.history.setEmptyLabel("<opened model>")
        self.history.setObjectName("history")

        self._make_actions()
        self._make_menus()
        self._make_toolbar()
        self._make_docks()
        self._make_status_bar()
        self.view.context_actions = [self.act_copy, self.act_paste, self.act_duplicate,
                                     self.act_delete, None, self.act_layout, self.act_fit]

        self.scene.message.connect(self.show_status)
        self.scene.analysed.connect(self._on_analysed)
        self.scene.selectionChanged.connect(self._on_selection)
        self.inspector.message.connect(self.show_status)
        self.palette.activated.connect(self.add_layer_at_centre)
        self.summary.node_clicked.connect(self.focus_node)
        self.view.zoomed.connect(self._show_zoom)
        self.document.subscribe(self._on_doc_change)

        self.autosave_timer = QTimer(self)
        self.autosave_timer.setInterval(autosave_ms)
        self.autosave_timer.timeout.connect(self.autosave)
        self.autosave_timer.start()

        from .training.controller import RunController
        self.training = RunController(self)
        from .exporting import ExportActions
        self.exports = ExportActions(self, self.file_menu, self.act_quit)
        from .blocks_gui import BlockActions
        self.blocks = BlockActions(self)
        from .zoo_menu import TemplateMenu
        self.templates = TemplateMenu(self)

        self.resize(*default_window_size())
        self.layouts = DockLayouts(self)
        self.layouts.mode_changed.connect(self._on_mode_changed)
        self.layouts.restore()
        self._update_title()
        self._on_analysed(self.document.analysis)
        self._on_selection()

    # ----- building ------------------------------------------------------------------------
    def _action(self, text: str, slot, shortcut=None, icon: str | None = None,
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

    def _make_actions(self) -> None:
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

    def _make_menus(self) -> None:
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

    def _make_toolbar(self) -> None:
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

    def _make_docks(self) -> None:
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

    def _dock(self, title: str, name: str, widget: QWidget) -> QDockWidget:
        d = QDockWidget(title, self)
        d.setObjectName(name)
        d.setWidget(widget)
        d.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable
                      | QDockWidget.DockWidgetFeature.DockWidgetClosable
                      | QDockWidget.DockWidgetFeature.DockWidgetFloatable)
        return d

    def _make_status_bar(self) -> None:
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

    # ----- extension points ----------------------------------------------------------------
    def add_dock(self, dock: QDockWidget,
                 area: Qt.DockWidgetArea = Qt.DockWidgetArea.RightDockWidgetArea,
                 tabify_with: QDockWidget | None = None) -> QDockWidget:
        """Add a panel (listed under View ▸ Panels); ``tabify_with`` stacks it as a tab.
        Docks the layouts know (netbuilder.docklayout) are moved to their place when the
        window arranges them."""
        if not dock.objectName():
            dock.setObjectName(dock.windowTitle().replace(" ", "") + "Dock")
        self.addDockWidget(area, dock)
        if tabify_with is not None:
            self.tabifyDockWidget(tabify_with, dock)
        self.panels_menu.addAction(dock.toggleViewAction())
        layouts = getattr(self, "layouts", None)
        if layouts is not None:
            layouts.watch(dock)
        return dock

    def add_menu(self, title: str) -> QMenu:
        """A new top-level menu, placed before Help."""
        menu = QMenu(title, self)
        self.menuBar().insertMenu(self.help_menu.menuAction(), menu)
        return menu

    def selected_node_ids(self) -> list[str]:
        return self.scene.selected_node_ids()

    # ----- editing -------------------------------------------------------------------------
    def push(self, cmd: Command) -> None:
        """Apply an edit and put it on the undo stack (raises NetBuilderError if refused,
        e.g. a change of the model while a training run uses it)."""
        if self.edit_lock and changes_model(cmd):
            raise NetBuilderError(self.edit_lock)
        self.bridge.push(cmd)

    def set_edit_lock(self, reason: str | None) -> None:
        """Refuse edits of the model (layers, wires, params) with ``reason``; None lifts it.
        Moving nodes and the training settings stay editable."""
        self.edit_lock = reason
        self.history.setEnabled(reason is None)

    def _stack_command(self, offset: int) -> Command | None:
        cmd = self.undo_stack.command(self.undo_stack.index() + offset)
        return getattr(cmd, "cmd", None)

    def undo(self) -> None:
        cmd = self._stack_command(-1)
        if self.edit_lock and cmd is not None and changes_model(cmd):
            self.show_status(self.edit_lock, True)
            return
        self.undo_stack.undo()

    def redo(self) -> None:
        cmd = self._stack_command(0)
        if self.edit_lock and cmd is not None and changes_model(cmd):
            self.show_status(self.edit_lock, True)
            return
        self.undo_stack.redo()

    def show_status(self, text: str, error: bool = False) -> None:
        self.status_message.setText(text)
        self.status_message.setProperty("error", bool(error))
        self.status_message.style().unpolish(self.status_message)
        self.status_message.style().polish(self.status_message)
        self._status_timer.start(10_000 if error else 5_000)

    def add_layer_at_centre(self, type_name: str) -> str | None:
        at = self.view.mapToScene(self.view.viewport().rect().center())
        at = QPointF(at)
        while any(n.sceneBoundingRect().contains(at) for n in self.scene.nodes.values()):
            at += QPointF(0, 100)
        return self.scene.add_layer(type_name, at)

    def delete(self) -> None:
        self.scene.delete_selection()

    def copy(self) -> bool:
        frag = self.scene.copy_selection()
        if frag is None:
            return False
        clipboard.put_fragment(frag)
        self.show_status(f"Copied {plural(len(frag['nodes']), 'node')}")
        return True

    def cut(self) -> None:
        if self.copy():
            self.scene.delete_selection()

    def paste(self) -> list[str]:
        frag = clipboard.get_fragment()
        if frag is None:
            self.show_status("The clipboard holds no NetBuilder nodes", True)
            return []
        return self.scene.paste(frag)

    def duplicate(self) -> list[str]:
        return self.scene.duplicate_selection()

    def select_all(self) -> None:
        for item in self.scene.nodes.values():
            item.setSelected(True)

    def auto_layout(self) -> None:
        if self.scene.auto_layout():
            self.view.fit_all()

    def _toggle_snap(self, on: bool) -> None:
        self.scene.snap_enabled = bool(on)
        settings.set_value("snap_to_grid", bool(on))

    def focus_node(self, node_id: str) -> None:
        item = self.scene.nodes.get(node_id)
        if item is not None:
            self.scene.select_nodes([node_id])
            self.view.centerOn(item)

    def goto_next_error(self) -> None:
        errs = self.document.analysis.errors
        if not errs:
            graph_errs = self.document.analysis.graph_errors
            if graph_errs:
                self.show_status(graph_errs[0].message, True)
            return
        order = [n for n in self.document.graph.nodes if n in errs]
        sel = self.selected_node_ids()
        nxt = order[0]
        if len(sel) == 1 and sel[0] in order:
            nxt = order[(order.index(sel[0]) + 1) % len(order)]
        self.focus_node(nxt)
        self.show_status(errs[nxt].message, True)

    # ----- reacting ------------------------------------------------------------------------
    def _on_doc_change(self, ch) -> None:
        self._update_title()
        if ch.training:
            self.summary_label.setText(summary_text(self.document.analysis,
                                                    batch_size_of(self.document.graph)))
            self.summary.update_from(self.document.graph, self.document.analysis)

    def display_title(self) -> str:
        """The file's name, else the model's short name (an example's name is a sentence)."""
        if self.document.path is not None:
            return self.document.title
        return short_name(self.document.graph.name or "untitled")

    def _update_title(self) -> None:
        self.setWindowTitle(f"{self.display_title()}[*] — NetBuilder")
        self.setWindowModified(self.document.dirty)

    def _on_analysed(self, an: Analysis) -> None:
        n = an.error_count
        if n:
            self.errors_button.setText(f"⚠ {n} problem{'s' if n > 1 else ''}")
            first = (an.graph_errors + list(an.errors.values()))[0]
            self.errors_button.setToolTip(first.message + "\n(click or F8: go to the next one)")
        else:
            self.errors_button.setText("✓ no problems")
            self.errors_button.setToolTip("The model is valid: every shape fits")
        self.errors_button.setProperty("error", bool(n))
        self.errors_button.style().unpolish(self.errors_button)
        self.errors_button.style().polish(self.errors_button)
        self.summary_label.setText(summary_text(an, batch_size_of(self.document.graph)))
        self.summary.update_from(self.document.graph, an)

    def _on_selection(self) -> None:
        ids = self.scene.selected_node_ids()
        self.inspector.show_node(ids[0] if len(ids) == 1 else None, len(ids))
        dock = self.inspector_dock
        if len(ids) == 1 and dock.toggleViewAction().isChecked() \
                and dock.visibleRegion().isEmpty():
            dock.raise_()  # behind another tab (Training, Data): the node's form comes to front
        has = bool(ids)
        for a in (self.act_copy, self.act_cut, self.act_duplicate):
            a.setEnabled(has)
        self.act_delete.setEnabled(has or bool(self.scene.selected_edges()))
        self.selection_changed.emit(ids)

    # ----- files ---------------------------------------------------------------------------
    def maybe_save(self) -> bool:
        """True if the current document may be replaced (saved or discarded)."""
        if not self.document.dirty:
            return True
        answer = self.ask_save_changes()
        if answer == "save":
            return self.save()
        return answer == "discard"

    def load_graph(self, graph: engine.Graph, path: str | Path | None,
                   dirty: bool = False) -> None:
        """Show ``graph`` (history cleared)."""
        self.scene.clearSelection()
        self.undo_stack.clear()
        self.document.reset(graph, path, dirty)
        self.undo_stack.setClean()
        self._autosaved = -1
        self.layouts.set_mode(BUILD)
        QTimer.singleShot(0, self.view, self.frame_canvas)
        self.frame_canvas()
        self.document_replaced.emit()

    def new_file(self) -> bool:
        if not self.maybe_save():
            return False
        self.load_graph(engine.Graph("untitled"), None)
        self.show_status("New model: drag layers from the palette onto the canvas")
        return True

    def read_model(self, path: str | Path) -> engine.Graph | None:
        """Read a model file; on failure show one message and return None."""
        try:
            return Document.read(path)
        except NetBuilderError as exc:
            name = Path(path).name
            self.show_error("Cannot open model",
                            f"{name} could not be opened:\n\n{exc.message}\n\n"
                            "The model you were working on is unchanged.")
            return None

    def open_file(self, path: str | Path | None = None) -> bool:
        if path is None:
            path = self.choose_open_path()
            if not path:
                return False
        if Path(path).suffix.lower() == ".onnx":
            return self.exports.import_onnx(path)
        graph = self.read_model(path)
        if graph is None or not self.maybe_save():
            return False
        if Path(path).suffix.lower() == ".json":
            self.load_graph(graph, Path(path))
            self.show_status(f"Opened {Path(path).name}")
        else:  # a trained bundle: edit its model as a new file, the bundle stays as it is
            self.load_graph(graph, None)
            self.show_status(f"Opened the model of {Path(path).name}: Save As to keep changes")
        settings.add_recent_file(path)
        self.file_opened.emit(str(path))
        return True

    def open_example(self, path: str | Path) -> bool:
        """Open an example as a new, untitled model (saving asks where)."""
        graph = self.read_model(path)
        if graph is None or not self.maybe_save():
            return False
        self.load_graph(graph, None)
        self.show_status(f"Example '{short_name(graph.name or Path(path).stem)}': Save As to keep "
                         "your changes")
        return True

    def save(self) -> bool:
        if self.document.path is None:
            return self.save_as()
        return self._save_to(self.document.path)

    def save_as(self, path: str | Path | None = None) -> bool:
        if path is None:
            path = self.choose_save_path()
            if not path:
                return False
        return self._save_to(Path(path))

    def _save_to(self, path: Path) -> bool:
        try:
            target = self.document.save(path)
        except NetBuilderError as exc:
            self.show_error("Cannot save", exc.message)
            return False
        except OSError as exc:
            self.show_error("Cannot save", f"{path} could not be written: "
                                           f"{exc.strerror or exc}")
            return False
        self.undo_stack.setClean()
        settings.add_recent_file(target)
        self.recovery.clear_model()
        self.show_status(f"Saved {target}")
        return True

    def _fill_recent(self) -> None:
        self.recent_menu.clear()
        files = settings.recent_files()
        for f in files:
            a = self.recent_menu.addAction(Path(f).name)
            a.setToolTip(f)
            a.setStatusTip(f)
            a.triggered.connect(lambda _=False, f=f: self.open_file(f))
        if not files:
            self.recent_menu.addAction("(no recent files)").setEnabled(False)
        else:
            self.recent_menu.addSeparator()
            self.recent_menu.addAction("Clear List", settings.clear_recent_files)

    def example_files(self) -> list[tuple[str, Path]]:
        """(the model's name, file) of every example; the name may be a whole sentence."""
        out = []
        for p in sorted(self.examples_dir.glob("*.json")):
            name = p.stem
            try:
                doc = json.loads(p.read_text(encoding="utf-8"))
                if isinstance(doc, dict) and isinstance(doc.get("name"), str) and doc["name"]:
                    name = doc["name"]
            except (OSError, ValueError):
                pass
            out.append((name, p))
        return out

    def _fill_examples(self) -> None:
        """Short names in the menu; the whole description as tooltip and status tip."""
        self.examples_menu.clear()
        self.examples_menu.setToolTipsVisible(True)
        examples = self.example_files()
        for name, p in examples:
            a = self.examples_menu.addAction(short_name(name))
            tip = f"{name} ({p.name})"
            a.setToolTip(tip)
            a.setStatusTip(tip)
            a.triggered.connect(lambda _=False, p=p: self.open_example(p))
        if not examples:
            self.examples_menu.addAction("(no examples found)").setEnabled(False)

    # ----- recovery ------------------------------------------------------------------------
    def autosave(self) -> Path | None:
        """Write the recovery file if there is unsaved work not yet in it (trained runs are
        kept as they finish: ``RunController.keep_for_recovery``)."""
        if not self.document.dirty:
            self.recovery.clear_model()
            self._autosaved = -1
            return None
        if self._autosaved == self.document.revision:
            return None
        try:
            f = self.recovery.write(self.document.graph, self.document.path)
        except OSError as exc:
            self.show_status(f"Could not write the recovery file: {exc.strerror or exc}", True)
            return None
        self._autosaved = self.document.revision
        return f

    def check_recovery(self) -> bool:
        """Offer to restore work left by a session that did not close cleanly: its model
        and its trained runs. True when a model was restored onto the canvas."""
        entries = self.recovery.orphans()
        if not entries:
            return False
        restored = False
        if self.ask_restore(entries[0]):
            e = entries[0]
            if e.graph is not None:
                self.load_graph(e.graph, e.source, dirty=True)
                restored = True
            runs = self.training.restore_runs(e.runs)
            what = " and ".join(
                t for t in ("the model" if restored else "",
                            f"{plural(runs, 'trained run')} (Runs panel)" if runs else "") if t)
            self.show_status(f"Restored unsaved work, {what}: save it to keep it")
        RecoveryStore.discard(entries)
        if restored:
            self.autosave()
        return restored

    # ----- dialogs (replaceable) -----------------------------------------------------------
    def _ask_save_changes(self) -> str:
        return dialogs.ask_save_changes(self, self.display_title())

    def _ask_save_runs(self, names: list[str]) -> str:
        return dialogs.ask_save_runs(self, names)

    def _ask_restore(self, entry: RecoveryEntry) -> bool:
        return dialogs.ask_restore(self, entry.describe())

    def _show_error(self, title: str, text: str) -> None:
        QMessageBox.warning(self, title, text)

    def _choose_open_path(self) -> str | None:
        start = self.document.path.parent if self.document.path else self.examples_dir
        return dialogs.choose_open_path(self, start)

    def _choose_save_path(self) -> str | None:
        start = self.document.path or settings.save_folder() / \
            f"{(self.document.graph.name or 'model').replace(' ', '_')}.json"
        return dialogs.choose_save_path(self, start)

    def _choose_dataset_files(self, title: str, name_filter: str) -> list[str]:
        start = Path.home() / "Downloads"
        start = start if start.is_dir() else Path.home()
        return dialogs.choose_dataset_files(self, title, name_filter, str(start))

    def _show_shortcuts(self) -> None:
        dialogs.show_shortcuts(self)

    def _about(self) -> None:
        dialogs.about(self)

    # ----- window state --------------------------------------------------------------------
    def save_window_state(self) -> None:
        """The window's size and place and both arrangements of its panels, for next time."""
        self.layouts.save()

    def frame_canvas(self) -> None:
        """Show the graph at a readable zoom: all of it if it fits, else its top or the
        selected node (with room for the training badges in the Monitor layout)."""
        sel = self.selected_node_ids()
        item = self.scene.nodes.get(sel[0]) if len(sel) == 1 else None
        focus = item.sceneBoundingRect().center() if item is not None else None
        self.view.frame_readable(focus, badges=self.layouts.mode == MONITOR)

    def _on_mode_changed(self, mode: str) -> None:
        (self.act_monitor_mode if mode == MONITOR else self.act_build_mode).setChecked(True)
        QTimer.singleShot(0, self.view, self.frame_canvas)

    def _show_zoom(self, zoom: float) -> None:
        self.zoom_label.setText(f"Zoom {zoom * 100:.0f} %")

    def closeEvent(self, ev: QCloseEvent) -> None:
        if not self.maybe_save() or not self.training.maybe_keep_runs():
            ev.ignore()
            return
        self.training.shutdown()
        self.save_window_state()
        self.autosave_timer.stop()
        self.recovery.clear()
        ev.accept()


def short_name(name: str, limit: int = 40) -> str:
    """A model's name fit for a title or a menu: what comes before a ": " explanation, cut
    at a word to ``limit`` characters."""
    head = name.split(": ", 1)[0].strip() or name.strip()
    if len(head) <= limit:
        return head
    cut = head[:limit - 1].rsplit(" ", 1)[0].rstrip(",;:—- ")
    return (cut or head[:limit - 1]) + "…"


def default_window_size() -> tuple[int, int]:
    """1440×900, or 92 % of a smaller screen's free area."""
    screen = QGuiApplication.primaryScreen()
    if screen is None:
        return 1440, 900
    avail = screen.availableGeometry()
    return min(1440, int(avail.width() * 0.92)), min(900, int(avail.height() * 0.92))


def changes_model(cmd: Command) -> bool:
    """True when ``cmd`` changes what a network is built from (not positions or training)."""
    if isinstance(cmd, Composite):
        return any(changes_model(c) for c in cmd.parts)
    return not isinstance(cmd, MoveNodes | SetTraining)
