"""Crash recovery: the open document is written to a per-process file now and then, and each
trained run that is not saved yet to a bundle of its own beside it; a later start finds the
files left by processes that are gone and offers to restore them. Qt-free."""

from __future__ import annotations

import contextlib
import json
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import platformdirs

from engine.atomic import atomic_write_text
from engine.errors import NetBuilderError
from engine.graph import Graph
from engine.text import plural

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


RUN_FILE = re.compile(r"session-(\d+)-run(\d+)\.nbmodel")


@dataclass
class RecoveryEntry:
    """Unsaved work left by a session that did not close cleanly: its model (None when the
    model was saved) and trained-run bundles (``runs``, oldest run first)."""

    file: Path | None
    graph: Graph | None
    source: Path | None
    saved_at: float
    runs: list[Path] = field(default_factory=list)

    def describe(self) -> str:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(self.saved_at))
        parts = []
        if self.graph is not None:
            what = self.source.name if self.source else \
                f"the untitled model '{self.graph.name}'"
            parts.append(f"{what} ({plural(len(self.graph.nodes), 'node')})")
        if self.runs:
            parts.append(f"{plural(len(self.runs), 'trained run')} not saved yet (weights "
                         "and curves, back in the Runs panel)")
        return f"{' and '.join(parts)}, last autosaved {when}"


class RecoveryStore:
    """One recovery file per running NetBuilder, ``session-<pid>.json`` in ``folder``, and
    ``session-<pid>-run<n>.nbmodel`` per trained run not saved elsewhere."""

    def __init__(self, folder: str | Path | None = None, pid: int | None = None) -> None:
        self.folder = Path(folder) if folder else default_recovery_dir()
        self.pid = os.getpid() if pid is None else pid

    @property
    def file(self) -> Path:
        return self.folder / f"session-{self.pid}.json"

    def run_file(self, number: int) -> Path:
        return self.folder / f"session-{self.pid}-run{number}.nbmodel"

    def write(self, graph: Graph, source: Path | None) -> Path:
        """Snapshot ``graph`` (atomically) with the path of the file it belongs to."""
        self.folder.mkdir(parents=True, exist_ok=True)
        doc = {"format": RECOVERY_FORMAT, "version": 1, "pid": self.pid,
               "saved_at": time.time(), "source": str(source) if source else None,
               "graph": graph.to_dict()}
        atomic_write_text(self.file, json.dumps(doc))
        return self.file

    def write_run(self, number: int, save: Callable[[Path], Any]) -> Path:
        """Keep run ``number``: ``save(path)`` writes its bundle (atomically)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.run_file(number)
        save(path)
        return path

    def drop_run(self, number: int) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.run_file(number).unlink()

    def clear(self) -> None:
        """Remove this session's recovery files (a clean close, or everything saved)."""
        self.clear_model()
        if self.folder.is_dir():
            for f in self.folder.glob(f"session-{self.pid}-run*.nbmodel"):
                with contextlib.suppress(OSError):
                    f.unlink()

    def clear_model(self) -> None:
        """Remove the model's recovery file (it was saved); kept runs stay."""
        with contextlib.suppress(FileNotFoundError):
            self.file.unlink()

    def orphans(self) -> list[RecoveryEntry]:
        """Work of sessions no longer running, newest first. Unreadable model files go."""
        out: list[RecoveryEntry] = []
        if not self.folder.is_dir():
            return out
        runs: dict[int, list[tuple[int, Path]]] = {}
        for f in self.folder.glob("session-*-run*.nbmodel"):
            m = RUN_FILE.fullmatch(f.name)
            if m:
                runs.setdefault(int(m[1]), []).append((int(m[2]), f))
        entries: dict[int, RecoveryEntry] = {}
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
                entries[pid] = entry
        for pid, found in runs.items():
            if pid == self.pid or _alive(pid):
                continue
            entry = entries.get(pid)
            if entry is None:
                newest = max(_mtime(p) for _, p in found)
                entry = entries[pid] = RecoveryEntry(None, None, None, newest)
            entry.runs = [p for _, p in sorted(found)]
        out = sorted(entries.values(), key=lambda e: e.saved_at, reverse=True)
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
            for f in [e.file, *e.runs]:
                if f is not None:
                    with contextlib.suppress(OSError):
                        f.unlink()


def _mtime(p: Path) -> float:
    try:
        return p.stat().st_mtime
    except OSError:
        return 0.0
