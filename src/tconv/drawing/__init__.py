"""Pictures of transposed convolutions: SVG, PNG, animated GIF, notebook HTML and terminal text.

``tconv.draw(...)`` takes a layer the way :func:`tconv.geometry` does and
returns a :class:`Drawing`: a list of frames, one per step of the view, that
can be saved (``.svg``, ``.png``, ``.gif``, ``.txt``), shown inline in a
notebook or printed in a terminal. Every size and window comes from the
layer's :class:`~tconv.geometry.Geometry`.

Views
-----
``scatter``
    Each input element stamps the kernel into the uncropped output; the last
    frame draws the kept window and hatches what the framework's rule crops.
``zero-insertion``
    The equivalent stride-1 correlation: ``s-1`` zeros between inputs, a
    border of ``K-1-crop``, the flipped kernel sliding, the output filling in.
``phase``
    The output split into its ``s^d`` phases (index mod the stride), each a
    small stride-1 correlation of the undilated input with a sub-kernel of the
    taps that reach it, then interleaved: no zeros inserted.
``resize``
    Seed 003's "upsampling plus a convolution?": nearest-neighbour upsampling
    and a stride-1 conv with a ``k-s+1`` kernel ``w'``, then the same values
    from a transposed conv with the box-filtered kernel ``flip(w')*ones(s)``
    (always with numbers).
``overlap``
    How many kernel taps reach each cell: the checkerboard, counts printed.
``compare``
    The same layer under several frameworks, side by side (``compare=``).

``numbers=True`` puts small integers in the input and kernel and shows every
value, so the frames are the calculation.

matplotlib and Pillow (pictures) and Rich (colour in the terminal) come with
``pip install 'tconv[draw]'`` and are imported only when used.
"""
from __future__ import annotations

import html
import os
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from ..errors import ConfigError
from ..geometry import Geometry
from . import _phase, _resize
from . import _scene as sc

__all__ = ["Drawing", "draw", "explanation_html", "FORMATS", "VIEWS"]

FORMATS = ("svg", "png", "gif", "txt")
VIEWS = sc.VIEWS


class Drawing:
    """The frames of one picture; save it, show it, or print it.

    Attributes
    ----------
    geometries : tuple of Geometry
        The layer(s) drawn (several for the compare view).
    view : str
        ``scatter``, ``zero-insertion``, ``phase``, ``resize``, ``overlap`` or ``compare``.
    frames : list
        One frame per step; a GIF shows them in order, SVG and PNG show one.
    steps : list of str
        What each frame shows, in words (in numbers mode: the calculation).
    summarised : bool
        True when the layer is too large to draw cell by cell and only its
        sizes and kept window are drawn.
    """

    def __init__(self, geometries: Sequence[Geometry], view: str, frames: list, numbers: bool,
                 values: np.ndarray | list | None = None, summarised: bool = False):
        self.geometries = tuple(geometries)
        self.view = view
        self.frames = frames
        self.numbers = numbers
        self.values = values
        self.summarised = summarised

    @property
    def geometry(self) -> Geometry:
        """The (first) layer's geometry."""
        return self.geometries[0]

    @property
    def steps(self) -> list[str]:
        return [frame.title for frame in self.frames]

    def __len__(self) -> int:
        return len(self.frames)

    def __repr__(self) -> str:
        layers = " vs ".join(sc.layer_label(g) for g in self.geometries)
        return f"<Drawing {self.view}{' (numbers)' if self.numbers else ''}: {layers}, {len(self.frames)} frame(s)>"

    # ---- pictures ---------------------------------------------------------
    def _frame(self, frame: int):
        if isinstance(frame, bool) or not isinstance(frame, (int, np.integer)):
            raise ConfigError(f"frame={frame!r} must be an integer index (-1, the default, is the last frame)")
        try:
            return self.frames[frame]
        except IndexError:
            raise ConfigError(f"frame {frame} does not exist; this drawing has {len(self.frames)} frame(s)") from None

    def figure(self, frame: int = -1):
        """A matplotlib ``Figure`` of one frame (default: the last, complete one)."""
        from . import _mpl

        return _mpl.render_frame(self._frame(frame))

    def svg(self, frame: int = -1) -> str:
        """One frame as SVG text (text stays text; no dates, so files are reproducible)."""
        from . import _mpl

        return _mpl.figure_bytes(self.figure(frame), "svg").decode("utf-8")

    def png(self, frame: int = -1) -> bytes:
        """One frame as PNG bytes."""
        from . import _mpl

        return _mpl.figure_bytes(_mpl.render_frame(self._frame(frame), fast=True), "png")

    def gif(self) -> bytes:
        """Every frame as an animated GIF (about one step a second; the last frame stays longer)."""
        from . import _mpl

        return _mpl.gif_bytes(self.frames)

    def text(self, color: bool = False, width: int = 120) -> str:
        """The terminal rendering (Rich): the last frame as text grids, plus the steps.

        With ``color=True`` the result holds ANSI colour codes.
        """
        from . import _text

        return _text.render(self, color=color, width=width)

    def __str__(self) -> str:
        return self.text()

    def save(self, path: str | os.PathLike, fmt: str | None = None, frame: int = -1) -> Path:
        """Write the picture; the format comes from ``fmt`` or the file's extension.

        Raises
        ------
        ConfigError
            Unknown format, or the file cannot be written.
        """
        path = Path(path)
        fmt = _format(path, fmt)
        if fmt == "gif":
            data: bytes = self.gif()
        elif fmt == "png":
            data = self.png(frame)
        elif fmt == "svg":
            data = self.svg(frame).encode("utf-8")
        else:
            data = (self.text() + "\n").encode("utf-8")
        try:
            path.write_bytes(data)
        except OSError as err:
            raise ConfigError(f"cannot write {str(path)!r}: {err.strerror or err}") from None
        return path

    # ---- notebooks --------------------------------------------------------
    def _repr_html_(self) -> str:
        return inline_svg(self.svg())


