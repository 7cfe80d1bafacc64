"""PyTorch attention as ``torch.onnx.export`` writes it (op by op: MatMul, Reshape,
Transpose, Softmax, shape arithmetic) imports as one MultiHeadAttention node, by both
exporters, with a fixed and a dynamic batch: ``nn.MultiheadAttention(batch_first=True)``
(need_weights on and off, the causal mask), ``nn.TransformerEncoderLayer`` (post- and
pre-norm, ReLU and GELU, a causal ``src_mask``), two stacked layers, a timm-style
``Attention`` (one qkv Linear, ``F.scaled_dot_product_attention`` or written out), and a
token model (Embedding + learned positions + encoder + mean pool). Forward and input
gradient match PyTorch in float32 within 1e-4 relative and the imported graph trains.
What NetBuilder's attention cannot express is refused with the reason."""
import pytest
from test_import_torch import export
from torchmodels import EXPORT_IDS, EXPORT_MODES, import_and_check, node_params, randomize

from engine.export import import_onnx
from engine.export.onnx_import import OnnxImportError

torch = pytest.importorskip("torch")
nn = torch.nn
F = torch.nn.functional
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning",
                                        "ignore::FutureWarning", "ignore::torch.jit.TracerWarning")
T, E = 5, 8


def causal_mask(t, dtype=torch.bool):
    if dtype is torch.bool:
        return torch.triu(torch.ones(t, t, dtype=torch.bool), 1)
    return nn.Transformer.generate_square_subsequent_mask(t)


class SelfAttention(nn.Module):
    """``mha(x, x, x)``: weights discarded (need_weights default True) or not computed."""

    def __init__(self, heads=2, causal=False, need_weights=False, bias=True):
        super().__init__()
        self.mha = nn.MultiheadAttention(E, heads, batch_first=True, bias=bias)
        self.causal, self.need_weights = causal, need_weights

    def forward(self, x):
        mask = causal_mask(x.shape[1]) if self.causal else None
        out, _ = self.mha(x, x, x, need_weights=self.need_weights, attn_mask=mask)
        return out


class Encoder(nn.Module):
    def __init__(self, norm_first=False, activation="relu", causal=False, layers=1):
        super().__init__()
        make = lambda: nn.TransformerEncoderLayer(E, 2, 16, 0.0, activation=activation,  # noqa: E731
                                                  batch_first=True, norm_first=norm_first)
        self.layers = nn.ModuleList([make() for _ in range(layers)])
        self.causal = causal

    def forward(self, x):
        mask = causal_mask(x.shape[1], torch.float32) if self.causal else None
        for layer in self.layers:
            x = layer(x, src_mask=mask, is_causal=self.causal)
        return x


