"""What the four algorithms share: the canonical problem, the channel GEMM, windows and folding.

Every algorithm computes the same thing on the same canonical arrays:

* ``x``: the input, ``(N, *I, G, Ci)`` (batch, spatial, groups, channels per group);
* ``w_grouped``: the weight as PyTorch stores it, split by group, ``(G, Ci, Co, *k)``
  (a view); ``w`` is the same weight reordered as ``(G, *k, Ci, Co)``, C-contiguous, made
  on first use; tap ``t`` of group ``g`` maps ``Ci`` to ``Co`` channels and
  ``full[j*s + d*t] += x[j] @ w[t]`` (PyTorch's meaning, no flip);
* ``window``: per axis the ``[start, stop)`` part of the uncropped output to compute,
  already clipped to ``[0, full)``;

and returns ``(N, *window, G, Co)``. The caller (:mod:`tconv.kernels.engine`) turns
framework arrays into this form and places the window into the framework's output
(zeros for negative crops, folding for Flax CIRCULAR, bias, dtype, layout).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from math import prod
from typing import Sequence

import numpy as np

from ..geometry import AxisGeometry

__all__ = ["Problem", "channel_mix", "correlate", "tap_products", "pad_or_slice", "fold"]


@dataclass(frozen=True)
class Problem:
    """One transposed convolution in canonical form (see the module docstring)."""

    x: np.ndarray
    w_grouped: np.ndarray
    axes: tuple[AxisGeometry, ...]
    window: tuple[tuple[int, int], ...]

    @cached_property
    def w(self) -> np.ndarray:
        """``(G, *k, Ci, Co)``, C-contiguous: each tap's ``Ci x Co`` matrix in one block."""
        return np.ascontiguousarray(np.moveaxis(self.w_grouped, (1, 2), (-2, -1)))

    @property
    def ndim(self) -> int:
        return len(self.axes)

    @property
    def batch(self) -> int:
        return self.x.shape[0]

    @property
    def groups(self) -> int:
        return self.x.shape[-2]

    @property
    def out_channels(self) -> int:
        """Output channels per group."""
        return self.w_grouped.shape[2]

    @property
    def window_shape(self) -> tuple[int, ...]:
        return tuple(stop - start for start, stop in self.window)

    def empty_output(self, zeros: bool = True, channel_major: bool = False) -> np.ndarray:
        """The output buffer; ``zeros=False`` when every element will be written.

        ``channel_major=True`` stores it as ``(G, Co, N, *window)`` (each channel's
        image contiguous) and returns the canonical-order view of that memory.
        """
        allocate = np.zeros if zeros else np.empty
        dtype = np.result_type(self.x, self.w_grouped)
        if channel_major:
            return np.moveaxis(allocate((self.groups, self.out_channels, self.batch, *self.window_shape), dtype), (0, 1), (-2, -1))
        return allocate((self.batch, *self.window_shape, self.groups, self.out_channels), dtype)


def channel_mix(a: np.ndarray, w: np.ndarray) -> np.ndarray:
    """``(M, G, Ci) x (G, Ci, Co) -> (M, G, Co)``: the per-group channel GEMM every algorithm uses.

    One BLAS GEMM when there is one group; a broadcast multiply when each group
    has one input channel (depthwise); otherwise one GEMM per group.

    >>> channel_mix(np.ones((5, 1, 3)), np.ones((1, 3, 2))).shape
    (5, 1, 2)
    """
    m, groups, ci = a.shape
    co = w.shape[-1]
    if groups == 1:
        return (a.reshape(m, ci) @ w[0]).reshape(m, 1, co)
    if ci == 1:
        return a * w[:, 0, :]
    return np.matmul(a.transpose(1, 0, 2), w).transpose(1, 0, 2)


def tap_products(problem: "Problem", channel_major: bool = False) -> np.ndarray:
    """``x[j] @ w[t]`` for every input position ``j`` and tap ``t``, in one GEMM.

    Returns ``(N, *I, G, prod(k), Co)``: every tap's ``Ci x Co`` matrix side by
    side, so one GEMM covers all of them (made straight from PyTorch's weight
    layout: one copy). What col2im overlap-adds and phase's kn2row form sums.
    With ``channel_major=True`` the same values are stored as
    ``(G, prod(k), Co, N, *I)`` (the transposed GEMM: each tap and channel one
    contiguous image) and returned as a view in the order above.
    """
    x = problem.x
    groups, ci, co, *kernel = problem.w_grouped.shape
    taps = prod(kernel)
    rows = x.shape[0] * prod(x.shape[1 : 1 + problem.ndim])
    matrix = problem.w_grouped.reshape(groups, ci, co, taps).transpose(0, 1, 3, 2).reshape(groups, ci, taps * co)
    columns = x.reshape(rows, groups, ci)
    if not channel_major:
        return channel_mix(columns, matrix).reshape(*x.shape[: 1 + problem.ndim], groups, taps, co)
    if groups == 1:  # transposed operands: BLAS flags, no copies
        products = (matrix[0].T @ columns[:, 0, :].T)[None]
    else:
        products = np.matmul(matrix.transpose(0, 2, 1), columns.transpose(1, 2, 0))
    products = products.reshape(groups, taps, co, *x.shape[: 1 + problem.ndim])
    return np.moveaxis(products, (0, 1, 2), (-3, -2, -1))


