"""Serial first, parallel once cached: the first training step on an empty cache does not
wait for Numba's parallel lowering.

Compiling a ``prange`` kernel costs several times what the same function costs serially:
Numba's parfor lowering compiles the loop body into a separate gufunc and optimises again
everything it calls (``benchmarks/profile_compile.py`` shows it per function). ``serial_first``
puts a parallel kernel behind a first-call hook (Numba's dispatcher calls
``_compile_for_args`` only for argument types it has no compiled code for, so a kernel that
is ready costs nothing more per call):

- a variant in the cache (a warm start, or compiled in the background since): loaded and run,
  as Numba itself would;
- else the call runs a serial stand-in with the same arguments and results (``fallback``: a
  Python function looping over the kernel's chunks, or by default the kernel's own Python
  function compiled with ``parallel=False`` under a name of its own, so its cache entry
  never mixes with the parallel one's), and the parallel variant is handed to a background
  compile process (``python -m engine.compile_ahead serve``) that writes it into the cache;
  calls after it has finished load it and switch to it, between one call and the next.

The stand-ins run the same chunks in the same order, one after the other, so results match the
parallel kernel's (bit for bit where the kernel's chunks do not depend on the thread count).
Off with ``NETBUILDER_SERIAL_FIRST=0`` (the kernel then compiles in place on its first call,
as before), with the JIT off, and inside ``in_place()`` (``engine.warmup`` compiles the
kernels themselves). ``wait(timeout)`` blocks until the background compiles are done.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
import time
import types as pytypes
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from .jit import jit_disabled
from .signatures import Signature, encode

ENV = "NETBUILDER_SERIAL_FIRST"

_lock = threading.Lock()
_in_place = 0  # depth of in_place() blocks
_generation = 0  # bumped whenever the background process finished a kernel
_helper: _Helper | None = None
_hooked: dict[str, Any] = {}  # module.name -> the dispatchers behind the hook


def enabled() -> bool:
    """Whether a parallel kernel missing from the cache runs serially while it compiles in
    the background (see the module note)."""
    return (_in_place == 0 and os.environ.get(ENV, "1") not in ("0", "")
            and not jit_disabled())


@contextlib.contextmanager
def in_place() -> Iterator[None]:
    """Within this block, kernels compile on their first call as plain Numba kernels do
    (for code whose job is filling the cache)."""
    global _in_place
    with _lock:
        _in_place += 1
    try:
        yield
    finally:
        with _lock:
            _in_place -= 1


class _Helper:
    """The background compile process and the thread that reads its progress."""

    def __init__(self) -> None:
        root = str(Path(__file__).resolve().parent.parent.parent)
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
        # the helper compiles each kernel's parallel variant itself
        env[ENV] = "0"
        self.proc = subprocess.Popen([sys.executable, "-m", "engine.compile_ahead", "serve"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, env=env, text=True)
        self.sent = 0
        self.done = 0
        self.cond = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        global _generation
        assert self.proc.stdout is not None
        for _line in self.proc.stdout:
            with self.cond:
                self.done += 1
                _generation += 1
                self.cond.notify_all()
        with self.cond:  # the helper ended: nothing more will come
            self.done = self.sent
            _generation += 1
            self.cond.notify_all()

    def send(self, line: str, count: int) -> bool:
        """Send ``line`` (``count`` signatures, each answered by one line)."""
        if self.proc.poll() is not None or self.proc.stdin is None:
            return False
        try:
            with self.cond:
                self.proc.stdin.write(line + "\n")
                self.proc.stdin.flush()
                self.sent += count
        except OSError:
            return False
        return True


Prefetch = Callable[[tuple[Any, ...]], list[Signature]]


def _request(disp: Any, argtypes: tuple[Any, ...], prefetch: Prefetch | None) -> bool:
    """Hand the parallel variant of ``disp`` for ``argtypes`` to the background process, after
    what ``prefetch(argtypes)`` says this process will compile next; False when there is no
    background process (the caller then compiles in place)."""
    global _helper
    soon = prefetch(argtypes) if prefetch is not None else []
    later = [(disp.py_func.__module__, disp.py_func.__name__, argtypes)]
    try:
        line = json.dumps([encode(soon), encode(later)])
    except ValueError:  # an argument type with no JSON form
        return False
    with _lock:
        if _helper is None:
            try:
                _helper = _Helper()
            except OSError:
                return False
        helper = _helper
    return helper.send(line, len(soon) + len(later))


def wait(timeout: float | None = None) -> bool:
    """Block until the background process has finished every kernel handed to it (True), or
    ``timeout`` seconds passed (False). The calls after it load those kernels."""
    helper = _helper
    if helper is None:
        return True
    deadline = None if timeout is None else time.monotonic() + timeout
    with helper.cond:
        while helper.done < helper.sent:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return False
            helper.cond.wait(left)
    return True


def _load_cached(disp: Any, argtypes: tuple[Any, ...]) -> Any:
    """The entry point of ``disp`` for ``argtypes`` if compiled here or in the cache (then
    loaded, as ``Dispatcher.compile`` does before compiling), else None."""
    from numba.core.compiler_lock import global_compiler_lock

    with global_compiler_lock:
        existing = disp.overloads.get(argtypes)
        if existing is not None:
            return existing.entry_point
        cres = disp._cache.load_overload(argtypes, disp.targetctx)
        if cres is None:
            return None
        disp._cache_hits[argtypes] += 1
        if not cres.objectmode:
            disp.targetctx.insert_user_function(cres.entry_point, cres.fndesc, [cres.library])
        disp.add_overload(cres)
        return cres.entry_point


def serial_variant(disp: Any) -> Any:
    """The Python function of the kernel ``disp`` compiled with ``parallel=False`` (``prange``
    runs as ``range``), as a function of its own named ``<name>__serial``: Numba's cache index
    keys on the function and the argument types, not on the options, so a serial and a parallel
    kernel of one Python function would share cache entries."""
    from .jit import njit

    f = getattr(disp, "py_func", disp)  # a plain function with the JIT off
    g = pytypes.FunctionType(f.__code__, f.__globals__, f"{f.__name__}__serial",
                             f.__defaults__, f.__closure__)
    g.__qualname__ = f"{f.__qualname__}__serial"
    g.__module__ = f.__module__
    g.__doc__ = f.__doc__
    return njit(parallel=False)(g)


class _Hook:
    """Stands in for the dispatcher's ``_compile_for_args`` (see the module note)."""

    def __init__(self, disp: Any, fallback: Callable[..., Any] | None,
                 prefetch: Prefetch | None) -> None:
        self.disp = disp
        self.fallback = fallback
        self.prefetch = prefetch
        self.pending: dict[tuple[Any, ...], int] = {}  # types -> generation last checked

    def serial(self) -> Callable[..., Any]:
        if self.fallback is None:
            self.fallback = serial_variant(self.disp)
        return self.fallback

    def __call__(self, *args: Any, **kws: Any) -> Any:
        disp = self.disp
        if not enabled() or kws:
            return type(disp)._compile_for_args(disp, *args, **kws)
        try:
            argtypes = tuple(disp.typeof_pyval(a) for a in args)
        except Exception:  # as Numba would: let it report the argument
            return type(disp)._compile_for_args(disp, *args)
        seen = self.pending.get(argtypes)
        if seen != _generation:
            try:
                entry = _load_cached(disp, argtypes)
            except AttributeError:  # a Numba whose dispatcher internals differ: plain compile
                del disp._compile_for_args
                return type(disp)._compile_for_args(disp, *args)
            if entry is not None:
                self.pending.pop(argtypes, None)
                return entry
            if seen is None and not _request(disp, argtypes, self.prefetch):
                return type(disp)._compile_for_args(disp, *args)
            self.pending[argtypes] = _generation
        return self.serial()


