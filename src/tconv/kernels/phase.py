"""``phase``: the sub-pixel (polyphase) decomposition. No inserted zero is ever stored or multiplied.

Along one axis, output position ``p`` receives ``x[j] @ w[t]`` exactly when
``p = j*s + d*t``. Split the outputs by their *phase* ``r = p mod s``: the taps
that can reach phase ``r`` are those with ``d*t = r (mod s)``, and for them
``j = q - c_t`` with ``q = (p - r)/s`` and ``c_t = (d*t - r)/s``. So

    out[q*s + r] = sum over phase-r taps of x[q - c_t] @ w[t]

is a plain stride-1 correlation of the *undilated* input with the phase's
sub-kernel (every ``s``-th tap). With several axes the phases are the
``prod(s)`` combinations. Each one is computed with one GEMM, either over
stacked shifted views of the input (im2col) or, when ``Co < Ci``, of the input
by all the phase's taps followed by a shifted sum of the products (kn2row,
which moves fewer values), and written into the output with a strided slice
(the interleave, a.k.a. pixel shuffle). Phases with no tap (``s > d*(k-1)+1``) stay
zero. Only the kept window is computed.

This answers "how do I compute a transposed convolution without increasing the
input's spatial size first?": run the ``prod(s)`` small convolutions on the
input as it is and interleave their outputs.
"""
from __future__ import annotations

from itertools import product

import numpy as np

from ..geometry import AxisGeometry
from ._core import Problem, correlate, pad_or_slice, tap_products

__all__ = ["compute", "axis_phases"]


