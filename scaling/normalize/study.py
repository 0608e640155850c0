"""Normalize every log and results source of a study into `points`, `runs` and `quarantine`."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import polars as pl

from scaling.errors import ScalingError
from scaling.normalize.computed import computed_points
from scaling.normalize.derive import merge_shared_metadata, peek_run_metadata
from scaling.normalize.joins import check_cross_source_conflicts
from scaling.normalize.metadata import metadata_from_table
from scaling.normalize.mapping import QUARANTINE_SCHEMA
from scaling.normalize.points import normalize_source
from scaling.normalize.runs import build_runs
from scaling.sources import read_file
from scaling.sources.fetch import http_options
from scaling.sources.locate import resolve_location
from scaling.spec import SourceSpec, StudySpec


@dataclass
class NormalizedStudy:
    points: pl.LazyFrame | None  # lazy: write it with a streaming sink; None when the study has no logs
    runs: pl.DataFrame
    quarantine: pl.DataFrame
    parts: list = field(default_factory=list)

    def cleanup(self) -> None:
        """Remove the intermediate files `points` reads; call after writing it."""
        for part in self.parts:
            part.cleanup()


def _table_metadata(study: StudySpec, src: SourceSpec, downloads: Path) -> dict[str, dict] | None:
    if not src.metadata:
        return None
    out: dict[str, dict] = {}
    try:
        for f in resolve_location(src.metadata, base_dir=study.base_dir, cache_dir=downloads,
                                  roots=study.allowed_roots, http=http_options(src.options.get("http"))):
            table = read_file(f.path, "csv", label=f.label).drop("_file", "_row")
            out.update(metadata_from_table(table, file=f.label, source=src.name, columns=src.metadata_columns))
    except ScalingError as exc:
        raise exc.at(study=study.name, source=src.name) from None
    return out


def normalize_study(study: StudySpec, raw_of: Callable[[str], pl.DataFrame], downloads: Path,
                    spill_dir: Path | None = None,
                    parsed_of: Callable[[SourceSpec], pl.LazyFrame | None] | None = None) -> NormalizedStudy:
    """`raw_of(source_name)` returns that source's landed raw rows (lazy is best); `parsed_of(source)` the
    rows parsed while landing them, when there are (see `normalize_source`)."""
    points, metas, quarantine, parts = [], [], [], []
    kinds = {}
    logs = [s for s in study.sources if s.kind != "mixture_runs"]
    tables = {s.name: _table_metadata(study, s, downloads) for s in logs}
    shared = None
    if len(logs) > 1:  # several files per run: each source sees what the others know about its runs
        try:
            shared = merge_shared_metadata({s.name: peek_run_metadata(raw_of(s.name), s, study.name, tables[s.name])
                                            for s in logs}, study.name)
        except ScalingError as exc:
            raise exc.at(study=study.name) from None
    for src in logs:
        kinds[src.name] = src.kind
        try:
            result = normalize_source(raw_of(src.name), src, study, tables[src.name],
                                      spill_dir=spill_dir, shared_metadata=shared,
                                      parsed=parsed_of(src) if parsed_of is not None else None)
        except BaseException:
            for part in parts:
                part.cleanup()
            raise
        parts.append(result)
        points.append(result.points)
        metas.append(result.run_metadata.with_columns(source=pl.lit(src.name)))
        quarantine.append(result.quarantine)
    if not points:
        return NormalizedStudy(None, pl.DataFrame(), pl.DataFrame(schema=QUARANTINE_SCHEMA))
    try:
        return _combine(study, kinds, points, metas, quarantine, parts)
    except BaseException:
        for part in parts:
            part.cleanup()
        raise


def _combine(study, kinds, points, metas, quarantine, parts) -> NormalizedStudy:
    """One study from its sources: a run found in several sources (loss curves in one file, benchmark scores
    in another) is one run, whose points come from all of them; computed metrics are added last."""
    check_cross_source_conflicts(points, study.name)
    all_points = pl.concat(points, how="diagonal_relaxed")
    # each source's metadata already includes what the others know (shared metadata): the first source wins
    meta = pl.concat(metas, how="diagonal_relaxed").unique("run", keep="first", maintain_order=True).drop("source")
    if study.computed:
        all_points = pl.concat([all_points, computed_points(all_points, study)], how="diagonal_relaxed")
    runs = build_runs(study.name, kinds, all_points, meta, study.flops_convention)
    q = pl.concat(quarantine).with_columns(study=pl.lit(study.name))
    return NormalizedStudy(all_points, runs, q, parts)
