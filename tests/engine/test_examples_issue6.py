"""The issue-6 examples (spatial transformer, recurrent, embedding, autoencoder, multi-task):
valid, laid out, built as their names say, and trainable from the CLI as shipped; the CLI
reports every head of a multi-task model."""

import io
import re

import numpy as np
import pytest
from test_examples import EXAMPLES as CORE_EXAMPLES

import engine
from engine import cli
from engine.resources import example_names, example_path
from engine.training import EpochEvent

EXAMPLES = ["stn_shapes", "stn_shapes_baseline", "lstm_adding", "birnn_sum_vs_concat",
            "embedding_tokens", "onehot_tokens", "digits_autoencoder", "multitask"]


def _run(args):
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(args, out, err)
    return code, out.getvalue(), err.getvalue()


def _graph(name):
    return engine.load_graph(example_path(name))


def test_every_shipped_example_is_covered_by_a_test():
    from test_examples_issue20 import EXAMPLES as ISSUE20_EXAMPLES
    assert set(example_names()) == set(CORE_EXAMPLES) | set(EXAMPLES) | \
        set(ISSUE20_EXAMPLES) | {"unet_shapes"}  # test_examples_unet.py


@pytest.mark.parametrize("name", EXAMPLES)
def test_example_is_valid_laid_out_and_fits_its_dataset(name):
    g = _graph(name)
    assert g.name and g.training.get("dataset") and g.training.get("epochs")
    engine.TrainSettings.from_dict(g.training)
    assert set(g.ui) == set(g.nodes)
    pos = {nid: tuple(g.ui[nid]["pos"]) for nid in g.nodes}
    assert len(set(pos.values())) == len(pos)
    along = [all(pos[e.src][axis] < pos[e.dst][axis] for e in g.edges) for axis in (0, 1)]
    assert any(along), "every edge should point the same way (the canvas's layered layout)"
    net = engine.compile(g)
    ds = engine.load_dataset(g.training["dataset"]).take(64)
    engine.data.check_dataset(engine.data.fit_to_model(ds, net), net)


@pytest.mark.parametrize("name", EXAMPLES)
def test_example_trains_briefly_from_the_cli(name, tmp_path):
    code, out, err = _run(["train", str(example_path(name)), "--epochs", "1", "--limit", "300",
                           "--out", str(tmp_path), "--quiet"])
    assert code == 0, err
    assert re.search(r"^test .*loss [0-9.]+ on [0-9]+ samples$", out, re.M), out
    b = engine.load_bundle(tmp_path / f"{name}.nbmodel")
    assert b.history["epoch"] == [1]
    assert np.isfinite(b.manifest["metrics"]["test_loss"])
    outputs = _graph(name).output_ids()
    if len(outputs) > 1:
        heads = b.manifest["metrics"]["test_heads"]
        assert set(heads) == set(outputs)
        for oid in outputs:
            assert f"  head {oid}: " in out


def test_stn_starts_as_the_identity_and_the_baseline_is_the_same_cnn():
    g = _graph("stn_shapes")
    stn = g.nodes_of_type("SpatialTransformer")[0]
    image, theta = sorted(g.in_edges(stn), key=lambda e: e.port)
    assert g.nodes[image.src].type == "Input"
    zero = [nid for nid in g.ancestors(theta.src) | {theta.src}
            if g.nodes[nid].type == "Dense" and g.nodes[nid].params.get("init") == "zeros"]
    assert zero and g.nodes[zero[0]].params["units"] == 6
    net = engine.compile(g, seed=3)
    x = engine.load_dataset("shapes_distorted", n=4).x
    net.forward(x, train=False)
    np.testing.assert_allclose(net.acts[stn], x, atol=1e-6)

    def after(graph, start):
        chain, nid = [], start
        while True:
            nxt = [e.dst for e in graph.edges if e.src == nid]
            if not nxt:
                return chain
            nid = nxt[0]
            chain.append((graph.nodes[nid].type, graph.nodes[nid].params))
    base = _graph("stn_shapes_baseline")
    assert after(g, stn) == after(base, base.input_ids()[0])
    assert g.training == base.training
    assert "SpatialTransformer" not in {n.type for n in base.nodes.values()}


