"""Trained-model bundles (``*.nbmodel``): one zip holding

    manifest.json   {"format": "netbuilder.bundle", "version": 1, "name", "created",
                     "preprocess": normalisation, "dataset": {name, task, class_names, ...},
                     "metrics": {...}, ...}
    model.json      the model file (netbuilder.graph), training section and UI positions
    weights.npz     every parameter and buffer by full name ("conv1.weight"), float32
    history.json    optional: the training curves (engine.training.History)

Writes are atomic. Reads refuse, with BundleError, anything that is not exactly that: a
damaged or foreign zip, member names that are absolute or climb out (``../x``), a newer
version, pickled or non-float arrays, and weights that do not fit the model.
"""

from __future__ import annotations

import datetime as _dt
import io
import json
import os
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from .atomic import atomic_write
from .data.npyfile import ZIP_ERRORS, check_member, read_npz
from .errors import BundleError, NetBuilderError, short_repr
from .graph import Graph, graph_from_bytes
from .network import Network

FORMAT = "netbuilder.bundle"
VERSION = 1
EXTENSION = ".nbmodel"
MANIFEST, MODEL, WEIGHTS, HISTORY = "manifest.json", "model.json", "weights.npz", "history.json"
MAX_JSON_BYTES = 64 * 2**20
MAX_WEIGHTS_BYTES = 4 * 2**30
MAX_MEMBERS = 64


@dataclass
class Bundle:
    """A loaded bundle: the model, its weights (already in ``net``) and what was recorded."""

    graph: Graph
    net: Network
    manifest: dict[str, Any]
    history: dict[str, Any] | None = None
    path: Path | None = None
    weights: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return str(self.manifest.get("name") or self.graph.name)

    @property
    def class_names(self) -> list[str] | None:
        ds = self.manifest.get("dataset")
        names = ds.get("class_names") if isinstance(ds, dict) else None
        return [str(c) for c in names] if isinstance(names, list) else None

    @property
    def preprocess(self) -> dict[str, Any] | None:
        p = self.manifest.get("preprocess")
        return p if isinstance(p, dict) else None


def is_bundle_path(path: str | os.PathLike) -> bool:
    """True when the file starts like a zip (a bundle, or something pretending to be one)."""
    try:
        with open(path, "rb") as fh:
            return fh.read(4) == b"PK\x03\x04"
    except OSError:
        return False


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"{type(o).__name__} is not JSON-serialisable")


def save_bundle(path: str | os.PathLike, model: Network | Graph,
                weights: dict[str, np.ndarray] | None = None,
                history: dict[str, Any] | None = None,
                extra: Mapping[str, bytes] | None = None, **meta: Any) -> Path:
    """Write ``model`` (a trained Network, or a Graph plus ``weights``) as a bundle; ``meta``
    goes into the manifest (e.g. preprocess=..., dataset=..., metrics=...); ``extra``: more
    members by name (the flight recorder's, ``engine.recorder``). Atomic: an existing file
    stays whole until the new one is complete. Returns the path."""
    p = Path(path)
    if isinstance(model, Network):
        graph, state = model.source_graph, (weights if weights is not None else model.state_dict())
    else:
        if weights is None:
            raise BundleError("save_bundle needs the weights when given a Graph")
        graph, state = model, weights
    manifest = {"format": FORMAT, "version": VERSION, "name": graph.name,
                "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
                **meta}
    buf = io.BytesIO()
    np.savez_compressed(buf, **{k: np.asarray(v, np.float32) for k, v in state.items()})
    members = [(MANIFEST, json.dumps(manifest, indent=2, default=_json_default).encode()),
               (MODEL, graph.to_json().encode()), (WEIGHTS, buf.getvalue())]
    if history is not None:
        members.append((HISTORY, json.dumps(history, default=_json_default).encode()))
    for name, data in (extra or {}).items():
        if name in (MANIFEST, MODEL, WEIGHTS, HISTORY) or not _safe_name(name):
            raise BundleError(f"a bundle member may not be named {short_repr(name)}")
        members.append((name, bytes(data)))

    def write(fh: Any) -> None:
        with zipfile.ZipFile(fh, "w") as zf:
            for name, data in members:
                kind = zipfile.ZIP_STORED if name == WEIGHTS else zipfile.ZIP_DEFLATED
                zf.writestr(name, data, compress_type=kind)

    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(p, write)
    except OSError as exc:
        raise BundleError(f"cannot write {p}: {exc.strerror or exc}") from None
    return p


def _safe_name(name: str) -> bool:
    if not name or "\\" in name or "\x00" in name or name.startswith("/") or ":" in name:
        return False
    parts = PurePosixPath(name).parts
    return ".." not in parts and not PurePosixPath(name).is_absolute()


