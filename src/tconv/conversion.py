"""Convert a transposed-convolution layer between frameworks: same values, not only the same shape.

:func:`convert` reads the source layer's geometry (``tconv.geometry``), asks
the target's convention for the arguments that keep the same window
(``Convention.from_geometry``), and where the target cannot keep it by itself,
adds the exact slice (or zero pad) that does. :func:`convert_weights` moves
the kernel between layouts.

Kernel layouts and orientation, as the frameworks compute (checked against
torch, Keras/TF, JAX and onnxruntime in ``tests/test_convert.py``):

============================  =====================  =====================
framework                     kernel layout          spatial orientation
============================  =====================  =====================
PyTorch, ONNX, MXNet, Caffe   (in, out/groups, *k)   as stamped (no flip)
Keras, tf.nn.conv_transpose   (*k, out, in)          as stamped (no flip)
JAX lax / Flax (default)      (*k, in, out)          flipped
JAX/Flax transpose_kernel     (*k, out, in)          as stamped (no flip)
============================  =====================  =====================

"As stamped": input element ``x[j]`` adds ``w[m] * x[j]`` at uncropped output
position ``j*s + m*d``. lax without ``transpose_kernel`` *correlates* the
stride-dilated input with its kernel, which stamps the kernel reversed.
Only PyTorch, ONNX, MXNet and Caffe have channel groups; for the others a
grouped kernel becomes the equivalent dense block-diagonal kernel.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from . import conventions
from .api import geometry as _geometry
from .errors import ConfigError, FrameworkQuirkWarning
from .geometry import Geometry

__all__ = ["Conversion", "convert", "convert_weights", "LAYOUTS"]

#: framework -> kernel layout: "torch" (in, out/g, *k), "tf" (*k, out, in), "lax" (*k, in, out) flipped;
#: read from the conventions, which own them (``Convention.array_layout``)
LAYOUTS = {
    name: layout for name in conventions.names()
    if (layout := conventions.get(name).kernel_layout) is not None
}
_GROUPED = {name for name in conventions.names() if conventions.get(name).groups_argument}
_CHANNELS_FIRST = {name for name in conventions.names() if conventions.get(name).channels_first}
#: targets with a runnable snippet in ``Conversion.code``
CODE_TARGETS = ("pytorch", "keras", "tensorflow", "jax", "onnx")


@dataclass(frozen=True)
class Conversion:
    """A source layer written in a target framework.

    Attributes
    ----------
    source, target : str
    args : dict
        The target's own keyword arguments as its functional API takes them:
        ``F.conv_transpose2d(x, w, **args)``, ``keras.ops.conv_transpose(x, w,
        **args)``, ``jax.lax.conv_transpose(x, w, **args)``,
        ``onnx.helper.make_node("ConvTranspose", ..., **args)``. TensorFlow's
        ``output_shape`` here is spatial: add batch and channels (``.code`` does).
    crop : tuple of (int, int)
        Per spatial axis, how many elements to remove from the start and from
        the end of the target's output; negative means zeros (plus bias) to
        add. All zeros when the target alone is exact.
    code : str
        A runnable snippet: given ``x`` (input), ``w`` (kernel in the target's
        layout, see :func:`convert_weights`) and ``b`` (bias or None) as NumPy
        arrays in the target's layout, it leaves the source layer's output in
        ``y`` (a NumPy array).
    source_geometry, target_geometry : Geometry
        The source layer, and what ``args`` alone do in the target.
    kernel_size : tuple of int
    groups : int
        The source's channel groups (the target's weights are dense where it has none).
    """

    source: str
    target: str
    args: dict
    crop: tuple[tuple[int, int], ...]
    code: str
    source_geometry: Geometry = field(repr=False)
    target_geometry: Geometry = field(repr=False)
    kernel_size: tuple[int, ...] = ()
    groups: int = 1
    source_args: dict = field(default_factory=dict, repr=False)

    @property
    def exact(self) -> bool:
        """True when the target's arguments alone reproduce the source (no extra slice or pad)."""
        return all(b == 0 and e == 0 for b, e in self.crop)

    def weights(self, w: Any) -> np.ndarray:
        """The source kernel ``w`` in the target's layout (:func:`convert_weights` with this layer's options)."""
        return convert_weights(
            w, self.source, self.target, groups=self.groups,
            source_transpose_kernel=bool(self.source_args.get("transpose_kernel", False)),
            target_transpose_kernel=bool(self.args.get("transpose_kernel", False)),
        )

    def __str__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.args.items())
        text = f"{self.target}: {args}"
        if self.exact:
            return text + "  (exact)"
        parts = []
        for n, (b, e) in enumerate(self.crop):
            if b or e:
                parts.append(f"axis {n}: " + ", ".join(
                    (f"remove {v}" if v > 0 else f"add {-v} zeros") + f" at the {where}"
                    for v, where in ((b, "start"), (e, "end")) if v))
        return text + "\n  then " + "; ".join(parts)


