"""The flat depthwise 3×3 kernels: stride 1 'same' (``kernels.depthwise_same``) and stride 2
(``kernels.depthwise_s2``). Which shapes they take, float64 reference results for every
gradient over the geometries their flat loops have to get right (dilations, planes narrower
than the dilation, one-pixel planes, odd and even sizes, both paddings stride 2 takes, more
planes than slices and a count the slices do not divide), float32 agreement with the direct
kernels they replace, and results that do not depend on the thread count. Finite differences:
the ``depthwise``, ``depthwise-same-dilated`` and ``depthwise-stride2`` Conv2D examples of the
contract harness run these kernels. ``test_without_jit`` runs this file again with
``NUMBA_DISABLE_JIT=1``."""

import numpy as np
import pytest

from engine.kernels import depthwise as kd
from engine.kernels import depthwise_s2 as k2
from engine.kernels import depthwise_same as ks
from engine.kernels import groupconv as kg
from engine.kernels.jit import jit_disabled
from engine.kernels.reference import conv as ref


def test_applies_to_stride_1_same_convs_with_one_filter_per_channel_only():
    assert ks.applies(8, 8, 28, 28, 28, 28, 1, 1, 1, 1, 1, 1)
    assert ks.applies(8, 8, 9, 7, 9, 7, 1, 1, 2, 3, 2, 3)
    assert not ks.applies(8, 16, 28, 28, 28, 28, 1, 1, 1, 1, 1, 1)  # multiplier 2
    assert not ks.applies(8, 8, 28, 28, 14, 14, 2, 2, 1, 1, 1, 1)  # stride 2
    assert not ks.applies(8, 8, 28, 28, 26, 26, 1, 1, 1, 1, 0, 0)  # no padding
    assert not ks.applies(8, 8, 28, 28, 28, 28, 1, 1, 1, 1, 2, 0)  # shifted padding


SAME = [  # (N, C, H, W), (dh, dw)
    ((3, 4, 6, 7), (1, 1)),
    ((2, 3, 9, 8), (2, 2)),
    ((2, 3, 9, 8), (3, 1)),  # dilations that differ
    ((2, 2, 5, 2), (1, 3)),  # a plane narrower than the dilation: no column in reach
    ((2, 3, 1, 1), (1, 1)),  # one pixel
    ((3, 7, 4, 37), (1, 1)),  # 21 planes over 16 slices; rows longer than a vector
    ((1, 40, 3, 3), (1, 1)),  # more channels than slices
]


