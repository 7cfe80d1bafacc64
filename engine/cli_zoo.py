"""``netbuilder new NAME``: start a model from a template of the zoo (``engine.zoo``).

Writes ``NAME.json`` (the model file) in the current folder, or with ``--bundle``
``NAME.nbmodel`` (the model with freshly initialised weights); ``-o`` picks another path.
Without NAME it lists the templates and what was measured for each.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, TextIO

from .errors import GraphFormatError
from .zoo import TEMPLATES


def add_parser(sub: Any) -> None:
    """The ``new`` subcommand on ``netbuilder``'s subparsers."""
    n = sub.add_parser("new", help="start a model from a template (without NAME: list them)")
    n.add_argument("name", metavar="NAME", nargs="?", help=", ".join(TEMPLATES))
    n.add_argument("-o", "--output", metavar="PATH",
                   help="where to write it (default: ./NAME.json, or ./NAME.nbmodel)")
    n.add_argument("--bundle", action="store_true",
                   help="write a .nbmodel bundle with freshly initialised weights")
    n.add_argument("--seed", type=int, default=0, metavar="N", help="seed of those weights")
    n.add_argument("--force", action="store_true", help="replace an existing file")


def cmd_new(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    if not args.name:
        for t in TEMPLATES.values():
            print(f"{t.name:20s} {t.title}: {t.summary}", file=out)
            if t.expected():
                print(f"{'':20s} measured: {t.expected()}", file=out)
        return 0
    t = TEMPLATES.get(args.name)
    if t is None:
        raise GraphFormatError(f"no template named {args.name!r} (templates: "
                               f"{', '.join(TEMPLATES)})")
    path = Path(args.output) if args.output else Path(
        f"{t.name}.{'nbmodel' if args.bundle else 'json'}")
    if path.exists() and not args.force:
        raise GraphFormatError(f"{path} already exists: choose another name with -o, or "
                               "--force to replace it")
    g = t.graph()
    if args.bundle or path.suffix == ".nbmodel":
        from .bundle import save_bundle
        from .network import compile
        save_bundle(path, compile(g, seed=args.seed))
    else:
        from .graph import save_graph
        save_graph(g, path)
    print(f"wrote {path}: {t.title}, {len(g.nodes)} nodes" +
          (f" ({len(g.flatten().nodes)} layers with the blocks opened)" if g.has_blocks()
           else ""), file=out)
    if t.expected():
        print(f"measured: {t.expected()}", file=out)
    print(f"train it: netbuilder train {path}   open it: netbuilder {path}", file=out)
    return 0
