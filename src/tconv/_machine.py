"""What machine this is, for benchmark reports: the CPU's model and the vector features that decide
which kernels frameworks run (AVX-512 or AVX2 only; oneDNN's defaults depend on them)."""
from __future__ import annotations

import os
import platform

__all__ = ["cpu_flags", "cpu_model", "cpu_summary"]


def _cpuinfo() -> list[str]:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as handle:
            return handle.readlines()
    except OSError:
        return []


def cpu_flags() -> set[str]:
    """The CPU feature flags Linux reports in /proc/cpuinfo (empty elsewhere)."""
    for line in _cpuinfo():
        if line.startswith(("flags", "Features")):
            return set(line.partition(":")[2].split())
    return set()


def cpu_model() -> str:
    """The CPU's model name, or the machine type where the system does not say."""
    for line in _cpuinfo():
        if line.startswith("model name"):
            return line.partition(":")[2].strip()
    return platform.processor() or platform.machine()


def cpu_summary(flags: set[str] | None = None, model: str | None = None) -> str:
    """One line for a benchmark report: model, cores, and AVX-512 or AVX2.

    >>> cpu_summary({"avx2", "avx512f", "avx512_vnni"}, "Some CPU")  # doctest: +ELLIPSIS
    'Some CPU, ... cores, AVX-512 (avx512_vnni, avx512f)'
    >>> cpu_summary({"avx2"}, "Some CPU")  # doctest: +ELLIPSIS
    'Some CPU, ... cores, AVX2 without AVX-512'
    """
    flags = cpu_flags() if flags is None else flags
    model = cpu_model() if model is None else model
    avx512 = sorted(f for f in flags if f.startswith("avx512"))
    if avx512:
        shown = [f for f in avx512 if f in ("avx512f", "avx512_vnni", "avx512_bf16")] or avx512[:3]
        vector = f"AVX-512 ({', '.join(shown)})"
    elif "avx2" in flags:
        vector = "AVX2 without AVX-512"
    else:
        vector = "no AVX2" if flags else platform.machine()
    return f"{model}, {os.cpu_count()} cores, {vector}"
