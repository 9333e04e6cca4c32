"""What tconv's Python costs per call, with torch's own kernel on both sides.

Every competitor here runs the same oneDNN kernel (``strategy="native"``), so the
differences are the Python around it:

* ``F``: ``torch.nn.functional.conv_transpose*d``;
* ``tconv fn``: ``tconv.torch.conv_transpose*d``, a repeat call (it reuses the bound
  call its first call made: no checks, geometry or choice again);
* ``tconv fn, no reuse``: the same function with its reuse table emptied before every
  call, so each call checks, plans and chooses again (what every call cost before
  the table existed);
* ``nn module`` and ``tconv module``: ``nn.ConvTranspose*d`` and
  ``tconv.torch.ConvTranspose*d`` (modules keep their own bound call).

Layers: the torch suite's batch-1 small layer (about 30 us, where Python is a large
share) and HiFi-GAN V1's third up-sampler for one frame batch (k4 s2, about 1 ms,
where Python runs with caches cooled by the kernel). Medians of interleaved,
shuffled calls, in microseconds; ratios are torch's time over tconv's (above 1:
tconv is faster). Last, the set-up a call without reuse runs (checks, geometry
lookup, choice: ``tconv.torch.functional._prepare_eager``) timed alone in a tight
loop on the small layer, where its Python stays warm in the caches. Writes
``benchmarks/results/call_overhead.md``.

Run: python benchmarks/bench_call_overhead.py [--repeats N] (also part of make bench)
"""
from __future__ import annotations

import argparse
import sys
import timeit
from pathlib import Path

import torch
import torch.nn.functional as F

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))
sys.path.insert(0, str(HERE))
from tconv._machine import cpu_summary  # noqa: E402
import tconv.torch as tt  # noqa: E402
from harness import interleaved  # noqa: E402
from tconv.allocator import tune_allocator  # noqa: E402
from tconv.torch import functional  # noqa: E402

# name, input shape, out channels, kernel, stride, padding, output_padding
LAYERS = [
    ("batch-1 small 32->16, 8x8 (k3 s2 p1 op1)", (1, 32, 8, 8), 16, 3, 2, 1, 1),
    ("HiFi-GAN up 128->64, L=2048 (k4 s2 p1)", (1, 128, 2048), 64, 4, 2, 1, 0),
]


def measure(layer, repeats: int) -> dict[str, float]:
    name, shape, out_channels, k, s, p, op = layer
    ndim = len(shape) - 2
    torch.manual_seed(0)
    x = torch.randn(shape)
    torch_module = {1: torch.nn.ConvTranspose1d, 2: torch.nn.ConvTranspose2d}[ndim](shape[1], out_channels, k, s, p, op)
    ours = {1: tt.ConvTranspose1d, 2: tt.ConvTranspose2d}[ndim](shape[1], out_channels, k, s, p, op, strategy="native")
    ours.load_state_dict(torch_module.state_dict())
    w, b = torch_module.weight.detach(), torch_module.bias.detach()
    f_torch = {1: F.conv_transpose1d, 2: F.conv_transpose2d}[ndim]
    f_ours = {1: tt.conv_transpose1d, 2: tt.conv_transpose2d}[ndim]

    def no_reuse():
        functional._bound.clear()
        return f_ours(x, w, b, s, p, op, strategy="native")

    with torch.no_grad():
        reference = f_torch(x, w, b, s, p, op)
        for fn in (lambda: f_ours(x, w, b, s, p, op, strategy="native"), no_reuse, lambda: ours(x)):
            torch.testing.assert_close(fn(), reference, rtol=1e-4, atol=1e-4)
    fns = {
        "F": lambda: f_torch(x, w, b, s, p, op),
        "tconv fn": lambda: f_ours(x, w, b, s, p, op, strategy="native"),
        "tconv fn, no reuse": no_reuse,
        "nn module": lambda: torch_module(x),
        "tconv module": lambda: ours(x),
    }
    return {label: seconds * 1e6 for label, seconds in interleaved(fns, repeats).items()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     epilog="example: python benchmarks/bench_call_overhead.py --repeats 201")
    parser.add_argument("--repeats", type=int, default=None,
                        help="calls per competitor (default: 3001 on the small layer, 401 on the 1 ms one)")
    args = parser.parse_args(argv)
    if args.repeats is not None and args.repeats < 1:
        parser.error(f"--repeats {args.repeats} must be at least 1")
    tune_allocator()
    torch.set_num_threads(2)
    lines = [
        f"Machine: {cpu_summary()}, torch {torch.__version__}, {torch.get_num_threads()} threads. "
        "Every competitor runs torch's own kernel; medians of interleaved calls, microseconds.",
        "",
        "| layer | F | tconv fn | tconv fn, no reuse | nn module | tconv module | F / tconv fn | F / tconv fn, no reuse "
        "| nn module / tconv module |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for layer in LAYERS:
        repeats = args.repeats or (3001 if layer[1][0] == 1 and len(layer[1]) == 4 else 401)
        us = measure(layer, repeats)
        row = (f"| {layer[0]} | {us['F']:.1f} | {us['tconv fn']:.1f} | {us['tconv fn, no reuse']:.1f} | "
               f"{us['nn module']:.1f} | {us['tconv module']:.1f} | {us['F'] / us['tconv fn']:.2f}x | "
               f"{us['F'] / us['tconv fn, no reuse']:.2f}x | {us['nn module'] / us['tconv module']:.2f}x |")
        print(row, flush=True)
        lines.append(row)
    name, shape, out_channels, k, s, p, op = LAYERS[0]
    x, w, b = torch.randn(shape), torch.randn(shape[1], out_channels, k, k), torch.randn(out_channels)
    setup = (2, x, w, b, s, p, op, 1, 1, "native", None, False)
    with torch.no_grad():
        alone = min(timeit.repeat(lambda: functional._prepare_eager(*setup), number=2000, repeat=5)) / 2000 * 1e6
    line = f"The set-up alone, warm (best of 5 loops of 2000 calls, {name}): {alone:.1f} us per call."
    print(line)
    lines += ["", line]
    out = HERE / "results" / "call_overhead.md"
    out.write_text("\n".join(lines) + "\n")
    print(f"saved {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
