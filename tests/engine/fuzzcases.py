"""What the fuzz tests share with benchmarks/fuzz_long.py: the ``Case`` wrapper, JSON
mutations, a scratch folder, and the rule every loader must keep (load, or NetBuilderError
with a message)."""

from __future__ import annotations

import atexit
import json
import shutil
import tempfile
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

import engine

BIG = 10_000_000


class Case:
    """A generated input: ``data`` (bytes, or files for a folder) and how it was made. Not a
    dataclass: hypothesis prints this short repr, not 10 MB of ``data``."""

    def __init__(self, label: str, data: Any) -> None:
        self.label = label
        self.data = data

    def __repr__(self) -> str:
        if isinstance(self.data, bytes | bytearray):
            return f"Case({self.label!r}, {len(self.data)} bytes, head={bytes(self.data[:48])!r})"
        return f"Case({self.label!r}, {str(self.data)[:300]})"


_SCRATCH: list[Path] = []


def scratch() -> Path:
    """A folder of this process for the files under test (removed at exit)."""
    if not _SCRATCH:
        d = Path(tempfile.mkdtemp(prefix="nb-fuzz-"))
        atexit.register(shutil.rmtree, d, True)
        _SCRATCH.append(d)
    return _SCRATCH[0]


def load_or_refuse(load: Callable[[], Any]) -> tuple[str, Any]:
    """("ok", result) or ("refused", error); any other exception escapes (the bug)."""
    try:
        return "ok", load()
    except engine.NetBuilderError as exc:
        assert str(exc).strip() and exc.message.strip(), "an error without a message"
        assert len(exc.message) < 5000, f"a message of {len(exc.message)} characters"
        return "refused", exc


def refusal_and_peak_mb(load: Callable[[], Any]) -> tuple[str, float]:
    """Run ``load_or_refuse(load)`` under tracemalloc: (outcome, peak traced MB)."""
    tracemalloc.start()
    try:
        outcome, _ = load_or_refuse(load)
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return outcome, peak / 2**20


# ----- JSON documents -----------------------------------------------------------------------
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12)


def paths(doc: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += paths(v, (*prefix, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += paths(v, (*prefix, i))
    return out


def set_at(doc: Any, path: tuple, value: Any) -> Any:
    if not path:
        return value
    cur = doc
    for p in path[:-1]:
        cur = cur[p]
    cur[path[-1]] = value
    return doc


def _nested(depth: int) -> Any:
    v: Any = []
    for _ in range(depth):
        v = [v]
    return v


@st.composite
def json_doc_bytes(draw: st.DrawFn, base: dict[str, Any]) -> Case:
    """``base`` (a JSON object) damaged in one way, serialised; sometimes not JSON at all."""
    doc = json.loads(json.dumps(base))
    where = draw(st.sampled_from(paths(doc)))
    containers = [p for p in paths(doc) if isinstance(_get(doc, p), dict)]
    kind = draw(st.sampled_from(
        ["value", "value", "unknown key", "drop key", "not utf-8", "big string", "deep",
         "huge int", "huge float", "truncate", "junk"]))
    if kind == "value":
        doc = set_at(doc, where, draw(json_values))
    elif kind == "unknown key":
        d = _get(doc, draw(st.sampled_from(containers)))
        d[draw(st.text(max_size=12))] = draw(json_values)
    elif kind == "drop key":
        d = _get(doc, draw(st.sampled_from(containers)))
        if d:
            d.pop(draw(st.sampled_from(sorted(d))))
    elif kind == "big string":
        doc = set_at(doc, where, "x" * draw(st.sampled_from([1000, BIG])))
    elif kind == "deep":
        depth = draw(st.sampled_from([50, 400, 900, 3000]))
        if depth <= 900:
            doc = set_at(doc, where, _nested(depth))
        else:
            return Case(f"deep {depth}", b"[" * depth + b"]" * depth)
    text = json.dumps(doc)
    if kind == "not utf-8":
        pos = draw(st.integers(0, len(text)))
        raw = text.encode()
        return Case(kind, raw[:pos] + draw(st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80"]))
                    + raw[pos:])
    if kind in ("huge int", "huge float"):
        lit = "9" * draw(st.sampled_from([20, 400, 5000])) + ("e999" if kind == "huge float" else "")
        marker = "\"__nb_fuzz_marker__\""
        text = json.dumps(set_at(doc, where, "__nb_fuzz_marker__")).replace(marker, lit)
    if kind == "truncate":
        text = text[:draw(st.integers(0, len(text)))]
    if kind == "junk":
        return Case(kind, draw(st.binary(max_size=64)))
    return Case(f"{kind} at {list(where)[:6]}", text.encode())


def _get(doc: Any, path: tuple) -> Any:
    for p in path:
        doc = doc[p]
    return doc