class TimmAttention(nn.Module):
    """timm's ``Attention``: one qkv Linear, heads split (B, N, 3, H, D), a proj Linear."""

    def __init__(self, heads=4, fused=True):
        super().__init__()
        self.heads, self.fused = heads, fused
        self.qkv, self.proj = nn.Linear(E, 3 * E), nn.Linear(E, E)

    def forward(self, x):
        b, n, c = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        if self.fused:
            x = F.scaled_dot_product_attention(q, k, v)
        else:
            attn = (q * (c // self.heads) ** -0.5) @ k.transpose(-2, -1)
            x = attn.softmax(dim=-1) @ v
        return self.proj(x.transpose(1, 2).reshape(b, n, c))


class TokenTransformer(nn.Module):
    """Token ids → Embedding + learned positions → encoder layer → mean over steps → Linear."""

    def __init__(self):
        super().__init__()
        self.emb, self.pos = nn.Embedding(12, E), nn.Parameter(torch.randn(1, T, E) * 0.1)
        self.enc = nn.TransformerEncoderLayer(E, 2, 16, 0.0, batch_first=True,
                                              activation="gelu", norm_first=True)
        self.out = nn.Linear(E, 3)

    def forward(self, ids):
        return self.out(self.enc(self.emb(ids) + self.pos).mean(1))


MODELS = {
    "mha": (lambda: SelfAttention(), 2, False),
    "mha_need_weights": (lambda: SelfAttention(4, need_weights=True), 4, False),
    "mha_causal": (lambda: SelfAttention(2, causal=True), 2, True),
    "mha_no_bias_one_head": (lambda: SelfAttention(1, bias=False), 1, False),
    "encoder_post_norm_relu": (lambda: Encoder(), 2, False),
    "encoder_pre_norm_gelu": (lambda: Encoder(True, "gelu"), 2, False),
    "encoder_post_norm_gelu": (lambda: Encoder(False, "gelu"), 2, False),
    "encoder_pre_norm_relu_causal": (lambda: Encoder(True, "relu", causal=True), 2, True),
    "encoder_two_layers": (lambda: Encoder(True, "gelu", layers=2), 2, False),
    "timm_sdpa": (lambda: TimmAttention(4, True), 4, False),
    "timm_written_out": (lambda: TimmAttention(2, False), 2, False),
}


@pytest.mark.parametrize("dynamo,dynamic", EXPORT_MODES, ids=EXPORT_IDS)
@pytest.mark.parametrize("name", list(MODELS))
def test_torch_attention_imports_as_multi_head_attention(name, dynamo, dynamic):
    make, heads, causal = MODELS[name]
    torch.manual_seed(0)
    model = randomize(make())
    graph = import_and_check(model, torch.randn(2, T, E), dynamo, dynamic)
    layers = 2 if name == "encoder_two_layers" else 1
    assert node_params(graph, "MultiHeadAttention") == [
        {"heads": heads, "causal": causal, "dropout": 0.0}] * layers


@pytest.mark.parametrize("dynamo,dynamic", EXPORT_MODES, ids=EXPORT_IDS)
def test_token_transformer_imports(dynamo, dynamic):
    """Integer ids in (no input gradient); Embedding, MultiHeadAttention, GELU, LayerNorm."""
    torch.manual_seed(0)
    model = randomize(TokenTransformer())
    graph = import_and_check(model, torch.randint(0, 12, (2, T)), dynamo, dynamic, grad=False)
    types = [n.type for n in graph.nodes.values()]
    for t in ("Embedding", "MultiHeadAttention", "GELU", "LayerNorm"):
        assert t in types, types


# ----- refused, with the reason -----------------------------------------------------------------
class WeightsUsed(nn.Module):
    def __init__(self):
        super().__init__()
        self.mha = nn.MultiheadAttention(E, 2, batch_first=True)

    def forward(self, x):
        out, weights = self.mha(x, x, x)
        return out + weights.mean(-1, keepdim=True)


class BandMask(SelfAttention):
    def forward(self, x):
        t = x.shape[1]
        band = (torch.arange(t)[:, None] - torch.arange(t)[None, :]).abs() > 1
        return self.mha(x, x, x, need_weights=False, attn_mask=band)[0]


class CrossAttention(SelfAttention):
    def __init__(self):
        super().__init__()
        self.memory = nn.Linear(E, E)

    def forward(self, x):
        m = self.memory(x)
        return self.mha(x, m, m, need_weights=False)[0]


class TimeMajor(nn.Module):
    """``batch_first=False`` fed (T, N, E): the attention runs along the first axis, which
    NetBuilder reads as the batch."""

    def __init__(self):
        super().__init__()
        self.mha = nn.MultiheadAttention(E, 2)

    def forward(self, x):
        return self.mha(x, x, x, need_weights=False)[0]


REFUSED = {
    "weights_used": (WeightsUsed, r"attention weights are used otherwise than to weight"),
    "band_mask": (BandMask, r"with no mask or the causal one \(another mask"),
    "time_major": (TimeMajor, r"(does not compute multi-head attention|running it on a test "
                              r"input failed)"),
    "cross_attention": (CrossAttention, r"(projected from different tensors|not part of an "
                                        r"attention's input projection|combines two data)"),
}


@pytest.mark.parametrize("dynamo", [False, True], ids=["torchscript", "dynamo"])
@pytest.mark.parametrize("name", list(REFUSED))
def test_attention_netbuilder_cannot_express_is_refused_with_the_reason(name, dynamo):
    make, why = REFUSED[name]
    torch.manual_seed(0)
    data = export(randomize(make()), torch.randn(2, T, E), dynamic=not dynamo, dynamo=dynamo)
    with pytest.raises(OnnxImportError, match=why) as err:
        import_onnx(data)
    assert "nn.MultiheadAttention(batch_first=True)" in str(err.value)
    assert "Softmax node '" in str(err.value)


class Stack(nn.Module):
    """``nn.TransformerEncoder(layer, 2)``: deep copies of one layer, so the TorchScript
    exporter shares their weights through Identity nodes, which the rewrite reads through."""

    def __init__(self):
        super().__init__()
        layer = randomize(nn.TransformerEncoderLayer(E, 2, 16, 0.0, batch_first=True))
        self.enc = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)

    def forward(self, x):
        return self.enc(x)


@pytest.mark.parametrize("dynamo,dynamic", EXPORT_MODES, ids=EXPORT_IDS)
def test_transformer_encoder_of_identical_layers(dynamo, dynamic):
    torch.manual_seed(0)
    graph = import_and_check(Stack().eval(), torch.randn(2, T, E), dynamo, dynamic)
    assert len(node_params(graph, "MultiHeadAttention")) == 2
