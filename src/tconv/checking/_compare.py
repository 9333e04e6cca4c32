"""Compare two checks of the same network (a model and its conversion) layer by layer.

The layers that change sizes (convolutions, transposed convolutions, pooling,
upsampling) are paired in the order they ran; each pair is compared on its
spatial output size and, for transposed convolutions, on the kept window of
the full output (``full[b:e] of N``, which every framework's row gives the
same way). The first pair that differs is named: a pixel lost (sizes differ)
or shifted (same size, window moved).

>>> from tconv.checking._report import Layer, Report
>>> a = Report("a", "pytorch", (1, 1, 4), (Layer("up", "ConvTranspose1d", (1, 1, 4), (1, 1, 8), "full[1:9] of 9"),))
>>> b = Report("b", "keras", (1, 4, 1), (Layer("up", "Conv1DTranspose", (1, 4, 1), (1, 8, 1), "full[0:8] of 9"),))
>>> print(compare(a, b).first_difference)
layer 1: up (ConvTranspose1d) keeps full[1:9] of 9, up (Conv1DTranspose) keeps full[0:8] of 9: the same size, shifted by 1 on axis 0
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from ._report import Layer, Report

__all__ = ["Comparison", "compare"]

_WINDOW = re.compile(r"full\[(-?\d+):(-?\d+)\] of (\d+)")


def category(op: str) -> str | None:
    """What a row's op does to sizes: ``convT``, ``conv``, ``pool``, ``up``, or None (joins, pads, others)."""
    low = op.lower()
    if "transpose" in low:
        return "convT"
    if low.startswith(("conv", "f.conv")):
        return "conv"
    if "pool" in low and "global" not in low and "adaptive" not in low:
        return "pool"
    if low.startswith(("upsampl", "interpolate", "resize")):
        return "up"
    return None


def spatial(report: Report, shape: tuple | None) -> tuple:
    if shape is None:
        return ()
    return tuple(shape[1:-1]) if report.framework == "keras" else tuple(shape[2:])


@dataclass(frozen=True)
class Comparison:
    """Two reports side by side: ``pairs`` (source row, converted row, verdict) and the first difference."""

    source: Report
    converted: Report
    pairs: tuple = ()
    first_difference: str | None = None
    notes: tuple = field(default=())

    @property
    def same(self) -> bool:
        return self.first_difference is None

    def __str__(self) -> str:
        head = (f"{self.source.model} ({self.source.framework}) vs {self.converted.model} ({self.converted.framework}): "
                + ("the same sizes and windows" if self.same else f"first difference at {self.first_difference}"))
        lines = [head, *self.notes]
        for a, b, verdict in self.pairs:
            lines.append(f"  {a.name:<20} {a.op:<18} {a.window or '-':<36} | {b.name:<20} {b.op:<18} "
                         f"{b.window or '-':<36} {verdict}".rstrip())
        return "\n".join(lines)

    def __rich__(self) -> object:
        from rich.text import Text

        return Text(str(self), style="green" if self.same else None)

    def _repr_html_(self) -> str:
        import html

        return f"<pre>{html.escape(str(self))}</pre>"

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps({"same": self.same, "first_difference": self.first_difference, "notes": list(self.notes),
                           "pairs": [{"source": a.to_dict(), "converted": b.to_dict(), "verdict": v}
                                     for a, b, v in self.pairs]}, indent=indent)


def _verdict(ra: Report, a: Layer, rb: Report, b: Layer) -> str:
    sa, sb = spatial(ra, a.output_shape), spatial(rb, b.output_shape)
    if category(a.op) != category(b.op):
        return f"different ops ({a.op} vs {b.op})"
    if sa != sb:
        lost = [x - y for x, y in zip(sa, sb)]
        return "sizes differ: " + "x".join(map(str, sa)) + " vs " + "x".join(map(str, sb)) + \
            f" ({', '.join(f'{d:+d}' for d in lost)} on each axis)"
    wa, wb = _WINDOW.findall(a.window), _WINDOW.findall(b.window)
    if wa and wb and wa != wb:
        shifts = [(n, int(y[0]) - int(x[0])) for n, (x, y) in enumerate(zip(wa, wb)) if x != y]
        return "the same size, shifted by " + ", ".join(f"{-s} on axis {n}" for n, s in shifts)
    return ""


def compare(source: Report, converted: Report) -> Comparison:
    """Pair the size-changing rows of two reports and name the first one where a pixel was lost or shifted."""
    rows_a = [r for r in source.layers if category(r.op)]
    rows_b = [r for r in converted.layers if category(r.op)]
    notes = []
    if len(rows_a) != len(rows_b):
        notes.append(f"{len(rows_a)} size-changing layers in the source, {len(rows_b)} in the conversion: "
                     "the pairs after the shorter list ends are not compared")
    pairs, first = [], None
    for n, (a, b) in enumerate(zip(rows_a, rows_b), 1):
        verdict = _verdict(source, a, converted, b)
        pairs.append((a, b, verdict))
        if verdict and first is None:
            first = f"layer {n}: {a.name} ({a.op}) keeps {a.window or '-'}, {b.name} ({b.op}) keeps {b.window or '-'}: {verdict}"
    if first is None and spatial(source, source.output_shape) != spatial(converted, converted.output_shape):
        first = "the outputs: " + "x".join(map(str, spatial(source, source.output_shape))) + " vs " + \
            "x".join(map(str, spatial(converted, converted.output_shape)))
    return Comparison(source, converted, tuple(pairs), first, tuple(notes))
