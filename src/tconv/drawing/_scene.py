"""What a picture shows, as plain data: frames of panels of cells. No drawing library here.

Every view (zero insertion, scatter, overlap, numbers, compare) is built as a
list of :class:`Frame` objects; the matplotlib and Rich renderers only draw
them. Sizes and windows all come from the :class:`~tconv.geometry.Geometry`.
One-dimensional layers are drawn as a single row.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from itertools import product
from typing import Sequence

import numpy as np

from .. import conventions
from ..errors import ConfigError
from ..geometry import AxisGeometry, Geometry

# Cell kinds: what a cell is, which decides its colour and its legend entry.
EMPTY, INPUT, ZERO, PAD, SLICED, KERNEL, OUT, DONE, CROP, EXTEND, COUNT = range(11)
KIND_NAMES = {
    INPUT: "input element",
    ZERO: "inserted zero (s-1 between inputs)",
    PAD: "border zeros (K-1-crop)",
    SLICED: "sliced off (negative border)",
    KERNEL: "kernel tap",
    OUT: "output, not computed yet",
    DONE: "output value (sum of the stamps)",
    CROP: "cropped by the padding rule",
    EXTEND: "added zeros (negative crop)",
    COUNT: "kernel taps reaching the cell",
}

#: Above these sizes a layer is summarised (sizes and windows, no cells).
MAX_AXIS_CELLS = 40
MAX_CELLS = 1600
#: Above this many steps, animations advance one row per frame.
MAX_CELL_FRAMES = 30

VIEWS = ("scatter", "zero-insertion", "phase", "resize", "overlap", "compare")
VIEW_ALIASES = {
    "scatter": "scatter", "stamp": "scatter",
    "zero-insertion": "zero-insertion", "zero_insertion": "zero-insertion", "zeros": "zero-insertion",
    "conv": "zero-insertion", "sliding": "zero-insertion",
    "phase": "phase", "phases": "phase", "sub-pixel": "phase", "subpixel": "phase",
    "resize": "resize", "upsampling": "resize", "resize-conv": "resize", "resize-convolution": "resize",
    "overlap": "overlap", "checkerboard": "overlap",
    "compare": "compare", "side-by-side": "compare",
}


@dataclass
class Box:
    """A rectangle over cells ``[r0, r1) x [c0, c1)`` of a panel."""

    r0: int
    c0: int
    r1: int
    c1: int
    style: str  # "kept", "current", "window"
    label: str = ""


@dataclass
class Panel:
    """One grid of cells with a title; ``origin`` is the index of the top-left cell."""

    title: str
    kinds: np.ndarray
    text: np.ndarray | None = None
    heat: np.ndarray | None = None
    boxes: list[Box] = field(default_factory=list)
    origin: tuple[int, int] = (0, 0)
    notes: list[str] = field(default_factory=list)
    one_d: bool = False
    heat_max: float | None = None  # fixed colour scale, so an animation's colours do not shift

    @property
    def shape(self) -> tuple[int, int]:
        return self.kinds.shape


@dataclass
class Summary:
    """A layer too large to draw cell by cell: its sizes and kept window."""

    title: str
    geometry: Geometry
    lines: list[str]


@dataclass
class Frame:
    """One picture: the step it shows (``title``) and its panels side by side."""

    title: str
    panels: list
    caption: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- helpers
def as_2d(geom: Geometry) -> tuple[tuple[AxisGeometry, AxisGeometry], bool]:
    """The geometry's axes as (rows, cols); a 1-D layer gets a trivial row axis."""
    if geom.ndim == 1:
        return (AxisGeometry(1, 1, 1, 1, 0, 0), geom[0]), True
    if geom.ndim == 2:
        return (geom[0], geom[1]), False
    raise ConfigError(
        f"tconv.draw draws 1-D and 2-D layers; this one has {geom.ndim} spatial axes. "
        f"Draw a 2-D slice, e.g. the last two axes: input {geom.input_shape[-2:]}, kernel {geom.kernel_size[-2:]}"
    )


def layer_label(geom: Geometry) -> str:
    """``Keras strides=2, padding='same'``: the framework and its non-default arguments."""
    if geom.framework == "geometry":
        return "geometry"
    conv = conventions.get(geom.framework)
    parts = []
    for key, value in geom.args.items():
        default = conv.defaults.get(key)
        short = _short(value)
        if value is None or short == repr(default) or key in ("groups", "group", "num_group") and short == "1":
            continue
        parts.append(f"{key}={short}")
    return conv.title + (" " + ", ".join(parts) if parts else "")


