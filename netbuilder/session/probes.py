"""What the monitor looks at, measured on the training thread (Qt-free, numpy only).

Everything here runs between two training steps and returns copies, so the GUI thread never
touches the network: activation statistics per node (the canvas badges), the gradient norm
along every wire, per-layer gradient norms, a feature map of one sample, Conv2D filters,
weight and gradient histograms, decision regions of 2-D point data, the fitted curve of 1-D
regression, the per-epoch confusion matrix with the most confidently wrong samples, a
row of samples before and after a SpatialTransformer or an autoencoder, and each head's
attention weights of a MultiHeadAttention for one sample.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engine.errors import NetBuilderError
from engine.graph import Graph
from engine.hooks import BackwardEvent
from engine.layers.spatial import IDENTITY
from engine.network import Network

STATS_SAMPLES = 32  # activation statistics use at most this many samples of the batch
SATURATION = 0.98
REGION_RES = 96
CURVE_POINTS = 200
GALLERY_SIZE = 16
HIST_BINS = 40
PAIR_SAMPLES = 8  # probe samples shown before / after a transformer or an autoencoder
CLASS_COLORS = np.array([(47, 111, 219), (217, 128, 26), (30, 158, 90), (191, 63, 120),
                         (112, 71, 194), (19, 141, 127), (168, 81, 42), (107, 114, 128),
                         (31, 127, 166), (78, 138, 42)], np.float32)


def class_color(k: int) -> tuple[int, int, int]:
    """RGB of class ``k`` (the same in every view)."""
    c = CLASS_COLORS[k % len(CLASS_COLORS)]
    return int(c[0]), int(c[1]), int(c[2])


@dataclass(frozen=True)
class MonitorRequest:
    """What the GUI wants to see; the worker reads the latest one before each probe."""

    node: str | None = None  # feature maps of this node
    sample: int = 0  # index into the probe samples (validation part, else training part)
    conv: str | None = None  # filters of this Conv2D
    hist_node: str | None = None  # weight and gradient histograms of this node
    feature_maps: bool = True
    filters: bool = True
    histograms: bool = True
    graph: bool = True  # canvas badges, wire tints, per-layer gradient norms
    regions: bool = True  # decision regions / fitted curve
    pair_node: str | None = None  # samples before / after this SpatialTransformer or x-Output
    pairs: bool = True
    attn_node: str | None = None  # attention weights of this MultiHeadAttention
    attn_sample: int = 0  # index into the probe samples, for the attention weights
    attention: bool = True
    epoch_report: bool = True  # confusion matrix and wrong-sample gallery
    stats_interval: float = 0.5  # s between probes of the graph
    image_interval: float = 0.5  # s between feature maps, filters, regions
    profile_every: int = 0  # time one step per node every this many steps (0: never)


@dataclass(frozen=True)
class NodeStats:
    """Output statistics of one node over (part of) the last training batch.
    ``dead``: fraction of units never above the floor of a layer bounded below only (a ReLU:
    never positive); ``saturated``: fraction of outputs of a layer bounded both ways
    (sigmoid, tanh) within 2 % of their limits (``Layer.output_range``); ``finite``: no NaN
    or Inf."""

    mean: float
    std: float
    dead: float | None = None
    saturated: float | None = None
    finite: bool = True


@dataclass(frozen=True)
class FeatureMaps:
    """Output of ``node`` for probe sample ``sample``: ``maps`` is the per-sample array."""

    node: str
    sample: int
    maps: np.ndarray
    label: str
    prediction: str


@dataclass(frozen=True)
class Histograms:
    """Per parameter of ``node``: (counts, bin edges) of weights and of gradients."""

    node: str
    weights: dict[str, tuple[np.ndarray, np.ndarray]]
    grads: dict[str, tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class Regions:
    """Decision regions: an RGB image (H, W, 3) uint8 over ``extent`` (x0, x1, y0, y1)."""

    rgb: np.ndarray
    extent: tuple[float, float, float, float]


@dataclass(frozen=True)
class FittedCurve:
    xs: np.ndarray
    ys: np.ndarray


@dataclass(frozen=True)
class WrongSample:
    index: int
    x: np.ndarray
    true: int
    pred: int
    confidence: float


@dataclass(frozen=True)
class EpochAnalysis:
    """Confusion matrix (rows true, columns predicted) over ``part`` and the most confidently
    wrong samples, most confident first."""

    confusion: np.ndarray
    wrong: list[WrongSample]
    part: str


@dataclass(frozen=True)
class ImagePairs:
    """Probe samples ``indices`` before and after ``node``, in the same units.

    ``kind`` "transform": ``before`` (N, C, H, W) enters a SpatialTransformer on port 0,
    ``after`` (N, C, Ho, Wo) is its output and ``theta`` (N, 2, 3) the affine matrices used.
    ``kind`` "reconstruction": ``before`` is the Input, ``after`` the Output that learns it
    (probabilities where its loss is bce) and ``errors`` (N,) each sample's mean squared error.
    Vectors (F,) and sequences (T, F) are shown as (1, 1, F) and (1, T, F) images."""

    node: str
    kind: str
    indices: np.ndarray
    before: np.ndarray
    after: np.ndarray
    part: str
    labels: tuple[str, ...] = ()
    errors: np.ndarray | None = None
    theta: np.ndarray | None = None


@dataclass(frozen=True)
class AttentionMaps:
    """The softmax weights of MultiHeadAttention ``node`` for probe sample ``sample``:
    ``weights`` (heads, T, T), row i the weights query step i gives each key step (each row
    sums to 1; with ``causal`` the upper triangle is 0). ``tokens``: a name per step (the
    sample's tokens when the data has a vocabulary), else empty."""

    node: str
    sample: int
    weights: np.ndarray
    causal: bool
    tokens: tuple[str, ...] = ()
    label: str = ""


# ----- the net's classification head ----------------------------------------------------------
@dataclass(frozen=True)
class Head:
    """How to read class probabilities from the first Output."""

    output: str
    kind: str  # "softmax", "sigmoid" or "regression"
    already_prob: bool
    n_classes: int

    @classmethod
    def of(cls, net: Network) -> Head | None:
        if not net.output_ids:
            return None
        oid = net.output_ids[0]
        loss = net.layers[oid].p["loss"]
        shape = net.shapes[oid]
        prob = oid in net.loss_logits
        if loss == "cross_entropy" and len(shape) == 1:
            return cls(oid, "softmax", prob, int(shape[0]))
        if loss == "bce" and math.prod(shape) == 1:
            return cls(oid, "sigmoid", prob, 2)
        if loss == "mse":
            return cls(oid, "regression", False, 0)
        return None

    def probs(self, out: np.ndarray) -> np.ndarray:
        """(N, K) class probabilities from the Output's array (NaN/Inf give 0)."""
        out = out.reshape(out.shape[0], -1).astype(np.float64)
        with np.errstate(all="ignore"):
            return np.nan_to_num(self._probs(out), nan=0.0, posinf=1.0, neginf=0.0)

    def _probs(self, out: np.ndarray) -> np.ndarray:
        if self.kind == "softmax":
            if self.already_prob:
                return out
            z = out - out.max(axis=1, keepdims=True)
            e = np.exp(z)
            return e / e.sum(axis=1, keepdims=True)
        p1 = out[:, 0] if self.already_prob else 1.0 / (1.0 + np.exp(-np.clip(out[:, 0], -60,
                                                                                60)))
        return np.stack([1.0 - p1, p1], axis=1)


def _output_of(net: Network, out: Any, head: Head) -> np.ndarray:
    return out[head.output] if isinstance(out, dict) else out


# ----- statistics -------------------------------------------------------------------------------
def node_stats(net: Network, acts: dict[str, np.ndarray] | None = None
               ) -> dict[str, NodeStats]:
    """Statistics of every node's output in ``acts`` (default ``net.acts``; Outputs
    excluded: they repeat their source)."""
    out: dict[str, NodeStats] = {}
    acts = net.acts if acts is None else acts
    for nid in net.order:
        layer = net.layers[nid]
        if layer.type_name == "Output":
            continue
        a = acts.get(nid)
        if a is None or a.dtype.kind != "f" or a.size == 0:
            continue
        part = a[:STATS_SAMPLES]
        with np.errstate(all="ignore"):
            mean = float(np.mean(part, dtype=np.float64))
            std = float(np.std(part, dtype=np.float64))
        finite = math.isfinite(mean) and math.isfinite(std)
        dead = sat = None
        bounds = layer.output_range()
        if bounds is not None and math.isfinite(bounds[0]) and bounds[1] == math.inf:
            flat = a.reshape(a.shape[0], -1)
            dead = float(1.0 - np.mean((flat > bounds[0]).any(axis=0)))
        elif bounds is not None and all(map(math.isfinite, bounds)):
            lo, hi = bounds
            margin = (1 - SATURATION) * max(abs(lo), abs(hi))
            sat = float(np.mean((part < lo + margin) | (part > hi - margin)))
        out[nid] = NodeStats(mean, std, dead, sat, finite)
    return out


def layer_grad_norms(net: Network) -> dict[str, float]:
    """L2 norm of each node's parameter gradients (nodes with parameters only)."""
    sums: dict[str, float] = {}
    for name, g in net.grads.items():
        nid = name.rsplit(".", 1)[0]
        sums[nid] = sums.get(nid, 0.0) + float(np.vdot(g, g))
    return {k: math.sqrt(v) if v >= 0 else math.nan for k, v in sums.items()}


class GradFlowRecorder:
    """Records, while ``armed``, the norm of the gradient flowing back along every wire
    ``(src, dst, port)`` during the network's backward pass. Wires inside a fused block
    (e.g. Conv2D → ReLU → MaxPool) get the gradient arriving at the block (``approx``).

    It listens to the network's backward events (``Network.add_hook``); ``detach()`` stops
    it. ``available`` is False for an object that has no hooks (nothing is recorded)."""

    def __init__(self, net: Network) -> None:
        self.armed = False
        self.norms: dict[tuple[str, str, int], float] = {}
        self.approx: set[tuple[str, str, int]] = set()
        self.out_norms: dict[str, float] = {}
        add_hook = getattr(net, "add_hook", None)
        self.available = add_hook is not None
        self._handle = add_hook(on_backward=self._on_backward) if add_hook else None

    def detach(self) -> None:
        """Stop listening to the network."""
        if self._handle is not None:
            self._handle.remove()
            self._handle = None

    def _on_backward(self, event: BackwardEvent) -> None:
        if not self.armed:
            return
        dy = event.grad_output
        n_dy = math.sqrt(abs(float(np.vdot(dy, dy))))
        self.out_norms[event.node] = n_dy
        for a, b in itertools.pairwise(event.nodes):
            self.norms[(a, b, 0)] = n_dy
            self.approx.add((a, b, 0))
        first = event.nodes[0]
        for (src, port), g in zip(event.inputs, event.grad_inputs):
            if g is not None:
                self.norms[(src, first, port)] = math.sqrt(abs(float(np.vdot(g, g))))

    def take(self) -> tuple[dict[tuple[str, str, int], float], set[tuple[str, str, int]]]:
        """The norms recorded since the last take (and forget them)."""
        norms, approx = self.norms, self.approx
        self.norms, self.approx, self.out_norms = {}, set(), {}
        return norms, approx


# ----- images -----------------------------------------------------------------------------------
def feature_maps(net: Network, x: np.ndarray, node: str, sample: int, label: str,
                 head: Head | None, class_name: Any) -> FeatureMaps | None:
    """Forward one sample (inference mode) and copy ``node``'s output."""
    if node not in net.layers:
        return None
    out = net.forward(x[None], train=False)
    a = net.acts.get(node)
    if a is None:
        return None
    pred = ""
    if head is not None and head.kind != "regression":
        p = head.probs(_output_of(net, out, head))[0]
        k = int(np.argmax(p))
        pred = f"{class_name(k)} ({100 * p[k]:.0f} %)"
    elif head is not None:
        o = _output_of(net, out, head).reshape(-1)
        pred = ", ".join(f"{v:.3g}" for v in o[:4])
    return FeatureMaps(node, sample, np.array(a[0], copy=True), label, pred)


def attention_nodes(graph: Graph) -> list[str]:
    """The MultiHeadAttention nodes of ``graph`` in topological order."""
    try:
        order = graph.topological_order()
    except NetBuilderError:
        order = list(graph.nodes)
    return [n for n in order if graph.nodes[n].type == "MultiHeadAttention"]


def attention_maps(net: Network, x: np.ndarray, node: str, sample: int,
                   tokens: tuple[str, ...] = (), label: str = "") -> AttentionMaps | None:
    """Forward one sample ``x`` (inference mode) and copy the attention weights (heads, T, T)
    of MultiHeadAttention ``node`` (its public ``attention_weights``); None for another
    node."""
    layer = net.layers.get(node)
    if layer is None or layer.type_name != "MultiHeadAttention":
        return None
    net.forward(x[None], train=False)
    w = np.array(layer.attention_weights[0], np.float32, copy=True)
    return AttentionMaps(node, sample, w, bool(layer.p["causal"]), tokens, label)


def token_names(probe: ProbeData, x: np.ndarray) -> tuple[str, ...]:
    """The tokens of one sample ``x`` by name, when the probe data has a vocabulary: ids (T,)
    or one-hot rows (T, vocab); else ()."""
    vocab = probe.vocab
    if not vocab:
        return ()
    a = np.asarray(x)
    if a.ndim == 1:
        ids = np.rint(np.nan_to_num(a)).astype(np.int64)
    elif a.ndim == 2 and a.shape[1] == len(vocab):
        ids = np.argmax(a, axis=1)
    else:
        return ()
    return tuple(vocab[k] if 0 <= k < len(vocab) else str(k) for k in ids.tolist())


def pair_nodes(graph: Graph) -> dict[str, str]:
    """The nodes whose samples can be shown before and after (topological order):
    {SpatialTransformer id: "transform", id of an Output with target "x": "reconstruction"}."""
    try:
        order = graph.topological_order()
    except NetBuilderError:
        order = list(graph.nodes)
    out: dict[str, str] = {}
    for nid in order:
        node = graph.nodes[nid]
        if node.type == "SpatialTransformer":
            out[nid] = "transform"
        elif node.type == "Output" and node.params.get("target", "y") == "x":
            out[nid] = "reconstruction"
    return out


def _as_image(a: np.ndarray) -> np.ndarray:
    """(N, C, H, W) float32 copy of a batch of images, sequences (T, F) or vectors (F,)."""
    a = np.asarray(a, np.float32)
    while a.ndim < 4:
        a = a[:, None]
    return np.array(a, copy=True)


def image_pairs(net: Network, x: np.ndarray, node: str, part: str,
                labels: tuple[str, ...] = ()) -> ImagePairs | None:
    """Forward the samples ``x`` (inference mode) and copy what enters and leaves ``node``
    (a SpatialTransformer, or an Output learning its input); None for any other node."""
    layer = net.layers.get(node)
    if layer is None or not len(x) or len(net.input_ids) != 1:
        return None
    t = layer.type_name
    if t == "SpatialTransformer":
        net.forward(x, train=False)
        src = {e.port: e.src for e in net.graph.in_edges(node)}
        before, after = _as_image(net.acts[src[0]]), _as_image(net.acts[node])
        theta = net.acts[src[1]].reshape(-1, 2, 3).astype(np.float64) + IDENTITY
        return ImagePairs(node, "transform", np.arange(len(x)), before, after, part, labels,
                          theta=theta)
    if t != "Output" or layer.p["target"] != "x":
        return None
    out = net.forward(x, train=False)
    pred = np.asarray(out[node] if isinstance(out, dict) else out, np.float64)
    before = _as_image(x)
    if pred.size != before.size:
        return None
    if layer.p["loss"] == "bce" and node not in net.loss_logits:
        pred = 1.0 / (1.0 + np.exp(-np.clip(pred, -60, 60)))
    after = pred.reshape(before.shape)
    with np.errstate(all="ignore"):
        errors = np.mean((after - before) ** 2, axis=(1, 2, 3))
    return ImagePairs(node, "reconstruction", np.arange(len(x)), before,
                      after.astype(np.float32), part, labels, errors=errors)


def conv_filters(net: Network, node: str | None) -> tuple[str, np.ndarray] | None:
    """Copy of a Conv2D's weights (out, in, kh, kw)."""
    if node is None:
        return None
    w = net.params.get(f"{node}.weight")
    if w is None or w.ndim != 4:
        return None
    return node, w.copy()


def histogram(a: np.ndarray, bins: int = HIST_BINS) -> tuple[np.ndarray, np.ndarray] | None:
    """(counts, edges) of the finite values of ``a`` in ``bins`` equal bins from their
    min to their max (a constant array gets a bin around its value); None if none is
    finite. As ``np.histogram`` with a range, in a few array passes."""
    flat = np.asarray(a).reshape(-1)
    lo, hi = float(flat.min(initial=np.inf)), float(flat.max(initial=-np.inf))
    if not (math.isfinite(lo) and math.isfinite(hi)):
        flat = flat[np.isfinite(flat)]
        if flat.size == 0:
            return None
        lo, hi = float(flat.min()), float(flat.max())
    if hi <= lo:
        lo, hi = lo - 0.5 * (abs(lo) + 1e-8), hi + 0.5 * (abs(hi) + 1e-8)
    idx = ((flat - lo) * (bins / (hi - lo))).astype(np.int64)
    np.clip(idx, 0, bins - 1, out=idx)
    return np.bincount(idx, minlength=bins), np.linspace(lo, hi, bins + 1)


def param_histograms(params: dict[str, np.ndarray], node: str
                     ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``histogram`` of each of ``node``'s arrays in ``params`` (full names), by short name."""
    prefix = node + "."
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for name, p in params.items():
        if name.startswith(prefix):
            h = histogram(p)
            if h is not None:
                out[name[len(prefix):]] = h
    return out


def histograms(net: Network, node: str | None) -> Histograms | None:
    """Weight and gradient histograms of ``node``'s parameters (None: it has none)."""
    if node is None:
        return None
    ws = param_histograms(net.params, node)
    if not ws:
        return None
    return Histograms(node, ws, param_histograms(net.grads, node))


def blend_regions(probs: np.ndarray, res: int) -> np.ndarray:
    """(res·res, K) probabilities -> (res, res, 3) uint8: class colour, pale where unsure."""
    k = probs.shape[1]
    cols = np.stack([CLASS_COLORS[i % len(CLASS_COLORS)] for i in range(k)])
    top = probs.max(axis=1, keepdims=True)
    rgb = probs @ cols
    k_eff = max(k, 2)
    conf = np.clip((top - 1.0 / k_eff) / (1.0 - 1.0 / k_eff), 0, 1)
    rgb = 255.0 - (255.0 - rgb) * (0.18 + 0.5 * conf)
    return np.clip(rgb, 0, 255).astype(np.uint8).reshape(res, res, 3)


def point_extent(x: np.ndarray) -> tuple[float, float, float, float]:
    lo, hi = x.min(axis=0), x.max(axis=0)
    pad = 0.12 * np.maximum(hi - lo, 1e-3)
    lo, hi = lo - pad, hi + pad
    return float(lo[0]), float(hi[0]), float(lo[1]), float(hi[1])


def decision_regions(net: Network, head: Head, extent: tuple[float, float, float, float],
                     res: int = REGION_RES) -> Regions:
    """Class regions of a 2-D input over ``extent`` (row 0 = lowest y)."""
    x0, x1, y0, y1 = extent
    gx, gy = np.meshgrid(np.linspace(x0, x1, res), np.linspace(y0, y1, res))
    grid = np.stack([gx.ravel(), gy.ravel()], axis=1).astype(net.dtype)
    out = net.forward(grid, train=False)
    probs = head.probs(_output_of(net, out, head))
    return Regions(blend_regions(probs, res), extent)


def fitted_curve(net: Network, head: Head, lo: float, hi: float,
                 n: int = CURVE_POINTS) -> FittedCurve:
    xs = np.linspace(lo, hi, n).astype(net.dtype)[:, None]
    out = _output_of(net, net.forward(xs, train=False), head)
    return FittedCurve(xs[:, 0].astype(np.float64), out.reshape(n, -1)[:, 0].astype(np.float64))


class EpochAnalyser:
    """The confusion matrix and the most confidently wrong samples of ``x`` (labels ``y``),
    built batch by batch from outputs a forward computed anyway (the end-of-epoch
    validation: ``Trainer.val_callbacks``): ``batch(start, outputs)`` for each batch in
    order (``start`` 0 begins a new pass), then ``result()``."""

    def __init__(self, head: Head, x: np.ndarray, y: np.ndarray, part: str) -> None:
        self.head, self.x, self.part = head, x, part
        yt = np.asarray(y).reshape(len(y), -1)[:, 0]
        if yt.dtype.kind == "f":
            yt = (yt > 0.5).astype(np.int64) if head.kind == "sigmoid" else yt.astype(np.int64)
        self.y = yt
        self._reset()

    def _reset(self) -> None:
        k = self.head.n_classes
        self.seen = 0
        self._cm = np.zeros(k * k, np.int64)
        self._wrong = np.zeros(0, np.int64)  # candidates for the gallery: index, pred, conf
        self._pred = np.zeros(0, np.int64)
        self._conf = np.zeros(0, np.float64)

    def batch(self, start: int, outputs: dict[str, np.ndarray]) -> None:
        """The outputs of samples ``start`` … of ``x`` (one forward batch)."""
        if start == 0:
            self._reset()
        if start != self.seen:
            return  # a gap: this pass is not whole; result() says so
        head = self.head
        probs = head.probs(outputs[head.output])
        n = len(probs)
        pred = probs.argmax(axis=1)
        conf = probs[np.arange(n), pred]
        yt = self.y[start:start + n]
        k = head.n_classes
        ok = (yt >= 0) & (yt < k)
        self._cm += np.bincount(yt[ok] * k + pred[ok], minlength=k * k)
        bad = np.flatnonzero(pred != yt)
        idx = np.concatenate([self._wrong, start + bad])
        pr = np.concatenate([self._pred, pred[bad]])
        cf = np.concatenate([self._conf, conf[bad]])
        keep = np.argsort(-cf, kind="stable")[:GALLERY_SIZE]
        self._wrong, self._pred, self._conf = idx[keep], pr[keep], cf[keep]
        self.seen = start + n

    def result(self) -> EpochAnalysis | None:
        """The analysis of the last whole pass over ``x`` (None if no pass was whole)."""
        if self.seen != len(self.y):
            return None
        k = self.head.n_classes
        wrong = [WrongSample(int(i), np.array(self.x[i], copy=True), int(self.y[i]), int(p),
                             float(c)) for i, p, c in zip(self._wrong, self._pred, self._conf)]
        return EpochAnalysis(self._cm.reshape(k, k).copy(), wrong, self.part)


def epoch_analysis(net: Network, x: np.ndarray, y: np.ndarray, head: Head, part: str,
                   batch_size: int = 256) -> EpochAnalysis:
    """Predict ``x`` (inference mode) and compare with labels ``y``."""
    an = EpochAnalyser(head, x, y, part)
    for i in range(0, x.shape[0], batch_size):
        out = net.forward(x[i:i + batch_size], train=False)
        an.batch(i, {head.output: _output_of(net, out, head)})
    result = an.result()
    assert result is not None  # every batch was seen, in order
    return result


@dataclass
class ProbeData:
    """The fixed data the probes use: samples for feature maps, points for regions."""

    x: np.ndarray | None = None
    y: np.ndarray | None = None
    part: str = "validation"
    points: np.ndarray | None = None
    point_labels: np.ndarray | None = None
    extent: tuple[float, float, float, float] | None = None
    kind: str = ""  # "regions", "curve" or ""
    labels: list[str] = field(default_factory=list)
    vocab: list[str] = field(default_factory=list)  # token names by id, when x holds tokens


def probe_label(probe: ProbeData, i: int) -> str:
    """The label of probe sample ``i`` as text: its class name, else its first values."""
    if probe.y is None or i >= len(probe.y):
        return ""
    yv = np.asarray(probe.y[i]).reshape(-1)
    if probe.labels and yv.size == 1:
        k = int(yv[0])
        return probe.labels[k] if 0 <= k < len(probe.labels) else str(k)
    return ", ".join(f"{v:.3g}" for v in yv[:4])
