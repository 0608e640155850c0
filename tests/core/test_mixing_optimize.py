"""Mixture optimization: feasibility, token availability, optimality under the fitted law."""

import numpy as np
import pytest

from scaling.errors import SpecError
from scaling.mixing import (
    YE_EXP_LOG,
    fit_mixing_study,
    optimize_mixture,
    project_to_feasible,
    random_mixtures,
    read_mixture_runs,
    token_upper_bounds,
)

DOMAINS = ["web", "code", "books", "math", "wiki", "news"]
TARGETS = ["web_loss", "code_loss", "math_loss"]


@pytest.fixture(scope="module")
def study():
    """Three targets from planted ye_exp_log laws over six domains."""
    rng = np.random.default_rng(0)
    w = random_mixtures(240, 6, seed=1, zero_fraction=0.3)
    thetas = [
        np.r_[2.0, [-0.8, 0.3, 0.1, 0.4, -0.2, -0.1], [-0.06, 0, -0.01, 0, -0.02, -0.01]],
        np.r_[1.2, [0.5, -1.5, 0.6, -0.3, 0.4, 0.5], [0, -0.09, 0, -0.01, 0, 0]],
        np.r_[1.6, [0.3, -0.4, 0.5, -1.2, 0.2, 0.4], [0, -0.02, 0, -0.08, 0, 0]],
    ]
    y = np.column_stack([YE_EXP_LOG.predict(t, w) + rng.normal(0, 0.003, len(w)) for t in thetas])
    return fit_mixing_study(w, y, DOMAINS, TARGETS, laws=("linear", "ye_exp_log"), n_resamples=60, seed=0)


def _random_feasible(lo, hi, n, seed):
    rng = np.random.default_rng(seed)
    draws = np.vstack([rng.dirichlet(np.full(len(lo), a), size=n // 3) for a in (0.1, 0.5, 2.0)])
    return project_to_feasible(draws, lo, hi)


def _objective(result, law, a, w):
    return sum(ak * result.fits[(law, t)].predict(w) for ak, t in zip(a, result.targets))


def test_optimum_respects_bounds_and_beats_every_random_feasible_mixture(study):
    lower = {"news": 0.05}
    upper = {"web": 0.3, "code": 0.25}
    prop = optimize_mixture(study, lower=lower, upper=upper, baseline="uniform", seed=0)
    assert prop.law == "ye_exp_log" and prop.converged
    w = prop.weights
    assert w.sum() == pytest.approx(1.0, abs=1e-12)
    assert w[5] >= 0.05 - 1e-12 and w[0] <= 0.3 + 1e-12 and w[1] <= 0.25 + 1e-12 and w.min() >= 0
    cloud = _random_feasible(prop.lower, prop.upper, 6000, seed=7)
    values = _objective(study, prop.law, prop.objective_weights, cloud)
    assert prop.objective_value <= values.min() + 1e-9
    assert prop.objective_value < prop.baseline_objective_value
    assert prop.objective_ci[0] <= prop.objective_value <= prop.objective_ci[1]
    # KKT: free weights share one marginal loss; weights at a bound point the right way
    g = sum(a * study.fits[(prop.law, t)].gradient(w[None])[0] for a, t in zip(prop.objective_weights, TARGETS))
    free = (w > prop.lower + 1e-6) & (w < prop.upper - 1e-6)
    mu = np.median(g[free])
    scale = np.abs(g).max()
    assert np.all(np.abs(g[free] - mu) < 1e-4 * scale)
    assert np.all(g[w <= prop.lower + 1e-6] >= mu - 1e-4 * scale)
    assert np.all(g[w >= prop.upper - 1e-6] <= mu + 1e-4 * scale)


def test_token_availability_caps_weights(study):
    unique = np.array([50e9, 4e9, 8e9, 1e9, 6e9, 40e9])
    planned = 60e9
    epochs = np.array([1, 4, 2, 4, 2, 1.0])
    prop = optimize_mixture(study, objective_weights={"code_loss": 1.0, "math_loss": 1.0},
                            unique_tokens=unique, planned_tokens=planned, max_epochs=epochs)
    cap = token_upper_bounds(unique, planned, epochs)
    np.testing.assert_allclose(cap, epochs * unique / planned)
    assert np.all(prop.weights <= cap + 1e-12)
    assert prop.weights[3] == pytest.approx(cap[3], abs=1e-9)  # math is scarce and binding
    np.testing.assert_allclose(prop.baseline_weights, unique / unique.sum())  # natural proportions
    assert prop.objective_value < prop.baseline_objective_value
    assert prop.improvement_probability > 0.95
    free = optimize_mixture(study, objective_weights={"code_loss": 1.0, "math_loss": 1.0})
    assert free.weights[3] > cap[3] and free.objective_value < prop.objective_value


def test_rows_report_proposal_and_baseline(study):
    prop = optimize_mixture(study, objective="code_and_web", objective_weights=[0.5, 0.5, 0.0])
    rows = prop.rows()
    assert [r.domain for r in rows] == DOMAINS
    assert [r.target_domain for r in rows] == ["web_loss", "code_loss", None, "math_loss", None, None]
    assert {r.objective for r in rows} == {"code_and_web"}
    assert sum(r.weight for r in rows) == pytest.approx(1.0)
    code = rows[1]
    assert code.ci_low < code.predicted_loss < code.ci_high
    assert code.baseline_ci_low < code.baseline_predicted_loss < code.baseline_ci_high


def test_infeasible_bounds_are_spec_errors(study):
    with pytest.raises(SpecError, match="lower bounds sum to 1.2"):
        optimize_mixture(study, lower=0.2)
    with pytest.raises(SpecError, match=r"upper bounds \(after token availability\) to 0.6"):
        optimize_mixture(study, unique_tokens=np.full(6, 1e9), planned_tokens=1e10)
    with pytest.raises(SpecError, match="unknown objective_weights"):
        optimize_mixture(study, objective_weights={"nope": 1.0})


def test_regmix_mixture_for_pile_cc_improves_on_the_human_mixture(shared_data):
    data = shared_data / "regmix" / "data"
    runs = read_mixture_runs(data / "train_mixture_1m.csv", data / "train_pile_loss_1m.csv")
    k = runs.targets.index("metric/the_pile_pile_cc_val_loss")
    result = fit_mixing_study(runs.weights, runs.losses[:, [k]], runs.domains, [runs.targets[k]],
                              laws=("ye_exp_log",), n_resamples=40, seed=0)
    human = dict(zip(runs.domains, [0.1052, 0.0386, 0.0052, 0.1071, 0.0919, 0.0198, 0.0427, 0.0027, 0.0929,
                                    0.0030, 0.0199, 0.1121, 0.0074, 0.0043, 0.0075, 0.0845, 0.0420]))
    prop = optimize_mixture(result, upper=0.4, baseline=human)
    assert prop.weights.max() <= 0.4 + 1e-12
    assert prop.objective_value < prop.baseline_objective_value
    assert prop.objective_ci[1] < prop.baseline_objective_ci[0]  # the intervals do not overlap
