"""Modules a PyTorch user writes with NetBuilder's modern layers, exported by both of
``torch.onnx.export``'s exporters (TorchScript, and dynamo: the default of torch 2.13, which
needs onnxscript and skips without it), imported, and compared with onnxruntime and PyTorch
within 1e-4 relative: LayerNorm, GroupNorm, exact GELU, Flatten, Embedding + positions,
depthwise-separable convs, a U-Net piece, a strided ResNet block, Conv1d, and LSTM / GRU
returning every step. What NetBuilder has no layer for (tanh-approximated GELU) is refused
with a message naming the node and the op. (Attention: ``test_import_torch_attention.py``.)"""
import pytest
from test_import_torch import check, export, random_batchnorm, types

from engine.export import import_onnx
from engine.export.onnx_import import OnnxImportError

torch = pytest.importorskip("torch")
nn = torch.nn
F = torch.nn.functional
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning",
                                        "ignore::FutureWarning", "ignore::torch.jit.TracerWarning")
EXPORTERS = [False, True]
EXPORTER_IDS = ["torchscript", "dynamo"]


class Normed(nn.Module):
    """Linear → LayerNorm → exact GELU → Linear on (N, T, 6) sequences."""

    def __init__(self):
        super().__init__()
        self.fc, self.ln, self.act, self.out = nn.Linear(6, 8), nn.LayerNorm(8), nn.GELU(), \
            nn.Linear(8, 3)

    def forward(self, x):
        return self.out(self.act(self.ln(self.fc(x))))


class GroupNormed(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv, self.gn = nn.Conv2d(3, 8, 3, padding=1), nn.GroupNorm(4, 8)

    def forward(self, x):
        return F.relu(self.gn(self.conv(x)))


class FlatMLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(48, 16), nn.ReLU(), nn.Linear(16, 4))

    def forward(self, x):
        return self.body(x)


class Tokens(nn.Module):
    """Token embedding + a learned position table added, then a Linear per step."""

    def __init__(self):
        super().__init__()
        self.emb, self.pos = nn.Embedding(20, 8), nn.Parameter(torch.randn(1, 7, 8))
        self.out = nn.Linear(8, 3)

    def forward(self, x):
        return self.out(self.emb(x) + self.pos)


class Separable(nn.Module):
    """A strided stem, then depthwise 3×3 + BN + act and pointwise 1×1 + BN + act."""

    def __init__(self, act):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.dw = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1, groups=8, bias=False),
                                nn.BatchNorm2d(8), act())
        self.pw = nn.Sequential(nn.Conv2d(8, 16, 1, bias=False), nn.BatchNorm2d(16), act())

    def forward(self, x):
        return self.pw(self.dw(self.stem(x)))


class UNetPiece(nn.Module):
    """Encoder conv, pool, conv; decoder ConvTranspose2d and Upsample concatenated with the
    skip, a 1×1 head."""

    def __init__(self, mode):
        super().__init__()
        self.enc, self.mid = nn.Conv2d(3, 8, 3, padding=1), nn.Conv2d(8, 16, 3, padding=1)
        self.up, self.resize = nn.ConvTranspose2d(16, 8, 2, stride=2), \
            nn.Upsample(scale_factor=2, mode=mode)
        self.head = nn.Conv2d(32, 2, 1)

    def forward(self, x):
        e = F.relu(self.enc(x))
        m = F.relu(self.mid(F.max_pool2d(e, 2)))
        return self.head(torch.cat([self.up(m), e, self.resize(m)], 1))


class StridedBlock(nn.Module):
    """torchvision's BasicBlock with a strided 1×1 conv + BN shortcut."""

    def __init__(self):
        super().__init__()
        self.c1, self.b1 = nn.Conv2d(8, 16, 3, 2, 1, bias=False), nn.BatchNorm2d(16)
        self.c2, self.b2 = nn.Conv2d(16, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16)
        self.short = nn.Sequential(nn.Conv2d(8, 16, 1, 2, bias=False), nn.BatchNorm2d(16))

    def forward(self, x):
        return F.relu(self.b2(self.c2(F.relu(self.b1(self.c1(x))))) + self.short(x))


class Conv1dNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1, self.c2 = nn.Conv1d(4, 8, 3, padding=1), nn.Conv1d(8, 8, 3, stride=2)
        self.out = nn.Linear(8, 3)

    def forward(self, x):  # (N, C, L)
        return self.out(F.relu(self.c2(F.relu(self.c1(x)))).mean(-1))


class Sequence(nn.Module):
    """An RNN returning every step (out), into a Linear per step."""

    def __init__(self, cell, layers, bidirectional):
        super().__init__()
        self.rnn = cell(5, 6, num_layers=layers, batch_first=True, bidirectional=bidirectional)
        self.out = nn.Linear(12 if bidirectional else 6, 3)

    def forward(self, x):
        return self.out(self.rnn(x)[0])


