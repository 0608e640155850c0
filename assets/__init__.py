"""Thin Dagster assets over the core, grouped by layer: raw -> normalized -> fits -> forecasts / mixtures."""

from assets import fits, forecasts, mixing, mixture_points, normalized, raw

ASSET_MODULES = [raw, normalized, mixture_points, fits, forecasts, mixing]
