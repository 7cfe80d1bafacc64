"""The Qt-free side of the builder: Document, commands, analysis, receptive fields, layout."""

from __future__ import annotations

import json
from fractions import Fraction

import pytest
from guidocs import small_doc

import engine
from netbuilder.analysis import analyse, fmt_count, fmt_shape, receptive_fields
from netbuilder.document import (
    AddNodes,
    Change,
    Composite,
    Connect,
    DeleteItems,
    Document,
    MoveNodes,
    NodeSpec,
    Rename,
    SetParams,
    make_fragment,
    paste_command,
)
from netbuilder.layout import layered_layout

LENET = small_doc(
    [("in", "Input", {"shape": [1, 28, 28]}),
     ("c1", "Conv2D", {"filters": 6, "kernel_size": 5, "padding": 2}), ("a1", "ReLU", {}),
     ("s2", "MaxPool2D", {"pool_size": 2}), ("c3", "Conv2D", {"filters": 16, "kernel_size": 5}),
     ("a3", "ReLU", {}), ("s4", "MaxPool2D", {"pool_size": 2}), ("fl", "Flatten", {}),
     ("f5", "Dense", {"units": 120}), ("f6", "Dense", {"units": 84}),
     ("f7", "Dense", {"units": 10}), ("out", "Output", {})],
    [("in", "c1", 0), ("c1", "a1", 0), ("a1", "s2", 0), ("s2", "c3", 0), ("c3", "a3", 0),
     ("a3", "s4", 0), ("s4", "fl", 0), ("fl", "f5", 0), ("f5", "f6", 0), ("f6", "f7", 0),
     ("f7", "out", 0)])


def doc_of(d: dict) -> Document:
    return Document(engine.Graph.from_dict(d, validate=False))


def test_commands_do_undo_and_dirty_flag():
    doc = doc_of(LENET)
    seen: list[Change] = []
    doc.subscribe(seen.append)
    original = doc.graph.to_dict()
    assert not doc.dirty
    cmds = [
        AddNodes([NodeSpec("extra", "Dense", {"units": 3}, (5.0, 6.0))]),
        Connect("f7", "extra"),
        SetParams("f5", {"units": 120}, {"units": 60}),
        MoveNodes({"c1": (doc.position("c1"), (300.0, 20.0))}),
        Rename("f6", "hidden"),
        DeleteItems(["c3"]),
    ]
    states = [doc.graph.to_dict()]
    for c in cmds:
        doc.execute(c)
        assert doc.dirty
        states.append(doc.graph.to_dict())
    assert "hidden" in doc.graph.nodes and engine.Edge("f5", "hidden", 0) in doc.graph.edges
    assert doc.graph.ui["hidden"]["pos"] == original["ui"]["f6"]["pos"]
    assert "c3" not in doc.graph.nodes
    assert doc.position("c1") == (300.0, 20.0)
    for c, state in zip(reversed(cmds), reversed(states[:-1])):
        doc.revert(c)
        assert doc.graph.to_dict() == state
    assert doc.graph.to_dict() == original
    assert not doc.dirty
    for c, state in zip(cmds, states[1:]):
        doc.execute(c)  # redo
        assert doc.graph.to_dict() == state
    assert any(ch.structure for ch in seen) and any(ch.params for ch in seen)
    assert any(ch.moved == {"c1"} for ch in seen) and any(ch.renamed for ch in seen)


def test_refused_commands_change_nothing():
    doc = doc_of(LENET)
    before = doc.graph.to_dict()
    with pytest.raises(engine.CycleError, match="would make a cycle"):
        doc.execute(Connect("f7", "c1"))
    with pytest.raises(engine.GraphStructureError, match="already fed"):
        doc.execute(Connect("in", "f5"))
    with pytest.raises(engine.ParamError, match="units"):
        doc.execute(SetParams("f5", {"units": 120}, {"units": 0}))
    with pytest.raises(engine.GraphStructureError, match="already exists"):
        doc.execute(Rename("f5", "f6"))
    # AddNodes with a bad wire rolls back the nodes it added
    with pytest.raises(engine.GraphStructureError):
        doc.execute(AddNodes([NodeSpec("n1", "Dense", {}, (0, 0))], [engine.Edge("in", "c1", 0)]))
    # a composite rolls back its first part when the second is refused
    with pytest.raises(engine.GraphStructureError):
        doc.execute(Composite([DeleteItems(edges=[engine.Edge("fl", "f5", 0)]),
                               Connect("in", "c1")], "bad"))
    assert doc.graph.to_dict() == before
    assert not doc.dirty


def test_delete_restores_node_and_edge_order_exactly():
    doc = doc_of(LENET)
    before = doc.graph.to_dict()
    cmd = DeleteItems(["s2", "f6"], [engine.Edge("fl", "f5", 0)])
    doc.execute(cmd)
    assert set(doc.graph.nodes) == set(before_ids := [n["id"] for n in before["nodes"]]) - {"s2", "f6"}
    assert len(before_ids) == 12
    assert engine.Edge("fl", "f5", 0) not in doc.graph.edges
    doc.revert(cmd)
    assert json.dumps(doc.graph.to_dict()) == json.dumps(before)


