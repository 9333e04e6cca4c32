"""The interface every framework convention implements, and shared argument checks.

A convention is a small class: it knows its framework's argument names, turns
them into a :class:`~tconv.geometry.Geometry` (validating with the framework's
own rules), and goes back from a geometry to its arguments, saying what extra
slice or pad is needed when the framework cannot express the geometry.
"""
from __future__ import annotations

import numbers
import warnings
from dataclasses import dataclass, field
from typing import Any, ClassVar, Iterable, NamedTuple, Sequence

from ..errors import ConfigError, FrameworkQuirkWarning, closest_name
from ..geometry import AxisGeometry, Geometry, dilated_kernel_size, full_size
from ._solve import Family

# Larger sizes overflow the int32 shape arithmetic of TF, TFLite and ONNX Runtime,
# and (i-1)*s would overflow int64 long before any framework could allocate it.
MAX_SIZE = 2**31 - 1


@dataclass(frozen=True)
class Expressed:
    """A geometry written in one framework's arguments.

    Attributes
    ----------
    framework : str
        The convention's name.
    args : dict
        The framework's own arguments (as ``tconv.geometry`` takes them).
    extra_crop : tuple of (int, int)
        Per axis, how many elements to remove from the start and the end of
        the framework's output to get the wanted geometry; negative means zeros
        to add. All zeros when the framework expresses it exactly.
    geometry : Geometry
        What ``args`` alone give in that framework.
    """

    framework: str
    args: dict
    extra_crop: tuple[tuple[int, int], ...]
    geometry: Geometry = field(compare=False)

    @property
    def exact(self) -> bool:
        return all(b == 0 and e == 0 for b, e in self.extra_crop)


class ArrayLayout(NamedTuple):
    """Which array axes hold what, for one framework and one call (:class:`tconv.kernels.layouts.Layout`).

    ``x`` and ``out``: the input's and output's ``(batch, channels, *spatial)``
    axes; ``w``: the weight's ``(input channels, output channels per group,
    *spatial)`` axes; ``flipped``: the weight is spatially flipped relative to
    PyTorch's; ``description``: the layout in words, for error messages.
    """

    x: tuple[int, ...]
    w: tuple[int, ...]
    out: tuple[int, ...]
    flipped: bool
    description: str


def channels_first_layout(rank: int, what: str) -> ArrayLayout:
    """``(N, C, *spatial)`` arrays and a ``(C_in, C_out/groups, *k)`` weight, as PyTorch keeps them."""
    axes = (0, 1, *range(2, rank))
    return ArrayLayout(axes, axes, axes, False, what)


def channels_last_axes(rank: int) -> tuple[int, ...]:
    """``(batch, channels, *spatial)`` of an ``(N, *spatial, C)`` array."""
    return (0, rank - 1, *range(1, rank - 1))


def tf_layout(rank: int, data_format: Any, framework: str) -> ArrayLayout:
    """Keras' and TensorFlow's arrays: ``data_format`` moves the channels of input and output, never
    the kernel's ``(*k, C_out, C_in)``."""
    first = data_format_first(data_format, framework)
    x = (0, 1, *range(2, rank)) if first else channels_last_axes(rank)
    n = rank - 2
    what = f"input {'(N, C, *spatial)' if first else '(N, *spatial, C)'}, kernel (*k, C_out, C_in)"
    return ArrayLayout(x, (n + 1, n, *range(n)), x, False, what)


def batch_and_channel_entries(convention: "Convention", value: tuple, ndim: int, args: dict,
                              layout: str = "") -> tuple[tuple, tuple, str]:
    """An output shape given with its batch and channel entries (TensorFlow, TFLite): the spatial ones
    kept, where the layout puts them."""
    if len(value) != ndim + 2:
        raise ConfigError(f"{convention.title}'s output_shape takes {ndim} spatial entries, or {ndim + 2} with "
                          f"batch and channels{layout}")
    first = convention.array_layout(ndim + 2, args).x[1] == 1
    kept = value[2:] if first else value[1:-1]
    dropped = value[:2] if first else (value[0], value[-1])
    return kept, dropped, (f"is ({'batch, channels, spatial' if first else 'batch, spatial, channels'}) "
                           "and keeps the spatial entries")


