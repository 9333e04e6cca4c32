"""``scatter``: the definition. Each input element stamps the weighted kernel into the output.

For every input position ``j`` (all axes at once), the stamp
``x[j] @ w[t]`` for every tap ``t`` is added at output position ``j*s + d*t``.
The whole uncropped output is built, then the window is cut out: no shortcut,
no padding, no flip. This is the reference the other algorithms are tested
against; it is written for clarity, not speed (one small GEMM per input element).
"""
from __future__ import annotations

import numpy as np

from ._core import Problem

__all__ = ["compute"]


def compute(problem: Problem) -> np.ndarray:
    """The window of the transposed convolution, by stamping (see the module docstring)."""
    x, w, axes = problem.x, problem.w, problem.axes
    n = problem.ndim
    full = np.zeros((problem.batch, *(ax.full for ax in axes), problem.groups, problem.out_channels), x.dtype)
    # (N, G, Ci) x (G, *k, Ci, Co) -> (N, *k, G, Co): the stamp of one input element
    letters = "abcdef"[:n]
    stamp_rule = f"ngi,g{letters}io->n{letters}go"
    for j in np.ndindex(*x.shape[1 : 1 + n]):
        stamp = np.einsum(stamp_rule, x[(slice(None), *j)], w, optimize=True)
        region = tuple(slice(jj * ax.stride, jj * ax.stride + ax.dilated_kernel, ax.dilation) for jj, ax in zip(j, axes))
        full[(slice(None), *region)] += stamp
    return full[(slice(None), *(slice(start, stop) for start, stop in problem.window))]
