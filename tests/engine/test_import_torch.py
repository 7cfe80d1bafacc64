"""Models exported by ``torch.onnx.export`` inside the test import, and the imported network
matches onnxruntime and the PyTorch module within 1e-4 relative: CNNs with
``x.view(x.size(0), -1)``, a ResNet-18-shaped network, SqueezeNet-shaped (ceil_mode), and
LSTM / GRU / RNN classifiers in every shape PyTorch users write (h_n[-1], out[:, -1], every
step, bidirectional, 2 layers, time-major, fixed and dynamic batch)."""
import io
import itertools

import numpy as np
import pytest
from exportcases import rel_err

import engine

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from engine.export import import_onnx  # noqa: E402
from engine.export.onnx_import import OnnxImportError  # noqa: E402

nn = torch.nn
F = torch.nn.functional
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning",
                                        "ignore::FutureWarning", "ignore::torch.jit.TracerWarning")


def export(model, x, dynamic=True, opset=17, batch_axis=0, fold=True, dynamo=False):
    """ONNX bytes of ``model`` traced on ``x`` (the input's ``batch_axis`` dynamic if asked)."""
    buf = io.BytesIO()
    kw = {}
    if dynamic and not dynamo:
        kw["dynamic_axes"] = {"x": {batch_axis: "N"}, "y": {0: "N"}}
    elif dynamic:
        kw["dynamic_shapes"] = ({batch_axis: torch.export.Dim("N", min=2)},)
    try:
        torch.onnx.export(model.eval(), (x,), buf, input_names=["x"], output_names=["y"],
                          opset_version=opset, dynamo=dynamo, do_constant_folding=fold, **kw)
    except Exception as exc:  # the exporter needs optional packages on some installs
        pytest.skip(f"torch.onnx.export({'dynamo' if dynamo else 'TorchScript'}) unavailable: "
                    f"{type(exc).__name__}: {str(exc)[:200]}")
    return buf.getvalue()


def check(model, x, dynamic=True, opset=17, batch_axis=0, fold=True, dynamo=False):
    """Export, import, and compare with onnxruntime and PyTorch; return (graph, notes)."""
    data = export(model, x, dynamic, opset, batch_axis, fold, dynamo)
    notes = []
    graph, state = import_onnx(data, notes=notes)
    net = engine.compile(graph)
    net.load_state_dict(state)
    xs = x.numpy()
    if dynamic:  # another batch size than the traced one
        shape = list(xs.shape)
        shape[batch_axis] = 3
        xs = np.random.default_rng(1).normal(0, 1, shape).astype(np.float32)
    sess = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    want = sess.run(None, {"x": xs})[0]
    with torch.no_grad():
        theirs = model(torch.from_numpy(xs)).numpy()
    ours = net.forward(np.swapaxes(xs, 0, 1) if batch_axis == 1 else xs)
    if batch_axis == 1 and want.ndim == 3 and want.shape[1] == xs.shape[1]:
        want, theirs = np.swapaxes(want, 0, 1), np.swapaxes(theirs, 0, 1)  # time-major out
    assert rel_err(ours, want) < 1e-4
    assert rel_err(ours, theirs) < 1e-4
    return graph, notes


def types(graph):
    return [n.type for n in graph.nodes.values()]


# ----- CNNs -------------------------------------------------------------------------------------
class ViewCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1, self.c2 = nn.Conv2d(1, 4, 3), nn.Conv2d(4, 8, 3)
        self.fc = nn.Linear(8 * 2 * 2, 3)

    def forward(self, x):
        y = F.max_pool2d(F.relu(self.c1(x)), 2)
        y = F.max_pool2d(F.relu(self.c2(y)), 2)
        return self.fc(y.view(y.size(0), -1))


@pytest.mark.parametrize("dynamic,opset", [(True, 13), (True, 17), (True, 18), (False, 17)])
def test_cnn_with_view_of_the_batch_size(dynamic, opset):
    torch.manual_seed(0)
    graph, notes = check(ViewCNN(), torch.randn(2, 1, 14, 14), dynamic, opset)
    assert types(graph).count("Conv2D") == 2 and "Dense" in types(graph)
    assert any("keeps the batch" in n for n in notes)


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.c1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.b1 = nn.BatchNorm2d(cout)
        self.c2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.b2 = nn.BatchNorm2d(cout)
        self.down = None
        if stride != 1 or cin != cout:  # the strided 1x1 shortcut
            self.down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False),
                                      nn.BatchNorm2d(cout))

    def forward(self, x):
        skip = x if self.down is None else self.down(x)
        return F.relu(self.b2(self.c2(F.relu(self.b1(self.c1(x))))) + skip)