def data_format_first(value: Any, framework: str) -> bool:
    """Whether a Keras/TensorFlow ``data_format`` puts the channels first."""
    if value is None:
        return False
    text = str(value).lower()
    if text in ("channels_first",) or text.startswith("nc"):
        return True
    if text in ("channels_last",) or (text.startswith("n") and text.endswith("c")):
        return False
    raise ConfigError(f"data_format={value!r} is not a layout {framework} knows")


class Convention:
    """Base class: one framework's transposed-convolution arithmetic."""

    name: ClassVar[str]
    title: ClassVar[str]
    #: argument names and their defaults, in the framework's order
    defaults: ClassVar[dict[str, Any]]
    #: one sentence: the framework's rule
    rule: ClassVar[str]
    #: short description of where the arguments come from (for errors and docs)
    api: ClassVar[str]
    #: the most spatial axes the framework's op supports (None: no limit)
    max_ndim: ClassVar[int | None] = None
    #: generic option names (stride, padding, dilation, output_padding, output_size, groups) -> own names
    cli_names: ClassVar[dict[str, str]] = {}
    #: the command line upper-cases this framework's padding strings (they are upper case: 'SAME')
    cli_upper_padding: ClassVar[bool] = False
    #: the command line hands a bare size (``28``) to this framework as an int, which the framework
    #: reads on every axis, instead of as one axis
    cli_bare_sizes: ClassVar[bool] = False
    #: the command line repeats a bare kernel size on every axis (the framework would not)
    cli_kernel_per_axis: ClassVar[bool] = False
    #: tconv's own keyword options (not the framework's arguments) and their defaults, e.g. which
    #: TensorFlow CPU kernel to describe
    options: ClassVar[dict[str, Any]] = {}

    def native_args(self, generic: dict, ndim: int) -> dict:
        """Map generic option names to this framework's names (used by the CLI).

        Strings pass through; ints and tuples keep their form, except where the
        framework wants lists (ONNX), which its convention handles.
        """
        args = {}
        for key, value in generic.items():
            if key not in self.cli_names:
                raise ConfigError(
                    f"{self.title} has no {key.replace('_', ' ')} option; its arguments are: "
                    f"{', '.join(self.defaults)} (pass any of them with -a NAME=VALUE)"
                )
            args[self.cli_names[key]] = value
        return args

    def output_size_entries(self, value: tuple, ndim: int, args: dict) -> tuple[tuple, tuple, str]:
        """How the framework reads an output size with more entries than spatial axes.

        Returns ``(kept, ignored, how)``; raises ConfigError saying what the
        framework takes where it takes no such prefix.
        """
        name = self.cli_names.get("output_size", "output_size")
        raise ConfigError(f"{self.title}'s {name} takes the {ndim} spatial entries only")

    # ---- the framework's arrays ------------------------------------------------------
    #: the name of its channel-groups argument (None: it has none)
    groups_argument: ClassVar[str | None] = None

    def array_layout(self, rank: int, args: dict) -> ArrayLayout:
        """Where this framework keeps batch, channels and space for ``rank``-dimensional arrays.

        ``args`` are the call's arguments (``data_format``, ``dimension_numbers``,
        ``transpose_kernel``, ...). Raises ConfigError for a layout the
        framework does not have.
        """
        raise ConfigError(f"no array layout known for {self.title}")

    @property
    def channels_first(self) -> bool:
        """Whether the framework's default layout puts the channels first."""
        return self.array_layout(4, {}).x[1] == 1

    @property
    def kernel_layout(self) -> str | None:
        """The default weight layout by family: 'torch' ``(in, out/g, *k)``, 'tf' ``(*k, out, in)``,
        'lax' ``(*k, in, out)`` flipped; None for any other."""
        try:
            spec = self.array_layout(4, {})
        except ConfigError:
            return None
        if spec.w == (0, 1, 2, 3) and not spec.flipped:
            return "torch"
        if spec.w == (3, 2, 0, 1):
            return "tf"
        if spec.w == (2, 3, 0, 1) and spec.flipped:
            return "lax"
        return None

    # ---- the framework's forward convolution (tconv.forward, tconv.invert) ----------------
    #: what its forward layer is called, and its size-relevant arguments with their defaults
    forward_api: ClassVar[str] = ""
    forward_defaults: ClassVar[dict[str, Any]] = {}
    #: the names of its forward stride, dilation and padding arguments (dilation None: it has none)
    forward_names: ClassVar[tuple[str, str | None, str]] = ("stride", "dilation", "padding")
    #: the padding strings its forward convolution takes (any case); () when it takes integers only
    forward_padding_modes: ClassVar[tuple[str, ...]] = ()

    def forward_ndim(self, input_shape: Any, kernel_size: Any) -> int:
        """The number of axes: the input's or kernel's length, else 1."""
        for value in (input_shape, kernel_size):
            if isinstance(value, (list, tuple)):
                return len(value)
        return 1

    def forward_per_axis(self, name: str, value: Any, ndim: int) -> tuple[int, ...]:
        """A forward stride or dilation argument, per axis (None: 1)."""
        return per_axis(name, 1 if value is None else value, ndim, self.title, minimum=1)

    def forward_strides(self, args: dict, ndim: int) -> tuple[int, ...]:
        return self.forward_per_axis(self.forward_names[0], args[self.forward_names[0]], ndim)

    def forward_dilations(self, args: dict, ndim: int) -> tuple[int, ...]:
        name = self.forward_names[1]
        return (1,) * ndim if name is None else self.forward_per_axis(name, args[name], ndim)

    def forward_pads(self, args: dict, ndim: int, inputs: Sequence[int], kernel: Sequence[int],
                     strides: Sequence[int], dilations: Sequence[int]) -> list[tuple[int, int]]:
        """Per axis, the forward convolution's padding written out as ``(before, after)``."""
        name = self.forward_names[2]
        padding = args[name]
        pads = []
        for n, (i, k, s, d) in enumerate(zip(inputs, kernel, strides, dilations)):
            if isinstance(padding, str):
                if not self.forward_padding_modes:
                    raise ConfigError(f"{name}={padding!r}: {self.title} {self.forward_api} takes integer padding")
                mode = choice(name, padding, self.forward_padding_modes, self.title, case_sensitive=False).upper()
                pads.append((0, 0) if mode == "VALID" else self.forward_same_pads(i, dilated_kernel_size(k, d), s, mode, strides))
            else:
                pads.append(self.forward_explicit(padding, n, ndim))
        return pads

    def forward_same_pads(self, i: int, K: int, s: int, mode: str, strides: Sequence[int]) -> tuple[int, int]:
        return same_pads(i, K, s, extra_at_start=mode == "SAME_LOWER")

    def forward_explicit(self, padding: Any, n: int, ndim: int) -> tuple[int, int]:
        """Explicit forward padding on axis ``n``: symmetric ints by default."""
        value = per_axis(self.forward_names[2], padding, ndim, self.title, minimum=0)[n]
        return value, value

    # ---- solve and invert (tconv.solve, tconv.invert) -----------------------------------
    #: proposes this framework's arguments for one axis of a wanted output size
    solve_family: ClassVar[Family]

    def forward_padding_assumed(self, args: dict) -> str | None:
        """The forward convolution's padding in words when ``args`` leave it to the default (None when they give it):
        what :func:`tconv.invert` says it assumed."""
        name = self.forward_names[2]
        return None if name in args else f"{name}={self.forward_defaults[name]!r}"

    def forward_native_args(self, generic: dict, ndim: int) -> dict:
        """Map generic forward-convolution options (stride, padding, dilation) to this framework's names
        (``tconv invert``), as :meth:`native_args` does for the transposed layer."""
        stride, dilation, padding = self.forward_names
        names = {"stride": stride, "padding": padding, "dilation": dilation}
        args = {}
        for key, value in generic.items():
            if names.get(key) is None:
                raise ConfigError(f"{self.title}'s forward convolution has no {key} option")
            args[names[key]] = value
        return args

    # ---- public interface -------------------------------------------------
    def to_geometry(self, input_shape: Any, kernel_size: Any, **args: Any) -> Geometry:
        """Validate ``args`` by the framework's rules and build the geometry."""
        self.check_names(args)
        merged = {**self.defaults, **self.options, **args}
        ndim = self.infer_ndim(input_shape, kernel_size, merged)
        if self.max_ndim is not None and ndim > self.max_ndim:
            raise ConfigError(
                f"{self.title} {self.api} supports at most {self.max_ndim} spatial axes; got {ndim}"
            )
        inputs = sizes("input_shape", input_shape, ndim, self.title)
        kernel = sizes("kernel_size", kernel_size, ndim, self.title)
        geometry = self._build(inputs, kernel, merged)
        for note in geometry.notes:
            warnings.warn(note, FrameworkQuirkWarning, stacklevel=4)
        return geometry

    def from_geometry(self, geometry: Geometry, *, avoid_quirks: bool = False) -> Expressed:
        """The simplest arguments of this framework that reproduce ``geometry``.

        When no arguments reproduce it exactly, the result carries the extra
        slice (or zero pad) per axis that does. Raises ConfigError when even
        that cannot help (wrapping outputs, unsupported dilation, ...).
        With ``avoid_quirks``, arguments the framework is known to mishandle
        (their geometry has notes) are used only when nothing else works.
        """
        if avoid_quirks:
            try:
                return self._from_geometry(geometry, skip_quirks=True)
            except ConfigError:
                pass
        return self._from_geometry(geometry, skip_quirks=False)

    def _from_geometry(self, geometry: Geometry, skip_quirks: bool) -> Expressed:
        best: Expressed | None = None
        reasons: list[str] = []
        for args in self._candidates(geometry):
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", FrameworkQuirkWarning)
                    got = self.to_geometry(geometry.input_shape, geometry.kernel_size, **args)
            except ConfigError as err:
                reasons.append(str(err))
                continue
            if got.wrap != geometry.wrap or got.wrap and got.axes != geometry.axes:
                continue
            if skip_quirks and got.notes:
                reasons.append(got.notes[0])
                continue
            extra = tuple(
                (want.crop_begin - have.crop_begin, want.crop_end - have.crop_end)
                for want, have in zip(geometry.axes, got.axes)
            )
            if any((b < 0 and have.crop_begin > 0) or (e < 0 and have.crop_end > 0)
                   for (b, e), have in zip(extra, got.axes)):
                # zeros may only be added past the ends of the uncropped output, never over values it has
                continue
            candidate = Expressed(self.name, args, extra, got)
            if candidate.exact:
                return candidate
            if best is None or _cost(extra) < _cost(best.extra_crop):
                best = candidate
        if best is None:
            why = reasons[0] if reasons else "no candidate arguments"
            raise ConfigError(f"{self.title} cannot express {geometry!r}: {why}")
        return best

    # ---- to be provided by each convention --------------------------------
    def _build(self, input_shape: tuple[int, ...], kernel_size: tuple[int, ...], args: dict) -> Geometry:
        raise NotImplementedError

    def _candidates(self, geometry: Geometry) -> Iterable[dict]:
        raise NotImplementedError

    # ---- shared helpers ----------------------------------------------------
    def check_names(self, args: dict) -> None:
        for name in args:
            if name in self.options:
                continue
            if name == "tf_onednn":
                raise ConfigError(
                    "tf_onednn chooses which TensorFlow CPU kernel to describe: it applies to the tensorflow, "
                    f"keras and tf_keras conventions, not to {self.title}"
                )
            if name not in self.defaults:
                suggestion = closest_name(name, self.defaults)
                hint = f"; did you mean {suggestion!r}?" if suggestion else ""
                raise ConfigError(
                    f"{self.title} {self.api} has no argument {name!r}{hint} "
                    f"Its arguments are: {', '.join(self.defaults)}"
                )

    def per_axis_names(self) -> tuple[str, ...]:
        """Arguments whose sequence length reveals the number of spatial axes."""
        return ()

    def infer_ndim(self, input_shape: Any, kernel_size: Any, args: dict) -> int:
        """Spatial rank: from input_shape, else from any per-axis sequence, else 1."""
        for name, value in [("input_shape", input_shape), ("kernel_size", kernel_size)] + [
            (n, args.get(n)) for n in self.per_axis_names()
        ]:
            if isinstance(value, (list, tuple)):
                if len(value) == 0:
                    raise ConfigError(f"{name}=() is empty: give at least one spatial size")
                return len(value)
        return 1

    def geometry(
        self,
        axes: Sequence[AxisGeometry],
        args: dict,
        notes: Sequence[str] = (),
        groups: int = 1,
        runtime_errors: Sequence[str] = (),
    ) -> Geometry:
        return Geometry(tuple(axes), framework=self.name, args=args, notes=tuple(notes), groups=groups,
                        runtime_errors=tuple(runtime_errors))

    def axis(
        self, name: str, i: int, k: int, s: int, d: int, begin: int, end: int, wrap: bool = False,
        empty_ok: bool = False,
    ) -> AxisGeometry:
        """Build one axis, turning a negative output (or an empty one, unless ``empty_ok``) into this framework's error.

        ``empty_ok`` is for frameworks that return an empty array where the
        window keeps nothing; their convention warns with :meth:`empty_note`.
        """
        full = full_size(i, k, s, d)
        out = full - begin - end
        if out < 0 or (out == 0 and not empty_ok):
            raise ConfigError(
                f"{self.title}: the output would have {out} elements on axis {name}: the uncropped output "
                f"is (i-1)*s + d*(k-1) + 1 = {full} and the padding removes {begin} at the start "
                f"and {end} at the end; "
                + ("an output cannot be smaller than empty" if empty_ok else "the output must have at least 1 element")
            )
        return AxisGeometry(i, k, s, d, begin, end, wrap)

    def empty_note(self, axes: Sequence[AxisGeometry], how: str = "") -> str | None:
        """The warning for an output that keeps no element on some axis (None when none is empty)."""
        empty = [str(n) for n, ax in enumerate(axes) if ax.output_size == 0]
        if not empty:
            return None
        shape = "x".join(str(ax.output_size) for ax in axes)
        which = "axis " + empty[0] if len(empty) == 1 else "axes " + ", ".join(empty)
        return (
            f"{self.title} returns an empty output ({shape}): the window keeps no element on {which}"
            + (f"; {how}" if how else "")
            + ". That is rarely what a layer is for: check the padding"
        )


