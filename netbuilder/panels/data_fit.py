"""What the Data panel proposes when data is chosen: training settings suited to the kind of
data (while the model's own are not chosen by hand), and an Input shape that fits the data.
Qt-free."""

from __future__ import annotations

import math
from typing import Any

import engine
from engine.data import Dataset
from engine.errors import NetBuilderError
from engine.text import plural
from engine.train_settings import KIND_NAMES, SUGGESTED_TRAINING, suggested_training

Shape = tuple[int, ...]


def training_suggestion(section: dict[str, Any], kind: str) -> dict[str, Any]:
    """The ``optimizer`` / ``epochs`` of ``suggested_training(kind)`` that should replace the
    section's: a key left out of the file, or still at a suggestion made for other data,
    follows the data; one the user chose is kept. Empty when nothing changes."""
    fresh = suggested_training(kind)
    out: dict[str, Any] = {}
    for key in ("optimizer", "epochs"):
        earlier = [s[key] for s in SUGGESTED_TRAINING.values()]
        if (key not in section or section[key] in earlier) and section.get(key) != fresh[key]:
            out[key] = fresh[key]
    return out


def describe_suggestion(kind: str, updates: dict[str, Any]) -> str:
    """'Training for 2-D points: Adam, lr 0.01, 30 epochs' (short: the status bar)."""
    parts = []
    opt = updates.get("optimizer")
    if opt:
        name = {"adam": "Adam", "sgd": "SGD", "adamw": "AdamW"}.get(opt["type"], opt["type"])
        parts.append(f"{name}, lr {opt['lr']:g}")
    if "epochs" in updates:
        parts.append(plural(updates["epochs"], "epoch"))
    what = KIND_NAMES.get(kind, "this data")
    return f"Training for {what}: {', '.join(parts)}"


def input_fix(graph: engine.Graph, ds: Dataset) -> tuple[str, Shape] | None:
    """(Input id, the data's sample shape) when the model's one Input has another shape that
    the data cannot simply be reshaped to; else None."""
    inputs = [n for n in graph.nodes.values() if n.type == "Input"]
    if len(inputs) != 1 or "x" not in ds.arrays:
        return None
    node = inputs[0]
    try:
        want = tuple(node.layer_class().resolve_params(node.params, node.id)["shape"])
    except NetBuilderError:
        want = None
    have = tuple(int(d) for d in ds.sample_shape)
    if want == have:
        return None
    if want is not None and math.prod(want) == math.prod(have) \
            and (len(want) == 1 or len(have) == 1):
        return None  # the data is reshaped to the Input (a flat row into an image)
    return node.id, have
