"""Recurrent kernels: SimpleRNN (tanh), LSTM and GRU over whole sequences, forward and
backpropagation through time, with PyTorch's equations and gate order.

Layout: the batch is cut into ``C`` chunks, one per thread, and each chunk is stored
time-major: arrays are ``(C, T, Nc, D)`` (``to_chunks`` / ``from_chunks`` convert from and to
``(N, T, D)``). A kernel runs ``prange`` over the chunks; each chunk does its whole recurrence
on its own thread with one single-threaded BLAS GEMM per time step (``np.dot`` on the chunk's
``(Nc, H)`` state), so the threads never wait for each other between steps. Call the kernels
inside ``single_thread_blas()`` so that BLAS does not start threads of its own under them.

Measured on the 2-core development machine (LSTM, batch 64, T 50, F 32, 128 units, one
training step): per-step GEMMs from Python on the whole batch with OpenBLAS's own threads and a
Numba kernel between them took ~14 ms (the two thread pools fight over the cores at every
step); this layout takes ~7 ms.

Inside Numba, float32 ``tanh`` and the sigmoid use a vectorisable rational approximation
(max error 4e-7, the one Eigen uses); other dtypes use ``math.tanh``, so float64 gradient
checks see exact, smooth functions. Weights are passed as the kernels use them: ``w_ihT``
``(F, G·H)`` and ``w_hhT`` ``(H, G·H)`` transposed (contiguous) in forward, PyTorch's layout in
backward. G = 1 (RNN), 4 (LSTM: i, f, g, o), 3 (GRU: r, z, n).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator

import numpy as np
from numba import types
from numba.extending import overload

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
    x = _CLAMP if x > _CLAMP else x
    x = -_CLAMP if x < -_CLAMP else x
    x2 = x * x
    p = x * (_A1 + x2 * (_A3 + x2 * (_A5 + x2 * (_A7 + x2 * (_A9 + x2 * (_A11 + x2 * _A13))))))
    q = _B0 + x2 * (_B2 + x2 * (_B4 + x2 * _B6))
    return p / q


def _sigmoid_f32(x):
    return _HALF * tanh_(_HALF * x) + _HALF


@overload(tanh_)
def _tanh_overload(x):
    if x == types.float32:
        return _tanh_f32
    return lambda x: math.tanh(x)


@overload(sigmoid_)
def _sigmoid_overload(x):
    if x == types.float32:
        return _sigmoid_f32
    return lambda x: 0.5 * math.tanh(0.5 * x) + 0.5


# ----- layout and threads --------------------------------------------------------------------

_BLAS_CONTROLLER = None


@contextlib.contextmanager
def single_thread_blas() -> Iterator[None]:
    """Run the block with every loaded BLAS limited to one thread (the kernels' own threads
    call BLAS concurrently; nested BLAS threads would oversubscribe the cores)."""
    global _BLAS_CONTROLLER
    if _BLAS_CONTROLLER is None:
        import scipy.linalg.cython_blas  # noqa: F401  (loads the BLAS Numba's np.dot calls)
        from threadpoolctl import ThreadpoolController

        _BLAS_CONTROLLER = ThreadpoolController()
    with _BLAS_CONTROLLER.limit(limits=1, user_api="blas"):
        yield


def n_chunks(batch: int) -> int:
    """How many chunks to cut a batch into: one per Numba thread, at most one per sample."""
    import numba

    return max(1, min(int(batch), numba.get_num_threads()))


def to_chunks(a: np.ndarray, chunks: int, reverse: bool = False) -> np.ndarray:
    """(N, T, D) -> contiguous (C, T, Nc, D), zero-padded to C·Nc samples; ``reverse`` flips
    time."""
    n, t, d = a.shape
    nc = -(-n // chunks)
    flat = np.zeros((chunks * nc, t, d), a.dtype)
    flat[:n] = a[:, ::-1] if reverse else a
    return np.ascontiguousarray(flat.reshape(chunks, nc, t, d).transpose(0, 2, 1, 3))


def from_chunks(a: np.ndarray, batch: int, reverse: bool = False) -> np.ndarray:
    """(C, T, Nc, D) -> contiguous (N, T, D), the inverse of ``to_chunks``."""
    c, t, nc, d = a.shape
    out = a.transpose(0, 2, 1, 3).reshape(c * nc, t, d)[:batch]
    if reverse:
        out = out[:, ::-1]
    return np.ascontiguousarray(out)


@njit(parallel=False)
def _gemm(a, b, out):
    """out = a @ b for C-contiguous 2-D arrays of one dtype."""
    np.dot(a, b, out)


# ----- SimpleRNN -----------------------------------------------------------------------------


@njit(error_model="numpy")
def rnn_forward(w_hhT, bias, hid):
    """h_t = tanh(x_t W_ih^T + h_{t-1} W_hh^T + b_ih + b_hh), h_{-1} = 0.

    hid (C, T, Nc, H) holds x_t W_ih^T on entry and h_t on exit; bias (H,) = b_ih + b_hh."""
    n_chunks_, n_steps, nc, nh = hid.shape
    for ch in prange(n_chunks_):
        rec = np.zeros((nc, nh), hid.dtype)
        for t in range(n_steps):
            if t > 0:
                _gemm(hid[ch, t - 1], w_hhT, rec)
            for s in range(nc):
                h = hid[ch, t, s]
                r = rec[s]
                for j in range(nh):
                    h[j] = tanh_(h[j] + r[j] + bias[j])


@njit(error_model="numpy")
def rnn_backward(w_hh, hid, dhid, dpre):
    """Backprop through time for ``rnn_forward``: from dhid (C, T, Nc, H), the gradient
    reaching each h_t from outside, fill dpre (C, T, Nc, H) with the gradient wrt each
    step's pre-activation (= wrt x_t W_ih^T + b_ih and h_{t-1} W_hh^T + b_hh)."""
    n_chunks_, n_steps, nc, nh = hid.shape
    one = hid.dtype.type(1)
    for ch in prange(n_chunks_):
        dh = np.zeros((nc, nh), hid.dtype)
        for t in range(n_steps - 1, -1, -1):
            if t < n_steps - 1:
                _gemm(dpre[ch, t + 1], w_hh, dh)
            for s in range(nc):
                h = hid[ch, t, s]
                dp = dpre[ch, t, s]
                d = dh[s]
                dy = dhid[ch, t, s]
                for j in range(nh):
                    dp[j] = (d[j] + dy[j]) * (one - h[j] * h[j])