def correlate(
    source: np.ndarray,
    origin: Sequence[int],
    size: Sequence[int],
    offsets: Sequence[Sequence[int]],
    w_taps: np.ndarray,
) -> np.ndarray:
    """A stride-1 correlation as one GEMM over stacked shifted views (im2col).

    ``y[q] = sum over taps of source[origin + q + offsets[tap]] @ w_taps[tap]`` for
    ``q`` in ``[0, size)`` per axis.

    Parameters
    ----------
    source : ndarray, shape (N, *S, G, Ci)
    origin, size : per-axis ints
    offsets : one per-axis offset tuple per tap
    w_taps : ndarray, shape (G, taps, Ci, Co)

    Returns
    -------
    ndarray, shape (N, *size, G, Co)
    """
    n = source.shape[0]
    groups, ci = source.shape[-2:]
    co = w_taps.shape[-1]
    taps = len(offsets)

    def view(offset):
        return source[(slice(None),) + tuple(slice(o + f, o + f + m) for o, f, m in zip(origin, offset, size))]

    rows = n * prod(size)
    if ci == 1 and groups > 1:  # depthwise: a GEMM per group would be 1 x 1; multiply-accumulate instead
        result = np.empty((n, *size, groups, co), np.result_type(source, w_taps))
        flat = co == 1  # drop the unit channel axis so the inner loops run along the groups
        weights = [w_taps[:, tap, 0, 0] if flat else w_taps[:, tap, 0, :] for tap in range(taps)]
        # A (groups,) weight broadcast over the spatial axes makes NumPy's inner loop only
        # `groups` long; repeated along the last spatial axis it spans a whole contiguous row
        # (2.8 -> 2.0 ms on the benchmark's depthwise layer).
        rows = size[:-1] + (size[-1] * groups,) if flat and size[-1] * groups <= 1 << 16 else None
        if rows is not None:
            weights = [np.tile(wt, size[-1]) for wt in weights]
        # one batch element at a time: its result and scratch stay in cache across the taps
        term = np.empty(result.shape[1:-1] if flat else result.shape[1:], result.dtype)
        if rows is not None:
            term = term.reshape(rows)
        for b in range(n):
            acc = result[b, ..., 0] if flat else result[b]
            if rows is not None:
                acc = acc.reshape(rows)  # a view: result is C-contiguous
            for tap, offset in enumerate(offsets):
                src = view(offset)[b, ..., 0] if flat else view(offset)[b]
                if rows is not None:
                    src = src.reshape(rows)  # a view: the last spatial axis and groups are adjacent in memory
                if tap == 0:
                    np.multiply(src, weights[0], out=acc)
                else:
                    np.multiply(src, weights[tap], out=term)
                    acc += term
        return result
    if taps == 1:  # a shifted view is already the column matrix (no copy when contiguous)
        columns = view(offsets[0]).reshape(rows, groups, ci)
    else:
        stacked = np.empty((n, *size, groups, taps, ci), source.dtype)
        for tap, offset in enumerate(offsets):
            stacked[..., tap, :] = view(offset)
        columns = stacked.reshape(rows, groups, taps * ci)
    kernel = w_taps.reshape(groups, taps * ci, co)
    return channel_mix(columns, kernel).reshape(n, *size, groups, co)


def pad_or_slice(a: np.ndarray, amounts: Sequence[tuple[int, int]]) -> np.ndarray:
    """Pad spatial axes 1..n with zeros by ``(before, after)``; negative amounts slice instead."""
    cut = (slice(None),) + tuple(slice(max(-lo, 0), a.shape[1 + n] - max(-hi, 0)) for n, (lo, hi) in enumerate(amounts))
    a = a[cut]
    pads = [(0, 0)] + [(max(lo, 0), max(hi, 0)) for lo, hi in amounts] + [(0, 0)] * (a.ndim - 1 - len(amounts))
    if any(p != (0, 0) for p in pads):
        a = np.pad(a, pads)
    return a


def fold(full: np.ndarray, axes: Sequence[AxisGeometry]) -> np.ndarray:
    """Flax CIRCULAR: output ``o`` of a wrapping axis sums ``full[crop_begin + o + m*out]`` over ``m``."""
    result = full
    for n, ax in enumerate(axes):
        if not ax.wrap:
            start, stop = ax.kept
            result = np.take(result, np.arange(start, stop), axis=1 + n)
            continue
        period = ax.output_size
        shape = list(result.shape)
        shape[1 + n] = period
        folded = np.zeros(shape, result.dtype)
        position = 0
        while position < ax.full:
            o = (position - ax.crop_begin) % period
            length = min(period - o, ax.full - position)
            target = [slice(None)] * folded.ndim
            source = [slice(None)] * folded.ndim
            target[1 + n] = slice(o, o + length)
            source[1 + n] = slice(position, position + length)
            folded[tuple(target)] += result[tuple(source)]
            position += length
        result = folded
    return result
