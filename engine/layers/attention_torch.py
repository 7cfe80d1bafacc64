"""Self-attention written op by op, as ``torch.onnx.export`` writes
``nn.MultiheadAttention(batch_first=True)`` called as ``mha(x, x, x)`` (also inside
``nn.TransformerEncoderLayer``) and timm-style ``Attention`` modules (one qkv Linear, heads
split h·D … (h+1)·D - 1), rewritten into the form NetBuilder exports its MultiHeadAttention
in (``layers.attention_onnx.write_attention``), which the importer maps onto one node.

A candidate is anchored on a Softmax whose input is, through a scale, a mask or a cast, a
MatMul of two data tensors (the scores q·kᵀ) and whose output is the left operand of a
MatMul (the weighted values v). Walking back from q, k and v through the ops that move data
reaches the input projection: one MatMul / Gemm by a constant (E, 3E) weight (PyTorch's
``in_proj_weight`` order q, k, v), or three by (E, E) weights, all on one tensor: the
sequence x (N, T, E), maybe through a Transpose to time-major. Walking forward from the
weighted values through reshapes reaches the output projection (MatMul / Gemm by a constant
(E, E) weight, its bias), then reshapes and transposes back to (N, T, E): y.

The region between x and y (every node y depends on back to x and the constants: the shape
arithmetic, the scale, a causal mask) must read nothing else and be read from nowhere else.
It is then run (``onnx.reference``) on random x and compared with NetBuilder's attention
computed from the weights read off the projections, for each head count that divides E
(the one the scores' shape says first), without and with the causal mask; the first that
matches within 1e-4 relative replaces the region. Anything else stays as it was, and the
importer's refusal says why it did not match (``rw.misses``).

``MultiHeadAttention.rewrite_onnx`` runs this inside the importer's rewrite pass
(``export.onnx_patterns``), which itself knows no layer type.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import numpy as np

from .attention_onnx import write_attention

# Ops a walk back from q, k, v (or forward from the weighted values) passes through: they
# move, split, scale or cast data, and read the data on their first input only.
_MOVES = frozenset({"Transpose", "Reshape", "Squeeze", "Unsqueeze", "Gather", "Slice", "Split",
                    "Identity", "Cast", "Flatten", "Mul", "Div", "Add", "Sub", "Expand",
                    "Dropout"})
_LAYOUT = frozenset({"Transpose", "Reshape", "Squeeze", "Unsqueeze", "Identity", "Flatten"})
_SCORE_STEPS = frozenset({"Mul", "Div", "Add", "Sub", "Where", "Cast", "Identity"})
MAX_REGION = 2000  # nodes; a region larger than this is not one attention
TOLERANCE = 1e-4  # relative to the largest output


def label(node: Any) -> str:
    """``Softmax node '/attn/Softmax'``: how messages name a node."""
    return f"{node.op_type} node '{node.name or (node.output[0] if node.output else '?')}'"


class _MissError(Exception):
    """A candidate that is not NetBuilder's attention; the message says why."""


class _Builder:
    """The ``b`` that ``write_attention`` writes into: nodes for the rewriter."""

    def __init__(self, rw: Any, keep: str) -> None:
        self.rw, self.keep, self.nodes = rw, keep, []

    def const(self, name: str, value: Any, dtype: Any = np.float32) -> str:
        return self.rw.add_const(name, np.array(value, dtype=dtype, order="C"))

    def op(self, op_type: str, inputs: list[str], output: str, name: str | None = None,
           **attrs: Any) -> str:
        out = output if output == self.keep else self.rw.fresh(output)
        self.nodes.append(self.rw.h.make_node(op_type, inputs, [out], name=name or out, **attrs))
        return out


