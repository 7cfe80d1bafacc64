"""ConvTranspose2D and Upsample2D: PyTorch's semantics (forward, input gradient and every
parameter gradient against ``nn.ConvTranspose2d`` / ``nn.Upsample``, within 2e-4 relative),
the kernels against the float64 references, errors that name the fix, and the ONNX forms
``torch.onnx.export`` writes (ConvTranspose, Resize, opset-9 Upsample). The contract harness
checks the rest."""

import io

import numpy as np
import pytest
from graphdocs import chain_doc

import engine
from engine.kernels import upsample as ku
from engine.kernels.reference import upsample as rup
from engine.layers.convtranspose import ConvTranspose2D
from engine.layers.upsample import Upsample2D

TORCH_REL = 2e-4


def rel(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-12))


def run(layer, x, state, rng):
    y = layer.forward([x], state, True)
    dy = rng.standard_normal(y.shape).astype(x.dtype)
    grads = {k: np.zeros_like(v) for k, v in state.items()}
    (dx,) = layer.backward(dy, state, grads)
    return y, dy, dx, grads


def torch_grads(torch, module, x, dy, state):
    with torch.no_grad():
        for k, v in module.named_parameters():
            v.copy_(torch.from_numpy(state[k]))
    tx = torch.from_numpy(x).requires_grad_(True)
    ty = module(tx)
    ty.backward(torch.from_numpy(dy))
    return ty.detach().numpy(), tx.grad.numpy(), {k: v.grad.numpy()
                                                  for k, v in module.named_parameters()}


# ----- ConvTranspose2D --------------------------------------------------------------------------
CT_CASES = [
    ((3, 5, 4), {"filters": 4, "kernel_size": 3, "stride": 2, "padding": 1,
                 "output_padding": 1}),  # exactly doubles: 10×8
    ((2, 4, 4), {"filters": 3, "kernel_size": 2, "stride": 2}),
    ((4, 3, 5), {"filters": 2, "kernel_size": (4, 3), "stride": (3, 1), "padding": (1, 1),
                 "output_padding": (2, 0), "bias": False}),
    ((2, 6, 6), {"filters": 2, "kernel_size": 3, "stride": 1, "padding": 1}),
]


