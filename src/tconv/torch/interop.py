"""tconv.torch in existing models: :func:`swap` torch's layers in (and :func:`unswap` them out), and build
modules from Keras layers, Flax modules and ONNX nodes.

:func:`swap` changes the class of every ``nn.ConvTranspose1d/2d/3d`` in a
model to tconv's subclass, in place: the layer object, its Parameters, its
hooks and the state_dict keys stay what they were, only ``forward`` changes.
:func:`unswap` changes them back.

:func:`from_keras`, :func:`from_flax` and :func:`from_onnx` read the layer's
arguments, ask :func:`tconv.convert` for PyTorch's arguments keeping exactly
the source's window (or, where torch's padding cannot, the tconv padding
string with that window: Keras and Flax ``'same'`` become ``'same'``) and move
the kernel with :func:`tconv.convert_weights`. Where no padding of one torch
layer keeps the window (ONNX's ``pads`` asymmetric on some axes, say), they
return ``nn.Sequential(layer, Crop(...))``. The modules take channels-first
input (NCHW), as every torch module does.

Examples
--------
>>> import torch
>>> model = torch.nn.Sequential(torch.nn.ConvTranspose2d(4, 2, 3, stride=2), torch.nn.ReLU())
>>> x = torch.randn(1, 4, 5, 5)
>>> before = model(x)
>>> _ = swap(model)
>>> type(model[0]).__module__
'tconv.torch.modules'
>>> torch.allclose(model(x), before, atol=1e-5)
True
>>> type(unswap(model)[0]).__module__
'torch.nn.modules.conv'
"""
from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import torch
from torch import nn

from ..conversion import convert, convert_weights
from ..errors import ConfigError
from ._plain import crop_or_pad
from .functional import layer_geometry
from .modules import ConvTranspose1d, ConvTranspose2d, ConvTranspose3d

__all__ = ["Crop", "from_flax", "from_keras", "from_onnx", "swap", "unswap"]

_TORCH = {nn.ConvTranspose1d: ConvTranspose1d, nn.ConvTranspose2d: ConvTranspose2d, nn.ConvTranspose3d: ConvTranspose3d}
_BACK = {v: k for k, v in _TORCH.items()}
#: what tconv's modules keep besides torch's attributes (removed again by unswap)
_OWN = ("string_padding", "strategy", "_plain_args", "_plain_string", "_plain_crops", "_plain_bias_after",
        "_tconv_last")


def swap(model: nn.Module, strategy: str | None = None) -> nn.Module:
    """Make every ``torch.nn.ConvTranspose1d/2d/3d`` in ``model`` tconv's, in place, and return ``model``.

    The layers keep their Parameters (the same objects), hooks and state_dict
    keys; their outputs are torch's (up to floating-point rounding).

    Parameters
    ----------
    model : torch.nn.Module
        Itself a transposed convolution, or holding some.
    strategy : str, optional
        A strategy or mode for every swapped layer (see :mod:`tconv.torch.picker`).

    Returns
    -------
    torch.nn.Module
        ``model``.

    Warns
    -----
    UserWarning
        When ``model`` holds no transposed convolution, and for each layer left
        as torch's (a ``padding_mode`` other than ``'zeros'``, a subclass with
        its own code, a lazy layer not yet initialized), naming it.

    Examples
    --------
    >>> import torch, warnings
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     _ = swap(torch.nn.Linear(2, 2))
    >>> print(caught[0].message)
    swap: the model holds no torch.nn.ConvTranspose1d/2d/3d; it is returned unchanged
    """
    if not isinstance(model, nn.Module):
        raise ConfigError(f"swap takes a torch.nn.Module, not {type(model).__name__}")
    found = 0
    for name, module in model.named_modules():
        label = name or type(model).__name__
        cls = _TORCH.get(type(module))
        if cls is None:
            if isinstance(module, nn.modules.conv._ConvTransposeNd) and type(module) not in _BACK:
                found += 1
                warnings.warn(f"swap: {label} ({type(module).__name__}) stays torch's: it is not exactly "
                              "nn.ConvTranspose1d/2d/3d (a subclass with its own code, or a lazy layer not yet "
                              "initialized)", stacklevel=2)
            continue
        found += 1
        if module.padding_mode != "zeros":
            warnings.warn(f"swap: {label} stays torch's: padding_mode={module.padding_mode!r} (tconv takes "
                          "'zeros' only)", stacklevel=2)
            continue
        module.__class__ = cls  # the same object: Parameters, hooks and state_dict keys stay
        module._setup(module.padding, strategy)
    if not found:
        warnings.warn("swap: the model holds no torch.nn.ConvTranspose1d/2d/3d; it is returned unchanged",
                      stacklevel=2)
    return model


