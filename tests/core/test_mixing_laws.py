"""Mixing laws recover planted parameters on simulated sweeps."""

import numpy as np
import pytest

from scaling.errors import FitError, SpecError
from scaling.mixing import (
    YE_EXP,
    YE_EXP_LOG,
    bimix_loss,
    fit_bimix,
    fit_decay,
    fit_mixing_law,
    fit_mixing_study,
    get_mixing_law,
    match_own_domains,
    nested_mixing_prediction,
    random_mixtures,
)

DOMAINS = ["web", "code", "books", "math", "wiki"]


def _ye_sweep(n_runs, seed, noise):
    theta = np.array([2.1, -1.2, 0.6, -0.4, 0.9, -0.2])  # c, t_1..t_5
    w = random_mixtures(n_runs, 5, seed=seed, zero_fraction=0.3)
    rng = np.random.default_rng(seed + 1)
    return theta, w, YE_EXP.predict(theta, w) + rng.normal(0, noise, n_runs)


def test_ye_exp_recovers_planted_parameters_and_bootstrap_covers_them():
    theta, w, y = _ye_sweep(300, 0, 0.003)
    fit = fit_mixing_law(YE_EXP, w, y, DOMAINS)
    assert fit.converged
    assert fit.param_names == ("c", "t[web]", "t[code]", "t[books]", "t[math]", "t[wiki]")
    np.testing.assert_allclose(fit.params, theta, atol=0.03)
    res = fit_mixing_study(w, y[:, None], DOMAINS, ["web_loss"], laws=("ye_exp",), n_resamples=200, seed=3)
    assert (res.n_train, res.n_test, res.heldout_source) == (225, 75, "seeded split (0.25)")
    assert res.heldout[("ye_exp", "web_loss")].spearman > 0.99
    tf = res.fits[("ye_exp", "web_loss")]
    sd = np.nanstd(tf.draws, axis=0)
    assert tf.n_failed == 0 and np.all(sd > 0)
    assert np.all(np.abs(tf.fit.params - theta) < 4 * sd)  # planted values within 4 bootstrap s.e.


def test_ye_exp_log_recovers_planted_power_factors():
    theta = np.r_[1.5, [-0.5, 0.2, 0.1, -0.3, 0.4], [-0.08, -0.02, 0.0, -0.05, -0.01]]
    w = random_mixtures(400, 5, seed=5, zero_fraction=0.3)
    y = YE_EXP_LOG.predict(theta, w) + np.random.default_rng(6).normal(0, 0.002, 400)
    fit = fit_mixing_law(YE_EXP_LOG, w, y, DOMAINS, ridge=0.0)
    np.testing.assert_allclose(fit.params[6:], theta[6:], atol=0.01)  # s_j
    np.testing.assert_allclose(fit.params[:6], theta[:6], atol=0.08)


def test_law_gradients_match_finite_differences():
    w = random_mixtures(4, 5, seed=9, zero_fraction=0.2)
    rng = np.random.default_rng(2)
    for name, own in (("linear", None), ("ye_exp", None), ("ye_exp_own", 2), ("ye_exp_log", None)):
        law = get_mixing_law(name)
        theta = rng.normal(0, 0.5, len(law.param_names(DOMAINS, own)))
        g = law.gradient(theta, w, own)
        h = 1e-6
        for j in range(5):
            dw = np.zeros(5)
            dw[j] = h
            fd = (law.predict(theta, w + dw, own) - law.predict(theta, w - dw, own)) / (2 * h)
            np.testing.assert_allclose(g[:, j], fd, rtol=1e-5, atol=1e-7)


def test_too_few_runs_is_a_fit_error():
    theta, w, y = _ye_sweep(5, 0, 0.0)
    with pytest.raises(FitError, match="6 parameters and needs at least that many runs, got 5"):
        fit_mixing_law(YE_EXP, w, y, DOMAINS)


def test_bimix_recovers_planted_parameters_with_zero_weights():
    rng = np.random.default_rng(1)
    true = np.array([0.12, 0.35, 8.0, 2.5])  # alpha, beta, B, C
    r = np.r_[np.zeros(6), rng.uniform(0.0, 0.6, 74)]
    s = rng.choice([500, 1000, 2000, 4000, 8000], 80).astype(float)
    y = bimix_loss(true, r, s) * np.exp(rng.normal(0, 0.002, 80))
    fit = fit_bimix(r, s, y, n_resamples=50, seed=0)
    assert fit.converged and np.all(np.isfinite(fit.predict(r, s)))
    np.testing.assert_allclose(fit.params, true, rtol=0.08)
    lo, hi = np.nanpercentile(fit.draws, [0.5, 99.5], axis=0)
    assert np.all((lo <= true) & (true <= hi))
    with pytest.raises(FitError, match="vary both"):
        fit_bimix(r, np.full(80, 1000.0), y)


