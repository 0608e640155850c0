"""Every law in the zoo has an analytic gradient, and it matches central differences.

Refits (the bootstrap's Gauss-Newton path) need d prediction / d parameter at every point; a law
without one falls back to numerical differences, one extra pair of evaluations per parameter.
"""

from __future__ import annotations

import numpy as np
import pytest

from scaling.laws import LAWS

rng = np.random.default_rng(0)
N = np.geomspace(2e7, 3e9, 24)
D = N * rng.uniform(2, 200, N.size)
X = {
    "params": N, "tokens": D, "flops": 6 * N * D,
    # unique tokens below and above D, so some runs repeat data and some do not
    "unique_tokens": D * rng.uniform(0.05, 1.5, N.size),
    "lr_sum": rng.uniform(5.0, 50.0, N.size), "lr_anneal_area": rng.uniform(0.0, 3.0, N.size),
    "loss_x": rng.uniform(2.2, 4.0, N.size), "loss": rng.uniform(0.6, 1.6, N.size),
}
PARAMS = {
    "chinchilla": dict(E=1.8, A=400.0, B=1500.0, alpha=0.34, beta=0.37),
    "kaplan": dict(N_c=8.8e13, D_c=5.4e13, alpha_N=0.076, alpha_D=0.095),
    # A, B so that N_opt(U_D) falls inside the range of N: both branches of min(N, N_opt) occur
    "data_constrained": dict(E=1.9, A=500.0, B=1000.0, alpha=0.35, beta=0.33, R_D_star=15.4, R_N_star=5.3),
    "lr_annealing": dict(L0=2.0, A=0.8, C=0.3, alpha=0.5),
    "loss_transfer": dict(K=0.9, kappa=1.3, E_x=1.6, E_y=0.4),
    "downstream_sigmoid": dict(floor=0.25, ceiling=0.9, k=4.0, L0=1.1),
    # log_C0 inside the range of ln C, so both tails and the middle of the sigmoid are sampled
    "accuracy_sigmoid_flops": dict(floor=0.25, ceiling=0.8, k=0.6, log_C0=float(np.median(np.log(6 * N * D)))),
    "overtraining": dict(E=1.8, a=40.0, b=900.0, eta=0.17),
}
for v in ("params", "tokens", "flops"):
    PARAMS[f"power_law_{v}"] = dict(E=1.7, A=300.0, alpha=0.3)
    PARAMS[f"broken_power_law_{v}"] = dict(a=1.5, b=200.0, c0=0.2, c1=0.15, d1=float(np.median(X[v])), f1=0.4)


@pytest.mark.parametrize("name", sorted(n for n in LAWS if n != "broken_power_law"))
def test_analytic_gradient_matches_central_differences(name):
    law = LAWS[name]
    assert law.grad is not None, f"{name} has no analytic gradient"
    p = PARAMS[name]
    g = law.grad(X, p)
    assert set(g) == set(law.param_names)
    for k in law.param_names:
        h = 1e-6 * max(abs(p[k]), 1e-3)
        up, down = dict(p), dict(p)
        up[k] += h
        down[k] -= h
        num = (law.fn(X, up) - law.fn(X, down)) / (2 * h)
        np.testing.assert_allclose(np.broadcast_to(g[k], num.shape), num, rtol=2e-5,
                                   atol=1e-7 * float(np.max(np.abs(law.fn(X, p)))), err_msg=f"{name}: d/d{k}")


def test_data_constrained_sample_covers_both_branches():
    p = PARAMS["data_constrained"]
    n_opt = np.exp((np.log(p["alpha"] * p["A"]) - np.log(p["beta"] * p["B"])
                    + p["beta"] * np.log(X["unique_tokens"])) / p["alpha"])
    assert 0 < np.sum(n_opt < X["params"]) < N.size
    assert 0 < np.sum(X["tokens"] > X["unique_tokens"]) < N.size


@pytest.mark.parametrize("name", sorted(n for n in LAWS if n != "broken_power_law"))
def test_law_and_gradient_broadcast_over_rows_of_parameters(name):
    """Refits run many resamples at once: parameters shaped (R, 1) against data shaped (n,) give
    row i what the law gives for row i's values alone."""
    law = LAWS[name]
    p = PARAMS[name]
    scales = np.array([1.0, 1.01, 0.98])
    rows = {k: v * scales[:, None] for k, v in p.items()}
    pred, g = law.fn(X, rows), law.grad(X, rows)
    for i, s in enumerate(scales):
        alone = {k: v * s for k, v in p.items()}
        np.testing.assert_array_equal(np.broadcast_to(pred, (3, N.size))[i], law.fn(X, alone))
        ga = law.grad(X, alone)
        for k in law.param_names:
            np.testing.assert_array_equal(np.broadcast_to(g[k], (3, N.size))[i],
                                          np.broadcast_to(ga[k], (N.size,)), err_msg=f"{name}: d/d{k}")
