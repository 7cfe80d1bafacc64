"""Trained-model bundles: round trip, atomic writes, and every refusal."""

import io
import json
import zipfile

import numpy as np
import pytest
from graphdocs import chain_doc

import engine
from engine.bundle import FORMAT, VERSION, is_bundle_path
from engine.data import load_dataset
from engine.training import Trainer

LAYERS = [("Conv2D", {"filters": 3, "kernel_size": 3}), ("BatchNorm", {}), ("ReLU", {}),
          ("Flatten", {}), ("Dense", {"units": 10})]


def trained(tmp_path):
    g = engine.Graph.from_dict(chain_doc((1, 8, 8), LAYERS))
    g.ui = {"in": {"pos": [0, 0]}}
    g.training = {"dataset": "digits", "epochs": 1}
    net = engine.compile(g, seed=3)
    t = Trainer(net, load_dataset("digits").take(100), {"epochs": 1, "val_split": 0.2})
    t.run()
    path = engine.save_bundle(tmp_path / "m.nbmodel", net, history=t.history.to_json(),
                              dataset={"name": "digits", "class_names": list("0123456789")},
                              metrics={"val_accuracy": t.result.val_accuracy})
    return net, path


def test_round_trip(tmp_path):
    net, path = trained(tmp_path)
    assert is_bundle_path(path) and path.suffix == ".nbmodel"
    b = engine.load_bundle(path)
    assert b.graph == net.graph and b.graph.ui == {"in": {"pos": [0, 0]}}
    assert b.graph.training["dataset"] == "digits"
    for k, v in net.state_dict().items():
        np.testing.assert_array_equal(b.net.state_dict()[k], v)
    assert "bn.running_mean" not in b.weights  # names are "<node>.<param>"
    assert any(k.endswith(".running_var") for k in b.weights)
    x = load_dataset("digits").x[:5]
    np.testing.assert_array_equal(b.net.forward(x), net.forward(x))
    assert b.manifest["format"] == FORMAT and b.manifest["version"] == VERSION
    assert b.class_names == list("0123456789") and b.name == net.graph.name
    assert b.history["epoch"] == [1] and len(b.history["batch_loss"]) == 3
    assert b.manifest["metrics"]["val_accuracy"] >= 0


def test_graph_plus_weights_and_overwrite_is_atomic(tmp_path, monkeypatch):
    net, path = trained(tmp_path)
    before = path.read_bytes()
    with pytest.raises(engine.BundleError, match="needs the weights"):
        engine.save_bundle(path, net.graph)

    def boom(*a, **k):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(np, "savez_compressed", boom)
    with pytest.raises(OSError):
        engine.save_bundle(path, net)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.nbmodel"]
    monkeypatch.undo()
    other = engine.save_bundle(tmp_path / "sub" / "g.nbmodel", net.graph, net.state_dict())
    assert engine.load_bundle(other).manifest.get("metrics") is None


def _rewrite(src, dst, drop=(), add=(), replace=None):
    """Copy a bundle, dropping/adding/replacing members."""
    replace = replace or {}
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            if info.filename in drop:
                continue
            data = replace.get(info.filename, zin.read(info.filename))
            zout.writestr(info.filename, data)
        for name, data in add:
            zout.writestr(name, data)
    return dst


def _manifest(path):
    with zipfile.ZipFile(path) as zf:
        return json.loads(zf.read("manifest.json"))


