"""Constrained allocations: a cap on unique tokens (repeated data, Muennighoff et al. 2023) and a
fixed model size trained on more and more tokens."""

from __future__ import annotations

import numpy as np

from ..fit.bootstrap import BootstrapResult
from ..fit.result import FitResult
from .allocation import optimal_allocation
from .budgets import FlopsPerToken, budget_label, convention_name, six_n
from .draws import calibrated, check_boot, level_of, param_draws, percentile_interval, predict_with_interval
from .rows import ForecastResult, forecast_row


def data_constrained_forecast(fit: FitResult, boot: BootstrapResult | None, flops, unique_tokens: float, *,
                              max_observed_flops: float | None = None,
                              flops_per_token: FlopsPerToken | None = None, target: str = "loss",
                              level: float | None = None) -> ForecastResult:
    """Rows of kind ``data_constrained``: for each budget, the N minimizing the repeated-data law
    when at most ``unique_tokens`` (U_D) distinct tokens exist, the tokens D = C / flops_per_token(N),
    ``epochs`` = D / U_D and the predicted loss, each with bootstrap intervals. The fit must be of
    a law taking ``unique_tokens`` (``data_constrained``)."""
    if "unique_tokens" not in fit.law.variables:
        raise ValueError(f"a unique-token cap needs a law with 'unique_tokens' (data_constrained), "
                         f"got {fit.law.name!r}")
    U = float(unique_tokens)
    if not (np.isfinite(U) and U > 0):
        raise ValueError(f"expected a positive number of unique tokens, got {unique_tokens!r}")
    check_boot(fit, boot)
    lv = level_of(boot, level)
    C = np.atleast_1d(np.asarray(flops, dtype=float))
    best = optimal_allocation(fit.law, fit.params, C, flops_per_token=flops_per_token, unique_tokens=U)
    nan = np.full(C.size, np.nan)
    n_lo = n_hi = d_lo = d_hi = l_lo = l_hi = nan
    if boot is not None:
        dr = optimal_allocation(fit.law, param_draws(boot), C, flops_per_token=flops_per_token, unique_tokens=U)
        n_lo, n_hi = percentile_interval(dr.params, lv)
        d_lo, d_hi = percentile_interval(dr.tokens, lv)
        l_lo, l_hi = percentile_interval(dr.loss, lv)
    l_lo, l_hi = calibrated(fit, best.loss, l_lo, l_hi, {"params": best.params, "tokens": best.tokens,
                                                         "unique_tokens": np.minimum(best.tokens, U)}, C)
    rows = []
    for j, c in enumerate(C):
        N, D, L = best.params[j], best.tokens[j], best.loss[j]
        rows.append(forecast_row(
            law=fit.law.name, target=target, kind="data_constrained",
            name=f"{budget_label(c)}, {U:.3g} unique tokens", flops=c, params=N, tokens=D,
            tokens_per_param=D / N, epochs=D / U, params_ci_low=n_lo[j], params_ci_high=n_hi[j],
            tokens_ci_low=d_lo[j], tokens_ci_high=d_hi[j], predicted=L, ci_low=l_lo[j], ci_high=l_hi[j],
            extrapolation=(c / max_observed_flops) if max_observed_flops else None))
    messages = [f"budget {budget_label(c)}: the optimum is on the edge of the searched range"
                for c, e in zip(C, best.at_edge) if e]
    return ForecastResult(rows, settings={"level": lv, "unique_tokens": U,
                                          "flops_per_token": convention_name(flops_per_token)}, messages=messages)


def fixed_size_forecast(fit: FitResult, boot: BootstrapResult | None, params: float, tokens=None, *,
                        unique_tokens: float | None = None, max_observed_flops: float | None = None,
                        flops_per_token: FlopsPerToken | None = None, target: str = "loss",
                        level: float | None = None, name: str | None = None) -> ForecastResult:
    """Rows of kind ``fixed_size``: the predicted loss of a model of ``params`` parameters as its
    training tokens grow (default grid: 5, 10, 20, 40, 80, 160, 320 tokens per parameter). With
    ``unique_tokens`` the repeated-data law sees min(D, U_D) distinct tokens and ``epochs`` is D / U_D."""
    check_boot(fit, boot)
    lv = level_of(boot, level)
    N = float(params)
    if not (np.isfinite(N) and N > 0):
        raise ValueError(f"expected a positive model size, got {params!r}")
    D = N * np.array([5, 10, 20, 40, 80, 160, 320], dtype=float) if tokens is None else \
        np.atleast_1d(np.asarray(tokens, dtype=float))
    X = {"params": np.full(D.size, N), "tokens": D}
    if "unique_tokens" in fit.law.variables:
        X["unique_tokens"] = D if unique_tokens is None else np.minimum(D, float(unique_tokens))
    pred, lo, hi = predict_with_interval(fit, boot, X, lv)
    fpt = flops_per_token or six_n
    C = np.asarray(fpt(np.full(D.size, N)), dtype=float) * D
    lo, hi = calibrated(fit, pred, lo, hi, X, C)
    label = name or f"N={N:.3g}"
    rows = [forecast_row(
        law=fit.law.name, target=target, kind="fixed_size", name=f"{label}, D={d:.3g}", flops=C[j], params=N,
        tokens=d, tokens_per_param=d / N, epochs=(d / unique_tokens) if unique_tokens else None,
        predicted=pred[j], ci_low=lo[j], ci_high=hi[j],
        extrapolation=(C[j] / max_observed_flops) if max_observed_flops else None)
        for j, d in enumerate(D)]
    return ForecastResult(rows, settings={"level": lv, "flops_per_token": convention_name(flops_per_token)})
