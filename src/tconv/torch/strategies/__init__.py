"""The strategies: equivalent ways to compute one transposed convolution in torch.

Each strategy takes a batched input ``x`` (N, C_in, *I), a weight ``w``
(C_in, C_out/groups, *k), an optional bias and a :class:`Plan` (sizes and the
kept window, read from a :class:`tconv.Geometry`), and returns the kept window
of the uncropped output plus bias. All are written with differentiable torch
ops, so autograd (and ``torch.compile``) see ordinary torch graphs; in
inference, where the C kernels of :mod:`tconv.torch._native` are built, the
phase landing, the channels-last conversion and the gathers run as C loops
instead (the same values, bit for bit), and ``gemm_gather`` needs them.

:data:`STRATEGIES` holds them by name, each a :class:`Strategy` that says
where it ``applies``; :func:`eligible` lists those that apply to a plan,
:func:`run` runs one and :func:`bind` fixes one to a plan. By family:

:mod:`~tconv.torch.strategies.native`
    torch's own kernel. ``native``: ``F.conv_transpose*d`` as given;
    ``native_bias_after``: grouped layers, the bias added afterwards in place
    (oneDNN adds it in a slow separate pass there); ``channels_last``: on a
    channels-last copy, returned in the caller's layout (3-D float32
    inference calls oneDNN directly).
:mod:`~tconv.torch.strategies.phase`
    the phases computed whole, then landed in their strided places.
    ``phase`` and ``phase_channels_last``: the sub-pixel decomposition, prod(s)
    stride-1 correlations of the undilated input as one grouped convolution;
    ``gemm_shuffle``: kernels no longer than the stride, one GEMM and a
    shuffle.
:mod:`~tconv.torch.strategies.gemm`
    one GEMM for every tap, then each output sums its taps. ``col2im``: the
    GEMM ``W^T X``, then ``F.fold`` (1-D/2-D) or ``index_add``;
    ``gemm_gather`` and ``gemm_gather_t``: the GEMM ``W^T X`` or ``X^T W``,
    then one C pass in which every kept output sums exactly its own terms.
:mod:`~tconv.torch.strategies.phase_sums`
    each output phase summed from shifted terms in a contiguous buffer, then
    landed. ``kn2row``: the terms are tap planes of one GEMM; ``depthwise``:
    one input channel per group, the terms are ``x * w[tap]`` (one C pass in
    inference).
:mod:`~tconv.torch.strategies.one_d`
    1-D, the weight read as stored. ``overlap_add``: the GEMM ``X^T W``, then
    blocks of ``s`` taps added, shifted, into place (long kernels on short
    inputs); ``phase_rows``: the GEMM ``W^T X``, each output phase summed from
    whole shifted rows (short kernels on long sequences).
:mod:`~tconv.torch.strategies.shifted`
    ``shifted``: the NumPy engine's shifted-GEMM plan, channel-major: every
    tap one GEMM of a column-shifted view of the flattened, padded input.

:mod:`~tconv.torch.strategies.backward`
    ``explicit_backward``: a ``torch.autograd.Function`` whose forward is the
    inference path (``gemm_gather``'s C pass, else ``phase``) and whose
    backward is written out (grad_input a strided convolution of grad_output,
    grad_weight a correlation).

What they share (the bias, the layout, the landing) is in ``_common``.
docs/torch.md describes each strategy and when the picker
(:mod:`tconv.torch.picker`) chooses it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from . import backward, gemm, native, one_d, phase, phase_sums, shifted
from ._common import (PAIR_MIN_BYTES, TRANSPOSE_BLOCK_BYTES, add_bias, conv_transpose_fn, is_channels_last,
                      is_compiling, needs_grad, plain_ops)
from ._plan import Plan
from .native import channels_last, onednn_3d_layer

__all__ = [
    "PAIR_MIN_BYTES",
    "STRATEGIES",
    "TRANSPOSE_BLOCK_BYTES",
    "Plan",
    "channels_last",
    "Strategy",
    "applies",
    "bind",
    "eligible",
    "is_channels_last",
    "is_compiling",
    "needs_grad",
    "onednn_3d_layer",
    "plain_ops",
    "run",
]

# PAIR_MIN_BYTES and TRANSPOSE_BLOCK_BYTES above are copies to read: the landing and the copy back
# read _common's, so that is where to change them.


def _always(plan: Plan) -> bool:
    """Every layer."""
    return True


@dataclass(frozen=True)
class Strategy:
    """One way to compute a transposed convolution.

    Attributes
    ----------
    name : str
        Its key in :data:`STRATEGIES`, and the name modes and ``strategy=`` take.
    run : callable
        ``run(x, w, b, plan)``: the kept output plus bias, for batched ``x``.
    applies : callable
        ``applies(plan)``: whether it can compute this layer at all. Some
        depend on the machine (whether tconv's C loops are built).
    """

    name: str
    run: Callable[..., torch.Tensor]
    applies: Callable[[Plan], bool] = _always


#: name -> :class:`Strategy`, in the fixed order :func:`eligible` lists them
STRATEGIES: dict[str, Strategy] = {s.name: s for s in (
    Strategy("native", native.native),
    Strategy("native_bias_after", native.native_bias_after, native.bias_after_applies),
    Strategy("channels_last", native.channels_last),
    Strategy("gemm_shuffle", phase.gemm_shuffle, phase.gemm_shuffle_applies),
    Strategy("phase", phase.phase),
    Strategy("phase_channels_last", phase.phase_channels_last),
    Strategy("col2im", gemm.col2im),
    Strategy("gemm_gather", gemm.gemm_gather, gemm.gemm_gather_applies),
    Strategy("gemm_gather_t", gemm.gemm_gather_t, gemm.gemm_gather_applies),
    Strategy("depthwise", phase_sums.depthwise, phase_sums.depthwise_applies),
    Strategy("kn2row", phase_sums.kn2row),
    Strategy("overlap_add", one_d.overlap_add, one_d.overlap_add_applies),
    Strategy("phase_rows", one_d.phase_rows, one_d.phase_rows_applies),
    Strategy("shifted", shifted.shifted, shifted.shifted_applies),
    Strategy("explicit_backward", backward.explicit_backward),
)}


def applies(name: str, plan: Plan) -> bool:
    """Whether strategy ``name`` can compute ``plan``."""
    return STRATEGIES[name].applies(plan)


def eligible(plan: Plan) -> list[str]:
    """The strategies that can compute ``plan``, in a fixed order."""
    return [name for name, strategy in STRATEGIES.items() if strategy.applies(plan)]


def _untracked(x, w, b):
    """``x, w, b`` detached when autograd is off: a rewrite must not see a Parameter's requires_grad then.

    Under ``torch.no_grad()`` a Parameter still says ``requires_grad``, and
    ``torch.matmul`` of a 2-D weight that requires grad with a batch of
    inputs copies the batch into one tall matrix and back (its folding path,
    kept for autograd) instead of running one batched GEMM, several times
    slower on the 3-D U-Net layer of ``benchmarks/bench_torch.py``. The picker
    measures detached copies, so the module's own calls must run on the same.
    """
    if torch.is_grad_enabled():
        return x, w, b
    return x.detach(), w.detach(), None if b is None else b.detach()


def run(name: str, x, w, b, plan: Plan) -> torch.Tensor:
    """Run strategy ``name`` (which must be eligible for ``plan``)."""
    return STRATEGIES[name].run(*_untracked(x, w, b), plan)


def bind(name: str, plan: Plan) -> Callable[..., torch.Tensor]:
    """``run`` with the strategy and plan fixed: ``bind(name, plan)(x, w, b)``.

    For ``native`` (and ``native_bias_after``) on a window torch can express,
    this is F.conv_transpose*d with its arguments already worked out, so a module that reuses its choice
    costs no more Python per call than torch's own module.
    """
    if name in ("native", "native_bias_after") and plan.torch_args is not None:
        fn = conv_transpose_fn(plan.ndim)
        padding, output_padding = plan.torch_args
        stride, groups, dilation = plan.stride, plan.groups, plan.dilation
        if name == "native_bias_after":
            def bias_after_call(x, w, b):
                return add_bias(fn(x, w, None, stride, padding, output_padding, groups, dilation), b, in_place=True)
            return bias_after_call

        def native_call(x, w, b):
            return fn(x, w, b, stride, padding, output_padding, groups, dilation)
        return native_call
    strategy = STRATEGIES[name].run
    return lambda x, w, b: strategy(*_untracked(x, w, b), plan)