def _cost(extra: Sequence[tuple[int, int]]) -> tuple[int, int]:
    # Prefer slicing (non-negative) over padding, then the smallest change.
    return (sum(1 for b, e in extra if b < 0 or e < 0), sum(abs(b) + abs(e) for b, e in extra))


# ---- argument normalizers, shared by all conventions ---------------------------
def is_int(value: Any) -> bool:
    """An integer, Python's or NumPy's (NumPy registers its integers as ``numbers.Integral``), not a bool.

    Checked without importing NumPy, so the arithmetic stays NumPy-free.
    """
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def integer(name: str, value: Any, framework: str, minimum: int = 0) -> int:
    """Validate one integer argument by name."""
    if not is_int(value):
        kind = "a boolean" if isinstance(value, bool) else type(value).__name__
        raise ConfigError(f"{name}={value!r} must be an integer in {framework}, not {kind}")
    value = int(value)
    if value < minimum:
        rule = "positive" if minimum == 1 else f">= {minimum}"
        raise ConfigError(f"{name}={value} must be {rule} in {framework}")
    if value > MAX_SIZE:
        raise ConfigError(f"{name}={value} is too large: tconv accepts at most {MAX_SIZE} (2**31-1)")
    return value


def per_axis(name: str, value: Any, ndim: int, framework: str, minimum: int = 0) -> tuple[int, ...]:
    """An int (same on every axis) or a sequence of ``ndim`` ints."""
    if isinstance(value, (list, tuple)):
        if len(value) != ndim:
            raise ConfigError(
                f"{name}={tuple(value)!r} has {len(value)} entries but the input has {ndim} spatial "
                f"axes; give one int or {ndim} ints"
            )
        return tuple(integer(f"{name}[{n}]", v, framework, minimum) for n, v in enumerate(value))
    if hasattr(value, "shape") and hasattr(value, "tolist"):  # numpy arrays
        return per_axis(name, value.tolist(), ndim, framework, minimum)
    return (integer(name, value, framework, minimum),) * ndim


