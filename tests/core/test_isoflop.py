"""Chinchilla approaches 1 and 2 on synthetic curves with a known optimum, and on Gemstone."""

import numpy as np
import pytest

from scaling.errors import FitError
from scaling.fit import isoflop
from fit_cases import gemstone

TRUE = {"E": 1.8, "A": 480.0, "B": 2100.0, "alpha": 0.35, "beta": 0.37}
A_TRUE = TRUE["beta"] / (TRUE["alpha"] + TRUE["beta"])


def _curves():
    N = np.geomspace(3e7, 3e10, 25)
    rows = []
    for i, n in enumerate(N):
        D = np.geomspace(2e8, 2e12, 60)
        L = TRUE["E"] + TRUE["A"] * n ** -TRUE["alpha"] + TRUE["B"] * D ** -TRUE["beta"]
        rows.append((np.full(D.size, n), D, L, np.full(D.size, i)))
    return [np.concatenate(c) for c in zip(*rows)]


def test_approaches_recover_the_compute_optimal_exponents():
    N, D, L, runs = _curves()
    res = isoflop(N, D, L, runs, n_resamples=30, n_budgets=6)
    assert res.n_runs == 25
    a2 = res.approach2
    assert len(a2.points) >= 4
    assert a2.a == pytest.approx(A_TRUE, abs=0.02)
    assert a2.a + a2.b == pytest.approx(1.0, abs=1e-9)  # C = 6ND exactly
    a1 = res.approach1
    assert a1.a == pytest.approx(A_TRUE, abs=0.05)
    lo, hi = a1.params_opt.interval
    assert lo <= a1.a <= hi
    # N_opt(C) from the per-budget minima matches the power fit
    p = a2.points[len(a2.points) // 2]
    assert a2.params_opt(p["flops"]) == pytest.approx(p["params_opt"], rel=0.1)


def test_gemstone_curves(shared_data):
    X, y, runs, _ = gemstone(shared_data, "hot_477")
    res = isoflop(X["params"], X["tokens"], y, runs, n_resamples=30)
    for ap in (res.approach1, res.approach2):
        assert 0.3 < ap.a < 0.8 and ap.a + ap.b == pytest.approx(1.0, abs=1e-9)
        lo, hi = ap.params_opt.interval
        assert lo < hi
    assert all({"flops", "params_opt", "tokens_opt", "loss_opt"} <= set(p) for p in res.approach2.points)


def test_bad_input_is_named():
    with pytest.raises(FitError, match="row 1, field 'loss'"):
        isoflop([1e8, 2e8], [1e9, 1e9], [3.0, -1.0])
