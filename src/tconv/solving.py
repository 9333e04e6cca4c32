"""Solve for arguments: which settings of a framework give the output size you want.

:func:`solve` lists the argument sets of one framework that turn an input size
into an output size, the ones a practitioner would write first.

Each axis is solved on its own. For one axis, the framework's convention
proposes arguments through its ``solve_family`` (using the uncropped size as a hint);
a candidate is an answer only if the framework's convention
(:func:`tconv.geometry`, the one source of truth for sizes) accepts it and
yields the requested size. Axes that pose the same problem share one answer.
The axes' answers are then combined into whole layers, and each layer is
checked again by the convention. The product of the axes' answers is never
searched blindly: layers with the same kernel and stride on every axis come
first, and mixed ones only where no such layer is ordinary (or when asked).

Ranking, in order: ordinary before odd; the framework's idiomatic spelling
(Keras ``'same'``, TensorFlow/JAX ``'SAME'``, ONNX ``pads``); the stride that
fits the size ratio (``out`` near ``in*s``); a kernel that suits the stride
(``k = 2s`` or ``2s-1``; then ``k = s`` or another multiple of ``s``; odd
``k`` at stride 1); fewer arguments off their defaults; less padding. *Odd*
settings are the ones no practitioner writes on purpose (see :func:`axis_odd`);
by default they are listed only when nothing ordinary reaches the size. A layer
that several spellings describe is listed once, with the other spellings in
``.alternatives``.

:func:`tconv.invert` (re-exported here) lives in :mod:`tconv.inversion`.
"""
from __future__ import annotations

import itertools
import warnings
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator, Sequence

from . import conventions
from ._solve_axes import MAX_SEARCH, ODD_REASONS, collapse, Family, axis_answers, axis_odd, check
from .conventions._base import is_int
from .errors import ConfigError, FrameworkQuirkWarning
from .geometry import Geometry, full_size

__all__ = [
    "Solution", "Solutions", "Unreachable", "solve", "axis_odd",
    "MAX_SEARCH", "DEFAULT_MAX_KERNEL", "DEFAULT_MAX_STRIDE",
]

#: kernels tried when ``kernel_size`` is not given: 1..DEFAULT_MAX_KERNEL
DEFAULT_MAX_KERNEL = 7
#: strides tried when ``stride`` is not given: 1..DEFAULT_MAX_STRIDE
DEFAULT_MAX_STRIDE = 4

#: why a layer that mixes kernel sizes or strides across axes counts as odd
MIXED = "kernel size or stride differs across axes where equal ones work"
QUIRK = "the framework fails or misbehaves on it (tconv warns)"


class Unreachable(ConfigError):
    """No argument set reaches the requested output; ``.nearest`` holds the closest reachable sizes per axis."""

    def __init__(self, message: str, nearest: tuple[tuple[int, ...], ...] = ()):
        super().__init__(message)
        self.nearest = nearest


@dataclass(frozen=True)
class Solution:
    """One layer that gives the requested output.

    Attributes
    ----------
    framework : str
    kernel_size : tuple of int
    args : dict
        The framework's own argument names: ``tconv.output_shape(input_shape,
        solution.kernel_size, framework, **solution.args)`` gives the output.
    geometry : Geometry
        What those arguments do: per axis the uncropped size and kept window.
    alternatives : tuple of dict
        Other spellings of the same layer (same kernel, same kept window),
        e.g. ONNX ``auto_pad='SAME_UPPER'`` for ``pads=[1, 1]``.
    odd : tuple of str
        Why this setting is odd (empty when it is ordinary).
    """

    framework: str
    kernel_size: tuple[int, ...]
    args: dict
    geometry: Geometry = field(compare=False, repr=False)
    alternatives: tuple[dict, ...] = field(default=(), compare=False)
    odd: tuple[str, ...] = field(default=(), compare=False)

    @property
    def kept(self) -> tuple[tuple[int, int], ...]:
        """Per axis the kept window ``[start, stop)`` of the uncropped output."""
        return tuple(ax.kept for ax in self.geometry)

    @property
    def output_shape(self) -> tuple[int, ...]:
        return self.geometry.output_shape

    @property
    def exact_window(self) -> bool:
        """True when the window lies inside the uncropped output (no zero rows added)."""
        return all(0 <= start and stop <= ax.full for ax, (start, stop) in zip(self.geometry, self.kept))

    def __str__(self) -> str:
        kernel = collapse(self.kernel_size)
        args = ", ".join(f"{k}={v!r}" for k, v in self.args.items())
        shown = [f"full[{a}:{b}] of {ax.full}" for ax, (a, b) in zip(self.geometry, self.kept)]
        windows = shown[0] if len(set(shown)) == 1 else ", ".join(shown)
        text = f"kernel_size={kernel!r}, {args}  keeps {windows}"
        if self.odd:
            text += f"  (odd: {'; '.join(self.odd)})"
        if self.alternatives:
            spelled = [", ".join(f"{k}={v!r}" for k, v in alt.items() if self.args.get(k, _MISSING) != v)
                       for alt in self.alternatives]
            text += "\n    same layer: " + " | ".join(spelled)
        return text


