"""Screenshots of blocks for the README (offscreen): the ResNet-20 template collapsed
(blocks_resnet20.png) and with its first downsampling block expanded in place
(blocks_expanded.png); ``--small`` adds the same at 1024×700 (``*_small.png``).

    python tools/screenshots_blocks.py [--out docs/screenshots] [--small]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from PySide6.QtWidgets import QApplication  # noqa: E402


def _settle(app: QApplication) -> None:
    for _ in range(8):
        app.processEvents()


def shoot(out: Path, size: tuple[int, int], suffix: str) -> list[Path]:
    from netbuilder.block_commands import ExpandBlock
    from netbuilder.mainwindow import MainWindow
    from netbuilder.recovery import RecoveryStore

    app = QApplication.instance() or QApplication([])
    tmp = Path(tempfile.mkdtemp())
    w = MainWindow(recovery=RecoveryStore(tmp / "recovery"))
    w.resize(*size)
    w.show()
    _settle(app)
    w.templates.new_from("resnet20_cifar10")
    _settle(app)
    w.scene.select_nodes(["s2b1"])
    w.view.centerOn(w.scene.nodes["s2b1"])
    _settle(app)
    shots = [out / f"blocks_resnet20{suffix}.png", out / f"blocks_expanded{suffix}.png"]
    w.grab().save(str(shots[0]))
    w.scene.run(ExpandBlock("s2b1"))
    w.scene.select_nodes(["s2b1-add"])
    w.view.centerOn(w.blocks.frames["s2b1"].rect.center())
    _settle(app)
    w.grab().save(str(shots[1]))
    w.document.reset(w.document.graph)  # nothing to save on close
    w.close()
    return shots


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(ROOT / "docs" / "screenshots"))
    ap.add_argument("--small", action="store_true")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp())
    os.environ.setdefault("XDG_DATA_HOME", str(tmp / "data"))
    os.environ.setdefault("XDG_CONFIG_HOME", str(tmp / "config"))
    for p in shoot(out, (1280, 800), ""):
        print(p)
    if args.small:
        for p in shoot(out, (1024, 700), "_small"):
            print(p)


if __name__ == "__main__":
    main()
