"""Compute-optimal, target-run and constrained forecasts: closed form vs numeric, the forecasts
table's columns, and recovery of the planted optimum of the simulated study."""


import numpy as np
import polars as pl
import pytest

from scaling.errors import SpecError
from scaling.fit import bootstrap, fit_law
from scaling.fit.result import FitResult
from scaling.forecast import (FORECAST_COLUMNS, compute_optimal_forecast, data_constrained_forecast,
                              fixed_size_forecast, optimal_allocation, optimal_exponents, target_run_forecast,
                              transformer_flops_per_token)
from scaling.laws import chinchilla, compute_optimal, data_constrained, kaplan
from scaling.simulate import write_example_data

TRUE = {"E": 1.8, "A": 480.0, "B": 2100.0, "alpha": 0.35, "beta": 0.37}


def _given(law, params):
    """A FitResult holding known parameters (as a published fit would be)."""
    return FitResult(law=law, params=dict(params), objective=0.0, converged=True, message="given",
                     n_points=0, n_runs=0, n_starts=0)


@pytest.fixture(scope="module")
def simulated(tmp_path_factory):
    out = tmp_path_factory.mktemp("sim")
    planted = write_example_data(out, seed=0)
    ck = pl.read_csv(out / "checkpoints.csv")
    X = {"params": ck["params"].to_numpy().astype(float), "tokens": ck["tokens"].to_numpy().astype(float)}
    y = ck["final_loss"].to_numpy()
    fit = fit_law("chinchilla", X, y)
    boot = bootstrap("chinchilla", X, y, ck["model"].to_list(), n_resamples=200, fit=fit)
    return {"dir": out, "planted": planted, "X": X, "y": y, "fit": fit, "boot": boot,
            "max_flops": float(np.max(6 * X["params"] * X["tokens"]))}


def test_closed_form_matches_the_law_zoo_and_the_numeric_search():
    C = np.geomspace(1e19, 1e25, 5)
    a = optimal_allocation(chinchilla, TRUE, C)
    assert a.method == "closed_form"
    N, D = compute_optimal(TRUE, C)
    np.testing.assert_allclose(a.params, N, rtol=1e-12)
    np.testing.assert_allclose(a.tokens, D, rtol=1e-12)
    num = optimal_allocation(chinchilla, TRUE, C, method="numeric")
    np.testing.assert_allclose(num.params, N, rtol=1e-4)
    np.testing.assert_allclose(num.loss, a.loss, rtol=1e-9)
    assert not num.at_edge.any()
    # per-draw evaluation: each column pair equals the scalar answer
    draws = {k: np.array([v, v * 1.02]) for k, v in TRUE.items()}
    batch = optimal_allocation(chinchilla, draws, C)
    second = optimal_allocation(chinchilla, {k: v * 1.02 for k, v in TRUE.items()}, C)
    np.testing.assert_allclose(batch.params[1], second.params, rtol=1e-12)


def test_numeric_optimum_of_kaplan_is_a_minimum_on_the_iso_compute_line():
    p = {"N_c": 8.8e13, "D_c": 5.4e13, "alpha_N": 0.076, "alpha_D": 0.095}
    C = 1e23
    a = optimal_allocation(kaplan, p, [C])
    N = a.params[0]
    for f in (0.9, 1.1):
        L = kaplan.predict(p, {"params": [N * f], "tokens": [C / (6 * N * f)]})[0]
        assert L > a.loss[0]
    assert a.tokens[0] == pytest.approx(C / (6 * N), rel=1e-12)


def test_generic_flops_per_token_moves_the_optimum():
    fpt = transformer_flops_per_token(n_layer=32, n_ctx=4096, d_model=4096)
    C = [1e22]
    six = optimal_allocation(chinchilla, TRUE, C)
    att = optimal_allocation(chinchilla, TRUE, C, flops_per_token=fpt)
    assert att.method == "numeric"
    assert att.tokens[0] * fpt(att.params[0]) == pytest.approx(1e22, rel=1e-12)
    assert att.loss[0] > six.loss[0]  # attention FLOPs buy nothing in this law


def test_rows_follow_the_forecasts_table():
    from warehouse.tables import FORECASTS

    table = [c.name for c in FORECASTS.columns if c.name not in ("study", "group_name")]
    assert list(FORECAST_COLUMNS) == table
    fc = compute_optimal_forecast(_given(chinchilla, TRUE), max_observed_flops=1e21)
    frame = FORECASTS.conform(fc.to_frame().with_columns(pl.lit("s").alias("study"), pl.lit("").alias("group_name")))
    assert frame.height == 7 and frame["kind"].unique().to_list() == ["compute_optimal"]
    np.testing.assert_allclose(frame["extrapolation"].to_numpy(), np.geomspace(1, 1000, 7))


