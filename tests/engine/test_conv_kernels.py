"""The Conv2D kernels as a lone Conv2D runs them (``kernels.fused`` conv blocks without ReLU
or pool), and the shared pieces of ``kernels.conv``, against the numpy reference."""

import numpy as np
import pytest

from engine.kernels import conv as kc
from engine.kernels import fused as kf
from engine.kernels.reference import conv as ref
from engine.layers.conv import window_geometry


def conv2d_forward(x, weight, bias, sh, sw, pt, pl, oh, ow, nchunks):
    """y (N, O, OH, OW) of the conv block kernel with neither ReLU nor pool."""
    y = np.empty((x.shape[0], weight.shape[0], oh, ow), x.dtype)
    none = np.empty((0, 0, 0, 0), x.dtype)
    keep = np.empty((0, weight[0].size, oh * ow), x.dtype)
    kf.conv_block_forward(x, weight, bias, sh, sw, pt, pl, False, False, nchunks, y, none, none,
                          np.empty((0, 0, 0, 0), np.int8), keep)
    return y


def conv2d_backward(x, weight, dy, sh, sw, pt, pl, nchunks, gw, gb, flipped=False):
    """dx of the conv block kernel; fills gw and gb."""
    oh, ow = dy.shape[2:]
    none = np.empty((0, 0, 0, 0), x.dtype)
    keep = np.empty((0, weight[0].size, oh * ow), x.dtype)
    return kf.conv_block_backward(x, weight, dy, none, np.empty((0, 0, 0, 0), np.int8), sh, sw,
                                  pt, pl, oh, ow, False, False, True, flipped, nchunks, gw, gb,
                                  keep)

# (C, H, W, filters, kernel (kh, kw), stride (sh, sw), padding)
CONFIGS = [
    (2, 5, 6, 3, (3, 3), (1, 1), "valid"),
    (2, 5, 6, 3, (3, 3), (1, 1), "same"),
    (2, 7, 6, 3, (3, 2), (2, 1), 1),
    (1, 9, 8, 2, (2, 3), (3, 2), "same"),
    (3, 7, 7, 2, (1, 1), (2, 2), "valid"),
    (3, 7, 6, 2, (1, 1), (1, 1), "valid"),  # a plain product (fused.is_plain_gemm)
    (2, 8, 9, 4, (5, 5), (1, 1), 2),
    (2, 6, 5, 3, (4, 4), (3, 3), "same"),
    (1, 4, 4, 2, (5, 3), (1, 1), 2),
    (2, 10, 7, 3, (3, 3), (3, 2), "valid"),
    (1, 5, 5, 1, (2, 2), (2, 2), "same"),
    # output rows of 8 at column stride 1 (conv._im2col_rows8): even, odd and strided rows
    (3, 8, 8, 4, (3, 3), (1, 1), "same"),
    (2, 7, 10, 3, (3, 3), (1, 1), "valid"),
    (2, 9, 8, 2, (3, 3), (2, 1), "same"),
]


def plan(h, w, k, stride, padding):
    (oh, t, b), (ow, l, r) = (window_geometry(s, kk, st, padding)
                              for s, kk, st in zip((h, w), k, stride))
    return oh, ow, (t, b, l, r)


def run_kernels(x, weight, bias, stride, pads, oh, ow, dy, nchunks=2, flipped=False):
    b = bias if bias is not None else np.zeros(0, x.dtype)
    y = conv2d_forward(x, weight, b, stride[0], stride[1], pads[0], pads[2], oh, ow, nchunks)
    gw = np.full_like(weight, np.nan)
    gb = np.full_like(bias, np.nan) if bias is not None else np.zeros(0, x.dtype)
    dx = conv2d_backward(x, weight, dy, stride[0], stride[1], pads[0], pads[2], nchunks,
                         gw, gb, flipped)
    return y, dx, gw, gb


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: "-".join(map(str, c)))
def test_conv2d_matches_reference(rng, cfg, dtype):
    c, h, w, o, k, stride, padding = cfg
    oh, ow, pads = plan(h, w, k, stride, padding)
    x = rng.standard_normal((3, c, h, w)).astype(dtype)
    weight = rng.standard_normal((o, c, *k)).astype(dtype)
    bias = rng.standard_normal(o).astype(dtype)
    dy = rng.standard_normal((3, o, oh, ow)).astype(dtype)
    # the flipped input gradient too, where the kernel allows it (stride 1, padding < kernel)
    flipped = stride == (1, 1) and max(pads[:2]) < k[0] and max(pads[2:]) < k[1]
    y, dx, gw, gb = run_kernels(x, weight, bias, stride, pads, oh, ow, dy, flipped=flipped)
    f64 = [a.astype(np.float64) for a in (x, weight, bias, dy)]
    want_y = ref.conv2d_forward(f64[0], f64[1], f64[2], stride, pads)
    want_dx, want_gw, want_gb = ref.conv2d_backward(f64[0], f64[1], f64[3], stride, pads)
    tol = 2e-5 if dtype == np.float32 else 1e-12
    for got, want in ((y, want_y), (dx, want_dx), (gw, want_gw), (gb, want_gb)):
        assert got.dtype == dtype
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol * np.abs(want).max())


