"""What the training loop sends to the session: the job it runs, the run's facts once the
data is ready, throttled snapshots of the batches and probes, epoch reports and the outcome
(plain dataclasses, no Qt), and the measuring of images on the network's own thread."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import engine
from engine.carry import CarryReport
from engine.data import Dataset
from engine.kernel_progress import fmt_left
from engine.profile import Profile
from engine.replay import Checkpoint, ReplayLog
from engine.training import BatchEvent, EpochEvent, RunResult

from . import probes
from .kernel_service import CompileFigures
from .probes import Head, MonitorRequest, ProbeData


@dataclass
class TrainingJob:
    """One run: the model (a copy), its ``training`` section, and the data (already loaded,
    or loaded on the worker from ``settings['dataset']`` beside ``base_dir``)."""

    graph: engine.Graph
    settings: dict[str, Any]
    dataset: Dataset | None = None
    base_dir: Path | None = None
    start_paused: bool = False
    threads: int | str = "auto"  # CPU threads: a count, or "auto" (engine.threads.ThreadTuner)
    record_budget: int | None = None  # bytes for the flight recording; None: no recording
    start: Checkpoint | None = None  # a branch: the weights and optimizer state it starts from
    start_ref: dict[str, Any] | None = None  # {"run_id", "epoch", "step"} of that checkpoint


@dataclass
class EditOutcome:
    """The loop's answer to a graph edited while paused: ``report`` (engine.carry's, which
    nodes kept their weights) once the edited network trains, at batch ``step`` of epoch
    ``epoch``; or ``error`` (and the ``node`` it names) when it could not take the edit:
    the run then stays paused on its old network, nothing lost."""

    graph: engine.Graph
    report: CarryReport | None = None
    error: str = ""
    node: str | None = None
    step: int = 0
    epoch: int = 0

    @property
    def ok(self) -> bool:
        return self.report is not None


@dataclass
class RunInfo:
    """Sent once the data is prepared, before the first batch."""

    settings: dict[str, Any]
    dataset: str
    task: str
    class_names: list[str]
    sample_shape: tuple[int, ...]
    sizes: dict[str, int]
    batch_size: int
    batches_per_epoch: int
    total_steps: int
    optimizer: str
    lr: float
    params: int
    shapes: dict[str, tuple[int, ...]]
    probe: ProbeData
    normalizer: dict[str, Any] | None
    dataset_meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class Snapshot:
    """Per-batch scalars since the previous snapshot, plus the latest probes (None when not
    measured this time)."""

    steps: np.ndarray
    losses: np.ndarray
    lrs: np.ndarray
    accuracies: np.ndarray  # NaN where a batch has no accuracy
    event: BatchEvent | None
    stats: dict[str, probes.NodeStats] | None = None
    wires: tuple[dict, set] | None = None
    layer_norms: tuple[int, dict[str, float]] | None = None
    maps: probes.FeatureMaps | None = None
    filters: tuple[str, np.ndarray] | None = None
    hists: probes.Histograms | None = None
    regions: probes.Regions | None = None
    curve: probes.FittedCurve | None = None
    pairs: probes.ImagePairs | None = None
    profile: Profile | None = None  # per-node ms of one recent step (live profiling)
    attention: probes.AttentionMaps | None = None


@dataclass
class EpochReport:
    """An epoch's end; ``repeat``: only a later analysis of an epoch already reported."""

    event: EpochEvent
    analysis: probes.EpochAnalysis | None
    repeat: bool = False


@dataclass
class RunOutcome:
    """The end of a run; ``weights`` are the network's final (or last good) state."""

    status: str  # completed, early_stopped, stopped, failed
    message: str
    result: RunResult | None = None
    error_node: str | None = None
    details: str = ""
    weights: dict[str, np.ndarray] | None = None
    history: dict[str, Any] | None = None
    replay: ReplayLog | None = None  # what a replay needs (engine.replay)
    checkpoints: dict[int, Checkpoint] = field(default_factory=dict)  # per epoch, thinned


def compile_text(f: CompileFigures) -> str:
    """The Training panel's phase line while the kernels this run needs compile."""
    what = "compiling the kernels this model needs (once on this computer)"
    if f.total <= 0:
        return f"{what}…"
    if f.done >= f.total:
        return f"{what}: {f.done}/{f.total}, finishing…"
    return f"{what}: {f.done}/{f.total} · {fmt_left(f.seconds_left)}"


def class_namer(probe: ProbeData) -> Any:
    names = probe.labels

    def name(k: int) -> str:
        return names[k] if 0 <= k < len(names) else str(k)
    return name


def measure_images(net: engine.Network, probe: ProbeData, head: Head | None,
                   req: MonitorRequest, snap: Snapshot) -> Snapshot:
    """Fill ``snap`` with what ``req`` asks to see: histograms, filters, the feature maps of
    one probe sample, decision regions or the fitted curve, a row of probe samples before
    and after a SpatialTransformer or an autoencoder, and a probe sample's attention weights.
    Runs the network: call it only on the thread that owns ``net``."""
    if req.histograms:
        snap.hists = probes.histograms(net, req.hist_node)
    if req.filters:
        snap.filters = probes.conv_filters(net, req.conv)
    name = class_namer(probe)
    if req.feature_maps and req.node is not None and probe.x is not None and len(probe.x):
        i = min(max(0, req.sample), len(probe.x) - 1)
        label = ""
        if probe.y is not None:
            yv = np.asarray(probe.y[i]).reshape(-1)
            label = (name(int(yv[0])) if probe.labels and yv.size == 1
                     else ", ".join(f"{v:.3g}" for v in yv[:4]))
        snap.maps = probes.feature_maps(net, probe.x[i], req.node, i, label, head, name)
    if req.regions and head is not None and probe.extent is not None:
        if probe.kind == "regions":
            snap.regions = probes.decision_regions(net, head, probe.extent)
        elif probe.kind == "curve":
            snap.curve = probes.fitted_curve(net, head, probe.extent[0], probe.extent[1])
    if req.pairs and req.pair_node is not None and probe.x is not None and len(probe.x):
        n = min(len(probe.x), probes.PAIR_SAMPLES)
        snap.pairs = probes.image_pairs(net, probe.x[:n], req.pair_node, probe.part,
                                        tuple(probes.probe_label(probe, i) for i in range(n)))
    if req.attention and req.attn_node is not None and probe.x is not None and len(probe.x):
        i = min(max(0, req.attn_sample), len(probe.x) - 1)
        target = () if probe.y is None else probes.token_names(probe, probe.y[i])
        snap.attention = probes.attention_maps(
            net, probe.x[i], req.attn_node, i, probes.token_names(probe, probe.x[i]),
            " ".join(target) if target else probes.probe_label(probe, i))
    return snap


def empty_snapshot() -> Snapshot:
    z = np.zeros(0)
    return Snapshot(z.astype(np.int64), z, z, z, None)
