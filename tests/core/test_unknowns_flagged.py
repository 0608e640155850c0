"""Unknowns are flagged, not reported as clean fits: unidentified parameters, inverted sigmoids,
collapsed mixing laws and forecasts outside what the fit can vouch for."""

import numpy as np
import pytest

from fit_cases import chinchilla_epoch, simulate
from scaling.fit import bootstrap, fit_law
from scaling.fit.problem import Problem
from scaling.fit.diagnostics import sigmoid_flags
from scaling.flags import FLAGS, flag_name
from scaling.forecast.sanity import annotate, demoted, row_flags
from scaling.laws import get_law
from scaling.mixing import fit_mixing_study
from scaling.mixing.evaluate import collapsed


def _repeated_data(seed=0):
    """A planted data-constrained sweep with at most 3 epochs: R_D* (15.4) is not identified."""
    rng = np.random.default_rng(seed)
    N = np.repeat(np.geomspace(1e8, 2e9, 6), 5)
    D = N * np.tile(np.geomspace(10, 80, 5), 6)
    U = D / np.tile([1.0, 1.2, 1.5, 2.0, 3.0], 6)
    true = {"E": 1.8, "A": 480.0, "B": 2100.0, "alpha": 0.35, "beta": 0.37, "R_D_star": 15.4, "R_N_star": 5.3}
    X = {"params": N, "tokens": D, "unique_tokens": U}
    y = get_law("data_constrained").predict(true, X) * np.exp(rng.normal(0, 3e-3, N.size))
    return X, y


def test_unidentified_repetition_constant_is_named():
    X, y = _repeated_data()
    fixed = {"R_N_star": 5.3}
    fit = fit_law("data_constrained", X, y, fixed=fixed)
    boot = bootstrap("data_constrained", X, y, n_resamples=40, fit=fit, fixed=fixed, restarts="warm")
    lo, hi = boot.interval("R_D_star")
    assert hi == pytest.approx(1e4)  # the interval runs to the bound ...
    assert "not_identified:R_D_star" in boot.flags  # ... and says so
    assert not any(f.endswith((":alpha", ":beta", ":E")) for f in boot.flags)
    assert "not_identified:R_N_star" not in boot.flags  # fixed parameters are not judged


def test_epoch_chinchilla_parameters_are_all_identified(shared_data):
    X, y = chinchilla_epoch(shared_data)
    fit = fit_law("chinchilla", X, y)
    boot = bootstrap("chinchilla", X, y, n_resamples=100, fit=fit)
    assert boot.flags == [] and boot.restarts == "warm"


def test_global_restarts_chosen_by_evidence_on_a_planted_flat_case():
    """A broken power law with noise: warm-started refits miss the global optimum on probe resamples,
    so every refit restarts from the global search, which reaches a lower objective on the resamples.
    The full fit puts the break's sharpness f1 (planted 0.3) on its bound 0.001 with a flat profile:
    warm-started refits stay there, so their interval is a sliver that misses 0.3; the global
    restarts spread over the flat direction and their interval holds it."""
    true, X, y, fixed = simulate("broken_power_law_tokens", seed=6, noise=3e-2)
    fit = fit_law("broken_power_law_tokens", X, y, fixed=fixed)
    warm = bootstrap("broken_power_law_tokens", X, y, n_resamples=12, fit=fit, restarts="warm")
    auto = bootstrap("broken_power_law_tokens", X, y, n_resamples=12, fit=fit, restarts="auto")
    assert warm.restarts == "warm" and auto.restarts == "global"
    assert "bootstrap_restarts:global" in auto.flags and "not_identified:f1" in auto.flags
    assert fit.params["f1"] == pytest.approx(0.001, abs=1e-5)
    wlo, whi = warm.interval("f1")
    glo, ghi = auto.interval("f1")
    assert not wlo <= true["f1"] <= whi and whi < 0.0011  # stuck at the full fit's value
    assert glo <= true["f1"] <= ghi and ghi - glo > 1000 * (whi - wlo)
    assert (round(glo, 4), round(ghi, 3)) == (0.0011, 1.657)
    problem = Problem(get_law("broken_power_law_tokens"), X, y)
    n = y.size
    picks = np.random.default_rng(0).integers(0, n, size=(12, n))  # the bootstrap's own resamples
    lower = 0
    for i, p in enumerate(picks):
        w = np.bincount(p, minlength=n).astype(float)
        f_warm = problem.value(problem.to_z(dict(zip(warm.param_names, warm.draws[i]))), w)
        f_glob = problem.value(problem.to_z(dict(zip(auto.param_names, auto.draws[i]))), w)
        assert f_glob <= f_warm * (1 + 1e-6)
        lower += f_glob < f_warm * (1 - 1e-4)
    assert lower >= 1  # the warm starts were stuck on at least one resample
    with pytest.raises(ValueError, match="restarts"):
        bootstrap("broken_power_law_tokens", X, y, n_resamples=2, fit=fit, restarts="sometimes")


def test_inverted_sigmoid_is_flagged():
    assert sigmoid_flags("downstream_sigmoid", {"floor": 0.8, "ceiling": 0.3, "k": 3.0, "L0": 2.0},
                         {"loss": np.array([1.0, 2.0, 3.0])}) == ["sigmoid_inverted"]
    assert sigmoid_flags("downstream_sigmoid", {"floor": 0.25, "ceiling": 1.2, "k": 3.0, "L0": 2.0},
                         {"loss": np.array([0.5, 2.0])}) == ["sigmoid_inverted"]  # predicts above 1
    assert sigmoid_flags("downstream_sigmoid", {"floor": 0.25, "ceiling": 0.9, "k": 3.0, "L0": 2.0},
                         {"loss": np.array([1.0, 2.0, 3.0])}) == []
    # through the fitter: accuracies that fall as loss falls fit a sigmoid with floor above ceiling
    loss = np.linspace(2.0, 4.0, 30)
    acc = 0.3 + 0.5 / (1 + np.exp(-3.0 * (loss - 3.0)))
    fit = fit_law("downstream_sigmoid", {"loss": loss}, acc, bounds={"floor": (0, 1), "ceiling": (0, 1)})
    assert fit.params["floor"] > fit.params["ceiling"] and "sigmoid_inverted" in fit.flags


