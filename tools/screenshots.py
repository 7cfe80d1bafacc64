"""Screenshots of the running app for the README (offscreen; rerun after UI changes).

    python tools/screenshots.py [--out docs/screenshots] [--size 1280x800]

Every shot is of the whole window at --size (1280×800, a common laptop screen).

The Build layout: main_window.png, the LeNet-5 example with a convolution selected
(inspector, receptive field); error_badge.png, the same model with the Flatten removed, so
the first Dense gets an error badge, the inspector explains it and the status bar counts it;
data_panel.png, the Data panel on LeNet-5's shapes; data_download.png, MNIST chosen in
the Data panel and downloading (``--only data`` takes these two). That download is staged:
nothing goes over the network, the catalogue's file reports progress from its first
mirror's address at a steady STAGED_RATE, and the shot is cancelled before it ends.

The Monitor layout (Start switches to it): monitor.png, digits_cnn mid-training (live
badges on the graph, curves, feature maps of the first ReLU, confusion matrix);
monitor_gradients.png, the same run with the weight and gradient histograms, per-layer
gradient norms, the first convolution's filters and the confident mistakes;
monitor_regions.png, an MLP learning the spirals (decision regions); monitor_pairs.png,
stn_shapes after a few epochs, its inputs above what the SpatialTransformer makes of them
(``--only pairs`` takes just this one); monitor_attention.png, transformer_sort paused
after a few epochs with its second attention node selected, each head's weights for one
validation sample (``--only attention`` takes just this one, and the same window resized
to --small-size into the temporary folder it prints); monitor_small.png, the digits_cnn run in a
1024×700 window (``--small-size``), where the same layout still fits.

timeline.png (``--only timeline``): LeNet-5 trained on shapes for its 8 epochs with the
flight recording on, the timeline under the monitor dragged back to epoch 1 (filters,
feature maps of the first ReLU, confusion matrix and canvas badges as recorded then);
``--timeline-small`` also writes the same at the small size to a file it names.

import_report.png (``--only import``, needs torch): a small CNN exported by
``torch.onnx.export`` (ceil_mode pooling, ``view(x.size(0), -1)``, nn.Hardsigmoid) opened
with File ▸ Open, the import report dialog over the window.
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
from PySide6.QtWidgets import QApplication

ROOT = Path(__file__).resolve().parent.parent


def _settle(app: QApplication, n: int = 6) -> None:
    for _ in range(n):
        app.processEvents()


def _wait(app: QApplication, cond, timeout: float = 600.0) -> bool:
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            return False
        app.processEvents()
        time.sleep(0.01)
    return True


def _calm(app: QApplication, seconds: float = 0.8) -> None:
    """Let the monitor's frame timer draw everything pending."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        app.processEvents()
        time.sleep(0.01)


SPIRAL_MLP = {
    "format": "netbuilder.graph", "version": 1, "name": "Spiral MLP",
    "nodes": [{"id": "in", "type": "Input", "params": {"shape": [2]}},
              {"id": "h1", "type": "Dense", "params": {"units": 32}},
              {"id": "t1", "type": "Tanh", "params": {}},
              {"id": "h2", "type": "Dense", "params": {"units": 32}},
              {"id": "t2", "type": "Tanh", "params": {}},
              {"id": "logits", "type": "Dense", "params": {"units": 2}},
              {"id": "out", "type": "Output", "params": {"loss": "cross_entropy"}}],
    "edges": [{"src": a, "dst": b} for a, b in (("in", "h1"), ("h1", "t1"), ("t1", "h2"),
                                                ("h2", "t2"), ("t2", "logits"),
                                                ("logits", "out"))],
    "training": {"dataset": "spirals", "epochs": 400, "batch_size": 32, "seed": 1,
                 "optimizer": {"type": "adam", "lr": 0.01}},
}


def _monitor_window(app: QApplication, size: tuple[int, int], tmp: str):
    from netbuilder.mainwindow import MainWindow
    from netbuilder.recovery import RecoveryStore

    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope,
                      tempfile.mkdtemp(prefix="nb-shots-"))  # a first start: the defaults
    w = MainWindow(recovery=RecoveryStore(tmp))
    w.resize(*size)
    w.show()
    _settle(app)
    return w


