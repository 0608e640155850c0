"""`scaling init DIR` writes a study file that runs as it stands, over real folders of ../shared/data."""

from __future__ import annotations

import subprocess
import sys

import polars as pl

from helpers import REPO, query, run_study

NORMALIZED = ["raw_sources", "runs", "points", "quarantine"]


def _init(folder, out):
    done = subprocess.run([sys.executable, "-m", "pipelines.cli", "init", str(folder), "--out", str(out)],
                          cwd=REPO, capture_output=True, text=True, env={"PYTHONPATH": str(REPO), "PATH": ""})
    assert done.returncode == 0, done.stderr
    return out


def test_init_on_wandb_exports_runs_with_no_edits(tmp_path, shared_data):
    out = _init(shared_data / "olmo_ladder/ladder-runs", tmp_path / "studies" / "ladder.toml")
    text = out.read_text()
    assert 'step = "_step"' in text and 'tokens = "throughput/total_tokens"' in text
    assert "FILL IN: model size" in text
    run_study(out.parent, tmp_path / "wh", "ladder", selection=NORMALIZED)
    runs = query(tmp_path / "wh", "SELECT run, tokens FROM runs")
    assert runs.height == 38
    units = dict(query(tmp_path / "wh", "SELECT DISTINCT metric, unit FROM points").iter_rows())
    assert units["eval/c4_en-validation/CrossEntropyLoss"] == "nats"
    assert units["eval/downstream/hellaswag_val_rc_5shot_len_norm"] == "accuracy"
    assert units["eval/downstream_bpb/hellaswag_val_rc_5shot_bpb"] == "bits_per_byte"


def test_init_on_a_leaderboard_table_reads_units_and_families(tmp_path, shared_data):
    out = _init(shared_data / "obsscaling", tmp_path / "studies" / "board.toml")
    run_study(out.parent, tmp_path / "wh", "board", selection=NORMALIZED)
    runs = query(tmp_path / "wh", "SELECT * FROM runs WHERE run = 'meta-llama/Llama-2-7b-hf'").row(0, named=True)
    assert (runs["params"], runs["tokens"]) == (7e9, 2e12) and '"family": "Llama-2"' in runs["labels"]
    assert query(tmp_path / "wh", "SELECT count(*) AS n FROM runs")["n"][0] == 67
    units = set(query(tmp_path / "wh", "SELECT DISTINCT unit FROM points")["unit"])
    assert units == {"accuracy"}
    table = pl.read_csv(shared_data / "obsscaling/base_llm_benchmark_eval_sub_10b_le84e21.csv")
    assert query(tmp_path / "wh", "SELECT count(DISTINCT row) AS n FROM quarantine")["n"][0] == \
        table.filter(pl.col("Pretraining Data Size (T)").is_null() & pl.col("FLOPs (1E21)").is_null()).height
