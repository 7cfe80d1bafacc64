"""The stride-1 grid conv blocks (kernels.convgrid) and ``blas.gemm`` against numpy."""

import itertools

import numpy as np
import pytest
from blockcheck import assert_block_matches_reference

from engine.kernels import convgrid as kg
from engine.kernels.blas import gemm
from engine.kernels.jit import njit
from engine.kernels.reference import fused as ref
from engine.layers.conv import window_geometry

# (C, H, W, filters, kernel, padding): every padding kind, odd and even sizes, wide taps
CONFIGS = [
    (1, 6, 6, 3, (3, 3), 1),
    (2, 7, 5, 2, (3, 2), "valid"),
    (3, 6, 7, 3, (3, 3), "same"),
    (2, 6, 5, 3, (2, 2), "same"),
    (1, 5, 5, 2, (5, 5), 2),
    (2, 4, 6, 2, (1, 3), 3),
    # grids of >= SHIFT_DW_MIN_COLUMNS columns: the shifted backward's per-tap weight gradient
    (2, 16, 15, 3, (3, 3), 1),
    (2, 18, 16, 2, (3, 2), "valid"),
]
CHAINS = [(True, True), (True, False), (False, True), (False, False)]


def plan(h, w, k, padding):
    (oh, t, b), (ow, l, r) = (window_geometry(s, kk, 1, padding) for s, kk in zip((h, w), k))
    return oh, ow, (t, b, l, r)