def _close(w) -> None:
    import engine

    w.document.reset(engine.Graph("closing"))
    w.close()


def pairs_shot(app: QApplication, w, out: Path) -> Path:
    """monitor_pairs.png: stn_shapes paused after 6 epochs, the SpatialTransformer selected."""
    from netbuilder.mainwindow import EXAMPLES_DIR

    tc = w.training
    w.open_example(EXAMPLES_DIR / "stn_shapes.json")
    tc.data.wait_loaded(60)
    w.scene.select_nodes(["stn"])
    _settle(app)
    if not tc.start():
        raise SystemExit(f"cannot start stn_shapes: {tc.panel.message.text()}")
    if not _wait(app, lambda: tc.active is not None and len(tc.active.epochs) >= 6):
        raise SystemExit("stn_shapes did not train 6 epochs")
    tc.pause()
    _wait(app, lambda: tc.worker.trainer.status == "paused", 30)
    tc.docks.plots["pairs"].raise_()
    _calm(app, 1.5)
    w.frame_canvas()
    _calm(app)
    p = out / "monitor_pairs.png"
    w.grab().save(str(p))
    tc.stop()
    _wait(app, lambda: tc.state == "idle", 60)
    return p


def attention_shot(app: QApplication, w, out: Path, small: tuple[int, int] | None = None,
                   small_out: Path | None = None) -> Path:
    """monitor_attention.png: transformer_sort paused after 4 epochs, its second
    MultiHeadAttention selected: the Attention view in front. With ``small``, the window is
    then resized to it and grabbed again into ``small_out``/monitor_attention_small.png."""
    from netbuilder.mainwindow import EXAMPLES_DIR

    tc = w.training
    w.open_example(EXAMPLES_DIR / "transformer_sort.json")
    tc.data.wait_loaded(60)
    w.scene.select_nodes(["b2_attn"])
    _settle(app)
    if not tc.start():
        raise SystemExit(f"cannot start transformer_sort: {tc.panel.message.text()}")
    if not _wait(app, lambda: tc.active is not None and len(tc.active.epochs) >= 4):
        raise SystemExit("transformer_sort did not train 4 epochs")
    tc.pause()
    _wait(app, lambda: tc.worker.trainer.status == "paused", 30)
    tc.docks.plots["attention"].raise_()
    _calm(app, 1.5)
    w.frame_canvas()
    _calm(app)
    p = out / "monitor_attention.png"
    w.grab().save(str(p))
    if small is not None and small_out is not None:
        w.resize(*small)
        _calm(app, 1.5)
        w.grab().save(str(small_out / "monitor_attention_small.png"))
        print(f"wrote {small_out / 'monitor_attention_small.png'}")
    tc.stop()
    _wait(app, lambda: tc.state == "idle", 60)
    return p


def _data_panel_shot(app: QApplication, w, out: Path) -> Path:
    """data_panel.png: LeNet-5's shapes in the Data panel (Build layout)."""
    from netbuilder.mainwindow import EXAMPLES_DIR

    tc = w.training
    w.open_example(EXAMPLES_DIR / "lenet5.json")
    tc.data.wait_loaded(60)
    tc.docks.data.raise_()
    _calm(app, 0.5)
    p = out / "data_panel.png"
    w.grab().save(str(p))
    return p


STAGED_RATE = 2.4 * 2**20  # bytes a second of the staged download


def _staged_run(self) -> None:
    """``FileDownload.run`` without the network (for data_download.png): progress reports
    for the catalogue's file at STAGED_RATE until cancelled."""
    t0 = time.monotonic()
    url = self.spec.urls[0]
    while True:
        self._check_cancel()
        done = min(self.spec.size - 1, int((time.monotonic() - t0) * STAGED_RATE))
        self._report(url, done)
        time.sleep(0.05)


