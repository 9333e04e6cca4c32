"""``auto``: pick an algorithm per shape, by a fixed rule measured with benchmarks/bench_algorithms.py.

Both fast algorithms do exactly the useful multiplications; they differ in the
memory traffic around the GEMM. ``col2im`` writes a column buffer of
``prod(k) * C_out`` values per input element and adds it into the output.
``phase`` accumulates each tap's GEMM straight into the phases' columns of
one buffer over row-shifted views of the padded input (its ``shifted`` form),
or, where that form's padding rows would cost too much, computes the phases
like col2im (kn2row: one GEMM by all taps, then per-phase shifted sums, when
``C_out < C_in``) or by im2col (``prod(k) * C_in`` input values per input
element copied into stacked views); :func:`tconv.kernels.phase.form` says which.
Hence the rule:

* ``phase`` for depthwise layers (one input channel per group): its
  ``compiled`` form is one C pass that sums each output's taps in vector
  registers (where tconv's C loops are built; else its ``rows`` form, one
  fused multiply-accumulate, ``np.einsum``, per phase over whole output
  rows), with no GEMM and no column buffer;
* ``phase`` when ``C_out/groups < C_in/groups`` (decoders usually halve the
  channels): its shifted and kn2row forms matched or beat ``col2im`` on every such layer of
  the benchmark, since each phase accumulates in place instead of re-adding
  into the whole output;
* ``col2im`` when ``C_out == C_in`` per group, or when no two taps overlap
  (``d*(k-1) < s``, or a single input position as in a generator's first
  layer) so the overlap-add is a plain copy, and the column buffer stays under
  ``COLUMN_BUFFER_LIMIT``;
* ``phase`` otherwise (more output than input channels, or a column buffer
  too large to be worth its memory).

``scatter`` and ``zero_insertion`` are never picked: they exist to be read and
compared.

Integer inputs follow the same rule (both are exact in int64).
"""
from __future__ import annotations

from math import prod

from . import col2im, phase
from ._core import Problem

__all__ = ["choose", "compute"]

#: above this many bytes of column buffer, col2im's memory traffic costs more than its single GEMM saves
COLUMN_BUFFER_LIMIT = 64 * 2**20


def choose(problem: Problem) -> str:
    """The algorithm ``auto`` runs for this problem.

    >>> import numpy as np
    >>> from tconv.geometry import AxisGeometry
    >>> ax = AxisGeometry(4, 3, 2, 1, 0, 0)
    >>> choose(Problem(np.zeros((1, 4, 1, 8)), np.zeros((1, 8, 4, 3)), (ax,), ((0, 9),)))  # 8 -> 4 channels
    'phase'
    >>> choose(Problem(np.zeros((1, 4, 1, 8)), np.zeros((1, 8, 8, 3)), (ax,), ((0, 9),)))  # 8 -> 8
    'col2im'
    >>> choose(Problem(np.zeros((1, 4, 1, 8)), np.zeros((1, 8, 16, 3)), (ax,), ((0, 9),)))  # 8 -> 16
    'phase'
    """
    axes = problem.axes
    in_channels, out_channels = problem.x.shape[-1], problem.out_channels
    if in_channels == 1 and problem.groups > 1:
        return "phase"
    columns = problem.x.shape[0] * prod(ax.input_size for ax in axes) * prod(ax.kernel_size for ax in axes)
    columns *= problem.groups * out_channels * problem.x.dtype.itemsize
    copy_like = all(ax.dilation * (ax.kernel_size - 1) < ax.stride or ax.input_size == 1 for ax in axes)
    if out_channels < in_channels:
        return "phase"
    if (out_channels == in_channels or copy_like) and columns <= COLUMN_BUFFER_LIMIT:
        return "col2im"
    return "phase"


def compute(problem: Problem):
    return {"phase": phase.compute, "col2im": col2im.compute}[choose(problem)](problem)
