"""tconv.torch against PyTorch's own transposed convolution, in the same run.

For each real decoder layer: torch native (``nn.ConvTranspose*d`` on NCHW
input, as users call it) and ``tconv.torch.ConvTranspose*d`` (auto picker, its
one-off measurement excluded as warm-up) are timed alternately, forward (under
``torch.no_grad()``) and forward+backward, and the medians are compared. GF/s
counts ``2 * N * C_in * prod(I) * C_out/groups * prod(k)`` flops per forward
(three times that for forward+backward); "% peak" divides by this machine's
GEMM rate measured at the start of the same run (a large ``torch.matmul``).
A second table compares both with channels-last input.

Allocator state: the GEMM-peak measurement frees large matrices, which raises
glibc's mmap threshold, so both sides run with a warm allocator, as in a model
after its first forward pass. In a fresh process torch's NCHW kernel can be
several times slower; ``bench_allocator.py`` measures that state.

Usage: python benchmarks/bench_torch.py [--repeats N] [--strategies] [--only NAME] [--mode deterministic]
Writes benchmarks/results/torch.md.
"""
from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from tconv._machine import cpu_summary  # noqa: E402
import tconv.torch as tt  # noqa: E402
from tconv.torch.strategies import Plan, eligible, run  # noqa: E402

# name, ndim, batch, in, out, kernel, stride, padding, output_padding, groups, dilation, spatial, dtype
LAYERS = [
    ("DCGAN 256->128, 16x16 (k4 s2 p1)", 2, 8, 256, 128, 4, 2, 1, 0, 1, 1, (16, 16), torch.float32),
    ("DCGAN 64->3, 32x32 (k4 s2 p1)", 2, 8, 64, 3, 4, 2, 1, 0, 1, 1, (32, 32), torch.float32),
    ("U-Net 2-D up 128->64, 32x32 (k2 s2)", 2, 4, 128, 64, 2, 2, 0, 0, 1, 1, (32, 32), torch.float32),
    ("decoder 64->32, 64x64 (k3 s2 p1 op1)", 2, 1, 64, 32, 3, 2, 1, 1, 1, 1, (64, 64), torch.float32),
    ("3-D U-Net up 64->32, 16^3 (k2 s2)", 3, 1, 64, 32, 2, 2, 0, 0, 1, 1, (16, 16, 16), torch.float32),
    ("3-D decoder 32->16, 12^3 (k3 s2 p1 op1)", 3, 1, 32, 16, 3, 2, 1, 1, 1, 1, (12, 12, 12), torch.float32),
    ("HiFi-GAN up 512->256, L=64 (k16 s8 p4)", 1, 1, 512, 256, 16, 8, 4, 0, 1, 1, (64,), torch.float32),
    ("MelGAN up 256->128, L=256 (k16 s8 p4)", 1, 1, 256, 128, 16, 8, 4, 0, 1, 1, (256,), torch.float32),
    ("HiFi-GAN up 128->64, L=2048 (k4 s2 p1)", 1, 1, 128, 64, 4, 2, 1, 0, 1, 1, (2048,), torch.float32),
    ("depthwise 64ch, 32x32 (k3 s2 p1 op1)", 2, 4, 64, 64, 3, 2, 1, 1, 64, 1, (32, 32), torch.float32),
    ("depthwise 1-D 128ch, L=1024 (k5 s2 p2 op1)", 1, 2, 128, 128, 5, 2, 2, 1, 128, 1, (1024,), torch.float32),
    ("float64 DCGAN 64->32, 16x16 (k4 s2 p1)", 2, 4, 64, 32, 4, 2, 1, 0, 1, 1, (16, 16), torch.float64),
    ("batch-1 small 32->16, 8x8 (k3 s2 p1 op1)", 2, 1, 32, 16, 3, 2, 1, 1, 1, 1, (8, 8), torch.float32),
    ("op >= s with dilation 32->16, 16x16 (k3 s2 p1 op2 d3)", 2, 2, 32, 16, 3, 2, 1, 2, 1, 3, (16, 16), torch.float32),
]

MODULES = {1: (nn.ConvTranspose1d, tt.ConvTranspose1d), 2: (nn.ConvTranspose2d, tt.ConvTranspose2d),
           3: (nn.ConvTranspose3d, tt.ConvTranspose3d)}
CHANNELS_LAST = {2: torch.channels_last, 3: torch.channels_last_3d}


