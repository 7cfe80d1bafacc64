"""The training settings suggested per kind of data train a small from-scratch model well,
where the engine's own defaults (SGD at 0.01 for 10 epochs) stall."""

from __future__ import annotations

import itertools

import pytest

import engine
from engine.data import BUILTINS, load_dataset
from engine.train_settings import SUGGESTED_TRAINING, suggested_training
from engine.training import RunResult, train


def mlp(in_shape, n_out: int, loss: str) -> engine.Graph:
    """Input → [Flatten] → Dense → ReLU → Dense → ReLU → Dense n_out → Output, default units."""
    nodes = [("in", "Input", {"shape": list(in_shape)})]
    if len(in_shape) > 1:
        nodes.append(("flat", "Flatten", {}))
    nodes += [("d1", "Dense", {}), ("r1", "ReLU", {}), ("d2", "Dense", {}), ("r2", "ReLU", {}),
              ("d3", "Dense", {"units": n_out}), ("out", "Output", {"loss": loss})]
    return engine.Graph.from_dict({
        "format": "netbuilder.graph", "version": 1, "name": "mlp",
        "nodes": [{"id": i, "type": t, "params": p} for i, t, p in nodes],
        "edges": [{"src": a[0], "dst": b[0]} for a, b in itertools.pairwise(nodes)]})


def fit(name: str, section: dict) -> RunResult:
    ds = load_dataset(name)
    classes = ds.task == "classification"
    g = mlp(ds.sample_shape, ds.n_classes if classes else 1, "cross_entropy" if classes else "mse")
    result, _ = train(engine.Network(g), ds, section)
    return result


def test_every_kind_of_builtin_data_has_a_suggestion():
    assert {b.kind for b in BUILTINS.values()} <= set(SUGGESTED_TRAINING)
    assert suggested_training("something new") == SUGGESTED_TRAINING[""]
    s = suggested_training("points")
    s["optimizer"]["lr"] = 1.0  # a copy: the table stays as it is
    assert SUGGESTED_TRAINING["points"]["optimizer"]["lr"] == 0.01


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_suggestion_for_points_learns_the_spirals(seed):
    good = fit("spirals", {**suggested_training("points"), "seed": seed})
    assert good.val_accuracy >= 0.95
    stalled = fit("spirals", {"seed": seed})  # the engine's defaults
    assert stalled.val_accuracy < 0.9


@pytest.mark.parametrize("name", ["xor", "moons", "circles"])
def test_the_suggestion_for_points_learns_the_other_point_sets(name):
    assert fit(name, suggested_training("points")).val_accuracy >= 0.95


def test_the_suggestion_for_a_curve_fits_the_sine():
    result = fit("sine", suggested_training("curve"))
    assert result.val_loss < 0.02  # the noise alone is 0.0025; a mean guess is about 0.5


def test_the_suggestion_for_images_learns_the_digits():
    assert fit("digits", suggested_training("image")).val_accuracy >= 0.9
