"""Helpers of the GUI tests: small model documents and a driver that sends real widget
events (drops, mouse, keys) to a MainWindow."""

from __future__ import annotations

import warnings

import engine


class Driver:
    """Drives a MainWindow through real widget events (drops, mouse, keys)."""

    def __init__(self, qtbot, window) -> None:
        self.qtbot = qtbot
        self.w = window
        self.errors: list[tuple[str, str]] = []
        self.answer = "discard"
        self.runs_answer = "discard"
        self.runs_asked: list[list[str]] = []  # the run names each quit asked about
        window.show_error = lambda title, text: self.errors.append((title, text))
        window.ask_save_changes = lambda: self.answer
        window.ask_save_runs = lambda names: self.runs_asked.append(names) or self.runs_answer
        window.ask_restore = lambda entry: True

    @property
    def view(self):
        return self.w.view

    @property
    def vp(self):
        return self.w.view.viewport()

    @property
    def graph(self) -> engine.Graph:
        return self.w.document.graph

    def vpos(self, scene_pt):
        return self.view.mapFromScene(scene_pt)

    def drop(self, type_name: str, scene_pt):
        from PySide6.QtCore import QPointF, Qt
        from PySide6.QtGui import QDragEnterEvent, QDragMoveEvent, QDropEvent
        from PySide6.QtWidgets import QApplication

        mime = self.w.palette.mime_data_for(type_name)
        p = self.vpos(scene_pt)
        btn, mods = Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
        with warnings.catch_warnings():  # the QPoint constructors are deprecated from Qt 6.12
            warnings.simplefilter("ignore", DeprecationWarning)
            enter = QDragEnterEvent(p, Qt.DropAction.CopyAction, mime, btn, mods)
            move = QDragMoveEvent(p, Qt.DropAction.CopyAction, mime, btn, mods)
        QApplication.sendEvent(self.vp, enter)
        assert enter.isAccepted()
        QApplication.sendEvent(self.vp, move)
        assert move.isAccepted()
        drop = QDropEvent(QPointF(p), Qt.DropAction.CopyAction, mime, btn, mods)
        QApplication.sendEvent(self.vp, drop)
        return drop

    def drag(self, a, b, steps: int = 4):
        """Left-button drag on the viewport between two scene points."""
        from PySide6.QtCore import QPoint, Qt

        pa, pb = self.vpos(a), self.vpos(b)
        self.qtbot.mousePress(self.vp, Qt.MouseButton.LeftButton, pos=pa)
        for i in range(1, steps + 1):
            t = i / steps
            self.qtbot.mouseMove(self.vp, QPoint(round(pa.x() + (pb.x() - pa.x()) * t),
                                                 round(pa.y() + (pb.y() - pa.y()) * t)))
        self.qtbot.mouseRelease(self.vp, Qt.MouseButton.LeftButton, pos=pb)

    def wire(self, src: str, dst: str, port: int = 0):
        s = self.w.scene.nodes[src]
        d = self.w.scene.nodes[dst]
        self.drag(s.out_port.scenePos(), d.in_ports[port].scenePos())

    def click(self, scene_pt, modifier=None):
        from PySide6.QtCore import Qt

        mods = modifier if modifier is not None else Qt.KeyboardModifier.NoModifier
        self.qtbot.mouseClick(self.vp, Qt.MouseButton.LeftButton, mods, self.vpos(scene_pt))

    def key(self, key, modifier=None):
        from PySide6.QtCore import Qt

        mods = modifier if modifier is not None else Qt.KeyboardModifier.NoModifier
        self.view.setFocus()
        self.qtbot.keyClick(self.view, key, mods)

    def node_centre(self, node_id: str):
        from PySide6.QtCore import QPointF

        it = self.w.scene.nodes[node_id]
        return it.scenePos() + QPointF(it.width / 2, it.height / 2 + 4)

    def edge_label(self, src: str, dst: str, port: int = 0) -> str:
        return self.w.scene.edges[engine.Edge(src, dst, port)].label


def small_doc(nodes, edges, positions=None, name="test"):
    """A model document; nodes: [(id, type, params)], edges: [(src, dst, port)]."""
    ui = {}
    for i, (nid, _, _) in enumerate(nodes):
        x, y = (positions or {}).get(nid, (0.0, 120.0 * i))
        ui[nid] = {"pos": [x, y]}
    return {"format": "netbuilder.graph", "version": 1, "name": name,
            "nodes": [{"id": n, "type": t, "params": p} for n, t, p in nodes],
            "edges": [{"src": s, "dst": d, "port": p} for s, d, p in edges], "ui": ui}
