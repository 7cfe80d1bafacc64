"""The flight recorder: compact per-epoch snapshots of a run, kept in its bundle.

    rec = FlightRecorder(net, samples=x_val[:4])    # fixed validation samples
    rec.attach(net)                                  # gradient statistics while it trains
    ... after each epoch: rec.record(epoch, net)
    save_bundle(path, net, extra=rec.members(), recorder=rec.describe())
    later: recording = read_recording(path); snap = recording.snapshot(3)
           snap.weights["c1.weight"], snap.activations["c1"], snap.feature_maps["c1"]

A snapshot holds, per epoch: the parameters of the chosen nodes quantised to 8 bits (each
array by its own min and max; arrays longer than ``max_values`` are kept as every k-th
value), per-node statistics of the outputs on the fixed samples (mean, std, min, max, share
of zeros) and of the gradients that reached each node while training (root mean square and
largest magnitude over each epoch's first step and every ``grad_every``-th after it, keyed
by the last node of each backward step: a fused chain reports the gradient at its output),
and the first ``map_channels`` channels of every image-shaped output for the fixed samples
(8 bits). Everything together stays within ``budget`` bytes: when a new snapshot would pass
it, snapshots between the first and the last are dropped where they are closest together,
so the kept epochs stay spread over the run.

In the bundle: ``recorder.json`` (the index: per epoch, what each stored array is and how
to read it back, and the statistics) and ``recorder.npz`` (one uint8 array per epoch).
"""

from __future__ import annotations

import io
import json
import math
import os
import zipfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .data.npyfile import ZIP_ERRORS, check_member, read_npz
from .errors import BundleError, ParamError, short_repr
from .hooks import BackwardEvent, HookHandle
from .network import Network

INDEX, ARRAYS = "recorder.json", "recorder.npz"
DEFAULT_BUDGET = 8 * 2**20  # bytes for all snapshots of one run
FORMAT_VERSION = 1


