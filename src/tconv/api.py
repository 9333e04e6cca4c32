"""The public arithmetic API: ``geometry``, ``output_shape``.

``input_shape`` and ``kernel_size`` are spatial. An int means one axis, or the
same size on every axis when another argument gives the number of axes, as
the framework itself reads it. ``**args`` are the framework's own argument
names.
"""
from __future__ import annotations

from typing import Any

from . import conventions
from .geometry import Geometry


def geometry(input_shape: Any, kernel_size: Any, framework: str = "pytorch", **args: Any) -> Geometry:
    """The per-axis geometry of a transposed convolution under ``framework``'s rules.

    Parameters
    ----------
    input_shape : int or tuple of int
        Spatial input size(s).
    kernel_size : int or tuple of int
        Spatial kernel size(s).
    framework : str
        One of ``tconv.conventions.names()`` (aliases like ``"torch"``, ``"tf"`` work).
    **args
        The framework's own arguments, e.g. ``stride``, ``padding`` for PyTorch,
        ``strides``, ``padding``, ``output_padding`` for Keras.

    Returns
    -------
    Geometry
        Per axis: input, kernel, stride, dilation, the uncropped size and the
        kept window.

    Raises
    ------
    ConfigError
        When the framework would reject the configuration, or an argument is
        unknown, mistyped or out of range.

    Examples
    --------
    >>> import tconv
    >>> g = tconv.geometry((2, 2), 2, framework="pytorch", stride=2, padding=1)
    >>> g.full_shape, g.output_shape, g.crop_begin, g.crop_end
    ((4, 4), (2, 2), (1, 1), (1, 1))
    """
    return conventions.get(framework).to_geometry(input_shape, kernel_size, **args)


def output_shape(input_shape: Any, kernel_size: Any, framework: str = "pytorch", **args: Any) -> tuple[int, ...]:
    """The spatial output shape of a transposed convolution under ``framework``'s rules.

    Takes the same arguments as :func:`geometry`.

    Examples
    --------
    >>> import tconv
    >>> tconv.output_shape((8, 8), 3, framework="keras", strides=2, padding="same")
    (16, 16)
    >>> tconv.output_shape((96, 128), 3, framework="keras", strides=2, padding="valid")
    (193, 257)
    >>> tconv.output_shape(12, 5, framework="pytorch", stride=2)
    (27,)
    >>> tconv.output_shape(12, 5, framework="pytorch", stride=2, output_padding=1)
    (28,)
    """
    return geometry(input_shape, kernel_size, framework, **args).output_shape
