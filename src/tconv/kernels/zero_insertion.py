"""``zero_insertion``: insert ``s-1`` zeros, pad, and correlate with the flipped kernel.

This is the picture the lectures draw (and what ``jax.lax.conv_transpose``
literally asks XLA for): the transposed convolution equals a stride-1
correlation of the zero-inserted input ``z`` (``(i-1)*s + 1`` elements per axis)
padded by ``K-1-start`` before and ``K-1-crop_end`` after, with the kernel
flipped on every spatial axis and dilated by ``d``. Negative padding slices.

The correlation is done as one GEMM over the stacked shifted views (im2col),
the usual way a convolution is lowered. Most of the multiplications are by the
inserted zeros: ``prod(s)`` times more work than needed.
"""
from __future__ import annotations

from itertools import product

import numpy as np

from ._core import Problem, correlate, pad_or_slice

__all__ = ["compute", "zero_inserted"]


def zero_inserted(x: np.ndarray, axes) -> np.ndarray:
    """The input with ``s-1`` zeros between neighbours on every spatial axis (sizes from the geometry)."""
    n = len(axes)
    shape = (x.shape[0], *(ax.zero_inserted_size for ax in axes), *x.shape[1 + n :])
    z = np.zeros(shape, x.dtype)
    z[(slice(None), *(slice(None, None, ax.stride) for ax in axes))] = x
    return z


def compute(problem: Problem) -> np.ndarray:
    """The window of the transposed convolution, by zero insertion (see the module docstring)."""
    axes = problem.axes
    z = zero_inserted(problem.x, axes)
    # padded[m] = z[m - (K-1-start)], so output o (full position start+o) = sum_u padded[o + d*u] * w[k-1-u]
    amounts = []
    for ax, (start, stop), size in zip(axes, problem.window, problem.window_shape):
        before = ax.dilated_kernel - 1 - start
        amounts.append((before, size + ax.dilated_kernel - 1 - before - ax.zero_inserted_size))
    padded = pad_or_slice(z, amounts)
    taps = list(product(*(range(ax.kernel_size) for ax in axes)))
    offsets = [tuple(ax.dilation * u for ax, u in zip(axes, tap)) for tap in taps]
    flipped = problem.w[(slice(None), *(slice(None, None, -1),) * problem.ndim)]
    w_taps = flipped.reshape(flipped.shape[0], len(taps), *flipped.shape[-2:])  # taps in product() order
    return correlate(padded, (0,) * problem.ndim, problem.window_shape, offsets, w_taps)
