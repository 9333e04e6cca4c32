"""Caffe: the ``Deconvolution`` layer (checked against its documented formula; Caffe is not installable here).

``out = s*(i-1) + d*(k-1) + 1 - 2*pad``: the window is ``full[pad : full - pad]``.
There is no output padding, so odd windows need an extra slice.
"""
from __future__ import annotations

from typing import Iterable

from ..errors import ConfigError
from ..geometry import Geometry
from ._base import Convention, channels_first_layout, integer, per_axis
from ._solve import Family, collapse, symmetric_crops


class CaffeFamily(Family):
    """solve's candidates: ``pad`` crops both ends alike, and nothing gives an element back."""

    def options(self, i, k, s, d, o, ndim):
        for p, _ in symmetric_crops(i, k, s, d, o, 1):
            yield (), {"pad": p}

    def assemble(self, mode, values, strides, dilations, outputs):
        args = {"stride": collapse(strides), "pad": collapse(v["pad"] for v in values)}
        if any(d != 1 for d in dilations):
            args["dilation"] = collapse(dilations)
        return args


class Caffe(Convention):
    name = "caffe"
    title = "Caffe"
    api = "Deconvolution (ConvolutionParameter)"
    defaults = {"stride": 1, "pad": 0, "dilation": 1, "group": 1, "num_output": None,
                "stride_h": None, "stride_w": None, "pad_h": None, "pad_w": None}
    #: generic CLI option -> this framework's argument
    cli_names = {"stride": "stride", "padding": "pad", "dilation": "dilation", "groups": "group"}
    solve_family = CaffeFamily()
    rule = "Caffe keeps full[pad : full - pad]: out = s*(i-1) + d*(k-1) + 1 - 2*pad, with no output padding"

    forward_api = "Caffe Convolution"
    forward_defaults = {"stride": 1, "pad": 0, "dilation": 1, "group": 1}
    forward_names = ("stride", "dilation", "pad")

    groups_argument = "group"

    def array_layout(self, rank, args):
        return channels_first_layout(rank, "input (N, C, *spatial), weight (C_in, num_output/group, *k)")

    def per_axis_names(self) -> tuple[str, ...]:
        return ("stride", "pad", "dilation")

    def _build(self, input_shape, kernel_size, args) -> Geometry:
        ndim = len(input_shape)
        stride, pad = args["stride"], args["pad"]
        for name, both, h, w in (("stride", stride, "stride_h", "stride_w"), ("pad", pad, "pad_h", "pad_w")):
            if args[h] is not None or args[w] is not None:
                if ndim != 2:
                    raise ConfigError(f"{h}/{w} are for 2-D layers in Caffe; this input has {ndim} axes")
                if both != self.defaults[name]:
                    raise ConfigError(f"give either {name} or {h}/{w} in Caffe, not both")
        if args["stride_h"] is not None or args["stride_w"] is not None:
            stride = (args["stride_h"] or 1, args["stride_w"] or 1)
        if args["pad_h"] is not None or args["pad_w"] is not None:
            pad = (args["pad_h"] or 0, args["pad_w"] or 0)
        stride = per_axis("stride", stride, ndim, self.title, 1)
        pad = per_axis("pad", pad, ndim, self.title, 0)
        dilation = per_axis("dilation", args["dilation"], ndim, self.title, 1)
        group = integer("group", args["group"], self.title, 1)
        axes = [self.axis(str(n), i, k, s, d, p, p) for n, (i, k, s, d, p) in enumerate(zip(input_shape, kernel_size, stride, dilation, pad))]
        return self.geometry(axes, {"stride": stride, "pad": pad, "dilation": dilation, "group": group}, groups=group)

    def _candidates(self, geometry: Geometry) -> Iterable[dict]:
        pads = tuple(max(min(ax.crop_begin, ax.crop_end), 0) for ax in geometry)
        yield {"stride": geometry.stride, "pad": pads, "dilation": geometry.dilation}
        yield {"stride": geometry.stride, "dilation": geometry.dilation}


CONVENTION = Caffe()
