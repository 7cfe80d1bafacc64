"""Kernel signatures (module, function name, Numba argument types) as JSON lines, for the
processes that compile kernels for another one (``engine.compile_ahead``, ``serial_first``).
"""

from __future__ import annotations

import json
from typing import Any

Signature = tuple[str, str, tuple[Any, ...]]  # module, function name, Numba argument types


def type_to_json(t: Any) -> Any:
    """A Numba argument type as JSON (arrays, scalars and tuples of them; else ValueError)."""
    from numba.core import types

    if isinstance(t, types.Array):
        return ["array", str(t.dtype), t.ndim, t.layout, not t.mutable]
    if isinstance(t, types.UniTuple):
        return ["unituple", type_to_json(t.dtype), t.count]
    if isinstance(t, types.Tuple):
        return ["tuple", [type_to_json(e) for e in t.types]]
    if isinstance(t, types.Boolean | types.Integer | types.Float):
        return ["scalar", str(t)]
    raise ValueError(f"no JSON form for {t}")


def type_from_json(j: Any) -> Any:
    """The Numba type ``type_to_json`` wrote as ``j``."""
    import numpy as np
    from numba.core import types
    from numba.np.numpy_support import from_dtype

    kind = j[0]
    if kind == "array":
        return types.Array(from_dtype(np.dtype(j[1])), j[2], j[3], readonly=j[4])
    if kind == "unituple":
        return types.UniTuple(type_from_json(j[1]), j[2])
    if kind == "tuple":
        return types.Tuple([type_from_json(e) for e in j[1]])
    if kind == "scalar":
        return types.boolean if j[1] == "bool" else from_dtype(np.dtype(j[1]))
    raise ValueError(f"unknown type {j!r}")


def encode(sigs: list[Signature]) -> str:
    """``sigs`` as one JSON line (ValueError: an argument type with no JSON form)."""
    return json.dumps([[m, n, [type_to_json(t) for t in ts]] for m, n, ts in sigs])


def decode(text: str) -> list[Signature]:
    """The signatures of a line ``encode`` wrote."""
    return [(m, n, tuple(type_from_json(t) for t in ts)) for m, n, ts in json.loads(text)]


__all__ = ["Signature", "decode", "encode", "type_from_json", "type_to_json"]
