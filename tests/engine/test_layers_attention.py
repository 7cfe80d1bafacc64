"""MultiHeadAttention: PyTorch parity (nn.MultiheadAttention(batch_first=True), forward,
input gradient and every parameter gradient, with and without the causal mask), the
semantics of heads, the causal mask and dropout, errors, and a network that trains (the
contract harness checks the rest: FD gradients, kernels against the reference with and
without the JIT, file, ONNX, PyTorch export, ONNX import, warm-up)."""

import numpy as np
import pytest
from graphdocs import chain_doc

import engine
from engine.layers.attention import MultiHeadAttention, attention_reference

PARITY_TOL = 2e-4


def rel(a, b):
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


def torch_mha(params, e, heads, dtype):
    torch = pytest.importorskip("torch")
    m = torch.nn.MultiheadAttention(e, heads, batch_first=True).to(dtype)
    with torch.no_grad():
        m.in_proj_weight.copy_(torch.from_numpy(params["in_proj_weight"]))
        m.in_proj_bias.copy_(torch.from_numpy(params["in_proj_bias"]))
        m.out_proj.weight.copy_(torch.from_numpy(params["out_proj_weight"]))
        m.out_proj.bias.copy_(torch.from_numpy(params["out_proj_bias"]))
    return m


def run_torch(m, x, dy, causal):
    torch = pytest.importorskip("torch")
    tx = torch.from_numpy(x).requires_grad_(True)
    t = x.shape[1]
    mask = torch.triu(torch.ones(t, t, dtype=torch.bool), 1) if causal else None
    ty, _ = m(tx, tx, tx, need_weights=False, attn_mask=mask, is_causal=causal)
    ty.backward(torch.from_numpy(dy))
    grads = {"in_proj_weight": m.in_proj_weight.grad, "in_proj_bias": m.in_proj_bias.grad,
             "out_proj_weight": m.out_proj.weight.grad, "out_proj_bias": m.out_proj.bias.grad}
    return ty.detach().numpy(), tx.grad.numpy(), {k: v.numpy() for k, v in grads.items()}


