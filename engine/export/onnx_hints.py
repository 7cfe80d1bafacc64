"""What a refused ONNX model holds that PyTorch users meet often and NetBuilder has no layer
for, said by the PyTorch name, added to the importer's refusal (which names the first node
it could not take): ``nn.GELU(approximate="tanh")`` and ``nn.MultiheadAttention`` (or a
``TransformerEncoderLayer``) as ``torch.onnx.export`` writes them, op by op."""

from __future__ import annotations

from typing import Any

import numpy as np

TANH_GELU_CUBIC = 0.044715  # the x³ coefficient of GELU's tanh approximation


def _scalars(model: Any) -> dict[str, float]:
    """Tensor name -> value of every one-element constant (initialisers, Constant nodes)."""
    from onnx import numpy_helper
    out: dict[str, float] = {}
    tensors = [(t.name, t) for t in model.graph.initializer]
    for n in model.graph.node:
        if n.op_type == "Constant" and n.output:
            tensors += [(n.output[0], a.t) for a in n.attribute if a.name == "value"]
    for name, t in tensors:
        if np.prod(t.dims, dtype=np.int64) == 1:
            try:
                out[name] = float(numpy_helper.to_array(t).reshape(-1)[0])
            except (ValueError, TypeError):
                continue
    return out


def _name(node: Any) -> str:
    return f"{node.op_type} node '{node.name or node.output[0]}'"


def tanh_gelu(model: Any) -> str | None:
    """The hint for a tanh-approximated GELU (a Tanh and the constant 0.044715), else None."""
    tanh = next((n for n in model.graph.node if n.op_type == "Tanh"), None)
    if tanh is None or not any(abs(v - TANH_GELU_CUBIC) < 1e-6
                               for v in _scalars(model).values()):
        return None
    return (f"the model computes GELU with approximate='tanh' (around {_name(tanh)}); "
            "NetBuilder's GELU is the exact one (erf), which differs by up to about 1e-3: "
            "export with nn.GELU(approximate='none') to import it")


def op_by_op_attention(model: Any) -> str | None:
    """The hint for attention written op by op: a Softmax over MatMul(data, data) (the scores
    q·kᵀ, maybe scaled or masked on the way), else None. NetBuilder's own export of a
    MultiHeadAttention uses Einsum and never matches."""
    g = model.graph
    consts = {t.name for t in g.initializer} | {
        n.output[0] for n in g.node if n.op_type == "Constant" and n.output}
    producer = {o: n for n in g.node for o in n.output}
    for soft in (n for n in g.node if n.op_type == "Softmax"):
        node = producer.get(soft.input[0])
        for _ in range(4):  # through a scale, a mask, a cast
            if node is None or node.op_type == "MatMul":
                break
            data = [t for t in node.input if t and t not in consts]
            node = producer.get(data[0]) if len(data) >= 1 else None
        if node is not None and node.op_type == "MatMul" and \
                not any(t in consts for t in node.input):
            return (f"it holds attention written op by op ({_name(soft)} over the scores of "
                    f"{_name(node)}), as torch.onnx.export writes nn.MultiheadAttention and "
                    "nn.TransformerEncoderLayer; NetBuilder imports a MultiHeadAttention only "
                    "in the form it exports itself: build the block from NetBuilder's "
                    "MultiHeadAttention, LayerNorm and Dense layers and load the weights")
    return None


def refusal_hint(model: Any) -> str | None:
    """The PyTorch-level reason a refused ``model`` cannot import, if one is known."""
    hints = [h for h in (tanh_gelu(model), op_by_op_attention(model)) if h]
    return "; ".join(hints) or None
