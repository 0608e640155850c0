"""Mixing layer: per-domain data-mixing laws with held-out scores, and a proposed mixture."""

import polars as pl
from dagster import AssetExecutionContext, AssetSpec, MaterializeResult, multi_asset

from assets.metadata import image, preview
from pipelines.partitions import study_partitions
from pipelines.resources import Warehouse
from scaling.plan.mixing import mixing_study
from scaling.plots import plot_mixture_heldout
from warehouse.lake import drop_study, read_table, replace_study_rows
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
        for table in (MIXING_LAWS, OPTIMAL_MIXTURES):
            drop_study(p.lake, table.name, spec.name)
        note = {"dagster/row_count": 0, "note": "study has no mixture experiments"}
        yield MaterializeResult(asset_key="mixing_laws", metadata=note)
        yield MaterializeResult(asset_key="optimal_mixtures", metadata=note)
        return
    result = mixing_study(spec.name, spec.mixing, mp)
    for msg in result.messages:
        context.log.info(f"{spec.name}: {msg}")
    laws = replace_study_rows(p.lake, MIXING_LAWS, spec.name, result.law_rows)
    mixture = replace_study_rows(p.lake, OPTIMAL_MIXTURES, spec.name, result.mixture_rows)
    warehouse.refresh_catalog()
    scores = laws.group_by("law", "target_domain").agg(pl.col("heldout_spearman").first(),
                                                      pl.col("heldout_mae").first()).sort("target_domain", "law")
    meta = {"dagster/row_count": laws.height, "best_law": result.best_law, "heldout": preview(scores, 60)}
    if result.extra_scores:
        meta["other_scales"] = preview(pl.DataFrame(result.extra_scores).sort("target_domain", "law"), 60)
    folder = p.plots / spec.name
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("mixing_*.png"):  # splits of an earlier run may have gone
        old.unlink(missing_ok=True)
    for split, heldout in result.heldout_by_split.items():
        f = plot_mixture_heldout(folder / f"mixing_{split}.png", actual={d: a for d, (a, _) in heldout.items()},
                                 predicted={d: b for d, (_, b) in heldout.items()},
                                 title=f"{spec.name}: held-out mixtures, split {split} ({result.best_law})")
        meta[f"plot_mixing_{split}"] = image(f, f"{result.best_law} predicted vs actual loss per target domain on the "
                                                f"held-out split {split!r}: study {spec.name}")
    yield MaterializeResult(asset_key="mixing_laws", metadata=meta)
    yield MaterializeResult(asset_key="optimal_mixtures", metadata={
        "dagster/row_count": mixture.height, "summary": "; ".join(result.messages),
        "proposal": preview(mixture.select("domain", "weight", "baseline_weight", "target_domain", "predicted_loss",
                                           "ci_low", "ci_high", "baseline_predicted_loss"), 40)})
