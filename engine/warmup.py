"""Compile, or load from the cache, every Numba kernel before anyone waits for it.

``warmup(callback)`` trains one step of a tiny network per layer type (and a small LeNet-like
chain for the fused kernels, plus each loss) in float32, then runs it in inference mode, so
every kernel exists in the variants training uses. The first run on a machine compiles
(about a minute on 2 cores); later runs load the kernels from the cache in the user's cache
folder (``engine.cachedir``) in about a second. Meant for a background thread: the GUI shows
``callback(i, n, name)`` as a progress bar.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from .errors import NetBuilderError

Progress = Callable[[int, int, str], None]

# Per layer type: param sets to run (each compiles what its code path needs).
VARIANTS: dict[str, list[dict[str, Any]]] = {
    "MaxPool2D": [{}, {"pool_size": 3, "stride": 1, "padding": 1}],
    "AvgPool2D": [{}, {"pool_size": 3, "stride": 2, "padding": "same"}],
    "SimpleRNN": [{"units": 3, "direction": "bidirectional", "return_sequences": True}],
    "LSTM": [{"units": 3, "direction": "bidirectional", "return_sequences": True}],
    "GRU": [{"units": 3, "direction": "bidirectional", "return_sequences": True}],
    "Embedding": [{"vocab": 5, "dim": 3}],
    "Conv2D": [{"filters": 2, "kernel_size": 3, "padding": 1}],
    "Dense": [{"units": 3}],
}
SKIP = {"Input", "Output"}
SHAPES: tuple[tuple[int, ...], ...] = ((2, 6, 6), (4, 3), (6,))


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


def _layer_doc(type_name: str, params: dict[str, Any], shape: tuple[int, ...],
               n_inputs: int) -> dict[str, Any]:
    """Input(s) -> weights -> the layer -> Flatten -> Dense(3) -> cross-entropy Output."""
    nodes = [("in", "Input", {"shape": list(shape)})]
    edges = []
    src = "in"
    if type_name != "Embedding":
        nodes.append(("pre", *_learnable(shape)))
        edges.append(("in", "pre", 0))
        src = "pre"
    if type_name == "SpatialTransformer":
        nodes += [("theta", "Input", {"shape": [6]}), ("loc", "Dense", {"units": 6})]
        edges += [(src, "n", 0), ("theta", "loc", 0), ("loc", "n", 1)]
    else:
        edges += [(src, "n", port) for port in range(n_inputs)]
    if type_name == "Reshape":
        params = {"shape": [math.prod(shape)], **params}
    nodes += [("n", type_name, params), ("flat", "Flatten", {}), ("head", "Dense", {"units": 3}),
              ("out", "Output", {"loss": "cross_entropy"})]
    edges += [("n", "flat", 0), ("flat", "head", 0), ("head", "out", 0)]
    return _doc(nodes, edges)


def _chain_doc(layers: list[tuple[str, dict[str, Any]]], shape: tuple[int, ...],
               loss: str = "cross_entropy") -> dict[str, Any]:
    ids = ["in", *(f"n{i}" for i in range(len(layers))), "out"]
    nodes = [("in", "Input", {"shape": list(shape)})]
    nodes += [(ids[i + 1], t, p) for i, (t, p) in enumerate(layers)]
    nodes.append(("out", "Output", {"loss": loss}))
    return _doc(nodes, [(a, b, 0) for a, b in itertools.pairwise(ids)])


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


def _run_all(docs: list[dict[str, Any]]) -> None:
    for doc in docs:
        _run(doc)


def _layer_docs() -> list[tuple[str, list[dict[str, Any]]]]:
    """(type name, model documents) for every registered layer type that runs on its own."""
    from .graph import Graph
    from .registry import layer_types

    out = []
    for name, cls in sorted(layer_types().items()):
        if name in SKIP:
            continue
        docs = []
        for params in VARIANTS.get(name, [{}]):
            for shape in SHAPES:
                doc = _layer_doc(name, params, shape, max(1, cls.min_inputs))
                try:
                    Graph.from_dict(doc).infer_shapes()
                except NetBuilderError:
                    continue
                docs.append(doc)
                break
        if docs:
            out.append((name, docs))
    return out


def warmup_tasks() -> list[tuple[str, Callable[[], None]]]:
    """The warm-up work as (name, function) pairs, in the order ``warmup`` runs them."""
    from .kernels.conv import OneThreadBlas

    def blas() -> None:
        with OneThreadBlas():
            pass

    tasks: list[tuple[str, Callable[[], None]]] = [("BLAS", blas)]
    lenet = [("Conv2D", {"filters": 2, "kernel_size": 3, "padding": 1}), ("ReLU", {}),
             ("MaxPool2D", {"pool_size": 2}), ("Conv2D", {"filters": 3, "kernel_size": 3}),
             ("BatchNorm", {}), ("ReLU", {}), ("MaxPool2D", {"pool_size": 2}), ("Flatten", {}),
             ("Dense", {"units": 4}), ("ReLU", {}), ("Dense", {"units": 3})]
    tasks.append(("fused convolution", lambda: _run(_chain_doc(lenet, (1, 10, 10)))))
    tasks.append(("convolution", lambda: _run(_chain_doc(lenet, (1, 10, 10)), fuse=False)))
    for loss in ("bce", "mse"):
        doc = _chain_doc([("Dense", {"units": 2})], (3,), loss)
        tasks.append((f"{loss} loss", lambda doc=doc: _run(doc)))
    for name, docs in _layer_docs():
        tasks.append((name, lambda docs=docs: _run_all(docs)))
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


def warmup(callback: Progress | None = None) -> float:
    """Compile or load every kernel (float32); returns the seconds it took.

    ``callback(i, n, name)`` is called before task ``i`` of ``n`` (0-based) and once more with
    ``i == n`` and name ``"done"`` at the end. Safe to run on a background thread."""
    t0 = time.perf_counter()
    tasks = warmup_tasks()
    n = len(tasks)
    for i, (name, fn) in enumerate(tasks):
        if callback is not None:
            callback(i, n, name)
        fn()
    if callback is not None:
        callback(n, n, "done")
    return time.perf_counter() - t0
