"""Tied parameters, rescaled inputs and the over-training law (Gadre et al. 2024)."""

import numpy as np
import pytest

from scaling.errors import SpecError
from scaling.fit import bootstrap, fit_law
from scaling.laws import LAWS, configure, expand_ties, rescale_inputs, tie_params
from fit_cases import chinchilla_epoch, simulate


def test_tied_exponent_recovers_a_planted_law_with_one_exponent():
    rng = np.random.default_rng(3)
    N = np.repeat(np.geomspace(5e7, 5e9, 8), 8)
    D = N * np.tile(np.geomspace(2, 200, 8), 8)
    true = {"E": 1.8, "A": 480.0, "B": 2100.0, "alpha": 0.36, "beta": 0.36}
    y = LAWS["chinchilla"].predict(true, {"params": N, "tokens": D}) * np.exp(rng.normal(0, 1e-3, N.size))
    law = tie_params(LAWS["chinchilla"], {"beta": "alpha"})
    assert law.param_names == ("E", "A", "B", "alpha") and law.ties == {"beta": "alpha"}
    fit = fit_law(law, {"params": N, "tokens": D}, y)
    assert fit.converged
    assert fit.params["alpha"] == pytest.approx(0.36, abs=0.01)
    full = expand_ties(law, fit.params)
    assert full["beta"] == full["alpha"]
    boot = bootstrap(law, {"params": N, "tokens": D}, y, n_resamples=40, fit=fit)
    lo, hi = boot.interval("alpha")
    assert lo < 0.36 < hi


def test_ties_and_scales_are_checked():
    with pytest.raises(SpecError, match="no parameter 'gamma'"):
        tie_params(LAWS["chinchilla"], {"beta": "gamma"})
    with pytest.raises(SpecError, match="both must be linear"):
        tie_params(LAWS["chinchilla"], {"B": "alpha"})
    with pytest.raises(SpecError, match="no variable 'flops'"):
        rescale_inputs(LAWS["chinchilla"], {"flops": 1e9})
    with pytest.raises(SpecError, match="positive finite scale"):
        rescale_inputs(LAWS["chinchilla"], {"params": 0})


def test_overtraining_law_recovers_planted_values():
    true, X, y, _ = simulate("overtraining", noise=1e-3)
    fit = fit_law("overtraining", X, y)
    assert fit.params["eta"] == pytest.approx(true["eta"], abs=0.01)
    assert fit.params["E"] == pytest.approx(true["E"], abs=0.05)


def test_overtraining_law_is_chinchilla_with_one_exponent_on_epochs_data(shared_data):
    """Gadre et al. 2024, eq. 4 is Chinchilla's form with alpha = beta = 2·eta, a = A·6^eta, b = B·6^eta:
    two independent global fits on Epoch's 240 Chinchilla points must agree."""
    X, y = chinchilla_epoch(shared_data)
    ot = fit_law("overtraining", X, y)
    ch = fit_law(configure(LAWS["chinchilla"], tie={"beta": "alpha"}), X, y)
    eta = ot.params["eta"]
    assert 2 * eta == pytest.approx(ch.params["alpha"], rel=1e-3)
    assert ot.params["a"] == pytest.approx(ch.params["A"] * 6 ** eta, rel=1e-2)
    assert ot.params["b"] == pytest.approx(ch.params["B"] * 6 ** eta, rel=1e-2)
    assert ot.objective == pytest.approx(ch.objective, rel=1e-4)
    # one exponent fits worse than two (Epoch's free fit: objective 1.018274e-3)
    assert ch.objective > 1.018274e-3


def test_rescaled_inputs_give_the_coefficients_in_a_papers_units(shared_data):
    """Fitting on N/1e6 and D/1e9 leaves the exponents and E as they are and gives
    A_scaled = A·1e6^-alpha, B_scaled = B·1e9^-beta (Epoch: A = 477.84, B = 2143.86)."""
    X, y = chinchilla_epoch(shared_data)
    raw = fit_law("chinchilla", X, y)
    law = rescale_inputs(LAWS["chinchilla"], {"params": 1e6, "tokens": 1e9})
    sc = fit_law(law, X, y)
    for k in ("E", "alpha", "beta"):
        assert sc.params[k] == pytest.approx(raw.params[k], rel=1e-3)
    assert sc.params["A"] == pytest.approx(477.84 * 1e6 ** -raw.params["alpha"], rel=1e-2)
    assert sc.params["B"] == pytest.approx(2143.86 * 1e9 ** -raw.params["beta"], rel=1e-2)
    assert sc.objective == pytest.approx(1.018274e-3, rel=1e-5)
    # predictions take raw N and D either way
    grid = {"params": np.array([1e9, 7e10]), "tokens": np.array([2e10, 1.4e12])}
    assert sc.predict(grid) == pytest.approx(raw.predict(grid), rel=1e-4)
