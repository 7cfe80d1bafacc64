"""Mutated bundles either load (and work) or raise NetBuilderError with a message; nothing
else escapes, and a member that claims or inflates to a huge size is refused before it is
inflated. ``bundle_cases`` and ``check_bundle`` also drive benchmarks/fuzz_long.py."""

from __future__ import annotations

import functools
import io
import json
import time
import zipfile
import zlib

import numpy as np
import pytest
from fuzzcases import Case, json_doc_bytes, load_or_refuse, refusal_and_peak_mb, scratch
from fuzzzip import DEFLATED, STORED, Member, npy_bytes, npy_header, npz_bytes, zero_bomb, zip_bytes
from graphdocs import chain_doc, graph_doc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import engine
from engine.bundle import HISTORY, MANIFEST, MODEL, WEIGHTS
from engine.data.transforms import Normalizer

NAMES = (MANIFEST, MODEL, WEIGHTS, HISTORY)
EVIL_NAMES = ["../x", "../../etc/passwd", "/abs/x", "a/../../b", "C:\\x", "C:x", "a\\..\\b",
              "x\x00y", "..", "./../x", b"\xff\xfe.json"]
DTYPES = ["<f4", ">f8", "<f2", "<i4", "|u1", "|b1", "<c8", "<U3", "|S2", "<M8[s]", "|V4",
          [("a", "<f4"), ("b", "<i2")]]


@functools.cache
def base() -> dict[str, bytes]:
    """The members of a small valid bundle (Dense, BatchNorm buffers, history, manifest)."""
    g = engine.Graph.from_dict(chain_doc([6], [("Dense", {"units": 5}), ("BatchNorm", {}),
                                               ("ReLU", {}), ("Dense", {"units": 3})]))
    g.ui = {"in": {"pos": [0, 0]}, "n0": {"pos": [150, 0]}}
    g.training = {"dataset": "spirals", "epochs": 2, "optimizer": {"type": "adam", "lr": 0.01}}
    net = engine.compile(g, seed=1)
    hist = {"epoch": [1, 2], "train_loss": [1.0, 0.5], "batch_step": [1, 2],
            "batch_loss": [1.1, 0.6]}
    path = engine.save_bundle(scratch() / "base.nbmodel", net, history=hist,
                              preprocess={"mode": "scale", "min": 0.0, "max": 1.0},
                              dataset={"name": "spirals", "class_names": ["a", "b", "c"]},
                              metrics={"val_accuracy": 0.5})
    with zipfile.ZipFile(path) as zf:
        return {n: zf.read(n) for n in zf.namelist()}


@functools.cache
def base_state() -> dict[str, np.ndarray]:
    with np.load(io.BytesIO(base()[WEIGHTS]), allow_pickle=False) as f:
        return {k: f[k] for k in f.files}


def check_bundle(case: Case) -> str:
    """Load ``case`` as a bundle: "ok" (and the bundle works) or "refused"."""
    p = scratch() / "case.nbmodel"
    p.write_bytes(case.data)
    outcome, b = load_or_refuse(lambda: engine.load_bundle(p))
    if outcome == "ok":
        assert isinstance(b.name, str) and (b.class_names is None or
                                            all(isinstance(c, str) for c in b.class_names))
        if b.preprocess is not None:
            load_or_refuse(lambda: Normalizer.from_json(b.preprocess))
        shape = b.graph.infer_shapes()[b.graph.input_ids()[0]]
        out = b.net.forward(np.zeros((2, *shape), np.float32))
        assert out.shape[0] == 2
    return outcome


