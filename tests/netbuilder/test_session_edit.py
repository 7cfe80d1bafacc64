"""Editing a paused run through the session, without Qt: an edited graph replaces the
network on Resume (or at once with ``edit``), the nodes whose id and shapes are unchanged
keep their weights bit for bit, changed ones start fresh, an invalid graph or one the data
does not fit is refused with nothing lost, and freezing a node while paused keeps its
weights put from then on."""

from __future__ import annotations

import numpy as np
import pytest
from monitorkit import example
from test_session import pump_until, start

import engine
from engine.errors import NetBuilderError
from netbuilder.session import RunState


def paused_run(epochs: int = 10_000):
    """xor_mlp (in, hidden 8, tanh, logits, out) paused after a few batches."""
    s, run, states = start(example("xor_mlp", epochs=epochs))
    pump_until(s, lambda: s.state == RunState.RUNNING and len(run.steps) >= 5)
    assert s.pause()
    pump_until(s, lambda: s.loop.trainer.status == "paused")
    s.process_events(0.05)
    return s, run, states


def weights(s) -> dict[str, np.ndarray]:
    """A copy of the paused network's parameters and buffers (read while it waits)."""
    net = s.loop.net
    return {k: v.copy() for k, v in {**net.params, **net.buffers}.items()}


def edited(graph: engine.Graph, node: str, **params) -> engine.Graph:
    g = graph.copy()
    g.set_params(node, {**g.nodes[node].params, **params})
    return g


def with_dropout_after(graph: engine.Graph, after: str, rate: float) -> engine.Graph:
    """``graph`` with a Dropout spliced in after ``after``."""
    g = graph.copy()
    out = g.out_edges(after)[0]
    g.disconnect(out)
    g.add_node(engine.Node("drop", "Dropout", {"rate": rate}))
    g.connect(after, "drop")
    g.connect("drop", out.dst, out.port)
    return g


def collect_edits(s) -> list:
    got = []
    s.edited.connect(lambda run, out: got.append(out))
    return got


def test_an_edit_applied_while_paused_keeps_unchanged_nodes_bit_for_bit():
    s, run, _ = paused_run()
    got = collect_edits(s)
    before = weights(s)
    old_net = s.loop.net
    g = edited(with_dropout_after(run.graph, "tanh", 0.1), "hidden", units=16)
    assert s.is_edited(g)
    assert s.edit(g) and s.state == RunState.PAUSED
    pump_until(s, lambda: bool(got))
    out = got[0]
    assert out.ok and out.error == "" and out.step == len(run.steps)
    rep = out.report
    assert rep.fate("hidden").fate == "reinitialised"
    assert rep.fate("hidden").reason == "units 8→16"
    assert rep.fate("logits").fate == "reinitialised"  # its input widened
    assert rep.fate("drop").fate == "added"
    assert s.loop.net is not old_net and s.loop.net.layers["hidden"].p["units"] == 16
    # a second edit that only adds a layer: every weight is the one from before it
    before = weights(s)
    assert run.graph == g and not s.is_edited(g)
    s.edit(edited(g, "drop", rate=0.3))
    pump_until(s, lambda: len(got) == 2)
    rep = got[1].report
    assert rep.kept == ["hidden", "logits"]
    assert rep.fate("drop").fate == "kept" and rep.fate("drop").reason == "rate 0.1→0.3"
    after = weights(s)
    assert after.keys() == before.keys()
    for k in before:
        np.testing.assert_array_equal(after[k], before[k])
    assert run.graph.nodes["drop"].params["rate"] == 0.3 and len(run.edits) == 2
    s.resume()
    pump_until(s, lambda: len(run.steps) > out.step + 3)
    s.stop()
    assert s.run_until_done(120)
    assert set(run.weights) == {"hidden.weight", "hidden.bias", "logits.weight", "logits.bias"}
    assert run.weights["hidden.weight"].shape == (16, 2)
    assert s.final_net.layers["hidden"].p["units"] == 16


def test_resume_with_an_edited_graph_trains_it_and_reports_the_carry():
    s, run, states = paused_run()
    got = collect_edits(s)
    g = edited(run.graph, "logits", init="he")  # no shape change: all weights kept
    n = len(run.steps)
    assert s.resume(g) and s.state == RunState.RUNNING
    pump_until(s, lambda: bool(got) and len(run.steps) > n + 3)
    assert got[0].report.kept == ["hidden", "logits"]
    assert got[0].report.fate("logits").reason == "init xavier→he"
    assert states[-2:] == ["paused", "running"]
    s.stop()
    assert s.run_until_done(120) and run.graph == g


