"""PyTorch emitters for the recurrent layers, Embedding and SpatialTransformer."""

from __future__ import annotations

from ..registry import Layer
from .pytorch_export import _Ctx, _register, emitter

_RNN_CLASS = {"SimpleRNN": "nn.RNN", "LSTM": "nn.LSTM", "GRU": "nn.GRU"}
_PARAMS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")


@emitter("SimpleRNN", "LSTM", "GRU")
def _recurrent(ctx: _Ctx, layer: Layer, xs: list[str], out: str) -> tuple[list[str], list[str]]:
    """nn.RNN / LSTM / GRU with batch_first; "backward" alone runs a one-way layer on the
    time-flipped sequence (our ``*_reverse`` parameters are its ``*_l0``)."""
    p = layer.p
    h, direction = p["units"], p["direction"]
    both = direction == "bidirectional"
    ctor = f"{_RNN_CLASS[layer.type_name]}({layer.in_shapes[0][1]}, {h}, batch_first=True"
    ctor += ", bidirectional=True)" if both else ")"
    init, ref = _register(ctx, layer.id, ctor)
    names = {}
    for sfx in layer.suffixes:
        torch_sfx = "_l0_reverse" if both and sfx == "_reverse" else "_l0"
        names.update({f"{n}{sfx}": f"{n}{torch_sfx}" for n in _PARAMS})
    ctx.param_names[layer.id] = names
    x = xs[0]
    if direction == "backward":
        x = f"torch.flip({x}, [1])"
    state = "(h_n, _)" if layer.type_name == "LSTM" else "h_n"
    seq = p["return_sequences"]
    lines = [f"y, {state} = {ref}({x})"] if seq else [f"_, {state} = {ref}({x})"]
    if seq:
        if direction == "backward":
            expr = "torch.flip(y, [1])  # back in input order"
        elif both and p["merge"] == "sum":
            expr = f"y[..., :{h}] + y[..., {h}:]  # forward + backward"
        else:
            expr = "y"
    elif both:
        expr = "h_n[0] + h_n[1]" if p["merge"] == "sum" else "torch.cat([h_n[0], h_n[1]], dim=1)"
        expr += "  # last states: forward, backward"
    else:
        expr = "h_n[0]  # last state"
    return init, [*lines, f"{out} = {expr}"]


@emitter("Embedding")
def _embedding(ctx: _Ctx, layer: Layer, xs: list[str], out: str) -> tuple[list[str], list[str]]:
    init, ref = _register(ctx, layer.id, f"nn.Embedding({layer.p['vocab']}, {layer.p['dim']})")
    return init, [f"{out} = {ref}({xs[0]}.long())  # token ids arrive as floats"]


@emitter("SpatialTransformer")
def _stn(ctx: _Ctx, layer: Layer, xs: list[str], out: str) -> tuple[list[str], list[str]]:
    c, ho, wo = layer.out_shape
    x, theta = xs
    return [], [
        "# theta is an offset from the identity transform",
        f"affine = {theta}.reshape(-1, 2, 3) + torch.eye(2, 3, dtype={theta}.dtype, "
        f"device={theta}.device)",
        f"grid = F.affine_grid(affine, [{x}.shape[0], {c}, {ho}, {wo}], align_corners=False)",
        f"{out} = F.grid_sample({x}, grid, mode=\"bilinear\", padding_mode=\"zeros\", "
        "align_corners=False)"]
