"""Shared set-up for benchmarks: a clean BLAS environment, thread counts, timing, torch."""

from __future__ import annotations

import contextlib
import os
import platform
import sys
import time
from collections.abc import Callable

BLAS_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


def clean_environment() -> None:
    """Re-exec this process without the BLAS tuning variables this machine sets.

    Users' machines do not set them and they slow a current OpenBLAS badly; numpy must not be
    loaded before this runs. Kernels missing from the cache compile in place on their first
    call (``NETBUILDER_SERIAL_FIRST=0``, see ``engine.kernels.serial_first``): a benchmark
    times the kernels themselves, not their serial stand-ins."""
    os.environ.setdefault("NETBUILDER_SERIAL_FIRST", "0")
    if any(v in os.environ for v in BLAS_VARS):
        env = {k: v for k, v in os.environ.items() if k not in BLAS_VARS}
        os.execve(sys.executable, [sys.executable, *sys.argv], env)


def blas_description() -> str:
    from threadpoolctl import threadpool_info

    parts = []
    for info in threadpool_info():
        if info.get("user_api") == "blas":
            parts.append(f"{info.get('internal_api')} {info.get('version')} "
                         f"({info.get('architecture')}, {info.get('num_threads')} threads)")
    return "; ".join(parts) or "unknown"


def machine_description() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}"


def best_rate(step: Callable[[], None], samples_per_call: int, min_time: float = 1.5,
              warmup: int = 3, repeats: int = 3) -> float:
    """Samples per second of ``step``: the best of ``repeats`` timed runs of ≥ ``min_time`` s."""
    for _ in range(warmup):
        step()
    best = 0.0
    for _ in range(repeats):
        n = 0
        t0 = time.perf_counter()
        while True:
            step()
            n += 1
            dt = time.perf_counter() - t0
            if dt >= min_time / repeats:
                break
        best = max(best, n * samples_per_call / dt)
    return best


def matmul_roof(threads: int) -> float:
    """GFLOP/s of a large float32 matrix multiply with numpy's BLAS on ``threads`` threads."""
    import numpy as np
    from threadpoolctl import threadpool_limits

    a = np.random.default_rng(0).standard_normal((2048, 2048)).astype(np.float32)
    with threadpool_limits(threads, user_api="blas"):
        a @ a
        best = float("inf")
        for _ in range(3):
            t0 = time.perf_counter()
            a @ a
            best = min(best, time.perf_counter() - t0)
    return 2 * 2048**3 / best / 1e9


def import_torch_first() -> None:
    """Load PyTorch (if installed) before the engine: importing ``engine`` sets
    ``GOMP_SPINCOUNT`` for the OpenMP runtime it loads, and torch's own OpenMP runtime would
    read it too if loaded later. The reference runs with its defaults."""
    with contextlib.suppress(ImportError):
        import torch  # noqa: F401


def try_torch(threads: int):
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(threads)
    return torch
