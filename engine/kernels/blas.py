"""BLAS matrix products callable from kernels: ``gemm`` on flat buffers with leading dimensions,
``gemm_arrays`` on whole 2-D arrays through numpy's own CBLAS (``blas_address``).

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

import ctypes

import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic, overload, register_jitable
from numba.np.linalg import ensure_blas

from .jit import jit_disabled, njit


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


_CBLAS: dict[str, int] = {}


def blas_address(dtype: np.dtype) -> int:
    """Address of ``cblas_?gemm`` (ILP64) in numpy's own OpenBLAS for ``dtype``, or 0.

    numpy's bundled OpenBLAS is newer than SciPy's, which Numba's ``np.dot`` calls, and runs
    the kernels' small GEMMs faster. 0 (not found, another BLAS, or the JIT disabled) makes
    ``gemm_arrays`` use ``np.dot``."""
    dtype = np.dtype(dtype)
    if jit_disabled() or dtype.kind != "f" or dtype.itemsize not in (4, 8):
        return 0
    if not _CBLAS:
        _CBLAS.update(s=0, d=0)
        try:
            from threadpoolctl import threadpool_info

            for info in threadpool_info():
                if info.get("user_api") != "blas" or "numpy" not in info.get("filepath", ""):
                    continue
                lib = ctypes.CDLL(info["filepath"])
                for prefix in ("scipy_cblas_", "cblas_"):
                    if hasattr(lib, f"{prefix}sgemm64_") and hasattr(lib, f"{prefix}dgemm64_"):
                        for k in "sd":
                            fn = getattr(lib, f"{prefix}{k}gemm64_")
                            _CBLAS[k] = ctypes.cast(fn, ctypes.c_void_p).value or 0
                        break
        except (OSError, ImportError, AttributeError):
            _CBLAS.update(s=0, d=0)
    return _CBLAS["s" if dtype.itemsize == 4 else "d"]


@intrinsic
def _cblas_gemm(typingctx, addr, a, b, beta, out):
    """out = a @ b + beta · out through the ILP64 ``cblas_?gemm`` at ``addr``; a and b C- or
    F-contiguous (F = a transposed C array), out C-contiguous, one float dtype (beta 0: the
    old out is not read)."""
    arrays = (a, b, out)
    if (not all(isinstance(t, types.Array) and t.ndim == 2 for t in arrays)
            or not isinstance(addr, types.Integer) or out.layout != "C"
            or not isinstance(beta, types.Float)
            or a.layout not in "CF" or b.layout not in "CF"
            or not a.dtype == b.dtype == out.dtype
            or a.dtype not in (types.float32, types.float64)):
        return None

    def codegen(context, builder, signature, args):
        i32, i64 = ir.IntType(32), ir.IntType(64)
        el = context.get_value_type(a.dtype)
        vp = cgutils.voidptr_t
        fnty = ir.FunctionType(ir.VoidType(),
                               [i32, i32, i32, i64, i64, i64, el, vp, i64, vp, i64, el, vp, i64])
        fn = builder.inttoptr(args[0], fnty.as_pointer())
        av, bv, ov = (context.make_array(t)(context, builder, v)
                      for t, v in zip(arrays, (args[1], args[2], args[4])))
        m, k = cgutils.unpack_tuple(builder, av.shape, 2)
        n = cgutils.unpack_tuple(builder, bv.shape, 2)[1]
        trans_a = ir.Constant(i32, 112 if a.layout == "F" else 111)
        trans_b = ir.Constant(i32, 112 if b.layout == "F" else 111)
        lda = m if a.layout == "F" else k
        ldb = k if b.layout == "F" else n
        beta_v = context.cast(builder, args[3], beta, a.dtype)
        builder.call(fn, [ir.Constant(i32, 101), trans_a, trans_b, m, n, k, ir.Constant(el, 1.0),
                          builder.bitcast(av.data, vp), lda, builder.bitcast(bv.data, vp), ldb,
                          beta_v, builder.bitcast(ov.data, vp), n])
        return context.get_dummy_value()

    return types.void(types.int64, a, b, beta, out), codegen


@njit(parallel=False)
def gemm_arrays(blas: int, a: np.ndarray, b: np.ndarray, out: np.ndarray,
                beta: float = 0.0) -> None:
    """out (m, n) = a (m, k) @ b (k, n) (+ out when ``beta`` is 1) for 2-D arrays of one float
    dtype, a and b C- or F-contiguous (``.T`` of a C array), out C-contiguous: numpy's CBLAS
    at address ``blas`` (``blas_address``), or ``np.dot`` when ``blas`` is 0."""
    if blas != 0:
        _cblas_gemm(blas, a, b, beta, out)
    elif beta == 0.0:
        np.dot(a, b, out)
    else:
        out += np.dot(a, b)


__all__ = ["blas_address", "gemm", "gemm_arrays"]