def test_accuracy_laws_are_the_laws_that_predict_accuracy_and_both_sigmoids_are_checked():
    from scaling.forecast.sanity import ACCURACY_LAWS, law_metric_flags
    assert ACCURACY_LAWS == ("accuracy_sigmoid_flops", "downstream_sigmoid")
    assert law_metric_flags("accuracy_sigmoid_flops", "accuracy") == []
    assert law_metric_flags("chinchilla+downstream_sigmoid", "accuracy") == []
    assert law_metric_flags("accuracy_sigmoid_flops", "nats") == ["law_not_for_metric"]
    assert law_metric_flags("power_law_flops", "accuracy") == ["law_not_for_metric"]
    C = {"flops": np.array([1e19, 1e21, 1e23])}
    assert sigmoid_flags("accuracy_sigmoid_flops", {"floor": 0.25, "ceiling": 0.8, "k": 0.6, "log_C0": 48.0},
                         C) == []
    assert sigmoid_flags("accuracy_sigmoid_flops", {"floor": 0.8, "ceiling": 0.3, "k": 0.6, "log_C0": 48.0},
                         C) == ["sigmoid_inverted"]
    assert sigmoid_flags("accuracy_sigmoid_flops", {"floor": 0.25, "ceiling": 1.3, "k": 0.6, "log_C0": 48.0},
                         C) == ["sigmoid_inverted"]  # predicts above 1 at 1e23
    assert sigmoid_flags("power_law_flops", {"E": 1.0, "A": 1.0, "alpha": 0.1}, C) == []


def test_collapsed_mixing_law_is_flagged():
    rng = np.random.default_rng(0)
    W = rng.dirichlet(np.ones(3), size=1500)
    signal = 2.0 + 0.5 * W[:, 0] + rng.normal(0, 0.01, 1500)
    noise = 2.0 + rng.normal(0, 0.01, 1500)  # unrelated to the mixture
    res = fit_mixing_study(W, np.column_stack([signal, noise]), ["a", "b", "c"], ["signal", "noise"],
                           laws=("linear",), n_resamples=5)
    fits = {t: res.fits[("linear", t)].predict(W) for t in ("signal", "noise")}
    assert not collapsed(fits["signal"], signal)
    assert collapsed(fits["noise"], noise)


def test_forecast_sanity_flags():
    olmo_like = {"law": "chinchilla", "target": "c4_loss", "kind": "compute_optimal", "name": "1e23 FLOPs",
                 "tokens_per_param": 0.56, "predicted": 2.3}
    assert row_flags(olmo_like, unit="nats", fitted_tokens_per_param=(19.0, 210.0)) == \
        ["allocation_outside_fitted:tokens_per_param"]
    assert row_flags({**olmo_like, "tokens_per_param": 25.0}, unit="nats", fitted_tokens_per_param=(19.0, 210.0)) == []
    acc = {"law": "chinchilla+downstream_sigmoid", "target": "acc", "kind": "downstream", "name": "7B",
           "predicted": 1.04}
    assert row_flags(acc, unit="accuracy") == ["outside_metric_range"]
    assert row_flags({"law": "chinchilla", "target": "acc", "kind": "target_run", "name": "x", "predicted": 0.5},
                     unit="accuracy") == ["law_not_for_metric"]
    assert row_flags({"law": "power_law_flops", "target": "ppl", "kind": "compute_optimal", "name": "x",
                      "predicted": 1.0}, unit="perplexity", irreducible=(1.2, 1.1)) == ["below_irreducible"]
    rows = [dict(acc)]
    msgs = annotate(rows, unit="accuracy")
    assert rows[0]["warnings"] == "outside_metric_range" and demoted(rows[0])
    assert "outside the possible range of a accuracy metric" in msgs[0]
    for flag in ("not_identified:R_D_star", "sigmoid_inverted", "mixing_constant", "law_not_for_metric",
                 "allocation_outside_fitted:tokens_per_param", "below_irreducible", "outside_metric_range",
                 "bootstrap_restarts:global"):
        assert flag_name(flag) in FLAGS


def test_intervals_reasonable_fails_on_an_unidentified_parameter():
    import polars as pl

    from scaling.plan.checks import fit_checks
    from scaling.plan.data import FitData
    from scaling.plan.fits import FitPlan
    from scaling.plan.run import fit_group
    from scaling.spec import CHECK_DEFAULTS

    X, y = _repeated_data()
    runs = np.array([f"r{i}" for i in range(y.size)])
    data = FitData(group="", X=X, y=y, runs=runs, compute=6 * X["params"] * X["tokens"], frame=pl.DataFrame())
    plan = FitPlan(law="data_constrained", target="loss", n_resamples=30, holdout_fraction=0.0,
                   fixed={"R_N_star": 5.3})
    g = fit_group(plan, data)
    assert "not_identified:R_D_star" in g.fit.flags and g.usable
    (check,) = [c for c in fit_checks([g], dict(CHECK_DEFAULTS)) if c.name == "intervals_reasonable"]
    assert not check.passed and "data_constrained->loss: not_identified:R_D_star" in check.summary
