"""Published fits reproduced to the digits stated in the data sets' SOURCE.md files."""

import numpy as np
import pytest

from scaling.fit import assess, fit_law
from scaling.fit.objective import point_loss
from fit_cases import chinchilla_epoch, gemstone, gemstone_params

EPOCH = {"A": 477.84, "B": 2143.86, "E": 1.8172, "alpha": 0.34731, "beta": 0.36718}


def test_chinchilla_epoch_replication(shared_data):
    X, y = chinchilla_epoch(shared_data)
    assert y.size == 240
    fit = fit_law("chinchilla", X, y)
    assert fit.objective <= 1.01828e-3
    for k, v in EPOCH.items():
        assert fit.params[k] == pytest.approx(v, rel=1e-3), k
    assert fit.converged and fit.flags == []
    assert fit.n_points == 240 and fit.n_runs == 240
    # the objective is the sum of scipy-style Huber(1e-3) over log residuals
    r = np.log(fit.predict(X)) - np.log(y)
    assert np.sum(point_loss(r, "huber", 1e-3)[0]) == pytest.approx(fit.objective, rel=1e-12)


def test_refit_is_deterministic(shared_data):
    X, y = chinchilla_epoch(shared_data)
    a, b = fit_law("chinchilla", X, y), fit_law("chinchilla", X, y)
    assert a.params == b.params and a.objective == b.objective


def test_gemstone_hot_replication(shared_data):
    X, y, runs, _ = gemstone(shared_data, "hot")
    fit = fit_law("chinchilla", X, y, runs=runs)
    for k, v in {"alpha": 0.2929, "beta": 0.7129, "E": 2.143}.items():
        assert fit.params[k] == pytest.approx(v, rel=1e-2), k
    # the published log-coefficients (a, b, e) = (5.36134, 15.41599, 0.76226) to 3 decimals
    assert np.log(fit.params["A"]) == pytest.approx(5.36134, abs=5e-3)
    assert np.log(fit.params["B"]) == pytest.approx(15.41599, abs=5e-3)
    assert fit.n_runs == 22 and fit.flags == []


def test_degenerate_published_gemstone_fit_is_flagged_and_good_one_is_not(shared_data):
    X, y, _, width = gemstone(shared_data, "hot_100b+")
    bad = gemstone_params(shared_data, "hot_100b+_512x")
    sel = width == 512
    Xs = {k: v[sel] for k, v in X.items()}
    a = assess("chinchilla", bad, Xs, y[sel])
    assert a.objective == pytest.approx(bad["objective"], rel=1e-5)  # the published data subset
    assert "exponent_implausible:alpha" in a.flags and "coefficient_implausible:A" in a.flags
    assert a.degenerate

    Xh, yh, _, _ = gemstone(shared_data, "hot")
    good = gemstone_params(shared_data, "hot")
    g = assess("chinchilla", good, Xh, yh)
    assert g.objective == pytest.approx(good["objective"], rel=1e-5)
    assert g.flags == [] and not g.degenerate


def test_our_fit_of_the_degenerate_subset_flags_itself(shared_data):
    X, y, runs, width = gemstone(shared_data, "hot_100b+")
    sel = width == 512
    fit = fit_law("chinchilla", {k: v[sel] for k, v in X.items()}, y[sel], runs=runs[sel])
    assert fit.objective <= gemstone_params(shared_data, "hot_100b+_512x")["objective"]
    assert any(f.startswith("exponent_implausible") for f in fit.flags)
