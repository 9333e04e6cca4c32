"""ONNX ``ConvTranspose``, as onnxruntime (>= 1.13, checked on 1.31) runs it.

``out = s*(i-1) + op + K - pads_begin - pads_end``; the kept window is
``full[pads_begin : full + op - pads_end]``.

With ``output_shape`` O (or ``auto_pad`` SAME_UPPER/SAME_LOWER, which ask for
``O = i*s``), the total padding is ``max(full + op - O, 0)``. SAME_UPPER puts
an odd extra at the END of the crop; NOTSET, SAME_LOWER and VALID put it at the
START. When O exceeds ``full + op`` the output is padded with zeros at the end.
Negative ``pads`` are accepted by onnxruntime and add zeros at that end.

Where onnxruntime differs from the ONNX specification (and from the onnx
Python reference, ``onnx.reference``):

* the spec says SAME_* give ``i*s``; onnxruntime gives ``full + op`` when that
  is smaller (``K + op < s``), since it clamps the total padding at 0;
* onnxruntime first checks ``output_padding < max(stride, dilation)`` and then
  that the output maps back to the input, ``floor((O + pads - K)/s) + 1 == i``,
  which in effect requires ``output_padding < stride``;
* onnxruntime before 1.13 swapped SAME_UPPER and SAME_LOWER.
"""
from __future__ import annotations

from typing import Any, Iterable, Sequence

from ..errors import ConfigError
from ..geometry import Geometry, dilated_kernel_size, full_size
from ._base import MAX_SIZE, Convention, channels_first_layout, choice, integer, same_pads
from ._solve import Family, windows


def _ints(name: str, value, length: int, framework: str, minimum: int) -> tuple[int, ...]:
    if hasattr(value, "tolist"):
        value = value.tolist()
    if not isinstance(value, (list, tuple)):
        raise ConfigError(f"{name}={value!r} must be a list of {length} ints in ONNX (attributes are lists)")
    if len(value) != length:
        raise ConfigError(f"{name}={list(value)!r} has {len(value)} entries; ONNX needs {length} here")
    return tuple(integer(f"{name}[{n}]", v, framework, minimum) for n, v in enumerate(value))


class OnnxFamily(Family):
    """solve's candidates: the ``auto_pad`` modes, ``output_shape``, and explicit ``pads`` for every window."""

    _RANK = {"pads": 0, "SAME_UPPER": 1, "VALID": 1, "SAME_LOWER": 2, "output_shape": 3}

    cli_upper_padding = True

    def options(self, i, k, s, d, o, ndim):
        for auto_pad in ("SAME_UPPER", "SAME_LOWER", "VALID"):
            yield (auto_pad,), {}
        yield ("output_shape",), {}
        for ax in windows(i, k, s, d, o):
            # a window past the end needs output_padding; the rest is pads
            op = max(-ax.crop_end, 0)
            yield ("pads",), {"pads": (ax.crop_begin, ax.crop_end + op), "output_padding": op}

    def assemble(self, mode, values, strides, dilations, outputs):
        base = _base_args(strides, dilations, 1)
        if mode == ("pads",):
            return _pads_args(base, [v["pads"][0] for v in values], [v["pads"][1] for v in values],
                              [v["output_padding"] for v in values])
        if mode == ("output_shape",):
            return {**base, "output_shape": list(outputs)}
        return {**base, "auto_pad": mode[0]}

    def rank(self, mode):
        return self._RANK[mode[0]]


def _base_args(strides: Sequence[int], dilations: Sequence[int], group: int) -> dict[str, Any]:
    """What every spelling of a layer carries, defaults left out: from_geometry's candidates and
    solve's (:class:`OnnxFamily`) start from it."""
    base: dict[str, Any] = {"strides": list(strides)}
    if any(d != 1 for d in dilations):
        base["dilations"] = list(dilations)
    if group != 1:
        base["group"] = group
    return base


def _pads_args(base: dict[str, Any], begins: Sequence[int], ends: Sequence[int], output_padding: Sequence[int]) -> dict[str, Any]:
    """``base`` with explicit ``pads`` (all begins, then all ends) and any output padding."""
    args = {**base, "pads": list(begins) + list(ends)}
    if any(output_padding):
        args["output_padding"] = list(output_padding)
    return args


