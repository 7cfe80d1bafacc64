"""The runs a bundle keeps as a tree: each run's settings, curves, graph, replay log, final
weights, per-epoch checkpoints and, for a branch, the checkpoint it started from.

Two bundle members (beside the bundle's own ``weights.npz``, which holds the saved run's
final weights as always):

    runs.json   {"version": 1, "runs": [{"run_id", "name", "parent": {"run_id", "epoch",
                 "step"} | null, "graph": model file, "settings": training section,
                 "dataset", "status", "message", "history", "diff": engine.lineage diff,
                 "replay": engine.replay log, "final": index, "checkpoints": {epoch: index},
                 "start": index | null}, ...]}   (ancestors first)
    runs.npz    the arrays of every index: "<i>.final.w", "<i>.ck<epoch>.w" / ".o",
                "<i>.start.w" / ".o" (engine.replay.Checkpoint.pack)

    members = tree_members(runs); save_bundle(path, ..., extra=members)
    runs = read_tree(path)           # [] for a bundle saved without one
"""

from __future__ import annotations

import io
import json
import math
import os
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .bundle import MAX_JSON_BYTES, MAX_WEIGHTS_BYTES
from .data.npyfile import ZIP_ERRORS, check_member, read_npz
from .errors import BundleError, short_repr
from .replay import Checkpoint, ReplayLog

INDEX, ARRAYS = "runs.json", "runs.npz"
VERSION = 1


@dataclass
class TreeRun:
    """One run of the tree (see the module note); ``final``: its final weights as a
    checkpoint without optimizer state."""

    run_id: str
    name: str
    graph: dict[str, Any]
    settings: dict[str, Any]
    parent: dict[str, Any] | None = None
    dataset: dict[str, Any] = field(default_factory=dict)
    status: str = ""
    message: str = ""
    history: dict[str, Any] | None = None
    diff: dict[str, Any] | None = None
    replay: ReplayLog | None = None
    final: Checkpoint | None = None
    checkpoints: dict[int, Checkpoint] = field(default_factory=dict)
    start: Checkpoint | None = None


def tree_members(runs: Sequence[TreeRun]) -> dict[str, bytes]:
    """``runs.json`` and ``runs.npz`` for ``save_bundle(extra=...)``."""
    entries: list[dict[str, Any]] = []
    arrays: dict[str, np.ndarray] = {}

    def put(prefix: str, ck: Checkpoint | None) -> dict[str, Any] | None:
        if ck is None:
            return None
        index, arrs = ck.pack()
        for tag, a in arrs.items():
            arrays[f"{prefix}.{tag}"] = a
        return index

    for i, r in enumerate(runs):
        entries.append({
            "run_id": r.run_id, "name": r.name, "parent": r.parent, "graph": r.graph,
            "settings": r.settings, "dataset": r.dataset, "status": r.status,
            "message": r.message, "history": r.history, "diff": r.diff,
            "replay": r.replay.to_dict() if r.replay is not None else None,
            "final": put(f"{i}.final", r.final),
            "checkpoints": {str(e): put(f"{i}.ck{e}", ck) for e, ck in
                            sorted(r.checkpoints.items())},
            "start": put(f"{i}.start", r.start)})
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    index = json.dumps({"version": VERSION, "runs": entries},
                       default=lambda o: o.item() if isinstance(o, np.generic) else str(o))
    return {INDEX: index.encode(), ARRAYS: buf.getvalue()}


def _text(d: dict[str, Any], key: str, where: str) -> str:
    v = d.get(key, "")
    if not isinstance(v, str):
        raise BundleError(f"{where}: {key} must be text, got {short_repr(v)}")
    return v


def _obj(d: dict[str, Any], key: str, where: str, required: bool = False) -> Any:
    v = d.get(key)
    if v is None and not required:
        return None
    if not isinstance(v, dict):
        raise BundleError(f"{where}: {key} must be an object, got {short_repr(v)}")
    return v


