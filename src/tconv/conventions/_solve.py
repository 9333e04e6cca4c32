"""What a convention tells :func:`tconv.solve`: the arguments worth trying on one axis.

Each convention's :attr:`~tconv.conventions.Convention.solve_family` is a
:class:`Family`. For one spatial axis it only *proposes* arguments, using the
uncropped size as a hint; :func:`tconv._solve_axes.axis_answers` keeps a
proposal only if the convention accepts it and it yields the wanted size, so a
family may propose too much but must not miss an idiomatic spelling.
"""
from __future__ import annotations

from typing import Any, ClassVar, Iterable, Iterator, Sequence

from ..geometry import AxisGeometry, dilated_kernel_size, full_size

__all__ = ["Family", "collapse", "symmetric_crops", "windows"]


def collapse(values: Iterable[Any]) -> Any:
    """One value when all are equal, else the tuple: how a practitioner writes per-axis arguments.

    >>> collapse([2, 2]), collapse((1, 2))
    (2, (1, 2))
    """
    values = tuple(values)
    return values[0] if len(set(values)) == 1 else values


def symmetric_crops(i: int, k: int, s: int, d: int, out: int, output_paddings: int) -> Iterator[tuple[int, int]]:
    """The ``(padding, output_padding)`` pairs that leave ``out`` elements, ``output_padding`` in ``range(output_paddings)``.

    For the frameworks that crop ``padding`` from both ends of the uncropped output
    and give ``output_padding`` back at the end (PyTorch, MXNet; Caffe has no output padding).

    >>> list(symmetric_crops(4, 3, 2, 1, 8, 2))  # the uncropped output has 9
    [(1, 1)]
    """
    full = full_size(i, k, s, d)
    for op in range(output_paddings):
        removed = full + op - out  # both ends lose `padding`
        if removed >= 0 and removed % 2 == 0:
            yield removed // 2, op


def windows(i: int, k: int, s: int, d: int, out: int) -> Iterator[AxisGeometry]:
    """The sensible windows of ``out`` elements for an explicit-padding framework, one per kept window.

    Each end may crop at most ``K-1`` (more would drop whole kernel footprints, as no
    'same'/'valid' mode does) and add at most ``stride-1`` zeros (as output_padding
    can): ``-(s-1) <= crop <= K-1`` on both sides. This also bounds the search.

    >>> [ax.kept for ax in windows(4, 3, 2, 1, 8)]  # 8 of the uncropped 9, one zero added at either end at most
    [(-1, 7), (0, 8), (1, 9), (2, 10)]
    """
    full = full_size(i, k, s, d)
    low, high = -(s - 1), dilated_kernel_size(k, d) - 1
    surplus = full - out
    for begin in range(max(low, surplus - high), min(high, surplus - low) + 1):
        yield AxisGeometry(i, k, s, d, begin, surplus - begin)


class Family:
    """One framework's candidate arguments for :func:`tconv.solve`, one axis at a time.

    A candidate is ``(mode, values)``: ``mode`` is what must agree across the
    axes of one layer (a padding string, whether output_padding is given),
    ``values`` the per-axis numbers. :meth:`assemble` turns one mode and every
    axis's values into the framework's arguments; :meth:`rank` orders a
    framework's spellings, its idiomatic one first.
    """

    #: arguments the framework requires besides the stride: every solution carries them,
    #: so they say nothing about how simple a solution is
    required: ClassVar[tuple[str, ...]] = ()
    #: whether the framework's transposed convolution takes a dilation at all
    takes_dilation: ClassVar[bool] = True

    def options(self, i: int, k: int, s: int, d: int, o: int, ndim: int) -> Iterable[tuple[tuple, dict]]:
        """The candidates ``(mode, values)`` for one axis: input ``i``, kernel ``k``, stride ``s``,
        dilation ``d``, wanted output ``o``, in a layer of ``ndim`` axes."""
        raise NotImplementedError

    def assemble(self, mode: tuple, values: list[dict], strides: tuple, dilations: tuple, outputs: tuple) -> dict:
        """The framework's arguments for ``mode`` with each axis's ``values``."""
        raise NotImplementedError

    def rank(self, mode: tuple) -> int:
        """0 for the framework's idiomatic spelling, higher for the others."""
        return 0

    def check_ndim(self, mode: tuple) -> int:
        """How many axes the convention needs to check one axis of this mode (repeated)."""
        return 1

    def invert_alternatives(self, args: dict, output_shape: Sequence[int]) -> list[dict]:
        """Other spellings of ``args`` that :func:`tconv.invert` offers, naming ``output_shape``
        where the framework can (solve lists none of them: they fix the size, not the window)."""
        return []