def rewrite_attention(rw: Any, reference: Callable[..., Any]) -> None:
    """Rewrite every op-by-op self-attention of ``rw`` (an ``onnx_patterns._Rewriter``) into
    NetBuilder's form, checked against ``reference`` (``attention.attention_reference``);
    ``rw.misses`` gets what the refusal says about the candidates that did not match."""
    misses: list[str] = []
    softmaxes = [n for n in rw.nodes if n.op_type == "Softmax" and n.domain in ("", "ai.onnx")]
    if softmaxes:
        rw.infer()
    for soft in softmaxes:
        if soft not in rw.nodes:
            continue
        try:
            if _rewrite_one(rw, soft, reference):
                rw.infer()  # the sizes after it are batch-first again
        except _MissError as miss:
            misses.append(f"{label(soft)}: {miss}")
        except (KeyError, IndexError, ValueError, TypeError, AttributeError) as exc:
            # a graph this reading does not foresee: left as it was, for the importer
            misses.append(f"{label(soft)}: its attention could not be read "
                                       f"({type(exc).__name__})")
    if misses:
        rw.misses.append(misses_text(misses))


def _shape_like(rw: Any, prod: dict[str, Any]) -> set[str]:
    """Tensors computed from Shape outputs and constants only (sizes, not data)."""
    out: set[str] = set()
    for n in rw.nodes:  # topological order
        ins = [t for t in n.input if t and t not in rw.consts]
        if n.op_type == "Shape" or (ins and all(t in out for t in ins)):
            out.update(t for t in n.output if t)
    return out


def _data_inputs(rw: Any, node: Any, shapes: set[str]) -> list[str]:
    return [t for t in node.input if t and t not in rw.consts and t not in shapes]


def _projection(rw: Any, node: Any, cons: dict[str, list[Any]], shapes: set[str]
                ) -> tuple[str, np.ndarray, np.ndarray, str] | None:
    """(data input, W (out, in), b (out,), output after the bias) of a MatMul / Gemm by a
    constant 2-D weight, else None."""
    if node.op_type not in ("MatMul", "Gemm") or len(node.input) < 2:
        return None
    w = rw.consts.get(node.input[1])
    data = node.input[0]
    if w is None or w.ndim != 2 or data in rw.consts or data in shapes:
        return None
    a = rw.attrs(node)
    if node.op_type == "Gemm":
        if int(a.get("transA", 0)):
            return None
        w = (w if int(a.get("transB", 0)) else w.T) * float(a.get("alpha", 1.0))
        c = rw.consts.get(node.input[2]) if len(node.input) > 2 and node.input[2] else None
        if len(node.input) > 2 and node.input[2] and (c is None or c.size not in (1, len(w))):
            return None
        bias = np.zeros(len(w)) if c is None else \
            np.broadcast_to(c.reshape(-1) * float(a.get("beta", 1.0)), (len(w),))
    else:
        w, bias = w.T, np.zeros(w.shape[1])
    out = node.output[0]
    after = cons.get(out, [])
    if len(after) == 1 and after[0].op_type == "Add" and not bias.any():
        add = after[0]
        other = [t for t in add.input if t != out]
        c = rw.consts.get(other[0]) if len(other) == 1 else None
        if c is not None and c.size == len(w):
            bias, out = c.reshape(-1), add.output[0]
    return data, np.asarray(w, np.float64), np.asarray(bias, np.float64), out


def _walk_back(rw: Any, start: str, prod: dict[str, Any], cons: dict[str, list[Any]],
               shapes: set[str]) -> list[Any]:
    """The projection nodes a walk back from ``start`` through data-moving ops reaches."""
    found, seen, stack = [], set(), [start]
    while stack:
        t = stack.pop()
        node = prod.get(t)
        if node is None or id(node) in seen:
            if node is None:
                raise _MissError(f"its q, k or v comes from '{t}' without an input projection "
                            "(a MatMul by a constant weight) on the way")
            continue
        seen.add(id(node))
        if len(seen) > 64:
            raise _MissError("no input projection within 64 nodes of the scores")
        if _projection(rw, node, cons, shapes) is not None:
            found.append(node)
            continue
        if node.op_type not in _MOVES:
            raise _MissError(f"its q, k or v passes through {label(node)}, which is not part of "
                        "an attention's input projection")
        data = _data_inputs(rw, node, shapes)
        if node.op_type in ("Mul", "Div", "Add", "Sub") and len(data) != 1:
            raise _MissError(f"{label(node)} combines two data tensors on the way to q, k or v")
        stack.extend(data[:1])
    return found


