"""The phase (sub-pixel) view: the output as ``s^d`` small stride-1 convolutions, interleaved.

Kept output ``o = q*s + r`` only ever meets the taps ``t`` with
``r + crop_begin - t*d`` a multiple of ``s``
(:meth:`~tconv.geometry.AxisGeometry.output_phases`), each from input
``q + offset``. So phase ``r`` is a stride-1 correlation of the *undilated*
input with a sub-kernel of those taps, and no zero is ever inserted: this is
how backends compute a transposed convolution without growing the input.
Every phase, tap and offset comes from the geometry; this module only lays
them out as frames.
"""
from __future__ import annotations

from itertools import product

import numpy as np

from ..errors import ConfigError
from ..geometry import AxisGeometry, Geometry
from . import _scene as sc


def _axis_phases(ax: AxisGeometry) -> list[tuple[int, int, list[tuple[int, int]]]]:
    """``(r, count, [(tap, offset)])`` per output phase, from the geometry."""
    return ax.output_phases()


def sub_kernel(taps: list[tuple[int, int]]) -> tuple[int, list[tuple[int, int]]]:
    """Lay a phase's taps out as a stride-1 correlation kernel over the input.

    Returns ``(first offset, [(position, tap)])``: the tap at ``position`` of
    the sub-kernel meets input ``q + first + position``.

    >>> sub_kernel([(0, 0), (2, -1)])
    (-1, [(1, 0), (0, 2)])
    """
    if not taps:
        return 0, []
    first = min(off for _, off in taps)
    return first, [(off - first, t) for t, off in taps]


def phase_values(x2: np.ndarray, w2: np.ndarray, ar: AxisGeometry, ac: AxisGeometry) -> np.ndarray:
    """The kept output computed phase by phase: one small correlation each, then interleaved."""
    out = np.zeros((ar.output_size, ac.output_size), dtype=np.int64)
    for (rr, nr, tr), (rc, nc, tc) in product(_axis_phases(ar), _axis_phases(ac)):
        for qr, qc in np.ndindex(nr, nc):
            total = 0
            for (t1, o1), (t2, o2) in product(tr, tc):
                j1, j2 = qr + o1, qc + o2
                if 0 <= j1 < ar.input_size and 0 <= j2 < ac.input_size:
                    total += int(x2[j1, j2]) * int(w2[t1, t2])
            out[qr * ar.stride + rr, qc * ac.stride + rc] = total
    return out


def _tap_name(t1: int, t2: int, one_d: bool) -> str:
    return f"w[{t2}]" if one_d else f"w[{t1},{t2}]"


def _sub_kernel_panel(tr, tc, w2, one_d: bool, label: str) -> sc.Panel:
    (_, pos1), (_, pos2) = sub_kernel(tr), sub_kernel(tc)
    rows = 1 + max((p for p, _ in pos1), default=-1)
    cols = 1 + max((p for p, _ in pos2), default=-1)
    shape = (max(rows, 1), max(cols, 1))
    kinds = np.full(shape, sc.ZERO, dtype=np.int8)
    text = np.full(shape, "0", dtype=object)
    for (p1, t1), (p2, t2) in product(pos1, pos2):
        kinds[p1, p2] = sc.KERNEL
        text[p1, p2] = str(w2[t1, t2]) if w2 is not None else _tap_name(t1, t2, one_d)
    if not pos1 or not pos2:
        text[:] = ""
        kinds[:] = sc.EMPTY
    return sc.Panel(f"its taps {label}", kinds, text, one_d=one_d)


