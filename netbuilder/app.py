"""Application entry: ``netbuilder`` opens the LeNet-5 example, ``netbuilder FILE`` that file."""

from __future__ import annotations

import argparse
import contextlib
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from PySide6.QtGui import QFont
from PySide6.QtWidgets import QApplication, QMessageBox, QWidget

from engine.errors import NetBuilderError

from . import settings
from .mainwindow import EXAMPLES_DIR, ROOT, MainWindow

STYLE_FILE = ROOT / "resources" / "style.qss"
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
    p.add_argument("file", nargs="?", help="model file to open (default: the LeNet-5 example)")
    return p.parse_args(argv)


def build_window(argv: list[str] | None = None) -> MainWindow:
    """Create the application (if needed) and the main window with the file to show."""
    args = parse_args(list(sys.argv[1:] if argv is None else argv))
    app = QApplication.instance() or QApplication([sys.argv[0] if sys.argv else "netbuilder"])
    app.setOrganizationName(settings.ORGANIZATION)
    app.setApplicationName(settings.APPLICATION)
    apply_style(app)
    window = MainWindow()
    install_excepthook(window)
    window.show()
    if not window.check_recovery():
        if args.file:
            window.open_file(Path(args.file))
        elif DEFAULT_EXAMPLE.is_file():
            window.open_example(DEFAULT_EXAMPLE)
    window.training.prep.start()
    return window


def main(argv: list[str] | None = None) -> int:
    """Run the GUI; returns the exit code."""
    window = build_window(argv)
    app = QApplication.instance()
    assert app is not None
    code = app.exec()
    del window
    return int(code)


if __name__ == "__main__":
    sys.exit(main())