def test_refusals(tmp_path):
    net, good = trained(tmp_path)
    raw = good.read_bytes()
    m = _manifest(good)

    def npz(**arrays):
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        return buf.getvalue()

    state = {k: v for k, v in net.state_dict().items()}
    first = next(iter(state))
    cases = {
        "truncated": (lambda p: p.write_bytes(raw[: len(raw) // 2]), "not a zip|damaged"),
        "notzip": (lambda p: p.write_text("hello"), "not a NetBuilder bundle"),
        "empty": (lambda p: p.write_bytes(b""), "not a NetBuilder bundle"),
        "traversal": (lambda p: _rewrite(good, p, add=[("../evil.txt", b"x")]),
                      "refusing member '../evil.txt'"),
        "absolute": (lambda p: _rewrite(good, p, add=[("/etc/x", b"x")]), "refusing member"),
        "nested": (lambda p: _rewrite(good, p, add=[("a/../../x", b"x")]), "refusing member"),
        "foreign": (lambda p: _rewrite(good, p, replace={"manifest.json": json.dumps(
            {"format": "something.else", "version": 1})}), "not a NetBuilder bundle"),
        "nomanifest": (lambda p: _rewrite(good, p, drop=["manifest.json"]), "no manifest"),
        "newer": (lambda p: _rewrite(good, p, replace={"manifest.json": json.dumps(
            {**m, "version": VERSION + 1})}), "newer than this NetBuilder"),
        "badversion": (lambda p: _rewrite(good, p, replace={"manifest.json": json.dumps(
            {**m, "version": "1"})}), "version '1' is not valid"),
        "badjson": (lambda p: _rewrite(good, p, replace={"manifest.json": b"{nope"}),
                    "not valid JSON"),
        "noweights": (lambda p: _rewrite(good, p, drop=["weights.npz"]), "no weights.npz"),
        "nomodel": (lambda p: _rewrite(good, p, drop=["model.json"]), "no model.json"),
        "badmodel": (lambda p: _rewrite(good, p, replace={"model.json": b'{"format": 1}'}),
                     "not a NetBuilder model"),
        "objects": (lambda p: _rewrite(good, p, replace={"weights.npz": _pickled_npz(state)}),
                    "Python objects"),
        "ints": (lambda p: _rewrite(good, p, replace={"weights.npz": npz(**{
            **state, first: state[first].astype(np.int32)})}), "expected floating point"),
        "shape": (lambda p: _rewrite(good, p, replace={"weights.npz": npz(**{
            **state, first: np.zeros((2, 2), np.float32)})}), "the model needs"),
        "missing": (lambda p: _rewrite(good, p, replace={"weights.npz": npz(**{
            k: v for k, v in state.items() if k != first})}), "do not fit this model: missing"),
        "extra": (lambda p: _rewrite(good, p, replace={"weights.npz": npz(
            **state, ghost=np.zeros(1, np.float32))}), "unexpected ghost"),
        "badnpz": (lambda p: _rewrite(good, p, replace={"weights.npz": b"PK\x03\x04junk"}),
                   "weights are damaged"),
        "history": (lambda p: _rewrite(good, p, replace={"history.json": b"[1, 2]"}),
                    "must hold an object"),
    }
    for name, (make, match) in cases.items():
        p = tmp_path / f"{name}.nbmodel"
        make(p)
        with pytest.raises(engine.BundleError, match=match):
            engine.load_bundle(p)
    with pytest.raises(engine.BundleError, match="no such bundle"):
        engine.load_bundle(tmp_path / "nothere.nbmodel")
    with pytest.raises(engine.BundleError, match="is a folder"):
        engine.load_bundle(tmp_path)


def test_corrupt_member_data_is_refused(tmp_path):
    _, good = trained(tmp_path)
    raw = bytearray(good.read_bytes())
    with zipfile.ZipFile(good) as zf:
        info = zf.getinfo("weights.npz")
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    raw[start + 200] ^= 0xFF  # stored member: flip a byte of the weights
    bad = tmp_path / "flip.nbmodel"
    bad.write_bytes(bytes(raw))
    with pytest.raises(engine.BundleError, match=r"damaged|CRC"):
        engine.load_bundle(bad)


def _pickled_npz(state):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for k in state:
            item = io.BytesIO()
            np.save(item, np.array([None, {"k": 1}], dtype=object), allow_pickle=True)
            zf.writestr(f"{k}.npy", item.getvalue())
    return buf.getvalue()
