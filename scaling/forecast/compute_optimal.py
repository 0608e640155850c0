"""Compute-optimal forecasts: for each budget C, N_opt, D_opt, D/N and the loss at the optimum,
with percentile intervals from evaluating every bootstrap draw (Hoffmann et al. 2022 approach 3;
intervals as Besiroglu et al. 2024)."""

from __future__ import annotations

import numpy as np

from ..fit.bootstrap import BootstrapResult
from ..fit.result import FitResult
from .allocation import optimal_allocation
from .budgets import FlopsPerToken, budget_grid, budget_label, convention_name
from .draws import calibrated, check_boot, level_of, param_draws, percentile_interval
from .rows import ForecastResult, forecast_row


def compute_optimal_forecast(fit: FitResult, boot: BootstrapResult | None = None, *,
                             max_observed_flops: float, budgets=None, n_budgets: int = 7,
                             factor: float = 1000.0, flops_per_token: FlopsPerToken | None = None,
                             target: str = "loss", level: float | None = None,
                             method: str = "auto") -> ForecastResult:
    """Rows of kind ``compute_optimal``, one per budget.

    budgets: FLOPs to forecast at (default: ``n_budgets`` log-spaced from ``max_observed_flops``
    to ``factor`` times it). flops_per_token: ``N -> FLOPs per token`` (default 6N; see
    ``transformer_flops_per_token``). ``predicted``, ``params`` and ``tokens`` come from the
    fit; ``ci_low``/``ci_high``, ``params_ci_*`` and ``tokens_ci_*`` are percentiles over the
    draws of ``boot`` (left empty without one), the loss interval widened by the fit's rollout
    calibration (``scaling.fit.calibration``). ``extrapolation`` = budget / max_observed_flops.
    """
    check_boot(fit, boot)
    lv = level_of(boot, level)
    C = budget_grid(max_observed_flops, factor=factor, n=n_budgets) if budgets is None else \
        np.atleast_1d(np.asarray(budgets, dtype=float))
    best = optimal_allocation(fit.law, fit.params, C, flops_per_token=flops_per_token, method=method)
    messages = [f"budget {budget_label(c)}: the optimum is on the edge of the searched range"
                for c, e in zip(C, np.atleast_1d(best.at_edge)) if e]
    nan = np.full(C.size, np.nan)
    n_lo = n_hi = d_lo = d_hi = l_lo = l_hi = nan
    if boot is not None:
        draws = optimal_allocation(fit.law, param_draws(boot), C, flops_per_token=flops_per_token, method=method)
        n_lo, n_hi = percentile_interval(draws.params, lv)
        d_lo, d_hi = percentile_interval(draws.tokens, lv)
        l_lo, l_hi = percentile_interval(draws.loss, lv)
    l_lo, l_hi = calibrated(fit, np.atleast_1d(best.loss), l_lo, l_hi,
                            {"params": np.atleast_1d(best.params), "tokens": np.atleast_1d(best.tokens)}, C)
    rows = []
    for j, c in enumerate(C):
        N, D, L = float(np.atleast_1d(best.params)[j]), float(np.atleast_1d(best.tokens)[j]), \
            float(np.atleast_1d(best.loss)[j])
        rows.append(forecast_row(
            law=fit.law.name, target=target, kind="compute_optimal", name=budget_label(c), flops=c,
            params=N, tokens=D, tokens_per_param=D / N, params_ci_low=n_lo[j], params_ci_high=n_hi[j],
            tokens_ci_low=d_lo[j], tokens_ci_high=d_hi[j], predicted=L, ci_low=l_lo[j], ci_high=l_hi[j],
            extrapolation=c / max_observed_flops))
    return ForecastResult(rows, settings={"level": lv, "flops_per_token": convention_name(flops_per_token),
                                          "method": best.method, "max_observed_flops": float(max_observed_flops),
                                          "n_draws": 0 if boot is None else boot.n_resamples}, messages=messages)


def optimal_exponents(fit: FitResult, boot: BootstrapResult | None = None, *, level: float | None = None) -> dict:
    """Chinchilla's allocation exponents a = beta/(alpha+beta) (N_opt ∝ C^a) and
    b = alpha/(alpha+beta) (D_opt ∝ C^b), with bootstrap intervals when ``boot`` is given."""
    if fit.law.name != "chinchilla":
        raise ValueError(f"exponents in closed form need the chinchilla law, got {fit.law.name!r}")
    lv = level_of(boot, level)
    out = {}
    for key, fn in (("a", lambda p: p["beta"] / (p["alpha"] + p["beta"])),
                    ("b", lambda p: p["alpha"] / (p["alpha"] + p["beta"]))):
        if boot is None:
            out[key] = (float(fn(fit.params)), float("nan"), float("nan"))
        else:
            out[key] = boot.derived(fn, lv)
    return out
