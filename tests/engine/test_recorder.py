"""The flight recorder: per-epoch snapshots in the bundle, their size budget, reading back."""

import itertools
import json
import zipfile

import numpy as np
import pytest
from graphdocs import graph_doc

import engine
from engine.recorder import ARRAYS, INDEX, FlightRecorder, dequantise, quantise, read_recording

CNN = [("in", "Input", {"shape": [1, 8, 8]}),
       ("c1", "Conv2D", {"filters": 12, "kernel_size": 3, "padding": "same"}),
       ("r1", "ReLU", {}), ("p1", "MaxPool2D", {}), ("f", "Flatten", {}),
       ("head", "Dense", {"units": 3}), ("out", "Output", {"loss": "cross_entropy"})]


def cnn(seed=0):
    g = engine.Graph.from_dict(graph_doc(CNN, list(itertools.pairwise([n[0] for n in CNN]))))
    return engine.compile(g, seed=seed)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    return rng.standard_normal((32, 1, 8, 8)).astype(np.float32), rng.integers(0, 3, 32)


def train_and_record(rec, net, data, epochs, steps=4):
    """Train ``epochs`` epochs of ``steps`` steps, recording after each; the weights at
    each epoch's end."""
    x, y = data
    opt = engine.Adam(lr=0.01)
    rec.attach(net)
    seen = {}
    for epoch in range(1, epochs + 1):
        for _ in range(steps):
            net.train_step(x, y, opt)
        rec.record(epoch, net)
        seen[epoch] = net.state_dict()
    rec.detach()
    return seen


def test_quantise_is_within_half_a_step():
    a = np.random.default_rng(1).standard_normal(1000).astype(np.float32)
    codes, lo, step = quantise(a)
    assert codes.dtype == np.uint8 and codes.min() == 0 and codes.max() == 255
    assert np.abs(dequantise(codes, lo, step) - a).max() <= step / 2 + 1e-6
    flat, lo, step = quantise(np.full(4, 2.5))
    np.testing.assert_array_equal(dequantise(flat, lo, step), np.full(4, 2.5, np.float32))


def test_snapshots_round_trip_through_the_bundle(tmp_path, data):
    net = cnn()
    samples = data[0][:3]
    rec = FlightRecorder(net, samples=samples, grad_every=1)
    seen = train_and_record(rec, net, data, epochs=3)
    path = engine.save_bundle(tmp_path / "r.nbmodel", net, extra=rec.members(),
                              recorder=rec.describe())
    bundle = engine.load_bundle(path)
    assert bundle.manifest["recorder"]["epochs"] == [1, 2, 3]
    recording = read_recording(path)
    assert recording.epochs == [1, 2, 3]
    snap = recording.snapshot(2)
    for key in ("c1.weight", "c1.bias", "head.weight"):
        want = seen[2][key]
        step = (want.max() - want.min()) / 255
        assert snap.weights[key].shape == want.shape and snap.strides[key] == 1
        assert np.abs(snap.weights[key] - want).max() <= step / 2 + 1e-6
    assert not np.allclose(recording.snapshot(1).weights["c1.weight"],
                           recording.snapshot(3).weights["c1.weight"])
    probe = cnn()
    probe.load_state_dict(seen[3])
    outs = {}
    probe.add_hook(on_forward=lambda nid, y: outs.__setitem__(nid, y.copy()))
    probe.forward(samples)
    last = recording.snapshot(3)
    maps = last.feature_maps["c1"]
    assert maps.shape == (3, 8, 8, 8)  # 3 samples, the first 8 of 12 channels
    want = outs["c1"][:, :8]
    assert np.abs(maps - want).max() <= (want.max() - want.min()) / 255 / 2 + 1e-5
    assert set(last.feature_maps) == {"in", "c1", "r1", "p1"}
    assert last.activations["r1"]["zeros"] == pytest.approx(np.mean(outs["r1"] == 0))
    assert last.activations["head"]["mean"] == pytest.approx(outs["head"].mean(), rel=1e-5)
    # by the last node of each backward step: the fused c1 -> r1 -> p1 chain reports p1
    assert last.gradients["head"]["rms"] > 0 and last.gradients["p1"]["max"] > 0
    with pytest.raises(KeyError, match=r"epoch 7 was not recorded \(recorded: 1, 2, 3"):
        recording.snapshot(7)


def test_the_budget_keeps_first_last_and_spread_epochs(tmp_path, data):
    net = cnn()
    one = FlightRecorder(net, samples=data[0][:2])
    one.record(0, net)
    per = one.snapshot_bytes(0)
    rec = FlightRecorder(net, samples=data[0][:2], budget=int(5.5 * per))
    train_and_record(rec, net, data, epochs=20, steps=1)
    kept = sorted(rec.data)
    assert len(kept) == 5 and kept[0] == 1 and kept[-1] == 20
    assert max(np.diff(kept)) <= 2 * min(np.diff(kept)) + 1
    assert rec.total_bytes() <= rec.budget
    path = engine.save_bundle(tmp_path / "b.nbmodel", net, extra=rec.members())
    with zipfile.ZipFile(path) as zf:
        stored = zf.getinfo(ARRAYS).compress_size + zf.getinfo(INDEX).compress_size
    assert stored <= rec.budget
    assert read_recording(path).epochs == kept


