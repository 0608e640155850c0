"""Fits, forecasts and mixtures through real materializations, checked against published numbers."""

from __future__ import annotations

import json

import pytest

from helpers import copy_study, query, run_study
from pipelines.resources import Warehouse
from pipelines.summary import summary_lines
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
    # the study's explicit hold-out (C >= 1e21, up to 13x the largest fitted) with calibrated intervals
    held = query(w, "SELECT * FROM backtests WHERE study = 'chinchilla_epoch' AND law = 'chinchilla' AND \"primary\"")
    assert held.height == 23 and set(held["holdout"]) == {"holdout: flops >= 1e21"}
    assert held["covered"].all() and held["extrapolation"].max() == pytest.approx(13.0, abs=0.05)
    summary = query(w, "SELECT * FROM backtest_summary WHERE study = 'chinchilla_epoch' AND law = 'chinchilla' "
                       "AND extrapolation_bin = 'hold-out'").row(0, named=True)
    assert summary["n_heldout"] == 23 and summary["coverage"] == 1.0 and summary["boot_coverage"] < 0.7
    assert round(summary["mean_rel_width"], 3) == 0.042
    rollouts = query(w, "SELECT DISTINCT holdout FROM backtests WHERE study = 'chinchilla_epoch' AND NOT \"primary\"")
    assert sorted(rollouts["holdout"]) == ["top 20% of runs by compute", "top 35% of runs by compute",
                                           "top 50% of runs by compute"]
    bins = query(w, "SELECT extrapolation_bin FROM backtest_summary WHERE study = 'chinchilla_epoch' "
                    "AND law = 'chinchilla' AND rank IS NULL")["extrapolation_bin"].to_list()
    assert bins[0] == "1-2x" and "5-10x" in bins


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
    # the README's row: predicted 2.4360, -1.89%, calibrated 95% interval 2.254-2.632
    assert round(row["predicted"], 4) == 2.4360 and round(row["rel_error"], 4) == -0.0189
    assert (round(row["ci_low"], 3), round(row["ci_high"], 3)) == (2.254, 2.632)
    # the headline allocation (~0.56 tokens per parameter from a ladder fitted at 19-210) is flagged
    head = query(w, "SELECT * FROM forecasts WHERE study = 'olmo_ladder' AND kind = 'compute_optimal' "
                    "AND recommended ORDER BY abs(ln(extrapolation / 10)) LIMIT 1").row(0, named=True)
    assert round(head["tokens_per_param"], 2) == 0.56
    assert "allocation_outside_fitted:tokens_per_param" in head["warnings"].split(",")
    lines = "\n".join(summary_lines(Warehouse(root=str(w), studies=str(root / "studies")), ["olmo_ladder"], 0.0))
    assert "best in backtests, but see the warnings" in lines
    assert "warning: allocation_outside_fitted:tokens_per_param" in lines


@pytest.mark.slow
def test_pythia_lambada_headline_says_its_units_and_unknowns(root, shared_data):
    _, w = materialize(root, "pythia", shared_data)
    head = query(w, "SELECT * FROM forecasts WHERE study = 'pythia' AND kind = 'compute_optimal' "
                    "AND recommended ORDER BY abs(ln(extrapolation / 10)) LIMIT 1").row(0, named=True)
    assert round(head["predicted"], 2) == 1.09  # ln(perplexity), not a perplexity of 1.09
    assert "not_identified:E" in head["warnings"].split(",")  # E's interval runs to its bound, 0
    fit = query(w, "SELECT ci_low, flags FROM law_fits WHERE study = 'pythia' AND parameter = 'E'").row(0, named=True)
    assert fit["ci_low"] == 0.0 and "not_identified:E" in fit["flags"]
    lines = "\n".join(summary_lines(Warehouse(root=str(w), studies=str(root / "studies")), ["pythia"], 0.0))
    assert "ln(lambada_openai/ppl)=1.0885" in lines and "i.e. perplexity 2.97" in lines
    assert "warning: not_identified:E" in lines


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
