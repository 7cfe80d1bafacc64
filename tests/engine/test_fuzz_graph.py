"""Mutated model files either load or raise NetBuilderError with a message; nothing else escapes."""

import json

from fuzzcases import paths, set_at
from graphdocs import chain_doc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import engine
from engine.graph import graph_from_bytes

BASE = chain_doc([1, 8, 8], [("Flatten", {}), ("Dense", {"units": 4}), ("Dense", {"units": 3})])
BASE["ui"] = {"in": {"pos": [0, 0]}}
BASE["training"] = {"epochs": 2}
BASE_BYTES = json.dumps(BASE).encode()

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12)


ALL_PATHS = paths(BASE)


def must_load_or_refuse(raw: bytes) -> None:
    try:
        g = graph_from_bytes(raw, "fuzz")
    except engine.NetBuilderError as exc:
        assert str(exc).strip(), "an error without a message"
        return
    g.infer_shapes()
    engine.compile(g)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(path=st.sampled_from(ALL_PATHS), value=json_values)
def test_replacing_any_value(path, value):
    doc = json.loads(BASE_BYTES)
    doc = set_at(doc, path, value)
    must_load_or_refuse(json.dumps(doc).encode())


@settings(max_examples=100, deadline=None)
@given(cut=st.integers(0, len(BASE_BYTES)))
def test_truncation(cut):
    must_load_or_refuse(BASE_BYTES[:cut])


@settings(max_examples=100, deadline=None)
@given(data=st.binary(max_size=200))
def test_random_bytes(data):
    must_load_or_refuse(data)


@settings(max_examples=60, deadline=None)
@given(pos=st.integers(0, len(BASE_BYTES) - 1), junk=st.binary(min_size=1, max_size=8))
def test_byte_flips(pos, junk):
    must_load_or_refuse(BASE_BYTES[:pos] + junk + BASE_BYTES[pos + len(junk):])


def test_deep_nesting():
    must_load_or_refuse(b"[" * 100_000 + b"]" * 100_000)
    doc = json.loads(BASE_BYTES)
    doc["nodes"][1]["params"] = json.loads("[" * 500 + "]" * 500)
    must_load_or_refuse(json.dumps(doc).encode())


def test_huge_string():
    doc = json.loads(BASE_BYTES)
    doc["nodes"][1]["type"] = "x" * 10_000_000
    must_load_or_refuse(json.dumps(doc).encode())
    doc = json.loads(BASE_BYTES)
    doc["name"] = "n" * 10_000_000
    must_load_or_refuse(json.dumps(doc).encode())


@settings(max_examples=50, deadline=None)
@given(dims=st.lists(st.integers(-(2**40), 2**40), min_size=0, max_size=6))
def test_input_shapes(dims):
    doc = json.loads(BASE_BYTES)
    doc["nodes"][0]["params"]["shape"] = dims
    must_load_or_refuse(json.dumps(doc).encode())
