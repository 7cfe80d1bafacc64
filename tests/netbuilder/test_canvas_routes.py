"""Wires go around the cards in their way, and an edit re-plans only the wires it can have
changed: after each edit every wire is where a re-plan of all of them would put it."""

from __future__ import annotations

from guidocs import small_doc

import engine
from netbuilder.canvas import CanvasScene
from netbuilder.document import AddNodes, DeleteItems, Document, MoveNodes, NodeSpec, SetParams

CHAIN = [("in", "Input", {"shape": [8]}), ("d1", "Dense", {"units": 8}), ("r1", "ReLU", {}),
         ("d2", "Dense", {"units": 8}), ("add", "Add", {}), ("out", "Output", {})]
WIRES = [("in", "d1", 0), ("d1", "r1", 0), ("r1", "d2", 0), ("d2", "add", 0), ("in", "add", 1),
         ("add", "out", 0)]


def paths(scene: CanvasScene) -> dict:
    return {e: [(round(p.x(), 3), round(p.y(), 3)) for p in
                (item.path().pointAtPercent(t / 8) for t in range(9))]
            for e, item in scene.edges.items()}


def assert_all_planned(scene: CanvasScene) -> None:
    got = paths(scene)
    scene.reroute()  # every wire, from scratch
    assert got == paths(scene)


def test_an_edit_replans_the_wires_it_can_change_and_they_go_around_cards(qtbot):
    doc = Document(engine.Graph.from_dict(small_doc(CHAIN, WIRES, {
        "in": (0, 0), "d1": (0, 150), "r1": (0, 300), "d2": (0, 450), "add": (0, 600),
        "out": (0, 750)})))
    scene = CanvasScene(doc, lambda cmd: None)
    skip = scene.edges[engine.Edge("in", "add", 1)]  # passes the three cards in the column
    x_right = scene.nodes["d1"].sceneBoundingRect().right()
    assert skip.path().boundingRect().right() > x_right  # a detour beside them
    assert_all_planned(scene)

    MoveNodes({"r1": ((0.0, 300.0), (600.0, 300.0))}).do(doc)  # out of the column
    assert_all_planned(scene)
    AddNodes([NodeSpec("extra", "ReLU", {}, (700.0, 380.0))]).do(doc)  # on r1's wires
    assert_all_planned(scene)
    DeleteItems(["d1"]).do(doc)
    assert_all_planned(scene)
    old = dict(doc.graph.nodes["d2"].params)
    SetParams("d2", old, {**old, "units": 4}).do(doc)  # the Add below now has an error
    assert_all_planned(scene)
