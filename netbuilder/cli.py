"""The ``netbuilder`` command: a subcommand (train, info, gradcheck, …) runs the Qt-free
``engine.cli``; nothing, a file or the name of a shipped example starts the application
(``netbuilder.app``) on it."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from engine.errors import NetBuilderError

OPEN_SUFFIXES = (".json", ".nbmodel", ".onnx")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the exit code."""
    from engine import cli as engine_cli
    from engine.resources import UnknownModelError, example_names, resolve_model

    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] == "--version":
        from . import __version__
        print(f"netbuilder {__version__}")
        return 0
    if args and (args[0] in engine_cli.command_names() or args[0] in ("-h", "--help")):
        return engine_cli.main(args)
    if args and not args[0].startswith("-"):
        commands = ", ".join(engine_cli.command_names())
        try:
            path, _example = resolve_model(args[0])
        except UnknownModelError:
            print(f"netbuilder: error: unknown command, file or example {args[0]!r} (commands: "
                  f"{commands}; examples: {', '.join(example_names())})", file=sys.stderr)
            return 2
        except NetBuilderError as exc:
            print(f"netbuilder: error: {exc.message}", file=sys.stderr)
            return 2
        if not path.exists() and not path.name.lower().endswith(OPEN_SUFFIXES):
            print(f"netbuilder: error: unknown command or missing file {args[0]!r} (commands: "
                  f"{commands}; or give a model file or example name to open)", file=sys.stderr)
            return 2
    try:
        from netbuilder.app import main as app_main
    except ImportError as exc:
        print(f"netbuilder: error: the application cannot start: {exc}", file=sys.stderr)
        return 2
    except NetBuilderError as exc:
        print(f"netbuilder: error: {exc.message}", file=sys.stderr)
        return 2
    return int(app_main(args) or 0)