def _read_json(zf: zipfile.ZipFile, name: str, src: str) -> Any:
    info = zf.getinfo(name)
    if info.file_size > MAX_JSON_BYTES:
        raise BundleError(f"{src}: {name} is too large ({info.file_size:,} bytes)")
    check_member(info, src, BundleError)
    raw = zf.read(name)
    try:
        return json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError):
        raise BundleError(f"{src}: {name} is not valid JSON; the bundle is damaged") from None


def _read_weights(zf: zipfile.ZipFile, src: str, net: Network) -> dict[str, np.ndarray]:
    """The arrays of weights.npz, refused before inflating if they claim more bytes than
    ``net``'s parameters and buffers could take (float64 at most, plus headers)."""
    state = {**net.params, **net.buffers}
    limit = min(MAX_WEIGHTS_BYTES,
                8 * sum(a.size for a in state.values()) + 4096 * len(state) + 2**16)
    info = zf.getinfo(WEIGHTS)
    check_member(info, src, BundleError)
    if info.file_size > limit:
        raise BundleError(f"{src}: {WEIGHTS} unpacks to {info.file_size:,} bytes, far more "
                          f"than the {len(state)} weight arrays of this model need; the "
                          "bundle is damaged or not what it claims")
    try:
        out = read_npz(zf.read(WEIGHTS), WEIGHTS, limit, BundleError)
    except BundleError as exc:
        raise BundleError(f"{src}: the weights are damaged or unsafe: {exc.message}") from None
    for key, arr in out.items():
        if arr.dtype.kind != "f":
            raise BundleError(f"{src}: weight array '{key[:80]}' has type {arr.dtype}, "
                              "expected floating point")
    return out


def load_bundle(path: str | os.PathLike) -> Bundle:
    """Open a bundle and build its network with the saved weights; BundleError otherwise."""
    p = Path(path)
    src = str(p)
    try:
        zf = zipfile.ZipFile(p)
    except FileNotFoundError:
        raise BundleError(f"no such bundle: {p}") from None
    except IsADirectoryError:
        raise BundleError(f"{p} is a folder, not a bundle") from None
    except OSError as exc:
        raise BundleError(f"cannot read {p}: {exc.strerror or exc}") from None
    except (*ZIP_ERRORS, ValueError):
        raise BundleError(f"{p} is not a NetBuilder bundle (not a zip archive, or damaged)"
                          ) from None
    try:
        with zf:
            infos = zf.infolist()
            if len(infos) > MAX_MEMBERS:
                raise BundleError(f"{src}: {len(infos)} members is too many for a bundle")
            names = [i.filename for i in infos]
            for name in names:
                if not _safe_name(name):
                    raise BundleError(f"{src}: refusing member {short_repr(name)}: bundle member names "
                                      "may not be absolute or climb out of the archive")
            if len(set(names)) != len(names):
                raise BundleError(f"{src}: the archive lists a member twice")
            if MANIFEST not in names:
                raise BundleError(f"{src} is not a NetBuilder bundle (no {MANIFEST})")
            manifest = _read_json(zf, MANIFEST, src)
            if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
                fmt = manifest.get("format") if isinstance(manifest, dict) else None
                raise BundleError(f"{src} is not a NetBuilder bundle (format {short_repr(fmt)})")
            version = manifest.get("version")
            if isinstance(version, bool) or not isinstance(version, int) or version < 1:
                raise BundleError(f"{src}: bundle version {short_repr(version)} is not valid")
            if version > VERSION:
                raise BundleError(f"{src}: bundle version {short_repr(version)} is newer than this "
                                  f"NetBuilder reads (up to {VERSION}); update NetBuilder")
            for need in (MODEL, WEIGHTS):
                if need not in names:
                    raise BundleError(f"{src}: the bundle has no {need}")
            info = zf.getinfo(MODEL)
            check_member(info, src, BundleError)
            if info.file_size > MAX_JSON_BYTES:
                raise BundleError(f"{src}: {MODEL} is too large ({info.file_size:,} bytes)")
            try:
                graph = graph_from_bytes(zf.read(MODEL), f"{src} ({MODEL})")
            except BundleError:
                raise
            except NetBuilderError as exc:
                raise BundleError(f"{src}: the model in the bundle is not valid: {exc.message}",
                                  exc.node_id) from None
            net = Network(graph, seed=0)
            weights = _read_weights(zf, src, net)
            history = _read_json(zf, HISTORY, src) if HISTORY in names else None
            if history is not None and not isinstance(history, dict):
                raise BundleError(f"{src}: {HISTORY} must hold an object")
    except BundleError:
        raise
    except NetBuilderError as exc:
        raise BundleError(f"{src}: {exc.message}", exc.node_id) from None
    except (*ZIP_ERRORS, ValueError) as exc:
        raise BundleError(f"{src}: the bundle is damaged ({exc})") from None
    try:
        net.load_state_dict(weights)
    except NetBuilderError as exc:
        raise BundleError(f"{src}: the saved {exc.message}", exc.node_id) from None
    return Bundle(graph, net, manifest, history, p, weights)
