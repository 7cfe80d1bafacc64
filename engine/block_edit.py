"""Edits that make, undo and repeat blocks, as functions from a Graph to a new Graph (the
application wraps them in undoable commands; scripts call them directly).

- ``group``: selected nodes become one Block node. Wires from outside into the selection
  become its input ports (one per outside node that feeds it), the one node whose output
  leaves the selection becomes its output.
- ``ungroup``: a Block node's contents go back into the graph (ids kept where free).
- ``expand`` / ``collapse``: ungroup with the flat ids of ``engine.blocks.derived_id`` and
  a ``"block"`` entry in each member's ``ui``, so the block can be folded again as it was.
- ``repeat``: N copies of a one-input block in a chain (weights not shared: each copy has
  its own id, and its parameter names derive from it).
"""

from __future__ import annotations

import copy
from typing import Any

from .blocks import BLOCK_TYPE, Block, Edge, Node, derived_id
from .errors import GraphStructureError
from .graph import Graph

Pos = tuple[float, float]
ROW = 100.0  # canvas units from one card to the next below it
FRAME_ROOM = 40.0  # above an open block's cards: its frame's title


def _pos(g: Graph, nid: str) -> Pos | None:
    entry = g.ui.get(nid)
    pos = entry.get("pos") if isinstance(entry, dict) else None
    if isinstance(pos, list | tuple) and len(pos) == 2 and all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in pos):
        return float(pos[0]), float(pos[1])
    return None


def _rank(g: Graph) -> dict[str, int]:
    try:
        order = g.topological_order()
    except GraphStructureError:
        order = list(g.nodes)
    return {n: i for i, n in enumerate(order)}


def group(g: Graph, ids: list[str], block_id: str, name: str = "Block",
          inner_ids: dict[str, str] | None = None) -> Graph:
    """A copy of ``g`` with the nodes ``ids`` grouped into Block ``block_id``.

    ``inner_ids``: the id each node takes inside the block (default: its own). Raises
    GraphStructureError (naming the reason) for a selection that cannot be one block."""
    sel = list(dict.fromkeys(ids))
    if len(sel) < 1:
        raise GraphStructureError("select the nodes to group first")
    for nid in sel:
        if nid not in g.nodes:
            raise GraphStructureError(f"no node named '{nid}'", nid)
        t = g.nodes[nid].type
        if t in ("Input", "Output"):
            raise GraphStructureError(f"a block holds no {t} node: leave '{nid}' out of the "
                                      "selection", nid)
    if block_id in g.nodes and block_id not in sel:
        raise GraphStructureError(f"a node named '{block_id}' already exists", block_id)
    inner = {nid: (inner_ids or {}).get(nid, nid) for nid in sel}
    members = set(sel)
    leaving = list(dict.fromkeys(e.src for e in g.edges
                                 if e.src in members and e.dst not in members))
    if not leaving:
        raise GraphStructureError("nothing outside uses the selection's output: a block needs "
                                  "one output wire", sel[0])
    if len(leaving) > 1:
        names = " and ".join(f"'{n}'" for n in leaving[:3])
        raise GraphStructureError(f"a block has one output, but {names} both feed nodes "
                                  "outside the selection", leaving[1])
    between = _between(g, members)
    if between:
        raise GraphStructureError(f"the selection is not one piece: '{between}' lies between "
                                  "its parts; select it too", between)
    rank = _rank(g)
    sources = sorted({e.src for e in g.edges if e.dst in members and e.src not in members},
                     key=lambda s: rank.get(s, 0))
    if not sources:
        raise GraphStructureError("nothing feeds the selection: a block needs an input wire",
                                  sel[0])
    taken = set(inner.values())
    ports: dict[str, str] = {}
    for i, src in enumerate(sources):
        cand = "x" if len(sources) == 1 else f"x{i + 1}"
        while cand in taken:
            cand += "_in"
        taken.add(cand)
        ports[src] = cand
    order = [n for n in g.nodes if n in members]
    body_edges = []
    for e in g.edges:
        if e.dst in members:
            src = inner[e.src] if e.src in members else ports[e.src]
            body_edges.append(Edge(src, inner[e.dst], e.port))
    placed = [p for p in (_pos(g, n) for n in order) if p is not None]
    x0 = min((p[0] for p in placed), default=0.0)
    y0 = min((p[1] for p in placed), default=0.0)
    body_ui: dict[str, Any] = {}
    for n in order:
        p = _pos(g, n)
        entry = {k: copy.deepcopy(v) for k, v in (g.ui.get(n) or {}).items()
                 if k not in ("pos", "block")} if isinstance(g.ui.get(n), dict) else {}
        if p is not None:
            entry["pos"] = [round(p[0] - x0, 2), round(p[1] - y0, 2)]
        body_ui[inner[n]] = entry
    body = Block(name, [ports[s] for s in sources], inner[leaving[0]],
                 {inner[n]: Node(inner[n], g.nodes[n].type, copy.deepcopy(g.nodes[n].params),
                                 copy.deepcopy(g.nodes[n].block), g.nodes[n].trainable,
                                 g.nodes[n].lr_mult) for n in order},
                 body_edges, body_ui)
    out = Graph(g.name)
    out.training = copy.deepcopy(g.training)
    first = True
    for nid, node in g.nodes.items():
        if nid in members:
            if first:
                out.nodes[block_id] = Node(block_id, BLOCK_TYPE, {}, body)
                first = False
            continue
        out.nodes[nid] = copy.deepcopy(node)
    port_of = {s: i for i, s in enumerate(sources)}
    seen_in: set[str] = set()
    for e in g.edges:
        if e.src in members and e.dst in members:
            continue
        if e.dst in members:
            if e.src not in seen_in:
                seen_in.add(e.src)
                out.edges.append(Edge(e.src, block_id, port_of[e.src]))
        elif e.src in members:
            out.edges.append(Edge(block_id, e.dst, e.port))
        else:
            out.edges.append(e)
    for k, v in g.ui.items():
        if k not in members:
            out.ui[k] = copy.deepcopy(v)
    out.ui[block_id] = {"pos": [x0, y0]}
    return out