class Onnx(Convention):
    name = "onnx"
    title = "ONNX"
    api = "ConvTranspose (onnxruntime)"
    defaults = {
        "auto_pad": "NOTSET",
        "pads": None,
        "strides": None,
        "output_padding": None,
        "output_shape": None,
        "dilations": None,
        "group": 1,
        "kernel_shape": None,
    }
    #: generic CLI option -> this framework's argument
    cli_names = {"stride": "strides", "padding": "pads", "dilation": "dilations", "output_padding": "output_padding", "output_size": "output_shape", "groups": "group"}
    solve_family = OnnxFamily()
    rule = (
        "ONNX keeps full[pads_begin : full + output_padding - pads_end]; with output_shape or SAME_* the total "
        "crop max(full + output_padding - O, 0) is split with the odd extra at the end for SAME_UPPER and at "
        "the start otherwise"
    )

    forward_api = "ONNX Conv"
    forward_defaults = {"auto_pad": "NOTSET", "pads": None, "strides": None, "dilations": None, "group": 1,
                        "kernel_shape": None}
    forward_names = ("strides", "dilations", "pads")

    groups_argument = "group"

    def output_size_entries(self, value, ndim, args):
        raise ConfigError(
            f"ONNX's output_shape takes the {ndim} spatial entries only (onnxruntime's shape inference rejects "
            f"{len(value)}: 'Attribute output_shape has incorrect size')"
        )

    def array_layout(self, rank, args):
        return channels_first_layout(rank, "input (N, C, *spatial), weight (C_in, C_out/group, *k)")

    def forward_pads(self, args, ndim, inputs, kernel, strides, dilations):
        mode = choice("auto_pad", args["auto_pad"], ("NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID"), self.title)
        if mode == "NOTSET":
            pads = [0] * (2 * ndim) if args["pads"] is None else list(args["pads"])
            if len(pads) != 2 * ndim:
                raise ConfigError(f"pads={pads!r} must have {2 * ndim} entries (all begins, then all ends) in ONNX")
            return [(integer("pads", pads[n], self.title, 0), integer("pads", pads[n + ndim], self.title, 0))
                    for n in range(ndim)]
        if mode == "VALID":
            return [(0, 0)] * ndim
        return [same_pads(i, dilated_kernel_size(k, d), s, extra_at_start=mode == "SAME_LOWER")
                for i, k, s, d in zip(inputs, kernel, strides, dilations)]

    def forward_padding_assumed(self, args):
        # auto_pad or pads sets it; pads' default is None, so it is said in words
        return None if "auto_pad" in args or "pads" in args else "auto_pad='NOTSET', pads 0 (no padding)"

    def forward_native_args(self, generic, ndim):
        args = {}
        for key, value in super().forward_native_args(generic, ndim).items():
            if key == "pads" and isinstance(value, str):
                key, value = "auto_pad", value.upper()  # a padding mode is ONNX's auto_pad
            elif key == "pads":  # per axis given once: ONNX lists all begins, then all ends
                value = list(value) * 2 if isinstance(value, tuple) else [value] * (2 * ndim)
            args[key] = value
        return args

    def native_args(self, generic: dict, ndim: int) -> dict:
        args = super().native_args(generic, ndim)
        if isinstance(args.get("pads"), str):
            args["auto_pad"] = args.pop("pads").upper()
        for key in ("strides", "dilations", "output_padding", "output_shape"):
            if key in args and not isinstance(args[key], (list, tuple)):
                args[key] = [args[key]] * ndim
        if "pads" in args:
            pads = args["pads"] if isinstance(args["pads"], (list, tuple)) else [args["pads"]] * ndim
            args["pads"] = list(pads) * 2 if len(pads) == ndim else list(pads)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in args.items()}

    def per_axis_names(self) -> tuple[str, ...]:
        return ("strides", "dilations", "output_padding", "kernel_shape", "output_shape")

    def _build(self, input_shape, kernel_size, args) -> Geometry:
        ndim = len(input_shape)
        auto_pad = choice("auto_pad", args["auto_pad"], ("NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID"), self.title)
        one = [1] * ndim
        strides = _ints("strides", one if args["strides"] is None else args["strides"], ndim, self.title, 1)
        dilations = _ints("dilations", one if args["dilations"] is None else args["dilations"], ndim, self.title, 1)
        output_padding = _ints("output_padding", [0] * ndim if args["output_padding"] is None else args["output_padding"], ndim, self.title, 0)
        group = integer("group", args["group"], self.title, minimum=1)
        if args["kernel_shape"] is not None:
            kernel_shape = _ints("kernel_shape", args["kernel_shape"], ndim, self.title, 1)
            if kernel_shape != tuple(kernel_size):
                raise ConfigError(f"kernel_shape={list(kernel_shape)} does not match the weight's spatial shape {list(kernel_size)}")
        if args["pads"] is not None and auto_pad != "NOTSET":
            raise ConfigError(
                f"pads={args['pads']!r} with auto_pad={auto_pad!r}: the pads attribute cannot be used "
                "simultaneously with auto_pad; use auto_pad='NOTSET' with pads, or drop pads"
            )
        pads = _ints("pads", [0] * (2 * ndim) if args["pads"] is None else args["pads"], 2 * ndim, self.title, -MAX_SIZE)
        if any(p < 0 for p in pads):
            # The spec forbids them, and onnxruntime's shape inference rejects them whenever the model
            # declares its input shapes; only shape-less models reach a kernel that would add zeros.
            raise ConfigError(
                f"pads={list(pads)}: attribute pads must not contain negative values in ONNX (onnxruntime "
                "rejects them when input shapes are declared); use pads >= 0, or output_shape larger than "
                "the full output to add zeros at the end"
            )
        output_shape = None
        if args["output_shape"] is not None:
            output_shape = _ints("output_shape", args["output_shape"], ndim, self.title, 1)

        axes = []
        for n, (i, k, s, d, op) in enumerate(zip(input_shape, kernel_size, strides, dilations, output_padding)):
            K = dilated_kernel_size(k, d)
            full = full_size(i, k, s, d)
            if op >= max(s, d):
                raise ConfigError(
                    f"output_padding[{n}] ({op}) must be less than max(stride, dilation) ({max(s, d)}) in "
                    f"onnxruntime; legal: 0..{max(s, d) - 1}"
                )
            target = output_shape[n] if output_shape is not None else (i * s if auto_pad.startswith("SAME") else None)
            if target is None:
                begin = pads[n] if auto_pad == "NOTSET" else 0
                end_pad = pads[n + ndim] if auto_pad == "NOTSET" else 0
                out = full + op - begin - end_pad
            else:
                total = max(full + op - target, 0)
                begin = total // 2 if auto_pad == "SAME_UPPER" else total - total // 2
                out = full + op - total if output_shape is None else target
                end_pad = full + op - out - begin
            if out < 1:
                raise ConfigError(
                    f"ONNX: the computed output dimension is {out} (<= 0) on axis {n}: s*(i-1) + op + K - "
                    f"pads = {s}*({i}-1) + {op} + {K} - {begin + end_pad}; the pads may remove at most "
                    f"{full + op - 1} elements in all"
                )
            # onnxruntime's consistency check uses the explicit pads as given (negative too), and
            # for output_shape / SAME_* the total padding clamped at 0.
            total_pads = begin + end_pad if target is None else max(full + op - out, 0)
            if (out + total_pads - K) // s + 1 != i:
                hi = full + s - 1
                raise ConfigError(
                    f"the output size {out} on axis {n} is inconsistent with input {i}: onnxruntime requires "
                    f"floor((out + pads - K)/stride) + 1 == input, so output_padding ({op}) must be smaller than "
                    f"stride ({s}) and output_shape at most {hi} here"
                )
            axes.append(self.axis(str(n), i, k, s, d, begin, full - out - begin))
        normalized = {
            "auto_pad": auto_pad,
            "strides": strides,
            "dilations": dilations,
            "output_padding": output_padding,
            "group": group,
        }
        if auto_pad == "NOTSET" and output_shape is None:
            normalized["pads"] = pads
        if output_shape is not None:
            normalized["output_shape"] = output_shape
        return self.geometry(axes, normalized, groups=group)

    def formula(self, geometry: Geometry) -> list[str]:
        ops = geometry.args["output_padding"]
        return [
            f"out = s*(i-1) + output_padding + K - pads_begin - pads_end = {ax.stride}*({ax.input_size}-1) + {op} + "
            f"{ax.dilated_kernel} - {ax.crop_begin} - {ax.crop_end + op} = {ax.output_size}"
            for ax, op in zip(geometry, ops)
        ]

    def _candidates(self, geometry: Geometry) -> Iterable[dict]:
        base = _base_args(geometry.stride, geometry.dilation, geometry.groups)
        begins, ends, ops = [], [], []
        for ax in geometry:
            begin = max(ax.crop_begin, 0)
            op = min(max(-ax.crop_end, 0), ax.stride - 1)
            begins.append(begin)
            ends.append(max(ax.crop_end + op, 0))
            ops.append(op)
        yield _pads_args(base, begins, ends, ops)
        yield {**base, "auto_pad": "SAME_UPPER"}
        yield {**base, "auto_pad": "SAME_LOWER"}
        yield {**base, "output_shape": list(geometry.output_shape)}
        yield {**base, "auto_pad": "SAME_UPPER", "output_shape": list(geometry.output_shape)}
        yield base


CONVENTION = Onnx()