class ResNet18Shaped(nn.Module):
    """torchvision's ResNet-18 layout (stem, 4 stages of 2 BasicBlocks, global average pool,
    fc), narrower so that the test runs in a moment."""

    def __init__(self, width=8, classes=10):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, width, 7, 2, 3, bias=False),
                                  nn.BatchNorm2d(width), nn.ReLU(), nn.MaxPool2d(3, 2, 1))
        blocks, cin = [], width
        for k, cout in enumerate([width, 2 * width, 4 * width, 8 * width]):
            blocks += [BasicBlock(cin, cout, 1 if k == 0 else 2), BasicBlock(cout, cout, 1)]
            cin = cout
        self.blocks = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, classes)

    def forward(self, x):
        return self.fc(torch.flatten(self.pool(self.blocks(self.stem(x))), 1))


def random_batchnorm(model):
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.normal_(0, 0.1)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.normal_(1, 0.1)
                m.bias.normal_(0, 0.1)
    return model


@pytest.mark.parametrize("fold", [True, False], ids=["bn-folded", "bn-kept"])
def test_resnet18_shaped_network(fold):
    torch.manual_seed(0)
    graph, _ = check(random_batchnorm(ResNet18Shaped()), torch.randn(2, 3, 64, 64), fold=fold)
    t = types(graph)
    assert t.count("Add") == 8 and t.count("Conv2D") == 20 and "GlobalAvgPool2D" in t
    assert t.count("BatchNorm") == (0 if fold else 20)


class Fire(nn.Module):
    def __init__(self, cin, squeeze, expand):
        super().__init__()
        self.s = nn.Conv2d(cin, squeeze, 1)
        self.e1, self.e3 = nn.Conv2d(squeeze, expand, 1), nn.Conv2d(squeeze, expand, 3, padding=1)

    def forward(self, x):
        x = F.relu(self.s(x))
        return torch.cat([F.relu(self.e1(x)), F.relu(self.e3(x))], 1)


class SqueezeNetShaped(nn.Module):
    def __init__(self, classes=5):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 16, 3, 2), nn.ReLU(), nn.MaxPool2d(3, 2, ceil_mode=True),
            Fire(16, 4, 8), Fire(16, 4, 8), nn.MaxPool2d(3, 2, ceil_mode=True), Fire(16, 8, 16))
        self.classifier = nn.Sequential(nn.Dropout(0.5), nn.Conv2d(32, classes, 1), nn.ReLU(),
                                        nn.AdaptiveAvgPool2d(1))

    def forward(self, x):
        return torch.flatten(self.classifier(self.features(x)), 1)


SQUEEZE_INPUT = (2, 3, 49, 49)  # 49 -> 24: (24 - 3) / 2 is not whole, so ceil_mode matters


def test_squeezenet_shaped_network():
    torch.manual_seed(0)
    graph, _ = check(SqueezeNetShaped(), torch.randn(*SQUEEZE_INPUT))
    pools = [n.params for n in graph.nodes.values() if n.type == "MaxPool2D"]
    assert [p.get("ceil_mode", False) for p in pools] == [True, True]
    assert types(graph).count("Concat") == 3


def test_squeezenet_shaped_imports_where_ceil_mode_changes_nothing():
    torch.manual_seed(0)
    graph, _ = check(SqueezeNetShaped(), torch.randn(2, 3, 47, 47))  # the windows fit
    assert types(graph).count("Concat") == 3
    assert not any(n.params.get("ceil_mode") for n in graph.nodes.values())


