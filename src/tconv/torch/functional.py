"""``conv_transpose1d/2d/3d``: the arguments of ``torch.nn.functional.conv_transpose*d``, faster.

Every size and every kept window comes from :func:`layer_geometry`, which asks
tconv's conventions (``tconv.geometry``) and never computes a size itself.
"""
from __future__ import annotations

import warnings
from typing import Any, Sequence

import torch

from ..api import geometry as _geometry
from ..errors import ConfigError
from ..geometry import Geometry
from . import picker as _picker
from ._plain import PROBE, crop_or_pad, plain_wanted, plain_window
from .picker import choose, get_strategy
from .strategies import Plan, bind, is_compiling, run

__all__ = [
    "STRING_PADDINGS",
    "TorchLayerError",
    "TorchLayerTypeError",
    "conv_transpose1d",
    "conv_transpose2d",
    "conv_transpose3d",
    "layer_geometry",
]

#: padding strings the modules and functions accept, and the ONNX auto_pad each one follows
STRING_PADDINGS = {"valid": "VALID", "same": "SAME_UPPER", "same_upper": "SAME_UPPER", "same_lower": "SAME_LOWER"}


class TorchLayerError(ConfigError, RuntimeError):
    """A bad layer or call. Both a ``ValueError`` (:class:`tconv.ConfigError`) and a
    ``RuntimeError``, so code written for torch's own errors still catches it."""


class TorchLayerTypeError(ConfigError, TypeError):
    """A wrongly typed argument (torch raises ``TypeError`` there)."""


def layer_geometry(
    input_shape: Sequence[int],
    kernel_size: Sequence[int],
    stride: Any = 1,
    padding: Any = 0,
    output_padding: Any = 0,
    dilation: Any = 1,
    groups: int = 1,
    output_size: Any = None,
) -> Geometry:
    """The geometry of one call, from tconv's conventions.

    Numeric ``padding`` follows PyTorch (``tconv.geometry(framework="pytorch")``),
    including ``output_size`` (spatial sizes). The strings follow ONNX's
    ``auto_pad`` with ``output_shape = input * stride`` (``framework="onnx"``):

    * ``'same_upper'``: output ``i*s``; of the ``full - i*s`` elements to
      remove, the odd one is removed at the END (ONNX SAME_UPPER; TF and Keras
      ``'same'`` keep the same window);
    * ``'same_lower'``: the same, with the odd one removed at the START (ONNX
      SAME_LOWER);
    * ``'same'``: ``'same_upper'``, so that weights trained in TF/Keras (and
      ONNX models exported from them) give identical outputs;
    * ``'valid'``: no cropping, the full ``(i-1)*s + d*(k-1) + 1`` output
      (PyTorch ``padding=0``, ONNX VALID).

    When ``d*(k-1)+1 < s`` the full output is shorter than ``i*s`` and the
    ``'same'`` modes append zeros (plus bias) at the end, as TF and Keras do.

    Raises
    ------
    ConfigError
        For anything PyTorch (or, for the strings, this rule) rejects.

    Examples
    --------
    >>> layer_geometry((8,), (3,), stride=2, padding="same").crop_end
    (1,)
    >>> layer_geometry((8,), (3,), stride=2, padding="same_lower").crop_begin
    (1,)
    >>> layer_geometry((8,), (3,), stride=2, padding=1, output_padding=1).output_shape
    (16,)
    """
    ndim = len(input_shape)
    if isinstance(padding, str):
        mode = STRING_PADDINGS.get(padding.lower())
        if mode is None:
            raise ConfigError(
                f"padding={padding!r} is not supported; use an int, a tuple of {ndim} ints, or one of "
                f"{', '.join(map(repr, STRING_PADDINGS))}"
            )
        if any(_as_tuple(output_padding, ndim)):
            raise ConfigError(
                f"output_padding={output_padding!r} cannot be combined with padding={padding!r}: the "
                "string modes fix the output size themselves; use numeric padding for output_padding"
            )
        strides, dilations = _as_tuple(stride, ndim), _as_tuple(dilation, ndim)
        args = {"strides": list(strides), "dilations": list(dilations), "group": groups, "auto_pad": mode}
        if mode != "VALID":
            # SAME asks for input*stride elements (ONNX spec, TF, Keras); that is the definition.
            args["output_shape"] = [i * s for i, s in zip(input_shape, strides)]
        return _geometry(tuple(input_shape), tuple(kernel_size), "onnx", **args)
    return _geometry(
        tuple(input_shape), tuple(kernel_size), "pytorch",
        stride=stride, padding=padding, output_padding=output_padding, dilation=dilation, groups=groups,
        output_size=output_size,
    )