def _short(value) -> str:
    if isinstance(value, (tuple, list)) and value and len(set(map(repr, value))) == 1 and not isinstance(value[0], (tuple, list)):
        return repr(value[0])
    return repr(value)


def fmt_shape(shape: Sequence[int]) -> str:
    return "x".join(map(str, shape))


def too_large(geom: Geometry) -> bool:
    """True when drawing cell by cell would be unreadable (and slow)."""
    (ar, ac), _ = as_2d(geom)
    axes_sizes = [ax.full for ax in (ar, ac)] + [ax.zero_inserted_size + 2 * max(ax.conv_padding) for ax in (ar, ac)]
    axes_sizes += [ax.output_size for ax in (ar, ac)]
    cells = max(ar.full * ac.full, ar.output_size * ac.output_size)
    return max(axes_sizes) > MAX_AXIS_CELLS or cells > MAX_CELLS


def default_values(shape: Sequence[int], period: int) -> np.ndarray:
    """Small positive integers, easy to add by hand: 1, 2, ..., period, 1, 2, ..."""
    n = int(np.prod(shape))
    return (np.arange(n) % period + 1).reshape(shape).astype(np.int64)


def stamp(x: np.ndarray, w: np.ndarray, axes: Sequence[AxisGeometry]) -> np.ndarray:
    """The full (uncropped) output: every input element adds ``x[j] * w`` at ``j*s``, taps ``d`` apart."""
    full = np.zeros(tuple(ax.full for ax in axes), dtype=np.result_type(x, w))
    for idx in np.ndindex(*x.shape):
        window = tuple(slice(j * ax.stride, j * ax.stride + ax.dilated_kernel, ax.dilation) for j, ax in zip(idx, axes))
        full[window] += x[idx] * w
    return full


def kept_window(full: np.ndarray, axes: Sequence[AxisGeometry]) -> np.ndarray:
    """The output: each axis's kept window of ``full`` (zeros past its ends; folded when ``wrap``)."""
    out = full
    for a, ax in enumerate(axes):
        moved = np.moveaxis(out, a, 0)
        result = np.zeros((ax.output_size,) + moved.shape[1:], dtype=full.dtype)
        for f in range(ax.full):
            o = f - ax.crop_begin
            if ax.wrap:
                o %= ax.output_size
            if 0 <= o < ax.output_size:
                result[o] += moved[f]
        out = np.moveaxis(result, 0, a)
    return out


def overlap_counts(axes: Sequence[AxisGeometry]) -> np.ndarray:
    """How many kernel taps reach each full-output cell, by stamping a kernel of ones."""
    ones_in = np.ones(tuple(ax.input_size for ax in axes), dtype=np.int64)
    ones_k = np.ones(tuple(ax.kernel_size for ax in axes), dtype=np.int64)
    return stamp(ones_in, ones_k, axes)


def crop_words(ax: AxisGeometry, name: str) -> str:
    """``rows: crop 1 at the end`` / ``cols: add 1 zero at the start`` ..."""
    parts = []
    for amount, where in ((ax.crop_begin, "start"), (ax.crop_end, "end")):
        if amount > 0:
            parts.append(f"crop {amount} at the {where}")
        elif amount < 0:
            parts.append(f"add {-amount} zero{'s' if amount < -1 else ''} at the {where}")
    body = ", ".join(parts) if parts else "nothing cropped"
    if ax.wrap:
        body = f"fold the full {ax.full} onto {ax.output_size} (circular)"
    return f"{name}: {body} -> keep {ax.kept[0]}..{ax.kept[1] - 1} of 0..{ax.full - 1}"


def crop_lines(axes: Sequence[AxisGeometry], one_d: bool) -> list[str]:
    """One line per axis, or one line when rows and cols are cropped alike."""
    ar, ac = axes
    if one_d:
        return [crop_words(ac, "length")]
    if (ar.full, ar.crop_begin, ar.crop_end, ar.wrap) == (ac.full, ac.crop_begin, ac.crop_end, ac.wrap):
        return [crop_words(ar, "rows and cols")]
    return [crop_words(ar, "rows"), crop_words(ac, "cols")]


def axis_names(one_d: bool) -> tuple[str, str]:
    return ("", "length") if one_d else ("rows", "cols")


