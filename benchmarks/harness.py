"""What the benchmark scripts share: interleaved timing, and which oneDNN deconvolution torch ran.

Not a benchmark itself: ``benchmarks/run.py`` runs ``bench_*.py`` only.
"""
from __future__ import annotations

import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

HERE = str(Path(__file__).resolve().parent)


def interleaved(fns: dict, repeats: int, grad: bool = False, shuffle: bool = True) -> dict[str, float]:
    """Median seconds per call, the calls taking turns (after one warm-up call each).

    With ``shuffle`` each round runs them in a fresh random order (seeded), so that no call
    keeps a fixed place in the queue.
    """
    times: dict[str, list[float]] = {name: [] for name in fns}
    order = list(fns)
    rng = random.Random(0)
    with torch.set_grad_enabled(grad):
        for fn in fns.values():
            fn()
        for _ in range(repeats):
            if shuffle:
                rng.shuffle(order)
            for name in order:
                start = time.perf_counter()
                fns[name]()
                times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def deconvolutions(script: str) -> dict[str, str | None]:
    """Layer name -> the oneDNN deconvolution implementation that ran, or None if none did.

    ``script`` runs in a child Python with this folder on ``sys.path``; before each
    layer's call it prints ``LAYER <name>``. A layer that ran no oneDNN
    deconvolution ran torch's own fallback (``slow_conv_transpose2d``).
    """
    code = f"import sys; sys.path.insert(0, {HERE!r})\n" + script
    env = dict(os.environ, ONEDNN_VERBOSE="1")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True).stdout
    found: dict[str, str | None] = {}
    current = None
    for line in out.splitlines():
        if line.startswith("LAYER "):
            current = line[6:]
            found[current] = None
        elif current and ",exec," in line and ",deconvolution," in line:
            found[current] = line.split(",")[6]
    return found
