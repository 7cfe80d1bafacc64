"""Scale: y = scale·x + shift with fixed numbers, and the ONNX constants it imports from
(Mul / Div / Add / Sub of data by one number, as PyTorch writes x / 255 or (x - 0.5) / 0.5).
The contract harness checks the rest: gradients, reference, file, ONNX, PyTorch."""

import numpy as np
import pytest

import engine
from engine.layers.scale import Scale

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from engine.export import import_onnx  # noqa: E402
from engine.export.onnx_import import OnnxImportError  # noqa: E402


def test_forward_backward_and_summary(rng):
    layer = Scale("s", {"scale": -2.0, "shift": 0.5}, [(3, 4)])
    x = rng.standard_normal((2, 3, 4)).astype(np.float32)
    y = layer.forward([x], {}, True)
    assert y.dtype == np.float32 and layer.out_shape == (3, 4)
    np.testing.assert_allclose(y, -2 * x + 0.5, rtol=1e-6)
    (dx,) = layer.backward(np.ones_like(y), {}, {})
    np.testing.assert_array_equal(dx, -2.0)
    assert layer.param_count() == 0 and layer.summary() == "-2·x + 0.5"
    assert Scale("s", {"scale": 0.5}, [(3,)]).summary() == "× 0.5"
    assert Scale("s", {"shift": -1.0}, [(3,)]).summary() == "− 1"
    report = engine.check_layer("Scale", {"scale": 1.5, "shift": -0.25}, [(2, 3)])
    assert report.worst < 1e-7, report.errors


def model(nodes, inits, shape=("N", 4)):
    g = helper.make_graph(
        nodes, "scale", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(shape))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, list(shape))],
        initializer=[numpy_helper.from_array(np.asarray(v), k) for k, v in inits.items()])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    onnx.checker.check_model(m)
    return m


def run_both(m, x):
    graph, state = import_onnx(m)
    net = engine.compile(graph)
    net.load_state_dict(state)
    want = ort.InferenceSession(m.SerializeToString()).run(None, {"x": x})[0]
    np.testing.assert_allclose(net.forward(x), want, rtol=1e-5, atol=1e-6)
    return [(n.type, n.params) for n in graph.nodes.values() if n.type == "Scale"]


N = np.float32


@pytest.mark.parametrize("nodes,inits,want", [
    ([("Div", ["x", "c"], "y")], {"c": N(255)}, [{"scale": pytest.approx(1 / 255)}]),
    ([("Sub", ["x", "m"], "t"), ("Div", ["t", "s"], "y")], {"m": N(0.5), "s": N(0.5)},
     [{"shift": -0.5}, {"scale": 2.0}]),
    ([("Mul", ["x", "two"], "t"), ("Sub", ["t", "one"], "y")], {"two": N(2), "one": N(1)},
     [{"scale": 2.0, "shift": -1.0}]),                               # 2x - 1: one node
    ([("Mul", ["two", "x"], "t"), ("Sub", ["one", "t"], "y")], {"two": N(2), "one": N(1)},
     [{"scale": -2.0, "shift": 1.0}]),                               # 1 - 2x: one node
    ([("Sub", ["one", "x"], "y")], {"one": np.ones((1, 1), np.float32)},
     [{"scale": -1.0, "shift": 1.0}]),
    ([("Add", ["x", "b"], "y")], {"b": N(-3)}, [{"shift": -3.0}]),
], ids=["x/255", "(x-m)/s", "2x-1", "1-2x", "1-x", "x+b"])
def test_arithmetic_by_one_number_imports_as_scale(nodes, inits, want):
    m = model([helper.make_node(op, ins, [out], name=f"n{i}")
               for i, (op, ins, out) in enumerate(nodes)], inits)
    x = np.random.default_rng(0).normal(0, 3, (5, 4)).astype(np.float32)
    got = run_both(m, x)
    assert [p for _, p in got] == want


@pytest.mark.parametrize("op,inputs,inits,msg", [
    ("Div", ["c", "x"], {"c": N(1)}, "a reciprocal"),
    ("Mul", ["x", "c"], {"c": np.arange(4, dtype=np.float32)},
     r"multiplies by a constant shaped \[4\]; NetBuilder's Scale takes one number"),
    ("Sub", ["x", "c"], {"c": np.ones((1, 1, 1), np.float32)},
     r"subtracts a constant shaped \[1, 1, 1\], which adds axes"),
    ("Div", ["x", "c"], {"c": N(0)}, "divides by zero"),
])
def test_what_a_scale_cannot_be_is_refused_naming_the_node(op, inputs, inits, msg):
    m = model([helper.make_node(op, inputs, ["y"], name="arith")], inits)
    with pytest.raises(OnnxImportError, match=f"{op} node 'arith' .*{msg}"):
        import_onnx(m)
