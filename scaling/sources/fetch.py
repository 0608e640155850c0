"""Download an http(s) source into a cache folder with httpx, bounded in time and size.

Each URL lands in ``cache_dir/<sha256(url)[:16]>-<name>``, written atomically (a temporary
file in the same folder, then ``os.replace``). A sidecar ``.meta.json`` keeps the server's
``ETag``/``Last-Modified``; the next fetch sends them back (``If-None-Match`` /
``If-Modified-Since``) and a ``304 Not Modified`` reuses the cached bytes.

Every download is bounded (`FetchOptions`, set per source under ``[sources.options.http]``):

- ``timeout`` (default 30 s): the longest wait for a connection or for the next bytes;
- ``deadline`` (default 600 s): the whole download, retries and waits included, so a server
  that sends one byte every few seconds (of its body or of its headers) cannot hold a run forever;
  each attempt runs under a cancel scope that ends at the deadline (httpx's own timeouts bound
  single reads only);
- ``max_bytes`` (default 2 GiB): a larger body (announced or received, after decompression)
  is refused;
- ``retries`` (default 3) and ``backoff`` (default 0.5 s): a transient failure (HTTP 429 or
  5xx, a refused, reset or dropped connection, a timeout) is tried again after ``backoff``,
  then twice that, and so on, as long as the deadline allows.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import ssl
import tempfile
import time
import urllib.parse
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import anyio
import httpx

from scaling.errors import SourceError, SpecError

_CHUNK = 1 << 20


@dataclass(frozen=True)
class FetchOptions:
    timeout: float = 30.0
    deadline: float = 600.0
    max_bytes: int = 2 << 30
    retries: int = 3
    backoff: float = 0.5


def http_options(raw: Any, *, timeout: float | None = None) -> FetchOptions:
    """Validate a source's ``options.http`` table into `FetchOptions` (a `SpecError` names the bad key)."""
    if raw is None:
        return FetchOptions() if timeout is None else FetchOptions(timeout=timeout)
    if not isinstance(raw, Mapping):
        raise SpecError(f"expected a table of {sorted(_KINDS)}, got {raw!r}", field="options.http")
    values: dict[str, Any] = {} if timeout is None else {"timeout": timeout}
    for key, value in raw.items():
        if key not in _KINDS:
            raise SpecError(f"unknown key {key!r}; expected one of {sorted(_KINDS)}", field=f"options.http.{key}")
        integer = _KINDS[key] is int
        ok = isinstance(value, int if integer else (int, float)) and not isinstance(value, bool)
        if not ok or value < 0 or (key in ("timeout", "deadline", "max_bytes") and value == 0):
            kind = "a non-negative integer" if key == "retries" else (
                "a positive integer" if integer else "a positive number of seconds")
            raise SpecError(f"expected {kind}, got {value!r}", field=f"options.http.{key}")
        values[key] = value
    return FetchOptions(**values)


_KINDS = {f.name: (int if f.type in ("int", int) else float) for f in fields(FetchOptions)}


def is_url(location: str) -> bool:
    return location.lower().startswith(("http://", "https://"))


def cache_path(url: str, cache_dir: Path) -> Path:
    """Where `url` is cached: keyed by the URL's hash, ending in the URL's file name."""
    key = hashlib.sha256(url.encode()).hexdigest()[:16]
    name = os.path.basename(urllib.parse.urlsplit(url).path)
    name = re.sub(r"[^A-Za-z0-9._-]", "_", name)[-80:] or "download"
    return Path(cache_dir) / f"{key}-{name}"


class _Transient(Exception):
    """A failure worth another attempt; `problem` is what to report if none is left."""

    def __init__(self, problem: str):
        super().__init__(problem)
        self.problem = problem


