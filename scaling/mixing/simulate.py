"""Random proxy-run mixtures for simulation studies and tests.

Like RegMix's sweep (Liu et al. 2024), weights are drawn from a Dirichlet and a share of
them is set to zero, so that domains are often left out entirely; rows are renormalized.
"""

from __future__ import annotations

import numpy as np


def random_mixtures(
    n_runs: int, n_domains: int, *, seed: int = 0, concentration: float = 1.0, zero_fraction: float = 0.0
) -> np.ndarray:
    """(n_runs, n_domains) rows on the simplex; each weight is zeroed with ``zero_fraction``
    probability (never a whole row)."""
    rng = np.random.default_rng(seed)
    w = rng.dirichlet(np.full(n_domains, concentration), size=n_runs)
    if zero_fraction > 0:
        keep = rng.random(w.shape) >= zero_fraction
        keep[np.arange(n_runs), rng.integers(0, n_domains, n_runs)] = True
        w = w * keep
    return w / w.sum(axis=1, keepdims=True)
