"""torch's own kernel: ``native``, ``native_bias_after`` and ``channels_last``.

All three call ``F.conv_transpose*d``; they differ in where the bias is added
and in the memory layout the kernel sees. A window torch cannot express
(:attr:`Plan.torch_args` is None) is computed with the symmetric part of the
crop as ``padding`` and the rest sliced off, or padded with zeros.
"""
from __future__ import annotations

import functools
from typing import Callable

import torch

from ._common import (CHANNELS_LAST, add_bias, as_2d, channels_first, conv_transpose_fn, is_channels_last,
                      is_compiling, needs_grad, window)
from ._plan import Plan

__all__ = ["bias_after_applies", "channels_last", "native", "native_bias_after", "onednn_3d_layer"]


def native(x, w, b, plan: Plan) -> torch.Tensor:
    """``F.conv_transpose*d`` on the input as given."""
    fn = conv_transpose_fn(plan.ndim)
    if plan.torch_args is not None:
        padding, output_padding = plan.torch_args
        return fn(x, w, b, plan.stride, padding, output_padding, plan.groups, plan.dilation)
    # A window torch cannot express: the symmetric part as padding, the rest sliced (or zero-padded).
    g = plan.geometry
    padding = tuple(max(0, min(ax.crop_begin, ax.crop_end)) for ax in g)
    y = fn(x, w, None, plan.stride, padding, 0, plan.groups, plan.dilation)
    y = window(y, [c - p for c, p in zip(g.crop_begin, padding)], [c - p for c, p in zip(g.crop_end, padding)])
    return add_bias(y, b)


def native_bias_after(x, w, b, plan: Plan) -> torch.Tensor:
    """torch's kernel without the bias, then the bias added in place.

    oneDNN adds a bias in a slow separate pass when it runs a grouped
    transposed convolution as a convolution's backward pass (few channels per
    group, depthwise included), so adding it afterwards is faster there
    (``benchmarks/bench_bias.py``; docs/torch.md, "torch's slow bias on grouped
    layers").
    """
    return add_bias(native(x, w, None, plan), b, in_place=True)


def bias_after_applies(plan: Plan) -> bool:
    """Grouped layers only: with one group oneDNN fuses the bias, so only noise could make this win there."""
    return plan.groups > 1


def channels_last(x, w, b, plan: Plan) -> torch.Tensor:
    """torch's kernel on a channels-last copy (oneDNN's fast layout on CPU), returned in the caller's layout.

    An input that is both layouts (one channel, or every spatial size 1)
    counts as channels-first. 1-D runs as 2-D with a unit height. For 3-D
    inference in float32 it calls oneDNN directly (:func:`onednn_3d_layer`),
    since torch's own 3-D kernel does not.
    """
    if plan.ndim == 1:
        return channels_last(x.unsqueeze(2), w.unsqueeze(2), b, as_2d(plan)).squeeze(2).contiguous()
    fmt = CHANNELS_LAST[x.dim()]
    was_channels_last = is_channels_last(x)
    x = x.contiguous(memory_format=fmt)
    y = _onednn_3d(x, w, b, plan)
    if y is None:
        y = native(x, w.contiguous(memory_format=fmt), b, plan)
    return y.contiguous(memory_format=fmt) if was_channels_last else channels_first(y)


def _onednn_3d(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None, plan: Plan) -> torch.Tensor | None:
    """oneDNN's transposed convolution of a channels-last 3-D ``x``, bias added after; None where it does not apply.

    torch does not send most 3-D transposed convolutions to oneDNN, even on
    channels-last input. oneDNN's own, called through
    ``torch.ops.mkldnn._convolution_transpose_pointwise`` (the op torch's
    inductor compiles these layers to), is faster than torch's 3-D kernel, on
    channels-last input and with the conversions from and back to NCDHW
    (``benchmarks/bench_torch.py``: the 3-D layers of its channels-last table,
    and ``--mode deterministic``, where the rule sends the 3-D decoder to
    ``channels_last``). That op has no autograd formula, and it is float32 on
    CPU only; under ``torch.compile`` the usual path runs. The bias is added
    afterwards: oneDNN's own bias pass is slow on some 3-D layers (see
    :func:`native_bias_after`).
    """
    # is_compiling first: torch.compile cannot trace the availability check behind _pointwise_transpose
    if (is_compiling() or plan.ndim != 3 or not onednn_3d_layer(plan) or x.dtype != torch.float32
            or w.dtype != torch.float32 or x.device.type != "cpu"
            or needs_grad(x, w, b)):
        return None
    op, args = _pointwise_transpose(), plan.torch_args
    if op is None or args is None:  # onednn_3d_layer has checked both
        return None
    padding, output_padding = args
    try:
        y = op(x, w, None, list(padding), list(output_padding), list(plan.stride), list(plan.dilation), plan.groups,
               "none", [], "")
    except (RuntimeError, TypeError):  # a layer oneDNN has no primitive for, or a torch whose private op changed
        return None
    return add_bias(y, b, in_place=True)


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