def convert(input_shape: Any, kernel_size: Any, source: str = "keras", target: str = "pytorch", **source_args: Any) -> Conversion:
    """The target framework's arguments reproducing a source layer exactly.

    Parameters
    ----------
    input_shape, kernel_size : int or tuple of int
        Spatial sizes.
    source, target : str
        Framework names (``tconv.conventions.names()``).
    **source_args
        The source layer's own arguments.

    Returns
    -------
    Conversion
        ``.args`` for the target, ``.crop`` the extra slice/pad per axis,
        ``.code`` a runnable snippet.

    Raises
    ------
    ConfigError
        Illegal source arguments, unknown framework, or a target that cannot
        compute the layer even with a slice (e.g. Flax CIRCULAR elsewhere).

    Examples
    --------
    Keras 'same', k=3, s=2 keeps ``full[0:16]``; PyTorch's padding=1,
    output_padding=1 has the same shape but keeps ``full[1:17]``, one pixel
    off. The exact PyTorch layer keeps the whole ``full`` and slices the end:

    >>> import tconv
    >>> c = tconv.convert((8, 8), 3, source="keras", target="pytorch", strides=2, padding="same")
    >>> c.args, c.crop, c.exact
    ({'stride': 2, 'padding': 0}, ((0, 1), (0, 1)), False)
    >>> tconv.convert((8, 8), 4, "keras", "pytorch", strides=2, padding="same").args
    {'stride': 2, 'padding': 1}
    """
    source = conventions.canonical(source)
    target = conventions.canonical(target)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FrameworkQuirkWarning)
        src = _geometry(input_shape, kernel_size, source, **source_args)
        if src.wrap and target != "flax":
            raise ConfigError(
                f"{source} padding='CIRCULAR' folds the output periodically; {conventions.get(target).title} has no "
                "wrapping transposed convolution, and no slice or pad reproduces it: convert from padding 'VALID' "
                "and fold the result yourself"
            )
        try:
            expressed = conventions.get(target).from_geometry(src, avoid_quirks=True)
        except ConfigError:
            if target != "tensorflow":
                raise
            expressed = None  # TF rejects this output_shape outright; the fallback below slices instead
    if expressed is not None:
        args, crop, target_geometry = dict(expressed.args), expressed.extra_crop, expressed.geometry
    if target == "tensorflow" and (expressed is None or src.ndim != 2 and not isinstance(args.get("padding"), str)):
        # tf.nn.conv1d_transpose / conv3d_transpose take only 'SAME'/'VALID' (explicit pairs are 2-D only),
        # and some windows have no legal output_shape: keep the whole uncropped output with VALID
        # (always legal) and slice the source's window out of it.
        args = {"output_shape": src.full_shape, "strides": src.stride, "padding": "VALID"}
        if any(d != 1 for d in src.dilation):
            args["dilations"] = src.dilation
        target_geometry = _geometry(src.input_shape, src.kernel_size, "tensorflow", **args)
        crop = tuple((want.crop_begin - have.crop_begin, want.crop_end - have.crop_end)
                     for want, have in zip(src.axes, target_geometry.axes))
    if target == "tensorflow" and isinstance(args.get("padding"), list):
        # tf.nn.conv_transpose takes explicit padding with the batch and channel entries
        args["padding"] = [[0, 0]] + [list(p) for p in args["padding"]] + [[0, 0]]
    if target not in _GROUPED:
        args.pop("groups", None)
    kernel = src.kernel_size
    code = _code(target, args, crop, kernel, src)
    return Conversion(source, target, args, crop, code, src, target_geometry, kernel, src.groups, dict(source_args))