def sizes(name: str, value: Any, ndim: int, framework: str) -> tuple[int, ...]:
    """input_shape or kernel_size: positive ints, one per axis."""
    if value is None:
        raise ConfigError(f"{name} is required")
    if isinstance(value, str):
        raise ConfigError(f"{name}={value!r} must be an int or a tuple of ints, not a string")
    return per_axis(name, value, ndim, framework, minimum=1)


def pairs(name: str, value: Any, ndim: int, framework: str, minimum: int | None = None) -> tuple[tuple[int, int], ...]:
    """A sequence of ``ndim`` (before, after) pairs."""
    if not isinstance(value, (list, tuple)) or len(value) != ndim:
        raise ConfigError(f"{name}={value!r} must be a sequence of {ndim} (before, after) pairs in {framework}")
    result = []
    for n, pair in enumerate(value):
        if not isinstance(pair, (list, tuple)) or len(pair) != 2:
            raise ConfigError(f"{name}[{n}]={pair!r} must be a (before, after) pair in {framework}")
        low = -MAX_SIZE if minimum is None else minimum
        result.append((integer(f"{name}[{n}]", pair[0], framework, low), integer(f"{name}[{n}]", pair[1], framework, low)))
    return tuple(result)


def choice(name: str, value: Any, options: Sequence[str], framework: str, case_sensitive: bool = True) -> str:
    """A string option; errors list the legal values."""
    if not isinstance(value, str):
        raise ConfigError(f"{name}={value!r} must be one of {', '.join(map(repr, options))} in {framework}")
    key = value if case_sensitive else value.lower()
    table = {o if case_sensitive else o.lower(): o for o in options}
    if key not in table:
        close = closest_name(key, table)
        hint = f"; did you mean {table[close]!r}?" if close else ""
        raise ConfigError(f"{name}={value!r} is not one of {', '.join(map(repr, options))} in {framework}{hint}")
    return table[key]


