"""TFLite / LiteRT: the ``TRANSPOSE_CONV`` builtin (2-D, NHWC input, OHWI weights).

The output shape O is an input tensor. TFLite computes the padding as for the
forward convolution of an O-sized input: with ``n = ceil(O/s)`` (SAME) or
``floor((O-k)/s) + 1`` (VALID), ``total = max((n-1)*s + k - O, 0)`` and the
kept window starts at ``total // 2``. It has no dilation, and it does NOT
check that O fits the input. For an inconsistent O (observed with TF 2.21's
interpreter) the builtin kernel silently returns values that are no window of
the transposed convolution (NaN among them), and the XNNPACK delegate, where
it takes the op, returns a tensor of another shape than O. tconv rejects such
an O, as TensorFlow does.
"""
from __future__ import annotations

from typing import Iterable

from ..errors import ConfigError
from ..geometry import Geometry, full_size
from ._base import ArrayLayout, Convention, batch_and_channel_entries, channels_last_axes, choice, integer, spatial_shape
from ._solve import Family


class TFLiteFamily(Family):
    """solve's candidates: 'SAME' and 'VALID', with the output shape every call names."""

    required = ("output_shape",)
    takes_dilation = False

    cli_upper_padding = True
    cli_bare_sizes = True

    def options(self, i, k, s, d, o, ndim):
        yield ("SAME",), {}
        yield ("VALID",), {}

    def assemble(self, mode, values, strides, dilations, outputs):
        return {"output_shape": tuple(outputs), "padding": mode[0], "strides": tuple(strides)}

    def rank(self, mode):
        return 0 if mode == ("SAME",) else 1

    def check_ndim(self, mode):
        return TFLite.max_ndim  # the op is 2-D only: one axis is checked as two equal ones


class TFLite(Convention):
    name = "tflite"
    title = "TFLite"
    api = "TRANSPOSE_CONV"
    max_ndim = 2
    defaults = {"output_shape": None, "padding": "SAME", "stride_h": None, "stride_w": None, "strides": None}
    #: generic CLI option -> this framework's argument
    cli_names = {"stride": "strides", "padding": "padding", "output_size": "output_shape"}
    solve_family = TFLiteFamily()
    rule = (
        "TFLite TRANSPOSE_CONV takes the output shape O as an input and starts the kept window at the forward "
        "convolution's pad_before for O; it has no dilation, and O must fit the input as in TensorFlow (TFLite does not check and returns garbage)"
    )

    forward_api = "TFLite CONV_2D"
    forward_defaults = {"padding": "SAME", "stride_h": 1, "stride_w": 1, "strides": None}
    forward_names = ("strides", None, "padding")
    forward_padding_modes = ("SAME", "VALID")

    def output_size_entries(self, value, ndim, args):
        return batch_and_channel_entries(self, value, ndim, args, " (NHWC)")

    def array_layout(self, rank, args):
        x = channels_last_axes(rank)
        return ArrayLayout(x, (rank - 1, 0, *range(1, rank - 1)), x, False,
                           "input (N, H, W, C), weight OHWI (C_out, H, W, C_in)")

    def forward_ndim(self, input_shape, kernel_size):
        return 2

    def forward_strides(self, args, ndim):
        if args["strides"] is not None:
            return self.forward_per_axis("strides", args["strides"], ndim)
        return integer("stride_h", args["stride_h"], self.title, 1), integer("stride_w", args["stride_w"], self.title, 1)

    def infer_ndim(self, input_shape, kernel_size, args) -> int:
        return 2

    def _build(self, input_shape, kernel_size, args) -> Geometry:
        padding = choice("padding", args["padding"], ("SAME", "VALID"), self.title)
        if args["output_shape"] is None:
            raise ConfigError("output_shape is required: TRANSPOSE_CONV takes it as its first input tensor (int32[4], NHWC)")
        output = spatial_shape("output_shape", args["output_shape"], 2, self.title, channels_first=False)
        if args["strides"] is not None and (args["stride_h"] is not None or args["stride_w"] is not None):
            raise ConfigError("give either strides=(h, w) or stride_h/stride_w, not both")
        if args["strides"] is not None:
            strides = args["strides"] if isinstance(args["strides"], (list, tuple)) else (args["strides"],) * 2
            if len(strides) != 2:
                raise ConfigError(f"strides={args['strides']!r} must be (stride_h, stride_w)")
        else:
            strides = (1 if args["stride_h"] is None else args["stride_h"], 1 if args["stride_w"] is None else args["stride_w"])
        strides = tuple(integer(name, v, self.title, minimum=1) for name, v in zip(("stride_h", "stride_w"), strides))
        notes: list[str] = []
        axes = []
        for n, (i, k, s, O) in enumerate(zip(input_shape, kernel_size, strides, output)):
            implied = -(-O // s) if padding == "SAME" else (O - k) // s + 1
            total = max((implied - 1) * s + k - O, 0)
            begin = total // 2
            full = full_size(i, k, s, 1)
            if implied != i:
                raise ConfigError(
                    f"output_shape={tuple(output)} does not fit input {tuple(input_shape)} on axis {n}: the "
                    f"forward {padding} convolution (k={k}, s={s}) of {O} elements has {implied} positions, not "
                    f"{i}. TFLite does not validate output_shape and returns garbage (values that are no "
                    "window of the transposed convolution, or another shape with XNNPACK); TensorFlow rejects it. Legal "
                    f"sizes on this axis: {_legal(i, k, s, padding)}"
                )
            axes.append(self.axis(str(n), i, k, s, 1, begin, full - O - begin))
        normalized = {"output_shape": output, "padding": padding, "stride_h": strides[0], "stride_w": strides[1]}
        return self.geometry(axes, normalized, notes)

    def _candidates(self, geometry: Geometry) -> Iterable[dict]:
        if any(d != 1 for d in geometry.dilation):
            raise ConfigError("TFLite TRANSPOSE_CONV has no dilation")
        for padding in ("SAME", "VALID"):
            yield {"output_shape": geometry.output_shape, "padding": padding,
                   "stride_h": geometry.stride[0], "stride_w": geometry.stride[-1]}


def _legal(i: int, k: int, s: int, padding: str) -> str:
    lo, hi = ((i - 1) * s + 1, i * s) if padding == "SAME" else ((i - 1) * s + k, (i - 1) * s + k + s - 1)
    return f"{lo}..{hi}"


CONVENTION = TFLite()
