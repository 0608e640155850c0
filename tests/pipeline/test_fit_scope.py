"""No leakage and local failures, through real materializations of small studies over the
simulated checkpoint table (30 runs, 19M-1.0B parameters, 5-80 tokens per parameter).

- a target run (`actual_run`) and the runs a `[[fits]]` filter drops enter no fit: not the law
  fits, not their backtests, not either step of a downstream forecast, not the budget grid, and
  `extrapolation` is measured from the largest compute actually fitted;
- under the 6ND+attention convention compute-optimal allocations count the attention term;
- a fit that cannot run fails alone, named by study, group, law and parameter.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from helpers import query, run_study
from scaling.forecast.budgets import family_flops_per_token
from scaling.plan.forecasts import downstream_filter, forecast_study
from scaling.plan.restore import restore_fits
from scaling.spec import load_study
from warehouse.lake import read_table

SOURCE = """
[[sources]]
name = "published"
kind = "checkpoint_results"
location = "_simulated/example/checkpoints.csv"
format = "csv"
run = "model"
final = "all"
metadata = "_simulated/example/runs.csv"
[sources.columns]
params = "params"
tokens = "tokens"
flops = "training_flops"
[sources.metrics]
loss = "final_loss"
acc_taskA = { column = "acc_taskA", unit = "accuracy" }
bpb_taskA = { column = "bpb_taskA", unit = "bits_per_byte" }
"""
HEAD = '[study]\nsimulate = {{ seed = 0, out = "_simulated/example" }}\nflops_convention = "{conv}"\n{extra}\n'
TARGET = "sim-458M-80x"  # the largest run the filter keeps
FILTER = "run NOT LIKE 'sim-1009M-%'"
SCOPED = SOURCE + f"""
[[fits]]
law = "chinchilla"
target = "loss"
filter = "{FILTER}"
n_resamples = 100
backtest_resamples = 50

[[fits]]
law = "power_law_flops"
target = "loss"
filter = "{FILTER}"
n_resamples = 100
backtest_resamples = 50