def spatial_shape(
    name: str, value: Any, ndim: int, framework: str, channels_first: bool, minimum: int = 1
) -> tuple[int, ...]:
    """An output shape given either spatially (ndim entries) or in full (ndim+2)."""
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, (list, tuple)) and len(value) == ndim + 2:
        value = tuple(value[2:]) if channels_first else tuple(value[1:-1])
    if not isinstance(value, (list, tuple)) and ndim != 1:
        raise ConfigError(f"{name}={value!r} must list {ndim} spatial sizes (or {ndim + 2} with batch and channels)")
    if value is None or isinstance(value, str):
        return sizes(name, value, ndim, framework)
    return per_axis(name, value, ndim, framework, minimum=minimum)


def explicit_pair(convention: Convention, padding: Any, n: int, ndim: int, ints_allowed: bool = False) -> tuple[int, int]:
    """Forward padding given as one ``(before, after)`` pair per axis (or, ``ints_allowed``, an int per axis)."""
    title = convention.title
    if not isinstance(padding, (list, tuple)):
        value = integer("padding", padding, title, 0)
        return value, value
    if len(padding) != ndim:
        raise ConfigError(f"padding={padding!r} must have one (before, after) pair per spatial axis in {title}")
    entry = padding[n]
    if isinstance(entry, (list, tuple)) and len(entry) == 2:
        return integer("padding", entry[0], title, 0), integer("padding", entry[1], title, 0)
    if ints_allowed:
        value = integer("padding", entry, title, 0)
        return value, value
    raise ConfigError(f"padding[{n}]={entry!r} must be a (before, after) pair in {title}")


def same_pads(i: int, K: int, s: int, extra_at_start: bool = False) -> tuple[int, int]:
    """The forward convolution's 'same' padding: ``ceil(i/s)`` outputs, the padding split evenly.

    An odd extra goes at the end (TF, Keras, PyTorch, ONNX SAME_UPPER, lax 'SAME')
    or at the start (ONNX and lax SAME_LOWER).

    >>> same_pads(28, 3, 2), same_pads(28, 4, 2, extra_at_start=True)
    ((0, 1), (1, 1))
    """
    out = -(-i // s)
    total = max((out - 1) * s + K - i, 0)
    small = total // 2
    return (total - small, small) if extra_at_start else (small, total - small)


def legal_range_text(lo: int, hi: int) -> str:
    return f"{lo}" if lo == hi else f"{lo}..{hi}"
