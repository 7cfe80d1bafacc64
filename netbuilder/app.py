"""Application entry: ``netbuilder`` opens the LeNet-5 example, ``netbuilder FILE`` that file,
``netbuilder NAME`` the shipped example of that name (a file of that name wins)."""

from __future__ import annotations

import argparse
import contextlib
import sys
import traceback
from collections.abc import Callable
from types import TracebackType

from PySide6.QtCore import QTimer
from PySide6.QtGui import QFont
from PySide6.QtWidgets import QApplication, QMessageBox, QWidget

from engine.errors import NetBuilderError
from engine.resources import resolve_model, style_path

from . import settings
from .mainwindow import EXAMPLES_DIR, MainWindow
from .syslibs import check_xcb_libraries

STYLE_FILE = style_path()
DEFAULT_EXAMPLE = EXAMPLES_DIR / "lenet5.json"


def apply_style(app: QApplication) -> None:
    """Fusion + NetBuilder's light stylesheet (resources/style.qss) + DejaVu Sans 9 pt."""
    app.setStyle("Fusion")
    f = QFont("DejaVu Sans")
    f.setPointSizeF(9.0)
    app.setFont(f)
    with contextlib.suppress(OSError):
        app.setStyleSheet(STYLE_FILE.read_text(encoding="utf-8"))


def install_excepthook(parent: QWidget | None = None,
                       show: Callable[[str, str, str], None] | None = None) -> None:
    """Unexpected errors become a message box (details hidden behind a button), never a bare
    traceback; NetBuilderErrors show just their message."""

    def _show(title: str, text: str, details: str) -> None:
        box = QMessageBox(parent)
        box.setIcon(QMessageBox.Icon.Critical)
        box.setWindowTitle(title)
        box.setText(text)
        if details:
            box.setDetailedText(details)
        box.exec()

    shower = show or _show

    def hook(etype: type[BaseException], value: BaseException, tb: TracebackType | None) -> None:
        if issubclass(etype, KeyboardInterrupt):
            sys.__excepthook__(etype, value, tb)
            return
        details = "".join(traceback.format_exception(etype, value, tb))
        sys.stderr.write(details)
        if isinstance(value, NetBuilderError):
            shower("NetBuilder", value.message, "")
        else:
            shower("Unexpected error",
                   f"Something went wrong: {etype.__name__}: {value}\n\n"
                   "Your model is still open; save it under a new name to be safe.", details)

    sys.excepthook = hook


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="netbuilder",
                                description="Design, train and watch neural networks.")
    p.add_argument("file", nargs="?", help="model file or bundle to open, or the name of a "
                   "shipped example (default: the LeNet-5 example)")
    p.add_argument("--quit-after", type=float, metavar="SECONDS",
                   help="smoke test: open the window, quit after SECONDS; the exit status is "
                        "1 if an error was shown meanwhile (printed on stderr, no dialogs)")
    return p.parse_args(argv)


class SmokeTest:
    """``--quit-after``: every error goes to stderr instead of a dialog, nothing is asked,
    and the application quits after ``seconds`` with status 1 if an error was reported."""

    def __init__(self, window: MainWindow, seconds: float) -> None:
        self.errors: list[str] = []
        window.show_error = self.report
        window.ask_save_changes = lambda: "discard"
        install_excepthook(window, show=lambda title, text, _details: self.report(title, text))
        QTimer.singleShot(int(seconds * 1000), self.finish)
        self.window = window

    def report(self, title: str, text: str) -> None:
        self.errors.append(f"{title}: {text}")
        print(f"netbuilder: error: {title}: {' '.join(text.split())}", file=sys.stderr,
              flush=True)

    def finish(self) -> None:
        self.window.close()
        QApplication.exit(1 if self.errors else 0)


def build_window(argv: list[str] | None = None) -> MainWindow:
    """Create the application (if needed) and the main window with the file to show."""
    args = parse_args(list(sys.argv[1:] if argv is None else argv))
    app = QApplication.instance()
    if app is None:
        check_xcb_libraries()  # one line with the apt-get command before Qt aborts
        app = QApplication([sys.argv[0] if sys.argv else "netbuilder"])
    app.setOrganizationName(settings.ORGANIZATION)
    app.setApplicationName(settings.APPLICATION)
    apply_style(app)
    window = MainWindow()
    install_excepthook(window)
    smoke = SmokeTest(window, args.quit_after) if args.quit_after is not None else None
    window.smoke_test = smoke
    window.show()
    if smoke is not None or not window.check_recovery():
        if args.file:
            path, is_example = resolve_model(args.file)
            (window.open_example if is_example else window.open_file)(path)
        elif DEFAULT_EXAMPLE.is_file():
            window.open_example(DEFAULT_EXAMPLE)
    window.training.prep.start()
    return window


def main(argv: list[str] | None = None) -> int:
    """Run the GUI; returns the exit code."""
    try:
        window = build_window(argv)
    except NetBuilderError as exc:
        print(f"netbuilder: error: {exc.message}", file=sys.stderr)
        return 2
    app = QApplication.instance()
    assert app is not None
    code = app.exec()
    del window
    return int(code)


if __name__ == "__main__":
    sys.exit(main())
