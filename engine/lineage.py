"""Run lineage: where a run's weights came from and how its graph differs from its parent's.

A run started from another run's checkpoint (a bundle, at the epoch whose weights it holds) is
that run's child. Its record, kept in the bundle's manifest under ``"run"``, says so:

    {"run_id": "20261207-130512-3fa9", "epoch": 12,
     "parent": {"run_id": "20261207-120002-11c0", "epoch": 10, "file": "runs/lenet5.nbmodel"},
     "weights_from": {"file": "runs/lenet5.nbmodel", "run_id": "...", "epoch": 10},
     "diff": {"added": {"f7": "Dense"}, "removed": [], "changed": {"f6": ["units 84→128"]},
              "edges_added": ["f6->f7:0"], "edges_removed": []},
     "carry": {"nodes": [...]}, "frozen": ["c1", "c3"]}

``graph_diff`` compares two graphs without compiling them (Qt-free, no weights needed).
"""

from __future__ import annotations

import datetime as _dt
import os
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .carry import fmt_value, param_changes
from .errors import BundleError, NetBuilderError, short_repr
from .graph import Edge, Graph, Node
from .text import plural

RUN_KEY = "run"


def new_run_id() -> str:
    """A fresh run id: the UTC time and four random hex digits (``20261207-130512-3fa9``)."""
    now = _dt.datetime.now(_dt.UTC)
    return f"{now:%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"


def _resolved(node: Node) -> dict[str, Any]:
    try:
        return node.layer_class().resolve_params(node.params, node.id)
    except NetBuilderError:
        return dict(node.params)


def _node_changes(a: Node, b: Node) -> list[str]:
    if a.type != b.type:
        return [f"type {a.type}→{b.type}"]
    out = param_changes(_resolved(a), _resolved(b))
    if a.trainable != b.trainable:
        out.append("frozen" if not b.trainable else "thawed")
    if a.lr_mult != b.lr_mult:
        out.append(f"lr_mult {fmt_value(a.lr_mult)}→{fmt_value(b.lr_mult)}")
    return out


def _edge(e: Edge) -> str:
    return f"{e.src}->{e.dst}:{e.port}"


@dataclass
class GraphDiff:
    """What changed from a parent graph to a child graph. ``added``: node id -> type;
    ``removed``: ids; ``changed``: id -> changes in words (``"units 64→128"``, ``"type
    Dense→Conv2D"``, ``"frozen"``, ``"lr_mult 1→0.1"``); edges as ``"src->dst:port"``."""

    added: dict[str, str] = field(default_factory=dict)
    removed: list[str] = field(default_factory=list)
    changed: dict[str, list[str]] = field(default_factory=dict)
    edges_added: list[str] = field(default_factory=list)
    edges_removed: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.added or self.removed or self.changed or self.edges_added
                    or self.edges_removed)

    def summary(self) -> str:
        """One line: ``"added f7 (Dense); changed f6: units 84→128; 1 wire added"``."""
        if self.empty:
            return "no change"
        parts = []
        if self.added:
            parts.append("added " + ", ".join(f"{k} ({t})" for k, t in self.added.items()))
        if self.removed:
            parts.append("removed " + ", ".join(self.removed))
        for nid, what in self.changed.items():
            parts.append(f"changed {nid}: {', '.join(what)}")
        if self.edges_added:
            parts.append(plural(len(self.edges_added), "wire") + " added")
        if self.edges_removed:
            parts.append(plural(len(self.edges_removed), "wire") + " removed")
        return "; ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {"added": dict(self.added), "removed": list(self.removed),
                "changed": {k: list(v) for k, v in self.changed.items()},
                "edges_added": list(self.edges_added), "edges_removed": list(self.edges_removed)}

    @classmethod
    def from_dict(cls, d: Any, where: str = "graph diff") -> GraphDiff:
        """Read one back, refusing (BundleError) anything of the wrong shape."""
        if not isinstance(d, dict):
            raise BundleError(f"{where} must be an object, got {short_repr(d)}")
        added = d.get("added", {})
        changed = d.get("changed", {})
        lists = {k: d.get(k, []) for k in ("removed", "edges_added", "edges_removed")}
        ok = isinstance(added, dict) and all(isinstance(k, str) and isinstance(v, str)
                                             for k, v in added.items())
        ok = ok and isinstance(changed, dict) and all(
            isinstance(k, str) and isinstance(v, list) and all(isinstance(s, str) for s in v)
            for k, v in changed.items())
        ok = ok and all(isinstance(v, list) and all(isinstance(s, str) for s in v)
                        for v in lists.values())
        if not ok:
            raise BundleError(f"{where} is damaged: {short_repr(d)}")
        return cls(dict(added), list(lists["removed"]), {k: list(v) for k, v in changed.items()},
                   list(lists["edges_added"]), list(lists["edges_removed"]))


