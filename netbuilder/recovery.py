"""Crash recovery: the open document is written to a per-process file now and then; a later
start finds files left by processes that are gone and offers to restore them. Qt-free."""

from __future__ import annotations

import contextlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from engine.atomic import atomic_write_text
from engine.errors import NetBuilderError
from engine.graph import Graph

RECOVERY_FORMAT = "netbuilder.recovery"


def default_recovery_dir() -> Path:
    """``<user data dir>/NetBuilder/recovery`` (XDG_DATA_HOME on Linux)."""
    return Path(platformdirs.user_data_dir("NetBuilder", "NetBuilder")) / "recovery"


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


@dataclass
class RecoveryEntry:
    """Unsaved work left by a session that did not close cleanly."""

    file: Path
    graph: Graph
    source: Path | None
    saved_at: float

    def describe(self) -> str:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(self.saved_at))
        what = self.source.name if self.source else f"the untitled model '{self.graph.name}'"
        return f"{what} ({len(self.graph.nodes)} nodes), last autosaved {when}"


class RecoveryStore:
    """One recovery file per running NetBuilder: ``session-<pid>.json`` in ``folder``."""

    def __init__(self, folder: str | Path | None = None, pid: int | None = None) -> None:
        self.folder = Path(folder) if folder else default_recovery_dir()
        self.pid = os.getpid() if pid is None else pid

    @property
    def file(self) -> Path:
        return self.folder / f"session-{self.pid}.json"

    def write(self, graph: Graph, source: Path | None) -> Path:
        """Snapshot ``graph`` (atomically) with the path of the file it belongs to."""
        self.folder.mkdir(parents=True, exist_ok=True)
        doc = {"format": RECOVERY_FORMAT, "version": 1, "pid": self.pid,
               "saved_at": time.time(), "source": str(source) if source else None,
               "graph": graph.to_dict()}
        atomic_write_text(self.file, json.dumps(doc))
        return self.file

    def clear(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.file.unlink()

    def orphans(self) -> list[RecoveryEntry]:
        """Recovery files of sessions no longer running, newest first. Unreadable ones go."""
        out: list[RecoveryEntry] = []
        if not self.folder.is_dir():
            return out
        for f in self.folder.glob("session-*.json"):
            try:
                pid = int(f.stem.split("-", 1)[1])
            except ValueError:
                continue
            if pid == self.pid or _alive(pid):
                continue
            entry = self._read(f)
            if entry is None:
                with contextlib.suppress(OSError):
                    f.unlink()
            else:
                out.append(entry)
        out.sort(key=lambda e: e.saved_at, reverse=True)
        return out

    @staticmethod
    def _read(f: Path) -> RecoveryEntry | None:
        try:
            doc = json.loads(f.read_text(encoding="utf-8"))
            if not isinstance(doc, dict) or doc.get("format") != RECOVERY_FORMAT:
                return None
            graph = Graph.from_dict(doc.get("graph"), validate=False)
            src = doc.get("source")
            saved = doc.get("saved_at")
            return RecoveryEntry(f, graph, Path(src) if isinstance(src, str) else None,
                                 float(saved) if isinstance(saved, int | float) else 0.0)
        except (OSError, ValueError, NetBuilderError, RecursionError):
            return None

    @staticmethod
    def discard(entries: list[RecoveryEntry]) -> None:
        for e in entries:
            with contextlib.suppress(OSError):
                e.file.unlink()
