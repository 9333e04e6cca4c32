"""tconv serve's JSON API over real HTTP: answers agree with tconv's API, bad input gets the CLI's message
as a 4xx, the server serves only its own files and bounds every request, and a hypothesis fuzz finds no
5xx, no dropped connection and no hang."""
from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from urllib.parse import urlencode

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from _budget import examples

import tconv
from tconv.cli import main
from tconv.serve import _api, _http


@pytest.fixture(scope="module")
def server():
    srv, thread, url = tconv.serve.start(0)
    yield srv.server_address[1]
    srv.shutdown()
    srv.server_close()


def request(port, method, path, body=None, headers=None, timeout=20.0):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        data = response.read()
        return response.status, response.getheader("Content-Type", ""), data
    finally:
        conn.close()


def get_layer(port, **query):
    status, _, data = request(port, "GET", "/api/layer?" + urlencode(query))
    return status, json.loads(data)


def post_layer(port, payload):
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    status, _, data = request(port, "POST", "/api/layer", body, {"Content-Type": "application/json"})
    return status, json.loads(data)


def cli_error(argv, capsys) -> str:
    assert main(argv) == 2
    return capsys.readouterr().err.strip().removeprefix("tconv: error: ")


# --------------------------------------------------------------------------- answers
@pytest.mark.parametrize("seed", _api.SEEDS, ids=lambda s: s["id"])
def test_seed_answers_are_tconvs(server, seed):
    status, a = get_layer(server, **seed["query"])
    assert status == 200, a
    input_shape, kernel, framework, args = _api.read_layer(seed["query"])
    geom = tconv.geometry(input_shape, kernel, framework, **args)
    assert a["output_size"] == "x".join(map(str, geom.output_shape))
    assert a["window"] == [list(ax.kept) for ax in geom]
    assert [s["key"] for s in a["steps"]] == [s.key for s in tconv.explain(input_shape, kernel, framework, **args).steps]
    for row in a["convert"]:
        if "error" not in row:
            assert row["args"] == json.loads(json.dumps(tconv.convert(input_shape, kernel, framework, row["framework"], **args).args))


def test_the_cli_and_the_api_read_a_layer_alike(server, capsys):
    assert main(["shape", "12x16", "-f", "keras", "-k", "3", "-s", "2", "-p", "same"]) == 0
    assert get_layer(server, framework="keras", input="12x16", kernel="3", stride="2", padding="same")[1]["output_size"] \
        == capsys.readouterr().out.strip()
    status, a = post_layer(server, {"framework": "onnx", "input": [4, 4], "kernel": 3, "stride": 2, "padding": "same_upper"})
    assert status == 200 and a["output_size"] == "8x8" and a["args"]["auto_pad"] == "SAME_UPPER"


def test_hover_cells_and_numbers(server):
    status, a = get_layer(server, framework="pytorch", input="3", kernel="3", stride="2", padding="1", view="numbers")
    assert status == 200 and a["drawing"]["numbers"]
    cells = a["cells"]["cells"][0]
    assert [c["formula"] for c in cells][:2] == ["out[0] = x[0]*w[1] = 1*2 = 2", "out[1] = x[1]*w[0] + x[0]*w[2] = 2*1 + 1*1 = 3"]
    shown = [int(t) for t in a["drawing"]["frames"][-1]["panels"][-1]["text"][0]]
    assert shown == [int(c["formula"].rsplit("= ", 1)[1]) for c in cells]


def test_large_layers_get_the_summary(server):
    status, a = get_layer(server, framework="keras", input="96x128", kernel="3", stride="2", padding="valid", view="numbers")
    assert status == 200 and a["output_size"] == "193x257"
    assert a["drawing"]["summarised"] and a["cells"] is None
    assert a["drawing"]["frames"][0]["panels"][0]["summary"]


# --------------------------------------------------------------------------- refusals
@pytest.mark.parametrize("query, argv", [
    (dict(framework="nope", input="8", kernel="3"), ["shape", "8", "-f", "nope", "-k", "3"]),
    (dict(framework="keras", input="8x8", kernel="3", padding="sideways"), ["shape", "8x8", "-f", "keras", "-k", "3", "-p", "sideways"]),
    (dict(input="8", kernel="3", stride="0"), ["shape", "8", "-k", "3", "-s", "0"]),
    (dict(input="8x", kernel="3"), ["shape", "8x", "-k", "3"]),
    (dict(input="4", kernel="3", stride="2", output_padding="2"), ["shape", "4", "-k", "3", "-s", "2", "--output-padding", "2"]),
])
def test_bad_layers_get_the_clis_message(server, capsys, query, argv):
    status, a = get_layer(server, **query)
    assert status == 400
    assert a["error"] == cli_error(argv, capsys)