# ----- model files --------------------------------------------------------------------------
MODEL_DOC = graph_doc(
    [("in", "Input", {"shape": [1, 8, 8]}),
     ("c1", "Conv2D", {"filters": 4, "kernel_size": 3, "padding": "same"}),
     ("bn", "BatchNorm", {}), ("r1", "ReLU", {}),
     ("c2", "Conv2D", {"filters": 4, "kernel_size": 1}), ("cat", "Concat", {"axis": 0}),
     ("c3", "Conv2D", {"filters": 8, "kernel_size": 3, "padding": 1}), ("add", "Add", {}),
     ("pool", "MaxPool2D", {"pool_size": 2}), ("fl", "Flatten", {}),
     ("d1", "Dense", {"units": 8, "init": "xavier"}), ("drop", "Dropout", {"rate": 0.3}),
     ("d2", "Dense", {"units": 3}), ("out", "Output", {"loss": "cross_entropy"})],
    [("in", "c1"), ("c1", "bn"), ("bn", "r1"), ("r1", "c2"), ("r1", "cat", 0), ("c2", "cat", 1),
     ("cat", "c3"), ("c3", "add", 0), ("cat", "add", 1), ("add", "pool"), ("pool", "fl"),
     ("fl", "d1"), ("d1", "drop"), ("drop", "d2"), ("d2", "out")],
    name="fuzzed", ui={"in": {"pos": [0, 0]}, "c1": {"pos": [0, 120]}},
    training={"dataset": "digits", "epochs": 2, "batch_size": 16,
              "optimizer": {"type": "sgd", "lr": 0.01, "momentum": 0.9}})


def model_file_cases() -> st.SearchStrategy[Case]:
    return json_doc_bytes(MODEL_DOC)


def check_model(case: Case) -> str:
    """Open ``case`` as a model file: "ok" (and it compiles and runs) or "refused"."""
    p = scratch() / "case.json"
    p.write_bytes(case.data)
    drawn, g = load_or_refuse(lambda: engine.load_graph(p, validate=False))  # as the canvas
    if drawn == "ok":
        g.diagnose()  # the canvas's analysis: never raises for a problem of the graph
    outcome, g = load_or_refuse(lambda: engine.load_graph(p))
    if outcome == "ok":
        shapes = g.infer_shapes()
        params = sum(layer.param_count() for layer in g.build_layers().values())
        if params < 2_000_000:
            net = engine.compile(g)
            x = {i: np.zeros((2, *shapes[i]), np.float32) for i in g.input_ids()}
            outcome, _ = load_or_refuse(lambda: net.forward(x))
    return outcome


# ----- weights.npz payloads ---------------------------------------------------------------
@st.composite
def weights_payload(draw: st.DrawFn) -> tuple[str, bytes]:
    state = dict(base_state())
    key = draw(st.sampled_from(sorted(state)))
    kind = draw(st.sampled_from(["dtype", "objects", "header", "missing", "extra", "shape",
                                 "junk member", "truncated member", "duplicate", "inner bomb",
                                 "deflated", "fortran", "junk"]))
    arrays: dict[str, bytes | np.ndarray] = dict(state)
    if kind == "dtype":
        dt = draw(st.sampled_from(DTYPES))
        arrays[key] = np.zeros(state[key].shape, np.dtype(dt))
    elif kind == "objects":
        arrays[key] = npy_bytes(np.array([None, {"k": 1}, print], dtype=object))
    elif kind == "header":
        descr = draw(st.sampled_from(["<f4", "O", "<f8", "|V0", "<U1000000000", "bogus", 7,
                                      [("a", "O")], [("a",)], "<f4" * 3]))
        shape = draw(st.one_of(
            st.lists(st.integers(-(2**70), 2**70), max_size=5).map(tuple),
            st.sampled_from([(2**31, 2**31), (2**62,), (-1,), (10**40,), "nope", [3], (True,)])))
        head = npy_header(descr, shape, draw(st.sampled_from([False, True, 1, "yes"])),
                          draw(st.sampled_from([1, 2, 3, 9])))
        arrays[key] = head + draw(st.binary(max_size=64))
    elif kind == "missing":
        arrays.pop(key)
    elif kind == "extra":
        arrays[draw(st.text(min_size=1, max_size=20))] = np.zeros(3, np.float32)
    elif kind == "shape":
        dims = draw(st.lists(st.integers(0, 7), max_size=3))
        arrays[key] = np.zeros(dims, np.float32)
    elif kind == "junk member":
        arrays[key] = draw(st.binary(max_size=200))
    elif kind == "truncated member":
        raw = npy_bytes(state[key])
        arrays[key] = raw[:draw(st.integers(0, len(raw) - 1))]
    elif kind == "fortran":
        arrays[key] = np.asfortranarray(state[key])
    elif kind == "junk":
        return kind, draw(st.binary(max_size=300))
    members = [Member(f"{k}.npy", v if isinstance(v, bytes) else npy_bytes(v),
                      DEFLATED if kind == "deflated" else STORED) for k, v in arrays.items()]
    if kind == "duplicate":
        members.append(Member(f"{key}.npy", npy_bytes(np.ones_like(state[key]))))
    if kind == "inner bomb":
        size = draw(st.sampled_from([2**20, 8 * 2**20]))
        claim = draw(st.sampled_from([size, 2**32 - 1, 2**36, 10]))
        members.append(Member("bomb.npy", zero_bomb(size), DEFLATED, claim=claim, raw=True))
    return f"weights {kind} ({key})", zip_bytes(members)


