"""Step-by-step derivations of a transposed convolution's output size, as data and as text.

An :class:`Explanation` holds :class:`Step` records, each with the same facts
per axis as a dict; ``str()`` renders them for a terminal, and pictures and
pages read the data.
"""
from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Any

from . import conventions
from .geometry import AxisGeometry, Geometry


@dataclass(frozen=True)
class Step:
    """One step of the derivation.

    Attributes
    ----------
    key : str
        Stable identifier: ``dilated_kernel``, ``zero_insertion``, ``full``,
        ``crop``, ``formula``, ``rule`` or ``warning``.
    title : str
        A heading for people.
    lines : tuple of str
        The human text, one line per axis where it varies by axis.
    data : tuple of dict
        The same facts per axis, for pictures and pages.
    """

    key: str
    title: str
    lines: tuple[str, ...]
    data: tuple[dict, ...] = ()


@dataclass(frozen=True)
class Explanation:
    """How a framework arrives at its output size. ``str()`` gives the derivation.

    Examples
    --------
    >>> import tconv
    >>> e = tconv.explain((8, 8), 3, framework="keras", strides=2, padding="same")
    >>> [s.key for s in e.steps]
    ['dilated_kernel', 'zero_insertion', 'full', 'crop', 'formula', 'rule', 'phases', 'forward', 'upsampling']
    >>> e.output_shape
    (16, 16)
    """

    geometry: Geometry
    steps: tuple[Step, ...]
    header: str
    call: str = ""
    extras: dict = field(default_factory=dict, compare=False)

    @property
    def output_shape(self) -> tuple[int, ...]:
        return self.geometry.output_shape

    def step(self, key: str) -> Step:
        """The step with this key."""
        for s in self.steps:
            if s.key == key:
                return s
        raise KeyError(key)

    def to_dict(self) -> dict[str, Any]:
        """Plain data: the geometry per axis and every step."""
        return {
            "framework": self.geometry.framework,
            "header": self.header,
            "axes": [
                {
                    "input": ax.input_size, "kernel": ax.kernel_size, "stride": ax.stride, "dilation": ax.dilation,
                    "dilated_kernel": ax.dilated_kernel, "full": ax.full, "crop_begin": ax.crop_begin,
                    "crop_end": ax.crop_end, "output": ax.output_size, "wrap": ax.wrap,
                }
                for ax in self.geometry
            ],
            "steps": [{"key": s.key, "title": s.title, "lines": list(s.lines), "data": [dict(d) for d in s.data]} for s in self.steps],
        }

    def __str__(self) -> str:
        out = [self.header]
        for n, step in enumerate(self.steps, 1):
            out.append(f"{n}. {step.title}")
            out.extend(f"   {line}" for line in step.lines)
        return "\n".join(out)

    def _repr_html_(self) -> str:
        try:  # the diagram, when the drawing extra is installed
            from .drawing import explanation_html

            return explanation_html(self)
        except Exception:  # noqa: BLE001 - fall back to the text derivation
            return f"<pre>{html.escape(str(self))}</pre>"


def _axis_name(n: int, ndim: int) -> str:
    if ndim == 1:
        return "length"
    names = {2: ("rows", "cols"), 3: ("depth", "rows", "cols")}.get(ndim)
    return names[n] if names else f"axis {n}"


def _crop_text(ax: AxisGeometry) -> str:
    parts = []
    begin, end = ax.crop_begin, ax.crop_end
    if ax.wrap:
        return (
            f"no crop: the full output of {ax.full} is folded onto {ax.output_size} elements "
            f"(period {ax.output_size}), starting {-begin} before the first element"
        )
    if begin > 0:
        parts.append(f"crop {begin} at the start (index{'es' if begin > 1 else ''} 0..{begin - 1})")
    elif begin < 0:
        parts.append(f"add {-begin} zero{'s' if begin < -1 else ''} at the start")
    if end > 0:
        parts.append(f"crop {end} at the end (index{'es' if end > 1 else ''} {ax.full - end}..{ax.full - 1})")
    elif end < 0:
        parts.append(f"add {-end} zero{'s' if end < -1 else ''} at the end (index{'es' if end < -1 else ''} {ax.full}..{ax.full - end - 1})")
    kept = f"keep full[{begin}:{ax.full - end}]"
    return (", ".join(parts) + f": {kept}") if parts else f"nothing cropped: {kept}"


