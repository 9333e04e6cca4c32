"""From a PyTorch trace to a report: the problems as arithmetic, the fixes (each traced again), the rules."""
from __future__ import annotations

from typing import Any

from ..api import geometry as _geometry
from ..errors import ConfigError
from . import _arith
from ._arith import NotDerivable
from ._report import Fix, Problem, Report
from ._torch import Trace, trace

_AXES = {1: ("L",), 2: ("H", "W"), 3: ("D", "H", "W")}


def axis_names(ndim: int) -> tuple:
    return _AXES.get(ndim, tuple(f"axis{n}" for n in range(ndim)))


def rules(t: Trace, input_shape: tuple) -> tuple[dict, dict]:
    """(axis name -> rule text, axis index -> accepted sizes) from the traced arithmetic."""
    spatial = tuple(input_shape[2:])
    texts: dict = {}
    sizes: dict = {}
    for axis, n in enumerate(spatial):
        name = axis_names(len(spatial))[axis]
        limit = max(2 * n, 512) + 64
        try:
            if not _arith.consistent(t.nodes, axis, n):
                texts[name] = "not derived: the arithmetic does not reproduce the traced sizes"
                continue
            ok = _arith.accepted(t.nodes, axis, limit)
        except NotDerivable as err:
            texts[name] = f"not derived: {err}"
            continue
        if t.errors:  # the layers after the error are unknown: a rule from the rest would mislead
            texts[name] = "not derived: the trace stopped (see the problems)"
            continue
        texts[name] = _arith.rule(ok, limit)
        sizes[axis] = ok
    return texts, sizes


def _joined(t: Trace, key: tuple) -> bool:
    return any(m.key == key for m in t.mismatches)


def _clean(t: Trace, key: tuple | None = None) -> bool:
    """The trace ran to the end, and without a mismatch (at ``key`` only, when given)."""
    if t.errors:
        return False
    return not t.mismatches if key is None else not _joined(t, key)


def _shape(shape) -> str:
    return "x".join("N" if v is None else str(v) for v in shape)


def fixes_for(meta: Any, input_shape: tuple, t: Trace, mismatch: Any, sizes: dict) -> list[Fix]:
    found: list[Fix] = []
    spatial = list(input_shape[2:])
    # 1. the nearest input sizes that work, from the rules; traced again
    if sizes and all(a in sizes for a in range(len(spatial))):
        up, down = list(spatial), list(spatial)
        for axis, n in enumerate(spatial):
            below, above = _arith.nearest(sizes[axis], n)
            up[axis] = above if above is not None else n
            down[axis] = below if below is not None else n
        for target, verb in ((up, "pad"), (down, "crop")):
            if target == spatial:
                continue
            shape = tuple(input_shape[:2]) + tuple(target)
            if _clean(trace(meta, shape)):
                found.append(Fix("input", f"{verb} the input {_shape(spatial)} to {_shape(target)} "
                                 f"(input shape {_shape(shape)}); traced again: every join agrees", input_shape=shape))
    # 2. an argument of the layer that made the other operand's size
    ref = mismatch.operands[mismatch.reference]
    want = ref.spatial
    for n, node in enumerate(mismatch.operands):
        if n == mismatch.reference:
            continue
        producer = _producer(node, mismatch.axes)
        if producer is None:
            continue
        row = next((r for r in t.layers if r.name == producer.name and r.op.startswith("ConvTranspose")), None)
        if row is None:
            continue
        ndim = len(want)
        args = {k: v for k, v in row.args.items() if k in ("stride", "padding", "output_padding", "dilation", "groups")}
        try:
            g = _geometry(tuple(row.input_shape[-ndim:]), row.args["kernel_size"], "pytorch", **args, output_size=list(want))
        except ConfigError:
            continue
        output_padding = tuple(g.args["output_padding"])
        fixed = trace(meta, input_shape, overrides={producer.name: {"output_padding": output_padding}})
        if not _joined(fixed, mismatch.key) and not fixed.errors:
            found.append(Fix("argument", f"output_padding={output_padding} on {producer.name} "
                             f"(it gives {_shape(want)}); traced again: {mismatch.name}'s {mismatch.op} agrees",
                             layer=producer.name, args={"output_padding": output_padding}))
        fixed = trace(meta, input_shape, overrides={producer.name: {"output_size": list(want)}})
        if not _joined(fixed, mismatch.key) and not fixed.errors:
            found.append(Fix("argument", f"call {producer.name} with output_size=skip.shape[2:] ({_shape(want)}); "
                             f"traced again: the {mismatch.op} agrees", layer=producer.name,
                             args={"output_size": tuple(want)}))
    # 3. interpolate the other operand to the reference's size before the join
    resized = trace(meta, input_shape, resize={mismatch.key})
    if not resized.errors:
        found.append(Fix("interpolate", f"interpolate to the skip's size before the {mismatch.op} at "
                         f"{mismatch.name or 'the top level'}: x = F.interpolate(x, size=skip.shape[2:]) "
                         f"({_shape(want)}); traced again: the rest of the model runs",
                         layer=mismatch.name, args={"size": tuple(want)}))
    return found


def _producer(node: Any, axes: tuple) -> Any:
    """The last node on ``node``'s path that changed a size on one of ``axes``."""
    path = _arith.path(node)
    for child, parent in zip(reversed(path), reversed(path[:-1])):
        if any(a < len(child.spatial) and a < len(parent.spatial) and child.spatial[a] != parent.spatial[a] for a in axes):
            return child
    return None


def message(mismatch: Any, ndim: int) -> str:
    ref = mismatch.operands[mismatch.reference]
    others = [n for i, n in enumerate(mismatch.operands) if i != mismatch.reference]
    names = axis_names(ndim)
    parts = []
    for axis in mismatch.axes:
        for other in others:
            if other.spatial[axis] != ref.spatial[axis]:
                parts.append(f"{names[axis]}: {_arith.chain_text(ref, other, axis)}")
    where = mismatch.name or "the top level"
    shapes = " vs ".join(map(_shape, mismatch.shapes))
    other_names = ", ".join(sorted({o.name or "the input" for o in others}))
    return (f"{mismatch.op} at {where} gets {shapes}: "
            + "; ".join(parts) + f" at {other_names} + skip from {ref.name or 'the input'}")


def report(meta: Any, input_shape: tuple, label: str) -> Report:
    t = trace(meta, input_shape)
    texts, sizes = rules(t, input_shape)
    problems = []
    ndim = len(input_shape) - 2
    for mismatch in t.mismatches:
        fixes = fixes_for(meta, input_shape, t, mismatch, sizes) if not t.errors else []
        problems.append(Problem(message(mismatch, ndim), mismatch.name, tuple(fixes)))
    for error in t.errors:
        problems.append(Problem(error))
    return Report(label, "pytorch", tuple(input_shape), tuple(t.layers), tuple(problems), texts, t.output_shape)
