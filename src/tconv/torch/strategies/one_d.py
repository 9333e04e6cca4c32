"""1-D layers with the weight read as stored: ``overlap_add`` and ``phase_rows``.

Vocoders' up-sampling layers are the two extremes: long kernels and strides on
short inputs (k16 s8, a weight far larger than the input), where
``overlap_add``'s GEMM ``X^T W`` reads the weight as stored, and short kernels
on long sequences (k4 s2), where ``phase_rows`` sums whole shifted rows of
``W^T X`` per output phase. ``benchmarks/bench_vocoder.py`` times both; docs/torch.md,
"Vocoders: 1-D up-sampling", explains them.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ...geometry import AxisGeometry
from ._common import PAIRED, add_bias, dilate_weight, phase_slice, plain_ops, tap_reach
from ._plan import Plan

__all__ = ["overlap_add", "overlap_add_applies", "phase_rows", "phase_rows_applies"]


def overlap_add(x, w, b, plan: Plan) -> torch.Tensor:
    """1-D: the GEMM ``X^T W`` on the weight as stored, then each tap block added into place.

    Row ``i`` of ``Z = X^T W`` (input position ``i``, every ``(c_out, tap)``)
    is what input ``i`` stamps into the output. With the kernel split into
    ``M`` blocks of ``s`` taps (``tap = m*s + r``), output ``q*s + r`` is
    ``sum_m Z[q - m, c, m, r]``: ``M`` shifted copies of ``Z``'s blocks, each
    a copy whose inner run is ``s`` contiguous elements. Unlike ``col2im`` (the
    GEMM the other way round, ``W^T X``) the GEMM's big operand is read as
    stored and its result is position-major, which pays for long kernels on
    short inputs (HiFi-GAN's k16 s8 layers: ``benchmarks/bench_vocoder.py``).
    Only 1-D: with more axes every output element gets ``prod(M)`` terms, and
    ``kn2row``/``phase`` do better.
    """
    n, g = x.shape[0], plan.groups
    ax = plan.geometry[0]
    s, length = ax.stride, ax.input_size
    wd = dilate_weight(w, plan)
    blocks = -(-ax.dilated_kernel // s)  # M
    if blocks * s > ax.dilated_kernel:  # pad the kernel to whole blocks of s taps (zeros)
        wd = F.pad(wd, [0, blocks * s - ax.dilated_kernel])
    cin_g, cout_g = plan.in_channels // g, plan.out_channels // g
    # (L, C_in/g) @ (C_in/g, C_out/g * M * s) per image and group: both operands as stored, the
    # input transposed by BLAS flags. One group: a single mm with the images' rows stacked (a
    # batched matmul of the same shapes took 1.5x as long in an ad-hoc timing of HiFi-GAN's layer).
    if g == 1:
        rows = x[0].t() if n == 1 else x.transpose(1, 2).reshape(n * length, cin_g)
        z = torch.mm(rows, wd.reshape(cin_g, -1))
    else:
        z = torch.matmul(x.view(n, g, cin_g, length).transpose(2, 3), wd.reshape(g, cin_g, -1))
    z = z.view(n, g, length, cout_g, blocks, s)
    # term m as (N, G, C_out/g, L, s): lands on full[..., m : m + L, :]
    terms = [z[:, :, :, :, m].permute(0, 1, 3, 2, 4) for m in range(blocks)]
    count = length + blocks - 1  # Q
    full = x.new_empty((n, g, cout_g, count, s))
    if blocks >= 2 and length >= 2 and not plain_ops(x, w, b):
        # The positions both of the first two terms reach, in one out-of-place add: its output is
        # written in order, which was 1.4-2x faster than a copy then an in-place add of the strided
        # terms in an ad-hoc timing.
        torch.add(terms[0][:, :, :, 1:], terms[1][:, :, :, :-1], out=full[:, :, :, 1:length])
        full[:, :, :, 0] = terms[0][:, :, :, 0]
        full[:, :, :, length] = terms[1][:, :, :, -1]
        full[:, :, :, length + 1:].zero_()
        rest = 2
    else:  # in-place adds into views of one buffer: what autograd and Dynamo can follow
        full[:, :, :, :length] = terms[0]
        full[:, :, :, length:].zero_()
        rest = 1
    for m in range(rest, blocks):
        full[:, :, :, m:m + length] += terms[m]
    y = full.view(n, plan.out_channels, count * s)
    if ax.kept == (0, count * s):  # the buffer is the output: no copy
        return add_bias(y, b, in_place=True)
    y = y[:, :, slice(*ax.kept)]
    return y.contiguous() if b is None else add_bias(y, b)


def overlap_add_applies(plan: Plan) -> bool:
    """1-D layers with a GEMM to do, whose window lies inside the full output (the buffer holds nothing past it)."""
    return plan.ndim == 1 and not plan.depthwise and plan.window_inside_full


def _sum_rows(z: torch.Tensor, ax: AxisGeometry, count: int, taps: list[tuple[int, int]], acc: torch.Tensor,
              plain: bool) -> torch.Tensor:
    """``acc[..., q] = sum over (tap, offset) of z[..., tap, q + offset]`` for ``q < count``; returns ``acc``.

    ``z`` is (..., taps, L): one row per tap; ``taps`` and ``count`` are one
    output phase's, from :meth:`AxisGeometry.output_phases`. The two widest
    terms go in by one out-of-place add over the positions both reach (each
    other term is one more pass); positions no term reaches are zeroed. With
    ``plain`` (autograd or torch.compile must see every op) the sum starts from
    zeros and adds each term in place.
    """
    spans = []  # (width, tap, lo, hi, offset) for each tap reaching some q, widest first
    for tap, off in taps:
        reach = tap_reach(ax, tap, off)
        if reach is not None:
            spans.append((reach[1] - reach[0], tap, reach[0], reach[1], off))
    spans.sort(reverse=True)
    if plain or len(spans) < 2:
        acc.zero_()
        rest = spans
    else:
        (_, t0, lo0, hi0, o0), (_, t1, lo1, hi1, o1) = spans[:2]
        lo, hi = max(lo0, lo1), min(hi0, hi1)
        if hi <= lo:  # the two do not overlap
            acc.zero_()
            rest = spans
        else:
            torch.add(z[..., t0, lo + o0:hi + o0], z[..., t1, lo + o1:hi + o1], out=acc[..., lo:hi])
            done = lo  # left of the overlap: the span starting earlier, zeros before it
            for start, tap, off in sorted(((lo0, t0, o0), (lo1, t1, o1))):
                if start < done:
                    acc[..., start:done] = z[..., tap, start + off:done + off]
                    done = start
            acc[..., :done] = 0
            done = hi  # right of the overlap likewise
            for stop, tap, off in sorted(((hi0, t0, o0), (hi1, t1, o1)), reverse=True):
                if stop > done:
                    acc[..., done:stop] = z[..., tap, done + off:stop + off]
                    done = stop
            acc[..., done:] = 0
            rest = spans[2:]
    for _, tap, lo, hi, off in rest:
        acc[..., lo:hi] += z[..., tap, lo + off:hi + off]
    return acc


def phase_rows(x, w, b, plan: Plan) -> torch.Tensor:
    """1-D: the GEMM ``W^T X`` on the weight as stored, each output phase summed from its taps' rows.

    Row ``(c_out, tap)`` of ``Z = W^T X`` is that tap's product with the whole
    input. Output phase ``r`` (positions ``q*s + r``) sums the rows of the
    taps that reach it, each shifted (:meth:`AxisGeometry.output_phases`), in a contiguous
    buffer (:func:`_sum_rows`); the phases are then interleaved into the
    output, at stride 2 as one ``torch.complex`` into a complex view (each
    pair of neighbours stored whole). ``kn2row`` does the same in N-D, with
    a copy and an in-place add where this makes one out-of-place add, and
    pairs only from :data:`_common.PAIR_MIN_BYTES`. For vocoders' long k4 s2
    layers, where ``overlap_add``'s transposing adds run two floats at a time.
    """
    n, g = x.shape[0], plan.groups
    ax = plan.geometry[0]
    length = ax.input_size
    cin_g, cout_g = plan.in_channels // g, plan.out_channels // g
    taps = plan.kernel[0]
    weight = w.reshape(g, cin_g, cout_g * taps).transpose(1, 2)  # rows (c_out, tap), transposed by BLAS flags
    if g == 1 and n == 1:  # mm: a batched matmul of the same shapes was slower (see overlap_add)
        z = torch.mm(weight[0], x[0])
    else:
        z = torch.matmul(weight, x.reshape(n, g, cin_g, length))
    z = z.view(n, g, cout_g, taps, length)
    plain = plain_ops(x, w, b)
    phases = ax.output_phases()
    sums = [_sum_rows(z, ax, count, reach, x.new_empty((n, g, cout_g, count)), plain) for _, count, reach in phases]
    out = x.new_empty((n, g, cout_g, ax.output_size))  # every phase lands (one with no tap as zeros)
    if ax.stride == 2 and len(phases) == 2 and ax.output_size % 2 == 0 and out.dtype in PAIRED and not plain:
        # an even output length: every row of `out` is whole pairs (2j, 2j+1), a complex view
        view = torch.view_as_complex(out.unflatten(-1, (ax.output_size // 2, 2)))
        torch.complex(sums[0], sums[1], out=view)
    else:
        for (r, _, _), total in zip(phases, sums):
            out[..., phase_slice(ax, r)] = total
    out = out.view(n, plan.out_channels, ax.output_size)
    return add_bias(out, b, in_place=not plain)


def phase_rows_applies(plan: Plan) -> bool:
    """1-D layers with a GEMM to do."""
    return plan.ndim == 1 and not plan.depthwise
