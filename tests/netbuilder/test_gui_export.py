"""File ▸ Export (ONNX, PyTorch) and File ▸ Import ONNX from the main window."""

import json
from pathlib import Path

import numpy as np
import pytest

import engine

ROOT = Path(__file__).resolve().parents[2]
XOR = json.loads((ROOT / "resources" / "examples" / "xor_mlp.json").read_text())


def menu_texts(menu):
    return [a.text() for a in menu.actions()]


def test_file_menu_has_export_and_import(make_window):
    w = make_window(XOR).w
    texts = menu_texts(w.file_menu)
    assert "&Export" in texts and "&Import ONNX…" in texts


def test_export_onnx_carries_the_trained_weights_and_imports_back(make_window, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    w = make_window(XOR).w
    from netbuilder.session.runs import RunRecord, model_key

    graph = w.document.graph
    trained = engine.compile(graph, seed=5)
    trained.params[next(iter(trained.params))][...] += 0.5
    store = w.training.store
    store.add(RunRecord(store.next_number(), graph.name, model_key(graph), graph.copy(), {},
                        status="finished", weights=trained.state_dict()))
    out = w.exports.export("onnx", tmp_path / "xor.onnx")
    assert out is not None and out.exists()
    assert "weights of Run" in w.status_message.text()
    x = np.random.default_rng(0).random((5, 2)).astype(np.float32)
    sess = ort.InferenceSession(str(out))
    (got,) = sess.run(None, {sess.get_inputs()[0].name: x})
    np.testing.assert_allclose(got, trained.forward(x), rtol=1e-4, atol=1e-6)

    assert w.exports.import_onnx(out)
    assert sorted(w.document.graph.nodes) == sorted(graph.nodes)
    run = store.runs[-1]
    assert run.status == "imported"
    net = engine.compile(w.document.graph)
    net.load_state_dict(run.weights)
    np.testing.assert_allclose(net.forward(x), trained.forward(x), rtol=1e-5, atol=1e-6)


def test_export_pytorch_without_a_run_says_the_weights_are_untrained(make_window, tmp_path):
    w = make_window(XOR).w
    out = w.exports.export("pytorch", tmp_path / "xor.py")
    assert out is not None and out.exists() and out.with_suffix(".npz").exists()
    assert "untrained" in w.status_message.text()
    assert "import engine" not in out.read_text()


def test_importing_a_broken_onnx_file_leaves_the_model_untouched(make_window, tmp_path):
    pytest.importorskip("onnx")
    drv = make_window(XOR)
    w = drv.w
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a protobuf at all")
    before = w.document.graph.to_dict()
    assert not w.open_file(bad)
    text = w.exports.report_dialog.text()
    assert text.startswith("bad.onnx could not be imported.")
    assert "bad.onnx is not an ONNX model" in text
    assert w.document.graph.to_dict() == before
    w.exports.report_dialog.close()
