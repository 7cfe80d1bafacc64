"""Per-pixel cross-entropy (``pixel_cross_entropy``) and mean IoU: float64 references,
finite-difference gradients, PyTorch parity with ``F.cross_entropy`` on (N, C, H, W); BCE on
one-channel masks. Runs with Numba on and again with NUMBA_DISABLE_JIT=1 (test_without_jit)."""

import numpy as np
import pytest

from engine.errors import DataError
from engine.losses import compute_loss, iou_counts, mean_iou


def ref_pixel_xent(logits: np.ndarray, labels: np.ndarray) -> float:
    """Mean over pixels of −log softmax over axis 1, in float64, written out directly."""
    z = logits.astype(np.float64)
    z = z - z.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    n, _, h, w = logits.shape
    total = 0.0
    for i in range(n):
        for r in range(h):
            for c in range(w):
                total -= logp[i, labels[i, r, c], r, c]
    return total / (n * h * w)


def ref_iou(pred: np.ndarray, labels: np.ndarray, k: int) -> tuple[list[int], list[int], float]:
    """Per-class intersection and union counted pixel by pixel; mean over non-empty unions."""
    inter, union = [0] * k, [0] * k
    for p, t in zip(pred.reshape(-1).tolist(), labels.reshape(-1).tolist(), strict=True):
        for c in range(k):
            inter[c] += (p == c) and (t == c)
            union[c] += (p == c) or (t == c)
    live = [i / u for i, u in zip(inter, union, strict=True) if u]
    return inter, union, sum(live) / len(live)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_pixel_cross_entropy_matches_the_reference(rng, dtype):
    logits = (rng.standard_normal((3, 4, 5, 6)) * 3).astype(dtype)
    labels = rng.integers(0, 4, (3, 5, 6))
    loss, grad, met = compute_loss("pixel_cross_entropy", logits, labels)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    assert loss == pytest.approx(ref_pixel_xent(logits, labels), rel=tol)
    assert grad.shape == logits.shape and grad.dtype == dtype and grad.flags.c_contiguous
    assert met["accuracy"] == pytest.approx(np.mean(logits.argmax(axis=1) == labels))
    assert met["iou"] == pytest.approx(ref_iou(logits.argmax(axis=1), labels, 4)[2])


def test_pixel_cross_entropy_gradient_matches_finite_differences(rng):
    logits = rng.standard_normal((2, 3, 4, 5))
    labels = rng.integers(0, 3, (2, 4, 5))
    _, grad, _ = compute_loss("pixel_cross_entropy", logits, labels)
    num = np.zeros_like(logits)
    eps = 1e-6
    for i in np.ndindex(logits.shape):
        p = logits.copy()
        p[i] += eps
        hi = compute_loss("pixel_cross_entropy", p, labels)[0]
        p[i] -= 2 * eps
        lo = compute_loss("pixel_cross_entropy", p, labels)[0]
        num[i] = (hi - lo) / (2 * eps)
    np.testing.assert_allclose(grad, num, rtol=1e-6, atol=1e-10)


def test_bce_on_a_one_channel_mask_takes_masks_without_the_channel_axis(rng):
    logits = rng.standard_normal((2, 1, 4, 5))
    masks = rng.integers(0, 2, (2, 4, 5)).astype(np.float64)
    loss, grad, met = compute_loss("bce", logits, masks)
    z, t = logits[:, 0], masks
    want = np.mean(np.maximum(z, 0) - z * t + np.log1p(np.exp(-np.abs(z))))
    assert loss == pytest.approx(want, rel=1e-12)
    np.testing.assert_allclose(grad[:, 0], (1 / (1 + np.exp(-z)) - t) / t.size, rtol=1e-12)
    assert met["accuracy"] == pytest.approx(np.mean((z > 0) == (t > 0.5)))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_pixel_cross_entropy_matches_pytorch(rng, dtype):
    torch = pytest.importorskip("torch")
    logits = (rng.standard_normal((4, 5, 7, 6)) * 2).astype(dtype)
    labels = rng.integers(0, 5, (4, 7, 6))
    loss, grad, _ = compute_loss("pixel_cross_entropy", logits, labels)
    t = torch.tensor(logits, requires_grad=True)
    want = torch.nn.functional.cross_entropy(t, torch.tensor(labels))
    want.backward()
    tol = 2e-4 if dtype == np.float32 else 1e-10
    assert loss == pytest.approx(want.detach().item(), rel=tol)
    np.testing.assert_allclose(grad, t.grad.numpy(), rtol=tol, atol=tol * 1e-3)


def test_iou_counts_and_mean_match_a_pixel_by_pixel_count(rng):
    pred = rng.integers(0, 4, (3, 9, 8))
    labels = np.where(rng.random((3, 9, 8)) < 0.7, pred, rng.integers(0, 4, (3, 9, 8)))
    inter, union = iou_counts(pred, labels, 4)
    want_i, want_u, want = ref_iou(pred, labels, 4)
    assert inter.tolist() == want_i and union.tolist() == want_u
    assert mean_iou(inter, union) == pytest.approx(want, rel=1e-12)


def test_mean_iou_leaves_out_classes_nobody_saw():
    pred = np.array([[0, 0, 1, 1]])
    labels = np.array([[0, 1, 1, 1]])
    inter, union = iou_counts(pred, labels, 5)  # classes 2..4 are in neither
    assert inter.tolist() == [1, 2, 0, 0, 0] and union.tolist() == [2, 3, 0, 0, 0]
    assert mean_iou(inter, union) == pytest.approx((1 / 2 + 2 / 3) / 2)
    assert mean_iou(np.zeros(3), np.zeros(3)) == 0.0
    assert mean_iou(*iou_counts(labels, labels, 5)) == 1.0


def test_pixel_cross_entropy_refuses_wrong_shapes_and_labels(rng):
    logits = rng.standard_normal((2, 3, 4, 4))
    with pytest.raises(DataError, match="a label per pixel shaped"):
        compute_loss("pixel_cross_entropy", logits, rng.integers(0, 3, (2, 16)))
    with pytest.raises(DataError, match=r"labels must be in 0\.\.2"):
        compute_loss("pixel_cross_entropy", logits, np.full((2, 4, 4), 3))
    with pytest.raises(DataError, match=r"\(C, H, W\)"):
        compute_loss("pixel_cross_entropy", rng.standard_normal((2, 3)), np.zeros(2, int))
