"""ONNX import of what exporters write around the layers, built by hand with onnx.helper:
constant folding left undone, batch-size shape arithmetic, zero RNN states, casts, Gemm
biases and transA, Dropout's training_mode, pooling pads; and the precise refusals of what
NetBuilder cannot express. Each import is checked against
onnxruntime."""
import numpy as np
import pytest
from exportcases import rel_err

import engine

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from engine.export import import_onnx  # noqa: E402
from engine.export.onnx_import import OnnxImportError  # noqa: E402


def model_of(nodes, inputs, outputs, inits=None, opset=17, full_check=True):
    g = helper.make_graph(nodes, "patterns", inputs, outputs,
                          initializer=[numpy_helper.from_array(np.asarray(v), k)
                                       for k, v in (inits or {}).items()])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    onnx.checker.check_model(m, full_check=full_check)
    return m


def vi(name, shape, elem=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, elem, shape)


def f32(*shape, seed=0, scale=0.5):
    return np.random.default_rng(seed).normal(0, scale, shape).astype(np.float32)


def const(name, value):
    return helper.make_node("Constant", [], [name], name=f"const_{name}",
                            value=numpy_helper.from_array(np.asarray(value), name))


def imported(m, x, notes=None):
    """Import ``m``; assert it matches onnxruntime on ``x``; return (graph, net, output)."""
    graph, state = import_onnx(m, notes=notes)
    net = engine.compile(graph)
    net.load_state_dict(state)
    sess = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    want = sess.run(None, {m.graph.input[0].name: x})[0]
    got = net.forward(x)
    assert rel_err(got, want) < 1e-4
    return graph, net, got


def types(graph):
    return [n.type for n in graph.nodes.values()]


# ----- constant folding -----------------------------------------------------------------------
def test_arithmetic_on_initialisers_is_folded_into_the_weights():
    w = f32(5, 4)  # stored transposed, in float64, scaled and shifted: all on constants
    inits = {"w64": w.T.astype(np.float64), "two": np.float32(2.0), "half": np.float32(0.5),
             "b": f32(5, seed=1), "bshape": np.array([1, 5], np.int64)}
    nodes = [
        helper.make_node("Cast", ["w64"], ["w32"], to=TensorProto.FLOAT),
        helper.make_node("Transpose", ["w32"], ["wt"], perm=[1, 0]),
        helper.make_node("Mul", ["wt", "two"], ["w2"]),
        helper.make_node("Mul", ["w2", "half"], ["w1"]),
        const("one", np.float32(1.0)),
        helper.make_node("Add", ["b", "one"], ["b1"]),
        helper.make_node("Reshape", ["b1", "bshape"], ["b2"]),
        helper.make_node("Identity", ["b2"], ["b3"]),
        helper.make_node("Gemm", ["x", "w1", "b3"], ["y"], transB=1, name="fc"),
    ]
    m = model_of(nodes, [vi("x", ["N", 4])], [vi("y", ["N", 5])], inits)
    notes = []
    graph, _, _ = imported(m, f32(3, 4, seed=2), notes)
    assert types(graph) == ["Input", "Dense", "Output"]
    assert any("folded" in n and "Transpose" in n and "Cast" in n for n in notes)


def test_unsqueeze_and_constant_nodes_on_initialisers_fold():
    inits = {"w": f32(3, 2), "axes": np.array([0], np.int64)}
    nodes = [helper.make_node("Unsqueeze", ["w", "axes"], ["w3"]),  # (1, 3, 2)
             const("sq", np.array([0], np.int64)),
             helper.make_node("Squeeze", ["w3", "sq"], ["w2"]),
             helper.make_node("MatMul", ["x", "w2"], ["y"])]
    m = model_of(nodes, [vi("x", ["N", 3])], [vi("y", ["N", 2])], inits)
    graph, _, _ = imported(m, f32(4, 3))
    assert types(graph) == ["Input", "Dense", "Output"]


def test_a_huge_constant_is_refused_before_it_is_allocated():
    shape = np.array([1 << 20, 1 << 20], np.int64)
    nodes = [helper.make_node("ConstantOfShape", ["s"], ["big"], name="zeros"),
             helper.make_node("Add", ["x", "big"], ["y"])]
    m = model_of(nodes, [vi("x", ["N", 3])], [vi("y", ["N", 3])], {"s": shape},
                 full_check=False)
    with pytest.raises(OnnxImportError, match=r"ConstantOfShape node 'zeros' would create .*"
                                              r"1,099,511,627,776 elements"):
        import_onnx(m)