def summary(geom: Geometry) -> Summary:
    (ar, ac), one_d = as_2d(geom)
    names = axis_names(one_d)
    axes = [(ac, names[1])] if one_d else [(ar, names[0]), (ac, names[1])]
    lines = [
        f"input {fmt_shape(geom.input_shape)}, kernel {fmt_shape(geom.kernel_size)} (dilated {fmt_shape(geom.dilated_kernel)}), "
        f"stride {fmt_shape(geom.stride)}",
        f"full output {fmt_shape(geom.full_shape)} -> output {fmt_shape(geom.output_shape)}",
    ]
    lines += crop_lines((ar, ac), one_d)
    for ax, name in axes:
        if ax.dilated_kernel + 2 * ax.stride > 100_000:
            continue  # counting by stamping would take too long; the sizes say enough
        lines.append(f"{name}: kernel taps per output phase (index mod {ax.stride}): "
                     + ", ".join(f"r={r}: {n}" for r, n in phase_counts(ax).items()))
    lines.append(f"(too large to draw cell by cell: more than {MAX_AXIS_CELLS} cells along an axis; sizes only)")
    return Summary(f"{layer_label(geom)}: {fmt_shape(geom.input_shape)} -> {fmt_shape(geom.output_shape)}", geom, lines)


# --------------------------------------------------------------------------- the full output panel
def _full_panel(geom: Geometry, title: str, values: np.ndarray | None, heat: np.ndarray | None,
                done: np.ndarray | None, show_window: bool) -> Panel:
    """The uncropped output, extended by the negative crops, with the kept window over it."""
    (ar, ac), one_d = as_2d(geom)
    # Rows/cols drawn: the full output plus the zeros a negative crop adds (wrap: the full output only).
    r_lo, r_hi = min(0, ar.crop_begin), max(ar.full, ar.full - ar.crop_end)
    c_lo, c_hi = min(0, ac.crop_begin), max(ac.full, ac.full - ac.crop_end)
    if geom.wrap:
        r_lo, r_hi, c_lo, c_hi = 0, ar.full, 0, ac.full
    shape = (r_hi - r_lo, c_hi - c_lo)
    kinds = np.full(shape, OUT, dtype=np.int8)
    text = np.full(shape, "", dtype=object)
    heat_out = np.full(shape, np.nan) if heat is not None else None
    for r, c in product(range(shape[0]), range(shape[1])):
        fr, fc = r + r_lo, c + c_lo
        inside_full = 0 <= fr < ar.full and 0 <= fc < ac.full
        kept = ar.crop_begin <= fr < ar.full - ar.crop_end and ac.crop_begin <= fc < ac.full - ac.crop_end
        if geom.wrap:
            kept = True
        if not inside_full:
            kinds[r, c] = EXTEND
            text[r, c] = "0"
            continue
        if show_window and not kept:
            kinds[r, c] = CROP
        elif done is None or done[fr, fc]:
            kinds[r, c] = DONE if heat is None else COUNT
        if values is not None and (done is None or done[fr, fc]):
            text[r, c] = str(values[fr, fc])
        if heat is not None and (done is None or done[fr, fc]):
            heat_out[r, c] = heat[fr, fc]
            text[r, c] = str(heat[fr, fc])
    panel = Panel(title, kinds, text, heat_out, origin=(r_lo, c_lo), one_d=one_d)
    if show_window:
        kr0, kr1 = (0, ar.full) if geom.wrap else ar.kept
        kc0, kc1 = (0, ac.full) if geom.wrap else ac.kept
        panel.boxes.append(Box(kr0 - r_lo, kc0 - c_lo, kr1 - r_lo, kc1 - c_lo, "kept",
                               f"kept {fmt_shape(geom.output_shape)}"))
        panel.notes = crop_lines((ar, ac), one_d)
    return panel


def _input_panel(x_shape, one_d, values, current, done) -> Panel:
    kinds = np.full(x_shape, INPUT, dtype=np.int8)
    text = np.full(x_shape, "", dtype=object)
    if values is not None:
        for idx in np.ndindex(*x_shape):
            text[idx] = str(values[idx])
    panel = Panel(f"input {fmt_shape(x_shape[1:] if one_d else x_shape)}", kinds, text, one_d=one_d)
    for r, c in current:
        panel.boxes.append(Box(r, c, r + 1, c + 1, "current"))
    return panel


