"""The bootstrap's fast refit path: Gauss-Newton from the full fit, L-BFGS-B only as a last resort."""

from __future__ import annotations

import numpy as np
import pytest

from scaling.fit import fit_law
from scaling.fit.polish import newton_polish, polish
from scaling.fit.problem import Problem


def sweep(seed: int = 0):
    """6 sizes x 5 token budgets from a Chinchilla law (E 1.76, A 430, B 560, alpha 0.335,
    beta 0.305, as the example sweep) with 0.3% log-normal noise: Kaplan's form does not fit it."""
    rng = np.random.default_rng(seed)
    n = np.repeat([19e6, 45e6, 110e6, 250e6, 520e6, 1.0e9], 5)
    d = n * np.tile([5.0, 10.0, 20.0, 40.0, 80.0], 6)
    y = (1.76 + 430 / n**0.335 + 560 / d**0.305) * np.exp(rng.normal(0, 0.003, n.size))
    return {"params": n, "tokens": d}, y


def test_kaplan_refits_converge_without_the_lbfgs_fallback():
    """Most points lie beyond the Huber delta when the law does not fit the data; Gauss-Newton
    on the few inside stalls (it took the L-BFGS-B fallback in 120 of 200 refits, ~6 s per 1,000)."""
    X, y = sweep()
    fit = fit_law("kaplan", X, y)
    st = fit.settings
    problem = Problem(fit.law, X, y, objective=st["objective"], delta=st["delta"], space=st["space"])
    z0 = problem.to_z(fit.params)
    rng = np.random.default_rng(1)
    fast, worse = 0, []
    for i in range(30):
        w = np.bincount(rng.integers(0, y.size, y.size), minlength=y.size).astype(float)
        z, f, ok, msg, _ = newton_polish(problem, z0, w)
        assert ok, msg
        fast += msg.startswith("Gauss-Newton")
        if i < 8:  # the fast path reaches the objective the slow one does, from the same start
            _, f_slow, _, _, _ = polish(problem, z0, w, continuation=False)
            worse.append((f - f_slow) / f_slow)
    assert fast >= 27, f"only {fast} of 30 refits took the Gauss-Newton path"
    assert max(worse) < 1e-6


def test_refits_together_are_the_refits_alone():
    """Vectorized refits: each row ends where ``newton_polish`` ends it alone, whatever rows it
    is batched with (so the bootstrap does not depend on how refits are split across workers)."""
    from scaling.fit.polish import newton_polish_rows

    X, y = sweep(3)
    for law in ("chinchilla", "kaplan"):
        fit = fit_law(law, X, y)
        st = fit.settings
        problem = Problem(fit.law, X, y, objective=st["objective"], delta=st["delta"], space=st["space"])
        z0 = problem.to_z(fit.params)
        rng = np.random.default_rng(5)
        W = np.stack([np.bincount(rng.integers(0, y.size, y.size), minlength=y.size) for _ in range(12)]).astype(float)
        Z, f, ok, msgs, _ = newton_polish_rows(problem, z0, W)
        Z_half, *_ = newton_polish_rows(problem, z0, W[6:])
        np.testing.assert_array_equal(Z[6:], Z_half)
        for i in (0, 5, 11):
            z, fi, oki, msg, _ = newton_polish(problem, z0, W[i])
            np.testing.assert_array_equal(Z[i], z)
            assert (f[i], ok[i], msgs[i]) == (fi, oki, msg)


def test_global_fit_reaches_the_lbfgs_continuation_optimum():
    """The global fit refines its seeds by Gauss-Newton (continuation in delta, IRLS) and finishes
    the best with L-BFGS-B: it must reach at least the objective of L-BFGS-B continuation from
    every seed, the refinement it replaced."""
    from scaling.fit.seeding import seed_grid

    X, y = sweep(4)
    for law in ("chinchilla", "kaplan", "power_law_params", "overtraining"):
        fit = fit_law(law, X, y)
        problem = Problem(fit.law, X, y)
        seeds, _ = seed_grid(problem)
        old = min(polish(problem, problem.to_z(s))[1] for s in seeds)
        assert fit.converged
        assert fit.objective <= old * (1 + 1e-9), law


def test_global_refits_together_are_the_global_fits_alone():
    """Bootstrap refits from the global search (``restarts="global"``) refine the seeds of many
    resamples together: each ends where ``fit_law`` with that resample's weights ends."""
    from scaling.fit.bootstrap import _global_refits
    from scaling.fit.threads import single_thread_blas

    X, y = sweep(5)
    fit = fit_law("kaplan", X, y)
    st = fit.settings
    problem = Problem(fit.law, X, y, objective=st["objective"], delta=st["delta"], space=st["space"])
    rng = np.random.default_rng(8)
    W = np.stack([np.bincount(rng.integers(0, y.size, y.size), minlength=y.size) for _ in range(3)]).astype(float)
    with single_thread_blas():  # as the bootstrap runs them (and fit_law runs itself)
        Z, F, ok = _global_refits(problem, W)
    for i, w in enumerate(W):
        alone = fit_law("kaplan", X, y, weights=w)
        # equal up to rounding, which the flat direction of Kaplan's N_c, D_c on this data magnifies
        np.testing.assert_allclose(Z[i], problem.to_z(alone.params), rtol=1e-6)
        assert ok[i] == alone.converged and F[i] == pytest.approx(alone.objective, rel=1e-12)
