"""The daily refresh: re-ingest every study that reads a source over http(s).

Local files are watched by `study_files_sensor`; a URL cannot be watched, so once a day each
study with a URL source gets a `raw_sources` run. Landing is a no-op when the downloaded bytes
did not change (`warehouse.raw` compares sha256), and downstream assets follow by automation.
"""

from __future__ import annotations

from dagster import (AssetKey, AssetSelection, DefaultScheduleStatus, RunRequest, ScheduleEvaluationContext,
                     SkipReason, schedule)

from pipelines.partitions import study_partitions
from pipelines.resources import Warehouse
from scaling.errors import ScalingError
from scaling.sources.fetch import is_url
from scaling.spec import StudySpec, discover_studies, load_study
from warehouse.raw import source_locations

RAW_SOURCES = AssetKey("raw_sources")


def url_locations(spec: StudySpec) -> list[str]:
    """The http(s) locations a study reads (source data, mixture tables, metadata tables)."""
    urls = []
    for src in spec.sources:
        for loc in list(source_locations(src).values()) + ([src.metadata] if src.metadata else []):
            if is_url(loc) and loc not in urls:
                urls.append(loc)
    return urls


@schedule(
    name="refresh_url_sources",
    cron_schedule="0 4 * * *",
    target=AssetSelection.assets(RAW_SOURCES),
    default_status=DefaultScheduleStatus.RUNNING,
    description="Daily: re-ingest the studies whose sources are http(s) URLs.",
)
def refresh_url_sources(context: ScheduleEvaluationContext, warehouse: Warehouse):
    known = set(context.instance.get_dynamic_partitions(study_partitions.name))
    day = context.scheduled_execution_time.strftime("%Y-%m-%d") if context.scheduled_execution_time else "now"
    requests, notes = [], []
    for path in discover_studies(warehouse.studies_dir):
        try:
            spec = load_study(path)
        except ScalingError as exc:
            notes.append(f"skipped invalid study file {path.name}: {exc}")
            continue
        urls = url_locations(spec)
        if not urls:
            continue
        if spec.name not in known:
            notes.append(f"study {spec.name!r} has no partition yet; the study-files sensor adds it")
            continue
        context.log.info(f"refreshing {spec.name}: {len(urls)} URL(s)")
        requests.append(RunRequest(run_key=f"{spec.name}:{day}", partition_key=spec.name,
                                   asset_selection=[RAW_SOURCES], tags={"scaling/trigger": "daily URL refresh"}))
    for note in notes:
        context.log.warning(note)
    if not requests:
        return SkipReason("; ".join(notes) if notes else "no study reads a URL source")
    return requests