def _kernel_panel(axes, one_d, w, flipped: bool) -> Panel:
    """The dilated kernel (taps ``d`` apart), optionally flipped as the correlation uses it."""
    ar, ac = axes
    shape = (ar.dilated_kernel, ac.dilated_kernel)
    kinds = np.full(shape, ZERO, dtype=np.int8)
    text = np.full(shape, "", dtype=object)
    for r, c in np.ndindex(*shape):
        rr, cc = (shape[0] - 1 - r, shape[1] - 1 - c) if flipped else (r, c)
        if rr % ar.dilation == 0 and cc % ac.dilation == 0:
            kinds[r, c] = KERNEL
            if w is not None:
                text[r, c] = str(w[rr // ar.dilation, cc // ac.dilation])
        else:
            text[r, c] = "0" if w is not None else ""
    k = fmt_shape((ac.kernel_size,) if one_d else (ar.kernel_size, ac.kernel_size))
    dil = "" if ar.dilation == ac.dilation == 1 else f", dilated to {fmt_shape((ac.dilated_kernel,) if one_d else shape)}"
    title = f"kernel {k}{dil}" + (", flipped" if flipped else "")
    return Panel(title, kinds, text, one_d=one_d)


# --------------------------------------------------------------------------- views
def scatter_frames(geom: Geometry, x: np.ndarray | None, w: np.ndarray | None) -> list[Frame]:
    """Each input element stamps the kernel into the full output; the last frame crops."""
    (ar, ac), one_d = as_2d(geom)
    axes = (ar, ac)
    numbers = x is not None
    x2 = x.reshape(ar.input_size, ac.input_size) if numbers else np.ones((ar.input_size, ac.input_size), dtype=np.int64)
    w2 = w.reshape(ar.kernel_size, ac.kernel_size) if numbers else np.ones((ar.kernel_size, ac.kernel_size), dtype=np.int64)
    label = layer_label(geom)
    cells = list(np.ndindex(ar.input_size, ac.input_size))
    groups = [[cell] for cell in cells] if len(cells) <= MAX_CELL_FRAMES else [
        [(r, c) for c in range(ac.input_size)] for r in range(ar.input_size)]
    frames = []
    full = np.zeros((ar.full, ac.full), dtype=np.int64)
    done = np.zeros((ar.full, ac.full), dtype=bool)
    kernel = _kernel_panel(axes, one_d, w2 if numbers else None, flipped=False)
    for group in groups:
        boxes = []
        words = []
        for r, c in group:
            rs = slice(r * ar.stride, r * ar.stride + ar.dilated_kernel, ar.dilation)
            cs = slice(c * ac.stride, c * ac.stride + ac.dilated_kernel, ac.dilation)
            full[rs, cs] += x2[r, c] * w2
            done[rs, cs] = True
            boxes.append(Box(r * ar.stride, c * ac.stride, r * ar.stride + ar.dilated_kernel, c * ac.stride + ac.dilated_kernel, "current"))
            where = f"x[{c}]" if one_d else f"x[{r},{c}]"
            pos = f"{c * ac.stride}" if one_d else f"{r * ar.stride},{c * ac.stride}"
            words.append(f"{where}={x2[r, c]} adds {x2[r, c]}*w at ({pos})" if numbers else f"{where} stamps the kernel at ({pos})")
        if len(group) == 1:
            title = words[0]
        else:
            row = group[0][0]
            title = f"input row {row}: each element stamps the kernel, {ac.stride} apart" + (
                f"; x[{row},:] = " + " ".join(str(v) for v in x2[row]) if numbers else "")
        out_panel = _full_panel(geom, f"full output {fmt_shape(geom.full_shape)} (uncropped)",
                                full.copy() if numbers else None, None if numbers else _counts_so_far(done, full), done.copy(), False)
        out_panel.boxes.extend(_shift(boxes, out_panel.origin))
        out_panel.heat_max = None if numbers else float(overlap_counts(axes).max())
        frames.append(Frame(title, [_input_panel(x2.shape, one_d, x2 if numbers else None, group, None), kernel, out_panel],
                            [label]))
    final = _full_panel(geom, f"full {fmt_shape(geom.full_shape)} -> output {fmt_shape(geom.output_shape)}",
                        full if numbers else None, None if numbers else full, None, True)
    frames.append(Frame(f"{label} keeps the window: output {fmt_shape(geom.output_shape)}",
                        [_input_panel(x2.shape, one_d, x2 if numbers else None, [], None), kernel, final], [label] + final.notes))
    if numbers:
        frames[-1].panels.append(_output_values_panel(geom, kept_window(full, axes), one_d))
    return frames


def _counts_so_far(done, full):
    counts = full.copy()
    counts[~done] = 0
    return counts


def _shift(boxes, origin):
    r0, c0 = origin
    return [Box(b.r0 - r0, b.c0 - c0, b.r1 - r0, b.c1 - c0, b.style, b.label) for b in boxes]


def _output_values_panel(geom, out, one_d, done=None) -> Panel:
    kinds = np.full(out.shape, DONE, dtype=np.int8)
    text = np.full(out.shape, "", dtype=object)
    for idx in np.ndindex(*out.shape):
        if done is None or done[idx]:
            text[idx] = str(out[idx])
        else:
            kinds[idx] = OUT
    return Panel(f"output {fmt_shape(geom.output_shape)}", kinds, text, one_d=one_d)


def zero_insertion_frames(geom: Geometry, x: np.ndarray | None, w: np.ndarray | None) -> list[Frame]:
    """The equivalent stride-1 correlation: zero-inserted, bordered input; flipped kernel slides."""
    if geom.wrap:
        raise ConfigError("the zero-insertion view has no border to draw for a circular (wrapping) layer; use view='scatter'")
    (ar, ac), one_d = as_2d(geom)
    numbers = x is not None
    x2 = x.reshape(ar.input_size, ac.input_size) if numbers else None
    w2 = w.reshape(ar.kernel_size, ac.kernel_size) if numbers else None
    label = layer_label(geom)
    (pr0, pr1), (pc0, pc1) = ar.conv_padding, ac.conv_padding
    # Drawn extent in zero-inserted coordinates u: the padded input, plus any cells a negative border slices off.
    r_lo, r_hi = min(0, -pr0), max(ar.zero_inserted_size, ar.zero_inserted_size + pr1)
    c_lo, c_hi = min(0, -pc0), max(ac.zero_inserted_size, ac.zero_inserted_size + pc1)
    shape = (r_hi - r_lo, c_hi - c_lo)
    kinds = np.full(shape, PAD, dtype=np.int8)
    text = np.full(shape, "", dtype=object)
    zi = np.zeros(shape, dtype=np.int64)
    for r, c in np.ndindex(*shape):
        ur, uc = r + r_lo, c + c_lo
        inside = 0 <= ur < ar.zero_inserted_size and 0 <= uc < ac.zero_inserted_size
        used = -pr0 <= ur < ar.zero_inserted_size + pr1 and -pc0 <= uc < ac.zero_inserted_size + pc1
        if inside and ur % ar.stride == 0 and uc % ac.stride == 0:
            kinds[r, c] = INPUT
            if numbers:
                zi[r, c] = x2[ur // ar.stride, uc // ac.stride]
                text[r, c] = str(zi[r, c])
            else:
                text[r, c] = f"x{uc // ac.stride}" if one_d else ""
        elif inside:
            kinds[r, c] = ZERO
            text[r, c] = "0"
        else:
            text[r, c] = "0"
        if not used:
            kinds[r, c] = SLICED
    # Flipped dilated kernel as a dense K x K array (zeros between taps).
    Kr, Kc = ar.dilated_kernel, ac.dilated_kernel
    wf = np.zeros((Kr, Kc), dtype=np.int64)
    taps = np.zeros((Kr, Kc), dtype=bool)
    for t, v in np.ndindex(Kr, Kc):
        rr, cc = Kr - 1 - t, Kc - 1 - v
        if rr % ar.dilation == 0 and cc % ac.dilation == 0:
            taps[t, v] = True
            wf[t, v] = w2[rr // ar.dilation, cc // ac.dilation] if numbers else 1
    out_shape = (ar.output_size, ac.output_size)
    out = np.zeros(out_shape, dtype=np.int64)
    done = np.zeros(out_shape, dtype=bool)
    positions = list(np.ndindex(*out_shape))
    groups = [[p] for p in positions] if len(positions) <= MAX_CELL_FRAMES else [
        [(r, c) for c in range(out_shape[1])] for r in range(out_shape[0])]
    kernel = _kernel_panel((ar, ac), one_d, w2, flipped=True)
    in_title = (f"zero-inserted input {fmt_shape((ac.zero_inserted_size,) if one_d else (ar.zero_inserted_size, ac.zero_inserted_size))}"
                "\nborder K-1-crop:" + ("\n" if "\n" in _pad_words(ar, ac, one_d) else " ") + _pad_words(ar, ac, one_d))
    frames = []
    for group in groups:
        terms_text = ""
        for orow, ocol in group:
            # Window top-left in zero-inserted coordinates: o - pad_begin.
            ur, uc = orow - pr0, ocol - pc0
            terms = []
            total = 0
            for t, v in zip(*np.nonzero(taps)):
                a, b = ur + t, uc + v
                if 0 <= a < ar.zero_inserted_size and 0 <= b < ac.zero_inserted_size and a % ar.stride == 0 and b % ac.stride == 0:
                    xv = x2[a // ar.stride, b // ac.stride] if numbers else 1
                    total += xv * wf[t, v]
                    terms.append(f"{xv}*{wf[t, v]}")
            out[orow, ocol] = total
            done[orow, ocol] = True
            where = f"out[{ocol}]" if one_d else f"out[{orow},{ocol}]"
            if numbers:
                terms_text = f"{where} = " + (" + ".join(terms) if terms else "only zeros under the kernel") + f" = {total}"
            else:
                terms_text = f"{where}: {len(terms)} input element{'s' if len(terms) != 1 else ''} under the kernel"
        last_r, last_c = group[-1]
        if len(group) == 1:
            title = terms_text
        elif numbers:  # the row's sums, so the frames still are the calculation
            row = group[0][0]
            title = f"output row {row}: the flipped kernel slides along it; out[{row},:] = " + " ".join(str(v) for v in out[row])
        else:
            title = f"output row {group[0][0]}: the flipped kernel slides along the row"
        in_panel = Panel(in_title, kinds.copy(), text.copy(), origin=(r_lo, c_lo), one_d=one_d)
        in_panel.boxes.append(Box(last_r - pr0 - r_lo, last_c - pc0 - c_lo, last_r - pr0 - r_lo + Kr, last_c - pc0 - c_lo + Kc, "current"))
        for t, v in zip(*np.nonzero(taps)):
            in_panel.boxes.append(Box(last_r - pr0 - r_lo + t, last_c - pc0 - c_lo + v, last_r - pr0 - r_lo + t + 1, last_c - pc0 - c_lo + v + 1, "tap"))
        used = Box(-pr0 - r_lo, -pc0 - c_lo, ar.zero_inserted_size + pr1 - r_lo, ac.zero_inserted_size + pc1 - c_lo, "window",
                   "padded input")
        in_panel.boxes.insert(0, used)
        if numbers:
            out_panel = _output_values_panel(geom, out, one_d, done.copy())
        else:
            ok = np.where(done, DONE, OUT).astype(np.int8)
            out_panel = Panel(f"output {fmt_shape(geom.output_shape)}", ok, None, one_d=one_d)
        first_r, first_c = group[0]
        out_panel.boxes.append(Box(first_r, first_c, last_r + 1, last_c + 1, "current"))
        frames.append(Frame(title, [in_panel, kernel, out_panel], [label, _pad_caption(ar, ac, one_d)]))
    frames[-1].caption.append(f"output {fmt_shape(geom.output_shape)} complete")
    frames[-1].out_values = out  # type: ignore[attr-defined]
    return frames


def _pad_words(ar, ac, one_d) -> str:
    def one(ax):
        b, e = ax.conv_padding
        return f"{b} before, {e} after" + (" (sliced)" if min(b, e) < 0 else "")
    if one_d or ar.conv_padding == ac.conv_padding:
        return one(ac)
    return f"rows {one(ar)}\ncols {one(ac)}"


def _pad_caption(ar, ac, one_d) -> str:
    def one(ax):
        b, e = ax.conv_padding
        return f"{ax.dilated_kernel - 1}-{ax.crop_begin}={b} before, {ax.dilated_kernel - 1}-{ax.crop_end}={e} after"
    if one_d:
        return "border K-1-crop: " + one(ac)
    if (ar.dilated_kernel, ar.crop_begin, ar.crop_end) == (ac.dilated_kernel, ac.crop_begin, ac.crop_end):
        return "border K-1-crop, rows and cols: " + one(ac)
    return f"border K-1-crop: rows {one(ar)}; cols {one(ac)}"


def overlap_frames(geom: Geometry) -> list[Frame]:
    """One frame: taps per full-output cell (stamped), the kept window, the per-phase counts."""
    (ar, ac), one_d = as_2d(geom)
    counts = overlap_counts((ar, ac))
    panel = _full_panel(geom, f"kernel taps per cell, full output {fmt_shape(geom.full_shape)}", None, counts, None, True)
    caption = [layer_label(geom)] + crop_lines((ar, ac), one_d)
    names = axis_names(one_d)
    same = (ar.kernel_size, ar.stride, ar.dilation) == (ac.kernel_size, ac.stride, ac.dilation)
    axes = [(ac, names[1])] if one_d else ([(ac, "rows and cols")] if same else [(ar, names[0]), (ac, names[1])])
    for ax, name in axes:
        caption.append(f"{name}: taps per phase r = index mod {ax.stride}: " + _phase_words(ax))
    uneven = any(len(set(phase_counts(ax).values())) > 1 for ax in (ar, ac))
    gaps = any(0 in phase_counts(ax).values() for ax in (ar, ac))
    title = ("gaps: the stride is larger than the kernel, so no tap reaches some cells" if gaps else
             "uneven overlap: the checkerboard (some cells get more kernel taps than their neighbours)" if uneven
             else "even overlap: every interior cell gets the same number of taps")
    return [Frame(title, [panel], caption)]


def _phase_words(ax: AxisGeometry) -> str:
    counts = phase_counts(ax)
    if ax.dilation == 1:  # the closed form, with the numbers, next to the stamped count
        K, st = ax.dilated_kernel, ax.stride
        return ", ".join(f"r={r}: {n}" + (f" = floor(({K}-1-{r})/{st})+1" if r < K else "") for r, n in counts.items())
    return ", ".join(f"r={r}: {n}" for r, n in counts.items())


def phase_counts(ax: AxisGeometry) -> dict[int, int]:
    """Taps reaching an interior full-output index of each phase ``r = index mod s``, read off a stamped 1-D count."""
    # The per-phase counts depend on k, s and d only: a short input with an interior suffices,
    # so a huge layer costs no more than a small one.
    short = -(-ax.dilated_kernel // ax.stride) + 2
    if ax.input_size > short:
        ax = AxisGeometry(short, ax.kernel_size, ax.stride, ax.dilation, 0, 0)
    counts = overlap_counts((ax,))
    interior = range(ax.dilated_kernel - 1, ax.full - ax.dilated_kernel + 1)
    result: dict[int, int] = {}
    for f in interior:
        result.setdefault(f % ax.stride, int(counts[f]))
    if len(result) < ax.stride:  # input too short for an interior: take the maximum seen per phase
        for f in range(ax.full):
            result[f % ax.stride] = max(result.get(f % ax.stride, 0), int(counts[f]))
    return dict(sorted(result.items()))


def compare_frames(geoms: Sequence[Geometry], x, w) -> list[Frame]:
    """One frame: each layer's full output and kept window, side by side."""
    panels, caption = [], []
    numbers = x is not None
    outs = []
    for geom in geoms:
        (ar, ac), one_d = as_2d(geom)
        label = layer_label(geom)
        if numbers:
            full = stamp(x.reshape(ar.input_size, ac.input_size), w.reshape(ar.kernel_size, ac.kernel_size), (ar, ac))
            outs.append(kept_window(full, (ar, ac)))
            panel = _full_panel(geom, f"{label}\nfull {fmt_shape(geom.full_shape)} -> output {fmt_shape(geom.output_shape)}", full, None, None, True)
        else:
            counts = overlap_counts((ar, ac))
            panel = _full_panel(geom, f"{label}\nfull {fmt_shape(geom.full_shape)} -> output {fmt_shape(geom.output_shape)}", None, counts, None, True)
        panels.append(panel)
        caption.append(f"{label}: " + "; ".join(panel.notes))
    shapes = {g.output_shape for g in geoms}
    if all(geoms[0].same_window(g) for g in geoms[1:]):
        title = "same output: the layers keep the same window"
    elif len(shapes) == 1:
        title = f"same size {fmt_shape(geoms[0].output_shape)}, different windows: the outputs are shifted"
    else:
        title = "different output sizes: " + " vs ".join(fmt_shape(g.output_shape) for g in geoms)
    return [Frame(title, panels, caption)]
