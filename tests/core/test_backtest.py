"""Hold-out backtests on real and synthetic runs."""

import numpy as np
import pytest

from scaling.errors import FitError
from scaling.fit import backtest, holdout_runs
from fit_cases import gemstone


def _curves(seed, noise):
    rng = np.random.default_rng(seed)
    N = np.repeat(np.geomspace(5e7, 3e9, 10), 6)
    D = np.tile(np.geomspace(1e9, 1e11, 6), 10)
    y = (1.8 + 480 * N ** -0.35 + 2100 * D ** -0.37) * np.exp(rng.normal(0, noise, N.size))
    return {"params": N, "tokens": D}, y, np.repeat(np.arange(10), 6), 6 * N * D


def test_holdout_picks_the_largest_compute_runs():
    X, y, runs, C = _curves(0, 0.0)
    assert sorted(holdout_runs(runs, C, fraction=0.2)) == [8, 9]
    assert holdout_runs(runs, C, holdout=[3]) == [3]
    with pytest.raises(FitError, match="not among"):
        holdout_runs(runs, C, holdout=[42])


def test_backtest_on_synthetic_runs_predicts_well_and_covers():
    X, y, runs, C = _curves(1, 3e-3)
    bt = backtest("chinchilla", X, y, runs, C, n_resamples=100)
    assert [r["run"] for r in bt.rows] == [9, 8]
    assert bt.holdout_runs == [9, 8] and 9 not in bt.train_runs
    for r in bt.rows:
        assert r["compute"] == C[runs == r["run"]].max()
        assert abs(r["rel_error"]) < 0.01
        assert r["ci_low"] <= r["predicted"] <= r["ci_high"]
    assert bt.coverage >= 0.5
    assert bt.fit.n_runs == 8


def test_backtest_all_points_and_no_bootstrap():
    X, y, runs, C = _curves(2, 0.0)
    bt = backtest("chinchilla", X, y, runs, C, points="all", n_resamples=0)
    assert len(bt) == 12
    assert all(r["covered"] is None and np.isnan(r["ci_low"]) for r in bt)
    assert bt.mean_abs_rel_error < 1e-6


def test_backtest_gemstone(shared_data):
    X, y, runs, _ = gemstone(shared_data, "hot")
    C = 6 * X["params"] * X["tokens"]
    bt = backtest("chinchilla", X, y, runs, C, n_resamples=50)
    assert len(bt.rows) == 5  # ceil(0.2 * 22)
    run_max = {r: C[runs == r].max() for r in np.unique(runs)}
    held_min = min(run_max[r] for r in bt.holdout_runs)
    assert all(run_max[r] <= held_min for r in bt.train_runs)
    assert bt.mean_abs_rel_error < 0.03
