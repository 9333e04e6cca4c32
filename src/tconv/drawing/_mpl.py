"""Matplotlib (and Pillow for GIF) rendering of frames. Imported only when a picture is asked for."""
from __future__ import annotations

import io
from typing import Sequence

import numpy as np

from ..errors import ConfigError
from . import _scene as sc

# Okabe-Ito, the colour-blind-safe palette.
BLUE, SKY, GREEN, YELLOW, ORANGE, VERMILLION, PURPLE, BLACK = (
    "#0072B2", "#56B4E9", "#009E73", "#F0E442", "#E69F00", "#D55E00", "#CC79A7", "#000000")

FILL = {
    sc.EMPTY: "#FFFFFF", sc.INPUT: SKY, sc.ZERO: "#FFFFFF", sc.PAD: "#E6E6E6", sc.SLICED: "#FFFFFF",
    sc.KERNEL: ORANGE, sc.OUT: "#F4F4F4", sc.DONE: "#9FD9C6", sc.CROP: "#FFFFFF", sc.EXTEND: YELLOW, sc.COUNT: "#CFE3F2",
}
HATCH = {sc.CROP: "///", sc.SLICED: "xx"}
HATCH_COLOR = {sc.CROP: PURPLE, sc.SLICED: "#EBA77A"}  # a light vermillion keeps values on sliced cells legible
BOX = {
    "kept": dict(edgecolor=BLUE, linewidth=3.0, linestyle="-"),
    "current": dict(edgecolor=VERMILLION, linewidth=2.5, linestyle="-"),
    "window": dict(edgecolor=BLACK, linewidth=1.5, linestyle="--"),
    "tap": dict(edgecolor=ORANGE, linewidth=2.0, linestyle="-"),
}
BOX_NAMES = {"kept": "kept window (the output)", "current": "this step", "window": "padded input",
             "tap": "flipped kernel taps"}

CELL_IN = 0.34     # inches per cell at full size
MAX_WIDTH_IN = 15.0
DPI = 100
FRAME_MS = 900     # a person can follow one step a second
LAST_FRAME_MS = 3000


def _require():
    try:
        import matplotlib  # noqa: F401
        from matplotlib.figure import Figure  # noqa: F401
    except ImportError as err:  # pragma: no cover - the extra is installed in tests
        from ._extra import install_hint

        raise ConfigError(f"pictures need matplotlib (and Pillow for GIF): {install_hint()}") from err


def _heat_color(value: float, vmax: float) -> str:
    # Light sky to Okabe-Ito blue: more taps, darker.
    if value <= 0:
        return "#FFFFFF"  # no tap reaches it (stride larger than the kernel): a gap, not a light count
    lo, hi = np.array([0xE3, 0xF1, 0xFA]) / 255, np.array([0x00, 0x5A, 0x8C]) / 255
    t = 0.0 if vmax <= 1 else (value - 1) / (vmax - 1)
    t = min(max(t, 0.0), 1.0)
    rgb = lo + (hi - lo) * t
    return "#%02x%02x%02x" % tuple(int(round(v * 255)) for v in rgb)


def _text_color(fill: str) -> str:
    r, g, b = (int(fill[i:i + 2], 16) / 255 for i in (1, 3, 5))
    return "white" if 0.299 * r + 0.587 * g + 0.114 * b < 0.5 else BLACK


CHAR_IN = 0.068   # width of one 9-point character, roughly
LEGEND_ITEM_IN = 2.9


def _wrap_title(title: str, width_in: float) -> str:
    import textwrap

    chars = max(int(width_in / 0.085), 12)
    return "\n".join(textwrap.fill(line, chars) for line in title.split("\n"))


