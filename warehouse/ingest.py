"""Switching a study's tables together: staged writes, a per-study commit record, roll-forward recovery.

A study's tables must agree: `raw`, `runs`, `points`, `quarantine` and `mixture_points` all come
from one ingest, and `law_fits`, `backtests` and `law_draws` from one fit. Every write therefore
goes to a staging folder outside the table folders, and is switched into the lake only when the
whole set is ready:

1. stage: write every new partition file under ``lake/_state/study=<s>/staging/<id>/`` (no reader
   looks there);
2. commit: write ``lake/_state/study=<s>/commit.json`` listing the switch (staged file -> table
   partition, or a partition to remove); renaming that small file into place is the commit point;
3. switch: rename each staged file over its partition (``os.replace``), remove dropped partitions,
   then rewrite the record without the switch list.

A run killed before step 2 leaves the previous tables untouched (the next ingest discards its
staging folder, or any staging folder a day old). A run killed during step 3 leaves a record that still lists its switch; `recover`
(called before every asset step and by `scaling sql`) finishes it, so every table of the study ends
up from the new ingest. Nothing else renames into a study's partitions.

An ingest spans three Dagster steps: `raw_sources` lands the sources into a *pending* ingest
(``pending.json``), and `normalized` and `mixture_points` stage their tables into the same one; the
last of the two commits raw and normalized tables together. So when normalization rejects new raw
data, nothing is committed and `raw` keeps its previous version like `runs` and `points` do. The
commit record also holds each source's manifest (file hashes and spec), which decides whether a
source changed; no state lives inside the table folders.

When the lake is the working copy of an object-store warehouse (`warehouse.objectstore`), each of these
state changes is made first in the store: the staged files are uploaded under fresh keys and the
study's pointer object is switched (a conditional PUT, the commit point there), and then the working copy
is made to match the pointer. Staging, the lock and everything a step reads stay local.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import time
import uuid
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

import polars as pl

from warehouse import objectstore
from warehouse.config import WarehousePaths
from warehouse.inputs import RECORDS
from warehouse.lake import (
    _storage_error,
    atomic_sink_parquet,
    atomic_write_json,
    atomic_write_parquet,
    inside_folder,
    inside_lake,
    partition_dir,
    read_manifest,
    remove_partition,
)

STATE = "_state"
# the steps of an ingest that stage tables after `raw_sources`; the last of them commits
INGEST_PARTS = ("normalized", "mixture_points")
STALE_SECONDS = 24 * 3600  # staging folders older than this belong to runs that were killed


def state_dir(lake: Path, study: str) -> Path:
    return lake / STATE / f"study={study}"


def _new_id() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ") + "-" + uuid.uuid4().hex[:8]


@contextmanager
def study_lock(lake: Path, study: str) -> Iterator[None]:
    """One writer of a study's state at a time (staging files are written outside the lock)."""
    d = state_dir(lake, study)
    try:
        d.mkdir(parents=True, exist_ok=True)
        fh = open(d / ".lock", "a")  # appending nothing: taking the lock leaves the file unchanged
    except OSError as exc:  # a read-only or full warehouse: one located error, nothing changed
        raise _storage_error(exc, d / ".lock") from None
    with fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def committed(lake: Path, study: str) -> dict[str, Any]:
    """The study's commit record: the current ingest id, its sources' manifests, the study file."""
    return read_manifest(state_dir(lake, study) / "commit.json") or {}


def pending(lake: Path, study: str) -> dict[str, Any] | None:
    return read_manifest(state_dir(lake, study) / "pending.json")


def _rel(lake: Path, path: Path) -> str:
    return path.relative_to(lake).as_posix()


def _strip_study(frame):
    """Partition files do not repeat the study: it is the ``study=`` folder key."""
    cols = frame.collect_schema().names()
    return frame.drop("study") if "study" in cols else frame


def _apply(lake: Path, switch: list[list[str | None]]) -> None:
    """Rename staged files over their partitions and remove dropped ones; safe to run twice."""
    for staged, target in switch:
        dest = inside_lake(lake, lake / target)  # a commit record names only paths inside the lake
        if staged is None:
            remove_partition(lake, target)
            continue
        src = inside_lake(lake, lake / staged)
        if src.exists():
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.replace(src, dest)


def _finish(lake: Path, study: str, record: dict[str, Any]) -> None:
    record = {k: v for k, v in record.items() if k != "switch"}
    atomic_write_json(record, state_dir(lake, study) / "commit.json")
    staging = state_dir(lake, study) / "staging" / record["ingest"]
    shutil.rmtree(staging, ignore_errors=True)


def recover(lake: Path, study: str) -> bool:
    """Finish a switch a killed run left half done. Returns whether there was one."""
    if "switch" not in committed(lake, study):  # nothing to finish: no lock taken (the lake may be read-only)
        return False
    with study_lock(lake, study):
        record = committed(lake, study)
        if "switch" not in record:
            return False
        _apply(lake, record["switch"])
        _finish(lake, study, record)
        return True


