"""What the strategies share: when the fast paths may run, the bias, the layout and the landing.

* When: :func:`is_compiling`, :func:`needs_grad`, :func:`plain_ops` (autograd or
  torch.compile must see every op) and :func:`native_ok` (tconv's C loops may run).
* The bias: :func:`add_bias`, and :func:`gather_fill` for the C loops.
* The layout: :func:`is_channels_last`, the one test of a channels-last input;
  :func:`channels_first`, the copy back; :func:`as_2d`, a 1-D layer as 2-D.
* The landing: :func:`land` copies phase results into their strided places in
  the output, two neighbouring phases at a time where that pays;
  :func:`phase_slice` and :func:`tap_reach` say where an output phase lies and
  which of its outputs a tap reaches, from :class:`tconv.AxisGeometry`.
"""
from __future__ import annotations

import math
from typing import Callable, Sequence

import torch
import torch.nn.functional as F

from ...geometry import AxisGeometry, Geometry
from .. import _native
from ._plan import Plan

# ---- when the fast paths may run ----------------------------------------------------------------


def _never_compiling() -> bool:
    return False


#: whether torch.compile is tracing this call (a plain reference: the modules ask on every call)
is_compiling: Callable[[], bool] = getattr(getattr(torch, "compiler", None), "is_compiling", _never_compiling)


def needs_grad(x, w, b) -> bool:
    """Whether autograd records this call."""
    return torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in (x, w, b))


def plain_ops(x, w, b) -> bool:
    """Whether autograd or torch.compile must see every op: then no ``out=`` into a view.

    Autograd refuses ``out=`` on tensors that require grad; Dynamo breaks the
    graph at an ``out=`` into a view.
    """
    return is_compiling() or needs_grad(x, w, b)


def native_ok(tensors) -> bool:
    """Whether tconv's C loops (:mod:`tconv.torch._native`) may compute from these tensors.

    They write through raw pointers, which autograd cannot follow and Dynamo
    cannot trace, so only in eager calls that record no gradient, on the CPU,
    and where the library was built.
    """
    if is_compiling() or _native.library() is None:
        return False
    grad = torch.is_grad_enabled()
    return all(t is None or (t.device.type == "cpu" and not (grad and t.requires_grad)) for t in tensors)


# ---- the bias ----------------------------------------------------------------------------------


def add_bias(y: torch.Tensor, bias: torch.Tensor | None, in_place: bool = False) -> torch.Tensor:
    """``y`` (N, C, *spatial) plus ``bias`` (C,) per channel; ``y`` itself when there is no bias.

    ``in_place`` adds into ``y``: autograd allows it after a convolution (whose
    backward does not need its output), not where ``y`` is a view autograd
    must follow.
    """
    if bias is None:
        return y
    per_channel = bias.view((1, -1) + (1,) * (y.dim() - 2))
    return y.add_(per_channel) if in_place else y + per_channel


def gather_fill(b: torch.Tensor | None, dtype: torch.dtype) -> torch.Tensor | None:
    """The bias as :class:`tconv.torch._native.Gather` reads it: contiguous, of the output's dtype.

    Planes run image-major, so the C loops read it with the channel count as
    its period rather than from a copy per image.
    """
    if b is None:
        return None
    return (b if b.dtype == dtype else b.to(dtype)).contiguous()


# ---- the layout --------------------------------------------------------------------------------

#: the channels-last memory format of a batched 2-D and 3-D tensor
CHANNELS_LAST = {4: torch.channels_last, 5: torch.channels_last_3d}


def is_channels_last(x: torch.Tensor) -> bool:
    """Whether ``x`` (N, C, *spatial) holds channels-last memory, and not also channels-first.

    A tensor with one channel, or one position, is both layouts; it counts as
    channels-first (and an empty tensor is contiguous).
    """
    return x.dim() > 2 and not x.is_contiguous() and x.movedim(1, -1).is_contiguous()


#: bytes per copy in channels_first: a block small enough that both sides stay in this machine's cache
TRANSPOSE_BLOCK_BYTES = 1 << 20


