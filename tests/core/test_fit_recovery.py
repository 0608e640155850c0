"""Parameter recovery on seeded synthetic data for every law in the zoo, with no starting points."""

import pytest

from scaling.fit import fit_law
from scaling.fit.problem import Problem
from scaling.laws import LAWS
from fit_cases import simulate


@pytest.mark.parametrize("name", sorted(LAWS))
def test_exact_data_recovers_true_parameters(name):
    true, X, y, fixed = simulate(name, seed=1, noise=0.0)
    fit = fit_law(name, X, y, fixed=fixed)
    assert fit.converged, fit.message
    for k, v in true.items():
        assert fit.params[k] == pytest.approx(v, rel=1e-6), k
    assert "not_converged" not in fit.flags


@pytest.mark.parametrize("name", sorted(LAWS))
def test_noisy_data_fit_is_at_least_as_good_as_the_truth(name):
    """With 0.1% noise the global optimum lies below the objective at the true parameters, and
    the estimates stay near the truth."""
    true, X, y, fixed = simulate(name, seed=2, noise=1e-3)
    fit = fit_law(name, X, y, fixed=fixed)
    at_truth = Problem(LAWS[name], X, y, fixed=fixed)
    assert fit.objective <= at_truth.value(at_truth.to_z(true)) * (1 + 1e-9)
    assert fit.converged
    for k, v in true.items():
        assert fit.params[k] == pytest.approx(v, rel=0.1), k
    assert not any(f.startswith(("at_bound", "exponent_implausible", "flat_direction")) for f in fit.flags)


def test_fixed_parameters_stay_fixed_and_others_are_refitted():
    true, X, y, _ = simulate("data_constrained", seed=3, noise=0.0)
    fixed = {"R_D_star": 15.4, "R_N_star": 5.3}
    fit = fit_law("data_constrained", X, y, fixed=fixed)
    assert fit.params["R_D_star"] == 15.4 and fit.params["R_N_star"] == 5.3
    assert set(fit.free) == {"E", "A", "B", "alpha", "beta"}
    assert fit.params["alpha"] == pytest.approx(true["alpha"], rel=1e-6)
    assert fit.settings["fixed"] == fixed
