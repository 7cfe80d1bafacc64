"""What a refused ONNX model holds that PyTorch users meet often and NetBuilder has no layer
for, said by the PyTorch name, added to the importer's refusal (which names the first node
it could not take): ``nn.GELU(approximate="tanh")``. (Attention written op by op that did
not match NetBuilder's MultiHeadAttention is explained by ``onnx_attention_patterns``.)"""

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


def refusal_hint(model: Any) -> str | None:
    """The PyTorch-level reason a refused ``model`` cannot import, if one is known."""
    return tanh_gelu(model)
