"""Points + per-run metadata -> one row per run (`runs`)."""

from __future__ import annotations

import polars as pl

from scaling.normalize.units import flops_6nd as flops_6nd_fn
from scaling.normalize.units import flops_accelerator, flops_params, non_embedding_params
from scaling.normalize.units import flops_attention as flops_attention_fn


def build_runs(study: str, kind_by_source: dict[str, str], points: pl.DataFrame | pl.LazyFrame,
               metadata: pl.DataFrame, flops_convention: str) -> pl.DataFrame:
    """Summarize each run at its final point: tokens D, compute under both conventions, D/N.

    A run whose points come from several sources is one row; `source` lists them (in study order, joined
    by ','), and `kind` is that of the first."""
    order = {s: i for i, s in enumerate(kind_by_source)}
    last = points.lazy().with_columns(_order=pl.col("source").replace_strict(order, default=len(order),
                                                                          return_dtype=pl.Int64)) \
        .group_by("run").agg(
        source=pl.col("source").sort_by("_order").unique(maintain_order=True).str.join(","),
        final_step=pl.col("step").max(), tokens=pl.col("tokens").max(), n_points=pl.len()).collect(engine="streaming")
    runs = last.join(metadata, on="run", how="left")
    tied = pl.col("tied_embeddings").fill_null(True)
    derived_nonemb = pl.when(tied).then(non_embedding_params(pl.col("params"), pl.col("vocab_size"), pl.col("d_model"), True)) \
        .otherwise(non_embedding_params(pl.col("params"), pl.col("vocab_size"), pl.col("d_model"), False))
    n_flops = flops_params(pl.col("params"), pl.col("active_params"))
    flops_6nd = flops_6nd_fn(n_flops, pl.col("tokens"))
    flops_attention = flops_attention_fn(n_flops, pl.col("tokens"), pl.col("n_layer"), pl.col("seq_len"),
                                         pl.col("d_model"))
    runs = runs.with_columns(
        study=pl.lit(study),
        kind=pl.col("source").str.split(",").list.first().replace_strict(kind_by_source, return_dtype=pl.Utf8),
        non_embedding_params=pl.coalesce(pl.col("non_embedding_params"), derived_nonemb),
        flops_6nd=flops_6nd,
        flops_attention=flops_attention,
        flops_accelerator=flops_accelerator(pl.col("gpu_hours"), pl.col("peak_flops"), pl.col("mfu")),
        flops_convention=pl.lit(flops_convention),
        tokens_per_param=pl.col("tokens") / pl.col("params"),
    ).with_columns(flops=pl.col({"6ND+attention": "flops_attention", "accelerator": "flops_accelerator"}.get(
        flops_convention, "flops_6nd")))
    return runs.sort("source", "run")
