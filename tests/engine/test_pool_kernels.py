import numpy as np
import pytest

from engine.kernels import pool as kp
from engine.kernels.reference import pool as ref
from engine.layers.conv import window_geometry
from engine.layers.pool import ceil_size

# (H, W, pool (kh, kw), stride (sh, sw), padding[, ceil_mode])
CONFIGS = [
    (6, 6, (2, 2), (2, 2), "valid"),
    (7, 5, (2, 2), (2, 2), "valid"),
    (7, 5, (2, 2), (2, 2), "same"),
    (6, 7, (3, 3), (1, 1), "same"),
    (7, 7, (3, 3), (2, 2), 1),
    (5, 8, (2, 3), (1, 2), 1),
    (9, 6, (3, 2), (3, 1), "valid"),
    (5, 5, (4, 4), (3, 3), "same"),
    (4, 6, (1, 1), (2, 3), "valid"),
    (8, 8, (4, 4), (2, 2), 2),
    (6, 7, (3, 2), (2, 1), 1),
    (8, 6, (3, 3), (2, 2), "valid", True),   # overhangs by one row and one column
    (8, 9, (3, 3), (2, 2), 1, True),          # overhangs past the padding
    (9, 7, (2, 2), (2, 2), "valid", True),
    (6, 6, (3, 2), (2, 3), 1, True),          # the last row window would start in the pad
]


def plan(h, w, k, stride, padding, ceil=False):
    (oh, t, b), (ow, l, r) = (window_geometry(s, kk, st, padding)
                              for s, kk, st in zip((h, w), k, stride))
    if ceil:
        oh, ow = ceil_size(h, k[0], stride[0], t, b), ceil_size(w, k[1], stride[1], l, r)
    return oh, ow, (t, b, l, r)


def args(k, stride, pads):
    return k[0], k[1], stride[0], stride[1], pads[0], pads[2]


def avg_args(k, stride, pads, h, w):
    return (*args(k, stride, pads), h + pads[1], w + pads[3])


def tol_for(dtype):
    return 1e-5 if dtype == np.float32 else 1e-12


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: "-".join(map(str, c)))
def test_maxpool_matches_reference(rng, cfg, dtype):
    h, w, k, stride, padding, *ceil = cfg
    oh, ow, pads = plan(h, w, k, stride, padding, *ceil)
    x = rng.standard_normal((2, 3, h, w)).astype(dtype)
    y, arg = kp.maxpool2d_forward(x, *args(k, stride, pads), oh, ow)
    assert y.dtype == dtype and arg.dtype == np.int32
    np.testing.assert_array_equal(y, ref.maxpool2d_forward(x, k, stride, pads, *ceil))
    dy = rng.standard_normal(y.shape).astype(dtype)
    dx = kp.maxpool2d_backward(dy, arg, h, w)
    assert dx.dtype == dtype
    want = ref.maxpool2d_backward(x, dy, k, stride, pads, *ceil)
    np.testing.assert_allclose(dx, want, rtol=tol_for(dtype), atol=tol_for(dtype))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("count_pad", [True, False])
@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: "-".join(map(str, c)))
def test_avgpool_matches_reference(rng, cfg, count_pad, dtype):
    h, w, k, stride, padding, *ceil = cfg
    oh, ow, pads = plan(h, w, k, stride, padding, *ceil)
    x = rng.standard_normal((2, 3, h, w)).astype(dtype)
    y = kp.avgpool2d_forward(x, *avg_args(k, stride, pads, h, w), oh, ow, count_pad)
    assert y.dtype == dtype
    tol = tol_for(dtype)
    np.testing.assert_allclose(y, ref.avgpool2d_forward(x, k, stride, pads, count_pad, *ceil),
                               rtol=tol, atol=tol)
    dy = rng.standard_normal(y.shape).astype(dtype)
    dx = kp.avgpool2d_backward(dy, *avg_args(k, stride, pads, h, w), h, w, count_pad)
    assert dx.dtype == dtype
    np.testing.assert_allclose(
        dx, ref.avgpool2d_backward(x, dy, k, stride, pads, count_pad, *ceil), rtol=tol, atol=tol)


