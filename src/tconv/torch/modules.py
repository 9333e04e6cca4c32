"""``ConvTranspose1d/2d/3d``: subclasses of ``torch.nn.ConvTranspose*d`` with a faster forward.

The parameters (``weight``, ``bias``), their shapes, initialization and the
state_dict keys are torch's own, so a checkpoint saved from
``nn.ConvTranspose2d`` loads unchanged, and back.
"""
from __future__ import annotations

from typing import Any, List, Optional

import torch
import torch.nn.functional as F
from torch import nn

from ._plain import crop_or_pad, plain_wanted
from .functional import STRING_PADDINGS, TorchLayerError, _conv_transpose_and_choice, tensors_key, torch_window
from .picker import _check_mode
from .strategies import bind, is_compiling

__all__ = ["ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d"]


class _TconvMixin:
    _ndim: int

    def _setup(self, padding: Any, strategy: str | None) -> None:
        self.string_padding = padding.lower() if isinstance(padding, str) else None
        if self.string_padding is not None:
            self.padding = self.string_padding  # shown by repr; the window comes from layer_geometry
            if any(self.output_padding):
                raise TorchLayerError(
                    f"output_padding={self.output_padding!r} cannot be combined with padding={padding!r}: the "
                    "string modes fix the output size themselves"
                )
        self.strategy = None if strategy is None else _check_mode(strategy)
        self._set_plain_window()

    def _set_plain_window(self) -> None:
        """What :meth:`_plain_forward` reads, as lists of ints (TorchScript reads them as module attributes)."""
        padding = self.string_padding if self.string_padding is not None else self.padding
        pad, out_pad, begin, end = torch_window(self._ndim, self.kernel_size, self.stride, padding,
                                                self.output_padding, self.dilation, self.groups)
        self._plain_args: List[List[int]] = [list(self.stride), list(pad), list(out_pad), list(self.dilation),
                                             list(self.kernel_size), list(begin), list(end)]
        self._plain_string: bool = self.string_padding is not None
        self._plain_crops: bool = any(begin) or any(end)
        # zeros appended (a kernel shorter than the stride under 'same') get the bias too, so it is added last
        self._plain_bias_after: bool = any(c < 0 for c in begin + end)

    def _output_size_spatial(self, input: torch.Tensor, output_size):
        """PyTorch's rule: ``output_size`` lists the spatial sizes, optionally after batch/channel sizes."""
        if output_size is None:
            return None
        nd = self._ndim
        non_spatial = 2 if input.dim() == nd + 2 else 1
        sizes = list(output_size)
        if len(sizes) == non_spatial + nd:
            sizes = sizes[non_spatial:]
        if len(sizes) != nd:
            raise TorchLayerError(
                f"ConvTranspose{nd}D: for {input.dim()}D input, output_size must have {nd} or {non_spatial + nd} "
                f"elements (got {len(sizes)})"
            )
        return tuple(int(s) for s in sizes)

    def _fast_key(self, input, output_size):
        # Everything _prepare reads; a repeat call with the same key reuses its plan and strategy.
        params = self._parameters
        return (
            tensors_key(input, params["weight"], params["bias"]),
            output_size, self.stride, self.padding, self.output_padding, self.dilation, self.groups,
            self.padding_mode, self.string_padding, self.strategy,
        )

    def forward(self, input: torch.Tensor, output_size: Optional[List[int]] = None) -> torch.Tensor:
        if torch.jit.is_scripting():
            return self._plain_forward(input, output_size)
        return self._python_forward(input, output_size)

    def _plain_forward(self, input: torch.Tensor, output_size: Optional[List[int]] = None) -> torch.Tensor:
        """Plain torch ops (see :mod:`tconv.torch._plain`): what tracers, TorchScript and exporters see."""
        if self.padding_mode != "zeros":
            raise TorchLayerError("Only \"zeros\" padding mode is supported for tconv's ConvTranspose")
        stride, padding, output_padding, dilation, kernel, begin, end = self._plain_args
        if output_size is not None:
            if self._plain_string:
                raise TorchLayerError("output_size cannot be combined with a string padding: the string modes fix "
                                      "the output size themselves; use numeric padding with output_size")
            # torch's own rule, in torch's own (traceable, scriptable) code
            output_padding = self._output_padding(input, output_size, stride, padding, kernel, len(kernel), dilation)
        if self._plain_bias_after:
            y = self._conv(input, None, stride, padding, output_padding, dilation)
            return crop_or_pad(y, self.bias, begin, end)
        y = self._conv(input, self.bias, stride, padding, output_padding, dilation)
        if self._plain_crops:
            y = crop_or_pad(y, None, begin, end)
        return y

    @torch.jit.unused
    def _python_forward(self, input: torch.Tensor, output_size: Optional[List[int]] = None) -> torch.Tensor:
        """Outside TorchScript: the plain path while tracing or exporting, else the picker's strategies."""
        if plain_wanted(input):
            return self._plain_forward(input, output_size)
        return self._eager_forward(input, output_size)

    def _eager_forward(self, input, output_size=None):
        fast = isinstance(input, torch.Tensor) and not is_compiling()
        if fast:
            if output_size is not None:
                output_size = tuple(output_size)
            key = self._fast_key(input, output_size)
            hit = self.__dict__.get("_tconv_last")
            if hit is not None and hit[0] == key:
                params = self._parameters
                if hit[3]:  # unbatched
                    return hit[2](input.unsqueeze(0), params["weight"], params["bias"]).squeeze(0)
                return hit[2](input, params["weight"], params["bias"])
        y, (name, plan) = self._forward(input, output_size)
        if fast:
            # (key, strategy name, the bound call, unbatched): kept on this module, for this module's next call
            self.__dict__["_tconv_last"] = (key, name, bind(name, plan), input.dim() == self._ndim + 1)
        return y

    def _forward(self, input: torch.Tensor, output_size: list[int] | None = None) -> tuple[torch.Tensor, tuple]:
        """The output, and the strategy and plan that computed it (for :meth:`forward` to bind)."""
        if self.padding_mode != "zeros":
            raise TorchLayerError(f'Only "zeros" padding mode is supported for {type(self).__name__}')
        if isinstance(input, torch.Tensor) and input.dim() not in (self._ndim + 1, self._ndim + 2):
            raise TorchLayerError(
                f"Expected {self._ndim + 1}D (unbatched) or {self._ndim + 2}D (batched) input to "
                f"conv_transpose{self._ndim}d, but got input of size: {list(input.shape)}"
            )
        spatial = self._output_size_spatial(input, output_size)
        padding = self.string_padding if self.string_padding is not None else self.padding
        if spatial is not None and self.string_padding is not None:
            raise TorchLayerError(
                f"output_size={tuple(spatial)} cannot be combined with padding={padding!r}: the string modes fix "
                "the output size themselves; use numeric padding with output_size"
            )
        return _conv_transpose_and_choice(
            self._ndim, input, self.weight, self.bias, self.stride, padding,
            self.output_padding, self.groups, self.dilation, self.strategy, output_size=spatial,
        )