# ---------------------------------------------------------------------------
# weights
# ---------------------------------------------------------------------------
def _layout(framework: str, transpose_kernel: bool) -> str:
    name = conventions.canonical(framework)
    if name not in LAYOUTS:
        raise ConfigError(
            f"no kernel layout known for {name}; convert_weights handles {', '.join(LAYOUTS)}"
        )
    layout = LAYOUTS[name]
    return "tf" if layout == "lax" and transpose_kernel else layout


def convert_weights(
    w: Any,
    source: str,
    target: str,
    *,
    groups: int = 1,
    source_transpose_kernel: bool = False,
    target_transpose_kernel: bool = False,
) -> np.ndarray:
    """Move a transposed-convolution kernel from one framework's layout to another's.

    Parameters
    ----------
    w : array_like
        The source kernel (see the layouts in :mod:`tconv.kernels.layouts`).
    source, target : str
        Framework names.
    groups : int
        Channel groups of the source (PyTorch/ONNX layout ``(in, out/groups, *k)``).
        A target without groups gets the dense block-diagonal kernel.
    source_transpose_kernel, target_transpose_kernel : bool
        JAX/Flax ``transpose_kernel`` on either side.

    Returns
    -------
    numpy.ndarray

    Raises
    ------
    ConfigError
        Unknown layout, a kernel whose shape does not fit ``groups``, or
        grouped weights from a framework without groups.

    Examples
    --------
    >>> import numpy as np
    >>> w = np.arange(2 * 3 * 2).reshape(2, 3, 2)       # PyTorch: (in=2, out=3, k=2)
    >>> convert_weights(w, "pytorch", "keras").shape     # (k, out, in)
    (2, 3, 2)
    >>> convert_weights(w, "pytorch", "jax")[:, 0, 0]    # lax stamps the kernel reversed
    array([1, 0])
    >>> convert_weights(np.ones((4, 1, 3)), "pytorch", "keras", groups=2)[0]   # dense (out=2, in=4)
    array([[1., 1., 0., 0.],
           [0., 0., 1., 1.]])
    """
    try:
        w = np.asarray(w)
    except Exception as err:  # ragged lists and the like
        raise ConfigError(f"the kernel cannot be read as an array: {err}") from None
    if w.ndim < 3:
        raise ConfigError(f"the kernel has {w.ndim} dimensions; a transposed-convolution kernel has 2 channel axes and at least one spatial axis")
    if not isinstance(groups, int) or isinstance(groups, bool) or groups < 1:
        raise ConfigError(f"groups={groups!r} must be a positive integer")
    src = _layout(source, source_transpose_kernel)
    dst = _layout(target, target_transpose_kernel)
    spatial = w.ndim - 2
    # to PyTorch's (in, out/groups, *k), stamped orientation
    if src == "torch":
        canonical = w
    else:
        if groups != 1:
            raise ConfigError(f"{source} has no channel groups: give its dense kernel with groups=1")
        if src == "tf":
            canonical = np.moveaxis(w, (spatial, spatial + 1), (1, 0))  # (*k, out, in) -> (in, out, *k)
        else:
            canonical = np.moveaxis(w, (spatial, spatial + 1), (0, 1))  # (*k, in, out) -> (in, out, *k)
            canonical = np.flip(canonical, axis=tuple(range(2, w.ndim)))
    if groups != 1:
        if canonical.shape[0] % groups:
            raise ConfigError(f"the kernel's {canonical.shape[0]} input channels do not split into groups={groups}")
        if conventions.canonical(target) not in _GROUPED:
            canonical = _dense(canonical, groups)
    if dst == "torch":
        out = canonical
    elif dst == "tf":
        out = np.moveaxis(canonical, (0, 1), (spatial + 1, spatial))
    else:
        out = np.moveaxis(np.flip(canonical, axis=tuple(range(2, w.ndim))), (0, 1), (spatial, spatial + 1))
    return out.copy(order="C")  # fresh strides: torch rejects the negative ones np.flip leaves


