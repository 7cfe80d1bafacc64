"""Screenshot of the run tree for the README (offscreen; rerun after UI changes).

    python tools/screenshots_runs.py [--out docs/screenshots] [--size 1280x800]
                                     [--small-size 1024x700] [--epochs 4]

run_tree.png: LeNet-5 trained on shapes (Run 1), then f6 widened from 84 to 120 units and a
branch started from Run 1's epoch 1 through the Runs panel (Run 2), and a second branch from
its epoch 2 with a lower learning rate (Run 3); Run 2 replayed from the context menu
("replay matches"). The Runs panel shows the tree with each run's settings and graph diff,
and the plots show Run 2's curves continuing Run 1's. ``--small-size`` takes the same window
again at that size as run_tree_small.png (for checking the layout; not in the README).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))

from screenshots import _calm, _close, _monitor_window, _wait  # noqa: E402


def _train(app: QApplication, tc, branch=None) -> None:
    if not tc.start(branch=branch):
        raise SystemExit(f"cannot start: {tc.panel.message.text()}")
    if not _wait(app, lambda: tc.state == "idle" and tc.worker is None, 1800):
        raise SystemExit("the run did not finish")


def tree_shots(app: QApplication, out: Path, sizes: list[tuple[str, tuple[int, int]]],
               tmp: str, epochs: int) -> list[Path]:
    from netbuilder.document import SetParams, SetTraining
    from netbuilder.mainwindow import EXAMPLES_DIR

    w = _monitor_window(app, sizes[0][1], tmp)
    tc = w.training
    w.open_example(EXAMPLES_DIR / "lenet5.json")
    tc.data.wait_loaded(120)
    training = {**w.document.graph.training, "epochs": epochs}
    w.push(SetTraining(w.document.graph.training, training, "epochs"))
    _train(app, tc)
    first = tc.store.latest()
    w.push(SetParams("f6", dict(w.document.graph.nodes["f6"].params),
                     {**w.document.graph.nodes["f6"].params, "units": 120}))
    panel = tc.runs_panel
    panel.ask_epoch = lambda _w, run: 1
    panel.context_menu(first).actions()[0].trigger()  # Branch from Here…
    if not _wait(app, lambda: tc.state == "idle" and tc.worker is None, 1800):
        raise SystemExit("the branch did not finish")
    second = tc.store.latest()
    slower = {**training, "optimizer": {"type": "adam", "lr": 0.0005}}
    w.push(SetTraining(w.document.graph.training, slower, "lr"))
    panel.ask_epoch = lambda _w, run: 2
    panel.context_menu(first).actions()[0].trigger()
    if not _wait(app, lambda: tc.state == "idle" and tc.worker is None, 1800):
        raise SystemExit("the second branch did not finish")
    panel.context_menu(second).actions()[1].trigger()  # Replay
    if not _wait(app, lambda: tc.replaying is None, 1800):
        raise SystemExit("the replay did not finish")
    print(f"{second.name}: {second.replay_result}")
    panel.select(second)
    tc.presenter.show_runs_panel()
    tc.docks.plots["curves"].raise_()
    shots = []
    for name, size in sizes:
        w.resize(*size)
        _calm(app, 1.5)
        w.frame_canvas()
        _calm(app)
        p = out / name
        w.grab().save(str(p))
        shots.append(p)
    _close(w)
    return shots


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", default=str(ROOT / "docs" / "screenshots"))
    ap.add_argument("--size", default="1280x800")
    ap.add_argument("--small-size", default="1024x700")
    ap.add_argument("--epochs", type=int, default=4)
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    size = tuple(int(v) for v in args.size.lower().split("x"))
    small = tuple(int(v) for v in args.small_size.lower().split("x"))
    tmp = tempfile.mkdtemp(prefix="nb-shots-")
    app = QApplication.instance() or QApplication([])
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, tmp)
    from netbuilder.app import apply_style

    apply_style(app)
    shots = tree_shots(app, out, [("run_tree.png", size), ("run_tree_small.png", small)],
                       tmp, args.epochs)
    print("wrote " + ", ".join(str(s) for s in shots))
    return 0


if __name__ == "__main__":
    sys.exit(main())
