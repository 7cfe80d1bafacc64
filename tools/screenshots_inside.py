"""Screenshots of Look Inside for the README (offscreen; rerun after UI changes).

    python tools/screenshots_inside.py [--out docs/screenshots] [--size 1280x800]

try_it.png: digits_cnn trained in the app (its 20 epochs), a digit drawn on the Try it pad
with mouse strokes, the class probabilities, and Grad-CAM on conv2 laid over the drawing.
profile.png: LeNet-5 after Look Inside ▸ Profile: each node's share of a training step as a
heat halo and a "ms · %" tag on the canvas, and the Model Summary's time columns with the
epoch estimate. ``--small-size`` takes both again at 1024×700 with a ``_small`` suffix.

``--only more`` takes the other kinds of input instead: try_points.png, an MLP trained on
the spirals with a point chosen by a drag on its decision regions in the Try it dock;
try_tokens.png, embedding_tokens with typed tokens; try_autoencoder.png,
digits_autoencoder's reconstruction beside a digit sample; try_feature_maps.png, the
Feature Maps view on the Try it input of LeNet-5 (a drawn stroke); gradcheck.png, Check
Gradients of LeNet-5's c1 in the background, its dialog at the verdict.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QPoint, QSettings, Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))

from screenshots import _calm, _close, _monitor_window, _wait  # noqa: E402

# a "7" on the pad, as fractions of its side: the bar, then the stem
SEVEN = [[(0.25, 0.22), (0.45, 0.21), (0.72, 0.22)],
         [(0.72, 0.22), (0.62, 0.45), (0.52, 0.65), (0.45, 0.84)]]


def draw(pad, strokes) -> None:
    side = min(pad.width(), pad.height())
    ox, oy = (pad.width() - side) / 2, (pad.height() - side) / 2
    for stroke in strokes:
        pts = [QPoint(int(ox + x * side), int(oy + y * side)) for x, y in stroke]
        QTest.mousePress(pad, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, pts[0])
        for p in pts[1:]:
            QTest.mouseMove(pad, p)
        QTest.mouseRelease(pad, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
                           pts[-1])


def train_digits(app: QApplication, w) -> None:
    from netbuilder.mainwindow import EXAMPLES_DIR

    tc = w.training
    w.open_example(EXAMPLES_DIR / "digits_cnn.json")
    tc.data.wait_loaded(60)
    if not tc.start():
        raise SystemExit(f"cannot start digits_cnn: {tc.panel.message.text()}")
    if not _wait(app, lambda: tc.state == "idle" and tc.store.latest() is not None
                 and tc.store.latest().weights is not None, 900):
        raise SystemExit("digits_cnn did not finish training")
    w.layouts.set_mode("build")
    w.layouts.arrange()
    _calm(app, 0.5)


def try_it_shot(app: QApplication, w, path: Path) -> Path:
    li = w.look_inside
    panel = li.show_try_it()
    _calm(app, 0.5)
    panel.brush.setValue(26)
    panel.pad.clear()
    draw(panel.pad, SEVEN)
    w.scene.select_nodes(["conv2"])
    li.grad_cam_selected()
    _wait(app, lambda: panel.heat is not None and "Grad-CAM" in panel.why_note.text(), 30)
    w.layouts.tidy()
    _calm(app, 0.8)
    w.grab().save(str(path))
    return path


def profile_shot(app: QApplication, w, path: Path) -> Path:
    from netbuilder.mainwindow import EXAMPLES_DIR

    w.open_example(EXAMPLES_DIR / "lenet5.json")
    w.training.data.wait_loaded(60)
    li = w.look_inside
    li.run_profile()
    li.wait_profile()
    _wait(app, lambda: li.profile is not None, 60)
    if li.dock is not None:
        li.dock.hide()
    w.inspector_dock.raise_()
    w.summary_dock.show()
    w.summary_dock.raise_()
    w.scene.select_nodes([])
    print(li.profile.table())
    w.view.set_zoom(0.62)
    w.view.centerOn(w.scene.nodes["s4"])
    w.layouts.tidy()
    _calm(app, 0.8)
    w.grab().save(str(path))
    return path


def _open(app: QApplication, w, doc: dict) -> None:
    import engine

    w.maybe_save = lambda: True
    w.load_graph(engine.Graph.from_dict(doc), None)
    w.training.data.wait_loaded(60)
    _calm(app, 0.3)


def _example(name: str, **training) -> dict:
    import json

    doc = json.loads((ROOT / "resources" / "examples" / f"{name}.json").read_text("utf-8"))
    doc["training"] = {**doc.get("training", {}), **training}
    return doc


def _train(app: QApplication, w) -> None:
    tc = w.training
    if not tc.start():
        raise SystemExit(f"cannot start: {tc.panel.message.text()}")
    if not _wait(app, lambda: tc.state == "idle" and tc.store.latest() is not None
                 and tc.store.latest().weights is not None, 900):
        raise SystemExit("the model did not finish training")
    w.layouts.set_mode("build")
    w.layouts.arrange()
    _calm(app, 0.5)


def _shot(app: QApplication, w, path: Path) -> Path:
    w.layouts.tidy()
    _calm(app, 0.8)
    w.grab().save(str(path))
    return path


def more_shots(app: QApplication, w, sizes, out: Path) -> None:
    from screenshots import SPIRAL_MLP

    li = w.look_inside
    _open(app, w, SPIRAL_MLP)
    _train(app, w)
    for suffix, size in sizes:
        w.resize(*size)
        w.layouts.apply_sizes()
        panel = li.show_try_it()
        _calm(app, 0.5)
        pad = panel.region_pad
        a, b = pad.to_px(-0.2, 0.6).toPoint(), pad.to_px(0.35, 0.3).toPoint()
        QTest.mousePress(pad, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, a)
        for k in range(1, 8):
            QTest.mouseMove(pad, a + (b - a) * k / 7)
        QTest.mouseRelease(pad, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, b)
        print("wrote", _shot(app, w, out / f"try_points{suffix}.png"))
    _open(app, w, _example("embedding_tokens"))
    _train(app, w)
    for suffix, size in sizes:
        w.resize(*size)
        w.layouts.apply_sizes()
        panel = li.show_try_it()
        _calm(app, 0.5)
        seq = panel.seq_input
        seq.tokens.setText("0 1 2 100 150 3 4 180 120 5 6 7 190 110 130 140 160 170 199 101")
        seq.tokens.editingFinished.emit()
        print("wrote", _shot(app, w, out / f"try_tokens{suffix}.png"))
    _open(app, w, _example("digits_autoencoder", epochs=10))
    _train(app, w)
    for suffix, size in sizes:
        w.resize(*size)
        w.layouts.apply_sizes()
        panel = li.show_try_it()
        _calm(app, 0.5)
        panel.show_sample(7)
        print("wrote", _shot(app, w, out / f"try_autoencoder{suffix}.png"))
    _open(app, w, _example("lenet5"))
    for suffix, size in sizes:
        w.resize(*size)
        w.layouts.apply_sizes()
        w.training.show_monitor()
        maps = w.training.maps
        panel = li.show_try_it()
        _calm(app, 0.5)
        panel.pad.clear()
        draw(panel.pad, SEVEN)
        w.scene.select_nodes(["a1"])
        if not maps.showing_tryit:
            maps.tryit_box.setChecked(True)
        w.training.show_monitor(("curves", "maps"))
        print("wrote", _shot(app, w, out / f"try_feature_maps{suffix}.png"))
    for suffix, size in sizes:
        w.resize(*size)
        w.layouts.apply_sizes()
        w.scene.select_nodes(["c1"])
        dlg = li.check_selected()
        dlg.progress.valueChanged.connect(
            lambda v, d=dlg, sfx=suffix: v == d.progress.maximum() // 3 and
            d.grab().save(str(out / f"gradcheck_running{sfx}.png")))
        _wait(app, lambda dlg=dlg: dlg.report is not None, 120)
        li.wait_check()
        _wait(app, lambda dlg=dlg: dlg.report is not None, 120)
        dlg.move(w.geometry().center() - dlg.rect().center())
        _calm(app, 0.5)
        print("wrote", _shot(app, w, out / f"gradcheck_window{suffix}.png"))
        dlg.grab().save(str(out / f"gradcheck{suffix}.png"))
        dlg.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", default=str(ROOT / "docs" / "screenshots"))
    ap.add_argument("--size", default="1280x800")
    ap.add_argument("--small-size", default="", help="also take the shots at this size")
    ap.add_argument("--only", default="", help="'more': the other kinds of input instead")
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
    if args.only == "more":
        more_shots(app, w, sizes, out)
        w.ask_save_runs = lambda names: "discard"
        w.ask_save_changes = lambda: "discard"
        _close(w)
        return 0
    train_digits(app, w)
    for suffix, size in sizes:
        w.resize(*size)
        w.layouts.apply_sizes()
        _calm(app, 0.5)
        print("wrote", try_it_shot(app, w, out / f"try_it{suffix}.png"))
    for suffix, size in sizes:
        w.resize(*size)
        w.layouts.apply_sizes()
        _calm(app, 0.5)
        print("wrote", profile_shot(app, w, out / f"profile{suffix}.png"))
    w.ask_save_runs = lambda names: "discard"
    w.ask_save_changes = lambda: "discard"
    _close(w)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
