"""Held-out scores for mixing laws: Spearman rank correlation and mean absolute error.

RegMix (Liu et al. 2024) ranks candidate mixtures, so the rank correlation between
predicted and observed held-out losses is the headline score; MAE says how far off the
predicted values are.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class HeldoutScore:
    """Score of one law on one target domain over ``n_test`` held-out runs."""

    law: str
    target: str
    spearman: float
    mae: float
    n_test: int


def score_heldout(law: str, target: str, predicted: np.ndarray, observed: np.ndarray) -> HeldoutScore:
    """Spearman rho and MAE of predicted vs observed held-out losses."""
    from scipy.stats import spearmanr  # here, not at the top: scipy.stats takes a third of a second to import

    predicted = np.asarray(predicted, dtype=float)
    observed = np.asarray(observed, dtype=float)
    if len(observed) < 3:
        rho = float("nan")
    else:
        rho = float(spearmanr(predicted, observed).statistic)
    return HeldoutScore(law, target, rho, float(np.mean(np.abs(predicted - observed))), len(observed))


def heldout_metrics(predicted: np.ndarray, observed: np.ndarray) -> dict:
    """Every score of a held-out split: n, Spearman rho, Kendall tau, MAE, RMSE and the mean
    signed error (bias); rank correlations are NaN below 3 mixtures."""
    from scipy.stats import kendalltau, spearmanr

    predicted = np.asarray(predicted, dtype=float)
    observed = np.asarray(observed, dtype=float)
    n = int(observed.size)
    few = n < 3 or np.ptp(observed) == 0 or np.ptp(predicted) == 0
    err = predicted - observed
    return {"n": n,
            "spearman": float("nan") if few else float(spearmanr(predicted, observed).statistic),
            "kendall": float("nan") if few else float(kendalltau(predicted, observed).statistic),
            "mae": float(np.mean(np.abs(err))) if n else float("nan"),
            "rmse": float(np.sqrt(np.mean(err ** 2))) if n else float("nan"),
            "bias": float(np.mean(err)) if n else float("nan")}


def seeded_split(n_runs: int, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, test) of a seeded random split; test gets round(test_fraction * n) runs."""
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"expected test_fraction in (0, 1), got {test_fraction}")
    order = np.random.default_rng(seed).permutation(n_runs)
    n_test = max(1, int(round(test_fraction * n_runs)))
    return np.sort(order[n_test:]), np.sort(order[:n_test])


COLLAPSE_RATIO = 0.1
COLLAPSE_ALPHA = 0.05


def collapsed(predicted: np.ndarray, observed: np.ndarray, ratio: float = COLLAPSE_RATIO,
              n_params: int | None = None, alpha: float = COLLAPSE_ALPHA) -> bool:
    """True when a law is no better than a constant over the fitted mixtures: its predictions barely
    vary (standard deviation below ``ratio`` times that of the observed losses: it explains under ~1%
    of the variance and ranks mixtures by noise), or, given its number of fitted parameters
    ``n_params``, the share of variance it explains is no more than that many parameters fit to noise
    (the F-test of the law against a constant, R² = 1 - SSE/SST with n_params - 1 and n - n_params
    degrees of freedom, has p-value >= ``alpha``; a law with many parameters over few mixtures
    follows the noise without collapsing to a constant). Flagged ``mixing_constant``
    (``scaling.flags.FLAGS``)."""
    predicted = np.asarray(predicted, dtype=float)
    observed = np.asarray(observed, dtype=float)
    sd_obs = float(np.std(observed))
    if not np.all(np.isfinite(predicted)):
        return True
    if not sd_obs > 0:
        return False
    if float(np.std(predicted)) < ratio * sd_obs:
        return True
    n = observed.size
    if n_params is None or n_params < 2 or n <= n_params:
        return False
    r2 = 1.0 - float(np.sum((observed - predicted) ** 2)) / float(np.sum((observed - observed.mean()) ** 2))
    if r2 <= 0.0:
        return True
    if r2 >= 1.0:
        return False
    f = (r2 / (n_params - 1)) / ((1.0 - r2) / (n - n_params))
    from scipy.stats import f as f_dist

    return float(f_dist.sf(f, n_params - 1, n - n_params)) >= alpha