def _entry(e: Any, i: int, arrays: dict[str, np.ndarray], src: str) -> TreeRun:
    where = f"{src}: run {i + 1} of {INDEX}"
    if not isinstance(e, dict) or not isinstance(e.get("run_id"), str):
        raise BundleError(f"{where} must be an object with a run_id")

    def ck(prefix: str, index: Any) -> Checkpoint | None:
        if index is None:
            return None
        arrs = {t: arrays[f"{prefix}.{t}"] for t in ("w", "o") if f"{prefix}.{t}" in arrays}
        return Checkpoint.unpack(index, arrs, f"{where} ({prefix})")

    cks = _obj(e, "checkpoints", where) or {}
    checkpoints: dict[int, Checkpoint] = {}
    for key, index in cks.items():
        if not key.isdigit():
            raise BundleError(f"{where}: checkpoint epochs must be whole numbers")
        c = ck(f"{i}.ck{key}", index)
        if c is not None:
            checkpoints[int(key)] = c
    replay = _obj(e, "replay", where)
    return TreeRun(
        e["run_id"], _text(e, "name", where), _obj(e, "graph", where, True),
        _obj(e, "settings", where, True), _obj(e, "parent", where),
        _obj(e, "dataset", where) or {}, _text(e, "status", where), _text(e, "message", where),
        _obj(e, "history", where), _obj(e, "diff", where),
        None if replay is None else ReplayLog.from_dict(replay, f"{where}: replay"),
        ck(f"{i}.final", e.get("final")), checkpoints, ck(f"{i}.start", e.get("start")))


def _declared(index: Any) -> tuple[int, int]:
    """(values, arrays) the index says ``runs.npz`` holds (malformed parts count 0): the
    arrays are refused before inflating when they claim more bytes than that needs."""
    total = parts = 0
    runs = index.get("runs") if isinstance(index, dict) else None
    for e in runs if isinstance(runs, list) else []:
        if not isinstance(e, dict):
            continue
        cks = e.get("checkpoints")
        for idx in [e.get("final"), e.get("start"),
                    *(cks.values() if isinstance(cks, dict) else [])]:
            for tag in ("w", "o"):
                items = idx.get(tag) if isinstance(idx, dict) else None
                parts += items is not None
                for it in items if isinstance(items, list) else []:
                    if isinstance(it, list) and len(it) == 4 and isinstance(it[2], list) \
                            and all(isinstance(d, int) and d >= 0 for d in it[2]):
                        total += math.prod(it[2])
    return total, parts


def read_tree(path: str | os.PathLike) -> list[TreeRun]:
    """The runs a bundle keeps (ancestors first), [] for a bundle saved without them;
    BundleError for damaged ones."""
    src = str(Path(path))
    try:
        with zipfile.ZipFile(path) as zf:
            names = set(zf.namelist())
            if INDEX not in names:
                return []
            for name in (INDEX, ARRAYS):
                if name not in names:
                    raise BundleError(f"{src}: the runs of the bundle have no {name}")
                check_member(zf.getinfo(name), src, BundleError)
            if zf.getinfo(INDEX).file_size > MAX_JSON_BYTES:
                raise BundleError(f"{src}: {INDEX} is too large")
            try:
                index = json.loads(zf.read(INDEX).decode("utf-8"))
            except (ValueError, RecursionError):
                raise BundleError(f"{src}: {INDEX} is not valid JSON") from None
            values, parts = _declared(index)
            limit = min(MAX_WEIGHTS_BYTES, 8 * values + 512 * parts + 2048)
            arrays = read_npz(zf.read(ARRAYS), ARRAYS, limit, BundleError)
    except FileNotFoundError:
        raise BundleError(f"no such bundle: {src}") from None
    except (*ZIP_ERRORS, ValueError, OSError) as exc:
        raise BundleError(f"{src}: cannot read the runs of the bundle ({exc})") from None
    if not isinstance(index, dict) or not isinstance(index.get("runs"), list):
        raise BundleError(f"{src}: {INDEX} must hold an object with a list of runs")
    if isinstance(index.get("version"), int) and index["version"] > VERSION:
        raise BundleError(f"{src}: {INDEX} is of a newer NetBuilder; update NetBuilder")
    return [_entry(e, i, arrays, src) for i, e in enumerate(index["runs"])]


def find_run(runs: Sequence[TreeRun], run_id: str | None) -> TreeRun:
    """The run ``run_id`` (a unique prefix will do), or the last one (the bundle's own) when
    None; BundleError naming the ids there are otherwise."""
    if not runs:
        raise BundleError("the bundle keeps no runs to replay (it was saved by a NetBuilder "
                          "without run records, or without training)")
    if run_id is None:
        return runs[-1]
    hits = [r for r in runs if r.run_id == run_id] or \
        [r for r in runs if r.run_id.startswith(run_id)]
    if len(hits) != 1:
        ids = ", ".join(r.run_id for r in runs)
        raise BundleError(f"no single run {run_id!r} in the bundle (it keeps {ids})")
    return hits[0]
