"""Fits, forecasts and mixtures through real materializations, checked against published numbers."""

from __future__ import annotations

import json

import polars as pl
import pytest

from helpers import copy_study, query, run_study
from scaling.plan.mixing import mixing_study


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return tmp_path_factory.mktemp("results")


def materialize(root, name, shared=None):
    studies, warehouse = root / "studies", root / "warehouse"
    copy_study(name, studies, public=shared is not None, shared=shared)
    run_study(studies, warehouse, name)
    return studies, warehouse


@pytest.mark.slow
def test_chinchilla_epoch_replication_with_intervals(root, shared_data):
    _, w = materialize(root, "chinchilla_epoch", shared_data)
    fit = {r["parameter"]: r for r in query(
        w, "SELECT * FROM law_fits WHERE study = 'chinchilla_epoch' AND law = 'chinchilla'").iter_rows(named=True)}
    published = {"A": 477.84, "B": 2143.86, "E": 1.8172, "alpha": 0.34731, "beta": 0.36718}
    for name, value in published.items():
        assert fit[name]["estimate"] == pytest.approx(value, rel=1e-3)
    assert fit["E"]["objective"] <= 1.01828e-3 and fit["E"]["n_points"] == 240 and fit["E"]["converged"]
    epoch = {"alpha": (0.317, 0.373), "beta": (0.331, 0.415), "E": (1.769, 1.871)}
    for name, (lo, hi) in epoch.items():
        assert fit[name]["ci_low"] == pytest.approx(lo, rel=0.10)
        assert fit[name]["ci_high"] == pytest.approx(hi, rel=0.10)
    settings = json.loads(fit["E"]["settings"])
    assert settings["delta"] == 1e-3 and settings["n_resamples"] == 1000


@pytest.mark.slow
def test_olmo_ladder_predicts_the_7b_target(root, shared_data):
    _, w = materialize(root, "olmo_ladder", shared_data)
    row = query(w, "SELECT * FROM forecasts WHERE study = 'olmo_ladder' AND kind = 'target_run' "
                   "AND target = 'c4_loss'").row(0, named=True)
    assert row["actual"] == pytest.approx(2.4829, abs=1e-4)
    assert abs(row["rel_error"]) < 0.02
    assert row["ci_low"] < row["actual"] < row["ci_high"]
    down = query(w, "SELECT target, predicted, ci_low, ci_high, actual, rel_error FROM forecasts "
                    "WHERE study = 'olmo_ladder' AND kind = 'downstream'")
    assert down.height == 4
    assert ((down["ci_low"] <= down["predicted"]) & (down["predicted"] <= down["ci_high"])).all()
    assert down["rel_error"].is_finite().all()
    fits = query(w, "SELECT DISTINCT n_runs FROM law_fits WHERE study = 'olmo_ladder'")
    assert fits["n_runs"].to_list() == [16]


@pytest.mark.slow
def test_simulated_sweep_recovers_planted_compute_optimal_exponents(root):
    studies, w = materialize(root, "example_sweep")
    planted = json.loads((studies / "_simulated/example/PLANTED.json").read_text())["compute_optimal"]
    fit = dict(query(w, "SELECT parameter, estimate FROM law_fits WHERE study = 'example_sweep' "
                        "AND law = 'chinchilla'").iter_rows())
    assert fit["a_params_exponent"] == pytest.approx(planted["a"], abs=0.02)
    assert fit["b_tokens_exponent"] == pytest.approx(planted["b"], abs=0.02)
    summary = query(w, "SELECT law, rank FROM backtest_summary WHERE study = 'example_sweep' ORDER BY rank")
    assert summary["law"][0] == "chinchilla"
    rec = query(w, "SELECT DISTINCT law FROM forecasts WHERE study = 'example_sweep' AND recommended")
    assert rec["law"].to_list() == ["chinchilla"]
    assert (w / "plots" / "example_sweep" / "frontier_loss.png").stat().st_size > 20_000


