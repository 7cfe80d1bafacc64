"""Side badges (the live training badge, the receptive field) never cover another card:
inception_block's four branches sit side by side 48 px apart, closer than a badge is
wide, so a badge goes left of its card or over its top right corner when the right is
taken, and back to the right once the neighbour moves away."""

from __future__ import annotations

from monitorkit import example
from PySide6.QtCore import QPointF

from netbuilder.canvas.badges import card_rect
from netbuilder.canvas.node import LEFT, OVER, RIGHT

BRANCHES = ("b1x1", "b3x3", "b5x5", "bpool")


def badge_boxes(item) -> list:
    """The scene rectangles of ``item``'s side badges as drawn."""
    out = []
    if item.badge is not None:
        out.append(item.mapRectToScene(item._badge_rect()))
    if item.rf is not None:
        out.append(item.mapRectToScene(item._rf_rect()))
    return out


def assert_no_badge_covers_a_card(scene) -> None:
    cards = {nid: card_rect(it) for nid, it in scene.nodes.items()}
    for nid, item in scene.nodes.items():
        for box in badge_boxes(item):
            for other, rect in cards.items():
                assert not box.intersects(rect), f"{nid}'s badge {box} covers {other}"


def test_training_and_receptive_field_badges_keep_off_the_cards_beside(make_window, qtbot):
    drv = make_window(example("inception_block"))
    w = drv.w
    scene = w.scene
    badges = {nid: ("μ 0.12 σ 1.43 · dead 0%", "ok", "") for nid in scene.nodes}
    scene.set_monitor(badges)
    assert_no_badge_covers_a_card(scene)
    sides = {nid: scene.nodes[nid].badge_side for nid in BRANCHES}
    assert sides["bpool"] == RIGHT and sides["b1x1"] == LEFT
    assert {sides["b3x3"], sides["b5x5"]} == {OVER}
    scene.select_nodes(["b3x3"])  # its receptive field joins the badge, under the card
    assert scene.nodes["b3x3"].rf is not None
    assert_no_badge_covers_a_card(scene)
    # b5x5 dragged down out of the row: b3x3's right side is free again
    start = drv.node_centre("b5x5")
    drv.drag(start, start + QPointF(40, 150))
    assert scene.nodes["b5x5"].y() > scene.nodes["b3x3"].y() + 100
    assert scene.nodes["b3x3"].badge_side == RIGHT
    assert_no_badge_covers_a_card(scene)
    scene.clear_monitor()
    scene.select_nodes([])
    assert all(it.badge_width() == 0 for it in scene.nodes.values())