def _scores(rw: Any, soft: Any, prod: dict[str, Any], shapes: set[str]) -> Any | None:
    """The MatMul of two data tensors behind the Softmax (through scale, mask, cast)."""
    node = prod.get(soft.input[0])
    for _ in range(6):
        if node is None or node.op_type == "MatMul":
            break
        if node.op_type not in _SCORE_STEPS:
            return None
        data = _data_inputs(rw, node, shapes)
        node = prod.get(data[-1 if node.op_type == "Where" else 0]) if data else None
    if node is None or node.op_type != "MatMul" or len(_data_inputs(rw, node, shapes)) != 2:
        return None
    return node


def _readers(cons: dict[str, list[Any]], t: str) -> list[Any]:
    """The nodes reading ``t``'s values (a Shape reads only its size)."""
    return [c for c in cons.get(t, []) if c.op_type != "Shape"]


def _rewrite_one(rw: Any, soft: Any, reference: Callable[..., Any]) -> bool:
    """Rewrite the attention around ``soft``; False if ``soft`` is no attention's."""
    prod, cons = rw.producers(), rw.consumers()
    shapes = _shape_like(rw, prod)
    m1 = _scores(rw, soft, prod, shapes)
    if m1 is None:
        return False  # a Softmax of something else (a classifier head): not an attention
    after = soft.output[0]
    nxt = cons.get(after, [])
    while len(nxt) == 1 and nxt[0].op_type in ("Dropout", "Cast", "Identity"):
        after, nxt = nxt[0].output[0], cons.get(nxt[0].output[0], [])
    m2 = next((n for n in nxt if n.op_type == "MatMul" and n.input[0] == after), None)
    if m2 is None or len(nxt) != 1:
        raise _MissError("its attention weights are used otherwise than to weight the values "
                    "(need_weights=True with the weights returned, or no values MatMul)")
    projs = [_walk_back(rw, t, prod, cons, shapes) for t in (m1.input[0], m1.input[1],
                                                              m2.input[1])]
    if any(len(p) != 1 for p in projs):
        raise _MissError("q, k and v do not each come from one input projection")
    w_in, b_in, x_in = _in_projection(rw, [p[0] for p in projs], cons, shapes)
    e = w_in.shape[1]
    out_node, t = None, m2.output[0]
    for _ in range(8):
        c = _readers(cons, t)
        if len(c) != 1:
            break
        if _projection(rw, c[0], cons, shapes) is not None:
            out_node = c[0]
            break
        if c[0].op_type not in _LAYOUT:
            break
        t = c[0].output[0]
    if out_node is None:
        raise _MissError("no output projection (a MatMul / Gemm by a constant (E, E) weight) "
                    "follows the weighted values")
    _, w_out, b_out, y = _projection(rw, out_node, cons, shapes)
    if w_out.shape != (e, e):
        raise _MissError(f"its output projection is shaped {list(w_out.shape)}, not ({e}, {e})")
    while True:  # the reshapes / transposes back to (N, T, E)
        c = _readers(cons, y)
        if len(c) != 1 or c[0].op_type not in _LAYOUT or y in {o.name for o in rw.outputs}:
            break
        y = c[0].output[0]
    x = x_in
    while prod.get(x) is not None and prod[x].op_type in ("Transpose", "Identity"):
        x = prod[x].input[0]
    shape = rw.shapes.get(x)
    if shape is None or len(shape) != 3 or shape[0] != "N" or shape[2] != e or \
            not isinstance(shape[1], int):
        raise _MissError(f"its input '{x}' is not a batch-first sequence (N, T, {e}) "
                    f"(shape {list(shape) if shape else 'unknown'}): NetBuilder reads "
                    "nn.MultiheadAttention(batch_first=True)")
    region, keep = _region(rw, x, y, prod, cons, shapes)
    steps = int(shape[1])
    heads, causal = _verify(rw, reference, region, x, y, steps, e, m1,
                            (w_in, b_in, w_out, b_out))
    _replace(rw, soft, region, keep, x, y, steps, heads, causal,
             {"in_proj_weight": w_in, "in_proj_bias": b_in, "out_proj_weight": w_out,
              "out_proj_bias": b_out})
    return True


