"""Checks on a study's fits: can a user trust them, and may forecasts be made from them?

- fit_converged (blocking): every target that was fitted has at least one law that converged
  without a blocking flag (scaling.flags.BLOCKING_FLAGS);
- fits_completed: every planned fit ran; a failed one (too few points, a bad bound, a law that
  fails on the data) is named with its study, group, law and parameter, and the others go on;
- params_within_bounds: no fitted parameter sits on a bound of its box;
- residuals_small: rms of log residuals <= max_rmse;
- intervals_reasonable: no parameter is flagged not_identified (interval at a bound, more than
  10x wide, or on a flat direction), and every free parameter not fitted in log scale has a 95%
  interval no wider than max_relative_ci_width x |estimate| (log-scale coefficients such as A and
  B are judged by the 10x span instead);
- backtest_error_small: mean |relative error| on held-out runs <= max_backtest_error.
"""

from __future__ import annotations

from dataclasses import dataclass

from scaling.plan.run import FitFailure, GroupFit


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


def fit_checks(fits: list[GroupFit], thresholds: dict[str, float],
               failures: list[FitFailure] | None = None) -> list[FitCheck]:
    out = []
    by_target: dict[str, list[GroupFit]] = {}
    for g in fits:
        by_target.setdefault((g.plan.target, g.data.group), []).append(g)
    dead = [f"{t} [{grp}]" if grp else t for (t, grp), gs in by_target.items() if not any(g.usable for g in gs)]
    unusable = [f"{_label(g)}: {','.join(g.fit.flags) or g.fit.message}" for g in fits if not g.usable]
    if not fits and failures:
        dead = ["any target: every planned fit failed"]
    out.append(FitCheck(
        "fit_converged", not dead,
        (f"no usable fit for {dead}; " if dead else "every target has a usable fit; ")
        + (f"unusable: {unusable}" if unusable else "all fits converged without blocking flags"),
        blocking=True, observed=len(dead), threshold=0))
    failures = failures or []
    out.append(FitCheck(
        "fits_completed", not failures,
        f"{len(failures)} planned fit(s) failed, the others ran: " + "; ".join(f.message for f in failures)
        if failures else "every planned fit ran", observed=len(failures), threshold=0))
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
        wide += [f"{_label(g)}: {f}" for f in g.fit.flags if f.startswith("not_identified:")]
        fixed = g.fit.settings.get("fixed") or {}
        for p in g.fit.law.params:
            if p.log or p.name in fixed or f"not_identified:{p.name}" in g.fit.flags:
                continue
            lo, hi = g.boot.interval(p.name)
            est = abs(g.fit.params[p.name]) or 1e-12
            widths.append((hi - lo) / est)
            if (hi - lo) / est > thresholds["max_relative_ci_width"]:
                wide.append(f"{_label(g)}: {p.name} in [{lo:.3g}, {hi:.3g}]")
    out.append(FitCheck("intervals_reasonable", not wide,
                        f"parameters not pinned down (intervals wider than {thresholds['max_relative_ci_width']}x "
                        f"the estimate, over 10x, or at a bound): {wide}" if wide
                        else "every parameter's 95% interval is narrower than the threshold",
                        observed=max(widths, default=None), threshold=thresholds["max_relative_ci_width"]))
    bad_bt, errors = [], []
    for g in fits:
        rows = g.primary_backtest_rows
        if rows and g.usable:
            err = sum(abs(r["rel_error"]) for r in rows) / len(rows)
            errors.append(err)
            if err > thresholds["max_backtest_error"]:
                bad_bt.append(f"{_label(g)}: {err:.1%}")
    out.append(FitCheck("backtest_error_small", not bad_bt,
                        f"mean held-out error above {thresholds['max_backtest_error']:.0%}: {bad_bt}" if bad_bt
                        else "held-out errors within the threshold",
                        observed=max(errors, default=None), threshold=thresholds["max_backtest_error"]))
    return out
