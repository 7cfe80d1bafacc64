import numpy as np
import pytest
from blockcheck import assert_block_matches_reference

import engine
from engine.kernels import activation as ka
from engine.kernels import fused as kf
from engine.kernels import pool as kp
from engine.kernels import recurrent as rk
from engine.kernels.reference import fused as ref
from engine.layers.conv import window_geometry
from engine.threads import max_threads

# (C, H, W, filters, kernel, stride, padding)
CONFIGS = [
    (1, 6, 6, 3, (3, 3), (1, 1), 1),
    (2, 7, 5, 2, (3, 2), (1, 1), "valid"),
    (2, 6, 7, 3, (2, 2), (2, 1), "same"),
    (1, 5, 5, 2, (5, 5), (1, 1), 2),
    (1, 18, 16, 2, (3, 3), (1, 1), 1),  # more than TRANSPOSED_MAX_PIXELS outputs
    (3, 6, 5, 4, (1, 1), (1, 1), "valid"),  # 1×1: the image is its own im2col
    (2, 18, 16, 3, (1, 1), (1, 1), "same"),
    (3, 7, 6, 2, (1, 1), (2, 2), "valid"),  # 1×1 strided: a gather
]
CHAINS = [(True, True), (True, False), (False, True)]
# a conv alone (a lone Conv2D, or one before a BatchNorm): its backward reads the given
# gradient in place instead of a copy
ALL_CHAINS = [*CHAINS, (False, False)]


def plan(h, w, k, stride, padding):
    (oh, t, b), (ow, l, r) = (window_geometry(s, kk, st, padding)
                              for s, kk, st in zip((h, w), k, stride))
    return oh, ow, (t, b, l, r)


