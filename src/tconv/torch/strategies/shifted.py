"""The phases as GEMMs on shifted views of the flattened input, channel-major: ``shifted``.

The NumPy engine's shifted-GEMM plan (:func:`tconv.kernels.phase.shifted_plan`,
docs/algorithms.md), transposed so that the phases come out channel-major, as
NCHW wants.
"""
from __future__ import annotations

import functools
import math

import torch

from ...geometry import Geometry
from ...kernels import phase as _numpy_phase
from ._common import plain_ops, ravel
from ._plan import Plan

__all__ = ["shifted", "shifted_applies"]


@functools.lru_cache(maxsize=256)
def _shifted_layout(geometry: Geometry, batch: int):
    """The shifted form's plan for this geometry, plus each phase's source and target slices."""
    window = tuple(ax.kept for ax in geometry)
    per_axis = [ax.phases(start, stop) for ax, (start, stop) in zip(geometry, window)]
    layout = _numpy_phase.shifted_plan(tuple(geometry), per_axis, batch)
    fresh = _numpy_phase.first_writes(layout.gemms, len(layout.combinations))
    places = _numpy_phase.shifted_places(layout, per_axis, tuple(geometry))
    covered = _numpy_phase.covers(tuple(geometry), per_axis, window)
    return layout, fresh, places, covered


# torch.compile: the plan is Python bookkeeping (the NumPy engine's), run eagerly behind a graph break
_shifted_layout_eager = torch.compiler.disable(_shifted_layout) if hasattr(torch, "compiler") else _shifted_layout


def shifted(x, w, b, plan: Plan) -> torch.Tensor:
    """Phases as GEMMs on column-shifted views of the flattened, padded input, written channel-major.

    ``src`` holds the input as ``(C_in, front + N * prod(grid))``: each channel's
    padded images one after another, so reading the input shifted by ``c``
    along an axis is reading ``src`` ``c * row stride`` columns earlier, a plain
    2-D view. Each GEMM of the plan (one per shift and run of phases that use
    it) multiplies those columns by the taps' ``C_out x C_in`` matrices, stacked,
    and accumulates into the phases' rows of ``P`` (G, phases, C_out, columns).
    The grid's padding columns are computed and discarded (the plan's
    ``waste``). Each phase is then copied, bias added, into its strided place.
    """
    n, g, nd = x.shape[0], plan.groups, plan.ndim
    geo = plan.geometry
    layout, fresh, places, covered = _shifted_layout_eager(geo, n)
    cin_g, cout_g = plan.in_channels // g, plan.out_channels // g
    image = math.prod(layout.grid)
    columns = layout.front + n * image
    plain = plain_ops(x, w, b)  # then no out=, and the bias is added at the end
    src = x.new_empty((plan.in_channels, columns))
    src[:, :layout.front] = 0
    inside = src[:, layout.front:].view((plan.in_channels, n) + layout.grid)
    for a, (o, ax) in enumerate(zip(layout.origin, geo)):  # zero only the padding
        lead = (slice(None),) * (a + 2)
        inside[lead + (slice(0, o),)] = 0
        inside[lead + (slice(o + ax.input_size, None),)] = 0
    inside[(slice(None), slice(None)) + tuple(slice(o, o + ax.input_size) for o, ax in zip(layout.origin, geo))] = x.transpose(0, 1)
    phases = len(layout.combinations)
    values = (x.new_zeros if fresh is None else x.new_empty)((g, phases, cout_g, n * image))
    # (G, taps, C_out, C_in): each tap's matrix as BLAS wants it; a run of consecutive taps is
    # then a view. A strided copy of the whole weight on every call: for HiFi-GAN's 8 MB k16
    # weight it takes longer than torch's whole layer, and the picker then keeps native
    by_tap = w.reshape(g, cin_g, cout_g, -1).permute(0, 3, 2, 1).contiguous()
    for (offset, rows, taps, first, stop), new in zip(layout.gemms, fresh or [False] * len(layout.gemms)):
        flat = [ravel(tap, plan.kernel) for tap in taps]
        consecutive = flat == list(range(flat[0], flat[0] + len(flat)))
        start = layout.front + first + offset
        for group in range(g):
            a = by_tap[group, flat[0]:flat[-1] + 1] if consecutive else by_tap[group, flat]
            a = a.reshape(len(flat) * cout_g, cin_g)
            bmat = src[group * cin_g:(group + 1) * cin_g, start:start + stop - first]
            c = values[group, rows[0]:rows[-1] + 1].view(len(rows) * cout_g, n * image)[:, first:stop]
            if new and not plain:
                torch.mm(a, bmat, out=c)
            elif new:
                c.copy_(a @ bmat)
            else:
                c.addmm_(a, bmat)
    grid_values = values.view((g, phases, cout_g, n) + layout.grid)
    out = x.new_empty((n, g, cout_g) + geo.output_shape)
    bias = None if b is None else b.view((1, g, cout_g) + (1,) * nd)
    if not covered:  # outputs no tap reaches hold the bias (added at the end when plain)
        if bias is None or plain:
            out.zero_()
        else:
            out.copy_(bias.expand(out.shape))
    lead = (slice(None),) * 3
    for phase_index, target, source in places:
        # (G, C_out, N, *counts) -> (N, G, C_out, *counts)
        values_of_phase = grid_values[(slice(None), phase_index, slice(None), slice(None)) + source].movedim(2, 0)
        if bias is not None and not plain:
            torch.add(values_of_phase, bias, out=out[lead + target])
        else:
            out[lead + target] = values_of_phase
    if bias is not None and plain:
        out = out + bias
    return out.view((n, plan.out_channels) + geo.output_shape)


def shifted_applies(plan: Plan) -> bool:
    """Layers with a GEMM to do, whose window lies inside the full output (the plan reads no zeros past it)."""
    return not plan.depthwise and plan.window_inside_full
