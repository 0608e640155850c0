"""Real studies as researchers keep them: several files per run, labels and units from columns, computed
metrics, all through real materializations over ../shared/data."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest

from helpers import copy_study, query, run_study
from test_bad_input import error_of

NORMALIZED = ["raw_sources", "runs", "points", "quarantine"]
GEMSTONE_BATCH = 4194304


def test_gemstone_benchmark_table_joins_its_loss_curves(public_study, shared_data):
    w = public_study("gemstone_downstream", full=False)[1]
    runs = query(w, "SELECT * FROM runs WHERE study = 'gemstone_downstream' ORDER BY run")
    assert runs.height == 22
    assert set(runs["source"]) == {"curves,benchmarks"} and set(runs["kind"]) == {"training_logs"}
    curves = pl.read_ndjson(shared_data / "gemstone/wandb_dfs/wandb_df_for_fitting_hot_100b+_477.jsonl")
    bench = pl.read_parquet(shared_data / "gemstone/benchmarks/light_eval_df.parquet")
    # a benchmark point knows the run's size from the curves file and its tokens from step x batch tokens
    p = query(w, "SELECT * FROM points WHERE run = 'Gemstone-1024x28' AND metric = 'hellaswag' AND step = 2385") \
        .row(0, named=True)
    params = curves.filter(pl.col("run_name") == "PyGemma-1024x28_pretrain")["params_active_precise"][0]
    assert p["source"] == "benchmarks" and p["tokens"] == 2385 * GEMSTONE_BATCH
    assert p["flops"] == 6.0 * params * 2385 * GEMSTONE_BATCH
    assert p["value"] == bench.filter(pl.col("__index_level_0__") == "Gemstone-1024x28-step_00002385")["hellaswag"][0]
    # the same step of the curves file lands beside it, from its own file
    loss = query(w, "SELECT value, file FROM points WHERE run = 'Gemstone-1024x28' AND metric = 'loss' "
                    "AND step = 2385").row(0, named=True)
    assert loss["value"] == curves.filter((pl.col("run_name") == "PyGemma-1024x28_pretrain")
                                          & (pl.col("step") == 2385))["final_loss"][0]
    assert loss["file"].endswith("wandb_df_for_fitting_hot_100b+_477.jsonl")
    counts = dict(query(w, "SELECT metric, count(*) FROM points WHERE study = 'gemstone_downstream' GROUP BY 1")
                  .iter_rows())
    assert counts == {"loss": 3850, "hellaswag": 748, "arc_easy": 748, "piqa": 748}  # 22 x 34 checkpoints


def test_two_files_giving_one_step_two_values_is_an_error_naming_both(tmp_path, shared_data):
    studies = tmp_path / "studies"
    copy_study("gemstone_downstream", studies, public=True, shared=shared_data)
    path = studies / "gemstone_downstream.toml"
    text = path.read_text()
    extra = text[text.index("[[sources]]"):text.index("[[sources]]", text.index("[[sources]]") + 1)]
    extra = extra.replace('name = "curves"', 'name = "curves_100b"').replace("_hot_100b+_477", "_hot_477")
    path.write_text(text.replace("[[fits]]", extra + "\n[[fits]]", 1))
    err = error_of(lambda: run_study(studies, tmp_path / "wh", "gemstone_downstream", selection=NORMALIZED))
    text = str(err)
    assert err.where.study == "gemstone_downstream" and err.where.column == "loss"
    assert "wandb_df_for_fitting_hot_100b+_477.jsonl" in text and "wandb_df_for_fitting_hot_477.jsonl" in text
    assert "two values" in text and "step 477" in text


@pytest.mark.slow
def test_gemstone_two_step_downstream_forecast_without_joining_by_hand(public_study, shared_data):
    w = public_study("gemstone_downstream")[1]
    bench = pl.read_parquet(shared_data / "gemstone/benchmarks/light_eval_df.parquet")
    actual = bench.filter(pl.col("__index_level_0__") == "Gemstone-3072x12-step_00081090").row(0, named=True)
    down = query(w, "SELECT * FROM forecasts WHERE study = 'gemstone_downstream' AND kind = 'downstream' "
                    "ORDER BY target")
    assert down["target"].to_list() == ["arc_easy", "hellaswag", "piqa"]
    for r in down.iter_rows(named=True):
        assert r["actual"] == actual[{"arc_easy": "arc:easy"}.get(r["target"], r["target"])]
        assert r["ci_low"] <= r["predicted"] <= r["ci_high"]
    errors = {r["target"]: round(r["rel_error"], 4) for r in down.iter_rows(named=True)}
    assert errors == {"arc_easy": 0.009, "hellaswag": 0.0636, "piqa": 0.0184}  # README
    # the loss target's actual is the checkpoint at the target's tokens (step 81090), not the run's last point
    curves = pl.read_ndjson(shared_data / "gemstone/wandb_dfs/wandb_df_for_fitting_hot_100b+_477.jsonl")
    loss = query(w, "SELECT actual, rel_error FROM forecasts WHERE study = 'gemstone_downstream' "
                    "AND kind = 'target_run'").row(0, named=True)
    assert loss["actual"] == curves.filter((pl.col("run_name") == "PyGemma-3072x12_pretrain")
                                           & (pl.col("step") == 81090))["final_loss"][0]


def test_leaderboard_units_in_billions_and_families_from_a_column(public_study, shared_data):
    w = public_study("obsscaling", full=False)[1]
    table = pl.read_csv(shared_data / "obsscaling/base_llm_benchmark_eval_sub_10b_le84e21.csv")
    llama = query(w, "SELECT * FROM runs WHERE run = 'meta-llama/Llama-2-7b-hf'").row(0, named=True)
    assert (llama["params"], llama["tokens"], llama["flops"]) == (7.0e9, 2.0e12, 6 * 7.0e9 * 2.0e12)
    assert llama["group_name"] == "family=Llama-2" and json.loads(llama["labels"]) == {"family": "Llama-2"}
    runs = query(w, "SELECT run, group_name FROM runs WHERE study = 'obsscaling'")
    known = table.filter(pl.col("Pretraining Data Size (T)").is_not_null() | pl.col("FLOPs (1E21)").is_not_null())
    assert runs.height == known.height == 67
    assert dict(runs.iter_rows()) == {m: f"family={f}" for m, f in known.select("Model", "Model Family").iter_rows()}
    # rows that cannot be placed on the compute axis are set aside, with the reason
    q = query(w, "SELECT DISTINCT file, row FROM quarantine WHERE study = 'obsscaling'")
    assert q.height == 10 and table.height - known.height == 10
    # a computed metric: 1 - accuracy, row by row
    err = query(w, "SELECT p.run, p.value AS err, m.value AS acc FROM points p JOIN points m USING (run, tokens) "
                   "WHERE p.metric = 'mmlu_error' AND m.metric = 'mmlu'")
    assert err.height == known["MMLU"].drop_nulls().len()
    assert (err["err"] == 1 - err["acc"]).all()


def test_olmo_last5_target_and_mmlu_subset_weighted_mean(public_study, shared_data):
    w = public_study("olmo_ladder_paper", full=False)[1]
    frame = pl.read_csv(shared_data / "olmo_ladder/ladder-runs/760M-5xC.csv", infer_schema_length=0)
    c4 = frame["eval/c4_en-validation/CrossEntropyLoss"].cast(pl.Float64).drop_nulls().to_numpy()
    last5 = query(w, "SELECT value, is_final, step FROM points WHERE run = '760M-5xC' AND metric = 'c4_last5'")
    assert last5.height == 1 and last5["is_final"][0]
    assert last5["value"][0] == pytest.approx(c4[-5:].mean(), rel=1e-12)
    weights = {"stem": 0.215, "humanities": 0.335, "social_sciences": 0.219, "other": 0.231}
    for kind, col, metric in (("bpb", "eval/downstream_bpb/mmlu_{}_test_rc_5shot_bpb", "mmlu_bpb"),
                              ("acc", "eval/downstream/mmlu_{}_test_rc_5shot_len_norm", "mmlu_acc")):
        rows = frame.filter(pl.col(col.format("stem")).is_not_null() & (pl.col(col.format("stem")) != ""))
        expect = sum(w_ * rows[col.format(k)].cast(pl.Float64).to_numpy() for k, w_ in weights.items()) \
            / sum(weights.values())
        got = query(w, f"SELECT value, unit FROM points WHERE run = '760M-5xC' AND metric = '{metric}' ORDER BY step")
        assert got.height == len(expect)
        np.testing.assert_allclose(got["value"].to_numpy(), expect, rtol=1e-12)
        assert set(got["unit"]) == {"bits_per_byte" if kind == "bpb" else "accuracy"}


def test_checkpoint_position_from_the_learning_rate_column(public_study, shared_data):
    w = public_study("olmo_ladder_paper", full=False)[1]
    frame = pl.read_csv(shared_data / "olmo_ladder/ladder-runs/760M-5xC.csv", infer_schema_length=0)
    frame = frame.select(step=pl.col("_step").cast(pl.Int64),
                         lr=pl.col("optim/learning_rate_group0").cast(pl.Float64),
                         c4=pl.col("eval/c4_en-validation/CrossEntropyLoss").cast(pl.Float64)).drop_nulls("c4")
    peak_step = frame.filter(pl.col("lr") == pl.col("lr").max())["step"].min()
    expect = ["end" if s == frame["step"].max() else "cooldown" if s > peak_step and lr < 0.5 * frame["lr"].max()
              else "mid" for s, lr in frame.select("step", "lr").iter_rows()]
    got = query(w, "SELECT checkpoint FROM points WHERE run = '760M-5xC' AND metric = 'c4_loss' ORDER BY step")
    assert got["checkpoint"].to_list() == expect
    assert expect.count("cooldown") > 10 and expect.count("mid") > 10
    # the last-5 target sits at the run's end; a results table's rows are all ends of their runs
    assert query(w, "SELECT DISTINCT checkpoint FROM points WHERE metric = 'c4_last5'")["checkpoint"].to_list() \
        == ["end"]


# modded-nanogpt records' hyperparameters (warmdown = the cooldown of their warmup-stable-decay schedule)
NANOGPT_COOLDOWN = {"Optimizers": 5100 - 1450, "ScaleUp1B": 20344 - 5812, "llmc": 9536 - 2000}


def test_checkpoint_position_from_the_schedule_the_study_states(public_study, shared_data):
    """The nanoGPT logs have no learning-rate column: the study states each schedule (its length read from
    the modded dialect's `step:<i>/<N>`, its warmdown start as run metadata), and that places every point."""
    import re
    w = public_study("nanogpt", full=False)[1]
    for path in sorted((shared_data / "nanogpt_speedrun_logs").glob("*.log")):
        text = path.read_text()
        if "llmc" in path.name:
            steps, length, cooldown = [int(m) for m in re.findall(r"^s:(\d+) tel:", text, re.M)], 9536, NANOGPT_COOLDOWN["llmc"]
        else:
            found = re.findall(r"^step:(\d+)/(\d+) val_loss:", text, re.M)
            steps, length = [int(a) for a, _ in found], int(found[-1][1])
            cooldown = NANOGPT_COOLDOWN["ScaleUp1B" if "ScaleUp1B" in path.name else "Optimizers"]
        expect = ["end" if s == steps[-1] and s >= 0.99 * length else "cooldown" if s >= cooldown else "mid"
                  for s in steps]
        got = query(w, "SELECT step, checkpoint FROM points WHERE run = ? AND metric = 'val_loss' ORDER BY step",
                    [path.stem])
        assert got["step"].to_list() == steps
        assert got["checkpoint"].to_list() == expect, path.name
        assert expect[-1] == "end" and expect.count("cooldown") >= 10 and expect.count("mid") >= 10
        run = query(w, "SELECT schedule_steps, cooldown_start_step FROM runs WHERE run = ?", [path.stem]).row(0)
        assert run == (length, cooldown)


def test_a_run_stopping_short_of_its_stated_schedule_has_no_end(tmp_path, shared_data):
    """OLMo-2 7B's 4T-token schedule: the W&B segments of the run (the last at step 925k, 3.88e12 tokens,
    its learning rate still at the stable 3e-4) stop short of it, so none of their points is an end and a
    final-loss fit without a filter does not take them for finished runs; the annealed point is the end."""
    from scaling.plan.data import gather
    from scaling.plan.fits import plan_fits
    from scaling.plan.scope import study_scope
    from scaling.spec import load_study
    studies = tmp_path / "studies"
    path = copy_study("olmo_ladder", studies, public=True, shared=shared_data)
    text = path.read_text().replace('[sources.runs."peteish7*"]\nparams = 6887575552',
                                    '[sources.runs."peteish7*"]\nparams = 6887575552\n'
                                    '[sources.runs."peteish7_eval*"]\nschedule_tokens = 3945065873408')
    text = text.replace("filter = \"run NOT LIKE 'peteish%' AND ", "filter = \"")
    path.write_text(text)
    run_study(studies, tmp_path / "wh", "olmo_ladder", selection=NORMALIZED)
    last = query(tmp_path / "wh", "SELECT run, checkpoint, is_final, tokens FROM points WHERE metric = 'c4_loss' "
                                  "AND run LIKE 'peteish7_eval%' AND is_final ORDER BY run")
    assert dict(zip(last["run"], last["checkpoint"])) == {
        "peteish7_eval_170k-450k": "mid", "peteish7_eval_anneal": "end", "peteish7_eval_full": "mid"}
    # the medium-LR runs state no schedule: their last logged point stays their end, as before
    medlr = query(tmp_path / "wh", "SELECT DISTINCT checkpoint FROM points WHERE metric = 'c4_loss' "
                                   "AND run LIKE 'peteish7_medlr%' AND is_final")
    assert medlr["checkpoint"].to_list() == ["end"]
    spec = load_study(path, data_roots=(shared_data,))
    points, runs = query(tmp_path / "wh", "SELECT * FROM points"), query(tmp_path / "wh", "SELECT * FROM runs")
    (plan,) = [p for p in plan_fits(spec, points, runs) if p.law == "chinchilla"]
    (data,) = gather(plan, points, runs, study_scope(spec.forecasts))
    fitted = set(data.runs.tolist())
    assert not any(r.startswith("peteish7_eval") for r in fitted)
    assert {r for r in fitted if r.startswith("peteish7_medlr")}  # the filter no longer keeps them out


def test_a_point_past_its_stated_schedule_is_a_located_error(tmp_path, shared_data):
    studies = tmp_path / "studies"
    path = copy_study("nanogpt", studies, public=True, shared=shared_data)
    path.write_text(path.read_text().replace("schedule_steps = 9536", "schedule_steps = 9000"))
    err = error_of(lambda: run_study(studies, tmp_path / "wh", "nanogpt", selection=NORMALIZED))
    assert err.where.study == "nanogpt" and err.where.source == "llmc" and err.where.column == "train_loss"
    assert err.where.file.endswith("2024-06-06_AdamW_llmc_format.log") and err.where.line is not None
    assert "step 9091" in str(err) and "past the end of its schedule" in str(err) and "schedule_steps = 9000" in str(err)

MOE_STUDY = """
[study]
name = "moe"
flops_convention = "accelerator"

[[sources]]
name = "results"
kind = "checkpoint_results"
location = "moe.csv"
format = "csv"
run = "model"
final = "all"
scale = { params = 1e9, active_params = 1e9, tokens = 1e9 }
[sources.columns]
params = "total_b"
active_params = "active_b"
tokens = "tokens_b"
gpu_hours = "gpu_hours"
[sources.metrics]
loss = "loss"
[sources.defaults]
peak_flops = 989e12   # dense BF16 peak of one H100 SXM
mfu = 0.4
"""


def test_mixture_of_experts_and_accelerator_time_conventions(tmp_path):
    studies = tmp_path / "studies"
    studies.mkdir()
    (studies / "moe.toml").write_text(MOE_STUDY)
    (studies / "moe.csv").write_text("model,total_b,active_b,tokens_b,gpu_hours,loss\n"
                                     "moe-a,6.9,1.3,1000,25000,2.61\nmoe-b,47,13,2000,400000,2.21\n")
    run_study(studies, tmp_path / "wh", "moe", selection=NORMALIZED)
    runs = query(tmp_path / "wh", "SELECT * FROM runs ORDER BY run")
    a = runs.row(0, named=True)
    assert (a["params"], a["active_params"]) == (6.9e9, 1.3e9)
    assert a["flops_6nd"] == 6 * 1.3e9 * 1000e9  # compute counts the active parameters
    assert a["flops_accelerator"] == 25000 * 3600 * 989e12 * 0.4
    assert a["flops"] == a["flops_accelerator"] and a["flops_convention"] == "accelerator"
    pts = query(tmp_path / "wh", "SELECT run, flops, checkpoint FROM points ORDER BY run")
    assert pts["flops"].to_list() == runs["flops_accelerator"].to_list() and set(pts["checkpoint"]) == {"end"}


@pytest.mark.slow
def test_olmo_last5_forecast_of_the_7b_target(public_study):
    w = public_study("olmo_ladder_paper")[1]
    row = query(w, "SELECT * FROM forecasts WHERE study = 'olmo_ladder_paper' AND kind = 'target_run'") \
        .row(0, named=True)
    assert row["actual"] == pytest.approx(2.4829, abs=1e-4)
    assert (round(row["predicted"], 4), round(row["rel_error"], 4)) == (2.4337, -0.0198)  # README
    assert row["ci_low"] < row["actual"] < row["ci_high"]
    mmlu = query(w, "SELECT * FROM forecasts WHERE study = 'olmo_ladder_paper' AND kind = 'downstream'") \
        .row(0, named=True)
    assert round(mmlu["rel_error"], 3) == -0.040  # README
    fits = query(w, "SELECT DISTINCT n_runs FROM law_fits WHERE study = 'olmo_ladder_paper'")
    assert fits["n_runs"].to_list() == [16]


LONG_MIXTURE = """
[study]
name = "mix_long"

[[sources]]
name = "long"
kind = "mixture_runs"
[sources.mixture]
layout = "long"
losses = "regmix_long.csv"
run = "run_name"
domain = "domain"
loss = "loss"
steps = "step"
run_pattern = '^(?P<params>[0-9.]+[KMB])_(?P<weights>[0-9.]+(?:-[0-9.]+)*)$'
weight_domains = {domains}
"""


def test_long_mixture_table_with_weights_in_run_names(tmp_path, shared_data):
    """RegMix's 256 test mixtures at 1M and 60M, rewritten as one long table (a row per mixture x size x
    domain, weights only in the run name as `1M_0.787-0.0-...`), give the same mixture points as the
    published wide files."""
    data = shared_data / "regmix/data"
    weights = pl.read_csv(data / "test_mixture_1m.csv")
    wcols = [c for c in weights.columns if c != "index"]
    rows = []
    for size, losses in (("1M", pl.read_csv(data / "test_pile_loss_1m.csv")),
                         ("60M", pl.read_csv(data / "test_pile_loss_60m.csv"))):
        joined = weights.join(losses, on="index")
        lcols = [c for c in losses.columns if c != "index"]
        for r in joined.iter_rows(named=True):
            run = f"{size}_" + "-".join(repr(float(r[c])) for c in wcols)
            rows += [{"run_name": run, "step": 1000, "domain": c, "loss": r[c]} for c in lcols]
    studies = tmp_path / "studies"
    studies.mkdir()
    pl.DataFrame(rows).write_csv(studies / "regmix_long.csv")
    (studies / "mix_long.toml").write_text(LONG_MIXTURE.format(domains=json.dumps(wcols)))
    run_study(studies, tmp_path / "wh", "mix_long", selection=["raw_sources", "mixture_points"])
    mp = query(tmp_path / "wh", "SELECT * FROM mixture_points")
    assert mp.filter(pl.col("kind") == "weight")["run"].n_unique() == 512
    sizes = dict(mp.filter(pl.col("kind") == "loss").group_by("params").len().iter_rows())
    assert sizes == {1e6: 256 * 13, 6e7: 256 * 13}
    first = weights.row(0, named=True)
    run = "60M_" + "-".join(repr(float(first[c])) for c in wcols)
    w = dict(mp.filter((pl.col("run") == run) & (pl.col("kind") == "weight")).select("domain", "raw_value")
             .iter_rows())
    assert w == {c: float(first[c]) for c in wcols}
    loss60 = pl.read_csv(data / "test_pile_loss_60m.csv").filter(pl.col("index") == first["index"]).row(0, named=True)
    got = dict(mp.filter((pl.col("run") == run) & (pl.col("kind") == "loss")).select("domain", "value").iter_rows())
    assert got == {c: loss60[c] for c in loss60 if c != "index"}
    assert set(mp.filter(pl.col("kind") == "loss")["steps"]) == {1000.0}


def test_pythia_mmlu_subsets_averaged_from_raw_lm_eval_json(public_study, shared_data):
    """The mean over the 57 hendrycksTest subsets, computed from the raw result files, equals the flattened
    table's `mmlu_avg` at every checkpoint."""
    w = public_study("pythia_lm_eval_json", full=False)[1]
    got = query(w, "SELECT run, step, value, unit FROM points WHERE study = 'pythia_lm_eval_json' "
                   "AND metric = 'mmlu_avg' ORDER BY run, step")
    core = pl.read_csv(shared_data / "pythia_evals/pythia_v1_evals_core.csv").filter(
        (pl.col("task") == "mmlu_avg") & pl.col("model").is_in(["pythia-160m", "pythia-410m-0.5MtokBS"]))
    expect = core.select(run=pl.col("model") + "/" + pl.col("num_fewshot").cast(pl.Utf8) + "-shot", step="step",
                         want="value")
    joined = got.join(expect, on=["run", "step"], how="full", coalesce=True)
    assert got.height >= 40 and joined.height == got.height == expect.height
    np.testing.assert_allclose(joined["value"].to_numpy(), joined["want"].to_numpy(), rtol=1e-12)
    assert set(got["unit"]) == {"accuracy"}
