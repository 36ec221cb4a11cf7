"""glibc allocator setting shared by the benchmarks: timings of compute, not of page faults."""

from __future__ import annotations

import ctypes


def keep_freed_memory() -> bool:
    """glibc only: serve every allocation from the heap and keep freed memory in the process.

    By default glibc mmaps large blocks and unmaps them when freed, so each forward pass
    page-faults its activations in afresh. Measured in cka_speed.py (ResNet-20 pair, one
    thread): the plain forward floor took 6.1 s CPU with 0.89 M minor page faults, 3.7 s with
    none, and the capture-holding suite run faulted less than the floor did, which can make
    "total minus floor" come out negative. In train_speed.py the faults moved the ratios by
    up to 0.1 from run to run. Keeping freed memory makes every timed section measure
    compute, not page faults. Returns whether glibc accepted the settings.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
        M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_MAX = -1, -2, -4
        return bool(libc.mallopt(M_MMAP_MAX, 0) and libc.mallopt(M_TRIM_THRESHOLD, 2**31 - 1)
                    and libc.mallopt(M_TOP_PAD, 64 << 20))
    except (OSError, AttributeError):
        return False
