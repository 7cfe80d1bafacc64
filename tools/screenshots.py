"""Screenshots of the running app for the README (offscreen; rerun after UI changes).

    python tools/screenshots.py [--out docs/screenshots]

main_window.png: the LeNet-5 example with a convolution selected (inspector, receptive
field). error_badge.png: the same model with the Flatten removed, so the first Dense gets an
error badge, the inspector explains it and the status bar counts it.
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


def _settle(app: QApplication, n: int = 6) -> None:
    for _ in range(n):
        app.processEvents()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", default=str(ROOT / "docs" / "screenshots"))
    ap.add_argument("--size", default="1600x1200", help="window size, WxH")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    width, height = (int(v) for v in args.size.lower().split("x"))

    tmp = tempfile.mkdtemp(prefix="nb-shots-")
    app = QApplication.instance() or QApplication([])
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, tmp)
    import engine
    from netbuilder.app import DEFAULT_EXAMPLE, apply_style
    from netbuilder.document import Composite, Connect, DeleteItems
    from netbuilder.mainwindow import MainWindow
    from netbuilder.recovery import RecoveryStore

    apply_style(app)
    w = MainWindow(recovery=RecoveryStore(tmp))
    w.resize(width, height)
    w.show()
    _settle(app)
    if not w.open_example(DEFAULT_EXAMPLE):
        print(f"cannot open {DEFAULT_EXAMPLE}", file=sys.stderr)
        return 1
    _settle(app)
    w.view.fit_all()
    conv = next((n for n, nd in w.document.graph.nodes.items() if nd.type == "Conv2D"
                 and any(e.src == n for e in w.document.graph.edges)
                 and w.document.receptive_fields.get(n) is not None
                 and w.document.receptive_fields[n].size[0] > 5), None)
    if conv:
        w.scene.select_nodes([conv])
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
