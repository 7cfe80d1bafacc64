"""Training marks of the layers inside collapsed blocks, folded onto the block's card.

The monitor measures the flat network, whose ids (``res1-conv1``) have no card while their
block is collapsed. A collapsed block shows the worst of its layers' badges (named, so
"conv2: dead 62 %" says where to look), or its output's statistics when all are healthy; its
tooltip lists every layer inside. A wire into or out of a collapsed block takes the tint of
the flat wire it stands for. Qt-free: the scene applies what these functions return.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.blocks import flatten, output_of
from engine.errors import NetBuilderError
from engine.graph import Edge, Graph

Badge = tuple[str, str, str]  # text, level, tooltip
Flow = tuple[float, bool]  # gradient norm, approximate?
LEVELS = ("ok", "warn", "bad", "nan")  # from healthy to the first NaN


@dataclass(frozen=True)
class BlockMap:
    """For a graph with blocks: every flat id inside a top-level block -> that block's id,
    and each top-level block's output as a flat id."""

    owner: dict[str, str]
    output: dict[str, str]

    @classmethod
    def of(cls, graph: Graph) -> BlockMap:
        """The map of ``graph`` (empty when it has no blocks or cannot be flattened)."""
        blocks = {nid: n for nid, n in graph.nodes.items() if n.block is not None}
        if not blocks:
            return cls({}, {})
        try:
            flat = flatten(graph.nodes, graph.edges)
        except NetBuilderError:
            return cls({}, {})
        owner = {fid: path[0] for fid, path in flat.path.items() if path}
        return cls(owner, {bid: output_of(bid, n) for bid, n in blocks.items()})

    def inner_name(self, flat_id: str) -> str:
        """``res1-conv1`` -> ``conv1`` (the id as the user sees it inside the block)."""
        block = self.owner.get(flat_id)
        if block and flat_id.startswith(block + "-"):
            return flat_id[len(block) + 1:]
        return flat_id


def fold_badges(badges: dict[str, Badge], bmap: BlockMap) -> dict[str, Badge]:
    """Badges per card: flat ids outside blocks as given, one badge per collapsed block."""
    shown: dict[str, Badge] = {}
    inside: dict[str, list[tuple[str, Badge]]] = {}
    for nid, badge in badges.items():
        block = bmap.owner.get(nid)
        if block is None:
            shown[nid] = badge
        else:
            inside.setdefault(block, []).append((nid, badge))
    for block, members in inside.items():
        shown[block] = _block_badge(block, members, bmap)
    return shown


def _block_badge(block: str, members: list[tuple[str, Badge]], bmap: BlockMap) -> Badge:
    worst_id, worst = max(members, key=lambda m: LEVELS.index(m[1][1]))
    lines = [f"{bmap.inner_name(nid)}: {b[2] or b[0]}" for nid, b in members]
    tip = f"{len(members)} layers inside measured; " + "; ".join(lines)
    if worst[1] != "ok":
        return f"{bmap.inner_name(worst_id)}: {worst[0]}", worst[1], tip
    out = dict(members).get(bmap.output.get(block, ""))
    text = out[0] if out is not None else f"{len(members)} layers ok"
    return text, "ok", tip


def fold_flows(flows: dict[tuple[str, str, int], Flow], bmap: BlockMap,
               wires: list[Edge]) -> dict[Edge, Flow]:
    """Wire tints per drawn wire (``wires``: the canvas's), from flat (src, dst, port) keys.
    A flat wire between two layers of the same block has no drawn wire and is left out."""
    drawn = set(wires)
    between: dict[tuple[str, str], list[Edge]] = {}
    for e in wires:
        between.setdefault((e.src, e.dst), []).append(e)
    shown: dict[Edge, Flow] = {}
    for (src, dst, port), flow in flows.items():
        e = Edge(src, dst, port)
        if e in drawn:
            shown[e] = flow
            continue
        s, d = bmap.owner.get(src, src), bmap.owner.get(dst, dst)
        if s == d:
            continue
        candidates = between.get((s, d), [])
        same_port = [c for c in candidates if c.port == port]
        pick = same_port or candidates
        if len(pick) == 1:  # several layers inside may read one block input: the largest
            old = shown.get(pick[0])
            if old is None or flow[0] > old[0]:
                shown[pick[0]] = flow
    return shown