def download_shot(app: QApplication, w, out: Path) -> Path:
    """data_download.png: LeNet-5 with MNIST chosen in the Data panel, a third downloaded
    (staged: see the module docstring)."""
    from engine.data import download
    from netbuilder.mainwindow import EXAMPLES_DIR

    os.environ["NETBUILDER_DATA_DIR"] = tempfile.mkdtemp(prefix="nb-shots-data-")
    real_run = download.FileDownload.run
    download.FileDownload.run = _staged_run
    try:
        tc = w.training
        dp = tc.data
        w.open_example(EXAMPLES_DIR / "lenet5.json")
        dp.wait_loaded(60)
        tc.docks.data.raise_()
        i = dp.source.findData("mnist")
        dp.source.setCurrentIndex(i)
        dp.source.activated.emit(i)
        if not _wait(app, lambda: dp.download.bar.value() >= 350, 60):
            raise SystemExit(f"the staged download did not start: {dp.download.title.text()}")
        _calm(app, 0.3)
        p = out / "data_download.png"
        w.grab().save(str(p))
        dp.cancel_download()
        _wait(app, lambda: not dp.pending, 30)
    finally:
        download.FileDownload.run = real_run
    return p


def _digits_cnn_paused(app: QApplication, w) -> None:
    """digits_cnn trained for 4 epochs and paused, the first ReLU selected."""
    from netbuilder.mainwindow import EXAMPLES_DIR

    tc = w.training
    w.open_example(EXAMPLES_DIR / "digits_cnn.json")
    tc.data.wait_loaded(60)
    w.scene.select_nodes(["relu1"])
    _settle(app)
    if not tc.start():
        raise SystemExit(f"cannot start digits_cnn: {tc.panel.message.text()}")
    if not _wait(app, lambda: tc.active is not None and len(tc.active.epochs) >= 4):
        raise SystemExit("digits_cnn did not train 4 epochs")
    tc.pause()
    _wait(app, lambda: tc.worker.trainer.status == "paused", 30)
    tc.filters.select_conv("conv1")
    for key in ("curves", "maps", "confusion"):
        tc.docks.plots[key].raise_()
    _calm(app, 1.5)
    w.frame_canvas()
    _calm(app)


def monitor_shots(app: QApplication, out: Path, size: tuple[int, int], tmp: str) -> list[Path]:
    """The training monitor mid-run (see the module docstring)."""
    import engine

    shots = []
    w = _monitor_window(app, size, tmp)
    tc = w.training
    _digits_cnn_paused(app, w)
    p = out / "monitor.png"
    w.grab().save(str(p))
    shots.append(p)
    tc.grads.select_node("conv2")
    for key in ("grads", "filters", "gallery"):
        tc.docks.plots[key].raise_()
    _calm(app, 1.5)
    p = out / "monitor_gradients.png"
    w.grab().save(str(p))
    shots.append(p)
    tc.stop()
    _wait(app, lambda: tc.state == "idle", 60)
    # an MLP on the spirals: decision regions
    w.load_graph(engine.Graph.from_dict(SPIRAL_MLP), None)
    tc.data.wait_loaded(60)
    w.scene.select_nodes(["t2"])
    if not tc.start():
        raise SystemExit(f"cannot start the spiral MLP: {tc.panel.message.text()}")
    _wait(app, lambda: tc.active is not None and len(tc.active.epochs) >= 120)
    tc.pause()
    for key in ("fit", "curves", "confusion"):
        tc.docks.plots[key].raise_()
    _calm(app, 1.5)
    w.view.fit_all()
    _calm(app, 0.5)
    p = out / "monitor_regions.png"
    w.grab().save(str(p))
    shots.append(p)
    tc.stop()
    _wait(app, lambda: tc.state == "idle", 60)
    shots.append(pairs_shot(app, w, out))
    shots.append(attention_shot(app, w, out))
    _close(w)
    return shots


