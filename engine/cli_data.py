"""``netbuilder datasets``: the downloadable datasets, their cache state, fetch ahead, remove,
and add files the user already has; plus the download bar ``train``/``export`` show when
``--data`` names a dataset that is not cached yet.

    netbuilder datasets [list]              # every dataset, its size and whether it is cached
    netbuilder datasets fetch NAME...|all   # download now (resumes a partial download)
    netbuilder datasets add NAME PATH...    # copy files you already have (checked) into the cache
    netbuilder datasets remove NAME...|all  # delete from the cache
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TextIO

from .data import BUILTINS, CATALOGUE
from .errors import ParamError
from .text import fmt_time

if TYPE_CHECKING:
    from .data.remote import DownloadProgress

# engine.data.remote (urllib, ssl) is imported where it is used: `netbuilder` imports this
# module on every start, and most starts download nothing.

MB = 2**20


def fmt_mb(n: int) -> str:
    return f"{n / MB:,.1f} MB"


class DownloadBar:
    """A one-line ``\\r`` bar on a terminal (at most ~10 updates/s); off a terminal one line
    per finished file; nothing when ``quiet``. Call it with DownloadProgress events."""

    def __init__(self, stream: TextIO | None = None, quiet: bool = False) -> None:
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._last = 0.0
        self._width = 0
        self._start: tuple[float, int] | None = None

    def clear(self) -> None:
        if self._width:
            self.stream.write("\r" + " " * self._width + "\r")
            self._width = 0
            self.stream.flush()

    def __call__(self, p: DownloadProgress) -> None:
        if self.quiet:
            return
        now = time.monotonic()
        if self._start is None:
            self._start = (now, p.done)
        finished = p.file_done == p.file_total
        if not self.tty:
            if finished:
                self.stream.write(f"  {p.file} ({fmt_mb(p.file_total)}) from {p.url}\n")
                self.stream.flush()
            return
        if now - self._last < 0.1 and not finished:
            return
        self._last = now
        t0, d0 = self._start
        rate = (p.done - d0) / max(now - t0, 1e-6)
        eta = (p.total - p.done) / rate if rate > 0 else float("inf")
        filled = int(20 * p.fraction)
        entry = CATALOGUE.get(p.dataset)
        bar = "#" * filled + "." * (20 - filled)
        text = (f"{entry.title if entry else p.dataset} {p.file} [{bar}] {p.done / MB:,.1f}/"
                f"{fmt_mb(p.total)} {rate / MB:,.1f} MB/s ETA {fmt_time(eta)}")
        self.stream.write("\r" + text + " " * max(0, self._width - len(text)))
        self._width = len(text)
        self.stream.flush()


def remote_name(spec: Any) -> str | None:
    """The catalogue name a ``--data`` value or a ``training.dataset`` setting refers to."""
    if isinstance(spec, Mapping):
        spec = spec.get("name")
    return spec if isinstance(spec, str) and spec in CATALOGUE else None


def fetch_with_bar(name: str, err: TextIO, quiet: bool = False) -> None:
    """Download ``name`` if it is not cached, showing the bar on ``err``."""
    from .data.remote import cache_state, fetch_dataset
    state = cache_state(name)
    if state.ready:
        return
    if not quiet:
        left = state.total_bytes - state.have_bytes
        print(f"{state.title} is not in the cache yet: downloading {fmt_mb(left)} into "
              f"{state.folder}", file=err)
        err.flush()
    bar = DownloadBar(err, quiet)
    try:
        fetch_dataset(name, progress=bar)
    except KeyboardInterrupt:
        bar.clear()
        print(f"download of {state.title} interrupted; run the command again to resume it",
              file=err)
        raise
    finally:
        bar.clear()


def prefetch(spec: Any, err: TextIO, quiet: bool = False) -> None:
    """Before ``load_dataset(spec)``: download it with a bar if it is a catalogue dataset."""
    name = remote_name(spec)
    if name is not None:
        fetch_with_bar(name, err, quiet)


def _names(args: argparse.Namespace) -> list[str]:
    names = list(CATALOGUE) if args.names == ["all"] else args.names
    unknown = [n for n in names if n not in CATALOGUE]
    if unknown:
        raise ParamError(f"no downloadable dataset named {', '.join(unknown)}; they are "
                         f"{', '.join(CATALOGUE)} (or 'all')")
    return names


def _state_text(name: str) -> str:
    from .data.remote import cache_state
    s = cache_state(name)
    if s.ready:
        return "downloaded"
    if s.state == "partial":
        return f"partial ({100 * s.have_bytes / s.total_bytes:.0f}%)"
    return "not downloaded"


def cmd_datasets(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from .data.remote import add_local_files, cache_state, data_root, remove_dataset
    action = args.action or "list"
    if action == "list":
        rows = [("name", "dataset", "x", "train/test", "download", "cache")]
        for name, e in CATALOGUE.items():
            rows.append((name, e.title, "×".join(map(str, e.sample_shape)),
                         f"{e.train_samples:,}/{e.test_samples:,}", fmt_mb(e.size),
                         _state_text(name)))
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        for r in rows:
            print("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip(), file=out)
        print(f"cache folder: {data_root()} (set NETBUILDER_DATA_DIR to move it)", file=out)
        print(f"built in, no download: {', '.join(BUILTINS)}", file=out)
        return 0
    if action == "fetch":
        for name in _names(args):
            fetch_with_bar(name, err, args.quiet)
            print(f"{CATALOGUE[name].title}: downloaded, in {cache_state(name).folder}",
                  file=out)
        return 0
    if action == "remove":
        for name in _names(args):
            remove_dataset(name)
            print(f"{CATALOGUE[name].title}: removed from the cache", file=out)
        return 0
    if action == "add":
        name = _names(argparse.Namespace(names=[args.name]))[0]
        s = add_local_files(name, args.paths)
        missing = f"; still missing: {', '.join(s.missing)}" if s.missing else ""
        print(f"{s.title}: {_state_text(name)}{missing}", file=out)
        return 0
    raise ParamError(f"unknown datasets action {action!r}")


def add_parser(sub: Any) -> None:
    """The ``datasets`` subcommand on ``netbuilder``'s subparsers."""
    d = sub.add_parser("datasets", help="datasets downloaded on first use: list, fetch, add, "
                                        "remove")
    acts = d.add_subparsers(dest="action", metavar="ACTION", parser_class=type(d))
    acts.add_parser("list", help="each dataset, its size and whether it is downloaded")
    f = acts.add_parser("fetch", help="download now (a partial download is resumed)")
    f.add_argument("names", nargs="+", metavar="NAME", help=f"{', '.join(CATALOGUE)} or all")
    f.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    a = acts.add_parser("add", help="copy files you already have into the cache (each is "
                                    "checked against the published size and SHA-256)")
    a.add_argument("name", metavar="NAME")
    a.add_argument("paths", nargs="+", metavar="PATH", help="files, or folders holding them")
    r = acts.add_parser("remove", help="delete from the cache")
    r.add_argument("names", nargs="+", metavar="NAME", help=f"{', '.join(CATALOGUE)} or all")
