"""Checks on a study's fits: can a user trust them, and may forecasts be made from them?

- fit_converged (blocking): every target has at least one law that converged without a
  blocking flag (not_converged, exponent_implausible, coefficient_implausible);
- params_within_bounds: no fitted parameter sits on a bound of its box;
- residuals_small: rms of log residuals <= max_rmse;
- intervals_reasonable: exponents' 95% interval width <= max_relative_ci_width x |estimate|;
- backtest_error_small: mean |relative error| on held-out runs <= max_backtest_error.
"""

from __future__ import annotations

from dataclasses import dataclass

from scaling.plan.run import GroupFit


@dataclass
class FitCheck:
    name: str
    passed: bool
    summary: str
    blocking: bool = False
    observed: float | None = None   # the worst value the check saw (a count, an rms, a width, an error)
    threshold: float | None = None  # the value it must not exceed


def _label(g: GroupFit) -> str:
    return f"{g.fit.law.name}->{g.plan.target}" + (f" [{g.data.group}]" if g.data.group else "")


def fit_checks(fits: list[GroupFit], thresholds: dict[str, float]) -> list[FitCheck]:
    out = []
    by_target: dict[str, list[GroupFit]] = {}
    for g in fits:
        by_target.setdefault((g.plan.target, g.data.group), []).append(g)
    dead = [f"{t} [{grp}]" if grp else t for (t, grp), gs in by_target.items() if not any(g.usable for g in gs)]
    unusable = [f"{_label(g)}: {','.join(g.fit.flags) or g.fit.message}" for g in fits if not g.usable]
    out.append(FitCheck(
        "fit_converged", not dead,
        (f"no usable fit for {dead}; " if dead else "every target has a usable fit; ")
        + (f"unusable: {unusable}" if unusable else "all fits converged without blocking flags"),
        blocking=True, observed=len(dead), threshold=0))
    at_bound = [f"{_label(g)}: {f}" for g in fits for f in g.fit.flags if f.startswith("at_bound")]
    out.append(FitCheck("params_within_bounds", not at_bound,
                        f"parameters at a bound: {at_bound}" if at_bound else "no parameter at a bound",
                        observed=len(at_bound), threshold=0))
    rmse = [(_label(g), g.fit.diagnostics.get("rmse", 0.0)) for g in fits if g.usable]
    big = [f"{lab}: {v:.4f}" for lab, v in rmse if v > thresholds["max_rmse"]]
    out.append(FitCheck("residuals_small", not big,
                        f"rms residual above {thresholds['max_rmse']}: {big}" if big else
                        f"rms residual <= {thresholds['max_rmse']} for every usable fit",
                        observed=max((v for _, v in rmse), default=None), threshold=thresholds["max_rmse"]))
    wide, widths = [], []
    for g in fits:
        if g.boot is None or not g.usable:
            continue
        fixed = g.fit.settings.get("fixed") or {}
        for p in g.fit.law.params:
            if not p.exponent or p.name in fixed:
                continue
            lo, hi = g.boot.interval(p.name)
            est = abs(g.fit.params[p.name]) or 1e-12
            widths.append((hi - lo) / est)
            if (hi - lo) / est > thresholds["max_relative_ci_width"]:
                wide.append(f"{_label(g)}: {p.name} in [{lo:.3g}, {hi:.3g}]")
    out.append(FitCheck("intervals_reasonable", not wide,
                        f"intervals wider than {thresholds['max_relative_ci_width']}x the estimate: {wide}" if wide
                        else "every exponent's 95% interval is narrower than the threshold",
                        observed=max(widths, default=None), threshold=thresholds["max_relative_ci_width"]))
    bad_bt, errors = [], []
    for g in fits:
        if g.backtest_rows and g.usable:
            err = sum(abs(r["rel_error"]) for r in g.backtest_rows) / len(g.backtest_rows)
            errors.append(err)
            if err > thresholds["max_backtest_error"]:
                bad_bt.append(f"{_label(g)}: {err:.1%}")
    out.append(FitCheck("backtest_error_small", not bad_bt,
                        f"mean held-out error above {thresholds['max_backtest_error']:.0%}: {bad_bt}" if bad_bt
                        else "held-out errors within the threshold",
                        observed=max(errors, default=None), threshold=thresholds["max_backtest_error"]))
    return out