# ----- whole bundles ------------------------------------------------------------------------
@st.composite
def bundle_cases(draw: st.DrawFn) -> Case:
    """A valid bundle damaged in one or two ways: a member replaced, names, bombs, bytes."""
    members = [Member(n, d, STORED if n == WEIGHTS else DEFLATED) for n, d in base().items()]
    kind = draw(st.sampled_from(["json", "json", "weights", "weights", "evil name",
                                 "duplicate", "drop", "many", "bomb", "method", "crc",
                                 "unchanged"]))
    label = kind
    i = draw(st.integers(0, len(members) - 1))
    if kind == "json":
        name = draw(st.sampled_from([MANIFEST, MODEL, HISTORY]))
        i = [m.name for m in members].index(name)
        doc_case = draw(json_doc_bytes(json.loads(base()[name])))
        members[i] = Member(name, doc_case.data, draw(st.sampled_from([STORED, DEFLATED])))
        label = f"{name}: {doc_case.label}"
    elif kind == "weights":
        wl, payload = draw(weights_payload())
        i = [m.name for m in members].index(WEIGHTS)
        members[i] = Member(WEIGHTS, payload)
        label = wl
    elif kind == "evil name":
        name = draw(st.sampled_from(EVIL_NAMES))
        members.insert(draw(st.integers(0, len(members))), Member(name, b"x"))
        label = f"evil name {name!r}"
    elif kind == "duplicate":
        other = Member(members[i].name, draw(st.binary(max_size=40)))
        members.insert(draw(st.integers(0, len(members))), other)
        label = f"duplicate {other.name}"
    elif kind == "drop":
        label = f"drop {members.pop(i).name}"
    elif kind == "many":
        members += [Member(f"extra{k}.txt", b"") for k in range(draw(st.integers(1, 80)))]
    elif kind == "bomb":
        size = draw(st.sampled_from([2**20, 16 * 2**20, 70 * 2**20]))
        claim = draw(st.sampled_from([size, 2**32 - 1, 2**31, 2**40, 100]))
        members[i] = Member(members[i].name, zero_bomb(size), DEFLATED, claim=claim, raw=True)
        label = f"bomb {members[i].name} {size} claims {claim}"
    elif kind == "method":
        members[i].method = draw(st.sampled_from([1, 6, 9, 12, 14, 93, 99, 0xFFFF]))
        label = f"{members[i].name} method {members[i].method}"
    elif kind == "crc":
        members[i].crc = draw(st.integers(0, 2**32 - 1))
    raw = zip_bytes(members)
    damage = draw(st.sampled_from(["none", "none", "truncate", "flip"]))
    if damage == "truncate":
        raw = raw[:draw(st.integers(0, len(raw) - 1))]
    elif damage == "flip":
        pos = draw(st.integers(0, len(raw) - 1))
        junk = draw(st.binary(min_size=1, max_size=8))
        raw = raw[:pos] + junk + raw[pos + len(junk):]
    return Case(f"{label}; {damage}", raw)


