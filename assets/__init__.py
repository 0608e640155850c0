"""Thin Dagster assets over the core, grouped by layer: raw -> normalized -> fits -> forecasts / mixtures."""

import warnings

from dagster import PreviewWarning

# Check results are tracked per study only for partitioned checks, a preview feature in the pinned
# Dagster release; the pin keeps its behaviour fixed, so the warning is silenced here, once.
warnings.filterwarnings("ignore", category=PreviewWarning, message="Specifying a partitions_def on an AssetCheckSpec")

from assets import fits, forecasts, mixing, mixture_points, normalized, raw  # noqa: E402

ASSET_MODULES = [raw, normalized, mixture_points, fits, forecasts, mixing]
