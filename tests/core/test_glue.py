"""Glue between fits, tables and forecasts: each of these was a bug, each test failed before its fix."""

from __future__ import annotations

import dataclasses

import numpy as np
import polars as pl
import pytest

from fit_cases import simulate
from scaling.errors import FitError
from scaling.fit import assess, bootstrap, fit_law
from scaling.flags import BLOCKING_FLAGS
from scaling.forecast import severe_flags
from scaling.plan.data import FitData
from scaling.plan.fits import FitPlan
from scaling.plan.forecasts import forecast_study
from scaling.plan.run import GroupFit


def _chinchilla_data():
    _, X, y, _ = simulate("chinchilla", seed=0, noise=5e-3)
    X = {**X, "flops": 6 * X["params"] * X["tokens"]}
    return X, y


def test_backtest_ranking_keeps_each_groups_flags():
    """A law flagged in one group is demoted in that group only (the ranking used to re-key the
    flags by law and target, so the last group's flags decided `recommended` for every group)."""
    X, y = _chinchilla_data()
    settings = {"max_fitted_flops": float(X["flops"].max())}
    chin = fit_law("chinchilla", X, y)
    power = fit_law("power_law_flops", X, y)
    assert chin.converged and power.converged and not severe_flags(chin.flags + power.flags)
    chin, power = (dataclasses.replace(f, settings={**f.settings, **settings}) for f in (chin, power))
    flagged = dataclasses.replace(power, flags=power.flags + ["flat_direction"], converged=False)
    fits = {("g=a", "chinchilla", "loss"): (chin, None), ("g=a", "power_law_flops", "loss"): (power, None),
            ("g=b", "chinchilla", "loss"): (chin, None), ("g=b", "power_law_flops", "loss"): (flagged, None)}
    backtests = [{"study": "s", "group_name": g, "law": law, "target": "loss", "run": f"r{i}", "actual": 3.0,
                  "predicted": 3.0 * (1 + err), "rel_error": err, "covered": True}
                 for g in ("g=a", "g=b") for law, err in (("chinchilla", 0.02), ("power_law_flops", 0.01))
                 for i in range(3)]
    points = pl.DataFrame({"run": ["r0", "r1"], "group_name": ["g=a", "g=b"], "metric": ["loss"] * 2,
                           "unit": ["nats"] * 2, "flops": [settings["max_fitted_flops"]] * 2})
    out = forecast_study("s", {"n_budgets": 2}, "6ND", fits, backtests, points, None)
    rank = {(s["group_name"], s["law"]): s["rank"] for s in out.summary}
    assert rank == {("g=a", "power_law_flops"): 1, ("g=a", "chinchilla"): 2,
                    ("g=b", "chinchilla"): 1, ("g=b", "power_law_flops"): 2}
    recommended = {(r["group_name"], r["law"]) for r in out.rows if r["recommended"]}
    assert recommended == {("g=a", "power_law_flops"), ("g=b", "chinchilla")}


def test_one_definition_of_blocking_flags():
    """The forecasts' `usable`, the ranking's demotion and `assess`'s `degenerate` agree on every flag."""
    X, y = _chinchilla_data()
    fit = fit_law("chinchilla", X, y)
    data = FitData(group="", X=X, y=y, runs=np.arange(y.size), compute=X["flops"], frame=pl.DataFrame())
    for flag in ("flat_direction", "exponent_implausible:alpha", "coefficient_implausible:A", "not_converged",
                 "at_bound:E", "few_points", "residual_trend:params"):
        g = GroupFit(FitPlan("chinchilla", "loss"), data, dataclasses.replace(fit, flags=[flag]), None)
        blocking = flag.split(":")[0] in BLOCKING_FLAGS
        assert g.usable is not blocking, flag
        assert bool(severe_flags([flag])) is blocking, flag
        a = dataclasses.replace(assess("chinchilla", fit.params, X, y), flags=[flag])
        assert a.degenerate is blocking, flag
    assert set(BLOCKING_FLAGS) == {"not_converged", "exponent_implausible", "coefficient_implausible",
                                   "flat_direction"}


def test_fit_law_takes_no_seed():
    """The global fit is deterministic; a seed that silently did nothing is now refused."""
    X, y = _chinchilla_data()
    with pytest.raises(TypeError, match="seed"):
        fit_law("chinchilla", X, y, seed=1)


def test_law_fits_intervals_come_from_the_draws_law_draws_stores():
    """`law_fits` intervals are percentiles of exactly the draws written to `law_draws` (which
    forecasts read back): converged, finite refits only."""
    X, y = _chinchilla_data()
    boot = bootstrap("chinchilla", X, y, n_resamples=200, seed=0)
    j = boot.param_names.index("alpha")
    extreme = np.argsort(boot.draws[:, j])[-8:]  # the 8 largest alphas: refits reported as not converged
    converged = np.ones(boot.n_resamples, dtype=bool)
    converged[extreme] = False
    boot = dataclasses.replace(boot, converged=converged)
    data = FitData(group="", X=X, y=y, runs=np.arange(y.size), compute=X["flops"], frame=pl.DataFrame())
    g = GroupFit(FitPlan("chinchilla", "loss"), data, boot.fit, boot)
    draws = pl.DataFrame(g.draw_rows())
    assert draws["draw"].n_unique() == 192 and not set(extreme.tolist()) & set(draws["draw"].to_list())
    rows = {r["parameter"]: r for r in g.fit_rows()}
    for name in boot.param_names:
        values = draws.filter(pl.col("parameter") == name)["value"].to_numpy()
        lo, hi = np.quantile(values, [0.025, 0.975])
        assert (rows[name]["ci_low"], rows[name]["ci_high"]) == pytest.approx((lo, hi), rel=1e-12, abs=0), name
    # dropping the 8 largest alphas moved the upper end: the old intervals used all 200 draws
    assert rows["alpha"]["ci_high"] < np.quantile(boot.draws[:, j], 0.975)


def test_a_negative_bound_on_a_log_space_parameter_is_named():
    X, y = _chinchilla_data()
    with pytest.raises(FitError) as err:
        fit_law("chinchilla", X, y, bounds={"A": (-1.0, 1e4)})
    assert err.value.where.field == "A" and "log space" in err.value.problem
    with pytest.raises(FitError) as err:  # used to fit on log(-5), log(-1): nan bounds, garbage out
        fit_law("chinchilla", X, y, bounds={"B": (-5.0, -1.0)})
    assert err.value.where.field == "B" and "log space" in err.value.problem


def test_downstream_fits_take_the_studys_fit_filter(tmp_path):
    from scaling.errors import SpecError
    from scaling.plan.forecasts import downstream_filter
    from scaling.spec import load_study

    head = ('[[sources]]\nname = "s"\nkind = "checkpoint_results"\nlocation = "t.csv"\nformat = "csv"\n'
            '[sources.metrics]\nloss = "loss"\n')
    fits = '[[fits]]\nlaw = "chinchilla"\ntarget = "loss"\nfilter = "run <> \'a\'"\n'
    down = '[forecasts]\ndownstream = [{ task_loss = "bpb", accuracy = "acc" }]\n'
    (tmp_path / "one.toml").write_text(head + fits + fits.replace("chinchilla", "kaplan") + down)
    assert downstream_filter(load_study(tmp_path / "one.toml")) == "run <> 'a'"
    (tmp_path / "two.toml").write_text(head + fits + fits.replace("'a'", "'b'") + down)
    with pytest.raises(SpecError, match="field 'forecasts.downstream\\[0\\].filter'.*different filters"):
        downstream_filter(load_study(tmp_path / "two.toml"))
