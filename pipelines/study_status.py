"""`scaling studies`: each study's description, whether its sources resolve, when it was last materialized."""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from scaling.errors import ScalingError
from scaling.sources.fetch import is_url
from scaling.spec import StudySpec, discover_studies, load_study
from warehouse.config import data_roots
from warehouse.raw import source_locations


@dataclass
class StudyStatus:
    file: str
    name: str = ""
    description: str = ""
    sources: list[str] = field(default_factory=list)
    last_materialized: str | None = None
    error: str | None = None


def _resolves(location: str, base: Path) -> str:
    """Whether a location names readable files, without reading or downloading them."""
    if is_url(location):
        return "URL, fetched at run time"
    written = os.path.expanduser(location)
    path = os.path.normpath(os.path.join(base, written))
    if set("*?[") & set(written):
        n = sum(os.path.isfile(p) for p in glob.glob(os.path.join(glob.escape(str(base)), written), recursive=True))
        return f"{n} files" if n else "NO files match"
    return "found" if os.path.isfile(path) else "MISSING"


def _source_lines(spec: StudySpec) -> list[str]:
    lines = []
    for src in spec.sources:
        parts = [f"{role} {loc!r}: {_resolves(loc, spec.base_dir)}" for role, loc in source_locations(src).items()]
        line = f"{src.name} ({src.kind}): " + "; ".join(parts)
        if spec.simulate and ("MISSING" in line or "NO files" in line):
            line += " (simulated data, written by the first run)"
        lines.append(line)
    return lines


def last_materializations(names: list[str]) -> dict[str, float]:
    """Study -> timestamp of its latest materialization of any asset, from the Dagster instance
    (DAGSTER_HOME); studies never materialized there are absent."""
    from dagster import AssetRecordsFilter, DagsterInstance

    if not os.environ.get("DAGSTER_HOME"):
        return {}
    out: dict[str, float] = {}
    with DagsterInstance.get() as instance:
        known = set(instance.get_dynamic_partitions("study"))
        for key in instance.get_asset_keys():
            for name in names:
                if name not in known:
                    continue
                records = instance.fetch_materializations(
                    AssetRecordsFilter(asset_key=key, asset_partitions=[name]), limit=1).records
                if records:
                    out[name] = max(out.get(name, 0.0), records[0].timestamp)
    return out


def study_status(folder: Path) -> list[StudyStatus]:
    rows = []
    for path in discover_studies(folder):
        row = StudyStatus(file=path.name)
        try:
            spec = load_study(path, data_roots=data_roots())
        except ScalingError as exc:
            row.error = str(exc)
            rows.append(row)
            continue
        row.name, row.description, row.sources = spec.name, spec.description, _source_lines(spec)
        rows.append(row)
    stamps = last_materializations([r.name for r in rows if not r.error])
    for row in rows:
        if row.name in stamps:
            row.last_materialized = datetime.fromtimestamp(stamps[row.name], tz=timezone.utc) \
                .strftime("%Y-%m-%d %H:%M:%S UTC")
    return rows