# ----- batch-size shape arithmetic ------------------------------------------------------------
def view_nodes(src, out):
    """What torch writes for ``x.view(x.size(0), -1)``."""
    return [helper.make_node("Shape", [src], ["shp"]),
            const("zero", np.array(0, np.int64)),
            helper.make_node("Gather", ["shp", "zero"], ["n"], axis=0),
            const("ax", np.array([0], np.int64)),
            helper.make_node("Unsqueeze", ["n", "ax"], ["n1"]),
            const("rest", np.array([-1], np.int64)),
            helper.make_node("Concat", ["n1", "rest"], ["target"], axis=0),
            helper.make_node("Reshape", [src, "target"], [out], name="view")]


@pytest.mark.parametrize("batch", ["N", 2])
def test_view_of_the_batch_size_keeps_the_batch(batch):
    inits = {"w": f32(4, 2, 3, 3), "fc": f32(4 * 3 * 3, 3, seed=1)}
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"]), *view_nodes("c", "flat"),
             helper.make_node("MatMul", ["flat", "fc"], ["y"])]
    m = model_of(nodes, [vi("x", [batch, 2, 5, 5])], [vi("y", [batch, 3])], inits)
    notes = []
    graph, _, _ = imported(m, f32(2, 2, 5, 5), notes)
    assert types(graph) == ["Input", "Conv2D", "Flatten", "Dense", "Output"] or \
        types(graph) == ["Input", "Conv2D", "Reshape", "Dense", "Output"]
    assert any("keeps the batch" in n for n in notes)


def test_a_fixed_batch_written_into_a_reshape_keeps_the_batch():
    inits = {"t": np.array([2, -1], np.int64), "fc": f32(12, 3)}
    nodes = [helper.make_node("Reshape", ["x", "t"], ["flat"], name="view"),
             helper.make_node("MatMul", ["flat", "fc"], ["y"])]
    m = model_of(nodes, [vi("x", [2, 3, 4])], [vi("y", [2, 3])], inits)
    _, net, _ = imported(m, f32(2, 3, 4))
    assert net.forward(f32(5, 3, 4)).shape == (5, 3)  # any batch size now


def test_shape_arithmetic_used_as_data_is_refused_naming_the_reader():
    nodes = [helper.make_node("Shape", ["x"], ["shp"]),
             helper.make_node("Cast", ["shp"], ["shpf"], to=TensorProto.FLOAT),
             helper.make_node("Add", ["x", "shpf"], ["y"], name="add_shape")]
    m = model_of(nodes, [vi("x", ["N", 2])], [vi("y", ["N", 2])])
    with pytest.raises(OnnxImportError, match=r"'shpf' reads 'shp'.*computed from the input's shape"):
        import_onnx(m)


