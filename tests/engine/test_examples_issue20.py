"""The issue-20 examples. transformer_sort: two pre-norm blocks built as a graph (LayerNorm →
attention → Add → LayerNorm → Dense-GELU-Dense → Add) over an Embedding and learned
positions, a per-step Dense and cross-entropy over (T, classes), ≥ 95 % per-token test
accuracy as shipped (slow). conv1d_sine_freq: Conv1D / MaxPool1D / GlobalAvgPool1D after a
Permute on the sine_freq sequences. Both valid, laid out and trainable from the CLI."""

import io
import re

import pytest

import engine
from engine import cli
from engine.resources import example_path

EXAMPLES = ["transformer_sort", "conv1d_sine_freq"]


def _run(args):
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(args, out, err)
    return code, out.getvalue(), err.getvalue()


def _follow(g, nid):
    """The one node ``nid`` feeds (its only out-edge's destination)."""
    (edge,) = [e for e in g.edges if e.src == nid and g.nodes[e.dst].type != "Add"] or \
        [e for e in g.edges if e.src == nid]
    return edge.dst


@pytest.mark.parametrize("name", EXAMPLES)
def test_is_valid_laid_out_and_fits_its_dataset(name):
    g = engine.load_graph(example_path(name))
    engine.TrainSettings.from_dict(g.training)
    assert set(g.ui) == set(g.nodes)
    pos = {nid: tuple(g.ui[nid]["pos"]) for nid in g.nodes}
    assert len(set(pos.values())) == len(pos)
    assert all(pos[e.src][1] < pos[e.dst][1] for e in g.edges)
    net = engine.compile(g)
    ds = engine.load_dataset(g.training["dataset"]).take(64)
    engine.data.check_dataset(engine.data.fit_to_model(ds, net), net)


def test_transformer_sort_has_a_class_per_step_and_conv1d_reads_channels_first():
    g = engine.load_graph(example_path("transformer_sort"))
    assert g.training["dataset"]["name"] == "sort_tokens"
    assert engine.compile(g).layers["logits"].out_shape == (8, 10)
    c = engine.compile(engine.load_graph(example_path("conv1d_sine_freq")))
    assert c.layers["to_channels"].out_shape == (1, 50)
    assert [t for t in ("Conv1D", "MaxPool1D", "GlobalAvgPool1D")
            if not c.graph.nodes_of_type(t)] == []


def test_each_transformer_block_is_the_pre_norm_graph():
    g = engine.load_graph(example_path("transformer_sort"))
    adds = g.nodes_of_type("Add")
    assert len(adds) == 4 and len(g.nodes_of_type("MultiHeadAttention")) == 2
    for first in ("b1_ln1", "b2_ln1"):
        chain, nid = [], first
        for _ in range(8):
            chain.append(g.nodes[nid].type)
            nid = _follow(g, nid)
        assert chain == ["LayerNorm", "MultiHeadAttention", "Add", "LayerNorm", "Dense",
                         "GELU", "Dense", "Add"], chain
    for add in adds:  # every Add joins the block's input (the skip) and its branch
        srcs = [e.src for e in g.in_edges(add)]
        assert len(srcs) == 2 and srcs[0] in g.ancestors(srcs[1])


@pytest.mark.parametrize("name", EXAMPLES)
def test_trains_briefly_from_the_cli(tmp_path, name):
    code, out, err = _run(["train", name, "--epochs", "1", "--limit", "400",
                           "--out", str(tmp_path), "--quiet"])
    assert code == 0, err
    assert re.search(r"^test accuracy [0-9.]+%", out, re.M), out
    b = engine.load_bundle(tmp_path / f"{name}.nbmodel")
    assert b.history["epoch"] == [1]


@pytest.mark.slow
def test_as_shipped_sorts_at_least_95_percent_of_the_tokens(tmp_path):
    code, out, err = _run(["train", "transformer_sort", "--out", str(tmp_path), "--quiet"])
    assert code == 0, err
    b = engine.load_bundle(tmp_path / "transformer_sort.nbmodel")
    assert b.manifest["metrics"]["test_accuracy"] >= 0.95, out