def fetch_url(url: str, *, cache_dir: Path, timeout: float | None = None,
              options: FetchOptions | None = None) -> tuple[Path, str, int]:
    """Fetch `url` into the cache; return (path, sha256, size). Errors name the URL."""
    options = options or FetchOptions(**({} if timeout is None else {"timeout": timeout}))
    target = cache_path(url, cache_dir)
    meta_path = target.with_name(target.name + ".meta.json")
    meta = _read_meta(meta_path) if target.is_file() else {}
    headers = {"User-Agent": "scaling-studies"}
    if meta.get("etag"):
        headers["If-None-Match"] = meta["etag"]
    if meta.get("last_modified"):
        headers["If-Modified-Since"] = meta["last_modified"]
    start = time.monotonic()
    attempt = 0
    while True:
        attempt += 1
        try:
            result = _attempt(url, headers, target, options, start)
            break
        except _Transient as exc:
            wait = options.backoff * 2 ** (attempt - 1)
            left = options.deadline - (time.monotonic() - start)
            if attempt > options.retries or wait >= left:
                tries = f" (gave up after {attempt} attempt{'s' if attempt > 1 else ''})" if attempt > 1 else ""
                raise SourceError(f"{exc.problem}{tries}", file=url) from None
            time.sleep(wait)
    if result is None:  # 304: the cache is trusted for bytes, not for its notes, so hash again
        return (target, *file_digest(target))
    digest, size, response_headers = result
    _write_meta(meta_path, {"etag": response_headers.get("ETag"),
                            "last_modified": response_headers.get("Last-Modified"), "sha256": digest, "size": size})
    return target, digest, size


def _attempt(url: str, headers: dict, target: Path, options: FetchOptions, start: float):
    """One GET: None on 304, else (sha256, size, headers) with the body renamed onto `target`.

    The attempt runs as a coroutine under one cancel scope that ends at the deadline, so the deadline
    bounds all of it (connecting, the response headers, the body), not only each read: httpx's own
    timeouts bound single reads, and a server sending its headers one byte at a time passes every one."""
    left = options.deadline - (time.monotonic() - start)
    wait = max(0.001, min(options.timeout, left))
    got = {"headers": False, "bytes": 0}
    try:
        return _run_async(_attempt_async, url, headers, target, options, wait, start + options.deadline, got)
    except TimeoutError:  # the cancel scope's deadline, whatever the attempt was waiting for
        where = f"{got['bytes']} bytes received" if got["headers"] else "waiting for the response headers"
        raise SourceError(f"{_past_deadline(options)} ({where})", file=url) from None
    except httpx.TimeoutException:
        if options.deadline - (time.monotonic() - start) <= 0.01:
            raise SourceError(_past_deadline(options), file=url) from None
        raise _Transient(f"timed out after {wait:g} s") from None
    except httpx.ConnectError as exc:
        raise _Transient(f"cannot reach host: {_reason(exc)}") from None
    except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError) as exc:
        raise _Transient(f"connection dropped: {_reason(exc)}") from None
    except httpx.TooManyRedirects:
        raise SourceError("too many redirects", file=url) from None
    except httpx.HTTPError as exc:
        raise SourceError(f"bad HTTP response: {_reason(exc)}", file=url) from None


