"""Keep freed large buffers in the process instead of handing them back to the OS (glibc).

Why this matters for transposed convolutions: glibc's ``malloc`` serves every
request above its *mmap threshold* (128 KiB at start) with fresh pages from the
kernel, and gives them back on ``free``. The next call of the same layer then
pays a page fault for every 4 KiB of its output and scratch buffers again.
glibc raises the threshold on its own only after the program frees a buffer
larger than the current one, so a layer that runs alone in a fresh process (a
micro-benchmark, a script that only decodes) can stay on the slow side for
good. Measured here (``benchmarks/bench_allocator.py``): torch's NCHW
``conv_transpose2d`` for a 64->32 channel, 64x64, k3 s2 layer takes about
3.5 ms in a fresh process and about 1.5 ms once the threshold is raised.

:func:`tune_allocator` raises both thresholds with ``mallopt``, which is what
``MALLOC_MMAP_THRESHOLD_=33554432 MALLOC_TRIM_THRESHOLD_=67108864`` in the
environment does at start-up. The cost: up to ``trim_threshold`` bytes of freed
memory stay mapped to the process. It helps every framework in the process
(torch, NumPy), not only tconv, and it changes nothing on other C libraries.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import platform

from .errors import ConfigError

__all__ = ["tune_allocator", "MAX_MMAP_THRESHOLD"]

#: glibc's ceiling for ``M_MMAP_THRESHOLD`` on 64-bit systems (``DEFAULT_MMAP_THRESHOLD_MAX``)
MAX_MMAP_THRESHOLD = 32 * 2**20

# mallopt parameter numbers, from glibc's <malloc.h>
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3


def _glibc():
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None


def tune_allocator(mmap_threshold: int = MAX_MMAP_THRESHOLD, trim_threshold: int | None = None) -> bool:
    """Serve buffers up to ``mmap_threshold`` bytes from the heap and keep freed memory (glibc only).

    Parameters
    ----------
    mmap_threshold : int
        Requests larger than this still get their own pages from the kernel;
        from 1 to 32 MiB (glibc's maximum), default 32 MiB.
    trim_threshold : int, optional
        Free memory at the top of the heap is returned to the kernel only
        beyond this many bytes; default twice ``mmap_threshold``.

    Returns
    -------
    bool
        True when the settings were applied, False on a platform without
        glibc (macOS, Windows, musl), where nothing changes.

    Raises
    ------
    ConfigError
        For a threshold outside the legal range.

    Examples
    --------
    >>> import tconv
    >>> isinstance(tconv.tune_allocator(), bool)
    True
    >>> tconv.tune_allocator(mmap_threshold=64 * 2**20)
    Traceback (most recent call last):
    ...
    tconv.errors.ConfigError: mmap_threshold=67108864 is outside glibc's range: use 1 to 33554432 bytes (32 MiB)
    """
    for name, value, top in (("mmap_threshold", mmap_threshold, MAX_MMAP_THRESHOLD), ("trim_threshold", trim_threshold, 2**62)):
        if value is None and name == "trim_threshold":
            continue
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= top:
            limit = f"1 to {top} bytes (32 MiB)" if name == "mmap_threshold" else "a positive number of bytes"
            raise ConfigError(f"{name}={value!r} is outside glibc's range: use {limit}")
    libc = _glibc()
    if libc is None:
        return False
    trim = 2 * mmap_threshold if trim_threshold is None else trim_threshold
    # mallopt returns 1 on success; setting either value also stops glibc's own adjustment of both
    return bool(libc.mallopt(_M_MMAP_THRESHOLD, mmap_threshold)) and bool(libc.mallopt(_M_TRIM_THRESHOLD, trim))