[forecasts]
n_budgets = 3
factor = 100
targets = [{{ name = "458M-80x", params = 457605120, tokens = 36607885312, actual_run = "{TARGET}" }}]
downstream = [{{ task_loss = "bpb_taskA", accuracy = "acc_taskA", floor = 0.25, min_tokens_fraction = 0.0, n_resamples = 50 }}]
"""


def _write(studies, name, text, conv="6ND", extra=""):
    studies.mkdir(parents=True, exist_ok=True)
    (studies / f"{name}.toml").write_text(HEAD.format(conv=conv, extra=extra) + text)


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory):
    root = tmp_path_factory.mktemp("scope")
    studies, w = root / "studies", root / "warehouse"
    _write(studies, "scoped", SCOPED)
    _write(studies, "attention", SCOPED.replace(f'filter = "{FILTER}"\n', ""), conv="6ND+attention")
    for name in ("scoped", "attention"):
        run_study(studies, w, name)
    return studies, w


def _expected_runs(w, study, *, keep=lambda r: not r.startswith("sim-1009M-")) -> pl.DataFrame:
    runs = query(w, f"SELECT run, params, tokens, flops, n_layer, seq_len, d_model FROM runs WHERE study = '{study}'")
    assert runs.height == 30
    return runs.filter(pl.col("run").map_elements(keep, return_dtype=pl.Boolean) & (pl.col("run") != TARGET))


@pytest.mark.slow
def test_target_and_filtered_runs_enter_no_fit(warehouse):
    studies, w = warehouse
    fitted = _expected_runs(w, "scoped")
    assert fitted.height == 24  # 30 runs - five 1.0B runs (filter) - the target run
    max_fitted = float(fitted["flops"].max())
    all_flops = float(query(w, "SELECT max(flops) AS m FROM runs WHERE study = 'scoped'")["m"][0])
    assert all_flops > 9 * max_fitted  # a leak would move every number below

    fits = query(w, "SELECT DISTINCT law, n_runs, settings FROM law_fits WHERE study = 'scoped'")
    assert sorted(fits["law"].to_list()) == ["chinchilla", "power_law_flops"]
    assert fits["n_runs"].to_list() == [24, 24]
    held = query(w, "SELECT DISTINCT run FROM backtests WHERE study = 'scoped'")["run"].to_list()
    assert held and set(held) <= set(fitted["run"].to_list())

    # the budget grid starts at the largest fitted compute, not at any run's
    grid = query(w, "SELECT law, flops, extrapolation FROM forecasts WHERE study = 'scoped' "
                    "AND kind = 'compute_optimal' ORDER BY law, flops")
    for law in ("chinchilla", "power_law_flops"):
        g = grid.filter(pl.col("law") == law)
        np.testing.assert_allclose(g["flops"].to_numpy(), max_fitted * np.array([1.0, 10.0, 100.0]), rtol=1e-12)
        np.testing.assert_allclose(g["extrapolation"].to_numpy(), [1.0, 10.0, 100.0], rtol=1e-12)

    # extrapolation = the target's compute over the largest compute fitted
    target_c = 6.0 * 457605120 * 36607885312
    rows = query(w, "SELECT kind, law, flops, extrapolation, actual FROM forecasts WHERE study = 'scoped' "
                    "AND kind IN ('target_run', 'downstream') ORDER BY kind")
    assert rows["kind"].to_list() == ["downstream", "target_run"]
    np.testing.assert_allclose(rows["flops"].to_numpy(), [target_c, target_c], rtol=1e-12)
    np.testing.assert_allclose(rows["extrapolation"].to_numpy(), [target_c / max_fitted] * 2, rtol=1e-12)
    assert rows["extrapolation"][0] == pytest.approx(2.0, abs=0.01)  # 1.005e20 / 5.026e19
    assert rows["actual"].is_not_null().all()  # the target's observed values are still reported

    # both steps of the downstream forecast fit exactly the runs the law fits may use
    spec = load_study(studies / "scoped.toml")
    lake = w / "lake"
    law_fits = read_table(lake, "law_fits", "scoped")
    result = forecast_study("scoped", spec.forecasts, spec.flops_convention,
                            restore_fits(law_fits, read_table(lake, "law_draws", "scoped")),
                            read_table(lake, "backtests", "scoped").to_dicts(), read_table(lake, "points", "scoped"),
                            read_table(lake, "runs", "scoped"), fit_filter=downstream_filter(spec))
    expected = sorted(fitted["run"].to_list())
    assert result.fitted_runs == {"downstream:acc_taskA": {"step1": expected, "step2": expected}}

    # the same points in another order give the same downstream forecast to the last bit (the fits'
    # inputs do not follow the order a join happens to produce)
    points = read_table(lake, "points", "scoped")
    shuffled = forecast_study("scoped", spec.forecasts, spec.flops_convention,
                              restore_fits(law_fits, read_table(lake, "law_draws", "scoped")),
                              read_table(lake, "backtests", "scoped").to_dicts(),
                              points.sample(fraction=1.0, shuffle=True, seed=1), read_table(lake, "runs", "scoped"),
                              fit_filter=downstream_filter(spec))
    down = [r for r in result.rows if r["kind"] == "downstream"]
    assert down and down == [r for r in shuffled.rows if r["kind"] == "downstream"]


@pytest.mark.slow
def test_compute_optimal_forecasts_count_attention_under_that_convention(warehouse):
    _, w = warehouse
    runs = _expected_runs(w, "attention", keep=lambda r: True)
    assert runs.height == 29
    attn = 6.0 * runs["n_layer"] * runs["seq_len"] * runs["d_model"]
    # the study's compute holds the attention term
    np.testing.assert_allclose(runs["flops"].to_numpy(), ((6 * runs["params"] + attn) * runs["tokens"]).to_numpy(),
                               rtol=1e-12)
    fpt = family_flops_per_token(runs["params"].to_numpy(), attn.to_numpy())
    rows = query(w, "SELECT law, flops, params, tokens FROM forecasts WHERE study = 'attention' "
                    "AND kind = 'compute_optimal' AND law = 'chinchilla' ORDER BY flops")
    assert rows.height == 3
    N, D, C = rows["params"].to_numpy(), rows["tokens"].to_numpy(), rows["flops"].to_numpy()
    np.testing.assert_allclose(fpt(N) * D, C, rtol=1e-12)  # C = (6N + attention(N))·D at the optimum
    assert np.all(6 * N * D < 0.97 * C)  # the attention term is a real share of compute at these sizes
    # a power law in N reproduces every fitted run's attention term within 15% (shapes vary by size)
    np.testing.assert_allclose(fpt(runs["params"].to_numpy()) - 6 * runs["params"].to_numpy(), attn.to_numpy(),
                               rtol=0.15)


BROKEN = SOURCE + """
[[fits]]
law = "chinchilla"
target = "loss"
filter = "group_name = 'schedule=cosine' OR run = 'sim-19M-5x'"
n_resamples = 50
backtest_resamples = 20