def _dense(w: np.ndarray, groups: int) -> np.ndarray:
    """(in, out/groups, *k) grouped -> (in, out, *k) block-diagonal."""
    cin, cout_g = w.shape[:2]
    per = cin // groups
    dense = np.zeros((cin, cout_g * groups) + w.shape[2:], dtype=w.dtype)
    for g in range(groups):
        dense[g * per:(g + 1) * per, g * cout_g:(g + 1) * cout_g] = w[g * per:(g + 1) * per]
    return dense


# ---------------------------------------------------------------------------
# code
# ---------------------------------------------------------------------------
def _literal(value: Any) -> str:
    if isinstance(value, tuple):
        return repr(tuple(_plain(v) for v in value))
    return repr(_plain(value))


def _plain(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(v) for v in value)
    if isinstance(value, np.integer):
        return int(value)
    return value


def _crop_code(crop: Sequence[tuple[int, int]], channels_first: bool, module: str, pad_fn: str) -> list[str]:
    """Lines applying the per-axis slice, then the zero pad, to ``y`` (NumPy or torch)."""
    lines = []
    lead = [":", ":"] if channels_first else [":"]
    tail = [] if channels_first else [":"]
    if any(b > 0 or e > 0 for b, e in crop):
        parts = [f"{max(b, 0) or ''}:{-e if e > 0 else ''}" for b, e in crop]
        lines.append(f"y = y[{', '.join(lead + parts + tail)}]  # the extra slice that keeps the source's window")
    if any(b < 0 or e < 0 for b, e in crop):
        pairs = [(max(-b, 0), max(-e, 0)) for b, e in crop]
        if pad_fn == "torch":
            flat = [v for pair in reversed(pairs) for v in pair]  # F.pad lists the last axis first
            lines.append(f"y = torch.nn.functional.pad(y, {flat})  # zeros the source has past the end")
        else:
            full = [(0, 0)] * len(lead) + pairs + [(0, 0)] * len(tail)
            lines.append(f"y = np.pad(y, {full})  # zeros the source has past the end")
    return lines


def _bias_line(channels_first: bool, ndim: int) -> str:
    shape = "(1, -1" + ", 1" * ndim + ")" if channels_first else "(-1,)"
    return f"if b is not None:\n    y = y + np.asarray(b).reshape({shape})  # bias, also on padded zeros"