def test_fresh_ids_and_paste():
    doc = doc_of(LENET)
    assert doc.fresh_id("Conv2D") == "conv1"
    assert doc.fresh_id("Dense") == "dense1"
    assert doc.fresh_id("Dense", ["dense1"]) == "dense2"
    assert doc.fresh_id("MaxPool2D") == "pool1"
    assert doc.fresh_id("ReLU") == "relu1"
    frag = make_fragment(doc, ["c1", "a1", "f5"])
    assert [n["id"] for n in frag["nodes"]] == ["c1", "a1", "f5"]
    assert frag["edges"] == [{"src": "c1", "dst": "a1", "port": 0}]
    cmd = paste_command(doc, json.loads(json.dumps(frag)), (40, 40))
    doc.execute(cmd)
    assert {"conv1", "relu1", "dense1"} <= set(doc.graph.nodes)
    assert engine.Edge("conv1", "relu1", 0) in doc.graph.edges
    assert doc.graph.nodes["conv1"].params == doc.graph.nodes["c1"].params
    assert doc.position("conv1") == (doc.position("c1")[0] + 40, doc.position("c1")[1] + 40)
    with pytest.raises(engine.GraphFormatError):
        paste_command(doc, {"format": "something else"})
    with pytest.raises(engine.UnknownLayerError):
        paste_command(doc, {"format": "netbuilder.fragment",
                            "nodes": [{"id": "x", "type": "Nope", "params": {}}]})


def test_save_is_atomic_and_marks_clean(tmp_path):
    doc = doc_of(LENET)
    doc.execute(SetParams("f5", {"units": 120}, {"units": 50}))
    assert doc.dirty
    with pytest.raises(engine.GraphFormatError, match="no file yet"):
        doc.save()
    path = doc.save(tmp_path / "m")
    assert path.name == "m.json" and not doc.dirty and doc.path == path
    assert [p.name for p in tmp_path.iterdir()] == ["m.json"]
    again = Document.read(path)
    assert again == doc.graph
    (tmp_path / "broken.json").write_text("{ not json")
    with pytest.raises(engine.GraphFormatError, match="not valid JSON"):
        Document.read(tmp_path / "broken.json")


def test_analysis_sizes_match_the_engine():
    g = engine.Graph.from_dict(LENET)
    an = analyse(g)
    layers = g.build_layers()
    assert an.total_params == sum(layer.param_count() for layer in layers.values())
    assert an.total_macs == sum(layer.macs() for layer in layers.values())
    assert an.nodes["c1"].out_shape == (6, 28, 28) and an.nodes["c1"].params == 156
    assert an.error_count == 0 and an.complete
    values = sum(int(__import__("math").prod(s)) for nid, s in g.infer_shapes().items()
                 if nid != "out")
    assert an.activation_bytes(64) == values * 4 * 64
    assert fmt_shape((6, 28, 28)) == "6×28×28" and fmt_count(61706) == "61.7 k"


def test_analysis_puts_the_error_on_the_node_that_causes_it():
    d = json.loads(json.dumps(LENET))
    d["edges"] = [e for e in d["edges"] if e["dst"] != "fl" and e["src"] != "fl"]
    d["edges"].append({"src": "s4", "dst": "f5", "port": 0})
    an = analyse(engine.Graph.from_dict(d, validate=False))
    assert set(an.errors) == {"f5", "fl"}
    assert isinstance(an.errors["f5"], engine.ShapeError) and "Flatten" in an.errors["f5"].message
    assert an.nodes["f6"].out_shape is None and an.nodes["f6"].error is None
    assert an.nodes["f5"].summary == "120 units"  # still described without shapes
    assert not an.complete


def test_receptive_fields_of_lenet():
    g = engine.Graph.from_dict(LENET)
    rf = receptive_fields(g, analyse(g))
    assert rf["in"].size == (1, 1)
    assert rf["c1"].size == (5, 5) and rf["c1"].jump == (1, 1)
    assert rf["s2"].size == (6, 6) and rf["s2"].jump == (2, 2)
    assert rf["c3"].size == (14, 14) and rf["c3"].jump == (2, 2)
    assert rf["s4"].size == (16, 16) and rf["s4"].jump == (4, 4)
    assert rf["fl"].whole and rf["f5"].whole
    assert rf["c3"].text() == "14×14 px, stride 2 px"
    assert rf["f5"].text() == "the whole 28×28 input"