def _layout(frame: sc.Frame, n_legend: int):
    """Sizes in inches: the figure, one cell, each panel's rectangle, and where text goes."""
    grids = frame.panels
    gap_in, left_in = 0.8, 0.6
    # 1-D layers side by side would be long thin strips: stack them instead.
    vertical = len(grids) > 1 and all(p.one_d for p in grids)
    cols = max(p.shape[1] for p in grids) if vertical else sum(p.shape[1] for p in grids)
    rows = max(p.shape[0] for p in grids)
    n_across = 1 if vertical else len(grids)
    cell = min(CELL_IN, (MAX_WIDTH_IN - left_in - gap_in * n_across) / max(cols, 1), 6.0 / max(rows, 1))
    cell = max(cell, 0.12)
    panels_w = left_in + cols * cell + gap_in * n_across
    text_w = max([len(line) * CHAR_IN + 0.4 for line in frame.caption] + [len(frame.title) * 0.1 + 0.4])
    width = min(max(panels_w, text_w, 6.0), MAX_WIDTH_IN + 2)
    ncol = max(1, min(n_legend, int(width // LEGEND_ITEM_IN)))
    legend_rows = -(-n_legend // ncol) if n_legend else 0
    title_w = [max((cols if vertical else p.shape[1]) * cell + gap_in * 0.95, 2.4) for p in grids]
    titles = [_wrap_title(p.title, tw) for p, tw in zip(grids, title_w)]
    title_lines = max(t.count("\n") + 1 for t in titles)
    frame_title = _wrap_title(frame.title, width - 0.4)
    frame_title_lines = frame_title.count("\n") + 1
    title_in = 0.2 * title_lines + 0.1
    top_in = 0.15 + 0.28 * frame_title_lines + 0.1 + title_in
    caption_in = 0.2 * len(frame.caption)
    legend_in = 0.19 * legend_rows + 0.12
    bottom_in = 0.5 + caption_in + legend_in
    # Vertical: each extra panel needs its own title and tick labels.
    stack_in = (rows * cell + 0.5 + title_in) if vertical else 0.0
    height = top_in + rows * cell + bottom_in + stack_in * (len(grids) - 1)
    # Centre the panels when text makes the figure wider than they are.
    x0 = left_in + max(0.0, (width - panels_w) / 2)
    rects = []
    x = x0
    for n, p in enumerate(grids):
        w, h = p.shape[1] * cell, p.shape[0] * cell
        if vertical:
            rects.append((x0, bottom_in + stack_in * (len(grids) - 1 - n), w, h))
        else:
            rects.append((x, bottom_in + (rows * cell - h), w, h))
            x += w + gap_in
    return dict(size=(width, height), cell=cell, rects=rects, titles=titles, frame_title=frame_title,
                top=top_in, caption_top=legend_in + caption_in, legend_h=legend_in, ncol=ncol)


def _legend_entries(frame: sc.Frame) -> tuple[set, set]:
    kinds = {int(k) for p in frame.panels for k in np.unique(p.kinds)}
    boxes = {b.style for p in frame.panels for b in p.boxes}
    return kinds, boxes


def render_frame(frame: sc.Frame, fast: bool = False):
    """A matplotlib Figure (not attached to pyplot) for one frame; ``fast`` for raster output."""
    _require()
    from matplotlib.figure import Figure

    if frame.panels and isinstance(frame.panels[0], sc.Summary):
        return _render_summary(frame.panels[0])
    used_kinds, used_boxes = _legend_entries(frame)
    heat_max = max((p.heat_max if p.heat_max is not None else np.nanmax(p.heat)
                    for p in frame.panels if p.heat is not None and np.any(~np.isnan(p.heat))), default=1)
    handles = _legend_handles(used_kinds, used_boxes, heat_max)
    lay = _layout(frame, len(handles))
    width, height = lay["size"]
    fig = Figure(figsize=(width, height), dpi=DPI)
    fig.patch.set_facecolor("white")
    fig.text(0.5, 1 - 0.12 / height, lay["frame_title"], ha="center", va="top", fontsize=12, fontweight="bold")
    cell_pt = lay["cell"] * 72
    for n, (panel, (x, y, w, h), title) in enumerate(zip(frame.panels, lay["rects"], lay["titles"])):
        ax = fig.add_axes((x / width, y / height, w / width, h / height))
        _draw_panel(ax, panel, n, cell_pt, heat_max, title, fast)
    for i, line in enumerate(frame.caption):
        fig.text(0.2 / width, (lay["caption_top"] - 0.2 * i) / height, line, ha="left", va="top", fontsize=9)
    if handles:
        fig.legend(handles=handles, loc="lower center", ncol=lay["ncol"], fontsize=8, frameon=False,
                   bbox_to_anchor=(0.5, 0.02 / height), handlelength=1.4, columnspacing=1.2)
    return fig


#: Above this many cells per panel, the zeros' "0" labels are left out: the colour says it.
QUIET_ZEROS_ABOVE = 400


def _draw_panel(ax, panel: sc.Panel, n: int, cell_pt: float, heat_max: float, title: str, fast: bool = False) -> None:
    """Cells, labels and boxes of one panel.

    SVG gets one element per cell (``id="cell-PANEL-ROW-COL"``), so the file is
    searchable and countable; raster output (``fast``) draws the fills as a few
    collections, which is many times quicker for animations of larger layers.
    """
    from matplotlib.collections import PolyCollection
    from matplotlib.patches import Rectangle

    rows, cols = panel.shape
    quiet = rows * cols > QUIET_ZEROS_ABOVE
    groups: dict = {}
    for r in range(rows):
        for c in range(cols):
            kind = int(panel.kinds[r, c])
            fill = FILL[kind]
            if kind == sc.COUNT and panel.heat is not None and not np.isnan(panel.heat[r, c]):
                fill = _heat_color(panel.heat[r, c], heat_max)
            edge, width = (HATCH_COLOR[kind], 0.4) if kind in HATCH_COLOR else ("#9A9A9A", 0.6)
            if fast:
                group = groups.setdefault((HATCH.get(kind), edge, width), ([], []))
                group[0].append(((c, r), (c + 1, r), (c + 1, r + 1), (c, r + 1)))
                group[1].append(fill)
            else:
                rect = Rectangle((c, r), 1, 1, facecolor=fill, edgecolor=edge, linewidth=width, hatch=HATCH.get(kind))
                rect.set_gid(f"cell-{n}-{r}-{c}")
                ax.add_artist(rect)  # add_patch would recompute data limits per cell (slow); limits are set below
            label = panel.text[r, c] if panel.text is not None else ""
            zero_label = kind in (sc.ZERO, sc.PAD, sc.SLICED, sc.EXTEND) and label == "0"
            if label and not (quiet and zero_label):
                size = min(10.0, cell_pt * 0.42, cell_pt * 1.1 / max(len(label), 1))
                color = "#8A8A8A" if zero_label else _text_color(fill)
                ax.text(c + 0.5, r + 0.52, label, ha="center", va="center", fontsize=size, color=color,
                        fontweight="bold" if kind in (sc.COUNT,) else "normal")
    for (hatch, edge, width), (verts, fills) in groups.items():
        ax.add_collection(PolyCollection(verts, facecolors=fills, edgecolors=edge, linewidths=width, hatch=hatch),
                          autolim=False)
    for box in panel.boxes:
        style = BOX[box.style]
        inset = 0.12 if box.style == "tap" else 0.0
        ax.add_patch(Rectangle((box.c0 + inset, box.r0 + inset), box.c1 - box.c0 - 2 * inset, box.r1 - box.r0 - 2 * inset,
                               facecolor="none", zorder=5, **style))
    ax.set_xlim(0, cols)
    ax.set_ylim(rows, 0)
    ax.set_aspect("equal")
    r0, c0 = panel.origin
    step_c = 1 if cols <= 20 else 5
    step_r = 1 if rows <= 20 else 5
    ax.set_xticks([c + 0.5 for c in range(0, cols, step_c)], [str(c + c0) for c in range(0, cols, step_c)], fontsize=7)
    if panel.one_d:
        ax.set_yticks([])
        ax.set_xlabel("index", fontsize=8)
    else:
        ax.set_yticks([r + 0.5 for r in range(0, rows, step_r)], [str(r + r0) for r in range(0, rows, step_r)], fontsize=7)
        ax.set_xlabel("col", fontsize=8)
        ax.set_ylabel("row", fontsize=8)
    ax.tick_params(length=0, pad=2)
    for spine in ax.spines.values():
        spine.set_visible(False)
    ax.set_title(title, fontsize=10, pad=6)


def _legend_handles(kinds: set, boxes: set, heat_max: float) -> list:
    from matplotlib.patches import Patch

    handles = []
    order = [sc.INPUT, sc.ZERO, sc.PAD, sc.SLICED, sc.KERNEL, sc.OUT, sc.DONE, sc.COUNT, sc.CROP, sc.EXTEND]
    for kind in order:
        if kind not in kinds:
            continue
        label = sc.KIND_NAMES[kind]
        fill = FILL[kind] if kind != sc.COUNT else _heat_color(max(heat_max, 1), max(heat_max, 1))
        if kind == sc.COUNT:
            label += f" (1..{int(heat_max)}, darker = more; white = none)" if heat_max > 1 else " (white = none)"
        handles.append(Patch(facecolor=fill, edgecolor=HATCH_COLOR.get(kind, "#9A9A9A"), hatch=HATCH.get(kind), label=label))
    for style in ("kept", "current", "tap", "window"):
        if style in boxes:
            handles.append(Patch(facecolor="none", label=BOX_NAMES[style], **BOX[style]))
    return handles


def _render_summary(summary: sc.Summary):
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    geom = summary.geometry
    (ar, ac), one_d = sc.as_2d(geom)
    fig = Figure(figsize=(9, 6.2), dpi=DPI)
    fig.patch.set_facecolor("white")
    fig.text(0.5, 0.96, summary.title, ha="center", va="center", fontsize=12, fontweight="bold")
    ax = fig.add_axes((0.1, 0.3, 0.8, 0.58))
    r_lo, r_hi = min(0, ar.crop_begin), max(ar.full, ar.full - ar.crop_end)
    c_lo, c_hi = min(0, ac.crop_begin), max(ac.full, ac.full - ac.crop_end)
    height = max(r_hi - r_lo, (c_hi - c_lo) / 12) if one_d else r_hi - r_lo
    ax.add_patch(Rectangle((0, 0), ac.full, ar.full if not one_d else height, facecolor="#CFE3F2", edgecolor="#9A9A9A", gid="full"))
    k0, k1 = ac.kept
    j0, j1 = (0, height) if one_d else ar.kept
    ax.add_patch(Rectangle((k0, j0), k1 - k0, j1 - j0, facecolor="none", edgecolor=BLUE, linewidth=3, gid="kept"))
    ax.text((k0 + k1) / 2, (j0 + j1) / 2, f"kept {sc.fmt_shape(geom.output_shape)}", ha="center", va="center", fontsize=11, color=BLUE)
    ax.set_xlim(c_lo - 1, c_hi + 1)
    ax.set_ylim((r_hi if not one_d else height) + 1, r_lo - 1)
    ax.set_aspect("equal" if not one_d else "auto")
    ax.set_title(f"full output {sc.fmt_shape(geom.full_shape)} (uncropped)", fontsize=10)
    ax.set_xlabel("index" if one_d else "col", fontsize=8)
    if one_d:
        ax.set_yticks([])
    else:
        ax.set_ylabel("row", fontsize=8)
    for i, line in enumerate(summary.lines):
        fig.text(0.05, 0.22 - 0.03 * i, line, ha="left", va="top", fontsize=9)
    return fig


def figure_bytes(fig, fmt: str) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    import matplotlib

    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "tconv"}):
        fig.savefig(buf, format=fmt, dpi=DPI, facecolor="white", metadata=_metadata(fmt))
    return buf.getvalue()


def _metadata(fmt: str):
    # Reproducible files: no creation date, so the gallery does not churn.
    if fmt == "svg":
        return {"Date": None}
    if fmt == "png":
        return {"Software": None}
    return None


def gif_bytes(frames: Sequence[sc.Frame]) -> bytes:
    """An animated GIF, one step per frame, the last one held longer; all frames on one canvas size."""
    _require()
    try:
        from PIL import Image
    except ImportError as err:  # pragma: no cover
        from ._extra import install_hint

        raise ConfigError(f"animated GIFs need Pillow: {install_hint()}") from err
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    images = []
    for frame in frames:
        fig = render_frame(frame, fast=True)
        canvas = FigureCanvasAgg(fig)
        canvas.draw()
        images.append(Image.fromarray(np.asarray(canvas.buffer_rgba())[..., :3].copy()))
    width = max(im.width for im in images)
    height = max(im.height for im in images)
    padded = []
    for im in images:
        if im.size != (width, height):
            base = Image.new("RGB", (width, height), "white")
            base.paste(im, ((width - im.width) // 2, 0))
            im = base
        padded.append(im.convert("P", palette=Image.Palette.ADAPTIVE, colors=64))
    durations = [FRAME_MS] * (len(padded) - 1) + [LAST_FRAME_MS]
    buf = io.BytesIO()
    padded[0].save(buf, format="GIF", save_all=True, append_images=padded[1:], duration=durations, loop=0, optimize=True)
    return buf.getvalue()
