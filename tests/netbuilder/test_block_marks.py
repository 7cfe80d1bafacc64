"""Training marks of layers inside collapsed blocks fold onto the block's card and wires
(Qt-free functions the canvas applies)."""

from __future__ import annotations

from engine import block_edit
from engine.graph import Edge, Graph
from netbuilder.canvas.block_marks import BlockMap, fold_badges, fold_flows


def residual_graph() -> Graph:
    g = Graph.from_dict({
        "format": "netbuilder.graph", "version": 1, "name": "res",
        "nodes": [
            {"id": "in", "type": "Input", "params": {"shape": [2, 6, 6]}},
            {"id": "c1", "type": "Conv2D", "params": {"filters": 2, "kernel_size": 3,
                                                       "padding": "same"}},
            {"id": "r1", "type": "ReLU", "params": {}},
            {"id": "add", "type": "Add", "params": {}},
            {"id": "gap", "type": "GlobalAvgPool2D", "params": {}},
            {"id": "out", "type": "Output", "params": {}}],
        "edges": [{"src": "in", "dst": "c1"}, {"src": "c1", "dst": "r1"},
                  {"src": "r1", "dst": "add", "port": 0}, {"src": "in", "dst": "add", "port": 1},
                  {"src": "add", "dst": "gap"}, {"src": "gap", "dst": "out"}]})
    return block_edit.group(g, ["c1", "r1", "add"], "res", "Residual")


def test_the_map_names_each_flat_layer_by_its_block():
    bmap = BlockMap.of(residual_graph())
    assert bmap.owner == {"res-c1": "res", "res-r1": "res", "res-add": "res"}
    assert bmap.output == {"res": "res-add"}
    assert bmap.inner_name("res-r1") == "r1" and bmap.inner_name("gap") == "gap"


def test_a_block_shows_its_worst_layer_named_or_its_output_when_all_are_well():
    bmap = BlockMap.of(residual_graph())
    ok = ("μ 0.1 σ 1", "ok", "mean 0.1")
    dead = ("μ 0 σ 0.2 · dead 70%", "bad", "70 % dead")
    shown = fold_badges({"gap": ok, "res-c1": ok, "res-r1": dead,
                         "res-add": ("μ 2 σ 3", "ok", "")}, bmap)
    assert shown["gap"] == ok
    text, level, tip = shown["res"]
    assert (text, level) == ("r1: μ 0 σ 0.2 · dead 70%", "bad")
    assert "c1: mean 0.1" in tip and "r1: 70 % dead" in tip and tip.startswith("3 layers")
    well = fold_badges({"res-c1": ok, "res-add": ("μ 2 σ 3", "ok", "x")}, bmap)
    assert well["res"][:2] == ("μ 2 σ 3", "ok")  # the block's output, like any layer's
    first_nan = fold_badges({"res-c1": ("NaN/Inf", "nan", "nan here"), "res-r1": dead}, bmap)
    assert first_nan["res"][:2] == ("c1: NaN/Inf", "nan")


def test_wires_into_and_out_of_a_block_take_their_flat_wires_tint():
    g = residual_graph()
    bmap = BlockMap.of(g)
    drawn = list(g.edges)
    into = next(e for e in drawn if e.dst == "res")
    flows = {("in", "res-c1", 0): (0.5, False), ("in", "res-add", 1): (0.7, True),
             ("res-c1", "res-r1", 0): (9.0, False),  # inside: nothing drawn
             ("res-add", "gap", 0): (0.2, False), ("gap", "out", 0): (0.1, False)}
    shown = fold_flows(flows, bmap, drawn)
    assert shown[into] == (0.7, True)  # two layers read the block's input: the larger
    assert shown[Edge("res", "gap", 0)] == (0.2, False)
    assert shown[Edge("gap", "out", 0)] == (0.1, False)
    assert len(shown) == 3


def test_a_graph_without_blocks_passes_through():
    g = Graph.from_dict({
        "format": "netbuilder.graph", "version": 1, "name": "flat",
        "nodes": [{"id": "in", "type": "Input", "params": {"shape": [2]}},
                  {"id": "d", "type": "Dense", "params": {"units": 2}},
                  {"id": "out", "type": "Output", "params": {}}],
        "edges": [{"src": "in", "dst": "d"}, {"src": "d", "dst": "out"}]})
    bmap = BlockMap.of(g)
    badge = ("μ 0 σ 1", "ok", "")
    assert fold_badges({"d": badge}, bmap) == {"d": badge}
    assert fold_flows({("in", "d", 0): (1.0, False)}, bmap, list(g.edges)) == \
        {Edge("in", "d", 0): (1.0, False)}
