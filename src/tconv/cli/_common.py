"""What every subcommand shares: the parser, the layer options, argument merging and notes.

Nothing here imports NumPy: reading a layer from the command line needs the
conventions only.
"""
from __future__ import annotations

import argparse
import re
from typing import Any, NoReturn, Sequence

from .. import conventions
from .._parse import parse_assignment, parse_int, parse_sizes, parse_value, quote
from ..conventions import Convention
from ..errors import ConfigError


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
    parser.add_argument("--tf-onednn", dest="tf_onednn", choices=("on", "off"),
                        help="TensorFlow/Keras: describe a machine with TensorFlow's oneDNN kernels on or off "
                             "(default: this machine; see `tconv frameworks`)")


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
        if key == "padding" and isinstance(value, str) and convention.cli_upper_padding:
            value = value.upper()
        if key == "output_size" and isinstance(value, int) and ndim > 1:
            value = (value,) * ndim  # -o 16 on a 2-D layer means 16x16, as sizes do elsewhere in the CLI
        generic[key] = value
        for name in convention.native_args({key: value}, ndim):
            origins[name] = given(ns, key, _FLAGS[key])
    if convention.cli_kernel_per_axis and isinstance(kernel, int) and ndim > 1:
        kernel = (kernel,) * ndim  # the CLI reads -k 3 as 3 on every axis, whatever the framework does with a bare int
    if isinstance(input_shape, int) and ndim == 1 and not convention.cli_bare_sizes:
        input_shape = (input_shape,)
    args = convention.native_args(generic, ndim)
    if getattr(ns, "tf_onednn", None) is not None:
        args["tf_onednn"] = ns.tf_onednn == "on"
        origins["tf_onednn"] = given(ns, "tf_onednn", "--tf-onednn")
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


def _output_size_prefix(ns, convention: Convention, value: Any, ndim: int, origins: dict, args: dict) -> None:
    """An output size longer than the input's axes: accepted where the framework accepts one, and then noted."""
    if not isinstance(value, (list, tuple)) or len(value) <= ndim:
        return
    name = convention.cli_names["output_size"]
    typed = origins[name]
    try:
        kept, dropped, how = convention.output_size_entries(tuple(value), ndim, args)
    except ConfigError as err:
        raise CliError(f"{typed} has {len(value)} sizes for a {ndim}-D input; {err}") from None
    note(ns, f"{typed}: {_possessive(convention.title)} {name} {how}, {fmt_shape(kept)}, and ignores "
             f"{' and '.join(map(str, dropped))}")


def fmt_shape(shape: Sequence[int]) -> str:
    return "x".join(map(str, shape))
