"""``explicit_backward``: a fast forward under autograd, with the backward written out.

Autograd through the rewrites records every op they run, and they cannot use
tconv's C loops then (raw pointers autograd cannot follow), so with gradients
the picker mostly keeps torch's kernel. Here a ``torch.autograd.Function``
runs the forward as in inference (``gemm_gather``'s C pass where the loops are
built, else ``phase``) and computes the gradients itself, from the full
(uncropped) output's gradient ``g`` (the kept window's gradient, zero-padded
back to the full size, or sliced where zeros were appended):

* ``grad_input = conv(g, w)``: the strided convolution that a transposed
  convolution is the adjoint of (the weight ``(C_in, C_out/groups, *k)`` is a
  convolution's ``(out, in/groups, *k)`` as stored);
* ``grad_weight``: the correlation of ``g`` with the input
  (``torch.nn.grad.conv*d_weight``);
* ``grad_bias``: ``g`` summed over everything but the channels.

Its backward is made of differentiable ops, so double backward works too.
Under ``torch.compile`` it runs ``phase`` (the traced graph needs plain ops).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ._common import is_compiling, window
from ._plan import Plan
from .gemm import gemm_gather, gemm_gather_applies
from .phase import phase

__all__ = ["explicit_backward"]

_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
_CONV_WEIGHT = {1: torch.nn.grad.conv1d_weight, 2: torch.nn.grad.conv2d_weight, 3: torch.nn.grad.conv3d_weight}


def _forward(x, w, b, plan: Plan) -> torch.Tensor:
    return gemm_gather(x, w, b, plan) if gemm_gather_applies(plan) else phase(x, w, b, plan)


class _Function(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, w, b, plan):  # type: ignore[override]
        ctx.save_for_backward(x, w)
        ctx.plan, ctx.has_bias = plan, b is not None
        return _forward(x, w, b, plan)  # autograd is off inside forward: the inference paths run

    @staticmethod
    def backward(ctx, g):  # type: ignore[override]
        x, w = ctx.saved_tensors
        plan: Plan = ctx.plan
        geo = plan.geometry
        # the kept window's gradient, placed back in the full output (the inverse crop)
        g_full = window(g, [-c for c in geo.crop_begin], [-c for c in geo.crop_end])
        grad_x = grad_w = grad_b = None
        if ctx.needs_input_grad[0]:
            grad_x = _CONV[plan.ndim](g_full, w, None, plan.stride, 0, plan.dilation, plan.groups)
        if ctx.needs_input_grad[1]:
            grad_w = _CONV_WEIGHT[plan.ndim](g_full, w.shape, x, plan.stride, 0, plan.dilation, plan.groups)
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_b = g.sum(dim=[d for d in range(g.dim()) if d != 1])
        return grad_x, grad_w, grad_b, None


def explicit_backward(x, w, b, plan: Plan) -> torch.Tensor:
    """The inference forward (``gemm_gather`` or ``phase``), with the gradients of the module docstring."""
    if is_compiling() or not torch.is_grad_enabled():
        return phase(x, w, b, plan) if is_compiling() else _forward(x, w, b, plan)
    return _Function.apply(x, w, b, plan)
