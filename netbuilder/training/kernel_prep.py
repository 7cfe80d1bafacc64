"""Compiling the engine's kernels in the background at start-up, on a computer whose kernel
cache is empty, so that the first Train does not wait a minute: a thread runs the compile
(in a child process) while the user builds, and a small bar in the status bar shows it."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QThread, Signal
from PySide6.QtWidgets import QProgressBar

import engine
from engine.warmup import cache_is_warm

from .worker import warm_up_once


class KernelPrep(QThread):
    """Makes every kernel ready once (``warm_up_once``); ``cancel()`` kills a running compile."""

    progress = Signal(int, int, bool)  # task done, tasks in all, compiling (not just loading)

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._cancel = False
        self.error = ""

    def cancel(self) -> None:
        self._cancel = True

    def run(self) -> None:
        try:
            warm_up_once(lambda i, n, _name, comp: self.progress.emit(i, n, comp),
                         lambda: self._cancel)
        except engine.WarmupCancelledError:
            pass
        except Exception as exc:  # the first Train compiles again and reports the problem
            self.error = f"{type(exc).__name__}: {exc}"


def prep_bar() -> QProgressBar:
    bar = QProgressBar()
    bar.setObjectName("kernelPrepBar")
    bar.setMinimumWidth(190)
    bar.setMaximumWidth(240)
    bar.setTextVisible(True)
    bar.setFormat("compiling kernels %v/%m")
    bar.setToolTip("The first start on this computer compiles NetBuilder's kernels (about a "
                   "minute); they are cached for later starts. You can build meanwhile.")
    bar.hide()
    return bar


class KernelPrepStatus:
    """Owns the start-up compile and its bar in ``window``'s status bar."""

    def __init__(self, window: Any) -> None:
        self.w = window
        self.thread: KernelPrep | None = None
        self.bar = prep_bar()
        self.follow: Any = None  # also told (done, total, compiling), e.g. by a waiting run
        self.last: tuple[int, int, bool] | None = None
        window.statusBar().addPermanentWidget(self.bar)

    @property
    def running(self) -> bool:
        return self.thread is not None and self.thread.isRunning()

    def start(self) -> bool:
        """Begin compiling if this computer has no cached kernels; True if it began."""
        if self.thread is not None or cache_is_warm():
            return False
        t = KernelPrep(self.w)
        t.progress.connect(self._on_progress)
        t.finished.connect(self._on_finished)
        self.thread = t
        self.bar.setRange(0, 0)
        self.bar.show()
        t.start(QThread.Priority.LowPriority)
        return True

    def _on_progress(self, done: int, total: int, compiling: bool) -> None:
        self.last = (done, total, compiling)
        self.bar.setRange(0, total)
        self.bar.setValue(done)
        self.bar.setFormat("compiling kernels %v/%m" if compiling else "loading kernels %v/%m")
        if self.follow is not None:
            self.follow(done, total, compiling)

    def _on_finished(self) -> None:
        self.bar.hide()
        t = self.thread
        if t is not None and t.error:
            self.w.show_status(f"Kernel compile failed ({t.error}); Train will try again", True)

    def shutdown(self) -> None:
        """Kill a running compile and wait for its thread (closing the window)."""
        t = self.thread
        if t is not None:
            t.cancel()
            t.wait()
