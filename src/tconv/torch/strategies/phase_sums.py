"""Each output phase summed from shifted terms, then landed once: ``kn2row`` and ``depthwise``.

Output phase ``r`` (kept outputs ``q*s + r``) is a stride-1 sum over the taps
that reach it (:meth:`AxisGeometry.output_phases`), each term a shifted slice
of an input-sized tensor: a tap's plane of one GEMM (``kn2row``), or the input
times one weight per channel (``depthwise``). :func:`sum_phases` keeps each sum
in a contiguous buffer and lands it with :func:`_common.land`.
"""
from __future__ import annotations

import itertools
import math
from typing import Callable

import torch

from .. import _native
from ._common import gather_fill, is_channels_last, land, native_ok, pairs_pay, phase_slice, ravel, tap_reach
from ._plan import Plan

__all__ = ["depthwise", "depthwise_applies", "kn2row", "sum_phases"]


def _phase_terms(plan: Plan) -> list[tuple]:
    """For :func:`sum_phases`, worked out once per plan: per combination of phases,
    ``(counts, terms, dst, row)``.

    ``counts`` are the phase's output sizes; ``terms`` its taps as ``(partial,
    kernel_index, acc_index, source)``, a tap that covers the whole phase first
    (it starts the sum: no fill); ``dst`` the phase's strided place in the kept
    output; ``row`` the phases of all axes but the last (phases of one row can
    land together).
    """
    cached = plan.__dict__.get("_phase_terms")
    if cached is not None:
        return cached
    nd = plan.ndim
    axes = tuple(plan.geometry)
    combos = []
    for combo in itertools.product(*(ax.output_phases() for ax in axes)):
        counts = tuple(p[1] for p in combo)
        terms = []
        for taps in itertools.product(*(p[2] for p in combo)):
            reach = [tap_reach(ax, tap, offset) for ax, (tap, offset) in zip(axes, taps)]
            spans = [r for r in reach if r is not None]
            if len(spans) < nd:
                continue  # this tap reaches no kept output of the phase
            lo, hi = [r[0] for r in spans], [r[1] for r in spans]
            offsets = [t[1] for t in taps]
            partial = not (lo == [0] * nd and list(hi) == list(counts))
            source = tuple(slice(l + o, h + o) for l, h, o in zip(lo, hi, offsets))
            terms.append((partial, tuple(t[0] for t in taps), tuple(slice(l, h) for l, h in zip(lo, hi)), source))
        terms.sort(key=lambda term: term[0])
        dst = tuple(phase_slice(ax, p[0]) for p, ax in zip(combo, axes))
        combos.append((counts, terms, dst, combo[:-1]))
    plan.__dict__["_phase_terms"] = combos
    return combos


def sum_phases(out: torch.Tensor, plan: Plan, bias: torch.Tensor | None, first: Callable,
               add: Callable) -> torch.Tensor:
    """Fill ``out`` (..., *kept) phase by phase: each phase sums its taps' terms, then lands once.

    The sum is kept in a contiguous buffer (elementwise ops on contiguous
    memory vectorize; on the stride-``s`` output view they do not) and copied
    into its strided place once. Which taps each phase sums, and where, is
    worked out once per plan (:func:`_phase_terms`).

    ``first(taps, source)`` returns a new tensor (bias included) for a tap that
    covers the whole phase; ``add(acc, taps, source)`` adds a term into ``acc``
    in place. ``taps`` holds the kernel index per axis, ``source`` the spatial
    slices of the input-sized tensor.
    """
    nd = plan.ndim
    outer = tuple(out.shape[: out.dim() - nd])  # batch and channel axes
    lead = (slice(None),) * len(outer)
    # The last axis's phases of one row of combos land together when land can pair them; otherwise
    # each lands at once, while its buffer is still in cache.
    pending: list[tuple[tuple, torch.Tensor]] = []
    row: tuple | None = None
    together = pairs_pay(out)
    for counts, terms, dst, combo_row in _phase_terms(plan):
        acc = None
        for partial, kernel_index, acc_index, source in terms:
            if acc is None and not partial:
                acc = first(kernel_index, source)
                continue
            if acc is None:
                acc = out.new_zeros(outer + counts) if bias is None else bias.expand(outer + counts).clone()
            add(acc[lead + acc_index], kernel_index, source)
        if acc is None:
            acc = out.new_zeros(outer + counts) if bias is None else bias.expand(outer + counts)
        if combo_row != row or not together:
            land(out, pending)
            pending, row = [], combo_row
        pending.append((lead + dst, acc))
    land(out, pending)
    return out


