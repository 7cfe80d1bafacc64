"""Blocks written the way torchvision / timm code writes them, exported by both exporters
(fixed and dynamic batch), imported, and checked against PyTorch in float32 (forward and
input gradient within 1e-4 relative), then trained a few steps: a MobileNetV2 inverted
residual, a ResNet BasicBlock, a U-Net piece (ConvTranspose2d stride 2 with output_padding
1, nearest and bilinear Upsample with align_corners either way, ``torch.cat`` skips), a
Conv1d / MaxPool1d / AvgPool1d sequence model, LayerNorm + GELU + SiLU, and token and
position embeddings (a learned table or an ``nn.Embedding`` of ``arange``)."""
import pytest
from torchmodels import EXPORT_IDS, EXPORT_MODES, import_and_check, node_params, randomize

torch = pytest.importorskip("torch")
nn = torch.nn
F = torch.nn.functional
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning",
                                        "ignore::FutureWarning", "ignore::torch.jit.TracerWarning")


class InvertedResidual(nn.Module):
    """torchvision's MobileNetV2 block: 1×1 expand + BN + ReLU6, depthwise 3×3 + BN + ReLU6,
    1×1 project + BN, the input added back (stride 1, same channels)."""

    def __init__(self, c=8, expand=4):
        super().__init__()
        h = c * expand
        self.conv = nn.Sequential(
            nn.Conv2d(c, h, 1, bias=False), nn.BatchNorm2d(h), nn.ReLU6(inplace=True),
            nn.Conv2d(h, h, 3, 1, 1, groups=h, bias=False), nn.BatchNorm2d(h),
            nn.ReLU6(inplace=True), nn.Conv2d(h, c, 1, bias=False), nn.BatchNorm2d(c))

    def forward(self, x):
        return x + self.conv(x)


class BasicBlock(nn.Module):
    """torchvision's ResNet BasicBlock with the identity shortcut."""

    def __init__(self, c=8):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(c, c, 3, 1, 1, bias=False), nn.BatchNorm2d(c)
        self.conv2, self.bn2 = nn.Conv2d(c, c, 3, 1, 1, bias=False), nn.BatchNorm2d(c)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + x)


class UNetUp(nn.Module):
    """Encoder conv + pool, then up by ConvTranspose2d(3, stride 2, padding 1,
    output_padding 1) or nn.Upsample, concatenated with the skip, a 1×1 head."""

    def __init__(self, mode, align_corners=None):
        super().__init__()
        self.enc, self.mid = nn.Conv2d(3, 8, 3, padding=1), nn.Conv2d(8, 8, 3, padding=1)
        self.pool = nn.MaxPool2d(2)
        self.up = nn.ConvTranspose2d(8, 8, 3, stride=2, padding=1, output_padding=1) \
            if mode == "transposed" else \
            nn.Upsample(scale_factor=2, mode=mode, align_corners=align_corners)
        self.head = nn.Conv2d(16, 2, 1)

    def forward(self, x):
        e = F.relu(self.enc(x))
        m = F.relu(self.mid(self.pool(e)))
        return self.head(torch.cat([self.up(m), e], dim=1))


class SequenceConv(nn.Module):
    """(N, C, L): Conv1d + ReLU, MaxPool1d, Conv1d + ReLU, AvgPool1d, flatten, Linear."""

    def __init__(self):
        super().__init__()
        self.c1, self.c2 = nn.Conv1d(4, 8, 3, padding=1), nn.Conv1d(8, 8, 3, padding=1)
        self.mp, self.ap = nn.MaxPool1d(2), nn.AvgPool1d(2)
        self.fc = nn.Linear(8 * 4, 3)

    def forward(self, x):
        y = self.ap(F.relu(self.c2(self.mp(F.relu(self.c1(x))))))
        return self.fc(torch.flatten(y, 1))


class NormMLP(nn.Module):
    """A timm Mlp on (N, T, E): LayerNorm, Linear, exact GELU, Linear, SiLU."""

    def __init__(self):
        super().__init__()
        self.norm, self.fc1, self.fc2 = nn.LayerNorm(6), nn.Linear(6, 12), nn.Linear(12, 6)
        self.act, self.out = nn.GELU(), nn.SiLU()

    def forward(self, x):
        return self.out(self.fc2(self.act(self.fc1(self.norm(x)))))


MODELS = {
    "mobilenetv2_inverted_residual": (InvertedResidual, (2, 8, 8, 8),
                                      {"Conv2D": 3, "Add": 1}),
    "resnet_basic_block": (BasicBlock, (2, 8, 8, 8), {"Conv2D": 2, "Add": 1}),
    "unet_transposed_output_padding": (lambda: UNetUp("transposed"), (2, 3, 8, 8),
                                       {"ConvTranspose2D": 1, "Concat": 1}),
    "unet_nearest": (lambda: UNetUp("nearest"), (2, 3, 8, 8), {"Upsample2D": 1, "Concat": 1}),
    "unet_bilinear": (lambda: UNetUp("bilinear", False), (2, 3, 8, 8),
                      {"Upsample2D": 1, "Concat": 1}),
    "unet_bilinear_align_corners": (lambda: UNetUp("bilinear", True), (2, 3, 8, 8),
                                    {"Upsample2D": 1, "Concat": 1}),
    "conv1d_pools": (SequenceConv, (2, 4, 16), {"Conv1D": 2, "MaxPool1D": 1, "AvgPool1D": 1}),
    "layernorm_gelu_silu": (NormMLP, (2, 5, 6), {"LayerNorm": 1, "GELU": 1}),
}


@pytest.mark.parametrize("dynamo,dynamic", EXPORT_MODES, ids=EXPORT_IDS)
@pytest.mark.parametrize("name", list(MODELS))
def test_block_imports_matches_and_trains(name, dynamo, dynamic):
    make, shape, want = MODELS[name]
    torch.manual_seed(0)
    graph = import_and_check(randomize(make()), torch.randn(*shape), dynamo, dynamic)
    types = [n.type for n in graph.nodes.values()]
    for t, k in want.items():
        assert types.count(t) >= k, types
    if name == "unet_transposed_output_padding":
        assert node_params(graph, "ConvTranspose2D")[0]["output_padding"] in (1, [1, 1])
    if name.startswith("unet_bilinear"):
        assert node_params(graph, "Upsample2D")[0]["align_corners"] == \
            name.endswith("align_corners")


class Positions(nn.Module):
    """Token embedding + position embedding: a learned (1, T, E) table, or
    ``nn.Embedding(T, E)(torch.arange(T))`` as GPT-style code writes it."""

    def __init__(self, table):
        super().__init__()
        self.tok, self.table = nn.Embedding(12, 6), table
        self.pos = nn.Parameter(torch.randn(1, 5, 6)) if table else nn.Embedding(5, 6)
        self.head = nn.Linear(6, 3)

    def forward(self, ids):
        pos = self.pos if self.table else self.pos(torch.arange(ids.shape[1]))
        return self.head(self.tok(ids) + pos)


@pytest.mark.parametrize("dynamo,dynamic", EXPORT_MODES, ids=EXPORT_IDS)
@pytest.mark.parametrize("table", [True, False], ids=["parameter", "embedding_of_arange"])
def test_token_and_position_embeddings(table, dynamo, dynamic):
    torch.manual_seed(0)
    graph = import_and_check(randomize(Positions(table)), torch.randint(0, 12, (2, 5)), dynamo,
                             dynamic, grad=False)
    assert "Embedding" in [n.type for n in graph.nodes.values()]