def test_planted_optimum_is_recovered(simulated):
    planted = simulated["planted"]["compute_optimal"]
    ex = optimal_exponents(simulated["fit"], simulated["boot"])
    print(f"\nplanted a={planted['a']:.4f} b={planted['b']:.4f}; fitted a={ex['a'][0]:.4f} "
          f"[{ex['a'][1]:.3f}, {ex['a'][2]:.3f}] b={ex['b'][0]:.4f}")
    assert ex["a"][0] == pytest.approx(planted["a"], abs=0.02)
    assert ex["b"][0] == pytest.approx(planted["b"], abs=0.02)
    assert ex["a"][1] < planted["a"] < ex["a"][2]
    fc = compute_optimal_forecast(simulated["fit"], simulated["boot"], max_observed_flops=simulated["max_flops"])
    # a minimizer that never uses the closed form (a grid along each iso-compute line) finds the
    # same N_opt(C): its slope over three decades of compute is the fitted exponent
    num = compute_optimal_forecast(simulated["fit"], None, max_observed_flops=simulated["max_flops"],
                                   method="numeric")
    slope = np.polyfit(np.log(num.column("flops")), np.log(num.column("params")), 1)[0]
    assert slope == pytest.approx(ex["a"][0], abs=1e-4)
    np.testing.assert_allclose(num.column("params"), fc.column("params"), rtol=1e-3)
    for r in fc:
        assert r["params_ci_low"] < r["params"] < r["params_ci_high"]
        assert r["tokens_ci_low"] < r["tokens"] < r["tokens_ci_high"]
        assert r["ci_low"] < r["predicted"] < r["ci_high"]
        assert r["tokens"] * 6 * r["params"] == pytest.approx(r["flops"], rel=1e-9)
    # intervals widen with extrapolation
    widths = [np.log(r["params_ci_high"] / r["params_ci_low"]) for r in fc]
    assert widths == sorted(widths)


def test_planted_loss_of_an_over_trained_run(simulated):
    P = simulated["planted"]["chinchilla"]
    run = {"name": "1B x 1000 tokens/param", "params": 1e9, "tokens": 1e12}
    truth = float(chinchilla.predict(P, {"params": [1e9], "tokens": [1e12]})[0])
    fc = target_run_forecast(simulated["fit"], simulated["boot"], [{**run, "actual": truth}],
                             max_observed_flops=simulated["max_flops"])
    r = fc[0]
    print(f"\nover-trained target: predicted {r['predicted']:.4f} [{r['ci_low']:.4f}, {r['ci_high']:.4f}], "
          f"planted {truth:.4f}, rel error {r['rel_error']:+.2%}")
    assert r["kind"] == "target_run" and r["tokens_per_param"] == 1000.0
    assert r["ci_low"] < truth < r["ci_high"]
    assert r["extrapolation"] == pytest.approx(6e21 / simulated["max_flops"])


def test_target_without_a_variable_is_named():
    with pytest.raises(SpecError, match="row 1, field 'tokens'"):
        target_run_forecast(_given(chinchilla, TRUE), None, [{"name": "a", "params": 1e9, "tokens": 1e10},
                                                            {"name": "b", "params": 1e9}])


DC = {**TRUE, "R_D_star": 15.4, "R_N_star": 5.3}


def test_unique_token_cap_trades_epochs_for_parameters():
    fit = _given(data_constrained, DC)
    C = 1e23
    free = optimal_allocation(data_constrained, DC, [C])
    loose = data_constrained_forecast(fit, None, [C], unique_tokens=1e15)[0]
    assert loose["params"] == pytest.approx(free.params[0], rel=1e-9) and loose["epochs"] < 1
    tight = data_constrained_forecast(fit, None, [C], unique_tokens=free.tokens[0] / 20)[0]
    print(f"\ncap at D_opt/20: N {tight['params']:.3g} vs {free.params[0]:.3g}, epochs {tight['epochs']:.2f}")
    assert tight["epochs"] > 1
    # excess compute goes to epochs rather than parameters (R_N* < R_D*; Muennighoff et al. 2023)
    assert tight["params"] < free.params[0]
    assert tight["predicted"] > loose["predicted"]
    U = free.tokens[0] / 20
    for f in (0.95, 1.05):  # a minimum along the constrained iso-compute line
        N = tight["params"] * f
        D = C / (6 * N)
        L = data_constrained.predict(DC, {"params": [N], "tokens": [D], "unique_tokens": [min(D, U)]})[0]
        assert L > tight["predicted"]


