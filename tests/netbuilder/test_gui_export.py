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


def _torch_onnx(tmp_path, name, module, x):
    torch = pytest.importorskip("torch")
    pytest.importorskip("onnx")
    path = tmp_path / name
    torch.onnx.export(module.eval(), (x,), str(path), input_names=["x"], output_names=["y"],
                      opset_version=17, dynamo=False, dynamic_axes={"x": {0: "N"}, "y": {0: "N"}})
    return path


@pytest.mark.filterwarnings("ignore::Warning")  # the tracer's, about torch's own code
def test_file_import_of_pytorch_exports(make_window, tmp_path):
    """File ▸ Import on files torch.onnx.export wrote: a bidirectional 2-layer LSTM tagger
    comes in as two LSTM nodes; a TransformerEncoderLayer is refused with the node and op
    named and what it is in PyTorch terms, and the model open before stays as it was."""
    torch = pytest.importorskip("torch")
    nn = torch.nn

    class Tagger(nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = nn.LSTM(5, 6, num_layers=2, batch_first=True, bidirectional=True)
            self.fc = nn.Linear(12, 3)

        def forward(self, x):
            return self.fc(self.rnn(x)[0])

    torch.manual_seed(0)
    w = make_window(XOR).w
    lstm = _torch_onnx(tmp_path, "tagger.onnx", Tagger(), torch.randn(2, 4, 5))
    assert w.exports.import_onnx(lstm)
    types = [n.type for n in w.document.graph.nodes.values()]
    assert types.count("LSTM") == 2 and "Dense" in types
    w.exports.report_dialog.close()

    class Block(nn.Module):  # traced inside a module, as in a model
        def __init__(self):
            super().__init__()
            self.layer = nn.TransformerEncoderLayer(8, 2, 16, 0.0, batch_first=True)

        def forward(self, x):
            return self.layer(x)

    block = _torch_onnx(tmp_path, "block.onnx", Block(), torch.randn(2, 5, 8))
    assert w.exports.import_onnx(block)
    types = [n.type for n in w.document.graph.nodes.values()]
    assert "MultiHeadAttention" in types and types.count("LayerNorm") == 2
    w.exports.report_dialog.close()

    before = w.document.graph.to_dict()
    class Encoder(nn.Module):  # the attention weights used: no MultiHeadAttention form
        def __init__(self):
            super().__init__()
            self.attn = nn.MultiheadAttention(8, 2, batch_first=True)

        def forward(self, x):
            out, weights = self.attn(x, x, x)
            return out + weights.mean(-1, keepdim=True)

    enc = _torch_onnx(tmp_path, "encoder.onnx", Encoder(), torch.randn(2, 5, 8))
    assert not w.exports.import_onnx(enc)
    text = w.exports.report_dialog.text()
    assert text.startswith("encoder.onnx could not be imported.")
    assert "node '" in text and "nn.MultiheadAttention" in text
    assert w.document.graph.to_dict() == before
    w.exports.report_dialog.close()
