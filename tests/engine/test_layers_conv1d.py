"""Conv1D, MaxPool1D, AvgPool1D, GlobalAvgPool1D and Permute: PyTorch parity (forward, input
gradient and every parameter gradient within 2e-4 relative), their padding rules, errors,
torch.onnx's 1-D graphs imported, and a small sequence network that trains (the contract
harness checks FD gradients, kernels vs reference with and without the JIT, file, ONNX,
PyTorch export, ONNX import, warm-up)."""

import io

import numpy as np
import pytest
from graphdocs import chain_doc

import engine
from engine.registry import get_layer_class

TOL = 2e-4


def rel(a, b):
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-12))


def run(type_name, params, shape, x, dy, state=None):
    layer = get_layer_class(type_name)("n", params, [shape])
    state = state or {}
    y = layer.forward([x], state, True)
    grads = {k: np.zeros_like(v) for k, v in state.items()}
    (dx,) = layer.backward(dy, state, grads)
    return layer, y, dx, grads


@pytest.mark.parametrize("params", [
    {"filters": 4, "kernel_size": 3},
    {"filters": 3, "kernel_size": 5, "stride": 2, "padding": 2},
    {"filters": 2, "kernel_size": 4, "stride": 2, "padding": "same", "bias": False},
], ids=["valid", "stride2-pad2", "same-nobias"])
def test_conv1d_matches_torch(rng, params):
    torch = pytest.importorskip("torch")
    c, t = 3, 11
    layer = get_layer_class("Conv1D")("n", params, [(c, t)])
    state = {k: (v + 0.1 * rng.standard_normal(v.shape)).astype(np.float32)
             for k, v in layer.init_params(rng).items()}
    x = rng.standard_normal((4, c, t)).astype(np.float32)
    dy = rng.standard_normal((4, *layer.out_shape)).astype(np.float32)
    _, y, dx, grads = run("Conv1D", params, (c, t), x, dy, state)
    lo, hi = layer.pads
    conv = torch.nn.Conv1d(c, params["filters"], params["kernel_size"],
                           stride=params.get("stride", 1), bias=params.get("bias", True))
    with torch.no_grad():
        conv.weight.copy_(torch.from_numpy(state["weight"]))
        if "bias" in state:
            conv.bias.copy_(torch.from_numpy(state["bias"]))
    tx = torch.from_numpy(x).requires_grad_(True)
    ty = conv(torch.nn.functional.pad(tx, (lo, hi)))
    ty.backward(torch.from_numpy(dy))
    assert rel(y, ty.detach().numpy()) < TOL
    assert rel(dx, tx.grad.numpy()) < TOL
    assert rel(grads["weight"], conv.weight.grad.numpy()) < TOL
    if "bias" in state:
        assert rel(grads["bias"], conv.bias.grad.numpy()) < TOL
    if params.get("padding") == "same":
        assert layer.out_shape == (2, 6) and (lo, hi) == (1, 2)  # ceil(11 / 2); odd one last


@pytest.mark.parametrize(("type_name", "params", "torch_fn"), [
    ("MaxPool1D", {"pool_size": 3, "stride": 2, "padding": 1},
     lambda F, x: F.max_pool1d(x, 3, 2, padding=1)),
    ("MaxPool1D", {}, lambda F, x: F.max_pool1d(x, 2)),
    ("AvgPool1D", {"pool_size": 3, "stride": 2, "padding": 1},
     lambda F, x: F.avg_pool1d(x, 3, 2, padding=1)),
    ("AvgPool1D", {"pool_size": 4, "stride": 1}, lambda F, x: F.avg_pool1d(x, 4, 1)),
    ("GlobalAvgPool1D", {}, lambda F, x: x.mean(dim=2)),
    ("Permute", {}, lambda F, x: x.transpose(1, 2)),
], ids=["max-pad1", "max", "avg-pad1", "avg-stride1", "gap", "permute"])
def test_pools_and_permute_match_torch(rng, type_name, params, torch_fn):
    torch = pytest.importorskip("torch")
    x = rng.standard_normal((3, 4, 10)).astype(np.float32)
    layer = get_layer_class(type_name)("n", params, [(4, 10)])
    dy = rng.standard_normal((3, *layer.out_shape)).astype(np.float32)
    _, y, dx, _ = run(type_name, params, (4, 10), x, dy)
    tx = torch.from_numpy(x).requires_grad_(True)
    ty = torch_fn(torch.nn.functional, tx)
    ty.backward(torch.from_numpy(dy))
    assert y.shape == tuple(ty.shape)
    assert rel(y, ty.detach().numpy()) < TOL
    assert rel(dx, tx.grad.numpy()) < TOL