class MobileShaped(nn.Module):
    """What MobileNetV3-style code writes around its convolutions: the input scaled inside
    the model, BatchNorm, nn.Hardswish, nn.Hardsigmoid, a one-sided clamp."""

    def __init__(self):
        super().__init__()
        self.conv, self.bn = nn.Conv2d(3, 8, 3, 2, 1), nn.BatchNorm2d(8)
        self.act, self.gate = nn.Hardswish(), nn.Hardsigmoid()
        self.fc = nn.Linear(8, 4)

    def forward(self, x):
        x = (x / 255 - 0.5) / 0.25
        y = self.act(self.bn(self.conv(x)))
        y = torch.clamp(F.adaptive_avg_pool2d(y, 1).flatten(1), min=-0.5)
        return self.gate(self.fc(y)) * 2 - 1


@pytest.mark.parametrize("fold", [True, False], ids=["bn-folded", "bn-kept"])
def test_mobilenet_style_activations_and_input_scaling(fold):
    torch.manual_seed(0)
    model = random_batchnorm(MobileShaped())
    graph, _ = check(model, torch.rand(2, 3, 16, 16) * 255, fold=fold)
    t = types(graph)
    assert t.count("HardSwish") == 1 and t.count("HardSigmoid") == 1 and t.count("Scale") == 3
    assert "HardTanh" in t  # the one-sided clamp


class InvertedResidual(nn.Module):
    """MobileNetV2's block: 1×1 expand, 3×3 depthwise (stride 1 or 2), 1×1 linear projection;
    a skip when the shape is kept. BatchNorm after each conv, ReLU6 after the first two."""

    def __init__(self, cin, cout, stride, expand):
        super().__init__()
        mid = cin * expand
        self.skip = stride == 1 and cin == cout
        self.body = nn.Sequential(
            nn.Conv2d(cin, mid, 1, bias=False), nn.BatchNorm2d(mid), nn.ReLU6(),
            nn.Conv2d(mid, mid, 3, stride, 1, groups=mid, bias=False), nn.BatchNorm2d(mid),
            nn.ReLU6(), nn.Conv2d(mid, cout, 1, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        return x + self.body(x) if self.skip else self.body(x)


class MobileNetV2Shaped(nn.Module):
    def __init__(self, classes=5):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1, bias=False), nn.BatchNorm2d(8),
                                  nn.ReLU6())
        self.blocks = nn.Sequential(InvertedResidual(8, 8, 1, 1), InvertedResidual(8, 12, 2, 4),
                                    InvertedResidual(12, 12, 1, 4), InvertedResidual(12, 16, 2, 4))
        self.head = nn.Sequential(nn.Conv2d(16, 32, 1, bias=False), nn.BatchNorm2d(32), nn.ReLU6())
        self.fc = nn.Sequential(nn.Dropout(0.2), nn.Linear(32, classes))

    def forward(self, x):
        return self.fc(F.adaptive_avg_pool2d(self.head(self.blocks(self.stem(x))), 1).flatten(1))


@pytest.mark.parametrize("fold", [True, False], ids=["bn-folded", "bn-kept"])
def test_mobilenetv2_shaped_network(fold):
    """Depthwise convs (groups = channels) as torch.onnx.export writes them, inverted
    residuals with their skips, ReLU6 as Clip(0, 6): onnxruntime and PyTorch agree."""
    torch.manual_seed(0)
    graph, _ = check(random_batchnorm(MobileNetV2Shaped()), torch.randn(2, 3, 32, 32), fold=fold)
    convs = [n.params for n in graph.nodes.values() if n.type == "Conv2D"]
    depthwise = [p for p in convs if p.get("groups", 1) > 1]
    assert len(convs) == 14 and len(depthwise) == 4
    t = types(graph)
    assert t.count("Add") == 2 and t.count("BatchNorm") == (0 if fold else 14)


# ----- recurrent classifiers ---------------------------------------------------------------------
class Recurrent(nn.Module):
    """``cell`` over (N, T, 5) (or (T, N, 5) time-major) into a Linear on ``mode``: "h_n"
    (the final state h_n[-1]; both directions' cat((h_n[-2], h_n[-1]), 1)), "last" (out[:, -1])
    or "every" (out at every step)."""

    def __init__(self, cell, mode, bidirectional=False, layers=1, batch_first=True):
        super().__init__()
        self.rnn = cell(5, 6, num_layers=layers, batch_first=batch_first,
                        bidirectional=bidirectional)
        self.fc = nn.Linear(12 if bidirectional else 6, 3)
        self.mode, self.bi, self.bf = mode, bidirectional, batch_first

    def forward(self, x):
        out, h = self.rnn(x)
        h = h[0] if isinstance(h, tuple) else h
        if self.mode == "h_n":
            return self.fc(torch.cat((h[-2], h[-1]), 1) if self.bi else h[-1])
        if self.mode == "last":
            return self.fc(out[:, -1] if self.bf else out[-1])
        return self.fc(out)