def test_fixed_size_loss_falls_towards_the_size_limit():
    fit = _given(chinchilla, TRUE)
    fc = fixed_size_forecast(fit, None, 1e9)
    L = np.array(fc.column("predicted"))
    assert np.all(np.diff(L) < 0)
    assert L[-1] > TRUE["E"] + TRUE["A"] * 1e9 ** -TRUE["alpha"]
    assert fc.column("tokens_per_param") == [5, 10, 20, 40, 80, 160, 320]
    rows = fixed_size_forecast(_given(data_constrained, DC), None, 1e9, [1e10, 1e11, 1e12], unique_tokens=1e10)
    assert rows.column("epochs") == [1.0, 10.0, 100.0]
    # repeated tokens are worth at most U_D·(1 + R_D*) unique ones, however many epochs
    L = rows.column("predicted")
    assert L[0] > L[1] > L[2]
    bound = chinchilla.predict(TRUE, {"params": [1e9], "tokens": [1e10 * (1 + DC["R_D_star"])]})[0]
    assert L[2] > bound


def test_two_step_step1_draws_get_the_rollout_calibration_before_chaining():
    """Step 1 of a two-step forecast is calibrated like every forecast: a planted task loss that bends
    away from the power law (log-quadratic in compute) widens step 1's interval at 100x the largest
    run to the rollout band; the chained accuracy interval widens with it; point estimates stay."""
    from scaling.fit.calibration import calibrate_intervals
    from scaling.forecast import fit_two_step
    from scaling.forecast.downstream import calibrated_draws
    from scaling.forecast.draws import calibration_of, percentile_interval

    rng = np.random.default_rng(0)
    C = np.geomspace(1e18, 1e21, 16)
    loss = (1.7 + 2e3 * C ** -0.16) * (1 + 0.01 * np.log10(C / C[0]) ** 2) * np.exp(rng.normal(0, 0.003, C.size))
    x2 = np.concatenate([v * np.linspace(1.3, 1.0, 6) for v in loss])
    runs = [f"r{i}" for i in range(C.size)]
    acc = 0.25 + 0.7 / (1 + np.exp(4 * (x2 - 2.3))) + rng.normal(0, 0.004, x2.size)
    kw = dict(runs=runs, step2_runs=np.repeat(runs, 6), n_resamples=50, step1_law="power_law_flops",
              step2_fixed={"floor": 0.25})
    ts = fit_two_step({"flops": C}, loss, x2, acc, compute=C, **kw)
    cal = calibration_of(ts.step1)
    assert cal is not None and cal.n_cutoffs == 3 and cal.growth > 0
    # the same calibration a one-step fit of the task loss gets
    assert cal.to_dict() == calibrate_intervals("power_law_flops", {"flops": C}, loss, runs, C,
                                                fit=ts.step1).to_dict()
    assert "not_identified:ceiling" in ts.step2.flags  # each step carries its bootstrap's flags

    X, target = {"flops": np.array([1e23])}, np.array([1e23])
    raw, cald = ts.predict(X), ts.predict(X, compute=target)
    assert cald.loss == raw.loss and cald.accuracy == raw.accuracy  # point estimates do not change
    band = cal.band(raw.loss, X, target)
    assert band[0] < raw.loss_ci[0] and raw.loss_ci[1] < band[1]  # the band is wider here on both sides
    # step 1's interval becomes the hull of its bootstrap interval and the band (up to interpolation)
    np.testing.assert_allclose(np.ravel(cald.loss_ci), np.ravel(band), rtol=1e-5)
    assert cald.accuracy_ci[0] < raw.accuracy_ci[0] and raw.accuracy_ci[1] < cald.accuracy_ci[1]
    # without a calibration (no compute given) the draws are the bootstrap's, as before
    plain = fit_two_step({"flops": C}, loss, x2, acc, **kw)
    assert calibration_of(plain.step1) is None
    assert plain.predict(X, compute=target).accuracy_ci == raw.accuracy_ci
    # a side whose bootstrap interval is already wider than the band is left as it is
    draws = np.array([[0.9], [1.0], [1.1], [1.2], [1.3]])
    out = calibrated_draws(draws, [1.1], ([1.05], [1.15]), 0.95, space="linear")
    np.testing.assert_array_equal(out, draws)
    lo, hi = percentile_interval(calibrated_draws(draws, [1.1], ([0.5], [1.15]), 0.95, space="linear"), 0.95)
    assert lo == pytest.approx(0.5) and hi == pytest.approx(percentile_interval(draws, 0.95)[1])
