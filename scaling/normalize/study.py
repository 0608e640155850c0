"""Normalize every log and results source of a study into `points`, `runs` and `quarantine`."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import polars as pl

from scaling.errors import ScalingError
from scaling.normalize.metadata import metadata_from_table
from scaling.normalize.mapping import QUARANTINE_SCHEMA
from scaling.normalize.points import normalize_source
from scaling.normalize.runs import build_runs
from scaling.sources import read_file
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
                                  roots=study.allowed_roots):
            table = read_file(f.path, "csv", label=f.label).drop("_file", "_row")
            out.update(metadata_from_table(table, file=f.label, source=src.name, columns=src.metadata_columns))
    except ScalingError as exc:
        raise exc.at(study=study.name, source=src.name) from None
    return out


def normalize_study(study: StudySpec, raw_of: Callable[[str], pl.DataFrame], downloads: Path,
                    spill_dir: Path | None = None) -> NormalizedStudy:
    """`raw_of(source_name)` returns that source's landed raw rows (lazy is best)."""
    points, metas, quarantine, parts = [], [], [], []
    kinds = {}
    for src in study.sources:
        if src.kind == "mixture_runs":
            continue
        kinds[src.name] = src.kind
        try:
            result = normalize_source(raw_of(src.name), src, study, _table_metadata(study, src, downloads),
                                      spill_dir=spill_dir)
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
    all_points = pl.concat(points, how="diagonal_relaxed")
    meta = pl.concat(metas, how="diagonal_relaxed")
    runs = pl.concat([
        build_runs(study.name, kinds, all_points.filter(pl.col("source") == s),
                   meta.filter(pl.col("source") == s).drop("source"), study.flops_convention)
        for s in kinds
    ], how="diagonal_relaxed")
    dup = runs.group_by("run").len().filter(pl.col("len") > 1)
    if dup.height:
        raise ScalingError(f"run ids must be unique within a study; {dup['run'].to_list()[:5]} appear in "
                           "several sources (set `run` to a template that tells them apart)", study=study.name)
    q = pl.concat(quarantine).with_columns(study=pl.lit(study.name))
    return NormalizedStudy(all_points, runs, q, parts)