def test_conv2d_matches_brute_force_formula(rng):
    x = rng.standard_normal((2, 2, 7, 6))
    weight = rng.standard_normal((3, 2, 3, 2))
    bias = rng.standard_normal(3)
    stride, pt, pl = (2, 3), 1, 0
    oh, ow = 4, 2
    want = np.empty((2, 3, oh, ow))
    for n, o, i, j in np.ndindex(want.shape):
        s = bias[o]
        for c, a, b in np.ndindex(2, 3, 2):
            r, q = i * stride[0] + a - pt, j * stride[1] + b - pl
            if 0 <= r < 7 and 0 <= q < 6:
                s += weight[o, c, a, b] * x[n, c, r, q]
        want[n, o, i, j] = s
    got = conv2d_forward(x, weight, bias, *stride, pt, pl, oh, ow, 2)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(ref.conv2d_forward(x, weight, bias, stride, (pt, pt, pl, 0)), want,
                               rtol=1e-12, atol=1e-12)


def test_conv2d_backward_is_the_adjoint_of_forward(rng):
    x = rng.standard_normal((2, 2, 6, 5))
    weight = rng.standard_normal((3, 2, 3, 3))
    dy = rng.standard_normal((2, 3, 3, 3))
    y = conv2d_forward(x, weight, np.zeros(0), 2, 2, 1, 1, 3, 3, 1)
    gw, gb = np.empty_like(weight), np.zeros(0)
    dx = conv2d_backward(x, weight, dy, 2, 2, 1, 1, 1, gw, gb)
    total = float(np.sum(y * dy))
    assert float(np.sum(dx * x)) == pytest.approx(total, rel=1e-12)
    assert float(np.sum(gw * weight)) == pytest.approx(total, rel=1e-12)


@pytest.mark.parametrize("nchunks", [1, 2, 3, 7])
def test_conv2d_results_do_not_depend_on_the_batch_split(rng, nchunks):
    x = rng.standard_normal((5, 2, 6, 6))
    weight = rng.standard_normal((3, 2, 3, 3))
    bias = rng.standard_normal(3)
    dy = rng.standard_normal((5, 3, 6, 6))
    base = run_kernels(x, weight, bias, (1, 1), (1, 1, 1, 1), 6, 6, dy, nchunks=1)
    got = run_kernels(x, weight, bias, (1, 1), (1, 1, 1, 1), 6, 6, dy, nchunks=nchunks)
    for a, b in zip(base, got):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def test_conv2d_without_bias_and_rows_no_window_reaches(rng):
    x = rng.standard_normal((2, 1, 7, 7)).astype(np.float32)
    weight = rng.standard_normal((2, 1, 3, 3)).astype(np.float32)
    dy = rng.standard_normal((2, 2, 2, 2)).astype(np.float32)
    y, dx, gw, gb = run_kernels(x, weight, None, (3, 3), (0, 0, 0, 0), 2, 2, dy)
    assert gb.size == 0
    np.testing.assert_allclose(y, ref.conv2d_forward(x, weight, None, (3, 3), (0, 0, 0, 0)),
                               rtol=1e-5, atol=1e-5)
    want_dx, want_gw, _ = ref.conv2d_backward(x, weight, dy, (3, 3), (0, 0, 0, 0))
    np.testing.assert_allclose(dx, want_dx, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(gw, want_gw, rtol=1e-5, atol=1e-5)
    assert np.all(dx[:, :, 6, :] == 0) and np.all(dx[:, :, :, 6] == 0)


def test_conv2d_handles_an_empty_batch():
    x = np.zeros((0, 2, 5, 5), np.float32)
    weight = np.ones((3, 2, 3, 3), np.float32)
    bias = np.ones(3, np.float32)
    y = conv2d_forward(x, weight, bias, 1, 1, 1, 1, 5, 5, 2)
    assert y.shape == (0, 3, 5, 5)
    gw, gb = np.full_like(weight, np.nan), np.full_like(bias, np.nan)
    dx = conv2d_backward(x, weight, np.zeros((0, 3, 5, 5), np.float32), 1, 1, 1, 1, 2, gw, gb)
    assert dx.shape == x.shape
    assert np.all(gw == 0) and np.all(gb == 0)


def test_batch_chunks_is_between_one_and_the_batch():
    assert kc.batch_chunks(0) == 1
    assert kc.batch_chunks(1) == 1
    assert 1 <= kc.batch_chunks(64) <= 64


def test_one_thread_blas_limits_blas_threads_and_restores_them():
    from threadpoolctl import threadpool_info

    def blas_threads():
        return {i["filepath"]: i["num_threads"] for i in threadpool_info()
                if i["user_api"] == "blas"}

    with kc.OneThreadBlas():
        pass
    before = blas_threads()
    with kc.OneThreadBlas():
        assert set(blas_threads().values()) == {1}
    assert blas_threads() == before
    with kc.OneThreadBlas(active=False):
        assert blas_threads() == before
