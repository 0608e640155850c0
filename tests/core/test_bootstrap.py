"""Bootstrap intervals: Epoch's published intervals, run resampling, derived quantities."""

import numpy as np
import pytest

from scaling.fit import bootstrap, fit_law
from fit_cases import chinchilla_epoch, gemstone, simulate

EPOCH_CI = {"alpha": (0.317, 0.373), "beta": (0.331, 0.415), "E": (1.769, 1.871)}


def test_chinchilla_epoch_intervals_match_epoch(shared_data):
    X, y = chinchilla_epoch(shared_data)
    boot = bootstrap("chinchilla", X, y, n_resamples=1000, seed=0, n_jobs=2)
    assert boot.n_resamples == 1000 and boot.resampled == "points" and boot.n_groups == 240
    assert boot.draws.shape == (1000, 5)
    assert boot.n_failed <= 10
    for name, (lo, hi) in EPOCH_CI.items():  # every end within 0.003 of Epoch's (their own resamples differ)
        got_lo, got_hi = boot.interval(name, 0.95)
        assert got_lo == pytest.approx(lo, abs=3e-3), name
        assert got_hi == pytest.approx(hi, abs=3e-3), name
    # compute-optimal exponent a = beta / (alpha + beta): Epoch report about 0.51
    est, lo, hi = boot.derived(lambda p: p["beta"] / (p["alpha"] + p["beta"]))
    assert lo < est < hi
    assert est == pytest.approx(0.367172 / (0.34731 + 0.367172), rel=1e-3)


def test_resampling_runs_and_reproducibility(shared_data):
    X, y, runs, _ = gemstone(shared_data, "hot")
    fit = fit_law("chinchilla", X, y, runs=runs)
    a = bootstrap("chinchilla", X, y, runs, n_resamples=40, seed=3, fit=fit)
    b = bootstrap("chinchilla", X, y, runs, n_resamples=40, seed=3, fit=fit, n_jobs=2)
    assert a.resampled == "runs" and a.n_groups == 22
    np.testing.assert_array_equal(a.draws, b.draws)
    c = bootstrap("chinchilla", X, y, runs, n_resamples=40, seed=4, fit=fit)
    assert not np.array_equal(a.draws, c.draws)
    lo, hi = a.interval("alpha")
    assert lo <= fit.params["alpha"] <= hi


def test_run_resampling_widens_intervals_when_points_of_a_run_share_an_error():
    rng = np.random.default_rng(12)
    N = np.repeat(np.geomspace(5e7, 5e9, 10), 8)
    D = np.tile(np.geomspace(1e9, 1e11, 8), 10)
    runs = np.repeat(np.arange(10), 8)
    run_error = rng.normal(0, 1e-2, 10)[runs]
    y = (1.8 + 480 * N ** -0.35 + 2100 * D ** -0.37) * np.exp(run_error + rng.normal(0, 1e-3, N.size))
    X = {"params": N, "tokens": D}
    by_runs = bootstrap("chinchilla", X, y, runs, n_resamples=100, seed=0)
    by_points = bootstrap("chinchilla", X, y, None, n_resamples=100, seed=0, fit=by_runs.fit)
    assert by_runs.n_groups == 10 and by_points.n_groups == 80
    width = {k: np.subtract(*by_runs.interval(k)[::-1]) / np.subtract(*by_points.interval(k)[::-1])
             for k in ("alpha", "E")}
    assert width["alpha"] > 1.5 and width["E"] > 1.5


def test_predict_interval_and_fixed_parameters():
    true, X, y, _ = simulate("power_law_flops", seed=13, noise=5e-3)
    boot = bootstrap("power_law_flops", X, y, n_resamples=60, seed=1, fixed={"E": true["E"]})
    assert np.all(boot.draws[:, boot.param_names.index("E")] == true["E"])
    Xf = {"flops": np.array([1e24, 1e25])}
    med, lo, hi = boot.predict_interval(Xf)
    assert np.all(lo <= med) and np.all(med <= hi)
    assert np.all(hi - lo > 0)
    np.testing.assert_allclose(med, boot.fit.predict(Xf), rtol=5e-3)
