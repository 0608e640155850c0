"""The main job: every asset of a study partition, from raw sources to forecasts and mixtures."""

from dagster import AssetSelection, define_asset_job


all_studies_job = define_asset_job(
    "all_studies",
    selection=AssetSelection.all(),
    description="Materialize every asset of one study partition (the main job).",
)
