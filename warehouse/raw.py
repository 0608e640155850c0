"""Landing raw source rows in the lake, losslessly and only when the source changed.

Each source of a study lands as one Parquet file ``lake/raw/study=<s>/source=<name>/data.parquet``
holding every original column plus ``_source``, ``_file``, ``_row`` and ``_ingested_at``.
The folder keys ``study`` and ``source`` are the partition's: a source's own column named ``study`` or
``source`` (or either followed by underscores) lands with one more underscore (``study`` -> ``study_``,
``study_`` -> ``study__``), so a Hive reader sees each key once and no name is lost; `read_raw` gives
the columns back under their original names, which is what a source's mapping refers to.
A manifest in the study's commit record (`warehouse.ingest`) holds the files' sha256 and the
source's spec; when neither changed, landing is a no-op. A new version is staged into the study's
pending ingest and switched into place with the normalized tables (see `warehouse.ingest`).

A plain CSV log streams to Parquet in one scan that also writes, beside the staged raw file, the
rows mapped and parsed for normalization (`parsed_file`); `normalized` reads them (`read_parsed`)
instead of parsing the raw text again, and they go with the staging folder when the ingest commits.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

import polars as pl

from scaling.errors import ScalingError, SourceError
from scaling.normalize.points import SPILL_OPTIONS, parse_source
from scaling.sources import read_file
from scaling.sources.csv_reader import locate_scan_failure, scan_plain
from scaling.sources.fetch import http_options
from scaling.sources.locate import ResolvedFile, resolve_location
from scaling.spec import SourceSpec, StudySpec
from warehouse.ingest import Staged, committed, raw_file
from warehouse.lake import _atomic, atomic_sink_parquet, atomic_write_parquet, partition_dir


# the raw table's folder keys (``study=<s>/source=<name>``): no column of a landed file has these names
PARTITION_KEYS = ("study", "source")
_KEY_NAMED = re.compile(r"(?:study|source)_*")


def landed_names(columns) -> dict[str, str]:
    """How a source's columns are renamed in its raw file: a key name (or a key name followed by
    underscores) gains one underscore, so no column repeats a folder key and the renaming reverses."""
    return {c: c + "_" for c in columns if _KEY_NAMED.fullmatch(c)}


def original_names(columns) -> dict[str, str]:
    """The inverse of `landed_names`, for the columns of a raw file."""
    return {c: c[:-1] for c in columns if _KEY_NAMED.fullmatch(c) and c.endswith("_")}


@dataclass
class LandedSource:
    source: str
    rows: int
    files: int
    changed: bool
    path: Path
    columns: list[str]
    manifest: dict | None = None


def _spec_hash(src: SourceSpec) -> str:
    return hashlib.sha256(json.dumps(asdict(src), sort_keys=True, default=str).encode()).hexdigest()


def source_locations(src: SourceSpec) -> dict[str, str]:
    """The locations a source reads: one for logs and results, several for mixture experiments."""
    if src.kind != "mixture_runs":
        return {"data": src.location}
    keys = ("weights", "losses", "test_weights", "test_losses")
    locs = {k: src.mixture[k] for k in keys if src.mixture.get(k)}
    for i, extra in enumerate(src.mixture.get("extra_tests") or []):
        for k in ("weights", "losses"):
            if extra.get(k):
                locs[f"extra{i}_{k}"] = extra[k]
    return locs


def reader_options(src: SourceSpec) -> dict:
    """The options the format's reader takes: all but ``http``, which bounds downloads."""
    return {k: v for k, v in src.options.items() if k != "http"}


def resolve_source(study: StudySpec, src: SourceSpec, downloads: Path) -> dict[str, list[ResolvedFile]]:
    out = {}
    for role, loc in source_locations(src).items():
        try:
            out[role] = resolve_location(loc, base_dir=study.base_dir, cache_dir=downloads,
                                         roots=study.allowed_roots, http=http_options(src.options.get("http")))
        except ScalingError as exc:
            raise exc.at(study=study.name, source=src.name) from None
    return out


def resolve_metadata(study: StudySpec, src: SourceSpec, downloads: Path) -> list[ResolvedFile]:
    """The files of a source's metadata table, resolved as normalization reads them (the study's allowed
    roots, the source's download bounds); none when the source has no metadata table."""
    if not src.metadata:
        return []
    try:
        return resolve_location(src.metadata, base_dir=study.base_dir, cache_dir=downloads, roots=study.allowed_roots,
                                http=http_options(src.options.get("http")))
    except ScalingError as exc:
        raise exc.at(study=study.name, source=src.name) from None


def _read_all(study: StudySpec, src: SourceSpec, files: dict[str, list[ResolvedFile]]) -> pl.DataFrame:
    frames = []
    fmt = src.format if src.kind != "mixture_runs" else "csv"
    for role, resolved in files.items():
        for f in resolved:
            try:
                frame = read_file(f.path, fmt, options=reader_options(src), label=f.label)
            except ScalingError as exc:
                raise exc.at(study=study.name, source=src.name, file=f.label) from None
            if src.kind == "mixture_runs":
                frame = frame.with_columns(_role=pl.lit(role))
            frames.append(frame)
    frame = pl.concat(frames, how="diagonal_relaxed") if len(frames) > 1 else frames[0]
    return frame


