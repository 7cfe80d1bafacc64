"""Freeze / thaw, learning-rate multipliers and "start as identity" as Document commands
(no Qt): what they change, what undo puts back, what a step costs with frozen nodes."""

from __future__ import annotations

import pytest
from monitorkit import example

import engine
from engine.cost import training_cost
from engine.errors import NetBuilderError
from netbuilder.document import Document
from netbuilder.freezing import (
    freeze_command,
    graph_cost,
    has_weights,
    identity_command,
    lr_mult_command,
)


@pytest.fixture()
def doc() -> Document:
    return Document(engine.Graph.from_dict(example("lenet5")))


def test_freeze_takes_the_nodes_with_weights_in_model_order_and_undoes(doc):
    seen = []
    doc.subscribe(seen.append)
    cmd = freeze_command(doc, ["c3", "a1", "c1"], trainable=False)
    assert cmd.text == "Freeze 'c1', 'c3'"
    doc.execute(cmd)
    g = doc.graph
    assert not g.nodes["c1"].trainable and not g.nodes["c3"].trainable and g.nodes["a1"].trainable
    assert seen[-1].frozen == {"c1", "c3"} and not seen[-1].affects_shapes
    assert g.to_dict()["nodes"][1]["trainable"] is False  # saved in the model file
    assert freeze_command(doc, ["c1", "c3"], trainable=False) is None  # nothing to change
    doc.revert(cmd)
    assert g.nodes["c1"].trainable and g.nodes["c3"].trainable
    assert freeze_command(doc, ["a1", "s2"], trainable=False) is None  # no weights
    assert not has_weights(doc, "a1") and has_weights(doc, "f5")


def test_lr_multiplier_command_keeps_the_freeze_state_and_refuses_bad_values(doc):
    cmd = lr_mult_command(doc, "f5", 0.1)
    doc.execute(cmd)
    assert doc.graph.nodes["f5"].lr_mult == 0.1 and doc.graph.nodes["f5"].trainable
    assert lr_mult_command(doc, "f5", 0.1) is None
    with pytest.raises(NetBuilderError):
        doc.execute(lr_mult_command(doc, "f5", -1.0))
    assert doc.graph.nodes["f5"].lr_mult == 0.1  # a refused command changes nothing
    doc.revert(cmd)
    assert doc.graph.nodes["f5"].lr_mult == 1.0


def test_graph_cost_matches_the_compiled_networks_and_says_what_freezing_saves(doc):
    full = graph_cost(doc.graph)
    assert full.frozen == () and full.saved == 0
    assert full == training_cost(engine.compile(doc.graph))
    doc.execute(freeze_command(doc, ["c1", "c3"], trainable=False))
    cost = graph_cost(doc.graph)
    assert cost == training_cost(engine.compile(doc.graph))
    assert cost.frozen == ("c1", "c3") and cost.saved == full.backward - cost.backward > 0
    assert cost.forward == full.forward
    broken = doc.graph.copy()
    broken.remove_node("flatten")
    assert graph_cost(broken) is None


def test_start_as_identity_sizes_a_dense_and_a_conv_to_their_input(doc):
    g = doc.graph
    cmd = identity_command(doc, "f6")
    doc.execute(cmd)
    assert g.nodes["f6"].params["init"] == "identity" and g.nodes["f6"].params["units"] == 120
    assert not doc.analysis.error_count
    doc.revert(cmd)
    assert g.nodes["f6"].params == {"units": 84}
    doc.execute(identity_command(doc, "c3"))
    p = g.nodes["c3"].params
    assert (p["init"], p["filters"], p["padding"], p["stride"], p["kernel_size"]) == \
        ("identity", 6, "same", 1, 5)
    assert not doc.analysis.error_count
    with pytest.raises(NetBuilderError, match="Dense or Conv2D"):
        identity_command(doc, "a1")
