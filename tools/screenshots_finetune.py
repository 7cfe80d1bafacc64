"""Screenshot of fine-tuning a trained bundle in the app, for the README (offscreen).

    python tools/screenshots_finetune.py [--out docs/screenshots] [--size 1280x800]
                                         [--small-size 1024x700]

fine_tune.png: the digits CNN trained on all of `digits` and saved as a bundle, opened
with File ▸ Open; its data switched to `shapes` at 8×8, its 10-way head replaced by a
6-way Dense, its body (conv1, conv2, fc1) frozen, and trained from the bundle's weights:
the Runs panel shows the new run under the opened one with where its weights came from.
``--small-size`` takes it again with a ``_small`` suffix.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication, QTabBar

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))

from screenshots import _calm, _close, _monitor_window, _wait  # noqa: E402

BODY = ("conv1", "conv2", "fc1")


def trained_digits_bundle(path: Path, epochs: int) -> None:
    """digits_cnn trained on the whole of `digits` (no Qt), saved as a bundle at ``path``."""
    import json

    import engine
    from netbuilder.mainwindow import EXAMPLES_DIR
    from netbuilder.session import RunSession

    g = engine.Graph.from_dict(json.loads((EXAMPLES_DIR / "digits_cnn.json").read_text()))
    g.training = {**g.training, "epochs": epochs}
    s = RunSession()
    run = s.start(g, g.training)
    end = time.monotonic() + 1800
    while s.loop is not None:
        if time.monotonic() > end:
            raise SystemExit("digits_cnn did not finish training")
        s.process_events(0.05)
    if run.status != "completed":
        raise SystemExit(f"digits_cnn ended {run.status}")
    run.save_bundle(path)
    print(f"digits_cnn: {run.epochs[-1]}")


def fine_tuned(app: QApplication, w, bundle: Path, epochs: int) -> None:
    """Open the bundle, shapes at 8×8, a new 6-way head, the body frozen, train."""
    from netbuilder.document import AddNodes, Connect, DeleteItems, NodeSpec, SetTraining

    w.choose_open_path = lambda: str(bundle)
    w.act_open.trigger()
    tc = w.training
    if tc.weights_source is None:
        raise SystemExit("the bundle's run did not come with its weights")
    g = w.document.graph
    x, y = g.ui["logits"]["pos"]
    w.push(DeleteItems(["logits"]))
    w.push(AddNodes([NodeSpec("head", "Dense", {"units": 6}, (x, y))]))
    w.push(Connect("relu3", "head"))
    w.push(Connect("head", "out"))
    old = w.document.graph.training
    w.push(SetTraining(old, {**old, "dataset": "shapes:size=8", "limit": 1800,
                             "epochs": epochs, "augment": None,
                             "optimizer": {"type": "adam", "lr": 0.01}}))
    w.scene.select_nodes(list(BODY))
    w.run_edits.freeze_selection(False)
    if not tc.data.wait_loaded(120):
        raise SystemExit("shapes at 8x8 did not load")
    if w.document.analysis.error_count:
        raise SystemExit("the edited model has problems")
    if not tc.start():
        raise SystemExit(f"cannot start: {tc.panel.message.text()}")
    run = tc.active
    if not _wait(app, lambda: run.status == "completed", 1800):
        raise SystemExit("the fine-tuning run did not finish")
    print(f"fine-tuned: {run.epochs[-1]}")
    tc.show_monitor(("curves", "filters"))
    w.scene.select_nodes(["head"])
    rp = tc.presenter.runs_panel
    rp.select(run)
    for bar in w.findChildren(QTabBar):  # the Runs tab to the front, as a click would
        for i in range(bar.count()):
            if bar.tabText(i) in ("Runs", "Confusion") and bar.isVisible():
                bar.setCurrentIndex(i)
    _calm(app, 1.0)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", default=str(ROOT / "docs" / "screenshots"))
    ap.add_argument("--size", default="1280x800")
    ap.add_argument("--small-size", default="", help="also take the shot at this size")
    ap.add_argument("--digits-epochs", type=int, default=10)
    ap.add_argument("--epochs", type=int, default=8)
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="nb-shots-")
    app = QApplication.instance() or QApplication([])
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, tmp)
    from netbuilder.app import apply_style

    apply_style(app)
    bundle = Path(tmp) / "digits.nbmodel"
    trained_digits_bundle(bundle, args.digits_epochs)
    sizes = [("", tuple(int(v) for v in args.size.lower().split("x")))]
    if args.small_size:
        sizes.append(("_small", tuple(int(v) for v in args.small_size.lower().split("x"))))
    w = _monitor_window(app, sizes[0][1], tmp)
    fine_tuned(app, w, bundle, args.epochs)
    for suffix, size in sizes:
        w.resize(*size)
        w.layouts.apply_sizes()
        w.frame_canvas()
        _calm(app, 0.8)
        p = out / f"fine_tune{suffix}.png"
        w.grab().save(str(p))
        print("wrote", p)
    w.ask_save_runs = lambda names: "discard"
    w.ask_save_changes = lambda: "discard"
    _close(w)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
