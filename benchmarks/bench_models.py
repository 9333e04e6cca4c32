"""Whole models: torch's own modules against the same models after ``tconv.torch.swap``.

Four models, built here: a DCGAN generator, a U-Net decoder (three transposed
layers, the "3-layer decoder" of the first-call target), a HiFi-GAN-like 1-D
generator and a 3-D U-Net decoder. For each:

* **first call**, each in a new Python process (and for ``decoder3``, three
  transposed layers and nothing else, the first call only), timed from the model's first
  forward (and then its first forward+backward, a new signature for the
  picker): torch's modules; after swap with an empty choice cache (the picker
  measures, within its budget); after swap with the cache that run left (a new
  process reusing the choices);
* **steady state** in this process, the calls taking turns: forward in
  inference (``torch.no_grad``, eval mode) and a training step's
  forward+backward.

The machine's CPU, its vector features and the thread count are printed and
saved with the results.

    python benchmarks/bench_models.py          (writes benchmarks/results/models.md)
"""
from __future__ import annotations

import copy
import json
import math
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
FEATURES = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx512_bf16",
            "amx_tile", "amx_bf16")


def build(name: str):
    """``(model, input)`` for one of MODELS, seeded."""
    import torch
    from torch import nn

    torch.manual_seed(0)
    if name == "dcgan":
        def up(cin, cout):
            return [nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]
        model = nn.Sequential(nn.ConvTranspose2d(64, 256, 4, 1, 0, bias=False), nn.BatchNorm2d(256), nn.ReLU(),
                              *up(256, 128), *up(128, 64), *up(64, 32),
                              nn.ConvTranspose2d(32, 3, 4, 2, 1), nn.Tanh())
        x = torch.randn(8, 64, 1, 1)
    elif name == "unet":
        def stage(cin, cout):
            return [nn.ConvTranspose2d(cin, cout, 2, 2), nn.Conv2d(cout, cout, 3, padding=1), nn.ReLU()]
        model = nn.Sequential(*stage(256, 128), *stage(128, 64), *stage(64, 32), nn.Conv2d(32, 2, 1))
        x = torch.randn(4, 256, 8, 8)
    elif name == "hifigan":
        act = nn.LeakyReLU(0.1)
        model = nn.Sequential(
            nn.Conv1d(128, 128, 7, padding=3), act,
            nn.ConvTranspose1d(128, 64, 16, 8, 4), act, nn.Conv1d(64, 64, 3, padding=1), act,
            nn.ConvTranspose1d(64, 32, 16, 8, 4), act, nn.Conv1d(32, 32, 3, padding=1), act,
            nn.ConvTranspose1d(32, 16, 4, 2, 1), act,
            nn.ConvTranspose1d(16, 8, 4, 2, 1), act, nn.Conv1d(8, 1, 7, padding=3), nn.Tanh())
        x = torch.randn(2, 128, 64)
    elif name == "unet3d":
        def stage(cin, cout):
            return [nn.ConvTranspose3d(cin, cout, 2, 2), nn.Conv3d(cout, cout, 3, padding=1), nn.ReLU()]
        model = nn.Sequential(*stage(64, 32), *stage(32, 16), nn.Conv3d(16, 2, 1))
        x = torch.randn(2, 64, 6, 6, 6)
    elif name == "decoder3":  # the first-call target's 3-layer decoder: transposed layers only
        model = nn.Sequential(nn.ConvTranspose2d(256, 128, 4, 2, 1), nn.ReLU(), nn.ConvTranspose2d(128, 64, 4, 2, 1),
                              nn.ReLU(), nn.ConvTranspose2d(64, 3, 4, 2, 1))
        x = torch.randn(4, 256, 8, 8)
    else:
        raise SystemExit(f"unknown model {name!r}; one of {', '.join(MODELS)}")
    return model, x


MODELS = ("dcgan", "unet", "hifigan", "unet3d")
#: timed on its first call only (the first-call target), not in the steady-state means
FIRST_ONLY = ("decoder3",)


def _first_call(name: str, swapped: bool) -> dict:
    """In a new process: the model's first forward, then its first forward+backward (ms)."""
    import time

    import torch
    started = time.perf_counter()
    import tconv.torch as tt
    import_s = time.perf_counter() - started
    model, x = build(name)
    if swapped:
        tt.swap(model)
    model.eval()
    start = time.perf_counter()
    with torch.no_grad():
        model(x)
    forward = time.perf_counter() - start
    model.train()
    start = time.perf_counter()
    model(x).sum().backward()
    backward = time.perf_counter() - start
    return {"forward_ms": forward * 1e3, "train_ms": backward * 1e3, "import_ms": import_s * 1e3}


def first_calls(name: str, threads: int) -> dict:
    import shutil

    from tconv import _native

    folder = tempfile.mkdtemp(prefix="tconv-bench-models-")
    os.chmod(folder, 0o700)
    # The C loops already built for this machine come along (building them is a once-per-machine cost,
    # not the picker's); the choices do not.
    built = _native._cache_dir()
    for path in built.glob("*") if built.is_dir() else ():
        if path.is_file() and not path.name.startswith(("torch-choices-", ".torch-choices-")):
            shutil.copy2(path, folder)
    results = {}
    for label, swapped in (("torch", False), ("tconv, empty cache", True), ("tconv, warm cache", True)):
        code = (f"import sys, json, torch; sys.path.insert(0, {str(HERE)!r}); torch.set_num_threads({threads}); "
                f"import bench_models as b; print(json.dumps(b._first_call({name!r}, {swapped})))")
        env = dict(os.environ, TCONV_CACHE_DIR=folder)
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
        results[label] = json.loads(out.stdout.strip().splitlines()[-1])
    results["cache_dir"] = folder
    return results


