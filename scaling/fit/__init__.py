"""Fitting scaling laws: global fits, bootstrap intervals, hold-out backtests, isoFLOP analysis."""

from .backtest import BacktestResult, backtest, holdout_runs
from .bootstrap import BootstrapResult, bootstrap
from .diagnostics import Assessment, assess
from .fitter import fit_law
from .isoflop import ApproachResult, IsoflopResult, PowerFit, isoflop
from .objective import OBJECTIVES, SPACES
from .result import FitResult

__all__ = [
    "fit_law", "FitResult", "bootstrap", "BootstrapResult", "backtest", "BacktestResult",
    "holdout_runs", "isoflop", "IsoflopResult", "ApproachResult", "PowerFit", "assess", "Assessment", "OBJECTIVES", "SPACES",
]