def test_a_budget_too_small_for_one_snapshot_is_refused(data):
    net = cnn()
    rec = FlightRecorder(net, budget=100)
    with pytest.raises(engine.ParamError, match="more than the recorder's budget of 100"):
        rec.record(1, net)
    assert not rec.data
    with pytest.raises(engine.ParamError, match="no such node"):
        FlightRecorder(net, nodes=["nope"])


def test_large_weights_are_subsampled(tmp_path, data):
    net = cnn()
    rec = FlightRecorder(net, nodes=["head"], max_values=100)
    rec.record(1, net)
    path = engine.save_bundle(tmp_path / "s.nbmodel", net, extra=rec.members())
    snap = read_recording(path).snapshot(1)
    w = net.params["head.weight"].reshape(-1)
    stride = snap.strides["head.weight"]
    assert stride == -(-w.size // 100) > 1 and set(snap.weights) == {"head.weight", "head.bias"}
    sub = w[::stride]
    assert np.abs(snap.weights["head.weight"] - sub).max() <= np.ptp(sub) / 255 / 2 + 1e-6


def test_bundles_without_or_with_a_damaged_recording(tmp_path, data):
    net = cnn()
    plain = engine.save_bundle(tmp_path / "p.nbmodel", net)
    assert read_recording(plain) is None
    rec = FlightRecorder(net)
    rec.record(1, net)
    members = rec.members()
    index = json.loads(members[INDEX])
    index["epochs"]["1"]["entries"][0]["at"] = 10**9
    bad = engine.save_bundle(tmp_path / "bad.nbmodel", net,
                             extra={**members, INDEX: json.dumps(index).encode()})
    with pytest.raises(engine.BundleError, match="shorter than its index"):
        read_recording(bad)
    junk = engine.save_bundle(tmp_path / "junk.nbmodel", net,
                              extra={**members, INDEX: b'{"epochs": [1]}'})
    with pytest.raises(engine.BundleError, match=r"recorder\.json is damaged"):
        read_recording(junk)
    with pytest.raises(engine.BundleError, match="may not be named"):
        engine.save_bundle(tmp_path / "x.nbmodel", net, extra={"weights.npz": b""})


def test_train_record_keeps_every_epoch_in_the_bundle(tmp_path):
    import io

    from engine import cli
    doc = graph_doc(CNN, list(itertools.pairwise([n[0] for n in CNN])))
    doc["nodes"][0]["params"]["shape"] = [1, 8, 8]
    doc["training"] = {"dataset": "digits", "epochs": 2, "limit": 200,
                       "optimizer": {"type": "adam", "lr": 0.003}}
    doc["nodes"][-2]["params"]["units"] = 10
    model = tmp_path / "m.json"
    model.write_text(json.dumps(doc))
    out, err = io.StringIO(), io.StringIO()
    assert cli.main(["train", str(model), "--record", "-q", "--out", str(tmp_path / "r")],
                    out, err) == 0, err.getvalue()
    path = tmp_path / "r" / "m.nbmodel"
    recording = read_recording(path)
    assert recording.epochs == [1, 2]
    snap = recording.snapshot(2)
    assert snap.feature_maps["c1"].shape == (8, 8, 8, 8)
    assert snap.gradients and snap.activations["head"]["std"] > 0
    out = io.StringIO()
    assert cli.main(["info", str(path)], out, io.StringIO()) == 0
    assert "recording: epochs 1–2, 2 snapshots" in out.getvalue()


def test_extra_facts_and_arrays_round_trip_and_count_towards_the_budget(tmp_path, data):
    net = cnn()
    rec = FlightRecorder(net, samples=data[0][:2])
    grid = np.arange(4 * 5 * 3, dtype=np.uint8).reshape(4, 5, 3) * 4
    rec.record(1, net)
    plain = rec.total_bytes()
    rec.record(2, net, extra={"confusion": [[3, 1], [0, 4]]}, extra_arrays={"regions": grid})
    assert rec.snapshot_bytes(2) > rec.snapshot_bytes(1) and rec.total_bytes() > plain
    live = rec.recording()  # readable while it records, as a bundle's
    assert live.epochs == [1, 2] and live.total_bytes() == rec.total_bytes()
    path = engine.save_bundle(tmp_path / "x.nbmodel", net, extra=live.members(),
                              recorder=live.describe())
    back = read_recording(path)
    snap = back.snapshot(2)
    assert snap.extra == {"confusion": [[3, 1], [0, 4]]}
    assert snap.extra_arrays["regions"].shape == (4, 5, 3)
    np.testing.assert_array_equal(np.rint(snap.extra_arrays["regions"]).astype(np.uint8), grid)
    assert back.snapshot(1).extra == {} and back.snapshot(1).extra_arrays == {}
    assert back.members()[INDEX] == live.members()[INDEX]
    assert "regions" not in snap.feature_maps and "regions" not in snap.weights
    # facts of the samples' outputs, computed after the recorder's own forward
    rec.record(3, net, extra=lambda outs: {"head": outs["head"].shape[0],
                                           "acts": net.acts["head"].shape[0]})
    assert rec.recording().snapshot(3).extra == {"head": 2, "acts": 2}