def _in_projection(rw: Any, projs: list[Any], cons: dict[str, list[Any]], shapes: set[str]
                   ) -> tuple[np.ndarray, np.ndarray, str]:
    """(in_proj_weight (3E, E), in_proj_bias (3E,), their input) from the q, k, v
    projection nodes (one fused node, or three)."""
    read = [_projection(rw, p, cons, shapes) for p in projs]
    if len({r[0] for r in read}) != 1:
        raise _MissError("q, k and v are projected from different tensors (cross-attention or "
                    "separate query / key / value inputs); NetBuilder's MultiHeadAttention "
                    "is self-attention, mha(x, x, x)")
    if projs[0] is projs[1] is projs[2]:
        w, b = read[0][1], read[0][2]
        if w.shape[0] != 3 * w.shape[1]:
            raise _MissError(f"its fused input projection is shaped {list(w.shape)}, not "
                        "(3E, E)")
        return w, b, read[0][0]
    if len({id(p) for p in projs}) != 3:
        raise _MissError("two of q, k and v share a projection and the third has its own")
    w, b = np.concatenate([r[1] for r in read]), np.concatenate([r[2] for r in read])
    if w.shape[0] != 3 * w.shape[1]:
        raise _MissError(f"its q, k and v projections are shaped {[list(r[1].shape) for r in read]}"
                    ", not (E, E) each")
    return w, b, read[0][0]


def _region(rw: Any, x: str, y: str, prod: dict[str, Any], cons: dict[str, list[Any]],
            shapes: set[str]) -> tuple[list[Any], set[int]]:
    """The nodes y depends on back to x and constants (graph order), and the ids of those
    computing sizes or constants that other nodes read too, with their inputs (kept)."""
    inside: dict[int, Any] = {}
    stack = [prod[y]]
    while stack:
        node = stack.pop()
        if id(node) in inside:
            continue
        inside[id(node)] = node
        if len(inside) > MAX_REGION:
            raise _MissError(f"more than {MAX_REGION} nodes lie between '{x}' and '{y}'")
        for t in node.input:
            if not t or t == x or t in rw.consts:
                continue
            p = prod.get(t)
            if p is None:
                raise _MissError(f"it reads '{t}' besides its input '{x}' (a mask or a key / "
                            "value from elsewhere); NetBuilder's MultiHeadAttention reads "
                            "one sequence, with no mask or the causal one")
            stack.append(p)
    region = [n for n in rw.nodes if id(n) in inside]
    dep, keep = {x}, set()
    outs = {o.name for o in rw.outputs}
    for n in region:
        from_x = any(t in dep for t in n.input)
        if from_x:
            dep.update(t for t in n.output if t)
        for t in n.output:
            if not t or t == y:
                continue
            if t in outs or any(id(c) not in inside for c in cons.get(t, [])):
                if from_x and t not in shapes:
                    raise _MissError(f"'{t}' ({label(n)}) inside the attention is read outside "
                                     "it (e.g. the attention weights, need_weights=True)")
                keep.add(id(n))  # sizes or constants others read too: kept, with their inputs
    stack = [n for n in region if id(n) in keep]
    while stack:
        for t in stack.pop().input:
            p = prod.get(t)
            if p is not None and id(p) in inside and id(p) not in keep:
                keep.add(id(p))
                stack.append(p)
    return region, keep


def _run_region(rw: Any, region: list[Any], x: str, y: str, xs: np.ndarray) -> np.ndarray:
    onnx, h = rw.onnx, rw.h
    from onnx.reference import ReferenceEvaluator
    used = {t for n in region for t in n.input if t in rw.consts}
    inits = [onnx.numpy_helper.from_array(np.asarray(rw.consts[t]), t) for t in sorted(used)]
    graph = h.make_graph(region, "attention",
                         [h.make_tensor_value_info(x, onnx.TensorProto.FLOAT, None)],
                         [h.make_tensor_value_info(y, onnx.TensorProto.FLOAT, None)],
                         initializer=inits)
    m = h.make_model(graph, opset_imports=list(rw.model.opset_import))
    m.ir_version = rw.model.ir_version
    try:
        return np.asarray(ReferenceEvaluator(m).run(None, {x: xs})[0], np.float64)
    except Exception as exc:  # a region onnx.reference cannot run is not matched
        raise _MissError(f"running it on a test input failed ({type(exc).__name__})") from None


