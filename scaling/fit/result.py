"""The outcome of a fit: values, objective, convergence, flags, diagnostics and settings."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

import numpy as np

from ..laws.base import Law


@dataclass
class FitResult:
    """A fitted law (like ``scipy.optimize.OptimizeResult``, with scaling-law diagnostics).

    ``params`` holds every parameter (free and fixed); ``objective`` is the weighted sum of
    per-point losses at ``params``; ``diagnostics`` has ``rmse`` (of residuals in the fit space),
    ``max_abs_rel_error``, ``trend`` (per variable: R², p-value and slope of residuals regressed on
    a quadratic in the variable's log) and
    ``hessian_ratio``; ``settings`` records objective, delta, space, fixed, bounds, tau.
    """

    law: Law
    params: dict
    objective: float
    converged: bool
    message: str
    n_points: int
    n_runs: int
    n_starts: int
    flags: list[str] = field(default_factory=list)
    diagnostics: dict = field(default_factory=dict)
    settings: dict = field(default_factory=dict)
    free: tuple[str, ...] = ()
    n_iterations: int = 0

    def predict(self, X: Mapping[str, np.ndarray]) -> np.ndarray:
        """The fitted law evaluated on ``X``."""
        return self.law.predict(self.params, X)

    def to_dict(self) -> dict:
        """A JSON-friendly summary (law name, parameters, objective, flags, diagnostics, settings)."""
        return {
            "law": self.law.name, "formula": self.law.formula, "params": dict(self.params),
            "objective": self.objective, "converged": self.converged, "message": self.message,
            "n_points": self.n_points, "n_runs": self.n_runs, "n_starts": self.n_starts,
            "flags": list(self.flags), "diagnostics": self.diagnostics,
            "settings": {k: (dict(v) if isinstance(v, Mapping) else v) for k, v in self.settings.items()},
        }

    def __repr__(self) -> str:
        vals = ", ".join(f"{k}={v:.6g}" for k, v in self.params.items())
        return (f"FitResult({self.law.name}: {vals}; objective={self.objective:.6g}, "
                f"converged={self.converged}, flags={self.flags})")
