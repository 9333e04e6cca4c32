"""``tconv serve``: the explorer, an interactive page about one transposed convolution, served locally.

The page (``static/``: plain HTML, JavaScript and CSS, no CDN, no build step)
asks a small JSON API (:mod:`._api`) for everything it shows, and the API
answers with tconv's own functions, so the page computes no size itself. The
server (:mod:`._http`) is the standard library's ``ThreadingHTTPServer`` on
127.0.0.1.

Examples
--------
>>> from tconv.serve import page_url
>>> page_url("http://127.0.0.1:8000/", framework="keras", input="8x8", kernel=3, stride=2, padding="same")
'http://127.0.0.1:8000/?framework=keras&input=8x8&kernel=3&stride=2&padding=same'
"""
from __future__ import annotations

import sys
import webbrowser
from typing import Any
from urllib.parse import urlencode

from ._http import Server, make_server, start

__all__ = ["serve", "start", "make_server", "page_url", "explore", "Server"]


def _size(value: Any) -> Any:
    if isinstance(value, (tuple, list)):
        return "x".join(map(str, value))
    return value


def page_url(base: str, **state: Any) -> str:
    """The page's URL for a state (the controls' values; sizes as tuples or ``8x8``)."""
    query = urlencode({k: _size(v) for k, v in state.items() if v is not None})
    return base + ("?" + query if query else "")


def serve(port: int = 0, open_browser: bool = True, state: dict | None = None) -> None:
    """Serve the explorer until Ctrl-C; prints the URL and opens it in a browser unless ``open_browser=False``."""
    server = make_server(port)
    host, real_port = str(server.server_address[0]), int(server.server_address[1])
    url = page_url(f"http://{host}:{real_port}/", **(state or {}))
    print(f"tconv explorer at {url}  (Ctrl-C stops it)", flush=True)
    if open_browser:
        webbrowser.open(url)
    try:
        server.serve_forever(poll_interval=0.25)
    except KeyboardInterrupt:
        print("tconv explorer stopped", file=sys.stderr)
    finally:
        server.server_close()


_NOTEBOOK: dict[str, Any] = {}


def explore(input_shape: Any = (8, 8), kernel_size: Any = 3, framework: str = "pytorch", *, view: str = "scatter",
            height: int = 720, **args: Any):
    """The explorer inline in a notebook, in this layer's state: an iframe onto a server started once per kernel.

    The arguments are the page's controls: sizes, the framework, the generic
    ``stride``, ``padding``, ``dilation``, ``output_padding``,
    ``output_size`` (as on the CLI) and the view.

    >>> frame = explore((4, 4), 3, "keras", stride=2, padding="same")
    >>> "input=4x4" in frame.src and "framework=keras" in frame.src
    True
    """
    from ..errors import ConfigError
    from ._api import LAYER_KEYS

    unknown = [k for k in args if k not in LAYER_KEYS]
    if unknown:
        raise ConfigError(f"explore() takes the page's controls {', '.join(LAYER_KEYS)}; not {unknown[0]!r}")
    if "url" not in _NOTEBOOK:
        server, _thread, url = start()
        _NOTEBOOK.update(server=server, url=url)
    state = {"framework": framework, "input": input_shape, "kernel": kernel_size, "view": view, **args}
    return _IFrame(page_url(_NOTEBOOK["url"], **state), height)


class _IFrame:
    """What a notebook shows: the page in an iframe (``_repr_html_``); ``.src`` is its URL."""

    def __init__(self, src: str, height: int):
        self.src = src
        self.height = height

    def _repr_html_(self) -> str:
        import html

        return (f'<iframe src="{html.escape(self.src)}" width="100%" height="{int(self.height)}" '
                'style="border:1px solid #ccc" title="tconv explorer"></iframe>')

    def __repr__(self) -> str:
        return f"<tconv explorer {self.src}>"