def _as_tuple(value: Any, ndim: int) -> tuple:
    if isinstance(value, (list, tuple)):
        if len(value) != ndim:
            raise ConfigError(f"{value!r} has {len(value)} entries; give one int or {ndim} ints")
        return tuple(value)
    return (value,) * ndim


def _check_tensors(name: str, ndim: int, input, weight, bias) -> None:
    for arg, value in (("input", input), ("weight", weight)):
        if not isinstance(value, torch.Tensor):
            raise TorchLayerTypeError(f"{name}(): argument '{arg}' must be a Tensor, not {type(value).__name__}")
    if bias is not None and not isinstance(bias, torch.Tensor):
        raise TorchLayerTypeError(f"{name}(): argument 'bias' must be a Tensor or None, not {type(bias).__name__}")
    if input.dim() not in (ndim + 1, ndim + 2):
        raise TorchLayerError(
            f"Expected {ndim + 1}D (unbatched) or {ndim + 2}D (batched) input to {name}, but got input of "
            f"size: {list(input.shape)}"
        )
    if weight.dim() != ndim + 2:
        raise TorchLayerError(
            f"{name}: weight must be {ndim + 2}-D (in_channels, out_channels/groups, *kernel_size), but got "
            f"weight of size {list(weight.shape)}"
        )
    tensors = [("input", input), ("weight", weight)] + ([("bias", bias)] if bias is not None else [])
    for label, t in tensors[1:]:
        if t.device != input.device:
            raise TorchLayerError(
                f"{name}: input is on {input.device} but {label} is on {t.device}; move them to the same "
                f"device (e.g. {label}.to(input.device) or module.to(device))"
            )
        if t.dtype != input.dtype:
            raise TorchLayerError(
                f"{name}: input has dtype {input.dtype} but {label} has dtype {t.dtype}; they must match "
                f"(e.g. input.to({t.dtype}) or module.to({input.dtype}))"
            )


#: repeat calls: their key (see :func:`tensors_key`) -> (the bound call, strategy, plan, unbatched)
_bound: dict[tuple, tuple] = {}


