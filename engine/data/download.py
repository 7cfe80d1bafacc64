"""Download one catalogue file over HTTP(S): mirrors, resume, size cap, SHA-256, cancel.

Standard library only (urllib). The file streams into ``<dest>.part`` in a ``.download``
folder beside it and is renamed to ``dest`` only after its size, SHA-256 (and MD5, if
listed) match the catalogue, so a cache file is never half-written or unverified.

- **Resume**: a ``.part`` left by a dropped connection or a cancel is continued with an
  HTTP ``Range`` request; a server that ignores it (200 instead of 206) restarts the file.
  A resumed file whose checksum is wrong is downloaded once more from scratch.
- **Mirrors**: a 404, refused connection, timeout, oversized or corrupt file moves on to the
  next URL; only when every mirror failed is an error raised, naming each reason.
- **Safety**: only ``http``/``https`` URLs, redirects to other schemes are refused, no
  more than the catalogue's size is ever written, and bytes are checked before use.
- **Cancel**: ``cancel()`` is polled between reads (each read returns what has arrived, at
  most ``CHUNK_BYTES``), so a cancel takes effect within one read or ``timeout`` seconds.
"""

from __future__ import annotations

import hashlib
import http.client
import math
import os
import re
import socket
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import DataError, NetBuilderError
from .catalogue import RemoteFile

CHUNK_BYTES = 256 * 1024
REPORT_EVERY_S = 0.05        # progress callbacks: at most ~20 a second, plus each file's end
DEFAULT_TIMEOUT_S = 30.0
DEFAULT_RETRIES = 3          # resumes after a dropped connection, per mirror
PARTIAL_FOLDER = ".download"
USER_AGENT = "NetBuilder dataset download (urllib)"
# the app's way in is the Data panel's Open… button (its dialog is titled "Open data")
OPEN_YOURSELF = ("download the files yourself and open them with Open… in the Data panel / "
                 "`--data PATH` (or add them with `netbuilder datasets add NAME FILE`)")


class DownloadCancelledError(NetBuilderError):
    """The caller's ``cancel`` asked to stop; the partial file is kept for a later resume."""


@dataclass(frozen=True)
class DownloadProgress:
    """Where a download stands. Bytes: ``done`` of ``total`` over the whole dataset,
    ``file_done`` of ``file_total`` for the current file (whose ``url`` is being read)."""

    dataset: str        # the catalogue name, e.g. "mnist"
    file: str
    url: str
    file_done: int
    file_total: int
    done: int
    total: int

    @property
    def fraction(self) -> float:
        """0 … 1 over the whole dataset."""
        return self.done / self.total if self.total else 1.0


ProgressFn = Callable[[DownloadProgress], None]
CancelFn = Callable[[], bool]


def as_cancel_fn(cancel: Any) -> CancelFn:
    """A ``() -> bool`` from None, a callable or anything with ``is_set()`` (threading.Event)."""
    if cancel is None:
        return lambda: False
    if hasattr(cancel, "is_set"):
        return cancel.is_set
    if callable(cancel):
        return lambda: bool(cancel())
    raise TypeError(f"cancel must be a callable or a threading.Event, got {type(cancel).__name__}")