@pytest.mark.parametrize(("shape", "dil"), SAME)
@pytest.mark.parametrize("bias", [True, False])
def test_forward_and_gradients_match_the_float64_reference(rng, shape, dil, bias):
    c = shape[1]
    dh, dw = dil
    x = rng.standard_normal(shape)
    weight = rng.standard_normal((c, 1, 3, 3))
    b = rng.standard_normal(c) if bias else np.zeros(0)
    dy = rng.standard_normal(shape)
    pads = (dh, dh, dw, dw)
    y = np.full(shape, 7.0)
    ks._same_forward(x, weight, b, dh, dw, y)
    np.testing.assert_allclose(y, ref.conv2d_forward(x, weight, b if bias else None, (1, 1),
                                                     pads, dil, c), rtol=1e-10, atol=1e-10)
    gw, gb = np.full_like(weight, 7.0), np.full(c if bias else 0, 7.0)  # overwritten
    dx = ks._same_backward(x, weight, dy, dh, dw, gw, gb)
    want_dx, want_gw, want_gb = ref.conv2d_backward(x, weight, dy, (1, 1), pads, dil, c)
    np.testing.assert_allclose(dx, want_dx, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(gw, want_gw, rtol=1e-10, atol=1e-10)
    if bias:
        np.testing.assert_allclose(gb, want_gb, rtol=1e-10, atol=1e-10)


def test_the_depthwise_entry_points_run_them_and_agree_with_the_direct_kernels(rng):
    """float32 at a MobileNet-like shape: ``groupconv.depthwise_*`` (the layer's calls) against
    the direct kernels, which handle every stride, dilation and padding."""
    x = rng.standard_normal((3, 8, 14, 14)).astype(np.float32)
    weight = rng.standard_normal((8, 1, 3, 3)).astype(np.float32)
    b = rng.standard_normal(8).astype(np.float32)
    dy = rng.standard_normal(x.shape).astype(np.float32)
    y, y_direct = np.empty_like(x), np.empty_like(x)
    kg.depthwise_forward(x, weight, b, 1, 1, 1, 1, 1, 1, y)
    kd._depthwise3_forward(x, weight, b, 1, 1, 1, 1, 1, 1, y_direct)
    np.testing.assert_allclose(y, y_direct, rtol=1e-5, atol=1e-5)
    gw, gb = np.empty_like(weight), np.empty_like(b)
    gw_d, gb_d = np.empty_like(weight), np.empty_like(b)
    dx = kg.depthwise_backward(x, weight, dy, 1, 1, 1, 1, 1, 1, gw, gb)
    dx_d = kd._depthwise3_backward(x, weight, dy, 1, 1, 1, 1, 1, 1, gw_d, gb_d)
    np.testing.assert_allclose(dx, dx_d, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(gw, gw_d, rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(gb, gb_d, rtol=1e-4, atol=1e-3)


def test_stride_2_applies_to_paddings_0_and_1_reaching_every_input_row_and_column():
    assert k2.applies(8, 8, 28, 28, 14, 14, 2, 2, 1, 1, 0, 0)  # TensorFlow's 'same'
    assert k2.applies(8, 8, 28, 28, 14, 14, 2, 2, 1, 1, 1, 1)  # PyTorch's padding=1
    assert k2.applies(8, 8, 7, 7, 4, 4, 2, 2, 1, 1, 1, 1)
    assert not k2.applies(8, 8, 8, 8, 3, 3, 2, 2, 1, 1, 0, 0)  # no padding: row 7 unread
    assert not k2.applies(8, 16, 28, 28, 14, 14, 2, 2, 1, 1, 1, 1)  # multiplier 2
    assert not k2.applies(8, 8, 28, 28, 14, 14, 2, 2, 2, 2, 1, 1)  # dilation 2
    assert not k2.applies(8, 8, 28, 28, 14, 14, 2, 2, 1, 1, 2, 2)  # padding 2
    assert not k2.applies(8, 8, 28, 28, 28, 14, 1, 2, 1, 1, 1, 1)  # stride (1, 2)


STRIDE2 = [  # (N, C, H, W), pads (t, b, l, r)
    ((3, 4, 6, 7), (1, 1, 1, 1)),
    ((2, 3, 8, 8), (0, 1, 0, 1)),  # MobileNet's 'same' on even sizes
    ((2, 3, 7, 7), (1, 1, 1, 1)),  # odd sizes: the last phase row and column past the image
    ((2, 3, 9, 10), (1, 1, 0, 1)),  # mixed paddings
    ((2, 2, 1, 1), (1, 1, 1, 1)),  # one pixel
    ((2, 2, 2, 3), (0, 1, 1, 1)),
    ((2, 2, 1, 5), (0, 2, 1, 1)),  # one output row: every row tap reads the margins
    ((3, 7, 28, 28), (0, 1, 0, 1)),  # 21 planes over 16 slices, MobileNet's first size
]


@pytest.mark.parametrize(("shape", "pads"), STRIDE2)
@pytest.mark.parametrize("bias", [True, False])
def test_stride_2_forward_and_gradients_match_the_float64_reference(rng, shape, pads, bias):
    n, c, h, w = shape
    pt, pb, pl, pr = pads
    oh, ow = (h + pt + pb - 3) // 2 + 1, (w + pl + pr - 3) // 2 + 1
    assert k2.applies(c, c, h, w, oh, ow, 2, 2, 1, 1, pt, pl)
    x = rng.standard_normal(shape)
    weight = rng.standard_normal((c, 1, 3, 3))
    b = rng.standard_normal(c) if bias else np.zeros(0)
    dy = rng.standard_normal((n, c, oh, ow))
    y = np.full((n, c, oh, ow), 7.0)
    k2._s2_forward(x, weight, b, pt, pl, y)
    np.testing.assert_allclose(y, ref.conv2d_forward(x, weight, b if bias else None, (2, 2),
                                                     pads, (1, 1), c), rtol=1e-10, atol=1e-10)
    gw, gb = np.full_like(weight, 7.0), np.full(c if bias else 0, 7.0)  # overwritten
    dx = k2._s2_backward(x, weight, dy, pt, pl, gw, gb)
    want_dx, want_gw, want_gb = ref.conv2d_backward(x, weight, dy, (2, 2), pads, (1, 1), c)
    np.testing.assert_allclose(dx, want_dx, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(gw, want_gw, rtol=1e-10, atol=1e-10)
    if bias:
        np.testing.assert_allclose(gb, want_gb, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("pad", [0, 1])
def test_stride_2_entry_points_run_them_and_agree_with_the_direct_kernels(rng, pad):
    x = rng.standard_normal((3, 8, 14, 14)).astype(np.float32)
    weight = rng.standard_normal((8, 1, 3, 3)).astype(np.float32)
    b = rng.standard_normal(8).astype(np.float32)
    dy = rng.standard_normal((3, 8, 7, 7)).astype(np.float32)
    y, y_direct = np.empty_like(dy), np.empty_like(dy)
    kg.depthwise_forward(x, weight, b, 2, 2, 1, 1, pad, pad, y)
    kd._depthwise3_forward(x, weight, b, 2, 2, 1, 1, pad, pad, y_direct)
    np.testing.assert_allclose(y, y_direct, rtol=1e-5, atol=1e-5)
    gw, gb = np.empty_like(weight), np.empty_like(b)
    gw_d, gb_d = np.empty_like(weight), np.empty_like(b)
    dx = kg.depthwise_backward(x, weight, dy, 2, 2, 1, 1, pad, pad, gw, gb)
    dx_d = kd._depthwise3_backward(x, weight, dy, 2, 2, 1, 1, pad, pad, gw_d, gb_d)
    np.testing.assert_allclose(dx, dx_d, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(gw, gw_d, rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(gb, gb_d, rtol=1e-4, atol=1e-3)


@pytest.mark.skipif(jit_disabled(), reason="thread counts are Numba's")
def test_results_do_not_depend_on_the_thread_count(rng):
    import numba

    x = rng.standard_normal((5, 7, 9, 9)).astype(np.float32)
    weight = rng.standard_normal((7, 1, 3, 3)).astype(np.float32)
    dy = rng.standard_normal(x.shape).astype(np.float32)
    before = numba.get_num_threads()
    outs = []
    try:
        for threads in sorted({1, numba.config.NUMBA_NUM_THREADS}):
            numba.set_num_threads(threads)
            gw, gb = np.empty_like(weight), np.empty(7, np.float32)
            dx = ks._same_backward(x, weight, dy, 1, 1, gw, gb)
            gw2, gb2 = np.empty_like(weight), np.empty(7, np.float32)
            dx2 = k2._s2_backward(x, weight, np.ascontiguousarray(dy[:, :, :5, :5]), 1, 1,
                                  gw2, gb2)
            outs.append((dx, gw, gb, dx2, gw2, gb2))
    finally:
        numba.set_num_threads(before)
    for got in outs[1:]:
        for a, b in zip(got, outs[0]):
            np.testing.assert_array_equal(a, b)