_MISSING = object()


class Solutions(list):
    """What :func:`solve` returns: a list of :class:`Solution`, best first, and what it took for granted.

    Attributes
    ----------
    assumed : tuple of str
        What solve assumed where the call did not say: the number of axes when
        a single size was spread over several, and the kernels, strides and
        dilations it searched.
    left_out : tuple of str
        The kinds of odd settings that reach the size but are not listed
        (``include_odd=True`` lists them).
    total : int
        How many solutions there were before ``limit``.
    """

    def __init__(self, items: Iterable[Solution] = (), assumed: Sequence[str] = (),
                 left_out: Sequence[str] = (), total: int | None = None):
        super().__init__(items)
        self.assumed = tuple(assumed)
        self.left_out = tuple(left_out)
        self.total = len(self) if total is None else total


def _values_range(name: str, given: Any, ndim: int, default_max: int) -> list[Sequence[int]]:
    """Per axis, the values to try: the given int/tuple, a range, or 1..max (ranges stay lazy until bounded)."""
    if given is None:
        return [range(1, default_max + 1)] * ndim
    if isinstance(given, range):
        if len(given) and min(given[0], given[-1]) < 1:
            raise ConfigError(f"{name}={given!r} must hold positive integers")
        return [given] * ndim
    if isinstance(given, (list, tuple)):
        if len(given) != ndim:
            raise ConfigError(f"{name}={given!r} has {len(given)} entries but the input has {ndim} spatial axes")
        return [[_positive(name, v)] for v in given]
    return [[_positive(name, given)]] * ndim


def _positive(name: str, value: Any) -> int:
    if not is_int(value) or value < 1:
        raise ConfigError(f"{name}={value!r} must be a positive integer")
    return int(value)


def _shape(name: str, value: Any) -> tuple[int, ...]:
    if isinstance(value, (list, tuple)):
        if not value:
            raise ConfigError(f"{name}=() is empty: give at least one spatial size")
        return tuple(_positive(f"{name}[{n}]", v) for n, v in enumerate(value))
    return (_positive(name, value),)


def _span(values: Sequence[int]) -> str:
    values = list(values)
    if len(values) == 1:
        return str(values[0])
    if values == list(range(values[0], values[-1] + 1)):
        return f"{values[0]}..{values[-1]}"
    return "{" + ", ".join(map(str, values)) + "}"


