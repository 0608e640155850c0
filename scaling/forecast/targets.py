"""Forecasts for named runs of given size N and tokens D (any tokens per parameter, over-trained
runs included), with the observed value and relative error when the run exists."""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from ..errors import SpecError
from ..fit.bootstrap import BootstrapResult
from ..fit.result import FitResult
from .budgets import FlopsPerToken, convention_name, six_n
from .draws import calibrated, check_boot, level_of, predict_with_interval
from .rows import ForecastResult, forecast_row, relative_error


def _target_inputs(law, targets):
    names, X = [], {v: [] for v in law.variables}
    actual = []
    for i, t in enumerate(targets):
        name = t.get("name", f"target {i}")
        for v in law.variables:
            if v == "unique_tokens" and v not in t:
                X[v].append(t["tokens"] if "tokens" in t else np.nan)
                continue
            if v not in t:
                raise SpecError(f"target {name!r} needs {v!r} for law {law.name!r}; it has {sorted(t)}",
                                row=i, field=v)
            val = float(t[v])
            if not (np.isfinite(val) and val > 0):
                raise SpecError(f"expected a positive finite {v}, got {t[v]!r}", row=i, field=v)
            X[v].append(val)
        names.append(str(name))
        actual.append(None if t.get("actual") is None else float(t["actual"]))
    return names, {k: np.asarray(v, dtype=float) for k, v in X.items()}, actual


def target_run_forecast(fit: FitResult, boot: BootstrapResult | None, targets: Sequence[Mapping], *,
                        max_observed_flops: float | None = None,
                        flops_per_token: FlopsPerToken | None = None, target: str = "loss",
                        level: float | None = None) -> ForecastResult:
    """Rows of kind ``target_run``: one per ``targets`` entry, a mapping with ``name``, the law's
    variables (``params``, ``tokens``, and ``unique_tokens`` for the repeated-data law, default
    ``tokens``) and optionally ``actual`` (the observed value). ``flops`` = flops_per_token(N)·D;
    ``extrapolation`` = flops / max_observed_flops when that is given."""
    check_boot(fit, boot)
    lv = level_of(boot, level)
    names, X, actual = _target_inputs(fit.law, targets)
    pred, lo, hi = predict_with_interval(fit, boot, X, lv)
    fpt = flops_per_token or six_n
    if "params" in X and "tokens" in X:
        lo, hi = calibrated(fit, pred, lo, hi, X, np.asarray(fpt(X["params"]), dtype=float) * X["tokens"])
    elif "flops" in X:
        lo, hi = calibrated(fit, pred, lo, hi, X, X["flops"])
    rows = []
    for i, name in enumerate(names):
        N = X["params"][i] if "params" in X else None
        D = X["tokens"][i] if "tokens" in X else None
        C = float(np.asarray(fpt(N)) * D) if N is not None and D is not None else None
        epochs = D / X["unique_tokens"][i] if "unique_tokens" in X and D is not None else None
        rows.append(forecast_row(
            law=fit.law.name, target=target, kind="target_run", name=name, flops=C, params=N, tokens=D,
            tokens_per_param=(D / N) if N is not None and D is not None else None, epochs=epochs,
            predicted=pred[i], ci_low=lo[i], ci_high=hi[i],
            extrapolation=(C / max_observed_flops) if C is not None and max_observed_flops else None,
            actual=actual[i], rel_error=relative_error(pred[i], actual[i])))
    return ForecastResult(rows, settings={"level": lv, "flops_per_token": convention_name(flops_per_token)})
