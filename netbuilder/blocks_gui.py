"""Blocks in the main window: Edit ▸ Group as Block (Ctrl+G), Ungroup (Ctrl+Shift+G),
Repeat ×N, Rename Block, Save Block to Library; the same on the canvas' right-click menu;
the frames around expanded blocks; and the user's block library under "My blocks" in the
palette (drag or double-click one to add it)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QEvent, QObject, QPointF, QRectF
from PySide6.QtWidgets import QInputDialog
from shiboken6 import isValid

from engine import NetBuilderError, block_edit

from .block_commands import GroupAsBlock, InsertBlock, RenameBlock, RepeatBlock, Ungroup
from .block_library import BlockLibrary
from .canvas.block_item import BlockFrame
from .document import Change

if TYPE_CHECKING:
    from pathlib import Path

    from .mainwindow import MainWindow


class BlockActions:
    """The block actions and views of one window. ``ask_count`` / ``ask_name`` ask the
    user (tests replace them)."""

    def __init__(self, window: MainWindow, library_dir: Path | None = None) -> None:
        self.w = window
        self.library = BlockLibrary(library_dir)
        self.frames: dict[str, BlockFrame] = {}
        self.ask_count = self._ask_count
        self.ask_name = self._ask_name
        a = window._action
        self.act_group = a("&Group as Block", self.group_selection, "Ctrl+G", None,
                           "Make the selected nodes one block (Ctrl+G)")
        self.act_ungroup = a("U&ngroup Block", self.ungroup_selection, "Ctrl+Shift+G", None,
                             "Put the selected block's layers back in the graph")
        self.act_repeat = a("&Repeat Block ×N…", self.repeat_selection, None, None,
                            "Stack copies of the selected block (each with its own weights)")
        self.act_rename = a("Rena&me Block…", self.rename_selection, None, None,
                            "Give the selected block a name")
        self.act_save = a("Save Block to &Library", self.save_selection, None, None,
                          "Keep the selected block under My blocks in the palette")
        acts = [self.act_group, self.act_ungroup, self.act_repeat, self.act_rename,
                self.act_save]
        edit = next((m.menu() for m in window.menuBar().actions()
                     if m.menu() is not None and m.text() == "&Edit"), None)
        if edit is not None:
            edit.addSeparator()
            edit.addActions(acts)
        window.view.context_actions += [None, *acts]
        window.scene.drop_block = self.drop_block
        self._filter = _TitleClicks(self)
        window.view.viewport().installEventFilter(self._filter)
        window.scene.selectionChanged.connect(self.update_actions)
        window.document.subscribe(self._on_change)
        self.refresh_palette()
        self.sync_frames()
        self.update_actions()

    # ----- what is selected --------------------------------------------------------------
    def selected_block(self) -> str | None:
        ids = self.w.selected_node_ids()
        g = self.w.document.graph
        if len(ids) == 1 and ids[0] in g.nodes and g.nodes[ids[0]].block is not None:
            return ids[0]
        return None

    def _alive(self) -> bool:
        """False once the window is gone (signals of a dying scene still arrive)."""
        if isValid(self.w) and isValid(self.w.scene):
            return True
        self.w.document.unsubscribe(self._on_change)
        return False

    def update_actions(self) -> None:
        if not self._alive():
            return
        ids = self.w.selected_node_ids()
        block = self.selected_block()
        self.act_group.setEnabled(bool(ids))
        for act in (self.act_ungroup, self.act_repeat, self.act_rename, self.act_save):
            act.setEnabled(block is not None)

    # ----- edits -------------------------------------------------------------------------
    def _run(self, cmd) -> bool:
        """Run a block edit; the nodes selected before stay selected where they still are."""
        sel = self.w.selected_node_ids()
        if not self.w.scene.run(cmd):
            return False
        self.w.scene.select_nodes([n for n in sel if n in self.w.document.graph.nodes])
        return True

    def group_selection(self) -> str | None:
        """Group the selected nodes; returns the new block's id (selected), or None."""
        ids = self.w.selected_node_ids()
        if not ids:
            self.w.show_status("Select the nodes to group first", True)
            return None
        cmd = GroupAsBlock(self.w.document, ids)
        if not self._run(cmd):
            return None
        self.w.scene.select_nodes([cmd.block_id])
        self.w.show_status(f"Grouped {len(ids)} nodes as block '{cmd.block_id}': double-click "
                           "it to edit, right-click to repeat it")
        return cmd.block_id

    def ungroup_selection(self) -> bool:
        bid = self.selected_block()
        return bid is not None and self._run(Ungroup(bid))

    def repeat_selection(self) -> bool:
        bid = self.selected_block()
        if bid is None:
            return False
        n = self.ask_count(bid)
        if n is None:
            return False
        if not self._run(RepeatBlock(bid, n)):
            return False
        self.w.show_status(f"Block '{bid}' now runs {n} times, each copy with its own weights")
        return True

    def rename_selection(self) -> bool:
        bid = self.selected_block()
        if bid is None:
            return False
        name = self.ask_name(self.w.document.graph.nodes[bid].block.name)
        return bool(name) and self._run(RenameBlock(bid, name))

    def save_selection(self) -> Path | None:
        bid = self.selected_block()
        if bid is None:
            return None
        block = self.w.document.graph.nodes[bid].block
        try:
            path = self.library.save(block)
        except (OSError, NetBuilderError) as exc:
            self.w.show_status(f"Could not save the block: {exc}", True)
            return None
        self.refresh_palette()
        self.w.show_status(f"Saved block '{block.name}' to My blocks ({path})")
        return path

    def drop_block(self, name: str, at: QPointF) -> str | None:
        """Add the library block ``name`` centred at ``at`` (a palette drop)."""
        entry = self.library.find(name)
        if entry is None:
            self.w.show_status(f"No saved block named '{name}'", True)
            return None
        cmd = InsertBlock(self.w.document, entry.body, (at.x() - 92.0, at.y() - 12.0))
        if not self._run(cmd):
            return None
        self.w.scene.select_nodes([cmd.block_id])
        return cmd.block_id

    def refresh_palette(self) -> None:
        entries = self.library.entries()
        self.w.palette.set_user_blocks(
            [(e.name, f"{e.layers} layers · saved block") for e in entries])

    # ----- dialogs -----------------------------------------------------------------------
    def _ask_count(self, bid: str) -> int | None:
        n, ok = QInputDialog.getInt(self.w, "Repeat block", f"How many times in all should "
                                    f"block '{bid}' run? (copies get their own weights)",
                                    3, 2, 100)
        return n if ok else None

    def _ask_name(self, current: str) -> str | None:
        name, ok = QInputDialog.getText(self.w, "Rename block", "Block name:", text=current)
        return name if ok else None

    # ----- frames of expanded blocks -----------------------------------------------------
    def _on_change(self, ch: Change) -> None:
        if not self._alive():
            return
        if ch.reset or ch.structure or ch.moved:
            self.sync_frames()
        if ch.reset or ch.structure:
            self.update_actions()

    def sync_frames(self) -> None:
        """One frame around the cards of each expanded block."""
        sc = self.w.scene
        expanded = block_edit.expanded_blocks(self.w.document.graph)
        for bid in [b for b in self.frames if b not in expanded]:
            frame = self.frames.pop(bid)
            if frame.scene() is sc:
                sc.removeItem(frame)
        for bid, (name, members) in expanded.items():
            items = [sc.nodes[m] for m in members if m in sc.nodes]
            if not items:
                continue
            frame = self.frames.get(bid)
            if frame is None or frame.name != name:
                if frame is not None and frame.scene() is sc:
                    sc.removeItem(frame)
                frame = self.frames[bid] = BlockFrame(bid, name)
                sc.addItem(frame)
            rect = QRectF()
            for it in items:
                rect |= QRectF(it.pos().x(), it.pos().y(), it.width, it.height)
            frame.set_rect(rect)


class _TitleClicks(QObject):
    """A double-click on an expanded block's title folds it (the view sees it first)."""

    def __init__(self, actions: BlockActions) -> None:
        super().__init__(actions.w)
        self.actions = actions

    def eventFilter(self, obj: QObject, ev: QEvent) -> bool:
        if ev.type() == QEvent.Type.MouseButtonDblClick and self.actions.frames:
            at = self.actions.w.view.mapToScene(ev.position().toPoint())
            for frame in list(self.actions.frames.values()):
                if frame.title_rect().contains(at):
                    frame.collapse()
                    return True
        return False
