"""What one training step costs in multiply-adds, and what frozen nodes save.

The estimate counts, per sample, each node's forward multiply-adds (``Layer.macs``) once
for the forward, once more for its input gradient when something upstream learns, and once
more for its weight gradient when it has parameters that train: for Dense, Conv2D and the
recurrent layers, which hold nearly all the work, each backward product is the size of the
forward one. A frozen node (``Node.trainable`` false) spends no weight gradient, and no
input gradient either when nothing before it learns (``engine.plan``)."""

from __future__ import annotations

from collections.abc import Set
from dataclasses import dataclass, field

from .plan import Wiring
from .text import plural


@dataclass(frozen=True)
class NodeCost:
    """Multiply-adds per sample of one node: forward, input gradient, weight gradient."""

    forward: int
    input_grad: int
    weight_grad: int


@dataclass(frozen=True)
class TrainingCost:
    """Multiply-adds per sample of one training step (see the module note); ``saved``: what
    the frozen nodes do not spend, against the same model with nothing frozen."""

    nodes: dict[str, NodeCost] = field(default_factory=dict)
    saved: int = 0
    frozen: tuple[str, ...] = ()

    @property
    def forward(self) -> int:
        return sum(c.forward for c in self.nodes.values())

    @property
    def backward(self) -> int:
        return sum(c.input_grad + c.weight_grad for c in self.nodes.values())

    @property
    def weight_grads(self) -> int:
        return sum(c.weight_grad for c in self.nodes.values())

    def summary(self) -> str:
        """``"backward 1,234 mult-adds/sample (forward 617); frozen c1, c2 save 300"``."""
        text = f"backward {self.backward:,} mult-adds/sample (forward {self.forward:,})"
        if self.frozen:
            text += (f"; frozen {', '.join(self.frozen)} "
                     f"({plural(len(self.frozen), 'node')}) save {self.saved:,}")
        return text


def _costs(net: Wiring, has_params: Set[str], frozen: Set[str]) -> dict[str, NodeCost]:
    learns: dict[str, bool] = {}
    out = {}
    for nid in net.order:
        trains = nid in has_params and nid not in frozen
        need_dx = any(learns[s] for s in net.inputs_of[nid])
        learns[nid] = trains or need_dx
        f = int(net.layers[nid].macs())
        out[nid] = NodeCost(f, f if need_dx else 0, f if trains else 0)
    return out


def training_cost(net: Wiring) -> TrainingCost:
    """The cost of a training step of ``net`` (a compiled Network) with its frozen nodes."""
    has_params = {nid for nid in net.order if net.layers[nid].param_shapes()}
    nodes = _costs(net, has_params, net.frozen)
    full = _costs(net, has_params, set())
    saved = sum(c.input_grad + c.weight_grad for c in full.values()) \
        - sum(c.input_grad + c.weight_grad for c in nodes.values())
    return TrainingCost(nodes, saved, tuple(n for n in net.order if n in net.frozen))
