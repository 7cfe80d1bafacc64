"""GELU (exact, erf): PyTorch's nn.GELU() semantics, its ONNX form read back from
``torch.onnx.export``'s graph and from opset 20's Gelu, and the tanh approximation refused
(the contract harness checks gradients, kernels with and without the JIT, file, exports)."""

import io
import math

import numpy as np
import pytest

import engine
from engine.kernels import activation as ak
from engine.kernels.reference import activation as ra
from engine.layers.gelu import GELU


def test_is_x_times_the_normal_cdf(rng):
    x = rng.standard_normal((4, 9)) * 3
    y = GELU("g", {}, [(9,)]).forward([x], {}, True)
    cdf = np.vectorize(lambda v: 0.5 * (1 + math.erf(v / math.sqrt(2))))(x)
    np.testing.assert_allclose(y, x * cdf, rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(GELU("g", {}, [(3,)]).forward([np.array([[0.0, 8.0, -8.0]])],
                                                               {}, True), [[0.0, 8.0, 0.0]],
                               atol=1e-13)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_kernels_match_the_reference(rng, dtype):
    x = (rng.standard_normal(57) * 3).astype(dtype)
    dy = rng.standard_normal(57).astype(dtype)
    y, dx = np.empty_like(x), np.empty_like(x)
    ak.gelu_forward(x, y)
    ak.gelu_backward(x, dy, dx)
    tol = {"rtol": 2e-6, "atol": 2e-6} if dtype == np.float32 else {"rtol": 1e-12, "atol": 1e-13}
    np.testing.assert_allclose(y, ra.gelu_forward(x.astype(np.float64)), **tol)
    np.testing.assert_allclose(dx, ra.gelu_backward(x.astype(np.float64),
                                                    dy.astype(np.float64)), **tol)


def test_matches_torch_forward_and_input_gradient(rng):
    torch = pytest.importorskip("torch")
    x = rng.standard_normal((3, 5, 7)) * 2
    dy = rng.standard_normal((3, 5, 7))
    layer = GELU("g", {}, [(5, 7)])
    y = layer.forward([x.astype(np.float32)], {}, True)
    (dx,) = layer.backward(dy.astype(np.float32), {}, {})
    tx = torch.from_numpy(x.astype(np.float32)).requires_grad_(True)
    ty = torch.nn.GELU()(tx)
    ty.backward(torch.from_numpy(dy.astype(np.float32)))
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=2e-4, atol=1e-6)
    np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=2e-4, atol=1e-6)


def _torch_onnx(module, x, opset):
    torch = pytest.importorskip("torch")
    pytest.importorskip("onnxruntime")
    buf = io.BytesIO()
    try:
        torch.onnx.export(module.eval(), (x,), buf, input_names=["x"], output_names=["y"],
                          opset_version=opset, dynamo=False,
                          dynamic_axes={"x": {0: "N"}, "y": {0: "N"}})
    except Exception as exc:  # the exporter needs optional packages on some installs
        pytest.skip(f"torch.onnx.export unavailable: {type(exc).__name__}")
    return buf.getvalue()


@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")
@pytest.mark.parametrize("opset", [17, 20])
def test_torchs_onnx_gelu_imports_as_one_gelu_node(rng, opset):
    torch = pytest.importorskip("torch")
    from engine.export import import_onnx

    model = torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.GELU(), torch.nn.Linear(8, 3))
    data = _torch_onnx(model, torch.zeros(2, 6), opset)
    graph, state = import_onnx(data)
    assert sorted(n.type for n in graph.nodes.values()) == ["Dense", "Dense", "GELU", "Input",
                                                            "Output"]
    net = engine.compile(graph)
    net.load_state_dict(state)
    x = rng.standard_normal((4, 6)).astype(np.float32)
    with torch.no_grad():
        want = model(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(net.predict(x), want, rtol=1e-4, atol=1e-5)


@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")
def test_the_tanh_approximation_is_refused_by_name():
    torch = pytest.importorskip("torch")
    from engine.export import import_onnx

    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.GELU(approximate="tanh"))
    data = _torch_onnx(model, torch.zeros(2, 4), 20)
    with pytest.raises(engine.NetBuilderError, match="tanh approximation"):
        import_onnx(data)


def test_trains_in_a_network_and_passes_gradcheck(rng):
    from graphdocs import chain_doc

    g = engine.Graph.from_dict(chain_doc((4, 6), [("Dense", {"units": 5}), ("GELU", {}),
                                                  ("Flatten", {}), ("Dense", {"units": 3})]))
    assert engine.gradcheck(g, batch=3).worst < 1e-6
    net = engine.compile(g, seed=2)
    x = rng.standard_normal((16, 4, 6)).astype(np.float32)
    y = rng.integers(0, 3, 16)
    opt = engine.Adam(lr=0.01)
    first = net.train_step(x, y, opt)
    for _ in range(30):
        last = net.train_step(x, y, opt)
    assert last < 0.7 * first
