"""Learning-rate schedules and the annealing areas of Tissue et al. 2024.

Schedules give the LR used by update i = 1..steps:
- warmup: eta_i = peak * i / warmup for i <= warmup;
- cosine: eta_i = peak * (r + (1 - r) * (1 + cos(pi * p)) / 2), p = (i - warmup) / (steps - warmup),
  r the final ratio (0.1), so the last step runs at 10% of peak;
- wsd (warmup-stable-decay): peak until the last `decay_fraction` of steps, then linear to zero.

Annealing areas ("Scaling Law with Learning Rate Annealing", Tissue et al. 2024), with
eta normalised by its peak:
- S1(s) = sum_{i<=s} eta_i (forward area);
- S2(s) = sum_{i<=s} m_i, m_i = lambda * m_{i-1} + (eta_{i-1} - eta_i) (annealing area with
  momentum); the warmup contributes nothing to S2.
"""

from __future__ import annotations

import numpy as np


def lr_schedule(
    kind: str,
    steps: int,
    warmup: int,
    peak: float,
    *,
    final_ratio: float = 0.1,
    decay_fraction: float = 0.2,
) -> np.ndarray:
    """The LR of updates 1..steps for a "cosine" or "wsd" schedule (see module docstring)."""
    if not 0 < warmup < steps:
        raise ValueError(f"warmup must be in (0, steps={steps}), got {warmup}")
    i = np.arange(1, steps + 1, dtype=np.float64)
    eta = np.empty(steps)
    warm = i <= warmup
    eta[warm] = peak * i[warm] / warmup
    after = ~warm
    if kind == "cosine":
        p = (i[after] - warmup) / (steps - warmup)
        eta[after] = peak * (final_ratio + (1.0 - final_ratio) * 0.5 * (1.0 + np.cos(np.pi * p)))
    elif kind == "wsd":
        decay_start = steps - round(decay_fraction * steps)
        if decay_start <= warmup:
            raise ValueError(f"wsd decay would start at step {decay_start}, inside the warmup ({warmup})")
        stable = after & (i <= decay_start)
        decay = i > decay_start
        eta[stable] = peak
        eta[decay] = peak * (steps - i[decay]) / (steps - decay_start)
    else:
        raise ValueError(f"schedule must be 'cosine' or 'wsd', got {kind!r}")
    return eta


def annealing_areas(eta: np.ndarray, warmup: int, lam: float) -> tuple[np.ndarray, np.ndarray]:
    """(S1, S2) for every step of a schedule, eta normalised by its maximum."""
    norm = eta / eta.max()
    s1 = np.cumsum(norm)
    drop = np.zeros_like(norm)
    drop[warmup:] = np.concatenate(([norm[warmup - 1]], norm[warmup:-1])) - norm[warmup:]
    momentum = np.empty_like(drop)
    m = 0.0
    for i, d in enumerate(drop.tolist()):
        m = lam * m + d
        momentum[i] = m
    return s1, np.cumsum(momentum)
