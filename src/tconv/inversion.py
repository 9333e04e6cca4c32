"""Invert a forward convolution: the transposed layer that gives its input size back.

:func:`invert` reads the forward convolution's sizes from :mod:`tconv.forward`,
asks :func:`tconv.solve` for the transposed layers (same kernel, stride and
dilation) that take the conv's output back to its input size, and prefers the
one whose kept window is the conv's exact transpose. It also says which input
sizes that one argument set restores, trying each through the conventions.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any, Sequence

from . import conventions
from .api import geometry as _geometry
from .errors import ConfigError, FrameworkQuirkWarning
from .forward import forward_axes
from .geometry import Geometry

__all__ = ["Inversion", "invert"]


@dataclass(frozen=True)
class Inversion:
    """The transposed layer that restores a forward convolution's input size.

    Attributes
    ----------
    framework : str
    kernel_size : tuple of int
    args : dict
        The framework's transposed-convolution arguments (``tconv.output_shape``
        accepts them) that give back the input size.
    alternatives : tuple of dict
        Other argument sets that also give it back (e.g. PyTorch ``output_size``).
    conv_output_shape : tuple of int
        What the forward convolution produces.
    adjoint : bool
        True when ``args`` keep the window that is the forward convolution's
        exact transpose (its gradient): every pixel lands where it came from.
    works_for : tuple of str
        Per axis, which input sizes ``args`` restore (the same arguments fail
        for the others when stride > 1).
    geometry : Geometry
    assumed : tuple of str
        What invert took for granted about the forward convolution where the
        call did not say: its padding (the framework's default) and the number
        of axes when one size stands for several.
    """

    framework: str
    kernel_size: tuple[int, ...]
    args: dict
    alternatives: tuple[dict, ...]
    input_shape: tuple[int, ...]
    conv_output_shape: tuple[int, ...]
    adjoint: bool
    works_for: tuple[str, ...]
    geometry: Geometry = field(repr=False)
    assumed: tuple[str, ...] = ()

    def __str__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.args.items())
        lines = [
            f"conv: {_fmt(self.input_shape)} -> {_fmt(self.conv_output_shape)}; transposed: {args} gives "
            f"{_fmt(self.geometry.output_shape)}" + (" (the exact transpose of the conv)" if self.adjoint else ""),
        ]
        for alt in self.alternatives:
            lines.append("  or: " + ", ".join(f"{k}={v!r}" for k, v in alt.items()))
        for n, text in enumerate(self.works_for):
            lines.append(f"  axis {n}: these arguments restore {text}")
        return "\n".join(lines)


def _fmt(shape: Sequence[int]) -> str:
    return "x".join(map(str, shape))


def _quiet_geometry(input_shape, kernel_size, framework, **args) -> Geometry:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FrameworkQuirkWarning)
        return _geometry(input_shape, kernel_size, framework, **args)


def invert(input_shape: Any, kernel_size: Any, framework: str = "pytorch", **conv_args: Any) -> Inversion:
    """The transposed convolution that restores the input size of a forward convolution.

    Parameters
    ----------
    input_shape, kernel_size : int or tuple of int
        The forward convolution's spatial input and kernel sizes.
    framework : str
        The framework of both layers.
    **conv_args
        The *forward* convolution's own arguments (PyTorch ``stride, padding,
        dilation``; Keras ``strides, padding, dilation_rate``; TF ``strides,
        padding, dilations``; JAX ``window_strides, padding, rhs_dilation``;
        ONNX ``strides, pads, auto_pad, dilations``; see
        ``tconv.forward.FORWARD_API``).

    Returns
    -------
    Inversion
        ``.args`` for the transposed layer (same kernel, stride, dilation)
        preferring the window that is the conv's exact transpose,
        ``.works_for``: the input sizes those arguments restore, and
        ``.assumed``: the padding and axes taken for granted.

    Raises
    ------
    ConfigError
        Illegal forward arguments, or no transposed arguments restore the size.

    Examples
    --------
    Seed 003: Conv2d(k=5, s=2) takes 28 to 12 and ConvTranspose2d(k=5, s=2)
    gives 27; output_padding=1 (or output_size=28) restores 28:

    >>> import tconv
    >>> inv = tconv.invert((28, 28), 5, "pytorch", stride=2)
    >>> inv.conv_output_shape, inv.args, inv.alternatives
    ((12, 12), {'stride': 2, 'padding': 0, 'output_padding': 1}, ({'stride': 2, 'padding': 0, 'output_size': (28, 28)},))
    >>> inv.works_for[0]
    'every even input size >= 6 (n % 2 == 0)'
    >>> inv.assumed
    ('padding=0 (the default of nn.Conv*d / F.conv*d)',)

    TFLite's CONV_2D is 2-D and pads 'SAME' unless told otherwise:

    >>> tconv.invert(28, 5, "tflite", strides=2).assumed
    ("2 spatial axes (TFLite's op is 2-D)", "padding='SAME' (the default of TFLite CONV_2D)")
    """
    from .solving import solve  # solving imports this module: import it when called

    framework = conventions.canonical(framework)
    rows = forward_axes(input_shape, kernel_size, framework, **conv_args)
    inputs = tuple(r.input_size for r in rows)
    middle = tuple(r.output_size for r in rows)
    kernel = tuple(r.kernel_size for r in rows)
    stride = tuple(r.stride for r in rows)
    dilation = tuple(r.dilation for r in rows)
    found = solve(middle, inputs, framework, kernel_size=kernel, stride=stride, dilation=dilation, include_odd=True)
    wanted = tuple(r.pad_before for r in rows)
    adjoint = [s for s in found if s.geometry.crop_begin == wanted]
    best = adjoint[0] if adjoint else found[0]
    alternatives = conventions.get(framework).solve_family.invert_alternatives(best.args, inputs)
    works = tuple(_works_for(framework, best, rows, kernel, conv_args, n) for n in range(len(rows)))
    return Inversion(framework, kernel, best.args, tuple(alternatives), inputs, middle, bool(adjoint), works,
                     best.geometry, _assumed(framework, input_shape, kernel_size, len(rows), conv_args))


def _assumed(framework: str, input_shape: Any, kernel_size: Any, ndim: int, conv_args: dict) -> tuple[str, ...]:
    """What the forward convolution was taken to be where the call did not say."""
    convention = conventions.get(framework)
    assumed = []
    if ndim > 1 and not isinstance(input_shape, (list, tuple)):
        why = f"{convention.title}'s op is 2-D" if convention.max_ndim == 2 else f"kernel_size has {ndim} entries"
        assumed.append(f"{ndim} spatial axes ({why})")
    padding = convention.forward_padding_assumed(conv_args)
    if padding is not None:
        assumed.append(f"{padding} (the default of {convention.forward_api})")
    return tuple(assumed)


def _works_for(framework: str, solution, rows, kernel, conv_args: dict, axis: int) -> str:
    """Which input sizes along ``axis`` the same arguments restore, trying each one."""
    row = rows[axis]
    s = row.stride
    top = row.input_size + 4 * s + 2 * row.dilated_kernel
    base = [r.input_size for r in rows]
    ok, tried = [], []
    for n in range(1, top + 1):
        base[axis] = n
        try:
            middle = forward_axes(tuple(base), kernel, framework, **conv_args)[axis].output_size
        except ConfigError:
            continue
        tried.append(n)
        inputs = list(solution.geometry.input_shape)
        inputs[axis] = middle
        try:
            args = _with_output(solution.args, conventions.get(framework).cli_names.get("output_size"), axis, n)
            got = _quiet_geometry(tuple(inputs), solution.kernel_size, framework, **args)
        except ConfigError:
            continue
        if got.output_shape[axis] == n:
            ok.append(n)
    if not ok:
        return "no input size"
    if len(ok) == len(tried):
        return f"every input size >= {tried[0]}"
    residues = [r for r in range(s) if all(n in ok for n in tried if n % s == r)]
    if residues and s == 2 and len(residues) == 1:
        parity = "even" if residues[0] == 0 else "odd"
        return f"every {parity} input size >= {min(ok)} (n % 2 == {residues[0]})"
    if residues:
        first = min(n for n in ok if n % s in residues)
        return f"input sizes n >= {first} with n % {s} in {{{', '.join(map(str, residues))}}}"
    return "only input sizes " + ", ".join(map(str, ok[:12])) + (" ..." if len(ok) > 12 else "")


def _with_output(args: dict, key: str | None, axis: int, size: int) -> dict:
    # the argument that names the output size (the convention's ``output_size``) must follow the
    # input size being tried
    changed = dict(args)
    if key in changed and changed[key] is not None:
        values = list(changed[key])
        values[axis] = size
        changed[key] = type(changed[key])(values)
    return changed
