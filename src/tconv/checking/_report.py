"""The report of a whole-model check: layers, problems with their fixes, the accepted input sizes.

Plain data (dataclasses), rendered three ways: ``str()`` is a plain-text table
(what the CLI prints and the docs show), ``__rich__`` a Rich table for a
terminal, ``_repr_html_`` an HTML table for a notebook, and :meth:`Report.to_json`
the JSON that ``tconv check --json`` prints.
"""
from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Layer", "Fix", "Problem", "Report"]


def _shape(shape: Any) -> str:
    return "x".join(map(str, shape)) if shape is not None else "?"


@dataclass(frozen=True)
class Layer:
    """One row of the table: a layer, a join (cat / add) or an ONNX node.

    Attributes
    ----------
    name : str
        Where it is: the module's qualified name, or the ONNX node's name.
    op : str
        What it is: ``ConvTranspose2d``, ``Conv2d``, ``MaxPool2d``, ``interpolate``, ``cat``, ``add``...
    input_shape, output_shape : tuple of int
        Full shapes (batch and channels included); for a join, the first operand's.
    window : str
        The kept window per spatial axis (transposed convolutions: ``full[b:e] of N``),
        or the explicit padding a forward convolution or pooling adds.
    args : dict
        The framework's own arguments, as the layer holds them.
    note : str
        Anything else: the three ONNX answers, a size mismatch, how the size was found.
    """

    name: str
    op: str
    input_shape: tuple
    output_shape: tuple
    window: str = ""
    args: dict = field(default_factory=dict)
    note: str = ""

    def to_dict(self) -> dict:
        return {"name": self.name, "op": self.op, "input_shape": list(self.input_shape),
                "output_shape": list(self.output_shape) if self.output_shape is not None else None,
                "window": self.window, "args": _jsonable(self.args), "note": self.note}


@dataclass(frozen=True)
class Fix:
    """A change that makes the problem go away, checked by tracing the changed model again.

    Attributes
    ----------
    kind : str
        ``"input"`` (give another input shape), ``"argument"`` (set a layer's argument)
        or ``"interpolate"`` (resize one operand to the other's size before the join).
    text : str
        The fix in words.
    input_shape : tuple or None
        For ``"input"``: the full input shape that works.
    layer : str
        For ``"argument"`` and ``"interpolate"``: the module or node to change.
    args : dict
        For ``"argument"``: the arguments to set on ``layer``; for ``"interpolate"``: ``size``.
    """

    kind: str
    text: str
    input_shape: tuple | None = None
    layer: str = ""
    args: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"kind": self.kind, "text": self.text,
                "input_shape": list(self.input_shape) if self.input_shape else None,
                "layer": self.layer, "args": _jsonable(self.args)}


@dataclass(frozen=True)
class Problem:
    """What went wrong where, as arithmetic, and the fixes that were checked to work."""

    message: str
    layer: str = ""
    fixes: tuple = ()

    def to_dict(self) -> dict:
        return {"message": self.message, "layer": self.layer,
                "fixes": [f.text for f in self.fixes], "fix_details": [f.to_dict() for f in self.fixes]}


