"""The plain path: what the modules and functions compute while a model is traced, scripted or exported.

A tracer, a scripting compiler or an exporter must see ordinary torch ops, and
none of them can run the picker (it times calls and keys caches on concrete
shapes), so there every call is ``F.conv_transpose*d`` with torch's own
``padding`` and ``output_padding``, plus one crop (a slice, ONNX's Slice)
or zero pad (``F.pad``, then the bias) where torch's padding cannot express the
kept window. The window comes from :func:`tconv.torch.layer_geometry`; for the
string paddings it does not depend on the input's size (the kept window of
ONNX SAME is ``output_padding + d*(k-1) + 1 - s`` elements short of the full
output on every axis, whatever the input), so it is worked out once per
layer and the exported graph holds for every input size.

Examples
--------
>>> from tconv.torch import layer_geometry
>>> plain_window(layer_geometry((PROBE, PROBE), (3, 3), 2, "same"))
((0, 0), (0, 0), (0, 0), (1, 1))
>>> plain_window(layer_geometry((PROBE,), (4,), 2, "same_lower"))
((1,), (0,), (0,), (0,))
"""
from __future__ import annotations

from typing import Any

import torch
import torch.fx
import torch.nn.functional as F

from ..geometry import Geometry
from .strategies import Plan

__all__ = ["PROBE", "crop_or_pad", "plain_wanted", "plain_window"]

#: the input size on every axis the string windows are worked out for (any size gives the same window)
PROBE = 8


def plain_wanted(input: Any) -> bool:
    """Whether this call is being traced, scripted or exported (then only plain torch ops may run).

    ``torch.compile`` itself is not here: the modules keep their strategies
    under it (chosen by the deterministic rule), but ``torch.export`` and the
    dynamo-based ONNX exporter get the plain path.
    """
    if isinstance(input, torch.fx.Proxy):  # torch.fx.symbolic_trace
        return True
    if torch.jit.is_tracing() or torch.jit.is_scripting() or torch.onnx.is_in_onnx_export():
        return True
    exporting = getattr(torch.compiler, "is_exporting", None)
    return bool(exporting is not None and exporting())


def plain_window(geometry: Geometry):
    """``(padding, output_padding, crop_begin, crop_end)`` for a string padding's window.

    ``geometry`` is the layer's, at any input size (:data:`PROBE`, say): torch's
    arguments where PyTorch's convention can express the window, else its
    symmetric part as ``padding`` and the rest as a crop (negative: zeros
    appended).
    """
    ndim = geometry.ndim
    args = Plan(geometry, geometry.groups, geometry.groups).torch_args  # the channels do not enter the window
    if args is not None:
        return tuple(args[0]), tuple(args[1]), (0,) * ndim, (0,) * ndim
    sym = tuple(max(0, min(ax.crop_begin, ax.crop_end)) for ax in geometry)
    return (sym, (0,) * ndim, tuple(ax.crop_begin - p for ax, p in zip(geometry, sym)),
            tuple(ax.crop_end - p for ax, p in zip(geometry, sym)))


def crop_or_pad(y: torch.Tensor, bias: torch.Tensor | None, crop_begin: list[int],
                crop_end: list[int]) -> torch.Tensor:
    """Keep ``crop_begin : size - crop_end`` on the last ``len(crop_begin)`` axes, then add ``bias``.

    Negative crops append zeros, and the bias goes on them too (TF and Keras
    'same' where the kernel is shorter than the stride). Written in
    TorchScript's subset, batched or not.
    """
    nd = len(crop_begin)
    pads: list[int] = []
    for i in range(nd):
        dim = i - nd
        begin, end = crop_begin[i], crop_end[i]
        if begin > 0 or end > 0:
            # a slice with a negative end, not narrow(): the exported Slice then holds constants, not Shape
            # ops; int64's max means "to the end", as y[a:] passes it
            y = torch.ops.aten.slice(y, dim, max(begin, 0), -end if end > 0 else 9223372036854775807)
    for i in range(nd - 1, -1, -1):  # F.pad lists the last axis first
        pads.append(max(-crop_begin[i], 0))
        pads.append(max(-crop_end[i], 0))
    if any(p > 0 for p in pads):
        y = F.pad(y, pads)
    if bias is not None:
        shape: list[int] = [-1]
        for _ in range(nd):
            shape.append(1)
        y = y + bias.view(shape)
    return y
