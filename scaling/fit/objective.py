"""Per-point losses on residuals: Huber, least squares, asymmetric Huber.

Residuals are r = log(pred) - log(y) in ``"log"`` space (Hoffmann et al. 2022; Besiroglu et al.
2024) or r = pred - y in ``"linear"`` space. The objective is the weighted sum of per-point losses:

- ``huber``: r²/2 for |r| <= delta, delta·(|r| - delta/2) beyond (``scipy.special.huber``);
- ``least_squares``: r²/2;
- ``asymmetric``: Huber scaled by ``tau`` where the law over-predicts (r > 0) and by ``1 - tau``
  where it under-predicts, so ``tau < 0.5`` penalises under-prediction of a loss more.
"""

from __future__ import annotations

import numpy as np

OBJECTIVES = ("huber", "least_squares", "asymmetric")
SPACES = ("log", "linear")


def check_objective(objective: str, delta: float, space: str, tau: float) -> None:
    if objective not in OBJECTIVES:
        raise ValueError(f"expected objective in {OBJECTIVES}, got {objective!r}")
    if space not in SPACES:
        raise ValueError(f"expected space in {SPACES}, got {space!r}")
    if not delta > 0:
        raise ValueError(f"expected a positive Huber delta, got {delta}")
    if not 0.0 < tau < 1.0:
        raise ValueError(f"expected tau in (0, 1), got {tau}")


def point_loss(r: np.ndarray, objective: str, delta: float, tau: float = 0.5):
    """Per-point loss and its derivative in r: returns ``(rho(r), rho'(r))``."""
    if objective == "least_squares":
        return 0.5 * r * r, r
    a = np.abs(r)
    inside = a <= delta
    rho = np.where(inside, 0.5 * r * r, delta * (a - 0.5 * delta))
    psi = np.where(inside, r, delta * np.sign(r))
    if objective == "asymmetric":
        s = np.where(r > 0, tau, 1.0 - tau)
        return s * rho, s * psi
    return rho, psi


def residuals(pred: np.ndarray, y: np.ndarray, space: str) -> np.ndarray:
    """r = log(pred) - log(y) (non-positive predictions are clamped) or pred - y."""
    if space == "log":
        return np.log(np.maximum(pred, 1e-300)) - np.log(y)
    return pred - y
