"""Keras 3: ``Conv{1,2,3}DTranspose`` and ``keras.ops.conv_transpose`` (tf.keras 2 alike).

With K = d*(k-1) + 1 the dilated kernel:

=========  ==============  =========================
padding    output_padding  output size
=========  ==============  =========================
valid      None            (i-1)*s + max(K, s)
valid      op              (i-1)*s + K + op
same       None            i*s
same       op              (i-1)*s + K % 2 + op
=========  ==============  =========================

'same' keeps the window that starts ``K-1-left`` into the uncropped output,
where ``left = min(ceil(pad_len/2), K-1)`` and ``pad_len = s+K-2`` (op None) or
``K + K%2 - 2 + op``: an odd surplus is cropped at the END (TensorFlow's
alignment). The TensorFlow backend gets there through ``tf.nn.conv_transpose``
with an explicit output shape, and TF's own crop rule gives the same window.
tf.keras 2 computes the same sizes (``conv_utils.deconv_output_length``) and
goes through the same TF op; where it differs (dilation), use the ``tf_keras``
convention (:mod:`tconv.conventions.tf_keras`).

The layers (not ``keras.ops.conv_transpose``) check ``output_padding < strides``
and refuse ``strides > 1`` with ``dilation_rate > 1`` in ``__init__`` (checked
against Keras 3.15.1); tconv follows the layers.
"""
from __future__ import annotations

from itertools import product
from typing import Iterable

from ..errors import ConfigError
from ..geometry import Geometry, dilated_kernel_size, full_size
from . import tf_cpu
from ._base import Convention, choice, per_axis, tf_layout
from ._solve import Family, collapse


