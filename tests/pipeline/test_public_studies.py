"""The shipped public-data studies, materialized for real over ../shared/data."""

from __future__ import annotations

import polars as pl
import pytest

from helpers import query


def test_chinchilla_table_tokens_from_compute(public_study):
    w = public_study("chinchilla_epoch", full=False)[1]
    runs = query(w, "SELECT * FROM runs WHERE study = 'chinchilla_epoch'")
    assert runs.height == 245
    assert ((runs["tokens"] * 6 * runs["params"] / runs["flops"]) - 1).abs().max() < 1e-12


def test_olmo_exports_target_tokens_from_steps_and_mixed_formatting(public_study, shared_data):
    w = public_study("olmo_ladder", full=False)[1]
    runs = query(w, "SELECT * FROM runs WHERE study = 'olmo_ladder'")
    assert runs.height == 38
    # the 7B target files have no token column: tokens = step x batch size in tokens
    full = runs.filter(pl.col("run") == "peteish7_eval_full").row(0, named=True)
    assert full["tokens"] == full["final_step"] * full["batch_tokens"]
    # "3812622336" and "3812622336.0" both parse to the same number
    raw = pl.read_csv(shared_data / "olmo_ladder/ladder-runs/190M-1xC.csv", infer_schema=False)
    text = raw["throughput/total_tokens"].drop_nulls()
    pts = query(w, "SELECT tokens FROM points WHERE run = '190M-1xC' AND metric = 'c4_loss' ORDER BY step")
    assert pts["tokens"].to_list() == [float(t) for t in text if t][: pts.height]
    metrics = query(w, "SELECT DISTINCT metric, unit FROM points WHERE study = 'olmo_ladder'")
    units = dict(metrics.iter_rows())
    assert units["c4_loss"] == "nats"
    assert units["eval/downstream_bpb/hellaswag_val_rc_5shot_bpb"] == "bits_per_byte"
    assert units["eval/downstream/hellaswag_val_rc_5shot_len_norm"] == "accuracy"
    c4 = query(w, "SELECT value FROM points WHERE run = 'peteish7_eval_anneal' AND metric = 'c4_loss'")
    assert c4["value"].to_list() == pytest.approx([2.4829182624816895])


def test_pythia_ablations_align_with_standard_runs_on_tokens(public_study):
    w = public_study("pythia", full=False)[1]
    pts = query(w, """
        SELECT a.tokens, a.step AS step_std, b.step AS step_ablation
        FROM points a JOIN points b ON a.tokens = b.tokens AND a.metric = b.metric
        WHERE a.run = 'pythia-410m' AND b.run = 'pythia-410m-0.5MtokBS' AND a.metric = 'lambada_openai/acc'""")
    assert pts.height >= 10
    assert (pts["step_ablation"] == 4 * pts["step_std"]).all()
    runs = query(w, "SELECT run, batch_tokens, params FROM runs WHERE run LIKE 'pythia-1.4b%' ORDER BY run")
    assert runs.rows() == [("pythia-1.4b", 2097152.0, 1414647808.0), ("pythia-1.4b-1MtokBS", 1048576.0, 1414647808.0),
                           ("pythia-1.4b-deduped", 2097152.0, 1414647808.0)]


def test_nanogpt_text_logs_in_two_dialects(public_study):
    w = public_study("nanogpt", full=False)[1]
    final = query(w, "SELECT group_name, value FROM points WHERE metric = 'val_loss' AND is_final ORDER BY value")
    assert final["value"].to_list() == pytest.approx(sorted([2.7737, 3.2752, 3.276, 3.2858, 3.275959, 3.3406]))
    assert "optimizer=soap" in final["group_name"].to_list()


def test_regmix_mixtures_join_on_index(public_study):
    w = public_study("regmix", full=False)[1]
    mp = query(w, "SELECT split, kind, count(DISTINCT run) AS runs, count(DISTINCT domain) AS domains "
                  "FROM mixture_points GROUP BY ALL ORDER BY ALL")
    assert mp.rows() == [("test", "loss", 256, 13), ("test", "weight", 256, 17), ("test_60m", "loss", 256, 13),
                         ("test_60m", "weight", 256, 17), ("train", "loss", 512, 13), ("train", "weight", 512, 17)]
    cc = query(w, "SELECT value FROM mixture_points WHERE split = 'train' AND run = '1' AND domain = 'pile_cc' "
                  "AND kind = 'weight'")
    assert cc["value"][0] == pytest.approx(0.787 / 1.0, abs=1e-9)


def test_gemstone_fit_through_the_pipeline(public_study):
    w = public_study("gemstone")[1]
    fit = dict(query(w, "SELECT parameter, estimate FROM law_fits WHERE study = 'gemstone' AND law = 'chinchilla'")
               .iter_rows())
    # the README: ours alpha 0.292892, beta 0.712979, E 2.14321 (published 0.29287, 0.71287, 2.143)
    assert (round(fit["alpha"], 6), round(fit["beta"], 6), round(fit["E"], 5)) == (0.292892, 0.712979, 2.14321)
    assert fit["alpha"] == pytest.approx(0.29287, abs=5e-5) and fit["beta"] == pytest.approx(0.71287, abs=2e-4)


def test_pythia_lm_eval_json_files_match_the_flattened_table(public_study, shared_data):
    w = public_study("pythia_lm_eval_json", full=False)[1]
    pts = query(w, "SELECT run, step, tokens, metric, value, stderr FROM points WHERE study = 'pythia_lm_eval_json'")
    assert sorted(pts["run"].unique().to_list()) == ["pythia-160m/0-shot", "pythia-160m/5-shot",
                                                     "pythia-410m-0.5MtokBS/5-shot"]
    flat = pl.read_csv(shared_data / "pythia_evals/pythia_v1_evals_core.csv").filter(
        pl.col("model") == "pythia-160m").with_columns(
        run=pl.format("pythia-160m/{}-shot", pl.col("num_fewshot")), metric=pl.format("{}/{}", "task", "metric"))
    both = pts.join(flat.select("run", "step", "metric", pl.col("value").alias("flat")), on=["run", "step", "metric"])
    assert both.height > 300
    assert (both["value"] - both["flat"]).abs().max() < 1e-12
    ablation = pts.filter(pl.col("run") == "pythia-410m-0.5MtokBS/5-shot")
    assert (ablation["tokens"] == ablation["step"] * 524288).all()