def test_maxpool_never_picks_padding():
    x = -1.0 - np.arange(16, dtype=np.float64).reshape(1, 1, 4, 4)
    y, arg = kp.maxpool2d_forward(x, 3, 3, 2, 2, 1, 1, 2, 2)
    np.testing.assert_array_equal(y[0, 0], [[-1.0, -2.0], [-5.0, -6.0]])
    np.testing.assert_array_equal(arg[0, 0], [[0, 1], [4, 5]])


def test_maxpool_by_hand_and_overlapping_windows_add_up():
    x = np.array([[[[1.0, 5.0, 2.0], [0.0, 3.0, 4.0], [7.0, 1.0, 0.0]]]])
    y, arg = kp.maxpool2d_forward(x, 2, 2, 1, 1, 0, 0, 2, 2)
    np.testing.assert_array_equal(y[0, 0], [[5.0, 5.0], [7.0, 4.0]])
    dx = kp.maxpool2d_backward(np.ones_like(y), arg, 3, 3)
    np.testing.assert_array_equal(dx[0, 0], [[0, 2, 0], [0, 0, 1], [1, 0, 0]])


def test_maxpool_passes_nan_on():
    x = np.zeros((1, 1, 2, 2))
    x[0, 0, 1, 0] = np.nan
    x[0, 0, 1, 1] = 5.0
    y, _ = kp.maxpool2d_forward(x, 2, 2, 2, 2, 0, 0, 1, 1)
    assert np.isnan(y[0, 0, 0, 0])


def test_avgpool_same_padding_averages_real_pixels_only():
    x = np.arange(9, dtype=np.float64).reshape(1, 1, 3, 3)
    # "same", 2x2 stride 2 on 3x3: out 2x2, one pixel of padding at the bottom and right
    exclusive = kp.avgpool2d_forward(x, 2, 2, 2, 2, 0, 0, 4, 4, 2, 2, False)
    np.testing.assert_allclose(exclusive[0, 0], [[2.0, 3.5], [6.5, 8.0]])
    inclusive = kp.avgpool2d_forward(x, 2, 2, 2, 2, 0, 0, 4, 4, 2, 2, True)
    np.testing.assert_allclose(inclusive[0, 0], [[2.0, 1.75], [3.25, 2.0]])


def test_ceil_mode_by_hand_the_overhang_is_not_padding():
    # 3x3 image, 2x2 windows of stride 2, ceil_mode: a 2x2 output whose last row and column
    # windows overhang the image; max takes the real pixels, the average divides by them.
    x = np.arange(9, dtype=np.float64).reshape(1, 1, 3, 3)
    assert ceil_size(3, 2, 2, 0, 0) == 2
    y, _ = kp.maxpool2d_forward(x, 2, 2, 2, 2, 0, 0, 2, 2)
    np.testing.assert_array_equal(y[0, 0], [[4.0, 5.0], [7.0, 8.0]])
    avg = kp.avgpool2d_forward(x, 2, 2, 2, 2, 0, 0, 3, 3, 2, 2, True)
    np.testing.assert_allclose(avg[0, 0], [[2.0, 3.5], [6.5, 8.0]])
    # with a pixel of padding, 3x3 windows stride 2 on 4x4: the padding counts, the overhang
    # beyond it does not (PyTorch: divisor = window within the padded image)
    x = np.ones((1, 1, 4, 4))
    assert ceil_size(4, 3, 2, 1, 1) == 3
    avg = kp.avgpool2d_forward(x, 3, 3, 2, 2, 1, 1, 5, 5, 3, 3, True)
    # (torch.nn.functional.avg_pool2d(torch.ones(1, 1, 4, 4), 3, 2, 1, ceil_mode=True))
    np.testing.assert_allclose(avg[0, 0] * 36, [[16, 24, 12], [24, 36, 18], [12, 18, 9]])