# ----- LSTM ----------------------------------------------------------------------------------


@njit(error_model="numpy")
def lstm_forward(w_hhT, bias, gates, cell, hid):
    """PyTorch's LSTM: gates i, f, g, o = σ, σ, tanh, σ of x_t W_ih^T + h_{t-1} W_hh^T + b;
    c_t = f c_{t-1} + i g; h_t = o tanh(c_t); h_{-1} = c_{-1} = 0.

    gates (C, T, Nc, 4H) holds x_t W_ih^T on entry and the gate activations on exit;
    bias (4H,) = b_ih + b_hh. Fills cell (C, T, Nc, H) with c_t and hid with h_t."""
    n_chunks_, n_steps, nc, gh = gates.shape
    nh = gh // 4
    for ch in prange(n_chunks_):
        rec = np.zeros((nc, gh), gates.dtype)
        zero = np.zeros(nh, gates.dtype)
        for t in range(n_steps):
            if t > 0:
                _gemm(hid[ch, t - 1], w_hhT, rec)
            for s in range(nc):
                g = gates[ch, t, s]
                r = rec[s]
                for j in range(2 * nh):
                    g[j] = sigmoid_(g[j] + r[j] + bias[j])
                for j in range(2 * nh, 3 * nh):
                    g[j] = tanh_(g[j] + r[j] + bias[j])
                for j in range(3 * nh, gh):
                    g[j] = sigmoid_(g[j] + r[j] + bias[j])
                cp = cell[ch, t - 1, s] if t > 0 else zero
                cs = cell[ch, t, s]
                hs = hid[ch, t, s]
                for j in range(nh):
                    c = g[nh + j] * cp[j] + g[j] * g[2 * nh + j]
                    cs[j] = c
                    hs[j] = g[3 * nh + j] * tanh_(c)


