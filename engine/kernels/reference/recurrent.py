"""Plain-numpy SimpleRNN, LSTM and GRU, step by step with PyTorch's equations: the oracle for
``kernels.recurrent``.

Arrays are batch-major: x (N, T, F), hidden states (N, T, H). Weights in PyTorch's layout:
w_ih (G·H, F), w_hh (G·H, H), b_ih, b_hh (G·H,). Each ``*_backward`` takes the gradient
reaching every h_t from outside, ``dh`` (N, T, H), and returns
``{"x", "weight_ih", "weight_hh", "bias_ih", "bias_hh"}`` gradients.
"""

from __future__ import annotations

import numpy as np


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _grads(x, h, dxw, dhw, w_ih):
    """Input and weight gradients from the per-step pre-activation gradients (N, T, G·H)."""
    hp = np.concatenate([np.zeros_like(h[:, :1]), h[:, :-1]], axis=1)
    return {
        "x": dxw @ w_ih,
        "weight_ih": np.einsum("ntg,ntf->gf", dxw, x),
        "weight_hh": np.einsum("ntg,nth->gh", dhw, hp),
        "bias_ih": dxw.sum(axis=(0, 1)),
        "bias_hh": dhw.sum(axis=(0, 1)),
    }


# ----- SimpleRNN -----------------------------------------------------------------------------

def rnn_forward(x, w_ih, w_hh, b_ih, b_hh) -> np.ndarray:
    """h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh); returns h (N, T, H)."""
    n, t, _ = x.shape
    h = np.zeros((n, t, w_hh.shape[1]), x.dtype)
    prev = np.zeros((n, w_hh.shape[1]), x.dtype)
    for k in range(t):
        prev = np.tanh(x[:, k] @ w_ih.T + b_ih + prev @ w_hh.T + b_hh)
        h[:, k] = prev
    return h


def rnn_backward(x, w_ih, w_hh, h, dh) -> dict[str, np.ndarray]:
    t = x.shape[1]
    dpre = np.zeros_like(h)
    carry = np.zeros_like(h[:, 0])
    for k in range(t - 1, -1, -1):
        d = dh[:, k] + carry
        dpre[:, k] = d * (1 - h[:, k] ** 2)
        carry = dpre[:, k] @ w_hh
    return _grads(x, h, dpre, dpre, w_ih)


# ----- LSTM ----------------------------------------------------------------------------------

def lstm_forward(x, w_ih, w_hh, b_ih, b_hh) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """PyTorch's LSTM (gates i, f, g, o). Returns h, c (N, T, H) and gates (N, T, 4H)."""
    n, t, _ = x.shape
    nh = w_hh.shape[1]
    h = np.zeros((n, t, nh), x.dtype)
    c = np.zeros_like(h)
    gates = np.zeros((n, t, 4 * nh), x.dtype)
    hp = np.zeros((n, nh), x.dtype)
    cp = np.zeros((n, nh), x.dtype)
    for k in range(t):
        pre = x[:, k] @ w_ih.T + b_ih + hp @ w_hh.T + b_hh
        i = sigmoid(pre[:, :nh])
        f = sigmoid(pre[:, nh:2 * nh])
        g = np.tanh(pre[:, 2 * nh:3 * nh])
        o = sigmoid(pre[:, 3 * nh:])
        cp = f * cp + i * g
        hp = o * np.tanh(cp)
        h[:, k], c[:, k] = hp, cp
        gates[:, k] = np.concatenate([i, f, g, o], axis=1)
    return h, c, gates


def lstm_backward(x, w_ih, w_hh, h, c, gates, dh) -> dict[str, np.ndarray]:
    n, t, _ = x.shape
    nh = w_hh.shape[1]
    dgates = np.zeros_like(gates)
    dh_next = np.zeros((n, nh), x.dtype)
    dc_next = np.zeros((n, nh), x.dtype)
    for k in range(t - 1, -1, -1):
        i, f, g, o = (gates[:, k, j * nh:(j + 1) * nh] for j in range(4))
        tc = np.tanh(c[:, k])
        cp = c[:, k - 1] if k > 0 else np.zeros_like(tc)
        d = dh[:, k] + dh_next
        dc = dc_next + d * o * (1 - tc ** 2)
        dgates[:, k] = np.concatenate([dc * g * i * (1 - i), dc * cp * f * (1 - f),
                                       dc * i * (1 - g ** 2), d * tc * o * (1 - o)], axis=1)
        dc_next = dc * f
        dh_next = dgates[:, k] @ w_hh
    return _grads(x, h, dgates, dgates, w_ih)


# ----- GRU -----------------------------------------------------------------------------------

def gru_forward(x, w_ih, w_hh, b_ih, b_hh) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """PyTorch's GRU (gates r, z, n). Returns h (N, T, H), gates r, z, n (N, T, 3H) and
    hn = W_hn h_{t-1} + b_hn (N, T, H)."""
    n, t, _ = x.shape
    nh = w_hh.shape[1]
    h = np.zeros((n, t, nh), x.dtype)
    gates = np.zeros((n, t, 3 * nh), x.dtype)
    hn = np.zeros_like(h)
    hp = np.zeros((n, nh), x.dtype)
    for k in range(t):
        xw = x[:, k] @ w_ih.T + b_ih
        hw = hp @ w_hh.T + b_hh
        r = sigmoid(xw[:, :nh] + hw[:, :nh])
        z = sigmoid(xw[:, nh:2 * nh] + hw[:, nh:2 * nh])
        nn = np.tanh(xw[:, 2 * nh:] + r * hw[:, 2 * nh:])
        hp = (1 - z) * nn + z * hp
        h[:, k] = hp
        gates[:, k] = np.concatenate([r, z, nn], axis=1)
        hn[:, k] = hw[:, 2 * nh:]
    return h, gates, hn


def gru_backward(x, w_ih, w_hh, h, gates, hn, dh) -> dict[str, np.ndarray]:
    n, t, _ = x.shape
    nh = w_hh.shape[1]
    dxw = np.zeros_like(gates)
    dhw = np.zeros_like(gates)
    dh_next = np.zeros((n, nh), x.dtype)
    for k in range(t - 1, -1, -1):
        r, z, nn = (gates[:, k, j * nh:(j + 1) * nh] for j in range(3))
        hp = h[:, k - 1] if k > 0 else np.zeros_like(r)
        d = dh[:, k] + dh_next
        dn = d * (1 - z) * (1 - nn ** 2)
        dr = dn * hn[:, k] * r * (1 - r)
        dz = d * (hp - nn) * z * (1 - z)
        dxw[:, k] = np.concatenate([dr, dz, dn], axis=1)
        dhw[:, k] = np.concatenate([dr, dz, dn * r], axis=1)
        dh_next = d * z + dhw[:, k] @ w_hh
    return _grads(x, h, dxw, dhw, w_ih)
