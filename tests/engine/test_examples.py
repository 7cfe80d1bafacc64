"""The shipped example models: valid, laid out along their flow, and trainable from the CLI."""

import io

import numpy as np
import pytest
from imagefiles import idx_bytes

import engine
from engine import cli
from engine.resources import example_names, example_path

EXAMPLES = ["xor_mlp", "digits_cnn", "lenet5", "inception_block", "residual", "resnet20_cifar",
            "mobilenet_shapes"]


def test_the_examples_exist():
    assert set(EXAMPLES) <= set(example_names())


@pytest.mark.parametrize("name", EXAMPLES)
def test_example_is_valid_and_laid_out_along_its_flow(name):
    g = engine.load_graph(example_path(name))
    assert g.training.get("dataset") and g.training.get("epochs")
    engine.TrainSettings.from_dict(g.training)
    assert set(g.ui) == set(g.nodes)
    pos = {nid: tuple(g.ui[nid]["pos"]) for nid in g.nodes}
    assert len(set(pos.values())) == len(pos)
    along = [all(pos[e.src][axis] < pos[e.dst][axis] for e in g.edges) for axis in (0, 1)]
    assert any(along), "every edge should point the same way (the canvas's layered layout)"
    net = engine.compile(g)
    ds = engine.load_dataset(g.training["dataset"])
    engine.data.check_dataset(engine.data.fit_to_model(ds, net), net)


def test_inception_and_residual_have_their_structure():
    g = engine.load_graph(example_path("inception_block"))
    concat = g.nodes_of_type("Concat")[0]
    kernels = sorted(g.nodes[e.src].params.get("kernel_size") for e in g.in_edges(concat)
                     if g.nodes[e.src].type == "Conv2D")
    assert kernels[:3] == [1, 1, 3] or {1, 3, 5} <= set(kernels)
    assert {1, 3, 5} <= {n.params.get("kernel_size") for n in g.nodes.values()
                         if n.type == "Conv2D"}
    r = engine.load_graph(example_path("residual"))
    add = r.nodes_of_type("Add")[0]
    srcs = [e.src for e in r.in_edges(add)]
    assert len(srcs) == 2 and srcs[1] in r.ancestors(srcs[0])  # a skip around the block


def test_resnet20_cifar_is_a_cifar_resnet20():
    """Stem + 3 stages × 3 basic blocks at 16/32/64 channels; the first block of the second
    and third stages strided, with a 1×1 strided conv + BatchNorm shortcut; on 3×32×32."""
    g = engine.load_graph(example_path("resnet20_cifar"))
    net = engine.compile(g)
    assert net.shapes["in"] == (3, 32, 32)
    convs = [g.nodes[n] for n in net.order if g.nodes[n].type == "Conv2D"]
    k3 = [c for c in convs if c.params["kernel_size"] in (3, [3, 3], (3, 3))]
    k1 = [c for c in convs if c not in k3]
    assert len(k3) == 19 and len(k1) == 2  # 19 conv layers + the Dense: ResNet-20
    assert all(net.shapes[c.id][0] in (16, 32, 64) for c in convs)
    assert len(g.nodes_of_type("BatchNorm")) == 21 and len(g.nodes_of_type("Add")) == 9
    assert net.shapes["gap"] == (64,) and net.shapes["logits"] == (10,)
    assert all(net.layers[c.id].p["stride"] == (2, 2) for c in k1)
    assert [net.layers[c.id].p["stride"] for c in k3].count((2, 2)) == 2
    assert g.training["dataset"] == "shapes_color"


def test_mobilenet_is_built_of_depthwise_separable_blocks():
    g = engine.load_graph(example_path("mobilenet_shapes"))
    net = engine.compile(g)
    convs = [net.layers[nid] for nid in net.order if net.layers[nid].type_name == "Conv2D"]
    depthwise = [c for c in convs if c.depthwise]
    assert len(depthwise) == 3
    for dw in depthwise:  # each followed (after its norm and ReLU) by a 1×1 pointwise conv
        pw = convs[convs.index(dw) + 1]
        assert pw.p["kernel_size"] == (1, 1) and pw.p["groups"] == 1
    assert any(c.p["stride"] == (2, 2) for c in depthwise)


def _train(args):
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(args, out, err)
    return code, out.getvalue(), err.getvalue()


@pytest.mark.parametrize("name", EXAMPLES)
def test_example_trains_briefly_from_the_cli(name, tmp_path):
    code, out, err = _train(["train", str(example_path(name)), "--epochs", "1", "--limit",
                             "300", "--out", str(tmp_path)])
    assert code == 0, err
    assert "accuracy" in out
    b = engine.load_bundle(tmp_path / f"{name}.nbmodel")
    assert b.history["epoch"] == [1]


@pytest.mark.slow
def test_digits_cnn_as_shipped_reaches_97_percent(tmp_path):
    code, out, err = _train(["train", str(example_path("digits_cnn")), "--out", str(tmp_path),
                             "--threads", "1"])
    assert code == 0, err
    b = engine.load_bundle(tmp_path / "digits_cnn.nbmodel")
    assert b.manifest["metrics"]["test_accuracy"] >= 0.97, out


def test_lenet5_trains_on_mnist_idx_files(tmp_path):
    rng = np.random.default_rng(0)
    data = tmp_path / "mnist"
    data.mkdir()
    for prefix, n in (("train", 120), ("t10k", 30)):
        x = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        y = (np.arange(n) % 10).astype(np.uint8)
        (data / f"{prefix}-images-idx3-ubyte.gz").write_bytes(idx_bytes(x, compress=True))
        (data / f"{prefix}-labels-idx1-ubyte.gz").write_bytes(idx_bytes(y, compress=True))
    code, out, err = _train(["train", str(example_path("lenet5")), "--data", str(data),
                             "--epochs", "1", "--out", str(tmp_path)])
    assert code == 0, err
    assert "10 classes" in out and "test 30" in out and "on 30 samples" in out


@pytest.mark.slow
def test_mobilenet_reaches_its_stated_accuracy_as_shipped(tmp_path):
    code, _, err = _train(["train", str(example_path("mobilenet_shapes")), "--out",
                           str(tmp_path), "--threads", "1", "--quiet"])
    assert code == 0, err
    metrics = engine.load_bundle(tmp_path / "mobilenet_shapes.nbmodel").manifest["metrics"]
    assert metrics["test_accuracy"] >= 0.97, metrics
