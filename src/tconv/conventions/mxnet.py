"""MXNet: ``Deconvolution`` (checked against its documented formula; MXNet is retired and not installable here).

``out = s*(i-1) + K - 2*pad + adj``: the window is ``full[pad : full - pad + adj]``.
With ``target_shape`` T: ``t = full - T``, ``adj = t % 2``, ``pad = ceil(t/2)``, so
an odd surplus is cropped at the START. ``adj`` (given or derived) must be
smaller than ``stride`` (dilation does not widen it, unlike PyTorch).

Source: apache/mxnet ``src/operator/nn/deconvolution-inl.h`` (``InferPad``) and
``deconvolution.cc`` (``DeconvolutionShape``: ``CHECK_GE(stride-1, adj)``,
``oshape = stride*(i-1) + dilated_ksize - 2*pad + adj``).
"""
from __future__ import annotations

from typing import Iterable

from ..errors import ConfigError
from ..geometry import Geometry, full_size
from ._base import Convention, channels_first_layout, integer, per_axis, sizes
from ._solve import Family, collapse, symmetric_crops


class MXNetFamily(Family):
    """solve's candidates: ``pad`` crops both ends alike and ``adj`` gives some back at the end,
    or ``target_shape`` names the size."""

    def options(self, i, k, s, d, o, ndim):
        # adj up to max(s, d) - 1 as PyTorch allows: the convention turns away adj >= stride
        for p, a in symmetric_crops(i, k, s, d, o, max(s, d)):
            yield ("pad",), {"pad": p, "adj": a}
        yield ("target_shape",), {}

    def assemble(self, mode, values, strides, dilations, outputs):
        args = {"stride": collapse(strides)}
        if mode == ("target_shape",):
            args["target_shape"] = tuple(outputs)
        else:
            args["pad"] = collapse(v["pad"] for v in values)
            if any(v["adj"] for v in values):
                args["adj"] = collapse(v["adj"] for v in values)
        if any(d != 1 for d in dilations):
            args["dilate"] = collapse(dilations)
        return args

    def rank(self, mode):
        return 0 if mode == ("pad",) else 1


class MXNet(Convention):
    name = "mxnet"
    title = "MXNet"
    api = "Deconvolution"
    defaults = {"stride": 1, "dilate": 1, "pad": 0, "adj": 0, "target_shape": None, "num_group": 1, "num_filter": None, "layout": None}
    #: generic CLI option -> this framework's argument
    cli_names = {"stride": "stride", "padding": "pad", "dilation": "dilate", "output_padding": "adj", "output_size": "target_shape", "groups": "num_group"}
    solve_family = MXNetFamily()
    rule = "MXNet keeps full[pad : full - pad + adj]; target_shape T sets pad = ceil((full-T)/2) and adj = (full-T) % 2"

    forward_api = "MXNet Convolution"
    forward_defaults = {"stride": 1, "pad": 0, "dilate": 1, "num_group": 1}
    forward_names = ("stride", "dilate", "pad")

    groups_argument = "num_group"

    def array_layout(self, rank, args):
        layout = args.get("layout")
        if layout is not None and not str(layout).upper().startswith("NC"):
            raise ConfigError(f"layout={layout!r}: tconv supports MXNet's channels-first layouts (NCW, NCHW, NCDHW)")
        return channels_first_layout(rank, "input (N, C, *spatial), weight (C_in, num_filter/num_group, *k)")

    def per_axis_names(self) -> tuple[str, ...]:
        return ("stride", "dilate", "pad", "adj", "target_shape")

    def _build(self, input_shape, kernel_size, args) -> Geometry:
        ndim = len(input_shape)
        stride = per_axis("stride", args["stride"], ndim, self.title, 1)
        dilate = per_axis("dilate", args["dilate"], ndim, self.title, 1)
        pad = per_axis("pad", args["pad"], ndim, self.title, 0)
        adj = per_axis("adj", args["adj"], ndim, self.title, 0)
        groups = integer("num_group", args["num_group"], self.title, 1)
        target = args["target_shape"]
        if target is not None and not (isinstance(target, (list, tuple)) and all(t == 0 for t in target)):
            target = sizes("target_shape", target, ndim, self.title)
        else:
            target = None
        axes = []
        for n, (i, k, s, d) in enumerate(zip(input_shape, kernel_size, stride, dilate)):
            full = full_size(i, k, s, d)
            if target is not None:
                t = full - target[n]
                if t < 0:
                    raise ConfigError(f"target_shape[{n}]={target[n]} is larger than the uncropped output {full}: MXNet: too big target shape")
                p, a = -(-t // 2), t % 2
                if a >= s:
                    raise ConfigError(
                        f"target_shape[{n}]={target[n]} leaves an odd surplus ({t}) with stride 1: MXNet then needs "
                        f"adj=1, and adj must be smaller than stride (\"adj(x) must be samller than stride[0]\"); "
                        f"legal targets here: {full}, {full - 2}, {full - 4}, ..."
                    )
            else:
                p, a = pad[n], adj[n]
                if a >= s:
                    raise ConfigError(
                        f"adj[{n}]={a} must be smaller than stride ({s}) in MXNet (\"adj(x) must be samller than "
                        f"stride[0]\"); legal: 0..{s - 1}"
                    )
            axes.append(self.axis(str(n), i, k, s, d, p, p - a))
        normalized = {"stride": stride, "dilate": dilate, "pad": tuple(ax.crop_begin for ax in axes),
                      "adj": tuple(ax.crop_begin - ax.crop_end for ax in axes), "num_group": groups}
        return self.geometry(axes, normalized, groups=groups)

    def _candidates(self, geometry: Geometry) -> Iterable[dict]:
        pads, adjs = [], []
        for ax in geometry:
            limit = ax.stride - 1  # MXNet: adj < stride, whatever the dilation
            p = max(ax.crop_begin, 0)
            a = min(max(p - ax.crop_end, 0), limit)
            if p - a > ax.crop_end >= 0:
                p = ax.crop_end + a  # adj cannot reach: crop less at the start, slice the rest
            pads.append(p)
            adjs.append(a)
        yield {"stride": geometry.stride, "dilate": geometry.dilation, "pad": tuple(pads), "adj": tuple(adjs)}
        yield {"stride": geometry.stride, "dilate": geometry.dilation, "target_shape": geometry.output_shape}
        yield {"stride": geometry.stride, "dilate": geometry.dilation}


CONVENTION = MXNet()
