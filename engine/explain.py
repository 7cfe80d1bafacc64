"""Why a network answers as it does: saliency, Grad-CAM, occlusion, activation maximisation.

Every function takes a compiled ``Network`` and runs it (forward and backward through the
public ``loss_backward`` seeds and ``engine.hooks``); none changes its weights, but each
overwrites its activations and gradient arrays, so hand it a copy (``explainable(net)``)
while the original trains. The class score is the input of the loss: the logits when a
Softmax folds into a cross-entropy Output, the Output's value otherwise.

Shapes: ``x`` is a batch ``(N, *input_shape)`` for a model with one Input; images are
``(C, H, W)`` per sample.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .errors import NetBuilderError
from .hooks import BackwardEvent
from .network import Network

Progress = Callable[[int, int], None]
Cancelled = Callable[[], bool]


class ExplainCancelledError(NetBuilderError):
    """Raised when a long explanation (occlusion, activation maximisation) is cancelled."""


def explainable(net: Network) -> Network:
    """An unfused copy of ``net`` with the same weights and buffers: every node is a step
    of its own, so the gradient at any node's output is formed. ``net`` itself when it is
    already unfused."""
    if not net.fuse:
        return net
    other = Network(net.graph, net.seed, net.dtype, fuse=False)
    other.load_state_dict(net.state_dict())
    return other


def score_node(net: Network, output: str | None = None) -> str:
    """The node whose output is the class scores of ``output`` (default the first Output):
    the logits before a Softmax folded into the loss, or the Output itself."""
    oid = output or net.output_ids[0]
    if oid not in net.output_ids:
        raise NetBuilderError(f"'{oid}' is not an Output of this model", oid)
    return net.loss_logits.get(oid, oid)


def _single_input(net: Network) -> str:
    if len(net.input_ids) != 1:
        raise NetBuilderError(f"explanations need a model with one Input; this one has "
                              f"{len(net.input_ids)}")
    return net.input_ids[0]


def _classes(cls: int | np.ndarray, n: int) -> np.ndarray:
    c = np.broadcast_to(np.asarray(cls, dtype=np.int64), (n,))
    return np.array(c)


def class_scores(net: Network, x: np.ndarray, output: str | None = None) -> np.ndarray:
    """Scores (N, classes) of a batch: inference forward, read at ``score_node``."""
    _single_input(net)
    net.forward(x, train=False)
    return net.acts[score_node(net, output)].copy()


def probabilities(scores: np.ndarray) -> np.ndarray:
    """Softmax over the last axis (N, classes), computed stably in float64."""
    s = np.asarray(scores, dtype=np.float64)
    e = np.exp(s - s.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _score_seed(scores: np.ndarray, cls: np.ndarray) -> np.ndarray:
    seed = np.zeros_like(scores)
    flat = seed.reshape(scores.shape[0], -1, scores.shape[-1])
    flat[np.arange(scores.shape[0]), :, cls] = 1.0
    return seed


def input_gradient(net: Network, x: np.ndarray, cls: int | np.ndarray,
                   output: str | None = None) -> np.ndarray:
    """d score[cls] / d x for each sample of the batch (N, *input_shape), through an
    inference forward. Fills the network's parameter gradients as a side effect."""
    iid = _single_input(net)
    node = score_node(net, output)
    net.forward(x, train=False)
    scores = net.acts[node]
    seed = _score_seed(scores, _classes(cls, scores.shape[0]))
    return np.array(net.loss_backward({node: seed}, input_grads=True)[iid])


def saliency(net: Network, x: np.ndarray, cls: int | np.ndarray, smooth: int = 0,
             noise: float = 0.15, seed: int = 0, output: str | None = None) -> np.ndarray:
    """Input gradient of class ``cls`` (N, *input_shape). ``smooth`` > 0 averages it over
    that many copies with Gaussian noise of ``noise`` times each sample's value range
    (SmoothGrad); seeded, so the same call gives the same map."""
    x = np.asarray(x)
    if smooth <= 0:
        return input_gradient(net, x, cls, output)
    rng = np.random.default_rng(seed)
    axes = tuple(range(1, x.ndim))
    span = (x.max(axis=axes, keepdims=True) - x.min(axis=axes, keepdims=True))
    sigma = noise * np.where(span > 0, span, 1.0)
    total = np.zeros(x.shape, dtype=np.float64)
    for _ in range(smooth):
        total += input_gradient(net, x + sigma * rng.standard_normal(x.shape), cls, output)
    return total / smooth


