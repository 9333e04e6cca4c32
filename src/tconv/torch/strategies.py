"""The strategies: equivalent ways to compute one transposed convolution in torch.

Each strategy takes a batched input ``x`` (N, C_in, *I), a weight ``w``
(C_in, C_out/groups, *k), an optional bias and a :class:`Plan` (sizes and the
kept window, read from a :class:`tconv.Geometry`), and returns the kept window
of the uncropped output plus bias. All are written with differentiable torch
ops, so autograd (and ``torch.compile``) see ordinary torch graphs; in
inference, where the C kernels of :mod:`tconv.torch._native` are built, the
phase landing and the channels-last conversion run as C loops instead (the
same values, bit for bit), and ``gemm_gather`` needs them.

``native``
    ``F.conv_transpose*d`` on the input as given (NCHW for most callers).
``native_bias_after``
    the same op without the bias, then the bias added in place. oneDNN adds
    a bias in a slow separate pass when it runs a grouped transposed
    convolution as a convolution's backward pass (few channels per group,
    depthwise included), so adding it afterwards is faster there
    (``benchmarks/bench_bias.py``, ``results/bias.md``). Only for
    ``groups > 1``: with one group oneDNN fuses the bias.
``channels_last``
    the same op on a channels-last copy (oneDNN's fast layout on CPU); the
    result is returned in the caller's memory format (an input that is both
    layouts, with one channel or every spatial size 1, counts as NCHW). torch's
    own 3-D layer returns NCDHW for channels-last input wherever it takes its
    slow path (batch 1 with a small kernel, for example), so there the
    layouts, not the values, differ. For 3-D inference in float32 it calls oneDNN directly,
    since torch's own 3-D kernel does not.
``gemm_shuffle``
    non-overlapping kernels (dilated kernel <= stride on every axis, e.g.
    k == s): one GEMM ``W^T X`` followed by a pixel shuffle.
``phase``
    the sub-pixel (phase) decomposition: the output positions ``q*s + r``
    of phase ``r`` are a stride-1 correlation of the *undilated* input with
    the phase sub-kernel ``w[r::s]``. The prod(s) phase convolutions run as
    one grouped stride-1 ``F.conv*d`` (phase kernels stacked along the output
    channels), then the phases are interleaved.
``phase_channels_last``
    the same, with the stride-1 convolution run in the channels-last layout
    (1-D as 2-D with a unit height); the interleave returns the usual layout.
``col2im``
    the GEMM ``W^T X`` (all taps for every input position), then the columns
    are summed into place: ``F.fold`` for 1-D/2-D, ``index_add`` for N-D.
``gemm_gather``
    ``col2im`` without its scatter: the GEMM ``W^T X`` on the weight as
    stored, then one pass of a C loop (:mod:`tconv.torch._native`) in which
    every kept output element sums exactly the taps that reach it, bias
    first, written in order. Only where the C kernels are built; autograd
    and ``torch.compile`` get ``col2im`` itself.
``gemm_gather_t``
    the same with the GEMM ``X^T W`` (input positions as rows), as
    ``overlap_add`` does it for long kernels on short inputs.
``kn2row``
    the phases again, GEMM first: one GEMM gives every tap's product with the
    input (``W_t^T X``), then each output phase sums its taps' shifted planes
    in a contiguous buffer and lands in its strided place.
``overlap_add``
    1-D only: the GEMM ``X^T W`` (input positions as rows, the weight read
    as stored), then each block of ``s`` taps is added, shifted, into place.
    For long kernels on short inputs (vocoders' k16 s8) the GEMM this way
    round beats both torch's kernel and ``W^T X``.
``phase_rows``
    1-D only: the GEMM ``W^T X`` on the weight as stored (one row per
    ``(c_out, tap)``), each output phase summed from its taps' shifted rows,
    and stride-2 phases interleaved in pairs: for long sequences at small
    strides (vocoders' k4 s2 layers).
``shifted``
    the phases again, by GEMMs that write them channel-major, as NCHW wants:
    the padded input is flattened to ``(C_in, positions)``, so a shift of the
    input is a column offset and every tap is one GEMM of a plain view,
    accumulated in place (``addmm_``) into its phases' rows of one buffer;
    phases that read the same shift share a taller GEMM. One strided copy per
    phase (bias added on the way) interleaves them. The plan is
    :func:`tconv.kernels.phase.shifted_plan`, the NumPy engine's, transposed.
``depthwise``
    one input channel per group, by phases: each output phase sums a few
    shifted ``x * w[tap]`` (elementwise, per channel) in a contiguous buffer,
    then lands in its strided place (no GEMM, no zero-insertion).
"""
from __future__ import annotations

import functools
import itertools
import math
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from ..geometry import Geometry
from ..kernels import phase as _numpy_phase
from . import _native

__all__ = ["Plan", "STRATEGIES", "bind", "eligible", "is_compiling", "needs_grad", "onednn_3d_layer", "plain_ops", "run"]


