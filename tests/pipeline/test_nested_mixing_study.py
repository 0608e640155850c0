"""Ye et al.'s nested mixing prediction and BiMix from study files, through real materializations of a
simulated mixture x size x step experiment whose planted law makes every nested stage exact."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from helpers import query, run_study
from scaling.simulate.mixture import NESTED_DOMAINS, NESTED_LAW, write_nested_experiment

pytestmark = pytest.mark.slow  # two materializations of small simulated studies, ~20 s

N_STAR, S_STAR = 2e8, 2e4
SOURCES = '''
[[sources]]
name = "{name}"
kind = "mixture_runs"
[sources.mixture]
layout = "long"
losses = "{file}"
run = "run_name"
steps = "step"
split = "{split}"
run_pattern = '^(?P<params>[0-9.]+[KMB])_(?P<weights>[0-9.]+(?:-[0-9.]+)*)$'
weight_domains = {domains}
'''


def _study(name: str, mixing: str) -> str:
    domains = "[" + ", ".join(f'"{d}"' for d in NESTED_DOMAINS) + "]"
    return (f'[study]\nname = "{name}"\n' + SOURCES.format(name="proxies", file="train.csv", split="train", domains=domains)
            + SOURCES.format(name="target_scale", file="heldout.csv", split="test", domains=domains) + mixing)


@pytest.fixture(scope="module")
def nested(tmp_path_factory):
    root = tmp_path_factory.mktemp("nested")
    studies = root / "studies"
    planted = write_nested_experiment(studies, 16, 12, seed=3, target_params=N_STAR, target_steps=S_STAR,
                                      checkpoint_noise=5e-4, run_noise=5e-4)
    (studies / "nested_mix.toml").write_text(_study("nested_mix", f'''
[mixing]
method = "nested"
target_params = {N_STAR}
target_steps = {S_STAR}
n_resamples = 100
'''))
    run_study(studies, root / "wh", "nested_mix", selection=["raw_sources", "mixture_points", "mixing_laws",
                                                             "optimal_mixtures", "mixing_scores", "mixture_predictions"])
    return root / "wh", planted


def test_nested_study_recovers_the_planted_law_at_the_target_scale(nested):
    w, planted = nested
    p = NESTED_LAW
    laws = query(w, "SELECT * FROM mixing_laws WHERE study = 'nested_mix' AND law = 'nested'")
    assert set(laws["stage"]) == {"step", "size", "mixing"}
    mix = {r["parameter"]: r for r in laws.filter(pl.col("stage") == "mixing").iter_rows(named=True)}
    c_true = p["E"] + p["A"] * N_STAR ** -p["alpha"] + p["B"] * S_STAR ** -p["beta"]
    truth = {"c": c_true, **{f"t[{d}]": t for d, t in zip(NESTED_DOMAINS, p["t"])}}
    for name, value in truth.items():  # every planted mixing-law parameter inside its interval
        assert mix[name]["ci_low"] < value < mix[name]["ci_high"], (name, mix[name], value)
    steps = laws.filter((pl.col("stage") == "step") & (pl.col("parameter") == "beta"))
    assert steps.height == 16 * 4 and steps["params"].n_unique() == 4
    assert abs(steps["estimate"].median() - p["beta"]) < 0.02
    sizes = laws.filter((pl.col("stage") == "size") & (pl.col("parameter") == "alpha"))
    assert sizes.height == 16 and abs(sizes["estimate"].median() - p["alpha"]) < 0.05
    assert (sizes["ci_low"] < sizes["estimate"]).all() and (sizes["estimate"] < sizes["ci_high"]).all()


def test_nested_study_scores_and_predicts_the_heldout_target_scale_runs(nested):
    w, planted = nested
    score = query(w, "SELECT * FROM mixing_scores WHERE study = 'nested_mix'").row(0, named=True)
    assert (score["split"], score["law"], score["n"], score["params"]) == ("test", "nested", 12, N_STAR)
    assert score["spearman"] > 0.9 and score["mae"] < 0.01
    preds = query(w, "SELECT * FROM mixture_predictions WHERE study = 'nested_mix' ORDER BY run")
    assert preds.height == 12 and set(preds["law"]) == {"nested"}
    assert ((preds["ci_low"] < preds["predicted"]) & (preds["predicted"] < preds["ci_high"])).all()
    assert (preds["error"] - (preds["predicted"] - preds["actual"])).abs().max() < 1e-12
    mix = query(w, "SELECT * FROM optimal_mixtures WHERE study = 'nested_mix'")
    assert set(mix["law"]) == {"nested"} and abs(mix["weight"].sum() - 1) < 1e-6
    # the planted law's optimum at the target scale is the vertex with the lowest t: all web
    assert mix.filter(pl.col("domain") == "web")["weight"][0] > 0.99
    assert (w / "plots" / "nested_mix" / "mixing_nested_web.png").stat().st_size > 20_000


def test_bimix_study_fits_runs_not_points(tmp_path):
    studies = tmp_path / "studies"
    write_nested_experiment(studies, 10, 6, seed=5, target_params=4e7, target_steps=8000.0)
    (studies / "bimix_mix.toml").write_text(_study("bimix_mix", '''
[mixing]
method = "bimix"
n_resamples = 30
'''))
    run_study(studies, tmp_path / "wh", "bimix_mix", selection=["raw_sources", "mixture_points", "mixing_laws",
                                                                 "optimal_mixtures", "mixing_scores",
                                                                 "mixture_predictions"])
    laws = query(tmp_path / "wh", "SELECT * FROM mixing_laws WHERE study = 'bimix_mix'")
    assert set(laws["law"]) == {"bimix"} and set(laws["parameter"]) == {"alpha", "beta", "B", "C"}
    assert laws["n_train"].to_list() == [10] * 4  # runs of the largest size, resampled as runs
    assert laws["params"].unique().to_list() == [4e7]
    beta = laws.filter(pl.col("parameter") == "beta").row(0, named=True)
    assert beta["ci_low"] < beta["estimate"] < beta["ci_high"]
    score = query(tmp_path / "wh", "SELECT * FROM mixing_scores WHERE study = 'bimix_mix'").row(0, named=True)
    assert (score["law"], score["n"]) == ("bimix", 6) and np.isfinite(score["mae"])
    assert query(tmp_path / "wh", "SELECT count(*) AS n FROM mixture_predictions WHERE study = 'bimix_mix'")["n"][0] == 6


def _with_noise(mp: pl.DataFrame, domain: str, name: str, seed: int = 0) -> pl.DataFrame:
    """``mp`` with a loss domain ``name`` whose values are noise around 3.0, at ``domain``'s checkpoints
    (replacing ``domain`` when ``name`` is ``domain``)."""
    rows = mp.filter((pl.col("kind") == "loss") & (pl.col("domain") == domain)).sort("split", "run", "steps")
    noise = np.random.default_rng(seed).normal(3.0, 0.02, rows.height)
    rows = rows.with_columns(domain=pl.lit(name), value=pl.Series(noise))
    keep = mp.filter(~((pl.col("kind") == "loss") & (pl.col("domain") == name)))
    return pl.concat([keep, rows.select(mp.columns)])


def test_a_pure_noise_target_is_flagged_by_nested_and_bimix(nested):
    """A target domain whose losses are noise: the nested mixing law over it is flagged mixing_constant,
    the study's own target is not, and the proposal leaves the noise out of its objective (the same
    mixture as without it); BiMix on the target is clean, and flagged once its losses are noise."""
    from scaling.plan.mixing import mixing_study

    w, _ = nested
    mp = query(w, "SELECT * FROM mixture_points WHERE study = 'nested_mix'")
    spec = {"method": "nested", "target_params": N_STAR, "target_steps": S_STAR, "n_resamples": 10}
    base = mixing_study("nested_mix", spec, mp)
    got = mixing_study("nested_mix", spec, _with_noise(mp, NESTED_DOMAINS[0], "noise"))
    mixing = {(r["target_domain"], r["parameter"]): r["flags"] for r in got.law_rows if r["stage"] == "mixing"}
    assert {f for (t, _), f in mixing.items() if t == "noise"} == {"mixing_constant"}
    assert {f for (t, _), f in mixing.items() if t != "noise"} == {""}
    assert not any(r["flags"] for r in got.law_rows if r["stage"] != "mixing")
    def weights(m):
        return {r["domain"]: round(r["weight"], 6) for r in m.mixture_rows if r.get("weight") is not None}

    assert weights(got) == weights(base) and weights(base)
    assert any("targets ['noise']: the nested mixing law collapsed" in m for m in got.messages)

    bimix = {"method": "bimix", "n_resamples": 10}
    clean = mixing_study("nested_mix", bimix, mp)
    assert not any(r["flags"] for r in clean.law_rows)
    noisy = mixing_study("nested_mix", bimix, _with_noise(mp, NESTED_DOMAINS[0], NESTED_DOMAINS[0]))
    assert {r["target_domain"]: r["flags"] for r in noisy.law_rows} == {NESTED_DOMAINS[0]: "mixing_constant"}