def _format(path: Path | None, fmt: str | None) -> str:
    if fmt is None:
        if path is None:
            return "txt"
        suffix = path.suffix.lower().lstrip(".")
        if not suffix:
            raise ConfigError(f"{str(path)!r} has no extension; name the file .svg, .png, .gif or .txt (or pass fmt=)")
        fmt = suffix
    fmt = fmt.lower().lstrip(".")
    fmt = {"text": "txt", "jpeg": "jpg"}.get(fmt, fmt)
    if fmt not in FORMATS:
        raise ConfigError(f"unknown picture format {fmt!r}; tconv draws {', '.join(FORMATS)}")
    return fmt


def inline_svg(svg: str) -> str:
    """SVG text ready to sit inside HTML (no XML prolog)."""
    start = svg.find("<svg")
    return svg[start:] if start >= 0 else svg


def _spec_geometry(spec: Any, input_shape: Any, kernel_size: Any) -> Geometry:
    """A compare entry: a Geometry, ``(framework, {args})`` or ``"framework:name=value,name=value"``."""
    from ..api import geometry

    if isinstance(spec, Geometry):
        return spec
    if isinstance(spec, str):
        framework, args = parse_spec(spec)
    elif isinstance(spec, (tuple, list)) and len(spec) == 2 and isinstance(spec[0], str) and isinstance(spec[1], dict):
        framework, args = spec[0], dict(spec[1])
    else:
        raise ConfigError(f"compare entry {spec!r} must be a Geometry, (framework, args) or 'framework:name=value,...'")
    return geometry(input_shape, kernel_size, framework, **args)


def parse_spec(spec: str) -> tuple[str, dict]:
    """``'pytorch:padding=1,output_padding=1'`` -> ``('pytorch', {'padding': 1, 'output_padding': 1})``.

    Values are read like the CLI's (sizes as ``2x2``, Python literals, or strings).

    >>> parse_spec("keras:padding=same,strides=2")
    ('keras', {'padding': 'same', 'strides': 2})
    """
    from .._parse import parse_value, quote

    if not isinstance(spec, str):
        raise ConfigError(f"compare spec {spec!r} must be a string like 'keras:padding=same,strides=2'")
    framework, _, rest = spec.partition(":")
    framework = framework.strip()
    if not framework:
        raise ConfigError(f"compare spec {quote(spec)} must look like FRAMEWORK:name=value,name=value")
    args = {}
    for item in (part.strip() for part in rest.split(",")) if rest.strip() else ():
        if not item:
            raise ConfigError(f"compare spec {quote(spec)} has an empty entry (a ',' at either end or two in a row)")
        if "=" not in item:
            raise ConfigError(f"compare spec {quote(spec)}: {quote(item)} must look like name=value (e.g. padding=same)")
        key, _, value = item.partition("=")
        key = key.strip()
        if not key:
            raise ConfigError(f"compare spec {quote(spec)}: {quote(item)} has no name before '='")
        if key in args:
            raise ConfigError(f"compare spec {quote(spec)} gives {key} twice; give it once")
        args[key] = parse_value(value, key)
    return framework, args


