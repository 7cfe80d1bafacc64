"""The import report (engine.export.import_onnx_report): what each ONNX node became, what
was folded or rewritten, and what was refused and why; Qt-free, the text the app shows."""
import numpy as np
import pytest

onnx = pytest.importorskip("onnx")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from engine.export import ImportReport, import_onnx_report  # noqa: E402


def model_of(nodes, inits, out_shape=("N", 3)):
    g = helper.make_graph(
        nodes, "report", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, list(out_shape))],
        initializer=[numpy_helper.from_array(np.asarray(v), k) for k, v in inits.items()])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    return m


def swish_model():
    """Gemm with a weight transposed on a constant (folded), then x·sigmoid(x) (a Swish made
    for the Sigmoid, which takes in the Mul), then an Identity."""
    w = np.random.default_rng(0).normal(size=(4, 3)).astype(np.float32)
    nodes = [helper.make_node("Transpose", ["w"], ["wt"], perm=[1, 0], name="wT"),
             helper.make_node("Gemm", ["x", "wt"], ["h"], transB=1, name="fc"),
             helper.make_node("Sigmoid", ["h"], ["s"], name="sig"),
             helper.make_node("Mul", ["h", "s"], ["m"], name="swish"),
             helper.make_node("Identity", ["m"], ["y"], name="same")]
    return model_of(nodes, {"w": w})


def test_a_report_says_what_became_what_and_what_was_folded(tmp_path):
    path = tmp_path / "swish.onnx"
    onnx.save(swish_model(), str(path))
    report = import_onnx_report(path)
    assert isinstance(report, ImportReport) and report.ok and not report.refused
    assert report.graph is not None and set(report.state) == {"fc.weight"}
    assert report.onnx_nodes == 5
    lines = [m.line() for m in report.mapped]
    assert lines[0] == "Gemm 'fc' → Dense 'fc'"
    assert lines[1] == "Sigmoid 'sig' → Swish 'swish'"
    assert lines[2] == "Mul 'swish' → part of the layer made for 'sig'"
    assert lines[3] == "Identity 'same' → no layer of its own (moves or views data)"
    assert report.notes[0] == "folded 1 constant computation (Transpose ×1)"
    text = report.text()
    assert text.startswith("swish.onnx: 5 ONNX nodes became 4 NetBuilder nodes with 12 "
                           "weights.\n\nFolded and rewritten:\n  folded")
    assert "\n\nMapped:\n  Gemm 'fc' → Dense 'fc'\n" in text and "Refused" not in text


def test_a_refusal_is_reported_not_raised_and_names_the_node():
    nodes = [helper.make_node("Gemm", ["x", "w"], ["h"], transB=1, name="fc"),
             helper.make_node("Cast", ["h"], ["y"], to=TensorProto.INT64, name="to_int")]
    m = model_of(nodes, {"w": np.ones((3, 4), np.float32)})
    m.graph.output[0].type.tensor_type.elem_type = TensorProto.INT64
    report = import_onnx_report(m.SerializeToString())
    assert not report.ok and report.graph is None and report.state is None
    assert report.sections()[0][0] == "Refused"
    (why,) = report.refused
    assert why.startswith("Cast node 'to_int' converts to INT64, which rounds toward zero")
    assert report.text().startswith("model could not be imported.\n\nRefused:\n  Cast node")


def test_a_file_that_is_not_onnx_is_a_refusal_too(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x00\x01 not a protobuf")
    report = import_onnx_report(bad)
    assert not report.ok and report.name == "bad.onnx"
    assert report.refused[0].startswith(f"{bad} is not an ONNX model")