def serial_first(disp: Any, fallback: Callable[..., Any] | None = None,
                 prefetch: Prefetch | None = None) -> Any:
    """Put the parallel kernel ``disp`` behind the first-call hook (module note); ``fallback``:
    its serial stand-in (same arguments, same results), by default ``serial_variant(disp)``
    compiled on first use. ``prefetch(argtypes)``: signatures this process will need later
    in the step (the backward of a forward kernel) that the background process compiles
    first, on the other core, so that this process loads them from the cache when it gets
    there (a signature named ``<kernel>__serial`` is that kernel's ``serial_variant``; one
    that does not match the later call costs only the background time). Returns ``disp``;
    with the JIT off, does nothing."""
    if not jit_disabled() and hasattr(disp, "_compile_for_args"):
        disp._compile_for_args = _Hook(disp, fallback, prefetch)
        _hooked[f"{disp.py_func.__module__}.{disp.py_func.__name__}"] = disp
    return disp


def pending_kernels() -> list[str]:
    """``module.name`` of the kernels that ran serially here and are not loaded yet."""
    out = []
    for name, d in _hooked.items():
        hook = vars(d).get("_compile_for_args")
        if isinstance(hook, _Hook) and any(t not in d.overloads for t in hook.pending):
            out.append(name)
    return out


__all__ = ["ENV", "Prefetch", "Signature", "enabled", "in_place", "pending_kernels",
           "serial_first", "serial_variant", "wait"]
