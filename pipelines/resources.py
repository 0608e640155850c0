"""The warehouse resource: where studies and the lake live, configured from the environment."""

from __future__ import annotations

from pathlib import Path

from dagster import ConfigurableResource

from scaling.spec import StudySpec, discover_studies, load_study
from warehouse import config
from warehouse.catalog import ensure_catalog
from warehouse.config import WarehousePaths


class Warehouse(ConfigurableResource):
    """``root`` and ``studies`` default to SCALING_WAREHOUSE / SCALING_STUDIES, else folders in the checkout;
    ``data_roots`` (folders study files may read besides the studies folder) to SCALING_DATA_ROOTS."""

    root: str | None = None
    studies: str | None = None
    data_roots: list[str] | None = None

    @property
    def paths(self) -> WarehousePaths:
        return config.paths(self.root)

    @property
    def studies_dir(self) -> Path:
        return config.studies_dir(self.studies)

    @property
    def allowed_data_roots(self) -> tuple[Path, ...]:
        return config.data_roots(self.data_roots)

    def study_files(self) -> dict[str, Path]:
        return {load_study(p).name: p for p in discover_studies(self.studies_dir)}

    def load(self, study: str) -> StudySpec:
        roots = self.allowed_data_roots
        for path in discover_studies(self.studies_dir):
            if path.stem == study:
                spec = load_study(path, data_roots=roots)
                if spec.name == study:
                    return spec
        files = self.study_files()
        if study not in files:
            raise KeyError(f"no study named {study!r} in {self.studies_dir.name}/ (found {sorted(files)})")
        return load_study(files[study], data_roots=roots)

    def refresh_catalog(self) -> bool:
        p = self.paths
        return ensure_catalog(p.catalog, p.lake)
