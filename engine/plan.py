"""The execution plan of a compiled network: its steps in order and what each one covers.

A ``Step`` runs one node through its layer's ``forward`` / ``backward``; a fused step
(``engine.fusion``) runs a chain of nodes in one kernel. Every step knows:

- ``ids``: the nodes it covers, in order (``first`` … ``last``); it reads the outputs of
  ``srcs`` (the sources of ``first``, by port) from ``acts`` and publishes its nodes' outputs
  there;
- ``params`` / ``grads``: the parameters and gradient arrays of its nodes, by full name
  (``"conv1.weight"``), views of the network's flat vectors;
- ``needs_input_grad``: whether the network needs the gradient of its inputs while training
  (false when nothing upstream learns): ``backward(dy, need_dx)`` then returns ``None``
  entries, so the first layer of a model skips its input gradient;
- ``trains``: whether it has parameters that learn. A step whose nodes are all frozen
  (``Node.trainable`` false) computes no weight gradient: its backward writes into the
  arrays ``Layer.frozen_grads`` gives (empty ones for Dense and Conv2D, whose kernels then
  skip the weight-gradient product), and the network skips the step altogether when
  nothing upstream needs its input gradient either.

``ExecutionPlan`` holds the steps and answers which step covers a node. The planner that
builds it is ``engine.fusion.plan_execution``; the network only runs it.
"""

from __future__ import annotations

from collections.abc import Mapping, Set
from typing import Protocol

import numpy as np

from .registry import Layer, Shape


class Wiring(Protocol):
    """What the planner reads of a compiled graph (``engine.Network`` has all of it)."""

    layers: Mapping[str, Layer]
    order: list[str]
    inputs_of: Mapping[str, list[str]]
    consumers: Mapping[str, list[tuple[str, int]]]
    shapes: Mapping[str, Shape]
    input_ids: list[str]
    output_ids: list[str]
    frozen: Set[str]


class Step:
    """One node run through its own layer.

    ``local`` / ``local_grads``: the node's parameters (and buffers) and gradients by local
    name (``weight``), as ``Layer.forward`` / ``backward`` take them."""

    fused = False

    def __init__(self, layer: Layer, srcs: list[str], local: dict[str, np.ndarray],
                 local_grads: dict[str, np.ndarray]) -> None:
        self.ids: tuple[str, ...] = (layer.id,)
        self.first = self.last = layer.id
        self.layer = layer
        self.srcs = tuple(srcs)
        self.local = local
        self.local_grads = local_grads
        self.needs_input_grad = True
        self.trains = bool(local_grads)
        self._frozen_grads: dict[str, np.ndarray] | None = None

    @property
    def has_params(self) -> bool:
        return bool(self.local_grads)

    def grad_arrays(self) -> dict[str, np.ndarray]:
        """Where the backward writes the parameter gradients: the node's own arrays while it
        trains, else its layer's ``frozen_grads`` (made once)."""
        if self.trains:
            return self.local_grads
        if self._frozen_grads is None:
            self._frozen_grads = self.layer.frozen_grads(self.local_grads)
        return self._frozen_grads

    def forward(self, acts: dict[str, np.ndarray], train: bool) -> None:
        acts[self.last] = self.layer.forward([acts[s] for s in self.srcs], self.local, train)

    def backward(self, dy: np.ndarray, need_dx: bool) -> list[np.ndarray | None]:
        """Fill the parameter gradients; return one input gradient per source (``None``
        entries when ``need_dx`` is false)."""
        dxs = self.layer.backward(dy, self.local, self.grad_arrays())
        return dxs if need_dx else [None] * len(self.srcs)


class ExecutionPlan:
    """The steps of a network in execution order (topological), each covering its nodes.

    ``grads``: per step (by its last node), the gradient arrays of the parameters it fills,
    which the network zeroes when no gradient reaches the step (none for frozen nodes)."""

    def __init__(self, steps: list[Step], wiring: Wiring,
                 node_grads: Mapping[str, Mapping[str, np.ndarray]]) -> None:
        self.steps = steps
        self._covering = {nid: st for st in steps for nid in st.ids}
        self._wiring = wiring
        self._node_grads = node_grads
        self.set_frozen(wiring.frozen)

    def set_frozen(self, frozen: Set[str]) -> None:
        """Recompute which steps train and which need their input gradient when the set of
        frozen nodes changes."""
        wiring, node_grads = self._wiring, self._node_grads
        trains = {nid: bool(node_grads[nid]) and nid not in frozen for nid in wiring.order}
        self.grads = {st.last: [g for nid in st.ids if trains[nid]
                                for g in node_grads[nid].values()] for st in self.steps}
        learns: dict[str, bool] = {}
        for nid in wiring.order:
            learns[nid] = trains[nid] or any(learns[s] for s in wiring.inputs_of[nid])
        for st in self.steps:
            st.needs_input_grad = any(learns[s] for s in st.srcs)
            st.trains = any(trains[nid] for nid in st.ids)

    def __iter__(self):
        return iter(self.steps)

    def __len__(self) -> int:
        return len(self.steps)

    def step_of(self, node_id: str) -> Step:
        """The step that computes ``node_id``'s output."""
        return self._covering[node_id]

    def describe(self) -> list[str]:
        """One line per step: its kind and the nodes it covers (for debugging and docs)."""
        return [f"{type(st).__name__:<10} {' -> '.join(st.ids)}"
                + ("" if st.needs_input_grad else "  (no input gradient)")
                + ("  (frozen)" if st.has_params and not st.trains else "")
                for st in self.steps]
