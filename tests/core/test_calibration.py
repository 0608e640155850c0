"""Prediction intervals calibrated on rollouts inside the fitted data, checked on held-out real runs."""

import numpy as np
import polars as pl
import pytest

from fit_cases import chinchilla_epoch
from scaling.errors import SpecError
from scaling.fit import backtest
from scaling.fit.backtest import rollout_holdouts
from scaling.fit.calibration import IntervalCalibration, calibrate_intervals, rollout_residuals
from scaling.forecast.rollouts import distance_bin, summarize_rollouts
from scaling.plan.fits import FitPlan, check_holdout, holdout_runs_of


def _epoch(shared_data):
    X, y = chinchilla_epoch(shared_data)
    C = 6 * X["params"] * X["tokens"]
    X["flops"] = C
    return X, y, np.arange(y.size), C


@pytest.fixture(scope="module")
def epoch_backtests(shared_data):
    X, y, runs, C = _epoch(shared_data)
    held = runs[C >= 1e21].tolist()
    return {law: backtest(law, X, y, runs, C, holdout=held, n_resamples=200)
            for law in ("chinchilla", "power_law_flops")}


def _boot_stats(bt):
    covered = sum(r["boot_covered"] for r in bt.rows)
    width = float(np.mean([(r["boot_ci_high"] - r["boot_ci_low"]) / r["actual"] for r in bt.rows]))
    return covered, width


def test_epoch_hold_out_above_1e21_is_covered_by_calibrated_intervals(epoch_backtests):
    """The README's numbers: 23 runs of C >= 1e21 held out (up to 13x the largest fitted compute)."""
    bt = epoch_backtests["chinchilla"]
    assert len(bt.rows) == 23
    assert max(r["extrapolation"] for r in bt.rows) == pytest.approx(13.0, abs=0.05)
    assert sum(r["covered"] for r in bt.rows) == 23
    assert round(bt.mean_rel_width, 3) == 0.041
    covered, width = _boot_stats(bt)  # the bootstrap-only interval the pipeline had before
    assert covered == 14 and round(width, 3) == 0.026
    assert round(bt.mean_abs_rel_error, 4) == 0.0105
    pl_bt = epoch_backtests["power_law_flops"]
    assert sum(r["covered"] for r in pl_bt.rows) == 22
    assert round(pl_bt.mean_rel_width, 3) == 0.091
    covered, width = _boot_stats(pl_bt)
    assert covered == 21 and round(width, 3) == 0.066
    for r in bt.rows:  # the calibrated interval contains the bootstrap one
        assert r["ci_low"] <= r["boot_ci_low"] and r["boot_ci_high"] <= r["ci_high"]


def test_calibration_never_sees_the_held_out_runs(shared_data, epoch_backtests):
    X, y, runs, C = _epoch(shared_data)
    held = C >= 1e21
    y2 = y.copy()
    y2[held] *= 1.5  # the held-out runs' losses change; their intervals must not
    bt2 = backtest("chinchilla", X, y2, runs, C, holdout=runs[held].tolist(), n_resamples=200)
    bt = epoch_backtests["chinchilla"]
    assert [r["ci_low"] for r in bt2.rows] == [r["ci_low"] for r in bt.rows]
    assert [r["ci_high"] for r in bt2.rows] == [r["ci_high"] for r in bt.rows]
    assert bt2.calibration.to_dict() == bt.calibration.to_dict()
    assert bt.calibration.fitted_max_compute == C[~held].max()


def test_calibration_grows_with_extrapolation_and_round_trips(shared_data):
    X, y, runs, C = _epoch(shared_data)
    cal = calibrate_intervals("chinchilla", X, y, runs, C)
    assert cal.n_cutoffs == 3 and cal.n_residuals > 100 and cal.growth > 0
    assert cal.calibration_coverage >= 0.95
    N = np.full(3, 7e10)
    Cq = np.array([1.0, 10.0, 100.0]) * C.max()
    h = cal.multiplier * cal.sigma({"params": N, "tokens": Cq / (6 * N)}, Cq)
    assert h[0] < h[1] < h[2]
    again = IntervalCalibration.from_dict(cal.to_dict())
    assert again.band(np.ones(3), {"params": N, "tokens": Cq / (6 * N)}, Cq)[1].tolist() == \
        cal.band(np.ones(3), {"params": N, "tokens": Cq / (6 * N)}, Cq)[1].tolist()


