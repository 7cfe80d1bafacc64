import numpy as np
import pytest

from engine.kernels import spatial as sk
from engine.kernels.reference import spatial as ref

IDENTITY = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])


def run(img, theta, out_hw):
    out = np.empty((img.shape[0], img.shape[1], *out_hw), img.dtype)
    sk.affine_sample_forward(img, theta, out)
    return out


def run_backward(img, theta, dout):
    dimg, dtheta = np.empty_like(img), np.empty_like(theta)
    sk.affine_sample_backward(img, theta, dout, dimg, dtheta)
    return dimg, dtheta


@pytest.mark.parametrize("dtype, tol", [(np.float32, 2e-5), (np.float64, 1e-12)])
@pytest.mark.parametrize("out_hw", [(5, 6), (4, 7), (9, 3)])
def test_sampler_matches_reference(rng, dtype, tol, out_hw):
    img = rng.standard_normal((3, 2, 5, 6)).astype(dtype)
    theta = (IDENTITY + 0.5 * rng.standard_normal((3, 2, 3))).astype(dtype)
    dout = rng.standard_normal((3, 2, *out_hw)).astype(dtype)
    out = run(img, theta, out_hw)
    dimg, dtheta = run_backward(img, theta, dout)
    i64, t64, d64 = (a.astype(np.float64) for a in (img, theta, dout))
    want_dimg, want_dtheta = ref.affine_sample_backward(i64, t64, d64)
    assert out.dtype == dimg.dtype == dtheta.dtype == dtype
    np.testing.assert_allclose(out, ref.affine_sample(i64, t64, *out_hw), atol=tol)
    np.testing.assert_allclose(dimg, want_dimg, atol=tol)
    np.testing.assert_allclose(dtheta, want_dtheta, atol=tol * 20)


def test_identity_reproduces_the_image_and_scaling_resamples_it(rng):
    img = rng.standard_normal((2, 3, 4, 5))
    theta = np.broadcast_to(IDENTITY, (2, 2, 3)).copy()
    np.testing.assert_allclose(run(img, theta, (4, 5)), img, atol=1e-12)
    half = run(img, theta, (2, 5))  # rows at y = -0.5, 0.5: halfway between rows 0-1, 2-3
    np.testing.assert_allclose(half, (img[:, :, 0::2] + img[:, :, 1::2]) / 2, atol=1e-12)


def test_translation_shifts_and_pads_with_zeros():
    img = np.arange(1.0, 13.0).reshape(1, 1, 3, 4)
    theta = IDENTITY[None].copy()
    theta[0, 0, 2] = 2 / 4  # one pixel to the right in a 4-wide image
    out = run(img, theta, (3, 4))
    np.testing.assert_allclose(out[0, 0, :, :3], img[0, 0, :, 1:])
    np.testing.assert_allclose(out[0, 0, :, 3], 0.0)
    far = theta.copy()
    far[0, :, 2] = 1e9
    assert np.all(run(img, far, (3, 4)) == 0)
    dimg, dtheta = run_backward(img, far, np.ones((1, 1, 3, 4)))
    assert np.all(dimg == 0) and np.all(dtheta == 0)


def test_theta_gradient_matches_finite_differences(rng):
    img = rng.standard_normal((2, 2, 6, 5))
    theta = IDENTITY + 0.3 * rng.standard_normal((2, 2, 3))
    dout = rng.standard_normal((2, 2, 4, 4))
    _, dtheta = run_backward(img, theta, dout)
    eps = 1e-7
    num = np.zeros_like(theta)
    for idx in np.ndindex(theta.shape):
        tp, tm = theta.copy(), theta.copy()
        tp[idx] += eps
        tm[idx] -= eps
        num[idx] = ((run(img, tp, (4, 4)) - run(img, tm, (4, 4))) * dout).sum() / (2 * eps)
    np.testing.assert_allclose(dtheta, num, rtol=1e-5, atol=1e-7)


def test_nan_theta_gives_nan_not_silence():
    img = np.ones((1, 1, 3, 3), np.float32)
    theta = np.full((1, 2, 3), np.nan, np.float32)
    assert np.isnan(run(img, theta, (3, 3))).all()


def test_matches_pytorch(rng):
    torch = pytest.importorskip("torch")
    f = torch.nn.functional
    img = rng.standard_normal((3, 2, 7, 5)).astype(np.float32)
    theta = (IDENTITY + 0.4 * rng.standard_normal((3, 2, 3))).astype(np.float32)
    dout = rng.standard_normal((3, 2, 4, 6)).astype(np.float32)
    ti = torch.from_numpy(img).requires_grad_(True)
    tt = torch.from_numpy(theta).requires_grad_(True)
    grid = f.affine_grid(tt, (3, 2, 4, 6), align_corners=False)
    out = f.grid_sample(ti, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    out.backward(torch.from_numpy(dout))
    np.testing.assert_allclose(run(img, theta, (4, 6)), out.detach().numpy(), atol=1e-5)
    dimg, dtheta = run_backward(img, theta, dout)
    np.testing.assert_allclose(dimg, ti.grad.numpy(), atol=1e-5)
    np.testing.assert_allclose(dtheta, tt.grad.numpy(), atol=1e-4)
