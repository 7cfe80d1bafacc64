"""The ``netbuilder`` command: a subcommand (train, info, gradcheck, …) runs the Qt-free
``engine.cli``; nothing, or a file to open, starts the application (``netbuilder.app``)."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

OPEN_SUFFIXES = (".json", ".nbmodel")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the exit code."""
    from engine import cli as engine_cli

    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] == "--version":
        from . import __version__
        print(f"netbuilder {__version__}")
        return 0
    if args and (args[0] in engine_cli.command_names() or args[0] in ("-h", "--help")):
        return engine_cli.main(args)
    if args and not args[0].startswith("-") and not Path(args[0]).exists() \
            and not args[0].lower().endswith(OPEN_SUFFIXES):
        names = ", ".join(engine_cli.command_names())
        print(f"netbuilder: error: unknown command or missing file {args[0]!r} (commands: "
              f"{names}; or give a model file to open)", file=sys.stderr)
        return 2
    try:
        from netbuilder.app import main as app_main
    except ImportError as exc:
        print(f"netbuilder: error: the application cannot start: {exc}", file=sys.stderr)
        return 2
    return int(app_main(args) or 0)
