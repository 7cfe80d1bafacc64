"""Serial stand-ins for the fused kernels while their parallel variants compile
(``serial_first``), and the hooks that put them in place.

``conv_block_forward`` / ``conv_block_backward`` here take the arguments of the kernels of the
same name in ``fused`` and return the same results: the setup is plain Python, and the chunks
the parallel kernel would run at once run one after the other through the same per-slice
functions (``_fused._forward_slice`` / ``_backward_slice``), which the parallel kernel needs
anyway; so a first step compiles no wrapper at all. The Dense, optimizer and grid-conv
(``convgrid``, hooked there) kernels keep their loops inline: their stand-in is the kernel
compiled serially (``serial_variant``), which costs a fraction of the parallel compile. A
forward's first call also has the background process compile the matching backward's serial
pieces first (``*_prefetch``), while this process compiles the rest of the forward pass.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from numba.core import types

from . import optim
from .conv import _sum_parts
from .serial_first import Signature, serial_first

_fused: Any = None  # engine.kernels.fused, handed over by install() (no import cycle)


def _chunk_bounds(n_n: int, nchunks: int) -> list[tuple[int, int]]:
    """(lo, hi) of each chunk, as the parallel kernels split the batch."""
    nch = max(1, min(nchunks, n_n))
    return [(ch * n_n // nch, (ch + 1) * n_n // nch) for ch in range(nch)]


def conv_block_forward(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, sh: int, sw: int,
                       pt: int, pl: int, relu: bool, pool: bool, nchunks: int,
                       yconv: np.ndarray, yrelu: np.ndarray, ypool: np.ndarray,
                       arg: np.ndarray, keep: np.ndarray) -> None:
    """``_fused.conv_block_forward``, its chunks run one after the other."""
    n_n, c_n, h_n, w_n = x.shape
    o_n, _, kh, kw = weight.shape
    oh_n, ow_n = yconv.shape[2], yconv.shape[3]
    k_n = c_n * kh * kw
    hp = (oh_n - 1) * sh + kh
    wp = (ow_n - 1) * sw + kw
    direct = pt == 0 and pl == 0 and hp <= h_n and wp <= w_n
    plain = bool(_fused.is_plain_gemm(kh, kw, sh, sw, pt, pl, h_n, w_n, oh_n, ow_n))
    hb = max(hp, pt + h_n)
    wb = max(wp, pl + w_n)
    w2 = weight.reshape(o_n, k_n)
    has_bias = bias.shape[0] > 0
    bvec = bias if has_bias else np.zeros(o_n, dtype=x.dtype)
    keeping = keep.shape[0] == n_n and n_n > 0
    conv_out = yconv.shape[0] == n_n
    relu_out = relu and yrelu.shape[0] == n_n
    for lo, hi in _chunk_bounds(n_n, nchunks):
        _fused._forward_slice(x, w2, bvec, has_bias, sh, sw, pt, pl, kh, kw, relu, pool,
                             direct, plain, hb, wb, keeping, conv_out, relu_out, lo, hi,
                             yconv, yrelu, ypool, arg, keep)


def conv_block_backward(x: np.ndarray, weight: np.ndarray, dout: np.ndarray,
                        mask: np.ndarray, arg: np.ndarray, sh: int, sw: int, pt: int, pl: int,
                        oh_n: int, ow_n: int, relu: bool, pool: bool, need_dx: bool,
                        flipped: bool, nchunks: int, gweight: np.ndarray, gbias: np.ndarray,
                        keep: np.ndarray) -> np.ndarray:
    """``_fused.conv_block_backward``, its chunks run one after the other."""
    n_n, c_n, h_n, w_n = x.shape
    o_n, _, kh, kw = weight.shape
    k_n = c_n * kh * kw
    p_n = oh_n * ow_n
    hp = (oh_n - 1) * sh + kh
    wp = (ow_n - 1) * sw + kw
    direct = pt == 0 and pl == 0 and hp <= h_n and wp <= w_n
    hb = max(hp, pt + h_n)
    wb = max(wp, pl + w_n)
    w2 = weight.reshape(o_n, k_n)
    plain = bool(_fused.is_plain_gemm(kh, kw, sh, sw, pt, pl, h_n, w_n, oh_n, ow_n))
    keeping = keep.shape[0] == n_n and n_n > 0 and not plain
    trans = pool and p_n <= _fused.TRANSPOSED_MAX_PIXELS
    bounds = _chunk_bounds(n_n, nchunks)
    flip = need_dx and flipped and not plain
    need_dw = gweight.shape[0] > 0
    dx = np.empty((n_n if need_dx else 0, c_n, h_n, w_n), dtype=x.dtype)
    gparts = np.zeros((len(bounds), k_n if need_dw else 0, o_n), dtype=x.dtype)
    bparts = np.zeros((len(bounds), o_n if need_dw and gbias.shape[0] > 0 else 0),
                      dtype=np.float64)
    for ch, (lo, hi) in enumerate(bounds):
        _fused._backward_slice(x, weight, w2, dout, mask, arg, sh, sw, pt, pl, oh_n, ow_n,
                              relu, pool, need_dx, flip, need_dw, keeping, trans, direct,
                              plain, hb, wb, lo, hi, dx,
                              gparts[ch].reshape(gparts.shape[1] * o_n), bparts[ch], keep)
    if need_dw:
        _sum_parts(gparts, bparts, gweight, gbias)
    return dx


def _c(dtype: Any, ndim: int) -> Any:
    return types.Array(dtype, ndim, "C")


def conv_backward_prefetch(fwd: tuple[Any, ...]) -> list[Signature]:
    """The per-slice backward and the sum of the slices' parts that ``conv_block_backward``
    above calls after a forward with argument types ``fwd`` (x, weight, ..., arg, keep)."""
    x, weight, arg, keep = fwd[0], fwd[1], fwd[13], fwd[14]
    dt = x.dtype
    i64, b = types.int64, types.boolean
    slice_types = (x, weight, _c(dt, 2), _c(dt, 4), _c(dt, 4), arg, *(i64,) * 6, *(b,) * 9,
                   *(i64,) * 4, _c(dt, 4), _c(dt, 1), _c(types.float64, 1), keep)
    sums = (_c(dt, 3), _c(types.float64, 2), _c(dt, 4), _c(dt, 1))
    return [(_fused.__name__, "_backward_slice", slice_types),
            (_sum_parts.__module__, "_sum_parts", sums)]


def dense_backward_prefetch(name: str) -> Callable[[tuple[Any, ...]], list[Signature]]:
    """The serial ``name`` (a Dense backward) that follows a Dense forward of these types."""
    def prefetch(fwd: tuple[Any, ...]) -> list[Signature]:
        x, weight, y = fwd[0], fwd[1], fwd[5]
        dt = x.dtype
        return [(_fused.__name__, f"{name}__serial",
                 (x, weight, _c(dt, 2), y, types.boolean, types.boolean, types.int64,
                  _c(dt, 2), _c(dt, 1), types.int64))]
    return prefetch


def install(fused_module: Any) -> None:
    """Put the parallel kernels of ``fused_module`` (``engine.kernels.fused``, which calls this
    when it is imported) behind ``serial_first`` with the stand-ins above."""
    global _fused
    _fused = fused_module
    serial_first(fused_module.conv_block_forward, conv_block_forward, conv_backward_prefetch)
    serial_first(fused_module.conv_block_backward, conv_block_backward)
    serial_first(fused_module.dense_forward, prefetch=dense_backward_prefetch("dense_backward"))
    serial_first(fused_module.dense_rows_forward,
                 prefetch=dense_backward_prefetch("dense_rows_backward"))
    for kernel in (fused_module.dense_backward, fused_module.dense_rows_backward,
                   optim.sum_squares, optim.sgd_momentum_update):
        serial_first(kernel)
