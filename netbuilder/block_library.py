"""The user's block library: blocks saved from one model to drop into another.

One JSON file per block in ``<user data dir>/NetBuilder/blocks`` (``{"format":
"netbuilder.block", "version": 1, "block": <the block's contents, as in a model file>}``),
named after the block. The palette lists them under "My blocks". Qt-free.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import platformdirs

from engine.atomic import atomic_write_text
from engine.blocks import Block, parse_block
from engine.errors import GraphFormatError, NetBuilderError
from engine.graph import VERSION

BLOCK_FORMAT = "netbuilder.block"


def default_library_dir() -> Path:
    """``<user data dir>/NetBuilder/blocks`` (XDG_DATA_HOME on Linux)."""
    return Path(platformdirs.user_data_dir("NetBuilder", "NetBuilder")) / "blocks"


@dataclass
class LibraryEntry:
    """A saved block: its name, file and contents (``Block.to_dict()`` data)."""

    name: str
    path: Path
    body: dict[str, Any]
    layers: int


class BlockLibrary:
    """The saved blocks in ``folder`` (created on the first save)."""

    def __init__(self, folder: Path | None = None) -> None:
        self.folder = Path(folder) if folder else default_library_dir()

    def entries(self) -> list[LibraryEntry]:
        """Every readable saved block, by name; unreadable files are skipped."""
        out = []
        if not self.folder.is_dir():
            return out
        for p in sorted(self.folder.glob("*.json")):
            try:
                out.append(self.read(p))
            except (NetBuilderError, OSError):
                continue
        return sorted(out, key=lambda e: e.name.lower())

    def read(self, path: Path) -> LibraryEntry:
        """One saved block; GraphFormatError if the file is not one."""
        try:
            doc = json.loads(Path(path).read_text("utf-8"))
        except (OSError, ValueError, UnicodeDecodeError) as exc:
            raise GraphFormatError(f"{path} is not a saved block: {exc}") from None
        if not isinstance(doc, dict) or doc.get("format") != BLOCK_FORMAT \
                or not isinstance(doc.get("block"), dict):
            raise GraphFormatError(f"{path} is not a saved block")
        version = doc.get("version")
        if not isinstance(version, int) or isinstance(version, bool) or version > 1:
            raise GraphFormatError(f"{path}: saved block version {version!r} is newer than this "
                                   "NetBuilder reads; update NetBuilder")
        block = parse_block(doc["block"], "block", VERSION)
        return LibraryEntry(block.name, Path(path), block.to_dict(), block.layer_count())

    def save(self, block: Block) -> Path:
        """Write ``block`` (replacing a saved block of the same name); returns the file."""
        stem = re.sub(r"[^A-Za-z0-9_-]+", "_", block.name).strip("_") or "block"
        path = self.folder / f"{stem[:60]}.json"
        self.folder.mkdir(parents=True, exist_ok=True)
        doc = {"format": BLOCK_FORMAT, "version": 1, "block": block.to_dict()}
        atomic_write_text(path, json.dumps(doc, indent=2) + "\n")
        return path

    def find(self, name: str) -> LibraryEntry | None:
        return next((e for e in self.entries() if e.name == name), None)