def test_same_average_counts_only_the_real_steps(rng):
    x = rng.standard_normal((2, 3, 7))
    layer = get_layer_class("AvgPool1D")("n", {"pool_size": 3, "stride": 2,
                                               "padding": "same"}, [(3, 7)])
    y = layer.forward([x], {}, False)
    assert layer.out_shape == (3, 4) and layer.pads == (1, 1)
    np.testing.assert_allclose(y[..., 0], x[..., 0:2].mean(-1))
    np.testing.assert_allclose(y[..., 3], x[..., 5:7].mean(-1))
    np.testing.assert_allclose(y[..., 1], x[..., 1:4].mean(-1))


def test_errors_say_how_to_fix_the_model():
    with pytest.raises(engine.ShapeError, match=r"sequence \(C, T\).*Reshape to \(1, T\)"):
        get_layer_class("Conv1D")("c1", {}, [(12,)])
    with pytest.raises(engine.ShapeError, match="longer than the 4-step input") as info:
        get_layer_class("Conv1D")("c1", {"kernel_size": 5}, [(2, 4)])
    assert info.value.node_id == "c1"
    with pytest.raises(engine.ShapeError, match="more than half the pool size"):
        get_layer_class("MaxPool1D")("p", {"pool_size": 2, "padding": 2}, [(2, 8)])
    with pytest.raises(engine.ShapeError, match="two axes"):
        get_layer_class("Permute")("p", {}, [(2, 3, 4)])


@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")
def test_torchs_1d_graph_imports_with_permute_pools_and_mean(rng):
    torch = pytest.importorskip("torch")
    pytest.importorskip("onnxruntime")
    from engine.export import import_onnx
    nn = torch.nn

    class Model(nn.Module):  # (T, F) in, as a recurrent layer would take it
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv1d(5, 8, 3, padding=1)
            self.conv2 = nn.Conv1d(8, 8, 3, stride=2)
            self.head = nn.Linear(8, 3)

        def forward(self, x):
            h = torch.relu(self.conv(x.transpose(1, 2)))
            h = nn.functional.max_pool1d(h, 2)
            h = nn.functional.avg_pool1d(self.conv2(h), 2, 1)
            return self.head(h.mean(dim=2))

    model = Model().eval()
    buf = io.BytesIO()
    try:
        torch.onnx.export(model, (torch.zeros(2, 16, 5),), buf, input_names=["x"],
                          output_names=["y"], opset_version=17, dynamo=False,
                          dynamic_axes={"x": {0: "N"}, "y": {0: "N"}})
    except Exception as exc:  # the exporter needs optional packages on some installs
        pytest.skip(f"torch.onnx.export unavailable: {type(exc).__name__}")
    graph, state = import_onnx(buf.getvalue())
    types = [n.type for n in graph.nodes.values()]
    for t in ("Permute", "Conv1D", "MaxPool1D", "AvgPool1D", "GlobalAvgPool1D"):
        assert t in types, types
    net = engine.compile(graph)
    net.load_state_dict(state)
    x = rng.standard_normal((3, 16, 5)).astype(np.float32)
    with torch.no_grad():
        want = model(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(net.predict(x), want, rtol=1e-4, atol=1e-5)


def test_a_sequence_cnn_trains_and_passes_gradcheck(rng):
    g = engine.Graph.from_dict(chain_doc(
        (12, 3), [("Permute", {}), ("Conv1D", {"filters": 4, "kernel_size": 3,
                                              "padding": "same"}),
                  ("ReLU", {}), ("MaxPool1D", {}), ("Conv1D", {"filters": 4, "kernel_size": 2}),
                  ("AvgPool1D", {"pool_size": 2, "stride": 1}), ("GlobalAvgPool1D", {}),
                  ("Dense", {"units": 2})]))
    assert engine.gradcheck(g, batch=2).worst < 1e-6
    net = engine.compile(g, seed=1)
    x = rng.standard_normal((32, 12, 3)).astype(np.float32)
    y = (x[:, :, 0].mean(axis=1) > 0).astype(np.int64)
    opt = engine.Adam(lr=0.02)
    first = net.train_step(x, y, opt)
    for _ in range(40):
        last = net.train_step(x, y, opt)
    assert last < 0.7 * first
