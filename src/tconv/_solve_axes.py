"""One axis of :func:`tconv.solve`: each convention's candidate arguments, checked by the convention.

For one spatial axis (input ``i``, output ``o``) and each (kernel, stride,
dilation) tried, the framework's :class:`~tconv.conventions._solve.Family`
(``conventions.get(name).solve_family``) only *proposes* arguments, using the
uncropped size as a hint; :func:`axis_answers` keeps a candidate only if the
convention (:func:`tconv.geometry`, the one source of truth for sizes) accepts
it and yields ``o``. Candidates that keep the same window are one answer with
several spellings (modes). :func:`axis_odd` says why a window is one no
practitioner writes on purpose.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Sequence

from .api import geometry as _geometry
from .conventions._solve import Family, collapse  # collapse: the families write arguments with it, solve prints with it
from .errors import ConfigError
from .geometry import AxisGeometry, Geometry

__all__ = ["MAX_SEARCH", "ODD_REASONS", "Family", "AxisAnswer", "axis_answers", "axis_odd", "check", "collapse"]

#: solve's one search bound: the most (kernel, stride, dilation) triples and candidate
#: argument sets it checks per axis, and the most combinations of the axes' answers
MAX_SEARCH = 4096

Axis = tuple[int, int, int, int, int]  # (i, k, s, d, o)


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