@njit(error_model="numpy")
def lstm_backward(w_hh, gates, cell, dhid, dgates):
    """Backprop through time for ``lstm_forward``: from dhid (C, T, Nc, H), the gradient
    reaching each h_t from outside, fill dgates (C, T, Nc, 4H) with the gradient wrt the gate
    pre-activations."""
    n_chunks_, n_steps, nc, gh = gates.shape
    nh = gh // 4
    one = gates.dtype.type(1)
    for ch in prange(n_chunks_):
        dh = np.zeros((nc, nh), gates.dtype)
        dc = np.zeros((nc, nh), gates.dtype)
        zero = np.zeros(nh, gates.dtype)
        for t in range(n_steps - 1, -1, -1):
            if t < n_steps - 1:
                _gemm(dgates[ch, t + 1], w_hh, dh)
            for s in range(nc):
                g = gates[ch, t, s]
                dg = dgates[ch, t, s]
                d = dh[s]
                dy = dhid[ch, t, s]
                cs = cell[ch, t, s]
                dcs = dc[s]
                for j in range(nh):
                    dd = d[j] + dy[j]
                    tc = tanh_(cs[j])
                    o = g[3 * nh + j]
                    dg[3 * nh + j] = dd * tc * o * (one - o)
                    dcs[j] += dd * o * (one - tc * tc)
                cp = cell[ch, t - 1, s] if t > 0 else zero
                for j in range(nh):
                    i = g[j]
                    f = g[nh + j]
                    gg = g[2 * nh + j]
                    dcc = dcs[j]
                    dg[j] = dcc * gg * i * (one - i)
                    dg[nh + j] = dcc * cp[j] * f * (one - f)
                    dg[2 * nh + j] = dcc * i * (one - gg * gg)
                    dcs[j] = dcc * f


# ----- GRU -----------------------------------------------------------------------------------


@njit(error_model="numpy")
def gru_forward(w_hhT, b_ih, b_hh, gates, hn, hid):
    """PyTorch's GRU: r = σ(W_ir x + b_ir + W_hr h + b_hr), z = σ(W_iz x + b_iz + W_hz h + b_hz),
    n = tanh(W_in x + b_in + r (W_hn h + b_hn)), h_t = (1 - z) n + z h_{t-1}; h_{-1} = 0.

    gates (C, T, Nc, 3H) holds x_t W_ih^T on entry and r, z, n on exit. Fills hn
    (C, T, Nc, H) with W_hn h_{t-1} + b_hn and hid (C, T, Nc, H) with h_t."""
    n_chunks_, n_steps, nc, gh = gates.shape
    nh = gh // 3
    one = gates.dtype.type(1)
    for ch in prange(n_chunks_):
        rec = np.zeros((nc, gh), gates.dtype)
        zero = np.zeros(nh, gates.dtype)
        for t in range(n_steps):
            if t > 0:
                _gemm(hid[ch, t - 1], w_hhT, rec)
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


@njit(error_model="numpy")
def gru_backward(w_hh, gates, hn, hid, dhid, dxw, dhw):
    """Backprop through time for ``gru_forward``: from dhid (C, T, Nc, H), the gradient
    reaching each h_t from outside, fill dxw and dhw (C, T, Nc, 3H) with the gradients wrt
    x_t W_ih^T + b_ih and h_{t-1} W_hh^T + b_hh (they differ in the n block)."""
    n_chunks_, n_steps, nc, gh = gates.shape
    nh = gh // 3
    one = gates.dtype.type(1)
    for ch in prange(n_chunks_):
        dh = np.zeros((nc, nh), gates.dtype)
        carry = np.zeros((nc, nh), gates.dtype)
        zero = np.zeros(nh, gates.dtype)
        for t in range(n_steps - 1, -1, -1):
            if t < n_steps - 1:
                _gemm(dhw[ch, t + 1], w_hh, dh)
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