def recover_all(lake: Path) -> list[str]:
    """`recover` every study of the lake; returns the studies whose switch was finished."""
    root = lake / STATE
    if not root.is_dir():
        return []
    return [d.name.removeprefix("study=") for d in sorted(root.glob("study=*")) if recover(lake, d.name[6:])]


def _commit(lake: Path, study: str, ingest: str, ops: dict[str, str | None], extra: dict[str, Any]) -> None:
    """Commit point and switch (caller holds the study lock)."""
    store = objectstore.store_for(lake)
    if store is not None:  # upload, switch the store's pointer, then mirror it here
        entries = objectstore.upload_staged(store, lake, study, ingest, ops)
        objectstore.commit(store, lake, study, ingest, entries, extra)
        shutil.rmtree(state_dir(lake, study) / "staging" / ingest, ignore_errors=True)
        return
    record = {**committed(lake, study), **extra, "ingest": ingest,
              "committed_at": datetime.now(timezone.utc).isoformat(),
              "switch": [[staged, target] for target, staged in sorted(ops.items())]}
    atomic_write_json(record, state_dir(lake, study) / "commit.json")
    _apply(lake, record["switch"])
    _finish(lake, study, record)


class Staged:
    """Partitions of one study written aside; `ops` maps each partition file (relative to the lake) to
    its staged file, or to None when the partition is to be removed."""

    def __init__(self, lake: Path, study: str, ingest: str):
        self.lake, self.study, self.ingest = lake, study, ingest
        self.folder = state_dir(lake, study) / "staging" / ingest
        self.ops: dict[str, str | None] = {}
        self.committed = False  # set when this block's tables were switched into the lake

    def _target(self, table: str, source: str | None = None) -> tuple[Path, Path]:
        target = partition_dir(self.lake, table, self.study, source) / "data.parquet"
        staged = self.folder / _rel(self.lake, target)
        return target, staged

    def path(self, table: str, source: str | None = None) -> Path:
        """Where to write a partition file; it is switched into place at commit."""
        target, staged = self._target(table, source)
        self.ops[_rel(self.lake, target)] = _rel(self.lake, staged)
        return staged

    def write(self, table: str, frame: pl.DataFrame | None, source: str | None = None) -> None:
        """Stage a partition (None or no rows: remove it at commit)."""
        if frame is None or frame.height == 0:
            self.drop(table, source)
            return
        atomic_write_parquet(_strip_study(frame), self.path(table, source))

    def sink(self, table: str, lazy: pl.LazyFrame) -> Path:
        return atomic_sink_parquet(_strip_study(lazy), self.path(table, source=None))

    def drop(self, table: str, source: str | None = None) -> None:
        target, _ = self._target(table, source)
        self.ops[_rel(self.lake, target)] = None

    def rows(self, table, rows: list[dict]) -> pl.DataFrame:
        """Stage `rows` as the study's partition of `table` (a `warehouse.tables.Table`), conformed to its
        schema (no rows: the partition is removed); returns the conformed frame."""
        if not rows:
            self.drop(table.name)
            return table.empty()
        frame = table.conform(pl.DataFrame(rows, infer_schema_length=None).with_columns(study=pl.lit(self.study)))
        self.write(table.name, frame)
        return frame

    def staged_file(self, target: str) -> Path | None:
        staged = self.ops.get(target)
        return self.lake / staged if staged else None


@contextmanager
def study_write(lake: Path, study: str) -> Iterator[Staged]:
    """Write several tables of a study so that they switch together when the block ends without error."""
    recover(lake, study)
    staged = Staged(lake, study, _new_id())
    try:
        yield staged
    except BaseException:
        shutil.rmtree(staged.folder, ignore_errors=True)
        raise
    with study_lock(lake, study):
        _commit(lake, study, staged.ingest, staged.ops, {})
    staged.committed = True


# --- an ingest: raw_sources, then normalized and mixture_points, committed together -------------

def begin_ingest(lake: Path, study: str) -> Staged:
    """Start a new pending ingest for `raw_sources`, discarding any earlier one that never committed."""
    recover(lake, study)
    with study_lock(lake, study):
        staging = state_dir(lake, study) / "staging"
        previous = pending(lake, study)
        if previous:
            shutil.rmtree(staging / previous["ingest"], ignore_errors=True)
        (state_dir(lake, study) / "pending.json").unlink(missing_ok=True)
        # staging left by killed runs; a fit or forecast step of another run may be writing a recent one
        stale = time.time() - STALE_SECONDS
        for old in (staging.iterdir() if staging.is_dir() else []):
            if old.stat().st_mtime < stale:
                shutil.rmtree(old, ignore_errors=True)
        store = objectstore.store_for(lake)
        if store is not None:  # the store forgets the earlier pending ingest too
            objectstore.begin_pending(store, lake, study)
    staged = Staged(lake, study, _new_id())
    staged.folder.mkdir(parents=True, exist_ok=True)
    return staged


