"""Compile a model's kernels in two processes at once, so a first compile on empty caches
uses two cores.

Numba compiles a kernel on its first call, one after the other on one core. The kernels a
model's 2-sample warm-up step calls, and the argument types they get, are found without
compiling anything: a child process runs that step as plain Python (``NUMBA_DISABLE_JIT=1``)
and records every call into ``engine.kernels`` from outside it, in call order, with the
Numba types of the arguments (``trace``); a kernel that a step swaps by batch size for another
of the same argument types brings that one along (``with_alternatives``). ``compile_in_two``
then compiles them into the cache in this process from the first call on (forward, first
layer first) and in a helper process from the last one back (the optimizer, then the
backward kernels, first layer's last), each taking only kernels the other has not claimed
yet (a file per signature created exclusively); the step that follows loads them all from
the cache. Numba writes each cache file whole, so the two processes can share one cache. The
helper also ends when this process dies (it waits on its stdin, which this process holds
open). Anything that fails here costs only time: the step compiles what it still needs
itself.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from .kernels.signatures import Signature, decode, encode, type_to_json

TRACE_TIMEOUT = 60.0  # s: a model whose plain-Python step takes longer is not traced
HELPER_TIMEOUT = 600.0  # s: the longest this process waits for the helper after its own part

def _child_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ, **extra)
    root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    return env


def trace_calls(tasks: list[tuple[str, Any]]) -> tuple[list[Signature], list[Signature]]:
    """(In a process with the JIT off.) The calls into ``engine.kernels`` from outside it that
    the warm-up ``tasks`` (``warmup.model_tasks(doc, light=True)``) make, first calls first,
    one per distinct signature: those of the model's step ("this model"), and those of the
    rest (every optimizer, the large-batch losses). ``python -m engine.warmup --trace-calls``
    runs it on a model document."""
    from numba import typeof
    from numba.core.typing.typeof import Purpose

    kernels_dir = str(Path(__file__).resolve().parent / "kernels") + os.sep
    seen: set[tuple[str, str, tuple[Any, ...]]] = set()
    found: list[Signature] = []

    def hook(frame: Any, event: str, _arg: Any) -> None:
        if event != "call" or not frame.f_code.co_filename.startswith(kernels_dir):
            return
        caller = frame.f_back
        if caller is not None and caller.f_code.co_filename.startswith(kernels_dir):
            return
        code = frame.f_code
        try:
            types = tuple(typeof(frame.f_locals[v], Purpose.argument)
                          for v in code.co_varnames[:code.co_argcount])
            for t in types:
                type_to_json(t)
        except Exception:  # an argument with no Numba type or no JSON form: left out
            return
        key = (frame.f_globals.get("__name__", ""), code.co_name, types)
        if key not in seen:
            seen.add(key)
            found.append(key)

    sys.setprofile(hook)
    try:
        for name, fn in tasks:
            if name == "this model":
                fn()
        model = list(found)
        for name, fn in tasks:
            if name != "this model":
                fn()
    finally:
        sys.setprofile(None)
    return model, found[len(model):]


def trace(doc: dict[str, Any], timeout: float = TRACE_TIMEOUT) -> list[Signature] | None:
    """The (kernel, argument types) pairs the warm-up of ``doc`` calls, in call order, found
    by running its 2-sample step (and the rest of its light warm-up) as plain Python in a
    child process (compiles nothing); None when that fails or takes longer than ``timeout``
    seconds."""
    parts = trace_parts(doc, timeout)
    return None if parts is None else parts[0] + parts[1]


def trace_parts(doc: dict[str, Any], timeout: float = TRACE_TIMEOUT
                ) -> tuple[list[Signature], list[Signature]] | None:
    """``trace`` in two parts: the model's step, then the rest."""
    try:
        proc = subprocess.run([sys.executable, "-m", "engine.warmup", "--trace-calls"],
                              input=json.dumps(doc), capture_output=True, text=True,
                              timeout=timeout, env=_child_env(NUMBA_DISABLE_JIT="1"),
                              check=False)
        if proc.returncode != 0:
            return None
        model, rest = json.loads(proc.stdout.strip().splitlines()[-1])
        return decode(model), decode(rest)
    except (OSError, subprocess.SubprocessError, ValueError, IndexError, TypeError):
        return None


def with_alternatives(sigs: list[Signature]) -> list[Signature]:
    """``sigs`` with, after each kernel that a step swaps by batch size for others of the same
    argument types (``fusion.SAME_ARGUMENTS``), those other kernels: the traced 2-sample step
    calls one of the group, a step at the model's own batch size may call another (the serial
    Dense kernels at 2 samples, the parallel ones at 64)."""
    from .fusion import SAME_ARGUMENTS

    def key(fn: Any) -> tuple[str, str]:
        fn = getattr(fn, "py_func", fn)
        return fn.__module__, fn.__name__

    others: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for group in SAME_ARGUMENTS:
        for a in group:
            others[key(a)] = [key(b) for b in group if b is not a]
    out: list[Signature] = []
    for module, name, types in sigs:
        for sig in ((module, name, types),
                    *((m, n, types) for m, n in others.get((module, name), []))):
            if sig not in out:
                out.append(sig)
    return out


