"""The study-files sensor: ingest a study when its file or the local files it reads are new or changed.

Every tick reads the studies folder and fingerprints each study: the sha256 of the study file and
of every local file its sources read (data, mixture tables and run-metadata tables, resolved with
`resolve_location`). URL sources are left to the daily refresh schedule, and files the study's own
simulator writes (under ``[study.simulate].out``) are the pipeline's output, not its input.

The cursor (JSON) keeps the last fingerprint per study. Against it
- a new study adds its dynamic partition and requests `raw_sources` for it,
- a changed study file or source file requests `raw_sources` for that study only,
- a study whose file disappeared (deleted or renamed) loses its partition and its rows in every
  table, with a log line (`pipelines.cleanup`),
- an invalid study file is skipped with a message naming the file and the problem.
Downstream assets follow by declarative automation (see `pipelines.automation`).

A study seen for the first time that the instance already ingested after its files last changed
(for example by ``scaling run``) is adopted without a run.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from dagster import (AssetKey, AssetRecordsFilter, AssetSelection, DefaultSensorStatus, RunRequest,
                     SensorEvaluationContext, SensorResult, SkipReason, sensor)

from assets._shared import Warehouse, study_partitions
from warehouse.ingest import remove_study
from scaling.errors import ScalingError
from scaling.sources.fetch import file_digest, is_url
from scaling.sources.locate import resolve_location
from scaling.spec import StudySpec, discover_studies, load_study
from warehouse.raw import source_locations

RAW_SOURCES = AssetKey("raw_sources")
CURSOR_VERSION = 1


@dataclass(frozen=True)
class StudyFingerprint:
    """What a study reads, hashed: the study file and every local source file (or why it is missing)."""

    name: str
    file: str
    study_sha256: str
    sources_sha256: str
    newest_mtime: float
    problems: tuple[str, ...] = ()

    @property
    def digest(self) -> str:
        return hashlib.sha256(f"{self.study_sha256}:{self.sources_sha256}".encode()).hexdigest()


def local_locations(spec: StudySpec) -> list[str]:
    """The local locations a study reads: source data, mixture tables and metadata tables.

    URLs are skipped (the refresh schedule fetches them), and so is anything under the study's
    simulator output folder, which the pipeline writes itself.
    """
    out_dir = Path(os.path.normpath(spec.base_dir / spec.simulate["out"])) if spec.simulate else None
    locations = []
    for src in spec.sources:
        locs = list(source_locations(src).values()) + ([src.metadata] if src.metadata else [])
        for loc in locs:
            if is_url(loc):
                continue
            written = Path(os.path.normpath(spec.base_dir / os.path.expanduser(loc)))
            if out_dir is not None and written.is_relative_to(out_dir):
                continue
            if loc not in locations:
                locations.append(loc)
    return locations


def fingerprint_study(path: Path, downloads: Path, data_roots=()) -> StudyFingerprint:
    """Fingerprint one study file; raises `ScalingError` when the file is not a valid study."""
    spec = load_study(path, data_roots=data_roots)
    study_sha, _ = file_digest(path)
    newest = path.stat().st_mtime
    lines, problems = [], []
    for loc in local_locations(spec):
        try:
            files = resolve_location(loc, base_dir=spec.base_dir, cache_dir=downloads, roots=spec.allowed_roots)
        except ScalingError as exc:
            problems.append(str(exc))
            lines.append(f"{loc}\tunresolved\t{exc}")
            continue
        for f in files:
            lines.append(f"{loc}\t{f.label}\t{f.sha256}\t{f.size}")
            newest = max(newest, f.path.stat().st_mtime)
    sources_sha = hashlib.sha256("\n".join(lines).encode()).hexdigest()
    return StudyFingerprint(spec.name, path.name, study_sha, sources_sha, newest, tuple(problems))


def scan_studies(folder: Path, downloads: Path, data_roots=()) -> tuple[dict[str, StudyFingerprint], dict[str, str]]:
    """Fingerprints of the valid studies by name, and the problem of each invalid study file by file name."""
    studies: dict[str, StudyFingerprint] = {}
    invalid: dict[str, str] = {}
    for path in discover_studies(folder):
        try:
            fp = fingerprint_study(path, downloads, data_roots)
        except (ScalingError, OSError) as exc:
            invalid[path.name] = str(exc)
            continue
        if fp.name in studies:
            invalid[path.name] = f"study name {fp.name!r} is already used by {studies[fp.name].file}"
            continue
        studies[fp.name] = fp
    return studies, invalid


def _read_cursor(cursor: str | None) -> dict[str, dict]:
    if not cursor:
        return {}
    try:
        data = json.loads(cursor)
    except ValueError:
        return {}
    if not isinstance(data, dict) or data.get("version") != CURSOR_VERSION:
        return {}
    return dict(data.get("studies") or {})


def _ingested_since(instance, name: str, mtime: float) -> bool:
    """Did the instance materialize `raw_sources` for this study after its files last changed?"""
    records = instance.fetch_materializations(AssetRecordsFilter(asset_key=RAW_SOURCES, asset_partitions=[name]),
                                              limit=1).records
    return bool(records) and records[0].timestamp > mtime


@sensor(
    name="study_files_sensor",
    target=AssetSelection.assets(RAW_SOURCES),
    minimum_interval_seconds=30,
    default_status=DefaultSensorStatus.RUNNING,
    description="Adds a partition for each new study file and ingests a study when its file or local sources change.",
)
def study_files_sensor(context: SensorEvaluationContext, warehouse: Warehouse):
    previous = _read_cursor(context.cursor)
    current, invalid = scan_studies(warehouse.studies_dir, warehouse.paths.downloads, warehouse.allowed_data_roots)
    known = set(context.instance.get_dynamic_partitions(study_partitions.name))
    invalid_names = {entry.get("file") for entry in previous.values()} & set(invalid)

    new_partitions, requests, state = [], [], {}
    for name, fp in sorted(current.items()):
        old = previous.get(name)
        count = int(old.get("requests", 0)) if old else 0
        entry = {"file": fp.file, "study": fp.study_sha256, "sources": fp.sources_sha256, "requests": count}
        if name not in known:
            new_partitions.append(name)
        if old and old.get("study") == fp.study_sha256 and old.get("sources") == fp.sources_sha256:
            state[name] = entry
            continue
        if old is None and name in known and _ingested_since(context.instance, name, fp.newest_mtime):
            context.log.info(f"study {name!r} ({fp.file}) was ingested after its files last changed; watching it")
            state[name] = entry
            continue
        if fp.problems:
            context.log.warning(f"study {name!r} ({fp.file}) waits for its sources: {'; '.join(fp.problems)}")
            state[name] = entry
            continue
        why = ("new study" if old is None else
               "study file changed" if old.get("study") != fp.study_sha256 else "source files changed")
        context.log.info(f"study {name!r} ({fp.file}): {why}; ingesting")
        entry["requests"] = count + 1
        state[name] = entry
        requests.append(RunRequest(run_key=f"{name}:{fp.digest[:16]}:{entry['requests']}", partition_key=name,
                                   asset_selection=[RAW_SOURCES], tags={"scaling/trigger": why}))

    gone = []
    for name, entry in previous.items():
        if name in state:
            continue
        if entry.get("file") in invalid_names:
            state[name] = entry  # the file is still there but invalid now: compare against the last good state
            continue
        tables = remove_study(warehouse.paths.lake, name)
        context.log.warning(f"study {name!r}: its file {entry.get('file')} is gone; removed its partition and its "
                            f"rows from {', '.join(tables) if tables else 'no table'}")
        if name in known:
            gone.append(name)
    if gone:
        warehouse.refresh_catalog()

    for file, problem in sorted(invalid.items()):
        context.log.warning(f"skipping invalid study file {file}: {problem}")

    cursor = json.dumps({"version": CURSOR_VERSION, "studies": state}, sort_keys=True)
    partition_requests = [study_partitions.build_add_request(new_partitions)] if new_partitions else []
    if gone:
        partition_requests.append(study_partitions.build_delete_request(gone))
    skip = None
    if not requests:
        notes = [f"skipped invalid study file {file}: {problem}" for file, problem in sorted(invalid.items())]
        skip = SkipReason("; ".join(notes) if notes else f"no study changed ({len(current)} watched)")
    return SensorResult(run_requests=requests, dynamic_partitions_requests=partition_requests, cursor=cursor,
                        skip_reason=skip)
