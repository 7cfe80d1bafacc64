"""The model zoo: every template builds and compiles; ``netbuilder new`` writes it."""

import io

import pytest

import engine
from engine import cli
from engine.zoo import TEMPLATES


@pytest.mark.parametrize("name", list(TEMPLATES))
def test_template_is_a_valid_model_that_compiles(name):
    g = TEMPLATES[name].graph()
    assert g.validate()
    net = engine.compile(g)
    assert net.param_count() > 0
    assert engine.Graph.from_dict(g.to_dict()) == g
    spec = g.training["dataset"]
    assert (spec["name"] if isinstance(spec, dict) else spec) in (
        "mnist", "cifar10", "shapes", "seg_shapes", "sort_tokens")


@pytest.mark.parametrize("name", ["mobilenet_shapes", "unet_shapes", "transformer_sort"])
def test_templates_of_the_modern_layers_are_the_shipped_examples(name):
    from engine.resources import example_path
    t = TEMPLATES[name]
    assert t.graph() == engine.load_graph(example_path(name))
    assert t.graph() is not t.graph()  # a fresh model each time
    net = engine.compile(t.graph())
    spec = t.graph().training["dataset"]
    ds = engine.load_dataset(spec).take(8)
    engine.data.check_dataset(engine.data.fit_to_model(ds, net), net)


def test_the_unet_template_scores_every_pixel_of_its_input():
    g = TEMPLATES["unet_shapes"].graph()
    net = engine.compile(g)
    assert net.shapes["out"] == (4, 32, 32)
    assert net.layers["out"].p["loss"] == "pixel_cross_entropy"
    assert {"ConvTranspose2D", "Concat", "MaxPool2D"} <= {n.type for n in g.nodes.values()}


def test_resnet20_is_built_from_nine_blocks():
    g = TEMPLATES["resnet20_cifar10"].graph()
    blocks = [n for n in g.nodes.values() if n.block is not None]
    assert len(blocks) == 9 and len(g.nodes) == 16
    net = engine.compile(g)
    convs = [n for n in net.graph.nodes.values() if n.type == "Conv2D"]
    assert len(convs) == 1 + 9 * 2 + 2  # stem, two per block, two projection shortcuts
    assert net.shapes["s3b3-relu2"] == (64, 8, 8)
    assert net.param_count() == 272_474
    assert "s2b1-proj.weight" in net.params


def run(argv):
    out, err = io.StringIO(), io.StringIO()
    return cli.main(argv, out, err), out.getvalue(), err.getvalue()


def test_netbuilder_new_writes_the_model_file_in_the_current_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, _ = run(["new", "resnet20_cifar10"])
    assert code == 0 and "wrote resnet20_cifar10.json" in out and "74 layers" in out
    g = engine.load_graph(tmp_path / "resnet20_cifar10.json")
    assert g == TEMPLATES["resnet20_cifar10"].graph()
    code, _, err = run(["new", "resnet20_cifar10"])
    assert code == 2 and "already exists" in err
    code, _, _ = run(["new", "resnet20_cifar10", "--force"])
    assert code == 0


def test_netbuilder_new_bundle_has_fresh_weights(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, _ = run(["new", "lenet5_mnist", "--bundle", "--seed", "3"])
    assert code == 0 and "lenet5_mnist.nbmodel" in out
    b = engine.load_bundle(tmp_path / "lenet5_mnist.nbmodel")
    assert b.net.param_count() == 61_706


def test_netbuilder_new_lists_and_refuses_unknown_names():
    code, out, _ = run(["new"])
    assert code == 0
    for name in TEMPLATES:
        assert name in out
    code, _, err = run(["new", "alexnet"])
    assert code == 2 and "no template named 'alexnet'" in err and "lenet5_mnist" in err


def test_resnet_depths_build_and_refuse_what_is_not_6n_plus_2():
    from engine.zoo import resnet_cifar10
    g = engine.Graph.from_dict(resnet_cifar10(56))
    assert sum(n.block is not None for n in g.nodes.values()) == 27
    assert len(g.flatten().nodes) == 200
    with pytest.raises(ValueError, match="6n"):
        resnet_cifar10(21)
