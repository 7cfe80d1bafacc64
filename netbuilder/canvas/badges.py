"""Where a card's side badges go (the live training badge, the receptive field): right of
the card, else left of it when a card sits close on the right, else over its top right
corner when cards sit close on both sides (a row of branches, as in an Inception block),
so that they never cover another card."""

from __future__ import annotations

from collections.abc import Iterable

from PySide6.QtCore import QRectF

from .node import LEFT, OVER, RIGHT, NodeItem

GAP = 8.0  # between a card and its badge


def card_rect(item: NodeItem) -> QRectF:
    """The card in scene coordinates (without its badges)."""
    p = item.scenePos()
    return QRectF(p.x(), p.y(), item.width, item.height)


def choose_side(item: NodeItem) -> str:
    """RIGHT, LEFT or OVER for ``item``: the first side where its badges cover no other
    card of its scene."""
    width = item.badge_width()
    scene = item.scene()
    if not width or scene is None:
        return RIGHT
    card = card_rect(item)
    span = width + GAP + 4

    def free(rect: QRectF) -> bool:
        return not any(isinstance(o, NodeItem) and o is not item
                       and card_rect(o).intersects(rect) for o in scene.items(rect))

    if free(QRectF(card.right(), card.top(), span, card.height())):
        return RIGHT
    if free(QRectF(card.left() - span, card.top(), span, card.height())):
        return LEFT
    return OVER


def place_badges(items: Iterable[NodeItem]) -> None:
    """Give every card with a side badge the side where it covers no other card."""
    for item in items:
        item.set_badge_side(choose_side(item))
