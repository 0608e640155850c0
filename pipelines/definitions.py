"""The Dagster code location: assets, checks, the main job, sensors, schedules and resources."""

from dagster import Definitions, load_assets_from_modules

from assets import ASSET_MODULES
from assets.metadata import with_catalog_metadata
from pipelines.automation import study_automation, with_automation
from pipelines.jobs import all_studies_dask_job, all_studies_job
from pipelines.resources import Warehouse
from pipelines.schedules import refresh_url_sources
from pipelines.sensors import study_files_sensor
from pipelines.versions import with_code_versions

defs = Definitions(
    assets=with_catalog_metadata(with_code_versions(with_automation(load_assets_from_modules(ASSET_MODULES)))),
    jobs=[all_studies_job, all_studies_dask_job],
    sensors=[study_files_sensor, study_automation],
    schedules=[refresh_url_sources],
    resources={"warehouse": Warehouse()},
)
