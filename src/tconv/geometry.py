"""The per-axis geometry of a transposed convolution: the one source of truth.

Every framework computes some window of the same *uncropped* output. Along one
spatial axis, with input size ``i``, kernel size ``k``, stride ``s`` and
dilation ``d``:

* the dilated kernel spans ``K = d*(k-1) + 1`` elements;
* each input element ``x[j]`` stamps the kernel at ``j*s``, so the uncropped
  ("full") output has ``full = (i-1)*s + K`` elements;
* a framework keeps the window ``full[crop_begin : full - crop_end]``. A
  negative crop means the window reaches past the full output there, and those
  positions hold zeros (plus bias);
* the output size is ``full - crop_begin - crop_end``. It may be 0 where a
  framework returns an empty array (its convention warns); it is never negative.

One framework (Flax's ``padding='CIRCULAR'``) also *wraps*: output position
``o`` receives the sum of ``full[crop_begin + o + m*out]`` over every integer
``m`` that lands inside the full output. ``wrap=False`` keeps only ``m = 0``.

Nothing else in tconv re-derives a size: conventions build an
:class:`AxisGeometry` per axis, and explain, draw, the kernels, solve and
convert all read sizes from here.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator, Sequence

from .errors import ConfigError

__all__ = ["AxisGeometry", "Geometry", "dilated_kernel_size", "full_size"]


def dilated_kernel_size(kernel_size: int, dilation: int) -> int:
    """The number of elements a dilated kernel spans: ``d*(k-1) + 1``.

    >>> dilated_kernel_size(3, 2)
    5
    """
    return dilation * (kernel_size - 1) + 1


def full_size(input_size: int, kernel_size: int, stride: int, dilation: int = 1) -> int:
    """The uncropped transposed-convolution output size: ``(i-1)*s + d*(k-1) + 1``.

    >>> full_size(8, 3, 2)
    17
    """
    return (input_size - 1) * stride + dilated_kernel_size(kernel_size, dilation)


@dataclass(frozen=True)
class AxisGeometry:
    """One spatial axis of a transposed convolution.

    Parameters
    ----------
    input_size, kernel_size, stride, dilation : int
        ``i``, ``k``, ``s`` and ``d``; all >= 1.
    crop_begin, crop_end : int
        How many elements of the full output are removed at the start and at
        the end; negative means zeros are added there instead.
    wrap : bool
        Fold the full output periodically onto the output (Flax CIRCULAR).

    Examples
    --------
    Keras ``padding='same'``, k=3, s=2 on 8 elements keeps ``full[0:16]``:

    >>> ax = AxisGeometry(8, 3, 2, 1, crop_begin=0, crop_end=1)
    >>> ax.full, ax.output_size, ax.kept
    (17, 16, (0, 16))
    """

    input_size: int
    kernel_size: int
    stride: int
    dilation: int
    crop_begin: int
    crop_end: int
    wrap: bool = False

    def __post_init__(self) -> None:
        for name in ("input_size", "kernel_size", "stride", "dilation"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"{name}={value!r} must be a positive integer")
        if self.output_size < 0:
            raise ConfigError(
                f"the output would have {self.output_size} elements: the full output has "
                f"{self.full} and the crop removes {self.crop_begin} at the start and "
                f"{self.crop_end} at the end"
            )

    @property
    def dilated_kernel(self) -> int:
        """``K = d*(k-1) + 1``, the span of the dilated kernel."""
        return dilated_kernel_size(self.kernel_size, self.dilation)

    @property
    def full(self) -> int:
        """``(i-1)*s + K``, the uncropped output size."""
        return full_size(self.input_size, self.kernel_size, self.stride, self.dilation)

    @property
    def output_size(self) -> int:
        """``full - crop_begin - crop_end``."""
        return self.full - self.crop_begin - self.crop_end

    @property
    def kept(self) -> tuple[int, int]:
        """The kept window ``[start, stop)`` in full-output coordinates (may exceed ``[0, full)``)."""
        return self.crop_begin, self.full - self.crop_end

    @property
    def zero_inserted_size(self) -> int:
        """The input after inserting ``s-1`` zeros between elements: ``(i-1)*s + 1``."""
        return (self.input_size - 1) * self.stride + 1

    @property
    def conv_padding(self) -> tuple[int, int]:
        """Padding of the zero-inserted input for the equivalent stride-1 correlation.

        Correlating the zero-inserted input, padded by ``(K-1-crop_begin,
        K-1-crop_end)``, with the flipped kernel gives exactly this axis's
        output (negative padding means slicing). Not meaningful with ``wrap``.
        """
        return self.dilated_kernel - 1 - self.crop_begin, self.dilated_kernel - 1 - self.crop_end

    def output_range(self, index: int) -> tuple[int, int]:
        """The output positions ``[lo, hi)`` (before clipping) that input ``index`` touches."""
        start = index * self.stride - self.crop_begin
        return start, start + self.dilated_kernel

    # ---- which tap of which input lands where ---------------------------------
    # Input j's tap t lands at full position j*s + t*d. Every kernel, picture and table in tconv
    # asks one of the questions below; none of them works this out itself.

    def tap_inputs(self, tap: int, start: int, stop: int) -> tuple[int, int, int] | None:
        """The inputs ``[j_lo, j_hi)`` whose tap ``tap`` lands in full positions ``[start, stop)``.

        Returns ``(j_lo, j_hi, first)``, ``first`` being where ``j_lo`` lands
        relative to ``start`` (the others follow every ``stride``), or None.

        >>> AxisGeometry(4, 3, 2, 1, 0, 0).tap_inputs(2, 0, 5)
        (0, 2, 2)
        """
        s, shift = self.stride, self.dilation * tap
        j_lo = max(0, -((shift - start) // s))
        j_hi = min(self.input_size, -((shift - stop) // s))
        if j_lo >= j_hi:
            return None
        return j_lo, j_hi, j_lo * s + shift - start

    def phases(self, start: int, stop: int) -> list[tuple[int, int, int, list[tuple[int, int]]]]:
        """The phases of full positions ``[start, stop)``: the positions ``p`` with one ``p mod s``.

        Full position ``p = q*s + r`` sums tap ``t`` of input ``q - c_t`` over
        the taps with ``d*t mod s == r`` (``c_t = (d*t - r) // s``): one
        stride-1 correlation per phase. Returns, per phase that has taps and
        positions: ``(first position relative to start, count, first q,
        [(t, c_t), ...])``.

        >>> AxisGeometry(3, 4, 2, 1, 0, 0).phases(0, 8)
        [(0, 4, 0, [(0, 0), (2, 1)]), (1, 4, 0, [(1, 0), (3, 1)])]
        """
        s, d = self.stride, self.dilation
        found = []
        for r in range(s):
            first = start + (r - start) % s
            if first >= stop:
                continue
            taps = [(t, (d * t - r) // s) for t in range(self.kernel_size) if (d * t) % s == r]
            if taps:
                found.append((first - start, -((first - stop) // s), (first - r) // s, taps))
        return found

    def strided(self, first: int, count: int) -> slice:
        """The ``count`` positions ``first, first + s, ...``: where one phase (or one tap's inputs) lands.

        >>> AxisGeometry(4, 3, 2, 1, 0, 0).strided(1, 4)
        slice(1, 8, 2)
        """
        return slice(first, first + (count - 1) * self.stride + 1, self.stride)

    def output_phases(self) -> list[tuple[int, int, list[tuple[int, int]]]]:
        """The phases of the kept output: ``(r, count, [(tap, offset), ...])`` for ``o = q*s + r``.

        Kept output ``o`` sits at full position ``o + crop_begin``; tap ``t``
        reaches it from input ``q + offset`` when ``r + crop_begin - t*d`` is a
        multiple of ``s`` (``offset`` is that quotient). ``count`` outputs have
        phase ``r``.

        >>> AxisGeometry(4, 3, 2, 1, 0, 1).output_phases()
        [(0, 4, [(0, 0), (2, -1)]), (1, 4, [(1, 0)])]
        """
        found = []
        for r in range(min(self.stride, self.output_size)):
            shift = r + self.crop_begin
            taps = [(t, (shift - t * self.dilation) // self.stride) for t in range(self.kernel_size)
                    if (shift - t * self.dilation) % self.stride == 0]
            found.append((r, -(-(self.output_size - r) // self.stride), taps))
        return found

    def phase_target(self, phase: int, count: int) -> tuple[slice, slice, bool] | None:
        """Where full-output phase ``phase`` (positions ``q*s + phase``, ``0 <= q < count``) lands in the window.

        Returns ``(target, source, complete)``: the strided slice of the kept
        output, the slice of ``q`` that fills it, and whether that covers every
        kept position of the phase (those it misses get no term: zeros). None
        when the window keeps no position of this phase.

        >>> AxisGeometry(4, 3, 2, 1, 0, 1).phase_target(1, 4)
        (slice(1, 8, 2), slice(0, 4, None), True)
        >>> AxisGeometry(4, 3, 2, 1, -2, 0).phase_target(0, 4)
        (slice(2, 9, 2), slice(0, 4, None), False)
        """
        s = self.stride
        lands = (phase - self.crop_begin) % s
        if lands >= self.output_size:
            return None
        first = (lands + self.crop_begin - phase) // s  # q of the first kept output
        wanted = -(-(self.output_size - lands) // s)
        lo, hi = max(first, 0), min(first + wanted, count)
        if lo >= hi:
            return slice(lands, lands, s), slice(lo, lo), False
        return self.strided(lands + (lo - first) * s, hi - lo), slice(lo, hi), lo == first and hi == first + wanted

    def terms(self) -> list[list[tuple[int, int]]]:
        """For every kept output, the ``(tap, input)`` pairs that reach it, in tap order.

        >>> AxisGeometry(2, 3, 2, 1, 1, 0).terms()
        [[(1, 0)], [(0, 1), (2, 0)], [(1, 1)], [(2, 1)]]
        """
        return [
            [(t, (o + self.crop_begin - t * self.dilation) // self.stride) for t in range(self.kernel_size)
             if (o + self.crop_begin - t * self.dilation) % self.stride == 0
             and 0 <= (o + self.crop_begin - t * self.dilation) // self.stride < self.input_size]
            for o in range(self.output_size)
        ]

    def sub_window(self, start: int, stop: int) -> "AxisGeometry":
        """This axis keeping full positions ``[start, stop)`` instead (no wrapping).

        >>> AxisGeometry(8, 3, 2, 1, 0, 1).sub_window(2, 10).kept
        (2, 10)
        """
        return self.replace(crop_begin=start, crop_end=self.full - stop, wrap=False)

    def phase_landing(self, count: int) -> "AxisGeometry":
        """Landing this axis's ``s`` phases, ``count`` values each, as a transposed convolution of its own.

        Phase ``r`` holds full positions ``q*s + r``: that is tap ``r`` of input
        ``q`` of a kernel of ``s`` taps at stride ``s``, so the kept window of
        the interleaved phases is this geometry's window of that layer, and its
        :meth:`terms` say which phase and ``q`` each kept output takes.

        >>> AxisGeometry(4, 3, 2, 1, 1, 1).phase_landing(5).terms()[:3]
        [[(1, 0)], [(0, 1)], [(1, 1)]]
        """
        s = self.stride
        return AxisGeometry(count, s, s, 1, self.crop_begin, count * s - self.output_size - self.crop_begin)

    def replace(self, **changes: int) -> "AxisGeometry":
        """A copy with some fields changed (validated again)."""
        values = {f: getattr(self, f) for f in self.__dataclass_fields__}
        values.update(changes)
        return AxisGeometry(**values)


@dataclass(frozen=True)
class Geometry:
    """The per-axis geometry of one transposed convolution, plus where it came from.

    Attributes
    ----------
    axes : tuple of AxisGeometry
        One entry per spatial axis; any number of axes.
    framework : str
        The convention that produced it (``"geometry"`` when built directly).
    args : dict
        The framework arguments it was built from, normalized per axis.
    notes : tuple of str
        Framework quirks that apply to this configuration (crashes, misbehaviour).
    runtime_errors : tuple of str
        Where the framework accepts and sizes this layer but raises when it
        runs it on the machine described (TensorFlow's CPU kernels, Keras'
        TensorFlow backend): a fragment of each error message it raises.
        Empty when it runs.
    groups : int
        Channel groups (does not change sizes; kept for the kernels).

    Examples
    --------
    >>> import tconv
    >>> g = tconv.geometry((8, 8), 3, framework="keras", strides=2, padding="same")
    >>> g.output_shape, g.crop_begin, g.crop_end
    ((16, 16), (0, 0), (1, 1))
    """

    axes: tuple[AxisGeometry, ...]
    framework: str = "geometry"
    args: dict = field(default_factory=dict, compare=False)
    notes: tuple[str, ...] = field(default=(), compare=False)
    groups: int = 1
    runtime_errors: tuple[str, ...] = field(default=(), compare=False)

    @classmethod
    def from_sizes(
        cls,
        input_shape: Sequence[int],
        kernel_size: Sequence[int],
        stride: Sequence[int],
        dilation: Sequence[int],
        crop_begin: Sequence[int],
        crop_end: Sequence[int],
        **kwargs,
    ) -> "Geometry":
        """Build a geometry from per-axis sequences of equal length."""
        rows = zip(input_shape, kernel_size, stride, dilation, crop_begin, crop_end, strict=True)
        return cls(tuple(AxisGeometry(*row) for row in rows), **kwargs)

    def __iter__(self) -> Iterator[AxisGeometry]:
        return iter(self.axes)

    def __len__(self) -> int:
        return len(self.axes)

    def __getitem__(self, axis: int) -> AxisGeometry:
        return self.axes[axis]

    @property
    def ndim(self) -> int:
        """Number of spatial axes."""
        return len(self.axes)

    def _per_axis(self, attribute: str) -> tuple:
        return tuple(getattr(ax, attribute) for ax in self.axes)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return self._per_axis("input_size")

    @property
    def kernel_size(self) -> tuple[int, ...]:
        return self._per_axis("kernel_size")

    @property
    def stride(self) -> tuple[int, ...]:
        return self._per_axis("stride")

    @property
    def dilation(self) -> tuple[int, ...]:
        return self._per_axis("dilation")

    @property
    def dilated_kernel(self) -> tuple[int, ...]:
        return self._per_axis("dilated_kernel")

    @property
    def full_shape(self) -> tuple[int, ...]:
        return self._per_axis("full")

    @property
    def output_shape(self) -> tuple[int, ...]:
        return self._per_axis("output_size")

    @property
    def crop_begin(self) -> tuple[int, ...]:
        return self._per_axis("crop_begin")

    @property
    def crop_end(self) -> tuple[int, ...]:
        return self._per_axis("crop_end")

    @property
    def empty(self) -> bool:
        """True when some axis keeps no element (the framework returns an empty array)."""
        return any(ax.output_size == 0 for ax in self.axes)

    @property
    def wrap(self) -> bool:
        return any(ax.wrap for ax in self.axes)

    def same_window(self, other: "Geometry") -> bool:
        """True when both compute the same values: same sizes, same kept windows."""
        return tuple(self.axes) == tuple(other.axes)

    def __repr__(self) -> str:
        dims = "x".join(map(str, self.input_shape)) + " -> " + "x".join(map(str, self.output_shape))
        return (
            f"Geometry({self.framework}: {dims}, k={self.kernel_size}, s={self.stride}, "
            f"d={self.dilation}, crop_begin={self.crop_begin}, crop_end={self.crop_end}"
            + (", wrap" if self.wrap else "")
            + ")"
        )
