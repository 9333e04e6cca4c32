"""The explorer's JSON API: one request (a dict of the page's controls) -> one answer (plain data).

Everything the page shows comes from here, and everything here comes from
tconv's own functions: :func:`tconv.geometry` for sizes and windows,
:func:`tconv.explain` for the steps and the formula, :func:`tconv.draw` for
the frames of every view, :func:`tconv.convert` for the same layer in the
other frameworks. The page computes no size itself.

A request's values are read the way the CLI reads its options (``8x8``,
``same``, ``1x2``, through :mod:`tconv._parse` and the convention's own CLI
attributes), so a bad value gets the CLI's message. The library may not
import the CLI, so the dozen lines that map the generic options to the
framework's names mirror ``tconv.cli._common.layer_with_origins``.
"""
from __future__ import annotations

import warnings
from typing import Any

from .. import conventions
from .._parse import parse_sizes, parse_value
from ..errors import ConfigError, FrameworkQuirkWarning

#: every key a request may hold; anything else is refused by name
KEYS = ("framework", "input", "kernel", "stride", "padding", "dilation", "output_padding", "output_size",
        "groups", "view", "numbers")
LAYER_KEYS = ("stride", "padding", "dilation", "output_padding", "output_size", "groups")
VIEWS = ("scatter", "zero-insertion", "phase", "resize", "overlap", "numbers")
#: the largest size, stride, padding ... a request may carry (the drawings summarise long before)
MAX_VALUE = 100_000
MAX_TEXT = 200

#: the seed threads' cases, one click away on the page
SEEDS = (
    {"id": "001", "question": "why does Keras 'same' give 16x16 from 8x8?",
     "query": {"framework": "keras", "input": "8x8", "kernel": "3", "stride": "2", "padding": "same"}},
    {"id": "002", "question": "why does padding=1 make PyTorch's output smaller?",
     "query": {"framework": "pytorch", "input": "2x2", "kernel": "2", "stride": "2", "padding": "1", "view": "numbers"}},
    {"id": "003", "question": "how do backends compute it without inserting zeros? is it upsampling + conv?",
     "query": {"framework": "pytorch", "input": "4x4", "kernel": "3", "stride": "2", "padding": "1",
               "output_padding": "1", "view": "phase"}},
    {"id": "004", "question": "why 193x257 from 96x128 with 'valid'?",
     "query": {"framework": "keras", "input": "96x128", "kernel": "3", "stride": "2", "padding": "valid"}},
    {"id": "005", "question": "the checkerboard: uneven overlap of k=3, s=2",
     "query": {"framework": "pytorch", "input": "6x6", "kernel": "3", "stride": "2", "view": "overlap"}},
    {"id": "006", "question": "PyTorch output_size=28 from 12x12, k=5, s=2",
     "query": {"framework": "pytorch", "input": "12x12", "kernel": "5", "stride": "2", "output_size": "28x28"}},
)


class ApiError(ConfigError):
    """A request tconv refuses: answered 400 with this message."""


def _text(key: str, value: Any) -> str:
    """A request value as the CLI would have received it: text. JSON numbers and lists of numbers are accepted."""
    if isinstance(value, bool):
        raise ApiError(f"{key} must be text like the CLI's option (e.g. '2' or '2x2'), not {str(value).lower()}")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list) and value and all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        return "x".join(map(str, value))
    if not isinstance(value, str):
        raise ApiError(f"{key} must be text like the CLI's option (e.g. '2' or '2x2'), not {type(value).__name__}")
    if len(value) > MAX_TEXT:
        raise ApiError(f"{key} is {len(value)} characters long; the explorer takes at most {MAX_TEXT}")
    return value.strip()


def _bounded(key: str, value: Any) -> Any:
    """Refuse numbers no drawing or page could use: the work of every request stays small."""
    items = value if isinstance(value, (tuple, list)) else [value]
    for item in items:
        if isinstance(item, (tuple, list)):
            _bounded(key, item)
        elif isinstance(item, int) and abs(item) > MAX_VALUE:
            raise ApiError(f"{key}={item} is too large for the explorer (at most {MAX_VALUE:,}); "
                           "`tconv shape` takes any size")
    return value