def steady(name: str, repeats: int, cache_dir: str) -> dict:
    import torch

    sys.path.insert(0, str(HERE))
    from harness import interleaved

    import tconv.torch as tt

    saved = os.environ.get("TCONV_CACHE_DIR")
    # the choices the first-call runs made (same machine, same torch); restored after, since the next
    # model's first calls copy the built C loops from the usual cache folder
    os.environ["TCONV_CACHE_DIR"] = cache_dir
    try:
        return _steady(name, repeats, tt, interleaved, torch)
    finally:
        if saved is None:
            os.environ.pop("TCONV_CACHE_DIR", None)
        else:
            os.environ["TCONV_CACHE_DIR"] = saved


def _steady(name, repeats, tt, interleaved, torch) -> dict:
    reference, x = build(name)
    swapped = tt.swap(copy.deepcopy(reference))
    out = {}
    for m in (reference, swapped):
        m.eval()
    with torch.no_grad():
        torch.testing.assert_close(swapped(x), reference(x), rtol=1e-3, atol=1e-3)
        times = interleaved({"torch": lambda: reference(x), "tconv": lambda: swapped(x)}, repeats)
    out["forward"] = times
    for m in (reference, swapped):
        m.train()

    def step(model):
        def call():
            model.zero_grad(set_to_none=True)
            model(x).sum().backward()
        return call

    out["train"] = interleaved({"torch": step(reference), "tconv": step(swapped)}, repeats, grad=True)
    return out


def machine(threads: int) -> list[str]:
    import platform

    import torch
    model, flags = platform.processor() or platform.machine(), set()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
            elif line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    have = [f for f in FEATURES if f in flags]
    return [f"- CPU: {model}; {os.cpu_count()} cores; {threads} threads; torch {torch.__version__}; "
            f"load average at the start {os.getloadavg()[0]:.2f} (other processes share these cores)",
            f"- features: {', '.join(have) or 'unknown'} (AVX-512: {'yes' if 'avx512f' in flags else 'no'})"]


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="example: python benchmarks/bench_models.py --repeats 20 "
                                            "(writes benchmarks/results/models.md)")
    parser.add_argument("--repeats", type=int, default=15, help="steady-state rounds per model (default 15)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own)")
    parser.add_argument("--only", nargs="*", choices=MODELS + FIRST_ONLY, help="only these models")
    parser.add_argument("--out", default=str(HERE / "results" / "models.md"))
    options = parser.parse_args()
    import torch
    if options.threads:
        torch.set_num_threads(options.threads)
    threads = torch.get_num_threads()
    lines = ["# Whole models: torch's modules against the same models after tconv.torch.swap", "",
             "`python benchmarks/bench_models.py`", ""] + machine(threads) + [""]
    print("\n".join(lines), flush=True)
    rows, first_rows = [], []
    ratios: dict[str, list[float]] = {"forward": [], "train": []}
    for name in options.only or MODELS + FIRST_ONLY:
        first = first_calls(name, threads)
        first_rows.append(f"| {name} | " + " | ".join(
            f"{first[label]['forward_ms']:.0f} / {first[label]['train_ms']:.0f}"
            for label in ("torch", "tconv, empty cache", "tconv, warm cache")) + " |")
        print(first_rows[-1], flush=True)
        if name in FIRST_ONLY:
            import shutil
            shutil.rmtree(first.pop("cache_dir"), ignore_errors=True)
            continue
        folder = first.pop("cache_dir")
        try:
            times = steady(name, options.repeats, folder)
        finally:
            import shutil
            shutil.rmtree(folder, ignore_errors=True)
        for kind in ("forward", "train"):
            ratios[kind].append(times[kind]["torch"] / times[kind]["tconv"])
        rows.append(f"| {name} | {times['forward']['torch'] * 1e3:.2f} | {times['forward']['tconv'] * 1e3:.2f} | "
                    f"**{ratios['forward'][-1]:.2f}x** | {times['train']['torch'] * 1e3:.2f} | "
                    f"{times['train']['tconv'] * 1e3:.2f} | **{ratios['train'][-1]:.2f}x** |")
        print(rows[-1], flush=True)

    def gmean(values):
        return math.exp(sum(map(math.log, values)) / len(values))

    if not rows:
        rows.append("| (none) | | | | | | |")
        ratios = {"forward": [1.0], "train": [1.0]}
    lines += ["## Steady state (median ms per call; speed-up = torch's time over tconv's)", "",
              "| model | torch fwd | tconv fwd | fwd speed-up | torch fwd+bwd | tconv fwd+bwd | fwd+bwd speed-up |",
              "|---|---:|---:|---:|---:|---:|---:|", *rows, "",
              f"- forward: geometric mean **{gmean(ratios['forward']):.2f}x**, slowest {min(ratios['forward']):.2f}x",
              f"- forward+backward (training step): geometric mean **{gmean(ratios['train']):.2f}x**, slowest "
              f"{min(ratios['train']):.2f}x", "",
              "## First call, in a new process (ms: first forward / then first forward+backward)", "",
              "| model | torch | tconv, empty choice cache | tconv, warm choice cache |", "|---|---:|---:|---:|",
              *first_rows, ""]
    lines.append(f"- load average at the end: {os.getloadavg()[0]:.2f}")
    Path(options.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines[-(len(first_rows) + len(rows) + 12):]))


if __name__ == "__main__":
    main()
