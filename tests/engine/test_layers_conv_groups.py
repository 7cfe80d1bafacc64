"""Conv2D's ``groups`` and ``dilation``: PyTorch's semantics (forward, input gradient and every
parameter gradient against ``torch.nn.Conv2d``), the kernels against the float64 reference
over many geometries, shape errors that name the fix, fusion left to plain convs, and the
ONNX forms ``torch.onnx.export`` writes. The contract harness runs the Conv2D examples
(depthwise, grouped, dilated) through the rest."""

import io

import numpy as np
import pytest
from graphdocs import chain_doc

import engine
from engine.kernels import groupconv as kg
from engine.kernels.reference import conv as ref
from engine.layers.conv import Conv2D

TORCH_REL = 2e-4


def rel(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-12))


def conv(params, shape, node_id="c1"):
    return Conv2D(node_id, params, [shape])


TORCH_CASES = [
    ((8, 9, 9), {"filters": 8, "kernel_size": 3, "padding": 1, "groups": 8}),  # depthwise 3×3
    ((4, 10, 9), {"filters": 8, "kernel_size": 3, "stride": 2, "padding": 1, "groups": 4}),
    ((6, 9, 8), {"filters": 9, "kernel_size": (3, 2), "padding": 2, "groups": 3,
                 "dilation": (2, 3)}),
    ((3, 11, 10), {"filters": 5, "kernel_size": 3, "stride": (2, 1), "dilation": 2}),
    ((4, 7, 7), {"filters": 4, "kernel_size": 5, "padding": 4, "groups": 4, "dilation": 2,
                 "bias": False}),
]


