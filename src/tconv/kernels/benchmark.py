"""The algorithm benchmark: real decoder layers, every algorithm and torch's native kernel in one run.

Run it with ``make bench``, ``python benchmarks/bench_algorithms.py`` or
``tconv bench``. Timings are medians of ``repeat`` runs, taken round-robin
(every competitor once per round, so background load hits all alike, each
timed call right after 0.15 s of untimed calls of its own, so the previous
competitor's spinning BLAS/OpenMP threads cannot slow it;
``scatter``, the reference, runs once: it is written for clarity); GF/s counts the useful
multiply-adds ``2 * N * prod(I) * C_in * C_out/groups * prod(k)``, the same for
every algorithm. Peak memory is what ``tracemalloc`` sees NumPy allocate during
one call, output included; torch's allocations are invisible to it ("-").

The NumPy algorithms get channels-last input (the memory layout of torch's
``channels_last``), which is the layout they compute in; torch runs on both
layouts. Where ``phase`` runs tconv's compiled C loop (its ``compiled`` form,
on depthwise layers), the same call with the loops switched off
(``phase, NumPy ops``: the ``rows`` form, what runs without a C compiler)
is timed too. Speed is measured here, never asserted in tests.
"""
from __future__ import annotations

import json
import math
import os
import statistics
import time
import tracemalloc
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from .. import _native
from . import ALGORITHMS, conv_transpose

NUMPY_ALGORITHMS = ["scatter", "zero_insertion", "col2im", "phase", "auto"]

#: the competitor timed with tconv's C loops switched off, on layers where ``phase`` uses them
NUMPY_OPS_ONLY = "phase, NumPy ops"

#: untimed calls before each timed one last this long: more than OpenBLAS's default thread spin (2**28 cycles)
SETTLE_S = 0.15


