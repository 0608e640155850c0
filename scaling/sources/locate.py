"""Turn a source `location` into the files to read.

A location is one of
- a path (relative paths are relative to the study file's folder),
- a glob (``runs/*.csv``, ``logs/**/events.out.tfevents.*``; ``**`` spans folders),
- an http(s) URL, downloaded with the standard library into a cache folder.

Every resolved file carries a label (what the user wrote, resolved: the path relative to
the study folder, or the URL), the local path to read, and the sha256 and size of its
bytes, so callers can tell when a source changed. Results are sorted by label.
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass
from pathlib import Path

from scaling.errors import SourceError
from scaling.sources.fetch import fetch_url, file_digest, is_url

_GLOB_CHARS = frozenset("*?[")


@dataclass(frozen=True)
class ResolvedFile:
    label: str
    path: Path
    sha256: str
    size: int


def resolve_location(
    location: str, *, base_dir: Path, cache_dir: Path, timeout: float = 30.0
) -> list[ResolvedFile]:
    """Resolve `location` to a sorted, non-empty list of readable files.

    Raises `SourceError` (with ``file=location``) for a glob matching no files, a missing,
    unreadable or non-file path, an HTTP error status, an unreachable host or a timeout.
    """
    if not isinstance(location, str) or not location.strip():
        raise SourceError("location is empty", file=str(location))
    if is_url(location):
        path, digest, size = fetch_url(location, cache_dir=Path(cache_dir), timeout=timeout)
        return [ResolvedFile(label=location, path=path, sha256=digest, size=size)]
    if "://" in location:
        scheme = location.split("://", 1)[0]
        raise SourceError(f"unsupported URL scheme {scheme!r}: expected http or https, or a path", file=location)

    base_dir = Path(base_dir).absolute()
    written = os.path.expanduser(location)
    if _GLOB_CHARS.intersection(written):
        pattern = os.path.normpath(os.path.join(glob.escape(str(base_dir)), written))
        paths = [Path(p) for p in glob.glob(pattern, recursive=True) if os.path.isfile(p)]
        if not paths:
            raise SourceError("no files match this glob", file=location)
    else:
        path = Path(os.path.normpath(os.path.join(base_dir, written)))
        if not path.exists():
            raise SourceError("no such file", file=location)
        if path.is_dir():
            raise SourceError("is a folder, not a file: give a glob such as 'folder/*.csv'", file=location)
        paths = [path]

    absolute = os.path.isabs(written)
    files = [_describe(p, p.as_posix() if absolute else _relative(p, base_dir), location) for p in paths]
    return sorted(files, key=lambda f: f.label)


def _describe(path: Path, label: str, location: str) -> ResolvedFile:
    try:
        digest, size = file_digest(path)
    except OSError as exc:
        raise SourceError(f"cannot read {label!r}: {exc.strerror or exc}", file=location) from exc
    return ResolvedFile(label=label, path=path, sha256=digest, size=size)


def _relative(path: Path, base_dir: Path) -> str:
    return Path(os.path.relpath(path, base_dir)).as_posix()