def kn2row(x, w, b, plan: Plan) -> torch.Tensor:
    """Phases by GEMM first: ``W_t^T X`` for every tap in one GEMM, then per-phase shifted sums.

    The product of the input with every tap's ``C_in x C_out`` matrix is one
    GEMM on the weight as stored; each output phase then adds its taps' planes, shifted,
    in a contiguous buffer (:func:`sum_phases`). Unlike ``col2im`` nothing is
    added into the strided output; unlike ``phase`` no convolution kernel runs.
    """
    n, g, nd = x.shape[0], plan.groups, plan.ndim
    cin_g, cout_g = plan.in_channels // g, plan.out_channels // g
    taps = math.prod(plan.kernel)  # undilated: output_phases places each tap, dilation included
    positions = math.prod(plan.input_shape)
    if cin_g * 4 <= n * positions:
        # Rows (tap, c_out): each tap's plane one contiguous block, for long vectorized sums; the
        # weight copy this costs is small next to the planes.
        wg = w.reshape(g, cin_g, cout_g, taps).permute(0, 3, 2, 1).reshape(g, taps * cout_g, cin_g)
        tap_major = True
    else:
        # A weight as large as the planes (long kernels on short inputs): use it as stored,
        # transposed by BLAS flags, rows (c_out, tap); a plane is then strided across channels.
        wg = w.reshape(g, cin_g, cout_g * taps).transpose(1, 2)
        tap_major = False
    xg = x.reshape(n, g, cin_g, positions)
    if g == 1:
        planes = torch.matmul(wg[0], xg[:, 0]).unsqueeze(1)
    else:
        planes = torch.matmul(wg.unsqueeze(0), xg)
    if tap_major:
        planes = planes.view((n, g, taps, cout_g) + plan.input_shape)
    else:
        planes = planes.view((n, g, cout_g, taps) + plan.input_shape).transpose(2, 3)
    bias = None if b is None else b.view((1, g, cout_g) + (1,) * nd)
    flat = (slice(None), slice(None))

    def plane(index, source):
        return planes[flat + (ravel(index, plan.kernel), slice(None)) + source]

    def first(index, source):
        p = plane(index, source)
        return p.clone() if bias is None else p + bias

    def add(acc, index, source):
        acc.add_(plane(index, source))

    # groups ride along as their own axis: (N, G, C_out/G, *kept) is (N, C_out, *kept) in memory
    out = sum_phases(x.new_empty((n, g, cout_g) + plan.geometry.output_shape), plan, bias, first, add)
    return out.view((n, plan.out_channels) + plan.geometry.output_shape)


def depthwise(x, w, b, plan: Plan) -> torch.Tensor:
    """One input channel per group, by phases: each output phase is a few shifted ``x * w[tap]``.

    Each term is a shifted slice of the undilated input times one weight per
    channel, summed per phase by :func:`sum_phases`. No GEMM (depthwise has
    nothing to reduce over channels), no zero-insertion, no multiply by zero.
    In inference, where the C loops are built, one C pass instead.
    """
    if native_ok((x, w, b)) and _native.can_gather(x.dtype, sums=True) and x.numel() and w.dtype == x.dtype:
        return _depthwise_native(x, w, b, plan)
    n, nd = x.shape[0], plan.ndim
    channels, multiplier = w.shape[0], w.shape[1]
    if multiplier > 1:  # output channel c*m + j reads input channel c
        x = x.repeat_interleave(multiplier, dim=1)
    c = channels * multiplier
    wc = w.reshape((c,) + tuple(w.shape[2:]))
    bias = None if b is None else b.view((1, c) + (1,) * nd)
    lead = (slice(None), slice(None))

    def weight(taps):
        return wc[(slice(None),) + taps].view((1, c) + (1,) * nd)

    def first(taps, source):
        src = x[lead + source]
        return src * weight(taps) if bias is None else torch.addcmul(bias, src, weight(taps))

    def add(acc, taps, source):
        acc.addcmul_(x[lead + source], weight(taps))

    return sum_phases(x.new_empty((n, c) + plan.geometry.output_shape), plan, bias, first, add)


def depthwise_applies(plan: Plan) -> bool:
    """One input channel per group."""
    return plan.depthwise


def _depthwise_native(x, w, b, plan: Plan) -> torch.Tensor:
    """:func:`depthwise` in one C pass (:func:`tconv.torch._native.depthwise`): each kept output
    element sums its taps' ``x * w`` (bias first), read straight from the input; written in order.

    Channels-last input takes the channels-last loop (:class:`tconv._native.DepthwiseLast`, the
    NumPy engine's): it returns channels-last memory, as torch's kernel does for such input.
    """
    if is_channels_last(x) and _native.can_depthwise_last(x.dtype):
        return _depthwise_last_native(x, w, b, plan)
    n, nd = x.shape[0], plan.ndim
    channels, multiplier = w.shape[0], w.shape[1]
    c = channels * multiplier
    x, w = x.contiguous(), w.contiguous()
    kernel, sizes = plan.kernel, plan.input_shape
    positions = math.prod(sizes)
    key = ("depthwise", n)
    tables = plan.__dict__.get("_gather_tables", {}).get(key)
    if tables is None:
        axes = [_native.AxisTable.of(ax, 0, math.prod(sizes[a + 1:])) for a, ax in enumerate(plan.geometry)]
        units = [math.prod(kernel[a + 1:]) for a in range(nd)]
        out_channel = torch.arange(c)
        planes = (torch.arange(n).view(-1, 1) * (channels * positions)
                  + (out_channel // multiplier).view(1, -1) * positions).reshape(-1)
        weights = (out_channel * math.prod(kernel)).repeat(n)  # output channel c*m + j: w[c, j] as stored
        tables = plan.__dict__.setdefault("_gather_tables", {})[key] = (axes, units, planes, weights)
    axes, units, planes, weights = tables
    out = x.new_empty((n * c,) + plan.geometry.output_shape)
    _native.depthwise(x, w, out, planes, weights, axes, units, gather_fill(b, x.dtype), c)
    return out.view((n, c) + plan.geometry.output_shape)


def _depthwise_last_native(x, w, b, plan: Plan) -> torch.Tensor:
    n = x.shape[0]
    channels, multiplier = w.shape[0], w.shape[1]
    c = channels * multiplier
    x_last = x.movedim(1, -1)
    if multiplier > 1:  # output channel c*m + j reads input channel c
        x_last = x_last.repeat_interleave(multiplier, dim=-1)
    # (*k, C*m): each tap's weights for all channels side by side
    w_last = w.reshape(c, -1).t().contiguous()
    axes = tuple(plan.geometry.axes)
    out = x.new_empty((n,) + plan.geometry.output_shape + (c,))
    return _native.depthwise_last(x_last, w_last, out, gather_fill(b, x.dtype), axes).movedim(-1, 1)
