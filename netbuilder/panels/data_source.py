"""Where the Data panel's dataset comes from, and how far it has got: loads a built-in
dataset or a file, reads a standard dataset from the cache or downloads it first, and
checks files the user already has, each on a worker thread (never the GUI thread).

``DataSource`` is the state; the panel shows it. ``state`` is one of

- ""            nothing chosen
- "loading"     a built-in set, a file, or a cached standard set is being read
- "downloading" a standard set is being downloaded (``progressed`` reports how far)
- "cancelling"  Cancel was asked for; the download stops within one read
- "cancelled"   stopped by the user: the part downloaded is kept for the next time
- "adding"      the user's own files are checked against the catalogue
- "incomplete"  some of the user's files matched, others are still missing
- "failed"      ``error`` says why (the engine's message, shown as is)
- "loaded"      ``dataset`` is there

``changed`` follows every change of state; results of a load the user has moved on from
(another dataset chosen meanwhile) are dropped."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Qt, Signal

from engine.data import CATALOGUE, Dataset, load_dataset
from engine.errors import NetBuilderError

from .data_chooser import remote_choice

BUSY = ("loading", "downloading", "cancelling", "adding")


class _Relay(QObject):
    """Carries a worker thread's results to the GUI thread (queued), with the token of
    the load they belong to."""

    result = Signal(int, str, object)   # token, what ("loaded", "failed", …), payload
    progress = Signal(int, object)      # token, DownloadProgress

    def send(self, signal: str, *args: Any) -> None:
        with contextlib.suppress(RuntimeError):  # the panel was deleted meanwhile
            getattr(self, signal).emit(*args)


class DataSource(QObject):
    """The chosen data and how its loading stands (see the module docstring)."""

    changed = Signal()
    progressed = Signal(object)  # DownloadProgress, while "downloading"

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.state = ""
        self.spec: Any = None
        self.remote: str | None = None  # the catalogue name when the data is a standard set
        self.dataset: Dataset | None = None
        self.error: str | None = None
        self.cache: Any = None  # CacheState: at the start, after a cancel or files added
        self.added_error = False  # the failure is about the user's files, not a download
        self.adding_count = 0  # files being checked
        self._token = 0
        self._cancel: threading.Event | None = None
        self._relay = _Relay()
        q = Qt.ConnectionType.QueuedConnection
        self._relay.result.connect(self._on_result, q)
        self._relay.progress.connect(self._on_progress, q)

    @property
    def busy(self) -> bool:
        return self.state in BUSY

    # ----- asking ----------------------------------------------------------------------------
    def load(self, spec: Any, base_dir: Any = None) -> None:
        """Load ``spec`` (a standard dataset is downloaded first when it is not here)."""
        self.stop()
        self.spec, self.remote = spec, remote_choice(spec)
        self.dataset = self.error = self.cache = None
        self.added_error = False
        if spec is None:
            self._set("")
            return
        if self.remote is None:
            self._set("loading")
            self._run(lambda: load_dataset(spec, base_dir=base_dir), "netbuilder-data")
            return
        from engine.data.remote import cache_state, load_remote_dataset
        name = self.remote
        with contextlib.suppress(OSError):
            self.cache = cache_state(name)
        ready = self.cache is not None and self.cache.ready
        cancel = self._cancel = threading.Event()
        token, relay = self._token, self._relay
        self._set("loading" if ready else "downloading")
        self._run(lambda: load_remote_dataset(
            name, cancel=cancel, progress=lambda p: relay.send("progress", token, p)),
            "netbuilder-download")

    def cancel(self) -> None:
        """Stop the download under way; the part downloaded is kept."""
        if self.state == "downloading" and self._cancel is not None:
            self._cancel.set()
            self._set("cancelling")

    def add_files(self, paths: list[str]) -> None:
        """Check the user's files against the catalogue and copy the matching ones into
        the cache (stopping a download of the same dataset first); then load."""
        name = self.remote
        if name is None or not paths:
            return
        from engine.data.remote import add_local_files
        self.stop()
        self.error = None
        self.adding_count = len(paths)
        self._set("adding")
        self._run(lambda: add_local_files(name, paths), "netbuilder-add-files", "added")

    def stop(self) -> None:
        """Drop the work under way (a download stops and resumes next time)."""
        self._token += 1
        if self._cancel is not None:
            self._cancel.set()
            self._cancel = None

    def wait_reason(self) -> str | None:
        """Why training must wait for this data (a standard dataset not on this computer
        yet: downloading, cancelled, failed…), else None."""
        if self.remote is None or self.dataset is not None:
            return None
        title = CATALOGUE[self.remote].title
        return {
            "downloading": f"{title} is downloading; Start is ready once it is here (Data panel)",
            "cancelling": f"{title} is not downloaded: the download is stopping (Data panel)",
            "cancelled": f"{title} is not downloaded yet: the download was cancelled (Data "
                         "panel ▸ Resume download)",
            "failed": f"{title} is not on this computer: see the Data panel (Retry, or Open "
                      "files I already have…)",
            "adding": f"checking your {title} files (Data panel)",
            "incomplete": f"{title} is not complete yet (Data panel ▸ Download the rest, or "
                          "Open files I already have…)",
        }.get(self.state)

    # ----- the worker thread -----------------------------------------------------------------
    def _run(self, job: Callable[[], Any], name: str, ok: str = "loaded") -> None:
        from engine.data.remote import DownloadCancelledError

        token, relay = self._token, self._relay

        def work() -> None:
            try:
                relay.send("result", token, ok, job())
            except DownloadCancelledError as exc:
                relay.send("result", token, "cancelled", exc.message)
            except NetBuilderError as exc:
                relay.send("result", token, "failed", exc.message)
            except (OSError, MemoryError, ValueError) as exc:
                relay.send("result", token, "failed", f"{type(exc).__name__}: {exc}")

        threading.Thread(target=work, name=name, daemon=True).start()

    def _on_progress(self, token: int, p: Any) -> None:
        if token != self._token:
            return
        if self.state == "loading":  # a cached file changed since it was checked: fetched again
            self._set("downloading")
        if self.state in ("downloading", "cancelling"):
            self.progressed.emit(p)

    def _on_result(self, token: int, what: str, payload: Any) -> None:
        if token != self._token:
            return
        self._cancel = None
        if what == "loaded":
            self.dataset = payload
            self._set("loaded")
        elif what == "failed":
            self.error = payload
            self.added_error = self.state == "adding"
            self._set("failed")
        elif what == "cancelled":
            from engine.data.remote import cache_state
            self.cache = cache_state(self.remote) if self.remote else None
            self._set("cancelled")
        elif what == "added":
            self.cache = payload
            if payload.ready:
                self.load(self.spec)  # all files are here now: read them
            else:
                self._set("incomplete")

    def _set(self, state: str) -> None:
        self.state = state
        self.changed.emit()
