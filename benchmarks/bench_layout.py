"""What channels-last is worth to an NCHW caller: torch's own kernel on NCHW input, on channels-last
input, and with the conversions in and out that a drop-in returning NCHW must pay (by torch's copy,
and by tconv's ``channels_last`` strategy, which converts the output back by its C transpose, or in
cache-sized blocks where the C loops are not built).
Interleaved medians, first with glibc's allocator as the process starts, then after
``tconv.tune_allocator()`` (see bench_allocator.py: freed buffers stay in the process instead of
being faulted in again on every call). Then the conversion back alone, channels-last -> NCHW, by
torch's one copy, by tconv's blocked copies and by its C transpose, at 3 to 128 channels. Last, the
phase interleave that the phase-based strategies end with: one strided copy per phase, against
``land`` (two neighbouring phases at once through a complex view: tconv's way without its C loops)
and the C gather (each output row read from its phases in one pass: tconv's way with them).

    python benchmarks/bench_layout.py        (also run by `make bench`; writes results/layout.md)
"""
from __future__ import annotations

import itertools
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
import tconv  # noqa: E402
import tconv.torch as tt  # noqa: E402
import tconv.torch.strategies  # noqa: E402
from tconv.torch import _native  # noqa: E402
from tconv.torch.strategies import Plan, channels_last  # noqa: E402
from tconv.torch.strategies import _common  # noqa: E402
from tconv.torch.strategies._common import channels_first, land  # noqa: E402

LINES: list[str] = []


def say(line: str) -> None:
    print(line, flush=True)
    LINES.append(line)


def interleaved(calls: dict, repeats: int) -> dict[str, float]:
    """Median seconds per call, the calls taking turns."""
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
    return {name: statistics.median(values) for name, values in times.items()}


def main(repeats: int = 31, state: str = "") -> None:
    torch.manual_seed(0)
    # the decoder layer of the issue: 64 -> 32 channels, 64x64, k3 s2 p1 op1, batch 1
    x = torch.randn(1, 64, 64, 64)
    w, b = torch.randn(64, 32, 3, 3), torch.randn(32)
    cl = torch.channels_last
    x_cl = x.contiguous(memory_format=cl)
    plan = Plan(tt.layer_geometry((64, 64), (3, 3), stride=2, padding=1, output_padding=1), 64, 32)
    calls = {
        "NCHW input (as users call it)": lambda: F.conv_transpose2d(x, w, b, 2, 1, 1),
        "channels-last input, channels-last output": lambda: F.conv_transpose2d(x_cl, w, b, 2, 1, 1),
        "NCHW in -> channels-last -> NCHW out": lambda: F.conv_transpose2d(x.contiguous(memory_format=cl), w, b, 2, 1, 1).contiguous(),
        "the same, output back in blocks": torch_ops_only(lambda: channels_last(x, w, b, plan)),
        "the same, output back by the C transpose (tconv)": lambda: channels_last(x, w, b, plan),
    }
    say(f"  {state}:")
    for name, seconds in interleaved(calls, repeats).items():
        say(f"    {name:<50} {seconds * 1e3:6.2f} ms")


def torch_ops_only(fn):
    """``fn`` with tconv's C loops switched off (what runs where they cannot be built)."""
    def call():
        built = _native.library
        _native.library = lambda: None
        try:
            return fn()
        finally:
            _native.library = built
    return call


def conversions(repeats: int = 31) -> None:
    """Channels-last -> NCHW alone: torch's one copy, tconv's blocked copies, and tconv's C transpose."""
    say("")
    say("channels-last -> NCHW, float32, median ms (tconv without its C loops copies blocks of "
        f"{_common.TRANSPOSE_BLOCK_BYTES // 2**10} KiB; C loops: {_native.native_status()}):")
    say("")
    say("| shape | MiB | torch (.contiguous()) | tconv (blocks) | tconv (C transpose) | blocks speed-up | C speed-up |")
    say("|---|---:|---:|---:|---:|---:|---:|")
    for shape in [(1, 32, 128, 128), (1, 64, 128, 128), (2, 64, 128, 128), (1, 128, 64, 64), (4, 64, 64, 64),
                  (8, 128, 32, 32), (1, 16, 256, 256), (1, 3, 256, 256), (1, 32, 32, 32, 32)]:
        fmt = torch.channels_last if len(shape) == 4 else torch.channels_last_3d
        y = torch.randn(shape).contiguous(memory_format=fmt)
        t = interleaved({"copy": y.contiguous, "blocks": torch_ops_only(lambda: channels_first(y)),
                         "c": lambda: channels_first(y)}, repeats)
        megabytes = y.numel() * 4 / 2**20
        say(f"| {tuple(shape)} | {megabytes:.1f} | {t['copy'] * 1e3:.3f} | {t['blocks'] * 1e3:.3f} | {t['c'] * 1e3:.3f} | "
            f"{t['copy'] / t['blocks']:.2f}x | {t['copy'] / t['c']:.2f}x |")


