"""Forward (ordinary) convolution sizes, per framework: the one place tconv computes them.

:func:`tconv.invert` needs to know what a framework's *forward* convolution
does to a size before it can undo it. Every framework's forward convolution
reduces to one per-axis rule once its padding is written as explicit
``(pad_before, pad_after)``::

    out = floor((i + pad_before + pad_after - K) / s) + 1,   K = d*(k-1) + 1

and the frameworks differ only in how their padding arguments become those
two numbers ('same' / 'SAME_UPPER' put an odd extra at the end, 'SAME_LOWER'
at the start, 'valid' pads nothing). This module turns each framework's own
conv arguments into :class:`ForwardAxis` rows; the tests check the sizes
against the real frameworks.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from . import conventions
from .conventions._base import choice, integer, per_axis, sizes
from .errors import ConfigError, closest_name

__all__ = ["ForwardAxis", "forward_axes", "forward_output_size", "FORWARD_API"]

# framework -> (what its forward layer is called, its size-relevant arguments and defaults)
FORWARD_API: dict[str, tuple[str, dict[str, Any]]] = {
    "pytorch": ("nn.Conv*d / F.conv*d", {"stride": 1, "padding": 0, "dilation": 1, "groups": 1, "padding_mode": "zeros"}),
    "keras": ("keras.layers.Conv*D", {"strides": 1, "padding": "valid", "dilation_rate": 1, "groups": 1, "data_format": None}),
    "tf_keras": ("tf_keras.layers.Conv*D", {"strides": 1, "padding": "valid", "dilation_rate": 1, "groups": 1, "data_format": None}),
    "tensorflow": ("tf.nn.convolution / tf.nn.conv2d", {"strides": 1, "padding": "VALID", "dilations": None, "data_format": None}),
    "jax": ("jax.lax.conv_general_dilated", {"window_strides": None, "padding": "VALID", "rhs_dilation": None, "feature_group_count": 1, "dimension_numbers": None}),
    "flax": ("flax.linen.Conv", {"strides": 1, "padding": "SAME", "kernel_dilation": 1, "feature_group_count": 1}),
    "onnx": ("ONNX Conv", {"auto_pad": "NOTSET", "pads": None, "strides": None, "dilations": None, "group": 1, "kernel_shape": None}),
    "tflite": ("TFLite CONV_2D", {"padding": "SAME", "stride_h": 1, "stride_w": 1, "strides": None}),
    "mxnet": ("MXNet Convolution", {"stride": 1, "pad": 0, "dilate": 1, "num_group": 1}),
    "caffe": ("Caffe Convolution", {"stride": 1, "pad": 0, "dilation": 1, "group": 1}),
}


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
        return self.dilation * (self.kernel_size - 1) + 1

    @property
    def output_size(self) -> int:
        """``floor((i + pad_before + pad_after - K) / s) + 1``."""
        return (self.input_size + self.pad_before + self.pad_after - self.dilated_kernel) // self.stride + 1


def _same_pads(i: int, K: int, s: int, extra_at_start: bool = False) -> tuple[int, int]:
    # 'same' means ceil(i/s) outputs; the padding that needs is split evenly, odd extra at the end
    # (TF, Keras, PyTorch, ONNX SAME_UPPER, lax 'SAME') or at the start (ONNX/lax SAME_LOWER).
    out = -(-i // s)
    total = max((out - 1) * s + K - i, 0)
    small = total // 2
    return (total - small, small) if extra_at_start else (small, total - small)


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
    name = conventions.canonical(framework)
    title = conventions.get(name).title
    api, defaults = FORWARD_API[name]
    for key in conv_args:
        if key not in defaults:
            close = closest_name(key, defaults)
            hint = f"; did you mean {close!r}?" if close else ""
            raise ConfigError(f"{title} {api} has no argument {key!r}{hint} Its size arguments are: {', '.join(defaults)}")
    args = {**defaults, **conv_args}
    ndim = 2 if name == "tflite" else _ndim(input_shape, kernel_size, args)
    inputs = sizes("input_shape", input_shape, ndim, title)
    kernel = sizes("kernel_size", kernel_size, ndim, title)

    def axes_values(key: str, default: int = 1) -> tuple[int, ...]:
        value = args[key]
        if value is None:
            value = default
        if name in ("tensorflow",) and isinstance(value, (list, tuple)) and len(value) == ndim + 2:
            value = value[1:-1]
        return per_axis(key, value, ndim, title, minimum=1)

    stride_key, dilation_key = {
        "pytorch": ("stride", "dilation"), "keras": ("strides", "dilation_rate"), "tf_keras": ("strides", "dilation_rate"), "tensorflow": ("strides", "dilations"),
        "jax": ("window_strides", "rhs_dilation"), "flax": ("strides", "kernel_dilation"), "onnx": ("strides", "dilations"),
        "tflite": ("strides", None), "mxnet": ("stride", "dilate"), "caffe": ("stride", "dilation"),
    }[name]
    if name == "tflite":
        strides = axes_values("strides") if args["strides"] is not None else (
            integer("stride_h", args["stride_h"], title, 1), integer("stride_w", args["stride_w"], title, 1))
        dilation = (1,) * ndim
    else:
        strides = axes_values(stride_key)
        dilation = axes_values(dilation_key)

    padding_key = {"mxnet": "pad", "caffe": "pad"}.get(name, "padding")
    padding = args[padding_key] if name != "onnx" else None
    rows = []
    for n, (i, k, s, d) in enumerate(zip(inputs, kernel, strides, dilation)):
        K = d * (k - 1) + 1
        if name == "onnx":
            mode = choice("auto_pad", args["auto_pad"], ("NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID"), title)
            if mode == "NOTSET":
                pads = [0] * (2 * ndim) if args["pads"] is None else list(args["pads"])
                if len(pads) != 2 * ndim:
                    raise ConfigError(f"pads={pads!r} must have {2 * ndim} entries (all begins, then all ends) in ONNX")
                before, after = pads[n], pads[n + ndim]
            elif mode == "VALID":
                before, after = 0, 0
            else:
                before, after = _same_pads(i, K, s, extra_at_start=mode == "SAME_LOWER")
        elif isinstance(padding, str):
            options = {
                "pytorch": ("same", "valid"), "keras": ("same", "valid"), "tf_keras": ("same", "valid"), "tensorflow": ("SAME", "VALID"),
                "jax": ("SAME", "SAME_LOWER", "VALID"), "flax": ("SAME", "SAME_LOWER", "VALID"),
                "tflite": ("SAME", "VALID"),
            }.get(name)
            if options is None:
                raise ConfigError(f"{padding_key}={padding!r}: {title} {api} takes integer padding")
            mode = choice(padding_key, padding, options, title, case_sensitive=False).upper()
            if mode == "VALID":
                before, after = 0, 0
            else:
                if name == "pytorch" and s != 1:
                    raise ConfigError(
                        f"padding='same' is not supported for strided convolutions in PyTorch (stride={strides}); "
                        "give integer padding"
                    )
                before, after = _same_pads(i, K, s, extra_at_start=mode == "SAME_LOWER")
        else:
            before, after = _explicit_pair(name, padding, n, ndim, title)
        row = ForwardAxis(i, k, s, d, before, after)
        if row.output_size < 1:
            raise ConfigError(
                f"{title}: the forward convolution would have {row.output_size} outputs on axis {n}: input {i} "
                f"padded by ({before}, {after}) is shorter than the dilated kernel {K}"
            )
        rows.append(row)
    return tuple(rows)


def _explicit_pair(name: str, padding: Any, n: int, ndim: int, title: str) -> tuple[int, int]:
    if name in ("tensorflow", "jax", "flax") and isinstance(padding, (list, tuple)):
        if name == "tensorflow" and len(padding) == ndim + 2:
            padding = padding[1:-1]
        if len(padding) != ndim:
            raise ConfigError(f"padding={padding!r} must have one (before, after) pair per spatial axis in {title}")
        entry = padding[n]
        if isinstance(entry, (list, tuple)) and len(entry) == 2:
            return integer("padding", entry[0], title, 0), integer("padding", entry[1], title, 0)
        if name == "flax":
            value = integer("padding", entry, title, 0)
            return value, value
        raise ConfigError(f"padding[{n}]={entry!r} must be a (before, after) pair in {title}")
    value = per_axis("padding", padding, ndim, title, minimum=0)[n]
    return value, value


def _ndim(input_shape: Any, kernel_size: Any, args: dict) -> int:
    # The input and kernel sizes set the number of axes; per-axis arguments must then match it.
    for value in (input_shape, kernel_size):
        if isinstance(value, (list, tuple)):
            return len(value)
    return 1


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
