"""Input records: what each step of a study was last computed from, kept beside the lake.

For every study and step (a Dagster op: ``raw_sources``, ``normalized``, ``fits``, ...) the
warehouse keeps ``lake/_inputs/study=<study>/<step>.json`` with

- ``input_hash``: sha256 over the step's code version, the parts of the study file it reads, the
  digests of the source files (for ``raw_sources``) and the input hashes of its upstream steps;
- ``outputs``: a fingerprint (path, size, modification time) of every file the step left in its
  tables' partitions for the study.

A step whose current input hash equals the recorded one and whose outputs are still exactly as it
left them holds nothing stale, so `scaling run` skips it. A record is written only after the step
succeeded (and its blocking checks passed), atomically, so a failed or interrupted run leaves the
step stale and it runs again. In an object-store warehouse the records also live in the study's
pointer (`warehouse.objectstore`), so every working copy sees them.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from warehouse.lake import atomic_write_json, read_manifest

RECORDS = "_inputs"


def record_path(lake: Path, study: str, step: str) -> Path:
    return lake / RECORDS / f"study={study}" / f"{step}.json"


def digest(*parts) -> str:
    """sha256 of JSON-serialisable parts (dicts with sorted keys)."""
    h = hashlib.sha256()
    for part in parts:
        h.update(json.dumps(part, sort_keys=True, default=str).encode())
        h.update(b"\x00")
    return h.hexdigest()


def output_fingerprint(lake: Path, study: str, tables: tuple[str, ...]) -> list[list]:
    """(path, size, mtime_ns) of every file in the study's partitions of ``tables``."""
    out = []
    for table in tables:
        folder = lake / table / f"study={study}"
        if not folder.is_dir():
            continue
        for f in sorted(folder.rglob("*")):
            if f.is_file() and not f.name.startswith("."):
                st = f.stat()
                out.append([f.relative_to(lake).as_posix(), st.st_size, st.st_mtime_ns])
    return out


def read_record(lake: Path, study: str, step: str) -> dict | None:
    return read_manifest(record_path(lake, study, step))


def write_record(lake: Path, study: str, step: str, input_hash: str, tables: tuple[str, ...]) -> None:
    from warehouse.objectstore import put_record

    record = {"input_hash": input_hash, "outputs": output_fingerprint(lake, study, tables)}
    put_record(lake, study, step, record)
    atomic_write_json(record, record_path(lake, study, step))


def drop_record(lake: Path, study: str, step: str) -> None:
    from warehouse.objectstore import put_record

    put_record(lake, study, step, None)
    record_path(lake, study, step).unlink(missing_ok=True)


def is_current(lake: Path, study: str, step: str, input_hash: str | None, tables: tuple[str, ...]) -> bool:
    """The step was recorded with this input hash and its outputs are untouched since."""
    if input_hash is None:
        return False
    rec = read_record(lake, study, step)
    return bool(rec) and rec.get("input_hash") == input_hash \
        and rec.get("outputs") == output_fingerprint(lake, study, tables)
