"""Weight carry-over across graph edits: keep what a network has learned when its graph
changes while a run is paused.

    new = engine.compile(edited_graph, seed=old.seed)
    report = carry_over(old, new, opt)       # opt: the run's optimizer, remapped in place
    report.kept, report.reinitialised, report.removed, report.added

A node keeps its weights when the edited graph has a node of the same id and type whose
parameters and buffers have the same names and shapes: its parameters, its optimizer state
(momentum, Adam's moments) and its buffers (BatchNorm's running statistics) are copied bit
for bit. Every other node keeps the fresh initialisation ``compile`` gave it, and its
optimizer state starts at zero (the step count ``opt.t`` runs on, so Adam's bias correction
is that of the run). A new Dense or Conv2D with ``init`` "identity" starts as the identity
(``engine.init``): inserted between two nodes that kept their weights, with nothing
nonlinear after it, it leaves the loss where it was.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .network import Network
from .optim import FLAT, Optimizer
from .registry import Layer, fmt_shape

KEPT, REINITIALISED, REMOVED, ADDED = "kept", "reinitialised", "removed", "added"


def fmt_value(v: Any) -> str:
    """A parameter value as the report writes it: ``64``, ``(3, 3)``, ``same``."""
    if isinstance(v, tuple | list):
        return fmt_shape(v)
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def param_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """``"units 64→128"`` for every parameter whose value differs between two resolved
    parameter sets of one layer type (``Layer.p``), in the order of ``new``."""
    out = []
    for k in list(new) + [k for k in old if k not in new]:
        a, b = old.get(k), new.get(k)
        if a != b:
            out.append(f"{k} {fmt_value(a)}→{fmt_value(b)}")
    return out


@dataclass(frozen=True)
class NodeFate:
    """What carry-over did to one node. ``fate``: kept / reinitialised / removed / added;
    ``reason``: why, in words (``"units 64→128"``), or what changed without touching the
    weights (``"rate 0.5→0.2"``); ``weights``: whether the node has parameters or buffers."""

    node_id: str
    fate: str
    reason: str = ""
    weights: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"node": self.node_id, "fate": self.fate, "reason": self.reason,
                "weights": self.weights}


@dataclass
class CarryReport:
    """The fate of every node of the old and the new graph (new graph's order, then the
    removed ones in the old order)."""

    nodes: list[NodeFate] = field(default_factory=list)

    def _ids(self, fate: str, weights_only: bool = False) -> list[str]:
        return [n.node_id for n in self.nodes if n.fate == fate
                and (n.weights or not weights_only)]

    @property
    def kept(self) -> list[str]:
        """Nodes with weights that kept them (nodes without weights are not listed)."""
        return self._ids(KEPT, weights_only=True)

    @property
    def reinitialised(self) -> list[str]:
        return self._ids(REINITIALISED)

    @property
    def removed(self) -> list[str]:
        return self._ids(REMOVED)

    @property
    def added(self) -> list[str]:
        return self._ids(ADDED)

    def fate(self, node_id: str) -> NodeFate:
        for n in self.nodes:
            if n.node_id == node_id:
                return n
        raise KeyError(node_id)

    def lines(self) -> list[str]:
        """One line per node that has weights or changed: ``"dense2  reinitialised: units
        64→128"``."""
        out = []
        for n in self.nodes:
            if n.fate == KEPT and not n.weights and not n.reason:
                continue
            out.append(f"{n.node_id}  {n.fate}" + (f": {n.reason}" if n.reason else ""))
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"nodes": [n.to_dict() for n in self.nodes]}


def _shapes(layer: Layer) -> dict[str, tuple[int, ...]]:
    return {**{k: tuple(v) for k, v in layer.param_shapes().items()},
            **{f"buffer:{k}": tuple(v) for k, v in layer.buffer_shapes().items()}}