def tensors_key(input: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> tuple:
    """What a call's checks, plan and strategy depend on, besides the layer's own arguments.

    A repeat call whose key, arguments included, equals an earlier one's can skip
    straight to the strategy that call ran (functions and modules both do).
    """
    return (
        input.shape, input.stride(), input.dtype, input.device, input.requires_grad,
        weight.shape, weight.dtype, weight.device, weight.requires_grad,
        None if bias is None else (bias.shape, bias.dtype, bias.device, bias.requires_grad),
        get_strategy(), torch.is_grad_enabled(), torch.get_num_threads(), _picker._generation,
    )


#: validated plans by call arguments, so repeated calls skip the Python geometry work
_plans: dict[str, Plan] = {}


def _prepare(ndim, input, weight, bias, stride, padding, output_padding, groups, dilation, strategy, output_size,
             compiling):
    """Validate the call, build its geometry and choose a strategy: plain Python, run eagerly."""
    name = f"conv_transpose{ndim}d"
    _check_tensors(name, ndim, input, weight, bias)
    if isinstance(groups, bool) or not isinstance(groups, int):
        raise TorchLayerTypeError(f"{name}(): groups={groups!r} must be an int")
    if groups < 1:
        raise TorchLayerError(f"non-positive groups is not supported: groups={groups}; use groups >= 1")
    batch_shape = tuple(input.shape) if input.dim() == ndim + 2 else (1,) + tuple(input.shape)
    in_channels = weight.shape[0]
    if in_channels % groups:
        raise TorchLayerError(
            f"Given groups={groups}, expected weight to be divisible by {groups} at dimension 0, but got "
            f"weight of size {list(weight.shape)} instead"
        )
    if batch_shape[1] != in_channels:
        raise TorchLayerError(
            f"Given transposed=1, weight of size {list(weight.shape)}, expected input{list(batch_shape)} to have "
            f"{in_channels} channels, but got {batch_shape[1]} channels instead"
        )
    out_channels = weight.shape[1] * groups
    if bias is not None and (bias.dim() != 1 or bias.shape[0] != out_channels):
        raise TorchLayerError(
            f"Given transposed=1, weight of size {list(weight.shape)}, expected bias to be 1-dimensional with "
            f"{out_channels} elements, but got bias of size {list(bias.shape)} instead"
        )
    # The geometry depends only on these; repr keeps lists and tuples apart as torch's checks do.
    key = repr((batch_shape[2:], tuple(weight.shape), stride, padding, output_padding, dilation, groups, output_size))
    plan = _plans.get(key)
    if plan is None:
        try:
            geo = layer_geometry(
                batch_shape[2:], tuple(weight.shape[2:]), stride, padding, output_padding, dilation, groups, output_size
            )
        except TorchLayerError:
            raise
        except ConfigError as err:
            kind = TorchLayerTypeError if "must be an integer" in str(err) else TorchLayerError
            raise kind(f"{name}: {err}") from None
        plan = Plan(geo, in_channels, out_channels)
        plan.torch_args  # noqa: B018  (worked out here, eagerly: a traced strategy reads it)
        if len(_plans) > 4096:  # a long-running process with ever-new shapes: start over
            _plans.clear()
        _plans[key] = plan
    if input.numel() == 0 or weight.numel() == 0 or not input.dtype.is_floating_point or plan.geometry.empty:
        # empty tensors, integer/complex dtypes, and empty outputs (which some of torch's kernels
        # return and others refuse): torch's own answer is the one to give
        return "native", plan
    x = input if input.dim() == ndim + 2 else input.unsqueeze(0)
    if compiling and strategy is None:
        strategy = "deterministic"  # never time inside a traced program
    return choose(x, weight, bias, plan, strategy), plan


# torch.compile: the Python above runs eagerly (one graph break); the chosen strategy's torch ops are traced.
_prepare_eager = torch.compiler.disable(_prepare) if hasattr(torch, "compiler") else _prepare


def _conv_transpose_and_choice(
    ndim: int, input, weight, bias, stride, padding, output_padding, groups, dilation, strategy, output_size=None
) -> tuple[torch.Tensor, tuple[str, Plan]]:
    """The call, and the strategy and plan that computed it (a module binds them for its next call).

    Returned rather than kept anywhere, so that threads calling layers at once each get their own.
    """
    if output_size is None and plain_wanted(input):
        # traced, scripted or exported: plain torch ops only (tconv.torch._plain); nothing to bind
        return _plain_call(ndim, input, weight, bias, stride, padding, output_padding, groups, dilation), ("native", None)
    compiling = is_compiling()
    key = None
    if not compiling and isinstance(input, torch.Tensor) and isinstance(weight, torch.Tensor) and (
            bias is None or isinstance(bias, torch.Tensor)):
        # The checks, the geometry lookup and the choice are 6 us of Python warm, and about 19 us
        # between other work that cools the caches (benchmarks/results/call_overhead.md); a
        # repeat call reuses what they decided.
        # repr keeps 1, 1.0 and True apart, which torch's checks do not treat alike.
        key = (ndim, tensors_key(input, weight, bias),
               repr((stride, padding, output_padding, groups, dilation, output_size, strategy)))
        hit = _bound.get(key)
        if hit is not None:
            call, name_used, plan, unbatched = hit
            y = call(input.unsqueeze(0), weight, bias).squeeze(0) if unbatched else call(input, weight, bias)
            return y, (name_used, plan)
    name_used, plan = _prepare_eager(
        ndim, input, weight, bias, stride, padding, output_padding, groups, dilation, strategy, output_size, compiling,
    )
    unbatched = input.dim() == ndim + 1
    x = input.unsqueeze(0) if unbatched else input
    y = run(name_used, x, weight, bias, plan)
    if key is not None:
        if len(_bound) > 4096:  # a long-running process with ever-new shapes: start over
            _bound.clear()
        _bound[key] = (bind(name_used, plan), name_used, plan, unbatched)
    return (y.squeeze(0) if unbatched else y), (name_used, plan)


def torch_window(ndim: int, kernel_size, stride, padding, output_padding, dilation, groups):
    """``(padding, output_padding, crop_begin, crop_end)``: torch's arguments for this layer, and the crop left.

    Numeric paddings are torch's own; the strings' window comes from
    :func:`layer_geometry` (see :func:`tconv.torch._plain.plain_window`).

    Examples
    --------
    >>> torch_window(2, (3, 3), 2, "same", 0, 1, 1)
    ((0, 0), (0, 0), (0, 0), (1, 1))
    """
    if not isinstance(padding, str):
        return _as_tuple(padding, ndim), _as_tuple(output_padding, ndim), (0,) * ndim, (0,) * ndim
    return plain_window(layer_geometry((PROBE,) * ndim, tuple(kernel_size), stride, padding, output_padding,
                                       dilation, groups))


def _plain_call(ndim: int, input, weight, bias, stride, padding, output_padding, groups, dilation):
    """The call in plain torch ops, for tracers and exporters (see :mod:`tconv.torch._plain`)."""
    fn = (torch.nn.functional.conv_transpose1d, torch.nn.functional.conv_transpose2d,
          torch.nn.functional.conv_transpose3d)[ndim - 1]
    if not isinstance(padding, str):
        return fn(input, weight, bias, stride, padding, output_padding, groups, dilation)
    with warnings.catch_warnings():  # under the ONNX exporter sizes are tensors; a kernel is fixed, so a constant
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        kernel = tuple(int(k) for k in weight.shape[2:])
    pad, out_pad, begin, end = torch_window(ndim, kernel, stride, padding, output_padding, dilation, groups)
    if all(c >= 0 for c in begin + end):  # a crop only: the bias can go in torch's call
        y = fn(input, weight, bias, stride, pad, out_pad, groups, dilation)
        return crop_or_pad(y, None, list(begin), list(end)) if any(begin + end) else y
    y = fn(input, weight, None, stride, pad, out_pad, groups, dilation)
    return crop_or_pad(y, bias, list(begin), list(end))


def conv_transpose1d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1, *, strategy=None):
    """Drop-in for ``torch.nn.functional.conv_transpose1d`` (see :func:`conv_transpose2d`)."""
    y, _ = _conv_transpose_and_choice(1, input, weight, bias, stride, padding, output_padding, groups, dilation,
                                      strategy)
    return y


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1, *, strategy=None):
    """Drop-in for ``torch.nn.functional.conv_transpose2d``, choosing the fastest strategy.

    Parameters
    ----------
    input : Tensor
        (N, C_in, H, W), or (C_in, H, W) unbatched.
    weight : Tensor
        (C_in, C_out/groups, kH, kW).
    bias : Tensor, optional
        (C_out,).
    stride, padding, output_padding, dilation : int or tuple
        As in PyTorch; ``padding`` may also be ``'valid'``, ``'same'``,
        ``'same_upper'`` or ``'same_lower'`` (see :func:`layer_geometry`).
    groups : int
    strategy : str, optional
        Force a strategy or a mode (see :mod:`tconv.torch.picker`).

    Returns
    -------
    Tensor
        Equal to PyTorch's result (up to floating-point rounding).

    Raises
    ------
    TorchLayerError
        (a ConfigError, ValueError and RuntimeError) for whatever PyTorch rejects,
        and for input, weight and bias on different devices or with different dtypes.

    Examples
    --------
    >>> import torch
    >>> x, w = torch.randn(2, 4, 5, 5), torch.randn(4, 3, 3, 3)
    >>> y = conv_transpose2d(x, w, stride=2, padding=1, output_padding=1)
    >>> y.shape
    torch.Size([2, 3, 10, 10])
    >>> torch.allclose(y, torch.nn.functional.conv_transpose2d(x, w, None, 2, 1, 1), atol=1e-4)
    True
    """
    y, _ = _conv_transpose_and_choice(2, input, weight, bias, stride, padding, output_padding, groups, dilation,
                                      strategy)
    return y


def conv_transpose3d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1, *, strategy=None):
    """Drop-in for ``torch.nn.functional.conv_transpose3d`` (see :func:`conv_transpose2d`)."""
    y, _ = _conv_transpose_and_choice(3, input, weight, bias, stride, padding, output_padding, groups, dilation,
                                      strategy)
    return y