def build(geom: Geometry) -> Explanation:
    """The explanation of an already-computed geometry."""
    convention = conventions.get(geom.framework) if geom.framework != "geometry" else None
    ndim = geom.ndim
    axes = list(geom)
    label = [_axis_name(n, ndim) for n in range(ndim)]

    steps = [
        Step(
            "dilated_kernel", "The dilated kernel: K = d*(k-1) + 1",
            tuple(f"{label[n]}: K = {ax.dilation}*({ax.kernel_size}-1) + 1 = {ax.dilated_kernel}" for n, ax in enumerate(axes)),
            tuple({"k": ax.kernel_size, "d": ax.dilation, "K": ax.dilated_kernel} for ax in axes),
        ),
        Step(
            "zero_insertion", "Zero insertion: put s-1 zeros between input elements",
            tuple(
                f"{label[n]}: {ax.input_size} elements, {ax.stride - 1} zero{'s' if ax.stride != 2 else ''} between each "
                f"-> (i-1)*s + 1 = ({ax.input_size}-1)*{ax.stride} + 1 = {ax.zero_inserted_size}"
                for n, ax in enumerate(axes)
            ),
            tuple({"i": ax.input_size, "s": ax.stride, "inserted": ax.zero_inserted_size} for ax in axes),
        ),
        Step(
            "full", "The full (uncropped) output: every input element stamps the kernel; full = (i-1)*s + K",
            tuple(f"{label[n]}: ({ax.input_size}-1)*{ax.stride} + {ax.dilated_kernel} = {ax.full}" for n, ax in enumerate(axes)),
            tuple({"full": ax.full} for ax in axes),
        ),
        Step(
            "crop", "The kept window: what the padding rules crop or add",
            tuple(f"{label[n]}: {_crop_text(ax)}" for n, ax in enumerate(axes)),
            tuple({"crop_begin": ax.crop_begin, "crop_end": ax.crop_end, "kept": ax.kept, "wrap": ax.wrap} for ax in axes),
        ),
    ]
    formulas = convention.formula(geom) if convention is not None and hasattr(convention, "formula") else None
    if not formulas:
        formulas = [
            f"out = full - crop_begin - crop_end = {ax.full} - {ax.crop_begin} - {ax.crop_end} = {ax.output_size}"
            if ax.crop_begin >= 0 else
            f"out = full - crop_begin - crop_end = {ax.full} + {-ax.crop_begin} - {ax.crop_end} = {ax.output_size}"
            for ax in axes
        ]
    steps.append(Step(
        "formula", "The formula with the numbers",
        tuple(f"{label[n]}: {text}" for n, text in enumerate(formulas)),
        tuple({"out": ax.output_size} for ax in axes),
    ))
    if convention is not None:
        steps.append(Step("rule", f"The {convention.title} rule", (convention.rule + ".",)))
    steps.extend(_equivalence_steps(geom, label))
    if geom.notes:
        steps.append(Step("warning", "Beware", tuple(geom.notes)))

    shape_in = "x".join(map(str, geom.input_shape))
    shape_out = "x".join(map(str, geom.output_shape))
    who = convention.title if convention is not None else "geometry"
    args = ", ".join(f"{k}={_short(v)}" for k, v in geom.args.items() if v is not None)
    header = f"{who} transposed convolution, kernel {'x'.join(map(str, geom.kernel_size))}" + (f" ({args})" if args else "")
    header += f": {shape_in} -> {shape_out}"
    return Explanation(geom, tuple(steps), header)


def _phase_text(ax: AxisGeometry) -> str:
    if ax.wrap:
        return "folded circularly: the phases wrap, see the scatter view"
    parts = []
    for r, _count, taps in ax.output_phases():
        terms = " + ".join(f"w[{t}]*x[q{off:+d}]" for t, off in taps) or "0 (no tap reaches it)"
        parts.append(f"out[{ax.stride}q+{r}] = {terms}" if ax.stride > 1 else f"out[q] = {terms}")
    return "; ".join(parts)


