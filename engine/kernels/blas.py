"""``gemm``: BLAS matrix products on flat buffers with leading dimensions, callable from kernels.

``np.dot`` in Numba takes whole contiguous matrices; the convolution kernels also need
sub-matrices of a buffer (rows of a padded image read with a shift, columns of a wider
matrix), transposed operands and accumulation into the output (``beta = 1``). ``gemm`` calls
the same SciPy BLAS that Numba's ``np.dot`` uses (through Numba's ``numba_xxgemm`` helper, so
kernels that call it stay cacheable). Without the JIT it runs the same product in numpy.

Row-major convention: ``c[i·ldc + j]`` (i < m, j < n) becomes
``alpha · sum_l A[i, l] · B[l, j] + beta · c[i·ldc + j]``, where A (m, k) is ``a`` read with
row stride ``lda`` (or its transpose when ``ta``: ``a`` then holds k rows of m) and B (k, n)
likewise from ``b``. With ``beta == 0`` the old ``c`` is not read. The buffers are 1-D
contiguous arrays of one float dtype; every element read or written must lie inside them
(checked).
"""

from __future__ import annotations

import numpy as np
from numba import types
from numba.extending import overload, register_jitable
from numba.np.linalg import ensure_blas


@register_jitable
def _span(rows: int, cols: int, ld: int) -> int:
    return (rows - 1) * ld + cols if rows > 0 and cols > 0 else 0


@register_jitable
def _check_operands(ta: bool, tb: bool, m: int, n: int, k: int, a: np.ndarray, lda: int,
                    b: np.ndarray, ldb: int, c: np.ndarray, ldc: int) -> None:
    ar, ac = (k, m) if ta else (m, k)
    br, bc = (n, k) if tb else (k, n)
    if (_span(ar, ac, lda) > a.size or _span(br, bc, ldb) > b.size
            or _span(m, n, ldc) > c.size or min(m, n, k) < 0):
        raise ValueError("gemm: operand outside its buffer")


def _view(buf: np.ndarray, rows: int, cols: int, ld: int) -> np.ndarray:
    return np.lib.stride_tricks.as_strided(buf, (rows, cols), (ld * buf.itemsize, buf.itemsize))


def gemm(ta: bool, tb: bool, m: int, n: int, k: int, alpha: float, a: np.ndarray, lda: int,
         b: np.ndarray, ldb: int, beta: float, c: np.ndarray, ldc: int) -> None:
    """c (m, n; row stride ldc) = alpha · op(a) (m, k) @ op(b) (k, n) + beta · c (see module)."""
    _check_operands(ta, tb, m, n, k, a, lda, b, ldb, c, ldc)
    ar, ac = (k, m) if ta else (m, k)
    br, bc = (n, k) if tb else (k, n)
    if m == 0 or n == 0:
        return
    out = _view(c, m, n, ldc)
    if k == 0:
        prod = np.zeros((m, n), c.dtype)
    else:
        av = _view(a, ar, ac, lda)
        bv = _view(b, br, bc, ldb)
        prod = (av.T if ta else av) @ (bv.T if tb else bv)
    if beta == 0:
        out[...] = alpha * prod
    else:
        out[...] = alpha * prod + beta * out


def _xxgemm(dtype: types.Type) -> types.ExternalFunction:
    sig = types.intc(types.char, types.char, types.char, types.intp, types.intp, types.intp,
                     types.CPointer(dtype), types.CPointer(dtype), types.intp,
                     types.CPointer(dtype), types.intp, types.CPointer(dtype),
                     types.CPointer(dtype), types.intp)
    return types.ExternalFunction("numba_xxgemm", sig)


@overload(gemm, jit_options={"nogil": True})
def _gemm_jit(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc):
    ensure_blas()
    dt = a.dtype
    if dt not in (types.float32, types.float64) or b.dtype != dt or c.dtype != dt:
        return None
    fn = _xxgemm(dt)
    kind = ord("s") if dt == types.float32 else ord("d")
    ndt = np.float32 if dt == types.float32 else np.float64
    big_n, big_t = ord("N"), ord("T")

    def impl(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc):
        _check_operands(ta, tb, m, n, k, a, lda, b, ldb, c, ldc)
        if m == 0 or n == 0:
            return
        if k == 0:
            for i in range(m):
                row = c[i * ldc:i * ldc + n]
                if beta == 0:
                    row[:] = 0
                else:
                    row *= beta
            return
        scal = np.empty(2, ndt)
        scal[0] = alpha
        scal[1] = beta
        # Row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T.
        r = fn(kind, big_t if tb else big_n, big_t if ta else big_n, n, m, k,
               scal[0:].ctypes, b.ctypes, max(ldb, 1), a.ctypes, max(lda, 1), scal[1:].ctypes,
               c.ctypes, max(ldc, 1))
        if r < 0:
            raise RuntimeError("gemm: BLAS is not available")

    return impl


__all__ = ["gemm"]