@dataclass(frozen=True)
class Report:
    """The check of one model at one input shape.

    Attributes
    ----------
    model : str
        What was checked (a class name, a file).
    framework : str
        ``"pytorch"`` or ``"onnx"``.
    input_shape : tuple
        The full input shape traced.
    layers : tuple of Layer
        In the order they ran.
    problems : tuple of Problem
        Size mismatches first, then anything that stopped the trace.
    input_sizes : dict
        Spatial axis name -> the rule for the sizes the model accepts there,
        e.g. ``"multiples of 32 from 32"`` (worked out from the layers' arithmetic).
    output_shape : tuple or None
        What the model returns (its first tensor), when the trace got there.
    """

    model: str
    framework: str
    input_shape: tuple
    layers: tuple = ()
    problems: tuple = ()
    input_sizes: dict = field(default_factory=dict)
    output_shape: tuple | None = None

    @property
    def ok(self) -> bool:
        """True when nothing went wrong."""
        return not self.problems

    def to_dict(self) -> dict:
        return {
            "model": self.model,
            "framework": self.framework,
            "input_shape": list(self.input_shape),
            "output_shape": list(self.output_shape) if self.output_shape is not None else None,
            "ok": self.ok,
            "problems": [p.to_dict() for p in self.problems],
            "input_sizes": dict(self.input_sizes),
            "layers": [layer.to_dict() for layer in self.layers],
        }

    def to_json(self, indent: int | None = 2) -> str:
        """The report as JSON: ``layers``, ``problems`` (each ``message`` and ``fixes``) and ``input_sizes``."""
        return json.dumps(self.to_dict(), indent=indent)

    # ---- rendering ----------------------------------------------------------------------------------
    def _rows(self) -> list[tuple[str, str, str, str, str]]:
        rows = []
        for layer in self.layers:
            args = ", ".join(f"{k}={_arg_text(v)}" for k, v in layer.args.items())
            what = layer.window + (f"  {layer.note}" if layer.note else "")
            rows.append((layer.name or "-", layer.op, f"{_shape(layer.input_shape)} -> {_shape(layer.output_shape)}",
                         what.strip(), args))
        return rows

    def _headline(self) -> str:
        verdict = "OK" if self.ok else f"{len(self.problems)} problem{'s' if len(self.problems) != 1 else ''}"
        out = f" -> {_shape(self.output_shape)}" if self.output_shape is not None else ""
        return f"{self.model} ({self.framework}) at {_shape(self.input_shape)}{out}: {verdict}"

    def _problem_lines(self) -> list[str]:
        lines = []
        for n, problem in enumerate(self.problems, 1):
            lines.append(f"problem {n}: {problem.message}")
            for fix in problem.fixes:
                lines.append(f"  fix: {fix.text}")
        return lines

    def _size_lines(self) -> list[str]:
        return [f"accepted {axis}: {rule}" for axis, rule in self.input_sizes.items()]

    def __str__(self) -> str:
        lines = [self._headline(), *self._problem_lines(), *self._size_lines()]
        rows = [("layer", "op", "shape", "window", "arguments"), *self._rows()]
        widths = [max(len(r[c]) for r in rows) for c in range(4)]
        for row in rows:
            lines.append("  ".join(cell.ljust(w) for cell, w in zip(row, widths)) + "  " + row[4])
        return "\n".join(line.rstrip() for line in lines)

    def __rich__(self) -> Any:
        from rich.console import Group
        from rich.table import Table
        from rich.text import Text

        table = Table(title=self._headline(), show_lines=False)
        for column in ("layer", "op", "shape", "window", "arguments"):
            table.add_column(column)
        problem_layers = {p.layer for p in self.problems}
        for layer, row in zip(self.layers, self._rows()):
            table.add_row(*row, style="bold red" if layer.name in problem_layers and layer.op in ("cat", "add") else None)
        parts: list[Any] = [Text(line, style="red" if line.startswith("problem") else "green")
                            for line in self._problem_lines()]
        parts += [Text(line, style="cyan") for line in self._size_lines()]
        return Group(*parts, table)

    def _repr_html_(self) -> str:
        e = html.escape
        out = [f"<div class='tconv-check'><p><b>{e(self._headline())}</b></p>"]
        if self.problems:
            out.append("<ol>")
            for problem in self.problems:
                fixes = "".join(f"<li>{e(f.text)}</li>" for f in problem.fixes)
                out.append(f"<li style='color:#b00'>{e(problem.message)}<ul>{fixes}</ul></li>")
            out.append("</ol>")
        if self.input_sizes:
            out.append("<p>" + "<br>".join(e(line) for line in self._size_lines()) + "</p>")
        out.append("<table><tr><th>layer</th><th>op</th><th>shape</th><th>window</th><th>arguments</th></tr>")
        for row in self._rows():
            out.append("<tr>" + "".join(f"<td>{e(cell)}</td>" for cell in row) + "</tr>")
        out.append("</table></div>")
        return "".join(out)


def _arg_text(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return "(" + ", ".join(map(str, value)) + ("," if len(value) == 1 else "") + ")"
    return repr(value) if isinstance(value, str) else str(value)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (bool, int, float, str)) or value is None:
        return value
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)
