"""``tconv check``: trace a whole model, report its size problems and the fixes."""
from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import Any

from .._parse import parse_sizes
from ._common import CliError

EPILOG = """\
MODEL is an .onnx or .keras file, or module:callable, a callable that builds the model from
the input shape (e.g. my_pkg.models:build_unet, importable from the current folder; a Keras
build that fails at a Concatenate is still reported). An .onnx file needs no --input when the
graph declares its input shape; Keras shapes are channels-last, the batch may be left out
(--input 350x525x3).

examples:
  tconv check tconv.checking.examples:build_unet --input 1x3x350x525   # the skips disagree; fixes
  tconv check tconv.checking.examples:build_unet --input 1x3x352x528   # OK: multiples of 16
  tconv check tconv.checking.examples:build_generator --input 1x16x1x1 --json
  tconv check tconv.checking.examples:build_generator --input 1x16x1x1 --against tconv.checking.examples:build_generator
"""


def _load(spec: str) -> Any:
    if spec.lower().endswith((".onnx", ".keras", ".h5")):
        if not os.path.isfile(spec):
            raise CliError(f"{spec}: no such file")
        return spec
    module_name, colon, attribute = spec.partition(":")
    if not colon or not module_name or not attribute or not all(p.isidentifier() for p in module_name.split(".")) \
            or not all(p.isidentifier() for p in attribute.split(".")):
        raise CliError(f"MODEL {spec!r} must be an .onnx or .keras file, or module:callable (e.g. my_pkg.models:build_unet)")
    sys.path.insert(0, os.getcwd())
    try:
        target: Any = importlib.import_module(module_name)
    except Exception as err:  # the user's module failed to import: say why, in one line
        raise CliError(f"cannot import {module_name}: {type(err).__name__}: {' '.join(str(err).split())}") from None
    finally:
        sys.path.remove(os.getcwd()) if os.getcwd() in sys.path else None
    for part in attribute.split("."):
        if not hasattr(target, part):
            raise CliError(f"{module_name} has no {attribute!r}")
        target = getattr(target, part)
    return target


def cmd_check(ns: argparse.Namespace) -> int:
    model = _load(ns.model)
    shape = None
    if ns.input is not None:
        parsed = parse_sizes(ns.input, "input shape")
        shape = parsed if isinstance(parsed, tuple) else (parsed,)
    from ..checking import check

    if ns.against is not None:
        other = _load(ns.against)
        other_shape = None
        if ns.against_input is not None:
            parsed = parse_sizes(ns.against_input, "input shape")
            other_shape = parsed if isinstance(parsed, tuple) else (parsed,)
        report = check(model, other, shape, other_shape)
    elif ns.against_input is not None:
        raise CliError("--against-input is the input shape of the --against model; give --against too")
    else:
        report = check(model, shape)
    if ns.json:
        print(report.to_json())
    elif sys.stdout.isatty():
        try:
            from rich.console import Console
        except ImportError:
            print(report)
        else:
            Console().print(report)
    else:
        print(report)
    return 0


def register(sub) -> None:
    p = sub.add_parser("check", help="trace a whole model: size problems, fixes, accepted input sizes",
                       description="Trace a PyTorch or ONNX model without activations: every convolution, "
                                   "transposed convolution, pooling, upsampling and join, the problems first "
                                   "with the fixes, and the input sizes the model accepts.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", help="an .onnx or .keras file, or module:callable building the model from the input shape")
    p.add_argument("--input", "-i", help="the full input shape, e.g. 1x3x350x525 (batch, channels, spatial)")
    p.add_argument("--against", metavar="MODEL", help="compare with this model (its conversion) layer by layer: "
                                                         "the first layer where a pixel is lost or shifted")
    p.add_argument("--against-input", dest="against_input",
                   help="the --against model's input shape (default: declared, or --input in its layout)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=cmd_check)