@pytest.mark.parametrize(("shape", "params"), CT_CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_conv_transpose_matches_torch(rng, shape, params, dtype):
    torch = pytest.importorskip("torch")
    layer = ConvTranspose2D("ct", params, [shape])
    state = {k: (v + 0.1 * rng.standard_normal(v.shape)).astype(dtype)
             for k, v in layer.init_params(rng).items()}
    x = rng.standard_normal((3, *shape)).astype(dtype)
    y, dy, dx, grads = run(layer, x, state, rng)
    p = layer.p
    mod = torch.nn.ConvTranspose2d(shape[0], p["filters"], p["kernel_size"], p["stride"],
                                   p["padding"], p["output_padding"], bias=p["bias"])
    mod = mod.double() if dtype == np.float64 else mod
    assert dict(mod.named_parameters()).keys() == state.keys()
    ty, tdx, tgrads = torch_grads(torch, mod, x, dy, state)
    assert y.shape == ty.shape
    assert rel(y, ty) < TORCH_REL
    assert rel(dx, tdx) < TORCH_REL
    for k in state:
        assert rel(grads[k], tgrads[k]) < TORCH_REL, k


def test_stride_2_kernel_3_padding_1_output_padding_1_doubles_the_size():
    layer = ConvTranspose2D("ct", {"filters": 8, "kernel_size": 3, "stride": 2, "padding": 1,
                                   "output_padding": 1}, [(16, 7, 9)])
    assert layer.out_shape == (8, 14, 18)
    assert layer.param_shapes() == {"weight": (16, 8, 3, 3), "bias": (8,)}
    assert layer.macs() == 7 * 9 * 16 * 8 * 9
    assert layer.summary() == "8 × 3×3, stride 2, pad 1, out pad 1"


@pytest.mark.parametrize("nchunks", [1, 2, 5])
def test_conv_transpose_kernels_match_the_reference_and_are_its_adjoint(rng, nchunks):
    x = rng.standard_normal((5, 3, 4, 5))
    w = rng.standard_normal((3, 2, 3, 2))
    b = rng.standard_normal(2)
    stride, pad, outpad = (2, 3), (1, 0), (1, 2)
    want = rup.conv_transpose2d_forward(x, w, b, stride, pad, outpad)
    y = np.empty(want.shape)
    ku.conv_transpose_forward(x, w, b, *stride, *pad, nchunks, y)
    np.testing.assert_allclose(y, want, rtol=1e-12, atol=1e-12)
    dy = rng.standard_normal(y.shape)
    gw, gb = np.full_like(w, 9.0), np.full_like(b, 9.0)
    dx = ku.conv_transpose_backward(x, w, dy, *stride, *pad, nchunks, gw, gb)
    # <y(x), dy> is linear in x and in w: its gradients are the adjoint products
    lin = rup.conv_transpose2d_forward
    np.testing.assert_allclose(np.sum(lin(x, w, None, stride, pad, outpad) * dy),
                               np.sum(dx * x), rtol=1e-10)
    np.testing.assert_allclose(np.sum(lin(x, w, None, stride, pad, outpad) * dy),
                               np.sum(gw * w), rtol=1e-10)
    np.testing.assert_allclose(gb, dy.sum(axis=(0, 2, 3)), rtol=1e-12)


@pytest.mark.parametrize(("params", "shape", "error", "match"), [
    ({"stride": 2, "output_padding": 2}, (1, 4, 4), engine.ParamError,
     r"ConvTranspose2D 'ct': output_padding 2 must be smaller than the stride 2"),
    ({"kernel_size": 2, "stride": 1, "padding": 2}, (1, 2, 2), engine.ShapeError,
     r"ConvTranspose2D 'ct' crops more than it makes: padding 2 on a 3×3 output leaves "
     r"-1×-1; use less padding"),
    ({}, (4, 4), engine.ShapeError, r"expects an image \(C, H, W\).*Reshape to \(1, 4, 4\)"),
])
def test_conv_transpose_refuses_what_does_not_fit_with_the_fix(params, shape, error, match):
    with pytest.raises(error, match=match) as info:
        ConvTranspose2D("ct", params, [shape])
    assert info.value.node_id == "ct"


# ----- Upsample2D -------------------------------------------------------------------------------
UP_CASES = [
    ((3, 4, 5), {"scale": 2}),
    ((2, 3, 4), {"scale": (3, 2)}),
    ((2, 4, 5), {"scale": 2, "mode": "bilinear"}),
    ((2, 3, 4), {"scale": (3, 4), "mode": "bilinear"}),
    ((2, 4, 5), {"scale": 2, "mode": "bilinear", "align_corners": True}),
    ((1, 1, 3), {"scale": (1, 3), "mode": "bilinear", "align_corners": True}),
]


@pytest.mark.parametrize(("shape", "params"), UP_CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_upsample_matches_torch(rng, shape, params, dtype):
    torch = pytest.importorskip("torch")
    layer = Upsample2D("up", params, [shape])
    x = rng.standard_normal((3, *shape)).astype(dtype)
    y, dy, dx, _ = run(layer, x, {}, rng)
    p = layer.p
    kw = {"align_corners": p["align_corners"]} if p["mode"] == "bilinear" else {}
    mod = torch.nn.Upsample(scale_factor=tuple(float(s) for s in p["scale"]), mode=p["mode"],
                            **kw)
    ty, tdx, _ = torch_grads(torch, mod, x, dy, {})
    assert y.shape == ty.shape == (3, *layer.out_shape)
    assert rel(y, ty) < TORCH_REL
    assert rel(dx, tdx) < TORCH_REL


@pytest.mark.parametrize("mode", ["nearest", "bilinear"])
@pytest.mark.parametrize("align", [False, True])
def test_resample_kernels_match_the_reference(rng, mode, align):
    layer = Upsample2D("up", {"scale": (2, 3), "mode": mode, "align_corners": align},
                       [(3, 5, 4)])
    x = rng.standard_normal((4, 3, 5, 4))
    np.testing.assert_allclose(layer.forward([x], {}, True),
                               rup.resize2d(x, (2, 3), mode, align), rtol=1e-12, atol=1e-12)
    dy = rng.standard_normal((4, 3, 10, 12))
    (dx,) = layer.backward(dy, {}, {})
    mh = rup.axis_matrix(5, 2, mode, align)
    mw = rup.axis_matrix(4, 3, mode, align)
    np.testing.assert_allclose(dx, np.einsum("ih,ncij,jw->nchw", mh, dy, mw), rtol=1e-12,
                               atol=1e-12)


def test_upsample_has_no_params_and_says_what_it_does():
    near = Upsample2D("up", {}, [(4, 7, 5)])
    assert near.out_shape == (4, 14, 10) and near.param_shapes() == {}
    assert near.summary() == "×2 nearest" and near.macs() == 0
    bil = Upsample2D("up", {"scale": (2, 3), "mode": "bilinear", "align_corners": True},
                     [(1, 2, 2)])
    assert bil.out_shape == (1, 4, 6) and bil.summary() == "×2×3 bilinear, align corners"
    with pytest.raises(engine.ParamError, match="scale = 0 is out of range"):
        Upsample2D("up", {"scale": 0}, [(1, 2, 2)])


def test_a_small_decoder_trains_and_passes_gradcheck(rng):
    g = engine.Graph.from_dict(chain_doc((2, 4, 4), [
        ("Conv2D", {"filters": 3, "kernel_size": 3, "stride": 2, "padding": 1}), ("Tanh", {}),
        ("ConvTranspose2D", {"filters": 3, "kernel_size": 3, "stride": 2, "padding": 1,
                             "output_padding": 1}), ("Tanh", {}),
        ("Upsample2D", {"mode": "bilinear"}),
        ("Conv2D", {"filters": 1, "kernel_size": 3, "padding": 1})], loss="mse"))
    assert engine.gradcheck(g, batch=2).worst < 1e-6
    net = engine.compile(g, seed=0)
    x = rng.standard_normal((16, 2, 4, 4)).astype(np.float32)
    y = np.repeat(np.repeat(x[:, :1], 2, axis=2), 2, axis=3)  # learn to enlarge channel 0
    opt = engine.Adam(lr=0.01)
    first = net.train_step(x, y, opt)
    for _ in range(60):
        last = net.train_step(x, y, opt)
    assert last < 0.5 * first


# ----- ONNX forms torch writes ------------------------------------------------------------------
def torch_onnx(torch, model, x, opset):
    buf = io.BytesIO()
    torch.onnx.export(model.eval(), (x,), buf, input_names=["x"], output_names=["y"],
                      opset_version=opset, dynamo=False,
                      dynamic_axes={"x": {0: "N"}, "y": {0: "N"}})
    return buf.getvalue()


@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning",
                            "ignore::FutureWarning")
@pytest.mark.parametrize(("opset", "up"), [
    (17, {"scale_factor": 2, "mode": "nearest"}),
    (17, {"scale_factor": 2, "mode": "bilinear", "align_corners": False}),
    (13, {"scale_factor": (2, 3), "mode": "bilinear", "align_corners": True}),
    (11, {"scale_factor": 3, "mode": "nearest"}),
    (9, {"scale_factor": 2, "mode": "nearest"}),
])
def test_decoders_exported_by_torch_import(opset, up):
    torch = pytest.importorskip("torch")
    ort = pytest.importorskip("onnxruntime")
    from engine.export import import_onnx

    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.ConvTranspose2d(3, 4, 3, stride=2, padding=1, output_padding=1),
        torch.nn.ReLU(), torch.nn.Upsample(**up),
        torch.nn.ConvTranspose2d(4, 2, (2, 3), stride=(1, 2), bias=False))
    data = torch_onnx(torch, model, torch.randn(2, 3, 4, 5), opset)
    graph, state = import_onnx(data)
    kinds = [n.type for n in graph.nodes.values()]
    assert [k for k in kinds if k in ("ConvTranspose2D", "Upsample2D")] == \
        ["ConvTranspose2D", "Upsample2D", "ConvTranspose2D"]
    upn = next(n for n in graph.nodes.values() if n.type == "Upsample2D")
    assert upn.params["mode"] == up["mode"]
    net = engine.compile(graph)
    net.load_state_dict(state)
    xs = np.random.default_rng(1).standard_normal((3, 3, 4, 5)).astype(np.float32)
    sess = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    with torch.no_grad():
        theirs = model(torch.from_numpy(xs)).numpy()
    ours = net.forward(xs)
    assert rel(ours, theirs) < 1e-4
    assert rel(ours, sess.run(None, {"x": xs})[0]) < 1e-4