def saliency_map(grad: np.ndarray) -> np.ndarray:
    """One image's saliency for display: max |gradient| over channels, (C, H, W) -> (H, W),
    scaled to 0..1."""
    g = np.abs(np.asarray(grad, dtype=np.float64))
    m = g.max(axis=0) if g.ndim == 3 else g
    top = m.max(initial=0.0)
    return m / top if top > 0 else m


def resize_bilinear(a: np.ndarray, h: int, w: int) -> np.ndarray:
    """Bilinear resize of the last two axes to (h, w), pixel centres aligned (as
    ``align_corners=False``)."""
    a = np.asarray(a, dtype=np.float64)
    ih, iw = a.shape[-2:]

    def axis(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        pos = np.clip((np.arange(n_out) + 0.5) * n_in / n_out - 0.5, 0, n_in - 1)
        lo = np.floor(pos).astype(int)
        hi = np.minimum(lo + 1, n_in - 1)
        return lo, hi, pos - lo

    r0, r1, fr = axis(ih, h)
    c0, c1, fc = axis(iw, w)
    rows = a[..., r0, :] * (1 - fr)[:, None] + a[..., r1, :] * fr[:, None]
    return rows[..., c0] * (1 - fc) + rows[..., c1] * fc


@dataclass
class GradCam:
    """Grad-CAM of one node: ``cam`` (N, h, w) at the node's resolution, ReLU of the
    channel-weighted activations; ``weights`` (N, C) the spatial mean of the score's gradient
    per channel; ``heatmap`` (N, H, W) the cam resized to the input and scaled to 0..1."""

    node: str
    cam: np.ndarray
    weights: np.ndarray
    heatmap: np.ndarray


def node_gradient(net: Network, x: np.ndarray, cls: int | np.ndarray, node: str,
                  output: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(activation, d score[cls] / d activation) of ``node`` for a batch; ``net`` must be
    unfused (``explainable``) so that the node's gradient is formed."""
    if net.fuse:
        raise NetBuilderError("node_gradient needs an unfused network: use explainable(net)")
    if node not in net.layers:
        raise NetBuilderError(f"no node '{node}' in this model", node)
    _single_input(net)
    seen: dict[str, np.ndarray] = {}

    def grab(event: BackwardEvent) -> None:
        if event.node == node:
            seen["grad"] = np.array(event.grad_output)

    snode = score_node(net, output)
    net.forward(x, train=False)
    act = np.array(net.acts[node])
    scores = net.acts[snode]
    seed = _score_seed(scores, _classes(cls, scores.shape[0]))
    with net.add_hook(on_backward=grab):
        net.loss_backward({snode: seed}, input_grads=True)
    return act, seen.get("grad", np.zeros_like(act))


def grad_cam(net: Network, x: np.ndarray, cls: int | np.ndarray, node: str,
             output: str | None = None) -> GradCam:
    """Grad-CAM (Selvaraju et al.) of class ``cls`` on a node with (C, h, w) output."""
    work = explainable(net)
    if len(work.shapes[node]) != 3:
        raise NetBuilderError(f"Grad-CAM needs a node with an image output (C, H, W); "
                              f"'{node}' outputs {work.shapes[node]}", node)
    act, grad = node_gradient(work, x, cls, node, output)
    act = act.astype(np.float64)
    weights = grad.astype(np.float64).mean(axis=(2, 3))
    cam = np.maximum(np.einsum("nc,nchw->nhw", weights, act), 0.0)
    shape = work.shapes[work.input_ids[0]]
    h, w = (shape[-2], shape[-1]) if len(shape) >= 2 else cam.shape[-2:]
    heat = resize_bilinear(cam, h, w)
    top = heat.reshape(heat.shape[0], -1).max(axis=1)
    heat = heat / np.where(top > 0, top, 1.0)[:, None, None]
    return GradCam(node, cam, weights, heat)


def occlusion(net: Network, x: np.ndarray, cls: int, patch: int = 3, stride: int = 1,
              fill: float = 0.0, batch: int = 64, progress: Progress | None = None,
              cancelled: Cancelled | None = None) -> np.ndarray:
    """Occlusion sensitivity of one sample ``x`` (C, H, W): a ``patch`` x ``patch`` square of
    ``fill`` slid with ``stride`` over all channels; each pixel gets the mean drop of the
    class score over the patches that cover it (H, W), positive where hiding it hurts.
    ``progress(done, total)`` after each batch of positions; raises ``ExplainCancelledError``
    as soon as ``cancelled()`` is true."""
    x = np.asarray(x)
    if x.ndim != 3:
        raise NetBuilderError(f"occlusion needs one image (C, H, W), got shape {x.shape}")
    _c, h, w = x.shape
    patch = max(1, min(int(patch), h, w))
    stride = max(1, int(stride))
    s0 = class_scores(net, x[None])
    base = float(s0.reshape(1, -1, s0.shape[-1])[0, 0, cls])
    rows = list(range(0, h - patch + 1, stride))
    cols = list(range(0, w - patch + 1, stride))
    if rows[-1] != h - patch:
        rows.append(h - patch)
    if cols[-1] != w - patch:
        cols.append(w - patch)
    where = [(r, c) for r in rows for c in cols]
    drop = np.zeros((h, w))
    count = np.zeros((h, w))
    for start in range(0, len(where), batch):
        if cancelled is not None and cancelled():
            raise ExplainCancelledError("occlusion cancelled")
        chunk = where[start:start + batch]
        xb = np.repeat(x[None], len(chunk), axis=0)
        for k, (r, c) in enumerate(chunk):
            xb[k, :, r:r + patch, c:c + patch] = fill
        s = class_scores(net, xb)
        s = s.reshape(len(chunk), -1, s.shape[-1])[:, 0, cls].astype(np.float64)
        for k, (r, c) in enumerate(chunk):
            drop[r:r + patch, c:c + patch] += base - s[k]
            count[r:r + patch, c:c + patch] += 1
        if progress is not None:
            progress(min(start + batch, len(where)), len(where))
    return drop / np.maximum(count, 1)


@dataclass
class ActivationMax:
    """Synthesised inputs (K, *input_shape), one per channel in ``channels``, and
    ``history`` (steps + 1, K): the target activation before each step and after the last."""

    node: str
    channels: list[int]
    images: np.ndarray
    history: np.ndarray


def maximise_activation(net: Network, node: str, channels: list[int] | None = None,
                        steps: int = 64, lr: float = 0.05, l2: float = 0.01, seed: int = 0,
                        init_scale: float = 0.01, progress: Progress | None = None,
                        cancelled: Cancelled | None = None) -> ActivationMax:
    """Gradient ascent on the input for the mean activation of each channel of ``node``
    (one sample per channel, all in one batch). Each step moves x by ``lr`` times the
    gradient over its RMS and decays it by ``lr * l2`` (the L2 regulariser), from a seeded
    small Gaussian per channel (the same start for a channel whatever else is asked).
    ``progress(step, steps)``; raises ``ExplainCancelledError`` when
    ``cancelled()`` turns true."""
    work = explainable(net)
    iid = _single_input(work)
    shape = work.shapes[node]
    chans = list(range(shape[0])) if channels is None else [int(c) for c in channels]
    k = len(chans)
    x = init_scale * np.stack([np.random.default_rng([seed, c]).standard_normal(
        work.shapes[iid]) for c in chans])
    rows = np.arange(k)
    size = int(np.prod(shape[1:], dtype=np.int64)) or 1

    def target() -> tuple[np.ndarray, np.ndarray]:
        work.forward(x, train=False)
        a = work.acts[node].reshape(k, shape[0], -1)
        return a[rows, chans].mean(axis=1).astype(np.float64), a

    history = []
    for step in range(steps):
        if cancelled is not None and cancelled():
            raise ExplainCancelledError("activation maximisation cancelled")
        value, a = target()
        history.append(value)
        seed_grad = np.zeros(a.shape, dtype=work.dtype)
        seed_grad[rows, chans, :] = 1.0 / size
        g = np.asarray(work.loss_backward({node: seed_grad.reshape(work.acts[node].shape)},
                                          input_grads=True)[iid], dtype=np.float64)
        rms = np.sqrt((g.reshape(k, -1) ** 2).mean(axis=1)) + 1e-12
        x = (1.0 - lr * l2) * x + lr * g / rms.reshape(-1, *([1] * (x.ndim - 1)))
        if progress is not None:
            progress(step + 1, steps)
    history.append(target()[0])
    return ActivationMax(node, chans, x, np.array(history))
