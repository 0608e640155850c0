"""Turn a source `location` into the files to read.

A location is one of
- a path (relative paths are relative to the study file's folder),
- a glob (``runs/*.csv``, ``logs/**/events.out.tfevents.*``; ``**`` spans folders),
- an http(s) URL, downloaded into a cache folder (`fetch`, bounded by `FetchOptions`).

A local location may only read inside the allowed roots: the study file's folder (the studies
folder) and the data roots a user configures (``--data-root``, ``SCALING_DATA_ROOTS``). Paths
are checked after ``..`` and symlinks are resolved, so neither a ``../../etc`` location nor a
symlink leaving a root can read elsewhere.

Every resolved file carries a label (what the user wrote, resolved: the path relative to
the study folder, or the URL), the local path to read, and the sha256 and size of its
bytes, so callers can tell when a source changed. Results are sorted by label.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from scaling.errors import SourceError
from scaling.sources.fetch import FetchOptions, fetch_url, file_digest, is_url

_GLOB_CHARS = frozenset("*?[")


@dataclass(frozen=True)
class ResolvedFile:
    label: str
    path: Path
    sha256: str
    size: int


def resolve_location(
    location: str, *, base_dir: Path, cache_dir: Path, timeout: float | None = None,
    roots: Sequence[Path] | None = None, http: FetchOptions | None = None,
) -> list[ResolvedFile]:
    """Resolve `location` to a sorted, non-empty list of readable files.

    `roots` are the folders a local location may read (default: `base_dir` only); `http`
    bounds a download (default `FetchOptions()`, with `timeout` if given).
    Raises `SourceError` (with ``file=location``) for a glob matching no files, a missing,
    unreadable or non-file path, a path outside the roots, an HTTP error status, an
    unreachable host, a timeout, a missed deadline or an oversize body.
    """
    if not isinstance(location, str):
        raise SourceError(f"location must be a string, got {type(location).__name__} {location!r}",
                          file=str(location))
    if not location.strip():
        raise SourceError("location is empty", file=location)
    if any(ord(c) < 32 for c in location):
        raise SourceError("location contains control characters", file=location.encode("unicode_escape").decode())
    if is_url(location):
        if http is None:
            http = FetchOptions() if timeout is None else FetchOptions(timeout=timeout)
        path, digest, size = fetch_url(location, cache_dir=Path(cache_dir), options=http)
        return [ResolvedFile(label=location, path=path, sha256=digest, size=size)]
    if "://" in location:
        scheme = location.split("://", 1)[0]
        raise SourceError(f"unsupported URL scheme {scheme!r}: expected http or https, or a path", file=location)

    base_dir = Path(base_dir).absolute()
    allowed = [Path(os.path.realpath(r)) for r in (roots if roots is not None else (base_dir,))]
    written = os.path.expanduser(location)
    if _GLOB_CHARS.intersection(written):
        pattern = os.path.normpath(os.path.join(glob.escape(str(base_dir)), written))
        paths = [Path(p) for p in glob.glob(pattern, recursive=True) if os.path.isfile(p)]
        if not paths:
            raise SourceError("no files match this glob", file=location)
    else:
        path = Path(os.path.normpath(os.path.join(base_dir, written)))
        _check_inside(path, allowed, location)
        if not path.exists():
            raise SourceError("no such file", file=location)
        if path.is_dir():
            raise SourceError("is a folder, not a file: give a glob such as 'folder/*.csv'", file=location)
        paths = [path]

    for p in paths:
        _check_inside(p, allowed, location)
    absolute = os.path.isabs(written)
    files = [_describe(p, p.as_posix() if absolute else _relative(p, base_dir), location) for p in paths]
    return sorted(files, key=lambda f: f.label)


def _check_inside(path: Path, allowed: list[Path], location: str) -> None:
    real = Path(os.path.realpath(path))
    if any(real.is_relative_to(root) for root in allowed):
        return
    via = f" (it resolves to {real})" if real != Path(os.path.normpath(path)) else ""
    raise SourceError(
        f"{path} is outside the folders study files may read{via}: {', '.join(str(r) for r in allowed)}; "
        f"to allow it, add its folder as a data root (scaling --data-root DIR, or SCALING_DATA_ROOTS)",
        file=location)


def _describe(path: Path, label: str, location: str) -> ResolvedFile:
    try:
        digest, size = file_digest(path)
    except OSError as exc:
        raise SourceError(f"cannot read {label!r}: {exc.strerror or exc}", file=location) from exc
    return ResolvedFile(label=label, path=path, sha256=digest, size=size)


def _relative(path: Path, base_dir: Path) -> str:
    return Path(os.path.relpath(path, base_dir)).as_posix()
