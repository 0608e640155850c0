"""Forecasts from fitted laws: compute-optimal allocations, named target runs, constrained
allocations, two-step downstream accuracy, and law rankings from backtests.

Every forecast function returns a ``ForecastResult`` whose ``rows`` follow the ``forecasts``
table (``FORECAST_COLUMNS``; the caller adds ``study`` and ``group_name``).
"""

from .allocation import Allocation, optimal_allocation
from .budgets import budget_grid, six_n, transformer_flops_per_token
from .compute_optimal import compute_optimal_forecast, optimal_exponents
from .constrained import data_constrained_forecast, fixed_size_forecast
from .downstream import TwoStepFit, TwoStepPrediction, downstream_forecast, fit_two_step
from .ranking import best_laws, mark_recommended, severe_flags, summarize_backtests
from .report import markdown_table
from .rows import FORECAST_COLUMNS, ForecastResult, forecast_row
from .targets import target_run_forecast

__all__ = [
    "Allocation", "optimal_allocation", "budget_grid", "six_n", "transformer_flops_per_token",
    "compute_optimal_forecast", "optimal_exponents", "data_constrained_forecast", "fixed_size_forecast",
    "TwoStepFit", "TwoStepPrediction", "fit_two_step", "downstream_forecast",
    "summarize_backtests", "mark_recommended", "best_laws", "severe_flags", "markdown_table",
    "FORECAST_COLUMNS", "ForecastResult", "forecast_row", "target_run_forecast",
]
