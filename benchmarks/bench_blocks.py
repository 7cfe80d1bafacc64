"""Opening and editing a big model drawn flat vs with blocks: ResNet-56 for CIFAR-10 (27
residual blocks; 200 nodes flat, 34 blocked); ``--depth 86`` draws 311 nodes flat.

    QT_QPA_PLATFORM=offscreen python benchmarks/bench_blocks.py [--repeats 5] [--depth 56]

Each repeat times, for the blocked model and for the same model flattened (positions
dropped, as a file drawn by another tool): parsing the file (``Graph.from_dict``), then
building the canvas (a ``CanvasScene`` on a ``Document``: shape analysis, one item per node
and wire, the automatic layout of a file without positions). Prints the median and the
min-max per phase, and the flat/blocked ratio of the medians. Then, on the open canvas,
the edits a user makes, each done and undone (the time until the canvas has caught up, as
the user waits for it): a parameter changed on a middle card (every shape after it checked
again), one card moved (its wires re-planned), a card dropped and deleted. Aim: none past
100 ms, the threshold of a visible stall.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from PySide6.QtWidgets import QApplication  # noqa: E402

import engine  # noqa: E402
from engine.zoo import resnet_cifar10  # noqa: E402


def time_open(doc: dict, app: QApplication) -> tuple[float, float, int]:
    from netbuilder.canvas import CanvasScene
    from netbuilder.document import Document

    t0 = time.perf_counter()
    g = engine.Graph.from_dict(doc)
    t1 = time.perf_counter()
    scene = CanvasScene(Document(g), lambda cmd: None)
    app.processEvents()
    t2 = time.perf_counter()
    n = len(scene.nodes)
    scene.deleteLater()
    app.processEvents()
    return t1 - t0, t2 - t1, n


def time_edits(doc: dict, app: QApplication) -> dict[str, float]:
    """Seconds per edit (do + undo, halved) on a canvas of ``doc``."""
    from netbuilder.canvas import CanvasScene
    from netbuilder.document import AddNodes, DeleteItems, Document, MoveNodes, NodeSpec, SetParams

    d = Document(engine.Graph.from_dict(doc))
    scene = CanvasScene(d, lambda cmd: None)
    app.processEvents()
    g = d.graph
    convs = [n for n, node in g.nodes.items() if node.type == "Conv2D"]
    mid = convs[len(convs) // 2]
    old = dict(g.nodes[mid].params)
    pos = d.position(mid) or (0.0, 0.0)
    new_pos = (pos[0] + 40.0, pos[1] + 10.0)
    edits = {
        "param": SetParams(mid, old, {**old, "kernel_size": 5, "padding": "same"}),
        "move": MoveNodes({mid: (pos, new_pos)}),
        "add+delete": None,
    }
    times: dict[str, float] = {}
    for name, cmd in edits.items():
        t0 = time.perf_counter()
        if cmd is None:
            add = AddNodes([NodeSpec("bench_extra", "ReLU", {}, (pos[0] + 300.0, pos[1]))])
            add.do(d)
            app.processEvents()
            DeleteItems(["bench_extra"]).do(d)
        else:
            cmd.do(d)
            app.processEvents()
            cmd.undo(d)
        app.processEvents()
        times[name] = (time.perf_counter() - t0) / 2
    scene.deleteLater()
    app.processEvents()
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--depth", type=int, default=56)
    args = ap.parse_args()
    app = QApplication.instance() or QApplication([])
    blocked = resnet_cifar10(args.depth)
    flat = engine.Graph.from_dict(blocked).flatten()
    flat.ui = {}
    docs = {"blocked": blocked, "flat": flat.to_dict()}
    results: dict[str, dict[str, list[float]]] = {k: {"parse": [], "canvas": []} for k in docs}
    items = {}
    for _ in range(args.repeats):
        for k, d in docs.items():  # alternate, so load on the machine hits both alike
            parse, canvas, items[k] = time_open(d, app)
            results[k]["parse"].append(parse)
            results[k]["canvas"].append(canvas)
    print(f"ResNet-{args.depth}: {args.repeats} repeats, seconds: median (min-max)")
    for k, r in results.items():
        line = f"{k:8s} {items[k]:4d} items on the canvas"
        for phase, ts in r.items():
            line += f"  {phase} {statistics.median(ts):.3f} ({min(ts):.3f}-{max(ts):.3f})"
        print(line)
    for phase in ("parse", "canvas"):
        ratio = (statistics.median(results["flat"][phase])
                 / statistics.median(results["blocked"][phase]))
        print(f"flat / blocked, {phase}: {ratio:.1f}x")
    edits: dict[str, dict[str, list[float]]] = {k: {} for k in docs}
    for _ in range(args.repeats):
        for k, d in docs.items():
            for name, t in time_edits(d, app).items():
                edits[k].setdefault(name, []).append(t)
    print("edits on the open canvas, ms per edit (done and undone): median (min-max); "
          "aim ≤ 100")
    for k, r in edits.items():
        print(f"{k:8s} " + "  ".join(
            f"{name} {1000 * statistics.median(ts):.0f} ({1000 * min(ts):.0f}-"
            f"{1000 * max(ts):.0f})" for name, ts in r.items()))


if __name__ == "__main__":
    main()
