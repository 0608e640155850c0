"""The law zoo: registry, formulas, the learning-rate areas and compute-optimal allocation."""

import numpy as np
import pytest

from scaling.errors import SpecError
from scaling.laws import (LAWS, chinchilla, compute_optimal, data_constrained, get_law, lr_areas,
                          power_law)

EXPECTED = {"power_law_params", "power_law_tokens", "power_law_flops", "kaplan", "chinchilla",
            "data_constrained", "lr_annealing", "broken_power_law", "loss_transfer", "downstream_sigmoid"}


def test_registry_has_every_law_and_rejects_unknown_names():
    assert EXPECTED <= set(LAWS)
    assert get_law("chinchilla") is chinchilla
    with pytest.raises(SpecError, match="unknown law 'chinchila'"):
        get_law("chinchila")


@pytest.mark.parametrize("name", sorted(LAWS))
def test_every_law_declares_itself(name):
    law = LAWS[name]
    assert law.formula and law.reference and law.variables
    assert len(set(law.param_names)) == len(law.params)
    for p in law.params:
        assert p.bounds[0] <= p.bounds[1]


def test_power_law_formula_and_variable_choice():
    law = power_law("tokens")
    assert law.variables == ("tokens",)
    y = law.predict({"E": 1.5, "A": 100.0, "alpha": 0.5}, {"tokens": np.array([1e4, 1e6])})
    np.testing.assert_allclose(y, [1.5 + 100 / 100, 1.5 + 100 / 1000])
    with pytest.raises(ValueError, match="params"):
        power_law("steps")


def test_chinchilla_missing_variable_is_named():
    with pytest.raises(KeyError, match="tokens"):
        chinchilla.predict({"E": 1, "A": 1, "B": 1, "alpha": 0.3, "beta": 0.3}, {"params": np.ones(3)})


def test_kaplan_reduces_to_its_limits():
    p = {"N_c": 8.8e13, "D_c": 5.4e13, "alpha_N": 0.076, "alpha_D": 0.095}
    N = np.array([1e8, 1e9])
    # infinite data: L = (N_c / N)^alpha_N
    np.testing.assert_allclose(LAWS["kaplan"].predict(p, {"params": N, "tokens": np.full(2, 1e300)}),
                               (p["N_c"] / N) ** p["alpha_N"], rtol=1e-12)


def test_broken_power_law_slopes_change_at_the_break():
    law = LAWS["broken_power_law"]
    p = {"a": 0.0, "b": 1.0, "c0": 0.1, "c1": 0.4, "d1": 1e20, "f1": 0.05}
    x = np.array([1e14, 1e15, 1e25, 1e26])
    ly = np.log(law.predict(p, {"flops": x}))
    slope_low = (ly[1] - ly[0]) / np.log(10)
    slope_high = (ly[3] - ly[2]) / np.log(10)
    assert slope_low == pytest.approx(-0.1, abs=1e-6)
    assert slope_high == pytest.approx(-0.5, abs=1e-6)


def test_downstream_sigmoid_lower_loss_gives_higher_accuracy():
    law = LAWS["downstream_sigmoid"]
    p = {"floor": 0.25, "ceiling": 0.9, "k": 5.0, "L0": 3.0}
    acc = law.predict(p, {"loss": np.array([1.0, 3.0, 6.0])})
    assert acc[0] > acc[1] > acc[2]
    assert acc[1] == pytest.approx((0.25 + 0.9) / 2)
    assert law.space == "linear"


def test_loss_transfer_formula():
    p = {"K": 2.0, "kappa": 1.5, "E_x": 1.0, "E_y": 0.5}
    y = LAWS["loss_transfer"].predict(p, {"loss_x": np.array([2.0, 5.0])})
    np.testing.assert_allclose(y, [2.0 * 1.0 + 0.5, 2.0 * 4.0 ** 1.5 + 0.5])


def test_data_constrained_equals_chinchilla_without_repetition():
    p = {"E": 1.8, "A": 480.0, "B": 2100.0, "alpha": 0.35, "beta": 0.37}
    N = np.array([3e7, 1e8])
    D = np.array([2e9, 8e9])
    # single epoch and models smaller than compute-optimal for U_D: no discount
    X = {"params": N, "tokens": D, "unique_tokens": D}
    full = dict(p, R_D_star=15.4, R_N_star=5.3)
    np.testing.assert_allclose(data_constrained.predict(full, X),
                               chinchilla.predict(p, {"params": N, "tokens": D}), rtol=1e-12)


