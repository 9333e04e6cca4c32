"""``auto``: pick an algorithm per shape, by a fixed rule measured with benchmarks/bench_algorithms.py.

The rule:

* ``phase`` in general: it does the fewest multiplications (exactly the
  non-zero ones), and its GEMMs contract over ``taps_per_phase * C_in``.
* ``col2im`` when no tap overlaps another (``d*(k-1) < s`` on every axis, e.g.
  k2s2 decoders) and the column buffer is small: then the overlap-add is a
  plain interleave, and one GEMM over all taps beats ``prod(s)`` smaller ones.

Integer inputs follow the same rule (both are exact in int64).
"""
from __future__ import annotations

from math import prod

from ._core import Problem

__all__ = ["choose", "compute"]

#: above this many bytes of column buffer, col2im's memory traffic costs more than its single GEMM saves
COLUMN_BUFFER_LIMIT = 64 * 2**20


def choose(problem: Problem) -> str:
    """The algorithm ``auto`` runs for this problem.

    >>> import numpy as np
    >>> from tconv.geometry import AxisGeometry
    >>> p = Problem(np.zeros((1, 4, 1, 3)), np.zeros((1, 2, 3, 5)), (AxisGeometry(4, 2, 2, 1, 0, 0),), ((0, 8),))
    >>> choose(p)
    'col2im'
    """
    axes = problem.axes
    no_overlap = all(ax.dilation * (ax.kernel_size - 1) < ax.stride for ax in axes)
    columns = problem.x.shape[0] * prod(ax.input_size for ax in axes) * prod(ax.kernel_size for ax in axes)
    columns *= problem.groups * problem.out_channels * problem.x.dtype.itemsize
    if no_overlap and columns <= COLUMN_BUFFER_LIMIT:
        return "col2im"
    return "phase"


def compute(problem: Problem):
    from . import ALGORITHMS

    return ALGORITHMS[choose(problem)](problem)