def read_layer(request: dict) -> tuple[Any, Any, str, dict]:
    """``(input_shape, kernel_size, framework, args)`` from a request, read as the CLI reads its options."""
    if not isinstance(request, dict):
        raise ApiError(f"the request must be a JSON object of the controls, not {type(request).__name__}")
    unknown = [k for k in request if k not in KEYS]
    if unknown:
        raise ApiError(f"unknown control {str(unknown[0])[:40]!r}; the controls are: {', '.join(KEYS)}")
    framework = conventions.canonical(_text("framework", request.get("framework", "pytorch")))
    convention = conventions.get(framework)
    if request.get("input") in (None, ""):
        raise ApiError("input is required: the spatial input size, e.g. 8x8 or 12")
    if request.get("kernel") in (None, ""):
        raise ApiError("kernel is required: the kernel size, e.g. 3 or 3x3")
    input_shape = _bounded("input", parse_sizes(_text("input", request["input"]), "input size"))
    kernel = _bounded("kernel", parse_sizes(_text("kernel", request["kernel"]), "kernel size"))
    ndim = len(input_shape) if isinstance(input_shape, tuple) else (len(kernel) if isinstance(kernel, tuple) else 1)
    if not isinstance(input_shape, tuple) and convention.max_ndim == 2:
        ndim = 2
    generic: dict[str, Any] = {}
    for key in LAYER_KEYS:
        raw = request.get(key)
        if raw is None or raw == "":
            continue
        value = _bounded(key, parse_value(_text(key, raw), key.replace("_", " ")))
        if key == "padding" and isinstance(value, str) and convention.cli_upper_padding:
            value = value.upper()
        if key == "output_size" and isinstance(value, int) and ndim > 1:
            value = (value,) * ndim
        generic[key] = value
    if convention.cli_kernel_per_axis and isinstance(kernel, int) and ndim > 1:
        kernel = (kernel,) * ndim
    if isinstance(input_shape, int) and ndim == 1 and not convention.cli_bare_sizes:
        input_shape = (input_shape,)
    return input_shape, kernel, framework, convention.native_args(generic, ndim)


def _fmt(shape) -> str:
    return "x".join(map(str, shape))


