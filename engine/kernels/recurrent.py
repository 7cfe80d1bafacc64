"""Recurrent kernels: SimpleRNN (tanh), LSTM and GRU over whole sequences, forward and
backpropagation through time, with PyTorch's equations and gate order.

Layout: the batch is cut into ``C`` chunks, one per Numba thread, and each chunk is stored
time-major: arrays are ``(C, T, Nc, D)`` (``to_chunks`` / ``from_chunks`` convert from and to
``(N, T, D)``). A kernel runs ``prange`` over the chunks; each chunk does all of its work on its
own thread: the input projection, the recurrence with one GEMM per time step on the chunk's
(Nc, H) state, and, going backward, its share of the weight gradients. The threads never wait
for each other, and the whole layer is one parallel region per direction and pass. The
kernels call single-threaded BLAS (run them inside ``conv.OneThreadBlas()``).

Measured on the 2-core development machine (LSTM, batch 64, T 50, F 32, 128 units, training
step with MSE and SGD; benchmarks/bench_lstm.py): per-step GEMMs called from Python on the
whole batch with OpenBLAS's own two threads, elementwise work in Numba between them: 14-18 ms,
the two thread pools fighting over the cores at every step; weight gradients outside the
kernel with threaded numpy BLAS: 14.6 ms; this layout: 13.6 ms with the BLAS behind Numba's
``np.dot`` (SciPy's OpenBLAS 0.3.30) and 12.4 ms with numpy's own OpenBLAS (0.3.31), which
``blas_address`` finds and the kernels call directly (``np.dot`` when it is not there).

Each element-wise loop writes one array and runs from index 0: LLVM vectorises a loop only
when its runtime alias checks stay few, and a loop from an offset (``range(2 * H, 3 * H)``)
keeps Numba's negative-index wrap in the address and stays scalar. The LSTM builds its
pre-activations in the gates array (input projection, then each step's recurrent product
added by BLAS with beta = 1), so its gate loops are in-place passes.

Inside Numba, float32 ``tanh`` and the sigmoid use a vectorisable rational approximation
(max error 4e-7, the one Eigen uses); other dtypes use ``math.tanh``, so float64 gradient
checks see exact, smooth functions. The kernels let LLVM fuse multiply-adds
(``fastmath={"contract"}``, no reassociation) and skip Python's division checks
(``error_model="numpy"``); both are needed for the loops to vectorise.

G = 1 (RNN), 4 (LSTM: i, f, g, o), 3 (GRU: r, z, n) gates; weights come in PyTorch's layout
(``w_ih`` (G·H, F), ``w_hh`` (G·H, H)), forward kernels take them transposed and contiguous.
"""

from __future__ import annotations

import math

import numpy as np
from numba import types
from numba.extending import overload

from .blas import blas_address, gemm_arrays
from .conv import OneThreadBlas
from .jit import njit, prange

# ----- activations ---------------------------------------------------------------------------


def tanh_(x: float) -> float:
    """tanh; in Numba, float32 uses ``_tanh_f32`` (vectorisable), other types ``math.tanh``."""
    return math.tanh(x)


def sigmoid_(x: float) -> float:
    """Logistic sigmoid 1 / (1 + e^-x), computed as 0.5 + 0.5 tanh(x / 2) (no overflow)."""
    return 0.5 * math.tanh(0.5 * x) + 0.5


_CLAMP = np.float32(7.90531110763549805)
_A1 = np.float32(4.89352455891786e-03)
_A3 = np.float32(6.37261928875436e-04)
_A5 = np.float32(1.48572235717979e-05)
_A7 = np.float32(5.12229709037114e-08)
_A9 = np.float32(-8.60467152213735e-11)
_A11 = np.float32(2.00018790482477e-13)
_A13 = np.float32(-2.76076847742355e-16)
_B0 = np.float32(4.89352518554385e-03)
_B2 = np.float32(2.26843463243900e-03)
_B4 = np.float32(1.18534705686654e-04)
_B6 = np.float32(1.19825839466702e-06)
_HALF = np.float32(0.5)


def _tanh_f32(x):
    """Rational (13, 6) approximation of tanh on [-7.9, 7.9], clamped outside; NaN stays NaN."""
    x = min(max(x, -_CLAMP), _CLAMP)
    x2 = x * x
    p = x * (_A1 + x2 * (_A3 + x2 * (_A5 + x2 * (_A7 + x2 * (_A9 + x2 * (_A11 + x2 * _A13))))))
    q = _B0 + x2 * (_B2 + x2 * (_B4 + x2 * _B6))
    return p / q