@pytest.mark.parametrize(("shape", "params"), TORCH_CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_matches_torch_forward_input_and_parameter_gradients(rng, shape, params, dtype):
    torch = pytest.importorskip("torch")
    layer = conv(params, shape)
    state = {k: v.astype(dtype) + 0.1 * rng.standard_normal(v.shape).astype(dtype)
             for k, v in layer.init_params(rng).items()}
    x = rng.standard_normal((4, *shape)).astype(dtype)
    y = layer.forward([x], state, True)
    dy = rng.standard_normal(y.shape).astype(dtype)
    grads = {k: np.zeros_like(v) for k, v in state.items()}
    (dx,) = layer.backward(dy, state, grads)

    p = layer.p
    ref_mod = torch.nn.Conv2d(shape[0], p["filters"], p["kernel_size"], p["stride"],
                              layer.pads[0], p["dilation"], p["groups"], p["bias"])
    ref_mod = ref_mod.double() if dtype == np.float64 else ref_mod
    assert dict(ref_mod.named_parameters()).keys() == state.keys()
    with torch.no_grad():
        for k, v in ref_mod.named_parameters():
            v.copy_(torch.from_numpy(state[k]))
    tx = torch.from_numpy(x).requires_grad_(True)
    ty = ref_mod(tx)
    ty.backward(torch.from_numpy(dy))
    assert rel(y, ty.detach().numpy()) < TORCH_REL
    assert rel(dx, tx.grad.numpy()) < TORCH_REL
    for k, v in ref_mod.named_parameters():
        assert rel(grads[k], v.grad.numpy()) < TORCH_REL, k


GEOMETRIES = [  # (C, H, W), O, groups, kernel, stride, dilation, pads (t, b, l, r)
    ((3, 6, 6), 3, 3, (3, 3), (1, 1), (1, 1), (1, 1, 1, 1)),
    ((3, 6, 7), 6, 3, (3, 3), (2, 2), (1, 1), (0, 1, 0, 1)),
    ((2, 9, 8), 2, 2, (3, 2), (1, 3), (2, 3), (2, 2, 3, 3)),
    ((4, 5, 5), 8, 4, (1, 1), (2, 2), (1, 1), (0, 0, 0, 0)),
    ((4, 8, 9), 6, 2, (3, 3), (1, 2), (2, 1), (1, 1, 0, 0)),
    ((6, 7, 7), 3, 3, (2, 3), (2, 1), (1, 2), (0, 0, 2, 2)),
    ((2, 9, 9), 4, 1, (3, 3), (1, 1), (3, 3), (3, 3, 3, 3)),
    # depthwise 3×3 (kernels.depthwise, direct): multiplier 2, uneven and no padding,
    # dilation, a wide plane (vector loops and their remainders), padding wider than the
    # filter's reach (dx gathers with a negative offset), images narrower than the filter's
    # reach (no interior columns), strides 2 and (2, 1) with MobileNet's 'same' padding
    # (0 before, 1 after), and a 2×3 filter (the row kernels)
    ((3, 5, 7), 6, 3, (3, 3), (1, 1), (1, 1), (1, 0, 0, 2)),
    ((2, 7, 6), 2, 2, (3, 2), (1, 1), (2, 3), (0, 0, 0, 0)),
    ((2, 6, 37), 2, 2, (3, 3), (1, 1), (1, 1), (1, 1, 1, 1)),
    ((2, 6, 6), 2, 2, (3, 3), (1, 1), (1, 1), (3, 1, 0, 2)),
    ((2, 9, 8), 2, 2, (3, 3), (1, 1), (2, 3), (2, 2, 3, 3)),
    ((2, 4, 2), 4, 2, (3, 3), (1, 1), (1, 1), (1, 1, 1, 1)),
    ((3, 1, 1), 3, 3, (3, 3), (1, 1), (1, 1), (1, 1, 1, 1)),
    ((3, 28, 28), 3, 3, (3, 3), (2, 2), (1, 1), (0, 1, 0, 1)),
    ((2, 13, 21), 4, 2, (3, 3), (2, 1), (1, 2), (1, 1, 2, 2)),
    ((2, 11, 19), 2, 2, (3, 3), (3, 2), (1, 1), (1, 1, 1, 1)),
]


def out_hw(hw, k, s, d, pads):
    t, b, l, r = pads
    return ((hw[0] + t + b - d[0] * (k[0] - 1) - 1) // s[0] + 1,
            (hw[1] + l + r - d[1] * (k[1] - 1) - 1) // s[1] + 1)


@pytest.mark.parametrize("geom", GEOMETRIES)
@pytest.mark.parametrize("nchunks", [1, 3])
def test_kernels_match_the_float64_reference(rng, geom, nchunks):
    (c, h, w), o, groups, k, s, d, pads = geom
    x = rng.standard_normal((5, c, h, w))
    weight = rng.standard_normal((o, c // groups, *k))
    bias = rng.standard_normal(o)
    oh, ow = out_hw((h, w), k, s, d, pads)
    dy = rng.standard_normal((5, o, oh, ow))
    want = ref.conv2d_forward(x, weight, bias, s, pads, d, groups)
    want_dx, want_gw, want_gb = ref.conv2d_backward(x, weight, dy, s, pads, d, groups)
    runs = ["grouped"] + (["depthwise"] if groups == c else [])
    for kind in runs:
        y = np.empty((5, o, oh, ow))
        gw, gb = np.full_like(weight, 7.0), np.full_like(bias, 7.0)  # overwritten, not added
        if kind == "depthwise":
            kg.depthwise_forward(x, weight, bias, *s, *d, pads[0], pads[2], y)
            dx = kg.depthwise_backward(x, weight, dy, *s, *d, pads[0], pads[2], gw, gb)
        else:
            kg.grouped_forward(x, weight, bias, groups, *s, *d, pads[0], pads[2], nchunks, y)
            dx = kg.grouped_backward(x, weight, dy, groups, *s, *d, pads[0], pads[2], nchunks,
                                     gw, gb)
        np.testing.assert_allclose(y, want, rtol=1e-10, atol=1e-10, err_msg=kind)
        np.testing.assert_allclose(dx, want_dx, rtol=1e-10, atol=1e-10, err_msg=kind)
        np.testing.assert_allclose(gw, want_gw, rtol=1e-10, atol=1e-10, err_msg=kind)
        np.testing.assert_allclose(gb, want_gb, rtol=1e-10, atol=1e-10, err_msg=kind)


def test_depthwise_without_bias_leaves_no_bias_and_matches_the_reference(rng):
    x = rng.standard_normal((2, 3, 6, 6)).astype(np.float32)
    weight = rng.standard_normal((3, 1, 3, 3)).astype(np.float32)
    y = np.empty((2, 3, 6, 6), np.float32)
    kg.depthwise_forward(x, weight, np.zeros(0, np.float32), 1, 1, 1, 1, 1, 1, y)
    assert rel(y, ref.conv2d_forward(x.astype(np.float64), weight, None, (1, 1), (1, 1, 1, 1),
                                     (1, 1), 3)) < 1e-5


def test_weight_layout_params_and_macs_follow_pytorch():
    dw = conv({"filters": 16, "kernel_size": 3, "padding": 1, "groups": 8}, (8, 10, 10))
    assert dw.param_shapes() == {"weight": (16, 1, 3, 3), "bias": (16,)}
    assert dw.macs() == 10 * 10 * 16 * 1 * 9
    assert dw.summary() == "16 × 3×3, pad 1, depthwise"
    g = conv({"filters": 6, "kernel_size": 3, "groups": 2, "dilation": 2}, (4, 9, 9))
    assert g.out_shape == (6, 5, 5)  # the dilated 3×3 spans 5×5
    assert g.param_shapes()["weight"] == (6, 2, 3, 3)
    assert g.summary() == "6 × 3×3, dilation 2, 2 groups"
    same = conv({"filters": 2, "kernel_size": 3, "padding": "same", "dilation": 3}, (1, 7, 8))
    assert same.out_shape == (2, 7, 8) and same.pads == (3, 3, 3, 3)
    # the He initialisation reads fan_in = C / groups · KH · KW, as PyTorch's layout says
    w = dw.init_params(np.random.default_rng(0))["weight"]
    assert 0.3 < float(w.std()) / np.sqrt(2 / 9) < 1.7


@pytest.mark.parametrize(("params", "shape", "match"), [
    ({"filters": 8, "groups": 4}, (6, 8, 8),
     r"Conv2D 'g1' has 6 input channels, which groups = 4 does not divide: set groups to a "
     r"divisor of 6 \(1, 2, 3, 6; 6 is depthwise\)"),
    ({"filters": 10, "groups": 4}, (8, 8, 8),
     r"filters = 10, not a multiple of groups = 4.*use filters 8 or 12"),
    ({"filters": 3, "groups": 4}, (4, 8, 8), "use filters 4$"),
    ({"filters": 2, "kernel_size": 3, "dilation": 3}, (1, 6, 6),
     r"dilated kernel 7×7 is larger than the 6×6 input"),
])
def test_shapes_that_do_not_fit_name_the_node_and_the_fix(params, shape, match):
    with pytest.raises(engine.ShapeError, match=match) as info:
        conv(params, shape, "g1")
    assert info.value.node_id == "g1"


def test_only_plain_convs_join_fused_blocks(rng):
    doc = chain_doc((4, 8, 8), [
        ("Conv2D", {"filters": 4, "kernel_size": 3, "padding": 1}), ("ReLU", {}),
        ("Conv2D", {"filters": 4, "kernel_size": 3, "padding": 1, "groups": 4}), ("ReLU", {}),
        ("Conv2D", {"filters": 4, "kernel_size": 3, "padding": 2, "dilation": 2}), ("ReLU", {}),
        ("MaxPool2D", {"pool_size": 2}), ("Flatten", {}), ("Dense", {"units": 3})])
    fused = engine.compile(engine.Graph.from_dict(doc), seed=0)
    plain = engine.compile(engine.Graph.from_dict(doc), seed=0, fuse=False)
    blocks = [st.ids for st in fused.steps if type(st).__name__ == "ConvBlock"]
    assert blocks == [("n0", "n1")]
    x = rng.standard_normal((6, 4, 8, 8)).astype(np.float32)
    np.testing.assert_allclose(fused.forward(x), plain.forward(x), rtol=1e-5, atol=1e-6)


def test_a_depthwise_separable_network_trains_and_passes_gradcheck(rng):
    g = engine.Graph.from_dict(chain_doc((3, 6, 6), [
        # Tanh first: a ReLU there would feed the 1×1 conv pixels of exact zeros, and with its
        # zero bias its ReLU would sit on the kink, where finite differences mean nothing
        ("Conv2D", {"filters": 6, "kernel_size": 3, "padding": 1, "groups": 3}), ("Tanh", {}),
        ("Conv2D", {"filters": 4, "kernel_size": 1}), ("ReLU", {}),
        ("Conv2D", {"filters": 4, "kernel_size": 3, "dilation": 2, "groups": 2}),
        ("Flatten", {}), ("Dense", {"units": 3})]))
    assert engine.gradcheck(g, batch=2).worst < 1e-6
    net = engine.compile(g, seed=1)
    x = rng.standard_normal((16, 3, 6, 6)).astype(np.float32)
    y = rng.integers(0, 3, 16)
    opt = engine.Adam(lr=0.01)
    first = net.train_step(x, y, opt)
    for _ in range(30):
        last = net.train_step(x, y, opt)
    assert last < 0.5 * first


@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning",
                            "ignore::FutureWarning")
def test_grouped_and_dilated_convs_exported_by_torch_import():
    torch = pytest.importorskip("torch")
    ort = pytest.importorskip("onnxruntime")
    from engine.export import import_onnx

    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(4, 8, 3, padding=1, groups=4), torch.nn.ReLU(),
        torch.nn.Conv2d(8, 6, 3, padding=2, dilation=2, groups=2),
        torch.nn.Conv2d(6, 6, (3, 1), stride=2, dilation=(1, 2), groups=6, bias=False)).eval()
    x = torch.randn(2, 4, 9, 9)
    buf = io.BytesIO()
    torch.onnx.export(model, (x,), buf, input_names=["x"], output_names=["y"], opset_version=17,
                      dynamo=False, dynamic_axes={"x": {0: "N"}, "y": {0: "N"}})
    graph, state = import_onnx(buf.getvalue())
    convs = [n.params for n in graph.nodes.values() if n.type == "Conv2D"]
    assert [(p.get("groups", 1), tuple(p.get("dilation", (1, 1)))) for p in convs] == \
        [(4, (1, 1)), (2, (2, 2)), (6, (1, 2))]
    net = engine.compile(graph)
    net.load_state_dict(state)
    xs = np.random.default_rng(1).standard_normal((3, 4, 9, 9)).astype(np.float32)
    sess = ort.InferenceSession(buf.getvalue(), providers=["CPUExecutionProvider"])
    with torch.no_grad():
        theirs = model(torch.from_numpy(xs)).numpy()
    ours = net.forward(xs)
    assert rel(ours, sess.run(None, {"x": xs})[0]) < 1e-4
    assert rel(ours, theirs) < 1e-4