def test_decay_fit_is_exact_on_a_noiseless_power_law():
    x = np.geomspace(1e3, 1e5, 8)
    f = fit_decay(x, 2.0 + 40.0 * x**-0.45)
    assert (f.E, f.A, f.exponent) == pytest.approx((2.0, 40.0, 0.45), rel=1e-4)


def _nested_runs(noise, seed):
    """L(r, N, S) = E + A N^-a + B S^-b + exp(t.r): additive, so every stage is exact."""
    E, A, a, B, b = 1.7, 60.0, 0.3, 9.0, 0.4
    t = np.array([-1.0, 0.3, -0.4])
    mixtures = random_mixtures(14, 3, seed=seed)
    sizes = np.array([2e6, 5e6, 1.5e7, 4e7])
    steps = np.array([250, 500, 1000, 2000, 4000, 8000.0])
    rows = [(m, s, n) for m in range(14) for n in sizes for s in steps]
    ids, st, nn = (np.array(v) for v in zip(*rows))
    clean = E + A * nn**-a + B * st**-b + np.exp(mixtures[ids] @ t)
    losses = clean + np.random.default_rng(seed).normal(0, noise, len(clean))

    def truth(w, n_target, s_target):
        return E + A * n_target**-a + B * s_target**-b + np.exp(np.atleast_2d(w) @ t)

    return ids, st, nn, losses, dict(enumerate(mixtures)), t, truth


def test_nested_prediction_recovers_the_planted_mixing_law_at_target_scale():
    ids, st, nn, losses, mixtures, t, truth = _nested_runs(0.0005, 4)
    n_star, s_star = 1e9, 3e4
    pred = nested_mixing_prediction(ids, st, nn, losses, mixtures, ["a", "b", "c"],
                                    target_steps=s_star, target_params=n_star)
    c_true = truth(np.array([1.0, 0, 0]), n_star, s_star)[0] - np.exp(t[0])
    assert pred.fit.params[0] == pytest.approx(c_true, abs=0.02)
    np.testing.assert_allclose(pred.fit.params[1:], t, atol=0.05)
    new = random_mixtures(20, 3, seed=99)
    err_nested = np.abs(pred.predict(new) - truth(new, n_star, s_star))
    # the naive alternative: a mixing law on the largest proxies' final losses
    big = (nn == nn.max()) & (st == st.max())
    naive = fit_mixing_law(YE_EXP, np.array([mixtures[i] for i in ids[big]]), losses[big], ["a", "b", "c"])
    err_naive = np.abs(YE_EXP.predict(naive.params, new) - truth(new, n_star, s_star))
    assert err_nested.max() < 0.02 < err_naive.min()


def test_nested_prediction_needs_three_sizes():
    ids, st, nn, losses, mixtures, _, _ = _nested_runs(0.0, 4)
    keep = nn <= 5e6
    with pytest.raises(FitError, match="size law: a decay law needs at least 3 distinct x values, got 2"):
        nested_mixing_prediction(ids[keep], st[keep], nn[keep], losses[keep], mixtures, ["a", "b", "c"],
                                 target_steps=1e4, target_params=1e9)


def test_own_domains_match_by_name_or_explicitly():
    domains = ["train_the_pile_pubmed_central", "train_the_pile_pubmed_abstracts", "train_the_pile_pile_cc"]
    targets = ["metric/the_pile_pubmed_abstracts_val_loss", "metric/the_pile_pile_cc_val_loss", "c4_en"]
    assert match_own_domains(domains, targets) == {targets[0]: 1, targets[1]: 2, "c4_en": None}
    assert match_own_domains(domains, targets, {"c4_en": domains[2]})["c4_en"] == 2
    with pytest.raises(SpecError, match="own domain 'web' of target 'c4_en' is not a train domain"):
        match_own_domains(domains, targets, {"c4_en": "web"})
    w = random_mixtures(40, 3, seed=0)
    with pytest.raises(FitError, match="needs the train domain matching target 'c4_en'"):
        fit_mixing_study(w, np.ones((40, 1)), domains, ["c4_en"], laws=("ye_exp_own",), n_resamples=2)
