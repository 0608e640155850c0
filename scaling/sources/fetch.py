"""Download an http(s) source into a cache folder with the standard library.

Each URL lands in ``cache_dir/<sha256(url)[:16]>-<name>``, written atomically (a temporary
file in the same folder, then ``os.replace``). A sidecar ``.meta.json`` keeps the server's
``ETag``/``Last-Modified``; the next fetch sends them back (``If-None-Match`` /
``If-Modified-Since``) and a ``304 Not Modified`` reuses the cached bytes.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import re
import socket
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from scaling.errors import SourceError

_CHUNK = 1 << 20


def is_url(location: str) -> bool:
    return location.lower().startswith(("http://", "https://"))


def cache_path(url: str, cache_dir: Path) -> Path:
    """Where `url` is cached: keyed by the URL's hash, ending in the URL's file name."""
    key = hashlib.sha256(url.encode()).hexdigest()[:16]
    name = os.path.basename(urllib.parse.urlsplit(url).path)
    name = re.sub(r"[^A-Za-z0-9._-]", "_", name)[-80:] or "download"
    return Path(cache_dir) / f"{key}-{name}"


def fetch_url(url: str, *, cache_dir: Path, timeout: float = 30.0) -> tuple[Path, str, int]:
    """Fetch `url` into the cache; return (path, sha256, size). Errors name the URL."""
    target = cache_path(url, cache_dir)
    meta_path = target.with_name(target.name + ".meta.json")
    meta = _read_meta(meta_path) if target.is_file() else {}
    request = urllib.request.Request(url, headers={"User-Agent": "scaling-studies"})
    if meta.get("etag"):
        request.add_header("If-None-Match", meta["etag"])
    if meta.get("last_modified"):
        request.add_header("If-Modified-Since", meta["last_modified"])
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            digest, size = _download(response, target, url)
            headers = response.headers
    except urllib.error.HTTPError as exc:
        if exc.code == 304 and target.is_file():
            return (target, *file_digest(target))  # hashed again: the cache is trusted for bytes, not for its notes
        raise SourceError(f"HTTP {exc.code} {exc.reason}", file=url) from exc
    except urllib.error.URLError as exc:
        raise _connection_error(exc.reason, url, timeout) from exc
    except (TimeoutError, socket.timeout) as exc:
        raise SourceError(f"timed out after {timeout:g} s", file=url) from exc
    except http.client.HTTPException as exc:
        raise SourceError(f"bad HTTP response: {exc!r}", file=url) from exc
    except OSError as exc:
        raise _connection_error(exc, url, timeout) from exc
    _write_meta(
        meta_path,
        {"etag": headers.get("ETag"), "last_modified": headers.get("Last-Modified"), "sha256": digest, "size": size},
    )
    return target, digest, size


def _download(response, target: Path, url: str) -> tuple[str, int]:
    target.parent.mkdir(parents=True, exist_ok=True)
    expected = response.headers.get("Content-Length")
    digest = hashlib.sha256()
    size = 0
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".part-")
    try:
        with os.fdopen(fd, "wb") as out:
            while chunk := response.read(_CHUNK):
                out.write(chunk)
                digest.update(chunk)
                size += len(chunk)
        if expected is not None and expected.isdigit() and int(expected) != size:
            raise SourceError(f"connection closed after {size} of {expected} bytes", file=url)
        os.replace(tmp, target)
    except BaseException:
        os.unlink(tmp)
        raise
    return digest.hexdigest(), size


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


def _connection_error(reason: object, url: str, timeout: float) -> SourceError:
    if isinstance(reason, (TimeoutError, socket.timeout)):
        return SourceError(f"timed out after {timeout:g} s", file=url)
    if isinstance(reason, OSError):
        text = reason.strerror or str(reason)
        return SourceError(f"cannot reach host: {text}", file=url)
    return SourceError(f"cannot reach host: {reason}", file=url)


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
