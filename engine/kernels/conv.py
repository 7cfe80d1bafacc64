"""The pieces every convolution kernel shares (``kernels.fused``, ``kernels.convgrid``):
padding copies, im2col / col2im, the sum of per-slice weight gradients, the batch split
(``batch_chunks``) and ``OneThreadBlas``. The Conv2D kernels themselves are the conv blocks of
``kernels.fused`` (a lone Conv2D runs them without their ReLU and pool).

Layouts follow PyTorch: x (N, C, H, W), weight (O, C, KH, KW), y (N, O, OH, OW).
The batch is split into ``nchunks`` contiguous slices run in parallel (pass the number of
threads, see ``batch_chunks``). Each slice allocates its buffers once, then per sample copies
the image into a zero-padded buffer, unfolds it (im2col, (C·KH·KW, OH·OW)) and multiplies the
small per-sample matrices with BLAS (``np.dot``).

Padding is given as ``pad_top`` / ``pad_left`` zeros before the image; the bottom and right
padding follow from the output size (windows that reach past the image read zeros), so
TensorFlow's asymmetric "same" padding needs nothing special.
"""

from __future__ import annotations

import threading

import numpy as np

from ..threads import current as current_threads
from ..threads import set_blas_threads
from .jit import njit


def batch_chunks(n: int) -> int:
    """How many parallel slices to cut a batch of ``n`` samples into: one per Numba thread."""
    return max(1, min(n, current_threads()))


_depth_lock = threading.Lock()


class OneThreadBlas:
    """Context manager: inside, BLAS runs single-threaded; thread counts are restored on exit.

    The kernels call BLAS (SciPy's, through Numba's np.dot) from every parallel chunk; a BLAS
    that starts threads of its own there oversubscribes the cores (measured: a 32->64-channel
    3x3 conv forward went from 7.4 ms to 3.0 ms at batch 64 on 2 cores). ``active=False``
    (one chunk: the kernel runs on one thread) leaves BLAS alone. Costs ~4 µs."""

    _depth = 0  # nested uses (per process): only the outermost one changes anything

    def __init__(self, active: bool = True) -> None:
        self.active = active
        self._saved: dict[str, int | None] = {}
        self._outer = False

    def __enter__(self) -> OneThreadBlas:
        if not self.active:
            return self
        with _depth_lock:
            if OneThreadBlas._depth:
                return self
            OneThreadBlas._depth += 1
        self._outer = True
        # process-wide and from any thread (threadpoolctl's limits would be ignored on a
        # training thread: see engine.threads)
        self._saved = set_blas_threads(1)
        return self

    def __exit__(self, *exc: object) -> None:
        if not self._outer:
            return
        set_blas_threads(self._saved)
        self._saved = {}
        self._outer = False
        with _depth_lock:
            OneThreadBlas._depth -= 1


@njit(parallel=False)
def _pad_into(buf: np.ndarray, img: np.ndarray, pt: int, pl: int) -> None:
    """Copy img (C, H, W) into buf (C, Hb, Wb) at (pt, pl); the border of buf stays as it is."""
    c_n, h_n, w_n = img.shape
    for c in range(c_n):
        for h in range(h_n):
            src = img[c, h]
            dst = buf[c, pt + h, pl:]
            for w in range(w_n):
                dst[w] = src[w]


@njit(parallel=False)
def _crop_from(dst: np.ndarray, buf: np.ndarray, pt: int, pl: int) -> None:
    """dst (C, H, W) = buf[:, pt:pt+H, pl:pl+W]."""
    c_n, h_n, w_n = dst.shape
    for c in range(c_n):
        for h in range(h_n):
            src = buf[c, pt + h, pl:]
            row = dst[c, h]
            for w in range(w_n):
                row[w] = src[w]


@njit(parallel=False)
def _im2col(src: np.ndarray, cols: np.ndarray, kh: int, kw: int, sh: int, sw: int,
            oh_n: int, ow_n: int) -> None:
    """cols[(c·KH + i)·KW + j, oh·OW + ow] = src[c, oh·sh + i, ow·sw + j].

    Flat unsigned offsets let Numba skip negative-index handling and vectorise the copies."""
    c_n, hb, wb = src.shape
    sf = src.reshape(c_n * hb * wb)
    cf = cols.reshape(cols.shape[0] * cols.shape[1])
    if sw == 1 and ow_n == 8:
        _im2col_rows8(sf, cf, c_n, hb, wb, kh, kw, sh, oh_n)
        return
    p_n = oh_n * ow_n
    for c in range(c_n):
        for i in range(kh):
            for j in range(kw):
                k = (c * kh + i) * kw + j
                for oh in range(oh_n):
                    s0 = np.uint64((c * hb + oh * sh + i) * wb + j)
                    d0 = np.uint64(k * p_n + oh * ow_n)
                    if sw == 1:
                        for ow in range(ow_n):
                            cf[d0 + np.uint64(ow)] = sf[s0 + np.uint64(ow)]
                    else:
                        for ow in range(ow_n):
                            cf[d0 + np.uint64(ow)] = sf[s0 + np.uint64(ow * sw)]


