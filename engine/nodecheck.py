"""Check one node's gradients in the network's current state (float64, central differences).

    report = check_node(net, "c1")
    report.errors   # {"x0": 3e-10, "weight": 1e-9, "bias": 2e-10}: worst relative error
    report.passed   # every error below report.tol

The node's layer is rebuilt alone in float64 with copies of the network's current
parameters and buffers, and fed the inputs that reach it when a float64 copy of the network
runs a batch (the batch given, or a random one that fits the model). Its ``backward`` for a
random output gradient ``dy`` is compared with central differences of sum(forward(x) * dy)
for each input and parameter. Nothing of ``net`` changes, so a training run goes on.
The relative error is ``engine.gradcheck.rel_error`` (per tensor).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from .errors import NetBuilderError
from .gradcheck import _numeric, random_batch, rel_error
from .network import Network

DEFAULT_TOL = 1e-4


class CheckCancelledError(NetBuilderError):
    """Raised by ``check_node`` when its ``cancelled`` callback answers True."""


@dataclass
class NodeCheck:
    """Worst relative error per tensor (``"x0"``… for inputs, parameter names) of one node;
    ``tol`` the pass mark."""

    node: str
    type_name: str
    errors: dict[str, float] = field(default_factory=dict)
    tol: float = DEFAULT_TOL

    @property
    def worst(self) -> float:
        return max(self.errors.values(), default=0.0)

    @property
    def passed(self) -> bool:
        return all(e < self.tol for e in self.errors.values())

    def failing(self) -> list[str]:
        return [k for k, e in self.errors.items() if not e < self.tol]


def node_inputs(net: Network, node: str, x: dict[str, np.ndarray] | np.ndarray | None = None,
                batch: int = 2, seed: int = 0) -> list[np.ndarray]:
    """The float64 inputs that reach ``node`` (one per port) when a float64 copy of ``net``
    runs ``x`` (or a random batch of ``batch`` samples) in training mode."""
    work = net.astype(np.float64)
    if x is None:
        x = random_batch(work, batch, np.random.default_rng(seed))[0]
    work.forward(x, train=True)
    return [np.array(work.acts[src], dtype=np.float64) for src in work.inputs_of[node]]


def check_node(net: Network, node: str, x: dict[str, np.ndarray] | np.ndarray | None = None,
               batch: int = 2, seed: int = 0, eps: float = 1e-6, tol: float = DEFAULT_TOL,
               max_elements: int | None = 200, jitter: float = 1e-3,
               progress: Callable[[int, int], None] | None = None,
               cancelled: Callable[[], bool] | None = None) -> NodeCheck:
    """Finite-difference check of ``node``'s input and parameter gradients (at most
    ``max_elements`` sampled positions per tensor) in ``net``'s current state.

    ``progress(done, total)`` is called as the perturbed forwards go by (two per checked
    entry); ``cancelled()`` is asked before each one and raises ``CheckCancelledError``
    when it answers True (a dialog's Cancel, from another thread).

    The real inputs are nudged by Gaussian noise of ``jitter`` times their std (1 when
    constant): the zeros a ReLU sends a max-pool tie its windows, and a difference quotient
    across a tie or a kink measures no gradient at all. Index inputs are left alone."""
    if node not in net.layers:
        raise NetBuilderError(f"no node '{node}' in this model", node)
    own = net.layers[node]
    report = NodeCheck(node, own.type_name, tol=tol)
    if own.type_name == "Input":
        return report
    gnode = net.graph.nodes[node]
    layer = gnode.layer_class()(node, gnode.params, list(own.in_shapes))
    xs = node_inputs(net, node, x, batch, seed)
    rng = np.random.default_rng(seed)
    for port, xin in enumerate(xs):
        if jitter > 0 and getattr(layer, "index_range", lambda p: None)(port) is None:
            spread = float(xin.std()) or 1.0
            xin += jitter * spread * rng.standard_normal(xin.shape)
    prefix = node + "."
    trainable = set(layer.param_shapes())
    state = {k[len(prefix):]: np.array(v, dtype=np.float64)
             for k, v in {**net.params, **net.buffers}.items() if k.startswith(prefix)}
    local = {k: v.copy() for k, v in state.items()}
    buffers0 = {k: v for k, v in state.items() if k not in trainable}

    def run() -> np.ndarray:
        for k, v in buffers0.items():
            local[k][...] = v
        layer.rng = np.random.default_rng(seed + 1)
        return layer.forward(xs, local, True)

    y = np.array(run())
    dy = rng.standard_normal(y.shape)
    grads = {k: np.zeros_like(local[k]) for k in trainable}
    dxs = layer.backward(dy, local, grads)

    real = [(f"x{port}", xin) for port, xin in enumerate(xs)
            if getattr(layer, "index_range", lambda p: None)(port) is None]
    tensors = real + [(name, local[name]) for name in sorted(trainable)]
    total = 2 * sum(a.size if max_elements is None else min(a.size, max_elements)
                    for _n, a in tensors)
    done = 0

    def f() -> float:
        nonlocal done
        if cancelled is not None and cancelled():
            raise CheckCancelledError(f"the gradient check of '{node}' was cancelled", node)
        value = float(np.sum(run() * dy))
        done += 1
        if progress is not None:
            progress(done, total)
        return value

    for name, arr in tensors:
        idx, num = _numeric(f, arr, eps, max_elements, rng)
        analytic = grads[name] if name in trainable else dxs[int(name[1:])]
        report.errors[name] = rel_error(np.asarray(analytic).reshape(-1)[idx], num)
    return report
