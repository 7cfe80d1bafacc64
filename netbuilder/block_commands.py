"""Undoable block edits on a Document (Qt-free): Group as block, Ungroup, Expand / Collapse
in place, Repeat ×N, Rename, and Insert a block from the library.

Each command computes the edited graph with ``engine.block_edit`` when it first runs (a
refusal raises GraphStructureError and changes nothing), then swaps whole graphs: ``do``
puts the edited one in, ``undo`` the one from before.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from engine import block_edit
from engine.blocks import BLOCK_TYPE, Node, parse_block
from engine.errors import GraphFormatError, GraphStructureError
from engine.graph import VERSION, Graph

from .document import Command, Document, Pos


class GraphSwap(Command):
    """Base: an edit that replaces the graph with one computed by ``make``."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text
        self._before: Graph | None = None
        self._after: Graph | None = None

    def make(self, g: Graph) -> Graph:
        raise NotImplementedError

    def do(self, doc: Document) -> None:
        if self._after is None:
            self._before = doc.graph
            self._after = self.make(doc.graph.copy())
        doc.replace_graph(self._after.copy())

    def undo(self, doc: Document) -> None:
        assert self._before is not None
        doc.replace_graph(self._before.copy())


def fresh_block_id(doc: Document) -> str:
    return doc.fresh_id(BLOCK_TYPE)


def default_name(block_id: str) -> str:
    """"block3" -> "Block 3"."""
    m = re.fullmatch(r"block(\d+)", block_id)
    return f"Block {m.group(1)}" if m else block_id


class GroupAsBlock(GraphSwap):
    """Selected nodes become one Block node; the wires crossing the selection's edge become
    its ports (see ``engine.block_edit.group``)."""

    def __init__(self, doc: Document, node_ids: list[str], name: str = "",
                 block_id: str = "") -> None:
        self.node_ids = list(node_ids)
        self.block_id = block_id or fresh_block_id(doc)
        self.name = name or default_name(self.block_id)
        super().__init__(f"Group {len(self.node_ids)} nodes as block '{self.name}'")

    def make(self, g: Graph) -> Graph:
        return block_edit.group(g, self.node_ids, self.block_id, self.name)


class Ungroup(GraphSwap):
    """A block's contents go back into the graph (inner ids kept where free)."""

    def __init__(self, block_id: str) -> None:
        self.block_id = block_id
        super().__init__(f"Ungroup '{block_id}'")

    def make(self, g: Graph) -> Graph:
        return block_edit.ungroup(g, self.block_id)


class ExpandBlock(GraphSwap):
    """Open a block in place to edit it (members keep a tag to fold them again)."""

    def __init__(self, block_id: str) -> None:
        self.block_id = block_id
        super().__init__(f"Expand block '{block_id}'")

    def make(self, g: Graph) -> Graph:
        return block_edit.expand(g, self.block_id)


class CollapseBlock(GraphSwap):
    """Fold an expanded block into one node again, with its edits."""

    def __init__(self, block_id: str) -> None:
        self.block_id = block_id
        super().__init__(f"Collapse block '{block_id}'")

    def make(self, g: Graph) -> Graph:
        return block_edit.collapse(g, self.block_id)


class RepeatBlock(GraphSwap):
    """Stack the block ``n`` times in all (copies numbered ``<id>_2`` ..., own weights)."""

    def __init__(self, block_id: str, n: int, step: Pos = (0.0, 120.0)) -> None:
        self.block_id, self.n, self.step = block_id, int(n), step
        super().__init__(f"Repeat '{block_id}' ×{self.n}")

    def make(self, g: Graph) -> Graph:
        return block_edit.repeat(g, self.block_id, self.n, self.step)


class RenameBlock(GraphSwap):
    """Change a block's name (what its card, the library and the PyTorch class show)."""

    def __init__(self, block_id: str, name: str) -> None:
        self.block_id, self.name = block_id, name.strip()[:200]
        super().__init__(f"Name block '{block_id}' '{self.name}'")

    def make(self, g: Graph) -> Graph:
        node = g.nodes.get(self.block_id)
        if node is None or node.block is None:
            raise GraphStructureError(f"'{self.block_id}' is not a block", self.block_id)
        if not self.name:
            raise GraphStructureError("a block needs a name", self.block_id)
        node.block.name = self.name
        return g


class InsertBlock(GraphSwap):
    """Add a Block node from saved contents (``Block.to_dict()`` data) at ``pos``."""

    def __init__(self, doc: Document, body: dict[str, Any], pos: Pos) -> None:
        self.body = copy.deepcopy(body)
        self.block_id = fresh_block_id(doc)
        self.pos = pos
        super().__init__(f"Add block '{body.get('name', 'Block')}'")

    def make(self, g: Graph) -> Graph:
        if not isinstance(self.body, dict):
            raise GraphFormatError("the block library entry is not a block")
        block = parse_block(self.body, self.block_id, VERSION)
        g.add_node(Node(self.block_id, BLOCK_TYPE, {}, block))
        g.ui[self.block_id] = {"pos": [float(self.pos[0]), float(self.pos[1])]}
        return g
