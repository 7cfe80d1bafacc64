"""GroupNorm: PyTorch's nn.GroupNorm semantics and its ONNX forms (the contract harness checks
the rest: gradients, kernels against the reference with and without the JIT, file, ONNX,
PyTorch)."""

import numpy as np
import pytest
from graphdocs import chain_doc

import engine
from engine.layers.groupnorm import GroupNorm


def formula(x, groups, weight, bias, eps):
    g = x.reshape(x.shape[0], groups, -1)
    xhat = ((g - g.mean(-1, keepdims=True)) / np.sqrt(g.var(-1, keepdims=True) + eps))
    shape = (1, -1, *([1] * (x.ndim - 2)))
    return xhat.reshape(x.shape) * weight.reshape(shape) + bias.reshape(shape)


@pytest.mark.parametrize(("shape", "groups"), [((6, 3, 4), 3), ((4, 5, 5), 1), ((4, 2, 3), 4),
                                               ((8,), 2), ((4, 2, 2, 3), 2)])
def test_normalises_each_group_of_channels_per_sample(rng, shape, groups):
    layer = GroupNorm("gn", {"groups": groups, "eps": 1e-3}, [shape])
    c = shape[0]
    params = {"weight": rng.uniform(0.5, 2, c), "bias": rng.standard_normal(c)}
    x = rng.standard_normal((3, *shape)) * 3 - 1
    for train in (True, False):
        np.testing.assert_allclose(layer.forward([x], params, train),
                                   formula(x, groups, params["weight"], params["bias"], 1e-3),
                                   rtol=1e-12, atol=1e-12)
    one = layer.forward([x[:1]], params, True)  # per sample: the batch does not matter
    np.testing.assert_allclose(one, layer.forward([x], params, True)[:1], rtol=1e-12)


def test_matches_torch_forward_and_gradients(rng):
    torch = pytest.importorskip("torch")
    shape, groups, eps = (6, 4, 3), 3, 1e-4
    layer = GroupNorm("gn", {"groups": groups, "eps": eps}, [shape])
    params = {"weight": rng.uniform(0.5, 2, 6), "bias": rng.standard_normal(6)}
    x = rng.standard_normal((5, *shape))
    dy = rng.standard_normal((5, *shape))
    y = layer.forward([x], params, True)
    grads = {k: np.zeros(6) for k in params}
    (dx,) = layer.backward(dy, params, grads)
    ref = torch.nn.GroupNorm(groups, 6, eps=eps).double()
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


def test_params_start_at_one_and_zero_per_channel():
    layer = GroupNorm("gn", {"groups": 4}, [(8, 5, 5)])
    assert layer.param_shapes() == {"weight": (8,), "bias": (8,)} and layer.buffer_shapes() == {}
    p = layer.init_params(np.random.default_rng(0))
    np.testing.assert_array_equal(p["weight"], 1)
    np.testing.assert_array_equal(p["bias"], 0)
    assert layer.summary() == "4 groups of 2" and layer.macs() == 200


@pytest.mark.parametrize(("shape", "groups", "match"), [
    ((6, 4, 4), 4, "does not divide evenly: use groups 1, 2, 3, 6"),
    ((5, 8), 1, "use a LayerNorm for"),
    ((3,), 3, "one value per group"),
])
def test_shapes_that_do_not_fit_are_refused_with_a_fix(shape, groups, match):
    with pytest.raises(engine.ShapeError, match=match) as info:
        GroupNorm("gn1", {"groups": groups}, [shape])
    assert info.value.node_id == "gn1"


def test_a_lone_instance_normalization_imports_as_one_group_per_channel():
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    from onnx import TensorProto, helper, numpy_helper

    from engine.export import import_onnx
    rng = np.random.default_rng(0)
    scale, bias = rng.uniform(0.5, 2, 3).astype(np.float32), rng.normal(size=3).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("InstanceNormalization", ["x", "s", "b"], ["y"], epsilon=1e-3)],
        "inorm", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 4, 5])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3, 4, 5])],
        initializer=[numpy_helper.from_array(scale, "s"), numpy_helper.from_array(bias, "b")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    g, state = import_onnx(model)
    gn = next(n for n in g.nodes.values() if n.type == "GroupNorm")
    assert gn.params["groups"] == 3
    net = engine.compile(g)
    net.load_state_dict(state, strict=False)
    x = rng.normal(size=(2, 3, 4, 5)).astype(np.float32)
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(net.forward(x), sess.run(None, {"x": x})[0], rtol=1e-4,
                               atol=1e-5)
    assert onnx  # the package is there


def test_trains_after_a_conv_and_passes_gradcheck(rng):
    g = engine.Graph.from_dict(chain_doc(
        (2, 5, 5), [("Conv2D", {"filters": 4, "kernel_size": 3, "padding": 1}),
                    ("GroupNorm", {"groups": 2}), ("ReLU", {}), ("Flatten", {}),
                    ("Dense", {"units": 3})]))
    assert engine.gradcheck(g, batch=2).worst < 1e-6
    net = engine.compile(g, seed=1)
    x = rng.standard_normal((16, 2, 5, 5)).astype(np.float32)
    y = rng.integers(0, 3, 16)
    opt = engine.Adam(lr=0.01)
    first = net.train_step(x, y, opt)
    for _ in range(30):
        last = net.train_step(x, y, opt)
    assert last < 0.7 * first
