"""The ``tconv`` command line: parse, call the API, print. Errors are one line, exit code 2.

The subcommands live one group per module (:mod:`.layer`, :mod:`.draw`,
:mod:`.solve`, :mod:`.bench`, :mod:`.serve`), registered from the fixed list below; none
imports NumPy or matplotlib until its command runs, so ``tconv shape`` stays
quick. The library never imports this package.
"""
from __future__ import annotations

import argparse
import sys
import warnings
from typing import Any, Sequence

from ..errors import ConfigError, FrameworkQuirkWarning
from . import bench, check, draw, layer, serve, solve
from ._common import CliError, _Parser
from .layer import EPILOG

__all__ = ["main", "build_parser", "CliError"]

#: every subcommand module, in the order ``tconv --help`` lists them
COMMANDS = (layer, draw, solve, check, bench, serve)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="tconv",
        description="Transposed convolution, exactly: output sizes, kept windows and derivations for every framework.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=_version())
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for module in COMMANDS:
        module.register(sub)
    return parser


def _version() -> str:
    from .. import __version__

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
