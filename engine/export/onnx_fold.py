"""Constant folding for the ONNX importer.

Exporters leave arithmetic on constants in the graph (``torch.onnx.export`` writes
Transpose / Cast / Mul on weights, Constant nodes, and the Shape → Gather → Unsqueeze →
Concat chains of ``x.view(x.size(0), -1)`` or of a zero initial RNN state). ``fold_node``
evaluates one such node on:

- ``np.ndarray``: a constant;
- ``SymInts``: a small integer tensor (a shape or a piece of one) some of whose entries are
  the batch size or unknown, e.g. ``Shape(x)`` = [N, 3, 32, 32];
- ``Filled``: a tensor of one value whose shape involves the batch size (``ConstantOfShape``
  of [1, N, 64]: a zero initial state).

Sizes are checked before anything is allocated (``MAX_FOLD_ELEMENTS``): a damaged file that
asks for 2^40 zeros gets an OnnxImportError, not a MemoryError.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import numpy as np

from .onnx_import_ops import OnnxImportError

# The largest constant folding creates at once, and in all, beyond the model's own weights
# (a fold of a weight, e.g. its Transpose or Cast, may be as large as that weight).
MAX_FOLD_ELEMENTS = 1 << 24
MAX_FOLD_TOTAL = 1 << 26

# Entry kinds of a SymInts.
KNOWN, BATCH, UNKNOWN = 0, 1, 2

# Ops fold_node evaluates (when every input it needs is known).
FOLD_OPS = frozenset({
    "Identity", "Cast", "CastLike", "Transpose", "Reshape", "Flatten", "Unsqueeze", "Squeeze",
    "Concat", "Gather", "Slice", "Shape", "Size", "ConstantOfShape", "Expand", "Tile", "Range",
    "Add", "Sub", "Mul", "Div", "Neg", "Abs", "Sqrt", "Reciprocal", "Floor", "Ceil", "Min",
    "Max", "Equal", "Where", "Not", "MatMul", "Pow"})


class FoldError(OnnxImportError):
    """A constant computation in the file is impossible or too large to carry out."""


@dataclass
class SymInts:
    """An int64 tensor (rank ≤ 1) whose entries are numbers, the batch size or unknown.

    ``values`` holds the numbers (1 where the entry is not KNOWN); ``kinds`` the entry kinds."""

    values: np.ndarray
    kinds: np.ndarray

    @staticmethod
    def of(values: Sequence[int | str | None]) -> SymInts:
        """From a list of ints, ``"N"`` (the batch size) and None (unknown)."""
        kinds = np.array([BATCH if v == "N" else UNKNOWN if v is None else KNOWN
                          for v in values], np.int8)
        vals = np.array([v if k == KNOWN else 1 for v, k in zip(values, kinds)], np.int64)
        return SymInts(vals, kinds)

    def simplify(self) -> np.ndarray | SymInts:
        """A plain array when every entry is a number."""
        return self.values.copy() if not self.kinds.any() else self

    @property
    def has_unknown(self) -> bool:
        return bool((self.kinds == UNKNOWN).any())

    def entries(self) -> list[int | str | None]:
        return ["N" if k == BATCH else None if k == UNKNOWN else int(v)
                for v, k in zip(self.values.reshape(-1), self.kinds.reshape(-1))]


@dataclass
class Filled:
    """A tensor of ``value`` everywhere, shaped ``shape`` (entries: ints and ``"N"``)."""

    value: Any
    dtype: np.dtype
    shape: tuple[int | str, ...]


Value = np.ndarray | SymInts | Filled


_budget: ContextVar[list[int] | None] = ContextVar("onnx_fold_budget", default=None)


@contextmanager
def fold_budget(weights: Sequence[int] = ()) -> Iterator[None]:
    """Within this block, check_size limits one result to MAX_FOLD_ELEMENTS or the largest of
    ``weights`` (the element counts of the model's initialisers), and all results together to
    MAX_FOLD_TOTAL plus twice the weights: a damaged file cannot make folding allocate more
    than a few times what the file itself holds."""
    per_op = max(MAX_FOLD_ELEMENTS, *weights) if weights else MAX_FOLD_ELEMENTS
    token = _budget.set([per_op, MAX_FOLD_TOTAL + 2 * sum(weights)])
    try:
        yield
    finally:
        _budget.reset(token)


def check_size(node: Any, shape: Sequence[int], what: str = "a constant") -> None:
    """Refuse, before allocating, a result of more than MAX_FOLD_ELEMENTS elements (or a
    negative dimension, or one that would exceed the fold budget of this import)."""
    dims = [int(d) for d in shape]
    where = f"{node.op_type} node '{node.name or (node.output[0] if node.output else '?')}'"
    if any(d < 0 for d in dims):
        raise FoldError(f"{where} computes {what} with a negative dimension {dims}")
    n = math.prod(dims)
    budget = _budget.get() or [MAX_FOLD_ELEMENTS, MAX_FOLD_TOTAL]
    if n > budget[0] or n > budget[1]:
        limit, scope = (budget[0], "at once") if n > budget[0] else (budget[1], "in all")
        raise FoldError(f"{where} would create {what} of {n:,} elements (shape {dims}); "
                        f"NetBuilder folds at most {limit:,} elements {scope} for this model: "
                        "the file is damaged or not a model NetBuilder can hold")
    budget[1] -= n


def _np_dtype(onnx: Any, to: int) -> np.dtype | None:
    """numpy dtype of an ONNX element type, or None for types folding does not handle."""
    tp = onnx.TensorProto
    plain = {tp.FLOAT: np.float32, tp.DOUBLE: np.float64, tp.FLOAT16: np.float16,
             tp.INT64: np.int64, tp.INT32: np.int32, tp.INT16: np.int16, tp.INT8: np.int8,
             tp.UINT8: np.uint8, tp.UINT16: np.uint16, tp.UINT32: np.uint32,
             tp.UINT64: np.uint64, tp.BOOL: np.bool_}
    t = plain.get(int(to))
    return np.dtype(t) if t is not None else None


def _axis(a: int, rank: int, node: Any) -> int:
    if not -rank <= a < rank:
        raise FoldError(f"{node.op_type} node '{node.name or node.output[0]}' uses axis {a} on a "
                        f"tensor of rank {rank}")
    return a + rank if a < 0 else a


def _ints(v: Any) -> list[int] | None:
    """A constant as a list of ints (None when it is not a plain constant)."""
    if not isinstance(v, np.ndarray) or v.dtype.kind not in "iub":
        return None
    return [int(x) for x in v.reshape(-1)]


def _axes_arg(node: Any, attrs: dict[str, Any], ins: list[Any], i: int) -> list[int] | None:
    """Axes from input ``i`` (opset ≥ 13) or the ``axes`` attribute; None when not constant."""
    if len(ins) > i and node.input[i]:
        return _ints(ins[i])
    return [int(a) for a in attrs.get("axes", [])]


# ----- layout ops, applied alike to values and to SymInts entry kinds -----------------------
def _layout(op: str, node: Any, attrs: dict[str, Any], x: np.ndarray,
            ins: list[Any]) -> np.ndarray | None:
    """The result of a data-movement op on ``x`` (other inputs are constants), or None."""
    if op in ("Identity", "Cast", "CastLike"):
        return x
    if op == "Transpose":
        perm = attrs.get("perm", list(range(x.ndim))[::-1])
        if sorted(int(p) for p in perm) != list(range(x.ndim)):
            raise FoldError(f"Transpose node '{node.name or node.output[0]}' has perm {perm} "
                            f"for a tensor of rank {x.ndim}")
        return np.transpose(x, [int(p) for p in perm])
    if op == "Unsqueeze":
        axes = _axes_arg(node, attrs, ins, 1)
        if axes is None:
            return None
        rank = x.ndim + len(axes)
        axes = sorted(_axis(a, rank, node) for a in axes)
        if len(set(axes)) != len(axes):
            raise FoldError(f"Unsqueeze node '{node.name or node.output[0]}' repeats an axis")
        shape = list(x.shape)
        for a in axes:
            shape.insert(a, 1)
        return x.reshape(shape)
    if op == "Squeeze":
        axes = _axes_arg(node, attrs, ins, 1)
        if axes is None:
            return None
        if not axes:
            return x.reshape([d for d in x.shape if d != 1])
        axes = [_axis(a, x.ndim, node) for a in axes]
        if any(x.shape[a] != 1 for a in axes):
            raise FoldError(f"Squeeze node '{node.name or node.output[0]}' squeezes an axis "
                            f"that is not of size 1 (shape {list(x.shape)})")
        return x.reshape([d for i, d in enumerate(x.shape) if i not in axes])
    if op == "Reshape":
        target = _ints(ins[1]) if len(ins) > 1 else None
        if target is None:
            return None
        return x.reshape(_reshape_target(node, attrs, list(x.shape), target))
    if op == "Flatten":
        a = int(attrs.get("axis", 1))
        a = a + x.ndim if a < 0 else a
        if not 0 <= a <= x.ndim:
            raise FoldError(f"Flatten node '{node.name or node.output[0]}' uses axis "
                            f"{attrs.get('axis')} on a tensor of rank {x.ndim}")
        return x.reshape(math.prod(x.shape[:a]), math.prod(x.shape[a:]))
    if op == "Gather":
        idx = ins[1] if len(ins) > 1 else None
        if not isinstance(idx, np.ndarray) or idx.dtype.kind not in "iu":
            return None
        a = _axis(int(attrs.get("axis", 0)), x.ndim, node)
        n = x.shape[a]
        if idx.size and (idx.min() < -n or idx.max() >= n):
            raise FoldError(f"Gather node '{node.name or node.output[0]}' reads index "
                            f"{int(idx.min() if idx.min() < -n else idx.max())} of an axis of "
                            f"size {n}")
        check_size(node, (*x.shape[:a], *idx.shape, *x.shape[a + 1:]))
        return np.take(x, np.where(idx < 0, idx + n, idx).astype(np.int64), axis=a)
    if op == "Slice":
        return _slice(node, attrs, x, ins)
    if op == "Expand":
        shape = _ints(ins[1]) if len(ins) > 1 else None
        if shape is None:
            return None
        out = _broadcast(node, [x.shape, tuple(shape)])
        check_size(node, out)
        return np.broadcast_to(x, out).copy()
    if op == "Tile":
        reps = _ints(ins[1]) if len(ins) > 1 else None
        if reps is None or len(reps) != x.ndim:
            return None
        check_size(node, [d * r for d, r in zip(x.shape, reps)])
        return np.tile(x, reps)
    return None


def _reshape_target(node: Any, attrs: dict[str, Any], have: list[int],
                    target: list[int]) -> list[int]:
    """ONNX Reshape's output shape (0 copies, -1 is inferred) for an input shaped ``have``."""
    size = math.prod(have)
    allow_zero = int(attrs.get("allowzero", 0))
    dims = [have[i] if d == 0 and not allow_zero and i < len(have) else d
            for i, d in enumerate(target)]
    where = f"Reshape node '{node.name or node.output[0]}'"
    if dims.count(-1) > 1 or any(d < -1 for d in dims):
        raise FoldError(f"{where} reshapes to {target}")
    if -1 in dims:
        known = math.prod(d for d in dims if d != -1)
        if known == 0 or size % known:
            raise FoldError(f"{where} cannot reshape {have} to {target}")
        dims = [size // known if d == -1 else d for d in dims]
    if math.prod(dims) != size:
        raise FoldError(f"{where} cannot reshape {have} to {target}")
    return dims


def _slice(node: Any, attrs: dict[str, Any], x: np.ndarray, ins: list[Any]) -> np.ndarray | None:
    if len(ins) > 1:  # opset ≥ 10: starts, ends, axes, steps are inputs
        args = [_ints(ins[i]) if len(ins) > i and node.input[i] else None for i in range(1, 5)]
        starts, ends, axes, steps = args
        if starts is None or ends is None or (len(ins) > 3 and node.input[3] and axes is None) \
                or (len(ins) > 4 and node.input[4] and steps is None):
            return None
    else:
        starts, ends = list(attrs.get("starts", [])), list(attrs.get("ends", []))
        axes, steps = attrs.get("axes"), None
    axes = list(range(len(starts))) if axes is None else axes
    steps = [1] * len(starts) if steps is None else steps
    if not len(starts) == len(ends) == len(axes) == len(steps) or 0 in steps:
        raise FoldError(f"Slice node '{node.name or node.output[0]}' has mismatched starts, "
                        "ends, axes and steps")
    index = [slice(None)] * x.ndim
    for s, e, a, st in zip(starts, ends, axes, steps):
        index[_axis(int(a), x.ndim, node)] = slice(int(s), int(e), int(st))
    return x[tuple(index)]


def _broadcast(node: Any, shapes: list[tuple[int, ...]]) -> tuple[int, ...]:
    try:
        return tuple(int(d) for d in np.broadcast_shapes(*shapes))
    except ValueError:
        raise FoldError(f"{node.op_type} node '{node.name or node.output[0]}' combines shapes "
                        f"{[list(s) for s in shapes]} that do not broadcast") from None


# ----- math on constants ----------------------------------------------------------------------
_UNARY = {"Neg": np.negative, "Abs": np.abs, "Sqrt": np.sqrt, "Reciprocal": np.reciprocal,
          "Floor": np.floor, "Ceil": np.ceil, "Not": np.logical_not}


def _binary(op: str, a: np.ndarray, b: np.ndarray) -> np.ndarray | None:
    with np.errstate(all="ignore"):
        if op == "Add":
            return (a + b).astype(np.result_type(a, b))
        if op == "Sub":
            return (a - b).astype(np.result_type(a, b))
        if op == "Mul":
            return (a * b).astype(np.result_type(a, b))
        if op == "Div":
            if a.dtype.kind in "iu" and b.dtype.kind in "iu":
                if (b == 0).any():
                    return None
                q = np.abs(a) // np.abs(b)  # C-style division truncates toward zero
                return (np.sign(a) * np.sign(b) * q).astype(np.result_type(a, b))
            return (a / b).astype(np.result_type(a, b))
        if op == "Pow":
            return np.power(a, b).astype(a.dtype)
        if op == "Equal":
            return np.equal(a, b)
    return None


def _math(op: str, node: Any, attrs: dict[str, Any], ins: list[np.ndarray],
          onnx: Any) -> np.ndarray | None:
    if op in _UNARY:
        check_size(node, ins[0].shape)
        with np.errstate(all="ignore"):
            return _UNARY[op](ins[0])
    if op in ("Add", "Sub", "Mul", "Div", "Pow", "Equal"):
        if len(ins) != 2:
            return None
        check_size(node, _broadcast(node, [ins[0].shape, ins[1].shape]))
        return _binary(op, ins[0], ins[1])
    if op in ("Min", "Max"):
        check_size(node, _broadcast(node, [x.shape for x in ins]))
        f = np.minimum if op == "Min" else np.maximum
        out = ins[0]
        for x in ins[1:]:
            out = f(out, x)
        return out
    if op == "Where":
        if len(ins) != 3:
            return None
        check_size(node, _broadcast(node, [x.shape for x in ins]))
        return np.where(ins[0].astype(bool), ins[1], ins[2])
    if op == "MatMul":
        a, b = ins
        if a.ndim < 1 or b.ndim < 1 or a.shape[-1] != (b.shape[-2] if b.ndim > 1 else b.shape[0]):
            raise FoldError(f"MatMul node '{node.name or node.output[0]}' multiplies "
                            f"{list(a.shape)} by {list(b.shape)}")
        lead = _broadcast(node, [a.shape[:-2], b.shape[:-2]])
        check_size(node, (*lead, a.shape[-2] if a.ndim > 1 else 1, b.shape[-1] if b.ndim > 1
                          else 1))
        return np.matmul(a, b)
    if op == "Range":
        start, limit, delta = (x.reshape(()) if x.size == 1 else None for x in ins)
        if start is None or limit is None or delta is None or delta == 0:
            return None
        n = max(math.ceil((float(limit) - float(start)) / float(delta)), 0)
        check_size(node, (n,))
        return (start + delta * np.arange(n)).astype(np.result_type(start, limit, delta))
    return None


def _cast_to(onnx: Any, node: Any, attrs: dict[str, Any], ins: list[Any]) -> np.dtype | None:
    if node.op_type == "CastLike":
        like = ins[1] if len(ins) > 1 else None
        return like.dtype if isinstance(like, np.ndarray) else None
    return _np_dtype(onnx, attrs.get("to", 0))


def _const_of_shape_value(attrs: dict[str, Any]) -> np.ndarray:
    v = attrs.get("value")
    return np.zeros(1, np.float32) if v is None else np.asarray(v).reshape(-1)[:1]


# ----- entry ---------------------------------------------------------------------------------
def fold_node(onnx: Any, node: Any, attrs: dict[str, Any], ins: list[Value | None],
              data_shape: Sequence[int | str | None] | None = None) -> list[Value] | None:
    """The values of ``node``'s outputs, or None when they cannot be computed here.

    ``ins``: each input's value (None: data or absent); ``data_shape``: for Shape / Size of a
    data tensor, its shape (ints, ``"N"`` for the batch size, None for unknown)."""
    op = node.op_type
    if op not in FOLD_OPS or len(node.output) != 1:
        return None
    if op in ("Shape", "Size"):
        return _fold_shape(node, attrs, ins, data_shape)
    first = ins[0] if ins else None
    if op == "ConstantOfShape":
        return _fold_const_of_shape(node, attrs, first)
    if isinstance(first, Filled):
        return _fold_filled(onnx, node, attrs, first, ins)
    if op == "Expand" and isinstance(first, np.ndarray) and isinstance(ins[1], SymInts):
        return _expand_uniform(node, first, ins[1])
    if any(isinstance(x, SymInts) for x in ins):
        return _fold_sym(onnx, node, attrs, ins)
    if any(x is None and name for x, name in zip(ins, node.input)) or first is None:
        return None
    if op in ("Cast", "CastLike"):
        to = _cast_to(onnx, node, attrs, ins)
        if to is None:
            return None
        check_size(node, first.shape)
        with np.errstate(all="ignore"):
            return [first.astype(to)]
    if op == "Concat":
        if not ins:
            return None
        rank = ins[0].ndim
        a = _axis(int(attrs.get("axis", 0)), rank, node)
        if any(x.ndim != rank or x.shape[:a] + x.shape[a + 1:] !=
               ins[0].shape[:a] + ins[0].shape[a + 1:] for x in ins):
            raise FoldError(f"Concat node '{node.name or node.output[0]}' joins tensors of "
                            f"shapes {[list(x.shape) for x in ins]} along axis {a}")
        check_size(node, (sum(x.shape[a] for x in ins), *ins[0].shape[:a],
                          *ins[0].shape[a + 1:]))
        return [np.concatenate(ins, axis=a)]
    out = _layout(op, node, attrs, first, ins)
    if out is None:
        out = _math(op, node, attrs, ins, onnx)
    return None if out is None else [np.asarray(out)]


def _fold_shape(node: Any, attrs: dict[str, Any], ins: list[Any],
                data_shape: Sequence[int | str | None] | None) -> list[Value] | None:
    x = ins[0] if ins else None
    if isinstance(x, np.ndarray):
        dims: list[int | str | None] = list(x.shape)
    elif isinstance(x, Filled):
        dims = list(x.shape)
    elif isinstance(x, SymInts):
        dims = list(x.values.shape)
    elif data_shape is not None:
        dims = list(data_shape)
    else:
        return None
    if node.op_type == "Size":
        if any(not isinstance(d, int) for d in dims):
            return None
        return [np.array(math.prod(dims), np.int64)]
    rank = len(dims)
    start = int(attrs.get("start", 0))
    end = int(attrs.get("end", rank))
    start = min(max(start + rank if start < 0 else start, 0), rank)
    end = min(max(end + rank if end < 0 else end, 0), rank)
    return [SymInts.of(dims[start:end]).simplify()]


def _fold_const_of_shape(node: Any, attrs: dict[str, Any], shape: Any) -> list[Value] | None:
    value = _const_of_shape_value(attrs)
    if isinstance(shape, np.ndarray):
        dims = _ints(shape)
        if dims is None:
            return None
        check_size(node, dims)
        return [np.full(dims, value[0] if value.size else 0, value.dtype)]
    if isinstance(shape, SymInts) and not shape.has_unknown and shape.values.ndim == 1:
        dims = shape.entries()
        check_size(node, [d for d in dims if isinstance(d, int)])
        return [Filled(value.reshape(-1)[0].item() if value.size else 0, value.dtype,
                       tuple(dims))]
    return None


def _expand_uniform(node: Any, x: np.ndarray, shape: SymInts) -> list[Value] | None:
    """Expand of a one-valued constant to a shape involving the batch size."""
    if shape.has_unknown or shape.values.ndim != 1 or x.size == 0 or \
            not (x == x.reshape(-1)[0]).all():
        return None
    dims = shape.entries()
    rank = max(len(dims), x.ndim)
    xs = [1] * (rank - x.ndim) + list(x.shape)
    ds: list[int | str] = [1] * (rank - len(dims)) + dims
    out: list[int | str] = []
    for a, b in zip(xs, ds):
        if b == "N":
            # x's own size here must be 1 (broadcast) or the batch size it was traced with
            out.append("N")
        elif a == 1 or b == 1 or a == b:
            out.append(max(a, int(b)))
        else:
            raise FoldError(f"Expand node '{node.name or node.output[0]}' cannot expand "
                            f"{list(x.shape)} to {dims}")
    check_size(node, [d for d in out if isinstance(d, int)])
    return [Filled(x.reshape(-1)[0].item(), x.dtype, tuple(out))]


# Stands for the batch size while a Filled tensor's shape goes through a layout op (a prime
# no real dimension of a foldable tensor has; the op works on a zero-memory broadcast view).
_BATCH_PROXY = 1_000_003


def _fold_filled(onnx: Any, node: Any, attrs: dict[str, Any], x: Filled,
                 ins: list[Any]) -> list[Value] | None:
    """Identity / Cast / Transpose / Slice / Squeeze / Unsqueeze of a one-valued tensor (the
    per-layer Slice of a stacked RNN's zero state)."""
    op = node.op_type
    if op in ("Cast", "CastLike"):
        to = _cast_to(onnx, node, attrs, ins)
        if to is None:
            return None
        with np.errstate(all="ignore"):
            return [Filled(np.asarray(x.value, x.dtype).astype(to).item(), to, x.shape)]
    if op not in ("Identity", "Transpose", "Slice", "Squeeze", "Unsqueeze") or \
            any(v is None and name for v, name in zip(ins[1:], node.input[1:])):
        return None
    dims = [_BATCH_PROXY if d == "N" else int(d) for d in x.shape]
    view = np.broadcast_to(np.zeros((), np.int8), dims)
    out = _layout(op, node, attrs, view, ins)
    if out is None or list(out.shape).count(_BATCH_PROXY) != dims.count(_BATCH_PROXY):
        return None  # the batch axis was cut: its size would depend on the batch
    return [Filled(x.value, x.dtype, tuple("N" if d == _BATCH_PROXY else int(d)
                                           for d in out.shape))]


def _fold_sym(onnx: Any, node: Any, attrs: dict[str, Any], ins: list[Any]) -> list[Value] | None:
    """Layout ops on SymInts (Gather / Concat / Unsqueeze... of shape entries)."""
    op = node.op_type
    if op in ("Cast", "CastLike"):
        to = _cast_to(onnx, node, attrs, ins)
        if to is None or to.kind not in "iu":
            return None
    if op == "Concat":
        parts = [x if isinstance(x, SymInts) else SymInts(np.asarray(x, np.int64),
                                                         np.zeros(np.shape(x), np.int8))
                 for x in ins if x is not None]
        if len(parts) != len(ins) or any(p.values.ndim != 1 for p in parts):
            return None
        return [SymInts(np.concatenate([p.values for p in parts]),
                        np.concatenate([p.kinds for p in parts])).simplify()]
    x = ins[0]
    if not isinstance(x, SymInts) or any(isinstance(v, SymInts) for v in ins[1:]):
        return None  # arithmetic on the batch size: not followed
    if any(v is None and name for v, name in zip(ins[1:], node.input[1:])):
        return None
    vals = _layout(op, node, attrs, x.values, ins)
    kinds = _layout(op, node, attrs, x.kinds, ins)
    if vals is None or kinds is None or vals.ndim > 1:
        return None
    return [SymInts(np.asarray(vals, np.int64), np.asarray(kinds, np.int8)).simplify()]


__all__ = ["BATCH", "FOLD_OPS", "KNOWN", "MAX_FOLD_ELEMENTS", "MAX_FOLD_TOTAL", "UNKNOWN", "Filled",
           "FoldError", "SymInts", "Value", "check_size", "fold_budget", "fold_node"]