def gemm_peak(dtype: torch.dtype, size: int = 1536, repeats: int = 5) -> float:
    """GF/s of a large square torch.matmul on this machine, now."""
    a, b = torch.randn(size, size, dtype=dtype), torch.randn(size, size, dtype=dtype)
    torch.matmul(a, b)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        torch.matmul(a, b)
        times.append(time.perf_counter() - start)
    return 2 * size**3 / min(times) / 1e9


def flops(layer) -> float:
    _, nd, n, cin, cout, k, s, p, op, g, d, spatial, _ = layer
    return 2.0 * n * cin * math.prod(spatial) * (cout // g) * k**nd


def build(layer):
    _, nd, n, cin, cout, k, s, p, op, g, d, spatial, dtype = layer
    torch.manual_seed(0)
    ref_cls, our_cls = MODULES[nd]
    ref = ref_cls(cin, cout, k, s, p, op, g, True, d, dtype=dtype)
    ours = our_cls(cin, cout, k, s, p, op, g, True, d, dtype=dtype)
    ours.load_state_dict(ref.state_dict())
    x = torch.randn((n, cin) + spatial, dtype=dtype)
    return ref, ours, x


def timed(fn, number: int = 1) -> float:
    """Seconds per call, over ``number`` back-to-back calls."""
    start = time.perf_counter()
    for _ in range(number):
        fn()
    return (time.perf_counter() - start) / number


#: each timed sample lasts at least this long (tiny layers loop), so timer and scheduler jitter average out
MIN_SAMPLE_S = 0.01


def forward_fn(module, x):
    def go():
        with torch.no_grad():
            module(x)
    return go


def backward_fn(module, x):
    xg = x.detach().clone().requires_grad_(True)

    def go():
        module.zero_grad(set_to_none=True)
        y = module(xg)
        y.backward(torch.ones_like(y))
    return go


def compare(fns: dict, repeats: int, stat=statistics.median) -> dict:
    """Interleaved repeats (A B A B ...) so that machine noise hits both alike; medians.

    A layer faster than ``MIN_SAMPLE_S`` is called several times per sample
    (the same count for every contender), so a 50 us layer is not judged on
    single timer reads.
    """
    for fn in fns.values():
        fn()  # warm-up; the tconv picker measures here, once per signature
        fn()
    fastest = min(timed(fn) for fn in fns.values())
    number = max(1, math.ceil(MIN_SAMPLE_S / max(fastest, 1e-7)))
    samples = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            samples[name].append(timed(fn, number))
    return {name: stat(v) for name, v in samples.items()}


def chosen(module) -> str:
    """The strategy the module ran on its latest call (measured, or by rule for tiny layers)."""
    last = module.__dict__.get("_tconv_last")
    return "?" if last is None else last[1]


def strategy_times(layer, repeats: int) -> dict:
    ref, ours, x = build(layer)
    geo = tt.layer_geometry(x.shape[2:], ours.kernel_size, ours.stride, ours.padding, ours.output_padding,
                            ours.dilation, ours.groups)
    plan = Plan(geo, ours.in_channels, ours.out_channels)
    fns = {}
    for name in eligible(plan):
        def go(name=name):
            with torch.no_grad():
                run(name, x, ours.weight, ours.bias, plan)
        fns[name] = go
    return compare(fns, repeats, min)


def report(lines: list[str], out: str, save: bool) -> None:
    """Print the results; save them to ``out`` when every layer ran, or when ``--out`` named the file
    (``--only`` runs are partial: they do not overwrite the whole suite's results by default)."""
    text = "\n".join(lines) + "\n"
    print()
    print(text)
    if save:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(text)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=11)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own)")
    parser.add_argument("--strategies", action="store_true", help="also time every strategy, forward")
    parser.add_argument("--only", default=None, help="run layers whose name contains this text")
    parser.add_argument("--mode", default="auto", choices=["auto", "deterministic"],
                        help="tconv's picker: measure (auto, default) or the documented rule (deterministic)")
    parser.add_argument("--out", default=None,
                        help="where to save the tables (default: results/torch.md, and only for a whole-suite run)")
    ns = parser.parse_args(argv)
    out_named = ns.out is not None
    if ns.out is None:
        ns.out = str(Path(__file__).resolve().parent / "results" / "torch.md")
    if ns.threads:
        torch.set_num_threads(ns.threads)
    tt.set_strategy(ns.mode)
    layers = [layer for layer in LAYERS if ns.only is None or ns.only.lower() in layer[0].lower()]

    peak32, peak64 = gemm_peak(torch.float32), gemm_peak(torch.float64)
    print(f"GEMM peak now: float32 {peak32:.0f} GF/s, float64 {peak64:.0f} GF/s, threads {torch.get_num_threads()}")
    rows, rows_cl, speedups_f, speedups_b, best_ratios = [], [], [], [], []
    for layer in layers:
        name, nd = layer[0], layer[1]
        ref, ours, x = build(layer)
        peak = peak64 if layer[-1] == torch.float64 else peak32
        f = flops(layer)
        fwd = compare({"native": forward_fn(ref, x), "tconv": forward_fn(ours, x)}, ns.repeats)
        pick_f = chosen(ours)
        bwd = compare({"native": backward_fn(ref, x), "tconv": backward_fn(ours, x)}, max(3, ns.repeats - 2))
        pick_b = chosen(ours)
        rf, rb = fwd["native"] / fwd["tconv"], bwd["native"] / bwd["tconv"]
        speedups_f.append(rf)
        speedups_b.append(rb)
        rows.append((name, fwd["native"], fwd["tconv"], rf, f / fwd["tconv"] / 1e9, 100 * f / fwd["tconv"] / 1e9 / peak,
                     pick_f, bwd["native"], bwd["tconv"], rb, pick_b))
        print(f"{name}: forward {fwd['native']*1e3:.2f} -> {fwd['tconv']*1e3:.2f} ms ({rf:.2f}x, {pick_f}); "
              f"fwd+bwd {bwd['native']*1e3:.2f} -> {bwd['tconv']*1e3:.2f} ms ({rb:.2f}x, {pick_b})", flush=True)
        if nd in CHANNELS_LAST:
            xcl = x.contiguous(memory_format=CHANNELS_LAST[nd])
            cl = compare({"native": forward_fn(ref, xcl), "tconv": forward_fn(ours, xcl)}, ns.repeats)
            rows_cl.append((name, fwd["native"], cl["native"], cl["tconv"], cl["native"] / cl["tconv"],
                            fwd["native"] / cl["tconv"], chosen(ours)))
        if ns.strategies:
            times = strategy_times(layer, ns.repeats)
            best_ratios.append(times["native"] / min(times.values()))
            print("    min ms: " + ", ".join(f"{k} {v*1e3:.2f}" for k, v in sorted(times.items(), key=lambda kv: kv[1])))

    if best_ratios:
        # the ceiling for any picker: each layer's fastest strategy, as timed in the sweep
        print(f"fastest strategy per layer against native (sweep minima), geometric mean: "
              f"{math.exp(statistics.mean(math.log(r) for r in best_ratios)):.2f}x")
    geo_f = math.exp(statistics.mean(math.log(r) for r in speedups_f))
    geo_b = math.exp(statistics.mean(math.log(r) for r in speedups_b))
    lines = [
        f"Machine: {cpu_summary()}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, tconv mode {ns.mode!r}; GEMM peak measured in this run: float32 {peak32:.0f} GF/s, "
        f"float64 {peak64:.0f} GF/s. Medians of {ns.repeats} interleaved repeats (forward under no_grad; "
        f"forward+backward with input and parameters requiring grad).",
        "",
        "| layer | native fwd ms | tconv fwd ms | fwd speed-up | tconv GF/s | % GEMM peak | strategy | "
        "native fwd+bwd ms | tconv fwd+bwd ms | fwd+bwd speed-up | strategy (bwd) |",
        "|---|---:|---:|---:|---:|---:|---|---:|---:|---:|---|",
    ]
    for r in rows:
        lines.append(f"| {r[0]} | {r[1]*1e3:.2f} | {r[2]*1e3:.2f} | {r[3]:.2f}x | {r[4]:.1f} | {r[5]:.0f}% | {r[6]} | "
                     f"{r[7]*1e3:.2f} | {r[8]*1e3:.2f} | {r[9]:.2f}x | {r[10]} |")
    lines += [
        "",
        f"Geometric-mean speed-up: forward **{geo_f:.2f}x**, forward+backward **{geo_b:.2f}x**; slowest layer "
        f"forward {min(speedups_f):.2f}x, forward+backward {min(speedups_b):.2f}x.",
        "",
        "Channels-last input (forward): what a user gets by converting the input themselves.",
        "",
        "| layer | native NCHW ms | native channels-last ms | tconv channels-last ms | tconv vs native channels-last | "
        "tconv channels-last vs native NCHW | strategy |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows_cl:
        lines.append(f"| {r[0]} | {r[1]*1e3:.2f} | {r[2]*1e3:.2f} | {r[3]*1e3:.2f} | {r[4]:.2f}x | {r[5]:.2f}x | {r[6]} |")
    report(lines, ns.out, save=ns.only is None or out_named)
    return 0


if __name__ == "__main__":
    sys.exit(main())
