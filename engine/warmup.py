"""Compile, or load from the cache, every Numba kernel before anyone waits for it.

``warmup(callback)`` trains one step of a tiny network per example of every layer type with
kernels (``Layer.examples``, run node by node so that the layer's own code runs), of small
LeNet-like chains for the fused blocks (``engine.fusion``), and of each loss, in float32,
then runs it in inference mode, so every kernel exists in the variants training uses. The
first run on a machine compiles (minutes on a small machine); later runs load the kernels
from the cache in the user's cache folder (``engine.cachedir``). Meant for a background thread
or a child process (``compile_in_subprocess``); ``engine.kernel_progress`` measures how far it
has come.

``warmup(first=doc)`` does the kernels one model needs first (``model_tasks``: a float32
training step of that model at a tiny and at its own batch size, an evaluation pass, every
optimizer and the large-batch losses), then the rest, telling ``callback`` when the first part
is done (name ``FIRST_READY``); a run of that model can start then. On an empty cache, that
model's kernels are compiled in two processes at once (``engine.compile_ahead``).

A first compile cannot be interrupted inside Numba, so callers that must stop at once (the GUI's
Stop button) compile in a child process with ``compile_in_subprocess``: killing it loses
nothing, since Numba writes each cache file whole, and the parent then loads the kernels from
the cache. ``cache_is_warm()`` says whether that is still needed (a marker file written after a
complete warm-up, named after the kernel sources and the Numba version).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .errors import NetBuilderError
from .kernels.serial_first import in_place
from .registry import Example, get_layer_class, layer_types

Progress = Callable[[int, int, str], None]
Cancelled = Callable[[], bool]
POLL_INTERVAL = 0.05  # s between checks for cancellation while a child process compiles
FIRST_READY = "first model ready"  # callback name: the first model's kernels are all cached
EVAL_BATCH = 256  # samples per evaluation batch (engine.training.evaluate)


class WarmupCancelledError(NetBuilderError):
    """The caller asked to stop before every kernel was ready (the cache keeps what was done)."""


def _doc(nodes: list[tuple[str, str, dict[str, Any]]],
         edges: list[tuple[str, str, int]]) -> dict[str, Any]:
    return {"format": "netbuilder.graph", "version": 1, "name": "warmup",
            "nodes": [{"id": i, "type": t, "params": p} for i, t, p in nodes],
            "edges": [{"src": s, "dst": d, "port": p} for s, d, p in edges]}


def _learnable(shape: tuple[int, ...]) -> tuple[str, dict[str, Any]]:
    """A layer with weights that keeps ``shape``, so the layer after it computes its input
    gradient (the backward kernels) as inside a real model."""
    if len(shape) == 3:
        return "Conv2D", {"filters": shape[0], "kernel_size": 1}
    return "Dense", {"units": shape[-1]}


def example_doc(type_name: str, ex: Example) -> dict[str, Any]:
    """A model around one example of a layer type: an Input per input of the example (each
    through a layer with weights, except integer ids), the layer, then Flatten -> Dense(3) ->
    a cross-entropy Output; an Input or Output example is the model Input -> Output."""
    cls = get_layer_class(type_name)
    if type_name == "Input":
        return _doc([("in", "Input", dict(ex.params)), ("out", "Output", {"loss": "mse"})],
                    [("in", "out", 0)])
    if type_name == "Output":
        return _doc([("in", "Input", {"shape": list(ex.in_shapes[0])}),
                     ("out", "Output", dict(ex.params))], [("in", "out", 0)])
    layer = cls("n", dict(ex.params), list(ex.in_shapes))
    nodes: list[tuple[str, str, dict[str, Any]]] = []
    edges: list[tuple[str, str, int]] = []
    for port, shape in enumerate(ex.in_shapes):
        src = f"in{port}"
        nodes.append((src, "Input", {"shape": list(shape)}))
        if layer.index_range(port) is None:
            nodes.append((f"pre{port}", *_learnable(shape)))
            edges.append((src, f"pre{port}", 0))
            src = f"pre{port}"
        edges.append((src, "n", port))
    nodes += [("n", type_name, dict(ex.params)), ("flat", "Flatten", {}),
              ("head", "Dense", {"units": 3}), ("out", "Output", {"loss": "cross_entropy"})]
    edges += [("n", "flat", 0), ("flat", "head", 0), ("head", "out", 0)]
    return _doc(nodes, edges)


def _chain_doc(layers: list[tuple[str, dict[str, Any]]], shape: tuple[int, ...],
               loss: str = "cross_entropy") -> dict[str, Any]:
    ids = ["in", *(f"n{i}" for i in range(len(layers))), "out"]
    nodes = [("in", "Input", {"shape": list(shape)})]
    nodes += [(ids[i + 1], t, p) for i, (t, p) in enumerate(layers)]
    nodes.append(("out", "Output", {"loss": loss}))
    return _doc(nodes, [(a, b, 0) for a, b in itertools.pairwise(ids)])


def _residual_doc() -> dict[str, Any]:
    """Conv -> BatchNorm -> ReLU -> Conv -> BatchNorm, + the block's input, -> ReLU: the
    fused BatchNorm + ReLU and Add + ReLU blocks (``engine.fusion``)."""
    conv = {"filters": 2, "kernel_size": 3, "padding": 1, "bias": False}
    nodes = [("in", "Input", {"shape": [2, 6, 6]}), ("c1", "Conv2D", conv),
             ("b1", "BatchNorm", {}), ("r1", "ReLU", {}), ("c2", "Conv2D", conv),
             ("b2", "BatchNorm", {}), ("add", "Add", {}), ("r2", "ReLU", {}),
             ("flat", "Flatten", {}), ("fc", "Dense", {"units": 3}),
             ("out", "Output", {"loss": "cross_entropy"})]
    edges = [("in", "c1", 0), ("c1", "b1", 0), ("b1", "r1", 0), ("r1", "c2", 0),
             ("c2", "b2", 0), ("b2", "add", 0), ("in", "add", 1), ("add", "r2", 0),
             ("r2", "flat", 0), ("flat", "fc", 0), ("fc", "out", 0)]
    return _doc(nodes, edges)


def _run(doc: dict[str, Any], batch: int = 4, fuse: bool = True) -> None:
    """One float32 training step of the model ``doc``, then an inference forward and a
    backward to its inputs."""
    from .gradcheck import random_batch
    from .graph import Graph
    from .network import Network
    from .optim import SGD

    net = Network(Graph.from_dict(doc), seed=0, fuse=fuse)
    xs, ys = random_batch(net, batch, np.random.default_rng(0))
    xs = {k: v.astype(np.float32) for k, v in xs.items()}
    net.train_step(xs, ys, SGD(lr=1e-3, momentum=0.9))
    out = net.forward(xs, train=False)
    net.backward({k: np.ones_like(v) for k, v in out.items()} if isinstance(out, dict)
                 else np.ones_like(out))


def _evaluate(doc: dict[str, Any], batch: int) -> None:
    """A float32 inference pass and loss of the model ``doc``, as evaluation runs it."""
    from .gradcheck import random_batch
    from .graph import Graph
    from .network import Network

    net = Network(Graph.from_dict(doc), seed=0)
    xs, ys = random_batch(net, batch, np.random.default_rng(0))
    xs = {k: v.astype(np.float32) for k, v in xs.items()}
    net.forward(xs, train=False)
    net.loss(ys, xs)


def _run_all(docs: list[dict[str, Any]], fuse: bool = True) -> None:
    for doc in docs:
        _run(doc, fuse=fuse)


def _layer_docs() -> list[tuple[str, list[dict[str, Any]]]]:
    """(type name, model documents) for every registered layer type with kernels: one
    model per example."""
    return [(name, [example_doc(name, ex) for ex in cls.examples])
            for name, cls in sorted(layer_types().items()) if cls.kernels and cls.examples]


def layer_task(type_name: str) -> Callable[[], None]:
    """The warm-up work for one layer type: a training step of each of its examples, run
    node by node (the fused blocks have tasks of their own)."""
    docs = [example_doc(type_name, ex) for ex in get_layer_class(type_name).examples]
    return lambda: _run_all(docs, fuse=False)


def _blas() -> None:
    from .kernels.blas import blas_address, gemm_arrays
    from .kernels.conv import OneThreadBlas

    with OneThreadBlas():
        pass
    a = np.ones((2, 2), np.float32)  # the kernels' 2-D product, also called from Python
    gemm_arrays(blas_address(np.float32), a, a, np.empty_like(a))


def _optimizers() -> None:
    from .optim import SGD, Adam, AdamW

    w = np.zeros(4096, np.float32)
    for opt in (SGD(lr=1e-3), SGD(lr=1e-3, momentum=0.9),
                SGD(lr=1e-3, momentum=0.9, nesterov=True), Adam(), AdamW()):
        opt.step({"w": w}, {"w": np.ones_like(w)}, flat=(w, np.ones_like(w)))


def _big_losses() -> None:
    from .kernels import losses

    x = np.zeros((losses.SERIAL_BELOW // 8 + 1, 8), np.float32)
    losses.softmax_xent(x, np.zeros(len(x), np.int64), np.empty_like(x), 1.0)
    flat = x.reshape(-1)
    losses.sigmoid_bce(flat, flat, np.empty_like(flat), 1.0)


def model_doc(doc: dict[str, Any]) -> dict[str, Any]:
    """The part of a model document that decides its kernels: nodes and wires."""
    return {"format": "netbuilder.graph", "version": doc.get("version", 1), "name": "warmup",
            "nodes": doc.get("nodes", []), "edges": doc.get("edges", [])}


def model_tasks(doc: dict[str, Any], batch: int | None = None, light: bool = False,
                two: bool = False) -> list[tuple[str, Callable[[], None]]]:
    """The warm-up of one model (a graph document), run before the rest by ``warmup(first=)``:
    a float32 training step at 2 samples and at ``batch`` (default: the document's training
    batch size; kernels differ with the rows per call) and an evaluation pass at
    ``EVAL_BATCH``, plus what every run needs: BLAS, every optimizer, the large-batch
    losses. ``light``: the 2-sample step only (cheap enough to run as plain Python). ``two``:
    the 2-sample step's kernels are first compiled in two processes at once
    (``engine.compile_ahead``; for an empty cache)."""
    core = model_doc(doc)
    if batch is None:
        size = (doc.get("training") or {}).get("batch_size", 32)
        batch = size if isinstance(size, int) and size > 0 else 32
    batch = max(2, min(int(batch), EVAL_BATCH))

    def model() -> None:
        if two:
            from .compile_ahead import compile_in_two

            compile_in_two(core)
        _run(core, batch=2)
        if not light:
            if batch != 2:
                _run(core, batch=batch)
            _evaluate(core, EVAL_BATCH)

    return [("BLAS", _blas), ("this model", model), ("optimizer", _optimizers),
            ("losses on large batches", _big_losses)]


def warmup_tasks() -> list[tuple[str, Callable[[], None]]]:
    """The warm-up work as (name, function) pairs, in the order ``warmup`` runs them."""
    tasks: list[tuple[str, Callable[[], None]]] = [("BLAS", _blas)]
    lenet = [("Conv2D", {"filters": 2, "kernel_size": 3, "padding": 1}), ("ReLU", {}),
             ("MaxPool2D", {"pool_size": 2}), ("Conv2D", {"filters": 3, "kernel_size": 3}),
             ("BatchNorm", {}), ("ReLU", {}), ("MaxPool2D", {"pool_size": 2}), ("Flatten", {}),
             ("Dense", {"units": 4}), ("ReLU", {}), ("Dense", {"units": 3})]
    tasks.append(("fused convolution", lambda: _run(_chain_doc(lenet, (1, 10, 10)))))
    conv3 = {"kernel_size": 3, "padding": 1}
    grid = [("Conv2D", {"filters": 32, **conv3}), ("ReLU", {}), ("MaxPool2D", {"pool_size": 2}),
            ("Conv2D", {"filters": 2, **conv3}), ("Flatten", {}),
            ("Dense", {"units": 3})]  # 20×20 and 32 channels: fusion.conv_modes' grid kernels
    tasks.append(("fused convolution on a grid", lambda: _run(_chain_doc(grid, (1, 20, 20)))))
    tasks.append(("fused residual block", lambda: _run(_residual_doc())))
    conv = {"filters": 2, "kernel_size": 3, "padding": 1}
    add_relu = _doc([("in", "Input", {"shape": [2, 6, 6]}), ("c", "Conv2D", conv),
                     ("add", "Add", {}), ("r", "ReLU", {}), ("flat", "Flatten", {}),
                     ("fc", "Dense", {"units": 3}), ("out", "Output", {"loss": "cross_entropy"})],
                    [("in", "c", 0), ("c", "add", 0), ("in", "add", 1), ("add", "r", 0),
                     ("r", "flat", 0), ("flat", "fc", 0), ("fc", "out", 0)])
    tasks.append(("fused Add + ReLU", lambda: _run(add_relu)))
    # a Dense whose weight is no larger than the batch's rows: split by samples (fusion's
    # splits_rows), large enough not to run on one slice (layers.dense.DENSE_SERIAL_MACS)
    wide = _chain_doc([("Dense", {"units": 200}), ("ReLU", {}), ("Dense", {"units": 3})], (200,))
    tasks.append(("fused Dense split by samples", lambda: _run(wide, batch=256)))
    tasks.append(("optimizer", _optimizers))
    tasks.append(("losses on large batches", _big_losses))
    for loss in ("bce", "mse"):
        doc = _chain_doc([("Dense", {"units": 2})], (3,), loss)
        tasks.append((f"{loss} loss", lambda doc=doc: _run(doc)))
    for name, _ in _layer_docs():
        tasks.append((name, layer_task(name)))
    return tasks


def kernel_cache_stats() -> tuple[int, int]:
    """(kernel variants loaded from the cache, variants compiled) in this process so far."""
    import importlib
    import pkgutil

    from numba.core.registry import CPUDispatcher

    from . import kernels

    hits = misses = 0
    for info in pkgutil.iter_modules(kernels.__path__):
        mod = importlib.import_module(f"{kernels.__name__}.{info.name}")
        for obj in vars(mod).values():
            if isinstance(obj, CPUDispatcher) and obj.__module__ == mod.__name__:
                hits += sum(obj.stats.cache_hits.values())
                misses += sum(obj.stats.cache_misses.values())
    return hits, misses


def _cache_is_empty() -> bool:
    """No kernel is in the cache yet (a first start: ``engine.compile_ahead`` pays)."""
    import numba

    root = numba.config.CACHE_DIR
    try:
        return not (root and any(Path(root).rglob("*.nbi")))
    except OSError:
        return False


def _model_task_guarded(fn: Callable[[], None]) -> Callable[[], None]:
    """A model that cannot be built or run (it has a problem the run will report) must not
    stop the warm-up of the rest."""
    def run() -> None:
        try:
            fn()
        except Exception as exc:
            print(f"warm-up of the open model skipped: {type(exc).__name__}: {exc}",
                  file=sys.stderr)
    return run


def warmup(callback: Progress | None = None, cancelled: Cancelled | None = None,
           first: dict[str, Any] | None = None, rest: bool = True) -> float:
    """Compile or load every kernel (float32); returns the seconds it took.

    ``first``: a model document whose kernels come first (``model_tasks``); after them
    ``callback(k, n, FIRST_READY)`` says that a run of it needs nothing more. ``rest=False``
    stops there. ``callback(i, n, name)`` is called before task ``i`` of ``n`` (0-based) and
    once more with ``i == n`` and name ``"done"`` at the end. ``cancelled()`` is checked
    before each task and raises WarmupCancelledError when true. Safe to run on a background
    thread."""
    t0 = time.perf_counter()
    two = first is not None and not cache_is_warm() and _cache_is_empty()
    tasks = [(name, _model_task_guarded(fn) if name == "this model" else fn)
             for name, fn in model_tasks(first, two=two)] if first is not None else []
    n_first = len(tasks)
    if rest:
        done = {name for name, _fn in tasks}
        tasks += [(name, fn) for name, fn in warmup_tasks() if name not in done]
    n = len(tasks)
    with in_place():  # fill the cache with the kernels themselves, not serial stand-ins
        for i, (name, fn) in enumerate(tasks):
            if cancelled is not None and cancelled():
                raise WarmupCancelledError(
                    f"kernel compilation stopped at step {i} of {n} ({name})")
            if i == n_first and first is not None and callback is not None:
                callback(i, n, FIRST_READY)
            if callback is not None:
                callback(i, n, name)
            fn()
    if rest:
        mark_cache_warm()
    if callback is not None:
        if n == n_first and first is not None:
            callback(n, n, FIRST_READY)
        callback(n, n, "done")
    return time.perf_counter() - t0


def _kernel_sources() -> list[Path]:
    root = Path(__file__).parent
    return sorted(p for p in root.rglob("*.py") if "__pycache__" not in p.parts)


def cache_marker() -> Path | None:
    """The file that says this cache holds every kernel of these sources (None when Numba
    caches beside the sources, where no marker is kept)."""
    import numba

    folder = os.environ.get("NUMBA_CACHE_DIR")
    if not folder:
        return None
    h = hashlib.sha256(f"{numba.__version__} {sys.version} {sys.executable}".encode())
    for p in _kernel_sources():
        st = p.stat()
        h.update(f"{p.name} {st.st_mtime_ns} {st.st_size}".encode())
    return Path(folder) / f"netbuilder-warm-{h.hexdigest()[:20]}"


def cache_is_warm() -> bool:
    """True when a complete warm-up already filled the kernel cache for these sources."""
    try:
        m = cache_marker()
        return m is not None and m.exists()
    except OSError:
        return False


def mark_cache_warm() -> None:
    try:
        m = cache_marker()
        if m is not None:
            m.parent.mkdir(parents=True, exist_ok=True)
            m.touch()
    except OSError:
        pass


def _read_lines(stream: Any, out: queue.Queue) -> None:
    for line in stream:
        out.put(line)
    out.put(None)


def compile_in_subprocess(callback: Progress | None = None,
                          cancelled: Cancelled | None = None,
                          first: dict[str, Any] | None = None, rest: bool = True) -> bool:
    """Run ``warmup`` (with ``first`` and ``rest`` as there) in a child Python process that
    fills the kernel cache, relaying its progress to ``callback``. ``cancelled()`` is polled
    every 50 ms; when true the child is killed and WarmupCancelledError raised. Returns False
    (after the child exits) if it failed, so the caller can compile in-process instead."""
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    args = [sys.executable, "-m", "engine.warmup"]
    if first is not None:
        args += ["--first", "-"]
    if not rest:
        args.append("--only-first")
    try:
        proc = subprocess.Popen(args, env=env, text=True, stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL,
                                stdin=subprocess.PIPE if first is not None else subprocess.DEVNULL)
    except OSError:
        return False
    if first is not None and proc.stdin is not None:
        try:
            proc.stdin.write(json.dumps(model_doc(first)))
            proc.stdin.close()
        except OSError:
            pass
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=_read_lines, args=(proc.stdout, lines), daemon=True).start()
    done = False
    try:
        while not done:
            if cancelled is not None and cancelled():
                raise WarmupCancelledError("kernel compilation stopped (the cache keeps what was "
                                      "compiled so far)")
            try:
                line = lines.get(timeout=POLL_INTERVAL)
            except queue.Empty:
                continue
            if line is None:
                done = True
                continue
            parts = line.rstrip("\n").split(" ", 2)
            if callback is not None and len(parts) == 3 and parts[0].isdigit() \
                    and parts[1].isdigit():
                callback(int(parts[0]), int(parts[1]), parts[2])
        return proc.wait() == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def main(argv: list[str] | None = None) -> int:
    """``python -m engine.warmup [--first FILE|-] [--only-first]``: fill the kernel cache
    (the model document in FILE, or on stdin, first), one ``i n name`` line per task."""
    import argparse

    p = argparse.ArgumentParser(prog="python -m engine.warmup")
    p.add_argument("--first", metavar="FILE", help="model document whose kernels come first "
                   "('-': read it from stdin)")
    p.add_argument("--only-first", action="store_true", help="stop after the first model")
    p.add_argument("--trace-calls", action="store_true", help="(with NUMBA_DISABLE_JIT=1) "
                   "print the kernel calls of the light warm-up of the model document on "
                   "stdin, encoded (engine.compile_ahead)")
    args = p.parse_args(argv)
    if args.trace_calls:
        from .compile_ahead import encode, trace_calls

        model, rest = trace_calls(model_tasks(json.loads(sys.stdin.read()), light=True))
        print(json.dumps([encode(model), encode(rest)]))
        return 0
    first = None
    if args.first is not None:
        text = sys.stdin.read() if args.first == "-" else Path(args.first).read_text("utf-8")
        first = json.loads(text)
    warmup(lambda i, n, name: print(i, n, name, flush=True), first=first,
           rest=not args.only_first)
    return 0


if __name__ == "__main__":  # python -m engine.warmup: runpy has imported engine (cache folder)
    sys.exit(main())
