"""Shared helpers: parameter draws from a bootstrap, percentile intervals, prediction intervals."""

from __future__ import annotations

from typing import Mapping

import numpy as np

from ..fit.bootstrap import BootstrapResult, percentile_interval  # noqa: F401  (the one interval helper)
from ..fit.calibration import IntervalCalibration
from ..fit.result import FitResult


def level_of(boot: BootstrapResult | None, level: float | None) -> float:
    lv = level if level is not None else (boot.level if boot is not None else 0.95)
    if not 0.0 < lv < 1.0:
        raise ValueError(f"expected a level in (0, 1), got {lv}")
    return float(lv)


def param_draws(boot: BootstrapResult) -> dict[str, np.ndarray]:
    """Finite bootstrap draws as ``{name: array}``."""
    return boot.params_draws()


def check_boot(fit: FitResult, boot: BootstrapResult | None) -> None:
    if boot is not None and boot.law.name != fit.law.name:
        raise ValueError(f"bootstrap of law {boot.law.name!r} does not match the fit of {fit.law.name!r}")


def predict_with_interval(fit: FitResult, boot: BootstrapResult | None, X: Mapping[str, np.ndarray],
                          level: float):
    """Point prediction from the fit and the bootstrap percentile interval (nan without draws)."""
    pred = np.atleast_1d(fit.predict(X))
    if boot is None:
        nan = np.full(pred.shape, np.nan)
        return pred, nan, nan
    _, lo, hi = boot.predict_interval(X, level)
    return pred, np.atleast_1d(lo), np.atleast_1d(hi)


def calibration_of(fit: FitResult) -> IntervalCalibration | None:
    """The fit's rollout-calibrated interval inflation (``fit.settings['interval_calibration']``), if any."""
    return IntervalCalibration.from_dict((fit.settings or {}).get("interval_calibration"))


def calibrated(fit: FitResult, predicted, lo, hi, X: Mapping[str, np.ndarray], compute):
    """(lo, hi) widened to the hull with the fit's calibrated band at points ``X`` of compute ``compute``
    (model-form error growing with the extrapolation, and the local scatter of runs); unchanged when
    the fit has no calibration or a variable of its law is missing from ``X``."""
    cal = calibration_of(fit)
    if cal is None or any(v not in X for v in cal.variables):
        return lo, hi
    with np.errstate(all="ignore"):
        return cal.widen(predicted, lo, hi, X, compute)