def _run_async(fn, *args):
    """Run the coroutine function `fn(*args)` to the end from synchronous code (in a thread of its own
    when this thread already runs an event loop)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return anyio.run(fn, *args)
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(anyio.run, fn, *args).result()


_SSL: list[ssl.SSLContext] = []


def _ssl_context() -> ssl.SSLContext:
    """httpx's default TLS context (certifi's store, or SSL_CERT_FILE / SSL_CERT_DIR), loaded once per process:
    loading it takes ~0.1 s, which each attempt would otherwise spend."""
    if not _SSL:
        _SSL.append(httpx.create_ssl_context())
    return _SSL[0]


async def _attempt_async(url: str, headers: dict, target: Path, options: FetchOptions, wait: float, end: float,
                         got: dict):
    """The attempt, cancelled when the monotonic clock reaches `end` (raising `TimeoutError`)."""
    async with httpx.AsyncClient(timeout=httpx.Timeout(wait), follow_redirects=True, max_redirects=10,
                                 verify=_ssl_context()) as client:
        with anyio.fail_after(max(0.001, end - time.monotonic())):
            async with client.stream("GET", url, headers=headers) as response:
                got["headers"] = True
                status = response.status_code
                if status == 304 and target.is_file():
                    return None
                if status == 429 or status >= 500:
                    raise _Transient(f"HTTP {status} {response.reason_phrase}")
                if status >= 400 or status == 304:
                    raise SourceError(f"HTTP {status} {response.reason_phrase}", file=url)
                announced = response.headers.get("Content-Length")
                if announced and announced.isdigit() and int(announced) > options.max_bytes:
                    raise SourceError(_too_big(int(announced), options, "announces"), file=url)
                digest, size = await _download(response, target, url, options, got)
                return digest, size, response.headers


async def _download(response: httpx.Response, target: Path, url: str, options: FetchOptions,
                    got: dict) -> tuple[str, int]:
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".part-")
    except OSError as exc:
        raise SourceError(f"cannot write the download cache: {exc.strerror or exc}", file=url) from None
    digest = hashlib.sha256()
    size = 0
    try:
        with os.fdopen(fd, "wb") as out:
            async for chunk in response.aiter_bytes():  # as received: a size argument would wait to fill it
                size += len(chunk)
                got["bytes"] = size
                if size > options.max_bytes:
                    raise SourceError(_too_big(size, options, "sent at least"), file=url)
                out.write(chunk)
                digest.update(chunk)
        expected = response.headers.get("Content-Length")
        if "Content-Encoding" not in response.headers and expected and expected.isdigit() and int(expected) != size:
            raise _Transient(f"connection closed after {size} of {expected} bytes")
        os.replace(tmp, target)
    except OSError as exc:
        raise SourceError(f"cannot write the download cache: {exc.strerror or exc}", file=url) from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return digest.hexdigest(), size


def _too_big(size: int, options: FetchOptions, verb: str) -> str:
    return (f"the server {verb} {size} bytes, more than the limit of {options.max_bytes}; "
            "raise it with options.http.max_bytes")


def _past_deadline(options: FetchOptions) -> str:
    return (f"download not finished within the deadline of {options.deadline:g} s; "
            "raise it with options.http.deadline")


def _reason(exc: Exception) -> str:
    """What the system said (e.g. "Connection refused"), from the error or the errors behind it."""
    text = str(exc) or type(exc).__name__
    errno = re.search(r"\[Errno -?\d+\] (.*)", text)
    if errno:
        return errno.group(1)
    seen, cause = set(), exc
    while cause is not None and id(cause) not in seen:  # the async stack wraps the socket's OSError
        seen.add(id(cause))
        if isinstance(cause, OSError) and isinstance(cause.errno, int):  # a name lookup's errno is negative
            return os.strerror(cause.errno) if cause.errno > 0 else str(cause.strerror or cause)
        cause = cause.__cause__ or cause.__context__
    return text


_DIGESTS: dict[tuple[str, int, int, int], tuple[str, int]] = {}


def file_digest(path: Path) -> tuple[str, int]:
    """(sha256 hex digest, size in bytes) of a file, read in 1 MiB chunks.

    Remembered per process by (path, inode, size, modification time in ns), so a sensor that
    fingerprints large logs every tick hashes each file again only when it changed.
    """
    st = os.stat(path)
    key = (str(Path(path).resolve()), st.st_ino, st.st_size, st.st_mtime_ns)
    if key in _DIGESTS:
        return _DIGESTS[key]
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    if len(_DIGESTS) > 100_000:
        _DIGESTS.clear()
    _DIGESTS[key] = (digest.hexdigest(), size)
    return _DIGESTS[key]


def _read_meta(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _write_meta(path: Path, meta: dict) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".meta-")
    with os.fdopen(fd, "w") as out:
        json.dump(meta, out)
    os.replace(tmp, path)