@pytest.mark.slow
def test_regmix_mixing_laws_rank_heldout_mixtures(root, shared_data):
    _, w = materialize(root, "regmix", shared_data)
    scores = query(w, "SELECT law, heldout_spearman FROM mixing_laws WHERE study = 'regmix' "
                      "AND target_domain = 'pile_cc' GROUP BY ALL")
    by_law = dict(scores.iter_rows())
    assert max(by_law.values()) >= 0.98
    assert by_law["linear"] == pytest.approx(0.902, abs=0.01)
    mix = query(w, "SELECT weight FROM optimal_mixtures WHERE study = 'regmix' AND weight IS NOT NULL")
    assert mix.height == 17 and abs(mix["weight"].sum() - 1) < 1e-6 and mix["weight"].min() >= 0
    # the law fitted on 1M proxies ranks the same mixtures trained at 60M
    mp = query(w, "SELECT * FROM mixture_points WHERE study = 'regmix'")
    result = mixing_study("regmix", {"laws": ["ye_exp_log"], "targets": ["pile_cc"], "n_resamples": 20}, mp)
    (score,) = [s for s in result.extra_scores if s["split"] == "test_60m"]
    assert score["spearman"] >= 0.97
    # every held-out split scored in a table, beside RegMix's published LightGBM 0.9892 (1M) and 0.9857 (60M)
    sc = query(w, "SELECT split, law, n, spearman, kendall, mae, params, chosen FROM mixing_scores "
                  "WHERE study = 'regmix' AND target_domain = 'pile_cc' ORDER BY split, law")
    got = {(r["split"], r["law"]): r for r in sc.iter_rows(named=True)}
    assert set(got) == {(s, law) for s in ("test", "test_60m") for law in ("linear", "ye_exp", "ye_exp_log")}
    assert got[("test", "ye_exp_log")]["spearman"] == pytest.approx(0.9919, abs=5e-5)
    assert got[("test_60m", "ye_exp_log")]["spearman"] == pytest.approx(0.9877, abs=5e-5)
    assert got[("test", "linear")]["spearman"] == pytest.approx(0.9018, abs=5e-5)
    assert got[("test", "ye_exp")]["spearman"] == pytest.approx(0.9659, abs=5e-5)
    assert got[("test_60m", "ye_exp")]["spearman"] == pytest.approx(0.9602, abs=5e-5)
    assert got[("test_60m", "ye_exp_log")]["params"] == 6e7 and got[("test", "linear")]["params"] == 1e6
    assert all(r["n"] == 256 and 0 < r["kendall"] < r["spearman"] for r in got.values())
    assert got[("test", "ye_exp_log")]["chosen"]
    preds = query(w, "SELECT split, law, target_domain, run, actual, predicted, ci_low, ci_high, error "
                     "FROM mixture_predictions WHERE study = 'regmix'")
    assert preds.height == 2 * 3 * 13 * 256
    cc = preds.filter((pl.col("split") == "test_60m") & (pl.col("law") == "ye_exp_log")
                      & (pl.col("target_domain") == "pile_cc"))
    assert cc["run"].n_unique() == 256
    assert (cc["error"] - (cc["predicted"] - cc["actual"])).abs().max() < 1e-12
    assert ((cc["ci_low"] <= cc["predicted"]) & (cc["predicted"] <= cc["ci_high"])).all()
    from scipy.stats import spearmanr
    assert spearmanr(cc["predicted"], cc["actual"]).statistic == pytest.approx(
        got[("test_60m", "ye_exp_log")]["spearman"], abs=1e-12)
    # the run summary reports the other scale
    from pipelines.resources import Warehouse
    from pipelines.summary import summary_lines

    mean60 = query(w, "SELECT avg(spearman) AS r FROM mixing_scores WHERE split = 'test_60m' AND chosen")["r"][0]
    lines = summary_lines(Warehouse(root=str(w), studies=str(w.parent / "studies")), ["regmix"], 0.0)
    assert f"      held-out split test_60m, 6e+07 params: mean Spearman {mean60:.3f} over 13 targets" in lines
