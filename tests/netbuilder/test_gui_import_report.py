"""File ▸ Open on an .onnx file exported by PyTorch inside the test: the import report the
user reads (what became what, what was folded, what was refused and why), through the real
menu action with only the file dialog answered."""

import io
from types import SimpleNamespace

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")

from PySide6.QtCore import Qt  # noqa: E402
from PySide6.QtWidgets import QFileDialog  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning",
                                        "ignore::FutureWarning",
                                        "ignore::torch.jit.TracerWarning")
nn = torch.nn


class SmallCNN(nn.Module):
    """A conv, a ceil_mode max pool, ``view(x.size(0), -1)``, a Linear and nn.Hardsigmoid:
    things PyTorch writes that the importer maps, folds and rewrites."""

    def __init__(self):
        super().__init__()
        self.conv, self.fc, self.gate = nn.Conv2d(1, 4, 3), nn.Linear(4 * 4 * 4, 3), \
            nn.Hardsigmoid()

    def forward(self, x):
        y = nn.functional.max_pool2d(torch.relu(self.conv(x)), 2, ceil_mode=True)
        return self.gate(self.fc(y.view(y.size(0), -1)))


def export(model, x, path):
    buf = io.BytesIO()
    torch.onnx.export(model.eval(), (x,), buf, input_names=["x"], output_names=["y"],
                      dynamic_axes={"x": {0: "N"}, "y": {0: "N"}}, opset_version=17,
                      dynamo=False)
    path.write_bytes(buf.getvalue())
    return path


def open_through_the_menu(drv, monkeypatch, path):
    """File ▸ Open, the file dialog answering ``path``; returns the report dialog."""
    w = drv.w
    monkeypatch.setattr(QFileDialog, "getOpenFileName",
                        staticmethod(lambda *a, **k: (str(path), "")))
    w.act_open.trigger()
    drv.qtbot.waitUntil(lambda: w.exports.report_dialog is not None and
                        w.exports.report_dialog.isVisible())
    return w.exports.report_dialog


def test_open_onnx_shows_what_was_mapped_and_folded(make_window, monkeypatch, tmp_path):
    torch.manual_seed(0)
    path = export(SmallCNN(), torch.randn(2, 1, 9, 9), tmp_path / "small_cnn.onnx")
    drv = make_window()
    dlg = open_through_the_menu(drv, monkeypatch, path)
    text = " ".join(dlg.text().split())  # the table's cells, read in a line
    assert text.startswith("small_cnn.onnx: 13 ONNX nodes became 8 NetBuilder nodes")
    for line in ("ONNX node NetBuilder node", "Conv /conv/Conv → Conv2D conv_Conv",
                 "Relu /Relu → ReLU Relu", "MaxPool /MaxPool → MaxPool2D MaxPool",
                 "Gemm /fc/Gemm → Dense fc_Gemm",
                 "HardSigmoid /gate/HardSigmoid → HardSigmoid gate_HardSigmoid",
                 "Reshape node '/Reshape': target ['N', -1] keeps the batch",
                 "folded 7 constant computations"):
        assert line in text, (line, text)
    assert "Refused" not in text and "Mapped (6)" in text and "Folded and rewritten (2)" in text
    w = drv.w
    graph = w.document.graph
    pool = next(n for n in graph.nodes.values() if n.type == "MaxPool2D")
    assert pool.params["ceil_mode"] is True  # 7×7 -> 4×4: the last window overhangs
    gate = next(n for n in graph.nodes.values() if n.type == "HardSigmoid")
    assert gate.params["alpha"] == pytest.approx(1 / 6)
    assert w.training.store.runs[-1].status == "imported"
    assert dlg.parent() is w and dlg.windowModality() == Qt.WindowModality.WindowModal
    dlg.close()
    assert not dlg.isVisible()


class Rounds(nn.Module):
    """torch.floor on data: an op NetBuilder has no layer for."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 4)

    def forward(self, x):
        return torch.floor(self.fc(x))


def test_open_onnx_that_is_refused_says_why_and_keeps_the_model(make_window, monkeypatch,
                                                                 tmp_path):
    torch.manual_seed(0)
    path = export(Rounds(), torch.randn(2, 3), tmp_path / "rounds.onnx")
    drv = make_window()
    before = drv.w.document.graph.to_dict()
    dlg = open_through_the_menu(drv, monkeypatch, path)
    text = " ".join(dlg.text().split())
    assert text.startswith("rounds.onnx could not be imported. "
                           "The model you were working on is unchanged.")
    assert "Refused (1)" in text
    assert "NetBuilder cannot import these ONNX ops: Floor ('/Floor')" in text
    assert "here they work on data" in text
    assert "Mapped" not in text
    assert drv.w.document.graph.to_dict() == before


def test_the_report_dialog_reads_at_both_window_sizes(make_window, monkeypatch, tmp_path):
    torch.manual_seed(0)
    path = export(SmallCNN(), torch.randn(2, 1, 9, 9), tmp_path / "small_cnn.onnx")
    drv = make_window()
    for size in ((1280, 800), (1024, 700)):
        drv.w.resize(*size)
        dlg = open_through_the_menu(drv, monkeypatch, path)
        assert dlg.width() <= size[0] and dlg.height() <= size[1]
        # every line of the body wraps to its width: no horizontal scrolling needed
        assert not dlg.body.horizontalScrollBar().isVisible()
        dlg.close()


def test_a_refused_file_in_the_smoke_test_is_an_error_not_a_dialog(make_window, tmp_path):
    """``netbuilder file.onnx --quit-after N`` (app.SmokeTest, which replaces show_error
    with a line on stderr and exit status 1) reports a refusal as an error instead of a
    dialog nobody reads."""
    torch.manual_seed(0)
    path = export(Rounds(), torch.randn(2, 3), tmp_path / "rounds.onnx")
    w = make_window().w
    errors = []
    w.smoke_test = SimpleNamespace(errors=errors)
    w.show_error = lambda title, text: errors.append(f"{title}: {text}")
    assert not w.open_file(path)
    assert w.exports.report_dialog is None
    (error,) = errors
    assert error.startswith("Cannot import: rounds.onnx could not be imported.")
    assert "Floor ('/Floor')" in error
