"""Where the warehouse and the studies live.

Both default to folders inside the checkout and move with one environment variable each:
``SCALING_WAREHOUSE`` (the Parquet lake, the DuckDB catalog, plots, download cache) and
``SCALING_STUDIES`` (the folder of study TOML files). Study files read only inside the studies
folder and the data roots listed in ``SCALING_DATA_ROOTS`` (folders separated by ``os.pathsep``,
``:`` on POSIX; the CLI's ``--data-root`` adds to it).

``SCALING_WAREHOUSE=s3://bucket/prefix`` puts the warehouse in an object store (`warehouse.objectstore`);
the paths below are then those of its local working copy (``SCALING_WAREHOUSE_CACHE``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parents[1]


def _default_base() -> Path:
    # An editable install runs from the checkout; anything else runs from the working directory.
    return CHECKOUT if (CHECKOUT / "pyproject.toml").exists() else Path.cwd()


@dataclass(frozen=True)
class WarehousePaths:
    root: Path

    @property
    def lake(self) -> Path:
        return self.root / "lake"

    @property
    def catalog(self) -> Path:
        return self.root / "catalog.duckdb"

    @property
    def plots(self) -> Path:
        return self.root / "plots"

    @property
    def reports(self) -> Path:
        """`scaling report`'s default folder: ``<study>.html``, ``<study>.md``, ``plots/<study>/``, ``index.html``."""
        return self.root / "reports"

    @property
    def downloads(self) -> Path:
        return self.root / "cache" / "downloads"


def warehouse_root(value: str | os.PathLike | None = None) -> Path:
    """The warehouse folder; for an object-store warehouse (``s3://bucket/prefix``), its local working copy."""
    raw = value or os.environ.get("SCALING_WAREHOUSE") or _default_base() / ".warehouse"
    if isinstance(raw, str) and "://" in raw:
        from warehouse.objectstore import working_copy

        return working_copy(raw)
    return Path(raw).expanduser().resolve()


def studies_dir(value: str | os.PathLike | None = None) -> Path:
    raw = value or os.environ.get("SCALING_STUDIES") or _default_base() / "studies"
    return Path(raw).expanduser().resolve()


def data_roots(value: str | os.PathLike | list | tuple | None = None) -> tuple[Path, ...]:
    """The configured data roots: `value` (a list, or a string like the variable), else ``SCALING_DATA_ROOTS``."""
    raw = os.environ.get("SCALING_DATA_ROOTS", "") if value is None else value
    items = raw.split(os.pathsep) if isinstance(raw, str) else [str(v) for v in raw]
    return tuple(Path(item).expanduser().resolve() for item in items if item.strip())


def paths(value: str | os.PathLike | None = None) -> WarehousePaths:
    return WarehousePaths(warehouse_root(value))
