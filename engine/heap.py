"""Keeping the memory a training step frees for the next step (glibc's allocator on Linux).

A backward pass allocates its gradients afresh (each step's input gradient, the BatchNorm
gradients, the sums where two gradients meet): tens of MB per step for a CIFAR ResNet at
batch 64. glibc hands blocks this large back to the kernel when they are freed (an ``mmap``
of its own, or the top of the heap once more than ``M_TRIM_THRESHOLD`` is free there), and
every page of the next step's arrays is then faulted in and zeroed again: ~7,000 page faults
per ResNet-20 backward pass. ``keep_freed_pages`` raises both limits so that freed blocks
stay in the process and are reused (the process holds on to its peak, no more). Elsewhere
(macOS, Windows, musl) it does nothing.
"""

from __future__ import annotations

import ctypes
import sys

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
TRIM_BYTES = 1 << 30  # free memory kept at the top of the heap before returning it
MMAP_BYTES = 1 << 25  # blocks from here on get their own mapping (glibc's own maximum)

_state: list[bool] = []


def keep_freed_pages() -> bool:
    """Set glibc's trim and mmap thresholds once per process (see the module note); True
    when they are set (glibc), False where there is nothing to set."""
    if not _state:
        _state.append(_set_thresholds())
    return _state[0]


def _set_thresholds() -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    mallopt = getattr(libc, "mallopt", None)
    if mallopt is None:
        return False
    return bool(mallopt(M_TRIM_THRESHOLD, TRIM_BYTES)) and bool(mallopt(M_MMAP_THRESHOLD,
                                                                        MMAP_BYTES))
