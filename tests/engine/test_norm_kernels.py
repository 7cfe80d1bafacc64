import numpy as np
import pytest

from engine.kernels import norm as nk
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


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(4, 3, 5), (6, 4, 1)])
def test_batchnorm_train_kernels_match_reference(rng, dtype, shape):
    x, w, b, dy = data(rng, dtype, shape)
    eps = 1e-5
    y = np.empty_like(x)
    mean, var = np.empty(shape[1]), np.empty(shape[1])
    nk.batchnorm_train_forward(x, w, b, eps, y, mean, var)
    x64 = x.astype(np.float64)
    want_y, want_mean, want_var = ref.batchnorm_train_forward(x64, w, b, eps)
    np.testing.assert_allclose(y, want_y, **tol(dtype))
    np.testing.assert_allclose(mean, want_mean, rtol=1e-12)
    np.testing.assert_allclose(var, want_var, rtol=1e-12)
    dx = np.empty_like(x)
    dw, db = np.empty_like(w), np.empty_like(b)
    nk.batchnorm_train_backward(x, dy, mean, 1 / np.sqrt(var + eps), w, dx, dw, db)
    want_dx, want_dw, want_db = ref.batchnorm_train_backward(x64, dy.astype(np.float64),
                                                             w.astype(np.float64), eps)
    np.testing.assert_allclose(dx, want_dx, **tol(dtype))
    np.testing.assert_allclose(dw, want_dw, **tol(dtype))
    np.testing.assert_allclose(db, want_db, **tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_batchnorm_eval_kernels_match_reference(rng, dtype):
    x, w, b, dy = data(rng, dtype)
    mean = rng.standard_normal(3).astype(dtype)
    var = rng.uniform(0.5, 2, 3).astype(dtype)
    eps = 1e-3
    y = np.empty_like(x)
    nk.batchnorm_eval_forward(x, mean, var, w, b, eps, y)
    args64 = [a.astype(np.float64) for a in (x, mean, var, w, b)]
    np.testing.assert_allclose(y, ref.batchnorm_eval_forward(*args64, eps), **tol(dtype))
    dx = np.empty_like(x)
    dw, db = np.empty_like(w), np.empty_like(b)
    nk.batchnorm_eval_backward(x, dy, mean, var, w, eps, dx, dw, db)
    want = ref.batchnorm_eval_backward(args64[0], dy.astype(np.float64), *args64[1:4], eps)
    for got, exp in zip((dx, dw, db), want):
        np.testing.assert_allclose(got, exp, **tol(dtype))


def test_batchnorm_train_output_is_normalised(rng):
    x, _, _, _ = data(rng, np.float32, (8, 2, 9))
    y = np.empty_like(x)
    mean, var = np.empty(2), np.empty(2)
    nk.batchnorm_train_forward(x, np.ones(2, np.float32), np.zeros(2, np.float32), 0.0,
                               y, mean, var)
    np.testing.assert_allclose(y.mean(axis=(0, 2)), 0.0, atol=1e-6)
    np.testing.assert_allclose(y.var(axis=(0, 2)), 1.0, rtol=1e-5)


@pytest.mark.parametrize("dtype", DTYPES)
def test_dropout_kernel_matches_reference(rng, dtype):
    x = rng.standard_normal(50).astype(dtype)
    u = rng.random(50, dtype=np.float32)
    y = np.empty_like(x)
    nk.dropout_apply(x, u, 0.3, y)
    np.testing.assert_allclose(y, ref.dropout_apply(x.astype(np.float64), u, 0.3), **tol(dtype))
    assert ((y == 0) == (u < 0.3)).all()
