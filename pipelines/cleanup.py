"""Studies that are gone: their file was deleted or renamed (or now declares another name).

Such a study's partition is removed from every table of the lake and from the Dagster instance,
with a log line; `scaling run` and `study_files_sensor` both do it. A study whose file is still
there but invalid keeps its data (the file is being edited), as does every study when one of the
files is invalid and the lake does not record which file a study came from.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from assets._shared import StudyFiles
from warehouse.ingest import lake_studies, remove_study


def gone_studies(lake: Path, found: StudyFiles) -> dict[str, str | None]:
    """Studies with data in the lake that no valid study file declares, with the file they came from."""
    gone = {}
    for name, file in lake_studies(lake).items():
        if name in found.files:
            continue
        if (file in found.invalid) or (file is None and found.invalid):
            continue
        gone[name] = file
    return gone


def remove_gone(lake: Path, gone: dict[str, str | None], log: Callable[[str], None]) -> list[str]:
    """Remove each gone study's rows from every table; returns the studies removed."""
    for name, file in sorted(gone.items()):
        tables = remove_study(lake, name)
        was = f"its file {file} is gone" if file else "no study file declares it"
        log(f"study {name!r}: {was}; removed its partition and its rows from "
            f"{', '.join(tables) if tables else 'no table'}")
    return sorted(gone)