def unswap(model: nn.Module) -> nn.Module:
    """Make every tconv ``ConvTranspose1d/2d/3d`` in ``model`` torch's again, in place, and return ``model``.

    Layers with a string padding (``'same'`` and the like) have no torch
    equivalent and stay tconv's, with a warning naming them.
    """
    if not isinstance(model, nn.Module):
        raise ConfigError(f"unswap takes a torch.nn.Module, not {type(model).__name__}")
    for name, module in model.named_modules():
        cls = _BACK.get(type(module))
        if cls is None:
            continue
        if module.string_padding is not None:
            warnings.warn(f"unswap: {name or type(model).__name__} stays tconv's: padding="
                          f"{module.string_padding!r} has no torch equivalent", stacklevel=2)
            continue
        for attr in _OWN:
            module.__dict__.pop(attr, None)
        module.__class__ = cls
    return model


# ---- from other frameworks ------------------------------------------------------------------------

_PROBES = (8, 9)  # two input sizes: a window that depends on the input size cannot be one module


class Crop(nn.Module):
    """Keep ``crop_begin : size - crop_end`` of the last spatial axes: what follows a layer whose source
    window (ONNX's per-axis asymmetric ``pads``, say) no padding of one torch layer keeps.

    Examples
    --------
    >>> import torch
    >>> Crop((1, 0), (0, 2))(torch.ones(1, 1, 5, 5)).shape
    torch.Size([1, 1, 4, 3])
    """

    def __init__(self, crop_begin, crop_end) -> None:
        super().__init__()
        self.crop_begin, self.crop_end = [int(c) for c in crop_begin], [int(c) for c in crop_end]

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return crop_or_pad(input, None, self.crop_begin, self.crop_end)

    def extra_repr(self) -> str:
        return f"crop_begin={tuple(self.crop_begin)}, crop_end={tuple(self.crop_end)}"


def _padding_for(ndim: int, kernel, source: str, args: dict, groups: int = 1):
    """``(torch keyword arguments, padding, output_padding, crop)`` keeping exactly the source's window.

    From :func:`tconv.convert`; ``crop`` is None, or the ``(begin, end)``
    that a :class:`Crop` after the layer removes.
    """
    conversions = [convert((n,) * ndim, tuple(kernel), source, "pytorch", **args) for n in _PROBES]
    first = conversions[0]
    src = first.source_geometry
    windows = {(c.source_geometry.crop_begin, c.source_geometry.crop_end) for c in conversions}
    if len(windows) > 1 or any(c.args != first.args or c.crop != first.crop for c in conversions):
        raise ConfigError(f"the {source} layer's window depends on its input size ({args}); a torch module "
                          "keeps one window for every size")
    base = {"stride": src.stride, "dilation": src.dilation}
    padding, output_padding = first.args.get("padding", 0), first.args.get("output_padding", 0)
    if first.exact:
        return base, padding, output_padding, None
    for mode in ("same", "same_lower", "valid"):
        mine = layer_geometry(src.input_shape, src.kernel_size, src.stride, mode, 0, src.dilation, groups)
        if (mine.crop_begin, mine.crop_end) == (src.crop_begin, src.crop_end):
            return base, mode, 0, None
    if all(b >= 0 and e >= 0 for b, e in first.crop):
        return base, padding, output_padding, ([b for b, _ in first.crop], [e for _, e in first.crop])
    raise ConfigError(f"the {source} layer {args} keeps a window no tconv.torch layer keeps, even with a crop: "
                      f"{first}")


def _module(ndim: int, weight: np.ndarray, bias: Any, base: dict, padding: Any, output_padding: Any,
            crop: Any = None, groups: int = 1, dtype=torch.float32):
    cls = (ConvTranspose1d, ConvTranspose2d, ConvTranspose3d)[ndim - 1]
    cin, cout_g = weight.shape[:2]
    layer = cls(cin, cout_g * groups, tuple(weight.shape[2:]), stride=base["stride"], padding=padding,
                output_padding=output_padding, groups=groups, bias=bias is not None,
                dilation=base["dilation"], dtype=dtype)
    with torch.no_grad():
        # np.array copies: the frameworks hand out read-only buffers, which torch warns about
        layer.weight.copy_(torch.from_numpy(np.array(weight, dtype=np.float64)).to(dtype))
        if bias is not None:
            layer.bias.copy_(torch.from_numpy(np.array(bias, dtype=np.float64)).to(dtype))
    return layer if crop is None else nn.Sequential(layer, Crop(*crop))


