"""Compiling a model's kernels in two processes at once (``engine.compile_ahead``): the traced
calls and their types, the claims that keep the two processes from compiling one kernel twice,
and the two processes filling an empty cache."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from numba.core import types

from engine import compile_ahead, kernel_progress
from engine.resources import example_path

ROOT = Path(__file__).resolve().parents[2]


def example_doc(name):
    return json.loads(example_path(name).read_text())


def test_the_calls_of_a_models_step_are_traced_in_order_with_their_types():
    sigs = compile_ahead.trace(example_doc("lenet5"))
    assert sigs
    names = [f"{m}.{n}" for m, n, _t in sigs]
    fwd = names.index("engine.kernels.fused.conv_block_forward")
    bwd = names.index("engine.kernels.fused.conv_block_backward")
    assert fwd < bwd  # the forward is called first: this process starts there
    conv = sigs[fwd][2]
    assert conv[0] == types.Array(types.float32, 4, "C")
    assert types.boolean in conv and types.int64 in conv
    assert all(m.startswith("engine.kernels.") for m, _n, _t in sigs)


def test_types_go_through_json_unchanged():
    sig = [("engine.kernels.x", "f",
            (types.Array(types.float32, 4, "C"), types.Array(types.int8, 2, "A", readonly=True),
             types.Array(types.boolean, 1, "F"), types.int64, types.float64, types.boolean,
             types.float32, types.UniTuple(types.int64, 3),
             types.Tuple([types.int64, types.float64])))]
    assert compile_ahead.decode(compile_ahead.encode(sig)) == sig


def test_a_signature_is_claimed_by_one_process_only(tmp_path):
    sig = ("engine.kernels.optim", "sum_squares", (types.Array(types.float32, 1, "C"),))
    other = ("engine.kernels.optim", "sum_squares", (types.Array(types.float64, 1, "C"),))
    assert compile_ahead._claim(tmp_path, sig)
    assert not compile_ahead._claim(tmp_path, sig)
    assert compile_ahead._claim(tmp_path, other)
    assert compile_ahead.compile_signatures([sig], tmp_path) == 0  # claimed: left alone


def test_compiled_signatures_run_and_claimed_ones_are_skipped(tmp_path):
    from engine.kernels import optim

    sig = ("engine.kernels.optim", "sum_squares", (types.Array(types.float64, 1, "C"),))
    assert compile_ahead.compile_signatures([sig], tmp_path) == 1
    assert (types.Array(types.float64, 1, "C"),) in optim.sum_squares.signatures
    assert optim.sum_squares(np.arange(4.0)) == 14.0


def test_two_processes_fill_an_empty_cache_with_a_models_kernels(tmp_path):
    doc = example_doc("xor_mlp")
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "cache"), PYTHONPATH=str(ROOT))
    code = ("import json, sys; from engine import compile_ahead; "
            "print(compile_ahead.compile_in_two(json.loads(sys.stdin.read())))")
    out = subprocess.run([sys.executable, "-c", code], input=json.dumps(doc), env=env,
                         capture_output=True, text=True, check=True, timeout=900)
    assert out.stdout.strip().splitlines()[-1] == "True"
    jitted = {(d.py_func.__module__, d.py_func.__name__)
              for d in kernel_progress.kernel_dispatchers().values()}
    traced = {(m.rsplit(".", 1)[1], n) for m, n, _t in compile_ahead.trace(doc)
              if (m, n) in jitted}  # plain-Python functions of the kernel modules left out
    assert ("fused", "dense_small_forward") in traced and ("optim", "adam_update") in traced
    index = [p.name for p in (tmp_path / "cache").rglob("*.nbi")]
    for mod, fn in traced:  # every traced kernel has its index file in the cache
        assert any(i.startswith(f"{mod}.{fn}-") for i in index), (mod, fn)


def test_a_kernel_swapped_by_batch_size_brings_its_twin_with_the_same_types():
    two = (types.Array(types.float32, 2, "C"),) * 2
    other = ("engine.kernels.optim", "sum_squares", (types.Array(types.float32, 1, "C"),))
    sigs = [("engine.kernels.fused", "dense_forward", two), other,
            ("engine.kernels.fused", "dense_rows_backward", two)]
    assert compile_ahead.with_alternatives(sigs) == [
        ("engine.kernels.fused", "dense_forward", two),
        ("engine.kernels.fused", "dense_rows_forward", two),
        ("engine.kernels.fused", "dense_small_forward", two), other,
        ("engine.kernels.fused", "dense_rows_backward", two),
        ("engine.kernels.fused", "dense_backward", two),
        ("engine.kernels.fused", "dense_small_backward", two)]
    assert compile_ahead.with_alternatives(sigs[:2] + sigs[:2]) == \
        compile_ahead.with_alternatives(sigs[:2])  # each signature once


def test_lenet5s_step_at_its_batch_size_needs_no_kernel_beyond_the_traced_ones(monkeypatch):
    """The trace runs 2 samples, where every Dense runs serially (``dense_small_*``); at
    batch 64 LeNet-5's larger Dense layers split over the threads: the alternatives cover
    them."""
    import importlib

    import engine
    from engine.gradcheck import random_batch

    traced = {(m, n) for m, n, _t in
              compile_ahead.with_alternatives(compile_ahead.trace(example_doc("lenet5")))}
    called = set()
    for full, d in kernel_progress.kernel_dispatchers().items():
        module, name = full.rsplit(".", 1)
        if name.startswith("_"):  # called only by other kernels (bound when they compile)
            continue

        def record(*args, _d=d):
            called.add((_d.py_func.__module__, _d.py_func.__name__))
            return _d(*args)

        monkeypatch.setattr(importlib.import_module(module), name, record)
    net = engine.compile(engine.load_graph(str(example_path("lenet5"))))
    xs, ys = random_batch(net, 64, np.random.default_rng(0))
    xs = {k: v.astype(np.float32) for k, v in xs.items()}
    net.train_step(xs, ys, engine.SGD(lr=0.01, momentum=0.9))
    fused = {k for k in called if k[0] == "engine.kernels.fused"}  # (the losses' kernels are
    # traced through their plain-Python wrappers)
    assert ("engine.kernels.fused", "dense_forward") in fused  # Dense 400->120: two slices
    assert ("engine.kernels.fused", "dense_small_backward") in fused  # 84->10: one slice
    assert fused <= traced
