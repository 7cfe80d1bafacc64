"""How far apart the cores are: the round trip of a cache line between two of Numba's threads.

About 40 ns where the cores share a cache; this build machine's virtual CPUs sometimes sit
apart for minutes at a time, and then it is about 400 ns and every parallel kernel that shares
data between cores slows down (see ``engine.fusion.DenseBlock``). The benchmarks print it, so
that a run can be read against the state the machine was in.
"""

from __future__ import annotations

import time

import numpy as np
from numba import njit, prange, types
from numba.core import cgutils
from numba.extending import intrinsic


@intrinsic
def _fetch_add(typingctx, counter, value):
    """counter[0] += value atomically; returns the value before."""

    def codegen(context, builder, signature, args):
        arrty = signature.args[0]
        ary = context.make_array(arrty)(context, builder, args[0])
        zero = context.get_constant(types.intp, 0)
        ptr = cgutils.get_item_pointer(context, builder, arrty, ary, [zero], wraparound=False)
        return builder.atomic_rmw("add", ptr, args[1], "seq_cst")

    return types.int64(counter, types.int64), codegen


@njit(parallel=True, nogil=True)
def _ping_pong(rounds: int, counter: np.ndarray, patience: int) -> bool:
    """Two threads take turns to add 1 to the counter, ``rounds`` times each; False when a
    thread waited ``patience`` spins for its turn (the other one is not running)."""
    ok = np.ones(2, np.bool_)
    for side in prange(2):
        for i in range(rounds):
            turn = 2 * i + side
            spins = 0
            while _fetch_add(counter, 0) != turn:
                spins += 1
                if spins > patience:
                    ok[side] = False
                    break
            if not ok[side]:
                break
            _fetch_add(counter, 1)
    return ok[0] and ok[1]


def core_round_trip_ns(rounds: int = 50_000) -> float | None:
    """Nanoseconds for a cache line to go to the other thread's core and back (best of 3),
    or None when fewer than two threads run at once."""
    import numba

    if numba.get_num_threads() < 2:
        return None
    best = None
    _ping_pong(100, np.zeros(1, np.int64), 10**8)
    for _ in range(3):
        counter = np.zeros(1, np.int64)
        t0 = time.perf_counter()
        if not _ping_pong(rounds, counter, 10**8):
            return None
        dt = (time.perf_counter() - t0) / rounds * 1e9
        best = dt if best is None else min(best, dt)
    return best


def describe_round_trip() -> str:
    ns = core_round_trip_ns()
    if ns is None:
        return "core-to-core round trip: not measured (one thread)"
    kind = "cores share a cache" if ns < 150 else "cores far apart"
    return f"core-to-core round trip {ns:.0f} ns ({kind})"
