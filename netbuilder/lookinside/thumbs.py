"""Each node's activation for the Try it input, as a thumbnail left of its card on the
canvas (children of the cards, so they follow moves; badges and the receptive field stay
on the right)."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QPen, QPixmap
from PySide6.QtWidgets import QGraphicsPixmapItem, QGraphicsRectItem
from shiboken6 import isValid

from .views import activation_picture, overlay_image

SIDE = 44  # scene px of an image thumbnail; a vector's strip is as wide and 8 high


class ActivationThumbs:
    """Thumbnails on a CanvasScene: ``show({node: activation of one sample})``, ``clear()``."""

    def __init__(self, scene) -> None:
        self.scene = scene
        self.items: dict[str, QGraphicsRectItem] = {}

    def show(self, acts: dict[str, np.ndarray]) -> None:
        self.clear()
        for nid, act in acts.items():
            card = self.scene.nodes.get(nid)
            pic = activation_picture(act)
            if card is None or pic is None:
                continue
            h = SIDE if pic.shape[0] > 1 else 8
            img = overlay_image(pic, None, size=max(pic.shape) * 4)
            pix = QPixmap.fromImage(img).scaled(SIDE, h, Qt.AspectRatioMode.IgnoreAspectRatio,
                                                Qt.TransformationMode.FastTransformation)
            frame = QGraphicsRectItem(0, 0, SIDE + 2, h + 2, card)
            frame.setPen(QPen(QColor("#8a94a6"), 0.8))
            frame.setPos(-SIDE - 12, 21)  # left of the card, under a profile tag
            item = QGraphicsPixmapItem(pix, frame)
            item.setPos(1, 1)
            shape = "×".join(str(s) for s in np.shape(act))
            frame.setToolTip(f"{nid}: mean |activation| over channels for the Try it input "
                             f"({shape})")
            self.items[nid] = frame

    def clear(self) -> None:
        for frame in self.items.values():
            if isValid(frame) and frame.scene() is not None:
                frame.scene().removeItem(frame)
        self.items = {}

    def __bool__(self) -> bool:
        return bool(self.items)