# ----- whole sequences -----------------------------------------------------------------------

GATES = {"rnn": 1, "lstm": 4, "gru": 3}


def sequence_forward(cell: str, x: np.ndarray, w_ih: np.ndarray, w_hh: np.ndarray,
                     b_ih: np.ndarray, b_hh: np.ndarray) -> dict[str, np.ndarray]:
    """Run one direction of ``cell`` ("rnn", "lstm", "gru") over chunked x (C, T, Nc, F).

    Returns the state ``backward`` needs; ``state["hid"]`` (C, T, Nc, H) holds h_t."""
    c, t, nc, nf = x.shape
    gh, nh = w_hh.shape
    dt = x.dtype
    pre = np.dot(x.reshape(-1, nf), w_ih.T).reshape(c, t, nc, gh)
    w_hhT = np.ascontiguousarray(w_hh.T)
    state = {"x": x}
    with single_thread_blas():
        if cell == "rnn":
            rnn_forward(w_hhT, (b_ih + b_hh).astype(dt), pre)
            state["hid"] = pre
        elif cell == "lstm":
            state["cell"] = np.empty((c, t, nc, nh), dt)
            state["hid"] = np.empty((c, t, nc, nh), dt)
            lstm_forward(w_hhT, (b_ih + b_hh).astype(dt), pre, state["cell"], state["hid"])
            state["gates"] = pre
        else:
            state["hn"] = np.empty((c, t, nc, nh), dt)
            state["hid"] = np.empty((c, t, nc, nh), dt)
            gru_forward(w_hhT, b_ih, b_hh, pre, state["hn"], state["hid"])
            state["gates"] = pre
    return state


def sequence_backward(cell: str, state: dict[str, np.ndarray], w_ih: np.ndarray,
                      w_hh: np.ndarray, dhid: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Backprop through time for ``sequence_forward``. dhid (C, T, Nc, H) is the gradient
    reaching each h_t from outside. Returns dx (C, T, Nc, F) and the gradients
    ``{"weight_ih", "weight_hh", "bias_ih", "bias_hh"}``."""
    x, hid = state["x"], state["hid"]
    c, t, nc, nf = x.shape
    gh, nh = w_hh.shape
    dhid = np.ascontiguousarray(dhid, dtype=x.dtype)
    with single_thread_blas():
        if cell == "rnn":
            dxw = dhw = np.empty_like(hid)
            rnn_backward(w_hh, hid, dhid, dxw)
        elif cell == "lstm":
            dxw = dhw = np.empty_like(state["gates"])
            lstm_backward(w_hh, state["gates"], state["cell"], dhid, dxw)
        else:
            dxw = np.empty_like(state["gates"])
            dhw = np.empty_like(state["gates"])
            gru_backward(w_hh, state["gates"], state["hn"], hid, dhid, dxw, dhw)
    dxw2 = dxw.reshape(-1, gh)
    dw_hh = np.zeros((gh, nh), x.dtype)
    for k in range(c):
        if t > 1:
            dw_hh += dhw[k, 1:].reshape(-1, gh).T @ hid[k, :-1].reshape(-1, nh)
    grads = {
        "weight_ih": dxw2.T @ x.reshape(-1, nf),
        "weight_hh": dw_hh,
        "bias_ih": dxw2.sum(axis=0),
        "bias_hh": dhw.reshape(-1, gh).sum(axis=0),
    }
    return (dxw2 @ w_ih).reshape(c, t, nc, nf), grads
