"""The warehouse resource (defined in `assets._shared`, below both the assets and this wiring layer)."""

from assets._shared import StudyFiles, Warehouse, scan_study_files

__all__ = ["StudyFiles", "Warehouse", "scan_study_files"]
