"""MultiHeadAttention in ONNX (opset 17, which has no attention op): what ``to_onnx``
writes and ``from_onnx`` reads back.

For x (N, T, E), H heads of width D::

    q, k, v = Reshape(MatMul(x, W_iᵀ) + b_i, [0, 0, H, D])     (W_i, b_i: rows of in_proj)
    s = Einsum("nthd,nshd->nhts", q, k) · (1/√D) [+ causal mask, -inf above the diagonal]
    c = Reshape(Einsum("nhts,nshd->nthd", Softmax(s, axis=-1), v), [0, 0, E])
    y = MatMul(c, out_proj_weightᵀ) + out_proj_bias

With ``dropout`` > 0 a Dropout node (the identity in inference) after the Softmax carries
the rate.
The importer claims the whole chain from its first Einsum (``claim_attention``); an Einsum
outside it is refused.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

QK = "nthd,nshd->nhts"
PV = "nhts,nshd->nthd"


def write_attention(layer: Any, b: Any, x: str, out: str, params: dict[str, np.ndarray]
                    ) -> None:
    """The ONNX nodes of ``layer`` (a MultiHeadAttention) computing ``out`` from ``x``."""
    nid, heads, e = layer.id, layer.p["heads"], layer.embed
    d, t = e // heads, layer.in_shapes[0][0]
    w_in, b_in = params["in_proj_weight"], params["in_proj_bias"]
    split = b.const(f"{nid}/heads_shape", [0, 0, heads, d], np.int64)
    qkv = []
    for i, part in enumerate("qkv"):
        p = b.op("MatMul", [x, b.const(f"{nid}.in_proj_weight_{part}",
                                       w_in[i * e:(i + 1) * e].T)], f"{nid}/{part}_mm")
        p = b.op("Add", [p, b.const(f"{nid}.in_proj_bias_{part}", b_in[i * e:(i + 1) * e])],
                 f"{nid}/{part}_proj")
        qkv.append(b.op("Reshape", [p, split], f"{nid}/{part}"))
    s = b.op("Einsum", qkv[:2], f"{nid}/scores", name=nid, equation=QK)
    s = b.op("Mul", [s, b.const(f"{nid}/scale", 1.0 / math.sqrt(d))], f"{nid}/scaled")
    if layer.p["causal"]:
        mask = np.triu(np.full((t, t), -np.inf, np.float32), 1)
        s = b.op("Add", [s, b.const(f"{nid}/causal_mask", mask)], f"{nid}/masked")
    p = b.op("Softmax", [s], f"{nid}/weights", axis=-1)
    if layer.p["dropout"]:  # the identity in inference; carries the rate to the importer
        p = b.op("Dropout", [p, b.const(f"{nid}/dropout", layer.p["dropout"])],
                 f"{nid}/dropped")
    c = b.op("Einsum", [p, qkv[2]], f"{nid}/context", equation=PV)
    c = b.op("Reshape", [c, b.const(f"{nid}/merge_shape", [0, 0, e], np.int64)],
             f"{nid}/merged")
    c = b.op("MatMul", [c, b.const(f"{nid}.out_proj_weight", params["out_proj_weight"].T)],
             f"{nid}/out_mm")
    b.op("Add", [c, b.const(f"{nid}.out_proj_bias", params["out_proj_bias"])], out,
         name=f"{nid}/out_proj")


def _equation(imp: Any, node: Any) -> str:
    return str(imp.attrs(node).get("equation", "")).replace(" ", "")


def _const_operand(imp: Any, node: Any, data: str) -> np.ndarray | None:
    if len(node.input) != 2 or data not in node.input:
        return None
    other = node.input[1] if node.input[0] == data else node.input[0]
    return imp.const(other)


def _projection(imp: Any, reshape: Any) -> tuple[str, np.ndarray, np.ndarray, list[Any]] | None:
    """(x, W (E, E) as in_proj rows, b (E,), the nodes) of Reshape(MatMul(x, Wᵀ) + b)."""
    if reshape is None or reshape.op_type != "Reshape":
        return None
    add = imp.producer.get(reshape.input[0])
    if add is None or add.op_type != "Add" or imp.only_consumer(add.output[0]) is not reshape:
        return None
    mm = next((imp.producer.get(t) for t in add.input if t in imp.producer), None)
    if mm is None or mm.op_type != "MatMul" or imp.only_consumer(mm.output[0]) is not add:
        return None
    bias = _const_operand(imp, add, mm.output[0])
    w = imp.const(mm.input[1])
    if bias is None or w is None or w.ndim != 2 or mm.input[0] in imp.consts:
        return None
    return mm.input[0], w.T, bias.reshape(-1), [mm, add, reshape]


def claim_attention(imp: Any, index: int, node: Any) -> None:
    """From the scores' Einsum, claim every other node of the chain ``write_attention``
    writes; ``imp.matches[index]`` gets what ``read_attention`` needs."""
    if _equation(imp, node) != QK or len(node.input) != 2:
        return
    q = _projection(imp, imp.producer.get(node.input[0]))
    k = _projection(imp, imp.producer.get(node.input[1]))
    mul = imp.only_consumer(node.output[0])
    if q is None or k is None or q[0] != k[0] or mul is None or mul.op_type != "Mul":
        return
    scale = _const_operand(imp, mul, node.output[0])
    nxt = imp.only_consumer(mul.output[0])
    mask, chain = None, [mul]
    if nxt is not None and nxt.op_type == "Add":
        mask = _const_operand(imp, nxt, mul.output[0])
        chain.append(nxt)
        nxt = imp.only_consumer(nxt.output[0])
    soft, pv = nxt, imp.only_consumer(nxt.output[0]) if nxt is not None else None
    rate = 0.0
    if pv is not None and pv.op_type == "Dropout" and len(pv.output) == 1:
        ratio = imp.const(pv.input[1]) if len(pv.input) > 1 and pv.input[1] else None
        if ratio is None or ratio.size != 1 or len(pv.input) > 2:
            return
        rate = float(ratio.reshape(-1)[0])
        chain.append(pv)
        soft_out, pv = pv.output[0], imp.only_consumer(pv.output[0])
    else:
        soft_out = soft.output[0] if soft is not None else ""
    if scale is None or scale.size != 1 or soft is None or soft.op_type != "Softmax" or \
            pv is None or pv.op_type != "Einsum" or _equation(imp, pv) != PV or \
            pv.input[0] != soft_out or (len(chain) > 1 and chain[1].op_type == "Add"
                                        and mask is None):
        return
    v = _projection(imp, imp.producer.get(pv.input[1]))
    merge = imp.only_consumer(pv.output[0])
    out_mm = imp.only_consumer(merge.output[0]) if merge is not None else None
    out_add = imp.only_consumer(out_mm.output[0]) if out_mm is not None else None
    if v is None or v[0] != q[0] or merge is None or merge.op_type != "Reshape" or \
            out_mm is None or out_mm.op_type != "MatMul" or imp.const(out_mm.input[1]) is None \
            or out_add is None or out_add.op_type != "Add":
        return
    out_bias = _const_operand(imp, out_add, out_mm.output[0])
    if out_bias is None:
        return
    imp.matches[index] = {
        "x": q[0], "first": q[3][0], "heads_shape": imp.const(q[3][2].input[1]),
        "w": np.concatenate([q[1], k[1], v[1]]), "b": np.concatenate([q[2], k[2], v[2]]),
        "scale": float(scale.reshape(-1)[0]), "mask": mask, "softmax": soft, "rate": rate,
        "out_w": imp.const(out_mm.input[1]).T, "out_b": out_bias.reshape(-1), "out": out_add}
    nodes = [*q[3], *k[3], *v[3], *chain, soft, pv, merge, out_mm, out_add]
    imp.skip.update(imp.index_of(n) for n in nodes)


def read_attention(imp: Any, index: int, node: Any) -> None:
    """A claimed chain becomes one MultiHeadAttention node (dropout 0: ONNX is inference)."""
    m = imp.matches.get(index)
    if m is None:
        raise imp.fail(node, f"computes {_equation(imp, node) or 'an einsum'}; NetBuilder "
                             "reads an Einsum only as part of the multi-head attention it "
                             "exports (scores nthd,nshd->nhts)")
    x = imp.materialize(imp.value(m["first"]), node)
    if len(x.shape) != 2:
        raise imp.fail(node, f"attends over samples shaped {x.shape}; NetBuilder's "
                             "MultiHeadAttention takes sequences (T, E)")
    t, e = x.shape
    shape = m["heads_shape"]
    heads = int(shape.reshape(-1)[2]) if shape is not None and shape.size == 4 else 0
    if heads < 1 or e % heads or m["w"].shape != (3 * e, e) or m["out_w"].shape != (e, e):
        raise imp.fail(node, f"splits {e} features into heads as {shape}; NetBuilder's "
                             "MultiHeadAttention needs (0, 0, heads, E / heads)")
    d = e // heads
    if not math.isclose(m["scale"], 1 / math.sqrt(d), rel_tol=1e-5):
        raise imp.fail(node, f"scales the scores by {m['scale']:g}, not 1/√{d}: NetBuilder's "
                             "attention uses PyTorch's scaling")
    causal = m["mask"] is not None
    if causal:
        want = np.triu(np.full((t, t), -np.inf), 1)
        got = np.asarray(m["mask"], np.float64).reshape(-1)
        if got.size != t * t or not np.array_equal(np.isneginf(got) | (got < -1e30),
                                                   np.isneginf(want.reshape(-1))) or \
                np.any(got[np.isfinite(want.reshape(-1))] != 0):
            raise imp.fail(node, "adds a mask other than the causal one to the scores")
    axis = int(imp.attrs(m["softmax"]).get("axis", -1))
    if axis not in (-1, 3):
        raise imp.fail(m["softmax"], "normalises the scores along another axis than the keys")
    state = {"in_proj_weight": m["w"], "in_proj_bias": m["b"], "out_proj_weight": m["out_w"],
             "out_proj_bias": m["out_b"]}
    imp.vals[m["out"].output[0]] = imp.add(node, "MultiHeadAttention",
                                           {"heads": heads, "causal": causal,
                                            "dropout": float(str(np.float32(m["rate"])))},
                                           [x], state)
