"""What torch's bias costs on grouped transposed convolutions, and what adding it afterwards saves.

For grouped layers (depthwise included) torch's CPU kernel (oneDNN) is called with the bias, and
without it followed by ``y += b`` (tconv's ``native_bias_after`` strategy), on NCHW and on
channels-last input, forward (under ``torch.no_grad()``) and forward+backward. Interleaved medians.
Each layer also prints the oneDNN implementation that ran (from ``ONEDNN_VERBOSE``, in a child
process): where it is ``conv:any+...`` (the layer run as a convolution's backward pass) the bias is
a separate pass, where it is ``brg_deconv`` the bias is fused.

    python benchmarks/bench_bias.py          (also run by `make bench`; writes results/bias.md)
"""
from __future__ import annotations

import sys
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from tconv._machine import cpu_summary  # noqa: E402
import tconv  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import deconvolutions, interleaved  # noqa: E402

FUNCS = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}
CHANNELS_LAST = {2: torch.channels_last, 3: torch.channels_last_3d}

# name, batch, in, out, groups, kernel, stride, padding, output_padding, spatial
LAYERS = [
    ("depthwise 64ch, 32x32 (k3 s2 p1 op1)", 4, 64, 64, 64, 3, 2, 1, 1, (32, 32)),
    ("depthwise 64ch, 32x32 (k4 s2 p1)", 4, 64, 64, 64, 4, 2, 1, 0, (32, 32)),
    ("depthwise x2 64->128, 32x32 (k3 s2 p1 op1)", 4, 64, 128, 64, 3, 2, 1, 1, (32, 32)),
    ("depthwise 1-D 128ch, L=1024 (k5 s2 p2 op1)", 2, 128, 128, 128, 5, 2, 2, 1, (1024,)),
    ("depthwise 3-D 32ch, 16^3 (k3 s2 p1 op1)", 1, 32, 32, 32, 3, 2, 1, 1, (16, 16, 16)),
    ("pytorch#47341's layer: depthwise 1-D 512ch, L=32 (k6 s3 p2 op1)", 16, 512, 512, 512, 6, 3, 2, 1, (32,)),
    ("groups 32 (2/group) 64->64, 32x32 (k3 s2 p1 op1)", 4, 64, 64, 32, 3, 2, 1, 1, (32, 32)),
    ("groups 16 (4/group) 64->64, 32x32 (k3 s2 p1 op1)", 4, 64, 64, 16, 3, 2, 1, 1, (32, 32)),
    ("groups 8 (8/group) 64->64, 32x32 (k3 s2 p1 op1)", 4, 64, 64, 8, 3, 2, 1, 1, (32, 32)),
    ("groups 8 (4/group) 32->128, 32x32 (k4 s2 p1)", 4, 32, 128, 8, 4, 2, 1, 0, (32, 32)),
    ("groups 8 (8/group) 3-D 32->32, 16^3 (k3 s2 p1 op1)", 1, 32, 32, 8, 3, 2, 1, 1, (16, 16, 16)),
    ("groups 4 (16/group) 64->64, 32x32 (k3 s2 p1 op1)", 4, 64, 64, 4, 3, 2, 1, 1, (32, 32)),
    ("groups 8 (16/group) 128->128, 32x32 (k4 s2 p1)", 4, 128, 128, 8, 4, 2, 1, 0, (32, 32)),
    ("groups 2 (32/group) 64->64, 32x32 (k3 s2 p1 op1)", 4, 64, 64, 2, 3, 2, 1, 1, (32, 32)),
    ("groups 1 64->64, 32x32 (k3 s2 p1 op1)", 4, 64, 64, 1, 3, 2, 1, 1, (32, 32)),
]


def tensors(layer, memory_format=None, grad=False):
    _, n, cin, cout, g, k, s, p, op, spatial = layer
    torch.manual_seed(0)
    nd = len(spatial)
    x = torch.randn((n, cin) + spatial)
    w = torch.randn((cin, cout // g) + (k,) * nd)
    b = torch.randn(cout)
    if memory_format is not None:
        x, w = x.contiguous(memory_format=memory_format), w.contiguous(memory_format=memory_format)
    for t in (x, w, b):
        t.requires_grad_(grad)
    return x, w, b, (s, p, op, g)


def calls(layer, memory_format=None, grad=False) -> dict:
    x, w, b, args = tensors(layer, memory_format, grad)
    fn = FUNCS[x.dim() - 2]
    shape = (1, -1) + (1,) * (x.dim() - 2)

    def with_bias():
        y = fn(x, w, b, *args)
        if grad:
            y.backward(torch.ones_like(y))

    def bias_after():
        y = fn(x, w, None, *args).add_(b.view(shape))
        if grad:
            y.backward(torch.ones_like(y))
    return {"with bias": with_bias, "bias after": bias_after}


def implementations() -> dict[str, str]:
    """Layer name -> the oneDNN deconvolution implementation with a bias (NCHW input), from ONEDNN_VERBOSE."""
    found = deconvolutions(
        "import torch, bench_bias as bb\n"
        "for layer in bb.LAYERS:\n"
        "    print('LAYER', layer[0], flush=True)\n"
        "    with torch.no_grad(): bb.calls(layer)['with bias']()\n"
    )
    return {name: impl for name, impl in found.items() if impl is not None}


def main(repeats: int = 21) -> None:
    tconv.tune_allocator()
    impl = implementations()
    lines = [
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, {cpu_summary()}; medians of {repeats} "
        "interleaved calls, float32. 'with bias': `F.conv_transpose*d(x, w, b, ...)`; 'bias after': the same "
        "without the bias, then `y.add_(b)` (tconv's `native_bias_after`). The oneDNN implementation is the one "
        "that ran with the bias on NCHW input (`ONEDNN_VERBOSE=1`).",
        "",
        "| layer | oneDNN implementation | fwd with bias ms | fwd bias after ms | fwd speed-up | channels-last fwd speed-up "
        "| fwd+bwd with bias ms | fwd+bwd bias after ms | fwd+bwd speed-up |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for line in lines:
        print(line, flush=True)
    for layer in LAYERS:
        nd = len(layer[-1])
        fwd = interleaved(calls(layer), repeats, grad=False, shuffle=False)
        cl = "-"
        if nd in CHANNELS_LAST:
            t = interleaved(calls(layer, CHANNELS_LAST[nd]), repeats, grad=False, shuffle=False)
            cl = f"{t['with bias'] / t['bias after']:.2f}x"
        bwd = interleaved(calls(layer, grad=True), max(5, repeats // 2), grad=True, shuffle=False)
        row = (
            f"| {layer[0]} | {impl.get(layer[0], '?')} | {fwd['with bias'] * 1e3:.2f} | {fwd['bias after'] * 1e3:.2f} "
            f"| {fwd['with bias'] / fwd['bias after']:.2f}x | {cl} | {bwd['with bias'] * 1e3:.2f} "
            f"| {bwd['bias after'] * 1e3:.2f} | {bwd['with bias'] / bwd['bias after']:.2f}x |"
        )
        print(row, flush=True)
        lines.append(row)
    out = Path(__file__).resolve().parent / "results" / "bias.md"
    out.write_text("\n".join(lines) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    import argparse

    # no options: --help says what runs and where it writes, instead of running it
    argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                            epilog="example: python benchmarks/bench_bias.py  (writes benchmarks/results/bias.md)").parse_args()
    main()