def same_crop_begin(dilated_kernel: int, stride: int, output_padding: int | None) -> int:
    """Where Keras 'same' starts its kept window in the uncropped output.

    >>> same_crop_begin(3, 2, None), same_crop_begin(4, 2, None), same_crop_begin(5, 1, None)
    (0, 1, 2)
    """
    K = dilated_kernel
    pad_len = stride + K - 2 if output_padding is None else K + K % 2 - 2 + output_padding
    left = min(-(-pad_len // 2), K - 1)
    return K - 1 - left


class KerasFamily(Family):
    """solve's candidates: 'same' and 'valid', each without and with ``output_padding`` (< strides)."""

    _RANK = {("same", False): 0, ("valid", False): 1, ("same", True): 2, ("valid", True): 3}

    def options(self, i, k, s, d, o, ndim):
        for padding in ("same", "valid"):
            yield (padding, False), {}
        for padding in ("same", "valid"):
            for op in range(s):
                yield (padding, True), {"output_padding": op}

    def assemble(self, mode, values, strides, dilations, outputs):
        padding, with_op = mode
        return _layer_args(strides, padding, [v["output_padding"] for v in values] if with_op else None, dilations)

    def rank(self, mode):
        return self._RANK[mode]


class Keras(Convention):
    name = "keras"
    title = "Keras"
    api = "Conv*DTranspose / keras.ops.conv_transpose"
    defaults = {
        "strides": 1,
        "padding": "valid",
        "output_padding": None,
        "dilation_rate": 1,
        "data_format": None,
    }
    #: generic CLI option -> this framework's argument
    cli_names = {"stride": "strides", "padding": "padding", "dilation": "dilation_rate", "output_padding": "output_padding"}
    solve_family = KerasFamily()  # tf_keras inherits it: the same arguments, checked by its own convention
    #: tf_onednn: describe the TensorFlow backend on a machine with oneDNN on (True), off (False), or this one (None)
    options = {"tf_onednn": None}
    rule = (
        "Keras 'same' gives i*s (or (i-1)*s + K%2 + output_padding) and crops an odd surplus at the END; "
        "'valid' gives (i-1)*s + max(K, s) (or + K + output_padding), padding with zeros at the end when s > K"
    )

    forward_api = "keras.layers.Conv*D"
    forward_defaults = {"strides": 1, "padding": "valid", "dilation_rate": 1, "groups": 1, "data_format": None}
    forward_names = ("strides", "dilation_rate", "padding")
    forward_padding_modes = ("same", "valid")
    #: what runs the layer on TensorFlow, for warnings
    tf_backend = "Keras' TensorFlow backend"
    other_backends = "; the JAX and PyTorch backends run it"

    def array_layout(self, rank, args):
        return tf_layout(rank, args.get("data_format"), self.name)

    def per_axis_names(self) -> tuple[str, ...]:
        return ("strides", "dilation_rate", "output_padding")

    def cpu_refusals(self, cpu: tf_cpu.TfCpu, dilation: tuple[int, ...], channels_first: bool) -> list[tuple[str, str]]:
        """What TensorFlow's CPU kernel refuses of this layer: Keras 3 hands both dilation and layout to it."""
        return tf_cpu.refusals(cpu, ndim=len(dilation), dilations=dilation, channels_first=channels_first,
                               string_padding=True)

    def check_strides_and_dilation(self, strides: tuple[int, ...], dilation: tuple[int, ...]) -> None:
        """The layers' constructor check: no stride above 1 together with a dilation above 1."""
        if any(s > 1 for s in strides) and any(d > 1 for d in dilation):
            raise ConfigError(
                f"strides={strides} together with dilation_rate={dilation}: the {self.title} Conv*DTranspose layers "
                "refuse strides > 1 in conjunction with dilation_rate > 1 in their constructor; use one or the "
                "other (keras.ops.conv_transpose itself accepts the mix, tconv follows the layers)"
            )

    def _build(self, input_shape, kernel_size, args) -> Geometry:
        ndim = len(input_shape)
        padding = choice("padding", args["padding"], ("valid", "same"), self.title, case_sensitive=False)
        strides = per_axis("strides", args["strides"], ndim, self.title, minimum=1)
        dilation = per_axis("dilation_rate", args["dilation_rate"], ndim, self.title, minimum=1)
        if args["data_format"] is not None:
            choice("data_format", args["data_format"], ("channels_last", "channels_first"), self.title, case_sensitive=False)
        output_padding: tuple[int, ...] | None = args["output_padding"]
        if output_padding is not None:
            output_padding = per_axis("output_padding", output_padding, ndim, self.title, minimum=0)
            for s, extra in zip(strides, output_padding):
                if extra >= s:
                    raise ConfigError(
                        f"output_padding={extra} must be smaller than strides ({s}) in Keras "
                        f"(\"Strides must be greater than output padding\"); legal: 0..{s - 1} or None"
                    )
        self.check_strides_and_dilation(strides, dilation)
        cpu = tf_cpu.resolve(args["tf_onednn"])
        channels_first = str(args["data_format"]).lower() == "channels_first"
        notes = []
        axes = []
        even_same = []  # axes where the TF backend asks tf.nn.conv_transpose for a size its SAME rule refuses
        for n, (i, k, s, d) in enumerate(zip(input_shape, kernel_size, strides, dilation)):
            op = None if output_padding is None else output_padding[n]
            K = dilated_kernel_size(k, d)
            full = full_size(i, k, s, d)
            if padding == "valid":
                out = (i - 1) * s + (max(K, s) if op is None else K + op)
                begin = 0
            else:
                out = i * s if op is None else (i - 1) * s + K % 2 + op
                begin = same_crop_begin(K, s, op)
                if op is not None and K % 2 + op == 0:
                    even_same.append((n, K, i, s, out))
            # an even kernel with 'same' and output_padding 0 on a 1-element axis asks for 0 elements
            axes.append(self.axis(str(n), i, k, s, d, begin, full - out - begin, empty_ok=out == 0))
        empty = any(ax.output_size == 0 for ax in axes)
        runtime_errors = []
        if even_same and not (cpu.onednn and empty):
            n, K, i, s, out = even_same[0]
            runtime_errors.append(
                "could not create a primitive descriptor" if cpu.onednn else "Size of out_backprop doesn't match computed"
            )
            notes.append(
                f"Keras' TensorFlow backend fails on this layer (axis {n}: even kernel extent {K}, "
                "padding='same', output_padding=0): it asks tf.nn.conv_transpose for an output of "
                f"{out}, which TF's SAME rule rejects ({(i - 1) * s + 1}..{i * s} are legal). "
                "The JAX and PyTorch backends return the size shown"
            )
        empty_note = self.empty_note(
            axes, "so do the JAX backend and the TensorFlow backend where oneDNN runs it (oneDNN skips "
            "TensorFlow's size check; the plain kernel refuses it)"
        )
        if empty_note:
            notes.append(empty_note)
        found = self.cpu_refusals(cpu, dilation, channels_first)
        if found:
            runtime_errors.extend(message for message, _ in found)
            notes.append(tf_cpu.refusal_note(self.tf_backend, cpu, found, True) + self.other_backends)
        normalized = {
            "strides": strides,
            "padding": padding,
            "output_padding": output_padding,
            "dilation_rate": dilation,
        }
        return self.geometry(axes, normalized, notes, runtime_errors=runtime_errors)

    def formula(self, geometry: Geometry) -> list[str]:
        lines = []
        ops = geometry.args.get("output_padding")
        for n, ax in enumerate(geometry):
            i, s, K = ax.input_size, ax.stride, ax.dilated_kernel
            op = None if ops is None else ops[n]
            if geometry.args.get("padding") == "same":
                text = (f"padding='same', output_padding=None: out = i*s = {i}*{s} = {ax.output_size}"
                        + (f" ('same' names the forward convolution this layer undoes: a stride-{s} 'same' Conv "
                           f"takes {ax.output_size} to {i}; the size stays the same only when stride is 1)" if s > 1 else "")
                        if op is None else
                        f"padding='same': out = (i-1)*s + K%2 + output_padding = ({i}-1)*{s} + {K % 2} + {op} = {ax.output_size}")
            else:
                text = (f"padding='valid', output_padding=None: out = (i-1)*s + max(K, s) = ({i}-1)*{s} + max({K}, {s}) = {ax.output_size}"
                        if op is None else
                        f"padding='valid': out = (i-1)*s + K + output_padding = ({i}-1)*{s} + {K} + {op} = {ax.output_size}")
            lines.append(text)
        return lines

    def _candidates(self, geometry: Geometry) -> Iterable[dict]:
        for padding in ("same", "valid"):
            yield _layer_args(geometry.stride, padding, None, geometry.dilation)
        options = [range(s) for s in geometry.stride]
        if _count(options) <= 4096:
            for padding in ("same", "valid"):
                for op in product(*options):
                    yield _layer_args(geometry.stride, padding, op, geometry.dilation)


def _layer_args(strides, padding: str, output_padding, dilation) -> dict:
    """The layer's arguments as a practitioner writes them: one value where the axes agree, defaults left out.

    Both from_geometry's candidates and solve's (:class:`KerasFamily`) are written this way.
    """
    args = {"strides": collapse(strides), "padding": padding}
    if output_padding is not None:
        args["output_padding"] = collapse(output_padding)
    if any(d != 1 for d in dilation):
        args["dilation_rate"] = collapse(dilation)
    return args


def _count(options) -> int:
    total = 1
    for o in options:
        total *= len(o)
    return total


CONVENTION = Keras()