def compile_signatures(sigs: list[Signature], claims: Path | None = None) -> int:
    """Compile (or load from the cache) each kernel for its signature, in the given order,
    skipping those another process claimed first in the folder ``claims`` (``_claim``);
    returns how many it did. A kernel that does not compile is skipped (the caller will meet
    the same error and report it)."""
    import importlib

    from numba.core.registry import CPUDispatcher

    done = 0
    for module, name, types in sigs:
        if claims is not None and not _claim(claims, (module, name, types)):
            continue
        try:
            mod = importlib.import_module(module)
            # every kernel compiled from that Python function (a serial and a parallel one)
            fns = [v for v in vars(mod).values() if isinstance(v, CPUDispatcher)
                   and v.__module__ == module and v.py_func.__name__ == name]
            if not fns and name.endswith("__serial"):  # kernels.serial_first's variant
                from .kernels.serial_first import serial_variant

                fns = [serial_variant(v) for v in vars(mod).values()
                       if isinstance(v, CPUDispatcher) and v.__module__ == module
                       and v.py_func.__name__ == name[:-len("__serial")]]
        except ImportError:
            continue
        for fn in fns:
            try:
                fn.compile(types)
                done += 1
            except Exception as exc:  # never fatal: the warm-up compiles it itself
                print(f"compile ahead: {module}.{name} skipped: {type(exc).__name__}",
                      file=sys.stderr)
    return done


def _claim(claims: Path, sig: Signature) -> bool:
    """True for the one process that claims ``sig`` first in the folder ``claims``."""
    import hashlib

    key = hashlib.sha1(repr(sig).encode()).hexdigest()
    try:
        os.close(os.open(claims / key, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return False
    except OSError:
        return True  # no claims folder: compile (at worst twice)
    return True


def compile_in_two(doc: dict[str, Any]) -> bool:
    """Compile the kernels of the light warm-up of ``doc`` (``warmup.model_tasks``) in this
    process and a helper at once: both walk the traced calls of its step (``trace_parts``),
    this one from the first, the helper from the last, then the rest's (every optimizer, the
    large-batch losses), each compiling the kernels no one claimed yet; returns once both are
    done (False, having compiled nothing, when the trace failed or the JIT is off). The calls
    after it then load from the cache."""
    import tempfile

    from .kernels.jit import jit_disabled

    if jit_disabled():
        return False
    parts = trace_parts(doc)
    if not parts or not parts[0]:
        return False
    model, rest = parts
    model = with_alternatives(model)
    with tempfile.TemporaryDirectory(prefix="nb-claims-") as claims:
        try:
            proc = subprocess.Popen([sys.executable, "-m", "engine.compile_ahead", "compile"],
                                    stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL, env=_child_env(), text=True)
        except OSError:
            proc = None
        try:
            if proc is not None and proc.stdin is not None:
                # the helper: the step from its end (the optimizer, the first layer's
                # backward...), then the rest
                proc.stdin.write(json.dumps([claims, encode(model[::-1] + rest)]) + "\n")
                proc.stdin.flush()  # kept open: the helper ends when it closes
            compile_signatures(model + rest, Path(claims))
            if proc is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=HELPER_TIMEOUT)
        finally:
            if proc is not None:
                if proc.poll() is None:
                    proc.kill()
                proc.wait()
                if proc.stdin is not None:
                    with contextlib.suppress(OSError):
                        proc.stdin.close()
    return True


def _exit_with_parent() -> None:
    """End this helper once its stdin closes (the parent stopped it or died)."""
    sys.stdin.read()
    os._exit(0)


def _serve_lines(lines: Any) -> None:
    """Put each line of stdin on ``lines``, then end the process at its end (the parent
    closed it or died: a compile under way is dropped, the cache keeps only whole files)."""
    for line in sys.stdin:
        lines.put(line)
    os._exit(0)


def serve() -> None:
    """The background compiler of ``kernels.serial_first``: each line of stdin holds two
    encoded lists (``encode``), signatures the parent will call soon and parallel kernels for
    later; the first kind from every line read so far goes before the second kind. Prints
    one line per signature done."""
    import queue

    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=_serve_lines, args=(lines,), daemon=True).start()
    soon: list[Signature] = []
    later: list[Signature] = []
    while True:
        if not soon and not later:
            lines.put(lines.get())  # wait for work
        while not lines.empty():
            first, second = json.loads(lines.get())
            soon += decode(first)
            later += decode(second)
        compile_signatures([(soon or later).pop(0)])
        print("done", flush=True)


def main(argv: list[str] | None = None) -> int:
    """``python -m engine.compile_ahead compile`` (encoded signatures on stdin's first line:
    compiles them, and ends when stdin closes; the trace is ``python -m engine.warmup
    --trace-calls``); ``... serve``: ``serve``."""
    args = sys.argv[1:] if argv is None else argv
    if args == ["serve"]:
        serve()
    if args == ["compile"]:
        claims, text = json.loads(sys.stdin.readline())
        sigs = decode(text)
        threading.Thread(target=_exit_with_parent, daemon=True).start()
        compile_signatures(sigs, Path(claims))
        return 0
    print("usage: python -m engine.compile_ahead compile|serve", file=sys.stderr)
    return 2


if __name__ == "__main__":  # runpy has imported engine (cache folder)
    sys.exit(main())
