"""Canvas fluidity with a 300-node graph: time to load and lay it out, time per interactive
move (real mouse events on the view, repainted each step), per parameter edit (re-validation
of the whole graph) and per full repaint.

    QT_QPA_PLATFORM=offscreen python benchmarks/bench_canvas.py [--nodes 300]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QPoint, QPointF, QSettings, Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

import engine


def big_graph(n: int, seed: int = 0) -> dict:
    """A valid model of about ``n`` nodes: Dense/ReLU blocks with residual Adds and branches."""
    rnd = random.Random(seed)
    nodes = [{"id": "in", "type": "Input", "params": {"shape": [32]}}]
    edges = []
    prev = "in"
    skip = "in"
    i = 0
    while len(nodes) < n - 2:
        i += 1
        kind = rnd.random()
        if kind < 0.15 and skip != prev:
            nid = f"add{i}"
            nodes.append({"id": nid, "type": "Add", "params": {}})
            edges += [{"src": prev, "dst": nid, "port": 0}, {"src": skip, "dst": nid, "port": 1}]
            skip = nid
        elif kind < 0.55:
            nid = f"dense{i}"
            nodes.append({"id": nid, "type": "Dense", "params": {"units": 32}})
            edges.append({"src": prev, "dst": nid, "port": 0})
        elif kind < 0.85:
            nid = f"relu{i}"
            nodes.append({"id": nid, "type": "ReLU", "params": {}})
            edges.append({"src": prev, "dst": nid, "port": 0})
        else:
            a, b, nid = f"left{i}", f"right{i}", f"cat{i}"
            nodes += [{"id": a, "type": "Dense", "params": {"units": 16}},
                      {"id": b, "type": "Dense", "params": {"units": 16}},
                      {"id": nid, "type": "Concat", "params": {}}]
            edges += [{"src": prev, "dst": a, "port": 0}, {"src": prev, "dst": b, "port": 0},
                      {"src": a, "dst": nid, "port": 0}, {"src": b, "dst": nid, "port": 1}]
            skip = nid
        prev = nid
    nodes += [{"id": "logits", "type": "Dense", "params": {"units": 10}},
              {"id": "out", "type": "Output", "params": {}}]
    edges += [{"src": prev, "dst": "logits", "port": 0}, {"src": "logits", "dst": "out", "port": 0}]
    return {"format": "netbuilder.graph", "version": 1, "name": f"bench{n}", "nodes": nodes,
            "edges": edges}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--nodes", type=int, default=300)
    ap.add_argument("--moves", type=int, default=200)
    args = ap.parse_args(argv)

    tmp = tempfile.mkdtemp(prefix="nb-bench-")
    app = QApplication.instance() or QApplication([])
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, tmp)
    from netbuilder.app import apply_style
    from netbuilder.document import MoveNodes, SetParams
    from netbuilder.mainwindow import MainWindow
    from netbuilder.recovery import RecoveryStore

    apply_style(app)
    w = MainWindow(recovery=RecoveryStore(tmp))
    w.resize(1600, 1000)
    w.show()
    app.processEvents()
    doc = big_graph(args.nodes)
    engine.Graph.from_dict(doc)  # the benchmark graph is valid

    t0 = time.perf_counter()
    g = engine.Graph.from_dict(doc, validate=False)  # no ui section: laid out on load
    w.load_graph(g, None)
    app.processEvents()
    t_load = time.perf_counter() - t0
    n_nodes, n_edges = len(g.nodes), len(g.edges)
    assert len(w.scene.nodes) == n_nodes and len(w.scene.edges) == n_edges
    assert w.document.analysis.error_count == 0

    t0 = time.perf_counter()
    w.scene.layout_positions()
    t_layout = time.perf_counter() - t0
    scrambled = {nid: (w.document.position(nid), (float(random.Random(k).randrange(0, 4000)),
                                                  float(random.Random(-k).randrange(0, 4000))))
                 for k, nid in enumerate(g.nodes)}
    w.push(MoveNodes(scrambled, "scramble"))
    app.processEvents()
    t0 = time.perf_counter()
    w.auto_layout()
    app.processEvents()
    t_layout_cmd = time.perf_counter() - t0

    # interactive move of the busiest node at 100 % zoom, with real mouse events
    w.view.reset_zoom()
    deg = {nid: 0 for nid in g.nodes}
    for e in g.edges:
        deg[e.src] += 1
        deg[e.dst] += 1
    busy = max(deg, key=deg.get)
    item = w.scene.nodes[busy]
    w.view.centerOn(item)
    app.processEvents()
    vp = w.view.viewport()
    start = w.view.mapFromScene(item.scenePos() + QPointF(item.width / 2, item.height / 2))
    QTest.mousePress(vp, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, start)
    times = []
    for k in range(1, args.moves + 1):
        p = start + QPoint(int(60 * ((k % 40) / 40)), int(30 * ((k % 25) / 25)))
        t0 = time.perf_counter()
        QTest.mouseMove(vp, p)
        vp.repaint()
        times.append(time.perf_counter() - t0)
    QTest.mouseRelease(vp, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, p)
    moved = w.undo_stack.text(w.undo_stack.count() - 1)

    # a parameter edit re-validates and relabels the whole graph
    edit_times = []
    dense = [nid for nid, nd in g.nodes.items() if nd.type == "Dense" and nid != "logits"]
    for k in range(10):
        nid = dense[k % len(dense)]
        old = dict(g.nodes[nid].params)
        t0 = time.perf_counter()
        w.push(SetParams(nid, old, {**old, "bias": bool(k % 2)}))
        app.processEvents()
        edit_times.append(time.perf_counter() - t0)

    w.view.fit_all(max_zoom=1.0)
    t0 = time.perf_counter()
    for _ in range(5):
        vp.repaint()
    t_paint = (time.perf_counter() - t0) / 5

    ms = 1000.0
    print(f"graph: {n_nodes} nodes, {n_edges} wires")
    print(f"load (parse + analyse + build items + layout on load): {t_load * ms:8.1f} ms")
    print(f"layered layout alone:                                   {t_layout * ms:8.1f} ms")
    print(f"automatic layout as an undoable command (+ repaint):    {t_layout_cmd * ms:8.1f} ms")
    print(f"interactive move of '{busy}' ({deg[busy]} wires), {len(times)} mouse moves:")
    print(f"    median {statistics.median(times) * ms:6.2f} ms, 95th pct "
          f"{sorted(times)[int(0.95 * len(times)) - 1] * ms:6.2f} ms, max {max(times) * ms:6.2f} ms"
          f"  (last undo entry: {moved!r})")
    print(f"parameter edit (re-validate + relabel everything):      "
          f"{statistics.median(edit_times) * ms:8.1f} ms median")
    print(f"full repaint, whole graph in view:                      {t_paint * ms:8.1f} ms")
    w.document.reset(engine.Graph("empty"))
    w.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
