import numpy as np
import pytest

from engine.kernels import blas as kblas
from engine.kernels import njit
from engine.kernels import recurrent as rk
from engine.kernels.reference import recurrent as ref

CELLS = ("rnn", "lstm", "gru")


def weights(rng, cell, f, h, dtype, scale=0.6):
    gh = rk.GATES[cell] * h
    return [(scale * rng.standard_normal(s)).astype(dtype)
            for s in ((gh, f), (gh, h), (gh,), (gh,))]


def reference(cell, x, w_ih, w_hh, b_ih, b_hh, dh):
    """(h, grads) from the numpy reference, in float64."""
    x, w_ih, w_hh, b_ih, b_hh, dh = (a.astype(np.float64) for a in (x, w_ih, w_hh, b_ih, b_hh, dh))
    if cell == "rnn":
        h = ref.rnn_forward(x, w_ih, w_hh, b_ih, b_hh)
        return h, ref.rnn_backward(x, w_ih, w_hh, h, dh)
    if cell == "lstm":
        h, c, gates = ref.lstm_forward(x, w_ih, w_hh, b_ih, b_hh)
        return h, ref.lstm_backward(x, w_ih, w_hh, h, c, gates, dh)
    h, gates, hn = ref.gru_forward(x, w_ih, w_hh, b_ih, b_hh)
    return h, ref.gru_backward(x, w_ih, w_hh, h, gates, hn, dh)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("chunks", [1, 2])
def test_sequence_kernels_match_reference(rng, cell, dtype, chunks):
    n, t, f, h = 3, 4, 2, 5  # 3 samples in 2 chunks: one chunk is padded
    x = rng.standard_normal((n, t, f)).astype(dtype)
    w_ih, w_hh, b_ih, b_hh = weights(rng, cell, f, h, dtype)
    dh = rng.standard_normal((n, t, h)).astype(dtype)
    state = rk.sequence_forward(cell, rk.to_chunks(x, chunks), w_ih, w_hh, b_ih, b_hh)
    dxc, grads = rk.sequence_backward(cell, state, w_ih, w_hh, rk.to_chunks(dh, chunks))
    want_h, want = reference(cell, x, w_ih, w_hh, b_ih, b_hh, dh)
    tol = 2e-6 if dtype == np.float32 else 1e-12
    assert state["hid"].dtype == dtype and dxc.dtype == dtype
    np.testing.assert_allclose(rk.from_chunks(state["hid"], n), want_h, atol=tol)
    np.testing.assert_allclose(rk.from_chunks(dxc, n), want["x"], atol=tol * 10)
    for name, g in grads.items():
        assert g.dtype == dtype
        np.testing.assert_allclose(g, want[name], atol=tol * 10, err_msg=name)


@pytest.mark.parametrize("cell", CELLS)
def test_single_step_sequence(rng, cell):
    x = rng.standard_normal((2, 1, 3))
    w = weights(rng, cell, 3, 2, np.float64)
    dh = rng.standard_normal((2, 1, 2))
    state = rk.sequence_forward(cell, rk.to_chunks(x, 2), *w)
    dxc, grads = rk.sequence_backward(cell, state, w[0], w[1], rk.to_chunks(dh, 2))
    want_h, want = reference(cell, x, *w, dh)
    np.testing.assert_allclose(rk.from_chunks(state["hid"], 2), want_h, atol=1e-12)
    np.testing.assert_allclose(rk.from_chunks(dxc, 2), want["x"], atol=1e-12)
    np.testing.assert_allclose(grads["weight_hh"], 0.0)
    np.testing.assert_allclose(grads["weight_ih"], want["weight_ih"], atol=1e-12)


@pytest.mark.parametrize("n, chunks", [(1, 1), (5, 2), (4, 4), (7, 3)])
def test_chunk_layout_round_trips(rng, n, chunks):
    a = rng.standard_normal((n, 6, 3)).astype(np.float32)
    c = rk.to_chunks(a, chunks)
    assert c.shape[:2] == (chunks, 6) and c.flags.c_contiguous
    assert c.shape[2] * chunks >= n
    np.testing.assert_array_equal(rk.from_chunks(c, n), a)
    r = rk.to_chunks(a, chunks, reverse=True)
    np.testing.assert_array_equal(rk.from_chunks(r, n, reverse=True), a)
    np.testing.assert_array_equal(rk.from_chunks(r, n), a[:, ::-1])


def test_n_chunks_never_exceeds_batch():
    assert rk.n_chunks(1) == 1
    assert 1 <= rk.n_chunks(1000) <= 1000


@njit(parallel=False, error_model="numpy")
def _apply(x, out_t, out_s):
    for i in range(x.shape[0]):
        out_t[i] = rk.tanh_(x[i])
        out_s[i] = rk.sigmoid_(x[i])


@pytest.mark.parametrize("dtype, tol", [(np.float32, 5e-7), (np.float64, 1e-15)])
def test_fast_activations_are_accurate(dtype, tol):
    x = np.concatenate([np.linspace(-30, 30, 6001), [0.0, 1e-6, -1e-6, 1e4, -1e4]]).astype(dtype)
    t, s = np.empty_like(x), np.empty_like(x)
    _apply(x, t, s)
    x64 = x.astype(np.float64)
    np.testing.assert_allclose(t, np.tanh(x64), atol=tol, rtol=0)
    np.testing.assert_allclose(s, 0.5 + 0.5 * np.tanh(x64 / 2), atol=tol, rtol=0)
    assert np.all(np.abs(t) <= 1) and np.all((s >= 0) & (s <= 1))


def test_fast_activations_keep_nan():
    x = np.array([np.nan, 1.0], np.float32)
    t, s = np.empty_like(x), np.empty_like(x)
    _apply(x, t, s)
    assert np.isnan(t[0]) and np.isnan(s[0]) and np.isfinite(t[1])


def test_one_thread_blas_restores_thread_counts():
    """The recurrent kernels run inside the conv kernels' OneThreadBlas."""
    from threadpoolctl import threadpool_info

    from engine.kernels.conv import OneThreadBlas

    before = [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]
    with OneThreadBlas():
        inside = [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]
    after = [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]
    assert all(n == 1 for n in inside)
    assert after[:len(before)] == before


@pytest.mark.parametrize("cell", CELLS)
def test_numpy_cblas_and_np_dot_paths_agree(rng, cell, monkeypatch):
    x = rng.standard_normal((5, 3, 4)).astype(np.float32)
    w = weights(rng, cell, 4, 6, np.float32)
    dh = rng.standard_normal((5, 3, 6)).astype(np.float32)

    def run():
        state = rk.sequence_forward(cell, rk.to_chunks(x, 2), *w)
        dxc, grads = rk.sequence_backward(cell, state, w[0], w[1], rk.to_chunks(dh, 2))
        return [state["hid"], dxc, *grads.values()]

    first = run()
    monkeypatch.setattr(kblas, "_CBLAS", {"s": 0, "d": 0})
    assert kblas.blas_address(np.float32) == 0
    for a, b in zip(first, run()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