def graph_diff(parent: Graph, child: Graph) -> GraphDiff:
    """The nodes added, removed and changed (type, parameters with defaults filled in,
    trainable, lr_mult) and the wires added and removed from ``parent`` to ``child``.
    Positions and the training section do not count."""
    diff = GraphDiff()
    for nid, node in child.nodes.items():
        if nid not in parent.nodes:
            diff.added[nid] = node.type
            continue
        changes = _node_changes(parent.nodes[nid], node)
        if changes:
            diff.changed[nid] = changes
    diff.removed = [nid for nid in parent.nodes if nid not in child.nodes]
    before = {_edge(e) for e in parent.edges}
    after = {_edge(e) for e in child.edges}
    diff.edges_added = [_edge(e) for e in child.edges if _edge(e) not in before]
    diff.edges_removed = [_edge(e) for e in parent.edges if _edge(e) not in after]
    return diff


def _opt_int(d: Mapping[str, Any], key: str, where: str) -> int | None:
    v = d.get(key)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int) or v < 0:
        raise BundleError(f"{where}: {key} must be a whole number ≥ 0, got {short_repr(v)}")
    return v


def _origin(d: Any, where: str) -> dict[str, Any] | None:
    """A ``{"run_id", "epoch", "file"}`` reference, checked."""
    if d is None:
        return None
    if not isinstance(d, dict):
        raise BundleError(f"{where} must be an object, got {short_repr(d)}")
    out: dict[str, Any] = {}
    for key in ("run_id", "file"):
        v = d.get(key)
        if v is not None and not isinstance(v, str):
            raise BundleError(f"{where}: {key} must be text, got {short_repr(v)}")
        out[key] = v
    out["epoch"] = _opt_int(d, "epoch", where)
    return out


@dataclass
class RunRecord:
    """A run's place in the tree (see the module note). ``epoch``: the epoch whose weights
    the bundle holds; ``parent``: the run and epoch it continued or branched from;
    ``weights_from``: where its starting weights were read (fine-tuning); ``diff``: its graph
    against the parent's; ``carry``: which nodes kept their weights; ``frozen``: node ids."""

    run_id: str
    epoch: int | None = None
    parent: dict[str, Any] | None = None
    weights_from: dict[str, Any] | None = None
    diff: GraphDiff | None = None
    carry: dict[str, Any] | None = None
    frozen: list[str] = field(default_factory=list)

    def provenance(self) -> str:
        """``"weights from runs/a.nbmodel, run 2026…, epoch 10"``, or "" for a fresh run."""
        w = self.weights_from
        if not w:
            return ""
        parts = [f"weights from {w.get('file') or 'an unnamed bundle'}"]
        if w.get("run_id"):
            parts.append(f"run {w['run_id']}")
        if w.get("epoch") is not None:
            parts.append(f"epoch {w['epoch']}")
        return ", ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"run_id": self.run_id, "epoch": self.epoch}
        if self.parent:
            out["parent"] = dict(self.parent)
        if self.weights_from:
            out["weights_from"] = dict(self.weights_from)
        if self.diff is not None:
            out["diff"] = self.diff.to_dict()
        if self.carry is not None:
            out["carry"] = self.carry
        if self.frozen:
            out["frozen"] = list(self.frozen)
        return out

    @classmethod
    def from_dict(cls, d: Any, where: str = "run record") -> RunRecord:
        if not isinstance(d, dict) or not isinstance(d.get("run_id"), str):
            raise BundleError(f"{where} must be an object with a run_id, got {short_repr(d)}")
        frozen = d.get("frozen", [])
        if not isinstance(frozen, list) or not all(isinstance(f, str) for f in frozen):
            raise BundleError(f"{where}: frozen must be a list of node ids")
        carry = d.get("carry")
        if carry is not None and not isinstance(carry, dict):
            raise BundleError(f"{where}: carry must be an object")
        diff = d.get("diff")
        return cls(d["run_id"], _opt_int(d, "epoch", where),
                   _origin(d.get("parent"), f"{where}: parent"),
                   _origin(d.get("weights_from"), f"{where}: weights_from"),
                   None if diff is None else GraphDiff.from_dict(diff, f"{where}: diff"),
                   carry, list(frozen))


def run_of(manifest: Mapping[str, Any]) -> RunRecord | None:
    """The run record of a bundle's manifest, or None for a bundle saved without one."""
    d = manifest.get(RUN_KEY)
    return None if d is None else RunRecord.from_dict(d)


def checkpoint_epoch(manifest: Mapping[str, Any]) -> int | None:
    """The epoch whose weights a bundle holds: its run record's, else its metrics'."""
    run = run_of(manifest)
    if run is not None and run.epoch is not None:
        return run.epoch
    epochs = (manifest.get("metrics") or {}).get("epochs")
    return epochs if isinstance(epochs, int) and not isinstance(epochs, bool) else None


def child_record(parent_manifest: Mapping[str, Any], parent_graph: Graph, child_graph: Graph,
                 file: str | os.PathLike | None = None, carry: Mapping[str, Any] | None = None,
                 frozen: Sequence[str] = (), fine_tune: bool = True) -> RunRecord:
    """The record of a new run started from a parent bundle's checkpoint (its manifest and
    graph): parent run and epoch, the graph diff, and with ``fine_tune`` where the weights
    came from."""
    prun = run_of(parent_manifest)
    ref = {"run_id": prun.run_id if prun else None, "epoch": checkpoint_epoch(parent_manifest),
           "file": None if file is None else os.fspath(file)}
    return RunRecord(new_run_id(), None, ref, dict(ref) if fine_tune else None,
                     graph_diff(parent_graph, child_graph), dict(carry) if carry else None,
                     list(frozen))