def phase_frames(geom: Geometry, x: np.ndarray | None, w: np.ndarray | None) -> list[sc.Frame]:
    """Frames: the phase map, one frame per phase (its taps, its small correlation), the interleaving."""
    if geom.wrap:
        raise ConfigError("the phase view splits a cropped output; a circular (wrapping) layer folds it, so use view='scatter'")
    (ar, ac), one_d = sc.as_2d(geom)
    numbers = x is not None
    x2 = x.reshape(ar.input_size, ac.input_size) if x is not None else np.ones((ar.input_size, ac.input_size), dtype=np.int64)
    w2 = w.reshape(ar.kernel_size, ac.kernel_size) if w is not None else np.ones((ar.kernel_size, ac.kernel_size), dtype=np.int64)
    label = sc.layer_label(geom)
    out_shape = (ar.output_size, ac.output_size)
    full_out = phase_values(x2, w2, ar, ac)
    phases_r, phases_c = _axis_phases(ar), _axis_phases(ac)
    n_phases = len(phases_r) * len(phases_c)
    stride_words = str(ac.stride) if one_d else f"{ar.stride}x{ac.stride}"

    def phase_label(rr: int, rc: int) -> str:
        return f"r={rc}" if one_d else f"({rr},{rc})"

    # Frame 1: which phase each output cell belongs to.
    kinds = np.full(out_shape, sc.OUT, dtype=np.int8)
    text = np.full(out_shape, "", dtype=object)
    for o1, o2 in np.ndindex(*out_shape):
        text[o1, o2] = str(o2 % ac.stride) if one_d else f"{o1 % ar.stride},{o2 % ac.stride}"
    first = sc.Panel(f"output {sc.fmt_shape(geom.output_shape)}: phase of each cell (index mod {stride_words})",
                     kinds, text, one_d=one_d)
    frames = [sc.Frame(
        f"the output splits into {n_phases} phase{'s' if n_phases != 1 else ''} (index mod the stride {stride_words}); "
        "each is a stride-1 convolution of the input, no zeros inserted",
        [_input_panel(x2, one_d, numbers), first], [label])]

    done = np.zeros(out_shape, dtype=bool)
    groups = [[(a, b)] for a, b in product(phases_r, phases_c)]
    if len(groups) > sc.MAX_CELL_FRAMES:  # many phases: one row phase per frame
        groups = [[(a, b) for b in phases_c] for a in phases_r]
    for group in groups:
        panels: list = [_input_panel(x2, one_d, numbers)]
        words = []
        boxes = []
        for (rr, nr, tr), (rc, nc, tc) in group:
            name = phase_label(rr, rc)
            cells = [(qr * ar.stride + rr, qc * ac.stride + rc) for qr, qc in np.ndindex(nr, nc)]
            for cell in cells:
                done[cell] = True
                boxes.append(sc.Box(cell[0], cell[1], cell[0] + 1, cell[1] + 1, "current"))
            n_taps = len(tr) * len(tc)
            if n_taps == 0:
                words.append(f"phase {name}: no tap reaches it (stride larger than the kernel): zeros")
                continue
            taps = ", ".join(_tap_name(t1, t2, one_d) for t1, _ in tr for t2, _ in tc)
            (f1, _), (f2, _) = sub_kernel(tr), sub_kernel(tc)
            start = f"x[q{f2:+d}]" if one_d else f"x[q1{f1:+d}, q2{f2:+d}]"
            words.append(f"phase {name}: {n_taps} tap{'s' if n_taps != 1 else ''} ({taps}), "
                         f"a stride-1 correlation starting at {start}, {sc.fmt_shape((nc,) if one_d else (nr, nc))} values")
            if len(group) == 1:
                panels.append(_sub_kernel_panel(tr, tc, w2 if numbers else None, one_d, name))
                small = np.zeros((nr, nc), dtype=np.int64)
                for qr, qc in np.ndindex(nr, nc):
                    small[qr, qc] = full_out[qr * ar.stride + rr, qc * ac.stride + rc]
                kinds_small = np.full((nr, nc), sc.DONE, dtype=np.int8)
                text_small = np.vectorize(str, otypes=[object])(small) if numbers else None
                panels.append(sc.Panel(f"phase {name}: {sc.fmt_shape((nc,) if one_d else (nr, nc))}", kinds_small,
                                       text_small, one_d=one_d))
        out_kinds = np.where(done, sc.DONE, sc.OUT).astype(np.int8)
        out_text = np.where(done, np.vectorize(str, otypes=[object])(full_out), "").astype(object) if numbers else None
        (rr0, _, _), (rc0, _, _) = group[0]
        where = (f"[{rc0}::{ac.stride}]" if one_d else f"[{rr0}::{ar.stride}, {rc0}::{ac.stride}]") if len(group) == 1 else ""
        out_panel = sc.Panel(f"output {sc.fmt_shape(geom.output_shape)}{where}",
                             out_kinds, out_text, boxes=boxes, one_d=one_d)
        panels.append(out_panel)
        frames.append(sc.Frame(words[0] if len(words) == 1 else "; ".join(words), panels, [label]))

    final_text = np.vectorize(str, otypes=[object])(full_out) if numbers else None
    final = sc.Panel(f"output {sc.fmt_shape(geom.output_shape)}", np.full(out_shape, sc.DONE, dtype=np.int8), final_text,
                     one_d=one_d)
    frames.append(sc.Frame(
        f"interleave: out[q*s + r] = phase r[q]; output {sc.fmt_shape(geom.output_shape)} complete",
        [_input_panel(x2, one_d, numbers), final], [label]))
    frames[-1].out_values = full_out  # type: ignore[attr-defined]
    return frames


def _input_panel(x2: np.ndarray, one_d: bool, numbers: bool) -> sc.Panel:
    kinds = np.full(x2.shape, sc.INPUT, dtype=np.int8)
    text = np.vectorize(str, otypes=[object])(x2) if numbers else np.full(x2.shape, "", dtype=object)
    return sc.Panel(f"input {sc.fmt_shape(x2.shape[1:] if one_d else x2.shape)} (not dilated)", kinds, text, one_d=one_d)
