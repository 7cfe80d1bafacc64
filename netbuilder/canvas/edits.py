"""The canvas's edits: every change a gesture or a menu asks of the model goes through
``run`` as an undoable command (add, delete, copy, paste, duplicate); a refusal shows where
it happened (a mixin of CanvasScene)."""

from __future__ import annotations

import itertools
import math
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QPointF, QRectF

import engine
from engine.errors import NetBuilderError

from ..document import AddNodes, Command, DeleteItems, NodeSpec, make_fragment, paste_command
from . import theme
from .edge import Toast

if TYPE_CHECKING:
    from .scene import CanvasScene


class SceneEdits:
    """Undoable edits of the scene's document."""

    def run(self: CanvasScene, cmd: Command, where: QPointF | None = None) -> bool:
        """Push ``cmd``; a refusal is shown (status bar + canvas label) and returns False."""
        try:
            self.push(cmd)
        except NetBuilderError as exc:
            self.refuse(exc.message, where)
            return False
        return True

    def refuse(self: CanvasScene, text: str, where: QPointF | None = None) -> None:
        self.message.emit(text, True)
        if self.last_toast is not None and self.last_toast.scene() is self:
            self.last_toast.dismiss()
        self.last_toast = Toast(text)
        if where is None:
            views = self.views()
            where = (views[0].mapToScene(views[0].viewport().rect().center())
                     if views else QPointF(0, 0))
        self.last_toast.setPos(where)
        self.last_toast.timer.setParent(self)  # dies with the scene
        self.addItem(self.last_toast)

    def new_node_params(self: CanvasScene, type_name: str) -> dict[str, Any]:
        cls = engine.get_layer_class(type_name)
        return {s.name: s.to_json(s.default) for s in cls.param_specs if s.required}

    def add_layer(self: CanvasScene, type_name: str, at: QPointF) -> str | None:
        """Add a node of ``type_name`` centred where it was dropped; returns its id.
        ``"block:<name>"``: a block of the user's library (``drop_block``)."""
        from .scene import BLOCK_PREFIX  # scene imports this module

        if type_name.startswith(BLOCK_PREFIX) and self.drop_block is not None:
            return self.drop_block(type_name[len(BLOCK_PREFIX):], at)
        nid = self.doc.fresh_id(type_name)
        top_left = self._snap(at - QPointF(theme.NODE_WIDTH / 2, theme.HEADER_H / 2), True)
        spec = NodeSpec(nid, type_name, self.new_node_params(type_name),
                        (top_left.x(), top_left.y()))
        if not self.run(AddNodes([spec]), at):
            return None
        self.select_nodes([nid])
        self.message.emit(f"Added {type_name} '{nid}'", False)
        return nid

    def delete_selection(self: CanvasScene) -> bool:
        ids, edges = self.selected_node_ids(), self.selected_edges()
        if not ids and not edges:
            return False
        return self.run(DeleteItems(ids, edges))

    def copy_selection(self: CanvasScene) -> dict[str, Any] | None:
        ids = self.selected_node_ids()
        return make_fragment(self.doc, ids) if ids else None

    def free_offset(self: CanvasScene, fragment: Any) -> tuple[float, float]:
        """How far right of where it was copied a fragment must land to cover no card (and
        so no port): the first free place in steps of its own width, on the grid (in place
        after a cut). Pasting again lands right of the last paste."""
        rects = []
        for nd in fragment.get("nodes", []) if isinstance(fragment, dict) else []:
            pos = nd.get("pos") if isinstance(nd, dict) else None
            if not (isinstance(pos, list) and len(pos) == 2
                    and all(isinstance(v, int | float) for v in pos)):
                continue
            item = self.nodes.get(nd.get("id"))
            h = item.height if item is not None else theme.HEADER_H * 3
            rects.append(QRectF(float(pos[0]), float(pos[1]), theme.NODE_WIDTH, h))
        if not rects:
            return (2 * theme.GRID, 2 * theme.GRID)
        box = rects[0]
        for r in rects[1:]:
            box = box.united(r)
        step = math.ceil((box.width() + theme.GRID) / theme.GRID) * theme.GRID
        taken = [QRectF(it.pos().x(), it.pos().y(), it.width, it.height).adjusted(
            -theme.GRID / 2, -theme.GRID / 2, theme.GRID / 2, theme.GRID / 2)
            for it in self.nodes.values()]
        for k in itertools.count(0):
            moved = [r.translated(k * step, 0) for r in rects]
            if not any(m.intersects(t) for m in moved for t in taken):
                return (k * step, 0.0)
        raise AssertionError

    def paste(self: CanvasScene, fragment: Any, offset: tuple[float, float] | None = None,
              text: str = "Paste") -> list[str]:
        """Add a copied fragment (fresh ids), by default beside its originals where it
        covers nothing (``free_offset``); the pasted nodes end up selected."""
        if offset is None:
            offset = self.free_offset(fragment)
        try:
            cmd = paste_command(self.doc, fragment, offset, text)
        except NetBuilderError as exc:
            self.refuse(exc.message)
            return []
        if not self.run(cmd):
            return []
        ids = [s.id for s in cmd.nodes]
        self.select_nodes(ids)
        return ids

    def duplicate_selection(self: CanvasScene) -> list[str]:
        """Copies of the selected nodes (and the wires among them) beside the originals."""
        frag = self.copy_selection()
        if not frag:
            return []
        return self.paste(frag, text="Duplicate")
