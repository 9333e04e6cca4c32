"""The :class:`Plan`: what every strategy reads about a layer, taken from one :class:`tconv.Geometry`."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import torch

from ...conventions import get as _convention
from ...errors import ConfigError
from ...geometry import Geometry

__all__ = ["Plan"]


class _memo:
    """``functools.cached_property`` without its lock.

    Before Python 3.12 ``cached_property`` takes an ``RLock`` on first use,
    and torch.compile cannot trace a lock: it would break the graph there and
    run the whole strategy eagerly. A Plan is immutable, so computing a value
    twice in a race is harmless.
    """

    def __init__(self, fn: Callable) -> None:
        self.fn, self.name, self.__doc__ = fn, fn.__name__, fn.__doc__

    def __get__(self, obj: Any, owner: Any = None) -> Any:
        if obj is None:
            return self
        value = obj.__dict__[self.name] = self.fn(obj)  # later reads find the instance attribute
        return value


def _torch_args(geometry: Geometry) -> tuple[tuple[int, ...], tuple[int, ...]] | None:
    """PyTorch's ``(padding, output_padding)`` for exactly this window, from the PyTorch convention; else None."""
    try:
        expressed = _convention("pytorch").from_geometry(geometry)
    except ConfigError:
        return None
    if not expressed.exact:
        return None
    args = expressed.geometry.args  # normalized: one entry per axis
    return tuple(args["padding"]), tuple(args["output_padding"])


# torch.compile: the convention's Python (warnings filters included) runs eagerly, once per plan
_torch_args_eager = torch.compiler.disable(_torch_args) if hasattr(torch, "compiler") else _torch_args


@dataclass(frozen=True)
class Plan:
    """What every strategy needs, all taken from one :class:`tconv.Geometry`.

    Parameters
    ----------
    geometry : Geometry
        Sizes, kernel, stride, dilation, groups and the kept window.
    in_channels, out_channels : int
        ``C_in`` and ``C_out`` of the layer (all groups).
    """

    geometry: Geometry
    in_channels: int
    out_channels: int

    # Cached: the modules' fast path reads these on every call, and a Plan never changes.
    @_memo
    def ndim(self) -> int:
        return self.geometry.ndim

    @_memo
    def groups(self) -> int:
        return self.geometry.groups

    @_memo
    def stride(self) -> tuple[int, ...]:
        return self.geometry.stride

    @_memo
    def dilation(self) -> tuple[int, ...]:
        return self.geometry.dilation

    @_memo
    def kernel(self) -> tuple[int, ...]:
        return self.geometry.kernel_size

    @_memo
    def input_shape(self) -> tuple[int, ...]:
        return self.geometry.input_shape

    @_memo
    def torch_args(self) -> tuple[tuple[int, ...], tuple[int, ...]] | None:
        """(padding, output_padding) when F.conv_transpose keeps exactly this window, else None.

        PyTorch's convention decides (:meth:`tconv.conventions.pytorch.PyTorch.from_geometry`):
        its rule on ``output_padding`` is the convention's, not the strategies'.
        """
        return _torch_args_eager(self.geometry)

    def flops(self, batch: int) -> int:
        """Multiply-adds times two: ``2 * N * C_in * prod(I) * C_out/groups * prod(k)``."""
        return 2 * batch * self.in_channels * math.prod(self.input_shape) * (self.out_channels // self.groups) * math.prod(self.kernel)

    @property
    def non_overlapping(self) -> bool:
        """Whether every output element gets at most one tap: ``d*(k-1)+1 <= s`` on every axis."""
        return all(ax.dilated_kernel <= ax.stride for ax in self.geometry)

    @property
    def depthwise(self) -> bool:
        """One input channel per group: nothing for a GEMM to reduce over."""
        return self.in_channels == self.groups

    @property
    def window_inside_full(self) -> bool:
        """Whether the kept window lies inside the full output (no zeros added at either end)."""
        return all(ax.crop_begin >= 0 and ax.crop_end >= 0 for ax in self.geometry)
