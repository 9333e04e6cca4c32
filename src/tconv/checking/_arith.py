"""The size arithmetic of a traced model, one spatial axis at a time.

A trace leaves a graph of :class:`Node` s: the input, every layer that changes
a size (its per-axis size map built from tconv's conventions, never re-derived
here), every join (cat, add) whose operands must agree, and the size-setting
operations (``interpolate(size=...)``, ``output_size=``, a pad feeding a join)
that adapt to whatever they are joined with. Evaluating that graph for every
input size ``n`` of one axis says which sizes the model accepts, and
:func:`rule` writes the accepted set as a rule ("multiples of 32 from 32").

>>> x = Node(0, "", "input", (1, 1, 8), kind="input")
>>> down = Node(1, "down", "pool s2", (1, 1, 4), [x], maps=(lambda n: n // 2,))
>>> up = Node(2, "up", "up x2", (1, 1, 8), [down], maps=(lambda n: 2 * n,))
>>> join = Node(3, "cat", "cat", (1, 2, 8), [up, x], kind="join", join_axes=(0,))
>>> accepted([x, down, up, join], 0, 40)
[2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30, 32, 34, 36, 38, 40]
>>> rule(accepted([x, down, up, join], 0, 40), 40)
'multiples of 2 from 2'
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

from ..errors import ConfigError

__all__ = ["Node", "accepted", "rule", "chain_text", "nearest"]

ADAPT = "adapt"  # a size set from a partner's: whatever it is joined with


@dataclass(eq=False)
class Node:
    """One traced tensor: where it came from and, per spatial axis, how its size follows from its parent's.

    ``kind``: ``input``; ``map`` (``maps[axis](parent size)``, raising ConfigError or
    returning < 1 where the layer refuses the size); ``adapt`` (takes its join
    partner's size); ``const`` (a fixed size, e.g. adaptive pooling); ``join``
    (all operands must agree; the size is theirs); ``same`` (the parent's size);
    ``unknown`` (a size change tconv cannot follow: no rule).
    """

    id: int
    name: str
    label: str
    shape: tuple
    parents: list = field(default_factory=list)
    kind: str = "map"
    maps: Sequence[Callable[[int], int]] | None = None
    join_axes: tuple = ()  # for a join: the spatial axes its operands must agree on

    @property
    def spatial(self) -> tuple:
        return tuple(self.shape[2:])


class NotDerivable(Exception):
    """The graph holds a size change tconv cannot follow."""


def _values(nodes: Sequence[Node], axis: int, n: int, memo: dict) -> dict | None:
    """Each node's size on ``axis`` for input size ``n``; None when a layer refuses it or a join disagrees."""
    values: dict[int, object] = {}
    for node in nodes:
        if node.kind == "input":
            values[node.id] = n
            continue
        if node.kind == "unknown" or (node.kind in ("map", "pad") and node.maps is None):
            raise NotDerivable(f"{node.label} at {node.name or 'the top level'} changes the size in a way tconv does not follow")
        if node.kind == "const":
            values[node.id] = node.spatial[axis]
            continue
        inputs = [values.get(p.id) for p in node.parents]
        if any(v is None for v in inputs):
            return None
        if node.kind == "join":
            if axis in node.join_axes:
                concrete = {v for v in inputs if v != ADAPT}
                if len(concrete) > 1:
                    return None
                values[node.id] = concrete.pop() if concrete else ADAPT
            else:
                values[node.id] = inputs[0]
            continue
        parent = inputs[0]
        if node.kind == "adapt":
            values[node.id] = ADAPT
        elif node.kind == "same" or parent == ADAPT:
            values[node.id] = parent
        else:
            key = (node.id, parent)
            if key not in memo:
                try:
                    size = node.maps[axis](parent)  # type: ignore[index]
                except (ConfigError, ValueError, ZeroDivisionError, OverflowError):
                    size = None
                memo[key] = size if size is not None and size >= 1 else None
            if memo[key] is None:
                return None
            values[node.id] = memo[key]
    return values


def accepted(nodes: Sequence[Node], axis: int, limit: int) -> list[int]:
    """The input sizes ``1..limit`` on ``axis`` that every layer accepts and every join agrees on."""
    memo: dict = {}
    return [n for n in range(1, limit + 1) if _values(nodes, axis, n, memo) is not None]


def consistent(nodes: Sequence[Node], axis: int, n: int) -> bool:
    """True when the arithmetic reproduces every traced size at the traced input size ``n``."""
    values = _values_loose(nodes, axis, n)
    return all(values.get(node.id) in (node.spatial[axis], ADAPT, None) for node in nodes
               if node.kind != "join" and len(node.spatial) > axis)


def _values_loose(nodes: Sequence[Node], axis: int, n: int) -> dict:
    # as _values, but a disagreeing join goes on with its first operand (the trace did the same)
    values: dict[int, object] = {}
    for node in nodes:
        if node.kind == "input":
            values[node.id] = n
        elif node.kind == "const":
            values[node.id] = node.spatial[axis]
        elif node.kind == "join":
            values[node.id] = node.spatial[axis] if len(node.spatial) > axis else None
        elif node.kind == "adapt":
            values[node.id] = ADAPT
        else:
            parent = values.get(node.parents[0].id) if node.parents else None
            if parent is None or parent == ADAPT or node.kind == "same" or node.maps is None:
                values[node.id] = parent
            else:
                try:
                    values[node.id] = node.maps[axis](parent)  # type: ignore[index]
                except (ConfigError, ValueError):
                    values[node.id] = None
    return values


def _periodic(ok: set, start: int, period: int, limit: int) -> bool:
    return all((n in ok) == (n + period in ok) for n in range(start, limit - period + 1))


def rule(sizes: Sequence[int], limit: int) -> str:
    """The accepted sizes ``sizes`` (of ``1..limit``) as a rule: the shortest period that holds from some start.

    >>> rule([32, 64, 96, 128], 140)
    'multiples of 32 from 32'
    >>> rule(list(range(3, 51)), 50)
    'any size from 3'
    >>> rule([2, 5, 8, 11, 14, 17, 20, 23], 24)
    '3k+2 from 2'
    >>> rule([], 10)
    'none up to 10'
    """
    ok = set(sizes)
    if not ok:
        return f"none up to {limit}"
    for period in range(1, limit // 4 + 1):
        # the smallest start from which the pattern repeats up to the limit, over at least half of it
        start = next((s for s in range(1, limit // 2 + 1) if _periodic(ok, s, period, limit)), None)
        if start is None:
            continue
        tail = [n for n in sorted(ok) if n >= start]
        if not tail:
            return f"none from {start}" + (f" (only {', '.join(map(str, sorted(ok)))})" if ok else "")
        first = tail[0]
        residues = sorted({n % period for n in tail})
        if period == 1:
            text = f"any size from {first}"
        elif residues == [0]:
            text = f"multiples of {period} from {first}"
        elif len(residues) == 1:
            text = f"{period}k+{residues[0]} from {first}"
        else:
            text = f"n mod {period} in {{{', '.join(map(str, residues))}}} from {first}"
        extra = [n for n in sorted(ok) if n < start]
        return text + (f" (also {', '.join(map(str, extra))})" if extra else "")
    return "only " + ", ".join(map(str, sorted(ok)))


def nearest(sizes: Sequence[int], n: int) -> tuple[int | None, int | None]:
    """The accepted sizes nearest ``n``: (the largest <= n, the smallest >= n).

    >>> nearest([32, 64, 96], 70)
    (64, 96)
    """
    below = [s for s in sizes if s <= n]
    above = [s for s in sizes if s >= n]
    return (below[-1] if below else None), (above[0] if above else None)


def path(node: Node) -> list[Node]:
    """The nodes from the input to ``node``, following each node's first parent."""
    out = [node]
    while out[-1].parents:
        out.append(out[-1].parents[0])
    return out[::-1]


def _steps(nodes: Sequence[Node], axis: int) -> list[tuple[str, int, str]]:
    steps, last = [], None
    for node in nodes:
        if len(node.spatial) <= axis:
            continue
        size = node.spatial[axis]
        if last is None or size != last:
            steps.append((node.label, size, node.name))
            last = size
    return steps


def _compress(steps: list, keep_head: int = 1, keep_tail: int = 2) -> str:
    parts = [str(steps[0][1])]
    body = steps[1:]
    if len(body) > keep_head + keep_tail + 1:
        body = body[:keep_head] + [None] + body[-keep_tail:]
    for step in body:
        parts.append("..." if step is None else f"{step[0]} -> {step[1]}")
    return " -> ".join(parts)


def chain_text(reference: Node, other: Node, axis: int) -> str:
    """Where the two operands of a join diverged on ``axis``, as arithmetic.

    The reference's path from the input to where the other's path leaves it,
    then the other's steps after that, e.g.
    ``525 -> conv s2 -> 263 -> ... -> 33; pool s2 -> 16 -> ... -> up x2 -> 32 != 33``.
    """
    ref_path, other_path = path(reference), path(other)
    common = 0
    while common < min(len(ref_path), len(other_path)) and ref_path[common] is other_path[common]:
        common += 1
    shared = _steps(ref_path, axis)
    tail = _steps(other_path[common - 1:], axis) if common else _steps(other_path, axis)
    branch = tail[1:] if tail else []
    text = _compress(shared, 1, 2)
    if branch:
        text += "; " + " -> ".join(
            f"{label} -> {size}" for label, size, _ in (branch if len(branch) <= 4 else branch[:1] + [("...", "", "")] + branch[-2:])
        ).replace("... -> ", "... ")
    return text + f" != {reference.spatial[axis]}"