def _between(g: Graph, members: set[str]) -> str | None:
    """An outside node both fed by the selection and feeding it (grouping would loop)."""
    succ: dict[str, list[str]] = {}
    for e in g.edges:
        succ.setdefault(e.src, []).append(e.dst)
    down: set[str] = set()
    stack = [d for m in members for d in succ.get(m, []) if d not in members]
    while stack:
        n = stack.pop()
        if n in down or n in members:
            continue
        down.add(n)
        stack.extend(succ.get(n, []))
    for n in down:
        if members & _reach(succ, n):
            return n
    return None


def _reach(succ: dict[str, list[str]], start: str) -> set[str]:
    seen: set[str] = set()
    stack = [start]
    while stack:
        for m in succ.get(stack.pop(), []):
            if m not in seen:
                seen.add(m)
                stack.append(m)
    return seen


def ungroup(g: Graph, block_id: str, derived: bool = False, tag: bool = False) -> Graph:
    """A copy of ``g`` with Block ``block_id`` replaced by its contents, placed where the
    block was. Inner ids are kept where free (else derived); ``derived``: always derived
    (``engine.blocks.derived_id``, the ids compile gives them); ``tag``: mark each member's
    ``ui`` with ``{"block": {"id", "name", "inner", "seq"}}`` for ``collapse``."""
    node = g.nodes.get(block_id)
    if node is None or node.block is None:
        raise GraphStructureError(f"'{block_id}' is not a block", block_id)
    b = node.block
    taken = set(g.nodes) - {block_id}
    new: dict[str, str] = {}
    for nid in b.nodes:
        cand = nid if (not derived and nid not in taken and nid not in new.values()) \
            else derived_id(block_id, nid)
        if cand in taken or cand in new.values():
            raise GraphStructureError(f"the id '{cand}' for node '{nid}' of block '{block_id}' "
                                      "is taken: rename one of them", block_id)
        new[nid] = cand
    feeds = {e.port: e.src for e in g.edges if e.dst == block_id}
    port_src = {p: feeds.get(i) for i, p in enumerate(b.inputs)}
    out = Graph(g.name)
    out.training = copy.deepcopy(g.training)
    for nid, n in g.nodes.items():
        if nid != block_id:
            out.nodes[nid] = copy.deepcopy(n)
            continue
        for k, inner in b.nodes.items():
            out.nodes[new[k]] = Node(new[k], inner.type, copy.deepcopy(inner.params),
                                     copy.deepcopy(inner.block), inner.trainable and n.trainable,
                                     inner.lr_mult * n.lr_mult)
    for e in g.edges:
        if e.dst == block_id:
            continue
        if e.src == block_id:
            out.edges.append(Edge(new[b.output], e.dst, e.port))
        else:
            out.edges.append(e)
    for e in b.edges:
        src = port_src.get(e.src) if e.src in port_src else new[e.src]
        if src is not None:
            out.edges.append(Edge(src, new[e.dst], e.port))
    out.ui = {k: copy.deepcopy(v) for k, v in g.ui.items() if k != block_id}
    bx, by = _pos(g, block_id) or (0.0, 0.0)
    top = by + (FRAME_ROOM if tag else 0.0)
    rel_pos: dict[str, tuple[float, float]] = {}
    for seq, k in enumerate(new):
        rel = b.ui.get(k, {}).get("pos") if isinstance(b.ui.get(k), dict) else None
        ok = isinstance(rel, list) and len(rel) == 2 and all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in rel)
        rel_pos[k] = (float(rel[0]), float(rel[1])) if ok else (0.0, ROW * seq)
    shift = 0.0
    if tag:  # make room below for the open block: move what lies under it down
        shift = max(0.0, top + max(y for _, y in rel_pos.values()) + ROW - (by + ROW))
        for k in list(out.ui):
            p = _pos(out, k)
            if k not in new.values() and p is not None and p[1] > by:
                out.ui[k] = dict(out.ui[k], pos=[p[0], round(p[1] + shift, 2)])
    for seq, (k, nid) in enumerate(new.items()):
        entry = copy.deepcopy(b.ui.get(k)) if isinstance(b.ui.get(k), dict) else {}
        entry["pos"] = [round(bx + rel_pos[k][0], 2), round(top + rel_pos[k][1], 2)]
        if tag:
            entry["block"] = {"id": block_id, "name": b.name, "inner": k, "seq": seq,
                              "shift": shift}
        out.ui[nid] = entry
    return out


