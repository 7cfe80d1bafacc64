"""The Data panel's download area for a dataset downloaded on first use: a progress bar (bytes
done of total, MB/s, time left), the address being read, Cancel; after a cancel or a failure
the reason (the engine's message), Retry / Resume, and "Open files I already have…".

The widget only shows what it is told (``start``, ``progress``, ``cancelled``, ``failed``,
``adding``, ``incomplete``); the Data panel runs the download on a worker thread and feeds
it. ``RateMeter`` (Qt-free) turns progress reports into a speed and a time left."""

from __future__ import annotations

import math
import re
import time
from collections import deque
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFontMetrics, QResizeEvent
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from engine.graph import fmt_bytes

if TYPE_CHECKING:
    from engine.data.catalogue import RemoteDataset
    from engine.data.remote import CacheState, DownloadProgress

RATE_WINDOW_S = 3.0   # the speed shown is the average over the last few seconds
BAR_STEPS = 1000
OPEN_FILES_TEXT = "Open files I already have…"
ERROR_STYLE = ("color: #B3261E; background: #FDECEA; border: 1px solid #F4C7C3; "
               "border-radius: 5px; padding: 6px;")


ZWSP = "\u200b"
LONG_RUN = re.compile(r"[^\s/]{24,}")


def breakable(text: str) -> str:
    """``text`` with zero-width spaces after each '/' and every 16 characters of a long
    word (a SHA-256), so that a message wraps in a narrow panel instead of widening it."""
    text = text.replace("/", "/" + ZWSP)
    return LONG_RUN.sub(lambda m: ZWSP.join(m[0][i:i + 16] for i in range(0, len(m[0]), 16)),
                        text)


def fmt_rate(bytes_per_s: float) -> str:
    """'2.3 MB/s', '340.0 KB/s'."""
    return f"{fmt_bytes(bytes_per_s)}/s"


def fmt_left(seconds: float) -> str:
    """'8 s left', '3 min 20 s left', '1 h 5 min left'; '' when unknown."""
    if not math.isfinite(seconds) or seconds < 0:
        return ""
    s = round(seconds)
    if s < 60:
        return f"{s} s left"
    m, s = divmod(s, 60)
    if m < 60:
        return f"{m} min {s} s left" if m < 10 and s else f"{m} min left"
    h, m = divmod(m, 60)
    return f"{h} h {m} min left"


