"""Small residual models, drawn flat or with blocks, shared by the block tests."""

from __future__ import annotations

from collections.abc import Callable

from engine import Graph, block_edit

RES = ["conv1", "bn1", "relu1", "conv2", "add", "relu2"]


def res_nodes(ch: int, name: Callable[[str], str]) -> list[dict]:
    return [
        {"id": name("conv1"), "type": "Conv2D",
         "params": {"filters": ch, "kernel_size": 3, "padding": "same"}},
        {"id": name("bn1"), "type": "BatchNorm", "params": {}},
        {"id": name("relu1"), "type": "ReLU", "params": {}},
        {"id": name("conv2"), "type": "Conv2D",
         "params": {"filters": ch, "kernel_size": 3, "padding": "same"}},
        {"id": name("add"), "type": "Add", "params": {}},
        {"id": name("relu2"), "type": "ReLU", "params": {}},
    ]


def res_edges(src: str, name: Callable[[str], str]) -> list[dict]:
    n = name
    return [{"src": src, "dst": n("conv1")}, {"src": n("conv1"), "dst": n("bn1")},
            {"src": n("bn1"), "dst": n("relu1")}, {"src": n("relu1"), "dst": n("conv2")},
            {"src": n("conv2"), "dst": n("add"), "port": 0},
            {"src": src, "dst": n("add"), "port": 1}, {"src": n("add"), "dst": n("relu2")}]


def resnet_doc(prefixes: list[str], ch: int = 4, hw: int = 6) -> dict:
    """in -> conv0 -> relu0 -> residual blocks (ids ``<prefix><id>``) -> pool -> dense ->
    out. ``prefixes=[""]`` draws one block with plain ids."""
    nodes = [{"id": "in", "type": "Input", "params": {"shape": [2, hw, hw]}},
             {"id": "conv0", "type": "Conv2D",
              "params": {"filters": ch, "kernel_size": 3, "padding": "same"}},
             {"id": "relu0", "type": "ReLU", "params": {}}]
    edges = [{"src": "in", "dst": "conv0"}, {"src": "conv0", "dst": "relu0"}]
    src = "relu0"
    for p in prefixes:
        def name(x: str, p: str = p) -> str:
            return p + x
        nodes += res_nodes(ch, name)
        edges += res_edges(src, name)
        src = name("relu2")
    nodes += [{"id": "gap", "type": "GlobalAvgPool2D", "params": {}},
              {"id": "fc", "type": "Dense", "params": {"units": 3}},
              {"id": "out", "type": "Output", "params": {}}]
    edges += [{"src": src, "dst": "gap"}, {"src": "gap", "dst": "fc"},
              {"src": "fc", "dst": "out"}]
    ui = {nd["id"]: {"pos": [0.0, 80.0 * i]} for i, nd in enumerate(nodes)}
    return {"format": "netbuilder.graph", "version": 1, "name": "tiny resnet",
            "nodes": nodes, "edges": edges, "ui": ui}


def blocked(n_repeat: int = 1) -> Graph:
    """The model with its residual block grouped as Block 'res1' (repeated ``n_repeat``
    times: 'res1', 'res1_2', ...)."""
    g = Graph.from_dict(resnet_doc([""]))
    g = block_edit.group(g, RES, "res1", "ResBlock")
    if n_repeat > 1:
        g = block_edit.repeat(g, "res1", n_repeat)
    return g


def drawn_flat(n_repeat: int = 1) -> Graph:
    """The same model drawn node by node, with the ids compile derives for the blocks."""
    prefixes = ["res1-"] + [f"res1_{k}-" for k in range(2, n_repeat + 1)]
    return Graph.from_dict(resnet_doc(prefixes))
