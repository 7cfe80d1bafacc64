"""Blocks in the engine: the file format (version 2, nested graphs), flattening with derived
ids, training and prediction identical to the model drawn flat, and the exporters."""

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
from blockmodels import RES, blocked, drawn_flat, resnet_doc

import engine
from engine import GraphFormatError, GraphStructureError, ShapeError, block_edit
from engine.blocks import derived_id
from engine.resources import example_path


def batch(g, n=5, seed=3):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 2, 6, 6)).astype(np.float32)
    y = rng.integers(0, 3, n)
    return x, y


def test_group_makes_one_block_node_with_ports_and_output():
    g = blocked()
    node = g.nodes["res1"]
    assert node.type == "Block" and node.block is not None
    assert node.block.inputs == ["x"] and node.block.output == "relu2"
    assert list(node.block.nodes) == RES
    assert {(e.src, e.dst, e.port) for e in node.block.edges} >= {("x", "conv1", 0),
                                                                  ("x", "add", 1)}
    assert [(e.src, e.dst, e.port) for e in g.in_edges("res1")] == [("relu0", "res1", 0)]
    assert [(e.src, e.dst) for e in g.out_edges("res1")] == [("res1", "gap")]
    assert len(g.nodes) == 7
    assert g.infer_shapes()["res1"] == (4, 6, 6)


def test_flatten_derives_ids_deterministically():
    g = blocked(3)
    flat = g.flatten()
    assert [n for n in flat.nodes if "conv1" in n] == ["res1-conv1", "res1_2-conv1",
                                                        "res1_3-conv1"]
    assert flat.to_dict()["nodes"] == blocked(3).flatten().to_dict()["nodes"]
    assert derived_id("a", "b") == "a-b"
    long = derived_id("s" * 40, "c" * 40)
    assert len(long) == 64 and long == derived_id("s" * 40, "c" * 40)
    assert long != derived_id("s" * 40, "c" * 39 + "d")


@pytest.mark.parametrize("n_repeat", [1, 3])
def test_blocked_model_trains_and_predicts_like_the_flat_drawing(n_repeat):
    g, f = blocked(n_repeat), drawn_flat(n_repeat)
    net_b, net_f = engine.compile(g, seed=5), engine.compile(f, seed=5)
    assert net_b.param_count() == net_f.param_count()
    assert sorted(net_b.params) == sorted(net_f.params)
    for k in net_f.params:
        np.testing.assert_array_equal(net_b.params[k], net_f.params[k])
    x, y = batch(g)
    opt_b, opt_f = engine.SGD(lr=0.05, momentum=0.9), engine.SGD(lr=0.05, momentum=0.9)
    losses_b = [net_b.train_step(x, y, opt_b) for _ in range(3)]
    losses_f = [net_f.train_step(x, y, opt_f) for _ in range(3)]
    assert losses_b == losses_f
    np.testing.assert_array_equal(net_b.forward(x, train=False), net_f.forward(x, train=False))
    for k in net_f.buffers:
        np.testing.assert_array_equal(net_b.buffers[k], net_f.buffers[k])


def test_file_round_trip_keeps_blocks(tmp_path):
    g = blocked(2)
    doc = g.to_dict()
    assert doc["version"] == 2
    assert doc["nodes"][3]["type"] == "Block" and doc["nodes"][3]["block"]["name"] == "ResBlock"
    engine.save_graph(g, tmp_path / "m.json")
    back = engine.load_graph(tmp_path / "m.json")
    assert back == g and back.to_dict() == json.loads(json.dumps(doc))
    assert back.nodes["res1_2"].block.nodes["conv1"].params["filters"] == 4


def test_bundle_round_trip_keeps_blocks_and_weights(tmp_path):
    net = engine.compile(blocked(2), seed=1)
    x, _ = batch(net.graph)
    engine.save_bundle(tmp_path / "m.nbmodel", net)
    b = engine.load_bundle(tmp_path / "m.nbmodel")
    assert b.graph.has_blocks() and "res1_2" in b.graph.nodes
    np.testing.assert_array_equal(b.net.forward(x, train=False), net.forward(x, train=False))


def test_older_files_open_unchanged_and_stay_version_1():
    raw = json.loads(example_path("lenet5").read_text())
    g = engine.Graph.from_dict(raw)
    assert g.to_dict()["version"] == 1
    assert g.to_dict()["nodes"] == raw["nodes"]


def test_a_newer_file_is_refused_naming_its_version():
    doc = blocked().to_dict()
    doc["version"] = 3
    with pytest.raises(GraphFormatError, match="version 3 is newer"):
        engine.Graph.from_dict(doc)


def test_a_version_1_file_may_not_hold_blocks():
    doc = blocked().to_dict()
    doc["version"] = 1
    with pytest.raises(GraphFormatError, match="blocks need model file version 2"):
        engine.Graph.from_dict(doc)


@pytest.mark.parametrize("mutate, match", [
    (lambda b: b.update(output="nope"), "is not one of its nodes"),
    (lambda b: b["edges"].append({"src": "relu2", "dst": "conv1", "port": 0}), "no free input"),
    (lambda b: b["nodes"].append({"id": "o", "type": "Output"}), "holds no Output"),
    (lambda b: b.update(inputs=[]), "has no input port"),
])
def test_broken_block_contents_are_refused_naming_the_block(mutate, match):
    doc = blocked().to_dict()
    mutate(doc["nodes"][3]["block"])
    with pytest.raises((GraphStructureError, GraphFormatError), match=match) as ei:
        engine.Graph.from_dict(doc)
    assert "res1" in str(ei.value)