def run_block(x, weight, bias, pads, oh, ow, relu, pool, dout, shift, keep, nch, need_dx=True):
    n, _, h, w = x.shape
    o = weight.shape[0]
    wb = kg.grid_shape(oh, ow, *weight.shape[2:], h, w, pads[0], pads[2])[1]
    kept = np.empty((n if keep else 0, weight[0].size, oh * wb), x.dtype)
    yconv = np.empty((n, o, oh, ow), x.dtype)
    yrelu = np.empty_like(yconv) if relu else np.empty((0, 0, 0, 0), x.dtype)
    pshape = (n, o, oh // 2, ow // 2) if pool else (0, 0, 0, 0)
    ypool = np.empty(pshape, x.dtype)
    arg = np.empty(pshape, np.int8)
    b = bias if bias is not None else np.zeros(0, x.dtype)
    kg.conv_grid_forward(x, weight, b, pads[0], pads[2], relu, pool, shift, nch, yconv, yrelu,
                         ypool, arg, kept)
    gw = np.full_like(weight, np.nan)
    gb = np.full_like(bias, np.nan) if bias is not None else np.zeros(0, x.dtype)
    dx = kg.conv_grid_backward(x, weight, dout, ypool if pool else yconv, arg, pads[0], pads[2],
                               oh, ow, relu, pool, need_dx, shift, nch, gw, gb, kept)
    return yconv, yrelu, ypool, dx, gw, gb


@pytest.mark.parametrize("shift, keep, nch", [(False, False, 2), (False, True, 3),
                                              (True, False, 1), (True, True, 2)],
                         ids=["unfold", "unfold-keep", "shift", "shift-keep"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("chain", CHAINS, ids=lambda c: f"relu{int(c[0])}-pool{int(c[1])}")
@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: "-".join(map(str, c)))
def test_grid_block_matches_the_unfused_reference(rng, cfg, chain, dtype, shift, keep, nch):
    c, h, w, o, k, padding = cfg
    relu, pool = chain
    oh, ow, pads = plan(h, w, k, padding)
    x = rng.standard_normal((3, c, h, w)).astype(dtype)
    weight = rng.standard_normal((o, c, *k)).astype(dtype)
    bias = rng.standard_normal(o).astype(dtype)
    dout = rng.standard_normal((3, o, oh // 2, ow // 2) if pool else (3, o, oh, ow)).astype(dtype)
    got = run_block(x, weight, bias, pads, oh, ow, relu, pool, dout, shift, keep, nch)
    f64 = [a.astype(np.float64) for a in (x, weight, bias, dout)]
    want = ref.conv_block_forward(*f64[:3], (1, 1), pads, relu, pool)
    want_b = ref.conv_block_backward(*f64, (1, 1), pads, relu, pool)
    assert_block_matches_reference(got, want, want_b, relu, pool, dtype)


@pytest.mark.parametrize("shift", [False, True])
def test_grid_block_without_bias_or_input_gradient_and_empty_batches(rng, shift):
    x = rng.standard_normal((4, 2, 6, 6))
    weight = rng.standard_normal((3, 2, 3, 3))
    dout = rng.standard_normal((4, 3, 3, 3))
    *_, dx, gw, gb = run_block(x, weight, None, (1, 1, 1, 1), 6, 6, True, True, dout, shift,
                               False, 3, need_dx=False)
    assert dx.shape == (0, 2, 6, 6) and gb.size == 0
    want = ref.conv_block_backward(x, weight, None, dout, (1, 1), (1, 1, 1, 1), True, True)
    np.testing.assert_allclose(gw, want[1], rtol=1e-12, atol=1e-12)
    *_, dx, gw, gb = run_block(x[:0], weight, np.ones(3), (1, 1, 1, 1), 6, 6, True, True,
                               dout[:0], shift, False, 2)
    assert dx.shape == (0, 2, 6, 6)
    np.testing.assert_array_equal(gw, 0)
    np.testing.assert_array_equal(gb, 0)


@pytest.mark.parametrize("shift", [False, True])
@pytest.mark.parametrize("chain", CHAINS[:3], ids=lambda c: f"relu{int(c[0])}-pool{int(c[1])}")
def test_grid_block_can_skip_writing_intermediates(rng, chain, shift):
    relu, pool = chain
    x = rng.standard_normal((3, 2, 6, 6)).astype(np.float32)
    weight = rng.standard_normal((3, 2, 3, 3)).astype(np.float32)
    bias = rng.standard_normal(3).astype(np.float32)
    dout = rng.standard_normal((3, 3, 3, 3) if pool else (3, 3, 6, 6)).astype(np.float32)
    _, yrelu, ypool, *_ = run_block(x, weight, bias, (1, 1, 1, 1), 6, 6, relu, pool, dout, shift,
                                    False, 2)
    yc = np.full((3, 3, 6, 6), 7.0, np.float32)
    yr = np.full_like(yc, 7.0) if relu else np.empty((0, 0, 0, 0), np.float32)
    yp = np.empty_like(ypool)
    arg = np.empty(yp.shape, np.int8)
    kg.conv_grid_forward(x, weight, bias, 1, 1, relu, pool, shift, 2, yc[:0],
                         yr[:0] if pool else yr, yp, arg, np.empty((0, 1, 1), np.float32))
    np.testing.assert_array_equal(yc, 7.0)
    if pool:
        np.testing.assert_array_equal(yp, ypool)
        if relu:
            np.testing.assert_array_equal(yr, 7.0)
    else:
        np.testing.assert_array_equal(yr, yrelu)


def test_the_long_configs_reach_the_per_tap_weight_gradient():
    for _c, h, w, _o, k, padding in CONFIGS[-2:]:
        oh, ow, pads = plan(h, w, k, padding)
        wb = kg.grid_shape(oh, ow, *k, h, w, pads[0], pads[2])[1]
        assert oh * wb >= kg.SHIFT_DW_MIN_COLUMNS


def test_grid_shape_holds_the_image_and_every_window():
    assert kg.grid_shape(6, 6, 3, 3, 6, 6, 1, 1) == (8, 8)
    assert kg.grid_shape(4, 3, 3, 3, 6, 5, 0, 0) == (6, 5)
    assert kg.grid_shape(3, 3, 2, 2, 4, 4, 0, 0) == (4, 4)


@njit(parallel=False)
def _jit_gemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc):
    gemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("ta, tb, beta", list(itertools.product([False, True], [False, True],
                                                                [0.0, 1.0, -0.5])))
def test_gemm_on_strided_sub_matrices(rng, dtype, ta, tb, beta):
    m, n, k = 3, 4, 5
    lda, ldb, ldc = (m if ta else k) + 2, (k if tb else n) + 1, n + 3
    a = rng.standard_normal((k if ta else m) * lda).astype(dtype)
    b = rng.standard_normal((n if tb else k) * ldb).astype(dtype)
    c = rng.standard_normal(m * ldc).astype(dtype)
    amat = a.reshape(-1, lda)[:, :m if ta else k]
    bmat = b.reshape(-1, ldb)[:, :k if tb else n]
    want = c.reshape(m, ldc).copy()
    want[:, :n] = 2.0 * (amat.T if ta else amat) @ (bmat.T if tb else bmat) + beta * want[:, :n]
    for fn in (_jit_gemm, gemm):
        got = c.copy()
        if beta == 0:
            got.reshape(m, ldc)[:, :n] = np.nan
        fn(ta, tb, m, n, k, 2.0, a, lda, b, ldb, beta, got, ldc)
        np.testing.assert_allclose(got.reshape(m, ldc), want, rtol=1e-5)


@pytest.mark.parametrize("fn", [_jit_gemm, gemm], ids=["jit", "python"])
def test_gemm_checks_its_buffers_and_handles_empty_products(fn):
    a = np.ones(6)
    c = np.full(4, 3.0)
    with pytest.raises(ValueError, match="outside"):
        fn(False, False, 2, 2, 3, 1.0, a, 3, a, 3, 0.0, c, 2)
    fn(False, False, 2, 2, 0, 1.0, a, 1, a, 2, 0.5, c, 2)
    np.testing.assert_array_equal(c, 1.5)
    fn(False, False, 0, 2, 3, 1.0, a, 3, a, 2, 0.0, c, 2)
    np.testing.assert_array_equal(c, 1.5)


def test_shifted_backward_on_a_long_grid_matches_finite_differences(rng):
    """float64: the per-tap weight gradient (and the shifted input gradient) of a grid of
    >= SHIFT_DW_MIN_COLUMNS columns against central differences of sum(y · dout)."""
    c, h, w, o, k = 2, 16, 15, 3, (3, 2)
    oh, ow, pads = plan(h, w, k, 1)
    assert oh * kg.grid_shape(oh, ow, *k, h, w, pads[0], pads[2])[1] >= kg.SHIFT_DW_MIN_COLUMNS
    x = rng.standard_normal((2, c, h, w))
    weight = rng.standard_normal((o, c, *k))
    bias = rng.standard_normal(o)
    dout = rng.standard_normal((2, o, oh, ow))

    def loss(xv, wv):
        y = run_block(xv, wv, bias, pads, oh, ow, False, False, dout, True, False, 2)[0]
        return float(np.sum(y * dout))

    *_, dx, gw, gb = run_block(x, weight, bias, pads, oh, ow, False, False, dout, True, False, 2)
    eps = 1e-6
    for idx in itertools.islice(np.ndindex(weight.shape), 0, None, 5):
        wp, wm = weight.copy(), weight.copy()
        wp[idx] += eps
        wm[idx] -= eps
        np.testing.assert_allclose(gw[idx], (loss(x, wp) - loss(x, wm)) / (2 * eps), rtol=1e-6,
                                   atol=1e-6)
    for idx in [(0, 0, 0, 0), (1, 1, 15, 14), (0, 1, 7, 3), (1, 0, 0, 14)]:
        xp, xm = x.copy(), x.copy()
        xp[idx] += eps
        xm[idx] -= eps
        np.testing.assert_allclose(dx[idx], (loss(xp, weight) - loss(xm, weight)) / (2 * eps),
                                   rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(gb, dout.sum(axis=(0, 2, 3)), rtol=1e-12)