@dataclass(frozen=True)
class Layer:
    """One decoder layer in PyTorch's terms (``nn.ConvTranspose*d``)."""

    name: str
    batch: int
    in_channels: int
    out_channels: int
    spatial: tuple[int, ...]
    kernel: int
    stride: int
    padding: int = 0
    output_padding: int = 0
    groups: int = 1

    @property
    def args(self) -> dict:
        return dict(stride=self.stride, padding=self.padding, output_padding=self.output_padding, groups=self.groups)

    @property
    def flops(self) -> int:
        macs = self.batch * math.prod(self.spatial) * self.in_channels * (self.out_channels // self.groups)
        return 2 * macs * self.kernel ** len(self.spatial)


# Real decoders: DCGAN's 64x64 generator (ngf=64, nz=100), U-Net decoders (2-D k2s2 and
# k3s2 'same' = padding 1, output_padding 1), the 3-D U-Net k2s2, HiFi-GAN V1's first
# upsampler (k16 s8, padding (k-s)/2) and a depthwise k4s2 upsampler.
SUITE: list[Layer] = [
    Layer("DCGAN 1: 100->512, 1x1->4x4 (k4 s1)", 16, 100, 512, (1, 1), 4, 1),
    Layer("DCGAN 2: 512->256, 4x4->8x8 (k4 s2 p1)", 16, 512, 256, (4, 4), 4, 2, 1),
    Layer("DCGAN 3: 256->128, 8->16 (k4 s2 p1)", 16, 256, 128, (8, 8), 4, 2, 1),
    Layer("DCGAN 4: 128->64, 16->32 (k4 s2 p1)", 16, 128, 64, (16, 16), 4, 2, 1),
    Layer("DCGAN 5: 64->3, 32->64 (k4 s2 p1)", 16, 64, 3, (32, 32), 4, 2, 1),
    Layer("U-Net 2-D k2s2: 128->64, 32->64", 4, 128, 64, (32, 32), 2, 2),
    Layer("U-Net 2-D k3s2 same: 128->64, 32->64", 4, 128, 64, (32, 32), 3, 2, 1, 1),
    Layer("3-D U-Net k2s2: 64->32, 16^3->32^3", 2, 64, 32, (16, 16, 16), 2, 2),
    Layer("HiFi-GAN 1-D k16s8: 512->256, 64->512", 4, 512, 256, (64,), 16, 8, 4),
    Layer("depthwise k4s2: 64 ch, 32->64 (p1)", 4, 64, 64, (32, 32), 4, 2, 1, 0, 64),
]


# The same 2-D layer at growing strides (k = 2s, padding s/2, the usual pairing): zero insertion
# multiplies s*s - 1 zeros for every useful product, phase none, so the gap should widen with s.
STRIDE_SWEEP: list[Layer] = [
    Layer(f"2-D stride sweep s={s}: 64->32, 16x16 (k{2 * s} s{s} p{s // 2})", 2, 64, 32, (16, 16), 2 * s, s, s // 2)
    for s in (2, 4, 8)
]


def sweep_summary(rows: list[Row]) -> str:
    """One line: phase over zero_insertion at each stride of the sweep."""
    return "phase speed-up over zero_insertion, 2-D stride sweep: " + ", ".join(
        f"s={r.layer.stride} {r.seconds['zero_insertion'] / r.seconds['phase']:.2f}x" for r in rows)


@dataclass
class Row:
    layer: Layer
    seconds: dict[str, float] = field(default_factory=dict)
    peak_bytes: dict[str, int] = field(default_factory=dict)


def _no_grad(torch):
    import contextlib

    return torch.no_grad() if torch is not None else contextlib.nullcontext()


def _peak(fn: Callable[[], object]) -> int:
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def run(layers: list[Layer] | None = None, repeat: int = 5, quick: bool = False, with_torch: bool = True,
        log: Callable[[str], None] = print, threads: int | None = None,
        algorithms: list[str] = NUMPY_ALGORITHMS) -> list[Row]:
    """Time the algorithms (and torch, if installed) on every layer; returns the rows."""
    layers = SUITE if layers is None else layers
    torch = None
    if with_torch:
        try:
            import torch  # noqa: F811
        except ImportError:
            log("torch is not installed: the torch columns are left out")
        else:
            torch.set_num_threads(threads or os.cpu_count() or 1)
    rows = []
    rng = np.random.default_rng(0)
    for layer in layers:
        if quick:
            layer = Layer(layer.name, max(1, layer.batch // 4), *[getattr(layer, f) for f in
                          ("in_channels", "out_channels", "spatial", "kernel", "stride", "padding", "output_padding", "groups")])
        nd = len(layer.spatial)
        # channels-last memory, viewed in PyTorch's (N, C, *spatial) indexing, as torch's channels_last is
        x_last = rng.standard_normal((layer.batch, *layer.spatial, layer.in_channels), dtype=np.float32)
        x = np.moveaxis(x_last, -1, 1)
        w = rng.standard_normal((layer.in_channels, layer.out_channels // layer.groups, *(layer.kernel,) * nd), dtype=np.float32)
        row = Row(layer)
        calls: dict[str, Callable[[], object]] = {}
        for name in algorithms:
            calls[name] = lambda name=name: conv_transpose(x, w, algorithm=name, **layer.args)
        if "phase" in algorithms and _phase_form(layer) == "compiled":
            def numpy_ops_only():
                with _native.switched_off():
                    return conv_transpose(x, w, algorithm="phase", **layer.args)
            calls[NUMPY_OPS_ONLY] = numpy_ops_only
        if torch is not None:
            fn = getattr(torch.nn.functional, f"conv_transpose{nd}d")
            tw = torch.from_numpy(w)
            tx_first = torch.from_numpy(np.ascontiguousarray(x))
            formats = {2: torch.channels_last, 3: torch.channels_last_3d}
            tx_last = tx_first.contiguous(memory_format=formats[nd]) if nd in formats else tx_first
            for label, tx in (("torch", tx_first), ("torch channels_last", tx_last)):
                calls[label] = lambda tx=tx: fn(tx, tw, **layer.args)
        with _no_grad(torch):
            for name, call in calls.items():
                if name != "scatter":  # the reference is slow by design: one timed run, no warm-up
                    call()
            # round-robin: on a busy machine every competitor sees the same background load
            times: dict[str, list[float]] = {name: [] for name in calls}
            for rep in range(repeat):
                for name, call in calls.items():
                    if name == "scatter" and rep > 0:
                        continue
                    # OpenBLAS's worker threads spin for about 0.1 s after a NumPy GEMM (2**28
                    # cycles), and torch's OpenMP threads after a torch call; on 2 cores whoever
                    # runs next fights them (torch took 2x, once 13x, as long). So each competitor
                    # first runs untimed for SETTLE_S, which outlasts the previous one's spinning
                    # threads and keeps the core busy (an idle pause instead made sub-ms calls
                    # slower), and then the next call is timed.
                    if name != "scatter":
                        settle = time.perf_counter() + SETTLE_S
                        call()
                        while time.perf_counter() < settle:
                            call()
                    start = time.perf_counter()
                    call()
                    times[name].append(time.perf_counter() - start)
            for name in calls:
                row.seconds[name] = statistics.median(times[name])
                if name in NUMPY_ALGORITHMS or name == NUMPY_OPS_ONLY:
                    row.peak_bytes[name] = _peak(calls[name])
        rows.append(row)
        log(f"  {layer.name}: " + ", ".join(f"{k} {v * 1e3:.2f} ms" for k, v in row.seconds.items()))
    return rows


def columns(rows: list[Row]) -> list[str]:
    names = []
    for row in rows:
        names += [k for k in row.seconds if k not in names]
    return names


def summary(rows: list[Row]) -> dict:
    """The two speed targets, computed from the rows."""
    def geomean(values):
        values = list(values)
        return math.exp(sum(math.log(v) for v in values) / len(values)) if values else float("nan")

    result = {}
    for stride in sorted({r.layer.stride for r in rows if r.layer.stride > 1}):
        picked = [r.seconds["zero_insertion"] / r.seconds["phase"] for r in rows if r.layer.stride == stride]
        result[f"phase speed-up over zero_insertion, stride {stride} (geometric mean)"] = geomean(picked)
    if all("torch channels_last" in r.seconds for r in rows):
        ratios = [r.seconds["auto"] / r.seconds["torch channels_last"] for r in rows]
        result["auto / torch channels_last, worst layer"] = max(ratios)
        result["auto / torch channels_last, geometric mean"] = geomean(ratios)
        result["layers where auto is within 2x of torch channels_last"] = f"{sum(r <= 2 for r in ratios)} of {len(ratios)}"
        for r in rows:
            if NUMPY_OPS_ONLY in r.seconds:
                result[f"{r.layer.name} without the C loop ({NUMPY_OPS_ONLY}) / torch channels_last"] = (
                    r.seconds[NUMPY_OPS_ONLY] / r.seconds["torch channels_last"])
    return result


def markdown(rows: list[Row]) -> str:
    names = columns(rows)
    head = "| layer | " + " | ".join(names) + " | auto picks | auto / torch (channels_last) |"
    lines = [head, "|" + "---|" * (len(names) + 3)]
    for row in rows:
        cells = []
        for name in names:
            t = row.seconds.get(name)
            if t is None:
                cells.append("-")
                continue
            gflops = row.layer.flops / t / 1e9
            peak = row.peak_bytes.get(name)
            memory = f", {peak / 2**20:.1f} MiB" if peak is not None else ""
            cells.append(f"{t * 1e3:.2f} ms ({gflops:.1f} GF/s{memory})")
        ratio = row.seconds["auto"] / row.seconds["torch channels_last"] if "torch channels_last" in row.seconds else float("nan")
        lines.append(f"| {row.layer.name} | " + " | ".join(cells) + f" | {_auto_choice(row.layer)} | {ratio:.2f} |")
    return "\n".join(lines)


def _problem(layer: Layer):
    from ..api import geometry
    from . import _core

    g = geometry(layer.spatial, layer.kernel, "pytorch", **layer.args)
    x = np.empty((layer.batch, *layer.spatial, layer.groups, layer.in_channels // layer.groups), np.float32)
    w = np.empty((layer.groups, layer.in_channels // layer.groups, layer.out_channels // layer.groups,
                  *(layer.kernel,) * len(layer.spatial)), np.float32)
    return _core.Problem(x, w, g.axes, tuple(ax.kept for ax in g.axes))


def _phase_form(layer: Layer) -> str:
    from . import phase

    return phase.form(_problem(layer))


def _auto_choice(layer: Layer) -> str:
    """What auto runs, with phase's form: ``phase (shifted)``, ``col2im``, ..."""
    from . import auto

    name = auto.choose(_problem(layer))
    return f"{name} ({_phase_form(layer)})" if name == "phase" else name


def plot(rows: list[Row], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = columns(rows)
    fig, ax = plt.subplots(figsize=(12, 5.5))
    width = 0.8 / len(names)
    for n, name in enumerate(names):
        values = [r.seconds.get(name, float("nan")) * 1e3 for r in rows]
        ax.bar([i + n * width for i in range(len(rows))], values, width, label=name)
    ax.set_yscale("log")
    ax.set_ylabel("median time per call (ms, log scale)")
    ax.set_xticks([i + 0.4 - width / 2 for i in range(len(rows))])
    ax.set_xticklabels([r.layer.name.split(":")[0] for r in rows], rotation=30, ha="right")
    ax.set_title("Transposed convolution: tconv's NumPy algorithms and torch's native kernel (float32)")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))  # beside the bars, never over them
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(repeat: int = 5, quick: bool = False, out: str | os.PathLike | None = None, with_plot: bool = True,
         log: Callable[[str], None] = print, threads: int | None = None, only: list[str] | None = None,
         allocator: str = "tuned") -> int:
    """Run the suite, print the table and the targets, save markdown, JSON and the plot.

    ``allocator="tuned"`` (the default) first calls :func:`tconv.tune_allocator`:
    with glibc's defaults, whether a large buffer is faulted in again on every
    call depends on what the process freed before, and torch's times in one
    row moved by up to 4x between runs (docs/performance.md).
    """
    from .._machine import cpu_summary
    from ..allocator import tune_allocator

    tuned = allocator == "tuned" and tune_allocator()
    blas_threads = os.environ.get("OPENBLAS_NUM_THREADS", "all")
    log(f"tconv algorithm benchmark ({'quick, batch/4' if quick else 'full'}, median of {repeat}; "
        f"{os.cpu_count()} cores, threads: numpy BLAS {blas_threads}, torch {threads or os.cpu_count()}; "
        f"allocator {'tuned' if tuned else 'as started'}; numpy {np.__version__}, {cpu_summary()}; "
        f"C loops: {_native.native_status()})")
    layers = [layer for layer in SUITE if not only or any(o.lower() in layer.name.lower() for o in only)]
    if not layers:
        log(f"no layer matches {only}; the layers are: " + "; ".join(layer.name for layer in SUITE))
        return 2
    rows = run(layers, repeat=repeat, quick=quick, log=log, threads=threads)
    table = markdown(rows)
    targets = summary(rows)
    sweep_line = None
    if not only:
        log("stride sweep (zero_insertion and phase only):")
        sweep_line = sweep_summary(run(STRIDE_SWEEP, repeat=repeat, quick=quick, with_torch=False, log=log,
                                       threads=threads, algorithms=["zero_insertion", "phase"]))
    log("")
    log(table)
    log("")
    for key, value in targets.items():
        log(f"{key}: {value:.2f}" if isinstance(value, float) else f"{key}: {value}")
    if sweep_line:
        log(sweep_line)
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "algorithms.md").write_text(table + "\n\n" + "\n".join(
            f"- {k}: {v:.2f}" if isinstance(v, float) else f"- {k}: {v}" for k, v in targets.items())
            + (f"\n- {sweep_line}" if sweep_line else "") + "\n")
        (out / "algorithms.json").write_text(json.dumps(
            [{"layer": r.layer.name, "flops": r.layer.flops, "seconds": r.seconds, "peak_bytes": r.peak_bytes} for r in rows],
            indent=1))
        if with_plot:
            try:
                plot(rows, out / "algorithms.png")
            except ImportError:
                log("matplotlib is not installed: no plot")
        log(f"saved {out / 'algorithms.md'}, {out / 'algorithms.json'}" + (f", {out / 'algorithms.png'}" if with_plot else ""))
    return 0


def parser():
    import argparse

    p = argparse.ArgumentParser(prog="bench_algorithms", description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="batch/4 and 2 repeats: a fast smoke run")
    p.add_argument("--repeat", type=int, default=None, help="timed runs per algorithm and layer (median; default 5)")
    p.add_argument("--threads", type=int, default=None,
                   help="threads for NumPy's BLAS and torch (default: all cores); set before NumPy loads")
    p.add_argument("--out", default=None, help="folder for algorithms.md/.json/.png (default: print only)")
    p.add_argument("--only", action="append", default=None, metavar="TEXT",
                   help="run only the layers whose name contains TEXT (repeatable), e.g. --only DCGAN")
    p.add_argument("--allocator", choices=["tuned", "default"], default="tuned",
                   help="tuned (default): tconv.tune_allocator() first, so no side pays page faults that depend "
                   "on what ran before; default: glibc's allocator as the process starts")
    return p


def cli(argv: list[str] | None = None) -> int:
    """Command-line entry (``python -m tconv.kernels.benchmark``); ``--threads`` must be in the environment already."""
    ns = parser().parse_args(argv)
    repeat = ns.repeat if ns.repeat is not None else (2 if ns.quick else 5)
    if repeat < 1:
        raise SystemExit(f"--repeat {repeat} must be at least 1")
    return main(repeat=repeat, quick=ns.quick, out=ns.out, threads=ns.threads, only=ns.only, allocator=ns.allocator)


def thread_environment(threads: int | None) -> dict:
    """The environment that pins BLAS/OpenMP threads (must be set before NumPy is imported)."""
    env = dict(os.environ)
    if threads:
        for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            env[name] = str(threads)
    return env


__all__ = ["Layer", "SUITE", "STRIDE_SWEEP", "run", "sweep_summary", "summary", "markdown", "plot", "main", "cli", "ALGORITHMS"]

if __name__ == "__main__":
    import sys

    sys.exit(cli(sys.argv[1:]))