# ---------------------------------------------------------------------------
# solve
# ---------------------------------------------------------------------------
def solve(
    input_shape: Any,
    output_shape: Any,
    framework: str = "pytorch",
    kernel_size: Any = None,
    stride: Any = None,
    dilation: Any = None,
    *,
    max_kernel: int = DEFAULT_MAX_KERNEL,
    max_stride: int = DEFAULT_MAX_STRIDE,
    limit: int | None = None,
    include_odd: bool = False,
) -> Solutions:
    """The argument sets of ``framework`` taking ``input_shape`` to ``output_shape``, idiomatic first.

    Parameters
    ----------
    input_shape, output_shape : int or tuple of int
        Spatial sizes; an int is the same size on every axis.
    framework : str
        One of ``tconv.conventions.names()``.
    kernel_size, stride, dilation : int, tuple, range or None
        Fixed values (an int or one per axis), a ``range`` of values to try, or
        None: kernels ``1..max_kernel`` and strides ``1..max_stride`` are tried
        (dilation 1).
    max_kernel, max_stride : int
        The search bounds when ``kernel_size`` / ``stride`` are not given.
    limit : int, optional
        Return at most this many solutions (the best ones).
    include_odd : bool
        Also list odd settings (:func:`axis_odd`, and kernels or strides that
        differ across axes where equal ones work) after the ordinary ones. By
        default they are listed only when no ordinary setting reaches the size;
        each carries its reasons in ``.odd``.

    Returns
    -------
    Solutions
        A list of :class:`Solution`, best first (see the module docstring for
        the order), one per distinct layer, other spellings of the same layer
        in ``.alternatives``. ``.assumed`` says what was taken for granted,
        ``.left_out`` which kinds of odd settings were not listed.

    Raises
    ------
    Unreachable
        No argument set reaches the size; the nearest reachable sizes are in the
        message and in ``.nearest``.
    ConfigError
        Unknown framework, bad sizes or options, or a search above
        :data:`MAX_SEARCH` (4096) candidates per axis or combinations across axes.

    Examples
    --------
    >>> import tconv
    >>> found = tconv.solve(28, 56, "pytorch")
    >>> for s in found[:3]:
    ...     print(s)
    kernel_size=4, stride=2, padding=1  keeps full[1:57] of 58
    kernel_size=3, stride=2, padding=1, output_padding=1  keeps full[1:57] of 57
    kernel_size=2, stride=2, padding=0  keeps full[0:56] of 56
    >>> found.assumed
    ('kernel_size in 1..7', 'stride in 1..4', 'dilation 1')
    >>> found.left_out  # odd settings also reach 56: include_odd=True lists them
    ('kernel smaller than the stride', 'padding larger than the kernel', 'zeros added past the uncropped output')

    Keras ``'same'`` comes first; ``output_padding=1`` spells the same layer:

    >>> s = tconv.solve((8, 8), (16, 16), "keras", kernel_size=3, stride=2)[0]
    >>> s.args, s.alternatives
    ({'strides': 2, 'padding': 'same'}, ({'strides': 2, 'padding': 'same', 'output_padding': 1},))

    Different axes are solved each and combined:

    >>> print(tconv.solve((12, 16), (24, 32), "onnx", limit=1)[0])
    kernel_size=3, strides=[2, 2], pads=[0, 0, 1, 1]  keeps full[0:24] of 25, full[0:32] of 33
        same layer: auto_pad='SAME_UPPER'
    """
    framework = conventions.canonical(framework)
    convention = conventions.get(framework)
    family = convention.solve_family
    inputs = _shape("input_shape", input_shape)
    outputs = _shape("output_shape", output_shape)
    for name, value in (("max_kernel", max_kernel), ("max_stride", max_stride)):
        _positive(name, value)
    if limit is not None:
        _positive("limit", limit)
    if not isinstance(include_odd, bool):
        raise ConfigError(f"include_odd={include_odd!r} must be True or False")

    counts = {name: len(value) for name, value in (("input_shape", inputs), ("output_shape", outputs)) if len(value) > 1}
    given = max(counts.values(), default=1)
    for name, value in (("kernel_size", kernel_size), ("stride", stride), ("dilation", dilation)):
        if isinstance(value, (list, tuple)):
            if not value:
                raise ConfigError(f"{name}={value!r} is empty: give one value, or one per spatial axis")
            counts[name] = len(value)
    if len(set(counts.values())) > 1:
        told = ", ".join(f"{name} {counts[name]}" for name in counts)
        raise ConfigError(f"the arguments disagree on the number of spatial axes ({told}): give each one size, "
                          "or one per axis")
    ndim = max(counts.values(), default=1)
    why = next((f"{name} has {ndim} entries" for name, count in counts.items() if count == ndim), "")
    if convention.max_ndim == 2 and ndim < 2:
        ndim, why = 2, f"{convention.title}'s op is 2-D"
    inputs = inputs * ndim if len(inputs) == 1 else inputs
    outputs = outputs * ndim if len(outputs) == 1 else outputs
    kernels = _values_range("kernel_size", kernel_size, ndim, max_kernel)
    strides = _values_range("stride", stride, ndim, max_stride)
    dilations = _values_range("dilation", 1 if dilation is None else dilation, ndim, 1)
    if convention.max_ndim is not None and ndim > convention.max_ndim:
        raise ConfigError(f"{convention.title} {convention.api} supports at most {convention.max_ndim} spatial axes; got {ndim}")
    if not family.takes_dilation and any(list(d) != [1] for d in dilations):
        raise ConfigError(f"{convention.title} has no dilation")
    for n in range(ndim):
        count = len(kernels[n]) * len(strides[n]) * len(dilations[n])
        if count > MAX_SEARCH:
            raise ConfigError(
                f"the search space is too large: {len(kernels[n])} kernels x {len(strides[n])} strides x "
                f"{len(dilations[n])} dilations = {count} on axis {n}, above solve's bound of {MAX_SEARCH}; fix "
                "kernel_size or stride, or give smaller max_kernel/max_stride (defaults: kernels "
                f"1..{DEFAULT_MAX_KERNEL}, strides 1..{DEFAULT_MAX_STRIDE})"
            )
    assumed = []
    if why and given < ndim:
        assumed.append(f"{ndim} spatial axes ({why})")
    if kernel_size is None:
        assumed.append(f"kernel_size in 1..{max_kernel}")
    if stride is None:
        assumed.append(f"stride in 1..{max_stride}")
    if dilation is None:
        assumed.append("dilation 1")

    # Axes that pose the same problem share one per-axis search and one answer.
    problems: dict[tuple, list[int]] = {}
    for n in range(ndim):
        key = (inputs[n], outputs[n], tuple(kernels[n]), tuple(strides[n]), tuple(dilations[n]))
        problems.setdefault(key, []).append(n)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FrameworkQuirkWarning)
        answers = {
            key: axis_answers(framework, family, key[0], key[1], key[2], key[3], key[4], ndim,
                               f"on axis {', '.join(map(str, axes))}")
            for key, axes in problems.items()
        }
        empty = [key for key, found in answers.items() if not found]
        if empty:
            raise _unreachable(framework, family, empty, problems, ndim)
        solutions, left_out = _Combiner(framework, family, convention, problems, answers, ndim, outputs).run(include_odd)
    if not solutions:
        raise Unreachable(
            f"{convention.title} reaches each axis of {outputs} from {inputs}, but with padding modes that cannot "
            "be combined in one layer; solve the axes separately or fix kernel_size/stride"
        )
    ranked = [s for _, s in sorted(solutions, key=lambda pair: pair[0])]
    return Solutions(ranked[:limit] if limit is not None else ranked, assumed, left_out, len(ranked))


