"""Compiling the engine's kernels in the background at start-up, on a computer whose kernel
cache is empty, so that the first Start waits for little or nothing: a thread runs the
compile (in a child process, the open model's kernels first) while the user builds, and a
small bar in the status bar counts the kernels done and the time left."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, QThread, Signal
from PySide6.QtWidgets import QProgressBar

import engine
from engine.kernel_progress import fmt_left

from ..session import kernel_service
from ..session.kernel_service import CompileFigures

TOOLTIP = ("Compiling NetBuilder's kernels: kernels done of all, and the time left at the rate "
           "so far. The first start on this computer compiles them, the open model's first; "
           "they are cached for later starts. You can build meanwhile, and a run waits only "
           "for the kernels its model needs.")


class KernelPrep(QThread):
    """Compiles every kernel once (``KernelService.compile_everything``) with ``first`` (a
    model document) first; ``cancel()`` kills a running compile."""

    progress = Signal(int, int, float)  # kernels done, kernels in all, seconds left (-1: ?)

    def __init__(self, first: dict[str, Any] | None = None, parent: Any = None) -> None:
        super().__init__(parent)
        self.first = first
        self._cancel = False
        self.error = ""

    def cancel(self) -> None:
        self._cancel = True

    def run(self) -> None:
        svc = kernel_service.service()

        def report(f: CompileFigures) -> None:
            self.progress.emit(f.done, f.total, -1.0 if f.seconds_left is None
                               else f.seconds_left)
        try:
            svc.compile_everything(self.first, report, lambda: self._cancel)
        except engine.WarmupCancelledError:
            pass
        except Exception as exc:  # a run then compiles what it needs and reports the problem
            self.error = f"{type(exc).__name__}: {exc}"
        self.error = self.error or svc.error


def prep_text(done: int, total: int, seconds_left: float | None) -> str:
    """The bar's text (short: the status bar is narrow): kernels compiled of all, and the
    time left at the rate so far; the tooltip says what is compiling."""
    left = "time left ?" if seconds_left is None else fmt_left(seconds_left)
    return f"kernels {done}/{total} · {left}"


def prep_bar() -> QProgressBar:
    bar = QProgressBar()
    bar.setObjectName("kernelPrepBar")
    bar.setMinimumWidth(250)
    bar.setMaximumWidth(300)
    bar.setTextVisible(True)
    bar.setFormat("compiling kernels…")
    bar.setAlignment(Qt.AlignmentFlag.AlignCenter)
    bar.setToolTip(TOOLTIP)
    bar.hide()
    return bar


class KernelPrepStatus:
    """Owns the start-up compile and its bar in ``window``'s status bar."""

    def __init__(self, window: Any) -> None:
        self.w = window
        self.thread: KernelPrep | None = None
        self.bar = prep_bar()
        self.follow: Any = None  # also told (done, total, seconds left or None)
        self.last: tuple[int, int, float | None] | None = None
        window.statusBar().addPermanentWidget(self.bar)

    @property
    def running(self) -> bool:
        return self.thread is not None and self.thread.isRunning()

    def start(self, first: dict[str, Any] | None = None) -> bool:
        """Begin compiling (``first``: a model document whose kernels come first; default:
        the open model) if this computer has no complete kernel cache; True if it began."""
        if self.thread is not None or kernel_service.service().all_ready():
            return False
        if first is None:
            first = self.w.document.graph.to_dict()
        t = KernelPrep(first, self.w)
        t.progress.connect(self._on_progress)
        t.finished.connect(self._on_finished)
        self.thread = t
        self.bar.setRange(0, 0)
        self.bar.show()
        t.start(QThread.Priority.LowPriority)
        return True

    def _on_progress(self, done: int, total: int, seconds_left: float) -> None:
        left = None if seconds_left < 0 else seconds_left
        self.last = (done, total, left)
        self.bar.setRange(0, max(total, 0))
        self.bar.setValue(done)
        self.bar.setFormat(prep_text(done, total, left))
        if self.follow is not None:
            self.follow(done, total, left)

    def _on_finished(self) -> None:
        self.bar.hide()
        t = self.thread
        if t is not None and t.error:
            self.w.show_status(f"Kernel compile failed ({t.error}); Start will compile what "
                               "the model needs", True)

    def shutdown(self) -> None:
        """Kill a running compile and wait for its thread (closing the window)."""
        t = self.thread
        if t is not None:
            t.cancel()
            t.wait()