[[fits]]
law = "power_law_flops"
target = "loss"
bounds = { A = [-1, 10000] }

[forecasts]
n_budgets = 2
targets = [{ name = "458M-80x", params = 457605120, tokens = 36607885312 }]
downstream = [{ task_loss = "bpb_taskA", accuracy = "acc_taskA", filter = "run = 'sim-19M-5x'", n_resamples = 20 }]
"""


@pytest.mark.slow
def test_a_failing_fit_fails_alone_and_is_named(tmp_path):
    """The wsd group keeps one run (too few points) and power_law_flops has a negative bound on its
    log-space coefficient A: those fits fail, named; the downstream forecast's filter keeps one run:
    it fails, named; chinchilla on the cosine group and its forecasts still materialize, and the
    blocking check still passes."""
    studies, w = tmp_path / "studies", tmp_path / "warehouse"
    _write(studies, "broken", BROKEN, extra='group_by = ["schedule"]')
    result = run_study(studies, w, "broken")
    assert result.success
    fits = query(w, "SELECT DISTINCT group_name, law, n_runs, converged FROM law_fits WHERE study = 'broken'")
    assert fits.rows() == [("schedule=cosine", "chinchilla", 20, True)]
    rows = query(w, "SELECT DISTINCT group_name, law, kind FROM forecasts WHERE study = 'broken' ORDER BY kind")
    assert rows.rows() == [("schedule=cosine", "chinchilla", "compute_optimal"),
                           ("schedule=cosine", "chinchilla", "target_run")]
    (mat,) = result.asset_materializations_for_node("forecasts")[:1]
    failed = mat.metadata["failed_forecasts"].value
    assert failed.startswith("- study 'broken', forecasts.downstream[0] chinchilla+downstream_sigmoid -> "
                             "'acc_taskA' (task loss 'bpb_taskA'), group '' (the whole study): step 1 (chinchilla -> "
                             "'bpb_taskA' on 1 run): ")
    assert "expected at least" in failed and failed.count("\n- ") == 0
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert checks["fit_converged"].passed
    completed = checks["fits_completed"]
    assert not completed.passed
    text = completed.description
    assert text.startswith("3 planned fit(s) failed, the others ran")
    assert ("study 'broken', fits[0] law 'chinchilla' -> 'loss', group 'schedule=wsd': "
            "expected at least 2 points to fit 'chinchilla', got 1") in text
    for group in ("schedule=cosine", "schedule=wsd"):
        assert (f"study 'broken', fits[1] law 'power_law_flops' -> 'loss', group '{group}', parameter 'A': "
                "parameter 'A' of law 'power_law_flops' is fitted in log space, so its bounds must be positive "
                "(a lower bound of 0 means none); got (-1, 10000)") in text


LOGGED = """
[[sources]]
name = "published"
kind = "checkpoint_results"
location = "_simulated/example/checkpoints.csv"
format = "csv"
run = "model"
final = "all"
[sources.columns]
tokens = "tokens"
flops = "training_flops"
[sources.metrics]
loss = "final_loss"
[sources.defaults]
n_layer = 8
seq_len = 2048
d_model = 256
"""


def test_logged_flops_without_params_are_not_counted_twice(tmp_path):
    """Without N, compute is the logged count as it is: the attention term is not added on top."""
    studies, w = tmp_path / "studies", tmp_path / "warehouse"
    _write(studies, "logged", LOGGED, conv="6ND+attention")
    run_study(studies, w, "logged", selection=["raw_sources", "runs", "points", "quarantine"])
    pts = query(w, "SELECT run, flops FROM points WHERE study = 'logged' ORDER BY run")
    table = pl.read_csv(studies / "_simulated/example/checkpoints.csv").sort("model")
    assert pts["run"].to_list() == table["model"].to_list()
    assert pts["flops"].to_list() == table["training_flops"].cast(pl.Float64).to_list()