def _sigmoid_f32(x):
    return _HALF * tanh_(_HALF * x) + _HALF


@overload(tanh_, inline="always")
def _tanh_overload(x):
    if x == types.float32:
        return _tanh_f32
    return lambda x: math.tanh(x)


@overload(sigmoid_, inline="always")
def _sigmoid_overload(x):
    if x == types.float32:
        return _sigmoid_f32
    return lambda x: 0.5 * math.tanh(0.5 * x) + 0.5


# ----- layout and threads --------------------------------------------------------------------

def n_chunks(batch: int) -> int:
    """How many chunks to cut a batch into: one per engine thread (``threads.current``, which
    a tuner shrinking the pool leaves alone), at most one per sample."""
    from ..threads import current

    return max(1, min(int(batch), current()))


Buffers = dict[str, np.ndarray]


def buffer(bufs: Buffers | None, name: str, shape: tuple[int, ...],
           dtype: np.dtype) -> np.ndarray:
    """``bufs[name]`` when it has this shape and dtype, else a new array stored there (a
    layer keeps its buffers from step to step: no allocation, no page faults, per step).
    ``bufs`` None: always a new array. Contents are undefined."""
    if bufs is None:
        return np.empty(shape, dtype)
    a = bufs.get(name)
    if a is None or a.shape != shape or a.dtype != dtype:
        a = bufs[name] = np.empty(shape, dtype)
    return a


