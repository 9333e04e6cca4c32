"""The explorer's HTTP server: the standard library's ``ThreadingHTTPServer`` on loopback.

Why the standard library: the page needs four things (its own static files,
one JSON endpoint, loopback only, bounded requests), all a few lines on
:mod:`http.server`; a framework would be a dependency to install and keep
up with for none of them. ``ThreadingHTTPServer`` answers each request on its
own daemon thread, so one slow request does not stall the page, and Ctrl-C
ends it at once.

Bounds on every request: the request line and headers are http.server's
(64 KiB), a body is at most :data:`MAX_BODY` bytes and must say its length,
each socket read times out after :data:`SOCKET_TIMEOUT` seconds, the work of
an answer is cut off after :data:`TIME_LIMIT` seconds (408), and the values
themselves are bounded by the API (sizes above the drawing limits get the
summarised view). Only the files in ``static/`` are served, looked up by
name in a fixed table: no path from a request ever reaches the file system.
"""
from __future__ import annotations

import json
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from ..errors import ConfigError

STATIC = Path(__file__).resolve().parent / "static"
MAX_BODY = 16 * 1024
MAX_QUERY = 4096
SOCKET_TIMEOUT = 10.0
TIME_LIMIT = 10.0
TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
         ".css": "text/css; charset=utf-8", ".png": "image/png", ".svg": "image/svg+xml"}
#: URL path -> file name in static/, fixed when the module loads
FILES = {f"/static/{p.name}": p.name for p in sorted(STATIC.glob("*")) if p.is_file() and p.suffix in TYPES}
FILES["/"] = "index.html"
FILES["/favicon.ico"] = "favicon.svg"

UNEXPECTED = "tconv cannot answer this request (a bug; please report it): "
_POOL = ThreadPoolExecutor(max_workers=4, thread_name_prefix="tconv-serve")


def _one_line(text: Any) -> str:
    return " ".join(str(text).split())[:500]


class Handler(BaseHTTPRequestHandler):
    """GET / and /static/NAME: the page; GET /api/layer?..., POST /api/layer {json}: an answer; GET /api/meta."""

    server_version = "tconv-serve"
    sys_version = ""
    timeout = SOCKET_TIMEOUT
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet: the terminal shows the URL only
        if getattr(self.server, "verbose", False):
            super().log_message(format, *args)

    # ---- answers -----------------------------------------------------------------
    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, data: Any) -> None:
        self._send(status, json.dumps(data, allow_nan=False).encode("utf-8"), "application/json")

    def _error(self, status: int, message: str) -> None:
        self._json(status, {"error": _one_line(message)})

    # ---- routes --------------------------------------------------------------------
    def do_HEAD(self) -> None:  # noqa: N802
        self.do_GET()

    def do_GET(self) -> None:  # noqa: N802
        parts = urlsplit(self.path)
        if len(parts.query) > MAX_QUERY:
            return self._error(HTTPStatus.REQUEST_URI_TOO_LONG, f"the query is longer than {MAX_QUERY} characters")
        if parts.path in FILES:
            name = FILES[parts.path]
            return self._send(HTTPStatus.OK, (STATIC / name).read_bytes(), TYPES[Path(name).suffix])
        if parts.path == "/api/layer":
            try:
                pairs = parse_qsl(parts.query, keep_blank_values=True, strict_parsing=False, max_num_fields=40)
            except ValueError as err:
                return self._error(HTTPStatus.BAD_REQUEST, f"cannot read the query: {err}")
            request: dict = {}
            for key, value in pairs:
                if key in request:
                    return self._error(HTTPStatus.BAD_REQUEST, f"{key[:40]!r} is given twice; give it once")
                request[key] = value
            return self._answer(request)
        if parts.path == "/api/meta":
            return self._compute(_meta)
        return self._error(HTTPStatus.NOT_FOUND, f"no such page: {parts.path[:80]!r}; the explorer is at /")

    def do_POST(self) -> None:  # noqa: N802
        if urlsplit(self.path).path != "/api/layer":
            return self._error(HTTPStatus.NOT_FOUND, "POST goes to /api/layer")
        length = self.headers.get("Content-Length")
        if length is None or not length.isdigit():
            return self._error(HTTPStatus.LENGTH_REQUIRED, "a POST needs a Content-Length header")
        if int(length) > MAX_BODY:
            self.close_connection = True
            return self._error(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"the body is {int(length)} bytes; at most {MAX_BODY}")
        try:
            body = self.rfile.read(int(length))
        except OSError:
            self.close_connection = True
            return self._error(HTTPStatus.REQUEST_TIMEOUT, "the body did not arrive in time")
        try:
            request = json.loads(body.decode("utf-8"), parse_constant=_no_constant, parse_int=_bounded_int)
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as err:
            return self._error(HTTPStatus.BAD_REQUEST, f"malformed JSON: {err}")
        except ValueError as err:
            return self._error(HTTPStatus.BAD_REQUEST, str(err))
        self._answer(request)

    def _answer(self, request: Any) -> None:
        from ._api import answer

        self._compute(answer, request)

    def _compute(self, fn, *args: Any) -> None:
        future = _POOL.submit(fn, *args)
        try:
            data = future.result(timeout=TIME_LIMIT)
        except FutureTimeout:
            return self._error(HTTPStatus.REQUEST_TIMEOUT, f"this layer took longer than {TIME_LIMIT:g} s; choose smaller sizes")
        except ConfigError as err:
            return self._error(HTTPStatus.BAD_REQUEST, str(err))
        except Exception as err:  # noqa: BLE001 - a bug, but the page gets one line, never a dropped connection
            # The API fuzz (tests/test_serve_api.py) fails on this message: every refusal should be a ConfigError.
            return self._error(HTTPStatus.UNPROCESSABLE_ENTITY, f"{UNEXPECTED}{type(err).__name__}: {err}")
        self._json(HTTPStatus.OK, data)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number the explorer takes")


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > 12:
        raise ValueError(f"the number {text[:20]}... is too large for the explorer")
    return int(text)


def _meta() -> dict:
    from ._api import KEYS, SEEDS, VIEWS, frameworks

    return {"frameworks": frameworks(), "seeds": list(SEEDS), "views": list(VIEWS), "keys": list(KEYS)}


class Server(ThreadingHTTPServer):
    """Loopback only; daemon threads, so Ctrl-C ends the process at once."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 16
    verbose = False

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A browser that hangs up or a client that stalls past the socket timeout is no error of ours:
        # no traceback in the terminal for it. Anything else is still printed.
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return
        super().handle_error(request, client_address)


def make_server(port: int = 0, host: str = "127.0.0.1") -> Server:
    """A server bound to loopback on ``port`` (0: a free one). Not started."""
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise ConfigError(f"the explorer listens on loopback only (127.0.0.1), not {host!r}")
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise ConfigError(f"port={port!r} must be a whole number from 0 (a free port) to 65535")
    try:
        return Server(("127.0.0.1" if host == "localhost" else host, port), Handler)
    except OSError as err:
        raise ConfigError(f"cannot listen on {host}:{port}: {err.strerror or err}") from None


def start(port: int = 0) -> tuple[Server, threading.Thread, str]:
    """Start a server on a background thread; returns it, the thread and its URL."""
    server = make_server(port)
    thread = threading.Thread(target=server.serve_forever, name="tconv-serve", daemon=True)
    thread.start()
    host, real_port = str(server.server_address[0]), int(server.server_address[1])
    return server, thread, f"http://{host}:{real_port}/"
