import numpy as np
import pytest

from engine.kernels import activation as ak
from engine.kernels.reference import activation as ref

DTYPES = [np.float32, np.float64]


def tol(dtype):
    return {"rtol": 2e-6, "atol": 2e-6} if dtype == np.float32 else {"rtol": 1e-12, "atol": 1e-12}


# name -> (extra scalar args, backward reads "x" or "y")
ELEMENTWISE = {
    "relu": ((), "x"),
    "leaky_relu": ((0.07,), "x"),
    "sigmoid": ((), "y"),
    "tanh": ((), "y"),
    "hard_sigmoid": ((1 / 6, 0.4), "x"),
    "hard_swish": ((), "x"),
    "hard_tanh": ((-0.5, 1.5), "x"),
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(ELEMENTWISE))
def test_elementwise_kernels_match_reference(rng, name, dtype):
    args, bwd_reads = ELEMENTWISE[name]
    x = (rng.standard_normal(41) * 3).astype(dtype)
    dy = rng.standard_normal(41).astype(dtype)
    y = np.empty_like(x)
    getattr(ak, f"{name}_forward")(x, *args, y)
    want = getattr(ref, f"{name}_forward")(x.astype(np.float64), *args)
    np.testing.assert_allclose(y, want, **tol(dtype))
    assert y.dtype == dtype
    dx = np.empty_like(x)
    src = x if bwd_reads == "x" else y
    getattr(ak, f"{name}_backward")(src, *args, dy, dx)
    ref_src = x.astype(np.float64) if bwd_reads == "x" else want
    want_dx = getattr(ref, f"{name}_backward")(ref_src, *args, dy.astype(np.float64))
    np.testing.assert_allclose(dx, want_dx, **tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_swish_kernels_match_reference(rng, dtype):
    x = (rng.standard_normal(41) * 3).astype(dtype)
    dy = rng.standard_normal(41).astype(dtype)
    y, s, dx = np.empty_like(x), np.empty_like(x), np.empty_like(x)
    ak.swish_forward(x, 1.7, y, s)
    x64 = x.astype(np.float64)
    np.testing.assert_allclose(y, ref.swish_forward(x64, 1.7), **tol(dtype))
    np.testing.assert_allclose(s, ref.sigmoid_forward(1.7 * x64), **tol(dtype))
    ak.swish_backward(x, s, 1.7, dy, dx)
    np.testing.assert_allclose(dx, ref.swish_backward(x64, 1.7, dy.astype(np.float64)),
                               **tol(dtype))


def test_hard_sigmoid_is_the_catalogue_formula_not_pytorchs():
    x = np.array([-3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 2.5])
    y = np.empty_like(x)
    ak.hard_sigmoid_forward(x, 0.25, 0.5, y)
    np.testing.assert_array_equal(y, [0.0, 0.0, 0.25, 0.5, 0.75, 1.0, 1.0])
    ak.hard_sigmoid_forward(x, 1 / 6, 0.5, y)  # PyTorch's F.hardsigmoid
    np.testing.assert_allclose(y, [0.0, 1 / 6, 1 / 3, 0.5, 2 / 3, 5 / 6, 11 / 12])


def test_sigmoid_and_swish_are_stable_for_huge_inputs():
    x = np.array([-1000.0, -50.0, 0.0, 50.0, 1000.0], dtype=np.float32)
    y = np.empty_like(x)
    ak.sigmoid_forward(x, y)
    np.testing.assert_allclose(y, [0.0, 0.0, 0.5, 1.0, 1.0], atol=1e-7)
    s = np.empty_like(x)
    with np.errstate(all="raise"):
        ak.swish_forward(x, 1.0, y, s)
    np.testing.assert_allclose(y, [0.0, 0.0, 0.0, 50.0, 1000.0], atol=1e-6)
    dx = np.empty_like(x)
    ak.swish_backward(x, s, 1.0, np.ones_like(x), dx)
    np.testing.assert_allclose(dx, [0.0, 0.0, 0.5, 1.0, 1.0], atol=1e-6)


@pytest.mark.parametrize("dtype", DTYPES)
def test_prelu_kernels_match_reference(rng, dtype):
    x = rng.standard_normal((3, 4, 5)).astype(dtype)
    alpha = rng.uniform(0, 0.5, 4).astype(dtype)
    dy = rng.standard_normal(x.shape).astype(dtype)
    y = np.empty_like(x)
    ak.prelu_forward(x, alpha, y)
    np.testing.assert_allclose(y, ref.prelu_forward(x.astype(np.float64), alpha), **tol(dtype))
    dx = np.empty_like(x)
    dalpha = ak.prelu_backward(x, alpha, dy, dx)
    want_dx, want_da = ref.prelu_backward(x.astype(np.float64), alpha.astype(np.float64),
                                          dy.astype(np.float64))
    np.testing.assert_allclose(dx, want_dx, **tol(dtype))
    np.testing.assert_allclose(dalpha, want_da, rtol=1e-5 if dtype == np.float32 else 1e-12)


@pytest.mark.parametrize("dtype", DTYPES)
def test_softmax_kernels_match_reference(rng, dtype):
    x = (rng.standard_normal((6, 7)) * 4).astype(dtype)
    dy = rng.standard_normal(x.shape).astype(dtype)
    y = np.empty_like(x)
    ak.softmax_forward(x, y)
    want = ref.softmax_forward(x.astype(np.float64))
    np.testing.assert_allclose(y, want, **tol(dtype))
    np.testing.assert_allclose(y.sum(axis=1), 1.0, rtol=1e-6)
    dx = np.empty_like(x)
    ak.softmax_backward(y, dy, dx)
    np.testing.assert_allclose(dx, ref.softmax_backward(want, dy.astype(np.float64)),
                               **tol(dtype))


def test_softmax_is_stable_for_huge_scores():
    x = np.array([[1000.0, 0.0, -1000.0], [5.0, 5.0, 5.0]], dtype=np.float32)
    y = np.empty_like(x)
    ak.softmax_forward(x, y)
    np.testing.assert_allclose(y, [[1, 0, 0], [1 / 3, 1 / 3, 1 / 3]], atol=1e-7)


def test_hard_swish_is_pytorchs():
    x = np.array([-4.0, -3.0, -1.5, 0.0, 1.5, 3.0, 4.0])
    y = np.empty_like(x)
    ak.hard_swish_forward(x, y)
    np.testing.assert_allclose(y, [0.0, 0.0, -0.375, 0.0, 1.125, 3.0, 4.0])
