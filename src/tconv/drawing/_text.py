"""Terminal rendering with Rich: the last frame's grids as text, the kept window boxed with lines."""
from __future__ import annotations

import io

from ..errors import ConfigError
from . import _scene as sc

SYMBOL = {
    sc.EMPTY: " ", sc.INPUT: "x", sc.ZERO: "0", sc.PAD: "·", sc.SLICED: "×", sc.KERNEL: "w",
    sc.OUT: ".", sc.DONE: "#", sc.CROP: "/", sc.EXTEND: "+", sc.COUNT: "#",
}
STYLE = {
    sc.INPUT: "bold #56B4E9", sc.ZERO: "grey50", sc.PAD: "grey50", sc.SLICED: "#D55E00", sc.KERNEL: "bold #E69F00",
    sc.OUT: "grey50", sc.DONE: "#009E73", sc.CROP: "#CC79A7 strike", sc.EXTEND: "bold #F0E442", sc.COUNT: "bold #56B4E9",
}
LEGEND = {
    sc.INPUT: "x input", sc.ZERO: "0 inserted zero", sc.PAD: "· border zero (K-1-crop)", sc.SLICED: "× sliced off",
    sc.KERNEL: "w kernel tap", sc.CROP: "cells outside the │─ box are cropped", sc.EXTEND: "+ added zero (negative crop)",
}


def _require():
    try:
        import rich  # noqa: F401
    except ImportError as err:  # pragma: no cover
        from ._extra import install_hint

        raise ConfigError(f"terminal pictures need Rich: {install_hint()}") from err


def panel_lines(panel: sc.Panel):
    """Rich Text lines for one grid; the kept window is boxed with │ and ─."""
    from rich.text import Text

    rows, cols = panel.shape
    def cell(r, c):
        kind = int(panel.kinds[r, c])
        if kind in (sc.PAD, sc.SLICED) or panel.text is None or not panel.text[r, c]:
            return SYMBOL[kind]  # border and sliced zeros keep their symbol so plain text tells them apart
        return panel.text[r, c]

    cells = [[cell(r, c) for c in range(cols)] for r in range(rows)]
    r0, c0 = panel.origin
    width = max([len(s) for row in cells for s in row] + [len(str(c + c0)) for c in range(cols)])
    kept = next((b for b in panel.boxes if b.style == "kept"), None)
    current = [b for b in panel.boxes if b.style == "current"]
    # 1-D grids say which line is the index and which the cell; 2-D grids number their rows.
    label_w = 5 if panel.one_d else max(len(str(r + r0)) for r in range(rows))

    def vbar(c):
        return kept is not None and c in (kept.c0, kept.c1)

    def gap(c):
        return "│" if vbar(c) else " "

    lines = [Text(panel.title, style="bold")]
    header = Text("index " if panel.one_d else " " * (label_w + 1), style="grey50")
    for c in range(cols):
        header.append(gap(c) + str(c + c0).rjust(width), style="grey50")
    header.append(gap(cols), style="grey50")
    lines.append(header)
    for r in range(rows):
        if kept is not None and r in (kept.r0, kept.r1) and not panel.one_d:
            lines.append(_hline(label_w, width, cols, kept))
        line = Text("cell  " if panel.one_d else str(r + r0).rjust(label_w) + " ", style="grey50")
        for c in range(cols):
            line.append(gap(c), style="bold #0072B2")
            style = STYLE.get(int(panel.kinds[r, c]), "")
            if any(b.r0 <= r < b.r1 and b.c0 <= c < b.c1 for b in current):
                style += " reverse"
            line.append(cells[r][c].rjust(width), style=style)
        line.append(gap(cols), style="bold #0072B2")
        lines.append(line)
    if kept is not None and kept.r1 == rows and not panel.one_d:
        lines.append(_hline(label_w, width, cols, kept))
    return lines


def _hline(label_w, width, cols, kept):
    from rich.text import Text

    out = " " * (label_w + 1)
    for c in range(cols):
        corner = "┼" if c in (kept.c0, kept.c1) else ("─" if kept.c0 < c < kept.c1 else " ")
        out += corner + ("─" * width if kept.c0 <= c < kept.c1 else " " * width)
    out += "┼" if cols == kept.c1 else ""
    return Text(out, style="bold #0072B2")


def render(drawing, color: bool = False, width: int = 120) -> str:
    _require()
    from rich.console import Console
    from rich.text import Text

    buf = io.StringIO()
    console = Console(file=buf, width=width, force_terminal=color, color_system="truecolor" if color else None,
                      highlight=False, soft_wrap=True)
    final = drawing.frames[-1]
    console.print(Text(final.title, style="bold"))
    for line in final.caption:
        console.print(Text(line))  # Text, not markup: captions and steps hold brackets like x[q+0]
    for panel in final.panels:
        console.print()
        if isinstance(panel, sc.Summary):
            for line in panel.lines:
                console.print(Text(line))
            continue
        for line in panel_lines(panel):
            console.print(line)
    kinds = {int(k) for p in final.panels if isinstance(p, sc.Panel) for k in p.kinds.flat}
    legend = [LEGEND[k] for k in LEGEND if k in kinds]
    if any(isinstance(p, sc.Panel) and any(b.style == "kept" for b in p.boxes) for p in final.panels):
        legend.append("inside │─: the kept window (the output)")
    if legend:
        console.print()
        console.print("legend: " + "; ".join(legend))
    if len(drawing.frames) > 1:
        console.print()
        console.print(Text("steps:", style="bold"))
        for n, frame in enumerate(drawing.frames, 1):
            console.print(Text(f"{n:>3}. {frame.title}"))
    # No trailing blanks: the text pastes cleanly into documents and diffs.
    return "\n".join(line.rstrip() for line in buf.getvalue().rstrip("\n").split("\n"))
