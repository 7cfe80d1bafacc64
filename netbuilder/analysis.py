"""What the canvas shows about a graph, computed Qt-free from ``engine.Graph.diagnose()``.

Per node: key params, output shape, parameter count, multiply-adds and the engine's error.
For the graph: totals and activation memory. For conv/pool chains: receptive fields in
input pixels (rf = rf_prev + (k - 1) * jump, jump *= stride; branches take the max).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import engine
from engine.blocks import output_of
from engine.errors import NetBuilderError
from engine.registry import Layer

Shape = tuple[int, ...]
BYTES_PER_VALUE = 4  # float32


@dataclass
class NodeInfo:
    """What is known about one node; ``None`` where upstream problems hide it."""

    id: str
    type: str
    category: str
    summary: str = ""
    out_shape: Shape | None = None
    params: int | None = None
    macs: int | None = None
    error: NetBuilderError | None = None


@dataclass
class Analysis:
    """Shapes, sizes and problems of a whole graph."""

    nodes: dict[str, NodeInfo]
    graph_errors: list[NetBuilderError] = field(default_factory=list)

    @property
    def errors(self) -> dict[str, NetBuilderError]:
        return {nid: info.error for nid, info in self.nodes.items() if info.error is not None}

    @property
    def error_count(self) -> int:
        return len(self.errors) + len(self.graph_errors)

    @property
    def complete(self) -> bool:
        """True when every node's size is known (totals are exact, not lower bounds)."""
        return all(i.params is not None for i in self.nodes.values())

    @property
    def total_params(self) -> int:
        return sum(i.params or 0 for i in self.nodes.values())

    @property
    def total_macs(self) -> int:
        return sum(i.macs or 0 for i in self.nodes.values())

    @property
    def activation_values(self) -> int:
        """Values held per sample by the forward pass (Output nodes are views, not counted)."""
        return sum(math.prod(i.out_shape) for i in self.nodes.values()
                   if i.out_shape is not None and i.type != "Output")

    def activation_bytes(self, batch_size: int) -> int:
        """Forward activation memory (bytes, float32) for one batch."""
        return self.activation_values * BYTES_PER_VALUE * max(1, int(batch_size))


def _bare_layer(cls: type[Layer], node_id: str, params: dict[str, Any]) -> Layer | None:
    """A layer with resolved params but no input shapes, good enough for ``summary()``."""
    try:
        layer = cls.__new__(cls)
        layer.id = node_id
        layer.p = cls.resolve_params(params, node_id)
        layer.in_shapes = []
        return layer
    except NetBuilderError:
        return None


def _summary(layer: Layer | None) -> str:
    if layer is None:
        return ""
    try:
        return layer.summary()
    except Exception:  # a summary() that needs input shapes: fall back to the generic one
        try:
            return Layer.summary(layer)
        except Exception:
            return ""


def analyse(graph: engine.Graph) -> Analysis:
    """Run the engine's diagnosis and size every node that can be sized."""
    diag = graph.diagnose()
    infos: dict[str, NodeInfo] = {}
    for nid, node in graph.nodes.items():
        cls = node.layer_class()
        info = NodeInfo(nid, node.type, cls.category, error=diag.errors.get(nid))
        info.out_shape = diag.shapes.get(nid)
        layer: Layer | None = diag.layers.get(nid)
        if layer is not None:
            info.params = layer.param_count()
            info.macs = layer.macs()
        else:
            layer = _bare_layer(cls, nid, node.params)
        info.summary = _summary(layer)
        infos[nid] = info
    return Analysis(infos, list(diag.graph_errors))


# ----- receptive field ----------------------------------------------------------------------
@dataclass(frozen=True)
class ReceptiveField:
    """Region of the input image one output pixel sees: ``size`` (h, w) in input pixels,
    ``jump`` (h, w) the input-pixel distance between neighbouring outputs (a Fraction below 1
    after upsampling)."""

    size: tuple[int, int]
    jump: tuple[Any, Any]
    image: tuple[int, int]
    whole: bool = False

    def text(self) -> str:
        h, w = self.image
        if self.whole:
            return f"the whole {h}×{w} input"
        rh, rw = self.size
        txt = f"{rh}×{rw} px" if rh != rw else f"{rh}×{rh} px"
        if rh >= h and rw >= w:
            txt += f" (covers the {h}×{w} input)"
        jh, jw = self.jump
        return txt + (f", stride {jh} px" if jh == jw else f", stride {jh}×{jw} px")


