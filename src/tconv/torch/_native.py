"""tconv.torch's calls into the C loops of :mod:`tconv._native`, on torch tensors.

What torch's strided copies do slowly: a table-driven gather (the phase
landing, and col2im without a scatter), the same gather weighted per channel
and tap (depthwise layers) and a tiled channels-last to channels-first
transpose. The build, the tables (:class:`AxisTable`) and :func:`native_status`
live in :mod:`tconv._native`; where the loops cannot be had (:func:`library` is
None) every caller uses torch's own ops instead, with the same results.

The loops run with OpenMP on torch's own thread count.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from .. import _native as _shared
from .._native import (_TRANSPOSE, PARALLEL_MIN_ELEMENTS, AxisTable, _unit, library,  # noqa: F401
                       native_status)

#: dtypes the gather may sum (float) or only copy (2-byte floats, moved as bits)
_GATHER = {torch.float32: "tconv_gather_f32", torch.float64: "tconv_gather_f64",
           torch.float16: "tconv_gather_b16", torch.bfloat16: "tconv_gather_b16"}
_SUMS = (torch.float32, torch.float64)


def _threads(elements: int) -> int:
    # one thread in a forked child: see tconv._native.forked
    return 1 if elements < PARALLEL_MIN_ELEMENTS or _shared.forked() else max(1, torch.get_num_threads())


_NUMPY_DTYPES = {torch.float32: np.float32, torch.float64: np.float64}


def can_depthwise_last(dtype: torch.dtype) -> bool:
    """Whether :func:`depthwise_last` (the channels-last depthwise loop) takes this dtype."""
    return library() is not None and dtype in _NUMPY_DTYPES


def depthwise_last(x: torch.Tensor, w: torch.Tensor, out: torch.Tensor, bias: torch.Tensor | None, axes: tuple) -> torch.Tensor:
    """:class:`tconv._native.DepthwiseLast` on tensors: ``x`` ``(N, *I, C)``, ``w`` ``(*k, C)``,
    ``out`` ``(N, *O, C)``, all contiguous, and ``bias`` ``(C,)`` or None, of one dtype;
    ``axes`` as that class takes them. On torch's thread count."""
    channels, batch = out.shape[-1], out.shape[0]
    call = _shared.depthwise_last(_NUMPY_DTYPES[out.dtype], channels, axes)
    call.run(x.data_ptr(), w.data_ptr(), out.data_ptr(), None if bias is None else bias.data_ptr(), batch,
             _threads(call.elements(batch)))
    return out


def can_gather(dtype: torch.dtype, sums: bool) -> bool:
    """Whether :class:`Gather` takes this dtype (2-byte floats only for copies)."""
    return library() is not None and (dtype in _SUMS if sums else dtype in _GATHER)


class Gather:
    """``out[p, *o] = (fill +) sum of src.data[plane_offsets[p] + sum_a axes[a] terms]``, as a prepared call.

    ``Gather(...)(src, out, fill)``: ``out`` contiguous, ``(P, *sizes)`` with
    ``sizes`` those of ``axes``; ``src`` any CPU tensor of the same dtype whose
    storage holds every offset (offsets count from ``src``'s first element;
    the caller guarantees they stay inside it); ``fill`` of ``out``'s dtype,
    contiguous, or None. Everything but the three tensors is worked out once,
    so a call costs one ctypes call (the tables must outlive it: this object
    keeps them).

    Parameters
    ----------
    dtype : torch.dtype
        Of ``src``, ``out`` and ``fill``.
    plane_offsets : Tensor
        int64, where each output plane's terms start in ``src``.
    axes : list of AxisTable
        One per output axis (1 to 3).
    add_fill : bool
        Add the fill to every element (a bias), or write it only where no term lands.
    fill_period : int
        Plane ``p`` takes ``fill[p % fill_period]``: the channel count for a
        bias over image-major planes, the plane count for one value per plane.
    """

    __slots__ = ("_fn", "_head", "_fixed", "_elements", "_keep")

    def __init__(self, dtype: torch.dtype, plane_offsets: torch.Tensor, axes: list["AxisTable"], add_fill: bool,
                 fill_period: int) -> None:
        lead = [_unit()] * (3 - len(axes)) + list(axes[:-1])
        count, segments = axes[-1].segments()
        self._keep = (plane_offsets, axes, segments)
        self._fn = getattr(library(), _GATHER[dtype])
        self._head = (max(1, fill_period), int(add_fill))
        planes = plane_offsets.shape[0]
        self._fixed = (planes, plane_offsets.data_ptr(), *lead[0].args(), *lead[1].args(), axes[-1].size,
                       segments.ctypes.data, count, axes[-1].width)
        self._elements = planes * math.prod(table.size for table in axes)

    def __call__(self, src: torch.Tensor, out: torch.Tensor, fill: torch.Tensor | None) -> torch.Tensor:
        self._fn(src.data_ptr(), out.data_ptr(), None if fill is None else fill.data_ptr(), *self._head,
                 _threads(self._elements), *self._fixed)
        return out


_DEPTHWISE = {torch.float32: "tconv_depthwise_f32", torch.float64: "tconv_depthwise_f64"}


def depthwise(x: torch.Tensor, weight: torch.Tensor, out: torch.Tensor, plane_offsets: torch.Tensor,
              weight_offsets: torch.Tensor, axes: list[AxisTable], tap_units: list[int],
              fill: torch.Tensor | None, fill_period: int) -> torch.Tensor:
    """Like :class:`Gather`, each term times ``weight.data[weight_offsets[p] + sum_a tap_a * tap_units[a]]``.

    ``x`` and ``weight`` contiguous, of ``out``'s dtype (float32 or float64);
    the tables' offsets address ``x`` (whose planes have no tap axis), their
    taps the weight. ``fill[p % fill_period]`` (the bias) is added to every
    element of plane ``p``.
    """
    lib = library()
    pad = 3 - len(axes)
    lead = [_unit()] * pad + list(axes[:-1])
    units = [0] * pad + list(tap_units[:-1])
    count, segments = axes[-1].segments()
    getattr(lib, _DEPTHWISE[out.dtype])(
        x.data_ptr(), out.data_ptr(), weight.data_ptr(), None if fill is None else fill.data_ptr(),
        max(1, fill_period), _threads(out.numel()), plane_offsets.shape[0], plane_offsets.data_ptr(),
        weight_offsets.data_ptr(), *lead[0].weighted_args(units[0]), *lead[1].weighted_args(units[1]),
        axes[-1].size, segments.ctypes.data, count, axes[-1].width)
    return out


def can_transpose(t: torch.Tensor) -> bool:
    return library() is not None and t.element_size() in _TRANSPOSE and t.device.type == "cpu"


def channels_first(src: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """``out[n, c, p] = src[n, p, c]`` for a channels-last ``src`` viewed (N, P, C) contiguous, ``out`` (N, C, P)."""
    n, c = src.shape[0], src.shape[1]
    positions = src.numel() // max(1, n * c)
    getattr(library(), _TRANSPOSE[src.element_size()])(src.data_ptr(), out.data_ptr(), n, positions, c,
                                                        _threads(src.numel()))
    return out
