"""Helpers of the training-monitor GUI tests: example models, small models, and waiting for
runs driven through the real buttons."""

from __future__ import annotations

import copy
import itertools
import json
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QTabBar

EXAMPLES = Path(__file__).resolve().parents[2] / "resources" / "examples"


def example(name: str, **training) -> dict:
    """An example model file as a dict, with ``training`` keys overridden."""
    doc = json.loads((EXAMPLES / f"{name}.json").read_text(encoding="utf-8"))
    doc["training"] = {**doc.get("training", {}), **training}
    return doc


def relu_xor(**training) -> dict:
    """xor_mlp with ReLU instead of Tanh: with a huge learning rate it diverges to NaN."""
    doc = example("xor_mlp", **training)
    for n in doc["nodes"]:
        if n["type"] == "Tanh":
            n["type"] = "ReLU"
    return doc


def small_cnn(**training) -> dict:
    """Input 1×8×8 → Conv2D 4×3×3 → ReLU → MaxPool → Flatten → Dense 10 → Output, on digits."""
    nodes = [("in", "Input", {"shape": [1, 8, 8]}),
             ("conv", "Conv2D", {"filters": 4, "kernel_size": 3, "padding": "same"}),
             ("relu", "ReLU", {}), ("pool", "MaxPool2D", {"pool_size": 2}),
             ("flat", "Flatten", {}), ("fc", "Dense", {"units": 10}),
             ("out", "Output", {"loss": "cross_entropy"})]
    return chain(nodes, {"dataset": "digits", "limit": 300, "epochs": 1, "batch_size": 32,
                         "optimizer": {"type": "adam", "lr": 0.01}, **training})


def sine_mlp(**training) -> dict:
    nodes = [("in", "Input", {"shape": [1]}), ("h", "Dense", {"units": 16}),
             ("act", "Tanh", {}), ("y", "Dense", {"units": 1}),
             ("out", "Output", {"loss": "mse"})]
    return chain(nodes, {"dataset": "sine", "epochs": 2, "batch_size": 32,
                         "optimizer": {"type": "adam", "lr": 0.01}, **training})


def chain(nodes: list[tuple[str, str, dict]], training: dict) -> dict:
    return {"format": "netbuilder.graph", "version": 1, "name": "test",
            "nodes": [{"id": i, "type": t, "params": copy.deepcopy(p)} for i, t, p in nodes],
            "edges": [{"src": a[0], "dst": b[0], "port": 0}
                      for a, b in itertools.pairwise(nodes)],
            "ui": {n[0]: {"pos": [0, 110 * k]} for k, n in enumerate(nodes)},
            "training": training}


def open_model(make_window, doc: dict):
    """A window on ``doc`` with its data loaded; returns (driver, controller)."""
    drv = make_window(doc)
    tc = drv.w.training
    assert tc.data.wait_loaded(30)
    return drv, tc


def click(qtbot, button) -> None:
    assert button.isEnabled(), f"{button.text()} is disabled"
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)


def wait_idle(qtbot, tc, timeout: int = 120_000) -> None:
    qtbot.waitUntil(lambda: tc.state == "idle" and tc.worker is None, timeout=timeout)


def wait_steps(qtbot, tc, n: int, timeout: int = 60_000) -> None:
    qtbot.waitUntil(lambda: tc.active is not None and len(tc.active.steps) >= n,
                    timeout=timeout)


def click_tab(qtbot, window, title: str) -> None:
    """Click the dock tab called ``title``, as the user does to bring a panel to front."""
    for bar in window.findChildren(QTabBar):
        for i in range(bar.count()):
            if bar.tabText(i) == title and bar.isVisible():
                qtbot.mouseClick(bar, Qt.MouseButton.LeftButton, pos=bar.tabRect(i).center())
                return
    raise AssertionError(f"no tab {title!r}")