class _Combiner:
    """Combines the axes' answers into whole layers, each checked by the convention, and ranks them."""

    def __init__(self, framework, family, convention, problems, answers, ndim, outputs):
        self.framework, self.family, self.convention = framework, family, convention
        self.keys = list(problems)
        self.problems = problems
        self.answers = [answers[key] for key in self.keys]
        self.ndim, self.outputs = ndim, outputs
        self.budget = MAX_SEARCH
        self.uniform_ok = False
        self.found: list[tuple[tuple, Solution]] = []

    def run(self, include_odd: bool) -> tuple[list[tuple[tuple, Solution]], tuple[str, ...]]:
        ordinary = [[a for a in answers if not a.odd] for answers in self.answers]
        left_out: list[str] = []
        # 1. the same kernel, stride and dilation on every axis, each axis ordinary
        uniform = self._uniform(ordinary)
        self._add(uniform)
        self.uniform_ok = self._has_ordinary()
        # 2. mixed across axes: odd when a uniform layer works
        if len(self.keys) > 1:
            if include_odd or not self.uniform_ok:
                self._add(combo for combo in self._product(ordinary) if len({a.triple for a in combo}) > 1)
            elif _size(ordinary) > len(uniform):
                left_out.append(MIXED)
        # 3. the rest: at least one axis odd
        if include_odd or not self._has_ordinary():
            self._add(combo for combo in self._product(self.answers) if any(a.odd for a in combo))
        else:
            left_out.extend(r for answers in self.answers for a in answers for r in a.odd)
        if not include_odd and self._has_ordinary():  # odd for a reason only the whole layer shows (a quirk)
            left_out.extend(r for _, solution in self.found for r in solution.odd)
            self.found = [(rank, solution) for rank, solution in self.found if not solution.odd]
        order = (*ODD_REASONS, MIXED, QUIRK)
        return self.found, tuple(sorted(set(left_out), key=order.index))

    def _has_ordinary(self) -> bool:
        return any(not s.odd for _, s in self.found)

    def _uniform(self, lists) -> list[tuple]:
        groups = []
        for answers in lists:
            by_triple = defaultdict(list)
            for a in answers:
                by_triple[a.triple].append(a)
            groups.append(by_triple)
        common = set(groups[0]).intersection(*groups[1:])
        combos = [combo for triple in sorted(common) for combo in itertools.product(*(g[triple] for g in groups))]
        self._spend(len(combos))
        return combos

    def _product(self, lists) -> Iterator[tuple]:
        self._spend(_size(lists))
        return itertools.product(*lists)

    def _spend(self, count: int) -> None:
        self.budget -= count
        if self.budget < 0:
            raise ConfigError(
                f"the axes' answers make more combinations than solve's bound of {MAX_SEARCH}; fix kernel_size "
                "or stride (or leave out include_odd / --all)"
            )

    def _add(self, combos: Iterable[tuple]) -> None:
        for combo in combos:
            found = self._layer(combo)
            if found is not None:
                self.found.append(found)

    def _layer(self, combo: tuple) -> tuple[tuple, Solution] | None:
        chosen: list = [None] * self.ndim
        for key, answer in zip(self.keys, combo):
            for n in self.problems[key]:
                chosen[n] = answer
        axes = [(a.axis.input_size, a.kernel, a.stride, a.dilation, self.outputs[n]) for n, a in enumerate(chosen)]
        common = set(combo[0].spellings).intersection(*(a.spellings for a in combo[1:]))
        spelled = []
        for mode in common:
            values = [a.spellings[mode][0] for a in chosen]
            got = check(self.framework, self.family, axes, mode, values, self.ndim)
            if got is None:
                continue
            args = self.family.assemble(mode, values, tuple(a[2] for a in axes), tuple(a[3] for a in axes), self.outputs)
            spelled.append(((bool(got.notes), self.family.rank(mode), self._changed(args)), mode, args, got))
        if not spelled:
            return None
        spelled.sort(key=lambda entry: (entry[0], repr(entry[2])))
        (quirk, rank, changed), mode, args, got = spelled[0]
        mixed = len({a.triple for a in combo}) > 1 and self.uniform_ok
        odd = tuple(dict.fromkeys(r for a in combo for r in a.odd)) + ((MIXED,) if mixed else ()) + ((QUIRK,) if quirk else ())
        kernel = tuple(a[1] for a in axes)
        solution = Solution(self.framework, kernel, args, got, tuple(entry[2] for entry in spelled[1:]), odd)
        key = (
            bool(odd), len(odd), rank,
            sum(abs(a.axis.output_size - a.axis.input_size * a.stride) for a in combo),  # the stride fits the ratio
            max(_tier(a.kernel, a.stride) for a in combo),
            changed,
            len({a.axis.crop_begin - a.axis.crop_end for a in combo if a.triple == combo[0].triple}),  # alike axes
            sum(max(a.axis.crop_begin, 0) + max(a.axis.crop_end, 0) for a in combo),  # less padding
            sum(abs(a.axis.crop_begin - a.axis.crop_end) for a in combo),  # centred
            sum(a.kernel for a in combo),
            repr(args),
        )
        return key, solution

    def _changed(self, args: dict) -> int:
        """How many arguments differ from the framework's defaults (stride and required ones aside)."""
        # every solution carries these, so they say nothing about its simplicity
        skip = {self.convention.cli_names["stride"], *self.family.required}
        return sum(1 for key, value in args.items() if key not in skip and value != self.convention.defaults.get(key))


