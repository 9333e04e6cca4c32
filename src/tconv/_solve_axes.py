"""One axis of :func:`tconv.solve`: each framework's candidate arguments, checked by its convention.

For one spatial axis (input ``i``, output ``o``) and each (kernel, stride,
dilation) tried, a framework's generator below only *proposes* arguments, using
the uncropped size as a hint; :func:`axis_answers` keeps a candidate only if
the convention (:func:`tconv.geometry`, the one source of truth for sizes)
accepts it and yields ``o``. Candidates that keep the same window are one
answer with several spellings (modes). :func:`axis_odd` says why a window is
one no practitioner writes on purpose.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator, Sequence

from .api import geometry as _geometry
from .errors import ConfigError
from .geometry import AxisGeometry, Geometry, full_size

__all__ = ["MAX_SEARCH", "ODD_REASONS", "FAMILIES", "Family", "AxisAnswer", "axis_answers", "axis_odd", "check", "collapse"]

#: solve's one search bound: the most (kernel, stride, dilation) triples and candidate
#: argument sets it checks per axis, and the most combinations of the axes' answers
MAX_SEARCH = 4096


# ---------------------------------------------------------------------------
# Per-framework candidate generators. Each yields, for ONE axis, (mode, values):
# ``mode`` is what must agree across axes (a padding string, whether
# output_padding is given), ``values`` the per-axis numbers. ``assemble``
# turns one mode and the per-axis values into the framework's arguments;
# ``rank`` orders a framework's spellings, its idiomatic one first.
# ---------------------------------------------------------------------------
Axis = tuple[int, int, int, int, int]  # (i, k, s, d, o)


def collapse(values: Sequence[Any]) -> Any:
    values = tuple(values)
    return values[0] if len(set(values)) == 1 else values


def _windows(i: int, k: int, s: int, d: int, out: int) -> Iterator[AxisGeometry]:
    """The sensible windows of an explicit-padding framework, one per kept window.

    Each end may crop at most ``K-1`` (more would drop whole kernel footprints, as no
    'same'/'valid' mode does) and add at most ``stride-1`` zeros (as output_padding
    can): ``-(s-1) <= crop <= K-1`` on both sides. This also bounds the search.
    """
    full = full_size(i, k, s, d)
    K = d * (k - 1) + 1
    low, high = -(s - 1), K - 1
    surplus = full - out
    for begin in range(max(low, surplus - high), min(high, surplus - low) + 1):
        yield AxisGeometry(i, k, s, d, begin, surplus - begin)


class Family:
    """Candidate generator for one framework."""

    def options(self, i: int, k: int, s: int, d: int, o: int, ndim: int) -> Iterable[tuple[tuple, dict]]:
        raise NotImplementedError

    def assemble(self, mode: tuple, values: list[dict], strides: tuple, dilations: tuple, outputs: tuple) -> dict:
        raise NotImplementedError

    def rank(self, mode: tuple) -> int:
        """0 for the framework's idiomatic spelling, higher for the others."""
        return 0

    def check_ndim(self, mode: tuple) -> int:
        """How many axes the convention needs to check one axis of this mode (repeated)."""
        return 1