@pytest.mark.parametrize("causal", [False, True], ids=["full", "causal"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_matches_torch_forward_input_gradient_and_every_parameter_gradient(rng, causal, dtype):
    torch = pytest.importorskip("torch")
    n, t, e, heads = 3, 7, 12, 3
    layer = MultiHeadAttention("attn", {"heads": heads, "causal": causal}, [(t, e)])
    params = {k: (v + 0.1 * rng.standard_normal(v.shape)).astype(dtype)
              for k, v in layer.init_params(rng).items()}
    x = rng.standard_normal((n, t, e)).astype(dtype)
    dy = rng.standard_normal((n, t, e)).astype(dtype)
    y = layer.forward([x], params, True)
    grads = {k: np.zeros_like(v) for k, v in params.items()}
    (dx,) = layer.backward(dy, params, grads)
    m = torch_mha(params, e, heads, torch.float64 if dtype == np.float64 else torch.float32)
    ty, tdx, tgrads = run_torch(m, x, dy, causal)
    assert y.dtype == dtype and dx.dtype == dtype
    tol = PARITY_TOL if dtype == np.float32 else 1e-10
    assert rel(y, ty) < tol
    assert rel(dx, tdx) < tol
    for k in params:
        assert rel(grads[k], tgrads[k]) < tol, k
    assert {k.replace(".", "_") for k, _ in m.named_parameters()} == set(params)


def test_causal_step_sees_only_itself_and_earlier_steps(rng):
    t, e = 6, 8
    layer = MultiHeadAttention("a", {"heads": 2, "causal": True}, [(t, e)])
    params = layer.init_params(rng)
    x = rng.standard_normal((2, t, e))
    y = layer.forward([x], params, False)
    w = layer.attention_weights
    assert w.shape == (2, 2, t, t)
    np.testing.assert_allclose(w.sum(axis=-1), 1, rtol=1e-12)
    assert np.all(w[..., np.triu_indices(t, 1)[0], np.triu_indices(t, 1)[1]] == 0)
    x2 = x.copy()
    x2[:, 4:] += 10 * rng.standard_normal((2, 2, e))  # change the future
    y2 = layer.forward([x2], params, False)
    np.testing.assert_allclose(y2[:, :4], y[:, :4], rtol=1e-12, atol=1e-12)
    assert not np.allclose(y2[:, 4:], y[:, 4:])


def test_one_head_is_the_textbook_formula(rng):
    t, e = 5, 4
    layer = MultiHeadAttention("a", {"heads": 1}, [(t, e)])
    p = {k: rng.standard_normal(v.shape) for k, v in layer.init_params(rng).items()}
    x = rng.standard_normal((1, t, e))[0]
    q, k, v = np.split(x @ p["in_proj_weight"].T + p["in_proj_bias"], 3, axis=-1)
    s = q @ k.T / np.sqrt(e)
    a = np.exp(s - s.max(axis=1, keepdims=True))
    a /= a.sum(axis=1, keepdims=True)
    want = a @ v @ p["out_proj_weight"].T + p["out_proj_bias"]
    np.testing.assert_allclose(layer.forward([x[None]], p, False)[0], want, rtol=1e-10)


def test_dropout_drops_attention_weights_in_training_only(rng):
    t, e = 8, 4
    layer = MultiHeadAttention("a", {"heads": 2, "dropout": 0.5}, [(t, e)])
    params = {k: v.astype(np.float64) for k, v in layer.init_params(rng).items()}
    x = rng.standard_normal((4, t, e))
    layer.rng = np.random.default_rng(7)
    y = layer.forward([x], params, True)
    u = np.random.default_rng(7).random((4, 2, t, t), dtype=np.float32)
    want, _ = attention_reference(x, params, 2, False, 0.5, u)
    np.testing.assert_allclose(y, want, rtol=1e-10, atol=1e-12)
    plain = layer.forward([x], params, False)
    np.testing.assert_allclose(plain, attention_reference(x, params, 2, False, 0.5, None)[0],
                               rtol=1e-10, atol=1e-12)
    assert not np.allclose(y, plain)


def test_params_layout_and_summary():
    layer = MultiHeadAttention("a", {"heads": 4, "causal": True}, [(10, 16)])
    assert layer.param_shapes() == {"in_proj_weight": (48, 16), "in_proj_bias": (48,),
                                    "out_proj_weight": (16, 16), "out_proj_bias": (16,)}
    p = layer.init_params(np.random.default_rng(0))
    assert all(v.dtype == np.float32 for v in p.values())
    assert not p["in_proj_bias"].any() and not p["out_proj_bias"].any()
    assert layer.summary() == "4 heads × 4, causal"
    assert layer.macs() == 4 * 10 * 16 * 16 + 2 * 10 * 10 * 16


def test_errors_name_the_node_and_the_fix():
    with pytest.raises(engine.ShapeError, match="divides 10") as info:
        MultiHeadAttention("att1", {"heads": 4}, [(5, 10)])
    assert info.value.node_id == "att1"
    with pytest.raises(engine.ShapeError, match=r"sequence \(T, E\)"):
        MultiHeadAttention("att1", {}, [(16,)])
    with pytest.raises(engine.ParamError, match="dropout must be below 1"):
        MultiHeadAttention("att1", {"dropout": 1.0}, [(5, 8)])


def test_an_einsum_outside_the_attention_pattern_is_refused(rng):
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    from engine.export import import_onnx

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4, 3])
    g = helper.make_graph([helper.make_node("Einsum", ["x"], ["y"], equation="ntd->ndt")],
                          "g", [x], [y])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    with pytest.raises(engine.NetBuilderError, match="Einsum only as part of the multi-head"):
        import_onnx(model)
    assert onnx.checker.check_model(model) is None


def test_trains_in_a_network_and_passes_gradcheck(rng):
    g = engine.Graph.from_dict(chain_doc(
        (5, 8), [("MultiHeadAttention", {"heads": 2, "causal": True}), ("Flatten", {}),
                 ("Dense", {"units": 3})]))
    assert engine.gradcheck(g, batch=3).worst < 1e-6
    net = engine.compile(g, seed=2)
    x = rng.standard_normal((16, 5, 8)).astype(np.float32)
    y = rng.integers(0, 3, 16)
    opt = engine.Adam(lr=0.01)
    first = net.train_step(x, y, opt)
    for _ in range(30):
        last = net.train_step(x, y, opt)
    assert last < 0.7 * first
    assert {"n0.in_proj_weight", "n0.out_proj_bias"} <= set(net.params)
