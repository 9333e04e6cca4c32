"""TensorFlow: ``tf.nn.conv{1,2,3}d_transpose`` and ``tf.nn.conv_transpose``.

The output shape ``O`` is explicit. TF computes the layer as the gradient of
the forward convolution of an ``O``-sized input, so ``O`` is legal only when
that forward convolution gives back ``i``:

* SAME: ``ceil(O/s) == i``, i.e. ``O`` in ``(i-1)*s+1 .. i*s``;
* VALID: ``ceil((O-K+1)/s) == i``, i.e. ``O`` in ``(i-1)*s+K .. (i-1)*s+K+s-1``;
* explicit ``[lo, hi]`` (2-D only: the 1-D and 3-D ops take strings):
  ``floor((O+lo+hi-K)/s) + 1 == i``.

The kept window starts at the forward convolution's ``pad_before``:
``max(full-O, 0)//2`` for SAME, 0 for VALID, ``lo`` for explicit padding.
"""
from __future__ import annotations

from typing import Iterable

from ..errors import ConfigError
from ..geometry import Geometry, dilated_kernel_size, full_size
from . import tf_cpu
from ._base import Convention, batch_and_channel_entries, choice, explicit_pair, integer, pairs, spatial_shape, tf_layout
from ._solve import Family, windows


def _tf_list(name: str, value, ndim: int, channels_first: bool, framework: str) -> tuple[int, ...]:
    """TF's strides/dilations: an int, or a list of 1, ndim or ndim+2 ints."""
    if hasattr(value, "tolist"):
        value = value.tolist()
    if not isinstance(value, (list, tuple)):
        value = [value]
    value = list(value)
    if len(value) == 1:
        value = value * ndim
    elif len(value) == ndim + 2:
        outer = (value[0], value[1]) if channels_first else (value[0], value[-1])
        if any(v != 1 for v in outer):
            raise ConfigError(
                f"{name}={value!r}: TensorFlow does not support {name} in the batch and depth "
                "dimensions; their entries must be 1"
            )
        value = value[2:] if channels_first else value[1:-1]
    elif len(value) != ndim:
        raise ConfigError(f"{name}={value!r} must have 1, {ndim} or {ndim + 2} entries in TensorFlow")
    return tuple(integer(f"{name}[{n}]", v, framework, minimum=1) for n, v in enumerate(value))


class TensorFlowFamily(Family):
    """solve's candidates: 'SAME', 'VALID', and in 2-D one explicit pair per window."""

    required = ("output_shape",)

    cli_upper_padding = True

    def options(self, i, k, s, d, o, ndim):
        yield ("SAME",), {}
        yield ("VALID",), {}
        if ndim != 2:
            return  # tf.nn.conv1d/3d_transpose reject explicit padding ("Expected string for argument 'padding'")
        for ax in windows(i, k, s, d, o):
            if ax.crop_begin >= 0:
                # One pair per window: the end padding only has to pass TF's check that the forward conv
                # of the output gives back the input; the window's own end is canonical.
                yield ("explicit",), {"pad": [ax.crop_begin, max(ax.crop_end, 0)]}

    def assemble(self, mode, values, strides, dilations, outputs):
        args = {"output_shape": tuple(outputs), "strides": tuple(strides)}
        args["padding"] = [v["pad"] for v in values] if mode == ("explicit",) else mode[0]
        if any(d != 1 for d in dilations):
            args["dilations"] = tuple(dilations)
        return args

    def rank(self, mode):
        return {"SAME": 0, "VALID": 1}.get(mode[0], 2)

    def check_ndim(self, mode):
        return 2 if mode == ("explicit",) else 1  # explicit pairs exist only for the 2-D op


