"""One GEMM for every tap, then each output sums its taps: ``col2im``, ``gemm_gather`` and ``gemm_gather_t``.

The GEMM ``W^T X`` (or ``X^T W``) gives every (input position, output
channel, tap) product. ``col2im`` scatters them into the full output and
crops; ``gemm_gather`` has every kept output read exactly its own terms in
one C pass (:class:`tconv.torch._native.Gather`), written in order.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .. import _native
from ._common import add_bias, gather_fill, is_compiling, native_ok, plane_offsets, window
from ._plan import Plan

__all__ = ["col2im", "gemm_gather", "gemm_gather_applies", "gemm_gather_t"]


def col2im(x, w, b, plan: Plan) -> torch.Tensor:
    """GEMM to columns, then sum every tap into place (F.fold in 1-D/2-D, index_add in N-D)."""
    n, nd = x.shape[0], plan.ndim
    cols = _grouped_cols(x, w, plan, plan.kernel)
    geo = plan.geometry
    if nd <= 2:
        pad1 = (lambda t, v: (v,) + tuple(t)) if nd == 1 else (lambda t, v: tuple(t))
        y = F.fold(
            cols,
            output_size=pad1(geo.full_shape, 1),
            kernel_size=pad1(plan.kernel, 1),
            dilation=pad1(plan.dilation, 1),
            stride=pad1(plan.stride, 1),
        )
        if nd == 1:
            y = y.squeeze(2)
    else:
        index = _scatter_index(plan, x.device)
        flat = x.new_zeros((n, plan.out_channels, math.prod(geo.full_shape)))
        y = flat.index_add(2, index, cols.reshape(n, plan.out_channels, -1)).reshape(
            (n, plan.out_channels) + geo.full_shape
        )
    y = window(y, geo.crop_begin, geo.crop_end)
    return add_bias(y, b)


def _grouped_cols(x, w, plan: Plan, taps: tuple[int, ...]) -> torch.Tensor:
    """``W^T X`` per group: (N, C_out * prod(taps), prod(I)), rows ordered (c_out, tap)."""
    n, g = x.shape[0], plan.groups
    cin_g = plan.in_channels // g
    positions = math.prod(plan.input_shape)
    ntaps = math.prod(taps)
    xg = x.reshape(n, g, cin_g, positions)
    wg = w.reshape(g, cin_g, -1).transpose(1, 2)  # (g, C_out/g * taps, C_in/g)
    if g == 1:
        cols = torch.matmul(wg[0], xg[:, 0])
    else:
        cols = torch.matmul(wg.unsqueeze(0), xg)
    return cols.reshape(n, plan.out_channels * ntaps, positions)


def _scatter_index(plan: Plan, device) -> torch.Tensor:
    """Flat full-output position of (tap, input position), in the columns' (tap, position) order."""
    geo = plan.geometry
    index = torch.zeros((), dtype=torch.long, device=device)
    place = 1
    parts = []
    for a in reversed(range(plan.ndim)):
        ax = geo[a]
        parts.append((a, ax, place))
        place *= ax.full
    nd = plan.ndim
    firsts = _first_landings(plan, device)
    for a, ax, scale in parts:
        first = firsts[a]
        following = torch.arange(ax.input_size, device=device) * ax.stride
        shape_t = [1] * (2 * nd)
        shape_t[a] = -1
        shape_p = [1] * (2 * nd)
        shape_p[nd + a] = -1
        index = index + (first.view(shape_t) + following.view(shape_p)) * scale
    return index.reshape(-1)


def _first_landings(plan: Plan, device) -> list[torch.Tensor]:
    """Per axis, where tap ``t`` of input 0 lands in the full output; the next inputs land every stride after.

    :meth:`AxisGeometry.tap_inputs`' answer (every tap of every input lands in
    the full output). Kept on the plan per device, except while torch.compile
    traces (a tensor made in a traced graph must not outlive it).
    """
    if is_compiling():
        return _landings_of(plan, device)
    cache = plan.__dict__.setdefault("_first_landings", {})
    firsts = cache.get(device)
    if firsts is None:
        firsts = cache[device] = _landings_of(plan, device)
    return firsts


def _landings_of(plan: Plan, device) -> list[torch.Tensor]:
    firsts = []
    for ax in plan.geometry:
        lands = [ax.tap_inputs(t, 0, ax.full) for t in range(ax.kernel_size)]  # never None here
        firsts.append(torch.tensor([found[2] for found in lands if found is not None], device=device))
    return firsts


