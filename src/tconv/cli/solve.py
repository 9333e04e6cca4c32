"""``tconv solve``, ``tconv convert`` and ``tconv invert``: the command-line side of solve/convert/invert."""
from __future__ import annotations

import argparse
import sys

from .. import conventions
from .._parse import parse_sizes, parse_value
from ._common import CliError, add_layer_options, given, layer_from_args, merge_assignments

SOLVE_EPILOG = """\
examples:
  tconv solve 28 56                                # PyTorch, idiomatic first: kernel_size=4, stride=2, padding=1
  tconv solve 8x8 16x16 -f keras -k 3 -s 2         # Keras 'same' (output_padding=1 is the same layer)
  tconv solve 12,16 24,32 -f onnx --limit 5        # each axis solved on its own, then combined
  tconv solve 8 16 -f pytorch -k 3 --all           # odd settings too (padding larger than the kernel, ...)
  tconv solve 28 12 -f pytorch --limit 3           # only odd settings shrink 28 to 12: listed, marked odd
"""

CONVERT_EPILOG = """\
examples:
  tconv convert 8x8 -k 3 --from keras --to pytorch -s 2 -p same    # needs a slice: stride=2, padding=0, drop the last row/column
  tconv convert 8x8 -k 4 --from keras --to pytorch -s 2 -p same    # exact: stride=2, padding=1
  tconv convert 8x8 -k 3 --from pytorch --to onnx -s 2 -p 1 --op 1 --code   # print a runnable onnx.helper snippet
"""

INVERT_EPILOG = """\
examples:
  tconv invert 28 -f pytorch -k 5 -s 2          # Conv2d(k=5, s=2): 28 -> 12; output_padding=1 restores 28
  tconv invert 28x28 -f keras -k 3 -s 2 -p same
  tconv invert 27 -f onnx -k 3 -s 2 -p same_lower
"""

