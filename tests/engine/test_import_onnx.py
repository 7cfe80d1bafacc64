"""ONNX import: every exported layer type and example model comes back as the same graph with
the same weights and outputs; files from elsewhere in the supported op subset; refusals."""
import numpy as np
import pytest
from exportcases import CASES, all_cases, as_dict, compiled, example_docs, inputs_for, rel_err

import engine

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from engine.export import build_onnx, export_onnx, import_onnx  # noqa: E402
from engine.export.onnx_import import OnnxImportError, supported_ops  # noqa: E402


def outputs(net, xs):
    return as_dict(net.forward(xs if len(xs) > 1 else next(iter(xs.values()))), net)


def round_trip(net):
    graph, state = import_onnx(build_onnx(net))
    back = engine.compile(graph)
    back.load_state_dict(state)
    return graph, state, back


def assert_same_outputs(a, b, batch=3, tol=1e-5):
    xs = inputs_for(a, batch)
    want, got = outputs(a, xs), outputs(b, xs)
    assert set(got) == set(want)
    for k in want:
        assert rel_err(got[k], want[k]) < tol, k


@pytest.mark.parametrize("type_name,case,doc", all_cases(),
                         ids=[f"{t}-{c}" for t, c, _ in all_cases()])
def test_layer_round_trip(type_name, case, doc):
    net = compiled(doc)
    graph, state, back = round_trip(net)
    assert_same_outputs(net, back)
    # the same nodes (ids and types), the same weights under the same names
    assert {n.id: n.type for n in graph.nodes.values()} == \
        {n.id: n.type for n in net.graph.nodes.values()}
    assert set(state) == set(net.state_dict())
    for key, arr in net.state_dict().items():
        assert np.allclose(state[key], arr, rtol=1e-6, atol=1e-7), key
    for nid, node in net.graph.nodes.items():
        want = net.layers[nid].p
        got = back.layers[nid].p
        same = {k: v for k, v in want.items() if k != "init"}
        # (PositionalEmbedding: ONNX keeps the T rows used, so max_len comes back as T)
        assert {k: got[k] for k in same} == same or node.type in ("Conv2D", "MaxPool2D",
                                                                  "AvgPool2D",
                                                                  "PositionalEmbedding"), nid


@pytest.mark.parametrize("name,doc", example_docs(), ids=[n for n, _ in example_docs()])
def test_example_round_trip(name, doc):
    net = compiled(doc)
    graph, _, back = round_trip(net)
    assert_same_outputs(net, back, batch=2)
    assert graph.name == net.graph.name
    engine.Graph.from_dict(graph.to_dict())


def test_round_trip_keeps_output_losses_and_file_name(tmp_path):
    net = compiled(CASES["Output"][2][1])
    export_onnx(net, tmp_path / "heads.onnx")
    graph, _ = import_onnx(tmp_path / "heads.onnx")
    assert graph.nodes["out_reg"].params == {"loss": "mse", "weight": 0.5, "target": "size"}
    assert graph.nodes["out_cls"].params["loss"] == "cross_entropy"


def test_padding_round_trips_to_the_same_windows():
    for t in ("Conv2D", "MaxPool2D", "AvgPool2D"):
        for _, doc in CASES[t]:
            net = compiled(doc)
            _, _, back = round_trip(net)
            assert back.layers["n0"].pads == net.layers["n0"].pads
            assert back.layers["n0"].out_shape == net.layers["n0"].out_shape


# ----- models written by hand, as other tools write them -------------------------------------
def make_model(nodes, inputs, outputs_, inits, opset=17):
    g = helper.make_graph(nodes, "foreign", inputs, outputs_,
                          initializer=[numpy_helper.from_array(np.asarray(v, np.float32)
                                                               if np.asarray(v).dtype.kind == "f"
                                                               else np.asarray(v), k)
                                       for k, v in inits.items()])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    onnx.checker.check_model(m, full_check=True)
    return m


def vi(name, shape):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


