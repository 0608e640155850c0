"""The main job on the built-in example studies: real materializations into a temp warehouse."""

from __future__ import annotations

import json

import polars as pl

from helpers import query, run_study
from warehouse.catalog import connect


def test_catalog_views_answer_sql_with_no_setup(example_warehouse):
    _, warehouse = example_warehouse
    con = connect(warehouse / "catalog.duckdb")
    try:
        views = {r[0] for r in con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall()}
        runs = con.execute("SELECT study, count(*) FROM runs GROUP BY study ORDER BY study").fetchall()
    finally:
        con.close()
    assert {"runs", "points", "law_fits", "backtests", "quarantine", "mixture_points", "raw"} <= views
    assert runs == [("example_checkpoints", 30), ("example_sweep", 30)]


def test_runs_are_normalized_from_logs_and_metadata(example_warehouse):
    studies, warehouse = example_warehouse
    planted = json.loads((studies / "_simulated" / "example" / "PLANTED.json").read_text())
    runs = query(warehouse, "SELECT * FROM runs WHERE study = 'example_sweep'")
    # every run has N, D and both compute conventions; 6ND is the default convention
    assert runs["params"].null_count() == 0 and runs["tokens"].null_count() == 0
    assert (runs["flops"] == runs["flops_6nd"]).all()
    attn = runs["flops_6nd"] + 6 * runs["n_layer"] * runs["seq_len"] * runs["d_model"] * runs["tokens"]
    assert (runs["flops_attention"] - attn).abs().max() < 1e-6 * attn.max()
    # tokens = step x batch tokens in the simulator; the log's token column agrees
    assert ((runs["tokens"] - runs["final_step"] * runs["batch_tokens"]).abs() < 1).all()
    assert runs["tokens_per_param"].min() > 4 and runs["tokens_per_param"].max() < 90
    assert set(json.loads(runs["labels"][0])) >= {"schedule"}
    assert planted["vocab_size"] == runs["vocab_size"][0]


def test_points_keep_units_and_bits_per_byte(example_warehouse):
    _, warehouse = example_warehouse
    pts = query(warehouse, "SELECT * FROM points WHERE study = 'example_sweep' AND metric = 'loss' AND is_final")
    assert pts.height == 30
    assert (pts["loss_nats"] == pts["value"]).all()
    bpb = pts["loss_nats"] / (0.6931471805599453 * 4.2)
    assert (pts["bits_per_byte"] - bpb).abs().max() < 1e-12
    acc = query(warehouse, "SELECT unit, loss_nats FROM points WHERE metric = 'acc_taskA'")
    assert acc["unit"].unique().to_list() == ["accuracy"] and acc["loss_nats"].null_count() == acc.height
    task = query(warehouse, "SELECT value, bits_per_byte, loss_nats FROM points WHERE metric = 'bpb_taskA'")
    assert (task["value"] == task["bits_per_byte"]).all() and task["loss_nats"].null_count() == task.height


def test_raw_keeps_every_original_column(example_warehouse):
    studies, warehouse = example_warehouse
    raw = query(warehouse, "SELECT * FROM raw WHERE study = 'example_sweep' AND source = 'wandb_logs'")
    for col in ("_step", "_runtime", "_timestamp", "train/loss", "throughput/total_tokens", "_file", "_row",
                "_ingested_at"):
        assert col in raw.columns
    one = sorted((studies / "_simulated" / "example" / "wandb").glob("*.csv"))[0]
    lines = one.read_text().splitlines()
    landed = raw.filter(pl.col("_file").str.ends_with(one.name)).sort("_row")
    assert landed.height == len(lines) - 1
    # text kept exactly as written (int or float formatting of tokens)
    assert landed["throughput/total_tokens"].to_list() == [l.split(",")[-1] for l in lines[1:]]


def test_mixture_points_are_renormalized_and_flagged(example_warehouse):
    _, warehouse = example_warehouse
    mp = query(warehouse, "SELECT * FROM mixture_points WHERE study = 'example_mixture'")
    sums = mp.filter(pl.col("kind") == "weight").group_by("split", "run").agg(
        pl.col("value").sum().alias("s"), pl.col("raw_value").sum().alias("raw"), pl.col("renormalized").first())
    assert (sums["s"] - 1).abs().max() < 1e-12
    flagged = sums.filter(pl.col("renormalized"))
    assert flagged.height > 0 and ((flagged["raw"] - 1).abs() > 0).all()
    assert set(mp.filter(pl.col("kind") == "loss")["domain"].unique()) == {"web", "code", "books", "math"}


def test_reingest_of_unchanged_sources_is_a_noop(example_warehouse):
    studies, warehouse = example_warehouse
    target = next((warehouse / "lake" / "raw" / "study=example_sweep").glob("source=*/data.parquet"))
    before = target.stat().st_mtime_ns
    result = run_study(studies, warehouse, "example_sweep", selection=["raw_sources"])
    mat = result.asset_materializations_for_node("raw_sources")[0]
    assert mat.metadata["changed_sources"].value == 0
    assert target.stat().st_mtime_ns == before
