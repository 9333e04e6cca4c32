"""``tconv draw``: pictures from the command line (text in the terminal, or SVG/PNG/GIF files)."""
from __future__ import annotations

import argparse
import copy
import sys

from ..errors import ConfigError
from ._common import CliError, _possessive, _typed, add_layer_options, layer_from_args, layer_with_origins

EPILOG = """\
views:
  scatter         each input element stamps the kernel into the uncropped output; the last
                  frame hatches what the framework's rule crops (default)
  zero-insertion  s-1 zeros between inputs, a K-1-crop border, the flipped kernel sliding
  phase           the output as s^d phases, each a small stride-1 convolution of the
                  undilated input with the taps that reach it, then interleaved
  resize          nearest upsampling + a stride-1 conv, then the same numbers from a transposed
                  conv with the box-filtered kernel (is it upsampling plus a convolution?)
  overlap         kernel taps per output cell: the checkerboard, counts printed

examples:
  tconv draw 3x3 -f keras -k 3 -s 2 -p same                     # text in the terminal
  tconv draw 3x3 -f keras -k 3 -s 2 -p same --out same.gif      # animated, one stamp per frame
  tconv draw 2x2 -k 2 -s 2 -p 1 --view zero-insertion --numbers --out p1.png
  tconv draw 8x8 -k 3 -s 2 --view overlap --out checkerboard.svg
  tconv draw 4 -k 3 -s 2 -p 1 --view phase --numbers          # no zeros inserted: 2 phases
  tconv draw 12 -k 5 -s 2 --output-padding 1 --numbers        # 1-D, every value shown
  tconv draw 3x3 -k 3 -s 2 --compare keras:padding=same pytorch:padding=1,output_padding=1
The file format comes from the extension of --out (.svg .png .gif .txt) or from --format.
Layers larger than 40 cells along an axis are summarised (sizes and kept window only).
"""


def register(subparsers) -> None:
    """Add ``tconv draw`` to the CLI."""
    p = subparsers.add_parser(
        "draw", help="draw the layer: terminal text, SVG, PNG or animated GIF",
        description="Draw a transposed convolution: how the input stamps the kernel, what is cropped, "
                    "where taps overlap. Prints text unless --out names a file.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_layer_options(p, kernel_required=True)
    p.add_argument("--view", default="scatter", help="scatter (default), zero-insertion, phase, resize or overlap")
    p.add_argument("--out", "--save", dest="out", metavar="PATH", help="write the picture to PATH (.svg .png .gif .txt)")
    p.add_argument("--format", dest="fmt", metavar="FMT", help="svg, png, gif or txt (default: from --out's extension)")
    p.add_argument("--compare", nargs="+", metavar="FRAMEWORK:NAME=VALUE,...",
                   help="draw the layer under each of these frameworks side by side; the other options apply to all")
    p.add_argument("--numbers", action="store_true", help="small integer input and kernel; every value shown")
    p.add_argument("--frame", type=int, default=-1, help="which frame an SVG/PNG shows (default: the last)")
    p.add_argument("--terminal", action="store_true", help="print the text rendering (the default without --out)")
    p.set_defaults(func=cmd_draw)


def _spec_geometry(spec: str, ns: argparse.Namespace):
    """One --compare entry: the shared options, mapped to the framework's names, then the entry's own.

    An argument that both a shared option and the entry set is an error naming both.
    """
    from .. import conventions
    from ..api import geometry
    from ..drawing import parse_spec

    framework, own = parse_spec(spec)
    framework = conventions.canonical(framework)
    convention = conventions.get(framework)
    local = copy.copy(ns)
    local.framework = framework
    local.arg = list(ns.arg)
    input_shape, kernel, framework, args, origins = layer_with_origins(local)
    here = _typed("--compare", spec)
    for key, value in own.items():
        name = key if key in convention.defaults else convention.cli_names.get(key, key)
        if name == convention.cli_names.get("padding") and isinstance(value, str) and convention.cli_upper_padding:
            value = value.upper()
        if name in origins:
            where = "the options outside --compare apply to every layer" if not origins[name].startswith("--compare") else "an entry names each argument once"
            raise CliError(f"{origins[name]} and {here} both set {_possessive(convention.title)} {name}; give it once ({where})")
        origins[name] = here
        args[name] = value
    return geometry(input_shape, kernel, framework, **args)


def cmd_draw(ns: argparse.Namespace) -> int:
    from ..drawing import draw

    if ns.compare:
        if "framework" in getattr(ns, "_given", {}):
            raise CliError(f"{ns._given['framework']} has no effect with --compare, whose entries name their frameworks "
                           "(e.g. --compare keras:padding=same pytorch:padding=1); drop it")
        geoms = [_spec_geometry(spec, ns) for spec in ns.compare]
        drawing = draw(geoms[0], view="compare", numbers=ns.numbers, compare=geoms[1:],
                       output=ns.out, fmt=ns.fmt, frame=ns.frame) if len(geoms) > 1 else None
        if drawing is None:
            raise ConfigError("--compare needs at least two layers, e.g. --compare keras:padding=same pytorch:padding=1")
    else:
        input_shape, kernel, framework, args = layer_from_args(ns)
        if ns.out is None and ns.fmt not in (None, "txt", "text"):
            raise ConfigError(f"--format {ns.fmt} needs --out PATH (the terminal gets text)")
        drawing = draw(input_shape, kernel, framework, view=ns.view, numbers=ns.numbers,
                       output=ns.out, fmt=ns.fmt, frame=ns.frame, **args)
    if ns.out is None or ns.terminal:
        print(drawing.text(color=sys.stdout.isatty()))
    if ns.out is not None:
        print(f"wrote {ns.out} ({len(drawing.frames)} frame{'s' if len(drawing.frames) != 1 else ''})", file=sys.stderr)
    return 0
