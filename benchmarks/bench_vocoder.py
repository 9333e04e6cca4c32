"""Vocoder up-sampling layers (HiFi-GAN, MelGAN): torch's 1-D transposed convolution against tconv's 1-D strategies.

Every 1-D strategy tconv has, forced, and tconv's picker (``auto``, and the ``deterministic``
rule), against ``nn.ConvTranspose1d`` on the same tensors (modules, as vocoders call them), forward under ``torch.no_grad()``,
float32. The calls take turns and each figure is a median; the ratios are torch's time over
tconv's (above 1: tconv is faster). The layers are the up-sampling stacks of HiFi-GAN V1/V3 (and
MelGAN, whose stack has V1's shapes) for 64 mel frames, the lengths growing by the stride, and
V1's two k4 s2 layers for 32 frames.

    python benchmarks/bench_vocoder.py          (also run by `make bench`; writes results/vocoder.md)
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from tconv._machine import cpu_summary  # noqa: E402
import tconv  # noqa: E402
import tconv.torch as tt  # noqa: E402
from tconv.torch import picker  # noqa: E402
from tconv.torch.strategies import Plan, eligible  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import deconvolutions, interleaved  # noqa: E402

# name, batch, in, out, kernel, stride, padding, length
LAYERS = [
    ("HiFi-GAN V1 up 1: 512->256, L=64 (k16 s8 p4)", 1, 512, 256, 16, 8, 4, 64),
    ("HiFi-GAN V1 up 1, batch 4", 4, 512, 256, 16, 8, 4, 64),
    ("HiFi-GAN V1 up 2: 256->128, L=512 (k16 s8 p4)", 1, 256, 128, 16, 8, 4, 512),
    ("HiFi-GAN V1 up 3: 128->64, L=4096 (k4 s2 p1)", 1, 128, 64, 4, 2, 1, 4096),
    ("HiFi-GAN V1 up 4: 64->32, L=8192 (k4 s2 p1)", 1, 64, 32, 4, 2, 1, 8192),
    ("HiFi-GAN V1 up 3, 32 frames: L=2048", 1, 128, 64, 4, 2, 1, 2048),
    ("HiFi-GAN V1 up 4, 32 frames: L=4096", 1, 64, 32, 4, 2, 1, 4096),
    ("HiFi-GAN V3 up 1: 256->128, L=64 (k16 s8 p4)", 1, 256, 128, 16, 8, 4, 64),
    ("HiFi-GAN V3 up 2: 128->64, L=512 (k16 s8 p4)", 1, 128, 64, 16, 8, 4, 512),
    ("HiFi-GAN V3 up 3: 64->32, L=4096 (k8 s4 p2)", 1, 64, 32, 8, 4, 2, 4096),
]

#: the strategies compared, where eligible (the 2-D-only and depthwise ones never apply here); the
#: gemm_gather pair needs tconv's C loops (tconv.torch.native_status()), else they compute col2im
STRATEGIES = ["gemm_gather", "gemm_gather_t", "overlap_add", "phase_rows", "kn2row", "shifted", "col2im", "phase",
              "channels_last"]


def torch_kernels() -> dict[str, str]:
    """Layer name -> the oneDNN deconvolution that torch ran, or torch's fallback (``slow_conv_transpose2d``)."""
    found = deconvolutions(
        "import torch, bench_vocoder as bv\n"
        "for name, n, cin, cout, k, s, p, length in bv.LAYERS:\n"
        "    print('LAYER', name, flush=True)\n"
        "    with torch.no_grad(): torch.nn.ConvTranspose1d(cin, cout, k, s, p)(torch.randn(n, cin, length))\n"
    )
    return {name: "slow_conv_transpose2d (no oneDNN)" if impl is None else "oneDNN " + impl for name, impl in found.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=61)
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "vocoder.md"))
    args = parser.parse_args()
    tconv.tune_allocator()
    kernels = torch_kernels()
    lines = [
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, {cpu_summary()}; forward, float32, "
        f"medians of {args.repeats} interleaved calls. Ratios are torch's time over tconv's (above 1: tconv "
        "faster); '-': the strategy does not apply. 'auto' is tconv's measuring picker (its one-off "
        "measurement done before timing), 'rule' its deterministic rule. torch's kernel: the oneDNN "
        "deconvolution that ran (`ONEDNN_VERBOSE=1`), or torch's fallback when none did. tconv's C loops: "
        f"{tt.native_status()}.",
        "",
        "| layer | torch's kernel | torch ms | " + " | ".join(STRATEGIES) + " | auto | auto's choice | rule | rule's choice |",
        "|---|---|---:|" + "---:|" * len(STRATEGIES) + "---:|---|---:|---|",
    ]
    for line in lines:
        print(line, flush=True)
    gemms = []
    for name, n, cin, cout, k, s, p, length in LAYERS:
        torch.manual_seed(0)
        x = torch.randn(n, cin, length)
        reference = nn.ConvTranspose1d(cin, cout, k, s, p)
        plan = Plan(tt.layer_geometry((length,), (k,), (s,), (p,)), cin, cout)
        # modules, as a vocoder runs them: a tconv module reuses its plan and choice on repeat calls
        layers = {"torch": reference}
        for strategy in STRATEGIES + ["auto", "deterministic"]:
            if strategy in ("auto", "deterministic") or strategy in eligible(plan):
                layers[strategy] = tt.ConvTranspose1d(cin, cout, k, s, p, strategy=strategy)
                layers[strategy].load_state_dict(reference.state_dict())
        with torch.no_grad():
            fns = {key: (lambda layer=layer: layer(x)) for key, layer in layers.items()}
            # the layer's GEMM both ways round, the weight (C_in, C_out * k) as stored: overlap_add's
            # X^T W (positions as rows), and W^T X, the orientation of col2im (torch's fallback included)
            rows, weight = x.transpose(1, 2).reshape(n * length, cin), reference.weight.reshape(cin, -1)
            columns = x.transpose(0, 1).reshape(cin, n * length)
            fns["X^T W"] = lambda: rows @ weight
            fns["W^T X"] = lambda: weight.t() @ columns
            for fn in fns.values():
                fn()  # the picker measures (auto) here, once
            choice = {mode: picker.choose(x, reference.weight, reference.bias, plan, mode)
                      for mode in ("auto", "deterministic")}
            t = interleaved(fns, args.repeats)
        t["rule"] = t.pop("deterministic")
        ratio = {key: f"{t['torch'] / t[key]:.2f}x" if key in t else "-" for key in STRATEGIES + ["auto", "rule"]}
        row = (f"| {name} | {kernels.get(name, '?')} | {t['torch'] * 1e3:.2f} | " + " | ".join(ratio[key] for key in STRATEGIES)
               + f" | {ratio['auto']} | {choice['auto']} | {ratio['rule']} | {choice['deterministic']} |")
        print(row, flush=True)
        lines.append(row)
        gemms.append(f"| {name} | {t['torch'] * 1e3:.2f} | {t['X^T W'] * 1e3:.2f} | {t['W^T X'] * 1e3:.2f} |")
    lines += ["", "The layer's GEMM alone, both ways round, in the same run (ms; the weight read as stored):", "",
              "| layer | torch's layer | X^T W (overlap_add) | W^T X (col2im) |", "|---|---:|---:|---:|"] + gemms
    print("\n".join(lines[-len(gemms) - 5:]))
    Path(args.out).write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