def test_a_shape_error_inside_a_block_marks_the_block():
    g = blocked()
    g.set_params("conv0", {"filters": 6, "kernel_size": 3, "padding": "same"})
    d = g.diagnose()
    assert set(d.errors) == {"res1"}
    assert isinstance(d.errors["res1"], ShapeError)
    assert "Block 'res1' (ResBlock)" in d.errors["res1"].message
    assert "add" in d.errors["res1"].message


def test_nested_blocks_flatten_with_chained_ids():
    g = block_edit.group(blocked(2), ["res1", "res1_2"], "stage1", "Stage")
    assert g.nodes["stage1"].block.nodes["res1"].block is not None
    net = engine.compile(g, seed=5)
    assert "stage1-res1_2-conv2.weight" in net.params
    g2 = engine.Graph.from_dict(json.loads(g.to_json()))
    assert g2 == g
    flat_net = engine.compile(drawn_flat(2), seed=0)
    x, _ = batch(g)
    renamed = {k.replace("stage1-", ""): v for k, v in net.state_dict().items()}
    flat_net.load_state_dict(renamed)
    np.testing.assert_allclose(net.forward(x, train=False), flat_net.forward(x, train=False),
                               rtol=0, atol=0)


def test_ungroup_and_expand_collapse_give_the_graph_back():
    flat = engine.Graph.from_dict(resnet_doc([""]))
    g = blocked()
    back = block_edit.ungroup(g, "res1")
    assert set(back.nodes) == set(flat.nodes)
    assert {(e.src, e.dst, e.port) for e in back.edges} == \
        {(e.src, e.dst, e.port) for e in flat.edges}
    opened = block_edit.expand(g, "res1")
    assert "res1-conv1" in opened.nodes and "res1" not in opened.nodes
    assert block_edit.expanded_blocks(opened) == {"res1": ("ResBlock",
                                                           [f"res1-{n}" for n in RES])}
    below = [n for n in opened.nodes if n not in g.nodes or n in ("gap", "fc", "out")]
    assert opened.ui["gap"]["pos"][1] > g.ui["gap"]["pos"][1]  # moved down to make room
    assert len(below) == len(RES) + 3
    folded = block_edit.collapse(opened, "res1")
    assert folded.to_dict()["nodes"] == g.to_dict()["nodes"]
    assert folded.ui == g.ui  # everything back where it was


@pytest.mark.parametrize("ids, match", [
    (["conv1", "relu1"], "'conv1' and 'relu1' both feed"),
    (["bn1", "add"], "one output"),
    (["in", "conv0"], "holds no Input"),
])
def test_group_refuses_selections_that_are_not_one_block(ids, match):
    g = engine.Graph.from_dict(resnet_doc([""]))
    with pytest.raises(GraphStructureError, match=match):
        block_edit.group(g, ids, "b", "B")


def test_repeat_needs_a_one_input_block():
    g = engine.Graph.from_dict(resnet_doc([""]))
    g = block_edit.group(g, ["conv2", "add"], "two", "Two")
    assert len(g.nodes["two"].block.inputs) == 2
    with pytest.raises(GraphStructureError, match="one input"):
        block_edit.repeat(g, "two", 3)


def test_onnx_export_of_nested_blocks_matches_onnxruntime():
    ort = pytest.importorskip("onnxruntime")
    from engine.export import build_onnx
    g = block_edit.group(blocked(2), ["res1", "res1_2"], "stage1", "Stage")
    net = engine.compile(g, seed=2)
    x, _ = batch(g)
    sess = ort.InferenceSession(build_onnx(net).SerializeToString(),
                                providers=["CPUExecutionProvider"])
    got = sess.run(None, {sess.get_inputs()[0].name: x})[0]
    np.testing.assert_allclose(got, net.forward(x, train=False), rtol=1e-4, atol=1e-5)


def test_pytorch_export_keeps_each_block_as_a_module_class(tmp_path):
    torch = pytest.importorskip("torch")
    from engine.export import export_pytorch
    g = block_edit.group(blocked(3), ["res1", "res1_2"], "stage1", "Stage")
    net = engine.compile(g, seed=2)
    x, y = batch(g)
    opt = engine.SGD(lr=0.05)
    net.train_step(x, y, opt)
    report = export_pytorch(net, tmp_path / "tiny.py")
    text = Path(report["script"]).read_text()
    assert text.count("class ResBlock(nn.Module):") == 1
    assert "class Stage(nn.Module):" in text and "ResBlock2" not in text
    assert "self.res1_3 = ResBlock()" in text and "self.stage1 = Stage()" in text
    spec = importlib.util.spec_from_file_location("nb_blocks_export", report["script"])
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    model = mod.load_weights(mod.TinyResnet()).eval()
    keys = set(model.state_dict())
    assert "stage1.res1_2.conv1.weight" in keys and "res1_3.bn1.running_mean" in keys
    with torch.no_grad():
        got = model(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(got, net.forward(x, train=False), rtol=1e-4, atol=1e-5)