def test_resizes_netbuilder_cannot_express_are_refused_naming_the_node():
    pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    from engine.export import import_onnx
    from engine.export.onnx_import import OnnxImportError

    def model(scales, **attrs):
        node = helper.make_node("Resize", ["x", "", "s"], ["y"], name="rs", **attrs)
        g = helper.make_graph(
            [node], "r", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1, 4, 4])],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 1, "H", "W"])],
            initializer=[numpy_helper.from_array(np.array(scales, np.float32), "s")])
        return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])

    with pytest.raises(OnnxImportError, match=r"'rs' scales by \[1.0, 1.0, 1.5, 1.5\]"):
        import_onnx(model([1, 1, 1.5, 1.5], mode="nearest"))
    with pytest.raises(OnnxImportError, match=r"'rs' uses mode cubic"):
        import_onnx(model([1, 1, 2, 2], mode="cubic"))
    with pytest.raises(OnnxImportError, match=r"'rs' interpolates with asymmetric"):
        import_onnx(model([1, 1, 2, 2], mode="linear",
                          coordinate_transformation_mode="asymmetric"))
    with pytest.raises(OnnxImportError, match=r"'rs' picks the nearest pixel by half_pixel"):
        import_onnx(model([1, 1, 3, 3], mode="nearest"))
