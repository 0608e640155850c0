"""Resolving locations: paths, globs and http(s) URLs served from a local server."""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import pytest

from scaling.errors import SourceError
from scaling.sources import read_file, resolve_location


def _sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_path_and_glob(shared_data, tmp_path):
    base = shared_data / "pythia_evals"
    (single,) = resolve_location("pythia_v1_evals_core.csv", base_dir=base, cache_dir=tmp_path)
    assert single.label == "pythia_v1_evals_core.csv"
    assert single.sha256 == _sha(base / "pythia_v1_evals_core.csv")
    assert single.size == (base / "pythia_v1_evals_core.csv").stat().st_size

    files = resolve_location("raw_lm_eval_json/**/*.json", base_dir=base, cache_dir=tmp_path)
    assert len(files) == 42 + 15  # the two copied folders, as SOURCE.md lists them
    assert [f.label for f in files] == sorted(f.label for f in files)
    assert files[0].label.startswith("raw_lm_eval_json/pythia-160m/five-shot/")
    assert all(f.path.is_file() and f.sha256 == _sha(f.path) for f in files[:5])
    again = resolve_location("raw_lm_eval_json/**/*.json", base_dir=base, cache_dir=tmp_path)
    assert again == files

    (outside,) = resolve_location("../chinchilla_epoch/svg_extracted_data.csv", base_dir=base, cache_dir=tmp_path,
                                  roots=[shared_data])
    assert outside.label == "../chinchilla_epoch/svg_extracted_data.csv"


def test_location_errors(shared_data, tmp_path):
    base = shared_data / "olmo_ladder"
    with pytest.raises(SourceError, match="no files match this glob") as err:
        resolve_location("ladder-runs/*.parquet", base_dir=base, cache_dir=tmp_path)
    assert err.value.where.file == "ladder-runs/*.parquet"
    with pytest.raises(SourceError, match="no such file") as err:
        resolve_location("ladder-runs/13B-5T.csv", base_dir=base, cache_dir=tmp_path)
    assert err.value.where.file == "ladder-runs/13B-5T.csv"
    with pytest.raises(SourceError, match="is a folder"):
        resolve_location("ladder-runs", base_dir=base, cache_dir=tmp_path)
    with pytest.raises(SourceError, match="unsupported URL scheme 's3'"):
        resolve_location("s3://bucket/runs.csv", base_dir=base, cache_dir=tmp_path)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_file(tmp_path):
    path = tmp_path / "secret.csv"
    path.write_text("a\n1\n")
    path.chmod(0)
    with pytest.raises(SourceError, match="cannot read"):
        resolve_location("secret.csv", base_dir=tmp_path, cache_dir=tmp_path / "cache")


class _Handler(SimpleHTTPRequestHandler):
    statuses: list[int] = []

    def log_request(self, code="-", size="-"):
        type(self).statuses.append(int(code))

    def log_message(self, *args):
        pass


@pytest.fixture
def server(shared_data, tmp_path):
    """A loopback HTTP server over a folder holding a copy of a shared file."""
    served = tmp_path / "served"
    served.mkdir()
    shutil.copy(shared_data / "chinchilla_epoch" / "svg_extracted_data.csv", served / "chinchilla.csv")
    _Handler.statuses = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), lambda *a: _Handler(*a, directory=str(served)))
    httpd.timeout = 5
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", served
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def test_url_is_downloaded_into_the_cache(server, tmp_path):
    root, served = server
    url = f"{root}/chinchilla.csv"
    cache = tmp_path / "cache"
    (got,) = resolve_location(url, base_dir=tmp_path, cache_dir=cache, timeout=5)
    assert got.label == url
    assert got.path.parent == cache
    assert got.path.read_bytes() == (served / "chinchilla.csv").read_bytes()
    assert got.sha256 == _sha(served / "chinchilla.csv") and got.size == (served / "chinchilla.csv").stat().st_size
    assert read_file(got.path, "csv", label=got.label).height == 245
    assert not [p for p in cache.iterdir() if p.name.startswith(".part-")]

    (again,) = resolve_location(url, base_dir=tmp_path, cache_dir=cache, timeout=5)
    assert again == got
    assert _Handler.statuses == [200, 304]  # the second fetch is a conditional GET


def test_http_error_names_the_url(server, tmp_path):
    root, _ = server
    url = f"{root}/missing.csv"
    with pytest.raises(SourceError, match="HTTP 404 File not found") as err:
        resolve_location(url, base_dir=tmp_path, cache_dir=tmp_path / "cache", timeout=5)
    assert err.value.where.file == url


def test_unreachable_host_and_timeout(tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/runs.csv"
    with pytest.raises(SourceError, match="cannot reach host: .*refused") as err:
        resolve_location(url, base_dir=tmp_path, cache_dir=tmp_path / "cache", timeout=5)
    assert err.value.where.file == url

    with socket.socket() as silent:  # accepts connections, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/runs.csv"
        with pytest.raises(SourceError, match="timed out after 0.3 s") as err:
            resolve_location(url, base_dir=tmp_path, cache_dir=tmp_path / "cache", timeout=0.3)
    assert err.value.where.file == url


def test_glob_under_a_folder_with_glob_characters(shared_data, tmp_path):
    base = tmp_path / "study[v2]"
    (base / "runs").mkdir(parents=True)
    for name in ("190M-1xC.csv", "370M-1xC.csv"):
        shutil.copy(shared_data / "olmo_ladder" / "ladder-runs" / name, base / "runs" / name)
    files = resolve_location("runs/*-1xC.csv", base_dir=base, cache_dir=tmp_path / "cache")
    assert [f.label for f in files] == ["runs/190M-1xC.csv", "runs/370M-1xC.csv"]