def small_shot(app: QApplication, out: Path, size: tuple[int, int], tmp: str) -> Path:
    """monitor_small.png: the digits_cnn run in a small window."""
    w = _monitor_window(app, size, tmp)
    _digits_cnn_paused(app, w)
    p = out / "monitor_small.png"
    w.grab().save(str(p))
    w.training.stop()
    _wait(app, lambda: w.training.state == "idle", 60)
    _close(w)
    return p


def timeline_shot(app: QApplication, path: Path, size: tuple[int, int], tmp: str) -> Path:
    """timeline.png: LeNet-5 trained, the timeline scrubbed back to epoch 1."""
    from netbuilder.mainwindow import EXAMPLES_DIR

    w = _monitor_window(app, size, tmp)
    tc = w.training
    w.open_example(EXAMPLES_DIR / "lenet5.json")
    tc.data.wait_loaded(60)
    w.scene.select_nodes(["a1"])
    _settle(app)
    if not tc.start():
        raise SystemExit(f"cannot start lenet5: {tc.panel.message.text()}")
    if not _wait(app, lambda: tc.state == "idle" and tc.worker is None):
        raise SystemExit("lenet5 did not finish")
    tc.filters.select_conv("c1")
    for key in ("curves", "filters", "confusion"):
        tc.docks.plots[key].raise_()
    _calm(app, 1.0)
    tc.presenter.timeline_widget.slider.setValue(1)  # epochs 0, 1, …: the second tick
    _calm(app, 1.0)
    w.frame_canvas()
    _calm(app)
    w.grab().save(str(path))
    w.ask_save_runs = lambda names: "discard"  # the trained run is not wanted
    _close(w)
    return path


