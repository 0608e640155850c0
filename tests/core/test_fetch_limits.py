"""URL sources are bounded: a deadline, a size cap, retries with backoff. Real loopback servers."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from scaling.errors import SourceError, SpecError
from scaling.sources import resolve_location
from scaling.sources.fetch import FetchOptions, http_options
from scaling.spec import load_study

BODY = b"loss\n" + b"".join(b"%d\n" % i for i in range(100))


class Handler(BaseHTTPRequestHandler):
    """Serves by path: /drip (one byte per 0.5 s), /dripheaders (the same, in a header), /big (announces 10 MB), /bigchunked (no length),
    /flaky (503 twice, then 200), /down (always 503), /ok (with an ETag)."""

    hits: dict[str, int] = {}
    times: list[float] = []
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        kind = self.path.strip("/")
        type(self).hits[kind] = type(self).hits.get(kind, 0) + 1
        type(self).times.append(time.monotonic())
        try:
            getattr(self, f"_{kind}")()
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _send(self, status, body, headers=()):
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def _drip(self):
        self.send_response(200)
        self.send_header("Content-Length", "1000")
        self.end_headers()
        for _ in range(1000):
            self.wfile.write(b"x")
            self.wfile.flush()
            time.sleep(0.5)

    def _dripheaders(self):
        """The status line, then one byte of a header every 0.5 s for 20 s, then a small body."""
        self.wfile.write(b"HTTP/1.1 200 OK\r\nX-Slow: ")
        for _ in range(40):
            self.wfile.write(b"a")
            self.wfile.flush()
            time.sleep(0.5)
        self.wfile.write(b"\r\nContent-Length: %d\r\n\r\n%s" % (len(BODY), BODY))

    def _big(self):
        self.send_response(200)
        self.send_header("Content-Length", str(10_000_000))
        self.end_headers()
        self.wfile.write(b"x" * 1000)

    def _bigchunked(self):
        self.send_response(200)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        chunk = b"y" * 65536
        for _ in range(200):  # 13 MB if nobody stops reading
            self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        self.wfile.write(b"0\r\n\r\n")

    def _flaky(self):
        if type(self).hits["flaky"] <= 2:
            self._send(503, b"busy")
        else:
            self._send(200, BODY)

    def _down(self):
        self._send(503, b"busy")

    def _reset(self):
        if type(self).hits["reset"] == 1:  # announce a body, send half, hang up
            self.send_response(200)
            self.send_header("Content-Length", str(len(BODY)))
            self.end_headers()
            self.wfile.write(BODY[: len(BODY) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self._send(200, BODY)

    def _ok(self):
        if self.headers.get("If-None-Match") == '"v1"':
            self.send_response(304)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self._send(200, BODY, [("ETag", '"v1"')])


@pytest.fixture
def server():
    Handler.hits, Handler.times = {}, []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def fetch(url, tmp_path, **options):
    return resolve_location(url, base_dir=tmp_path, cache_dir=tmp_path / "cache", http=FetchOptions(**options))


def no_partial_files(tmp_path):
    cache = tmp_path / "cache"
    return not cache.exists() or not [p for p in cache.iterdir() if p.name.startswith(".part-")]


def test_slow_drip_stops_at_the_deadline(server, tmp_path):
    start = time.monotonic()
    with pytest.raises(SourceError, match="not finished within the deadline of 2 s.*options.http.deadline") as err:
        fetch(f"{server}/drip", tmp_path, timeout=5, deadline=2, retries=0)
    took = time.monotonic() - start
    # each byte arrives within the per-read timeout; only the deadline stops it (the server would drip for
    # far longer; the upper bound leaves room for a loaded machine)
    assert 1.9 < took < 15
    assert err.value.where.file == f"{server}/drip"
    assert no_partial_files(tmp_path)


def test_slow_headers_stop_at_the_deadline(server, tmp_path):
    """The deadline covers the whole attempt: a server trickling its response headers, each byte within the
    per-read timeout, is stopped at the deadline too, not only one sending its body slowly."""
    start = time.monotonic()
    with pytest.raises(SourceError, match="not finished within the deadline of 2 s.*options.http.deadline") as err:
        fetch(f"{server}/dripheaders", tmp_path, timeout=5, deadline=2, retries=0)
    took = time.monotonic() - start
    assert 1.9 < took < 15  # the headers would take 20 s
    assert err.value.where.file == f"{server}/dripheaders"
    assert no_partial_files(tmp_path)


def test_oversize_responses_are_refused(server, tmp_path):
    with pytest.raises(SourceError, match="announces 10000000 bytes, more than the limit of 100000"):
        fetch(f"{server}/big", tmp_path, max_bytes=100_000)
    with pytest.raises(SourceError, match="sent at least .* bytes, more than the limit of 1000000"):
        fetch(f"{server}/bigchunked", tmp_path, max_bytes=1_000_000)
    assert Handler.hits == {"big": 1, "bigchunked": 1}  # a size problem is not retried
    assert no_partial_files(tmp_path)


def test_transient_errors_are_retried_with_backoff(server, tmp_path):
    (got,) = fetch(f"{server}/flaky", tmp_path, retries=3, backoff=0.2)
    assert got.path.read_bytes() == BODY
    assert Handler.hits["flaky"] == 3
    gaps = [b - a for a, b in zip(Handler.times, Handler.times[1:])]
    # waits of 0.2 s, then 0.4 s: the lower bounds are what the backoff guarantees (a loaded machine only
    # adds to them)
    assert gaps[0] >= 0.19 and gaps[1] >= 0.39 and max(gaps) < 10

    with pytest.raises(SourceError, match=r"HTTP 503 Service Unavailable \(gave up after 3 attempts\)"):
        fetch(f"{server}/down", tmp_path, retries=2, backoff=0.05)
    assert Handler.hits["down"] == 3


def test_a_dropped_connection_is_retried(server, tmp_path):
    (got,) = fetch(f"{server}/reset", tmp_path, retries=1, backoff=0.05)
    assert got.path.read_bytes() == BODY and Handler.hits["reset"] == 2
    assert no_partial_files(tmp_path)


def test_retries_stop_at_the_deadline(server, tmp_path):
    start = time.monotonic()
    with pytest.raises(SourceError, match="HTTP 503"):
        fetch(f"{server}/down", tmp_path, retries=100, backoff=0.2, deadline=1.0)
    assert time.monotonic() - start < 10  # without the deadline, 100 retries would take minutes
    assert 2 <= Handler.hits["down"] <= 4  # 0.2 + 0.4 s of waits fit in 1 s, 0.8 more would not


def test_conditional_refetch_still_works(server, tmp_path):
    (first,) = fetch(f"{server}/ok", tmp_path)
    (again,) = fetch(f"{server}/ok", tmp_path)
    assert again == first and Handler.hits["ok"] == 2 and first.path.read_bytes() == BODY


def test_http_options_are_checked_in_the_study_file(tmp_path):
    assert http_options({"deadline": 5, "retries": 0}) == FetchOptions(deadline=5, retries=0)
    for bad, match in (({"deadline": 0}, "positive number"), ({"retries": -1}, "non-negative integer"),
                       ({"retries": 1.5}, "non-negative integer"), ({"speed": 1}, "unknown key 'speed'"),
                       ("fast", "expected a table")):
        with pytest.raises(SpecError, match=match):
            http_options(bad)
    study = tmp_path / "toy.toml"
    study.write_text('[[sources]]\nname = "logs"\nkind = "training_logs"\nlocation = "http://127.0.0.1:9/x.csv"\n'
                     'format = "csv"\nmetrics = { loss = "loss" }\noptions = { http = { deadline = "soon" } }\n')
    with pytest.raises(SpecError, match="positive number of seconds, got 'soon'") as err:
        load_study(study)
    assert (err.value.where.source, err.value.where.field) == ("logs", "options.http.deadline")