def _why_reinit(old: Layer, new: Layer) -> str:
    """Why a node present in both graphs cannot keep its weights ("" if it can)."""
    if old.type_name != new.type_name:
        return f"type {old.type_name}→{new.type_name}"
    so, sn = _shapes(old), _shapes(new)
    if so == sn:
        return ""
    changes = param_changes(old.p, new.p)
    if changes:
        return ", ".join(changes)
    if list(old.in_shapes) != list(new.in_shapes):
        return ("input " + ", ".join(fmt_shape(s) for s in old.in_shapes) + "→"
                + ", ".join(fmt_shape(s) for s in new.in_shapes))
    diff = [f"{k} {fmt_shape(so[k]) if k in so else '-'}→{fmt_shape(sn[k]) if k in sn else '-'}"
            for k in sorted(set(so) | set(sn)) if so.get(k) != sn.get(k)]
    return ", ".join(diff)


def plan_carry(old: Network, new: Network) -> CarryReport:
    """What ``carry_over`` would do, without copying anything."""
    report = CarryReport()
    for nid in new.order:
        layer = new.layers[nid]
        has = bool(_shapes(layer))
        if nid not in old.layers:
            why = f"new {layer.type_name}"
            if has and layer.p.get("init") == "identity":
                why += ", starts as the identity"
            report.nodes.append(NodeFate(nid, ADDED, why, has))
            continue
        prev = old.layers[nid]
        why = _why_reinit(prev, layer)
        if why:
            report.nodes.append(NodeFate(nid, REINITIALISED, why, has))
        else:
            same_type = prev.type_name == layer.type_name
            note = ", ".join(param_changes(prev.p, layer.p)) if same_type else ""
            report.nodes.append(NodeFate(nid, KEPT, note, has))
    for nid in old.order:
        if nid not in new.layers:
            report.nodes.append(NodeFate(nid, REMOVED, "", bool(_shapes(old.layers[nid]))))
    return report


def carry_over(old: Network, new: Network, opt: Optimizer | None = None) -> CarryReport:
    """Copy into ``new`` the parameters and buffers of every node that keeps its weights
    (see the module note) and, with ``opt`` (the optimizer that trained ``old``), rewrite
    its state in place to fit ``new``: kept nodes' slots copied, the others zero, removed
    nodes' dropped. ``new``'s other nodes keep their fresh initialisation. Returns the
    report (kept / reinitialised / removed / added, with reasons)."""
    report = plan_carry(old, new)
    kept = [n.node_id for n in report.nodes if n.fate == KEPT and n.weights]
    for nid in kept:
        for name in old.layers[nid].param_shapes():
            key = f"{nid}.{name}"
            new.params[key][...] = old.params[key]
        for name in old.layers[nid].buffer_shapes():
            key = f"{nid}.{name}"
            new.buffers[key][...] = old.buffers[key]
    if opt is not None:
        remap_optimizer(opt, old, new, kept)
    return report


def remap_optimizer(opt: Optimizer, old: Network, new: Network, kept: list[str]) -> None:
    """Rewrite ``opt.state`` (slots over ``old``'s flat vector, or per parameter name) to
    fit ``new``: the slots of the parameters of ``kept`` nodes are copied, the rest are
    zero; ``opt.t`` is left as it is."""
    names = [f"{nid}.{p}" for nid in kept for p in old.layers[nid].param_shapes()]
    state: dict[str, dict[str, np.ndarray]] = {}
    for slot_name, slots in opt.state.items():
        if slot_name == FLAT:
            fresh = {}
            for key, arr in slots.items():
                out = np.zeros_like(new.flat_params, dtype=arr.dtype)
                for name in names:
                    size = new.params[name].size
                    a, b = old.offsets[name], new.offsets[name]
                    out[b:b + size] = arr[a:a + size]
                fresh[key] = out
            state[FLAT] = fresh
        elif slot_name in names:
            state[slot_name] = {k: v.copy() for k, v in slots.items()}
    opt.state = state