def test_birnn_compares_sum_and_concat_heads_on_the_same_input():
    g = _graph("birnn_sum_vs_concat")
    rnns = {g.nodes[n].params["merge"]: n for t in ("SimpleRNN", "LSTM", "GRU")
            for n in g.nodes_of_type(t)}
    assert set(rnns) == {"sum", "concat"}
    for nid in rnns.values():
        assert g.nodes[nid].params["direction"] == "bidirectional"
    shapes = g.infer_shapes()
    units = g.nodes[rnns["sum"]].params["units"]
    assert shapes[rnns["sum"]] == (units,) and shapes[rnns["concat"]] == (2 * units,)
    outs = g.output_ids()
    assert len(outs) == 2
    owners = [{r for r in rnns.values() if r in g.ancestors(o)} for o in outs]
    assert sorted(map(len, owners)) == [1, 1] and owners[0] != owners[1]
    assert "sum" in g.name and "concat" in g.name


def test_embedding_and_one_hot_examples_learn_the_same_tokens():
    emb, hot = _graph("embedding_tokens"), _graph("onehot_tokens")
    layer = emb.nodes[emb.nodes_of_type("Embedding")[0]].params
    ds_emb = engine.load_dataset(emb.training["dataset"]).take(50)
    ds_hot = engine.load_dataset(hot.training["dataset"]).take(50)
    np.testing.assert_array_equal(ds_hot.x.argmax(axis=2), ds_emb.x)
    np.testing.assert_array_equal(ds_hot.y, ds_emb.y)
    assert ds_hot.sample_shape == (*ds_emb.sample_shape, layer["vocab"])
    assert not hot.nodes_of_type("Embedding")
    assert {k: v for k, v in emb.training.items() if k != "dataset"} == \
        {k: v for k, v in hot.training.items() if k != "dataset"}


def test_autoencoder_reconstructs_its_input_through_a_narrow_bottleneck():
    g = _graph("digits_autoencoder")
    (out,) = g.output_ids()
    assert g.nodes[out].params["target"] == "x" and g.nodes[out].params["loss"] == "mse"
    shapes = g.infer_shapes()
    assert shapes[out] == shapes[g.input_ids()[0]]
    widths = [shapes[n][0] for n in g.nodes_of_type("Dense")]
    assert min(widths) <= 8


def test_multitask_has_a_class_head_and_a_weighted_regression_head():
    g = _graph("multitask")
    assert g.training["dataset"] == "shapes"
    heads = {g.nodes[o].params.get("loss"): g.nodes[o].params for o in g.output_ids()}
    assert set(heads) == {"cross_entropy", "mse"}
    assert heads["mse"]["target"] in ("size", "angle") and heads["mse"]["weight"] != 1.0
    assert heads["cross_entropy"].get("target", "y") == "y"


def test_epoch_lines_show_each_head_of_a_multi_task_model():
    s = io.StringIO()
    p = cli.Progress(s)
    heads = {"shape": {"train_loss": 0.5, "train_accuracy": 0.8, "val_loss": 0.6,
                       "val_accuracy": 0.75},
             "size": {"train_loss": 0.0123, "val_loss": 0.0234}}
    p(EpochEvent(1, 3, 10, 0.6, 0.8, 0.8, 0.75, heads, 0.01, 2.0, 2.0, 4.0, 100.0, True))
    lines = s.getvalue().splitlines()
    assert len(lines) == 3 and lines[0].startswith("epoch 1/3")
    assert lines[1] == "    shape: loss 0.5000  acc  80.0%  val_loss 0.6000  val_acc  75.0%"
    assert lines[2] == "    size: loss 0.0123  val_loss 0.0234"
    s = io.StringIO()
    cli.Progress(s)(EpochEvent(1, 3, 10, 0.6, 0.8, 0.8, 0.75, {"out": heads["shape"]}, 0.01,
                               2.0, 2.0, 4.0, 100.0, True))
    assert len(s.getvalue().splitlines()) == 1


@pytest.mark.slow
def test_stn_beats_the_same_cnn_without_it_as_shipped(tmp_path):
    acc = {}
    for name in ("stn_shapes", "stn_shapes_baseline"):
        code, _, err = _run(["train", str(example_path(name)), "--out", str(tmp_path),
                               "--threads", "1", "--quiet"])
        assert code == 0, err
        acc[name] = engine.load_bundle(tmp_path / f"{name}.nbmodel").manifest["metrics"][
            "test_accuracy"]
    assert acc["stn_shapes"] > acc["stn_shapes_baseline"] + 0.01, acc
