"""The run's flight recording in the app (no Qt): the training loop keeps, per epoch, what
the monitor shows, and the timeline reads it back as the monitor's own messages.

What the epoch's validation computed anyway is reused, not measured again: the loop hands
``record`` the confusion matrix built from the validation's outputs and, through
``capture``, the recorded samples' outputs from its first batch (they are the first
samples of the validation part), so a recorded epoch runs no forward of its own.

On the training thread, ``MonitorRecorder.record(epoch)`` snapshots the network with
``engine.recorder.FlightRecorder`` (parameters at 8 bits, feature maps of the first probe
samples, activation and gradient statistics) and adds, as the recording's extras, what
else the monitor views draw: the canvas badges measured on those samples, the gradient
histograms of every node with parameters (the weights' are drawn from the 8-bit weights
when read back), the confusion matrix on the validation part (classification), the
decision regions or fitted curve (2-D points, a 1-D curve), the prediction for each
recorded sample and the most confidently wrong validation samples (8 bits, for the
Mistakes view). All of it counts towards the recorder's budget. Not recorded: the Input vs
Output and Attention views and the wire tints (the views say so while scrubbed).

On the GUI thread, ``frame_at(recording, epoch, ...)`` turns one recorded epoch back into a
``messages.Snapshot`` (filters, feature maps, histograms, regions or curve, badges) plus the
confusion matrix and mistakes, which the presenter draws exactly as it draws live ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

import engine
from engine.recorder import DEFAULT_BUDGET, FlightRecorder, Recording
from engine.recorder import Snapshot as Recorded

from . import probes
from .messages import Snapshot, class_namer, empty_snapshot
from .probes import (
    EpochAnalysis,
    FeatureMaps,
    Head,
    MonitorRequest,
    NodeStats,
    ProbeData,
    WrongSample,
)

RECORD_SAMPLES = 8  # probe samples whose feature maps are recorded (the first ones)
MAP_CHANNELS = 16  # channels of each recorded feature map (the first ones)
MAX_CONFUSION = 1000  # validation samples behind a recorded confusion matrix
MIB = 2**20


def fmt_mib(n: int) -> str:
    """Bytes as '2.3 MiB' (one decimal, or two under 1 MiB)."""
    v = n / MIB
    return f"{v:.2f} MiB" if v < 1 else f"{v:.1f} MiB"


def _hist_json(h: tuple[np.ndarray, np.ndarray]) -> list[Any]:
    counts, edges = h
    return [[int(c) for c in counts], float(edges[0]), float(edges[-1])]


def _hist_back(v: list[Any]) -> tuple[np.ndarray, np.ndarray]:
    counts = np.asarray(v[0], np.int64)
    return counts, np.linspace(float(v[1]), float(v[2]), len(counts) + 1)


class MonitorRecorder:
    """Records one run for the timeline (training thread). ``val``: (x, y) of the part the
    confusion matrix is measured on, or None; ``budget``: bytes for all snapshots."""

    def __init__(self, net: engine.Network, probe: ProbeData, head: Head | None,
                 val: tuple[np.ndarray, np.ndarray] | None = None,
                 budget: int = DEFAULT_BUDGET) -> None:
        self.net, self.probe, self.head, self.val = net, probe, head, val
        samples = None
        if probe.x is not None and len(probe.x) and len(net.input_ids) == 1:
            samples = probe.x[:RECORD_SAMPLES]
        self.samples = samples
        self.rec = FlightRecorder(net, samples=samples, budget=budget, map_channels=MAP_CHANNELS)
        self.rec.attach(net)
        self._outputs: dict[str, np.ndarray] | None = None  # the samples', from a forward

    def capture(self, acts: dict[str, np.ndarray]) -> None:
        """Keep the recorded samples' outputs from a forward that ran anyway on a batch that
        begins with them (``acts``: node -> batch array, e.g. ``net.acts`` after the first
        batch of the epoch's validation), so that the next ``record`` needs no forward of
        its own. The weights must not change in between."""
        k = 0 if self.samples is None else len(self.samples)
        if k and all(a.shape[:1] >= (k,) for a in acts.values()):
            self._outputs = {nid: a[:k].copy() for nid, a in acts.items()}

    def record(self, epoch: int, analysis: EpochAnalysis | None = None) -> Recording:
        """Snapshot the network at the end of ``epoch``; what is recorded so far (a
        ParamError when one snapshot does not fit the budget). ``analysis``: the epoch's
        confusion matrix if the loop has it already (from the epoch's validation forward);
        else it is measured here on the first ``MAX_CONFUSION`` samples of ``val``."""
        net, head = self.net, self.head
        extra: dict[str, Any] = {}
        arrays: dict[str, np.ndarray] = {}
        hists: dict[str, Any] = {}
        for nid in self.rec.nodes:  # the weights' histograms come from the 8-bit weights
            g = probes.param_histograms(net.grads, nid)
            hists[nid] = {"grads": {k: _hist_json(v) for k, v in g.items()}}
        extra["hists"] = hists
        if self.val is not None and head is not None and head.kind != "regression":
            x, y = self.val
            n = min(len(x), MAX_CONFUSION)
            a = analysis if analysis is not None \
                else probes.epoch_analysis(net, x[:n], y[:n], head, self.probe.part)
            extra["confusion"] = a.confusion.tolist()
            extra["part"] = a.part
            if a.wrong:  # the Mistakes view: the samples at 8 bits, what was wrong with them
                arrays["wrong_x"] = np.stack([w.x for w in a.wrong])
                extra["wrong"] = [[w.index, w.true, w.pred, round(w.confidence, 4)]
                                  for w in a.wrong]
        pd = self.probe
        if head is not None and pd.extent is not None:
            if pd.kind == "regions":
                arrays["regions"] = probes.decision_regions(net, head, pd.extent).rgb
                extra["extent"] = list(pd.extent)
            elif pd.kind == "curve":
                c = probes.fitted_curve(net, head, pd.extent[0], pd.extent[1])
                arrays["curve"] = c.ys
                extra["curve_x"] = [float(c.xs[0]), float(c.xs[-1])]

        def facts(outs: dict[str, np.ndarray]) -> dict[str, Any]:
            """With the samples' outputs: the badges and predictions."""
            if self.samples is not None:
                extra.update(self._sample_facts(outs))
            return extra

        outputs, self._outputs = self._outputs, None
        self.rec.record(epoch, net, extra=facts, extra_arrays=arrays, outputs=outputs)
        return self.rec.recording()

    def _sample_facts(self, outs: dict[str, np.ndarray]) -> dict[str, Any]:
        """The labels, canvas badges and predictions of the recorded samples (``outs``:
        node -> their outputs)."""
        net, head, samples = self.net, self.head, self.samples
        assert samples is not None
        facts: dict[str, Any] = {
            "labels": [probes.probe_label(self.probe, i) for i in range(len(samples))],
            "badges": {n: [s.mean, s.std, s.dead, s.saturated, s.finite]
                       for n, s in probes.node_stats(net, outs).items()}}
        o = outs.get(head.output) if head is not None else None
        if o is None:
            return facts
        if head.kind == "regression":
            facts["predictions"] = [", ".join(f"{v:.3g}" for v in row[:4])
                                    for row in o.reshape(len(o), -1)]
        else:
            p = head.probs(o)
            name = class_namer(self.probe)
            facts["predictions"] = [f"{name(int(k))} ({100 * r[k]:.0f} %)"
                                    for r, k in zip(p, p.argmax(axis=1))]
        return facts

    def follow(self, net: engine.Network, head: Head | None) -> None:
        """Record ``net`` from now on: the run's network after an edit while paused."""
        self.net, self.head = net, head
        self._outputs = None
        self.rec.follow(net)

    def detach(self) -> None:
        self.rec.detach()


@dataclass
class RecordedFrame:
    """One recorded epoch as the monitor draws it: ``snapshot`` (filters, maps, histograms,
    regions or curve, badges in ``stats``) and the confusion matrix, if recorded."""

    epoch: int
    snapshot: Snapshot
    analysis: EpochAnalysis | None
    recorded: Recorded


def frame_at(recording: Recording, epoch: int, req: MonitorRequest) -> RecordedFrame:
    """What the views show at recorded ``epoch``, for the nodes ``req`` names (the
    selected convolution, feature-map node and sample, histogram node); feature maps only
    for the first recorded samples (``RECORD_SAMPLES``), their first ``MAP_CHANNELS``
    channels."""
    r = recording.snapshot(epoch)
    snap = empty_snapshot()
    ex = r.extra
    if req.conv is not None:
        w = r.weights.get(f"{req.conv}.weight")
        if w is not None and w.ndim == 4:
            snap.filters = (req.conv, w)
    node, i = req.node, req.sample
    maps = r.feature_maps.get(node) if node is not None else None
    if maps is not None and 0 <= i < len(maps):
        labels, preds = ex.get("labels") or [], ex.get("predictions") or []
        snap.maps = FeatureMaps(node, i, maps[i], labels[i] if i < len(labels) else "",
                                preds[i] if i < len(preds) else "")
    node_h = req.hist_node or ""
    h = (ex.get("hists") or {}).get(node_h)
    if h:
        weights = {k: _hist_back(v) for k, v in h["weights"].items()} if "weights" in h \
            else probes.param_histograms(r.weights, node_h)  # from the 8-bit weights
        snap.hists = probes.Histograms(node_h, weights,
                                       {k: _hist_back(v) for k, v in h["grads"].items()})
    if "regions" in r.extra_arrays and "extent" in ex:
        rgb = np.clip(np.rint(r.extra_arrays["regions"]), 0, 255).astype(np.uint8)
        snap.regions = probes.Regions(rgb, tuple(float(v) for v in ex["extent"]))
    if "curve" in r.extra_arrays and "curve_x" in ex:
        ys = r.extra_arrays["curve"].astype(np.float64)
        snap.curve = probes.FittedCurve(np.linspace(*ex["curve_x"], len(ys)), ys)
    if "badges" in ex:
        snap.stats = {n: NodeStats(float(v[0]), float(v[1]), v[2], v[3], bool(v[4]))
                      for n, v in ex["badges"].items()}
    analysis = None
    if "confusion" in ex:
        xs = r.extra_arrays.get("wrong_x")
        wrong = [WrongSample(int(i), xs[k], int(t), int(p), float(c))
                 for k, (i, t, p, c) in enumerate(ex.get("wrong") or [])
                 if xs is not None and k < len(xs)]
        analysis = EpochAnalysis(np.asarray(ex["confusion"], np.int64), wrong,
                                 str(ex.get("part", "validation")))
    return RecordedFrame(epoch, snap, analysis, r)