def _verify(rw: Any, reference: Callable[..., Any], region: list[Any], x: str, y: str,
            steps: int, e: int, m1: Any, weights: tuple[np.ndarray, ...]) -> tuple[int, bool]:
    """(heads, causal) for which NetBuilder's attention computes what the region does."""
    params = dict(zip(("in_proj_weight", "in_proj_bias", "out_proj_weight", "out_proj_bias"),
                      weights, strict=True))
    rng = np.random.default_rng(0)
    runs = []
    for n in [rw.batch or 2]:  # the replacement keeps any batch size, whatever the region did
        xs = rng.normal(0.0, 1.0, (n, steps, e)).astype(np.float32)
        got = _run_region(rw, region, x, y, xs)
        if got.shape != xs.shape:
            raise _MissError(f"it computes {list(got.shape)} from {list(xs.shape)}, not a sequence "
                        "of the same shape")
        runs.append((xs, got))
    hint = rw.shapes.get(m1.output[0]) or ()
    first = [hint[1]] if len(hint) == 4 and isinstance(hint[1], int) else \
        [hint[0] // rw.batch] if len(hint) == 3 and isinstance(hint[0], int) and rw.batch else []
    cands = [h for h in first if h >= 1 and e % h == 0]
    cands += [h for h in range(1, e + 1) if e % h == 0 and h not in cands]
    for heads in cands:
        for causal in (False, True) if steps > 1 else (False,):
            if all(np.max(np.abs(reference(xs, params, heads, causal, 0.0, None)[0]
                                 - got)) <= TOLERANCE * max(np.max(np.abs(got)), 1e-12)
                   for xs, got in runs):
                return heads, causal
    raise _MissError("it does not compute multi-head attention with the weights of its "
                "projections for any head count, with no mask or the causal one (another "
                "mask, scale or head layout)")


def _replace(rw: Any, soft: Any, region: list[Any], keep: set[int], x: str, y: str,
             steps: int, heads: int, causal: bool, params: dict[str, np.ndarray]) -> None:
    base = soft.name.rsplit("/", 1)[0] if "/" in (soft.name or "") else ""
    nid = re.sub(r"[^A-Za-z0-9_]", "_", base).strip("_") or "attention"
    layer = SimpleNamespace(id=rw.fresh(nid), p={"heads": heads, "causal": causal,
                                                 "dropout": 0.0},
                            embed=params["out_proj_weight"].shape[0], in_shapes=[(steps, 0)])
    b = _Builder(rw, y)
    write_attention(layer, b, x, y, {k: v.astype(np.float32) for k, v in params.items()})
    last = max(rw.nodes.index(n) for n in region)
    gone = {id(n) for n in region if id(n) not in keep}
    at = sum(1 for n in rw.nodes[:last] if id(n) not in gone)
    rw.nodes = [n for n in rw.nodes if id(n) not in gone]
    rw.nodes[at:at] = b.nodes
    rw.notes.append(f"{label(soft)}: the attention written op by op from '{x}' to '{y}' "
                    f"({len(gone)} nodes) is a MultiHeadAttention, {heads} head"
                    f"{'' if heads == 1 else 's'}{', causal' if causal else ''}")


def misses_text(misses: list[str]) -> str:
    """What the refusal adds for attention candidates that did not match."""
    return ("it holds attention written op by op that NetBuilder could not read as its "
            "MultiHeadAttention (" + "; ".join(misses) + "). NetBuilder imports "
            "nn.MultiheadAttention(batch_first=True) called as mha(x, x, x) with no mask or "
            "the causal one (also inside nn.TransformerEncoderLayer), as torch.onnx.export "
            "writes it; otherwise build the block from NetBuilder's MultiHeadAttention, "
            "LayerNorm and Dense layers and load the weights")


__all__ = ["misses_text", "rewrite_attention"]