class _HttpOnlyRedirects(urllib.request.HTTPRedirectHandler):
    """Follow redirects to http(s) addresses only (urllib alone would also follow ftp)."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[override]
        scheme = urllib.parse.urlsplit(newurl).scheme.lower()
        if scheme not in ("http", "https"):
            raise urllib.error.HTTPError(req.full_url, code, f"redirected to a {scheme or '?'}: "
                                         "address, which NetBuilder does not follow",
                                         headers, fp)
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _opener() -> urllib.request.OpenerDirector:
    """urllib with HTTP and HTTPS only (no file:, ftp: or data: handlers), proxies from the
    environment as usual, and safe redirects."""
    opener = urllib.request.OpenerDirector()
    for handler in (urllib.request.ProxyHandler(), urllib.request.UnknownHandler(),
                    urllib.request.HTTPHandler(),
                    urllib.request.HTTPSHandler(context=ssl.create_default_context()),
                    urllib.request.HTTPDefaultErrorHandler(), _HttpOnlyRedirects(),
                    urllib.request.HTTPErrorProcessor()):
        opener.add_handler(handler)
    return opener


class _MirrorError(Exception):
    """This URL cannot deliver the file; ``reason`` says why (for the final message)."""

    def __init__(self, reason: str, checksum: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.checksum = checksum


class _DroppedError(Exception):
    """The connection ended before the whole file arrived (resumable)."""


def _reason(exc: BaseException) -> str:
    """A short human reason for a network error."""
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code} {exc.reason}".strip()
    if isinstance(exc, urllib.error.URLError):
        exc = exc.reason if isinstance(exc.reason, BaseException) else exc
        if not isinstance(exc, BaseException):
            return str(exc)
    if isinstance(exc, socket.timeout | TimeoutError):
        return "timed out"
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve the host name ({exc.strerror or exc})"
    if isinstance(exc, ssl.SSLError):
        return f"secure connection failed ({exc.reason or exc})"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, ConnectionError | http.client.IncompleteRead):
        return "connection dropped"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


def partial_path(dest: Path) -> Path:
    """Where ``dest`` is downloaded to before it is verified."""
    return dest.parent / PARTIAL_FOLDER / f"{dest.name}.part"


def file_digests(path: Path, spec: RemoteFile) -> tuple[str, str | None]:
    """(sha256, md5 or None when the catalogue lists none) of a file on disk."""
    sha = hashlib.sha256()
    md5 = hashlib.md5(usedforsecurity=False) if spec.md5 else None
    with open(path, "rb") as fh:
        while block := fh.read(CHUNK_BYTES * 4):
            sha.update(block)
            if md5 is not None:
                md5.update(block)
    return sha.hexdigest(), md5.hexdigest() if md5 is not None else None


def checksum_problem(spec: RemoteFile, size: int, sha256: str, md5: str | None) -> str | None:
    """What is wrong with a file of this size and these digests, or None if it is right."""
    if size != spec.size:
        return f"it is {size:,} bytes, expected {spec.size:,}"
    if sha256 != spec.sha256:
        return f"its SHA-256 is {sha256}, expected {spec.sha256}"
    if spec.md5 and md5 != spec.md5:
        return f"its MD5 is {md5}, expected {spec.md5}"
    return None


class FileDownload:
    """Fetch ``spec`` into ``dest``, reporting progress with ``base`` bytes already done of
    ``total`` for the dataset ``title``. Raises DataError (every mirror failed),
    DownloadCancelledError, or OSError (disk)."""

    def __init__(self, spec: RemoteFile, dest: Path, title: str, *,
                 progress: ProgressFn | None = None, cancel: CancelFn | None = None,
                 timeout: float = DEFAULT_TIMEOUT_S, retries: int = DEFAULT_RETRIES,
                 base: int = 0, total: int | None = None, dataset: str | None = None) -> None:
        self.spec, self.dest, self.title = spec, Path(dest), title
        self.dataset = dataset or title
        self.progress = progress
        self.cancelled = cancel or (lambda: False)
        self.timeout = timeout
        self.retries = retries
        self.base = base
        self.total = spec.size if total is None else total
        self.part = partial_path(self.dest)
        self._opener = _opener()
        self._reported = -math.inf

    # ----- public ------------------------------------------------------------------------
    def run(self) -> None:
        reasons: list[tuple[str, _MirrorError]] = []
        self.part.parent.mkdir(parents=True, exist_ok=True)
        for url in self.spec.urls:
            if urllib.parse.urlsplit(url).scheme.lower() not in ("http", "https"):
                reasons.append((url, _MirrorError("not an http(s) address")))
                continue
            try:
                self._from(url)
                return
            except _MirrorError as exc:
                reasons.append((url, exc))
        raise DataError(self._failure_message(reasons))

    # ----- one mirror ----------------------------------------------------------------------
    def _from(self, url: str) -> None:
        drops = 0
        restarted = False
        while True:
            self._check_cancel()
            have = self._part_size()
            try:
                resumed = self._stream(url, have)
            except _DroppedError as exc:
                drops += 1
                if drops > self.retries:
                    raise _MirrorError(f"connection dropped {drops} times ({exc})") from None
                continue
            sha, md5 = file_digests(self.part, self.spec)
            problem = checksum_problem(self.spec, self.part.stat().st_size, sha, md5)
            if problem is None:
                os.replace(self.part, self.dest)
                return
            self.part.unlink(missing_ok=True)
            if resumed and not restarted:
                restarted = True  # the kept part may be what was wrong: once more, whole
                continue
            raise _MirrorError(problem, checksum=True)

    def _part_size(self) -> int:
        try:
            have = self.part.stat().st_size
        except FileNotFoundError:
            return 0
        if have > self.spec.size:
            self.part.unlink()
            return 0
        return have

    def _stream(self, url: str, have: int) -> bool:
        """Append the rest of the file from ``url`` to the part file; True if it resumed a
        kept part. Raises _DroppedError (try again) or _MirrorError (next mirror)."""
        if have == self.spec.size:
            return True  # complete already: only the checksum is left to check
        headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
        if have:
            headers["Range"] = f"bytes={have}-"
        req = urllib.request.Request(url, headers=headers)
        try:
            resp = self._opener.open(req, timeout=self.timeout)
        except urllib.error.HTTPError as exc:
            exc.close()
            if exc.code == 416 and have:  # the kept part does not fit this server's file
                self.part.unlink(missing_ok=True)
                raise _DroppedError("the server refused to resume; starting over") from None
            raise _MirrorError(_reason(exc)) from None
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            raise _MirrorError(_reason(exc)) from None
        with resp:
            start = self._start_offset(resp, have)
            self._check_length(resp, start)
            self._copy(resp, url, start)
        return start > 0

    def _start_offset(self, resp: Any, have: int) -> int:
        """Where the body starts in the file: ``have`` for a matching 206, else 0."""
        if resp.status != 206:
            return 0
        m = re.fullmatch(r"bytes\s+(\d+)-(\d+)/(\d+|\*)", resp.headers.get("Content-Range", ""))
        if not m or int(m[1]) != have or (m[3] != "*" and int(m[3]) != self.spec.size):
            self.part.unlink(missing_ok=True)
            raise _DroppedError("the server answered the resume with a different part; starting over")
        return have

    def _check_length(self, resp: Any, start: int) -> None:
        length = resp.headers.get("Content-Length")
        if length is not None and length.isdigit() and start + int(length) > self.spec.size:
            raise _MirrorError(f"it announces {start + int(length):,} bytes, expected "
                                f"{self.spec.size:,} (not the expected file)")

    def _copy(self, resp: Any, url: str, start: int) -> None:
        """Write the body after the first ``start`` bytes of the part file."""
        done = start
        self._report(url, done, force=True)
        with open(self.part, "r+b" if start else "wb") as fh:
            fh.seek(start)
            fh.truncate()
            while True:
                self._check_cancel()
                try:
                    block = resp.read1(CHUNK_BYTES)
                except (OSError, http.client.HTTPException) as exc:
                    raise _DroppedError(_reason(exc)) from None
                if not block:
                    break
                if done + len(block) > self.spec.size:
                    fh.close()
                    self.part.unlink(missing_ok=True)
                    raise _MirrorError(f"it sends more than the expected {self.spec.size:,} "
                                        "bytes (not the expected file)")
                fh.write(block)
                done += len(block)
                self._report(url, done)
        if done < self.spec.size:
            raise _DroppedError(f"{done:,} of {self.spec.size:,} bytes arrived")

    # ----- helpers -------------------------------------------------------------------------
    def _check_cancel(self) -> None:
        if self.cancelled():
            raise DownloadCancelledError(f"download of {self.title} cancelled ({self.spec.name}: "
                                    "the part downloaded so far is kept and resumed next time)")

    def _report(self, url: str, file_done: int, force: bool = False) -> None:
        if self.progress is None:
            return
        now = time.monotonic()
        if force or file_done == self.spec.size or now - self._reported >= REPORT_EVERY_S:
            self._reported = now
            self.progress(DownloadProgress(self.dataset, self.spec.name, url, file_done,
                                           self.spec.size, self.base + file_done, self.total))

    def _failure_message(self, reasons: list[tuple[str, _MirrorError]]) -> str:
        name = self.spec.name
        if reasons and all(r.checksum for _, r in reasons):
            url, r = reasons[-1]
            return (f"{name} downloaded from {url} is not the expected file: {r.reason}. "
                    "It was deleted. Try again later (a mirror may hold a damaged copy), or "
                    + OPEN_YOURSELF)
        parts = [f"from {url}: {r.reason}" for url, r in reasons]
        return (f"could not download {self.title} ({name}) " + "; nor ".join(parts)
                + "; check your connection, or " + OPEN_YOURSELF)
