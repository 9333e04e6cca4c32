"""The ``tconv`` command line: parse, call the API, print. Errors are one line, exit code 2."""
from __future__ import annotations

import argparse
import importlib
import re
import sys
import warnings
from typing import Any, Callable, NoReturn, Sequence

from . import conventions
from ._parse import parse_assignment, parse_int, parse_sizes, parse_value, quote
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


# The option each generic layer setting comes from, for messages that name it.
_FLAGS = {"stride": "-s", "padding": "-p", "dilation": "-d", "output_padding": "--output-padding",
          "output_size": "-o", "groups": "-g"}
# How a message names an option's destination, where its dest is no plain word.
_WHAT = {"fmt": "file format", "out": "output file", "target": "target framework", "arg": "-a"}


def _typed(option_string: str | None, value: Any) -> str:
    """How the user wrote an option: ``-s 2``, ``--from pytorch``; unusual text quoted."""
    text = value if isinstance(value, str) else " ".join(map(str, value)) if isinstance(value, list) else str(value)
    shown = text if re.fullmatch(r"[\w.,×:=()\[\]+-]+", text, re.ASCII) else quote(text)
    return f"{option_string} {shown}" if option_string else shown


def _given(namespace: argparse.Namespace) -> dict[str, str]:
    """dest -> how the user gave it (``-s 2``), for the options given so far."""
    return namespace.__dict__.setdefault("_given", {})


class _Once(argparse._StoreAction):
    """A store option that may be given once: a second value is an error naming both, never silently kept."""

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        given = _given(namespace)
        typed = _typed(option_string, values)
        if self.dest in given:
            what = _WHAT.get(self.dest, self.dest.replace("_", " "))
            raise CliError(f"{given[self.dest]} and {typed} both give the {what}; give it once")
        given[self.dest] = typed
        setattr(namespace, self.dest, values)


def strict_int(text: str) -> int:
    """argparse ``type`` for whole numbers: ``int()`` would also read ``'٣'``, ``'1_0'`` and ``' +5 '``."""
    try:
        return parse_int(text)
    except ConfigError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