MODELS = {
    "layernorm_gelu": (Normed, (2, 5, 6), ["LayerNorm", "GELU"]),
    "groupnorm": (GroupNormed, (2, 3, 8, 8), ["GroupNorm"]),
    "flatten_mlp": (FlatMLP, (2, 3, 4, 4), ["Dense", "Dense"]),
    "separable_relu6": (lambda: Separable(nn.ReLU6), (2, 3, 16, 16), ["Conv2D"] * 3),
    "separable_hardswish": (lambda: Separable(nn.Hardswish), (2, 3, 16, 16), ["HardSwish"] * 2),
    "unet_nearest": (lambda: UNetPiece("nearest"), (2, 3, 8, 8),
                     ["ConvTranspose2D", "Upsample2D", "Concat"]),
    "unet_bilinear": (lambda: UNetPiece("bilinear"), (2, 3, 8, 8),
                      ["ConvTranspose2D", "Upsample2D", "Concat"]),
    "strided_block": (StridedBlock, (2, 8, 8, 8), ["Add", "Conv2D", "Conv2D", "Conv2D"]),
    "conv1d": (Conv1dNet, (2, 4, 10), ["Conv1D", "Conv1D"]),
}


@pytest.mark.parametrize("dynamo,dynamic", [(False, True), (True, False), (True, True)],
                         ids=["torchscript", "dynamo-fixed-batch", "dynamo-dynamic-batch"])
@pytest.mark.parametrize("name", list(MODELS))
def test_modern_layers_import_and_match(name, dynamo, dynamic):
    """The dynamo exporter traces a fixed batch unless given dynamic_shapes: its Flatten is
    then Reshape(x, [2, 48]) with allowzero, whose 2 is the batch."""
    make, shape, want = MODELS[name]
    torch.manual_seed(0)
    graph, _ = check(random_batchnorm(make()), torch.randn(*shape), dynamic=dynamic,
                     dynamo=dynamo)
    t = types(graph)
    for layer in set(want):
        assert t.count(layer) >= want.count(layer), t


@pytest.mark.parametrize("dynamo", EXPORTERS, ids=EXPORTER_IDS)
def test_embedding_with_positions_adds(dynamo):
    """Token ids in, float ids compared (NetBuilder's Input carries float32)."""
    import numpy as np
    import onnxruntime as ort

    import engine
    torch.manual_seed(0)
    model, x = Tokens().eval(), torch.randint(0, 20, (2, 7))
    data = export(model, x, dynamic=not dynamo, dynamo=dynamo)
    graph, state = import_onnx(data)
    net = engine.compile(graph)
    net.load_state_dict(state)
    want = ort.InferenceSession(data, providers=["CPUExecutionProvider"]).run(
        None, {"x": x.numpy()})[0]
    ours = net.forward(x.numpy().astype(np.float32))
    assert np.max(np.abs(ours - want)) <= 1e-5 * np.max(np.abs(want))
    assert "Embedding" in types(graph)


@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("cell", ["LSTM", "GRU"])
def test_dynamo_recurrent_every_step(cell, layers, bidirectional):
    """The dynamo exporter writes out[...] as Reshape(Transpose(Y), [T, 0, D·H]) with the
    steps written out, not copied (0): the same join of the direction and hidden axes."""
    torch.manual_seed(0)
    graph, _ = check(Sequence(getattr(nn, cell), layers, bidirectional), torch.randn(2, 4, 5),
                     dynamic=False, dynamo=True)
    assert types(graph).count(cell) == layers


def test_dynamo_recurrent_with_a_dynamic_batch():
    torch.manual_seed(0)
    check(Sequence(nn.LSTM, 2, True), torch.randn(2, 4, 5), dynamic=True, dynamo=True)


# ----- refused, with the node and the op named ---------------------------------------------------
class TanhGelu(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc, self.act = nn.Linear(6, 8), nn.GELU(approximate="tanh")

    def forward(self, x):
        return self.act(self.fc(x))


@pytest.mark.parametrize("dynamo", EXPORTERS, ids=EXPORTER_IDS)
def test_tanh_gelu_is_refused_by_name(dynamo):
    """NetBuilder's GELU is the exact one: the tanh approximation differs by up to ~1e-3, so
    importing it as GELU would change the model."""
    torch.manual_seed(0)
    data = export(TanhGelu(), torch.randn(2, 6), dynamic=not dynamo, dynamo=dynamo)
    with pytest.raises(OnnxImportError, match=r"GELU with approximate='tanh'.*node '[^']+'"
                                              r".*approximate='none'"):
        import_onnx(data)