@pytest.mark.parametrize("payload, words", [
    (b"{bad", "malformed JSON"),
    (b"[1, 2]", "must be a JSON object"),
    (b'{"input": 8, "kernel": NaN}', "not a number"),
    (b'{"input": 1' + b"0" * 40 + b', "kernel": 3}', "too large"),
    (b'{"input": 999999999, "kernel": 3}', "too large for the explorer"),
    (b'{"input": 8.5, "kernel": 3}', "not float"),
    (b'{"input": {"a": 1}, "kernel": 3}', "not dict"),
    (b'{"input": 8, "kernel": 3, "numbers": "maybe?"}', None),
    (b'{"input": 8, "kernel": 3, "colour": "red"}', "unknown control"),
    (b"\xff\xfe", "malformed JSON"),
    (b"[" * 10_000, "malformed JSON"),  # deeper than the JSON decoder recurses
    (b"[" * 20_000, "the body is"),
])
def test_malformed_requests_are_4xx_with_one_line(server, payload, words):
    status, _, data = request(server, "POST", "/api/layer", payload, {"Content-Type": "application/json"})
    if words is None:
        assert status == 200
        return
    assert 400 <= status < 500, data
    error = json.loads(data)["error"]
    assert "\n" not in error and words in error and _http.UNEXPECTED not in error


def test_only_its_own_files(server):
    assert request(server, "GET", "/")[0] == 200
    for name in ("app.js", "style.css", "index.html"):
        status, kind, _ = request(server, "GET", f"/static/{name}")
        assert status == 200 and kind.split(";")[0] in ("text/javascript", "text/css", "text/html")
    for path in ("/static/../_http.py", "/static/%2e%2e/_api.py", "/../../etc/passwd", "/static//etc/passwd",
                 "/static/..%2f..%2f__init__.py", "/etc/passwd", "/static/", "/static/app.js/.."):
        status, _, data = request(server, "GET", path)
        assert status == 404, path
        assert b"import" not in data and b"root:" not in data


def test_bounds_on_body_length_and_query(server):
    assert request(server, "POST", "/api/layer", b"x" * (_http.MAX_BODY + 1))[0] == 413
    assert request(server, "GET", "/api/layer?input=" + "8" * (_http.MAX_QUERY + 10))[0] == 414
    conn = socket.create_connection(("127.0.0.1", server), timeout=10)
    conn.sendall(b"POST /api/layer HTTP/1.1\r\nHost: x\r\n\r\n")  # no Content-Length
    assert b" 411 " in conn.recv(4096).split(b"\r\n")[0] + b" "
    conn.close()


def test_a_slow_client_is_dropped(server, monkeypatch):
    monkeypatch.setattr(_http.Handler, "timeout", 0.5)
    conn = socket.create_connection(("127.0.0.1", server), timeout=10)
    conn.sendall(b"GET /api/layer?input=8&kernel=3 HTTP/1.1\r\n")  # ... and never finishes the headers
    started = time.monotonic()
    assert conn.recv(4096) == b""  # the server hangs up
    assert time.monotonic() - started < 5
    conn.close()


# --------------------------------------------------------------------------- the fuzz
_wild = st.one_of(
    st.none(), st.booleans(), st.integers(-10, 40), st.integers(-(10**30), 10**30), st.floats(allow_nan=False),
    st.text(max_size=12), st.sampled_from(["-1", "2x2x2", "1,1", "x", "9" * 20, "1e3", "٣", " 2 ", "2x", "None"]),
    st.lists(st.integers(-3, 40), max_size=4), st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)
_plausible = st.one_of(st.integers(0, 4), st.sampled_from(
    ["", "1", "2", "3", "0", "same", "valid", "SAME", "VALID", "SAME_UPPER", "same_lower", "CIRCULAR", "full", "1x2",
     "2x2", "2x1", "(1, 1)", "[[0, 1], [0, 1]]", "[0, 1, 0, 1]", "16x16", "8x8", "9", "7x9"]))


