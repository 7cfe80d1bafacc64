"""The main window: canvas in the centre, palette, inspector, summary and history docks
(arranged for building or for watching a run: netbuilder.docklayout). This module puts the
window together and reacts to the document and the selection; its other jobs are mixins in
``netbuilder.window``: actions and menus, editing, files, crash recovery. Training is
``window.training`` (netbuilder.training.controller).

Other parts of the app extend it with ``add_dock`` and ``add_menu``; they read the model
from ``window.document`` and follow ``selection_changed``. Dialogs go through replaceable
attributes (``ask_save_changes``, ``ask_save_runs``, ``ask_restore``, ``show_error``,
``choose_open_path``, ``choose_save_path``, ``choose_dataset_files``) so tests can answer
them."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QCloseEvent, QGuiApplication, QUndoStack
from PySide6.QtWidgets import (
    QDockWidget,
    QMainWindow,
    QMenu,
    QMessageBox,
    QUndoView,
)

from engine.resources import examples_dir

from . import dialogs, settings
from .analysis import Analysis
from .canvas import CanvasScene, CanvasView
from .docklayout import MONITOR, DockLayouts
from .document import Document
from .inspector import Inspector
from .palette import Palette
from .recovery import RecoveryEntry, RecoveryStore
from .summary import SummaryPanel, batch_size_of, summary_text
from .undo import UndoBridge
from .window.actions import WindowActions
from .window.editing import WindowEditing
from .window.files import WindowFiles, short_name
from .window.recovery import WindowRecovery

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES_DIR = examples_dir()  # the checkout's resources/examples, or the installed package's


class MainWindow(WindowActions, WindowEditing, WindowFiles, WindowRecovery, QMainWindow):
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
        self._problems: set[str] | None = None  # the model's problems as the status bar says them
        self.edit_lock: str | None = None  # why the model cannot change now (a training run)

        self.scene = CanvasScene(self.document, self.push, self)
        self.view = CanvasView(self.scene)
        # a narrower window takes its width from the panels too: without a floor the canvas
        # alone gave it up (under 100 px in the Monitor layout from 1280 to 1024 px)
        self.view.setMinimumWidth(200)
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
        from .lookinside import LookInside
        self.look_inside = LookInside(self)
        from .blocks_gui import BlockActions
        self.blocks = BlockActions(self)
        from .zoo_menu import TemplateMenu
        self.templates = TemplateMenu(self)
        from .run_edits import RunEdits
        self.run_edits = RunEdits(self)

        self.resize(*default_window_size())
        self.layouts = DockLayouts(self)
        self.layouts.mode_changed.connect(self._on_mode_changed)
        self.layouts.restore()
        self._update_title()
        self._on_analysed(self.document.analysis)
        self._on_selection()

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

    def show_status(self, text: str, error: bool = False) -> None:
        self.status_message.setText(text)
        self.status_message.setProperty("error", bool(error))
        self.status_message.style().unpolish(self.status_message)
        self.status_message.style().polish(self.status_message)
        self._status_timer.start(10_000 if error else 5_000)

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
        self._report_new_problem(an)
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

    def _report_new_problem(self, an: Analysis) -> None:
        """The status bar follows the model's problems: an edit that makes a new one says
        it (the first new one), and a problem it showed is cleared once it is gone."""
        now = {e.message for e in (*an.errors.values(), *an.graph_errors)}
        before, self._problems = self._problems, now
        shown = self.status_message.text()
        if before is not None and (new := sorted(now - before)):
            self.show_status(new[0], error=True)
        elif before is not None and shown in before and shown not in now:
            self.status_message.setText("")

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




def default_window_size() -> tuple[int, int]:
    """1440×900, or 92 % of a smaller screen's free area."""
    screen = QGuiApplication.primaryScreen()
    if screen is None:
        return 1440, 900
    avail = screen.availableGeometry()
    return min(1440, int(avail.width() * 0.92)), min(900, int(avail.height() * 0.92))


