"""Hooks on a network's forward and backward passes: how a monitor sees activations and
gradients per node, per step, without reaching into the engine.

    def seen(node_id, output): ...
    def flowed(event): ...             # a BackwardEvent
    handle = net.add_hook(on_forward=seen, on_backward=flowed)
    ...
    handle.remove()

``on_forward(node_id, output)`` runs after each node's output is computed (Inputs first, then
in execution order; every node of a fused block, except the hidden intermediates of a
``ConvBlock`` with ``publish`` off). ``on_backward(event)`` runs after each step of the
backward pass (a node, or a fused chain of nodes: see ``engine.plan``), with the gradient
that reached the step's last node, the gradients it sent to its inputs and its parameters'
gradients. The arrays are the network's own (buffers reused by the next pass): copy what
you keep, and do not write into them unless you mean to change the computation. Hooks run
on the thread that runs the network; with none registered they cost nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

ForwardHook = Callable[[str, np.ndarray], None]


@dataclass(frozen=True)
class BackwardEvent:
    """One step of a backward pass.

    ``nodes``: the nodes the step covers, in order; ``grad_output`` the gradient of the loss
    (or of what ``backward`` was given) w.r.t. the output of ``nodes[-1]``. Inside a fused
    chain the gradients between its nodes are not formed. ``inputs``: (source node, port of
    ``nodes[0]``) per input (for the end of a residual block fused as BatchNorm -> Add <- skip
    -> ReLU: the BatchNorm's input on port 0, then the skip with its port on the Add), and
    ``grad_inputs`` the gradient sent back along each (``None`` where none was computed:
    nothing upstream learns). ``param_grads``: the gradients of the
    covered nodes' parameters by full name (``"conv1.weight"``), already filled."""

    nodes: tuple[str, ...]
    grad_output: np.ndarray
    inputs: tuple[tuple[str, int], ...]
    grad_inputs: tuple[np.ndarray | None, ...]
    param_grads: Mapping[str, np.ndarray]

    @property
    def node(self) -> str:
        """The node whose output gradient ``grad_output`` is."""
        return self.nodes[-1]


BackwardHook = Callable[[BackwardEvent], None]


class HookHandle:
    """Returned by ``Network.add_hook``; ``remove()`` unregisters the hook (idempotent)."""

    def __init__(self, hooks: Hooks, forward: ForwardHook | None,
                 backward: BackwardHook | None) -> None:
        self._hooks = hooks
        self.on_forward = forward
        self.on_backward = backward

    def remove(self) -> None:
        self._hooks.remove(self)

    def __enter__(self) -> HookHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()


class Hooks:
    """The hooks registered on one network, in registration order."""

    def __init__(self) -> None:
        self.handles: list[HookHandle] = []
        self.forward: list[ForwardHook] = []
        self.backward: list[BackwardHook] = []

    def add(self, on_forward: ForwardHook | None = None,
            on_backward: BackwardHook | None = None) -> HookHandle:
        if on_forward is None and on_backward is None:
            raise TypeError("add_hook needs on_forward, on_backward or both")
        for fn in (on_forward, on_backward):
            if fn is not None and not callable(fn):
                raise TypeError(f"a hook must be callable, got {type(fn).__name__}")
        handle = HookHandle(self, on_forward, on_backward)
        self.handles.append(handle)
        self._refresh()
        return handle

    def remove(self, handle: HookHandle) -> None:
        if handle in self.handles:
            self.handles.remove(handle)
            self._refresh()

    def _refresh(self) -> None:
        self.forward = [h.on_forward for h in self.handles if h.on_forward is not None]
        self.backward = [h.on_backward for h in self.handles if h.on_backward is not None]

    def __len__(self) -> int:
        return len(self.handles)
