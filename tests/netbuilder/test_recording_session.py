"""The flight recording of a run made through the session (no Qt): what the timeline
reads back per epoch, in the run's bundle and within its budget."""

from __future__ import annotations

import time

import numpy as np
from monitorkit import example, sine_mlp

import engine
from engine.recorder import read_recording
from netbuilder.session import RunSession
from netbuilder.session.probes import MonitorRequest, probe_label
from netbuilder.session.recording import frame_at
from netbuilder.session.runs import run_from_bundle


def lenet(epochs: int = 3, **extra) -> dict:
    return example("lenet5", epochs=epochs, limit=200, batch_size=32, **extra)


def train(doc: dict, **start) -> tuple[RunSession, object, list]:
    g = engine.Graph.from_dict(doc)
    s = RunSession()
    grew: list[list[int]] = []
    s.recorded.connect(lambda run: grew.append(
        None if run.recording is None else list(run.recording.epochs)))
    run = s.start(g, g.training, **start)
    end = time.monotonic() + 300
    while s.loop is not None:
        assert time.monotonic() < end, "the run never ended"
        s.process_events(0.05)
    return s, run, grew


def test_a_run_records_every_epoch_with_what_the_monitor_shows(tmp_path):
    s, run, grew = train(lenet(3))
    assert run.status == "completed" and s.final_net is not None
    rec = run.recording
    assert grew == [[0], [0, 1], [0, 1, 2], [0, 1, 2, 3]]  # the initial weights, then epochs
    assert 0 < rec.total_bytes() <= rec.budget == engine.recorder.DEFAULT_BUDGET
    last = rec.snapshot(3)
    final = s.final_net.params["c1.weight"]
    step = (final.max() - final.min()) / 255
    assert np.abs(last.weights["c1.weight"] - final).max() <= step / 2 + 1e-6
    assert not np.allclose(rec.snapshot(1).weights["c1.weight"], last.weights["c1.weight"])
    ex = last.extra
    cm = np.asarray(ex["confusion"])
    assert cm.shape == (10, 10) and cm.sum() == 20  # the 10 logits; 10 % of 200 validate
    assert ex["badges"]["a1"][2] is not None  # a ReLU's dead share
    assert set(ex["hists"]) == {"c1", "c3", "f5", "f6", "logits"}
    assert len(ex["predictions"]) == 8 and last.feature_maps["c1"].shape[:2] == (8, 6)

    req = MonitorRequest(node="c3", sample=2, conv="c1", hist_node="c3")
    f = frame_at(rec, 1, req)
    assert f.snapshot.filters[0] == "c1"
    np.testing.assert_array_equal(f.snapshot.filters[1], rec.snapshot(1).weights["c1.weight"])
    assert f.snapshot.maps.node == "c3" and f.snapshot.maps.maps.shape == (16, 10, 10)
    assert f.snapshot.maps.prediction == rec.snapshot(1).extra["predictions"][2]
    assert f.snapshot.maps.label == probe_label(s.final_probe, 2) != ""
    assert set(f.snapshot.hists.weights) == {"weight", "bias"} and f.snapshot.hists.grads
    assert f.snapshot.stats["c1"].mean == rec.snapshot(1).extra["badges"]["c1"][0]
    np.testing.assert_array_equal(f.analysis.confusion, rec.snapshot(1).extra["confusion"])

    path = run.save_bundle(tmp_path / "lenet.nbmodel")
    assert engine.load_bundle(path).manifest["recorder"]["epochs"] == [0, 1, 2, 3]
    back = run_from_bundle(path, 9).recording
    assert back.epochs == [0, 1, 2, 3]
    np.testing.assert_array_equal(back.snapshot(2).weights["c1.weight"],
                                  rec.snapshot(2).weights["c1.weight"])


def test_a_curve_is_recorded_and_a_run_without_a_budget_records_nothing(tmp_path):
    _, run, _ = train(sine_mlp(epochs=2))
    f = frame_at(run.recording, 2, MonitorRequest())
    assert f.snapshot.curve is not None and len(f.snapshot.curve.xs) == 200
    assert f.analysis is None and f.snapshot.filters is None  # regression, no convolution
    _, plain, grew = train(sine_mlp(epochs=2), record_budget=None)
    assert plain.recording is None and grew == []
    assert read_recording(plain.save_bundle(tmp_path / "p.nbmodel")) is None


