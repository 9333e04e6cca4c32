"""``tconv serve``: the explorer page on 127.0.0.1."""
from __future__ import annotations

import argparse

# The server runs until Ctrl-C, so these are written as sentences, not as the `tconv ...` example lines that
# tests/test_help_examples.py runs to completion; tests/test_serve_api.py starts and stops it instead.
EPILOG = """\
examples (each runs until Ctrl-C):
  on a free port, opening the browser:    tconv serve
  on port 8765, printing the URL only:    tconv serve --port 8765 --no-browser
  opening the page on one layer:          tconv serve 8x8 -f keras -k 3 -s 2 -p same
The server listens on 127.0.0.1 only and serves only its own files.
"""


def cmd_serve(ns: argparse.Namespace) -> int:
    from ..serve import serve

    state = {k: getattr(ns, k) for k in ("framework", "input", "kernel", "stride", "padding", "view")
             if getattr(ns, k, None) is not None}
    serve(port=ns.port, open_browser=not ns.no_browser, state=state)
    return 0


def register(sub) -> None:
    p = sub.add_parser("serve", help="the interactive explorer in the browser (local server)", epilog=EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("input", nargs="?", help="the page's input size (e.g. 8x8)")
    p.add_argument("-f", "--framework", help="the page's framework")
    p.add_argument("-k", "--kernel", help="the page's kernel size")
    p.add_argument("-s", "--stride", help="the page's stride")
    p.add_argument("-p", "--padding", help="the page's padding")
    p.add_argument("--view", help="scatter, zero-insertion, phase, overlap or numbers")
    p.add_argument("--port", type=int, default=0, help="the port (default: a free one)")
    p.add_argument("--no-browser", action="store_true", help="print the URL only")
    p.set_defaults(func=cmd_serve)