def _padding_for_torch(padding: Any, ndim: int) -> Any:
    if isinstance(padding, str):
        if padding.lower() not in STRING_PADDINGS:
            raise TorchLayerError(
                f"padding={padding!r} is not supported; use an int, a tuple of {ndim} ints, or one of "
                f"{', '.join(map(repr, STRING_PADDINGS))}"
            )
        return 0
    return padding


_DOC = """Drop-in for ``torch.nn.ConvTranspose{n}d``, faster on CPU, with 'same' padding.

    Parameters
    ----------
    in_channels, out_channels, kernel_size, stride, output_padding, groups, bias, dilation, padding_mode, device, dtype
        As in ``torch.nn.ConvTranspose{n}d`` (same parameters, same state_dict).
    padding : int, tuple or str
        As in PyTorch, or ``'valid'`` (no cropping), ``'same_upper'`` (output
        ``input*stride``, the odd extra element cropped at the end, as ONNX
        SAME_UPPER and TF/Keras 'same'), ``'same_lower'`` (the odd extra cropped
        at the start, ONNX SAME_LOWER) or ``'same'``, which is ``'same_upper'``
        so that TF/Keras-trained weights give identical outputs.
    strategy : str, optional
        Force a strategy or a mode for this module (see :mod:`tconv.torch.picker`).

    ``forward(input, output_size=None)`` follows PyTorch's rules, including
    unbatched input and output_size with or without the batch/channel sizes.

    Raises
    ------
    TorchLayerError
        Where torch would raise, with the same message or a clearer one.
"""


