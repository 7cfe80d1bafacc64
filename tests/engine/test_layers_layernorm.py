"""LayerNorm: PyTorch's nn.LayerNorm semantics (the contract harness checks the rest:
gradients, kernels against the reference with and without the JIT, file, ONNX, PyTorch)."""

import numpy as np
import pytest
from graphdocs import chain_doc

import engine
from engine.layers.layernorm import LayerNorm


def formula(x, weight, bias, eps):
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * weight + bias


@pytest.mark.parametrize("shape", [(7,), (4, 5), (2, 3, 6)])
def test_normalises_the_last_axis_with_the_biased_variance(rng, shape):
    layer = LayerNorm("ln", {"eps": 1e-3}, [shape])
    params = {"weight": rng.uniform(0.5, 2, shape[-1]), "bias": rng.standard_normal(shape[-1])}
    x = rng.standard_normal((3, *shape)) * 4 + 2
    for train in (True, False):  # no running statistics: the same both ways
        y = layer.forward([x], params, train)
        np.testing.assert_allclose(y, formula(x, params["weight"], params["bias"], 1e-3),
                                   rtol=1e-12, atol=1e-12)
    plain = layer.forward([x], {"weight": np.ones(shape[-1]), "bias": np.zeros(shape[-1])}, True)
    np.testing.assert_allclose(plain.mean(axis=-1), 0, atol=1e-12)
    np.testing.assert_allclose(plain.var(axis=-1), 1, rtol=1e-3)


def test_params_are_pytorchs_weight_and_bias_starting_at_one_and_zero():
    layer = LayerNorm("ln", {}, [(3, 8)])
    assert layer.param_shapes() == {"weight": (8,), "bias": (8,)}
    assert layer.buffer_shapes() == {}
    p = layer.init_params(np.random.default_rng(0))
    np.testing.assert_array_equal(p["weight"], 1)
    np.testing.assert_array_equal(p["bias"], 0)
    assert all(a.dtype == np.float32 for a in p.values())
    assert layer.summary() == "8 features" and layer.macs() == 24
    assert LayerNorm("ln", {"eps": 0.01}, [(4,)]).summary() == "4 features, eps 0.01"


def test_matches_torch_forward_and_gradients(rng):
    torch = pytest.importorskip("torch")
    shape, eps = (5, 6), 1e-4
    layer = LayerNorm("ln", {"eps": eps}, [shape])
    params = {"weight": rng.uniform(0.5, 2, 6), "bias": rng.standard_normal(6)}
    x = rng.standard_normal((4, *shape))
    dy = rng.standard_normal((4, *shape))
    y = layer.forward([x], params, True)
    grads = {k: np.zeros(6) for k in params}
    (dx,) = layer.backward(dy, params, grads)
    ref = torch.nn.LayerNorm(6, eps=eps).double()
    with torch.no_grad():
        ref.weight.copy_(torch.from_numpy(params["weight"]))
        ref.bias.copy_(torch.from_numpy(params["bias"]))
    tx = torch.from_numpy(x).requires_grad_(True)
    ty = ref(tx)
    ty.backward(torch.from_numpy(dy))
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(grads["weight"], ref.weight.grad.numpy(), rtol=1e-9)
    np.testing.assert_allclose(grads["bias"], ref.bias.grad.numpy(), rtol=1e-9)
    assert dict(ref.named_parameters()).keys() == layer.param_shapes().keys()


def test_a_last_axis_of_one_value_is_refused_naming_the_node():
    with pytest.raises(engine.ShapeError, match="last axis") as info:
        LayerNorm("ln1", {}, [(4, 1)])
    assert info.value.node_id == "ln1"
    with pytest.raises(engine.ParamError, match="eps"):
        LayerNorm("ln1", {"eps": 0}, [(4,)])


def test_trains_in_a_network_and_passes_gradcheck(rng):
    g = engine.Graph.from_dict(chain_doc(
        (4, 6), [("Dense", {"units": 5}), ("LayerNorm", {}), ("Tanh", {}), ("Flatten", {}),
                 ("Dense", {"units": 3})]))
    assert engine.gradcheck(g, batch=3).worst < 1e-6
    net = engine.compile(g, seed=2)
    x = rng.standard_normal((16, 4, 6)).astype(np.float32)
    y = rng.integers(0, 3, 16)
    opt = engine.Adam(lr=0.01)
    first = net.train_step(x, y, opt)
    for _ in range(30):
        last = net.train_step(x, y, opt)
    assert last < 0.7 * first
    assert "n1.weight" in net.params and "n1.bias" in net.params
