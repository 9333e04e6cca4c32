"""Solve for arguments: which settings of a framework give the output size you want.

:func:`solve` lists every legal argument set of one framework that turns an
input size into an output size; :func:`invert` finds the transposed layer that
undoes a forward convolution's size change.

Both *enumerate candidates and validate each with* :func:`tconv.geometry`, the
one source of truth for sizes: the per-framework candidate generators below
only propose arguments (using the uncropped size as a hint); a candidate is a
solution only if the framework's convention accepts it and yields exactly the
requested size.
"""
from __future__ import annotations

import itertools
import sys
import types
import warnings
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator, Sequence

from . import conventions
from .api import geometry as _geometry
from .errors import ConfigError, FrameworkQuirkWarning
from .forward import forward_axes
from .geometry import AxisGeometry, Geometry, full_size

__all__ = ["Solution", "Unreachable", "Inversion", "solve", "invert", "DEFAULT_MAX_KERNEL", "DEFAULT_MAX_STRIDE"]

#: kernels tried when ``kernel_size`` is not given: 1..DEFAULT_MAX_KERNEL
DEFAULT_MAX_KERNEL = 7
#: strides tried when ``stride`` is not given: 1..DEFAULT_MAX_STRIDE
DEFAULT_MAX_STRIDE = 4
#: the most (kernel, stride, dilation) triples searched per axis before refusing
MAX_SEARCH = 4096
#: the most solutions assembled across axes before refusing
MAX_SOLUTIONS = 2000


class Unreachable(ConfigError):
    """No argument set reaches the requested output; ``.nearest`` holds the closest reachable sizes per axis."""

    def __init__(self, message: str, nearest: tuple[tuple[int, ...], ...] = ()):
        super().__init__(message)
        self.nearest = nearest


@dataclass(frozen=True)
class Solution:
    """One argument set that gives the requested output.

    Attributes
    ----------
    framework : str
    kernel_size : tuple of int
    args : dict
        The framework's own argument names: ``tconv.output_shape(input_shape,
        solution.kernel_size, framework, **solution.args)`` gives the output.
    geometry : Geometry
        What those arguments do: per axis the uncropped size and kept window.
    """

    framework: str
    kernel_size: tuple[int, ...]
    args: dict
    geometry: Geometry = field(compare=False, repr=False)

    @property
    def kept(self) -> tuple[tuple[int, int], ...]:
        """Per axis the kept window ``[start, stop)`` of the uncropped output."""
        return tuple(ax.kept for ax in self.geometry)

    @property
    def output_shape(self) -> tuple[int, ...]:
        return self.geometry.output_shape

    @property
    def exact_window(self) -> bool:
        """True when the window lies inside the uncropped output (no zero rows added)."""
        return all(0 <= start and stop <= ax.full for ax, (start, stop) in zip(self.geometry, self.kept))

    def __str__(self) -> str:
        kernel = _collapse(self.kernel_size)
        args = ", ".join(f"{k}={v!r}" for k, v in self.args.items())
        shown = [f"full[{a}:{b}] of {ax.full}" for ax, (a, b) in zip(self.geometry, self.kept)]
        windows = shown[0] if len(set(shown)) == 1 else ", ".join(shown)
        return f"kernel_size={kernel!r}, {args}  keeps {windows}"


# ---------------------------------------------------------------------------
# Per-framework candidate generators. Each yields, for ONE axis, (mode, values):
# ``mode`` is what must agree across axes (a padding string, whether
# output_padding is given), ``values`` the per-axis numbers. ``assemble``
# turns one mode and the per-axis values into the framework's arguments.
# ---------------------------------------------------------------------------
Axis = tuple[int, int, int, int, int]  # (i, k, s, d, o)


def _collapse(values: Sequence[Any]) -> Any:
    values = tuple(values)
    return values[0] if len(set(values)) == 1 else values


def _windows(i: int, k: int, s: int, d: int, out: int) -> Iterator[AxisGeometry]:
    """The sensible windows of an explicit-padding framework, one per kept window.

    Each end may crop at most ``K-1`` (more would drop whole kernel footprints, as no
    'same'/'valid' mode does) and add at most ``stride-1`` zeros (as output_padding
    can): ``-(s-1) <= crop <= K-1`` on both sides. This also bounds the search.
    """
    full = full_size(i, k, s, d)
    K = d * (k - 1) + 1
    low, high = -(s - 1), K - 1
    surplus = full - out
    for begin in range(max(low, surplus - high), min(high, surplus - low) + 1):
        yield AxisGeometry(i, k, s, d, begin, surplus - begin)


