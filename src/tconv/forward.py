"""Forward (ordinary) convolution sizes, per framework: the one place tconv computes them.

:func:`tconv.invert` needs to know what a framework's *forward* convolution
does to a size before it can undo it. Every framework's forward convolution
reduces to one per-axis rule once its padding is written as explicit
``(pad_before, pad_after)``::

    out = floor((i + pad_before + pad_after - K) / s) + 1,   K = d*(k-1) + 1

and the frameworks differ only in how their padding arguments become those
two numbers ('same' / 'SAME_UPPER' put an odd extra at the end, 'SAME_LOWER'
at the start, 'valid' pads nothing). Each convention owns its framework's
forward arguments and padding rules (``forward_api``, ``forward_pads``, ...);
this module turns them into :class:`ForwardAxis` rows. The tests check the
sizes against the real frameworks.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Iterator, Mapping, Tuple

from . import conventions
from .conventions._base import sizes
from .errors import ConfigError, closest_name
from .geometry import dilated_kernel_size

__all__ = ["ForwardAxis", "forward_axes", "forward_output_size", "FORWARD_API"]


class _ForwardApi(Mapping[str, Tuple[str, Dict[str, Any]]]):
    """framework -> (what its forward layer is called, its size-relevant arguments and defaults).

    Read from each convention (``forward_api``, ``forward_defaults``), which owns them.

    >>> FORWARD_API["keras"][1]["padding"]
    'valid'
    """

    def __getitem__(self, framework: str) -> tuple[str, dict[str, Any]]:
        convention = conventions.get(framework)
        return convention.forward_api, dict(convention.forward_defaults)

    def __iter__(self) -> Iterator[str]:
        return iter(conventions.names())

    def __len__(self) -> int:
        return len(conventions.names())


FORWARD_API = _ForwardApi()


@dataclass(frozen=True)
class ForwardAxis:
    """One spatial axis of a forward convolution, its padding written out explicitly."""

    input_size: int
    kernel_size: int
    stride: int
    dilation: int
    pad_before: int
    pad_after: int

    @property
    def dilated_kernel(self) -> int:
        return dilated_kernel_size(self.kernel_size, self.dilation)

    @property
    def output_size(self) -> int:
        """``floor((i + pad_before + pad_after - K) / s) + 1``."""
        return (self.input_size + self.pad_before + self.pad_after - self.dilated_kernel) // self.stride + 1


def forward_axes(input_shape: Any, kernel_size: Any, framework: str = "pytorch", **conv_args: Any) -> tuple[ForwardAxis, ...]:
    """Per axis: the forward convolution's stride, dilation and explicit padding.

    Parameters
    ----------
    input_shape, kernel_size : int or tuple of int
        Spatial sizes.
    framework : str
        A framework name (see ``tconv.conventions.names()``).
    **conv_args
        The framework's own *forward* convolution arguments (``FORWARD_API``).

    Returns
    -------
    tuple of ForwardAxis

    Raises
    ------
    ConfigError
        Unknown argument, a padding mode the framework lacks, or an empty output.

    Examples
    --------
    >>> [(a.pad_before, a.pad_after, a.output_size) for a in forward_axes(28, 3, "keras", strides=2, padding="same")]
    [(0, 1, 14)]
    """
    convention = conventions.get(framework)
    title, api, defaults = convention.title, convention.forward_api, convention.forward_defaults
    for key in conv_args:
        if key not in defaults:
            close = closest_name(key, defaults)
            hint = f"; did you mean {close!r}?" if close else ""
            raise ConfigError(f"{title} {api} has no argument {key!r}{hint} Its size arguments are: {', '.join(defaults)}")
    args = {**defaults, **conv_args}
    ndim = convention.forward_ndim(input_shape, kernel_size)
    inputs = sizes("input_shape", input_shape, ndim, title)
    kernel = sizes("kernel_size", kernel_size, ndim, title)
    strides = convention.forward_strides(args, ndim)
    dilations = convention.forward_dilations(args, ndim)
    pads = convention.forward_pads(args, ndim, inputs, kernel, strides, dilations)
    rows = []
    for n, (i, k, s, d, (before, after)) in enumerate(zip(inputs, kernel, strides, dilations, pads)):
        row = ForwardAxis(i, k, s, d, before, after)
        if row.output_size < 1:
            raise ConfigError(
                f"{title}: the forward convolution would have {row.output_size} outputs on axis {n}: input {i} "
                f"padded by ({before}, {after}) is shorter than the dilated kernel {row.dilated_kernel}"
            )
        rows.append(row)
    return tuple(rows)


def forward_output_size(input_shape: Any, kernel_size: Any, framework: str = "pytorch", **conv_args: Any) -> tuple[int, ...]:
    """The spatial output size of a framework's *forward* convolution.

    Examples
    --------
    >>> forward_output_size(28, 5, "pytorch", stride=2)
    (12,)
    >>> forward_output_size((28, 27), 3, "keras", strides=2, padding="same")
    (14, 14)
    """
    return tuple(row.output_size for row in forward_axes(input_shape, kernel_size, framework, **conv_args))