def test_data_constrained_repeated_tokens_are_worth_less_and_saturate():
    p = dict(E=1.8, A=480.0, B=2100.0, alpha=0.35, beta=0.37, R_D_star=15.4, R_N_star=5.3)
    U = 1e9
    N = np.full(4, 1e7)
    epochs = np.array([1.0, 4.0, 40.0, 4000.0])
    L = data_constrained.predict(p, {"params": N, "tokens": U * epochs, "unique_tokens": np.full(4, U)})
    fresh = chinchilla.predict(p, {"params": N, "tokens": U * epochs})
    assert np.all(np.diff(L) < 0)
    assert np.all(L[1:] > fresh[1:])
    # D' saturates at U_D (1 + R_D*)
    sat = chinchilla.predict(p, {"params": N[:1], "tokens": np.array([U * (1 + 15.4)])})
    assert L[-1] == pytest.approx(sat[0], rel=1e-9)


def test_data_constrained_excess_parameters_are_worth_less():
    p = dict(E=1.8, A=480.0, B=2100.0, alpha=0.35, beta=0.37, R_D_star=15.4, R_N_star=5.3)
    U = np.full(2, 1e9)
    N_opt = np.exp((np.log(0.35 * 480) - np.log(0.37 * 2100) + 0.37 * np.log(1e9)) / 0.35)
    N = np.array([N_opt, 20 * N_opt])
    L = data_constrained.predict(p, {"params": N, "tokens": U, "unique_tokens": U})
    plain = chinchilla.predict({k: p[k] for k in ("E", "A", "B", "alpha", "beta")}, {"params": N, "tokens": U})
    assert L[0] == pytest.approx(plain[0], rel=1e-9)
    assert L[1] > plain[1] and L[1] < L[0]


def test_compute_optimal_minimises_loss_at_fixed_compute():
    p = {"E": 1.8172, "A": 477.84, "B": 2143.86, "alpha": 0.34731, "beta": 0.36718}
    C = 5.76e23
    n_opt, d_opt = compute_optimal(p, C)
    assert 6 * n_opt * d_opt == pytest.approx(C, rel=1e-12)
    N = n_opt * np.exp(np.linspace(-0.2, 0.2, 41))
    L = chinchilla.predict(p, {"params": N, "tokens": C / (6 * N)})
    assert np.argmin(L) == 20


def _areas_by_loop(lr, decay):
    s1 = s2 = m = 0.0
    out1, out2 = [0.0], [0.0]
    for i in range(1, lr.size):
        s1 += lr[i]
        m = decay * m + (lr[i - 1] - lr[i])
        s2 += m
        out1.append(s1)
        out2.append(s2)
    return np.array(out1), np.array(out2)


def test_lr_areas_match_the_definition():
    steps = np.arange(3001)
    lr = 3e-4 * 0.5 * (1 + np.cos(np.pi * steps / 3000))
    s1, s2 = lr_areas(steps, lr, decay=0.99)
    e1, e2 = _areas_by_loop(lr, 0.99)
    np.testing.assert_allclose(s1, e1, rtol=1e-12)
    np.testing.assert_allclose(s2, e2, rtol=1e-9, atol=1e-15)


def test_lr_areas_constant_rate_has_no_annealing_area():
    s1, s2 = lr_areas(np.array([0, 100, 1000]), np.full(3, 2e-4))
    np.testing.assert_allclose(s1, [0.0, 100 * 2e-4, 1000 * 2e-4])
    np.testing.assert_allclose(s2, 0.0, atol=1e-18)


def test_lr_areas_from_sparse_logging_of_a_piecewise_linear_schedule_are_exact():
    steps = np.arange(2001)
    lr = np.where(steps < 1500, 1e-3, 1e-3 * (2000 - steps) / 500)
    dense = lr_areas(steps, lr, at=[700, 1600, 2000])
    sparse = lr_areas(steps[::100], lr[::100], at=[700, 1600, 2000])
    np.testing.assert_allclose(sparse[0], dense[0], rtol=1e-12)
    np.testing.assert_allclose(sparse[1], dense[1], rtol=1e-12)


def test_lr_areas_rejects_bad_input():
    with pytest.raises(ValueError, match="increasing"):
        lr_areas([0, 10, 5], [1e-3, 1e-3, 1e-3])
    with pytest.raises(ValueError, match="same length"):
        lr_areas([0, 10], [1e-3])