def _size(lists) -> int:
    total = 1
    for answers in lists:
        total *= len(answers)
    return total


def _tier(k: int, s: int) -> int:
    """How usual a kernel is for a stride: 0 for ``k = 2s`` or ``2s-1`` (odd k at stride 1), 1 for another multiple of s."""
    if s == 1:
        return 0 if k % 2 else 2
    if k in (2 * s, 2 * s - 1):
        return 0
    return 1 if k % s == 0 else 2


def _reachable(framework: str, family: Family, i: int, o: int, key: tuple, ndim: int) -> bool:
    return bool(axis_answers(framework, family, i, o, key[2], key[3], key[4], ndim, f"for an output of {o}"))


def _unreachable(framework, family, empty, problems, ndim) -> Unreachable:
    title = conventions.get(framework).title
    parts = []
    nearest_all = []
    for key in empty:
        i, o, kernels, strides, dilations = key
        reach = 4 * max(strides) * max(kernels) + 64  # look this far on each side, no further
        # no framework's output exceeds the largest uncropped size plus a stride (a hint, not a size rule)
        top = full_size(i, max(kernels), max(strides), max(dilations)) + max(strides)
        start = min(o - 1, top)
        below = next((x for x in range(start, max(start - reach, 0), -1) if _reachable(framework, family, i, x, key, ndim)), None)
        above = next((x for x in range(o + 1, min(o + reach, top + 1)) if _reachable(framework, family, i, x, key, ndim)), None)
        nearest = tuple(x for x in (below, above) if x is not None)
        nearest_all.append(nearest)
        axes = ", ".join(map(str, problems[key]))
        space = f"kernel_size in {_span(kernels)}, stride in {_span(strides)}, dilation in {_span(dilations)}"
        near = " or ".join(map(str, nearest)) if nearest else "none nearby"
        parts.append(f"axis {axes}: no {title} arguments with {space} take {i} to {o}; nearest reachable: {near}")
    return Unreachable("; ".join(parts), tuple(nearest_all))

