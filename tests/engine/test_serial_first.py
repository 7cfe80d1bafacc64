"""Serial first, parallel once cached (``engine.kernels.serial_first``): the serial stand-ins
give the parallel kernels' results bit for bit, a serial variant keeps a cache entry of its
own, and a cold process trains on the stand-ins, then switches to the parallel kernels its
background process compiled, with the same results."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from test_fusion_kernels import CONFIGS, plan

from engine.kernels import fused as kf
from engine.kernels import fused_serial as ks
from engine.kernels import optim
from engine.kernels import serial_first as sf
from engine.kernels.jit import jit_disabled
from engine.kernels.recurrent import blas_address

ROOT = Path(__file__).resolve().parents[2]


def conv_block(mod, x, weight, bias, stride, pads, oh, ow, relu, pool, dout, need_dx, nch,
               keep, flipped, frozen):
    """Forward then backward of ``mod``'s conv block; every output it writes."""
    n, o = x.shape[0], weight.shape[0]
    kept = np.zeros((n if keep else 0, weight[0].size, oh * ow), x.dtype)  # a 1×1 conv
    # keeps nothing: what it leaves must match too
    yconv = np.empty((n, o, oh, ow), x.dtype)
    yrelu = np.empty_like(yconv) if relu else np.empty((0, 0, 0, 0), x.dtype)
    pshape = (n, o, oh // 2, ow // 2) if pool else (0, 0, 0, 0)
    ypool = np.empty(pshape, x.dtype)
    arg = np.empty(pshape, np.int8)
    b = bias if bias is not None else np.zeros(0, x.dtype)
    mod.conv_block_forward(x, weight, b, *stride, pads[0], pads[2], relu, pool, nch, yconv,
                           yrelu, ypool, arg, kept)
    gw = np.full((0, *weight.shape[1:]) if frozen else weight.shape, np.nan, x.dtype)
    gb = np.full(bias.shape, np.nan, x.dtype) if bias is not None and not frozen \
        else np.zeros(0, x.dtype)
    mask = ypool if pool else yrelu if relu else yconv
    dx = mod.conv_block_backward(x, weight, dout, mask, arg, *stride, pads[0], pads[2], oh, ow,
                                 relu, pool, need_dx, flipped, nch, gw, gb, kept)
    return yconv, yrelu, ypool, arg, kept, dx, gw, gb


@pytest.mark.parametrize("cfg", CONFIGS)
@pytest.mark.parametrize("chain", [(True, True), (True, False), (False, True), (False, False)])
@pytest.mark.parametrize("nch", [1, 2, 3])
def test_the_serial_conv_block_gives_the_parallel_kernels_bits(rng, cfg, chain, nch):
    c, h, w, o, k, stride, padding = cfg
    relu, pool = chain
    oh, ow, pads = plan(h, w, k, stride, padding)
    x = rng.standard_normal((5, c, h, w)).astype(np.float32)
    weight = rng.standard_normal((o, c, *k)).astype(np.float32)
    bias = rng.standard_normal(o).astype(np.float32)
    dshape = (5, o, oh // 2, ow // 2) if pool else (5, o, oh, ow)
    dout = rng.standard_normal(dshape).astype(np.float32)
    for keep, need_dx, flipped, frozen, b in [(False, True, False, False, bias),
                                              (True, True, True, False, None),
                                              (False, False, False, True, bias)]:
        args = (x, weight, b, stride, pads, oh, ow, relu, pool, dout, need_dx, nch, keep,
                flipped, frozen)
        want = conv_block(kf, *args)
        got = conv_block(ks, *args)
        for a, g in zip(want, got, strict=True):
            assert a.shape == g.shape and a.dtype == g.dtype
            np.testing.assert_array_equal(g, a)


@pytest.mark.parametrize("kernel", ["dense_forward", "dense_rows_forward"])
def test_a_serial_dense_forward_gives_the_parallel_kernels_bits(rng, kernel):
    x = rng.standard_normal((9, 7)).astype(np.float32)
    weight = rng.standard_normal((5, 7)).astype(np.float32)
    bias = rng.standard_normal(5).astype(np.float32)
    outs = []
    for fn in (getattr(kf, kernel), sf.serial_variant(getattr(kf, kernel))):
        y, yr = np.empty((9, 5), np.float32), np.empty((9, 5), np.float32)
        fn(x, weight, bias, True, 2, y, yr)
        outs.append((y, yr))
    for a, g in zip(*outs, strict=True):
        np.testing.assert_array_equal(g, a)


@pytest.mark.parametrize("kernel", ["dense_backward", "dense_rows_backward"])
def test_a_serial_dense_backward_gives_the_parallel_kernels_bits(rng, kernel):
    x = rng.standard_normal((9, 7)).astype(np.float32)
    weight = rng.standard_normal((5, 7)).astype(np.float32)
    dy = rng.standard_normal((9, 5)).astype(np.float32)
    ypre = rng.standard_normal((9, 5)).astype(np.float32)
    blas = blas_address(np.float32)
    outs = []
    for fn in (getattr(kf, kernel), sf.serial_variant(getattr(kf, kernel))):
        gw, gb = np.empty((5, 7), np.float32), np.empty(5, np.float32)
        dx = fn(x, weight, dy, ypre, True, True, 3, gw, gb, blas)
        outs.append((dx, gw, gb))
    for a, g in zip(*outs, strict=True):
        np.testing.assert_array_equal(g, a)


def test_a_serial_variant_is_a_function_of_its_own():
    s = sf.serial_variant(optim.sgd_momentum_update)
    py, parallel_py = (getattr(f, "py_func", f) for f in (s, optim.sgd_momentum_update))
    assert py.__qualname__ == "sgd_momentum_update__serial" and py is not parallel_py
    p, g, v = np.arange(4.0), np.ones(4), np.full(4, 0.5)
    p2, v2 = p.copy(), v.copy()
    s(p, g, v, 0.1, 0.9, False, False)
    optim.sgd_momentum_update(p2, g, v2, 0.1, 0.9, False, False)
    np.testing.assert_array_equal(p, p2)
    np.testing.assert_array_equal(v, v2)
    if not jit_disabled():  # the cache keys on the function: its own index file
        assert s.targetoptions["parallel"] is False
        assert s._cache._cache_file._index_path != \
            optim.sgd_momentum_update._cache._cache_file._index_path


def test_the_switch_is_off_in_place_and_under_the_tests_setting(monkeypatch):
    monkeypatch.setenv(sf.ENV, "1")
    assert sf.enabled() is not jit_disabled()
    with sf.in_place():
        assert not sf.enabled()
    monkeypatch.setenv(sf.ENV, "0")
    assert not sf.enabled()


COLD_RUN = r"""
import json, sys
import numpy as np
import engine
from engine.kernels import fused, serial_first

doc = json.loads(sys.stdin.read())

def train(steps):
    net = engine.compile(engine.Graph.from_dict(doc))
    rng = np.random.default_rng(0)
    opt = engine.SGD(lr=0.05, momentum=0.9)
    for _ in range(steps):
        x = rng.standard_normal((6, 1, 12, 12)).astype(np.float32)
        y = rng.integers(0, 3, 6)
        net.train_step(x, y, opt)
    return {k: v.tolist() for k, v in net.state_dict().items()}

first = train(3)  # an empty cache: the serial stand-ins
pending = serial_first.pending_kernels()
done = serial_first.wait(900)
again = train(3)  # the parallel kernels, compiled by the background process
print(json.dumps({"pending": pending, "done": done, "left": serial_first.pending_kernels(),
                  "loaded": len(fused.conv_block_backward.overloads),
                  "same": first == again}))
"""


@pytest.mark.skipif(jit_disabled(), reason="compiles kernels")
def test_a_cold_process_trains_serially_then_on_the_parallel_kernels_with_the_same_results(
        tmp_path):
    from graphdocs import chain_doc

    doc = chain_doc((1, 12, 12), [("Conv2D", {"filters": 3, "kernel_size": 3}), ("ReLU", {}),
                                  ("MaxPool2D", {"pool_size": 2}), ("Flatten", {}),
                                  ("Dense", {"units": 3})], "cross_entropy")
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    env.update(XDG_CACHE_HOME=str(tmp_path), PYTHONPATH=str(ROOT), **{sf.ENV: "1"})
    out = subprocess.run([sys.executable, "-c", COLD_RUN], input=json.dumps(doc), env=env,
                         capture_output=True, text=True, check=True, timeout=1800)
    r = json.loads(out.stdout.strip().splitlines()[-1])
    assert "engine.kernels.fused.conv_block_backward" in r["pending"]
    assert r["done"] and r["left"] == [] and r["loaded"] == 1
    assert r["same"]


def test_a_forwards_prefetch_names_the_signatures_its_backward_then_calls(monkeypatch, rng):
    """What the background process compiles ahead (``*_prefetch``) must be what the serial
    backward of a real network then calls, type for type."""
    import numba
    from graphdocs import chain_doc

    import engine

    calls = {}

    def record(mod, name, run=True):
        fn = getattr(mod, name)

        def wrapper(*args):
            calls.setdefault(name, tuple(numba.typeof(a) for a in args))
            return fn(*args) if run else None
        monkeypatch.setattr(mod, name, wrapper)

    for name in ("conv_block_forward", "dense_forward", "dense_rows_forward",
                 "dense_backward", "dense_rows_backward", "_backward_slice"):
        record(kf, name)
    record(ks, "_sum_parts")
    monkeypatch.setattr(kf, "conv_block_backward", ks.conv_block_backward)
    # the parallel Dense kernels (the hooked ones), not the serial one-slice pair
    monkeypatch.setattr("engine.layers.dense.DENSE_SERIAL_MACS", 0)
    monkeypatch.setattr("engine.kernels.conv.batch_chunks", lambda n: min(n, 2))
    doc = chain_doc((1, 12, 12), [("Conv2D", {"filters": 3, "kernel_size": 3}), ("ReLU", {}),
                                  ("MaxPool2D", {"pool_size": 2}), ("Flatten", {}),
                                  ("Dense", {"units": 40}), ("ReLU", {}),
                                  ("Dense", {"units": 3})])
    net = engine.compile(engine.Graph.from_dict(doc))
    for n in (2, 64):  # a Dense splits by features or by samples with the batch size
        x = rng.standard_normal((n, 1, 12, 12)).astype(np.float32)
        net.train_step(x, rng.integers(0, 3, n), engine.SGD(lr=0.01))
    assert {"dense_forward", "dense_rows_forward"} <= set(calls)
    want = ks.conv_backward_prefetch(calls["conv_block_forward"])
    assert [(n, t) for _m, n, t in want] == [("_backward_slice", calls["_backward_slice"]),
                                             ("_sum_parts", calls["_sum_parts"])]
    for fwd, bwd in (("dense_forward", "dense_backward"),
                     ("dense_rows_forward", "dense_rows_backward")):
        [(module, name, got)] = ks.dense_backward_prefetch(bwd)(calls[fwd])
        assert (module, name, got) == (kf.__name__, f"{bwd}__serial", calls[bwd])


@pytest.mark.parametrize("shift", [False, True])
def test_the_serial_grid_conv_gives_the_parallel_kernels_bits(rng, shift):
    from engine.kernels import convgrid as kg

    x = rng.standard_normal((5, 4, 10, 10)).astype(np.float32)
    weight = rng.standard_normal((6, 4, 3, 3)).astype(np.float32)
    bias = rng.standard_normal(6).astype(np.float32)
    dout = rng.standard_normal((5, 6, 5, 5)).astype(np.float32)
    outs = []
    for fwd, bwd in ((kg.conv_grid_forward, kg.conv_grid_backward),
                     (sf.serial_variant(kg.conv_grid_forward),
                      sf.serial_variant(kg.conv_grid_backward))):
        yc, yr = np.zeros((5, 6, 10, 10), np.float32), np.zeros((5, 6, 10, 10), np.float32)
        yp, arg = np.zeros((5, 6, 5, 5), np.float32), np.zeros((5, 6, 5, 5), np.int8)
        keep = np.zeros((0, 36, 10 * 12), np.float32)
        fwd(x, weight, bias, 1, 1, True, True, shift, 3, yc, yr, yp, arg, keep)
        gw, gb = np.zeros_like(weight), np.zeros_like(bias)
        dx = bwd(x, weight, dout, yp, arg, 1, 1, 10, 10, True, True, True, shift, 3, gw, gb,
                 keep)
        outs.append((yc, yr, yp, arg, dx, gw, gb))
    for a, g in zip(*outs, strict=True):
        np.testing.assert_array_equal(g, a)
