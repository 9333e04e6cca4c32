"""PyTorch: ``nn.ConvTranspose{1,2,3}d`` and ``F.conv_transpose{1,2,3}d``.

``out = (i-1)*s - 2*p + d*(k-1) + 1 + op``: the kept window is
``full[p : full - p + op]``. ``padding`` is the padding of the *forward*
convolution this layer inverts, so it removes ``p`` elements from each side of
the uncropped output; ``output_padding`` gives back ``op`` of them at the end.
``forward(output_size=...)`` picks ``op`` from the requested size.
"""
from __future__ import annotations

from typing import Iterable, Sequence

from ..errors import ConfigError
from ..geometry import Geometry, full_size
from ._base import Convention, channels_first_layout, integer, legal_range_text, per_axis
from ._solve import Family, collapse, symmetric_crops


#: Which of PyTorch's CPU kernels return an empty tensor, and which raise (aten's ConvParams::use_mkldnn).
EMPTY_HOW = (
    "PyTorch returns it where its oneDNN (mkldnn) kernel runs the layer: float32 on CPU, which PyTorch picks "
    "for most 2-D and 3-D layers (batch above 1, groups above 1, kernels above 3x3, large inputs). Its native "
    "kernels (float64, 1-D layers with batch 1 and groups 1, output_padding >= stride) raise \"Output size is "
    "too small\" instead"
)


class PyTorchFamily(Family):
    """solve's candidates: ``padding`` crops both ends alike, ``output_padding`` gives some back at the end."""

    def options(self, i, k, s, d, o, ndim):
        for p, op in symmetric_crops(i, k, s, d, o, max(s, d)):
            yield (), {"padding": p, "output_padding": op}

    def assemble(self, mode, values, strides, dilations, outputs):
        return _compact(strides, [v["padding"] for v in values], [v["output_padding"] for v in values], dilations, 1)

    def invert_alternatives(self, args, output_shape):
        # forward(output_size=...) lets PyTorch pick output_padding from the size the conv had
        return [{"stride": args["stride"], "padding": args["padding"], "output_size": output_shape,
                 **({"dilation": args["dilation"]} if "dilation" in args else {})}]