FAST = settings(max_examples=400, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@FAST
@given(case=bundle_cases())
def test_mutated_bundles_load_or_refuse(case):
    check_bundle(case)


@FAST
@given(case=model_file_cases())
def test_mutated_model_files_load_or_refuse(case):
    check_model(case)


@settings(max_examples=60, deadline=None, database=None)
@given(case=st.builds(lambda d: Case("random bytes", d), st.binary(max_size=400)))
def test_random_bytes_are_refused(case):
    assert check_bundle(case) == "refused"


def test_the_unchanged_bundle_loads():
    assert check_bundle(Case("base", zip_bytes([Member(n, d) for n, d in base().items()]))) \
        == "ok"


@pytest.mark.parametrize("name", [MANIFEST, MODEL, WEIGHTS, HISTORY])
def test_bombs_are_refused_before_they_are_inflated(name):
    """A member that really inflates to 1 GB, claiming exactly that: refused, no GB in memory."""
    members = [Member(n, d) for n, d in base().items() if n != name]
    members.append(Member(name, zero_bomb(2**30), DEFLATED, claim=2**30, raw=True))
    p = scratch() / "bomb.nbmodel"
    p.write_bytes(zip_bytes(members))
    t0 = time.perf_counter()
    outcome, peak = refusal_and_peak_mb(lambda: engine.load_bundle(p))
    assert outcome == "refused" and peak < 64 and time.perf_counter() - t0 < 5


def test_weights_inner_bomb_is_refused_before_it_is_inflated():
    """An array in weights.npz whose header and data both say 1 GB of zeros."""
    state = base_state()
    key = next(iter(state))
    head = npy_header("|u1", (2**30,))
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    bomb = c.compress(head) + c.flush(zlib.Z_FULL_FLUSH) + zero_bomb(2**30)
    inner = [Member(f"{k}.npy", npy_bytes(v)) for k, v in state.items() if k != key]
    inner.append(Member(f"{key}.npy", bomb, DEFLATED, claim=len(head) + 2**30, raw=True))
    members = [Member(n, d) for n, d in base().items() if n != WEIGHTS]
    members.append(Member(WEIGHTS, zip_bytes(inner)))
    p = scratch() / "inner.nbmodel"
    p.write_bytes(zip_bytes(members))
    outcome, peak = refusal_and_peak_mb(lambda: engine.load_bundle(p))
    assert outcome == "refused" and peak < 64
    with pytest.raises(engine.BundleError, match=r"weights.*unpack"):
        engine.load_bundle(p)


def test_refusal_messages_name_the_problem():
    good = base()
    cases = {
        "refusing member '../x'": [Member("../x", b"x")],
        "lists a member twice": [Member(MANIFEST, good[MANIFEST])],
        "Python objects": None,
    }
    for match, extra in cases.items():
        if extra is None:
            bad = npz_bytes({**base_state(), "n0.weight":
                             npy_bytes(np.array([None], dtype=object))})
            members = [Member(n, bad if n == WEIGHTS else d) for n, d in good.items()]
        else:
            members = [Member(n, d) for n, d in good.items()] + extra
        p = scratch() / "msg.nbmodel"
        p.write_bytes(zip_bytes(members))
        with pytest.raises(engine.BundleError, match=match):
            engine.load_bundle(p)
    deep = [Member(n, d) for n, d in good.items() if n != MANIFEST]
    deep.append(Member(MANIFEST, b"[" * 100_000 + b"]" * 100_000, DEFLATED))
    p.write_bytes(zip_bytes(deep))
    with pytest.raises(engine.BundleError, match="not valid JSON"):
        engine.load_bundle(p)