def run_block(x, weight, bias, stride, pads, oh, ow, relu, pool, dout, need_dx=True, nch=2,
              keep=False, flipped=False):
    n, o = x.shape[0], weight.shape[0]
    kshape = (n if keep else 0, weight[0].size, oh * ow)
    kept = np.empty(kshape, x.dtype)
    yconv = np.empty((n, o, oh, ow), x.dtype)
    yrelu = np.empty_like(yconv) if relu else np.empty((0, 0, 0, 0), x.dtype)
    pshape = (n, o, oh // 2, ow // 2) if pool else (0, 0, 0, 0)
    ypool = np.empty(pshape, x.dtype)
    arg = np.empty(pshape, np.int8)
    b = bias if bias is not None else np.zeros(0, x.dtype)
    kf.conv_block_forward(x, weight, b, *stride, pads[0], pads[2], relu, pool, nch, yconv, yrelu,
                          ypool, arg, kept)
    gw = np.full_like(weight, np.nan)
    gb = np.full_like(bias, np.nan) if bias is not None else np.zeros(0, x.dtype)
    mask = ypool if pool else yconv
    dx = kf.conv_block_backward(x, weight, dout, mask, arg, *stride, pads[0], pads[2], oh, ow,
                                relu, pool, need_dx, flipped, nch, gw, gb, kept)
    return yconv, yrelu, ypool, dx, gw, gb


def check_against_reference(rng, cfg, chain, dtype, keep, flipped=False):
    c, h, w, o, k, stride, padding = cfg
    relu, pool = chain
    oh, ow, pads = plan(h, w, k, stride, padding)
    x = rng.standard_normal((3, c, h, w)).astype(dtype)
    weight = rng.standard_normal((o, c, *k)).astype(dtype)
    bias = rng.standard_normal(o).astype(dtype)
    dout = rng.standard_normal((3, o, oh // 2, ow // 2) if pool else (3, o, oh, ow)).astype(dtype)
    got = run_block(x, weight, bias, stride, pads, oh, ow, relu, pool, dout, keep=keep,
                    flipped=flipped)
    f64 = [a.astype(np.float64) for a in (x, weight, bias, dout)]
    want = ref.conv_block_forward(f64[0], f64[1], f64[2], stride, pads, relu, pool)
    want_b = ref.conv_block_backward(*f64[:3], f64[3], stride, pads, relu, pool)
    assert_block_matches_reference(got, want, want_b, relu, pool, dtype)


@pytest.mark.parametrize("keep", [False, True], ids=["unfold-twice", "keep-cols"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("chain", ALL_CHAINS, ids=lambda c: f"relu{int(c[0])}-pool{int(c[1])}")
@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: "-".join(map(str, c)))
def test_conv_block_matches_the_unfused_reference(rng, cfg, chain, dtype, keep):
    check_against_reference(rng, cfg, chain, dtype, keep)


# stride-1 configs with each padding below the kernel size (where ``flipped`` applies)
FLIP_CONFIGS = [
    (1, 6, 6, 3, (3, 3), (1, 1), 1),
    (2, 7, 5, 2, (3, 2), (1, 1), "valid"),
    (3, 5, 6, 4, (3, 3), (1, 1), "same"),
    (2, 5, 5, 2, (2, 2), (1, 1), "same"),
]


@pytest.mark.parametrize("keep", [False, True], ids=["unfold-twice", "keep-cols"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("chain", ALL_CHAINS, ids=lambda c: f"relu{int(c[0])}-pool{int(c[1])}")
@pytest.mark.parametrize("cfg", FLIP_CONFIGS, ids=lambda c: "-".join(map(str, c)))
def test_flipped_input_gradient_matches_the_reference(rng, cfg, chain, dtype, keep):
    check_against_reference(rng, cfg, chain, dtype, keep, flipped=True)


@pytest.mark.parametrize("flipped", [False, True])
def test_a_1x1_conv_multiplies_the_image_itself_whatever_the_caller_asks(rng, flipped):
    cfg = (17, 4, 5, 3, (1, 1), (1, 1), "valid")
    assert kf.is_plain_gemm(1, 1, 1, 1, 0, 0, 4, 5, 4, 5)
    assert not kf.is_plain_gemm(1, 1, 2, 2, 0, 0, 4, 5, 2, 3)
    assert not kf.is_plain_gemm(1, 1, 1, 1, 1, 1, 4, 5, 6, 7)
    assert not kf.is_plain_gemm(3, 3, 1, 1, 0, 0, 4, 5, 2, 3)
    check_against_reference(rng, cfg, (True, False), np.float64, keep=True, flipped=flipped)


def test_flipped_input_gradient_is_chosen_for_same_padding_on_enough_channels():
    same3 = ((1, 1), (1, 1, 1, 1), (3, 3))
    assert kf.flipped_dx_pays(*same3, (16, 8, 8), (8, 8))
    assert not kf.flipped_dx_pays(*same3, (6, 8, 8), (8, 8))
    assert not kf.flipped_dx_pays((1, 1), (0, 0, 0, 0), (5, 5), (16, 14, 14), (10, 10))
    assert not kf.flipped_dx_pays((2, 2), (1, 1, 1, 1), (3, 3), (16, 8, 8), (4, 4))
    assert not kf.flipped_dx_pays((1, 1), (3, 3, 3, 3), (3, 3), (16, 8, 8), (12, 12))


@pytest.mark.parametrize("nch", [1, 3])
def test_conv_block_without_bias_or_input_gradient(rng, nch):
    x = rng.standard_normal((4, 2, 6, 6))
    weight = rng.standard_normal((3, 2, 3, 3))
    dout = rng.standard_normal((4, 3, 2, 2))
    *_, dx, gw, gb = run_block(x, weight, None, (1, 1), (0, 0, 0, 0), 4, 4, True, True, dout,
                                need_dx=False, nch=nch)
    assert dx.shape == (0, 2, 6, 6) and gb.size == 0
    want = ref.conv_block_backward(x, weight, None, dout, (1, 1), (0, 0, 0, 0), True, True)
    np.testing.assert_allclose(gw, want[1], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("relu", [True, False])
@pytest.mark.parametrize("hw", [(4, 6), (5, 7)])
def test_relu_pool2_matches_the_unfused_kernels(rng, relu, hw):
    h, w = hw
    x = rng.standard_normal((3, 2, h, w)).astype(np.float32)
    x[0, 0, 0, :2] = 0.0
    x[1, 1, 1, 1] = np.nan
    yrelu = np.empty_like(x)
    ypool = np.empty((3, 2, h // 2, w // 2), np.float32)
    arg = np.empty(ypool.shape, np.int8)
    kf.relu_pool2_forward(x, relu, yrelu, ypool, arg)
    r = np.empty_like(x)
    ka.relu_forward(x.reshape(-1), r.reshape(-1))
    src = r if relu else x
    want_pool, want_arg = kp.maxpool2d_forward(src, 2, 2, 2, 2, 0, 0, h // 2, w // 2)
    if relu:
        np.testing.assert_array_equal(yrelu, r)
    np.testing.assert_array_equal(ypool, want_pool)
    dpool = rng.standard_normal(ypool.shape).astype(np.float32)
    dx = kf.relu_pool2_backward(dpool, ypool, arg, relu, h, w)
    want = kp.maxpool2d_backward(dpool, want_arg, h, w)
    if relu:
        ka.relu_backward(x.reshape(-1), want.reshape(-1).copy(), want.reshape(-1))
    np.testing.assert_array_equal(dx, want)
    if not relu:
        np.testing.assert_allclose(dx, ref.relu_pool2_backward(np.nan_to_num(x, nan=9.0),
                                                               dpool, False), atol=0)


DENSE_SPLITS = {"features": (kf.dense_forward, kf.dense_backward),
                "rows": (kf.dense_rows_forward, kf.dense_rows_backward),
                "serial": (kf.dense_small_forward, kf.dense_small_backward)}


@pytest.mark.parametrize("split", sorted(DENSE_SPLITS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("relu", [True, False])
@pytest.mark.parametrize("nch, n", [(1, 5), (2, 5), (3, 2), (4, 7), (2, 0)])
def test_dense_matches_the_reference(rng, split, dtype, relu, nch, n):
    forward, backward = DENSE_SPLITS[split]
    x = rng.standard_normal((n, 4)).astype(dtype)
    weight = rng.standard_normal((3, 4)).astype(dtype)
    bias = rng.standard_normal(3).astype(dtype)
    dy = rng.standard_normal((n, 3)).astype(dtype)
    y = np.empty((n, 3), dtype)
    yrelu = np.empty_like(y) if relu else y[:0]
    forward(x, weight, bias, relu, nch, y, yrelu)
    gw, gb = np.full_like(weight, np.nan), np.full_like(bias, np.nan)
    dx = backward(x, weight, dy, y, relu, True, nch, gw, gb, rk.blas_address(dtype))
    want_y, want_r = ref.dense_forward(x, weight, bias, relu)
    want = ref.dense_backward(x, weight, bias, dy, relu)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    pairs = [(y, want_y), (dx, want[0]), (gw, want[1]), (gb, want[2])]
    if relu:
        pairs.append((yrelu, want_r))
    for got, exp in pairs:
        assert got.dtype == dtype and got.shape == exp.shape
        np.testing.assert_allclose(got, exp, rtol=tol, atol=tol)


@pytest.mark.parametrize("split", sorted(DENSE_SPLITS))
def test_dense_without_bias_or_input_gradient(rng, split):
    forward, backward = DENSE_SPLITS[split]
    x = rng.standard_normal((4, 5))
    weight = rng.standard_normal((2, 5))
    dy = rng.standard_normal((4, 2))
    y = np.empty((4, 2))
    forward(x, weight, np.zeros(0), False, 2, y, y[:0])
    np.testing.assert_allclose(y, x @ weight.T, rtol=1e-12)
    gw = np.empty_like(weight)
    dx = backward(x, weight, dy, y, False, False, 2, gw, np.zeros(0), 0)
    assert dx.shape == (0, 5)
    np.testing.assert_allclose(gw, dy.T @ x, rtol=1e-12)


@pytest.mark.parametrize("o_n, i_n", [(24, 96), (300, 480)])  # weight gradient summed on one
# thread, in parallel
def test_the_sample_split_gives_the_same_bits_on_any_thread_count(rng, o_n, i_n):
    assert (o_n * i_n >= kf.DENSE_PARALLEL_SUM) == (o_n == 300)
    x = rng.standard_normal((64, i_n)).astype(np.float32)
    weight = rng.standard_normal((o_n, i_n)).astype(np.float32)
    bias = rng.standard_normal(o_n).astype(np.float32)
    dy = rng.standard_normal((64, o_n)).astype(np.float32)
    blas = rk.blas_address(np.float32)
    want = ref.dense_backward(x.astype(np.float64), weight.astype(np.float64), bias, dy, True)
    results = []
    for threads in sorted({1, max_threads()}):
        before = engine.set_num_threads(threads)
        try:
            y = np.empty((64, o_n), np.float32)
            kf.dense_rows_forward(x, weight, bias, True, 4, y, np.empty_like(y))
            gw, gb = np.empty_like(weight), np.empty_like(bias)
            dx = kf.dense_rows_backward(x, weight, dy, y, True, True, 4, gw, gb, blas)
        finally:
            engine.set_num_threads(before)
        results.append((y, dx, gw, gb))
        for got, exp in ((dx, want[0]), (gw, want[1]), (gb, want[2])):
            np.testing.assert_allclose(got, exp, rtol=2e-4, atol=2e-4)
    for got in results[1:]:
        for a, b in zip(got, results[0]):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("relu", [True, False])
def test_the_serial_dense_gives_the_bits_of_one_parallel_slice(rng, dtype, relu):
    """``dense_kernels`` swaps the serial pair in for one slice: same results, bit for bit,
    as both parallel pairs run with one slice."""
    x = rng.standard_normal((64, 40)).astype(dtype)
    weight = rng.standard_normal((10, 40)).astype(dtype)
    bias = rng.standard_normal(10).astype(dtype)
    dy = rng.standard_normal((64, 10)).astype(dtype)
    blas = rk.blas_address(dtype)
    assert kf.dense_kernels(1, True) == kf.dense_kernels(1) == DENSE_SPLITS["serial"]
    assert kf.dense_kernels(2, True) == DENSE_SPLITS["rows"]
    assert kf.dense_kernels(2) == DENSE_SPLITS["features"]
    results = []
    for forward, backward in DENSE_SPLITS.values():
        y = np.empty((64, 10), dtype)
        yrelu = np.empty_like(y) if relu else y[:0]
        forward(x, weight, bias, relu, 1, y, yrelu)
        gw, gb = np.full_like(weight, np.nan), np.full_like(bias, np.nan)
        dx = backward(x, weight, dy, y, relu, True, 1, gw, gb, blas)
        results.append((y, yrelu, dx, gw, gb))
    for got in results[1:]:
        for a, b in zip(got, results[0]):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("n, i_n", [(6, 5), (300, 450)])  # dx summed on one thread, in parallel
def test_dense_feature_split_adds_the_input_gradient_shares_in_order(rng, n, i_n):
    """dx of the feature split is the sum of every thread's block of dz times its weight
    rows: it matches the float64 reference, with numpy's CBLAS and with np.dot, and gives
    the same bits on any thread count."""
    assert (n * i_n >= kf.DENSE_PARALLEL_SUM) == (n == 300)
    x = rng.standard_normal((n, i_n))
    weight = rng.standard_normal((7, i_n))
    dy = rng.standard_normal((n, 7))
    y = x @ weight.T
    want = ref.dense_backward(x, weight, np.zeros(7), dy, True)
    results: dict[int, list[np.ndarray]] = {}
    for blas in (rk.blas_address(np.float64), 0):
        for threads in sorted({1, max_threads()}):
            before = engine.set_num_threads(threads)
            try:
                gw, gb = np.empty_like(weight), np.empty(7)
                dx = kf.dense_backward(x, weight, dy, y, True, True, 3, gw, gb, blas)
            finally:
                engine.set_num_threads(before)
            for got, exp in ((dx, want[0]), (gw, want[1]), (gb, want[2])):
                np.testing.assert_allclose(got, exp, rtol=1e-12, atol=1e-12)
            results.setdefault(blas, []).append(dx)
    for same_blas in results.values():
        for dx in same_blas[1:]:
            np.testing.assert_array_equal(dx, same_blas[0])


@pytest.mark.parametrize("chain", CHAINS, ids=lambda c: f"relu{int(c[0])}-pool{int(c[1])}")
def test_conv_block_can_skip_writing_intermediates(rng, chain):
    relu, pool = chain
    c, h, w, o, k, stride, padding = CONFIGS[2]
    oh, ow, pads = plan(h, w, k, stride, padding)
    x = rng.standard_normal((4, c, h, w)).astype(np.float32)
    weight = rng.standard_normal((o, c, *k)).astype(np.float32)
    bias = rng.standard_normal(o).astype(np.float32)
    dout = rng.standard_normal((4, o, oh // 2, ow // 2) if pool else (4, o, oh, ow))
    yconv, yrelu, ypool, *_ = run_block(x, weight, bias, stride, pads, oh, ow, relu, pool,
                                        dout.astype(np.float32))
    yc = np.full_like(yconv, 7.0)
    yr = np.full_like(yrelu, 7.0)
    yp = np.empty_like(ypool)
    arg = np.empty(yp.shape, np.int8)
    kf.conv_block_forward(x, weight, bias, *stride, pads[0], pads[2], relu, pool, 2, yc[:0],
                          yr[:0] if pool else yr, yp, arg, np.empty((0, 1, 1), np.float32))
    np.testing.assert_array_equal(yc, 7.0)
    if pool:
        np.testing.assert_array_equal(yr, 7.0)
        np.testing.assert_array_equal(yp, ypool)
    elif relu:
        np.testing.assert_array_equal(yr, yrelu)
