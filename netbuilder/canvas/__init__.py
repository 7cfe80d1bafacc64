"""The graph canvas: a QGraphicsScene kept in step with the Document, and its view."""

from .edge import EdgeItem, RubberWire, Toast
from .node import NodeItem, PortItem
from .scene import MIME_LAYER, CanvasScene
from .view import CanvasView

__all__ = ["MIME_LAYER", "CanvasScene", "CanvasView", "EdgeItem", "NodeItem", "PortItem",
           "RubberWire", "Toast"]
