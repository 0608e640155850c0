"""Mixing layer: per-domain data-mixing laws with held-out scores, and a proposed mixture."""

import polars as pl
from dagster import AssetExecutionContext, AssetSpec, MaterializeResult, multi_asset

from assets.metadata import image, preview
from assets._shared import Warehouse, study_partitions
from scaling.plan.mixing import mixing_study
from scaling.plots import plot_mixture_heldout
from warehouse.ingest import study_write
from warehouse.lake import read_table
from warehouse.tables import MIXING_LAWS, OPTIMAL_MIXTURES




@multi_asset(
    specs=[
        AssetSpec("mixing_laws", deps=["mixture_points"], group_name="mixtures", kinds={"parquet"},
                  partitions_def=study_partitions, description=MIXING_LAWS.doc),
        AssetSpec("optimal_mixtures", deps=["mixture_points"], group_name="mixtures", kinds={"parquet"},
                  partitions_def=study_partitions, description=OPTIMAL_MIXTURES.doc),
    ],
    partitions_def=study_partitions,
)
def mixing(context: AssetExecutionContext, warehouse: Warehouse):
    spec = warehouse.load(context.partition_key)
    p = warehouse.paths
    mp = read_table(p.lake, "mixture_points", spec.name)
    if mp is None:
        with study_write(p.lake, spec.name) as staged:
            for table in (MIXING_LAWS, OPTIMAL_MIXTURES):
                staged.drop(table.name)
        note = {"dagster/row_count": 0, "note": "study has no mixture experiments"}
        yield MaterializeResult(asset_key="mixing_laws", metadata=note)
        yield MaterializeResult(asset_key="optimal_mixtures", metadata=note)
        return
    result = mixing_study(spec.name, spec.mixing, mp)
    for msg in result.messages:
        context.log.info(f"{spec.name}: {msg}")
    with study_write(p.lake, spec.name) as staged:  # both tables switch together
        laws = staged.rows(MIXING_LAWS, result.law_rows)
        mixture = staged.rows(OPTIMAL_MIXTURES, result.mixture_rows)
    warehouse.refresh_catalog()
    scores = laws.group_by("law", "target_domain").agg(pl.col("heldout_spearman").first(),
                                                      pl.col("heldout_mae").first()).sort("target_domain", "law")
    meta = {"dagster/row_count": laws.height, "best_law": result.best_law, "heldout": preview(scores, 60)}
    if result.extra_scores:
        meta["other_scales"] = preview(pl.DataFrame(result.extra_scores).sort("target_domain", "law"), 60)
    if result.heldout:
        folder = p.plots / spec.name
        folder.mkdir(parents=True, exist_ok=True)
        f = plot_mixture_heldout(folder / "mixing_heldout.png", actual={d: a for d, (a, _) in result.heldout.items()},
                                 predicted={d: b for d, (_, b) in result.heldout.items()},
                                 title=f"{spec.name}: held-out mixtures ({result.best_law})")
        meta["plot_heldout"] = image(f)
    yield MaterializeResult(asset_key="mixing_laws", metadata=meta)
    yield MaterializeResult(asset_key="optimal_mixtures", metadata={
        "dagster/row_count": mixture.height, "summary": "; ".join(result.messages),
        "proposal": preview(mixture.select("domain", "weight", "baseline_weight", "target_domain", "predicted_loss",
                                           "ci_low", "ci_high", "baseline_predicted_loss"), 40)})
