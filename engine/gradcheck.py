"""Finite-difference gradient checks (float64, central differences).

``check_layer`` tests one layer type on random inputs; ``gradcheck`` tests a whole network's
training loss, parameter by parameter. Both report the worst relative error, defined per
tensor as max|analytic - numeric| / max(max|analytic|, max|numeric|, 1e-8).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .graph import Graph
from .network import Network
from .registry import Layer, get_layer_class


def rel_error(analytic: np.ndarray, numeric: np.ndarray) -> float:
    scale = max(float(np.max(np.abs(analytic), initial=0.0)),
                float(np.max(np.abs(numeric), initial=0.0)), 1e-8)
    return float(np.max(np.abs(analytic - numeric), initial=0.0)) / scale


def _numeric(f, arr: np.ndarray, eps: float, max_elements: int | None,
             rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Central-difference gradient of scalar ``f()`` wrt ``arr`` (perturbed in place) at
    up to ``max_elements`` positions; returns (flat indices, numeric values)."""
    flat = arr.reshape(-1)
    idx = np.arange(flat.size)
    if max_elements is not None and flat.size > max_elements:
        idx = np.sort(rng.choice(flat.size, max_elements, replace=False))
    num = np.empty(idx.size)
    for k, i in enumerate(idx):
        old = flat[i]
        flat[i] = old + eps
        fp = f()
        flat[i] = old - eps
        fm = f()
        flat[i] = old
        num[k] = (fp - fm) / (2 * eps)
    return idx, num


@dataclass
class LayerCheck:
    """Worst relative error for each input (``"x0"``, ``"x1"``…) and parameter."""

    errors: dict[str, float] = field(default_factory=dict)

    @property
    def worst(self) -> float:
        return max(self.errors.values(), default=0.0)


def random_inputs(layer: Layer, batch: int, rng: np.random.Generator) -> list[np.ndarray]:
    xs = []
    for port, shape in enumerate(layer.in_shapes):
        hi = getattr(layer, "index_range", lambda p: None)(port)
        if hi is not None:
            xs.append(rng.integers(0, hi, (batch, *shape)).astype(np.float64))
        else:
            xs.append(rng.standard_normal((batch, *shape)))
    return xs


def check_layer(type_name: str, params: dict[str, Any], in_shapes: list[tuple[int, ...]],
                batch: int = 2, seed: int = 0, eps: float = 1e-6, train: bool = True,
                max_elements: int | None = 200, inputs: list[np.ndarray] | None = None
                ) -> LayerCheck:
    """Compare a layer's backward with central differences of sum(forward(x) * dy)."""
    cls = get_layer_class(type_name)
    layer = cls("node", params, in_shapes)
    rng = np.random.default_rng(seed)
    local = {k: v.astype(np.float64) for k, v in layer.init_params(rng).items()}
    for k in layer.param_shapes():
        local[k] = local[k] + 0.1 * rng.standard_normal(local[k].shape)
    xs = inputs if inputs is not None else random_inputs(layer, batch, rng)
    xs = [np.ascontiguousarray(x, dtype=np.float64) for x in xs]
    buffers0 = {k: v.copy() for k, v in local.items() if k not in layer.param_shapes()}

    def run() -> np.ndarray:
        for k, v in buffers0.items():
            local[k][...] = v
        layer.rng = np.random.default_rng(seed + 1)
        return layer.forward(xs, local, train)

    y = run()
    dy = rng.standard_normal(y.shape)
    grads = {k: np.zeros_like(local[k]) for k in layer.param_shapes()}
    dxs = layer.backward(dy, local, grads)

    def f() -> float:
        return float(np.sum(run() * dy))

    report = LayerCheck()
    for port, x in enumerate(xs):
        if getattr(layer, "index_range", lambda p: None)(port) is not None:
            continue
        idx, num = _numeric(f, x, eps, max_elements, rng)
        report.errors[f"x{port}"] = rel_error(np.asarray(dxs[port]).reshape(-1)[idx], num)
    for name, g in grads.items():
        idx, num = _numeric(f, local[name], eps, max_elements, rng)
        report.errors[name] = rel_error(g.reshape(-1)[idx], num)
    return report


@dataclass
class GradcheckReport:
    """Per parameter (full name) the worst relative error; ``nodes`` groups them by node."""

    errors: dict[str, float]

    @property
    def worst(self) -> float:
        return max(self.errors.values(), default=0.0)

    def nodes(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for k, v in self.errors.items():
            nid = k.rsplit(".", 1)[0]
            out[nid] = max(out.get(nid, 0.0), v)
        return out

    def table(self) -> str:
        lines = [f"{'parameter':<32} {'worst rel. error':>16}"]
        for k, v in self.errors.items():
            flag = "" if v < 1e-4 else "   <-- check"
            lines.append(f"{k:<32} {v:>16.2e}{flag}")
        return "\n".join(lines)


def random_batch(net: Network, batch: int, rng: np.random.Generator
                 ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Random inputs and targets that fit ``net`` (labels for cross-entropy, 0/1 for bce)."""
    xs: dict[str, np.ndarray] = {}
    for iid in net.input_ids:
        shape = net.shapes[iid]
        hi = max((getattr(net.layers[d], "index_range", lambda p: None)(port) or 0)
                 for d, port in net.consumers[iid]) if net.consumers[iid] else 0
        xs[iid] = (rng.integers(0, hi, (batch, *shape)).astype(np.float64) if hi
                   else rng.standard_normal((batch, *shape)))
    ys: dict[str, np.ndarray] = {}
    for oid in net.output_ids:
        p = net.layers[oid].p
        shape = net.shapes[oid]
        if p["target"] == "x":
            continue
        if p["loss"] == "cross_entropy":
            ys[oid] = rng.integers(0, shape[-1], (batch, *shape[:-1]))
        elif p["loss"] == "pixel_cross_entropy":
            ys[oid] = rng.integers(0, shape[0], (batch, *shape[1:]))
        elif p["loss"] == "bce":
            ys[oid] = rng.integers(0, 2, (batch, *shape)).astype(np.float64)
        else:
            ys[oid] = rng.standard_normal((batch, *shape))
    return xs, ys


def gradcheck(model: Graph | Network, batch: int = 2, seed: int = 0, eps: float = 1e-6,
              max_elements: int | None = 50) -> GradcheckReport:
    """Check every parameter's backprop gradient of the training loss against central
    differences in float64, on a random batch (dropout masks held fixed)."""
    base = model if isinstance(model, Network) else Network(model, seed=seed)
    net = base.astype(np.float64)
    rng = np.random.default_rng(seed)
    xs, ys = random_batch(net, batch, rng)
    buffers0 = {k: v.copy() for k, v in net.buffers.items()}

    def restore() -> None:
        for k, v in buffers0.items():
            net.buffers[k][...] = v
        net.rng.bit_generator.state = rng_state

    rng_state = net.rng.bit_generator.state

    def loss_and_grads() -> float:
        restore()
        for layer in net.layers.values():
            layer.rng = net.rng
        net.forward(xs, train=True)
        total, grads = net.loss(ys, xs)
        net.loss_backward(grads)
        return total

    loss_and_grads()
    analytic = {k: g.copy() for k, g in net.grads.items()}

    def f() -> float:
        restore()
        net.forward(xs, train=True)
        return net.loss(ys, xs)[0]

    errors = {}
    for name, p in net.params.items():
        idx, num = _numeric(f, p, eps, max_elements, rng)
        errors[name] = rel_error(analytic[name].reshape(-1)[idx], num)
    return GradcheckReport(errors)