def import_shot(app: QApplication, out: Path, size: tuple[int, int], tmp: str) -> Path:
    """import_report.png: File ▸ Open on an .onnx PyTorch wrote, the report over the window."""
    import io

    import torch
    from PySide6.QtGui import QColor, QPainter

    from netbuilder.mainwindow import MainWindow
    from netbuilder.recovery import RecoveryStore

    nn = torch.nn

    class SmallCNN(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.c1, self.c2 = nn.Conv2d(1, 8, 3), nn.Conv2d(8, 16, 3)
            self.fc, self.gate = nn.Linear(16 * 3 * 3, 10), nn.Hardsigmoid()

        def forward(self, x):
            y = nn.functional.max_pool2d(torch.relu(self.c1(x)), 2, ceil_mode=True)
            y = nn.functional.max_pool2d(torch.relu(self.c2(y)), 2, ceil_mode=True)
            return self.gate(self.fc(y.view(y.size(0), -1)))

    torch.manual_seed(0)
    path = Path(tmp) / "small_cnn.onnx"
    buf = io.BytesIO()
    torch.onnx.export(SmallCNN().eval(), (torch.randn(2, 1, 16, 16),), buf, input_names=["x"],
                      output_names=["y"], dynamic_axes={"x": {0: "N"}, "y": {0: "N"}},
                      opset_version=17, dynamo=False)
    path.write_bytes(buf.getvalue())
    w = MainWindow(recovery=RecoveryStore(tmp))
    w.resize(*size)
    w.show()
    _settle(app)
    w.open_file(path)
    _settle(app, 12)
    dlg = w.exports.report_dialog
    shot = w.grab()
    painter = QPainter(shot)
    d = dlg.grab()  # offscreen: no window frame, so draw its edge
    x, y = (shot.width() - d.width()) // 2, (shot.height() - d.height()) // 2
    painter.drawPixmap(x, y, d)
    painter.setPen(QColor("#7a7a7a"))
    painter.drawRect(x - 1, y - 1, d.width() + 1, d.height() + 1)
    painter.end()
    target = out / "import_report.png"
    shot.save(str(target))
    dlg.close()
    _close(w)
    return target


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", default=str(ROOT / "docs" / "screenshots"))
    ap.add_argument("--size", default="1280x800", help="window size, WxH")
    ap.add_argument("--small-size", default="1024x700", help="window size of monitor_small.png")
    ap.add_argument("--timeline-small", default="",
                    help="also write the timeline shot at --small-size to this file")
    ap.add_argument("--only", choices=("builder", "monitor", "pairs", "attention", "small",
                                       "data", "import", "timeline"),
                    help="one group of shots (pairs: monitor_pairs.png alone; data: "
                    "data_panel.png and data_download.png; import: import_report.png)")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    width, height = (int(v) for v in args.size.lower().split("x"))
    size = (width, height)
    small = tuple(int(v) for v in args.small_size.lower().split("x"))

    tmp = tempfile.mkdtemp(prefix="nb-shots-")
    app = QApplication.instance() or QApplication([])
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, tmp)
    import engine
    from netbuilder.app import DEFAULT_EXAMPLE, apply_style
    from netbuilder.document import Composite, Connect, DeleteItems
    from netbuilder.mainwindow import MainWindow
    from netbuilder.recovery import RecoveryStore

    apply_style(app)
    if args.only in (None, "import"):
        print(f"wrote {import_shot(app, out, size, tmp)}")
        if args.only == "import":
            return 0
    if args.only in (None, "timeline"):
        print(f"wrote {timeline_shot(app, out / 'timeline.png', size, tmp)}")
        if args.timeline_small:
            print(f"wrote {timeline_shot(app, Path(args.timeline_small), small, tmp)}")
        if args.only == "timeline":
            return 0
    if args.only == "pairs":
        w = _monitor_window(app, size, tmp)
        print(f"wrote {pairs_shot(app, w, out)}")
        _close(w)
        return 0
    if args.only == "attention":
        w = _monitor_window(app, size, tmp)
        print(f"wrote {attention_shot(app, w, out, small, Path(tmp))}")
        _close(w)
        return 0
    if args.only in (None, "data"):
        w = _monitor_window(app, size, tmp)
        shots = [_data_panel_shot(app, w, out), download_shot(app, w, out)]
        print("wrote " + ", ".join(str(s) for s in shots))
        _close(w)
        if args.only == "data":
            return 0
    if args.only in (None, "small"):
        print(f"wrote {small_shot(app, out, small, tmp)}")
        if args.only == "small":
            return 0
    if args.only in (None, "monitor"):
        shots = monitor_shots(app, out, size, tmp)
        print("wrote " + ", ".join(str(s) for s in shots))
        if args.only == "monitor":
            return 0
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope,
                      tempfile.mkdtemp(prefix="nb-shots-"))  # a first start: the defaults
    w = MainWindow(recovery=RecoveryStore(tmp))
    w.resize(width, height)
    w.show()
    _settle(app)
    if not w.open_example(DEFAULT_EXAMPLE):
        print(f"cannot open {DEFAULT_EXAMPLE}", file=sys.stderr)
        return 1
    _settle(app)
    conv = next((n for n, nd in w.document.graph.nodes.items() if nd.type == "Conv2D"
                 and any(e.src == n for e in w.document.graph.edges)
                 and w.document.receptive_fields.get(n) is not None
                 and w.document.receptive_fields[n].size[0] > 5), None)
    if conv:
        w.scene.select_nodes([conv])
    _settle(app)
    w.frame_canvas()
    _settle(app)
    p1 = out / "main_window.png"
    w.grab().save(str(p1))

    g = w.document.graph
    flat = next((n for n, nd in g.nodes.items() if nd.type == "Flatten"), None)
    if flat is None:
        print("the example has no Flatten to remove", file=sys.stderr)
        return 1
    src = g.in_edges(flat)[0].src
    dst = g.out_edges(flat)[0].dst
    w.push(Composite([DeleteItems([flat]), Connect(src, dst, 0)], "break the model"))
    w.scene.select_nodes([dst])
    _settle(app)
    w.view.centerOn(w.scene.nodes[dst])
    _settle(app)
    p2 = out / "error_badge.png"
    w.grab().save(str(p2))
    err = w.document.analysis.errors.get(dst)
    assert isinstance(err, engine.NetBuilderError)
    print(f"wrote {p1} and {p2} ({width}×{height}); badge on '{dst}': {err.message}")
    w.document.reset(engine.Graph("closing"))
    w.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
