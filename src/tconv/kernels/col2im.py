"""``col2im``: one GEMM, then overlap-add (what Caffe and PyTorch's slow path do).

The GEMM multiplies every input element by the whole kernel at once:
``columns[j, t] = x[j] @ w[t]``, a ``(N*prod(I), Ci) x (Ci, prod(k)*Co)`` product
per group. Then each tap's plane ``columns[:, t]`` is added into the output at
positions ``j*s + d*t`` (a strided slice); only the part inside the kept window
is added. Memory: the column buffer holds ``prod(k)`` output values per input
element.
"""
from __future__ import annotations

from itertools import product

import numpy as np

from ._core import Problem, tap_products

__all__ = ["compute"]


def compute(problem: Problem) -> np.ndarray:
    """The window of the transposed convolution, by GEMM + overlap-add (see the module docstring)."""
    axes = problem.axes
    kernel = problem.w_grouped.shape[3:]
    columns = tap_products(problem)
    # k == s with no dilation: every output position gets exactly one tap, so assign, don't add
    tiling = all(ax.kernel_size == ax.stride and ax.dilation == 1 for ax in axes)
    out = problem.empty_output(zeros=not tiling)
    for index, tap in enumerate(product(*(range(k) for k in kernel))):
        source, target = [slice(None)], [slice(None)]
        for ax, t, (start, stop) in zip(axes, tap, problem.window):
            hit = ax.tap_inputs(t, start, stop)
            if hit is None:
                break
            j_lo, j_hi, first = hit
            source.append(slice(j_lo, j_hi))
            target.append(ax.strided(first, j_hi - j_lo))
        else:
            if tiling:
                out[tuple(target)] = columns[(*source, slice(None), index)]
            else:
                out[tuple(target)] += columns[(*source, slice(None), index)]
    return out