class RateMeter:
    """Download speed over the last RATE_WINDOW_S seconds of reports, and the time left.
    Bytes already there when the download (re)started do not count as speed."""

    def __init__(self) -> None:
        self.samples: deque[tuple[float, int]] = deque()

    def reset(self) -> None:
        self.samples.clear()

    def add(self, done: int, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        self.samples.append((now, done))
        while len(self.samples) > 2 and now - self.samples[1][0] >= RATE_WINDOW_S:
            self.samples.popleft()

    @property
    def rate(self) -> float:
        """Bytes per second; 0 until two reports a little apart have arrived."""
        if len(self.samples) < 2:
            return 0.0
        (t0, d0), (t1, d1) = self.samples[0], self.samples[-1]
        return (d1 - d0) / (t1 - t0) if t1 - t0 >= 0.2 else 0.0

    def seconds_left(self, remaining: int) -> float:
        r = self.rate
        return remaining / r if r > 0 else math.inf


class _ElidedLabel(QLabel):
    """One line of text cut in the middle to the label's width; the whole text in the
    tooltip (a long address must not widen the panel)."""

    def __init__(self) -> None:
        super().__init__()
        self.full = ""
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

    def set_full_text(self, text: str) -> None:
        self.full = text
        self.setToolTip(text)
        self._elide()

    def resizeEvent(self, e: QResizeEvent) -> None:
        super().resizeEvent(e)
        self._elide()

    def _elide(self) -> None:
        self.setText(QFontMetrics(self.font()).elidedText(
            self.full, Qt.TextElideMode.ElideMiddle, max(40, self.width())))


class DownloadBox(QFrame):
    """What a download is doing and what the user can do about it. ``state``: "" (hidden),
    "downloading", "cancelling", "cancelled", "failed", "adding" or "incomplete"."""

    cancel_requested = Signal()
    retry_requested = Signal()
    open_files_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("downloadBox")
        self.setStyleSheet("QFrame#downloadBox { background: #F3F6FB; border: 1px solid "
                           "#D5DDEA; border-radius: 6px; }")
        self.state = ""
        self.message_text = ""
        self.meter = RateMeter()
        self.entry: RemoteDataset | None = None
        lay = QVBoxLayout(self)
        lay.setContentsMargins(8, 7, 8, 8)
        lay.setSpacing(5)
        self.title = QLabel()
        self.title.setObjectName("downloadTitle")
        self.title.setWordWrap(True)
        self.title.setStyleSheet("font-weight: bold; color: #1F2630;")
        lay.addWidget(self.title)
        self.bar = QProgressBar()
        self.bar.setObjectName("downloadBar")
        self.bar.setRange(0, BAR_STEPS)
        self.bar.setTextVisible(True)
        lay.addWidget(self.bar)
        self.detail = QLabel()
        self.detail.setObjectName("downloadDetail")
        self.detail.setWordWrap(True)
        self.detail.setStyleSheet("color: #3C4350;")
        lay.addWidget(self.detail)
        self.source = _ElidedLabel()
        self.source.setObjectName("downloadSource")
        self.source.setStyleSheet("color: #5E6673; font-size: 8pt;")
        lay.addWidget(self.source)
        self.message = QLabel()
        self.message.setObjectName("downloadMessage")
        self.message.setWordWrap(True)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.message.setStyleSheet(ERROR_STYLE)
        lay.addWidget(self.message)
        row = QHBoxLayout()
        row.setSpacing(6)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setObjectName("downloadCancel")
        self.cancel_button.setToolTip("Stop the download; what has arrived is kept, and "
                                      "choosing the dataset again continues from there")
        self.retry_button = QPushButton("Retry")
        self.retry_button.setObjectName("downloadRetry")
        self.open_files_button = QPushButton(OPEN_FILES_TEXT)
        self.open_files_button.setObjectName("openDatasetFiles")
        row.addWidget(self.cancel_button)
        row.addWidget(self.retry_button)
        row.addStretch(1)
        row.addWidget(self.open_files_button)
        lay.addLayout(row)
        self.cancel_button.clicked.connect(self.cancel_requested)
        self.retry_button.clicked.connect(self.retry_requested)
        self.open_files_button.clicked.connect(self.open_files_requested)
        self.hide()

    # ----- states ----------------------------------------------------------------------------
    def _show(self, state: str, *, bar: bool, cancel: bool, retry: str = "",
              message: str = "", source: bool = False) -> None:
        self.state = state
        self.bar.setVisible(bar)
        self.detail.setVisible(bar)
        self.source.setVisible(source)
        self.cancel_button.setVisible(cancel)
        self.cancel_button.setEnabled(cancel)
        self.retry_button.setVisible(bool(retry))
        self.retry_button.setText(retry)
        self.open_files_button.setVisible(state != "adding")
        self.message_text = message  # as the engine wrote it (the label's can wrap)
        self.message.setVisible(bool(message))
        self.message.setText(breakable(message))
        self.show()

    def clear(self) -> None:
        self.state = ""
        self.entry = None
        self.hide()

    def start(self, entry: RemoteDataset, have: int) -> None:
        """A download of ``entry`` begins, ``have`` bytes of it already here."""
        self.entry = entry
        self.meter.reset()
        self._show("downloading", bar=True, cancel=True, source=True)
        self.title.setText(f"Downloading {entry.title} · {fmt_bytes(entry.size)}")
        self.open_files_button.setToolTip(self._open_tip(entry))
        self._set_bar(have, entry.size)
        self.detail.setText("connecting…" if not have else
                            f"continuing from {fmt_bytes(have)}, connecting…")
        first = next(iter(entry.files))
        self.source.set_full_text(f"from {first.urls[0]}")

    def progress(self, p: DownloadProgress) -> None:
        if self.entry is None or self.state not in ("downloading", "cancelling"):
            return
        self.meter.add(p.done)
        self._set_bar(p.done, p.total)
        if p.done >= p.total:
            self.title.setText(f"Checking and reading {self.entry.title}…")
            self.cancel_button.setEnabled(False)
            self.detail.setText("downloaded; checking the SHA-256 and reading the files")
        else:
            parts = [fmt_rate(self.meter.rate) if self.meter.rate else "",
                     fmt_left(self.meter.seconds_left(p.total - p.done)), p.file]
            self.detail.setText(" · ".join(x for x in parts if x))
        self.source.set_full_text(f"from {p.url}")

    def cancelling(self) -> None:
        self.state = "cancelling"
        self.cancel_button.setEnabled(False)
        self.title.setText("Cancelling…")

    def cancelled(self, st: CacheState) -> None:
        entry = self._entry(st.name)
        self._show("cancelled", bar=True, cancel=False, retry="Resume download")
        self.title.setText(f"Download of {entry.title} cancelled")
        self._set_bar(st.have_bytes, st.total_bytes)
        self.detail.setText(
            f"{fmt_bytes(st.have_bytes)} of {fmt_bytes(st.total_bytes)} kept: Resume "
            f"continues from there (so does choosing {entry.title} again)" if st.have_bytes
            else "Nothing was kept; Resume starts again")
        self.retry_button.setToolTip("Download the rest")

    def failed(self, name: str, message: str, title: str = "", retry: str = "Retry") -> None:
        entry = self._entry(name)
        self._show("failed", bar=False, cancel=False, retry=retry, message=message)
        self.title.setText(title or f"{entry.title} could not be downloaded")
        self.retry_button.setToolTip("Try the download again (what arrived is kept)")

    def adding(self, name: str, n_files: int) -> None:
        entry = self._entry(name)
        self._show("adding", bar=True, cancel=False)
        self.title.setText(f"Checking your files against {entry.title}'s checksums…")
        self.bar.setRange(0, 0)  # busy: hashing has no progress report
        self.detail.setText(f"{n_files} file{'s' if n_files != 1 else ''}")

    def incomplete(self, st: CacheState, note: str = "") -> None:
        """Some files are here (added by the user), others are missing."""
        entry = self._entry(st.name)
        self._show("incomplete", bar=True, cancel=False, retry="Download the rest",
                   message=note)
        self.message.setStyleSheet(ERROR_STYLE.replace("#B3261E", "#8A5A00").replace(
            "#FDECEA", "#FFF4E0").replace("#F4C7C3", "#F1D9A7"))
        self.title.setText(f"{entry.title} is not complete yet")
        self._set_bar(st.have_bytes, st.total_bytes)
        self.detail.setText("still missing: " + ", ".join(st.missing))

    # ----- helpers ---------------------------------------------------------------------------
    def _entry(self, name: str) -> RemoteDataset:
        from engine.data import CATALOGUE
        self.entry = CATALOGUE[name]
        self.message.setStyleSheet(ERROR_STYLE)
        self.bar.setRange(0, BAR_STEPS)
        self.open_files_button.setToolTip(self._open_tip(self.entry))
        return self.entry

    @staticmethod
    def _open_tip(entry: RemoteDataset) -> str:
        names = ", ".join(f.name for f in entry.files)
        return (f"Use {entry.title} files downloaded elsewhere ({names}): they are checked "
                "against the published SHA-256 and copied into NetBuilder's data folder")

    def _set_bar(self, done: int, total: int) -> None:
        if self.bar.maximum() == 0:
            self.bar.setRange(0, BAR_STEPS)
        self.bar.setValue(round(BAR_STEPS * done / total) if total else BAR_STEPS)
        self.bar.setFormat(f"{fmt_bytes(done)} of {fmt_bytes(total)}")