def channels_first(y: torch.Tensor) -> torch.Tensor:
    """``y.contiguous()`` for a channels-last ``y``, as a few cache-sized transposing copies.

    torch's one transposing copy of a large channels-last tensor runs far below
    memory speed, and copying the same positions in blocks that stay in cache
    is faster. So an image larger than :data:`TRANSPOSE_BLOCK_BYTES` is copied
    in blocks of positions of about that size; smaller images, where blocks
    gain nothing, keep torch's one copy. Every element is copied as it is
    (Inf, NaN, signed zeros). Where the C kernels are built
    (:mod:`tconv.torch._native`) and autograd need not see the copy, one tiled
    C transpose does it instead. ``benchmarks/bench_layout.py``
    (``results/layout.md``) times the three.
    """
    n, c = y.shape[0], y.shape[1]
    positions = math.prod(y.shape[2:])
    # few channels: torch's copy (the C transpose lost on a 3-channel image, results/layout.md); the C
    # loop reads y's memory as (N, positions, C)
    if (native_ok((y,)) and _native.can_transpose(y) and c >= 8
            and y.is_contiguous(memory_format=CHANNELS_LAST[y.dim()])):
        return _native.channels_first(y, torch.empty(y.shape, dtype=y.dtype, device=y.device))
    if positions * c * y.element_size() <= TRANSPOSE_BLOCK_BYTES or c == 1:
        return y.contiguous()
    out = torch.empty(y.shape, dtype=y.dtype, device=y.device)
    source = y.movedim(1, -1).reshape(n, positions, c)  # a view: y's memory order
    target = out.view(n, c, positions)
    step = max(1, TRANSPOSE_BLOCK_BYTES // (c * y.element_size()))
    for image in range(n):
        for first in range(0, positions, step):
            target[image, :, first:first + step].copy_(source[image, first:first + step].t())
    return out


def _unit_height(plan: Plan) -> Plan:
    g2 = Geometry.from_sizes(
        (1,) + plan.input_shape, (1,) + plan.kernel, (1,) + plan.stride, (1,) + plan.dilation,
        (0,) + plan.geometry.crop_begin, (0,) + plan.geometry.crop_end, groups=plan.groups,
    )
    flat = Plan(g2, plan.in_channels, plan.out_channels)
    flat.torch_args  # noqa: B018  (worked out here, where it runs eagerly)
    return flat


# torch.compile: the new plan's Python runs eagerly, once per plan
_unit_height_eager = torch.compiler.disable(_unit_height) if hasattr(torch, "compiler") else _unit_height


def as_2d(plan: Plan) -> Plan:
    """A 1-D plan as 2-D with a unit height (channels-last layouts exist only for 2-D and 3-D).

    Kept on ``plan``: a new plan works out its own torch arguments and landing tables.
    """
    flat = plan.__dict__.get("_as_2d")
    if flat is None:
        flat = plan.__dict__["_as_2d"] = _unit_height_eager(plan)
    return flat


# ---- shapes and weights ------------------------------------------------------------------------


def conv_transpose_fn(ndim: int) -> Callable:
    return (F.conv_transpose1d, F.conv_transpose2d, F.conv_transpose3d)[ndim - 1]


def conv_fn(ndim: int) -> Callable:
    return (F.conv1d, F.conv2d, F.conv3d)[ndim - 1]


def spatial_pad(begins: Sequence[int], ends: Sequence[int]) -> list[int]:
    """``F.pad``'s list for these per-axis amounts: it lists the last axis first; negative entries crop."""
    pads: list[int] = []
    for b, e in zip(reversed(begins), reversed(ends)):
        pads += [-b, -e]
    return pads


def window(y: torch.Tensor, crop_begin: Sequence[int], crop_end: Sequence[int]) -> torch.Tensor:
    """Keep ``y[..., crop_begin : size - crop_end]`` per spatial axis (negative: zeros)."""
    if all(c == 0 for c in crop_begin) and all(c == 0 for c in crop_end):
        return y
    return F.pad(y, spatial_pad(crop_begin, crop_end))


def dilate_weight(w: torch.Tensor, plan: Plan) -> torch.Tensor:
    """The weight with ``d-1`` zeros between taps: an undilated kernel of size ``d*(k-1)+1``."""
    if all(d == 1 for d in plan.dilation):
        return w
    wd = w.new_zeros(w.shape[:2] + plan.geometry.dilated_kernel)
    wd[(slice(None), slice(None)) + tuple(slice(None, None, d) for d in plan.dilation)] = w
    return wd


def ravel(index: tuple[int, ...], kernel: tuple[int, ...]) -> int:
    """The flat (C-order) position of a kernel tap."""
    flat = 0
    for i, k in zip(index, kernel):
        flat = flat * k + i
    return flat


def plane_offsets(n: int, g: int, channels: int, strides: tuple[int, int, int]) -> torch.Tensor:
    """Where plane ``(image, group, channel)`` starts, in elements, for :class:`tconv.torch._native.Gather`."""
    return (torch.arange(n).view(-1, 1, 1) * strides[0] + torch.arange(g).view(1, -1, 1) * strides[1]
            + torch.arange(channels).view(1, 1, -1) * strides[2]).reshape(-1)


# ---- the landing -------------------------------------------------------------------------------


def phase_slice(ax: AxisGeometry, phase: int) -> slice:
    """Output phase ``phase`` of :meth:`AxisGeometry.output_phases` (kept outputs ``q*s + phase``) as a slice."""
    return slice(phase, None, ax.stride)


def tap_reach(ax: AxisGeometry, tap: int, offset: int) -> tuple[int, int] | None:
    """The outputs ``[lo, hi)`` of its output phase that ``tap`` reaches, counted within the phase; or None.

    ``offset`` is the tap's from :meth:`AxisGeometry.output_phases`: output
    ``q`` of the phase reads input ``q + offset``. The inputs whose tap lands in
    the kept window are :meth:`AxisGeometry.tap_inputs`' answer.
    """
    found = ax.tap_inputs(tap, *ax.kept)
    return None if found is None else (found[0] - offset, found[1] - offset)


#: the complex dtype whose elements are two of these side by side (float16 has one, but torch calls it experimental)
PAIRED = {torch.float32: torch.complex64, torch.float64: torch.complex128}

#: outputs from this size on land phases in pairs (see land); below it one copy per phase was as fast or faster
PAIR_MIN_BYTES = 4 << 20


def pairs_pay(out: torch.Tensor) -> bool:
    """Whether ``out`` is of a dtype, and large enough, for :func:`land` to pair phases (:data:`PAIR_MIN_BYTES`)."""
    return out.dtype in PAIRED and out.numel() * out.element_size() >= PAIR_MIN_BYTES


def _neighbour_pairs(out: torch.Tensor, dst: tuple, count: int) -> torch.Tensor | None:
    """``out[dst]`` and the elements just right of it (last axis), as one complex view; None if impossible.

    ``dst`` ends in a slice of even step ``s``; element ``q`` of the view is the
    pair ``(out[..., start + q*s], out[..., start + q*s + 1])``. A complex view
    needs every stride but the last, and the offset, to be even.
    """
    start, _, step = dst[-1].indices(out.shape[-1])
    if step % 2 or count == 0:
        return None
    region = out[dst[:-1] + (slice(start, None),)]
    if region.shape[-1] < (count - 1) * step + 2:
        return None
    pairs = region.unfold(-1, 2, step)[..., :count, :]
    if pairs.storage_offset() % 2 or any(st % 2 for st in pairs.stride()[:-1]):
        return None
    return torch.view_as_complex(pairs)


def pairing(out: torch.Tensor, values) -> bool:
    """Whether :func:`land` may pair phases into ``out`` (see there)."""
    return (pairs_pay(out) and not is_compiling()
            and not (torch.is_grad_enabled() and (out.requires_grad or any(v.requires_grad for v in values))))


def land_schedule(out: torch.Tensor, jobs: list[tuple[tuple, torch.Tensor]]) -> tuple[tuple, tuple]:
    """Which of :func:`land`'s jobs go in as pairs, and how: ``(pairs, singles)``.

    ``pairs`` holds ``(first, second, size, stride, offset)``: jobs ``first`` and
    ``second`` land together through the complex view
    ``out.as_strided(size, stride, out.storage_offset() + offset)``; ``singles``
    the jobs copied one by one. It depends only on the shapes, strides and dtypes
    of ``out`` and the values, and on :func:`pairing`.
    """
    pairs: list[tuple] = []
    done: set[int] = set()
    if pairing(out, [v for _, v in jobs]):
        def key(dst, shift=0):
            head = tuple(d.indices(size) if isinstance(d, slice) else d for d, size in zip(dst[:-1], out.shape))
            start, _, step = dst[-1].indices(out.shape[-1])
            return head + ((start + shift, step),)
        where = {key(dst): j for j, (dst, _) in enumerate(jobs)}
        for j, (dst, first) in enumerate(jobs):
            partner = where.get(key(dst, 1))
            if j in done or partner is None or partner in done or first.dtype != out.dtype:
                continue
            second = jobs[partner][1]
            view = _neighbour_pairs(out, dst, first.shape[-1]) if first.shape == second.shape else None
            if view is None or view.shape != first.shape or second.dtype != out.dtype:
                continue
            real = torch.view_as_real(view)
            pairs.append((j, partner, tuple(real.shape), real.stride(), real.storage_offset() - out.storage_offset()))
            done.update((j, partner))
    return tuple(pairs), tuple(j for j in range(len(jobs)) if j not in done)


def run_landing(out: torch.Tensor, dsts, values, schedule: tuple[tuple, tuple]) -> None:
    """Carry out a :func:`land_schedule`: ``out[dsts[j]] = values[j]`` for every job."""
    pairs, singles = schedule
    for first, second, size, stride, offset in pairs:
        view = torch.view_as_complex(out.as_strided(size, stride, out.storage_offset() + offset))
        torch.complex(values[first], values[second], out=view)
    for j in singles:
        out[dsts[j]] = values[j]


def land(out: torch.Tensor, jobs: list[tuple[tuple, torch.Tensor]]) -> None:
    """``out[dst] = value`` for every job; two phases that land side by side go in as one copy.

    Writing a phase into its stride-``s`` place is a copy that torch cannot
    vectorize (every other element). Two phases whose places are neighbours on
    the last axis, the usual case at even strides, are instead written
    together by ``torch.complex(first, second, out=...)`` into a complex view
    of ``out``, which stores each ``(first, second)`` pair whole.
    ``benchmarks/bench_layout.py`` measures the two ways (``results/layout.md``):
    the pairs win on large outputs and lose on small ones, where the complex
    view's set-up costs more than it saves; hence :data:`PAIR_MIN_BYTES`. Values are moved bit for bit (NaN payloads,
    signed zeros, subnormals). Not used when autograd must see the copy, nor
    while torch.compile traces (Dynamo breaks the graph at an ``out=`` into a
    view), nor for dtypes without a complex twin. Callers that land the same
    shapes again keep the schedule (:func:`land_schedule`) and call
    :func:`run_landing` with it.
    """
    run_landing(out, [dst for dst, _ in jobs], [value for _, value in jobs], land_schedule(out, jobs))