def axis_phases(ax: AxisGeometry, start: int, stop: int) -> list[tuple[int, int, int, list[tuple[int, int]]]]:
    """The phases of one axis that have taps and outputs in ``[start, stop)``.

    Returns, per phase: ``(first output index relative to start, count, first q,
    [(tap t, input shift c_t), ...])``.

    >>> axis_phases(AxisGeometry(3, 4, 2, 1, 0, 0), 0, 8)
    [(0, 4, 0, [(0, 0), (2, 1)]), (1, 4, 0, [(1, 0), (3, 1)])]
    """
    s, d = ax.stride, ax.dilation
    phases = []
    for r in range(s):
        first = start + (r - start) % s
        if first >= stop:
            continue
        taps = [(t, (d * t - r) // s) for t in range(ax.kernel_size) if (d * t) % s == r]
        if taps:
            phases.append((first - start, -((first - stop) // s), (first - r) // s, taps))
    return phases


def compute(problem: Problem) -> np.ndarray:
    """The window of the transposed convolution, by phase decomposition (see the module docstring)."""
    per_axis = [axis_phases(ax, start, stop) for ax, (start, stop) in zip(problem.axes, problem.window)]
    groups, ci, co = problem.w_grouped.shape[:3]
    if co < ci and not (ci == 1 and groups > 1):
        return _by_tap_planes(problem, per_axis)
    return _by_gathered_taps(problem, per_axis)


def _by_gathered_taps(problem: Problem, per_axis) -> np.ndarray:
    """Each phase as im2col: stack the phase's shifted input views (Ci wide), then one GEMM."""
    x, w, axes = problem.x, problem.w, problem.axes
    # pad the (undilated) input only by what the border phases reach past its edges
    amounts = []
    for ax, phases in zip(axes, per_axis):
        before = max([c - q0 for _, _, q0, taps in phases for _, c in taps] + [0])
        after = max([q0 + count - 1 - c - (ax.input_size - 1) for _, count, q0, taps in phases for _, c in taps] + [0])
        amounts.append((before, after))
    source = pad_or_slice(x, amounts)
    # every output position belongs to exactly one phase; only phases without taps leave zeros
    covered = all(len(phases) == min(ax.stride, stop - start) for ax, phases, (start, stop) in zip(axes, per_axis, problem.window))
    out = problem.empty_output(zeros=not covered)
    for combination in product(*per_axis):
        origin = tuple(q0 + before for (_, _, q0, _), (before, _) in zip(combination, amounts))
        size = tuple(count for _, count, _, _ in combination)
        taps = list(product(*(taps for *_, taps in combination)))
        offsets = [tuple(-c for _, c in tap) for tap in taps]
        # (G, T, Ci, Co): the phase's sub-kernel, gathered in one copy in product() order
        sub_kernel = w[(slice(None), *np.ix_(*([t for t, _ in taps_of_axis] for *_, taps_of_axis in combination)))]
        w_taps = sub_kernel.reshape(w.shape[0], len(taps), *w.shape[-2:])
        values = correlate(source, origin, size, offsets, w_taps)
        target = tuple(slice(o0, o0 + (count - 1) * ax.stride + 1, ax.stride)
                       for (o0, count, _, _), ax in zip(combination, axes))
        out[(slice(None), *target)] = values
    return out


def _by_tap_planes(problem: Problem, per_axis) -> np.ndarray:
    """Each phase as kn2row: the input times each tap (one GEMM for all), then shifted sums.

    ``planes[j, t] = x[j] @ w[t]``; phase ``r`` is ``sum over its taps of
    planes[q - c_t, t]``, accumulated in a contiguous buffer and placed once.
    This moves ``Co``-wide rows where im2col moves ``Ci``-wide ones, so it is
    the cheaper order when the layer narrows its channels.
    """
    x, axes = problem.x, problem.axes
    groups, ci, co, *kernel = problem.w_grouped.shape
    covered = all(len(phases) == min(ax.stride, stop - start) for ax, phases, (start, stop) in zip(axes, per_axis, problem.window))
    # Wide channel rows accumulate straight into the strided output (each row is a long
    # contiguous run). Narrow ones (a few output channels) would make every NumPy inner loop
    # a few elements long, so planes, sums and output are then stored channel-major (each
    # channel a contiguous image, viewed in the canonical axis order) and each phase is
    # summed in a buffer and placed once (DCGAN's 64->3 layer: 4.9 -> 1.9 ms).
    direct = co * np.result_type(x, problem.w_grouped).itemsize >= 64
    planes = tap_products(problem, channel_major=not direct)
    out = problem.empty_output(zeros=not covered, channel_major=not direct)
    for combination in product(*per_axis):
        size = tuple(count for _, count, _, _ in combination)
        target = (slice(None),) + tuple(slice(o0, o0 + (count - 1) * ax.stride + 1, ax.stride)
                                        for (o0, count, _, _), ax in zip(combination, axes))
        acc = out[target] if direct else None
        started = False
        for tap in product(*(taps_of_axis for *_, taps_of_axis in combination)):
            # output m of the phase reads input j = q0 + m - c_t, inside [0, input_size)
            src, dst, whole = [slice(None)], [slice(None)], True
            for (_, count, q0, _), (_, c), ax in zip(combination, tap, axes):
                m_lo, m_hi = max(0, c - q0), min(count, ax.input_size + c - q0)
                if m_lo >= m_hi:
                    break
                whole = whole and (m_lo, m_hi) == (0, count)
                src.append(slice(q0 + m_lo - c, q0 + m_hi - c))
                dst.append(slice(m_lo, m_hi))
            else:
                plane = planes[(*src, slice(None), np.ravel_multi_index([t for t, _ in tap], kernel))]
                if not started and whole:
                    if direct:
                        acc[...] = plane
                    else:
                        acc = plane.copy(order="K")  # keeps the channel-major layout
                elif not started:
                    if direct:
                        acc[...] = 0
                    else:
                        acc = np.moveaxis(np.zeros((groups, co, x.shape[0], *size), out.dtype), (0, 1), (-2, -1))
                    acc[tuple(dst)] += plane
                else:
                    acc[tuple(dst)] += plane
                started = True
        if not started:
            out[target] = 0
        elif not direct:
            out[target] = acc
    return out
