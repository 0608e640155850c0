"""Studies are dynamic partitions: one per study file in the studies folder (defined in `assets._shared`)."""

from assets._shared import study_partitions

__all__ = ["study_partitions"]
