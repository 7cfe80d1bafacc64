"""How many CPU threads the engine uses: Numba's kernels and the BLAS libraries together.

Numba's thread count belongs to the thread that sets it, while a GUI sets it on one thread
and trains on another. ``set_num_threads`` therefore records the wish process-wide and
applies it to BLAS at once; each thread that runs the network picks it up (``sync``, called
by ``Network.forward``).

BLAS thread counts go through ``set_blas_threads`` / ``blas_threads``, which call OpenBLAS's
own process-wide setter. threadpoolctl's limits do not fit here: its OpenBLAS controller
(threadpoolctl 3.8) lets only the first Python thread that set a limit change it and ignores
every other thread silently. Once the main thread had set one, the limits a training thread
took were dropped, BLAS ran its own threads inside the kernels' parallel slices, and a step
on the training thread ran many times slower than on the main thread
(``benchmarks/bench_worker_thread.py``).
"""

from __future__ import annotations

import ctypes
import threading
from typing import Any

from .errors import ParamError

_wanted: int | None = None
_applied = threading.local()


_most: int | None = None


def max_threads() -> int:
    """The most threads Numba can run here (its pool size: the CPU count by default)."""
    global _most
    if _most is None:
        import numba

        _most = int(numba.config.NUMBA_NUM_THREADS)
    return _most


def get_num_threads() -> int:
    """Threads the engine's kernels use (the setting, or Numba's count on this thread)."""
    import numba

    return _wanted if _wanted is not None else int(numba.get_num_threads())


def set_num_threads(n: int) -> int:
    """Use ``n`` threads (1 .. ``max_threads()``) in Numba kernels and BLAS, on every thread
    that runs a network from now on; returns the previous setting. BLAS covers numpy's and
    the SciPy BLAS that Numba's kernels call (they hold it to one thread per kernel slice)."""
    import numba

    most = max_threads()
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= most:
        raise ParamError(f"threads must be a whole number from 1 to {most} on this machine, "
                         f"got {n!r}")
    global _wanted
    before = get_num_threads()
    _wanted = n
    numba.set_num_threads(n)
    _applied.n = n
    set_blas_threads(n)
    return before


class _Blas:
    """One loaded BLAS library: read and set its thread count from any Python thread."""

    def __init__(self, controller: Any) -> None:
        self.controller = controller
        self.path = str(controller.filepath)
        self._get: Any = None
        self._set: Any = None
        if controller.internal_api == "openblas" and \
                getattr(controller, "threading_layer", "") != "openmp":
            # OpenBLAS on pthreads: one process-wide pool, set through its own C functions
            # (threadpoolctl's controller ignores every thread but the first one that set it)
            lib = controller.dynlib
            for prefix in ("", "scipy_"):
                for suffix in ("", "64_", "_64"):
                    get = getattr(lib, f"{prefix}openblas_get_num_threads{suffix}", None)
                    put = getattr(lib, f"{prefix}openblas_set_num_threads{suffix}", None)
                    if get is not None and put is not None and self._get is None:
                        get.restype = ctypes.c_int
                        put.argtypes = [ctypes.c_int]
                        put.restype = None
                        self._get, self._set = get, put

    def get(self) -> int | None:
        if self._get is not None:
            return int(self._get())
        n = self.controller.get_num_threads()
        return n if isinstance(n, int) else None

    def set(self, n: int) -> None:
        if self._set is not None:
            self._set(int(n))
        else:
            self.controller.set_num_threads(int(n))


_blas_libs: list[_Blas] | None = None
_blas_lock = threading.Lock()


def blas_libraries() -> list[Any]:
    """The BLAS libraries loaded in this process (numpy's and the SciPy BLAS that Numba's
    kernels call), found once."""
    global _blas_libs
    with _blas_lock:
        if _blas_libs is None:
            import scipy.linalg.cython_blas  # noqa: F401  (loads the BLAS Numba calls)
            from threadpoolctl import ThreadpoolController

            ctl = ThreadpoolController().select(user_api="blas")
            _blas_libs = [_Blas(c) for c in ctl.lib_controllers]
        return _blas_libs


def blas_threads() -> dict[str, int | None]:
    """Thread count of every loaded BLAS, by library path (None where it cannot be read)."""
    return {lib.path: lib.get() for lib in blas_libraries()}