def _lazy_plain_csv(src: SourceSpec, files: dict[str, list[ResolvedFile]]) -> pl.LazyFrame | None:
    """Every file of a log or results CSV source as one streaming scan, when all are plain CSV."""
    if src.kind == "mixture_runs" or src.format != "csv":
        return None
    lazies = []
    for f in files["data"]:
        lazy = scan_plain(f.path, reader_options(src), f.label)
        if lazy is None:
            return None
        lazies.append(lazy)
    return pl.concat(lazies, how="diagonal") if len(lazies) > 1 else lazies[0]


def parsed_file(raw: Path, src: SourceSpec) -> Path:
    """Beside a staged raw file: the source's rows mapped and parsed (`scaling.normalize.points.parse_source`),
    written in the same pass over the files as the raw rows, for `normalized` to read instead of parsing
    the text again. It lives in the ingest's staging folder only, and goes with it when the ingest commits."""
    return raw.with_name(f"parsed-{_spec_hash(src)[:16]}.parquet")


def read_parsed(lake: Path, study: str, src: SourceSpec) -> pl.LazyFrame | None:
    """The parsed rows written while landing the pending ingest's raw rows of `src`, if any."""
    f = parsed_file(raw_file(lake, study, src.name), src)
    return pl.scan_parquet(f) if f.exists() else None


def _sink_raw(study: StudySpec, src: SourceSpec, landed: pl.LazyFrame, target: Path, parsed: Path | None) -> None:
    """Stream the raw rows to `target`; with `parsed`, the same scan also writes the parsed columns there."""
    plan = None
    if parsed is not None and src.kind != "mixture_runs":
        try:
            plan = parse_source(landed, src, study).typed
        except ScalingError:  # a mapping problem: normalization reports it, with the raw rows landed
            plan = None
    landed = landed.rename(landed_names(landed.collect_schema().names()))  # the plan reads the original names
    if plan is None:
        atomic_sink_parquet(landed, target)
        return

    def both(tmp: Path) -> None:
        side = parsed.with_name(f".{parsed.name}.tmp")
        try:
            pl.collect_all([landed.sink_parquet(tmp, compression="zstd", compression_level=1, statistics=True, lazy=True),
                            plan.sink_parquet(side, **SPILL_OPTIONS, lazy=True)], engine="streaming")
            os.replace(side, parsed)
        finally:
            side.unlink(missing_ok=True)

    _atomic(target, both)


def land_source(study: StudySpec, src: SourceSpec, lake: Path, downloads: Path, *, force: bool = False,
                staged: Staged | None = None) -> LandedSource:
    """Resolve, hash, and (when changed) read and write one source's raw rows: into `staged` (an
    ingest, switched into the lake with the study's other tables), or with none straight into place.
    A plain CSV log is read in one streaming pass that also writes, into the staging folder, its rows
    parsed for normalization (`parsed_file`)."""
    files = resolve_source(study, src, downloads)
    target = partition_dir(lake, "raw", study.name, src.name) / "data.parquet"
    manifest = {
        "spec": _spec_hash(src),
        "files": {role: [[f.label, f.sha256, f.size] for f in fs] for role, fs in files.items()},
    }
    old = committed(lake, study.name).get("raw", {}).get(src.name)
    if not force and old and target.exists() and {k: old.get(k) for k in manifest} == manifest:
        return LandedSource(src.name, old.get("rows", 0), sum(len(v) for v in files.values()), False, target,
                            old.get("columns", []), old)
    if staged is not None:
        target = staged.path("raw", src.name)
    stamp = dict(_source=pl.lit(src.name),
                 _ingested_at=pl.lit(datetime.now(timezone.utc)).cast(pl.Datetime("us", "UTC")))
    try:
        lazy = _lazy_plain_csv(src, files)
    except ScalingError as exc:
        raise exc.at(study=study.name, source=src.name) from None
    if lazy is not None:  # large plain CSV logs stream to Parquet in bounded memory
        try:
            _sink_raw(study, src, lazy.with_columns(**stamp), target,
                      parsed_file(target, src) if staged is not None else None)
        except pl.exceptions.PolarsError as exc:  # bad bytes found while streaming: locate them
            try:
                located = locate_scan_failure([(f.path, f.label) for f in files["data"]], reader_options(src), exc)
            except ScalingError as found:
                located = found
            raise located.at(study=study.name, source=src.name) from None
        meta = pl.read_parquet_schema(target)
        rows, columns = pl.scan_parquet(target).select(pl.len()).collect().item(), list(meta)
    else:
        frame = _read_all(study, src, files)
        if frame.height == 0:
            raise SourceError("the source has no rows", study=study.name, source=src.name)
        frame = frame.with_columns(**stamp)
        frame = frame.rename(landed_names(frame.columns))
        atomic_write_parquet(frame, target)
        rows, columns = frame.height, frame.columns
    manifest.update(rows=rows, columns=columns)
    return LandedSource(src.name, rows, sum(len(v) for v in files.values()), True, target, columns, manifest)


def read_raw(lake: Path, study: str, source: str, *, lazy: bool = False) -> pl.DataFrame | pl.LazyFrame:
    """A source's landed rows (those of the study's pending ingest, if one is running), under their
    original column names (`original_names`); lazy, so that a reader can pick the columns it needs."""
    f = raw_file(lake, study, source)
    if not f.exists():
        raise SourceError("no raw data landed yet; materialize raw_sources first", study=study, source=source)
    scan = pl.scan_parquet(f)
    scan = scan.rename(original_names(scan.collect_schema().names()))
    return scan if lazy else scan.collect()