def quantise(a: np.ndarray) -> tuple[np.ndarray, float, float]:
    """(uint8 codes, low, step): ``low + codes * step`` is within ``step / 2`` of ``a``
    (non-finite values are stored as 0)."""
    a = np.nan_to_num(np.asarray(a, np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    lo, hi = (float(a.min()), float(a.max())) if a.size else (0.0, 0.0)
    step = (hi - lo) / 255 if hi > lo else 1.0
    return np.rint((a - lo) / step).astype(np.uint8), lo, step


def dequantise(codes: np.ndarray, low: float, step: float) -> np.ndarray:
    return (low + codes.astype(np.float64) * step).astype(np.float32)


def _stats(a: np.ndarray) -> dict[str, float]:
    a = np.asarray(a, np.float64)
    finite = np.isfinite(a)
    v = a[finite] if not finite.all() else a
    if v.size == 0:
        return {"mean": 0.0, "std": 0.0, "min": 0.0, "max": 0.0, "zeros": 0.0,
                "nonfinite": float(a.size)}
    return {"mean": float(v.mean()), "std": float(v.std()), "min": float(v.min()),
            "max": float(v.max()), "zeros": float(np.mean(v == 0)),
            "nonfinite": float(a.size - v.size)}


@dataclass
class Snapshot:
    """One recorded epoch, read back. ``weights``: full name -> float32 array (the
    parameter's shape, or a 1-D every-k-th subsample: ``strides`` says k); ``activations`` /
    ``gradients``: node -> statistics; ``feature_maps``: node -> (samples, channels, H, W)."""

    epoch: int
    weights: dict[str, np.ndarray] = field(default_factory=dict)
    strides: dict[str, int] = field(default_factory=dict)
    activations: dict[str, dict[str, float]] = field(default_factory=dict)
    gradients: dict[str, dict[str, float]] = field(default_factory=dict)
    feature_maps: dict[str, np.ndarray] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    extra_arrays: dict[str, np.ndarray] = field(default_factory=dict)


class FlightRecorder:
    """Takes the snapshots of one run (see the module note). ``nodes``: whose parameters
    to keep (default: every node with parameters); ``samples``: a few fixed validation
    inputs (an array, or {input_id: array}) for the activation statistics and feature maps,
    at most ``max_samples`` of them; ``budget``: bytes for all snapshots together."""

    def __init__(self, net: Network, samples: Any = None, nodes: Iterable[str] | None = None,
                 budget: int = DEFAULT_BUDGET, max_values: int = 65_536,
                 map_channels: int = 8, max_samples: int = 8, grad_every: int = 10) -> None:
        if budget <= 0 or max_values <= 0 or grad_every <= 0:
            raise ParamError("the recorder's budget, max_values and grad_every must be > 0")
        have = [n for n in net.order if net.layers[n].param_shapes()]
        self.nodes = list(have if nodes is None else nodes)
        for nid in self.nodes:
            if nid not in net.layers:
                raise ParamError(f"the recorder cannot follow '{nid}': the model has no such "
                                 "node", nid)
        self.params = [k for nid in self.nodes for k in net.params if k.rsplit(".", 1)[0] == nid]
        self.samples = None
        if samples is not None:
            self.samples = ({k: np.asarray(v)[:max_samples] for k, v in samples.items()}
                            if isinstance(samples, Mapping) else np.asarray(samples)[:max_samples])
        self.budget, self.max_values = int(budget), int(max_values)
        self.map_channels, self.grad_every = int(map_channels), int(grad_every)
        self.index: dict[int, dict[str, Any]] = {}
        self.data: dict[int, np.ndarray] = {}
        self._sizes: dict[int, int] = {}  # snapshot_bytes, measured once per snapshot
        self._grad: dict[str, list[float]] = {}
        self._seen: set[str] = set()
        self._steps = 0
        self._handle: HookHandle | None = None

    # ----- capture -------------------------------------------------------------------------
    def attach(self, net: Network) -> HookHandle:
        """Collect gradient statistics from ``net``'s backward passes (every ``grad_every``-th
        training step) until ``detach``."""
        self.detach()
        self._handle = net.add_hook(on_backward=self._on_backward)
        return self._handle

    def follow(self, net: Network) -> None:
        """Record ``net`` from now on (a run's network replaced after an edit): its nodes with
        parameters and its backward passes; the snapshots taken so far stay as they are."""
        self.nodes = [n for n in net.order if net.layers[n].param_shapes()]
        self.params = [k for nid in self.nodes for k in net.params if k.rsplit(".", 1)[0] == nid]
        self._grad = {}
        self._seen.clear()
        self._steps = 0  # the new network's first step is sampled, then every grad_every-th
        self.attach(net)

    def detach(self) -> None:
        if self._handle is not None:
            self._handle.remove()
            self._handle = None

    def _on_backward(self, ev: BackwardEvent) -> None:
        if ev.node in self._seen:  # a node seen again: the next step's backward began
            self._seen.clear()
            self._steps += 1
        self._seen.add(ev.node)
        if self._steps % self.grad_every:
            return
        g = ev.grad_output
        if g.size:
            acc = self._grad.setdefault(ev.node, [0.0, 0.0, 0.0])
            acc[0] += float(np.vdot(g, g)) / g.size
            acc[1] = max(acc[1], float(np.max(np.abs(g))))
            acc[2] += 1

    def record(self, epoch: int, net: Network,
               extra: Mapping[str, Any] | Callable[[dict[str, np.ndarray]], Mapping[str, Any]]
               | None = None,
               extra_arrays: Mapping[str, np.ndarray] | None = None,
               outputs: Mapping[str, np.ndarray] | None = None) -> None:
        """Snapshot ``net`` as it is at the end of ``epoch`` (runs a forward on the samples,
        which leaves the weights, buffers and gradients as they are; ``outputs``, node ->
        the samples' outputs (samples first) from a forward of these weights that ran
        anyway, e.g. the first batch of the epoch's validation, stands in for it).
        ``extra``: more facts
        of the epoch as JSON-able values, ``extra_arrays``: named arrays (kept at 8 bits);
        both count towards the budget and come back as ``Snapshot.extra`` /
        ``Snapshot.extra_arrays``. ``extra`` may also be a function of the samples' outputs
        (node -> array; empty without samples) that returns them, called after the forward
        (``net.acts`` then holds the samples' activations, unless ``outputs`` was given)."""
        parts: list[np.ndarray] = []
        entries: list[dict[str, Any]] = []
        at = 0

        def put(kind: str, name: str, arr: np.ndarray, **more: Any) -> None:
            nonlocal at
            codes, lo, step = quantise(arr)
            parts.append(codes.reshape(-1))
            entries.append({"kind": kind, "name": name, "at": at, "shape": list(codes.shape),
                            "low": lo, "step": step, **more})
            at += codes.size

        for key in self.params:
            flat = net.params[key].reshape(-1)
            stride = max(1, math.ceil(flat.size / self.max_values))
            put("weight", key, net.params[key] if stride == 1 else flat[::stride],
                stride=stride)
        acts: dict[str, dict[str, float]] = {}
        if self.samples is not None:
            outs: dict[str, np.ndarray] = dict(outputs) if outputs is not None else {}
            if outputs is None:
                with net.add_hook(on_forward=lambda nid, y: outs.__setitem__(nid, y.copy())):
                    net.forward(self.samples, train=False)
            for nid, y in outs.items():
                acts[nid] = _stats(y)
                if y.ndim == 4:
                    put("map", nid, y[:, :self.map_channels])
        if callable(extra):
            extra = extra(outs if self.samples is not None else {})
        for name, arr in (extra_arrays or {}).items():
            put("extra", name, np.asarray(arr))
        grads = {nid: {"rms": math.sqrt(a[0] / a[2]), "max": a[1]}
                 for nid, a in self._grad.items() if a[2]}
        self._grad = {}
        self._steps = 0  # each epoch's first step is sampled, then every grad_every-th
        self._seen.clear()
        buf = np.concatenate(parts) if parts else np.zeros(0, np.uint8)
        self._sizes.pop(int(epoch), None)
        self.index[int(epoch)] = {"entries": entries, "activations": acts, "gradients": grads,
                                  **({"extra": dict(extra)} if extra else {})}
        self.data[int(epoch)] = buf
        self._fit_budget(int(epoch))

    def snapshot_bytes(self, epoch: int) -> int:
        """What one stored snapshot takes: its 8-bit arrays and its index entry."""
        size = self._sizes.get(epoch)
        if size is None:
            size = self._sizes[epoch] = int(self.data[epoch].nbytes) \
                + len(json.dumps(self.index[epoch]))
        return size

    def total_bytes(self) -> int:
        return sum(self.snapshot_bytes(e) for e in self.data)

    def _fit_budget(self, newest: int) -> None:
        size = self.snapshot_bytes(newest)
        if size > self.budget:
            self._drop(newest)
            raise ParamError(f"one snapshot takes {size:,} bytes, more than the recorder's "
                             f"budget of {self.budget:,}: raise the budget, follow fewer nodes "
                             "or lower max_values")
        while self.total_bytes() > self.budget and len(self.data) > 2:
            epochs = sorted(self.data)
            gaps = [(epochs[i + 1] - epochs[i - 1], epochs[i]) for i in range(1, len(epochs) - 1)]
            self._drop(min(gaps)[1])
        if self.total_bytes() > self.budget:
            self._drop(min(self.data))

    def _drop(self, epoch: int) -> None:
        del self.index[epoch], self.data[epoch]
        self._sizes.pop(epoch, None)

    # ----- storage -------------------------------------------------------------------------
    def describe(self) -> dict[str, Any]:
        """For the bundle's manifest: the epochs kept, the bytes they take, the budget."""
        return {"epochs": sorted(self.data), "bytes": self.total_bytes(), "budget": self.budget}

    def members(self) -> dict[str, bytes]:
        """The bundle members that hold the recording (``engine.save_bundle(extra=...)``)."""
        return self.recording().members()

    def recording(self) -> Recording:
        """What is recorded so far, readable like a bundle's (the stored arrays are shared,
        not copied: the recorder never changes one it has stored, so another thread may read
        it while this one records the next epoch)."""
        return Recording({"version": FORMAT_VERSION, "budget": self.budget,
                          "epochs": {str(e): self.index[e] for e in sorted(self.index)}},
                         {f"e{e}": self.data[e] for e in sorted(self.data)},
                         total=self.total_bytes())


class Recording:
    """A run's snapshots read back from its bundle (``read_recording``), or taken from a
    recorder while it records (``FlightRecorder.recording``)."""

    def __init__(self, index: dict[str, Any], arrays: dict[str, np.ndarray],
                 total: int | None = None) -> None:
        self._index = index
        self._arrays = arrays
        self.budget = int(index.get("budget", 0))
        self.epochs = sorted(int(e) for e in index["epochs"])
        self._total = total  # total_bytes, when the recorder knows it

    def total_bytes(self) -> int:
        """The bytes the snapshots take, measured as the recorder measures its budget."""
        if self._total is None:
            self._total = sum(int(self._arrays[f"e{e}"].nbytes)
                              + len(json.dumps(self._index["epochs"][str(e)]))
                              for e in self.epochs)
        return self._total

    def describe(self) -> dict[str, Any]:
        """For the bundle's manifest (as ``FlightRecorder.describe``)."""
        return {"epochs": list(self.epochs), "bytes": self.total_bytes(), "budget": self.budget}

    def members(self) -> dict[str, bytes]:
        """The bundle members that hold this recording (``engine.save_bundle(extra=...)``)."""
        index = {"version": FORMAT_VERSION, "budget": self.budget,
                 "epochs": {str(e): self._index["epochs"][str(e)] for e in self.epochs}}
        buf = io.BytesIO()
        np.savez_compressed(buf, **{f"e{e}": self._arrays[f"e{e}"] for e in self.epochs})
        return {INDEX: json.dumps(index).encode(), ARRAYS: buf.getvalue()}

    def snapshot(self, epoch: int) -> Snapshot:
        """The snapshot of ``epoch`` (a KeyError names the recorded ones if it is missing)."""
        if epoch not in self.epochs:
            raise KeyError(f"epoch {epoch} was not recorded (recorded: "
                           f"{', '.join(map(str, self.epochs)) or 'none'})")
        entry = self._index["epochs"][str(epoch)]
        buf = self._arrays[f"e{epoch}"]
        snap = Snapshot(epoch, activations=dict(entry["activations"]),
                        gradients=dict(entry["gradients"]),
                        extra=dict(entry.get("extra") or {}))
        for e in entry["entries"]:
            size = math.prod(e["shape"])
            codes = buf[e["at"]:e["at"] + size].reshape(e["shape"])
            arr = dequantise(codes, e["low"], e["step"])
            if e["kind"] == "weight":
                snap.weights[e["name"]] = arr
                snap.strides[e["name"]] = int(e.get("stride", 1))
            elif e["kind"] == "extra":
                snap.extra_arrays[e["name"]] = arr
            else:
                snap.feature_maps[e["name"]] = arr
        return snap


def _check_index(index: Any, src: str) -> dict[str, Any]:
    ok = isinstance(index, dict) and isinstance(index.get("epochs"), dict)
    if ok:
        for k, v in index["epochs"].items():
            ok = ok and k.isdigit() and isinstance(v, dict) \
                and isinstance(v.get("entries"), list) \
                and isinstance(v.get("activations"), dict) \
                and isinstance(v.get("gradients"), dict) \
                and isinstance(v.get("extra", {}), dict) \
                and all(isinstance(e, dict) and isinstance(e.get("shape"), list)
                        and isinstance(e.get("at"), int)
                        and e.get("kind") in ("weight", "map", "extra")
                        and isinstance(e.get("name"), str)
                        and all(isinstance(d, int) and d >= 0 for d in e["shape"])
                        and isinstance(e.get("low"), int | float)
                        and isinstance(e.get("step"), int | float)
                        for e in v["entries"])
    if not ok:
        raise BundleError(f"{src}: {INDEX} is damaged ({short_repr(index)})")
    return index


def read_recording(path: str | os.PathLike) -> Recording | None:
    """The recording in a bundle, or None for a bundle saved without one; BundleError for a
    damaged one (entries that do not fit their arrays included)."""
    src = str(Path(path))
    try:
        with zipfile.ZipFile(path) as zf:
            names = set(zf.namelist())
            if INDEX not in names:
                return None
            for name in (INDEX, ARRAYS):
                if name not in names:
                    raise BundleError(f"{src}: the recording has no {name}")
                check_member(zf.getinfo(name), src, BundleError)
            try:
                index = json.loads(zf.read(INDEX).decode("utf-8"))
            except (ValueError, RecursionError):
                raise BundleError(f"{src}: {INDEX} is not valid JSON") from None
            index = _check_index(index, src)
            limit = int(index.get("budget", DEFAULT_BUDGET)) * 2 + 2**20
            arrays = read_npz(zf.read(ARRAYS), ARRAYS, limit, BundleError)
    except FileNotFoundError:
        raise BundleError(f"no such bundle: {src}") from None
    except (*ZIP_ERRORS, ValueError, OSError) as exc:
        raise BundleError(f"{src}: cannot read the recording ({exc})") from None
    for e, entry in index["epochs"].items():
        buf = arrays.get(f"e{e}")
        if buf is None or buf.dtype != np.uint8 or buf.ndim != 1:
            raise BundleError(f"{src}: the recording of epoch {e} is missing or damaged")
        for item in entry["entries"]:
            if item["at"] < 0 or item["at"] + math.prod(item["shape"]) > buf.size:
                raise BundleError(f"{src}: the recording of epoch {e} is shorter than its index")
    return Recording(index, arrays)