def to_chunks(a: np.ndarray, chunks: int, reverse: bool = False, bufs: Buffers | None = None,
              name: str = "chunks") -> np.ndarray:
    """(N, T, D) -> contiguous (C, T, Nc, D), zero-padded to C·Nc samples; ``reverse`` flips
    time. With ``bufs``, written into ``bufs[name]`` (see ``buffer``)."""
    n, t, d = a.shape
    nc = -(-n // chunks)
    out = buffer(bufs, name, (chunks, t, nc, d), a.dtype)
    src = a[:, ::-1] if reverse else a
    for k in range(chunks):
        part = src[k * nc:(k + 1) * nc]
        m = part.shape[0]
        out[k, :, :m] = part.transpose(1, 0, 2)
        out[k, :, m:] = 0
    return out


def from_chunks(a: np.ndarray, batch: int, reverse: bool = False) -> np.ndarray:
    """(C, T, Nc, D) -> contiguous (N, T, D), the inverse of ``to_chunks``."""
    c, t, nc, d = a.shape
    out = np.empty((batch, t, d), a.dtype)
    for k in range(c):
        m = min(nc, batch - k * nc)
        if m <= 0:
            break
        part = a[k, ::-1, :m] if reverse else a[k, :, :m]
        out[k * nc:k * nc + m] = part.transpose(1, 0, 2)
    return out


@njit(parallel=False, error_model="numpy")
def _chunk_grads(blas, x2, h2, dxw2, dhw2, same, w_ih, nc, dx2, dw_ih, dw_hh, db_ih, db_hh):
    """One chunk's input gradient and partial weight gradients from the gradients wrt
    x W_ih^T + b_ih (``dxw2``) and h W_hh^T + b_hh (``dhw2``), both (T·Nc, G·H) time-major:
    dx2 = dxw2 W_ih, dw_ih = dxw2^T x2, dw_hh = Σ_t dhw_t^T h_{t-1}, biases the column sums
    (``same``: dhw2 is dxw2, whose column sums are then read once)."""
    rows = dxw2.shape[0]
    gemm_arrays(blas, dxw2, w_ih, dx2)
    gemm_arrays(blas, dxw2.T, x2, dw_ih)
    if rows > nc:
        gemm_arrays(blas, dhw2[nc:].T, h2[: rows - nc], dw_hh)
    else:
        dw_hh[:, :] = 0
    ones = np.ones(rows, dxw2.dtype)
    np.dot(ones, dxw2, db_ih)
    if same:
        db_hh[:] = db_ih
    else:
        np.dot(ones, dhw2, db_hh)


# ----- SimpleRNN -----------------------------------------------------------------------------


@njit(error_model="numpy", fastmath={"contract"})
def rnn_forward(blas, x, w_ihT, w_hhT, bias, hid):
    """h_t = tanh(x_t W_ih^T + h_{t-1} W_hh^T + b_ih + b_hh), h_{-1} = 0.

    x (C, T, Nc, F); bias (H,) = b_ih + b_hh; fills hid (C, T, Nc, H) with h_t."""
    n_chunks_, n_steps, nc, nf = x.shape
    nh = hid.shape[3]
    for ch in prange(n_chunks_):
        gemm_arrays(blas, x[ch].reshape(n_steps * nc, nf), w_ihT, hid[ch].reshape(n_steps * nc, nh))
        rec = np.zeros((nc, nh), x.dtype)
        for t in range(n_steps):
            if t > 0:
                gemm_arrays(blas, hid[ch, t - 1], w_hhT, rec)
            for s in range(nc):
                h = hid[ch, t, s]
                r = rec[s]
                for j in range(nh):
                    h[j] = tanh_(h[j] + r[j] + bias[j])


@njit(error_model="numpy", fastmath={"contract"})
def rnn_backward(blas, x, w_ih, w_hh, hid, dhid, dpre, dx, dw_ih, dw_hh, db_ih, db_hh):
    """Backprop through time for ``rnn_forward``.

    dhid (C, T, Nc, H): gradient reaching each h_t from outside. Fills dpre (C, T, Nc, H),
    the gradient wrt each step's pre-activation, dx (C, T, Nc, F) and per-chunk partial sums
    dw_ih (C, H, F), dw_hh (C, H, H), db_ih, db_hh (C, H)."""
    n_chunks_, n_steps, nc, nf = x.shape
    nh = hid.shape[3]
    one = x.dtype.type(1)
    for ch in prange(n_chunks_):
        dh = np.zeros((nc, nh), x.dtype)
        for t in range(n_steps - 1, -1, -1):
            if t < n_steps - 1:
                gemm_arrays(blas, dpre[ch, t + 1], w_hh, dh)
            for s in range(nc):
                h = hid[ch, t, s]
                dp = dpre[ch, t, s]
                d = dh[s]
                dy = dhid[ch, t, s]
                for j in range(nh):
                    dp[j] = (d[j] + dy[j]) * (one - h[j] * h[j])
        d2 = dpre[ch].reshape(n_steps * nc, nh)
        _chunk_grads(blas, x[ch].reshape(n_steps * nc, nf), hid[ch].reshape(n_steps * nc, nh),
                     d2, d2, True, w_ih, nc, dx[ch].reshape(n_steps * nc, nf), dw_ih[ch], dw_hh[ch],
                     db_ih[ch], db_hh[ch])


# ----- LSTM ----------------------------------------------------------------------------------


@njit(error_model="numpy", fastmath={"contract"})
def lstm_forward(blas, x, w_ihT, w_hhT, bias, gates, cell, hid):
    """PyTorch's LSTM: gates i, f, g, o = σ, σ, tanh, σ of x_t W_ih^T + h_{t-1} W_hh^T + b;
    c_t = f c_{t-1} + i g; h_t = o tanh(c_t); h_{-1} = c_{-1} = 0.

    x (C, T, Nc, F); bias (4H,) = b_ih + b_hh. Fills gates (C, T, Nc, 4H) with the gate
    activations, cell (C, T, Nc, H) with c_t and hid (C, T, Nc, H) with h_t.

    The pre-activations build up in ``gates`` itself: the input projection of all steps
    (one GEMM), then each step's recurrent product added by BLAS (beta = 1); the
    element-wise loops then each write one array and run from index 0 (a loop from 2H keeps
    Numba's negative-index wrap in the address and stays scalar), so LLVM vectorises them."""
    n_chunks_, n_steps, nc, nf = x.shape
    gh = gates.shape[3]
    nh = gh // 4
    for ch in prange(n_chunks_):
        gemm_arrays(blas, x[ch].reshape(n_steps * nc, nf), w_ihT, gates[ch].reshape(n_steps * nc, gh))
        for t in range(n_steps):
            if t > 0:
                gemm_arrays(blas, hid[ch, t - 1], w_hhT, gates[ch, t], 1.0)
            for s in range(nc):
                g = gates[ch, t, s]
                for j in range(2 * nh):
                    g[j] = sigmoid_(g[j] + bias[j])
                for j in range(nh):
                    g[2 * nh + j] = tanh_(g[2 * nh + j] + bias[2 * nh + j])
                for j in range(nh):
                    g[3 * nh + j] = sigmoid_(g[3 * nh + j] + bias[3 * nh + j])
                cs = cell[ch, t, s]
                if t > 0:
                    cp = cell[ch, t - 1, s]
                    for j in range(nh):
                        cs[j] = g[nh + j] * cp[j] + g[j] * g[2 * nh + j]
                else:
                    for j in range(nh):
                        cs[j] = g[j] * g[2 * nh + j]
                hs = hid[ch, t, s]
                for j in range(nh):
                    hs[j] = g[3 * nh + j] * tanh_(cs[j])


@njit(error_model="numpy", fastmath={"contract"})
def lstm_backward(blas, x, w_ih, w_hh, gates, cell, hid, dhid, dgates, dx, dw_ih, dw_hh, db_ih,
                  db_hh):
    """Backprop through time for ``lstm_forward``.

    dhid (C, T, Nc, H): gradient reaching each h_t from outside. Fills dgates (C, T, Nc, 4H),
    the gradient wrt the gate pre-activations, dx (C, T, Nc, F) and per-chunk partial sums
    dw_ih (C, 4H, F), dw_hh (C, 4H, H), db_ih, db_hh (C, 4H).

    Per step: dh = dgates_{t+1} W_hh (BLAS), then three element-wise passes over each row
    that each write one array (dh, then dgates' o block and dh = the whole dc, then the i, f,
    g blocks and the carried dc), so LLVM vectorises them; the weight gradients are one GEMM
    each over all steps after the loop (``_chunk_grads``)."""
    n_chunks_, n_steps, nc, nf = x.shape
    gh = gates.shape[3]
    nh = gh // 4
    one = x.dtype.type(1)
    for ch in prange(n_chunks_):
        dh = np.zeros((nc, nh), x.dtype)
        dc = np.zeros((nc, nh), x.dtype)
        tcs = np.empty(nh, x.dtype)  # tanh(c_t) of one row
        for t in range(n_steps - 1, -1, -1):
            if t < n_steps - 1:
                gemm_arrays(blas, dgates[ch, t + 1], w_hh, dh)
            for s in range(nc):
                g = gates[ch, t, s]
                dg = dgates[ch, t, s]
                d = dh[s]
                dy = dhid[ch, t, s]
                cs = cell[ch, t, s]
                dcs = dc[s]
                for j in range(nh):
                    d[j] += dy[j]
                for j in range(nh):
                    tcs[j] = tanh_(cs[j])
                for j in range(nh):
                    o = g[3 * nh + j]
                    dg[3 * nh + j] = d[j] * tcs[j] * o * (one - o)
                for j in range(nh):
                    o = g[3 * nh + j]
                    tc = tcs[j]
                    d[j] = dcs[j] + d[j] * o * (one - tc * tc)
                if t > 0:
                    cp = cell[ch, t - 1, s]
                    for j in range(nh):
                        dg[nh + j] = d[j] * cp[j] * g[nh + j] * (one - g[nh + j])
                else:
                    for j in range(nh):
                        dg[nh + j] = 0
                for j in range(nh):
                    i = g[j]
                    gg = g[2 * nh + j]
                    dcc = d[j]
                    dg[j] = dcc * gg * i * (one - i)
                    dg[2 * nh + j] = dcc * i * (one - gg * gg)
                for j in range(nh):
                    dcs[j] = d[j] * g[nh + j]
        d2 = dgates[ch].reshape(n_steps * nc, gh)
        _chunk_grads(blas, x[ch].reshape(n_steps * nc, nf), hid[ch].reshape(n_steps * nc, nh),
                     d2, d2, True, w_ih, nc, dx[ch].reshape(n_steps * nc, nf), dw_ih[ch], dw_hh[ch],
                     db_ih[ch], db_hh[ch])


# ----- GRU -----------------------------------------------------------------------------------


@njit(error_model="numpy", fastmath={"contract"})
def gru_forward(blas, x, w_ihT, w_hhT, b_ih, b_hh, gates, hn, hid):
    """PyTorch's GRU: r = σ(W_ir x + b_ir + W_hr h + b_hr), z = σ(W_iz x + b_iz + W_hz h + b_hz),
    n = tanh(W_in x + b_in + r (W_hn h + b_hn)), h_t = (1 - z) n + z h_{t-1}; h_{-1} = 0.

    x (C, T, Nc, F). Fills gates (C, T, Nc, 3H) with r, z, n, hn (C, T, Nc, H) with
    W_hn h_{t-1} + b_hn and hid (C, T, Nc, H) with h_t."""
    n_chunks_, n_steps, nc, nf = x.shape
    gh = gates.shape[3]
    nh = gh // 3
    one = x.dtype.type(1)
    for ch in prange(n_chunks_):
        gemm_arrays(blas, x[ch].reshape(n_steps * nc, nf), w_ihT, gates[ch].reshape(n_steps * nc, gh))
        rec = np.zeros((nc, gh), x.dtype)
        zero = np.zeros(nh, x.dtype)
        for t in range(n_steps):
            if t > 0:
                gemm_arrays(blas, hid[ch, t - 1], w_hhT, rec)
            for s in range(nc):
                g = gates[ch, t, s]
                r = rec[s]
                hns = hn[ch, t, s]
                for j in range(2 * nh):
                    g[j] = sigmoid_(g[j] + b_ih[j] + r[j] + b_hh[j])
                for j in range(nh):
                    a = r[2 * nh + j] + b_hh[2 * nh + j]
                    hns[j] = a
                    g[2 * nh + j] = tanh_(g[2 * nh + j] + b_ih[2 * nh + j] + g[j] * a)
                hp = hid[ch, t - 1, s] if t > 0 else zero
                hs = hid[ch, t, s]
                for j in range(nh):
                    z = g[nh + j]
                    hs[j] = (one - z) * g[2 * nh + j] + z * hp[j]


@njit(error_model="numpy", fastmath={"contract"})
def gru_backward(blas, x, w_ih, w_hh, gates, hn, hid, dhid, dxw, dhw, dx, dw_ih, dw_hh, db_ih,
                 db_hh):
    """Backprop through time for ``gru_forward``.

    dhid (C, T, Nc, H): gradient reaching each h_t from outside. Fills dxw and dhw
    (C, T, Nc, 3H), the gradients wrt x_t W_ih^T + b_ih and h_{t-1} W_hh^T + b_hh (they differ
    in the n block), dx (C, T, Nc, F) and per-chunk partial sums dw_ih (C, 3H, F),
    dw_hh (C, 3H, H), db_ih, db_hh (C, 3H)."""
    n_chunks_, n_steps, nc, nf = x.shape
    gh = gates.shape[3]
    nh = gh // 3
    one = x.dtype.type(1)
    for ch in prange(n_chunks_):
        dh = np.zeros((nc, nh), x.dtype)
        carry = np.zeros((nc, nh), x.dtype)
        zero = np.zeros(nh, x.dtype)
        for t in range(n_steps - 1, -1, -1):
            if t < n_steps - 1:
                gemm_arrays(blas, dhw[ch, t + 1], w_hh, dh)
            for s in range(nc):
                g = gates[ch, t, s]
                hns = hn[ch, t, s]
                gx = dxw[ch, t, s]
                gr = dhw[ch, t, s]
                d = dh[s]
                dy = dhid[ch, t, s]
                cs = carry[s]
                hp = hid[ch, t - 1, s] if t > 0 else zero
                for j in range(nh):
                    dd = d[j] + dy[j] + cs[j]
                    r = g[j]
                    z = g[nh + j]
                    n = g[2 * nh + j]
                    dn = dd * (one - z) * (one - n * n)
                    dr = dn * hns[j] * r * (one - r)
                    dz = dd * (hp[j] - n) * z * (one - z)
                    gx[j] = dr
                    gx[nh + j] = dz
                    gx[2 * nh + j] = dn
                    gr[j] = dr
                    gr[nh + j] = dz
                    gr[2 * nh + j] = dn * r
                    cs[j] = dd * z
        _chunk_grads(blas, x[ch].reshape(n_steps * nc, nf), hid[ch].reshape(n_steps * nc, nh),
                     dxw[ch].reshape(n_steps * nc, gh), dhw[ch].reshape(n_steps * nc, gh), False,
                     w_ih,
                     nc, dx[ch].reshape(n_steps * nc, nf), dw_ih[ch], dw_hh[ch], db_ih[ch],
                     db_hh[ch])


# ----- whole sequences -----------------------------------------------------------------------

GATES = {"rnn": 1, "lstm": 4, "gru": 3}


def _transposed(bufs: Buffers | None, name: str, w: np.ndarray, dt: np.dtype) -> np.ndarray:
    out = buffer(bufs, name, (w.shape[1], w.shape[0]), dt)
    np.copyto(out, w.T, casting="unsafe")
    return out


def sequence_forward(cell: str, x: np.ndarray, w_ih: np.ndarray, w_hh: np.ndarray,
                     b_ih: np.ndarray, b_hh: np.ndarray, bufs: Buffers | None = None
                     ) -> dict[str, np.ndarray]:
    """Run one direction of ``cell`` ("rnn", "lstm", "gru") over chunked x (C, T, Nc, F).

    Returns the state ``sequence_backward`` needs; ``state["hid"]`` (C, T, Nc, H) holds h_t.
    With ``bufs`` (kept by the caller from step to step) the state lives in its arrays, valid
    until the next call with the same ``bufs``."""
    c, t, nc, _ = x.shape
    gh, nh = w_hh.shape
    dt = x.dtype
    w_ihT = _transposed(bufs, "w_ihT", w_ih, dt)
    w_hhT = _transposed(bufs, "w_hhT", w_hh, dt)
    state = {"x": x, "hid": buffer(bufs, "hid", (c, t, nc, nh), dt)}
    blas = blas_address(dt)
    with OneThreadBlas():  # the kernels' own threads call BLAS
        if cell == "rnn":
            rnn_forward(blas, x, w_ihT, w_hhT, (b_ih + b_hh).astype(dt), state["hid"])
        elif cell == "lstm":
            state["gates"] = buffer(bufs, "gates", (c, t, nc, gh), dt)
            state["cell"] = buffer(bufs, "cell", (c, t, nc, nh), dt)
            lstm_forward(blas, x, w_ihT, w_hhT, (b_ih + b_hh).astype(dt), state["gates"],
                         state["cell"], state["hid"])
        else:
            state["gates"] = buffer(bufs, "gates", (c, t, nc, gh), dt)
            state["hn"] = buffer(bufs, "hn", (c, t, nc, nh), dt)
            gru_forward(blas, x, w_ihT, w_hhT, b_ih.astype(dt), b_hh.astype(dt), state["gates"],
                        state["hn"], state["hid"])
    return state


def sequence_backward(cell: str, state: dict[str, np.ndarray], w_ih: np.ndarray,
                      w_hh: np.ndarray, dhid: np.ndarray, bufs: Buffers | None = None
                      ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Backprop through time for ``sequence_forward``. dhid (C, T, Nc, H) is the gradient
    reaching each h_t from outside. Returns dx (C, T, Nc, F) and the gradients
    ``{"weight_ih", "weight_hh", "bias_ih", "bias_hh"}``; with ``bufs`` dx and the scratch
    live in its arrays (valid until the next call with the same ``bufs``)."""
    x, hid = state["x"], state["hid"]
    c, nf = x.shape[0], x.shape[3]
    gh, nh = w_hh.shape
    dt = x.dtype
    w_ih = np.ascontiguousarray(w_ih, dtype=dt)
    w_hh = np.ascontiguousarray(w_hh, dtype=dt)
    dhid = np.ascontiguousarray(dhid, dtype=dt)
    dx = buffer(bufs, "dx", x.shape, dt)
    parts = [buffer(bufs, "dw_ih", (c, gh, nf), dt), buffer(bufs, "dw_hh", (c, gh, nh), dt),
             buffer(bufs, "db_ih", (c, gh), dt), buffer(bufs, "db_hh", (c, gh), dt)]
    blas = blas_address(dt)
    with OneThreadBlas():  # the kernels' own threads call BLAS
        if cell == "rnn":
            rnn_backward(blas, x, w_ih, w_hh, hid, dhid, buffer(bufs, "dpre", hid.shape, dt), dx,
                         *parts)
        elif cell == "lstm":
            gates = state["gates"]
            lstm_backward(blas, x, w_ih, w_hh, gates, state["cell"], hid, dhid,
                          buffer(bufs, "dgates", gates.shape, dt), dx, *parts)
        else:
            gates = state["gates"]
            gru_backward(blas, x, w_ih, w_hh, gates, state["hn"], hid, dhid,
                         buffer(bufs, "dxw", gates.shape, dt), buffer(bufs, "dhw", gates.shape, dt),
                         dx, *parts)
    names = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
    return dx, {name: p.sum(axis=0) for name, p in zip(names, parts)}