# ----- casts ----------------------------------------------------------------------------------
def test_cast_to_int_and_back_is_refused_not_a_silent_no_op():
    nodes = [helper.make_node("Cast", ["x"], ["i"], to=TensorProto.INT64, name="to_int"),
             helper.make_node("Cast", ["i"], ["y"], to=TensorProto.FLOAT)]
    m = model_of(nodes, [vi("x", ["N", 4])], [vi("y", ["N", 4])])
    x = np.array([[0.7, 1.5, -0.2, 3.9]], np.float32)
    want = ort.InferenceSession(m.SerializeToString(),
                                providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    assert want.tolist() == [[0, 1, 0, 3]]  # what a silent no-op would get wrong
    with pytest.raises(OnnxImportError, match=r"Cast node 'to_int' converts to INT64, which "
                                              r"rounds toward zero"):
        import_onnx(m)


def test_casts_between_float_types_are_kept_and_float16_is_refused():
    nodes = [helper.make_node("Cast", ["x"], ["d"], to=TensorProto.DOUBLE),
             helper.make_node("Cast", ["d"], ["y"], to=TensorProto.FLOAT)]
    m = model_of(nodes, [vi("x", ["N", 4])], [vi("y", ["N", 4])])
    graph, _, _ = imported(m, f32(3, 4))
    assert types(graph) == ["Input", "Output"]
    half = model_of([helper.make_node("Cast", ["x"], ["y"], to=TensorProto.FLOAT16,
                                      name="to_half")],
                    [vi("x", ["N", 4])], [vi("y", ["N", 4], TensorProto.FLOAT16)])
    with pytest.raises(OnnxImportError, match=r"to_half.*FLOAT16"):
        import_onnx(half)


def test_cast_of_constants_folds_with_truncation():
    w = np.array([[0.7, -1.5], [2.9, 0.2], [1.0, -0.6]], np.float32)
    nodes = [helper.make_node("Cast", ["w"], ["wi"], to=TensorProto.INT64),
             helper.make_node("Cast", ["wi"], ["wf"], to=TensorProto.FLOAT),
             helper.make_node("MatMul", ["x", "wf"], ["y"])]
    m = model_of(nodes, [vi("x", ["N", 3])], [vi("y", ["N", 2])], {"w": w})
    _, net, _ = imported(m, f32(4, 3))
    assert np.array_equal(net.state_dict()[next(iter(net.state_dict()))],
                          np.trunc(w).T)


def test_cast_to_int_for_an_embedding_lookup_is_kept():
    table = f32(10, 3)
    nodes = [helper.make_node("Cast", ["x"], ["ids"], to=TensorProto.INT64),
             helper.make_node("Gather", ["table", "ids"], ["y"], axis=0)]
    m = model_of(nodes, [vi("x", ["N", 5])], [vi("y", ["N", 5, 3])], {"table": table})
    x = np.array([[1, 2, 3, 0, 9], [4, 4, 5, 6, 7]], np.float32)
    graph, _, _ = imported(m, x)
    assert types(graph) == ["Input", "Embedding", "Output"]


# ----- Gemm, Dropout, pooling -----------------------------------------------------------------
def gemm_model(c, **attrs):
    inits = {"w": f32(4, 3), "c": c}
    return model_of([helper.make_node("Gemm", ["x", "w", "c"], ["y"], name="fc", **attrs)],
                    [vi("x", [2, 4])], [vi("y", [2, 3])], inits)


def test_gemm_with_a_per_sample_bias_is_refused_clearly():
    m = gemm_model(f32(2, 3, seed=3))
    with pytest.raises(OnnxImportError) as err:
        import_onnx(m)
    msg = str(err.value)
    assert "fc" in msg and "differs from sample to sample" in msg and "malformed" not in msg


def test_gemm_with_a_matrix_bias_of_equal_rows_imports():
    row = f32(1, 3, seed=3)
    imported(gemm_model(np.repeat(row, 2, axis=0)), f32(2, 4))
    imported(gemm_model(np.float32(0.25)), f32(2, 4))  # a scalar bias


def test_gemm_transa_of_a_transpose_imports_and_otherwise_is_refused():
    inits = {"w": f32(4, 3), "c": f32(3)}
    nodes = [helper.make_node("Transpose", ["x"], ["xt"], perm=[1, 0]),
             helper.make_node("Gemm", ["xt", "w", "c"], ["y"], transA=1)]
    m = model_of(nodes, [vi("x", ["N", 4])], [vi("y", ["N", 3])], inits)
    graph, _, _ = imported(m, f32(5, 4))
    assert types(graph) == ["Input", "Dense", "Output"]
    bare = model_of([helper.make_node("Gemm", ["x", "w", "c"], ["y"], transA=1, name="ta")],
                    [vi("x", [4, 2])], [vi("y", [2, 3])], inits)
    with pytest.raises(OnnxImportError, match=r"ta.*transA = 1.*batch"):
        import_onnx(bare)


@pytest.mark.parametrize("mode,ok", [(None, True), (False, True), (True, False)])
def test_dropout_training_mode_is_refused_only_when_true(mode, ok):
    inits = {"r": np.float32(0.3)}
    ins = ["x", "r"]
    if mode is not None:
        inits["t"] = np.array(mode)
        ins.append("t")
    m = model_of([helper.make_node("Dropout", ins, ["y"], name="drop")],
                 [vi("x", ["N", 4])], [vi("y", ["N", 4])], inits)
    if ok:
        graph, _, _ = imported(m, f32(3, 4))
        assert types(graph) == ["Input", "Dropout", "Output"]
    else:
        with pytest.raises(OnnxImportError, match=r"drop.*training mode"):
            import_onnx(m)


def pool_model(op="MaxPool", **attrs):
    node = helper.make_node(op, ["x"], ["y"], name="pool", **attrs)
    return model_of([node], [vi("x", ["N", 1, 5, 5])], [vi("y", ["N", 1, None, None])])


def test_pads_over_half_the_window_are_refused_for_the_real_reason():
    m = pool_model(kernel_shape=[3, 3], pads=[2, 2, 2, 2])
    with pytest.raises(OnnxImportError) as err:
        import_onnx(m)
    msg = str(err.value)
    assert "more than half the 3×3 window" in msg and "equally" not in msg


def test_ceil_mode_that_changes_nothing_imports_without_it():
    m = pool_model(kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1)  # (5 - 3) / 2 exact
    graph, _, _ = imported(m, f32(2, 1, 5, 5))
    assert "ceil_mode" not in graph.nodes["pool"].params


@pytest.mark.parametrize("op", ["MaxPool", "AveragePool"])
@pytest.mark.parametrize("pad", [0, 1])
def test_ceil_mode_that_rounds_up_imports_as_ceil_mode(op, pad):
    # 3×3 windows, stride 2 on 6×6: floor gives 2×2 (pad 0) / 3×3 (pad 1), ceil one more
    node = helper.make_node(op, ["x"], ["y"], name="pool", kernel_shape=[3, 3], strides=[2, 2],
                            ceil_mode=1, pads=[pad] * 4,
                            **({"count_include_pad": 1} if op == "AveragePool" else {}))
    m = model_of([node], [vi("x", ["N", 1, 6, 6])], [vi("y", ["N", 1, None, None])])
    graph, _, got = imported(m, f32(2, 1, 6, 6))
    assert graph.nodes["pool"].params["ceil_mode"] is True
    assert got.shape == (2, 1, 3 + pad, 3 + pad)


def test_ceil_mode_with_the_pads_of_same_imports_as_same():
    m = pool_model("AveragePool", kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1,
                   pads=[1, 1, 1, 1])  # count_include_pad = 0 and the pads of 'same'
    graph, _, _ = imported(m, f32(2, 1, 5, 5))
    assert graph.nodes["pool"].params["padding"] == "same"


# ----- what imports now, and the refusals left -----------------------------------------------
def refused(m, *parts):
    with pytest.raises(OnnxImportError) as err:
        import_onnx(m)
    msg = str(err.value)
    for p in parts:
        assert p in msg, (p, msg)
    return msg


@pytest.mark.parametrize("attrs", [{"alpha": 1 / 6}, {}, {"alpha": 0.3, "beta": 0.2}])
def test_hardsigmoid_imports_with_its_alpha_and_beta(attrs):
    # PyTorch's Hardsigmoid (1/6), ONNX's default (0.2) and any other
    m = model_of([helper.make_node("HardSigmoid", ["x"], ["y"], name="hs", **attrs)],
                 [vi("x", ["N", 3])], [vi("y", ["N", 3])])
    graph, _, _ = imported(m, f32(4, 3, scale=4.0))
    params = graph.nodes["hs"].params
    assert params["alpha"] == pytest.approx(attrs.get("alpha", 0.2), rel=1e-6)
    assert params.get("beta", 0.5) == pytest.approx(attrs.get("beta", 0.5))


def test_gru_with_linear_before_reset_0_is_refused():
    h = 2
    inits = {"W": f32(1, 3 * h, 3), "R": f32(1, 3 * h, h)}
    nodes = [helper.make_node("Transpose", ["x"], ["xt"], perm=[1, 0, 2]),
             helper.make_node("GRU", ["xt", "W", "R"], ["", "yh"], hidden_size=h, name="gru"),
             helper.make_node("Squeeze", ["yh", "ax"], ["y"])]
    inits["ax"] = np.array([0], np.int64)
    m = model_of(nodes, [vi("x", ["N", 4, 3])], [vi("y", ["N", h])], inits)
    refused(m, "gru", "linear_before_reset = 0")


@pytest.mark.parametrize("bounds", [("lo",), ("", "hi")])
def test_one_sided_clip_imports_as_a_hardtanh_open_on_the_other_side(bounds):
    m = model_of([helper.make_node("Clip", ["x", *bounds], ["y"], name="clamp")],
                 [vi("x", ["N", 3])], [vi("y", ["N", 3])],
                 {k: np.float32(0.1) for k in bounds if k})
    graph, _, _ = imported(m, f32(4, 3, scale=2.0))
    assert types(graph) == ["Input", "HardTanh", "Output"]
    summary = engine.compile(graph).layers["clamp"].summary()
    assert summary == ("[0.1, ∞)" if bounds == ("lo",) else "(-∞, 0.1]")


def test_scaling_and_shifting_by_a_constant_import_as_scale():
    for op, want in (("Mul", {"scale": 2.0}), ("Add", {"shift": 2.0})):
        m = model_of([helper.make_node(op, ["x", "k"], ["y"], name="by_k")],
                     [vi("x", ["N", 3])], [vi("y", ["N", 3])], {"k": np.float32(2.0)})
        graph, _, _ = imported(m, f32(4, 3))
        assert types(graph) == ["Input", "Scale", "Output"]
        assert graph.nodes["by_k"].params == want


def test_spatial_mean_with_keepdims_imports_as_global_average_pooling():
    nodes = [helper.make_node("ReduceMean", ["x", "axes"], ["m"], keepdims=1),
             helper.make_node("Conv", ["m", "w"], ["y"])]
    inits = {"axes": np.array([2, 3], np.int64), "w": f32(4, 2, 1, 1)}
    m = model_of(nodes, [vi("x", ["N", 2, 5, 5])], [vi("y", ["N", 4, 1, 1])], inits, opset=18)
    graph, _, _ = imported(m, f32(3, 2, 5, 5))
    assert "GlobalAvgPool2D" in types(graph)