def from_keras(layer: Any) -> nn.Module:
    """A tconv module computing a built Keras 3 ``Conv1DTranspose/Conv2DTranspose/Conv3DTranspose``.

    The module takes channels-first input (``x.transpose`` a channels-last
    Keras input) and gives the Keras layer's values, channels first.

    Raises
    ------
    ConfigError
        For a layer that is not built (no weights yet) or not a transposed convolution.
    """
    config = layer.get_config() if hasattr(layer, "get_config") else None
    if not config or "filters" not in config or "Transpose" not in type(layer).__name__:
        raise ConfigError(f"from_keras takes a Keras Conv1D/2D/3DTranspose layer, not {type(layer).__name__}")
    weights = layer.get_weights()
    if not weights:
        raise ConfigError(f"the Keras layer {layer.name!r} is not built yet: call it once (or build it) first")
    kernel = np.asarray(weights[0])
    ndim = kernel.ndim - 2
    args = {"strides": config["strides"], "padding": config["padding"], "dilation_rate": config["dilation_rate"]}
    if config.get("output_padding") is not None:
        args["output_padding"] = config["output_padding"]
    base, padding, output_padding, crop = _padding_for(ndim, kernel.shape[:ndim], "keras", args)
    bias = weights[1] if config.get("use_bias", True) and len(weights) > 1 else None
    return _module(ndim, convert_weights(kernel, "keras", "pytorch"), bias, base, padding, output_padding, crop)


def from_flax(module: Any, params: Any) -> nn.Module:
    """A tconv module computing a Flax ``nn.ConvTranspose`` with its ``params``.

    ``params`` is what ``module.init`` returns (``{'params': {'kernel', 'bias'}}``)
    or its inner ``{'kernel', 'bias'}``. The module takes channels-first input.
    """
    if not all(hasattr(module, a) for a in ("features", "kernel_size", "strides", "padding")):
        raise ConfigError(f"from_flax takes a flax.linen.ConvTranspose, not {type(module).__name__}")
    inner = params.get("params", params) if hasattr(params, "get") else None
    if not inner or "kernel" not in inner:
        raise ConfigError("from_flax: params must hold a 'kernel' (what module.init returns)")
    kernel = np.asarray(inner["kernel"])
    ndim = kernel.ndim - 2
    transpose_kernel = bool(getattr(module, "transpose_kernel", False))
    args = {"strides": tuple(module.strides or (1,) * ndim), "padding": module.padding,
            "kernel_dilation": tuple(module.kernel_dilation or (1,) * ndim), "transpose_kernel": transpose_kernel}
    base, padding, output_padding, crop = _padding_for(ndim, kernel.shape[:ndim], "flax", args)
    bias = inner.get("bias") if getattr(module, "use_bias", True) else None
    weight = convert_weights(kernel, "flax", "pytorch", source_transpose_kernel=transpose_kernel)
    return _module(ndim, weight, bias, base, padding, output_padding, crop)


def from_onnx(node: Any, initializers: Any) -> nn.Module:
    """A tconv module computing an ONNX ``ConvTranspose`` node with its weight (and bias) initializers.

    ``initializers``: a mapping from names to arrays, a list of
    ``onnx.TensorProto``, or the ``onnx.GraphProto`` / ``ModelProto`` holding them.
    """
    from onnx import helper, numpy_helper

    if getattr(node, "op_type", None) != "ConvTranspose":
        raise ConfigError(f"from_onnx takes a ConvTranspose node, not {getattr(node, 'op_type', type(node).__name__)}")
    graph = getattr(initializers, "graph", initializers)
    tensors = getattr(graph, "initializer", initializers)
    if not hasattr(tensors, "items"):
        tensors = {t.name: numpy_helper.to_array(t) for t in tensors}
    missing = [n for n in node.input[1:] if n and n not in tensors]
    if missing:
        raise ConfigError(f"from_onnx: no initializer for {', '.join(missing)} (the weight and bias must be constants)")
    weight = np.asarray(tensors[node.input[1]])
    bias = np.asarray(tensors[node.input[2]]) if len(node.input) > 2 and node.input[2] else None
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    for key, value in list(attrs.items()):
        if isinstance(value, bytes):
            attrs[key] = value.decode()
    if "output_shape" in attrs:
        raise ConfigError("from_onnx: a node with output_shape keeps a window that depends on its input size; "
                          "export it with pads or auto_pad instead")
    attrs.pop("kernel_shape", None)
    groups = int(attrs.get("group", 1))
    ndim = weight.ndim - 2
    base, padding, output_padding, crop = _padding_for(ndim, weight.shape[2:], "onnx", attrs, groups)
    return _module(ndim, weight, bias, base, padding, output_padding, crop, groups)