def check_against_ort(model, shape, seed=0):
    graph, state = import_onnx(model)
    net = engine.compile(graph)
    net.load_state_dict(state)
    x = np.random.default_rng(seed).normal(0, 1, (4, *shape)).astype(np.float32)
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    want = sess.run(None, {model.graph.input[0].name: x})[0]
    assert rel_err(net.forward(x), want) < 1e-4
    return graph


def test_foreign_cnn_with_auto_pad_clip_swish_and_mean():
    rng = np.random.default_rng(0)
    inits = {"w": rng.normal(0, 0.3, (4, 2, 3, 3)), "b": rng.normal(0, 0.1, 4),
             "lo": np.float32(0.0), "hi": np.float32(6.0), "fc": rng.normal(0, 0.3, (4, 5)),
             "fcb": rng.normal(0, 0.1, (1, 5))}
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], name="/conv1/Conv", strides=[2, 2],
                         auto_pad="SAME_UPPER"),
        helper.make_node("Clip", ["c", "lo", "hi"], ["r"], name="/relu6/Clip"),
        helper.make_node("Sigmoid", ["r"], ["s"]),
        helper.make_node("Mul", ["r", "s"], ["sw"], name="/act/Mul"),
        helper.make_node("ReduceMean", ["sw"], ["m"], axes=[2, 3], keepdims=0),
        helper.make_node("Gemm", ["m", "fc", "fcb"], ["logits"], transB=0, alpha=0.5),
    ]
    m = make_model(nodes, [vi("x", ["batch", 2, 7, 7])], [vi("logits", ["batch", 5])], inits,
                   opset=17)
    graph = check_against_ort(m, (2, 7, 7))
    types = [n.type for n in graph.nodes.values()]
    assert types == ["Input", "Conv2D", "HardTanh", "Swish", "GlobalAvgPool2D", "Dense",
                     "Output"]
    conv = next(n for n in graph.nodes.values() if n.type == "Conv2D")
    assert conv.id == "conv1_Conv" and conv.params["padding"] == "same"
    assert graph.nodes["logits"].params["loss"] == "cross_entropy"


def test_foreign_mlp_with_matmul_bias_and_squeeze_of_pooled_features():
    rng = np.random.default_rng(1)
    inits = {"W": rng.normal(0, 0.3, (3, 2)), "B": rng.normal(0, 0.1, 2),
             "axes": np.array([2, 3], np.int64)}
    nodes = [
        helper.make_node("GlobalAveragePool", ["x"], ["g"]),
        helper.make_node("Squeeze", ["g", "axes"], ["v"]),
        helper.make_node("MatMul", ["v", "W"], ["mm"]),
        helper.make_node("Add", ["mm", "B"], ["y"]),
    ]
    m = make_model(nodes, [vi("x", ["N", 3, 4, 4])], [vi("y", ["N", 2])], inits)
    graph = check_against_ort(m, (3, 4, 4))
    assert [n.type for n in graph.nodes.values()] == ["Input", "GlobalAvgPool2D", "Dense",
                                                       "Output"]


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_pytorch_exported_model_imports():
    torch = pytest.importorskip("torch")
    nn = torch.nn
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.BatchNorm2d(3), nn.ReLU(),
                          nn.MaxPool2d(2), nn.Flatten(), nn.Linear(3 * 4 * 4, 4),
                          nn.LeakyReLU(0.1), nn.Dropout(0.2), nn.Linear(4, 3)).eval()
    with torch.no_grad():
        model[1].running_mean.normal_()
        model[1].running_var.uniform_(0.5, 1.5)
    import io
    buf = io.BytesIO()
    try:
        torch.onnx.export(model, (torch.zeros(2, 1, 8, 8),), buf, input_names=["image"],
                          output_names=["scores"], dynamic_axes={"image": {0: "N"}},
                          opset_version=17, dynamo=False)
    except Exception as exc:  # the exporter needs optional packages on some installs
        pytest.skip(f"torch.onnx.export unavailable: {exc}")
    m = onnx.load_model_from_string(buf.getvalue())
    graph = check_against_ort(m, (1, 8, 8))
    types = [n.type for n in graph.nodes.values()]
    assert types[0] == "Input" and types[-1] == "Output" and "Conv2D" in types
    assert "Dense" in types and "MaxPool2D" in types and "LeakyReLU" in types


