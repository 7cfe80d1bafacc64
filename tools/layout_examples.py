"""Store the canvas's layered layout in each example's ``ui`` section.

    QT_QPA_PLATFORM=offscreen python tools/layout_examples.py

Run after adding an example or changing the node card size, so examples open laid out.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from PySide6.QtWidgets import QApplication

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import engine  # noqa: E402
from netbuilder.canvas.scene import CanvasScene  # noqa: E402
from netbuilder.document import Document  # noqa: E402


def main() -> int:
    app = QApplication.instance() or QApplication([])
    for path in sorted((ROOT / "resources" / "examples").glob("*.json")):
        doc = json.loads(path.read_text())
        graph = engine.Graph.from_dict(doc)
        scene = CanvasScene(Document(graph), push=lambda cmd: None)
        pos = scene.layout_positions()
        doc["ui"] = {nid: {"pos": [round(x), round(y)]} for nid, (x, y) in pos.items()}
        engine.atomic.atomic_write_text(path, json.dumps(doc, indent=2) + "\n")
        print(f"{path.name}: {len(pos)} nodes laid out")
    del app
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