def _values(name: str, values: Any, shape: tuple[int, ...], period: int) -> np.ndarray:
    if values is None:
        return sc.default_values(shape, period)
    try:
        arr = np.asarray(values)
    except Exception as err:  # ragged lists and the like
        raise ConfigError(f"{name} cannot be read as an array: {err}") from None
    if arr.shape != shape:
        raise ConfigError(f"{name} has shape {arr.shape}; the layer needs {shape}")
    if arr.dtype.kind not in "iub" and not (arr.dtype.kind == "f" and np.all(arr == np.round(arr))):
        raise ConfigError(f"{name} must hold integers (numbers mode shows exact sums)")
    return arr.astype(np.int64)


def draw(input_shape: Any, kernel_size: Any = None, framework: str = "pytorch", *, view: str = "scatter",
         output: str | os.PathLike | None = None, fmt: str | None = None, numbers: bool = False,
         input_values: Any = None, kernel_values: Any = None, compare: Iterable[Any] = (),
         frame: int = -1, **args: Any) -> Drawing:
    """Draw a transposed convolution; optionally save it as SVG, PNG, GIF or text.

    Parameters
    ----------
    input_shape : int, tuple of int, Geometry or Explanation
        Spatial input size (1-D or 2-D), or an already-built geometry.
    kernel_size : int or tuple of int
        Spatial kernel size (not needed with a Geometry).
    framework : str
        The convention whose arguments ``**args`` are (see ``tconv frameworks``).
    view : str
        ``"scatter"`` (default), ``"zero-insertion"``, ``"phase"``, ``"resize"``, ``"overlap"`` or ``"compare"``.
    output : path, optional
        Save the picture there; the format comes from the extension
        (``.svg``, ``.png``, ``.gif``, ``.txt``) unless ``fmt`` is given.
    fmt : str, optional
        ``"svg"``, ``"png"``, ``"gif"`` or ``"txt"``, overriding the extension.
    numbers : bool
        Show values: small integers in the input and kernel, every sum shown.
    input_values, kernel_values : array-like of int, optional
        The values for numbers mode (shapes ``input_shape`` and ``kernel_size``);
        giving either turns numbers mode on.
    compare : iterable
        Other layers with the same input and kernel sizes, drawn beside this
        one: Geometry objects, ``(framework, {args})`` or
        ``"framework:name=value,..."`` strings. Implies ``view="compare"``.
    frame : int
        Which frame SVG and PNG show (default the last, complete one).
    **args
        The framework's own arguments (``stride``, ``padding``, ``strides`` ...).

    Returns
    -------
    Drawing
        The frames; ``.steps`` says what each shows, ``.values`` holds the
        output values in numbers mode.

    Raises
    ------
    ConfigError
        Illegal layer arguments, an unknown view or format, a 3-D layer, a
        layer too large for numbers mode, or a file that cannot be written.

    Examples
    --------
    >>> import tconv
    >>> d = tconv.draw((2, 2), 2, "pytorch", stride=2, padding=1)
    >>> len(d.steps)  # one stamp per input element, then the crop
    5
    >>> d.steps[-1]
    'PyTorch stride=2, padding=1 keeps the window: output 2x2'
    >>> n = tconv.draw(3, 3, "keras", strides=2, padding="same", numbers=True)  # x = 1 2 3, w = 1 2 1
    >>> n.values.tolist()
    [1, 2, 3, 4, 5, 6]
    >>> p = tconv.draw(4, 3, "pytorch", view="phase", numbers=True, stride=2, padding=1)
    >>> p.steps[1]
    'phase r=0: 1 tap (w[1]), a stride-1 correlation starting at x[q+0], 4 values'
    >>> p.values.tolist()
    [2, 3, 4, 5, 6, 7, 8]
    >>> tconv.draw((8, 8), 3, "keras", view="overlap", strides=2, padding="same").steps
    ['uneven overlap: the checkerboard (some cells get more kernel taps than their neighbours)']
    """
    from ..api import geometry

    if isinstance(getattr(input_shape, "geometry", None), Geometry):  # an Explanation (not imported: it imports us)
        input_shape = input_shape.geometry
    if isinstance(input_shape, Geometry):
        if args or kernel_size is not None:
            raise ConfigError("pass either a Geometry or input_shape, kernel_size and the framework's arguments, not both")
        geom = input_shape
    else:
        if kernel_size is None:
            raise ConfigError("draw needs kernel_size (or a Geometry)")
        geom = geometry(input_shape, kernel_size, framework, **args)
    sc.as_2d(geom)  # 1-D and 2-D only, with a clear message otherwise
    view_name = sc.VIEW_ALIASES.get(str(view).lower())
    if view_name is None:
        raise ConfigError(f"unknown view {view!r}; the views are: {', '.join(sc.VIEWS)}")
    if compare is None:
        compare = ()
    if isinstance(compare, (str, bytes, Geometry)) or not isinstance(compare, Iterable):
        raise ConfigError(
            f"compare={compare!r} must be a list of the other layers: Geometry objects, (framework, args) pairs "
            "or 'framework:name=value,...' strings, e.g. compare=['keras:padding=same']"
        )
    others = [_spec_geometry(spec, geom.input_shape, geom.kernel_size) for spec in compare]
    if others:
        view_name = "compare"
    elif view_name == "compare":
        raise ConfigError("the compare view needs compare=[...]: the other layer(s) to draw beside this one")
    geoms = [geom] + others
    for g in geoms:
        if g.empty:
            raise ConfigError(
                f"{g!r} has an empty output: its window keeps no element of the {'x'.join(map(str, g.full_shape))} "
                "uncropped output, so there is nothing to draw; `tconv explain` shows the crop"
            )
    for g in others:
        if g.input_shape != geom.input_shape or g.kernel_size != geom.kernel_size:
            raise ConfigError(f"compared layers must share input and kernel sizes; got {g.input_shape}/{g.kernel_size} vs {geom.input_shape}/{geom.kernel_size}")
        sc.as_2d(g)
    if not isinstance(numbers, (bool, np.bool_)):
        raise ConfigError(f"numbers={numbers!r} must be True or False")
    numbers = bool(numbers or input_values is not None or kernel_values is not None)
    if output is not None or fmt is not None:
        _format(Path(output) if output is not None else None, fmt)  # fail on a bad format before any work

    large = any(sc.too_large(g) for g in geoms)
    x = w = None
    values: Any = None
    if view_name == "resize":  # always the numbers: its point is that two calculations agree
        if large:
            raise ConfigError(f"the resize view shows every value, which needs a small layer (at most {sc.MAX_AXIS_CELLS} "
                              "cells along an axis); draw it smaller")
        x_resize = _values("input_values", input_values, geom.input_shape, 4) if input_values is not None else None
        frames = _resize.resize_frames(geom, x_resize)
        out = frames[-1].out_values  # type: ignore[attr-defined]
        drawing = Drawing(geoms, view_name, frames, True, out[0] if geom.ndim == 1 else out)
        if output is not None:
            drawing.save(output, fmt, frame)
        return drawing
    if numbers:
        if view_name == "overlap":
            raise ConfigError("the overlap view counts kernel taps; numbers mode works with the scatter, zero-insertion, phase and compare views")
        if large:
            raise ConfigError(
                f"numbers mode shows every value, which needs a small layer (at most {sc.MAX_AXIS_CELLS} cells along "
                f"an axis of the full or padded output); draw without numbers for a summary"
            )
        x = _values("input_values", input_values, geom.input_shape, 4)
        w = _values("kernel_values", kernel_values, geom.kernel_size, 2)
    if large:
        frames = [sc.Frame(s.title, [s], []) for s in (sc.summary(g) for g in geoms)]
    elif view_name == "scatter":
        frames = sc.scatter_frames(geom, x, w)
    elif view_name == "zero-insertion":
        frames = sc.zero_insertion_frames(geom, x, w)
    elif view_name == "phase":
        frames = _phase.phase_frames(geom, x, w)
    elif view_name == "overlap":
        frames = sc.overlap_frames(geom)
    else:
        frames = sc.compare_frames(geoms, x, w)
    if numbers:
        assert x is not None and w is not None  # numbers mode has both arrays
        outs = []
        for g in geoms:
            (ar, ac), _ = sc.as_2d(g)
            full = sc.stamp(x.reshape(ar.input_size, ac.input_size), w.reshape(ar.kernel_size, ac.kernel_size), (ar, ac))
            outs.append(sc.kept_window(full, (ar, ac)).reshape(g.output_shape))
        values = outs[0] if len(outs) == 1 else outs
        if view_name in ("zero-insertion", "phase"):  # the sliding / per-phase computation, checked against the stamps
            slid = frames[-1].out_values.reshape(geom.output_shape)  # type: ignore[attr-defined]
            if not np.array_equal(slid, values):  # pragma: no cover - a bug guard, never expected
                raise AssertionError(f"{view_name} and scatter disagree")
    drawing = Drawing(geoms, view_name, frames, numbers, values, summarised=large)
    if output is not None:
        drawing.save(output, fmt, frame)
    return drawing


def explanation_html(explanation) -> str:
    """HTML for a notebook: the scatter diagram (inline SVG) above the text derivation.

    Used by ``tconv.Explanation._repr_html_``.
    """
    text = f"<pre>{html.escape(str(explanation))}</pre>"
    try:
        sc.as_2d(explanation.geometry)
    except ConfigError:
        return text
    drawing = draw(explanation.geometry)
    return f'<div class="tconv-explanation">{inline_svg(drawing.svg())}{text}</div>'
