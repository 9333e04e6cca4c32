"""The ``tconv`` command line: parse, call the API, print. Errors are one line, exit code 2."""
from __future__ import annotations

import argparse
import ast
import importlib
import re
import sys
import warnings
from typing import Any, Callable, Sequence

from . import conventions
from .errors import ConfigError, FrameworkQuirkWarning

EPILOG = """\
examples:
  tconv shape 8x8 -f keras -k 3 -s 2 -p same            # 16x16: Keras 'same' doubles with stride 2
  tconv shape 96,128 -f keras -k 3 -s 2 -p valid        # 193x257
  tconv shape 2x2 -f pytorch -k 2 -s 2 -p 1             # 2x2: PyTorch padding shrinks the output
  tconv shape 12 -f pytorch -k 5 -s 2 --output-padding 1  # 28
  tconv explain 8x8 -f keras -k 3 -s 2 -p same          # the derivation, step by step
  tconv explain 4 -f onnx -k 3 -s 2 -p same_upper
  tconv shape 4 -f tensorflow -k 3 -s 2 --output-size 8 -p SAME
  tconv shape 4 -f jax -k 3 -a strides=2 -a padding=VALID  # any framework argument by its own name
  tconv frameworks                                      # the frameworks and their argument names
"""

# Subcommands that other modules add (module path, function that registers the subparser).
EXTRA_COMMANDS: list[str] = [
    "tconv.draw.cli",
    "tconv.solve_cli",
    "tconv.kernels.bench_cli",
    "tconv.torch.cli",
]

# Frameworks whose padding strings are upper case; the CLI accepts any case for them.
_UPPER_PADDING = {"tensorflow", "tflite", "jax", "flax", "onnx"}


class CliError(Exception):
    """A user error in the command line."""


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # Read "-1x8" as a (bad) size, not as an unknown option, so the user hears what is wrong with it.
        self._negative_number_matcher = re.compile(r"^-\d+([x,×]-?\d+)*$")

    def error(self, message: str) -> None:  # one line, exit 2
        raise CliError(message)


def parse_sizes(text: str, name: str = "size") -> int | tuple[int, ...]:
    """``'8x8'``, ``'96,128'`` or ``'28'`` -> int or tuple of ints.

    >>> parse_sizes("8x8"), parse_sizes("96,128"), parse_sizes("28")
    ((8, 8), (96, 128), 28)
    """
    parts = [p for p in re.split(r"[x,×\s]+", text.strip().lower()) if p]
    if not parts:
        raise CliError(f"{name} {text!r} is empty; write sizes like 8x8, 96,128 or 28")
    values = []
    for part in parts:
        if not re.fullmatch(r"[+-]?\d+", part):
            raise CliError(f"{name} {text!r} is not a size; write sizes like 8x8, 96,128 or 28")
        values.append(int(part))
    return values[0] if len(values) == 1 else tuple(values)


def parse_value(text: str) -> Any:
    """An option value: sizes (``2``, ``2x3``), a Python literal, or a plain string."""
    try:
        return parse_sizes(text)
    except CliError:
        pass
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def parse_assignment(text: str) -> tuple[str, Any]:
    if "=" not in text:
        raise CliError(f"-a {text!r} must look like NAME=VALUE, e.g. -a auto_pad=SAME_UPPER")
    key, _, value = text.partition("=")
    return key.strip(), parse_value(value.strip())


def add_layer_options(parser: argparse.ArgumentParser, kernel_required: bool = True) -> None:
    """The options that describe one layer, shared by several subcommands."""
    parser.add_argument("input", help="spatial input size: 8x8, 96,128 or 28")
    parser.add_argument("-f", "--framework", default="pytorch", help="pytorch (default), keras, tensorflow, jax, flax, onnx, tflite, mxnet, caffe")
    parser.add_argument("-k", "--kernel", required=kernel_required, help="kernel size: 3 or 3x3")
    parser.add_argument("-s", "--stride", help="stride(s): 2 or 2x1")
    parser.add_argument("-p", "--padding", help="the framework's padding: same, valid, 1, 1x2 ...")
    parser.add_argument("-d", "--dilation", help="dilation(s)")
    parser.add_argument("--output-padding", "--op", dest="output_padding", help="output padding (PyTorch, Keras, ONNX, MXNet adj)")
    parser.add_argument("-o", "--output-size", dest="output_size", help="explicit output size (PyTorch output_size, TF/ONNX/TFLite output_shape)")
    parser.add_argument("-g", "--groups", help="channel groups")
    parser.add_argument("-a", "--arg", action="append", default=[], metavar="NAME=VALUE", help="any framework argument by its own name (repeatable)")