def _upsampling(type_name: str, params: dict[str, Any]
                ) -> tuple[tuple[int, int], tuple[int, int]] | None:
    """For layers that enlarge the grid: (input pixels one output pixel reads along each
    axis, enlargement factor), else None. A transposed conv's output pixel reads
    ceil(k / s) inputs; bilinear resampling two neighbours, nearest one."""
    if type_name == "ConvTranspose2D":
        k, s = _pair(params["kernel_size"]), _pair(params["stride"])
        return (-(-k[0] // s[0]), -(-k[1] // s[1])), s
    if type_name == "Upsample2D":
        n = 2 if params["mode"] == "bilinear" else 1
        return (n, n), _pair(params["scale"])
    return None


def _pair(v: Any) -> tuple[int, int] | None:
    if v is None:
        return None
    if isinstance(v, int | float):
        return int(v), int(v)
    if isinstance(v, tuple | list) and len(v) == 2:
        return int(v[0]), int(v[1])
    return None


def _kernel(params: dict[str, Any]) -> tuple[tuple[int, int], tuple[int, int]] | None:
    """Effective kernel and stride of a windowed layer (conv/pool), else None."""
    k = _pair(params.get("kernel_size", params.get("pool_size")))
    if k is None:
        return None
    s = _pair(params.get("stride")) or k
    d = _pair(params.get("dilation")) or (1, 1)
    keff = (d[0] * (k[0] - 1) + 1, d[1] * (k[1] - 1) + 1)
    return keff, s


def receptive_fields(graph: engine.Graph, analysis: Analysis) -> dict[str, ReceptiveField]:
    """Receptive field of every node fed (directly or not) by an image Input (C, H, W).
    A block's is that of its output, computed through its contents."""
    if graph.has_blocks():
        try:
            flat = graph.flatten()
        except NetBuilderError:
            return {}
        inner = receptive_fields(flat, analyse(flat))
        out_of = {nid: output_of(nid, node) for nid, node in graph.nodes.items()}
        return {nid: inner[f] for nid, f in out_of.items() if f in inner}
    try:
        order = graph.topological_order()
    except NetBuilderError:
        return {}
    preds: dict[str, list[str]] = {nid: [] for nid in graph.nodes}
    for e in graph.edges:
        preds[e.dst].append(e.src)
    out: dict[str, ReceptiveField] = {}
    for nid in order:
        node = graph.nodes[nid]
        info = analysis.nodes.get(nid)
        if node.type == "Input":
            shape = info.out_shape if info else None
            if shape is not None and len(shape) == 3:
                out[nid] = ReceptiveField((1, 1), (1, 1), (shape[1], shape[2]))
            continue
        ins = [out[p] for p in preds[nid] if p in out]
        if not ins:
            continue
        size = (max(r.size[0] for r in ins), max(r.size[1] for r in ins))
        jump = (max(r.jump[0] for r in ins), max(r.jump[1] for r in ins))
        image = (max(r.image[0] for r in ins), max(r.image[1] for r in ins))
        whole = any(r.whole for r in ins)
        try:
            params = node.layer_class().resolve_params(node.params, nid)
        except NetBuilderError:
            continue
        up = _upsampling(node.type, params)
        win = None if up else _kernel(params)
        shape = info.out_shape if info else None
        if whole:
            pass
        elif up is not None:
            (nh, nw), (sh, sw) = up
            size = (math.ceil(size[0] + (nh - 1) * jump[0]),
                    math.ceil(size[1] + (nw - 1) * jump[1]))
            jump = (Fraction(jump[0]) / sh, Fraction(jump[1]) / sw)
            jump = tuple(int(j) if j.denominator == 1 else j for j in jump)
        elif win is not None:
            (kh, kw), (sh, sw) = win
            size = (math.ceil(size[0] + (kh - 1) * jump[0]),
                    math.ceil(size[1] + (kw - 1) * jump[1]))
            jump = tuple(int(j) if Fraction(j).denominator == 1 else j
                         for j in (jump[0] * sh, jump[1] * sw))
        elif not _keeps_grid(graph, nid, shape, analysis):
            whole = True
        out[nid] = ReceptiveField(size, jump, image, whole)
    return out


def _keeps_grid(graph: engine.Graph, nid: str, shape: Shape | None, analysis: Analysis) -> bool:
    """True for layers that map each pixel to the same pixel (activations, norms, merges)."""
    if graph.nodes[nid].type == "Output":
        return True
    if shape is None or len(shape) != 3:
        return False
    for e in graph.in_edges(nid):
        src = analysis.nodes.get(e.src)
        if src is None or src.out_shape is None or len(src.out_shape) != 3:
            return False
        if src.out_shape[1:] != shape[1:]:
            return False
    return True


def fmt_count(n: int | None) -> str:
    """1234567 -> '1.23 M'; None -> '?'."""
    if n is None:
        return "?"
    for div, unit in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= div:
            return f"{n / div:.3g} {unit}"
    return str(n)


def fmt_shape(shape: Shape | None) -> str:
    """(6, 28, 28) -> '6×28×28'; None -> '?'."""
    if shape is None:
        return "?"
    return "×".join(str(d) for d in shape)