def register(subparsers) -> None:
    from ..solving import DEFAULT_MAX_KERNEL, DEFAULT_MAX_STRIDE, MAX_SEARCH

    p = subparsers.add_parser(
        "solve", help="list the arguments that give a wanted output size",
        description="List the argument sets of a framework that take INPUT to OUTPUT, the ones a practitioner "
        "would write first (the framework's idiomatic padding, the stride that fits the ratio, k = 2s or 2s-1, "
        "the least padding), each with the kept window of the uncropped output and the other spellings of the "
        "same layer. Odd settings (padding larger than the kernel, a kernel smaller than the stride, zeros "
        "added, an off-centre window) are listed only with --all, or when nothing else reaches the size. Each "
        "axis is solved on its own and the answers combined; solve checks at most "
        f"{MAX_SEARCH} candidates per axis and {MAX_SEARCH} combinations across axes. What it assumed goes to "
        "stderr as 'tconv: assumed: ...'. An unreachable size gets the reason and the nearest reachable sizes.",
        epilog=SOLVE_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("input", help="spatial input size: 8x8, 96,128 or 28")
    p.add_argument("output", help="wanted spatial output size")
    p.add_argument("-f", "--framework", default="pytorch", help="framework (default pytorch)")
    p.add_argument("-k", "--kernel", help="fixed kernel size (default: search 1..--max-kernel)")
    p.add_argument("-s", "--stride", help="fixed stride (default: search 1..--max-stride)")
    p.add_argument("-d", "--dilation", help="dilation (default 1)")
    p.add_argument("--max-kernel", type=int, default=None, help=f"largest kernel searched (default {DEFAULT_MAX_KERNEL})")
    p.add_argument("--max-stride", type=int, default=None, help=f"largest stride searched (default {DEFAULT_MAX_STRIDE})")
    p.add_argument("--limit", type=int, default=None, help="print at most this many solutions, the best ones")
    p.add_argument("--all", dest="include_odd", action="store_true", help="also list odd settings, after the ordinary ones")
    p.set_defaults(func=cmd_solve)

    p = subparsers.add_parser(
        "convert", help="write a layer in another framework, exactly",
        description="The target framework's arguments that reproduce the source layer's values, plus the exact "
        "slice or pad when the target cannot express it. Layer options are the SOURCE framework's.",
        epilog=CONVERT_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_layer_options(p)
    p.add_argument("--from", dest="framework", help="source framework (same as -f)")
    p.add_argument("--to", dest="target", required=True, help="target framework")
    p.add_argument("--code", action="store_true", help="print the runnable target snippet")
    p.set_defaults(func=cmd_convert)

    p = subparsers.add_parser(
        "invert", help="the transposed layer that restores a forward conv's input size",
        description="Given a forward convolution (the framework's conv arguments) and its input size, print the "
        "transposed-convolution arguments of the same framework that give the input size back.",
        epilog=INVERT_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("input", help="the forward convolution's spatial input size")
    p.add_argument("-f", "--framework", default="pytorch", help="framework (default pytorch)")
    p.add_argument("-k", "--kernel", required=True, help="kernel size")
    p.add_argument("-s", "--stride", help="the conv's stride(s)")
    p.add_argument("-p", "--padding", help="the conv's padding: 1, 1x2, same, valid, same_lower ...")
    p.add_argument("-d", "--dilation", help="the conv's dilation(s)")
    p.add_argument("-a", "--arg", action="append", default=[], metavar="NAME=VALUE", help="any forward-conv argument by its own name")
    p.set_defaults(func=cmd_invert)


def _optional_sizes(text, name):
    return None if text is None else parse_sizes(text, name)


def cmd_solve(ns: argparse.Namespace) -> int:
    from ..solving import DEFAULT_MAX_KERNEL, DEFAULT_MAX_STRIDE, solve

    for name in ("max_kernel", "max_stride", "limit"):
        value = getattr(ns, name)
        if value is not None and value < 1:
            raise CliError(f"--{name.replace('_', '-')} must be at least 1")
    inputs, outputs = parse_sizes(ns.input, "input size"), parse_sizes(ns.output, "output size")
    solutions = solve(
        inputs, outputs, ns.framework,
        kernel_size=_optional_sizes(ns.kernel, "kernel size"), stride=_optional_sizes(ns.stride, "stride"),
        dilation=_optional_sizes(ns.dilation, "dilation"),
        max_kernel=ns.max_kernel or DEFAULT_MAX_KERNEL, max_stride=ns.max_stride or DEFAULT_MAX_STRIDE,
        limit=ns.limit, include_odd=ns.include_odd,
    )
    _assumed(solutions.assumed)
    if solutions.left_out:
        _note(f"odd settings left out ({'; '.join(solutions.left_out)}); --all lists them")
    elif not ns.include_odd and all(s.odd for s in solutions):
        _note(f"no ordinary setting takes {_fmt(ns.input)} to {_fmt(ns.output)}; the {solutions.total} that do are odd")
    if len(solutions) < solutions.total:
        _note(f"the best {len(solutions)} of {solutions.total} (--limit)")
    for solution in solutions:
        print(solution)
    return 0


def _fmt(text: str) -> str:
    value = parse_sizes(text)
    return "x".join(map(str, value)) if isinstance(value, tuple) else str(value)


def _assumed(assumed) -> None:
    """What the command took for granted: one line on stderr, before the answer."""
    if assumed:
        print(f"tconv: assumed: {', '.join(assumed)}", file=sys.stderr)


def _note(text: str) -> None:
    print(f"tconv: note: {text}", file=sys.stderr)


def cmd_convert(ns: argparse.Namespace) -> int:
    from ..conversion import convert

    input_shape, kernel, framework, args = layer_from_args(ns)
    conversion = convert(input_shape, kernel, framework, conventions.canonical(ns.target), **args)
    print(conversion.code if ns.code else conversion, end="" if ns.code else "\n")
    return 0


def cmd_invert(ns: argparse.Namespace) -> int:
    from ..inversion import invert

    framework = conventions.canonical(ns.framework)
    input_shape = parse_sizes(ns.input, "input size")
    kernel = parse_sizes(ns.kernel, "kernel size")
    ndim = len(input_shape) if isinstance(input_shape, tuple) else (len(kernel) if isinstance(kernel, tuple) else 1)
    convention = conventions.get(framework)
    given_keys = [key for key in ("stride", "padding", "dilation") if getattr(ns, key) is not None]
    args = convention.forward_native_args({key: parse_value(getattr(ns, key)) for key in given_keys}, ndim)
    # which option set each forward argument, so that -a naming it too is an error naming both
    names = dict(zip(("stride", "dilation", "padding"), convention.forward_names))
    origins = {names[key]: given(ns, key) for key in given_keys if names.get(key) in args}
    merge_assignments(args, ns.arg, origins, convention.title)
    inversion = invert(input_shape, kernel, framework, **args)
    _assumed(inversion.assumed)
    print(inversion)
    return 0