class _PyTorch(Family):
    def options(self, i, k, s, d, o, ndim):
        full = full_size(i, k, s, d)
        for op in range(max(s, d)):
            removed = full + op - o  # both ends lose `padding`
            if removed >= 0 and removed % 2 == 0:
                yield (), {"padding": removed // 2, "output_padding": op}

    def assemble(self, mode, values, strides, dilations, outputs):
        args = {"stride": collapse(strides), "padding": collapse(v["padding"] for v in values)}
        if any(v["output_padding"] for v in values):
            args["output_padding"] = collapse(v["output_padding"] for v in values)
        if any(d != 1 for d in dilations):
            args["dilation"] = collapse(dilations)
        return args


class _MXNet(_PyTorch):
    def options(self, i, k, s, d, o, ndim):
        for mode, values in super().options(i, k, s, d, o, ndim):
            yield ("pad",), values
        yield ("target_shape",), {}

    def assemble(self, mode, values, strides, dilations, outputs):
        args = {"stride": collapse(strides)}
        if mode == ("target_shape",):
            args["target_shape"] = tuple(outputs)
        else:
            args["pad"] = collapse(v["padding"] for v in values)
            if any(v["output_padding"] for v in values):
                args["adj"] = collapse(v["output_padding"] for v in values)
        if any(d != 1 for d in dilations):
            args["dilate"] = collapse(dilations)
        return args

    def rank(self, mode):
        return 0 if mode == ("pad",) else 1


class _Caffe(Family):
    def options(self, i, k, s, d, o, ndim):
        removed = full_size(i, k, s, d) - o
        if removed >= 0 and removed % 2 == 0:
            yield (), {"pad": removed // 2}

    def assemble(self, mode, values, strides, dilations, outputs):
        args = {"stride": collapse(strides), "pad": collapse(v["pad"] for v in values)}
        if any(d != 1 for d in dilations):
            args["dilation"] = collapse(dilations)
        return args


class _Keras(Family):
    _RANK = {("same", False): 0, ("valid", False): 1, ("same", True): 2, ("valid", True): 3}

    def options(self, i, k, s, d, o, ndim):
        for padding in ("same", "valid"):
            yield (padding, False), {}
        for padding in ("same", "valid"):
            for op in range(s):
                yield (padding, True), {"output_padding": op}

    def assemble(self, mode, values, strides, dilations, outputs):
        padding, with_op = mode
        args = {"strides": collapse(strides), "padding": padding}
        if with_op:
            args["output_padding"] = collapse(v["output_padding"] for v in values)
        if any(d != 1 for d in dilations):
            args["dilation_rate"] = collapse(dilations)
        return args

    def rank(self, mode):
        return self._RANK[mode]


class _TensorFlow(Family):
    def options(self, i, k, s, d, o, ndim):
        yield ("SAME",), {}
        yield ("VALID",), {}
        if ndim != 2:
            return  # tf.nn.conv1d/3d_transpose reject explicit padding ("Expected string for argument 'padding'")
        for ax in _windows(i, k, s, d, o):
            if ax.crop_begin >= 0:
                # One pair per window: the end padding only has to pass TF's check that the
                # forward conv of the output gives back the input; the window's own end is canonical.
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


class _Jax(Family):
    dilation_name = "rhs_dilation"
    strings: tuple[str, ...] = ("SAME", "VALID")

    def options(self, i, k, s, d, o, ndim):
        for padding in self.strings:
            yield (padding,), {}
        for ax in _windows(i, k, s, d, o):
            yield ("explicit",), {"pad": ax.conv_padding}

    def assemble(self, mode, values, strides, dilations, outputs):
        args = {"strides": tuple(strides)}
        args["padding"] = [tuple(v["pad"]) for v in values] if mode == ("explicit",) else mode[0]
        if any(d != 1 for d in dilations):
            args[self.dilation_name] = tuple(dilations)
        return args

    def rank(self, mode):
        return {"SAME": 0, "VALID": 1, "explicit": 2}.get(mode[0], 3)


class _Flax(_Jax):
    dilation_name = "kernel_dilation"
    strings = ("SAME", "VALID", "CIRCULAR")


class _Onnx(Family):
    _RANK = {"pads": 0, "SAME_UPPER": 1, "VALID": 1, "SAME_LOWER": 2, "output_shape": 3}

    def options(self, i, k, s, d, o, ndim):
        for auto_pad in ("SAME_UPPER", "SAME_LOWER", "VALID"):
            yield (auto_pad,), {}
        yield ("output_shape",), {}
        for ax in _windows(i, k, s, d, o):
            # a window past the end needs output_padding; the rest is pads
            op = max(-ax.crop_end, 0)
            yield ("pads",), {"pads": (ax.crop_begin, ax.crop_end + op), "output_padding": op}

    def assemble(self, mode, values, strides, dilations, outputs):
        args: dict[str, Any] = {"strides": list(strides)}
        if any(d != 1 for d in dilations):
            args["dilations"] = list(dilations)
        if mode == ("pads",):
            args["pads"] = [v["pads"][0] for v in values] + [v["pads"][1] for v in values]
            if any(v["output_padding"] for v in values):
                args["output_padding"] = [v["output_padding"] for v in values]
        elif mode == ("output_shape",):
            args["output_shape"] = list(outputs)
        else:
            args["auto_pad"] = mode[0]
        return args

    def rank(self, mode):
        return self._RANK[mode[0]]


class _TFLite(Family):
    def options(self, i, k, s, d, o, ndim):
        yield ("SAME",), {}
        yield ("VALID",), {}

    def assemble(self, mode, values, strides, dilations, outputs):
        return {"output_shape": tuple(outputs), "padding": mode[0], "strides": tuple(strides)}

    def rank(self, mode):
        return 0 if mode == ("SAME",) else 1

    def check_ndim(self, mode):
        return 2  # the op is 2-D only: one axis is checked as two equal ones


FAMILIES: dict[str, Family] = {
    "pytorch": _PyTorch(), "keras": _Keras(), "tensorflow": _TensorFlow(), "jax": _Jax(), "flax": _Flax(),
    "onnx": _Onnx(), "tflite": _TFLite(), "mxnet": _MXNet(), "caffe": _Caffe(),
}
FAMILIES["tf_keras"] = FAMILIES["keras"]  # same arguments; its convention adds tf.keras 2's checks


def check(framework: str, family: Family, axes: Sequence[Axis], mode: tuple, values: list[dict], ndim: int) -> Geometry | None:
    """Validate an argument set through tconv.geometry; None when illegal or off target."""
    inputs = tuple(a[0] for a in axes)
    kernel = tuple(a[1] for a in axes)
    strides = tuple(a[2] for a in axes)
    dilations = tuple(a[3] for a in axes)
    outputs = tuple(a[4] for a in axes)
    if len(axes) < ndim:  # a 2-D-only op (or mode) checks one axis as two equal ones
        repeat = ndim // len(axes)
        inputs, kernel, outputs = inputs * repeat, kernel * repeat, outputs * repeat
        strides, dilations, values = strides * repeat, dilations * repeat, values * repeat
    args = family.assemble(mode, values, strides, dilations, outputs)
    try:
        got = _geometry(inputs, kernel, framework, **args)
    except ConfigError:
        return None
    if got.output_shape != outputs:
        return None
    return got


# ---------------------------------------------------------------------------
# One axis: every (kernel, stride, dilation) and mode the convention accepts
# ---------------------------------------------------------------------------
@dataclass
class AxisAnswer:
    """One kept window of one axis, and every mode that gives it: mode -> (values, has notes)."""

    kernel: int
    stride: int
    dilation: int
    axis: AxisGeometry
    spellings: dict = field(default_factory=dict)
    odd: tuple[str, ...] = ()

    @property
    def triple(self) -> tuple[int, int, int]:
        return self.kernel, self.stride, self.dilation


#: the reasons :func:`axis_odd` gives, in the order it gives them
ODD_REASONS = (
    "kernel smaller than the stride",
    "padding larger than the kernel",
    "zeros added past the uncropped output",
    "window off-centre",
)


def axis_odd(ax: AxisGeometry) -> tuple[str, ...]:
    """Why one axis of a layer is odd: what no practitioner writes on purpose.

    * the kernel spans less than the stride: output positions no input reaches;
    * an end is cropped by the kernel's whole extent or more (padding larger than the
      kernel: the forward convolution it undoes would have windows all in padding);
    * zeros are added past the uncropped output;
    * the window is off-centre by more than an output padding or an odd surplus explains.

    >>> from tconv.geometry import AxisGeometry
    >>> axis_odd(AxisGeometry(28, 1, 1, 1, 8, 8))
    ('padding larger than the kernel',)
    >>> axis_odd(AxisGeometry(28, 4, 2, 1, 1, 1))
    ()
    """
    K, s = ax.dilated_kernel, ax.stride
    found = [K < s]
    if ax.wrap:
        found += [False, False, False]
    else:
        found.append(max(ax.crop_begin, ax.crop_end) >= K)
        found.append(min(ax.crop_begin, ax.crop_end) < 0)
        found.append(abs(ax.crop_begin - ax.crop_end) >= max(s, ax.dilation, 2))
    return tuple(reason for reason, hit in zip(ODD_REASONS, found) if hit)


def axis_answers(framework: str, family: Family, i: int, o: int, kernels: Sequence[int],
                 strides: Sequence[int], dilations: Sequence[int], ndim: int, where: str) -> list[AxisAnswer]:
    """Every window of one axis (input ``i``, output ``o``) that the convention accepts, with its spellings.

    ``ndim`` is the layer's number of axes (TensorFlow's explicit pairs exist only in 2-D);
    ``where`` names the axis in the error raised above :data:`MAX_SEARCH` checks.
    """
    found: dict[tuple, AxisAnswer] = {}
    checked = 0
    for k, s, d in itertools.product(kernels, strides, dilations):
        checked += 1  # a triple costs at least one check, even when it proposes nothing
        for n, (mode, values) in enumerate(family.options(i, k, s, d, o, ndim)):
            checked += n > 0
            if checked > MAX_SEARCH:
                raise ConfigError(
                    f"the search is too large: more than solve's bound of {MAX_SEARCH} candidate argument sets "
                    f"{where}; fix kernel_size or stride, or give smaller max_kernel/max_stride"
                )
            got = check(framework, family, [(i, k, s, d, o)], mode, [values], family.check_ndim(mode))
            if got is None:
                continue
            ax = got.axes[0]
            answer = found.setdefault((k, s, d, ax), AxisAnswer(k, s, d, ax, odd=axis_odd(ax)))
            answer.spellings.setdefault(mode, (values, bool(got.notes)))
    return list(found.values())