def set_blas_threads(n: int | dict[str, int | None]) -> dict[str, int | None]:
    """Set every loaded BLAS to ``n`` threads (or each to its count in a ``blas_threads()``
    dict), process-wide, from whichever thread calls; returns the counts before."""
    before = blas_threads()
    for lib in blas_libraries():
        want = n.get(lib.path) if isinstance(n, dict) else n
        if isinstance(want, int) and want >= 1 and want != before[lib.path]:
            lib.set(want)
    return before


def sync() -> int:
    """Apply the setting to Numba on the calling thread if it is not applied there yet;
    returns how many slices the kernels cut work into (also ``current()``)."""
    if _wanted is None:
        return max_threads()
    if getattr(_applied, "n", None) != _wanted:
        import numba

        numba.set_num_threads(_wanted)
        _applied.n = _wanted
    return _wanted


def current() -> int:
    """How many slices the kernels cut work into: the setting, else Numba's pool size. It
    does not follow a pool shrunk for a while (``ThreadTuner``), so results stay the same."""
    return _wanted if _wanted is not None else max_threads()


MAX_PROBE_WAIT = 30.0  # s: the longest a tuner goes without looking at the other choice


class ThreadTuner:
    """Chooses, while a model trains, between all of the engine's threads and one.

    On a quiet machine the parallel kernels run fastest on every core; when another program
    keeps a core busy, a thread that waits for the descheduled one wastes its slices and a
    step can take many times longer than on one thread (measured: LeNet-5 at batch 64,
    28,900 samples/s on 2 idle cores, 270-2,000 with one core busy, 18,000 on one thread).
    The tuner times every step, runs a few steps with the other choice after ``probe_every``
    seconds of training (waiting longer, up to 30 s, while probes lose; a probe step three
    times slower than usual ends the probe at once), and keeps the faster. Only Numba's pool
    size on the training thread changes: work is still cut into ``current()`` slices, so
    results are the same bits whichever count runs them."""

    def __init__(self, most: int | None = None, probe_every: float = 2.0,
                 probe_steps: int = 4, margin: float = 0.9) -> None:
        self.most = most if most is not None else current()
        self.choice = self.most
        self.probe_every = probe_every
        self.probe_steps = probe_steps
        self.margin = margin
        self.switches = 0
        self.steps_on: dict[int, int] = {}  # steps run on each thread count
        self._wait = probe_every  # s of training until the next probe; grows while they fail
        self._recent: dict[int, list[float]] = {}
        self._since_probe = 0.0
        self._probing = 0  # steps of the current probe still to run
        self._using = self.choice

    @property
    def other(self) -> int:
        return 1 if self.choice > 1 else self.most

    def before_step(self) -> int:
        """Set this thread's Numba pool for the coming step; returns its thread count."""
        import numba

        if self.most <= 1:
            return 1
        if not self._probing and self._since_probe >= self._wait \
                and self._since_probe > 0:
            self._probing = self.probe_steps
            self._since_probe = 0.0
            self._recent[self.other] = []
        n = self.other if self._probing else self.choice
        if n != self._using:
            numba.set_num_threads(n)
            self._using = n
        return n

    def after_step(self, seconds: float) -> None:
        """Record how long the step that ``before_step`` prepared took."""
        if self.most <= 1:
            return
        n = self._using
        self.steps_on[n] = self.steps_on.get(n, 0) + 1
        times = self._recent.setdefault(n, [])
        times.append(seconds)
        del times[:-6]
        if not self._probing:
            self._since_probe += seconds
            return
        kept = sorted(self._recent.get(self.choice, []))
        usual = kept[len(kept) // 2] if kept else None
        self._probing -= 1
        if usual is not None and seconds > 3 * usual:  # far slower: stop probing early
            self._probing = 0
            self._wait = min(self._wait * 2, MAX_PROBE_WAIT)
            return
        if self._probing:
            return
        probe = sorted(self._recent[n][1:])  # the first step after a switch wakes threads
        if probe and usual is not None and probe[len(probe) // 2] < self.margin * usual:
            self.choice = n
            self.switches += 1
            self._recent = {n: self._recent[n]}
            self._wait = self.probe_every
        else:
            self._wait = min(self._wait * 1.5, MAX_PROBE_WAIT)

    def finish(self) -> None:
        """Give the training thread its configured pool back."""
        import numba

        if self._using != self.most and self.most > 1:
            numba.set_num_threads(self.most)
            self._using = self.most
