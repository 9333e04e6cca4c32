"""What channels-last is worth to an NCHW caller: torch's own kernel on NCHW input, on channels-last
input, and with the conversions in and out that a drop-in returning NCHW must pay. Interleaved medians,
first with glibc's allocator as the process starts, then after ``tconv.tune_allocator()`` (see
bench_allocator.py: freed buffers stay in the process instead of being faulted in again on every call).

    python benchmarks/bench_layout.py        (also run by `make bench`)
"""
from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
import tconv  # noqa: E402


def main(repeats: int = 31, state: str = "") -> None:
    torch.manual_seed(0)
    # the decoder layer of the issue: 64 -> 32 channels, 64x64, k3 s2 p1 op1, batch 1
    x = torch.randn(1, 64, 64, 64)
    w, b = torch.randn(64, 32, 3, 3), torch.randn(32)
    cl = torch.channels_last
    x_cl = x.contiguous(memory_format=cl)
    calls = {
        "NCHW input (as users call it)": lambda: F.conv_transpose2d(x, w, b, 2, 1, 1),
        "channels-last input, channels-last output": lambda: F.conv_transpose2d(x_cl, w, b, 2, 1, 1),
        "NCHW in -> channels-last -> NCHW out": lambda: F.conv_transpose2d(x.contiguous(memory_format=cl), w, b, 2, 1, 1).contiguous(),
    }
    times: dict[str, list[float]] = {name: [] for name in calls}
    with torch.no_grad():
        for call in calls.values():
            call()
        for _ in range(repeats):
            for name, call in calls.items():
                call()  # untimed: absorbs the previous call's spinning threads
                start = time.perf_counter()
                call()
                times[name].append(time.perf_counter() - start)
    print(f"  {state}:")
    for name, values in times.items():
        print(f"    {name:<45} {statistics.median(values) * 1e3:6.2f} ms")


if __name__ == "__main__":
    print(f"decoder 64->32, 64x64, k3 s2 p1 op1, batch 1; torch {torch.__version__}, {torch.get_num_threads()} threads; "
          f"median of 31 interleaved runs")
    main(state="glibc's allocator as the process starts")
    tconv.tune_allocator()
    main(state="after tconv.tune_allocator()")
