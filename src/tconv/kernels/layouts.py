"""How the kernels read each framework's arrays: a :class:`Layout` per call.

Each convention owns its framework's layout (``Convention.array_layout``); this
module turns it into the transposes the kernels need.

The kernels compute on one canonical form: the input as ``(N, *spatial, C)``
and the weight in PyTorch's meaning, ``(C_in, C_out/groups, *k)``, where
``out[n, co, j*s + d*t] += x[n, ci, j] * w[ci, co, t]`` (no flip). A
:class:`Layout` says, for one framework and one call, which array axis holds
what, and whether the framework's weight is spatially flipped relative to that
(JAX and Flax without ``transpose_kernel`` correlate the zero-inserted input
with the kernel as given, which is the flipped kernel in PyTorch's terms).

Checked against the real frameworks by tests/test_kernels_frameworks.py:

==============================  =====================  ===========================  =======
framework                       input (default)        weight                        flipped
==============================  =====================  ===========================  =======
pytorch, onnx, mxnet, caffe     ``(N, C, *sp)``        ``(C_in, C_out/g, *k)``       no
keras                           ``(N, *sp, C)``        ``(*k, C_out, C_in)``         no
tensorflow                      ``(N, *sp, C)``        ``(*k, C_out, C_in)``         no
jax (default dimension_numbers) ``(N, *sp, C)``        ``(*k, C_in, C_out)`` ("HWIO") yes
jax, ``transpose_kernel=True``  ``(N, *sp, C)``        ``(*k, C_out, C_in)``         no
flax                            ``(N, *sp, C)``        ``(*k, C_in, C_out)``         yes
flax, ``transpose_kernel=True`` ``(N, *sp, C)``        ``(*k, C_out, C_in)``         no
tflite                          ``(N, H, W, C)``       ``(C_out, H, W, C_in)`` OHWI  no
==============================  =====================  ===========================  =======

Keras' and TensorFlow's ``data_format`` (``channels_first``, ``NCHW``...) move the
channels of input and output, never the kernel's. JAX's ``dimension_numbers``
name every axis; spatial axes are matched by letter and ordered as in the
kernel spec, as ``lax.conv_general_permutations`` does.
"""
from __future__ import annotations

from dataclasses import dataclass


import numpy as np

__all__ = ["Layout", "layout_for"]


@dataclass(frozen=True)
class Layout:
    """Which axes hold what, for one framework and one call.

    Attributes
    ----------
    x : tuple of int
        Input array axes: ``(batch, channels, *spatial)`` in geometry order.
    w : tuple of int
        Weight array axes: ``(input channels, output channels per group, *spatial)``.
    out : tuple of int
        Output array axes, like ``x``.
    flipped : bool
        The weight is spatially flipped relative to PyTorch's.
    description : str
        The layout in words, for error messages.

    Examples
    --------
    >>> layout_for("keras", 4, {}).x
    (0, 3, 1, 2)
    >>> layout_for("pytorch", 4, {}).w
    (0, 1, 2, 3)
    """

    x: tuple[int, ...]
    w: tuple[int, ...]
    out: tuple[int, ...]
    flipped: bool
    description: str

    @property
    def ndim(self) -> int:
        return len(self.x) - 2

    # ---- input and output ----------------------------------------------------
    def spatial_input_shape(self, x: np.ndarray) -> tuple[int, ...]:
        return tuple(x.shape[a] for a in self.x[2:])

    def kernel_size(self, w: np.ndarray) -> tuple[int, ...]:
        return tuple(w.shape[a] for a in self.w[2:])

    def input_to_internal(self, x: np.ndarray) -> np.ndarray:
        """``(N, *spatial, C)``: a view whenever the memory already is channels-last."""
        return x.transpose((self.x[0], *self.x[2:], self.x[1]))

    def internal_to_output(self, y: np.ndarray) -> np.ndarray:
        """The framework's output layout from ``(N, *spatial, C)`` (a view)."""
        n = self.ndim
        perm = [0] * (n + 2)
        perm[self.out[0]] = 0
        perm[self.out[1]] = n + 1
        for a, axis in enumerate(self.out[2:]):
            perm[axis] = 1 + a
        return y.transpose(perm)

    def internal_to_input(self, x: np.ndarray) -> np.ndarray:
        """The framework's input layout from ``(N, *spatial, C)`` (for gradients)."""
        return Layout(self.x, self.w, self.x, self.flipped, self.description).internal_to_output(x)

    # ---- weights ---------------------------------------------------------------
    def weight_to_torch(self, w: np.ndarray) -> np.ndarray:
        """``(C_in, C_out/groups, *k)`` in PyTorch's meaning (a view)."""
        torch_like = w.transpose(self.w)
        if self.flipped:
            torch_like = torch_like[(slice(None), slice(None)) + (slice(None, None, -1),) * self.ndim]
        return torch_like

    def weight_from_torch(self, torch_like: np.ndarray) -> np.ndarray:
        """The inverse of :meth:`weight_to_torch` (for weight gradients)."""
        if self.flipped:
            torch_like = torch_like[(slice(None), slice(None)) + (slice(None, None, -1),) * self.ndim]
        return torch_like.transpose(np.argsort(self.w))


def layout_for(framework: str, rank: int, args: dict) -> Layout:
    """The :class:`Layout` of ``framework`` for arrays of ``rank`` dimensions and these args.

    Parameters
    ----------
    framework : str
        A canonical framework name (``tconv.conventions.canonical``).
    rank : int
        ``x.ndim``: spatial dimensions + 2.
    args : dict
        The framework's arguments (``data_format``, ``dimension_numbers``,
        ``transpose_kernel``, MXNet's ``layout``).

    Raises
    ------
    ConfigError
        For a layout the framework does not have.
    """
    from .. import conventions

    return Layout(*conventions.get(framework).array_layout(rank, args))