def _equivalence_steps(geom: Geometry, label: list[str]) -> list[Step]:
    """The phase decomposition, the forward convolution it is the gradient of, and the upsampling answer."""
    from .equivalence import forward_equivalent, resize_conv_window

    axes = list(geom)
    steps = [Step(
        "phases", "Without zeros: each output phase o = s*q + r is a stride-1 convolution of the input with the taps that reach it",
        tuple(f"{label[n]}: {_phase_text(ax)}" for n, ax in enumerate(axes)),
        tuple({"phases": [{"r": r, "count": c, "taps": [list(t) for t in taps]} for r, c, taps in ax.output_phases()]}
              for ax in axes),
    )]
    if geom.framework != "geometry":
        fwd = forward_equivalent(geom)
        steps.append(Step("forward", "The forward convolution whose input gradient this layer is", (str(fwd),),
                          ({"api": fwd.api, "args": fwd.args, "input": list(fwd.input_shape),
                            "output": list(fwd.output_shape), "reason": fwd.reason,
                            "pads": [list(pair) for pair in fwd.pads]},)))
    lines = ["zero-insertion upsampling (s-1 zeros) + a stride-1 convolution with the flipped kernel, "
             "bordered K-1-crop (steps 2 and 4), IS this layer, value for value"]
    data = []
    for n, ax in enumerate(axes):
        match = resize_conv_window(ax)
        data.append(dict(match or {}))
        if match is None:
            why = "dilated kernel" if ax.dilation != 1 else f"kernel {ax.kernel_size} < stride {ax.stride}"
            lines.append(f"{label[n]}: no resize-convolution has this shape ({why})")
            continue
        k1, p = match["k"], match["p"]
        text = (f"{label[n]}: nearest-neighbour upsampling x{ax.stride} + a stride-1 conv of {k1} tap{'s' if k1 != 1 else ''} w' (padding {p}) "
                f"= a transposed conv of stride {ax.stride} with the box-filtered kernel flip(w')*ones({ax.stride}) "
                f"({k1}+{ax.stride}-1 = {ax.kernel_size} taps), keeping full[{k1 - 1 - p}:{ax.full - (k1 - 1 - p)}]")
        text += (" - this window" if match["same_window"] else
                 f"; this layer keeps full[{ax.kept[0]}:{ax.kept[1]}], so the two agree up to the window")
        lines.append(text + "; only box-filtered kernels are reachable that way")
    steps.append(Step("upsampling", "Is it upsampling plus a convolution?", tuple(lines), tuple(data)))
    return steps


def _short(value: Any) -> str:
    if isinstance(value, tuple) and value and len(set(map(repr, value))) == 1 and not isinstance(value[0], (tuple, list)):
        return repr(value[0])
    return repr(value)


def explain(input_shape: Any, kernel_size: Any, framework: str = "pytorch", **args: Any) -> Explanation:
    """The step-by-step derivation of the output size; ``str()`` it to read.

    Takes the same arguments as :func:`tconv.geometry`.

    Examples
    --------
    >>> import tconv
    >>> print(tconv.explain(2, 2, framework="pytorch", stride=2, padding=1))  # doctest: +NORMALIZE_WHITESPACE
    PyTorch transposed convolution, kernel 2 (stride=2, padding=1, output_padding=0, dilation=1, groups=1): 2 -> 2
    1. The dilated kernel: K = d*(k-1) + 1
       length: K = 1*(2-1) + 1 = 2
    2. Zero insertion: put s-1 zeros between input elements
       length: 2 elements, 1 zero between each -> (i-1)*s + 1 = (2-1)*2 + 1 = 3
    3. The full (uncropped) output: every input element stamps the kernel; full = (i-1)*s + K
       length: (2-1)*2 + 2 = 4
    4. The kept window: what the padding rules crop or add
       length: crop 1 at the start (index 0..0), crop 1 at the end (index 3..3): keep full[1:3]
    5. The formula with the numbers
       length: out = (i-1)*s - 2*padding + d*(k-1) + 1 + output_padding = (2-1)*2 - 2*1 + 1*(2-1) + 1 + 0 = 2
    6. The PyTorch rule
       PyTorch keeps full[p : full - p + op]: padding p removes p elements from both ends of the uncropped output, and output_padding op (< stride or < dilation) gives back op at the end.
    7. Without zeros: each output phase o = s*q + r is a stride-1 convolution of the input with the taps that reach it
       length: out[2q+0] = w[1]*x[q+0]; out[2q+1] = w[0]*x[q+1]
    8. The forward convolution whose input gradient this layer is
       nn.Conv*d / F.conv*d(stride=2, padding=1) maps 2 -> 2; this layer is its input gradient (the transpose)
    9. Is it upsampling plus a convolution?
       zero-insertion upsampling (s-1 zeros) + a stride-1 convolution with the flipped kernel, bordered K-1-crop (steps 2 and 4), IS this layer, value for value
       length: nearest-neighbour upsampling x2 + a stride-1 conv of 1 tap w' (padding 0) = a transposed conv of stride 2 with the box-filtered kernel flip(w')*ones(2) (1+2-1 = 2 taps), keeping full[0:4]; this layer keeps full[1:3], so the two agree up to the window; only box-filtered kernels are reachable that way
    """
    from .api import geometry

    return build(geometry(input_shape, kernel_size, framework, **args))
