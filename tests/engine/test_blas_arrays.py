"""``blas.gemm_arrays`` and ``blas.blas_address``: the 2-D products kernels call through
numpy's CBLAS, or ``np.dot`` when its address is 0."""

import numpy as np
import pytest

from engine.kernels import blas as kblas
from engine.kernels.jit import jit_disabled, njit


@njit(parallel=False)
def _run(blas, a, b, out, beta):
    kblas.gemm_arrays(blas, a, b, out, beta)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("ta", [False, True])
@pytest.mark.parametrize("tb", [False, True])
@pytest.mark.parametrize("beta", [0.0, 1.0])
def test_gemm_arrays_matches_numpy(rng, dtype, ta, tb, beta):
    m, k, n = 5, 7, 3
    a = rng.standard_normal((k, m) if ta else (m, k)).astype(dtype)
    b = rng.standard_normal((n, k) if tb else (k, n)).astype(dtype)
    av, bv = (a.T if ta else a), (b.T if tb else b)
    start = rng.standard_normal((m, n)).astype(dtype)
    want = av.astype(np.float64) @ bv.astype(np.float64) + beta * start
    tol = 1e-5 if dtype == np.float32 else 1e-12
    for blas in {kblas.blas_address(dtype), 0}:
        out = start.copy() if beta else np.full((m, n), np.nan, dtype)  # beta 0: not read
        _run(blas, av, bv, out, beta)
        np.testing.assert_allclose(out, want, rtol=tol, atol=tol, err_msg=f"blas {blas}")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gemm_arrays_reads_and_writes_strided_views(rng, dtype):
    """Operands and result that are views with a leading dimension larger than their width
    (a time step of a (H, T, N) buffer), plain and transposed, and a view with no unit stride
    (copied on the way)."""
    h, t, n, k = 6, 4, 3, 5
    buf = rng.standard_normal((h, t, n)).astype(dtype)
    w = rng.standard_normal((k, h)).astype(dtype)
    out = rng.standard_normal((k, t, n)).astype(dtype)
    keep = out.copy()
    tol = 1e-5 if dtype == np.float32 else 1e-12
    for blas in {kblas.blas_address(dtype), 0}:
        for beta in (0.0, 1.0):
            res = keep.copy()
            _run(blas, w, buf[:, 2, :], res[:, 1, :], beta)
            want = keep.copy()
            want[:, 1, :] = w @ buf[:, 2, :] + beta * keep[:, 1, :]
            np.testing.assert_allclose(res, want, rtol=tol, atol=tol)  # other steps untouched
            res2 = np.zeros((n, k), dtype)
            _run(blas, buf[:, 2, :].T, w.T, res2, beta)
            np.testing.assert_allclose(res2, buf[:, 2, :].T @ w.T, rtol=tol, atol=tol)
        res4 = np.zeros((k, t), dtype)
        _run(blas, w, buf[:, :, 1], res4, 0.0)  # no unit stride: copied
        np.testing.assert_allclose(res4, w @ buf[:, :, 1], rtol=tol, atol=tol)


def test_blas_address_is_found_for_numpys_openblas():
    from threadpoolctl import threadpool_info

    if jit_disabled() or not any("scipy_openblas64" in i.get("filepath", "")
                                 for i in threadpool_info()):
        pytest.skip("numpy does not bundle scipy-openblas64 here, or the JIT is off")
    assert kblas.blas_address(np.float32) != 0 and kblas.blas_address(np.float64) != 0
    assert kblas.blas_address(np.int32) == 0
