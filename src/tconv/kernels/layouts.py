"""Where each framework keeps batch, channels and space in its arrays: the one layout table.

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
from typing import Any

import numpy as np

from ..errors import ConfigError

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


def _channels_first_layout(rank: int, what: str) -> Layout:
    spatial = tuple(range(2, rank))
    return Layout((0, 1, *spatial), (0, 1, *spatial), (0, 1, *spatial), False, what)


def _channels_last(rank: int) -> tuple[int, ...]:
    return (0, rank - 1, *range(1, rank - 1))


def _data_format_first(value: Any, framework: str) -> bool:
    if value is None:
        return False
    text = str(value).lower()
    if text in ("channels_first",) or text.startswith("nc"):
        return True
    if text in ("channels_last",) or (text.startswith("n") and text.endswith("c")):
        return False
    raise ConfigError(f"data_format={value!r} is not a layout {framework} knows")


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
    n = rank - 2
    spatial = tuple(range(n))
    if framework in ("pytorch", "onnx", "caffe"):
        return _channels_first_layout(rank, "input (N, C, *spatial), weight (C_in, C_out/groups, *k)")
    if framework == "mxnet":
        layout = args.get("layout")
        if layout is not None and not str(layout).upper().startswith("NC"):
            raise ConfigError(f"layout={layout!r}: tconv supports MXNet's channels-first layouts (NCW, NCHW, NCDHW)")
        return _channels_first_layout(rank, "input (N, C, *spatial), weight (C_in, num_filter/num_group, *k)")
    if framework in ("keras", "tf_keras", "tensorflow", "tflite"):
        first = _data_format_first(args.get("data_format"), framework) if framework != "tflite" else False
        x = (0, 1, *range(2, rank)) if first else _channels_last(rank)
        if framework == "tflite":
            w = (rank - 1, 0, *range(1, rank - 1))
            what = "input (N, H, W, C), weight OHWI (C_out, H, W, C_in)"
        else:
            w = (n + 1, n, *spatial)
            what = f"input {'(N, C, *spatial)' if first else '(N, *spatial, C)'}, kernel (*k, C_out, C_in)"
        return Layout(x, w, x, False, what)
    if framework == "flax":
        transpose = bool(args.get("transpose_kernel", False))
        w = (n + 1, n, *spatial) if transpose else (n, n + 1, *spatial)
        what = "input (N, *spatial, C), kernel " + ("(*k, C_out, C_in)" if transpose else "(*k, C_in, C_out)")
        return Layout(_channels_last(rank), w, _channels_last(rank), not transpose, what)
    if framework == "jax":
        lhs, rhs, out = _jax_specs(args.get("dimension_numbers"), rank)
        transpose = bool(args.get("transpose_kernel", False))
        # rhs = (O, I, *spatial). Without transpose_kernel, I is the input channels and the
        # kernel is correlated as given (flipped in PyTorch's terms); with it, lax flips the
        # spatial axes and swaps I and O first, so O holds the input channels, unflipped.
        w = (rhs[0], rhs[1], *rhs[2:]) if transpose else (rhs[1], rhs[0], *rhs[2:])
        return Layout(lhs, w, out, not transpose, f"dimension_numbers lhs={lhs}, rhs={rhs}, out={out}")
    raise ConfigError(f"no array layout known for framework {framework!r}")


_JAX_DEFAULTS = {1: ("NC", "IO", "NC"), 2: ("NHC", "HIO", "NHC"), 3: ("NHWC", "HWIO", "NHWC"), 4: ("NHWDC", "HWDIO", "NHWDC")}


def _jax_specs(dimension_numbers: Any, rank: int) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    """``(lhs, rhs, out)`` as ``(batch/O, feature/I, *spatial)`` axis tuples, like lax."""
    if dimension_numbers is None:
        if rank - 1 not in _JAX_DEFAULTS:
            raise ConfigError(f"jax.lax.conv_transpose has no default dimension_numbers for {rank}-D arrays")
        dimension_numbers = _JAX_DEFAULTS[rank - 1]
    if hasattr(dimension_numbers, "lhs_spec"):  # lax.ConvDimensionNumbers: already axis tuples
        specs = (dimension_numbers.lhs_spec, dimension_numbers.rhs_spec, dimension_numbers.out_spec)
        return tuple(tuple(int(a) for a in spec) for spec in specs)  # type: ignore[return-value]
    if not (isinstance(dimension_numbers, (list, tuple)) and len(dimension_numbers) == 3
            and all(isinstance(s, str) for s in dimension_numbers)):
        raise ConfigError(
            f"dimension_numbers={dimension_numbers!r} must be three strings like ('NHWC', 'HWIO', 'NHWC') "
            "or a lax.ConvDimensionNumbers"
        )
    lhs_spec, rhs_spec, out_spec = dimension_numbers
    for spec, pair in ((lhs_spec, "NC"), (rhs_spec, "OI"), (out_spec, "NC")):
        if len(spec) != rank or any(spec.count(c) != 1 for c in pair) or len(set(spec)) != len(spec):
            raise ConfigError(
                f"dimension_numbers spec {spec!r} must have {rank} distinct letters including "
                f"{pair[0]!r} and {pair[1]!r} (the arrays have {rank} dimensions)"
            )
    if sorted(lhs_spec.replace("N", "").replace("C", "")) != sorted(rhs_spec.replace("O", "").replace("I", "")) or \
            sorted(out_spec.replace("N", "").replace("C", "")) != sorted(rhs_spec.replace("O", "").replace("I", "")):
        raise ConfigError(f"dimension_numbers={dimension_numbers!r}: the spatial letters must match in all three specs")

    def perm(spec: str, pair: str) -> tuple[int, ...]:
        spatial_axes = [i for i, c in enumerate(spec) if c not in pair]
        if spec is not rhs_spec:
            spatial_axes.sort(key=lambda i: rhs_spec.index(spec[i]))
        return (spec.index(pair[0]), spec.index(pair[1]), *spatial_axes)

    return perm(lhs_spec, "NC"), perm(rhs_spec, "OI"), perm(out_spec, "NC")
