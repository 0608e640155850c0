"""The main job: every asset of a study partition, from raw sources to forecasts and mixtures.

``all_studies`` runs its steps in the launching process (or Dagster's multiprocess executor);
``all_studies_dask`` is the same selection with the steps sent to a Dask cluster through the
``dagster-dask`` executor, configured per run with the scheduler's address
(``execution: {config: {cluster: {existing: {address: tcp://...}}}}``).
"""

from dagster import AssetSelection, define_asset_job
from pipelines.dask_executor import study_dask_executor

all_studies_job = define_asset_job(
    "all_studies",
    selection=AssetSelection.all(),
    description="Materialize every asset of one study partition (the main job).",
)

all_studies_dask_job = define_asset_job(
    "all_studies_dask",
    selection=AssetSelection.all(),
    executor_def=study_dask_executor,
    description="The main job with its steps executed on a Dask cluster (dagster-dask).",
)
