"""Observational scaling laws (Ruan et al. 2024): planted recovery and the public leaderboard table."""

import numpy as np
import polars as pl
import pytest

from scaling.errors import FitError
from scaling.fit.observational import impute_pca, observational_scaling

BENCH = ["MMLU", "ARC-C", "HellaSwag", "Winograd", "TruthfulQA", "GSM8K", "XWinograd", "HumanEval"]


def _planted(seed=0):
    """6 families x 10 models; capability z = 0.8 log C + alpha_f; 6 sigmoid benchmarks of z."""
    rng = np.random.default_rng(seed)
    alphas = np.array([0.0, 0.5, -0.4, 1.0, 0.2, -0.8])
    fam = np.repeat(np.arange(6), 10)
    logc = rng.uniform(np.log(1.0), np.log(100.0), fam.size)
    z = 0.8 * logc + alphas[fam]
    a = np.array([1.0, 0.8, 1.2, 0.6, 1.5, 0.9])
    b = np.array([-2.0, -1.5, -2.5, -1.0, -3.5, -2.0])
    S = 0.25 + 0.7 / (1 + np.exp(-(a * z[:, None] + b))) + rng.normal(0, 0.005, (fam.size, 6))
    S[rng.random(S.shape) < 0.05] = np.nan  # missing scores
    S[:, 4] = 0.25 + 0.7 / (1 + np.exp(-(a[4] * z + b[4])))  # the target, complete and noise-free
    return S, np.exp(logc), [f"f{i}" for i in fam], alphas


def test_planted_families_and_heldout_targets_are_recovered():
    S, C, fam, alphas = _planted()
    names = [f"b{j}" for j in range(6)]
    res = observational_scaling(S, names, C, fam, target="b4", n_components=1, cutoff=30.0, floor=0.25,
                                ceiling=0.95, reference_family="f0", n_resamples=60)
    assert res.explained_variance[0] > 0.9
    # compute multipliers exp((alpha_f - alpha_ref) / beta) with beta = 0.8
    for i, f in enumerate(res.families):
        true = np.exp((alphas[i] - alphas[0]) / 0.8)
        assert res.efficiency[f] == pytest.approx(true, rel=0.25), f
    lo, hi = res.intervals["efficiency"]
    j = res.families.index("f3")
    assert lo[j] < np.exp(1.0 / 0.8) < hi[j]
    held = ~res.train
    assert held.sum() >= 15
    err = np.abs(res.predicted[held] - S[held, 4])
    assert err.mean() < 0.03
    errc = np.abs(res.predicted_from_compute[held] - S[held, 4])
    assert errc.mean() < 0.05
    # a forecast from compute and family for a model beyond the data
    z = 0.8 * np.log(150.0) + alphas[2]
    truth = 0.25 + 0.7 / (1 + np.exp(-(1.5 * z - 3.5)))
    assert res.forecast(150.0, "f2") == pytest.approx(truth, abs=0.03)
    lo, hi = res.forecast_interval(150.0, "f2")
    assert lo < res.forecast(150.0, "f2") < hi
    # The intervals carry parameter uncertainty only (model resamples), not the misfit of a linear map
    # from log compute to a component that is a mix of sigmoids: measured, they cover few held-out
    # planted targets. Documented, not hidden.
    lo, hi = res.intervals["predicted_from_compute"]
    covered = (lo[held] <= S[held, 4]) & (S[held, 4] <= hi[held])
    assert covered.mean() == pytest.approx(2 / 15)


def test_imputation_recovers_a_low_rank_matrix():
    rng = np.random.default_rng(1)
    M = rng.normal(size=(40, 2)) @ rng.normal(size=(2, 6)) + 3.0
    S = M.copy()
    miss = rng.random(S.shape) < 0.1
    S[miss] = np.nan
    assert np.abs(impute_pca(S, 2, n_iter=2000, tol=1e-12)[miss] - M[miss]).max() < 1e-3


def _table(shared_data):
    d = pl.read_csv(shared_data / "obsscaling" / "base_llm_benchmark_eval_sub_10b_le84e21.csv")
    return d, d.select(BENCH).to_numpy().astype(float)


def test_public_leaderboard_capability_space_and_heldout_gsm8k(shared_data):
    """77 public base models: the first component carries most of the variance (the paper reports
    about 80% on its larger set); GSM8K of the 21 models above 20e21 FLOPs predicted from the rest."""
    d, S = _table(shared_data)
    assert np.isnan(S).sum() == 5  # one XWinograd and four HumanEval scores are missing
    res = observational_scaling(S, BENCH, d["FLOPs (1E21)"].to_numpy().astype(float), d["Model Family"].to_list(),
                                target="GSM8K", n_components=3, cutoff=20.0, reference_family="Llama-2",
                                n_resamples=60)
    assert res.explained_variance[0] == pytest.approx(0.7129, abs=5e-5)
    lo, hi = res.intervals["explained_variance"]
    assert lo[0] < 0.7129 < hi[0]
    held = ~res.train
    assert held.sum() == 21
    y = S[:, BENCH.index("GSM8K")]
    mae = float(np.mean(np.abs(res.predicted[held] - y[held])))
    assert mae == pytest.approx(0.0537, abs=5e-4)
    assert res.efficiency["Llama-2"] == 1.0 and res.efficiency["Phi"] > 5  # Phi reaches Llama-2's capability on far less compute
    # every benchmark loads on the first component except TruthfulQA, which does not improve with scale
    pc1 = dict(zip(res.benchmarks, res.loadings[:, 0]))
    assert res.loadings.shape == (7, 3) and abs(pc1.pop("TruthfulQA")) < 0.05 and min(pc1.values()) > 0.25
    lo, hi = res.intervals["predicted"]
    assert np.mean((lo[held] <= y[held]) & (y[held] <= hi[held])) == pytest.approx(19 / 21)


def test_bad_input_is_named():
    S, C, fam, _ = _planted()
    with pytest.raises(FitError, match="target 'zz'"):
        observational_scaling(S, [f"b{j}" for j in range(6)], C, fam, target="zz", cutoff=30.0)
    C = C.copy()
    C[3] = -1.0
    with pytest.raises(FitError, match="row 3, field 'flops'"):
        observational_scaling(S, [f"b{j}" for j in range(6)], C, fam, target="b4", cutoff=30.0)
