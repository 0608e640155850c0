"""What assets and the wiring layer both need: the study partitions and the warehouse resource.

It sits below both: `assets/` and `pipelines/` import it, it imports neither (the asset modules used
to import `pipelines.partitions` and `pipelines.resources` from the layer that loads them).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from dagster import ConfigurableResource, DynamicPartitionsDefinition

from scaling.errors import ScalingError, SpecError
from scaling.spec import StudySpec, discover_studies, load_study
from warehouse import config, objectstore
from warehouse.catalog import ensure_catalog
from warehouse.config import WarehousePaths
from warehouse.ingest import recover

# Studies are dynamic partitions: one per study file in the studies folder.
study_partitions = DynamicPartitionsDefinition(name="study")
# The tables one ingest writes (`warehouse.ingest.INGEST_PARTS`): the last of its steps to finish
# commits them all, so a step reading any of them depends on all of them.
INGESTED = ["runs", "points", "mixture_points"]


@dataclass
class StudyFiles:
    """The studies folder read once: valid studies by name, and the problem of every other file by file name."""

    files: dict[str, Path] = field(default_factory=dict)
    invalid: dict[str, str] = field(default_factory=dict)


def scan_study_files(folder: Path) -> StudyFiles:
    """Load every study file; two files declaring one study name are both invalid, each naming the other."""
    out = StudyFiles()
    claimed: dict[str, list[Path]] = {}
    for path in discover_studies(folder):
        try:
            spec = load_study(path)
        except (ScalingError, OSError) as exc:
            out.invalid[path.name] = str(exc)
            continue
        claimed.setdefault(spec.name, []).append(path)
    for name, paths in claimed.items():
        if len(paths) == 1:
            out.files[name] = paths[0]
            continue
        for p in paths:
            others = ", ".join(q.name for q in paths if q != p)
            out.invalid[p.name] = str(SpecError(f"study name {name!r} is also declared by {others}; "
                                                "rename one of them", study=name, file=p.name))
    return out


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

    def scan(self) -> StudyFiles:
        return scan_study_files(self.studies_dir)

    def study_files(self) -> dict[str, Path]:
        """Valid studies by name; raises the first problem when any study file is invalid or a name repeats."""
        found = self.scan()
        if found.invalid:
            file, problem = sorted(found.invalid.items())[0]
            raise SpecError(problem if file in problem else f"{file}: {problem}")
        return found.files

    def load(self, study: str) -> StudySpec:
        found = self.scan()
        if study in found.files:
            spec = load_study(found.files[study], data_roots=self.allowed_data_roots)
            self.pull(spec.name)  # an object-store warehouse: start from the study's committed state
            recover(self.paths.lake, spec.name)  # finish a switch a killed run may have left half done
            return spec
        dup = [problem for problem in found.invalid.values() if f"study name {study!r}" in problem]
        if dup:
            raise SpecError(dup[0])
        own = self.studies_dir / f"{study}.toml"
        if own.name in found.invalid:  # the study's own file is invalid: raise its located error
            load_study(own, data_roots=self.allowed_data_roots)
            raise SpecError(found.invalid[own.name], study=study)
        invalid = "; ".join(f"{file}: {problem}" for file, problem in sorted(found.invalid.items()))
        raise SpecError(f"no study named {study!r} in {self.studies_dir.name}/ (found {sorted(found.files)})"
                        + (f"; invalid study files: {invalid}" if invalid else ""))

    def pull(self, study: str) -> None:
        """Bring the study's working copy up to the object store's pointer (nothing for a local warehouse)."""
        objectstore.pull(self.paths.lake, study)

    def pull_all(self) -> None:
        """Bring every study's working copy up to the object store (nothing for a local warehouse)."""
        objectstore.pull_all(self.paths.lake)

    def publish_plots(self, study: str) -> None:
        """Publish the plots a step wrote to the object store (nothing for a local warehouse)."""
        objectstore.publish_plots(self.paths.root, study)

    def refresh_catalog(self) -> bool:
        p = self.paths
        return ensure_catalog(p.catalog, p.lake)


def cluster_map():
    """On a worker of a Dask cluster (the Dask executor, `pipelines.dask_executor`), a ``map`` that runs
    each item as a task of that cluster, yielding results in order; elsewhere None (run in process).

    The step that calls it leaves the worker's thread pool while it waits (``worker_client``), so its own
    worker takes tasks too. Each task is a whole group x law fit: thousands of refits are cheap to ship as
    a few fits and dear to ship one by one."""
    try:
        from distributed import get_worker, worker_client
        get_worker()
    except (ImportError, ValueError):
        return None

    def map_on_cluster(fn, items):
        items = list(items)
        if not items:
            return
        with worker_client() as client:
            futures = client.map(fn, items, pure=False)
            for future in futures:
                yield future.result()

    return map_on_cluster