def _plain(value: Any) -> Any:
    """JSON-ready: tuples as lists, NumPy scalars as Python numbers, NaN as None."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "tolist"):
        return _plain(value.tolist())
    if isinstance(value, float) and value != value:
        return None
    return value


def _panel(panel) -> dict:
    from ..drawing import _scene as sc

    if isinstance(panel, sc.Summary):
        return {"summary": True, "title": panel.title, "lines": list(panel.lines)}
    rows, cols = panel.shape
    return {
        "title": panel.title, "rows": rows, "cols": cols, "origin": list(panel.origin), "one_d": panel.one_d,
        "kinds": panel.kinds.tolist(),
        "text": [["" if t is None else str(t) for t in row] for row in panel.text] if panel.text is not None else None,
        "heat": _plain(panel.heat) if panel.heat is not None else None,
        "heat_max": panel.heat_max,
        "boxes": [{"r0": b.r0, "c0": b.c0, "r1": b.r1, "c1": b.c1, "style": b.style, "label": b.label} for b in panel.boxes],
        "notes": list(panel.notes),
    }


def _drawing(geom, view: str, numbers: bool) -> dict:
    from ..drawing import _scene as sc
    from ..drawing import draw

    if view == "numbers":
        view, numbers = "scatter", True
    if numbers and (view == "overlap" or sc.too_large(geom)):
        numbers = False  # the overlap view counts taps; a large layer is summarised: both without numbers
    drawing = draw(geom, view=view, numbers=numbers)
    return {
        "view": drawing.view, "numbers": drawing.numbers, "summarised": drawing.summarised,
        "frames": [{"title": f.title, "caption": list(f.caption), "panels": [_panel(p) for p in f.panels]}
                   for f in drawing.frames],
        "legend": {str(k): v for k, v in sc.KIND_NAMES.items()},
    }


def _cells(geom) -> dict | None:
    """For every output cell: the input cells and taps that reach it, and its formula with the numbers.

    The numbers are the drawings' (inputs 1, 2, 3, 4, 1, ...; kernel 1, 2, 1, ...), so the hover formula
    matches the numbers view. None for a layer too large to draw cell by cell.
    """
    from ..drawing import _scene as sc

    if sc.too_large(geom):
        return None
    (ar, ac), one_d = sc.as_2d(geom)
    x = sc.default_values((ar.input_size, ac.input_size), 4)
    w = sc.default_values((ar.kernel_size, ac.kernel_size), 2)
    rows = ar.terms() if not geom.wrap else None
    cols = ac.terms() if not geom.wrap else None
    if rows is None or cols is None:
        return None
    cells = []
    for r, terms_r in enumerate(rows):
        line = []
        for c, terms_c in enumerate(cols):
            pairs = [(tr, jr, tc, jc) for tr, jr in terms_r for tc, jc in terms_c]
            name = f"out[{c}]" if one_d else f"out[{r},{c}]"
            total = 0
            if not pairs:
                formula = f"{name} = 0 (no input reaches it)"
            else:
                sym = " + ".join(f"x[{jc}]*w[{tc}]" if one_d else f"x[{jr},{jc}]*w[{tr},{tc}]" for tr, jr, tc, jc in pairs)
                num = " + ".join(f"{x[jr, jc]}*{w[tr, tc]}" for tr, jr, tc, jc in pairs)
                total = sum(int(x[jr, jc]) * int(w[tr, tc]) for tr, jr, tc, jc in pairs)
                formula = f"{name} = {sym} = {num} = {total}"
            line.append({"inputs": [[jr, jc] for _, jr, _, jc in pairs], "taps": [[tr, tc] for tr, _, tc, _ in pairs],
                         "formula": formula, "value": total})
        cells.append(line)
    return {"cells": cells, "input_values": x.tolist(), "kernel_values": w.tolist(), "one_d": one_d}


def _conversions(input_shape, kernel, framework: str, args: dict) -> tuple[list[dict], str]:
    from ..conversion import CODE_TARGETS, convert

    rows: list[dict[str, Any]] = []
    code = ""
    for target in conventions.names():
        try:
            c = convert(input_shape, kernel, framework, target, **args)
        except ConfigError as err:
            rows.append({"framework": target, "title": conventions.get(target).title, "error": str(err)})
            continue
        if target == framework:
            code = c.code
            continue
        rows.append({"framework": target, "title": conventions.get(target).title, "args": _plain(c.args),
                     "call": ", ".join(f"{k}={v!r}" for k, v in c.args.items()),
                     "text": str(c), "exact": c.exact, "crop": _plain(c.crop),
                     "code": c.code if target in CODE_TARGETS else ""})
    if not code:
        code = f"# tconv writes runnable code for {', '.join(CODE_TARGETS)}; the arguments above are {framework}'s own"
    return rows, code


def answer(request: dict) -> dict:
    """The page's data for one request; raises :class:`ConfigError` (answered 400) for a bad one.

    >>> a = answer({"framework": "keras", "input": "8x8", "kernel": "3", "stride": "2", "padding": "same"})
    >>> a["output_size"], a["window"]
    ('16x16', [[0, 16], [0, 16]])
    >>> answer({"framework": "keras", "input": "8x8", "kernel": "3", "padding": "sideways"})
    Traceback (most recent call last):
    ...
    tconv.errors.ConfigError: padding='sideways' is not one of 'valid', 'same' in Keras
    """
    from ..api import geometry
    from ..explain import build

    input_shape, kernel, framework, args = read_layer(request)
    view = _text("view", request.get("view") or "scatter").lower()
    if view not in VIEWS:
        raise ApiError(f"unknown view {view!r}; the views are: {', '.join(VIEWS)}")
    numbers = request.get("numbers", False)
    if isinstance(numbers, str):
        numbers = numbers.lower() in ("1", "true", "on", "yes")
    if not isinstance(numbers, bool):
        raise ApiError(f"numbers must be true or false, not {numbers!r}"[:120])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", FrameworkQuirkWarning)
        geom = geometry(input_shape, kernel, framework, **args)
        if geom.ndim > 2:
            raise ApiError(f"the explorer draws 1-D and 2-D layers; this one has {geom.ndim} spatial axes")
        explanation = build(geom)
    convention = conventions.get(framework)
    result: dict[str, Any] = {
        "framework": framework, "title": convention.title, "api": convention.api,
        "input_size": _fmt(geom.input_shape), "kernel_size": _fmt(geom.kernel_size),
        "full_size": _fmt(geom.full_shape), "output_size": _fmt(geom.output_shape),
        "window": [list(ax.kept) for ax in geom], "crop": [[ax.crop_begin, ax.crop_end] for ax in geom],
        "args": _plain(args), "header": explanation.header,
        "steps": [{"key": s.key, "title": s.title, "lines": list(s.lines)} for s in explanation.steps],
        "formula": list(explanation.step("formula").lines),
        "rule": convention.rule,
        "warnings": [str(w.message) for w in caught],
        "empty": geom.empty,
    }
    forward = explanation.steps[[s.key for s in explanation.steps].index("forward")].data[0]
    result["forward"] = _plain(forward)
    if geom.empty:
        result.update(drawing=None, cells=None, convert=[], code="")
        return result
    result["drawing"] = _drawing(geom, view, numbers)
    result["cells"] = _cells(geom)
    result["convert"], result["code"] = _conversions(input_shape, kernel, framework, args)
    return result


def frameworks() -> list[dict]:
    """The frameworks the page offers, with their argument names (for the controls' labels)."""
    found = []
    for name in conventions.names():
        c = conventions.get(name)
        found.append({"name": name, "title": c.title, "api": c.api, "names": dict(c.cli_names),
                      "defaults": _plain({k: v for k, v in c.defaults.items() if isinstance(v, (int, str, type(None), tuple, list))})})
    return found