def test_a_smaller_budget_keeps_fewer_epochs_spread_over_the_run():
    _, full, _ = train(lenet(6))
    one = full.recording.total_bytes() // 7
    _, small, _ = train(lenet(6), record_budget=int(3.5 * one))
    kept = small.recording.epochs
    assert kept[0] == 0 and kept[-1] == 6 and 2 < len(kept) < 7
    assert small.recording.total_bytes() <= int(3.5 * one)
    _, none, grew = train(lenet(1), record_budget=1000)  # not even one snapshot fits
    assert none.recording is None and "budget" in none.recording_error and grew == [None]


def test_the_recording_follows_the_network_through_an_edit_while_paused():
    from test_session import pump_until

    from netbuilder.session import RunState

    g = engine.Graph.from_dict(lenet(10_000))
    s = RunSession()
    run = s.start(g, g.training, paused=False)
    pump_until(s, lambda: run.recording is not None and len(run.recording.epochs) >= 2)
    assert s.pause()
    pump_until(s, lambda: s.loop.trainer.status == "paused")
    edited = run.graph.copy()
    edited.set_params("f5", {**edited.nodes["f5"].params, "units": 100})
    got = []
    s.edited.connect(lambda r, out: got.append(out))
    assert s.edit(edited)
    pump_until(s, lambda: bool(got))
    assert got[0].ok
    n = len(run.recording.epochs)
    assert s.resume() and s.state == RunState.RUNNING
    pump_until(s, lambda: len(run.recording.epochs) > n)  # an epoch after the edit
    s.stop()
    assert s.run_until_done(120)
    rec = run.recording
    before, after = rec.snapshot(rec.epochs[0]), rec.snapshot(rec.epochs[-1])
    assert before.weights["f5.weight"].shape == (120, 400)
    assert after.weights["f5.weight"].shape == (100, 400)  # the edited layer, recorded
    assert "f5" in after.extra["hists"]
    assert after.gradients  # gathered from the new network's backward passes


def test_outputs_captured_from_the_validation_batch_record_what_a_forward_would():
    """``MonitorRecorder.capture`` (the first validation batch's outputs) stands in for the
    recorder's own forward of the samples: same feature maps, badges and predictions."""
    from netbuilder.session.probes import Head, ProbeData
    from netbuilder.session.recording import MonitorRecorder

    g = engine.Graph.from_dict(lenet(1))
    net = engine.Network(g, seed=3)
    rng = np.random.default_rng(0)
    xv = rng.standard_normal((40, *net.shapes[net.input_ids[0]])).astype(np.float32)
    yv = rng.integers(0, 10, 40)
    probe = ProbeData(x=xv[:16], y=yv[:16], labels=[f"c{k}" for k in range(10)])
    own, reused = (MonitorRecorder(net, probe, Head.of(net), (xv, yv)) for _ in range(2))
    net.forward(xv[:32], train=False)  # a validation batch that begins with the samples
    reused.capture(net.acts)
    a = own.record(1).snapshot(1)
    b = reused.record(1).snapshot(1)
    assert set(a.feature_maps) == set(b.feature_maps) >= {"in", "c1", "c3"}
    for node, maps in a.feature_maps.items():
        np.testing.assert_allclose(b.feature_maps[node], maps, atol=1e-5)
    assert a.extra["predictions"] == b.extra["predictions"]
    for node, badge in a.extra["badges"].items():
        np.testing.assert_allclose(b.extra["badges"][node][:2], badge[:2], rtol=1e-5)
        assert b.extra["badges"][node][2:] == badge[2:]
    assert b.extra["hists"]["c1"]["grads"] and "weights" not in b.extra["hists"]["c1"]
    f = frame_at(reused.record(2), 2, MonitorRequest(hist_node="c1"))
    assert f.snapshot.hists.weights["weight"][0].sum() == net.params["c1.weight"].size
    own.detach()
    reused.detach()
