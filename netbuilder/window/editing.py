"""Editing from the window: every edit goes through ``push`` (refused while a run locks the
model), undo and redo that respect the lock, the clipboard, and finding nodes and problems
on the canvas (a mixin of MainWindow)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QPointF

from engine.errors import NetBuilderError
from engine.text import plural

from .. import clipboard, settings
from ..document import Command, Composite, MoveNodes, SetTraining

if TYPE_CHECKING:
    from ..mainwindow import MainWindow


class WindowEditing:
    """The Edit menu's commands and the edit lock."""

    def push(self: MainWindow, cmd: Command) -> None:
        """Apply an edit and put it on the undo stack (raises NetBuilderError if refused,
        e.g. a change of the model while a training run uses it)."""
        if self.edit_lock and changes_model(cmd):
            raise NetBuilderError(self.edit_lock)
        self.bridge.push(cmd)

    def set_edit_lock(self: MainWindow, reason: str | None) -> None:
        """Refuse edits of the model (layers, wires, params) with ``reason``; None lifts it.
        Moving nodes and the training settings stay editable."""
        self.edit_lock = reason
        self.history.setEnabled(reason is None)

    def _stack_command(self: MainWindow, offset: int) -> Command | None:
        cmd = self.undo_stack.command(self.undo_stack.index() + offset)
        return getattr(cmd, "cmd", None)

    def undo(self: MainWindow) -> None:
        cmd = self._stack_command(-1)
        if self.edit_lock and cmd is not None and changes_model(cmd):
            self.show_status(self.edit_lock, True)
            return
        self.undo_stack.undo()

    def redo(self: MainWindow) -> None:
        cmd = self._stack_command(0)
        if self.edit_lock and cmd is not None and changes_model(cmd):
            self.show_status(self.edit_lock, True)
            return
        self.undo_stack.redo()

    def add_layer_at_centre(self: MainWindow, type_name: str) -> str | None:
        at = self.view.mapToScene(self.view.viewport().rect().center())
        at = QPointF(at)
        while any(n.sceneBoundingRect().contains(at) for n in self.scene.nodes.values()):
            at += QPointF(0, 100)
        return self.scene.add_layer(type_name, at)

    def delete(self: MainWindow) -> None:
        self.scene.delete_selection()

    def copy(self: MainWindow) -> bool:
        frag = self.scene.copy_selection()
        if frag is None:
            return False
        clipboard.put_fragment(frag)
        self.show_status(f"Copied {plural(len(frag['nodes']), 'node')}")
        return True

    def cut(self: MainWindow) -> None:
        if self.copy():
            self.scene.delete_selection()

    def paste(self: MainWindow) -> list[str]:
        frag = clipboard.get_fragment()
        if frag is None:
            self.show_status("The clipboard holds no NetBuilder nodes", True)
            return []
        return self.scene.paste(frag)

    def duplicate(self: MainWindow) -> list[str]:
        return self.scene.duplicate_selection()

    def select_all(self: MainWindow) -> None:
        for item in self.scene.nodes.values():
            item.setSelected(True)

    def auto_layout(self: MainWindow) -> None:
        if self.scene.auto_layout():
            self.view.fit_all()

    def _toggle_snap(self: MainWindow, on: bool) -> None:
        self.scene.snap_enabled = bool(on)
        settings.set_value("snap_to_grid", bool(on))

    def focus_node(self: MainWindow, node_id: str) -> None:
        item = self.scene.nodes.get(node_id)
        if item is not None:
            self.scene.select_nodes([node_id])
            self.view.centerOn(item)

    def goto_next_error(self: MainWindow) -> None:
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


def changes_model(cmd: Command) -> bool:
    """True when ``cmd`` changes what a network is built from (not positions or training)."""
    if isinstance(cmd, Composite):
        return any(changes_model(c) for c in cmd.parts)
    return not isinstance(cmd, MoveNodes | SetTraining)