RNN_CASES = list(itertools.product(
    ["LSTM", "GRU"], ["h_n", "last", "every"], [False, True], [1, 2], [True, False],
    [True, False]))


def rnn_id(case):
    cell, mode, bi, layers, bf, dyn = case
    return "-".join([cell, mode, "bi" if bi else "uni", f"{layers}layer",
                     "batch_first" if bf else "time_major", "dynamic" if dyn else "fixed"])


@pytest.mark.parametrize("case", RNN_CASES, ids=[rnn_id(c) for c in RNN_CASES])
def test_recurrent_classifier(case):
    cell, mode, bi, layers, bf, dyn = case
    torch.manual_seed(0)
    model = Recurrent(getattr(nn, cell), mode, bi, layers, bf)
    x = torch.randn(2, 4, 5) if bf else torch.randn(4, 2, 5)
    if mode == "last" and bi:
        # out[:, -1] of a bidirectional layer: the backward half is its state after ONE step
        data = export(model, x, dyn, batch_axis=0 if bf else 1)
        with pytest.raises(OnnxImportError, match=r"bidirectional .* no layer that slices "
                                                  r"time steps.*h_n\[-2\], h_n\[-1\]"):
            import_onnx(data)
        return
    graph, notes = check(model, x, dyn, batch_axis=0 if bf else 1)
    t = types(graph)
    assert t.count(cell) == layers and t.count("Dense") == 1, t
    first = next(n for n in graph.nodes.values() if n.type == cell)
    assert first.params["direction"] == ("bidirectional" if bi else "forward")
    assert first.params["return_sequences"] == (layers > 1 or mode == "every")
    if not bf:
        assert any("time-major" in n for n in notes)


def test_simple_rnn_and_opset_13_exports():
    torch.manual_seed(0)
    graph, _ = check(Recurrent(nn.RNN, "h_n", layers=2), torch.randn(2, 4, 5), opset=13)
    assert types(graph).count("SimpleRNN") == 2


def test_time_series_unsqueeze_into_a_gru():
    class Series(nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn, self.fc = nn.GRU(1, 6, batch_first=True), nn.Linear(6, 1)

        def forward(self, x):  # (N, T) -> (N, T, 1)
            out, _ = self.rnn(x.unsqueeze(-1))
            return self.fc(out[:, -1])
    torch.manual_seed(0)
    graph, _ = check(Series(), torch.randn(2, 7))
    assert types(graph) == ["Input", "Reshape", "GRU", "Dense", "Output"]


def test_exports_without_constant_folding_import():
    torch.manual_seed(0)
    check(Recurrent(nn.LSTM, "h_n", layers=2, bidirectional=True), torch.randn(2, 4, 5),
          fold=False)
    check(ViewCNN(), torch.randn(2, 1, 14, 14), fold=False)


@pytest.mark.parametrize("model,x", [(ViewCNN, (2, 1, 14, 14)), (
    lambda: Recurrent(nn.LSTM, "h_n"), (2, 4, 5))], ids=["cnn", "lstm"])
def test_dynamo_exporter(model, x):
    """torch.onnx.export(dynamo=True) needs onnxscript; skipped where it is not installed."""
    torch.manual_seed(0)
    check(model(), torch.randn(*x), dynamo=True)


@pytest.mark.parametrize("opset", [13, 14, 15, 16, 17, 18])
def test_recurrent_classifiers_at_every_opset(opset):
    torch.manual_seed(0)
    check(Recurrent(nn.LSTM, "h_n", layers=2), torch.randn(2, 4, 5), opset=opset)
    check(Recurrent(nn.GRU, "last", batch_first=False), torch.randn(4, 2, 5), opset=opset,
          batch_axis=1)