class _Family:
    """Candidate generator for one framework."""

    def options(self, i: int, k: int, s: int, d: int, o: int) -> Iterable[tuple[tuple, dict]]:
        raise NotImplementedError

    def assemble(self, mode: tuple, values: list[dict], strides: tuple, dilations: tuple, outputs: tuple) -> dict:
        raise NotImplementedError


class _PyTorch(_Family):
    def options(self, i, k, s, d, o):
        full = full_size(i, k, s, d)
        for op in range(max(s, d)):
            removed = full + op - o  # both ends lose `padding`
            if removed >= 0 and removed % 2 == 0:
                yield (), {"padding": removed // 2, "output_padding": op}

    def assemble(self, mode, values, strides, dilations, outputs):
        args = {"stride": _collapse(strides), "padding": _collapse(v["padding"] for v in values)}
        if any(v["output_padding"] for v in values):
            args["output_padding"] = _collapse(v["output_padding"] for v in values)
        if any(d != 1 for d in dilations):
            args["dilation"] = _collapse(dilations)
        return args


class _MXNet(_PyTorch):
    def options(self, i, k, s, d, o):
        for mode, values in super().options(i, k, s, d, o):
            yield ("pad",), values
        yield ("target_shape",), {}

    def assemble(self, mode, values, strides, dilations, outputs):
        args = {"stride": _collapse(strides)}
        if mode == ("target_shape",):
            args["target_shape"] = tuple(outputs)
        else:
            args["pad"] = _collapse(v["padding"] for v in values)
            if any(v["output_padding"] for v in values):
                args["adj"] = _collapse(v["output_padding"] for v in values)
        if any(d != 1 for d in dilations):
            args["dilate"] = _collapse(dilations)
        return args


class _Caffe(_Family):
    def options(self, i, k, s, d, o):
        removed = full_size(i, k, s, d) - o
        if removed >= 0 and removed % 2 == 0:
            yield (), {"pad": removed // 2}

    def assemble(self, mode, values, strides, dilations, outputs):
        args = {"stride": _collapse(strides), "pad": _collapse(v["pad"] for v in values)}
        if any(d != 1 for d in dilations):
            args["dilation"] = _collapse(dilations)
        return args


class _Keras(_Family):
    def options(self, i, k, s, d, o):
        for padding in ("same", "valid"):
            yield (padding, False), {}
        for padding in ("same", "valid"):
            for op in range(s):
                yield (padding, True), {"output_padding": op}

    def assemble(self, mode, values, strides, dilations, outputs):
        padding, with_op = mode
        args = {"strides": _collapse(strides), "padding": padding}
        if with_op:
            args["output_padding"] = _collapse(v["output_padding"] for v in values)
        if any(d != 1 for d in dilations):
            args["dilation_rate"] = _collapse(dilations)
        return args


class _TensorFlow(_Family):
    def options(self, i, k, s, d, o):
        yield ("SAME",), {}
        yield ("VALID",), {}
        for ax in _windows(i, k, s, d, o):
            if ax.crop_begin >= 0:
                # One pair per window: the end padding only has to pass TF's check that the
                # forward conv of the output gives back the input; the window's own end is canonical.
                yield ("explicit",), {"pad": [ax.crop_begin, max(ax.crop_end, 0)]}

    def assemble(self, mode, values, strides, dilations, outputs):
        args = {"output_shape": tuple(outputs), "strides": tuple(strides)}
        args["padding"] = [v["pad"] for v in values] if mode == ("explicit",) else mode[0]
        if any(d != 1 for d in dilations):
            args["dilations"] = tuple(dilations)
        return args


class _Jax(_Family):
    dilation_name = "rhs_dilation"
    strings: tuple[str, ...] = ("SAME", "VALID")

    def options(self, i, k, s, d, o):
        for padding in self.strings:
            yield (padding,), {}
        for ax in _windows(i, k, s, d, o):
            yield ("explicit",), {"pad": ax.conv_padding}

    def assemble(self, mode, values, strides, dilations, outputs):
        args = {"strides": tuple(strides)}
        args["padding"] = [tuple(v["pad"]) for v in values] if mode == ("explicit",) else mode[0]
        if any(d != 1 for d in dilations):
            args[self.dilation_name] = tuple(dilations)
        return args


class _Flax(_Jax):
    dilation_name = "kernel_dilation"
    strings = ("SAME", "VALID", "CIRCULAR")


class _Onnx(_Family):
    def options(self, i, k, s, d, o):
        for auto_pad in ("SAME_UPPER", "SAME_LOWER", "VALID"):
            yield (auto_pad,), {}
        yield ("output_shape",), {}
        for ax in _windows(i, k, s, d, o):
            # a window past the end needs output_padding; the rest is pads
            op = max(-ax.crop_end, 0)
            yield ("pads",), {"pads": (ax.crop_begin, ax.crop_end + op), "output_padding": op}

    def assemble(self, mode, values, strides, dilations, outputs):
        args: dict[str, Any] = {"strides": list(strides)}
        if any(d != 1 for d in dilations):
            args["dilations"] = list(dilations)
        if mode == ("pads",):
            args["pads"] = [v["pads"][0] for v in values] + [v["pads"][1] for v in values]
            if any(v["output_padding"] for v in values):
                args["output_padding"] = [v["output_padding"] for v in values]
        elif mode == ("output_shape",):
            args["output_shape"] = list(outputs)
        else:
            args["auto_pad"] = mode[0]
        return args


class _TFLite(_Family):
    def options(self, i, k, s, d, o):
        yield ("SAME",), {}
        yield ("VALID",), {}

    def assemble(self, mode, values, strides, dilations, outputs):
        if len(strides) == 1:  # checking one axis: TFLite is always 2-D
            strides, outputs = strides * 2, outputs * 2
        return {"output_shape": tuple(outputs), "padding": mode[0], "strides": tuple(strides)}


_FAMILIES: dict[str, _Family] = {
    "pytorch": _PyTorch(), "keras": _Keras(), "tensorflow": _TensorFlow(), "jax": _Jax(), "flax": _Flax(),
    "onnx": _Onnx(), "tflite": _TFLite(), "mxnet": _MXNet(), "caffe": _Caffe(),
}
_FAMILIES["tf_keras"] = _FAMILIES["keras"]  # same arguments; its convention adds tf.keras 2's checks
# Frameworks whose convention needs these many axes at least (TFLite is 2-D only).
_MIN_NDIM = {"tflite": 2}


def _quiet_geometry(input_shape, kernel_size, framework, **args) -> Geometry:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FrameworkQuirkWarning)
        return _geometry(input_shape, kernel_size, framework, **args)


def _check(framework: str, family: _Family, axes: Sequence[Axis], mode: tuple, values: list[dict], ndim: int) -> Geometry | None:
    """Validate an argument set through tconv.geometry; None when illegal or off target."""
    inputs = tuple(a[0] for a in axes)
    kernel = tuple(a[1] for a in axes)
    strides = tuple(a[2] for a in axes)
    dilations = tuple(a[3] for a in axes)
    outputs = tuple(a[4] for a in axes)
    if len(axes) < ndim:  # a 2-D-only framework checks one axis as two equal ones
        repeat = ndim // len(axes)
        inputs, kernel, outputs = inputs * repeat, kernel * repeat, outputs * repeat
        strides, dilations, values = strides * repeat, dilations * repeat, values * repeat
    args = family.assemble(mode, values, strides, dilations, outputs)
    try:
        got = _quiet_geometry(inputs, kernel, framework, **args)
    except ConfigError:
        return None
    if got.output_shape != outputs:
        return None
    return got


def _axis_solutions(framework: str, family: _Family, i: int, o: int, kernels: Sequence[int], strides: Sequence[int], dilations: Sequence[int]) -> list[tuple[Axis, tuple, dict]]:
    found = []
    ndim = _MIN_NDIM.get(framework, 1)
    for k, s, d in itertools.product(kernels, strides, dilations):
        for mode, values in family.options(i, k, s, d, o):
            axis = (i, k, s, d, o)
            if _check(framework, family, [axis], mode, [values], ndim) is not None:
                found.append((axis, mode, values))
    return found


def _values_range(name: str, given: Any, ndim: int, default_max: int, upper: int | None) -> list[Sequence[int]]:
    """Per axis, the values to try: the given int/tuple, a range, or 1..max (ranges stay lazy until bounded)."""
    if given is None:
        top = default_max if upper is None else upper
        return [range(1, top + 1)] * ndim
    if isinstance(given, range):
        if len(given) and given[0] < 1:
            raise ConfigError(f"{name}={given!r} must hold positive integers")
        return [given] * ndim
    if isinstance(given, (list, tuple)):
        if len(given) != ndim:
            raise ConfigError(f"{name}={given!r} has {len(given)} entries but the input has {ndim} spatial axes")
        return [[_positive(name, v)] for v in given]
    return [[_positive(name, given)]] * ndim


def _positive(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{name}={value!r} must be a positive integer")
    return value


def _shape(name: str, value: Any) -> tuple[int, ...]:
    if isinstance(value, (list, tuple)):
        if not value:
            raise ConfigError(f"{name}=() is empty: give at least one spatial size")
        return tuple(_positive(f"{name}[{n}]", v) for n, v in enumerate(value))
    return (_positive(name, value),)


def solve(
    input_shape: Any,
    output_shape: Any,
    framework: str = "pytorch",
    kernel_size: Any = None,
    stride: Any = None,
    dilation: Any = None,
    *,
    max_kernel: int = DEFAULT_MAX_KERNEL,
    max_stride: int = DEFAULT_MAX_STRIDE,
    limit: int | None = None,
) -> list[Solution]:
    """Every legal argument set of ``framework`` taking ``input_shape`` to ``output_shape``.

    Parameters
    ----------
    input_shape, output_shape : int or tuple of int
        Spatial sizes; an int is the same size on every axis.
    framework : str
        One of ``tconv.conventions.names()``.
    kernel_size, stride, dilation : int, tuple, range or None
        Fixed values (an int or one per axis), a ``range`` of values to try, or
        None: kernels ``1..max_kernel`` and strides ``1..max_stride`` are tried
        and dilation is 1.
    max_kernel, max_stride : int
        Upper bounds of the search when kernel or stride is not fixed
        (defaults 7 and 4).
    limit : int, optional
        Return at most this many solutions (the simplest ones).

    Returns
    -------
    list of Solution
        Simplest first: fewest arguments away from the defaults, then the
        smallest stride, kernel and padding. Frameworks with explicit padding
        pairs (TensorFlow, JAX, Flax, ONNX pads) list one pair per kept window,
        for windows that crop at most ``K-1`` and add at most ``stride-1``
        zeros at each end. Axes with the same input, output and constraints
        get the same arguments.

    Raises
    ------
    Unreachable
        (a ConfigError) when nothing reaches the output: says why, with the
        nearest reachable sizes in the message and in ``.nearest``.
    ConfigError
        Unknown framework, bad sizes, or a search space above the bounds.

    Examples
    --------
    >>> import tconv
    >>> for s in tconv.solve(8, 16, "pytorch", kernel_size=3):
    ...     print(s)
    kernel_size=3, stride=2, padding=1, output_padding=1  keeps full[1:17] of 17
    kernel_size=3, stride=3, padding=4  keeps full[4:20] of 24
    kernel_size=3, stride=3, padding=5, output_padding=2  keeps full[5:21] of 24
    kernel_size=3, stride=4, padding=8, output_padding=1  keeps full[8:24] of 31
    kernel_size=3, stride=4, padding=9, output_padding=3  keeps full[9:25] of 31
    >>> [s.args for s in tconv.solve((8, 8), (16, 16), "keras", kernel_size=3, stride=2)]
    [{'strides': 2, 'padding': 'same'}, {'strides': 2, 'padding': 'same', 'output_padding': 1}]
    """
    framework = conventions.canonical(framework)
    family = _FAMILIES[framework]
    inputs = _shape("input_shape", input_shape)
    outputs = _shape("output_shape", output_shape)
    ndim = max(len(inputs), len(outputs))
    for name, value in (("kernel_size", kernel_size), ("stride", stride), ("dilation", dilation)):
        if isinstance(value, (list, tuple)):
            ndim = max(ndim, len(value))
    if framework == "tflite":
        ndim = max(ndim, 2)
    inputs = inputs * ndim if len(inputs) == 1 else inputs
    outputs = outputs * ndim if len(outputs) == 1 else outputs
    if len(inputs) != ndim or len(outputs) != ndim:
        raise ConfigError(f"input_shape {inputs} and output_shape {outputs} must have the same number of spatial axes")
    kernels = _values_range("kernel_size", kernel_size, ndim, max_kernel, None)
    strides = _values_range("stride", stride, ndim, max_stride, None)
    dilations = _values_range("dilation", 1 if dilation is None else dilation, ndim, 1, None)
    convention = conventions.get(framework)
    if framework in ("tflite",) and any(d != [1] for d in dilations):
        raise ConfigError(f"{convention.title} has no dilation")
    for n in range(ndim):
        count = len(kernels[n]) * len(strides[n]) * len(dilations[n])
        if count > MAX_SEARCH:
            raise ConfigError(
                f"the search space is too large: {len(kernels[n])} kernels x {len(strides[n])} strides x "
                f"{len(dilations[n])} dilations = {count} on axis {n}, above the bound of {MAX_SEARCH}; fix "
                "kernel_size or stride, or give smaller max_kernel/max_stride (defaults: kernels "
                f"1..{DEFAULT_MAX_KERNEL}, strides 1..{DEFAULT_MAX_STRIDE})"
            )

    # Axes that pose the same problem share one per-axis search and one answer.
    problems: dict[tuple, list[int]] = {}
    for n in range(ndim):
        key = (inputs[n], outputs[n], tuple(kernels[n]), tuple(strides[n]), tuple(dilations[n]))
        problems.setdefault(key, []).append(n)
    per_problem = {key: _axis_solutions(framework, family, key[0], key[1], key[2], key[3], key[4]) for key in problems}

    empty = [key for key, found in per_problem.items() if not found]
    if empty:
        raise _unreachable(framework, family, inputs, outputs, empty, problems)

    total = 1
    for found in per_problem.values():
        total *= len(found)
    if total > MAX_SOLUTIONS:
        raise ConfigError(
            f"{total} argument combinations across the axes exceed the bound of {MAX_SOLUTIONS}: fix kernel_size "
            "or stride, or make the axes alike"
        )
    solutions = []
    seen = set()
    keys = list(per_problem)
    for combo in itertools.product(*(per_problem[key] for key in keys)):
        modes = {mode for _, mode, _ in combo}
        if len(modes) != 1:
            continue
        chosen: list = [None] * ndim
        for key, entry in zip(keys, combo):
            for n in problems[key]:
                chosen[n] = entry
        axes = [entry[0] for entry in chosen]
        values = [entry[2] for entry in chosen]
        mode = chosen[0][1]
        if framework == "tensorflow" and ndim != 2 and mode == ("explicit",):
            continue  # tf.nn.conv1d/3d_transpose reject explicit padding ("Expected string for argument 'padding'")
        args = family.assemble(mode, values, tuple(a[2] for a in axes), tuple(a[3] for a in axes), outputs)
        got = _check(framework, family, axes, mode, values, ndim)
        if got is None:
            continue
        kernel = tuple(a[1] for a in axes)
        marker = (kernel, repr(args))
        if marker in seen:
            continue
        seen.add(marker)
        solutions.append(Solution(framework, kernel, args, got))
    if not solutions:
        raise Unreachable(
            f"{convention.title} reaches each axis of {outputs} from {inputs}, but with padding modes that cannot "
            "be combined in one layer; solve the axes separately or fix kernel_size/stride"
        )
    solutions.sort(key=lambda s: _simplicity(s, convention))
    return solutions[:limit] if limit is not None else solutions


def _simplicity(solution: Solution, convention) -> tuple:
    changed = 0
    magnitude = 0
    for key, value in solution.args.items():
        if key in ("strides", "stride", "stride_h", "stride_w"):
            continue
        if key == "output_shape" and convention.name in ("tensorflow", "tflite"):
            continue  # required there
        default = convention.defaults.get(key)
        if value != default:
            changed += 1
        for number in _numbers(value):
            magnitude += abs(number)
    return (
        len(set(solution.kernel_size)) > 1 or len(set(solution.geometry.stride)) > 1,
        bool(solution.geometry.notes),  # configurations the framework mishandles go last
        not solution.exact_window,
        max(solution.geometry.stride),
        changed,
        max(solution.kernel_size),
        magnitude,
    )


def _numbers(value: Any) -> Iterator[int]:
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return
    if isinstance(value, int):
        yield value
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _numbers(v)


def _reachable(framework: str, family: _Family, i: int, o: int, key: tuple) -> bool:
    return bool(_axis_solutions(framework, family, i, o, key[2], key[3], key[4]))


def _unreachable(framework, family, inputs, outputs, empty, problems) -> Unreachable:
    title = conventions.get(framework).title
    parts = []
    nearest_all = []
    for key in empty:
        i, o, kernels, strides, dilations = key
        reach = 4 * max(strides) * max(kernels) + 64  # look this far on each side, no further
        below = next((x for x in range(o - 1, max(o - reach, 0), -1) if _reachable(framework, family, i, x, key)), None)
        above = next((x for x in range(o + 1, o + reach) if _reachable(framework, family, i, x, key)), None)
        nearest = tuple(x for x in (below, above) if x is not None)
        nearest_all.append(nearest)
        axes = ", ".join(map(str, problems[key]))
        space = (
            f"kernel_size in {_span(kernels)}, stride in {_span(strides)}, dilation in {_span(dilations)}"
        )
        near = " or ".join(map(str, nearest)) if nearest else "none nearby"
        parts.append(f"axis {axes}: no {title} arguments with {space} take {i} to {o}; nearest reachable: {near}")
    return Unreachable("; ".join(parts), tuple(nearest_all))


def _span(values: Sequence[int]) -> str:
    values = list(values)
    if len(values) == 1:
        return str(values[0])
    if values == list(range(values[0], values[-1] + 1)):
        return f"{values[0]}..{values[-1]}"
    return "{" + ", ".join(map(str, values)) + "}"


# ---------------------------------------------------------------------------
# invert
# ---------------------------------------------------------------------------
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
        preferring the window that is the conv's exact transpose, and
        ``.works_for``: the input sizes those arguments restore.

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
    """
    framework = conventions.canonical(framework)
    rows = forward_axes(input_shape, kernel_size, framework, **conv_args)
    inputs = tuple(r.input_size for r in rows)
    middle = tuple(r.output_size for r in rows)
    kernel = tuple(r.kernel_size for r in rows)
    stride = tuple(r.stride for r in rows)
    dilation = tuple(r.dilation for r in rows)
    found = solve(middle, inputs, framework, kernel_size=kernel, stride=stride, dilation=dilation)
    wanted = tuple(r.pad_before for r in rows)
    adjoint = [s for s in found if s.geometry.crop_begin == wanted]
    best = adjoint[0] if adjoint else found[0]
    alternatives = []
    if framework == "pytorch":
        alternatives.append({"stride": best.args["stride"], "padding": best.args["padding"], "output_size": inputs,
                             **({"dilation": best.args["dilation"]} if "dilation" in best.args else {})})
    works = tuple(_works_for(framework, best, rows, kernel, conv_args, n) for n in range(len(rows)))
    return Inversion(framework, kernel, best.args, tuple(alternatives), inputs, middle, bool(adjoint), works, best.geometry)


def _works_for(framework: str, solution: Solution, rows, kernel, conv_args: dict, axis: int) -> str:
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
            got = _quiet_geometry(tuple(inputs), solution.kernel_size, framework, **_with_output(solution.args, axis, n))
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


def _with_output(args: dict, axis: int, size: int) -> dict:
    # arguments that name the output size must follow the input size being tried
    changed = dict(args)
    for key in ("output_shape", "output_size", "target_shape"):
        if key in changed and changed[key] is not None:
            values = list(changed[key])
            values[axis] = size
            changed[key] = type(changed[key])(values)
    return changed


class _CallableModule(types.ModuleType):
    """``import tconv.solve`` makes the attribute ``tconv.solve`` this module (Python binds
    submodules to their parent), so the module itself calls :func:`solve`: ``tconv.solve(...)``
    works whichever was touched first."""

    def __call__(self, *args: Any, **kwargs: Any) -> list[Solution]:
        return solve(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
