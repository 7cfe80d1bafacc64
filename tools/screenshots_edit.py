"""Screenshots of editing a paused run and of freezing, for the README (offscreen).

    python tools/screenshots_edit.py [--out docs/screenshots] [--size 1280x800]
                                     [--small-size 1024x700]

run_edit.png: LeNet-5 paused after two epochs on a few hundred shapes; f5 widened to 240
units in the Inspector, c1 frozen, Training ▸ Apply Edits: the canvas marks the nodes
that kept their weights (green tick) and those that start fresh (orange, the reason in the
tooltip), c1 drawn frozen, the Inspector on f5 with its Trainable box and learning-rate
multiplier. freeze.png: the Build layout of LeNet-5 with c1 and c3 frozen, f5 learning at
a tenth of the rate, and the Model Summary saying what freezing saves. ``--small-size``
takes both again with a ``_small`` suffix.
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


def open_lenet(app: QApplication, w) -> None:
    from netbuilder.document import SetTraining
    from netbuilder.mainwindow import EXAMPLES_DIR

    w.open_example(EXAMPLES_DIR / "lenet5.json")
    old = w.document.graph.training
    w.push(SetTraining(old, {**old, "limit": 640, "batch_size": 32, "epochs": 30}))
    w.training.data.wait_loaded(60)


def paused_and_edited(app: QApplication, w) -> None:
    """Two epochs, Pause, widen f5, freeze c1, apply: the marks are on the canvas."""
    from netbuilder.document import SetParams

    tc = w.training
    if not tc.start():
        raise SystemExit(f"cannot start lenet5: {tc.panel.message.text()}")
    if not _wait(app, lambda: tc.active is not None and len(tc.active.epochs) >= 2, 600):
        raise SystemExit("lenet5 did not train two epochs")
    tc.pause()
    _wait(app, lambda: tc.session.loop.trainer.status == "paused", 60)
    g = w.document.graph
    w.push(SetParams("f5", g.nodes["f5"].params, {**g.nodes["f5"].params, "units": 240}))
    w.scene.select_nodes(["c1"])
    w.run_edits.freeze_selection(False)
    done = []
    tc.session.edited.connect(lambda run, out: done.append(out))
    w.run_edits.act_apply.trigger()
    if not _wait(app, lambda: bool(done), 300):
        raise SystemExit("the edit was not applied")
    tc.show_monitor(("curves", "filters"))
    w.scene.select_nodes(["f5"])
    w.inspector_dock.raise_()
    _calm(app, 1.0)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", default=str(ROOT / "docs" / "screenshots"))
    ap.add_argument("--size", default="1280x800")
    ap.add_argument("--small-size", default="", help="also take the shots at this size")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="nb-shots-")
    app = QApplication.instance() or QApplication([])
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, tmp)
    from netbuilder.app import apply_style

    apply_style(app)
    sizes = [("", tuple(int(v) for v in args.size.lower().split("x")))]
    if args.small_size:
        sizes.append(("_small", tuple(int(v) for v in args.small_size.lower().split("x"))))
    w = _monitor_window(app, sizes[0][1], tmp)
    open_lenet(app, w)
    w.scene.select_nodes(["c1", "c3"])
    w.run_edits.freeze_selection(False)
    w.scene.select_nodes(["f5"])
    w.run_edits.fields.lr_mult.setValue(0.1)
    w.scene.select_nodes(["c3"])
    for suffix, size in sizes:
        w.resize(*size)
        w.layouts.apply_sizes()
        w.frame_canvas()
        _calm(app, 0.5)
        w.inspector.scroll.ensureWidgetVisible(w.run_edits.fields)
        _calm(app, 0.3)
        p = out / f"freeze{suffix}.png"
        w.grab().save(str(p))
        print("wrote", p)
    w.undo()  # f5 at the run's learning rate again
    w.undo()  # c1 and c3 train again
    paused_and_edited(app, w)
    for suffix, size in sizes:
        w.resize(*size)
        w.layouts.apply_sizes()
        w.frame_canvas()
        w.view.centerOn(w.scene.nodes["s4"])
        _calm(app, 0.8)
        w.inspector.scroll.ensureWidgetVisible(w.run_edits.fields)
        _calm(app, 0.3)
        p = out / f"run_edit{suffix}.png"
        w.grab().save(str(p))
        print("wrote", p)
    tc = w.training
    tc.stop()
    tc.wait_stopped(120)
    w.ask_save_runs = lambda names: "discard"
    w.ask_save_changes = lambda: "discard"
    _close(w)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
