"""The canvas on screen matches a fresh drawing of it: no ghost cards or wires after Automatic
Layout (the old pictures used to stay until a zoom), and no item paints outside the rectangle
Qt repaints for it."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
from monitorkit import EXAMPLES, example
from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QImage, QPainter, QTransform
from PySide6.QtWidgets import QApplication, QStyleOptionGraphicsItem

import engine
from netbuilder.analysis import ReceptiveField
from netbuilder.canvas import CanvasScene
from netbuilder.document import Document


def _pixels(img: QImage) -> np.ndarray:
    img = img.convertToFormat(QImage.Format.Format_RGB32)
    a = np.frombuffer(img.constBits(), np.uint8).reshape(img.height(), img.bytesPerLine() // 4, 4)
    return a[:, :img.width(), :3].astype(int)


def stale_pixels(w) -> int:
    """Pixels of the canvas on screen (the window's backing store) that differ from a fresh
    drawing of the same view."""
    vp = w.view.viewport()
    screen = QApplication.primaryScreen().grabWindow(w.winId()).toImage()
    at = vp.mapTo(w, vp.rect().topLeft())
    shown = _pixels(screen.copy(at.x(), at.y(), vp.width(), vp.height()))
    fresh = _pixels(vp.grab().toImage())
    return int(np.any(np.abs(shown - fresh) > 8, axis=2).sum())


def scattered(name: str, seed: int) -> dict:
    doc = example(name)
    rnd = random.Random(seed)
    doc["ui"] = {n["id"]: {"pos": [rnd.randrange(-300, 300, 20), 120 * k + rnd.randrange(0, 40, 20)]}
                 for k, n in enumerate(doc["nodes"])}  # apart, so they open where they are
    return doc


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_automatic_layout_from_the_toolbar_leaves_no_ghosts(make_window, qtbot, seed):
    drv = make_window(scattered("xor_mlp", seed))
    w = drv.w
    w.view.set_zoom(1.0)  # the fit after the layout keeps 100 %: the view only scrolls
    w.view.centerOn(QPointF(250, 150))
    qtbot.wait(50)
    assert stale_pixels(w) == 0
    before = {n: it.pos() for n, it in w.scene.nodes.items()}
    qtbot.mouseClick(w.toolbar.widgetForAction(w.act_layout), Qt.MouseButton.LeftButton)
    qtbot.wait(50)
    assert any(it.pos() != before[n] for n, it in w.scene.nodes.items())
    assert w.view.zoom == pytest.approx(1.0)
    assert stale_pixels(w) == 0
    w.act_undo.trigger()  # the cards jump back: no ghosts either
    qtbot.wait(50)
    assert stale_pixels(w) == 0


def _painted_outside(item, zoom: float) -> int:
    """Pixels ``item.paint`` covers outside its boundingRect, drawn at ``zoom``."""
    br = item.boundingRect()
    img = QImage(1600, 1000, QImage.Format.Format_ARGB32)
    img.fill(0)
    t = QTransform().translate(300.37, 300.61).scale(zoom, zoom).translate(-br.left(), -br.top())
    p = QPainter(img)
    p.setWorldTransform(t)
    opt = QStyleOptionGraphicsItem()
    opt.exposedRect = br
    item.paint(p, opt, None)
    p.end()
    alpha = np.frombuffer(img.constBits(), np.uint8).reshape(1000, 1600, 4)[..., 3]
    ys, xs = np.nonzero(alpha)
    d = t.mapRect(br)
    out = (xs < d.left() - 0.5) | (xs > d.right() + 0.5) | (ys < d.top() - 0.5) \
        | (ys > d.bottom() + 0.5)
    return int(out.sum())


@pytest.mark.parametrize("name", ["stn_shapes", "inception_block", "lenet5", "multitask"])
def test_every_canvas_item_paints_inside_its_bounding_rect(qtbot, name):
    doc = json.loads((EXAMPLES / f"{name}.json").read_text(encoding="utf-8"))
    scene = CanvasScene(Document(engine.Graph.from_dict(doc)), push=lambda cmd: None)
    rf = ReceptiveField(size=(123, 45), jump=(4, 4), image=(28, 28), whole=False)
    bad = []
    for zoom in (0.5, 1.0, 2.0):
        for nid, item in scene.nodes.items():
            item.setSelected(True)
            item.set_badge("μ 0.29 σ 0.31 · dead 100 %", "nan", "first NaN here")
            item.set_rf(rf)
            for it in [item, *item.in_ports, *([item.out_port] if item.out_port else [])]:
                if _painted_outside(it, zoom):
                    bad.append((nid, type(it).__name__, zoom))
            item.set_rf(None)
            item.set_badge(None)
            item.setSelected(False)
        for edge, item in scene.edges.items():
            item.set_flow(1e5)
            item.setSelected(True)
            if _painted_outside(item, zoom):
                bad.append((str(edge), "EdgeItem", zoom))
            item.set_flow(None)
            item.setSelected(False)
    assert bad == []
