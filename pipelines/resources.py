"""The warehouse resource: where studies and the lake live, configured from the environment."""

from __future__ import annotations

from pathlib import Path

from dagster import ConfigurableResource

from scaling.spec import StudySpec, discover_studies, load_study
from warehouse import config
from warehouse.catalog import ensure_catalog
from warehouse.config import WarehousePaths


class Warehouse(ConfigurableResource):
    """``root`` and ``studies`` default to SCALING_WAREHOUSE / SCALING_STUDIES, else folders in the checkout."""

    root: str | None = None
    studies: str | None = None

    @property
    def paths(self) -> WarehousePaths:
        return config.paths(self.root)

    @property
    def studies_dir(self) -> Path:
        return config.studies_dir(self.studies)

    def study_files(self) -> dict[str, Path]:
        return {load_study(p).name: p for p in discover_studies(self.studies_dir)}

    def load(self, study: str) -> StudySpec:
        for path in discover_studies(self.studies_dir):
            if path.stem == study:
                spec = load_study(path)
                if spec.name == study:
                    return spec
        files = self.study_files()
        if study not in files:
            raise KeyError(f"no study named {study!r} in {self.studies_dir.name}/ (found {sorted(files)})")
        return load_study(files[study])

    def refresh_catalog(self) -> bool:
        p = self.paths
        return ensure_catalog(p.catalog, p.lake)
