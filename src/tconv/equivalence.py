"""What else a transposed convolution is: a forward convolution's input gradient, and (sometimes) a resize-convolution.

Both answers are read off the layer's :class:`~tconv.geometry.Geometry`:

* **The forward convolution it is the gradient of.** Input ``j``'s tap ``t``
  lands at kept output ``o = j*s + t*d - crop_begin``; a forward convolution
  of an ``O``-sized input with stride ``s``, dilation ``d`` and padding
  ``(crop_begin, pad_after)`` reads exactly those positions for output ``j``,
  and has ``i`` outputs when ``crop_end <= pad_after < crop_end + s``. The
  framework's own arguments for that convolution come from its convention
  (``forward_names``, ``forward_native_args``) and are checked by
  :func:`tconv.forward.forward_axes`, which owns the forward size rules.
* **Resize-convolution.** Nearest-neighbour upsampling by ``s`` followed by a
  stride-1 convolution with a ``k'``-tap kernel ``w'`` (padding ``p``) is a
  transposed convolution with stride ``s`` and the *box-filtered* kernel
  ``flip(w') * ones(s)`` of ``k' + s - 1`` taps, keeping
  ``full[k'-1-p : full-(k'-1-p)]``. Zero-insertion upsampling plus a stride-1
  convolution is the transposed convolution itself.

Pure Python (no NumPy) except :func:`box_filtered_kernel`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from . import conventions
from .errors import ConfigError
from .geometry import AxisGeometry, Geometry

__all__ = ["ForwardEquivalent", "forward_equivalent", "box_filtered_kernel", "resize_conv_window"]


@dataclass(frozen=True)
class ForwardEquivalent:
    """The forward convolution whose input gradient a transposed layer is.

    Attributes
    ----------
    framework, api : str
        The framework and its forward layer (``Convention.forward_api``).
    args : dict or None
        Its arguments in the framework's own names; None when none exists.
    input_shape, output_shape : tuple of int
        The forward convolution's sizes: the layer's output and input.
    reason : str
        Why there is none (empty when there is one).
    pads : tuple of (int, int)
        Per axis, the forward input's explicit padding ``(before, after)``
        (empty where the crop is negative).
    """

    framework: str
    api: str
    args: dict | None
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    reason: str = ""
    pads: tuple[tuple[int, int], ...] = ()

    def __str__(self) -> str:
        if self.args is None:
            return f"no {self.api} has this layer as its input gradient: {self.reason}"
        args = ", ".join(f"{k}={v!r}" for k, v in self.args.items())
        return (f"{self.api}({args}) maps {_fmt(self.input_shape)} -> {_fmt(self.output_shape)}; "
                "this layer is its input gradient (the transpose)")


def _fmt(shape) -> str:
    return "x".join(map(str, shape))


def _one(values: tuple[int, ...]) -> Any:
    return values[0] if len(set(values)) == 1 else tuple(values)


def _padding_candidates(convention, axes: tuple[AxisGeometry, ...]) -> list[Any]:
    """Generic padding values worth trying, most idiomatic first: modes, symmetric ints, (before, after) pairs."""
    found: list[Any] = list(convention.forward_padding_modes)
    sym = [ax.crop_begin if ax.crop_end <= ax.crop_begin < ax.crop_end + ax.stride else None for ax in axes]
    if None not in sym:  # integers first where the framework's default padding is one (PyTorch's 0 over 'valid')
        default = convention.forward_defaults.get(convention.forward_names[2])
        at = 0 if isinstance(default, int) and not isinstance(default, bool) else len(found)
        found.insert(at, _one(tuple(sym)))  # type: ignore[arg-type]
    found.append([(ax.crop_begin, max(ax.crop_end, 0)) for ax in axes])
    return found


def _matches(rows, axes: tuple[AxisGeometry, ...]) -> bool:
    return all(
        row.pad_before == ax.crop_begin and ax.crop_end <= row.pad_after < ax.crop_end + ax.stride
        and row.output_size == ax.input_size and row.stride == ax.stride and row.dilation == ax.dilation
        for row, ax in zip(rows, axes)
    )


def forward_equivalent(geom: Geometry) -> ForwardEquivalent:
    """The forward convolution (in the framework's own arguments) whose input gradient ``geom`` is.

    Examples
    --------
    >>> import tconv
    >>> print(forward_equivalent(tconv.geometry((8, 8), 3, "keras", strides=2, padding="same")))
    keras.layers.Conv*D(strides=2, padding='same') maps 16x16 -> 8x8; this layer is its input gradient (the transpose)
    >>> print(forward_equivalent(tconv.geometry(4, 3, "pytorch", stride=2, padding=1, output_padding=1)))
    nn.Conv*d / F.conv*d(stride=2, padding=1) maps 8 -> 4; this layer is its input gradient (the transpose)
    >>> forward_equivalent(tconv.geometry(4, 3, "onnx", strides=[2], pads=[0, 1])).args
    {'strides': [2], 'pads': [0, 1]}
    """
    from .forward import forward_axes

    axes = tuple(geom)
    ndim = len(axes)
    if geom.framework == "geometry":
        raise ConfigError("forward_equivalent needs a framework's geometry (tconv.geometry(..., framework=...))")
    convention = conventions.get(geom.framework)
    out, inp = geom.output_shape, geom.input_shape

    pads = tuple((ax.crop_begin, max(ax.crop_end, 0)) for ax in axes)

    def none(reason: str, pads: tuple = ()) -> ForwardEquivalent:
        return ForwardEquivalent(geom.framework, convention.forward_api, None, out, inp, reason, pads)

    if geom.wrap:
        return none("the layer folds its output circularly; a zero-padded forward convolution does not")
    if geom.empty:
        return none("the output is empty")
    negative = [n for n, ax in enumerate(axes) if ax.crop_begin < 0 or ax.crop_end + ax.stride - 1 < 0]
    if negative:
        return none(f"the window reaches past the full output on axis {negative[0]} (a negative crop), which "
                    "would need negative forward padding (slicing the forward input)")
    if convention.forward_names[1] is None and any(ax.dilation > 1 for ax in axes):
        return none(f"{convention.forward_api} has no dilation argument")
    def value(name: str | None, per_axis: tuple[int, ...]) -> Any:
        # an argument whose default is None is a per-axis list there (ONNX strides, lax window_strides)
        if name in convention.forward_defaults and convention.forward_defaults[name] is None:
            return list(per_axis)
        return _one(per_axis)

    stride_name, dilation_name, _ = convention.forward_names
    generic: dict[str, Any] = {"stride": value(stride_name, tuple(ax.stride for ax in axes))}
    if any(ax.dilation > 1 for ax in axes):
        generic["dilation"] = value(dilation_name, tuple(ax.dilation for ax in axes))
    tried: list[dict] = []
    for padding in _padding_candidates(convention, axes):
        try:
            args = convention.forward_native_args({**generic, "padding": padding}, ndim)
            tried.append(args)
        except (ConfigError, TypeError, ValueError):
            continue
    pads_name = convention.forward_names[2]
    flat = [ax.crop_begin for ax in axes] + [max(ax.crop_end, 0) for ax in axes]
    try:  # the all-begins-then-all-ends spelling (ONNX's pads)
        base = convention.forward_native_args(generic, ndim)
        tried.append({**base, pads_name: flat})
    except (ConfigError, TypeError, ValueError):
        pass
    for args in tried:
        try:
            rows = forward_axes(out, geom.kernel_size, geom.framework, **args)
        except (ConfigError, TypeError, ValueError, KeyError, IndexError):
            continue
        if _matches(rows, axes):
            return ForwardEquivalent(geom.framework, convention.forward_api, args, out, inp, "", pads)
    return none(f"none of {convention.title}'s {pads_name} values pads the forward input by "
                + ", ".join(f"({b}, {a})" for b, a in pads)
                + f"; pad the input that way first, then convolve with {pads_name} 0", pads)


def resize_conv_window(ax: AxisGeometry) -> dict[str, Any] | None:
    """One axis as a resize-convolution, where one matches: the conv's kernel size and padding.

    Nearest upsampling by ``s`` then a stride-1 conv with ``k' = k - s + 1``
    taps and padding ``p`` keeps ``full[k'-1-p : full-(k'-1-p)]`` of this
    layer's full output, *if* this layer's kernel is box-filtered. Returns
    ``{"k": k', "p": p, "same_window": bool}`` (``p`` chosen so the windows
    start together), or None where the kernel is shorter than the stride or
    dilated.

    >>> resize_conv_window(AxisGeometry(4, 4, 2, 1, 1, 1))
    {'k': 3, 'p': 1, 'same_window': True}
    >>> resize_conv_window(AxisGeometry(4, 3, 2, 1, 0, 1))
    {'k': 2, 'p': 1, 'same_window': False}
    """
    if ax.dilation != 1 or ax.kernel_size < ax.stride:
        return None
    k = ax.kernel_size - ax.stride + 1
    p = max(k - 1 - ax.crop_begin, 0)
    return {"k": k, "p": p, "same_window": ax.crop_begin == ax.crop_end == k - 1 - p}


def box_filtered_kernel(w: Any, stride: Any) -> Any:
    """The transposed-convolution kernel of a resize-convolution: ``flip(w)`` convolved with ``ones(s)`` per axis.

    ``F.conv_transpose(x, box_filtered_kernel(w, s), stride=s)``, windowed by
    :func:`resize_conv_window`, equals ``F.conv(F.interpolate(x, scale_factor=s), w)``.

    >>> box_filtered_kernel([1, 2, 3], 2).tolist()
    [3, 5, 3, 1]
    """
    import numpy as np

    v = np.flip(np.asarray(w))
    strides = (stride,) * v.ndim if isinstance(stride, int) else tuple(stride)
    for axis, s in enumerate(strides):
        shape = list(v.shape)
        shape[axis] += s - 1
        out = np.zeros(shape, dtype=v.dtype)
        for shift in range(s):
            index = [slice(None)] * v.ndim
            index[axis] = slice(shift, shift + v.shape[axis])
            out[tuple(index)] += v
        v = out
    return v