def land_pending(staged: Staged, manifests: dict[str, dict], study_file: str | None = None,
                 expect: tuple[str, ...] = INGEST_PARTS) -> None:
    """Record the landed raw sources as the study's pending ingest (normalization stages into it next).

    `expect` are the parts of `INGEST_PARTS` that this run will execute (a run of a partial asset
    selection may leave one out); the last of them commits, and with none the raw rows commit now."""
    gone = [s for s in committed(staged.lake, staged.study).get("raw", {}) if s not in manifests]
    for source in gone:
        staged.drop("raw", source)
    extra = {"raw": manifests, **({"file": study_file} if study_file else {})}
    with study_lock(staged.lake, staged.study):
        if not expect:
            _commit(staged.lake, staged.study, staged.ingest, staged.ops, extra)
            return
        record = {"ingest": staged.ingest, "ops": staged.ops, "raw": manifests, "parts": [], "file": study_file,
                  "expect": sorted(expect)}
        store = objectstore.store_for(staged.lake)
        if store is not None:
            entries = objectstore.upload_staged(store, staged.lake, staged.study, staged.ingest, staged.ops)
            objectstore.set_pending(store, staged.lake, staged.study, record, entries)
            return
        atomic_write_json(record, state_dir(staged.lake, staged.study) / "pending.json")


def raw_file(lake: Path, study: str, source: str) -> Path:
    """A source's raw rows as the running ingest sees them: the pending ingest's, else the committed ones."""
    target = partition_dir(lake, "raw", study, source) / "data.parquet"
    p = pending(lake, study)
    if p:
        staged = p["ops"].get(_rel(lake, target))
        if staged:
            return lake / staged
    return target


@contextmanager
def ingest_part(lake: Path, study: str, part: str) -> Iterator[Staged]:
    """Stage one step's tables into the pending ingest; the last of `INGEST_PARTS` commits the ingest.

    With no pending ingest (the step runs on its own over already committed raw data), the step's
    tables form an ingest of their own and commit when the block ends. `Staged.committed` says
    whether the block's tables are in the lake when it ends."""
    recover(lake, study)
    p = pending(lake, study)
    staged = Staged(lake, study, p["ingest"] if p else _new_id())
    if p is None:
        with study_write(lake, study) as own:
            yield own
        return
    yield staged
    store = objectstore.store_for(lake)
    if store is not None:
        with study_lock(lake, study):
            entries = objectstore.upload_staged(store, lake, study, staged.ingest, staged.ops)
            staged.committed = objectstore.add_part(store, lake, study, staged.ingest, part, entries, INGEST_PARTS)
        if staged.committed:
            shutil.rmtree(staged.folder, ignore_errors=True)
        return
    with study_lock(lake, study):
        now = pending(lake, study)
        if now is None or now["ingest"] != staged.ingest:
            raise RuntimeError(f"study {study!r}: a newer ingest started while {part} ran; its tables were "
                               "not committed")
        now["ops"].update(staged.ops)
        now["parts"] = sorted(set(now["parts"]) | {part})
        if set(now.get("expect", INGEST_PARTS)) <= set(now["parts"]):
            extra = {"raw": now["raw"]}
            if now.get("file"):
                extra["file"] = now["file"]
            _commit(lake, study, staged.ingest, now["ops"], extra)
            (state_dir(lake, study) / "pending.json").unlink(missing_ok=True)
            staged.committed = True
        else:
            atomic_write_json(now, state_dir(lake, study) / "pending.json")


# --- studies that are gone ------------------------------------------------------------------------

def lake_studies(lake: Path) -> dict[str, str | None]:
    """Every study with a partition in some table or a commit record, with the study file it came from."""
    names = {d.name[len("study="):] for d in lake.glob("*/study=*") if d.is_dir()}
    return {n: committed(lake, n).get("file") for n in sorted(names)}


def remove_study(lake: Path, study: str) -> list[str]:
    """Remove a study's partition from every table (one switch, like an ingest), then its state, its
    plots and its report files (the warehouse's ``reports`` folder); returns the tables it had rows in."""
    recover(lake, study)
    files = [f for f in lake.glob(f"*/study={study}/**/data.parquet") if f.relative_to(lake).parts[0] != STATE]
    tables = sorted({f.relative_to(lake).parts[0] for f in files})
    store = objectstore.store_for(lake)
    with study_lock(lake, study):
        if store is not None:  # the pointer goes first: readers of the store stop seeing the study
            objectstore.remove(store, lake, study)
        else:
            _commit(lake, study, _new_id(), {_rel(lake, f): None for f in files}, {})
    for t in tables:
        shutil.rmtree(lake / t / f"study={study}", ignore_errors=True)
    shutil.rmtree(state_dir(lake, study), ignore_errors=True)
    shutil.rmtree(lake / RECORDS / f"study={study}", ignore_errors=True)  # what its steps were computed from
    paths = WarehousePaths(lake.parent)
    for folder in (paths.plots, paths.reports / "plots"):
        shutil.rmtree(inside_folder(folder, folder / study, "the warehouse's plots"), ignore_errors=True)
    for suffix in (".html", ".md"):
        inside_folder(paths.reports, paths.reports / f"{study}{suffix}", "the warehouse's reports").unlink(
            missing_ok=True)
    return tables