def layer_from_args(ns: argparse.Namespace) -> tuple[Any, Any, str, dict]:
    """(input_shape, kernel_size, framework, framework args) from parsed options."""
    framework = conventions.canonical(ns.framework)
    convention = conventions.get(framework)
    input_shape = parse_sizes(ns.input, "input size")
    kernel = parse_sizes(ns.kernel, "kernel size") if ns.kernel is not None else None
    ndim = len(input_shape) if isinstance(input_shape, tuple) else (len(kernel) if isinstance(kernel, tuple) else 1)
    if not isinstance(input_shape, tuple) and convention.max_ndim == 2:
        ndim = 2  # TFLite's op is 2-D only: a bare size means the same on both axes
    generic = {}
    for key in ("stride", "padding", "dilation", "output_padding", "output_size", "groups"):
        raw = getattr(ns, key)
        if raw is None:
            continue
        value = parse_value(raw)
        if key == "padding" and isinstance(value, str) and framework in _UPPER_PADDING:
            value = value.upper()
        if key == "output_size" and isinstance(value, int) and ndim > 1:
            value = (value,) * ndim  # -o 16 on a 2-D layer means 16x16, as sizes do elsewhere in the CLI
        generic[key] = value
    if framework == "flax" and isinstance(kernel, int) and ndim > 1:
        kernel = (kernel,) * ndim  # the CLI reads -k 3 as 3 on every axis, whatever Flax does with a bare int
    if isinstance(input_shape, int) and ndim == 1 and framework not in ("flax", "tflite"):
        input_shape = (input_shape,)
    args = convention.native_args(generic, ndim)
    args.update(parse_assignment(a) for a in ns.arg)
    return input_shape, kernel, framework, args


def fmt_shape(shape: Sequence[int]) -> str:
    return "x".join(map(str, shape))


def cmd_shape(ns: argparse.Namespace) -> int:
    from .api import output_shape

    input_shape, kernel, framework, args = layer_from_args(ns)
    print(fmt_shape(output_shape(input_shape, kernel, framework, **args)))
    return 0


def cmd_explain(ns: argparse.Namespace) -> int:
    from .explain import explain

    input_shape, kernel, framework, args = layer_from_args(ns)
    print(explain(input_shape, kernel, framework, **args))
    return 0


def cmd_frameworks(ns: argparse.Namespace) -> int:
    for name in conventions.names():
        c = conventions.get(name)
        print(f"{name:<11} {c.title} {c.api}")
        print(f"{'':<11} arguments: {', '.join(c.defaults)}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="tconv",
        description="Transposed convolution, exactly: output sizes, kept windows and derivations for every framework.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=_version())
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    p = sub.add_parser("shape", help="print the output size", epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_layer_options(p)
    p.set_defaults(func=cmd_shape)

    p = sub.add_parser("explain", help="print the step-by-step derivation", epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_layer_options(p)
    p.set_defaults(func=cmd_explain)

    p = sub.add_parser("frameworks", help="list the frameworks and their argument names")
    p.set_defaults(func=cmd_frameworks)

    for module_name in EXTRA_COMMANDS:
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        register: Callable = getattr(module, "register")
        register(sub)
    return parser


def _version() -> str:
    from . import __version__

    return f"tconv {__version__}"


def _one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Framework quirks are part of the answer: one plain line each, no source excerpt."""
    print(f"tconv: warning: {message}", file=sys.stderr if file is None else file)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (0 ok, 2 bad input)."""
    try:
        parser = build_parser()
        ns = parser.parse_args(argv)
        if not getattr(ns, "func", None):
            parser.print_help()
            return 0
        with warnings.catch_warnings():
            warnings.simplefilter("always", FrameworkQuirkWarning)
            warnings.showwarning = _one_line_warning
            return int(ns.func(ns) or 0)
    except (CliError, ConfigError) as err:
        print(f"tconv: error: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # e.g. `tconv frameworks | head`
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print("tconv: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    # `python -m tconv.cli` runs this file as __main__, a second copy of the module; the
    # subcommands raise tconv.cli.CliError, which only the real module's main() catches.
    from tconv.cli import main as real_main

    sys.exit(real_main())