def test_unsupported_ops_are_named_in_one_message():
    inits = {}
    nodes = [helper.make_node("LpNormalization", ["x"], ["ln"], name="norm1"),
             helper.make_node("Hardmax", ["ln"], ["e"], name="outer"),
             helper.make_node("Sin", ["x"], ["y"], name="sin1"),
             helper.make_node("Sin", ["x"], ["y2"], name="sin2")]
    m = make_model(nodes, [vi("x", ["N", 3])], [vi("e", ["N", 3]), vi("y", ["N", 3]),
                                                vi("y2", ["N", 3])], inits)
    with pytest.raises(OnnxImportError) as err:
        import_onnx(m)
    msg = str(err.value)
    for part in ("LpNormalization ('norm1')", "Hardmax ('outer')", "Sin ('sin1', 'sin2')"):
        assert part in msg
    assert isinstance(err.value, engine.NetBuilderError)


def test_inexpressible_layouts_are_refused_naming_the_node():
    inits = {"w": np.ones((4, 2, 3, 3)), "k": np.full(3, 2.0, np.float32)}
    grouped = make_model([helper.make_node("Conv", ["x", "w"], ["y"], name="gconv", group=3)],
                         [vi("x", ["N", 4, 5, 5])], [vi("y", ["N", 4, 3, 3])], inits)
    with pytest.raises(OnnxImportError, match=r"gconv.*group 3, which does not fit its 4 input"):
        import_onnx(grouped)
    scale = make_model([helper.make_node("Mul", ["x", "k"], ["y"], name="scale")],
                       [vi("x", ["N", 3])], [vi("y", ["N", 3])], inits)
    with pytest.raises(OnnxImportError, match=r"scale.*constant shaped \[3\]; NetBuilder's Scale"):
        import_onnx(scale)


def test_bad_files_raise_format_errors(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"this is not protobuf \x00\xff" * 10)
    with pytest.raises(engine.GraphFormatError):
        import_onnx(bad)
    with pytest.raises(engine.GraphFormatError, match="no such"):
        import_onnx(tmp_path / "missing.onnx")


def test_supported_ops_cover_everything_the_exporter_writes():
    written = set()
    for _, _, doc in all_cases():
        written |= {n.op_type for n in build_onnx(compiled(doc)).graph.node}
    assert written <= supported_ops(), written - supported_ops()


def test_round_trip_keeps_the_training_section():
    doc = dict(CASES["Dense"][0][1])
    doc["training"] = {"epochs": 3, "optimizer": {"type": "adam", "lr": 0.01}}
    graph, _ = import_onnx(build_onnx(compiled(doc)))
    assert graph.training == doc["training"]


def test_every_supported_op_has_a_handler():
    from engine.export.onnx_import import (
        STRUCTURAL_OPS,
        Importer,
        onnx_const_handlers,
        onnx_handlers,
    )
    handlers, const = onnx_handlers(), onnx_const_handlers()
    assert all(op in cls.onnx_ops and cls.capabilities().onnx_import
               for op, cls in handlers.items())
    assert all(op in cls.onnx_const_ops and cls.capabilities().onnx_import
               for op, cls in const.items())
    assert not [op for op in STRUCTURAL_OPS - {"Constant"} if not hasattr(Importer, "op_" + op)]
    assert supported_ops() == set(handlers) | set(const) | STRUCTURAL_OPS


def test_foreign_model_name_comes_from_the_file(tmp_path):
    m = make_model([helper.make_node("Relu", ["x"], ["y"])], [vi("x", ["N", 3])],
                   [vi("y", ["N", 3])], {})
    onnx.save(m, tmp_path / "tiny_relu.onnx")
    graph, state = import_onnx(tmp_path / "tiny_relu.onnx")
    assert graph.name == "tiny_relu" and state == {}
    assert [n.type for n in graph.nodes.values()] == ["Input", "ReLU", "Output"]
    assert graph.nodes["y"].params["loss"] == "cross_entropy"