def test_receptive_fields_shrink_their_stride_through_upsampling():
    d = small_doc([("in", "Input", {"shape": [1, 16, 16]}),
                   ("c", "Conv2D", {"filters": 2, "kernel_size": 3, "stride": 2, "padding": 1}),
                   ("p", "MaxPool2D", {"pool_size": 2}),
                   ("t", "ConvTranspose2D", {"filters": 2, "kernel_size": 3, "stride": 2,
                                             "padding": 1, "output_padding": 1}),
                   ("u", "Upsample2D", {"mode": "bilinear"}),
                   ("n", "Upsample2D", {"scale": (2, 1)}),
                   ("d", "Conv2D", {"filters": 1, "kernel_size": 3, "dilation": 2})],
                  [("in", "c", 0), ("c", "p", 0), ("p", "t", 0), ("t", "u", 0), ("u", "n", 0),
                   ("n", "d", 0)])
    g = engine.Graph.from_dict(d, validate=False)
    rf = receptive_fields(g, analyse(g))
    assert rf["p"].size == (5, 5) and rf["p"].jump == (4, 4)
    assert rf["t"].size == (9, 9) and rf["t"].jump == (2, 2)  # reads 2 inputs 4 px apart
    assert rf["u"].size == (11, 11) and rf["u"].jump == (1, 1)
    assert rf["n"].size == (11, 11) and rf["n"].jump == (Fraction(1, 2), 1)
    assert rf["n"].text() == "11×11 px, stride 1/2×1 px"
    assert rf["d"].size == (13, 15)  # a dilated 3×3 spans 5 outputs: 4 steps of (1/2, 1)


def test_receptive_field_takes_the_max_over_branches():
    d = small_doc([("in", "Input", {"shape": [1, 16, 16]}),
                   ("a", "Conv2D", {"filters": 2, "kernel_size": 3, "padding": "same"}),
                   ("b", "Conv2D", {"filters": 2, "kernel_size": 7, "padding": "same"}),
                   ("cat", "Concat", {}), ("p", "MaxPool2D", {"pool_size": 2})],
                  [("in", "a", 0), ("in", "b", 0), ("a", "cat", 0), ("b", "cat", 1),
                   ("cat", "p", 0)])
    g = engine.Graph.from_dict(d, validate=False)
    rf = receptive_fields(g, analyse(g))
    assert rf["cat"].size == (7, 7)
    assert rf["p"].size == (8, 8) and rf["p"].jump == (2, 2)


def _crossings(pos, edges, sizes):
    segs = [(pos[s][0] + sizes[s][0] / 2, pos[d][0] + sizes[d][0] / 2, pos[s][1]) for s, d, _ in
            edges]
    n = 0
    for i, (a0, a1, ay) in enumerate(segs):
        for b0, b1, by in segs[i + 1:]:
            if ay == by and (a0 - b0) * (a1 - b1) < 0:
                n += 1
    return n


def test_layout_levels_no_overlaps_straight_chains():
    nodes = ["in", "a", "b", "c", "add", "out"]
    edges = [("in", "a", 0), ("in", "b", 0), ("a", "c", 0), ("c", "add", 1), ("b", "add", 0),
             ("add", "out", 0)]
    sizes = dict.fromkeys(nodes, (180.0, 60.0))
    pos = layered_layout(nodes, edges, sizes)
    for s, d, _ in edges:
        assert pos[d][1] > pos[s][1]
    for i, n in enumerate(nodes):
        for m in nodes[i + 1:]:
            if pos[n][1] == pos[m][1]:
                assert abs(pos[n][0] - pos[m][0]) >= 180
    assert pos["a"][0] == pos["c"][0]  # a chain stays straight
    assert pos["b"][0] < pos["c"][0]  # add's port 0 (b) sits left of port 1 (c)
    assert layered_layout(nodes, edges, sizes) == pos  # deterministic


def test_layout_removes_crossings():
    # two parallel chains wired crosswise at the top: barycentre ordering untangles them
    nodes = ["x", "y", "p", "q", "r", "s"]
    edges = [("x", "q", 0), ("y", "p", 0), ("p", "r", 0), ("q", "s", 0)]
    sizes = dict.fromkeys(nodes, (100.0, 40.0))
    pos = layered_layout(nodes, edges, sizes)
    assert _crossings(pos, edges, sizes) == 0


def test_layout_of_a_300_node_graph_is_quick():
    import random
    import time

    rnd = random.Random(0)
    nodes = [f"n{i}" for i in range(300)]
    edges = []
    for i in range(1, 300):
        edges.append((nodes[rnd.randrange(max(0, i - 6), i)], nodes[i], 0))
        if i % 7 == 0:
            edges.append((nodes[rnd.randrange(max(0, i - 12), i)], nodes[i], 1))
    t = time.perf_counter()
    pos = layered_layout(nodes, edges, dict.fromkeys(nodes, (184.0, 60.0)), grid=20)
    assert time.perf_counter() - t < 5.0
    assert len(pos) == 300
    for s, d, _ in edges:
        assert pos[d][1] > pos[s][1]
