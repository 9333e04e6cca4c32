"""Phases computed whole, then landed: ``phase``, ``phase_channels_last`` and ``gemm_shuffle``.

Full-output phase ``r`` (positions ``q*s + r``) is a stride-1 correlation of
the undilated input with the phase sub-kernel ``w[r::s]``. ``phase`` runs the
prod(s) correlations as one grouped stride-1 ``F.conv*d``; ``gemm_shuffle``,
for kernels no longer than the stride, gets every phase from one GEMM (each
output element has one tap). Both end in :func:`place_phases`, which copies
each phase into its strided place in the kept output.
"""
from __future__ import annotations

import itertools
import math

import torch
import torch.nn.functional as F

from .. import _native
from ._common import (CHANNELS_LAST, as_2d, conv_fn, dilate_weight, gather_fill, land_schedule, native_ok, pairing,
                      plane_offsets, run_landing, spatial_pad)
from ._plan import Plan

__all__ = ["gemm_shuffle", "gemm_shuffle_applies", "phase", "phase_channels_last", "place_phases"]


def phase(x, w, b, plan: Plan) -> torch.Tensor:
    """Sub-pixel decomposition: prod(s) stride-1 correlations of the undilated input, interleaved."""
    return _phase(x, w, b, plan, channels_last=False)


def phase_channels_last(x, w, b, plan: Plan) -> torch.Tensor:
    """:func:`phase` with the stride-1 convolution in the channels-last layout (1-D as 2-D with a unit height).

    The landing returns the usual layout.
    """
    return _phase(x, w, b, plan, channels_last=True)


