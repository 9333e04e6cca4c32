"""Fresh processes: torch's transposed convolution and tconv's, with glibc's default allocator and tuned.

Why this script exists: torch's NCHW ``conv_transpose`` runs 2-2.5x slower in
a process where nothing large has been freed yet. glibc hands every buffer
above its mmap threshold (128 KiB at start) back to the kernel on ``free``, so
each call page-faults its output and scratch buffers in again; glibc raises the
threshold only after a larger buffer is freed. ``bench_torch.py`` measures the
GEMM peak first (large matrices, freed), which raises it, so that script
compares both sides with a warm allocator, the state a model reaches after its
first forward pass.

Here each contender runs alone in its own new process, as a one-layer script
or micro-benchmark would, once with glibc's defaults and once after
``tconv.tune_allocator()`` (the same as ``MALLOC_MMAP_THRESHOLD_`` and
``MALLOC_TRIM_THRESHOLD_`` in the environment). Forward passes under
``torch.no_grad()``; each process reports the median of 11 samples, each
sample at least 10 ms of back-to-back calls; with ``--rounds R`` every
process runs R times (interleaved) and the median of those is reported.

Usage: python benchmarks/bench_allocator.py [--rounds R] [--only NAME]
Writes benchmarks/results/allocator.md.
"""
from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
CONTENDERS = ("native", "tconv")
MODES = ("default", "tuned")


def child(index: int, contender: str, mode: str) -> None:
    """Time one contender on one layer in this (fresh) process and print a JSON line."""
    sys.path.insert(0, str(HERE.parent / "src"))
    import tconv

    if mode == "tuned":
        tconv.tune_allocator()
    import torch

    import bench_torch as bt

    layer = bt.LAYERS[index]
    ref, ours, x = bt.build(layer)
    module = ref if contender == "native" else ours
    times = bt.compare({contender: bt.forward_fn(module, x)}, 11)
    print(json.dumps({"ms": times[contender] * 1e3, "strategy": bt.chosen(ours) if contender == "tconv" else "native",
                      "threads": torch.get_num_threads()}))


def measure(index: int, contender: str, mode: str) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", str(index), contender, mode],
                         capture_output=True, text=True, check=True, cwd=HERE)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     epilog="example: python benchmarks/bench_allocator.py --only decoder --rounds 3")
    parser.add_argument("--rounds", type=int, default=1, help="processes per contender and mode (median)")
    parser.add_argument("--only", default=None, help="run layers whose name contains this text")
    parser.add_argument("--out", default=str(HERE / "results" / "allocator.md"))
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    ns = parser.parse_args(argv)
    if ns.child:
        child(int(ns.child[0]), ns.child[1], ns.child[2])
        return 0
    sys.path.insert(0, str(HERE))
    from bench_torch import LAYERS, report

    picked = [(i, layer) for i, layer in enumerate(LAYERS) if ns.only is None or ns.only.lower() in layer[0].lower()]
    if not picked:
        print(f"bench_allocator: no layer name contains {ns.only!r}", file=sys.stderr)
        return 2
    rows = []
    for n, (index, layer) in enumerate(picked, 1):
        runs = {(c, m): [] for c in CONTENDERS for m in MODES}
        for _ in range(ns.rounds):
            for key in runs:
                runs[key].append(measure(index, *key))
        ms = {key: statistics.median(r["ms"] for r in v) for key, v in runs.items()}
        strategy = {m: "/".join(sorted({r["strategy"] for r in runs[("tconv", m)]})) for m in MODES}
        rows.append((layer[0], ms, strategy))
        print(f"[{n}/{len(picked)}] {layer[0]}: native {ms['native', 'default']:.2f} -> {ms['native', 'tuned']:.2f} ms, "
              f"tconv {ms['tconv', 'default']:.2f} ({strategy['default']}) -> {ms['tconv', 'tuned']:.2f} ms "
              f"({strategy['tuned']})", flush=True)

    def geomean(values):
        values = list(values)
        return math.exp(statistics.mean(math.log(v) for v in values))

    lines = [
        "Each number: one contender alone in a new process (forward, no_grad, median of 11 samples"
        f"{'' if ns.rounds == 1 else f', median over {ns.rounds} processes'}). "
        "'default': glibc's allocator as a process starts; 'tuned': after `tconv.tune_allocator()`.",
        "",
        "| layer | native default ms | native tuned ms | tuning gain (native) | tconv default ms | tconv tuned ms | "
        "tconv vs native, default | tconv vs native, tuned | strategy (default / tuned) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for name, ms, strategy in rows:
        lines.append(
            f"| {name} | {ms['native', 'default']:.2f} | {ms['native', 'tuned']:.2f} | "
            f"{ms['native', 'default'] / ms['native', 'tuned']:.2f}x | {ms['tconv', 'default']:.2f} | "
            f"{ms['tconv', 'tuned']:.2f} | {ms['native', 'default'] / ms['tconv', 'default']:.2f}x | "
            f"{ms['native', 'tuned'] / ms['tconv', 'tuned']:.2f}x | {strategy['default']} / {strategy['tuned']} |")
    lines += [
        "",
        "Geometric means: tuning gain for native "
        f"**{geomean(ms['native', 'default'] / ms['native', 'tuned'] for _, ms, _ in rows):.2f}x**; "
        f"tconv vs native with glibc's defaults **{geomean(ms['native', 'default'] / ms['tconv', 'default'] for _, ms, _ in rows):.2f}x**, "
        f"tuned **{geomean(ms['native', 'tuned'] / ms['tconv', 'tuned'] for _, ms, _ in rows):.2f}x**; "
        f"native with glibc's defaults against tconv tuned "
        f"**{geomean(ms['native', 'default'] / ms['tconv', 'tuned'] for _, ms, _ in rows):.2f}x**.",
    ]
    report(lines, ns.out, whole_suite=ns.only is None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
