"""How far a first kernel compile has come, in kernels: which kernels the cache already holds,
which ones a given model calls, and how long the rest should take at the rate measured so
far. Used to show a compile's progress truthfully (``engine.warmup`` does the compiling).

A kernel is one Numba function of ``engine.kernels`` (``"engine.kernels.conv.conv_forward"``);
it counts as done once the cache holds it (its index file exists), whichever process
compiled it. No Qt here.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import pkgutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TRACE_TIMEOUT = 60.0  # s: a model whose plain-Python step takes longer gets no kernel list


def kernel_dispatchers() -> dict[str, Any]:
    """Every Numba function of ``engine.kernels``, by ``module.name`` (the name it is bound
    to: one Python function may be compiled twice, e.g. a serial and a parallel loss)."""
    from numba.core.registry import CPUDispatcher

    from . import kernels

    found: dict[str, Any] = {}
    for info in pkgutil.iter_modules(kernels.__path__):
        mod = importlib.import_module(f"{kernels.__name__}.{info.name}")
        for name, obj in vars(mod).items():
            if isinstance(obj, CPUDispatcher) and obj.__module__ == mod.__name__:
                found[f"{mod.__name__}.{name}"] = obj
    return found


def _by_python_name(dispatchers: dict[str, Any]) -> dict[str, set[str]]:
    """``module.qualname`` of each compiled Python function -> the kernels compiled from it."""
    out: dict[str, set[str]] = {}
    for name, d in dispatchers.items():
        out.setdefault(f"{d.py_func.__module__}.{d.py_func.__qualname__}", set()).add(name)
    return out


def _index_path(dispatcher: Any) -> Path | None:
    """The kernel's cache index file in the cache that compile children use now
    (``NUMBA_CACHE_DIR`` in the environment, which they inherit)."""
    import numba

    cache = getattr(dispatcher, "_cache", None)
    path = getattr(getattr(cache, "_cache_file", None), "_index_path", None)
    if not path:
        return None
    path = Path(path)
    ours, theirs = numba.config.CACHE_DIR, os.environ.get("NUMBA_CACHE_DIR")
    if ours and theirs and Path(ours) != Path(theirs):
        with contextlib.suppress(ValueError):  # a cache outside Numba's folder stays as is
            path = Path(theirs) / path.relative_to(ours)
    return path


def cached_kernels(dispatchers: dict[str, Any] | None = None) -> set[str]:
    """Names of the kernels the cache holds (compiled by this or any other process)."""
    dispatchers = kernel_dispatchers() if dispatchers is None else dispatchers
    done = set()
    for name, d in dispatchers.items():
        path = _index_path(d)
        if path is not None and path.exists():
            done.add(name)
    return done


def model_kernels(doc: dict[str, Any], timeout: float = TRACE_TIMEOUT) -> set[str] | None:
    """Names of the kernels that the warm-up of the model ``doc`` (``warmup.model_tasks``)
    compiles: those called from plain Python code (what they call in turn is compiled with
    them). Found by running its 2-sample step as plain Python (``NUMBA_DISABLE_JIT=1``) in a
    child process, which compiles nothing; None when that fails or takes longer than
    ``timeout`` seconds."""
    env = dict(os.environ, NUMBA_DISABLE_JIT="1")
    root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    try:
        proc = subprocess.run([sys.executable, "-m", "engine.kernel_progress"],
                              input=json.dumps(doc), capture_output=True, text=True,
                              timeout=timeout, env=env, check=False)
        calls = json.loads(proc.stdout.strip().splitlines()[-1]) if proc.returncode == 0 \
            else None
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        return None
    if not isinstance(calls, dict):
        return None
    return compiled_from_python(calls.get("roots", []), calls.get("calls", []),
                                _by_python_name(kernel_dispatchers()))


def compiled_from_python(roots: list[str], calls: list[list[str]],
                         jitted: dict[str, set[str]]) -> set[str]:
    """The kernels compiled from the functions reached from ``roots`` (kernel-module functions
    called from outside) through plain-Python functions only; ``calls`` are (caller, callee)
    pairs, ``jitted`` maps a compiled function's ``module.qualname`` to its kernels."""
    callees: dict[str, set[str]] = {}
    for caller, callee in calls:
        callees.setdefault(caller, set()).add(callee)
    needed: set[str] = set()
    seen: set[str] = set()
    todo = list(roots)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        if name in jitted:
            needed |= jitted[name]  # compiled whole, with everything it calls
        else:
            todo.extend(callees.get(name, ()))
    return needed


def _trace(doc: dict[str, Any]) -> dict[str, list]:
    """(In a process with the JIT off.) The kernel-module functions the light warm-up of
    ``doc`` calls from outside ``engine.kernels`` (roots) and the calls among them."""
    from .warmup import model_tasks

    kernels_dir = str(Path(__file__).resolve().parent / "kernels") + os.sep
    roots: set[str] = set()
    calls: set[tuple[str, str]] = set()

    def name_of(frame: Any) -> str:
        return f"{frame.f_globals.get('__name__')}.{frame.f_code.co_qualname}"

    def hook(frame: Any, event: str, _arg: Any) -> None:
        if event != "call" or not frame.f_code.co_filename.startswith(kernels_dir):
            return
        caller = frame.f_back
        if caller is not None and caller.f_code.co_filename.startswith(kernels_dir):
            calls.add((name_of(caller), name_of(frame)))
        else:
            roots.add(name_of(frame))

    tasks = model_tasks(doc, light=True)
    sys.setprofile(hook)
    try:
        for _name, fn in tasks:
            fn()
    finally:
        sys.setprofile(None)
    return {"roots": sorted(roots), "calls": sorted(calls)}


@dataclass
class CompileProgress:
    """Kernels done out of ``total`` (names), with a time estimate from the rate measured
    since ``start`` (seconds on ``time.monotonic``)."""

    total: set[str]
    done_at_start: int
    start: float

    @classmethod
    def begin(cls, total: set[str], done: set[str], now: float | None = None) -> CompileProgress:
        return cls(set(total), len(done & total), time.monotonic() if now is None else now)

    def figures(self, done: set[str], now: float | None = None) -> tuple[int, int, float | None]:
        """(kernels done, kernels in all, seconds left or None before a rate is known)."""
        now = time.monotonic() if now is None else now
        n_done = len(done & self.total)
        n_total = len(self.total)
        compiled = n_done - self.done_at_start
        left = n_total - n_done
        if left <= 0:
            return n_done, n_total, 0.0
        if compiled <= 0:
            return n_done, n_total, None
        return n_done, n_total, (now - self.start) / compiled * left


def fmt_left(seconds: float | None) -> str:
    """``about 1:20 left`` / ``about 40 s left`` / ``time left not known yet``."""
    if seconds is None:
        return "time left not known yet"
    s = max(1, round(seconds))
    return f"about {s // 60}:{s % 60:02d} left" if s >= 60 else f"about {s} s left"


def main() -> int:
    """``python -m engine.kernel_progress`` with a model document on stdin (run with
    ``NUMBA_DISABLE_JIT=1``): prints the JSON list of kernels its warm-up calls."""
    doc = json.loads(sys.stdin.read())
    print(json.dumps(_trace(doc)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
