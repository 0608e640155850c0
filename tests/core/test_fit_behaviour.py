"""Objectives, spaces, weights, bounds, flags and input errors of ``fit_law``."""

import numpy as np
import pytest

from scaling.errors import FitError
from scaling.fit import fit_law
from fit_cases import simulate


def test_bad_target_is_named_by_row():
    _, X, y, _ = simulate("chinchilla", noise=0.0)
    y = y.copy()
    y[7] = -1.0
    with pytest.raises(FitError, match=r"row 7, field 'y': expected a positive finite target"):
        fit_law("chinchilla", X, y)


def test_bad_variable_is_named_by_row_and_missing_variable_by_name():
    _, X, y, _ = simulate("chinchilla", noise=0.0)
    X2 = dict(X, tokens=X["tokens"].copy())
    X2["tokens"][3] = np.nan
    with pytest.raises(FitError, match=r"row 3, field 'tokens'"):
        fit_law("chinchilla", X2, y)
    with pytest.raises(FitError, match="needs variable 'tokens'"):
        fit_law("chinchilla", {"params": X["params"]}, y)
    with pytest.raises(FitError, match="no parameter 'gamma'"):
        fit_law("chinchilla", X, y, fixed={"gamma": 1.0})


def test_least_squares_and_asymmetric_objectives():
    true, X, y, _ = simulate("power_law_flops", seed=4, noise=0.0)
    for objective in ("least_squares", "asymmetric"):
        fit = fit_law("power_law_flops", X, y, objective=objective)
        assert fit.params["alpha"] == pytest.approx(true["alpha"], rel=1e-6)
        assert fit.settings["objective"] == objective


def test_asymmetric_objective_shifts_the_fit_towards_the_penalised_side():
    true, X, y, _ = simulate("power_law_flops", seed=5, noise=2e-2)
    low = fit_law("power_law_flops", X, y, objective="asymmetric", tau=0.1)   # over-prediction cheap
    high = fit_law("power_law_flops", X, y, objective="asymmetric", tau=0.9)  # under-prediction cheap
    assert np.mean(low.predict(X) > y) > 0.7
    assert np.mean(high.predict(X) < y) > 0.7


def test_weights_zero_out_points():
    true, X, y, _ = simulate("chinchilla", seed=6, noise=0.0)
    y = y.copy()
    y[:5] *= 3.0  # corrupted points, weighted out
    w = np.ones(y.size)
    w[:5] = 0.0
    fit = fit_law("chinchilla", X, y, weights=w)
    assert fit.params["alpha"] == pytest.approx(true["alpha"], rel=1e-6)


def test_bounds_override_and_at_bound_flag():
    _, X, y, _ = simulate("chinchilla", seed=7, noise=1e-3)
    fit = fit_law("chinchilla", X, y, bounds={"alpha": (0.0, 0.3)})
    assert fit.params["alpha"] == pytest.approx(0.3)
    assert "at_bound:alpha" in fit.flags


def test_linear_space_for_accuracies_is_the_default():
    true, X, y, _ = simulate("downstream_sigmoid", seed=8, noise=0.0)
    fit = fit_law("downstream_sigmoid", X, y)
    assert fit.settings["space"] == "linear"
    assert fit.params["L0"] == pytest.approx(true["L0"], rel=1e-6)


def test_unidentifiable_data_is_flagged_flat():
    # every run has the same token count: B/D^beta and E cannot be told apart
    rng = np.random.default_rng(9)
    N = np.geomspace(1e8, 1e10, 30)
    X = {"params": N, "tokens": np.full(30, 2e10)}
    y = (1.8 + 480 * N ** -0.35 + 2100 * 2e10 ** -0.37) * np.exp(rng.normal(0, 1e-3, 30))
    fit = fit_law("chinchilla", X, y)
    assert "flat_direction" in fit.flags or any(f.startswith("at_bound") for f in fit.flags)


def test_few_points_and_residual_trend_flags():
    true, X, y, _ = simulate("chinchilla", seed=10, noise=1e-3)
    few = fit_law("chinchilla", {k: v[:12] for k, v in X.items()}, y[:12])
    assert "few_points" in few.flags
    # a curved truth fitted by a plain power law leaves a trend in the residuals
    x = np.geomspace(1e18, 1e23, 60)
    yb = np.exp(-0.05 * np.log(x)) * 10 * (1 + (x / 1e20) ** 2) ** (-0.2 / 2)
    fit = fit_law("power_law_flops", {"flops": x}, yb)
    assert any(f.startswith("residual_trend") for f in fit.flags)


def test_result_predict_and_summary():
    true, X, y, _ = simulate("chinchilla", seed=11, noise=0.0)
    fit = fit_law("chinchilla", X, y, runs=np.repeat(np.arange(8), 8))
    np.testing.assert_allclose(fit.predict(X), y, rtol=1e-9)
    d = fit.to_dict()
    assert d["law"] == "chinchilla" and d["n_runs"] == 8 and d["n_points"] == 64
    assert set(d["diagnostics"]) >= {"rmse", "max_abs_rel_error", "trend"}


def test_a_repeated_fit_is_an_independent_copy():
    """Backtests and rollouts fit the same subsets again; a repeat is served from the first fit,
    so a caller changing its result (flags, settings, as the pipeline does) changes no later one."""
    from scaling.fit.fitter import _RECENT

    true, X, y, _ = simulate("chinchilla", seed=21, noise=3e-3)
    _RECENT.clear()
    a = fit_law("chinchilla", X, y)
    a.flags.append("changed")
    a.settings["bounds"]["alpha"] = (0, 1)
    a.params["E"] = -1.0
    b = fit_law("chinchilla", X, y)
    assert len(_RECENT) == 1
    assert "changed" not in b.flags and b.settings["bounds"] == {} and b.params["E"] > 0
    c = fit_law("chinchilla", X, y, delta=2e-3)  # other settings: a fit of its own
    assert len(_RECENT) == 2 and c.settings["delta"] == 2e-3