def _phase(x, w, b, plan: Plan, channels_last: bool) -> torch.Tensor:
    if channels_last and plan.ndim == 1:
        return _phase(x.unsqueeze(2), w.unsqueeze(2), b, as_2d(plan), channels_last=True).squeeze(2)
    nd, g = plan.ndim, plan.groups
    wd = dilate_weight(w, plan)
    K = plan.geometry.dilated_kernel
    taps = tuple(-(-k // s) for k, s in zip(K, plan.stride))  # taps per phase, ceil(K/s)
    grow = [t * s - k for t, s, k in zip(taps, plan.stride, K)]
    if any(grow):
        wd = F.pad(wd, spatial_pad([0] * nd, [-e for e in grow]))
    cin, cout_g = w.shape[0], w.shape[1]
    # tap index m*s + r -> (m, r); phases r become output channels (group-major, then phase, then c_out).
    shape = (cin, cout_g) + tuple(v for t, s in zip(taps, plan.stride) for v in (t, s))
    wp = wd.reshape(shape)
    order = [0] + [3 + 2 * a for a in range(nd)] + [1] + [2 + 2 * a for a in range(nd)]
    phases = math.prod(plan.stride)
    wp = wp.permute(order).reshape((cin, phases * cout_g) + taps)
    # conv_transpose with stride 1 == correlation with the flipped kernel, channels swapped per group.
    cin_g = cin // g
    wc = wp.reshape((g, cin_g, phases * cout_g) + taps).transpose(1, 2).reshape((g * phases * cout_g, cin_g) + taps)
    wc = wc.flip(list(range(2, 2 + nd)))
    if channels_last:
        fmt = CHANNELS_LAST[x.dim()]
        x, wc = x.contiguous(memory_format=fmt), wc.contiguous(memory_format=fmt)
    y = conv_fn(nd)(x, wc, _phase_bias(b, plan), 1, [t - 1 for t in taps], 1, g)
    # unflatten splits the channel axis in place for either memory format (no copy)
    y = y.unflatten(1, (g,) + plan.stride + (cout_g,))
    return place_phases(y, plan, b)


def _phase_bias(b: torch.Tensor | None, plan: Plan) -> torch.Tensor | None:
    """The bias for channels ordered (group, phase, c_out): each phase's outputs get the same bias."""
    if b is None:
        return None
    g = plan.groups
    return b.view(g, 1, -1).expand(g, math.prod(plan.stride), b.shape[0] // g).reshape(-1)


def gemm_shuffle(x, w, b, plan: Plan) -> torch.Tensor:
    """Non-overlapping kernels: every output element gets exactly one tap, so a GEMM and a shuffle suffice.

    The GEMM runs on the weight as stored; each phase (kernel tap) is a block of
    whole spatial rows that one strided copy puts in place.
    """
    wd = dilate_weight(w, plan)
    # Pad each kernel axis to the stride: each input element then owns an s-sized output block.
    grow = [s - k for s, k in zip(plan.stride, plan.geometry.dilated_kernel)]
    if any(grow):
        wd = F.pad(wd, spatial_pad([0] * plan.ndim, [-e for e in grow]))
    n, g, nd = x.shape[0], plan.groups, plan.ndim
    cin_g, cout_g = plan.in_channels // g, plan.out_channels // g
    phases = math.prod(plan.stride)
    # (C_in, C_out/g, *s) -> (g, C_out/g * phases, C_in/g): the stored weight, transposed by
    # BLAS flags rather than copied; rows (c_out, phase)
    wg = wd.reshape(g, cin_g, cout_g * phases).transpose(1, 2)
    xg = x.reshape(n, g, cin_g, math.prod(plan.input_shape))
    bias = None if b is None else b.view(g, cout_g, 1).expand(g, cout_g, phases).reshape(g, -1, 1)
    if g == 1 and bias is not None:
        cols = torch.baddbmm(bias, wg.expand(n, -1, -1), xg[:, 0]).unsqueeze(1)
    else:
        cols = torch.matmul(wg.unsqueeze(0), xg)
        if bias is not None:
            cols = cols + bias
    y = cols.view((n, g, cout_g) + plan.stride + plan.input_shape)
    # (N, G, C, *s, *I) -> (N, G, *s, C, *I): a view; each phase reads whole spatial rows
    y = y.permute([0, 1] + list(range(3, 3 + nd)) + [2] + list(range(3 + nd, 3 + 2 * nd)))
    return place_phases(y, plan, b)


def gemm_shuffle_applies(plan: Plan) -> bool:
    """Kernels no longer than the stride (``d*(k-1)+1 <= s``), where no two taps reach one output."""
    return plan.non_overlapping


def _phase_jobs(plan: Plan, counts: tuple[int, ...]) -> tuple[list[tuple[tuple, tuple]], bool]:
    """For :func:`place_phases`: ``(dst, src)`` per phase that keeps anything, and whether some kept
    positions get no phase (they hold the bias, or zero)."""
    geo = plan.geometry
    lead = (slice(None),) * 3
    jobs, fill = [], False
    for r in itertools.product(*(range(s) for s in plan.stride)):
        dst, src = [], []
        for a, ax in enumerate(geo):
            placed = ax.phase_target(r[a], counts[a])
            if placed is None:
                break  # every position of this phase is cropped
            target, source, complete = placed
            fill = fill or not complete
            if source.start >= source.stop:
                break
            dst.append(target)
            src.append(source)
        else:
            jobs.append((lead + tuple(dst), (slice(None), slice(None)) + r + (slice(None),) + tuple(src)))
    fill = fill or len(jobs) < math.prod([len(ax.output_phases()) for ax in geo])
    return jobs, fill


def place_phases(y: torch.Tensor, plan: Plan, b: torch.Tensor | None) -> torch.Tensor:
    """Copy phase results into the kept output, one strided copy per phase (or per pair, see :func:`_common.land`).

    ``y`` is (N, G, *s, C_out/G, *Q), bias included: phase ``r`` holds the full
    positions ``q*s + r``, and :meth:`AxisGeometry.phase_target` says where
    they land in the kept output. Only kept elements are copied (no full-size
    intermediate, no crop copy); positions no phase reaches (a negative crop)
    hold the bias, or zero.

    The jobs and the landing schedule depend only on the plan and ``y``'s
    shape, strides and dtype, so they are worked out once and kept on the plan:
    on small and mid-sized layers that Python is a visible share of the call.
    """
    n, g, nd = y.shape[0], plan.groups, plan.ndim
    cout_g = plan.out_channels // g
    if native_ok((y, b)) and _native.can_gather(y.dtype, sums=False):
        return _place_phases_native(y, plan, b)
    out = y.new_empty((n, g, cout_g) + plan.geometry.output_shape)
    pairs = pairing(out, [y])
    key = (tuple(y.shape), y.stride(), y.dtype, pairs)
    cache = plan.__dict__.setdefault("_landings", {})
    entry = cache.get(key)
    values = None
    if entry is None:
        jobs, fill = _phase_jobs(plan, tuple(y.shape[y.dim() - nd:]))
        dsts = [dst for dst, _ in jobs]
        values = [y[src] for _, src in jobs]
        entry = cache[key] = (dsts, [src for _, src in jobs], fill, land_schedule(out, list(zip(dsts, values))))
    dsts, srcs, fill, schedule = entry
    if fill:
        if b is None:
            out.zero_()
        else:
            out.copy_(b.view((1, g, cout_g) + (1,) * nd).expand(out.shape))
    run_landing(out, dsts, values if values is not None else [y[src] for src in srcs], schedule)
    return out.view((n, plan.out_channels) + plan.geometry.output_shape)


def _place_phases_native(y: torch.Tensor, plan: Plan, b: torch.Tensor | None) -> torch.Tensor:
    """:func:`place_phases` by one C gather: each output row is read from its phases in one pass.

    Which phase and ``q`` each kept output takes is the answer of
    :meth:`AxisGeometry.phase_landing`; positions no phase reaches get the
    bias, or zero. Values are copied bit for bit. The tables depend on ``y``'s
    shape and strides only, and are kept on the plan.
    """
    n, g, nd = y.shape[0], plan.groups, plan.ndim
    cout_g = plan.out_channels // g
    key = ("native", tuple(y.shape), y.stride(), y.dtype)
    cache = plan.__dict__.setdefault("_landings", {})
    entry = cache.get(key)
    if entry is None:
        st = y.stride()
        axes = [_native.AxisTable.of(ax.phase_landing(y.shape[3 + nd + a]), st[2 + a], st[3 + nd + a])
                for a, ax in enumerate(plan.geometry)]
        fills = any(bool((table.counts == 0).any()) for table in axes)
        planes = plane_offsets(n, g, cout_g, (st[0], st[1], st[2 + nd]))
        entry = cache[key] = (_native.Gather(y.dtype, planes, axes, False, plan.out_channels), fills)
    landing, fills = entry
    out = y.new_empty((n * plan.out_channels,) + plan.geometry.output_shape)
    if out.numel():
        landing(y, out, gather_fill(b, y.dtype) if fills else None)
    return out.view((n, plan.out_channels) + plan.geometry.output_shape)