def gemm_gather(x, w, b, plan: Plan) -> torch.Tensor:
    """``col2im`` without its scatter: one GEMM, ``Z = W^T X``, then every output element sums its own terms in C.

    The GEMM gives every (input position, output channel, tap) product, on
    the weight as stored (rows ``(c_out, tap)``). Output ``o`` then reads
    exactly the taps that reach it (:class:`tconv.torch._native.AxisTable`),
    bias first, in one pass of :class:`tconv.torch._native.Gather` that writes
    the kept window in order: no strided adds, no crop copy, dilation read
    from the table rather than from a zero-filled kernel.

    The C loop needs an eager call that records no gradient; otherwise (and
    where the C kernels are not built, or for 2-byte floats) this computes
    exactly ``col2im``.
    """
    return _gemm_gather(x, w, b, plan, position_major=False)


def gemm_gather_t(x, w, b, plan: Plan) -> torch.Tensor:
    """:func:`gemm_gather` with the GEMM ``Z = X^T W``: input positions as rows, as ``overlap_add`` does it.

    For long kernels on short inputs, where the weight is the large operand
    and is best read as stored.
    """
    return _gemm_gather(x, w, b, plan, position_major=True)


def gemm_gather_applies(plan: Plan) -> bool:
    """Where the C gather (:mod:`tconv.torch._native`) is built; depthwise layers have no GEMM to do."""
    return not plan.depthwise and _native.library() is not None


def _gemm_gather(x, w, b, plan: Plan, position_major: bool) -> torch.Tensor:
    if not (native_ok((x, w, b)) and _native.can_gather(x.dtype, sums=True)) or x.numel() == 0:
        return col2im(x, w, b, plan)
    n = x.shape[0]
    key = (position_major, n, x.dtype)
    calls = plan.__dict__.setdefault("_gemm_gathers", {})
    call = calls.get(key)
    if call is None:
        call = calls[key] = _GemmGather(plan, position_major, n, x.dtype)
    return call(x, w, b)


class _GemmGather:
    """:func:`gemm_gather` for one plan, batch size and dtype, with its tables and shapes worked out once."""

    def __init__(self, plan: Plan, position_major: bool, n: int, dtype: torch.dtype) -> None:
        g = plan.groups
        cin_g, cout_g = plan.in_channels // g, plan.out_channels // g
        self.groups, self.cin_g, self.n, self.position_major = g, cin_g, n, position_major
        kernel, sizes = plan.kernel, plan.input_shape
        taps, positions = math.prod(kernel), math.prod(sizes)
        self.positions = positions
        if position_major:  # Z is (N, G, P, C_out/g * taps)
            channel, tap_unit, position_unit = taps, 1, cout_g * taps
        else:  # Z is (N, G, C_out/g * taps, P)
            channel, tap_unit, position_unit = taps * positions, positions, 1
        axes = []
        for a, ax in enumerate(plan.geometry):
            inner_taps, inner_positions = math.prod(kernel[a + 1:]), math.prod(sizes[a + 1:])
            axes.append(_native.AxisTable.of(ax, tap_unit * inner_taps, position_unit * inner_positions))
        per_group = cout_g * taps * positions
        planes = plane_offsets(n, g, cout_g, (g * per_group, per_group, channel))
        self.gather = _native.Gather(dtype, planes, axes, True, plan.out_channels)
        self.out_shape = (n * plan.out_channels,) + plan.geometry.output_shape
        self.shape = (n, plan.out_channels) + plan.geometry.output_shape

    def gemm(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        n, g, cin_g, positions = self.n, self.groups, self.cin_g, self.positions
        xg = x.reshape(n, g, cin_g, positions)
        if self.position_major:
            if g == 1:
                rows = xg[0, 0].t() if n == 1 else xg[:, 0].transpose(1, 2).reshape(n * positions, cin_g)
                return torch.mm(rows, w.reshape(cin_g, -1))
            return torch.matmul(xg.transpose(2, 3), w.reshape(g, cin_g, -1))
        wg = w.reshape(g, cin_g, -1).transpose(1, 2)
        if g == 1:
            # torch.mm for one image: matmul of a matrix by a batch of one takes a slower batched path
            return torch.mm(wg[0], xg[0, 0]) if n == 1 else torch.matmul(wg[0], xg[:, 0])
        return torch.matmul(wg.unsqueeze(0), xg)

    def __call__(self, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
        z = self.gemm(x, w)
        out = x.new_empty(self.out_shape)
        self.gather(z, out, gather_fill(b, x.dtype))
        return out.view(self.shape)
