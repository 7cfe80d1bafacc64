"""PyTorch modules written the way torchvision / timm code writes them, for the import tests
(``test_import_torch_attention.py``, ``test_import_torch_blocks.py``), and the check they
share: export (TorchScript or dynamo, fixed or dynamic batch), import, compare the forward
and the input gradient with PyTorch in float32, and train the imported graph a few steps."""
import numpy as np
import pytest
from exportcases import rel_err
from test_import_torch import export

import engine
from engine.export import import_onnx

torch = pytest.importorskip("torch")
nn = torch.nn
F = torch.nn.functional
TOL = 1e-4  # relative to the largest value, float32 against float32

EXPORT_MODES = [(False, True), (True, False), (True, True)]
EXPORT_IDS = ["torchscript", "dynamo-fixed-batch", "dynamo-dynamic-batch"]


def randomize(model, seed=0):
    """Every parameter and BatchNorm statistic drawn at random (PyTorch starts attention
    biases and BN statistics at 0 / 1, where a wrongly read bias would not show)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.add_(torch.randn(p.shape, generator=g) * (0.05 if "weight" in name else 0.2))
        for m in model.modules():
            if isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d):
                m.running_mean.normal_(0, 0.1, generator=g)
                m.running_var.uniform_(0.5, 1.5, generator=g)
    return model.eval()


def import_and_check(model, x, dynamo, dynamic, grad=True, steps=3):
    """Export ``model`` traced on ``x``, import it; forward (another batch size when the
    batch is dynamic) and, with ``grad``, the input gradient match PyTorch within ``TOL``;
    the imported graph then trains ``steps`` SGD steps on an MSE target, every parameter
    moves and the loss falls. Returns the graph."""
    data = export(model, x, dynamic=dynamic, dynamo=dynamo)
    graph, state = import_onnx(data)
    for node in graph.nodes.values():
        if node.type == "Output":
            node.params["loss"] = "mse"
    net = engine.compile(graph)
    net.load_state_dict(state)
    xs = x.numpy()
    if dynamic:
        shape = (3, *xs.shape[1:])
        xs = (np.random.default_rng(1).integers(0, int(x.max()) + 1, shape)
              if not x.is_floating_point() else
              np.random.default_rng(1).normal(0, 1, shape)).astype(xs.dtype)
    xt = torch.from_numpy(xs)
    if grad:
        xt.requires_grad_(True)
    theirs = model(xt)
    ours = net.forward(xs.astype(np.float32))
    assert rel_err(ours, theirs.detach().numpy()) < TOL
    if grad:
        dout = np.random.default_rng(2).normal(0, 1, ours.shape).astype(np.float32)
        (theirs * torch.from_numpy(dout)).sum().backward()
        dx = net.backward(dout)
        assert rel_err(dx, xt.grad.numpy()) < TOL
    target = np.random.default_rng(3).normal(0, 1, ours.shape).astype(np.float32)
    before = {k: v.copy() for k, v in net.params.items()}
    opt = engine.SGD(lr=0.01)
    losses = [net.train_step(xs.astype(np.float32), target, opt) for _ in range(steps)]
    assert all(np.isfinite(losses)) and losses[-1] < losses[0], losses
    assert all(not np.array_equal(before[k], net.params[k]) for k in before)
    return graph


def node_params(graph, type_name):
    return [n.params for n in graph.nodes.values() if n.type == type_name]
