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
def _cblas_gemm(typingctx, addr, ta, tb, m, n, k, a, lda, b, ldb, beta, out, ldc):
    """Row-major ``cblas_?gemm`` (ILP64) at ``addr`` on the data pointers of a, b and out (any
    layout: the caller gives the transpose flags, shapes and leading dimensions)."""
    arrays = (a, b, out)
    ints = (addr, ta, tb, m, n, k, lda, ldb, ldc)
    if (not all(isinstance(t, types.Array) and t.ndim == 2 for t in arrays)
            or not all(isinstance(t, types.Integer) for t in ints)
            or not isinstance(beta, types.Float)
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
        av, bv, ov = (context.make_array(t)(context, builder, args[i])
                      for t, i in zip(arrays, (6, 8, 11)))

        def cast(i, to):
            return context.cast(builder, args[i], signature.args[i], to)

        def as_i64(i):
            return builder.sext(args[i], i64) if args[i].type.width < 64 else \
                builder.trunc(args[i], i64) if args[i].type.width > 64 else args[i]

        def flag(i):  # CblasTrans (112) when set, else CblasNoTrans (111)
            nz = builder.icmp_signed("!=", args[i], ir.Constant(args[i].type, 0))
            return builder.select(nz, ir.Constant(i32, 112), ir.Constant(i32, 111))

        builder.call(fn, [ir.Constant(i32, 101), flag(1), flag(2), as_i64(3), as_i64(4),
                          as_i64(5), ir.Constant(el, 1.0), builder.bitcast(av.data, vp),
                          as_i64(7), builder.bitcast(bv.data, vp), as_i64(9),
                          cast(10, a.dtype), builder.bitcast(ov.data, vp), as_i64(12)])
        return context.get_dummy_value()

    sig = types.void(addr, ta, tb, m, n, k, a, lda, b, ldb, beta, out, ldc)
    return sig, codegen


@register_jitable
def _blas_operand(a: np.ndarray) -> tuple[int, int]:
    """(transposed, leading dimension) to hand ``a`` (2-D, rows × cols as the product reads
    it) to row-major BLAS, or (-1, 0) when neither axis has unit stride."""
    size = a.itemsize
    rows, cols = a.shape
    s0, s1 = a.strides
    if (s1 == size or cols <= 1) and s0 % size == 0 and s0 >= max(cols, 1) * size:
        return 0, s0 // size
    if (s0 == size or rows <= 1) and s1 % size == 0 and s1 >= max(rows, 1) * size:
        return 1, s1 // size
    return -1, 0


@njit(parallel=False)
def gemm_arrays(blas: int, a: np.ndarray, b: np.ndarray, out: np.ndarray,
                beta: float = 0.0) -> None:
    """out (m, n) = a (m, k) @ b (k, n) (+ out when ``beta`` is 1) for 2-D arrays of one float
    dtype through numpy's CBLAS at address ``blas`` (``blas_address``). Views are passed as
    they are when one axis of each has unit stride (a row block of a wider matrix, ``.T`` of
    one, rows of a buffer with a larger stride); ``np.dot`` on copies otherwise or when
    ``blas`` is 0. beta 0: the old out is not read."""
    m, n = out.shape
    k = a.shape[1]
    if m == 0 or n == 0:
        return
    ta, lda = _blas_operand(a)
    tb, ldb = _blas_operand(b)
    to, ldc = _blas_operand(out)
    if blas != 0 and k > 0 and ta >= 0 and tb >= 0 and to == 0:
        _cblas_gemm(blas, ta, tb, m, n, k, a, lda, b, ldb, beta, out, ldc)
    elif beta == 0.0:
        out[:, :] = np.dot(np.ascontiguousarray(a), np.ascontiguousarray(b))
    else:
        out += np.dot(np.ascontiguousarray(a), np.ascontiguousarray(b))


__all__ = ["blas_address", "gemm", "gemm_arrays"]