class ConvTranspose1d(_TconvMixin, nn.ConvTranspose1d):
    __doc__ = _DOC.format(n=1) + """
    Examples
    --------
    >>> import torch
    >>> layer = ConvTranspose1d(8, 4, 16, stride=8, padding="same")
    >>> layer(torch.randn(2, 8, 100)).shape
    torch.Size([2, 4, 800])
    """
    _ndim = 1

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, output_padding=0, groups=1,
                 bias=True, dilation=1, padding_mode="zeros", device=None, dtype=None, *, strategy=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, _padding_for_torch(padding, 1),
                         output_padding, groups, bias, dilation, padding_mode, device, dtype)
        self._setup(padding, strategy)

    def _conv(self, input: torch.Tensor, bias: Optional[torch.Tensor], stride: List[int], padding: List[int],
              output_padding: List[int], dilation: List[int]) -> torch.Tensor:
        return F.conv_transpose1d(input, self.weight, bias, stride, padding, output_padding, self.groups, dilation)


class ConvTranspose2d(_TconvMixin, nn.ConvTranspose2d):
    __doc__ = _DOC.format(n=2) + """
    Examples
    --------
    >>> import torch
    >>> layer = ConvTranspose2d(16, 8, 4, stride=2, padding=1)
    >>> reference = torch.nn.ConvTranspose2d(16, 8, 4, stride=2, padding=1)
    >>> _ = layer.load_state_dict(reference.state_dict())
    >>> x = torch.randn(1, 16, 8, 8)
    >>> torch.allclose(layer(x), reference(x), atol=1e-5)
    True
    >>> layer(x[0], output_size=(17, 17)).shape
    torch.Size([8, 17, 17])
    """
    _ndim = 2

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, output_padding=0, groups=1,
                 bias=True, dilation=1, padding_mode="zeros", device=None, dtype=None, *, strategy=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, _padding_for_torch(padding, 2),
                         output_padding, groups, bias, dilation, padding_mode, device, dtype)
        self._setup(padding, strategy)

    def _conv(self, input: torch.Tensor, bias: Optional[torch.Tensor], stride: List[int], padding: List[int],
              output_padding: List[int], dilation: List[int]) -> torch.Tensor:
        return F.conv_transpose2d(input, self.weight, bias, stride, padding, output_padding, self.groups, dilation)


class ConvTranspose3d(_TconvMixin, nn.ConvTranspose3d):
    __doc__ = _DOC.format(n=3) + """
    Examples
    --------
    >>> import torch
    >>> layer = ConvTranspose3d(4, 2, 2, stride=2)
    >>> layer(torch.randn(1, 4, 3, 3, 3)).shape
    torch.Size([1, 2, 6, 6, 6])
    """
    _ndim = 3

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, output_padding=0, groups=1,
                 bias=True, dilation=1, padding_mode="zeros", device=None, dtype=None, *, strategy=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, _padding_for_torch(padding, 3),
                         output_padding, groups, bias, dilation, padding_mode, device, dtype)
        self._setup(padding, strategy)

    def _conv(self, input: torch.Tensor, bias: Optional[torch.Tensor], stride: List[int], padding: List[int],
              output_padding: List[int], dilation: List[int]) -> torch.Tensor:
        return F.conv_transpose3d(input, self.weight, bias, stride, padding, output_padding, self.groups, dilation)