def test_rollout_residuals_fit_only_below_each_cutoff(shared_data):
    X, y, runs, C = _epoch(shared_data)
    ro = rollout_residuals("chinchilla", X, y, runs, C, fractions=(0.5, 0.2))
    assert ro["n_cutoffs"] == 2 and (ro["distance"] >= 0).all()
    assert (ro["cutoff"] == 0).sum() == 120 and (ro["cutoff"] == 1).sum() == 48


def test_rollout_holdouts_start_with_the_studys_own():
    runs = np.arange(20)
    C = np.geomspace(1e18, 1e21, 20)
    cuts = rollout_holdouts(runs, C, holdout=[19, 18], fraction=0.2)
    assert cuts[0] == ("2 named runs", [19, 18])
    assert [label for label, _ in cuts[1:]] == ["top 50% of runs by compute", "top 35% of runs by compute",
                                                "top 20% of runs by compute"]
    default = rollout_holdouts(runs, C)
    assert default[0][0] == "top 20% of runs by compute" and len(default) == 3  # the 20% cut is not repeated


def test_rollout_summary_bins_by_extrapolation():
    assert [distance_bin(x) for x in (1.0, 1.99, 2.0, 9.9, 10.0, 150.0)] == \
        ["1-2x", "1-2x", "2-5x", "5-10x", "10-100x", ">100x"]
    rows = [{"law": "c", "target": "loss", "extrapolation": x, "rel_error": e, "covered": cov, "boot_covered": b,
             "ci_low": 0.9, "ci_high": 1.1, "actual": 1.0}
            for x, e, cov, b in ((1.5, 0.01, True, False), (1.8, -0.03, False, False), (12.0, 0.05, True, True))]
    out = summarize_rollouts(rows)
    assert [(s["extrapolation_bin"], s["n_heldout"]) for s in out] == [("1-2x", 2), ("10-100x", 1)]
    assert out[0]["mean_abs_rel_error"] == pytest.approx(0.02) and out[0]["coverage"] == 0.5
    assert out[0]["boot_coverage"] == 0.0 and out[0]["mean_rel_width"] == pytest.approx(0.2)
    assert out[0]["rank"] is None


def test_explicit_holdout_is_a_checked_condition_over_run_columns():
    runs = pl.DataFrame({"run": ["a", "b", "c"], "flops": [1e20, 1e21, 3e21], "params": [1e8, 1e9, 2e9]})
    plan = FitPlan(law="chinchilla", target="loss", holdout=check_holdout("flops >= 1e21", "s", "fits[0].holdout"))
    assert holdout_runs_of(plan, runs) == ["b", "c"]
    listed = FitPlan(law="chinchilla", target="loss", holdout=check_holdout(["a"], "s", "fits[0].holdout"))
    assert holdout_runs_of(listed, runs) == ["a"]
    with pytest.raises(SpecError, match=r"study 's', field 'fits\[0\].holdout': expected one expression"):
        check_holdout("flops >= 1e21; DROP TABLE runs", "s", "fits[0].holdout")
    with pytest.raises(SpecError, match="a subquery is not allowed"):
        check_holdout("run IN (SELECT column0 FROM read_csv('/etc/passwd'))", "s", "fits[0].holdout")
    with pytest.raises(SpecError, match="naming at least one runs column"):
        check_holdout("1 = 1", "s", "fits[0].holdout")
    with pytest.raises(SpecError, match="non-empty list"):
        check_holdout([], "s", "fits[0].holdout")
    with pytest.raises(SpecError, match=r"reads unknown column\(s\) \['loss'\]"):
        holdout_runs_of(FitPlan(law="chinchilla", target="loss", holdout="loss < 3"), runs)
    with pytest.raises(SpecError, match="true/false condition"):
        holdout_runs_of(FitPlan(law="chinchilla", target="loss", holdout="flops * 2"), runs)
    with pytest.raises(SpecError, match=r"\['zz'\] are not among"):
        holdout_runs_of(FitPlan(law="chinchilla", target="loss", holdout=("zz",)), runs)