@njit(parallel=False)
def _im2col_rows8(sf: np.ndarray, cf: np.ndarray, c_n: int, hb: int, wb: int, kh: int,
                  kw: int, sh: int, oh_n: int) -> None:
    """``_im2col`` on flat arrays for output rows of 8 at column stride 1, two rows at a time.

    Loading both rows into locals before storing lets LLVM use vector moves, which a copy
    loop of unknown length 8 does not get (it runs the scalar remainder): measured 2× faster
    on 16 channels of 10×10 into 3×3 columns."""
    u = np.uint64
    p_n = oh_n * 8
    rs = u(sh * wb)
    for c in range(c_n):
        for i in range(kh):
            for j in range(kw):
                k = (c * kh + i) * kw + j
                for oh in range(0, oh_n - 1, 2):
                    s = u((c * hb + oh * sh + i) * wb + j)
                    t = s + rs
                    d = u(k * p_n + oh * 8)
                    a0 = sf[s]; a1 = sf[s + u(1)]; a2 = sf[s + u(2)]; a3 = sf[s + u(3)]  # noqa: E702
                    a4 = sf[s + u(4)]; a5 = sf[s + u(5)]; a6 = sf[s + u(6)]; a7 = sf[s + u(7)]  # noqa: E702
                    b0 = sf[t]; b1 = sf[t + u(1)]; b2 = sf[t + u(2)]; b3 = sf[t + u(3)]  # noqa: E702
                    b4 = sf[t + u(4)]; b5 = sf[t + u(5)]; b6 = sf[t + u(6)]; b7 = sf[t + u(7)]  # noqa: E702
                    cf[d] = a0; cf[d + u(1)] = a1; cf[d + u(2)] = a2; cf[d + u(3)] = a3  # noqa: E702
                    cf[d + u(4)] = a4; cf[d + u(5)] = a5; cf[d + u(6)] = a6; cf[d + u(7)] = a7  # noqa: E702
                    cf[d + u(8)] = b0; cf[d + u(9)] = b1; cf[d + u(10)] = b2  # noqa: E702
                    cf[d + u(11)] = b3; cf[d + u(12)] = b4; cf[d + u(13)] = b5  # noqa: E702
                    cf[d + u(14)] = b6; cf[d + u(15)] = b7  # noqa: E702
                if oh_n % 2:
                    s = u((c * hb + (oh_n - 1) * sh + i) * wb + j)
                    d = u(k * p_n + (oh_n - 1) * 8)
                    for q in range(8):
                        cf[d + u(q)] = sf[s + u(q)]


@njit(parallel=False)
def _col2im(cols: np.ndarray, dst: np.ndarray, kh: int, kw: int, sh: int, sw: int,
            oh_n: int, ow_n: int) -> None:
    """The adjoint of ``_im2col``: dst (zeroed here) gets every column entry added back."""
    c_n, hb, wb = dst.shape
    df = dst.reshape(c_n * hb * wb)
    cf = cols.reshape(cols.shape[0] * cols.shape[1])
    df[:] = 0
    p_n = oh_n * ow_n
    for c in range(c_n):
        for i in range(kh):
            for j in range(kw):
                k = (c * kh + i) * kw + j
                for oh in range(oh_n):
                    s0 = np.uint64((c * hb + oh * sh + i) * wb + j)
                    d0 = np.uint64(k * p_n + oh * ow_n)
                    if sw == 1:
                        for ow in range(ow_n):
                            df[s0 + np.uint64(ow)] += cf[d0 + np.uint64(ow)]
                    else:
                        for ow in range(ow_n):
                            df[s0 + np.uint64(ow * sw)] += cf[d0 + np.uint64(ow)]


@njit(parallel=False)
def _sum_parts(gparts: np.ndarray, bparts: np.ndarray, gweight: np.ndarray,
               gbias: np.ndarray) -> None:
    """gweight (O, C, KH, KW) = the sum over slices of gparts (slices ≥ 1, C·KH·KW, O), transposed;
    gbias = the sum of bparts (slices, O) when gbias is not empty."""
    nch, k_n, o_n = gparts.shape
    gw2 = gweight.reshape(o_n, k_n)
    acc = np.empty(o_n, gparts.dtype)
    for k in range(k_n):
        first = gparts[0, k]
        for o in range(o_n):  # a loop: an array copy compiles Numba's shape-mismatch message
            acc[o] = first[o]
        for ch in range(1, nch):
            row = gparts[ch, k]
            for o in range(o_n):
                acc[o] += row[o]
        for o in range(o_n):
            gw2[o, k] = acc[o]
    if gbias.shape[0] > 0:
        for o in range(o_n):
            t = 0.0
            for ch in range(nch):
                t += bparts[ch, o]
            gbias[o] = t