def _mostly(plausible, share_wild=5):
    """One draw in ``share_wild`` from anything at all, the others plausible."""
    return st.integers(0, share_wild - 1).flatmap(lambda n: _wild if n == 0 else plausible)


_values = _mostly(_plausible)  # mostly layers tconv can answer, some of anything
_frameworks = st.sampled_from(["pytorch", "keras", "tf_keras", "tensorflow", "jax", "flax", "onnx", "tflite", "mxnet",
                               "caffe", "pytorch", "keras", "PyTorch", "torch", "nope", ""])
_sizes = st.sampled_from(["8x8", "4", "3x5", "12", "2x2", "1", "6x6", "40x3", "45"])
_requests = st.fixed_dictionaries(
    {"framework": _frameworks, "input": _mostly(_sizes, 10),
     "kernel": _mostly(st.sampled_from(["3", "2", "1x3", "5", "4", "1"]), 10)},
    optional={k: _values for k in ("stride", "padding", "dilation", "output_padding", "output_size", "groups",
                                   "numbers")} | {"view": st.sampled_from(list(_api.VIEWS) + ["nope"]) | _values},
)


@settings(max_examples=examples(200), deadline=None)
@given(payload=_requests, as_query=st.booleans())
def test_fuzz_every_request_is_answered_or_refused_in_one_line(server, payload, as_query):
    started = time.monotonic()
    if as_query:
        query = {k: ("" if v is None else json.dumps(v) if not isinstance(v, str) else v) for k, v in payload.items()}
        status, _, data = request(server, "GET", "/api/layer?" + urlencode(query))
    else:
        status, _, data = request(server, "POST", "/api/layer", json.dumps(payload).encode(), {"Content-Type": "application/json"})
    assert time.monotonic() - started < _http.TIME_LIMIT + 5
    assert status == 200 or 400 <= status < 500, (status, data[:300])
    body = json.loads(data)
    if status != 200:
        assert "\n" not in body["error"] and body["error"]
        assert _http.UNEXPECTED not in body["error"], body["error"]
        assert status != 422


# --------------------------------------------------------------------------- the command
def test_tconv_serve_prints_the_url_and_stops_on_ctrl_c(tmp_path):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "tconv", "serve", "--no-browser", "8x8", "-f", "keras", "-k", "3"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = proc.stdout.readline()
        assert line.startswith("tconv explorer at http://127.0.0.1:"), line
        url = line.split()[3]
        assert "framework=keras" in url and "input=8x8" in url
        port = int(url.split(":")[2].split("/")[0])
        assert request(port, "GET", "/")[0] == 200
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0
        err = proc.stderr.read()
        assert "stopped" in err and "Traceback" not in err
    finally:
        if proc.poll() is None:
            proc.kill()


def test_serve_refuses_a_bad_port(capsys):
    assert main(["serve", "--port", "70000", "--no-browser"]) == 2
    assert "port=70000" in capsys.readouterr().err


def test_explore_gives_an_iframe_on_the_same_state():
    frame = tconv.serve.explore((4, 4), 3, "keras", stride=2, padding="same", view="phase")
    assert "<iframe" in frame._repr_html_() and "view=phase" in frame.src
    host_port = frame.src.split("/")[2]
    status, _, data = request(int(host_port.split(":")[1]), "GET", "/api/layer?" + frame.src.split("?", 1)[1])
    assert status == 200 and json.loads(data)["output_size"] == "8x8"
    with pytest.raises(tconv.ConfigError, match="controls"):
        tconv.serve.explore(4, 3, strides=2)


def test_an_answer_past_the_time_limit_is_a_408(server, monkeypatch):
    import threading

    release = threading.Event()

    def slow(request):
        release.wait(5)
        return {}

    monkeypatch.setattr(_http, "TIME_LIMIT", 0.2)
    monkeypatch.setattr(_api, "answer", slow)
    started = time.monotonic()
    status, _, data = request(server, "GET", "/api/layer?input=8&kernel=3")
    release.set()
    assert status == 408 and "took longer than 0.2 s" in json.loads(data)["error"]
    assert time.monotonic() - started < 3
