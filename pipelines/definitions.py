"""The Dagster code location: assets, checks, the main job, sensors, schedules and resources."""

from dagster import Definitions, load_assets_from_modules

import assets.fits
import assets.mixture_points
import assets.normalized
import assets.raw
from pipelines.jobs import all_studies_job
from pipelines.resources import Warehouse

defs = Definitions(
    assets=load_assets_from_modules([assets.raw, assets.normalized, assets.mixture_points, assets.fits]),
    jobs=[all_studies_job],
    resources={"warehouse": Warehouse()},
)