def expand(g: Graph, block_id: str) -> Graph:
    """Open a block in place for editing: its members get the ids compile gives them and a
    ``ui`` tag that ``collapse`` reads."""
    return ungroup(g, block_id, derived=True, tag=True)


def expanded_blocks(g: Graph) -> dict[str, tuple[str, list[str]]]:
    """Block id -> (name, member ids in their original order) of every expanded block."""
    found: dict[str, tuple[str, list[tuple[int, str]]]] = {}
    for nid in g.nodes:
        tag = g.ui.get(nid, {}).get("block") if isinstance(g.ui.get(nid), dict) else None
        if isinstance(tag, dict) and isinstance(tag.get("id"), str):
            _, members = found.setdefault(tag["id"], (str(tag.get("name") or "Block"), []))
            seq = tag.get("seq")
            members.append((seq if isinstance(seq, int) else len(members), nid))
    return {bid: (name, [n for _, n in sorted(m)]) for bid, (name, m) in found.items()}


def collapse(g: Graph, block_id: str) -> Graph:
    """Fold an expanded block again (members and inner ids from their ``ui`` tags)."""
    blocks = expanded_blocks(g)
    if block_id not in blocks:
        raise GraphStructureError(f"no expanded block '{block_id}'", block_id)
    name, members = blocks[block_id]
    inner = {n: str(g.ui[n]["block"].get("inner") or n) for n in members}
    shift = g.ui[members[0]]["block"].get("shift")
    out = group(g, members, block_id, name, inner)
    bottom = max((p[1] for p in (_pos(g, m) for m in members) if p is not None), default=0.0)
    if isinstance(shift, int | float) and not isinstance(shift, bool) and shift > 0:
        for k in list(out.ui):  # what expand moved down comes back up
            p = _pos(out, k)
            if k != block_id and p is not None and p[1] > bottom:
                out.ui[k] = dict(out.ui[k], pos=[p[0], round(p[1] - shift, 2)])
    pos = _pos(out, block_id)
    if pos is not None:
        out.ui[block_id]["pos"] = [pos[0], round(pos[1] - FRAME_ROOM, 2)]
    return out


def repeat(g: Graph, block_id: str, n: int, step: Pos = (0.0, 120.0)) -> Graph:
    """A copy of ``g`` where Block ``block_id`` is followed by ``n - 1`` copies of itself in a
    chain (``<id>_2``, ``<id>_3``, ...; the next free ones), each ``step`` below the last.
    What the block fed is fed by the last copy. Needs a block with one input."""
    node = g.nodes.get(block_id)
    if node is None or node.block is None:
        raise GraphStructureError(f"'{block_id}' is not a block", block_id)
    if len(node.block.inputs) != 1:
        raise GraphStructureError(f"Repeat needs a block with one input; '{block_id}' has "
                                  f"{len(node.block.inputs)}", block_id)
    if not 2 <= n <= 100:
        raise GraphStructureError(f"repeat a block 2 to 100 times, not {n}", block_id)
    out = g.copy()
    ids: list[str] = []
    k = 2
    while len(ids) < n - 1:
        cand = f"{block_id}_{k}"
        if cand not in out.nodes and len(cand) <= 64:
            ids.append(cand)
        k += 1
    if any(len(c) > 64 for c in ids):
        raise GraphStructureError(f"the id '{block_id}' is too long to number copies of it",
                                  block_id)
    outgoing = [e for e in out.edges if e.src == block_id]
    out.edges = [e for e in out.edges if e.src != block_id]
    items = list(out.nodes.items())
    at = [k for k, _ in items].index(block_id) + 1
    copies = [(c, Node(c, BLOCK_TYPE, copy.deepcopy(node.params), copy.deepcopy(node.block)))
              for c in ids]
    out.nodes = dict(items[:at] + copies + items[at:])
    prev = block_id
    x, y = _pos(g, block_id) or (0.0, 0.0)
    for i, c in enumerate(ids, start=1):
        out.edges.append(Edge(prev, c, 0))
        out.ui[c] = {"pos": [round(x + step[0] * i, 2), round(y + step[1] * i, 2)]}
        prev = c
    out.edges += [Edge(prev, e.dst, e.port) for e in outgoing]
    return out
