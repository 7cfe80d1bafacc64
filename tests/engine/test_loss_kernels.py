import numpy as np
import pytest

from engine.kernels import losses as lk
from engine.kernels.reference import losses as ref
from engine.losses import compute_loss

SOFTMAX = [lk.softmax_xent_serial, lk.softmax_xent_parallel]
BCE = [lk.sigmoid_bce_serial, lk.sigmoid_bce_parallel]


@pytest.mark.parametrize("kernel", SOFTMAX)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_xent_matches_reference(rng, dtype, kernel):
    logits = (rng.standard_normal((7, 5)) * 3).astype(dtype)
    labels = rng.integers(0, 5, 7)
    grad = np.empty_like(logits)
    total, hits = kernel(logits, labels, grad, 0.25)
    want, want_grad = ref.softmax_xent(logits.astype(np.float64), labels)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    assert total == pytest.approx(want, rel=tol)
    np.testing.assert_allclose(grad, 0.25 * want_grad, rtol=tol, atol=tol)
    assert hits == int(np.sum(np.argmax(logits, axis=1) == labels))


def test_softmax_xent_is_stable_for_huge_logits():
    logits = np.array([[1000.0, 0.0, -1000.0]])
    grad = np.empty_like(logits)
    total, hits = lk.softmax_xent(logits, np.array([1]), grad)
    assert total == pytest.approx(1000.0) and hits == 0
    assert np.isfinite(grad).all()


def test_large_inputs_take_the_parallel_kernel_with_the_same_result(rng):
    logits = rng.standard_normal((lk.SERIAL_BELOW // 10 + 5, 10)).astype(np.float32)
    labels = rng.integers(0, 10, len(logits))
    g1, g2 = np.empty_like(logits), np.empty_like(logits)
    assert lk.softmax_xent(logits, labels, g1, 0.5) == lk.softmax_xent_parallel(
        logits, labels, g2, 0.5)
    np.testing.assert_array_equal(g1, g2)


@pytest.mark.parametrize("kernel", BCE)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_bce_matches_reference(rng, dtype, kernel):
    z = (rng.standard_normal(11) * 4).astype(dtype)
    t = rng.integers(0, 2, 11).astype(dtype)
    grad = np.empty_like(z)
    total, hits = kernel(z, t, grad, 0.5)
    want, want_grad = ref.sigmoid_bce(z.astype(np.float64), t.astype(np.float64))
    tol = 1e-5 if dtype == np.float32 else 1e-12
    assert total == pytest.approx(want, rel=tol)
    np.testing.assert_allclose(grad, 0.5 * want_grad, rtol=tol, atol=tol)
    assert hits == int(np.sum((z > 0) == (t > 0.5)))


@pytest.mark.parametrize("kind", ["cross_entropy", "mse", "bce"])
def test_loss_gradients_match_finite_differences(rng, kind):
    pred = rng.standard_normal((4, 3))
    if kind == "cross_entropy":
        target = rng.integers(0, 3, 4)
    elif kind == "bce":
        target = rng.integers(0, 2, (4, 3)).astype(float)
    else:
        target = rng.standard_normal((4, 3))
    _, grad, _ = compute_loss(kind, pred, target)
    num = np.zeros_like(pred)
    eps = 1e-6
    for i in np.ndindex(pred.shape):
        p = pred.copy()
        p[i] += eps
        hi = compute_loss(kind, p, target)[0]
        p[i] -= 2 * eps
        lo = compute_loss(kind, p, target)[0]
        num[i] = (hi - lo) / (2 * eps)
    np.testing.assert_allclose(grad, num, rtol=1e-6, atol=1e-9)


def test_losses_are_means_like_pytorch():
    pred = np.array([[0.0, 0.0], [0.0, 0.0]])
    assert compute_loss("cross_entropy", pred, np.array([0, 1]))[0] == pytest.approx(np.log(2))
    assert compute_loss("mse", pred, np.ones((2, 2)))[0] == pytest.approx(1.0)
    assert compute_loss("bce", pred, np.ones((2, 2)))[0] == pytest.approx(np.log(2))
