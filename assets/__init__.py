"""Thin Dagster assets over the core, grouped by layer: raw -> normalized -> fits -> forecasts / mixtures.

The asset modules are imported on the first use of `ASSET_MODULES` (a module ``__getattr__``, PEP 562),
not with the package: what needs only the warehouse resource (`assets._shared`), such as a `scaling run`
that finds nothing stale, does not import the fitting stack, scipy and matplotlib.
"""

import importlib
import warnings

from dagster import PreviewWarning

# Check results are tracked per study only for partitioned checks, a preview feature in the pinned
# Dagster release; the pin keeps its behaviour fixed, so the warning is silenced here, once.
warnings.filterwarnings("ignore", category=PreviewWarning, message="Specifying a partitions_def on an AssetCheckSpec")

# the asset modules, upstream first
_MODULES = ("raw", "normalized", "mixture_points", "fits", "forecasts", "mixing")


def __getattr__(name: str):
    if name == "ASSET_MODULES":
        return [importlib.import_module(f"assets.{m}") for m in _MODULES]
    raise AttributeError(f"module 'assets' has no attribute {name!r}")
