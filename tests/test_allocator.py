"""tconv.tune_allocator: legal values, and a measurable effect on page faults (glibc)."""
from __future__ import annotations

import os
import platform
import subprocess
import sys
import textwrap

import pytest

import tconv
from tconv.allocator import MAX_MMAP_THRESHOLD

# Three 2 MiB buffers per round, freed together: with glibc's defaults the heap top is trimmed
# after every round, so each round faults its pages in again; a tuned allocator keeps them.
ROUNDS = textwrap.dedent("""
    import resource, sys
    import numpy as np
    import tconv
    if sys.argv[1] == "tuned":
        assert tconv.tune_allocator()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(20):
        buffers = [np.ones(1 << 19, np.float32) for _ in range(3)]
        del buffers
    print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
""")

glibc_only = pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
                                reason="mallopt is glibc's")


def _faults(mode: str) -> int:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_") and k != "GLIBC_TUNABLES"}
    out = subprocess.run([sys.executable, "-c", ROUNDS, mode], capture_output=True, text=True, env=env, check=True)
    return int(out.stdout.strip())


@glibc_only
def test_tuned_allocator_stops_refaulting_freed_buffers():
    default, tuned = _faults("default"), _faults("tuned")
    # 20 rounds x 6 MiB is about 30000 pages; tuned, only the first round faults
    assert tuned * 4 < default, (default, tuned)


@glibc_only
def test_returns_true_on_glibc():
    assert tconv.tune_allocator() is True


@pytest.mark.parametrize("kwargs", [
    dict(mmap_threshold=0),
    dict(mmap_threshold=MAX_MMAP_THRESHOLD + 1),
    dict(mmap_threshold=1.5),
    dict(mmap_threshold=True),
    dict(trim_threshold=-1),
])
def test_bad_thresholds_are_config_errors(kwargs):
    with pytest.raises(tconv.ConfigError, match="outside glibc's range"):
        tconv.tune_allocator(**kwargs)
