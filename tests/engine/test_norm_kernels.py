import numpy as np
import pytest

from engine.kernels import norm as nk
from engine.kernels import normact as na
from engine.kernels.reference import norm as ref

DTYPES = [np.float32, np.float64]


def tol(dtype):
    return {"rtol": 1e-5, "atol": 1e-5} if dtype == np.float32 else {"rtol": 1e-10, "atol": 1e-11}


def data(rng, dtype, shape=(4, 3, 5)):
    x = (rng.standard_normal(shape) * 2 + 3).astype(dtype)
    w = rng.uniform(0.5, 1.5, shape[1]).astype(dtype)
    b = rng.standard_normal(shape[1]).astype(dtype)
    dy = rng.standard_normal(shape).astype(dtype)
    return x, w, b, dy


def var64(x):
    return x.astype(np.float64).var(axis=(0, 2))


def relu_ref(y):
    return np.maximum(y, 0.0)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(4, 3, 5), (6, 4, 1), (5, 2, 7)])
@pytest.mark.parametrize("relu", [False, True])
@pytest.mark.parametrize("chunks", [1, 2, 7])
def test_batchnorm_train_kernels_match_reference(rng, dtype, shape, relu, chunks):
    """BatchNorm (+ ReLU, the fused NormBlock) against the float64 chain-rule reference, the
    rows cut into 1, 2 or 7 parallel runs (7 splits samples across runs)."""
    x, w, b, dy = data(rng, dtype, shape)
    eps = 1e-5
    y, yr = np.empty_like(x), np.empty_like(x) if relu else x[:0]
    mean, var, scale = (np.empty(shape[1]) for _ in range(3))
    na.bn_train_forward(x, w, b, eps, relu, chunks, y, yr, mean, var, scale)
    np.testing.assert_allclose(scale, w / np.sqrt(var64(x) + eps), rtol=1e-6)
    x64 = x.astype(np.float64)
    want_y, want_mean, want_var = ref.batchnorm_train_forward(x64, w, b, eps)
    np.testing.assert_allclose(y, want_y, **tol(dtype))
    if relu:
        np.testing.assert_allclose(yr, relu_ref(want_y), **tol(dtype))
    np.testing.assert_allclose(mean, want_mean, rtol=1e-12)
    np.testing.assert_allclose(var, want_var, rtol=1e-12)
    dx = np.empty_like(x)
    dw, db = np.empty_like(w), np.empty_like(b)
    na.bn_train_backward(x, dy, relu, chunks, mean, 1 / np.sqrt(var + eps), scale, b, w,
                         dx, dw, db)
    dy64 = dy.astype(np.float64)
    if relu:
        dy64 = dy64 * (yr > 0)
    want_dx, want_dw, want_db = ref.batchnorm_train_backward(x64, dy64, w.astype(np.float64),
                                                             eps)
    np.testing.assert_allclose(dx, want_dx, **tol(dtype))
    np.testing.assert_allclose(dw, want_dw, **tol(dtype))
    np.testing.assert_allclose(db, want_db, **tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("relu", [False, True])
def test_batchnorm_eval_kernels_match_reference(rng, dtype, relu):
    x, w, b, dy = data(rng, dtype)
    mean = rng.standard_normal(3).astype(dtype)
    var = rng.uniform(0.5, 2, 3).astype(dtype)
    eps = 1e-3
    y, yr = np.empty_like(x), np.empty_like(x) if relu else x[:0]
    na.bn_eval_forward(x, mean, var, w, b, eps, relu, 2, y, yr)
    args64 = [a.astype(np.float64) for a in (x, mean, var, w, b)]
    want_y = ref.batchnorm_eval_forward(*args64, eps)
    np.testing.assert_allclose(y, want_y, **tol(dtype))
    if relu:
        np.testing.assert_allclose(yr, relu_ref(want_y), **tol(dtype))
    dx = np.empty_like(x)
    dw, db = np.empty_like(w), np.empty_like(b)
    na.bn_eval_backward(x, dy, yr, relu, mean, var, w, eps, dx, dx[:0], dw, db)
    dy64 = dy.astype(np.float64) * ((yr > 0) if relu else 1.0)
    want = ref.batchnorm_eval_backward(args64[0], dy64, *args64[1:4], eps)
    for got, exp in zip((dx, dw, db), want):
        np.testing.assert_allclose(got, exp, **tol(dtype))
    if relu:  # the end of a residual block: the skip's gradient (the masked dy) written too
        dx2, dskip = np.empty_like(x), np.full_like(x, np.nan)
        na.bn_eval_backward(x, dy, yr, True, mean, var, w, eps, dx2, dskip, dw, db)
        np.testing.assert_array_equal(dskip, np.where(yr > 0, dy, 0))
        np.testing.assert_array_equal(dx2, dx)
        for got, exp in zip((dx2, dw, db), want):
            np.testing.assert_allclose(got, exp, **tol(dtype))


def test_batchnorm_train_output_is_normalised(rng):
    x, _, _, _ = data(rng, np.float32, (8, 2, 9))
    y = np.empty_like(x)
    mean, var, scale = (np.empty(2) for _ in range(3))
    na.bn_train_forward(x, np.ones(2, np.float32), np.zeros(2, np.float32), 0.0, False, 2,
                        y, y[:0], mean, var, scale)
    np.testing.assert_allclose(y.mean(axis=(0, 2)), 0.0, atol=1e-6)
    np.testing.assert_allclose(y.var(axis=(0, 2)), 1.0, rtol=1e-5)


def test_batchnorm_statistics_stay_exact_far_from_zero(rng):
    """The one-pass sums are shifted by a value of the channel: a mean 10⁴ standard
    deviations from zero keeps the variance to float64 rounding."""
    x = (rng.standard_normal((16, 2, 50)) * 1e-2 + 100.0)
    y = np.empty_like(x)
    mean, var, scale = (np.empty(2) for _ in range(3))
    na.bn_train_forward(x, np.ones(2), np.zeros(2), 1e-5, False, 3, y, y[:0], mean, var,
                        scale)
    np.testing.assert_allclose(var, x.var(axis=(0, 2)), rtol=1e-9)
    np.testing.assert_allclose(mean, x.mean(axis=(0, 2)), rtol=1e-14)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("chunks", [1, 2, 5])
def test_add_relu_kernels_match_reference(rng, dtype, chunks):
    """Add (+ ReLU, the fused AddBlock) and the masked gradient against numpy."""
    a, b, dy = (rng.standard_normal(37).astype(dtype) for _ in range(3))
    y, yr = np.empty_like(a), np.empty_like(a)
    na.add_forward(a, b, True, chunks, y, yr)
    want = a.astype(np.float64) + b
    np.testing.assert_allclose(y, want, **tol(dtype))
    np.testing.assert_array_equal(yr, np.maximum(y, 0))
    y2 = np.empty_like(a)
    na.add_forward(a, b, False, chunks, y2, a[:0])
    np.testing.assert_array_equal(y2, y)
    dx = np.empty_like(dy)
    na.relu_mask_backward(dy, yr, chunks, dx)
    np.testing.assert_array_equal(dx, np.where(y > 0, dy, 0))


@pytest.mark.parametrize("dtype", DTYPES)
def test_dropout_kernel_matches_reference(rng, dtype):
    x = rng.standard_normal(50).astype(dtype)
    u = rng.random(50, dtype=np.float32)
    y = np.empty_like(x)
    nk.dropout_apply(x, u, 0.3, y)
    np.testing.assert_allclose(y, ref.dropout_apply(x.astype(np.float64), u, 0.3), **tol(dtype))
    assert ((y == 0) == (u < 0.3)).all()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("chunks", [1, 4])
def test_batchnorm_add_relu_kernels_match_the_unfused_reference(rng, dtype, chunks):
    """BatchNorm, + skip, ReLU in one kernel (the fused NormAddBlock) against the float64
    references of the three nodes one after another."""
    x, w, b, dy = data(rng, dtype, (5, 3, 6))
    skip = rng.standard_normal(x.shape).astype(dtype)
    eps = 1e-5
    y, ya, yr = np.empty_like(x), np.empty_like(x), np.empty_like(x)
    mean, var, scale = (np.empty(3) for _ in range(3))
    na.bn_add_relu_train_forward(x, skip, w, b, eps, chunks, y, ya, yr, mean, var, scale)
    x64 = x.astype(np.float64)
    want_y, want_mean, want_var = ref.batchnorm_train_forward(x64, w, b, eps)
    np.testing.assert_allclose(y, want_y, **tol(dtype))
    np.testing.assert_allclose(mean, want_mean, rtol=1e-12)
    np.testing.assert_allclose(ya, want_y + skip, **tol(dtype))
    np.testing.assert_allclose(yr, relu_ref(want_y + skip), **tol(dtype))
    np.testing.assert_allclose(var, want_var, rtol=1e-12)
    dx, dskip = np.empty_like(x), np.empty_like(x)
    dw, db = np.empty_like(w), np.empty_like(b)
    na.bn_add_relu_train_backward(x, dy, yr, chunks, mean, 1 / np.sqrt(var + eps), w, dx, dskip,
                                  dw, db)
    g = dy.astype(np.float64) * (yr > 0)
    np.testing.assert_allclose(dskip, g, **tol(dtype))
    want_dx, want_dw, want_db = ref.batchnorm_train_backward(x64, g, w.astype(np.float64), eps)
    np.testing.assert_allclose(dx, want_dx, **tol(dtype))
    np.testing.assert_allclose(dw, want_dw, **tol(dtype))
    np.testing.assert_allclose(db, want_db, **tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_batchnorm_relu_backward_recomputes_the_forward_mask_exactly(rng, dtype):
    """The fused backward recomputes the ReLU's mask from x: it passes the gradient exactly
    where the forward's ReLU output is > 0, at values that normalise to exactly 0 too (x at
    the channel mean, bias 0), with more chunks than channels."""
    x = rng.integers(-3, 4, (6, 1, 8)).astype(dtype)
    x[:, 0, 0] = -x[:, 0, 1:].sum(axis=1)  # each sample sums to 0: the mean is exactly 0
    w, b = np.ones(1, dtype), np.zeros(1, dtype)
    y, yr = np.empty_like(x), np.empty_like(x)
    mean, var, scale = (np.empty(1) for _ in range(3))
    na.bn_train_forward(x, w, b, 1e-5, True, 4, y, yr, mean, var, scale)
    assert mean[0] == 0.0 and (x == 0).any()
    dy = np.ones_like(x)
    dx, dw, db = np.empty_like(x), np.empty_like(w), np.empty_like(b)
    na.bn_train_backward(x, dy, True, 4, mean, 1 / np.sqrt(var + 1e-5), scale, b, w, dx,
                         dw, db)
    assert db[0] == (yr > 0).sum()
    want_dx, _, _ = ref.batchnorm_train_backward(x.astype(np.float64), (yr > 0) * 1.0,
                                                 w.astype(np.float64), 1e-5)
    np.testing.assert_allclose(dx, want_dx, **tol(dtype))