def test_an_invalid_graph_is_refused_and_the_run_stays_paused():
    s, run, states = paused_run()
    n_states = len(states)
    got = collect_edits(s)
    before = weights(s)
    bad = run.graph.copy()
    bad.disconnect(bad.in_edges("logits")[0])
    with pytest.raises(NetBuilderError) as err:
        s.resume(bad)
    assert err.value.node_id == "logits"
    assert s.state == RunState.PAUSED and not got and len(states) == n_states
    s.process_events(0.2)
    for k, v in weights(s).items():
        np.testing.assert_array_equal(v, before[k])
    s.stop()
    assert s.run_until_done(120)


def test_a_graph_the_data_does_not_fit_is_refused_by_the_loop_with_nothing_lost():
    s, run, states = paused_run()
    got = collect_edits(s)
    before = weights(s)
    old_net, old_graph = s.loop.net, run.graph
    g = edited(run.graph, "in", shape=[3])
    assert s.resume(g) and s.state == RunState.RUNNING
    pump_until(s, lambda: bool(got))
    out = got[0]
    assert not out.ok and out.error and out.node == "in"
    assert s.state == RunState.PAUSED and states[-2:] == ["running", "paused"]
    assert s.loop.net is old_net and run.graph == old_graph and run.edits == []
    for k, v in weights(s).items():
        np.testing.assert_array_equal(v, before[k])
    n = len(run.steps)
    assert s.resume()  # the old model carries on
    pump_until(s, lambda: len(run.steps) > n + 2)
    s.stop()
    assert s.run_until_done(120) and run.status == "stopped"


def test_freezing_a_node_while_paused_keeps_its_weights_put_on_resume():
    s, run, _ = paused_run()
    got = collect_edits(s)
    before = weights(s)
    g = run.graph.copy()
    g.set_training("hidden", trainable=False)
    n = len(run.steps)
    assert s.resume(g)
    pump_until(s, lambda: bool(got) and len(run.steps) > n + 5)
    assert got[0].report.kept == ["hidden", "logits"]
    s.stop()
    assert s.run_until_done(120)
    np.testing.assert_array_equal(run.weights["hidden.weight"], before["hidden.weight"])
    np.testing.assert_array_equal(run.weights["hidden.bias"], before["hidden.bias"])
    assert not np.array_equal(run.weights["logits.weight"], before["logits.weight"])
    assert not run.graph.nodes["hidden"].trainable


def test_step_with_an_edited_graph_trains_one_batch_of_it():
    s, run, _ = paused_run()
    got = collect_edits(s)
    g = edited(run.graph, "hidden", units=4)
    n = len(run.steps)
    assert s.step(g) and s.state == RunState.PAUSED
    pump_until(s, lambda: bool(got) and len(run.steps) == n + 1)
    assert got[0].report.reinitialised == ["hidden", "logits"]
    assert s.loop.net.params["hidden.weight"].shape == (4, 2)
    s.stop()
    assert s.run_until_done(120)


def test_moved_nodes_and_training_settings_are_not_an_edit_of_the_model():
    s, run, _ = paused_run()
    g = run.graph.copy()
    g.ui["hidden"] = {"pos": [500.0, 20.0]}
    g.training = {**g.training, "epochs": 3}
    assert not s.is_edited(g)
    assert not s.edit(g)  # nothing to swap: the run stays on its network
    net = s.loop.net
    assert s.resume(g) and s.state == RunState.RUNNING
    s.stop()
    assert s.run_until_done(120) and s.final_net is net and run.edits == []


def test_pause_right_after_resume_with_an_edit_stays_paused_on_the_edited_network():
    s, run, states = paused_run()
    n_states = len(states)
    got = collect_edits(s)
    g = edited(run.graph, "hidden", units=12)
    assert s.resume(g) and s.pause()  # before or after the swap: the run ends up paused
    pump_until(s, lambda: bool(got))
    pump_until(s, lambda: s.loop.trainer.status == "paused")
    s.process_events(0.2)
    n = len(run.steps)
    s.process_events(0.3)
    assert s.state == RunState.PAUSED and len(run.steps) == n and s.loop.trainer.paused
    assert got[0].ok and s.loop.net.layers["hidden"].p["units"] == 12
    assert states[n_states:] == ["running", "paused"]
    s.stop()
    assert s.run_until_done(120)