class PyTorch(Convention):
    name = "pytorch"
    title = "PyTorch"
    api = "nn.ConvTranspose / F.conv_transpose"
    defaults = {
        "stride": 1,
        "padding": 0,
        "output_padding": 0,
        "dilation": 1,
        "groups": 1,
        "output_size": None,
        "padding_mode": "zeros",
    }
    #: generic CLI option -> this framework's argument
    cli_names = {"stride": "stride", "padding": "padding", "dilation": "dilation", "output_padding": "output_padding", "output_size": "output_size", "groups": "groups"}
    solve_family = PyTorchFamily()
    rule = (
        "PyTorch keeps full[p : full - p + op]: padding p removes p elements from both ends of the "
        "uncropped output, and output_padding op (< stride or < dilation) gives back op at the end"
    )
    forward_api = "nn.Conv*d / F.conv*d"
    forward_defaults = {"stride": 1, "padding": 0, "dilation": 1, "groups": 1, "padding_mode": "zeros"}
    forward_padding_modes = ("same", "valid")

    groups_argument = "groups"

    def output_size_entries(self, value, ndim, args):
        extra = len(value) - ndim
        if extra not in (1, 2):
            raise ConfigError(f"PyTorch's output_size takes {ndim}, {ndim + 1} or {ndim + 2} entries (keeping the last {ndim})")
        return value[extra:], value[:extra], f"keeps the last {ndim} entr{'y' if ndim == 1 else 'ies'}"

    def array_layout(self, rank, args):
        return channels_first_layout(rank, "input (N, C, *spatial), weight (C_in, C_out/groups, *k)")

    def forward_same_pads(self, i, K, s, mode, strides):
        if any(st != 1 for st in strides):
            raise ConfigError(
                f"padding='same' is not supported for strided convolutions in PyTorch (stride={tuple(strides)}); "
                "give integer padding"
            )
        return super().forward_same_pads(i, K, s, mode, strides)

    def per_axis_names(self) -> tuple[str, ...]:
        return ("stride", "padding", "output_padding", "dilation")

    def _build(self, input_shape, kernel_size, args) -> Geometry:
        ndim = len(input_shape)
        padding = args["padding"]
        if isinstance(padding, str):
            raise ConfigError(self._string_padding_message(padding, input_shape, kernel_size, args))
        if not isinstance(args["padding_mode"], str) or args["padding_mode"] != "zeros":
            raise ConfigError(
                f"padding_mode={args['padding_mode']!r}: only 'zeros' padding mode is supported for "
                "ConvTranspose in PyTorch"
            )
        stride = per_axis("stride", args["stride"], ndim, self.title, minimum=1)
        dilation = per_axis("dilation", args["dilation"], ndim, self.title, minimum=1)
        padding = per_axis("padding", padding, ndim, self.title, minimum=0)
        output_padding: Sequence[int] = per_axis("output_padding", args["output_padding"], ndim, self.title, minimum=0)
        groups = integer("groups", args["groups"], self.title, minimum=1)

        minimum = [
            full_size(i, k, s, d) - 2 * p
            for i, k, s, d, p in zip(input_shape, kernel_size, stride, dilation, padding)
        ]
        if args["output_size"] is not None:
            output_padding = self._output_padding_from_size(args["output_size"], input_shape, stride, minimum)
        else:
            for n, (op, s, d) in enumerate(zip(output_padding, stride, dilation)):
                if op >= s and op >= d:
                    lo = minimum[n]
                    hi = lo + max(s, d) - 1
                    raise ConfigError(
                        f"output_padding={op} must be smaller than stride ({s}) or dilation ({d}) in "
                        f"PyTorch; for input {input_shape[n]} the legal output sizes are "
                        f"{legal_range_text(max(lo, 1), hi)}"
                    )
        axes = []
        for n, (i, k, s, d, p, op) in enumerate(zip(input_shape, kernel_size, stride, dilation, padding, output_padding)):
            if minimum[n] + op < 0:
                raise ConfigError(
                    f"PyTorch: the calculated output size on axis {n} is {minimum[n] + op}: "
                    f"(i-1)*s - 2*padding + d*(k-1) + 1 + output_padding = ({i}-1)*{s} - 2*{p} + "
                    f"{d}*({k}-1) + 1 + {op}; Output size is too small. padding must be at most "
                    f"{max(((i - 1) * s + d * (k - 1) + op) // 2, 0)} here for a non-empty output"
                )
            axes.append(self.axis(str(n), i, k, s, d, p, p - op, empty_ok=True))
        notes = []
        empty = self.empty_note(axes, EMPTY_HOW)
        if empty:
            notes.append(empty)
        normalized = {
            "stride": stride,
            "padding": padding,
            "output_padding": tuple(output_padding),
            "dilation": dilation,
            "groups": groups,
        }
        if args["output_size"] is not None:
            normalized["output_size"] = tuple(ax.output_size for ax in axes)
        return self.geometry(axes, normalized, notes, groups=groups)

    def _output_padding_from_size(self, output_size, input_shape, stride, minimum) -> list[int]:
        """PyTorch's ``_output_padding``: accept n, n+1 or n+2 entries, keep the last n."""
        ndim = len(input_shape)
        if hasattr(output_size, "tolist"):
            output_size = output_size.tolist()
        if not isinstance(output_size, (list, tuple)):
            output_size = [output_size]
        if len(output_size) not in (ndim, ndim + 1, ndim + 2):
            raise ConfigError(
                f"output_size={tuple(output_size)!r} must have {ndim} or {ndim + 2} elements "
                f"(got {len(output_size)})"
            )
        wanted = [integer(f"output_size[{n}]", v, self.title, minimum=0) for n, v in enumerate(output_size[-ndim:])]
        maximum = [lo + s - 1 for lo, s in zip(minimum, stride)]
        for size, lo, hi in zip(wanted, minimum, maximum):
            if not lo <= size <= hi:
                raise ConfigError(
                    f"output_size={tuple(wanted)!r}: PyTorch requested an output size of "
                    f"{tuple(wanted)}, but valid sizes range from {tuple(minimum)} to "
                    f"{tuple(maximum)} (for an input of {tuple(input_shape)}); output_size must "
                    "lie between the size with output_padding=0 and that plus stride-1"
                )
        return [size - lo for size, lo in zip(wanted, minimum)]

    def _string_padding_message(self, padding, input_shape, kernel_size, args) -> str:
        from . import get

        text = (
            f"padding={padding!r} is not supported by PyTorch's ConvTranspose: nn.ConvTranspose "
            f"accepts it in the constructor (it becomes the tuple {tuple(padding)!r}) and then fails "
            "in forward with a TypeError, and F.conv_transpose rejects it"
        )
        mode = padding.lower()
        if mode not in ("same", "valid"):
            return text + "; padding must be an int or a tuple of ints"
        try:
            keras_like = get("keras").to_geometry(
                input_shape, kernel_size, strides=args["stride"], padding=mode, dilation_rate=args["dilation"]
            )
            equivalent = self.from_geometry(keras_like)
        except ConfigError:
            return text + "; use integer padding, or tconv.torch.ConvTranspose with padding='same'"
        suggestion = ", ".join(f"{k}={v}" for k, v in equivalent.args.items() if k in ("padding", "output_padding"))
        if equivalent.exact:
            return text + f"; for this layer, Keras-style {mode!r} is {suggestion}"
        return (
            text + f"; for this layer, Keras-style {mode!r} is {suggestion} followed by the slice "
            f"{equivalent.extra_crop} (begin, end) per axis, or tconv.torch.ConvTranspose with padding={mode!r}"
        )

    def formula(self, geometry: Geometry) -> list[str]:
        return [
            f"out = (i-1)*s - 2*padding + d*(k-1) + 1 + output_padding = ({ax.input_size}-1)*{ax.stride} - "
            f"2*{ax.crop_begin} + {ax.dilation}*({ax.kernel_size}-1) + 1 + {ax.crop_begin - ax.crop_end} = {ax.output_size}"
            for ax in geometry
        ]

    def _candidates(self, geometry: Geometry) -> Iterable[dict]:
        # padding p = crop_begin and output_padding = crop_begin - crop_end when legal;
        # otherwise the nearest legal pair, leaving a slice or pad for the caller.
        padding, output_padding = [], []
        for ax in geometry:
            limit = max(ax.stride, ax.dilation) - 1
            p = max(ax.crop_begin, 0)
            op = min(max(p - ax.crop_end, 0), limit)
            if p - op > ax.crop_end and ax.crop_end >= 0:
                # keep more than wanted at the end would need op > limit: crop less at the start
                p = ax.crop_end + op
            padding.append(p)
            output_padding.append(op)
        stride, dilation = geometry.stride, geometry.dilation
        yield _compact(stride, padding, output_padding, dilation, geometry.groups)
        yield _compact(stride, [0] * geometry.ndim, [0] * geometry.ndim, dilation, geometry.groups)


def _compact(stride, padding, output_padding, dilation, groups) -> dict:
    """The arguments as a practitioner writes them: one value where the axes agree, defaults left out.

    Both from_geometry's candidates and solve's (:class:`PyTorchFamily`) are written this way.
    """
    args = {"stride": collapse(stride), "padding": collapse(padding)}
    if any(output_padding):
        args["output_padding"] = collapse(output_padding)
    if any(d != 1 for d in dilation):
        args["dilation"] = collapse(dilation)
    if groups != 1:
        args["groups"] = groups
    return args


CONVENTION = PyTorch()