class _Parser(argparse.ArgumentParser):
    """Errors are CliErrors (one line, exit 2); single-valued options may be given once; ints are read strictly."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # Read "-1x8" as a (bad) size, not as an unknown option, so the user hears what is wrong with it.
        self._negative_number_matcher = re.compile(r"^-\d+([x,×]-?\d+)*$")

    def add_argument(self, *args, **kwargs):
        if args and args[0].startswith("-") and kwargs.get("action") in (None, "store"):
            kwargs["action"] = _Once
        if kwargs.get("type") is int:
            kwargs["type"] = strict_int
        return super().add_argument(*args, **kwargs)

    def error(self, message: str) -> NoReturn:  # one line, exit 2
        # argparse quotes the user's words as they are; a newline in one must not start a second line
        raise CliError(" ".join(message.splitlines()))


def note(ns: argparse.Namespace, text: str) -> None:
    """Say what the CLI assumed or dropped: printed as ``tconv: note: ...`` once the command succeeds."""
    notes = ns.__dict__.setdefault("_notes", [])
    if text not in notes:
        notes.append(text)


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
    input_shape, kernel, framework, args, _ = layer_with_origins(ns)
    return input_shape, kernel, framework, args


def layer_with_origins(ns: argparse.Namespace) -> tuple[Any, Any, str, dict, dict[str, str]]:
    """:func:`layer_from_args`, plus which option (as typed) set each framework argument.

    Refuses an argument set twice (``-s 2 -a strides=3``), naming both.
    """
    framework = conventions.canonical(ns.framework)
    convention = conventions.get(framework)
    input_shape = parse_sizes(ns.input, "input size")
    kernel = parse_sizes(ns.kernel, "kernel size") if ns.kernel is not None else None
    ndim = len(input_shape) if isinstance(input_shape, tuple) else (len(kernel) if isinstance(kernel, tuple) else 1)
    if not isinstance(input_shape, tuple) and convention.max_ndim == 2:
        ndim = 2  # TFLite's op is 2-D only: a bare size means the same on both axes
    generic: dict[str, Any] = {}
    origins: dict[str, str] = {}
    for key in ("stride", "padding", "dilation", "output_padding", "output_size", "groups"):
        raw = getattr(ns, key)
        if raw is None:
            continue
        value = parse_value(raw, key.replace("_", " "))
        if key == "padding" and isinstance(value, str) and framework in _UPPER_PADDING:
            value = value.upper()
        if key == "output_size" and isinstance(value, int) and ndim > 1:
            value = (value,) * ndim  # -o 16 on a 2-D layer means 16x16, as sizes do elsewhere in the CLI
        generic[key] = value
        for name in convention.native_args({key: value}, ndim):
            origins[name] = given(ns, key, _FLAGS[key])
    if framework == "flax" and isinstance(kernel, int) and ndim > 1:
        kernel = (kernel,) * ndim  # the CLI reads -k 3 as 3 on every axis, whatever Flax does with a bare int
    if isinstance(input_shape, int) and ndim == 1 and framework not in ("flax", "tflite"):
        input_shape = (input_shape,)
    args = convention.native_args(generic, ndim)
    merge_assignments(args, ns.arg, origins, convention.title)
    if "output_size" in generic:
        _output_size_prefix(ns, convention, generic["output_size"], ndim, origins, args)
    return input_shape, kernel, framework, args, origins


def given(ns: argparse.Namespace, dest: str, flag: str = "") -> str:
    """How the user wrote the option stored in ``dest`` (``-s 2``, ``--stride=2``), for messages."""
    return getattr(ns, "_given", {}).get(dest) or _typed(flag or f"--{dest.replace('_', '-')}", getattr(ns, dest, ""))


def merge_assignments(args: dict, assignments: Sequence[str], origins: dict[str, str], owner: str) -> dict:
    """Add ``-a NAME=VALUE`` assignments to ``args``, refusing a name set twice.

    ``origins`` maps each name already in ``args`` to the option that set it, as typed
    (``{'strides': '-s 2'}``); a name set there or by an earlier ``-a`` is an error naming
    both, e.g. "-s 2 and -a strides=3 both set Keras' strides; give it once". ``owner``
    names whose argument it is (a framework's title). Returns ``args``.
    """
    for text in assignments:
        key, value = parse_assignment(text)
        typed = _typed("-a", text)
        if key in origins:
            raise CliError(f"{origins[key]} and {typed} both set {_possessive(owner)} {key}; give it once")
        origins[key] = typed
        args[key] = value
    return args


def _possessive(title: str) -> str:
    return f"{title}'" if title.endswith("s") else f"{title}'s"


def _output_size_prefix(ns, convention, value: Any, ndim: int, origins: dict, args: dict) -> None:
    """An output size longer than the input's axes: accepted where the framework accepts one, and then noted."""
    if not isinstance(value, (list, tuple)) or len(value) <= ndim:
        return
    name = convention.cli_names["output_size"]
    typed = origins[name]
    value = tuple(value)
    extra = len(value) - ndim
    if convention.name == "pytorch" and extra in (1, 2):
        kept, dropped = value[extra:], value[:extra]
        how = f"keeps the last {ndim} entr{'y' if ndim == 1 else 'ies'}"
    elif convention.name in ("tensorflow", "tflite") and extra == 2:
        data_format = args.get("data_format")
        channels_first = isinstance(data_format, str) and data_format.upper().startswith("NC")
        kept = value[2:] if channels_first else value[1:-1]
        dropped = value[:2] if channels_first else (value[0], value[-1])
        how = f"is ({'batch, channels, spatial' if channels_first else 'batch, spatial, channels'})"
        how += " and keeps the spatial entries"
    else:
        allowed = {
            "pytorch": f"{ndim}, {ndim + 1} or {ndim + 2} entries (keeping the last {ndim})",
            "tensorflow": f"{ndim} spatial entries, or {ndim + 2} with batch and channels",
            "tflite": f"{ndim} spatial entries, or {ndim + 2} with batch and channels (NHWC)",
            "onnx": f"the {ndim} spatial entries only (onnxruntime's shape inference rejects {len(value)}: "
                    "'Attribute output_shape has incorrect size')",
        }.get(convention.name, f"the {ndim} spatial entries only")
        raise CliError(
            f"{typed} has {len(value)} sizes for a {ndim}-D input; {_possessive(convention.title)} {name} takes {allowed}"
        )
    note(ns, f"{typed}: {_possessive(convention.title)} {name} {how}, {fmt_shape(kept)}, and ignores "
             f"{' and '.join(map(str, dropped))}")


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
        except ModuleNotFoundError as err:
            if err.name != module_name:
                raise  # a subcommand's own import failed: that is a bug to see, not a command to hide
            continue
        register: Callable = getattr(module, "register")
        register(sub)
    return parser


def _version() -> str:
    from . import __version__

    return f"tconv {__version__}"


def _one_line(text: Any) -> str:
    return " ".join(str(text).splitlines())


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (0 ok, 2 bad input)."""
    try:
        parser = build_parser()
        ns = parser.parse_args(argv)
        if not getattr(ns, "func", None):
            parser.print_help()
            return 0
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", FrameworkQuirkWarning)
            code = int(ns.func(ns) or 0)
        # Framework quirks are part of the answer: one plain line each, no source excerpt, and only
        # for an answer (a refused command prints its one error line and nothing else).
        for warning in caught:
            print(f"tconv: warning: {_one_line(warning.message)}", file=sys.stderr)
        for text in getattr(ns, "_notes", ()):
            print(f"tconv: note: {_one_line(text)}", file=sys.stderr)
        return code
    except (CliError, ConfigError) as err:
        # one line whatever the message quotes (argparse and a few library messages show text as typed)
        print(f"tconv: error: {_one_line(err)}", file=sys.stderr)
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