class _memo:
    """``functools.cached_property`` without its lock.

    Before Python 3.12 ``cached_property`` takes an ``RLock`` on first use,
    and torch.compile cannot trace a lock: it broke the graph there and ran
    the whole strategy eagerly. A Plan is immutable, so computing a value
    twice in a race is harmless.
    """

    def __init__(self, fn: Callable) -> None:
        self.fn, self.name, self.__doc__ = fn, fn.__name__, fn.__doc__

    def __get__(self, obj, owner=None):
        if obj is None:
            return self
        value = obj.__dict__[self.name] = self.fn(obj)  # later reads find the instance attribute
        return value


@dataclass(frozen=True)
class Plan:
    """What every strategy needs, all taken from one :class:`tconv.Geometry`."""

    geometry: Geometry
    in_channels: int
    out_channels: int

    # Cached: the modules' fast path reads these on every call, and a Plan never changes.
    @_memo
    def ndim(self) -> int:
        return self.geometry.ndim

    @_memo
    def groups(self) -> int:
        return self.geometry.groups

    @_memo
    def stride(self) -> tuple[int, ...]:
        return self.geometry.stride

    @_memo
    def dilation(self) -> tuple[int, ...]:
        return self.geometry.dilation

    @_memo
    def kernel(self) -> tuple[int, ...]:
        return self.geometry.kernel_size

    @_memo
    def input_shape(self) -> tuple[int, ...]:
        return self.geometry.input_shape

    @_memo
    def torch_args(self) -> tuple[tuple[int, ...], tuple[int, ...]] | None:
        """(padding, output_padding) when F.conv_transpose keeps exactly this window, else None."""
        padding, output_padding = [], []
        for ax in self.geometry:
            op = ax.crop_begin - ax.crop_end
            if ax.crop_begin < 0 or not 0 <= op < max(ax.stride, ax.dilation):
                return None
            padding.append(ax.crop_begin)
            output_padding.append(op)
        return tuple(padding), tuple(output_padding)

    def flops(self, batch: int) -> int:
        """Multiply-adds times two: ``2 * N * C_in * prod(I) * C_out/groups * prod(k)``."""
        return 2 * batch * self.in_channels * math.prod(self.input_shape) * (self.out_channels // self.groups) * math.prod(self.kernel)

    @property
    def non_overlapping(self) -> bool:
        return all(ax.dilated_kernel <= ax.stride for ax in self.geometry)


def _spatial_pad(begins, ends) -> list[int]:
    # F.pad lists the last axis first; negative entries crop.
    pads: list[int] = []
    for b, e in zip(reversed(begins), reversed(ends)):
        pads += [-b, -e]
    return pads


def _window(y: torch.Tensor, crop_begin, crop_end) -> torch.Tensor:
    """Keep ``y[..., crop_begin : size - crop_end]`` per spatial axis (negative: zeros)."""
    if all(c == 0 for c in crop_begin) and all(c == 0 for c in crop_end):
        return y
    return F.pad(y, _spatial_pad(crop_begin, crop_end))


def _add_bias(y: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    if bias is None:
        return y
    return y + bias.view((1, -1) + (1,) * (y.dim() - 2))


def _conv_transpose_fn(ndim: int) -> Callable:
    return (F.conv_transpose1d, F.conv_transpose2d, F.conv_transpose3d)[ndim - 1]


def _conv_fn(ndim: int) -> Callable:
    return (F.conv1d, F.conv2d, F.conv3d)[ndim - 1]


def _native_core(x, w, b, plan: Plan) -> torch.Tensor:
    fn = _conv_transpose_fn(plan.ndim)
    if plan.torch_args is not None:
        padding, output_padding = plan.torch_args
        return fn(x, w, b, plan.stride, padding, output_padding, plan.groups, plan.dilation)
    # A window torch cannot express: the symmetric part as padding, the rest sliced (or zero-padded).
    g = plan.geometry
    padding = tuple(max(0, min(ax.crop_begin, ax.crop_end)) for ax in g)
    y = fn(x, w, None, plan.stride, padding, 0, plan.groups, plan.dilation)
    y = _window(y, [c - p for c, p in zip(g.crop_begin, padding)], [c - p for c, p in zip(g.crop_end, padding)])
    return _add_bias(y, b)


def native(x, w, b, plan: Plan) -> torch.Tensor:
    return _native_core(x, w, b, plan)


def _add_bias_(y: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """``y += bias`` per channel, in place (autograd allows it: a convolution's backward does not need its output)."""
    return y if bias is None else y.add_(bias.view((1, -1) + (1,) * (y.dim() - 2)))


def native_bias_after(x, w, b, plan: Plan) -> torch.Tensor:
    """torch's kernel without the bias, then the bias added in place."""
    return _add_bias_(_native_core(x, w, None, plan), b)


_CHANNELS_LAST = {4: torch.channels_last, 5: torch.channels_last_3d}


def _as_2d(plan: Plan) -> Plan:
    """A 1-D plan as 2-D with a unit height (channels-last layouts exist only for 2-D and 3-D)."""
    g2 = Geometry.from_sizes(
        (1,) + plan.input_shape, (1,) + plan.kernel, (1,) + plan.stride, (1,) + plan.dilation,
        (0,) + plan.geometry.crop_begin, (0,) + plan.geometry.crop_end, groups=plan.groups,
    )
    return Plan(g2, plan.in_channels, plan.out_channels)


def _is_channels_last(x: torch.Tensor) -> bool:
    fmt = _CHANNELS_LAST.get(x.dim())
    return fmt is not None and x.is_contiguous(memory_format=fmt) and not x.is_contiguous()


#: bytes per copy in _channels_first: a block small enough that both sides stay in this machine's cache
TRANSPOSE_BLOCK_BYTES = 1 << 20


def _channels_first(y: torch.Tensor) -> torch.Tensor:
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
    # few channels: torch's copy (the C transpose measured 0.75x on a 3-channel image, results/layout.md)
    if (_native_ok((y,)) and _native.can_transpose(y) and c >= 8
            and y.is_contiguous(memory_format=_CHANNELS_LAST[y.dim()])):
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


def _onednn_3d(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None, plan: Plan) -> torch.Tensor | None:
    """oneDNN's transposed convolution of a channels-last 3-D ``x``, bias added after; None where it does not apply.

    torch 2.13 does not send most 3-D transposed convolutions to oneDNN, even
    on channels-last input. oneDNN's own, called through
    ``torch.ops.mkldnn._convolution_transpose_pointwise`` (the op torch's
    inductor compiles these layers to), is faster than torch's 3-D kernel, on
    channels-last input and with the conversions from and back to NCDHW
    (``benchmarks/bench_torch.py``: the 3-D layers in ``results/torch.md``'s
    channels-last table, and ``results/torch-deterministic.md``, where the rule
    sends the 3-D decoder to ``channels_last``). That op has no
    autograd formula, and it is float32 on CPU only; under ``torch.compile``
    the usual path runs. The bias is added afterwards: oneDNN's own bias pass
    is slow on some 3-D layers (see :func:`native_bias_after`).
    """
    # is_compiling first: torch.compile cannot trace the availability check behind _pointwise_transpose
    if (is_compiling() or plan.ndim != 3 or not onednn_3d_layer(plan) or x.dtype != torch.float32
            or w.dtype != torch.float32 or x.device.type != "cpu"
            or needs_grad(x, w, b)):
        return None
    op = _pointwise_transpose()
    padding, output_padding = plan.torch_args
    try:
        y = op(x, w, None, list(padding), list(output_padding), list(plan.stride), list(plan.dilation), plan.groups,
               "none", [], "")
    except (RuntimeError, TypeError):  # a layer oneDNN has no primitive for, or a torch whose private op changed
        return None
    return _add_bias_(y, b)


def onednn_3d_layer(plan: Plan) -> bool:
    """Whether ``channels_last`` can hand this layer to oneDNN directly (float32 inference on CPU, see _onednn_3d)."""
    return (plan.ndim == 3 and _pointwise_transpose() is not None and plan.torch_args is not None
            # torch allows output_padding up to the dilation; oneDNN refuses it from the stride on
            and all(o < s for o, s in zip(plan.torch_args[1], plan.stride)))


@functools.lru_cache(maxsize=None)
def _pointwise_transpose() -> Callable | None:
    if not torch.backends.mkldnn.is_available():
        return None
    try:
        return torch.ops.mkldnn._convolution_transpose_pointwise
    except (AttributeError, RuntimeError):
        return None


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


def _native_ok(tensors) -> bool:
    """Whether tconv's C loops (:mod:`tconv.torch._native`) may compute from these tensors.

    They write through raw pointers, which autograd cannot follow and Dynamo
    cannot trace, so only in eager calls that record no gradient, on the CPU,
    and where the library was built.
    """
    if is_compiling() or _native.library() is None:
        return False
    grad = torch.is_grad_enabled()
    return all(t is None or (t.device.type == "cpu" and not (grad and t.requires_grad)) for t in tensors)


def channels_last(x, w, b, plan: Plan) -> torch.Tensor:
    if plan.ndim == 1:
        return channels_last(x.unsqueeze(2), w.unsqueeze(2), b, _as_2d(plan)).squeeze(2).contiguous()
    fmt = _CHANNELS_LAST[x.dim()]
    was_channels_last = _is_channels_last(x)
    x = x.contiguous(memory_format=fmt)
    y = _onednn_3d(x, w, b, plan)
    if y is None:
        y = _native_core(x, w.contiguous(memory_format=fmt), b, plan)
    return y.contiguous(memory_format=fmt) if was_channels_last else _channels_first(y)


def _dilate_weight(w: torch.Tensor, plan: Plan) -> torch.Tensor:
    """The weight with ``d-1`` zeros between taps: an undilated kernel of size ``d*(k-1)+1``."""
    if all(d == 1 for d in plan.dilation):
        return w
    wd = w.new_zeros(w.shape[:2] + plan.geometry.dilated_kernel)
    wd[(slice(None), slice(None)) + tuple(slice(None, None, d) for d in plan.dilation)] = w
    return wd


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


def _phase_bias(b: torch.Tensor | None, plan: Plan) -> torch.Tensor | None:
    """The bias for channels ordered (group, phase, c_out): each phase's outputs get the same bias."""
    if b is None:
        return None
    g = plan.groups
    return b.view(g, 1, -1).expand(g, math.prod(plan.stride), b.shape[0] // g).reshape(-1)


#: the complex dtype whose elements are two of these side by side (float16 has one, but torch calls it experimental)
_PAIRED = {torch.float32: torch.complex64, torch.float64: torch.complex128}

#: outputs from this size on land phases in pairs (see _land); below it one copy per phase was as fast or faster
PAIR_MIN_BYTES = 4 << 20


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


def _pairing(out: torch.Tensor, values) -> bool:
    """Whether :func:`_land` may pair phases into ``out`` (see there)."""
    return (out.dtype in _PAIRED and out.numel() * out.element_size() >= PAIR_MIN_BYTES and not is_compiling()
            and not (torch.is_grad_enabled() and (out.requires_grad or any(v.requires_grad for v in values))))


def _land_schedule(out: torch.Tensor, jobs: list[tuple[tuple, torch.Tensor]]) -> tuple[tuple, tuple]:
    """Which of :func:`_land`'s jobs go in as pairs, and how: ``(pairs, singles)``.

    ``pairs`` holds ``(first, second, size, stride, offset)``: jobs ``first`` and
    ``second`` land together through the complex view
    ``out.as_strided(size, stride, out.storage_offset() + offset)``; ``singles``
    the jobs copied one by one. It depends only on the shapes, strides and dtypes
    of ``out`` and the values, and on :func:`_pairing`.
    """
    pairs, done = [], set()
    if _pairing(out, [v for _, v in jobs]):
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


def _run_landing(out: torch.Tensor, dsts, values, schedule: tuple[tuple, tuple]) -> None:
    """Carry out a :func:`_land_schedule`: ``out[dsts[j]] = values[j]`` for every job."""
    pairs, singles = schedule
    for first, second, size, stride, offset in pairs:
        view = torch.view_as_complex(out.as_strided(size, stride, out.storage_offset() + offset))
        torch.complex(values[first], values[second], out=view)
    for j in singles:
        out[dsts[j]] = values[j]


def _land(out: torch.Tensor, jobs: list[tuple[tuple, torch.Tensor]]) -> None:
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
    view), nor for dtypes without a complex twin.
    """
    _run_landing(out, [dst for dst, _ in jobs], [value for _, value in jobs], _land_schedule(out, jobs))


def _phase_jobs(plan: Plan, counts: tuple[int, ...]) -> tuple[list[tuple[tuple, tuple]], bool]:
    """For :func:`_place_phases`: ``(dst, src)`` per phase that keeps anything, and whether some kept
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
    fill = fill or len(jobs) < math.prod([min(ax.stride, ax.output_size) for ax in geo])
    return jobs, fill


def _place_phases(y: torch.Tensor, plan: Plan, b: torch.Tensor | None) -> torch.Tensor:
    """Copy phase results into the kept output, one strided copy per phase (or per pair, see :func:`_land`).

    ``y`` is (N, G, *s, C_out/G, *Q), bias included: phase ``r`` holds the full
    positions ``q*s + r``. Kept output ``o`` is full position ``o + crop_begin``,
    so each phase lands on output phase ``(r - crop_begin) mod s``. Only kept
    elements are copied (no full-size intermediate, no crop copy); positions no
    phase reaches (a negative crop) hold the bias, or zero.

    The jobs and the landing schedule depend only on the plan and ``y``'s
    shape, strides and dtype, so they are worked out once and kept on the plan:
    on small and mid-sized layers that Python was a visible share of the call.
    """
    n, g, nd = y.shape[0], plan.groups, plan.ndim
    cout_g = plan.out_channels // g
    if _native_ok((y, b)) and _native.can_gather(y.dtype, sums=False):
        return _place_phases_native(y, plan, b)
    out = y.new_empty((n, g, cout_g) + plan.geometry.output_shape)
    pairing = _pairing(out, [y])
    key = (tuple(y.shape), y.stride(), y.dtype, pairing)
    cache = plan.__dict__.setdefault("_landings", {})
    entry = cache.get(key)
    values = None
    if entry is None:
        jobs, fill = _phase_jobs(plan, tuple(y.shape[y.dim() - nd:]))
        dsts = [dst for dst, _ in jobs]
        values = [y[src] for _, src in jobs]
        entry = cache[key] = (dsts, [src for _, src in jobs], fill, _land_schedule(out, list(zip(dsts, values))))
    dsts, srcs, fill, schedule = entry
    if fill:
        if b is None:
            out.zero_()
        else:
            out.copy_(b.view((1, g, cout_g) + (1,) * nd).expand(out.shape))
    _run_landing(out, dsts, values if values is not None else [y[src] for src in srcs], schedule)
    return out.view((n, plan.out_channels) + plan.geometry.output_shape)


def _plane_offsets(n: int, g: int, channels: int, strides: tuple[int, int, int]) -> torch.Tensor:
    """Where plane ``(image, group, channel)`` starts, in elements, for :class:`tconv.torch._native.Gather`."""
    return (torch.arange(n).view(-1, 1, 1) * strides[0] + torch.arange(g).view(1, -1, 1) * strides[1]
            + torch.arange(channels).view(1, 1, -1) * strides[2]).reshape(-1)


def _gather_fill(b: torch.Tensor | None, dtype: torch.dtype) -> torch.Tensor | None:
    """The bias as :class:`tconv.torch._native.Gather` reads it: contiguous, of the output's dtype.

    Planes run image-major, so the C loops read it with the channel count as
    its period rather than from a copy per image.
    """
    if b is None:
        return None
    return (b if b.dtype == dtype else b.to(dtype)).contiguous()


def _place_phases_native(y: torch.Tensor, plan: Plan, b: torch.Tensor | None) -> torch.Tensor:
    """:func:`_place_phases` by one C gather: each output row is read from its phases in one pass.

    Output ``o`` of an axis takes phase ``p mod s`` at ``p // s`` (``p = o +
    crop_begin``); positions no phase reaches get the bias, or zero. Values are
    copied bit for bit. The tables depend on ``y``'s shape and strides only,
    and are kept on the plan.
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
        planes = _plane_offsets(n, g, cout_g, (st[0], st[1], st[2 + nd]))
        entry = cache[key] = (_native.Gather(y.dtype, planes, axes, False, plan.out_channels), fills)
    landing, fills = entry
    out = y.new_empty((n * plan.out_channels,) + plan.geometry.output_shape)
    if out.numel():
        landing(y, out, _gather_fill(b, y.dtype) if fills else None)
    return out.view((n, plan.out_channels) + plan.geometry.output_shape)


def gemm_shuffle(x, w, b, plan: Plan) -> torch.Tensor:
    """Non-overlapping kernels: every output element gets exactly one tap, so a GEMM and a shuffle suffice.

    The GEMM runs on the weight as stored; each phase (kernel tap) is a block of
    whole spatial rows that one strided copy puts in place.
    """
    wd = _dilate_weight(w, plan)
    # Pad each kernel axis to the stride: each input element then owns an s-sized output block.
    grow = [s - k for s, k in zip(plan.stride, plan.geometry.dilated_kernel)]
    if any(grow):
        wd = F.pad(wd, _spatial_pad([0] * plan.ndim, [-e for e in grow]))
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
    return _place_phases(y, plan, b)


def phase(x, w, b, plan: Plan, memory_format: torch.memory_format | None = None) -> torch.Tensor:
    """Sub-pixel decomposition: prod(s) stride-1 correlations of the undilated input, interleaved."""
    if memory_format is not None and plan.ndim == 1:
        return phase(x.unsqueeze(2), w.unsqueeze(2), b, _as_2d(plan), torch.channels_last).squeeze(2)
    nd, g = plan.ndim, plan.groups
    wd = _dilate_weight(w, plan)
    K = plan.geometry.dilated_kernel
    taps = tuple(-(-k // s) for k, s in zip(K, plan.stride))  # taps per phase, ceil(K/s)
    grow = [t * s - k for t, s, k in zip(taps, plan.stride, K)]
    if any(grow):
        wd = F.pad(wd, _spatial_pad([0] * nd, [-e for e in grow]))
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
    if memory_format is not None:
        memory_format = _CHANNELS_LAST[x.dim()]
        x, wc = x.contiguous(memory_format=memory_format), wc.contiguous(memory_format=memory_format)
    y = _conv_fn(nd)(x, wc, _phase_bias(b, plan), 1, [t - 1 for t in taps], 1, g)
    # unflatten splits the channel axis in place for either memory format (no copy)
    y = y.unflatten(1, (g,) + plan.stride + (cout_g,))
    return _place_phases(y, plan, b)


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
    y = _window(y, geo.crop_begin, geo.crop_end)
    return _add_bias(y, b)


def gemm_gather(x, w, b, plan: Plan, position_major: bool = False) -> torch.Tensor:
    """``col2im`` without its scatter: one GEMM, then every output element sums its own terms in C.

    The GEMM gives every (input position, output channel, tap) product, ``Z =
    W^T X`` on the weight as stored (rows ``(c_out, tap)``), or with
    ``position_major`` ``Z = X^T W`` (rows are input positions; for long
    kernels on short inputs, see :func:`overlap_add`). Output ``o`` then reads
    exactly the taps that reach it (:class:`tconv.torch._native.AxisTable`),
    bias first, in one pass of :class:`tconv.torch._native.Gather` that writes
    the kept window in order: no strided adds, no crop copy, dilation read
    from the table rather than from a zero-filled kernel.

    The C loop needs an eager call that records no gradient; otherwise (and
    where the C kernels are not built, or for 2-byte floats) this computes
    exactly ``col2im``.
    """
    if not (_native_ok((x, w, b)) and _native.can_gather(x.dtype, sums=True)) or x.numel() == 0:
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
        planes = _plane_offsets(n, g, cout_g, (g * per_group, per_group, channel))
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
        self.gather(z, out, _gather_fill(b, x.dtype))
        return out.view(self.shape)


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
    for a, ax, scale in parts:
        tap = torch.arange(ax.kernel_size, device=device) * ax.dilation
        pos = torch.arange(ax.input_size, device=device) * ax.stride
        shape_t = [1] * (2 * nd)
        shape_t[a] = -1
        shape_p = [1] * (2 * nd)
        shape_p[nd + a] = -1
        index = index + (tap.view(shape_t) + pos.view(shape_p)) * scale
    return index.reshape(-1)


def _ravel(index: tuple[int, ...], kernel: tuple[int, ...]) -> int:
    """The flat (C-order) position of a kernel tap."""
    flat = 0
    for i, k in zip(index, kernel):
        flat = flat * k + i
    return flat


def _phase_terms(plan: Plan) -> list[tuple]:
    """For :func:`_sum_phases`, worked out once per plan: per combination of phases,
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
    nd, sizes = plan.ndim, plan.input_shape
    combos = []
    for combo in itertools.product(*(ax.output_phases() for ax in plan.geometry)):
        counts = tuple(p[1] for p in combo)
        terms = []
        for taps in itertools.product(*(p[2] for p in combo)):
            offsets = [t[1] for t in taps]
            lo = [max(0, -o) for o in offsets]
            hi = [min(q, i - o) for q, i, o in zip(counts, sizes, offsets)]
            if any(h <= l for l, h in zip(lo, hi)):
                continue  # this tap reaches no kept output of the phase
            partial = not (lo == [0] * nd and list(hi) == list(counts))
            source = tuple(slice(l + o, h + o) for l, h, o in zip(lo, hi, offsets))
            terms.append((partial, tuple(t[0] for t in taps), tuple(slice(l, h) for l, h in zip(lo, hi)), source))
        terms.sort(key=lambda term: term[0])
        dst = tuple(slice(p[0], None, ax.stride) for p, ax in zip(combo, plan.geometry))
        combos.append((counts, terms, dst, combo[:-1]))
    plan.__dict__["_phase_terms"] = combos
    return combos


def _sum_phases(out: torch.Tensor, plan: Plan, bias: torch.Tensor | None, first: Callable, add: Callable) -> torch.Tensor:
    """Fill ``out`` (..., *kept) phase by phase: each phase sums its taps' terms, then lands once.

    Output phase ``r`` (positions ``q*s + r``) is a stride-1 sum over the taps
    that reach it (see :meth:`AxisGeometry.output_phases`), each term read from a shifted
    slice of an input-sized tensor. The sum is kept in a contiguous buffer
    (elementwise ops on contiguous memory vectorize; on the stride-``s`` output
    view they do not) and copied into its strided place once. Which taps each
    phase sums, and where, is worked out once per plan (:func:`_phase_terms`).

    ``first(taps, source)`` returns a new tensor (bias included) for a tap that
    covers the whole phase; ``add(acc, taps, source)`` adds a term into ``acc``
    in place. ``taps`` holds the kernel index per axis, ``source`` the spatial
    slices of the input-sized tensor.
    """
    nd = plan.ndim
    outer = tuple(out.shape[: out.dim() - nd])  # batch and channel axes
    lead = (slice(None),) * len(outer)
    # The last axis's phases of one row of combos land together when _land can pair them; otherwise
    # each lands at once, while its buffer is still in cache.
    pending, row = [], None
    together = out.dtype in _PAIRED and out.numel() * out.element_size() >= PAIR_MIN_BYTES
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
            _land(out, pending)
            pending, row = [], combo_row
        pending.append((lead + dst, acc))
    _land(out, pending)
    return out


def depthwise(x, w, b, plan: Plan) -> torch.Tensor:
    """One input channel per group, by phases: each output phase is a few shifted ``x * w[tap]``.

    Each term is a shifted slice of the undilated input times one weight per
    channel, summed per phase by :func:`_sum_phases`. No GEMM (depthwise has
    nothing to reduce over channels), no zero-insertion, no multiply by zero.
    """
    if _native_ok((x, w, b)) and _native.can_gather(x.dtype, sums=True) and x.numel() and w.dtype == x.dtype:
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

    return _sum_phases(x.new_empty((n, c) + plan.geometry.output_shape), plan, bias, first, add)


def _depthwise_native(x, w, b, plan: Plan) -> torch.Tensor:
    """:func:`depthwise` in one C pass (:func:`tconv.torch._native.depthwise`): each kept output
    element sums its taps' ``x * w`` (bias first), read straight from the input; written in order.

    Channels-last input takes the channels-last loop (:class:`tconv._native.DepthwiseLast`, the
    NumPy engine's): it returns channels-last memory, as torch's kernel does for such input.
    """
    if _channels_last(x) and _native.can_depthwise_last(x.dtype):
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
    _native.depthwise(x, w, out, planes, weights, axes, units, _gather_fill(b, x.dtype), c)
    return out.view((n, c) + plan.geometry.output_shape)


def _channels_last(x: torch.Tensor) -> bool:
    """Whether ``x`` (N, C, *spatial) holds channels-last memory, and not also channels-first
    (one channel, or one position, is both)."""
    return x.dim() > 2 and not x.is_contiguous() and x.movedim(1, -1).is_contiguous()


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
    return _native.depthwise_last(x_last, w_last, out, _gather_fill(b, x.dtype), axes).movedim(-1, 1)


def kn2row(x, w, b, plan: Plan) -> torch.Tensor:
    """Phases by GEMM first: ``W_t^T X`` for every tap in one GEMM, then per-phase shifted sums.

    The product of the input with every tap's ``C_in x C_out`` matrix is one
    GEMM on the weight as stored; each output phase then adds its taps' planes, shifted,
    in a contiguous buffer (:func:`_sum_phases`). Unlike ``col2im`` nothing is
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
        return planes[flat + (_ravel(index, plan.kernel), slice(None)) + source]

    def first(index, source):
        p = plane(index, source)
        return p.clone() if bias is None else p + bias

    def add(acc, index, source):
        acc.add_(plane(index, source))

    # groups ride along as their own axis: (N, G, C_out/G, *kept) is (N, C_out, *kept) in memory
    out = _sum_phases(x.new_empty((n, g, cout_g) + plan.geometry.output_shape), plan, bias, first, add)
    return out.view((n, plan.out_channels) + plan.geometry.output_shape)


def overlap_add(x, w, b, plan: Plan) -> torch.Tensor:
    """1-D: the GEMM ``X^T W`` on the weight as stored, then each tap block added into place.

    Row ``i`` of ``Z = X^T W`` (input position ``i``, every ``(c_out, tap)``)
    is what input ``i`` stamps into the output. With the kernel split into
    ``M`` blocks of ``s`` taps (``tap = m*s + r``), output ``q*s + r`` is
    ``sum_m Z[q - m, c, m, r]``: ``M`` shifted copies of ``Z``'s blocks, each
    a copy whose inner run is ``s`` contiguous elements. Unlike ``col2im`` (the
    GEMM the other way round, ``W^T X``) the GEMM's big operand is read as
    stored and its result is position-major: for HiFi-GAN's k16 s8 layer
    (512->256 channels, an 8 MB weight, 64 input positions) ``X^T W`` took
    about three quarters of the time of ``W^T X`` on this machine, and about
    half of torch's whole layer (``benchmarks/bench_vocoder.py``, second
    table of ``results/vocoder.md``).
    Only 1-D: with more axes every output element gets ``prod(M)`` terms, and
    ``kn2row``/``phase`` do better.
    """
    n, g = x.shape[0], plan.groups
    ax = plan.geometry[0]
    s, length = ax.stride, ax.input_size
    wd = _dilate_weight(w, plan)
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
    if ax.crop_begin == 0 and ax.output_size == count * s:  # the buffer is the output: no copy
        return _add_bias_(y, b)
    y = y[:, :, ax.crop_begin:ax.crop_begin + ax.output_size]
    return y.contiguous() if b is None else y + b.view(1, -1, 1)


def _sum_rows(z: torch.Tensor, count: int, taps: list[tuple[int, int]], acc: torch.Tensor, plain: bool) -> torch.Tensor:
    """``acc[..., q] = sum over (tap, offset) of z[..., tap, q + offset]`` for ``q < count``; returns ``acc``.

    ``z`` is (..., taps, L): one row per tap. The two widest terms go in by one
    out-of-place add over the positions both reach (each other term is one more
    pass); positions no term reaches are zeroed. With ``plain`` (autograd or
    torch.compile must see every op) the sum starts from zeros and adds each term
    in place.
    """
    length = z.shape[-1]
    reach = [(tap, max(0, -off), min(count, length - off), off) for tap, off in taps]
    # (width, tap, lo, hi, offset) for each tap reaching some q, widest first
    spans = sorted(((hi - lo, tap, lo, hi, off) for tap, lo, hi, off in reach if hi > lo), reverse=True)
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
    pairs only from 4 MiB. For vocoders' long k4 s2 layers, where
    ``overlap_add``'s transposing adds run two floats at a time.
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
    sums = [_sum_rows(z, count, reach, x.new_empty((n, g, cout_g, count)), plain) for _, count, reach in phases]
    out = x.new_empty((n, g, cout_g, ax.output_size))  # every phase lands (one with no tap as zeros)
    if ax.stride == 2 and len(phases) == 2 and ax.output_size % 2 == 0 and out.dtype in _PAIRED and not plain:
        # an even output length: every row of `out` is whole pairs (2j, 2j+1), a complex view
        view = torch.view_as_complex(out.unflatten(-1, (ax.output_size // 2, 2)))
        torch.complex(sums[0], sums[1], out=view)
    else:
        for (r, _, _), total in zip(phases, sums):
            out[..., r::ax.stride] = total
    out = out.view(n, plan.out_channels, ax.output_size)
    if b is None:
        return out
    return out + b.view(1, -1, 1) if plain else out.add_(b.view(1, -1, 1))


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
        flat = [_ravel(tap, plan.kernel) for tap in taps]
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


#: name -> (function, eligibility test on a Plan)
STRATEGIES: dict[str, tuple[Callable, Callable[[Plan], bool]]] = {
    "native": (native, lambda plan: True),
    # groups=1: oneDNN fused the bias in every layer measured, so only noise could make this win there
    "native_bias_after": (native_bias_after, lambda plan: plan.groups > 1),
    "channels_last": (channels_last, lambda plan: True),
    "gemm_shuffle": (gemm_shuffle, lambda plan: plan.non_overlapping),
    "phase": (phase, lambda plan: True),
    "phase_channels_last": (lambda x, w, b, plan: phase(x, w, b, plan, torch.channels_last), lambda plan: True),
    "col2im": (col2im, lambda plan: True),
    # the C gather (tconv.torch._native), where it is built; depthwise has no GEMM to do
    "gemm_gather": (gemm_gather, lambda plan: plan.in_channels != plan.groups and _native.library() is not None),
    "gemm_gather_t": (lambda x, w, b, plan: gemm_gather(x, w, b, plan, position_major=True),
                      lambda plan: plan.in_channels != plan.groups and _native.library() is not None),
    "depthwise": (depthwise, lambda plan: plan.in_channels == plan.groups),
    "kn2row": (kn2row, lambda plan: True),
    # the window must lie inside the full output (no negative crop, no output_padding past it)
    "overlap_add": (overlap_add, lambda plan: plan.ndim == 1 and plan.in_channels != plan.groups
                    and plan.geometry[0].crop_begin >= 0 and plan.geometry[0].crop_end >= 0),
    "phase_rows": (phase_rows, lambda plan: plan.ndim == 1 and plan.in_channels != plan.groups),
    # the window must lie inside the full output (no negative crop); depthwise has no GEMM to do
    "shifted": (shifted, lambda plan: plan.in_channels != plan.groups
                and all(ax.crop_begin >= 0 and ax.crop_end >= 0 for ax in plan.geometry)),
}


def eligible(plan: Plan) -> list[str]:
    """The strategies that can compute ``plan``, in a fixed order."""
    return [name for name, (_, ok) in STRATEGIES.items() if ok(plan)]


def _untracked(x, w, b):
    """``x, w, b`` detached when autograd is off: a rewrite must not see a Parameter's requires_grad then.

    Under ``torch.no_grad()`` a Parameter still says ``requires_grad``, and
    ``torch.matmul`` of a 2-D weight that requires grad with a batch of
    inputs copies the batch into one tall matrix and back (its folding path,
    kept for autograd) instead of running one batched GEMM: ``gemm_gather`` on
    the 3-D U-Net layer of ``benchmarks/bench_torch.py`` ran several times
    slower with the module's Parameters than with the same tensors detached
    (torch 2.13). The picker always measured detached copies, so it chose by
    times the module's own calls did not get.
    """
    if torch.is_grad_enabled():
        return x, w, b
    return x.detach(), w.detach(), None if b is None else b.detach()


def run(name: str, x, w, b, plan: Plan) -> torch.Tensor:
    """Run strategy ``name`` (which must be eligible for ``plan``)."""
    return STRATEGIES[name][0](*_untracked(x, w, b), plan)


def bind(name: str, plan: Plan) -> Callable[..., torch.Tensor]:
    """``run`` with the strategy and plan fixed: ``bind(name, plan)(x, w, b)``.

    For ``native`` (and ``native_bias_after``) on a window torch can express,
    this is F.conv_transpose*d with its arguments already worked out, so a module that reuses its choice
    costs no more Python per call than torch's own module.
    """
    if name in ("native", "native_bias_after") and plan.torch_args is not None:
        fn = _conv_transpose_fn(plan.ndim)
        padding, output_padding = plan.torch_args
        stride, groups, dilation = plan.stride, plan.groups, plan.dilation
        if name == "native_bias_after":
            def bias_after_call(x, w, b):
                return _add_bias_(fn(x, w, None, stride, padding, output_padding, groups, dilation), b)
            return bias_after_call

        def native_call(x, w, b):
            return fn(x, w, b, stride, padding, output_padding, groups, dilation)
        return native_call
    strategy = STRATEGIES[name][0]
    return lambda x, w, b: strategy(*_untracked(x, w, b), plan)