def _code(target: str, args: dict, crop, kernel: tuple[int, ...], src: Geometry) -> str:
    if target not in CODE_TARGETS:
        return f"# tconv writes runnable code for {', '.join(CODE_TARGETS)}; use .args with {target}'s API"
    ndim = len(kernel)
    pads = any(b < 0 or e < 0 for b, e in crop)
    channels_first = target in _CHANNELS_FIRST
    lines: list[str] = ["import numpy as np"]
    kernel_text = _literal(kernel[0] if len(set(kernel)) == 1 else kernel)
    if target == "pytorch":
        keywords = ", ".join(f"{k}={_literal(v)}" for k, v in args.items())
        groups = args.get("groups", 1)
        bias = "False" if pads else "b is not None"
        lines += [
            "import torch",
            f"layer = torch.nn.ConvTranspose{ndim}d(w.shape[0], w.shape[1] * {groups}, kernel_size={kernel_text}, "
            f"{keywords}, bias={bias}).to(torch.as_tensor(x).dtype)",
            "with torch.no_grad():",
            "    layer.weight.copy_(torch.as_tensor(w))",
        ]
        if not pads:
            lines += ["    if b is not None:", "        layer.bias.copy_(torch.as_tensor(b))"]
        lines += ["    y = layer(torch.as_tensor(x))"]
        body = _crop_code(crop, True, "torch", "torch")
        lines += ["    " + line for line in body]
        lines += ["y = y.numpy()"]
        if pads:
            lines += [_bias_line(True, ndim)]
        return "\n".join(lines) + "\n"
    if target == "keras":
        keywords = ", ".join(f"{k}={_literal(v)}" for k, v in args.items())
        bias = "False" if pads else "b is not None"
        lines += [
            "import keras",
            f"layer = keras.layers.Conv{ndim}DTranspose(filters=w.shape[-2], kernel_size={kernel_text}, {keywords}, "
            f"use_bias={bias}, dtype=str(x.dtype))",
            "layer.build(x.shape)",
            f"layer.set_weights([w]{'' if pads else ' if b is None else [w, b]'})",
            "y = keras.ops.convert_to_numpy(layer(x))",
        ]
    elif target == "tensorflow":
        spatial = _literal(list(args["output_shape"]))
        keywords = ", ".join(f"{k}={_literal(v if k != 'strides' else list(v))}" for k, v in args.items() if k != "output_shape")
        lines += [
            "import tensorflow as tf",
            f"y = tf.nn.conv_transpose(x, w, output_shape=[x.shape[0], *{spatial}, w.shape[-2]], {keywords}).numpy()",
        ]
    elif target == "jax":
        keywords = ", ".join(f"{k}={_literal(v)}" for k, v in args.items())
        lines += ["import jax", f"y = np.asarray(jax.lax.conv_transpose(x, w, {keywords}))"]
    elif target == "onnx":
        keywords = ", ".join(f"{k}={_literal(v)}" for k, v in args.items())
        lines += [
            "import onnx, onnxruntime",
            "from onnx import helper, numpy_helper",
            "names = ['x', 'w'] + ([] if b is None else ['b'])",
            f"node = helper.make_node('ConvTranspose', names, ['y'], {keywords})",
            "dtype = helper.np_dtype_to_tensor_dtype(x.dtype)",
            "weights = [numpy_helper.from_array(np.asarray(w, x.dtype), 'w')] + ([] if b is None else [numpy_helper.from_array(np.asarray(b, x.dtype), 'b')])",
            "graph = helper.make_graph([node], 'tconv', [helper.make_tensor_value_info('x', dtype, x.shape)], "
            "[helper.make_tensor_value_info('y', dtype, None)], initializer=weights)",
            "model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 17)], ir_version=8)",
            "session = onnxruntime.InferenceSession(model.SerializeToString(), providers=['CPUExecutionProvider'])",
            "y = session.run(None, {'x': x})[0]",
        ]
        if pads:
            # the bias is added after the zero pad, so the node runs without it
            lines[lines.index("names = ['x', 'w'] + ([] if b is None else ['b'])")] = "names = ['x', 'w']"
            lines = [l.replace(" + ([] if b is None else [numpy_helper.from_array(np.asarray(b, x.dtype), 'b')])", "") for l in lines]
    bias_in_layer = target in ("keras", "onnx") and not pads
    lines += _crop_code(crop, channels_first, "np", "np")
    if not bias_in_layer:
        lines.append(_bias_line(channels_first, ndim))
    return "\n".join(lines) + "\n"
