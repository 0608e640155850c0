"""The main job: every asset of a study partition, from raw sources to forecasts and mixtures."""

from dagster import AssetSelection, define_asset_job

from pipelines.partitions import study_partitions

all_studies_job = define_asset_job(
    "all_studies",
    selection=AssetSelection.all(),
    partitions_def=study_partitions,
    description="Materialize every asset of one study partition (the main job).",
)