class TensorFlow(Convention):
    name = "tensorflow"
    title = "TensorFlow"
    api = "tf.nn.conv_transpose"
    defaults = {
        "output_shape": None,
        "strides": 1,
        "padding": "SAME",
        "data_format": None,
        "dilations": None,
    }
    #: generic CLI option -> this framework's argument
    cli_names = {"stride": "strides", "padding": "padding", "dilation": "dilations", "output_size": "output_shape"}
    solve_family = TensorFlowFamily()
    #: tf_onednn: describe a machine with TensorFlow's oneDNN kernels on (True), off (False), or this one (None)
    options = {"tf_onednn": None}
    forward_api = "tf.nn.convolution / tf.nn.conv2d"
    forward_defaults = {"strides": 1, "padding": "VALID", "dilations": None, "data_format": None}
    forward_names = ("strides", "dilations", "padding")
    forward_padding_modes = ("SAME", "VALID")

    def output_size_entries(self, value, ndim, args):
        return batch_and_channel_entries(self, value, ndim, args)

    def array_layout(self, rank, args):
        return tf_layout(rank, args.get("data_format"), self.name)

    def forward_per_axis(self, name, value, ndim):
        if isinstance(value, (list, tuple)) and len(value) == ndim + 2:
            value = value[1:-1]  # NHWC-style lists carry the batch and channel entries
        return super().forward_per_axis(name, value, ndim)

    def forward_explicit(self, padding, n, ndim):
        if isinstance(padding, (list, tuple)) and len(padding) == ndim + 2:
            padding = padding[1:-1]
        return explicit_pair(self, padding, n, ndim)
    rule = (
        "TensorFlow takes the output shape O explicitly; O is legal only if the forward convolution of an "
        "O-sized input gives back the input, and the kept window starts at that convolution's pad_before"
    )

    def per_axis_names(self) -> tuple[str, ...]:
        return ()

    def _build(self, input_shape, kernel_size, args) -> Geometry:
        ndim = len(input_shape)
        data_format = args["data_format"]
        channels_first = isinstance(data_format, str) and data_format.upper().startswith("NC")
        if data_format is not None:
            choice("data_format", data_format, ("NWC", "NCW", "NHWC", "NCHW", "NDHWC", "NCDHW"), self.title)
        if args["output_shape"] is None:
            raise ConfigError(
                "output_shape is required by tf.nn.conv_transpose: TensorFlow does not infer the output size "
                f"(for this input, SAME accepts {', '.join(f'{(i - 1)}*s+1..{i}*s' for i in input_shape)})"
            )
        # 0 is a size TF can be asked for: explicit pairs check it by their rule, oneDNN returns it unchecked
        output = spatial_shape("output_shape", args["output_shape"], ndim, self.title, channels_first, minimum=0)
        strides = _tf_list("strides", args["strides"], ndim, channels_first, self.title)
        dilations = _tf_list("dilations", 1 if args["dilations"] is None else args["dilations"], ndim, channels_first, self.title)
        cpu = tf_cpu.resolve(args["tf_onednn"])
        padding = args["padding"]
        explicit = None
        if isinstance(padding, str):
            padding = choice("padding", padding, ("SAME", "VALID"), self.title)
        else:
            if ndim != 2:
                raise ConfigError(
                    f"padding={padding!r}: explicit padding pairs work only with 2 spatial axes in TensorFlow "
                    f"(tf.nn.conv2d_transpose); the {ndim}-D op takes 'SAME' or 'VALID' (TF: \"Expected string "
                    "for argument 'padding'\")"
                )
            if isinstance(padding, (list, tuple)) and len(padding) == ndim + 2:
                outer = (padding[0], padding[1]) if channels_first else (padding[0], padding[-1])
                if any(tuple(p) != (0, 0) for p in outer if isinstance(p, (list, tuple))):
                    raise ConfigError(f"padding={padding!r}: TensorFlow allows no padding in the batch and depth dimensions")
                padding = padding[2:] if channels_first else padding[1:-1]
            explicit = pairs("padding", padding, ndim, self.title, minimum=0)
        unchecked_empty = explicit is None and 0 in output
        axes = []
        for n, (i, k, s, d, O) in enumerate(zip(input_shape, kernel_size, strides, dilations, output)):
            K = dilated_kernel_size(k, d)
            full = full_size(i, k, s, d)
            if padding == "SAME":
                legal = ((i - 1) * s + 1, i * s)
                begin = max(full - O, 0) // 2
            elif padding == "VALID":
                legal = ((i - 1) * s + K, (i - 1) * s + K + s - 1)
                begin = 0
            else:
                assert explicit is not None  # not a padding string: pairs
                lo, hi = explicit[n]
                # floor((O + lo + hi - K)/s) + 1 == i  <=>  (i-1)*s <= O + lo + hi - K < i*s
                legal = (max((i - 1) * s + K - lo - hi, 0), i * s + K - lo - hi - 1)
                begin = lo
            if not (legal[0] <= O <= legal[1] or unchecked_empty):
                shown = padding if explicit is None else f"explicit padding {list(explicit[n])}"
                raise ConfigError(
                    f"output_shape={tuple(output)} is not legal for input {tuple(input_shape)} with {shown} "
                    f"on axis {n}: TensorFlow requires the forward convolution of the output to give back "
                    f"the input; legal sizes there are {legal[0]}..{legal[1]} (TF: \"Conv2DCustomBackpropInput: "
                    "Size of out_backprop doesn't match computed\")"
                )
            if O == 0:
                begin = 0  # an empty window: where it starts does not matter
            axes.append(self.axis(str(n), i, k, s, d, begin, full - O - begin, empty_ok=True))
        notes = []
        empty = self.empty_note(
            axes, "TensorFlow's oneDNN kernel returns that without checking output_shape" if unchecked_empty else ""
        )
        if empty:
            notes.append(empty)
        found = tf_cpu.refusals(cpu, ndim=ndim, dilations=dilations, channels_first=channels_first,
                                string_padding=explicit is None, empty_output=unchecked_empty)
        if found:
            notes.append(tf_cpu.refusal_note(self.title, cpu, found, explicit is None))
        normalized = {
            "output_shape": output,
            "strides": strides,
            "padding": padding if explicit is None else [list(p) for p in explicit],
            "dilations": dilations,
        }
        return self.geometry(axes, normalized, notes, runtime_errors=[message for message, _ in found])

    def formula(self, geometry: Geometry) -> list[str]:
        return [
            f"out = output_shape = {ax.output_size}; kept window starts at pad_before = {ax.crop_begin} "
            f"(full - out = {ax.full} - {ax.output_size} = {ax.full - ax.output_size})"
            for ax in geometry
        ]

    def _candidates(self, geometry: Geometry) -> Iterable[dict]:
        output = geometry.output_shape
        base = {"output_shape": output, "strides": geometry.stride}
        if any(d != 1 for d in geometry.dilation):
            base["dilations"] = geometry.dilation
        yield {**base, "padding": "SAME"}
        yield {**base, "padding": "VALID"}
        explicit = []
        for ax in geometry:
            lo = max(ax.crop_begin, 0)
            hi = max(ax.crop_end, 0)
            explicit.append([lo, hi])
        yield {**base, "padding": explicit}
        # Always legal: the whole uncropped output, leaving the window to an extra slice or pad.
        yield {**base, "output_shape": geometry.full_shape, "padding": "VALID"}


CONVENTION = TensorFlow()
