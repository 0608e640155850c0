"""Mixing layer: per-domain data-mixing laws with held-out scores, and a proposed mixture."""

import polars as pl
from dagster import AssetExecutionContext, AssetSpec, MaterializeResult, multi_asset

from assets.metadata import plot, preview, report_link
from assets._shared import INGESTED, Warehouse, study_partitions
from scaling.plan.mixing import mixing_study
from scaling.plots import plot_mixture_heldout, plot_nested_mixing
from warehouse.ingest import study_write
from warehouse.lake import read_table
from warehouse.tables import MIXING_LAWS, MIXING_SCORES, MIXTURE_PREDICTIONS, OPTIMAL_MIXTURES


@multi_asset(
    specs=[
        AssetSpec("mixing_laws", deps=INGESTED, group_name="mixtures", kinds={"parquet"},
                  partitions_def=study_partitions, description=MIXING_LAWS.doc),
        AssetSpec("optimal_mixtures", deps=INGESTED, group_name="mixtures", kinds={"parquet"},
                  partitions_def=study_partitions, description=OPTIMAL_MIXTURES.doc),
        AssetSpec("mixing_scores", deps=INGESTED, group_name="mixtures", kinds={"parquet"},
                  partitions_def=study_partitions, description=MIXING_SCORES.doc),
        AssetSpec("mixture_predictions", deps=INGESTED, group_name="mixtures", kinds={"parquet"},
                  partitions_def=study_partitions, description=MIXTURE_PREDICTIONS.doc),
    ],
    partitions_def=study_partitions,
)
def mixing(context: AssetExecutionContext, warehouse: Warehouse):
    spec = warehouse.load(context.partition_key)
    p = warehouse.paths
    mp = read_table(p.lake, "mixture_points", spec.name)
    if mp is None:
        with study_write(p.lake, spec.name) as staged:
            for table in (MIXING_LAWS, OPTIMAL_MIXTURES, MIXING_SCORES, MIXTURE_PREDICTIONS):
                staged.drop(table.name)
        note = {"dagster/row_count": 0, "note": "study has no mixture experiments"}
        for key in ("mixing_laws", "optimal_mixtures", "mixing_scores", "mixture_predictions"):
            yield MaterializeResult(asset_key=key, metadata=note)
        return
    result = mixing_study(spec.name, spec.mixing, mp)
    for msg in result.messages:
        context.log.info(f"{spec.name}: {msg}")
    with study_write(p.lake, spec.name) as staged:  # the tables switch together
        laws = staged.rows(MIXING_LAWS, result.law_rows)
        mixture = staged.rows(OPTIMAL_MIXTURES, result.mixture_rows)
        scores_t = staged.rows(MIXING_SCORES, result.score_rows)
        preds = staged.rows(MIXTURE_PREDICTIONS, result.prediction_rows)
    warehouse.refresh_catalog()
    scores = laws.group_by("law", "target_domain").agg(pl.col("heldout_spearman").first(),
                                                      pl.col("heldout_mae").first()).sort("target_domain", "law")
    meta = {"dagster/row_count": laws.height, "best_law": result.best_law, "heldout": preview(scores, 60)}
    if result.extra_scores:  # the full table is `mixing_scores`; here the mean over targets per split and law
        per_split = scores_t.group_by("split", "law").agg(
            pl.col("params").first(), pl.col("spearman").mean().alias("mean_spearman"),
            pl.col("kendall").mean().alias("mean_kendall"), pl.col("mae").mean().alias("mean_mae"),
            pl.len().alias("targets")).sort("split", "law")
        meta["other_scales"] = preview(per_split, 60)
    folder = p.plots / spec.name
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("mixing_*.png"):  # splits of an earlier run may have gone
        old.unlink(missing_ok=True)
    for split, heldout in result.heldout_by_split.items():
        f = plot_mixture_heldout(folder / f"mixing_{split}.png", actual={d: a for d, (a, _) in heldout.items()},
                                 predicted={d: b for d, (_, b) in heldout.items()},
                                 title=f"{spec.name}: held-out mixtures, split {split} ({result.best_law})")
        meta |= plot(f"mixing_{split}", f, f"{result.best_law} predicted vs actual loss per target domain on the "
                                           f"held-out split {split!r}: study {spec.name}")
    for target, nested in result.nested.items():
        held = {split: by_target[target] for split, by_target in result.nested_heldout.items() if target in by_target}
        f = plot_nested_mixing(folder / f"mixing_nested_{target}.png", nested, heldout=held,
                               title=f"{spec.name}: nested mixing prediction, {target}")
        meta |= plot(f"mixing_nested_{target}", f,
                     f"step law per run -> size law per mixture -> {nested.law.name} at {nested.target_params:.3g} "
                     f"params and {nested.target_steps:.3g} steps, target {target}: study {spec.name}")
    warehouse.publish_plots(spec.name)
    yield MaterializeResult(asset_key="mixing_laws", metadata={**meta, **report_link(p, spec.name)})
    yield MaterializeResult(asset_key="mixing_scores", metadata={
        "dagster/row_count": scores_t.height,
        "scores": preview(scores_t.select("split", "law", "target_domain", "n", "spearman", "kendall", "mae",
                                          "params").sort("split", "target_domain", "law"), 80)})
    yield MaterializeResult(asset_key="mixture_predictions", metadata={"dagster/row_count": preds.height})
    yield MaterializeResult(asset_key="optimal_mixtures", metadata={
        "dagster/row_count": mixture.height, "summary": "; ".join(result.messages),
        "proposal": preview(mixture.select("domain", "weight", "baseline_weight", "target_domain", "predicted_loss",
                                           "ci_low", "ci_high", "baseline_predicted_loss"), 40)})