def interleaves(repeats: int = 31) -> None:
    """Phases into their strided places: one copy each, against neighbouring phases paired (``land``)."""
    say("")
    say("phases -> interleaved output, median ms (each phase is (N, C, *input); the output (N, C, *s*input)); "
        f"pairs forced at every size here, tconv pairs from {_common.PAIR_MIN_BYTES >> 20} MiB:")
    say("")
    say("| output shape | dtype | stride | MiB | a strided copy per phase | pairs | C gather (tconv) | "
        "pairs speed-up | C speed-up |")
    say("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    f32, f64 = torch.float32, torch.float64
    for shape, stride, dtype in [((4, 64, 64, 64), (2, 2), f32), ((2, 64, 64, 64), (2, 2), f32), ((1, 32, 128, 128), (2, 2), f32),
                                 ((8, 3, 64, 64), (2, 2), f32), ((4, 64, 64, 64), (2, 2), f64), ((4, 32, 32, 32), (2, 2), f64),
                                 ((1, 32, 32, 32, 32), (2, 2, 2), f32), ((1, 16, 24, 24, 24), (2, 2, 2), f32),
                                 ((2, 128, 2048), (2,), f32), ((8, 128, 2048), (2,), f32), ((1, 256, 512), (8,), f32)]:
        out = torch.empty(shape, dtype=dtype)
        nd = len(stride)
        inputs = tuple(o // s for o, s in zip(shape[2:], stride))
        phases = torch.randn(shape[:2] + tuple(stride) + inputs, dtype=dtype)  # (N, C, *s, *I), as one GEMM leaves them
        jobs = []
        for r in itertools.product(*(range(s) for s in stride)):
            dst = (slice(None), slice(None)) + tuple(slice(i, None, s) for i, s in zip(r, stride))
            jobs.append((dst, phases[(slice(None), slice(None)) + r]))
        # the C landing: output o of an axis reads phase o mod s at o // s
        tables = [_native.AxisTable.of(shape[2 + a], 0, stride[a], 1, stride[a], inputs[a], phases.stride(2 + a),
                                       phases.stride(2 + nd + a)) for a in range(nd)]
        planes = torch.arange(shape[0] * shape[1], dtype=torch.int64) * phases.stride(1)
        flat = out.view((-1,) + tuple(shape[2:]))
        landing = _native.Gather(dtype, planes, tables, False, planes.shape[0])  # prepared once, as tconv does

        def each():
            for dst, value in jobs:
                out[dst] = value
        floor = _common.PAIR_MIN_BYTES
        _common.PAIR_MIN_BYTES = 0  # pair at every size here, to measure where it pays
        try:
            t = interleaved({"each": each, "pairs": lambda: land(out, jobs),
                             "c": lambda: landing(phases, flat, None)}, repeats)
        finally:
            _common.PAIR_MIN_BYTES = floor
        expected = torch.empty_like(out)
        for dst, value in jobs:
            expected[dst] = value
        landing(phases, flat, None)
        assert torch.equal(out, expected), "the C landing moved something wrong"
        megabytes = out.numel() * out.element_size() / 2**20
        say(f"| {tuple(shape)} | {str(dtype).replace('torch.', '')} | {'x'.join(map(str, stride))} | {megabytes:.1f} | "
            f"{t['each'] * 1e3:.3f} | {t['pairs'] * 1e3:.3f} | {t['c'] * 1e3:.3f} | {t['each'] / t['pairs']:.2f}x | "
            f"{t['each'] / t['c']:.2f}x |")


if __name__ == "__main__":
    import argparse

    # no options: --help says what runs and where it writes, instead of running it
    argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                            epilog="example: python benchmarks/bench_layout.py  (writes benchmarks/results/layout.md)").parse_args()
    say(f"decoder 64->32, 64x64, k3 s2 p1 op1, batch 1; torch {torch.__version__}, {torch.get_num_threads()} threads; "
        f"median of 31 interleaved runs")
    main(state="glibc's allocator as the process starts")
    tconv.tune_allocator()
    main(state="after tconv.tune_allocator()")
    conversions()
    interleaves()
    out = Path(__file__).resolve().parent / "results" / "layout.md"
    out.write_text("```\n" + "\n".join(LINES[:LINES.index("")]) + "\n```\n" + "\n".join(LINES[LINES.index(""):]) + "\n")
