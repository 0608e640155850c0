"""Loss along a training run as a function of the learning-rate schedule (Tissue et al. 2024)."""

from __future__ import annotations

import numpy as np

from .base import Law, Param


def lr_areas(step, learning_rate, *, decay: float = 0.999, at=None) -> tuple[np.ndarray, np.ndarray]:
    """Forward area S1 and annealing area S2 of a learning-rate schedule (Tissue et al. 2024).

    S1(s) = sum_{i=1..s} eta_i;  m_i = decay·m_{i-1} + (eta_{i-1} - eta_i);  S2(s) = sum_{i=1..s} m_i.

    ``step``/``learning_rate`` may be logged every k steps: the rate is interpolated linearly onto
    every integer step from 0 to the last logged step (held constant before the first one).
    A rising rate (warm-up) contributes negative annealing area, as in the paper's definition.
    Returns ``(S1, S2)`` at the steps ``at`` (default: the logged steps).
    """
    step = np.asarray(step, dtype=float)
    lr = np.asarray(learning_rate, dtype=float)
    if step.shape != lr.shape or step.ndim != 1 or step.size == 0:
        raise ValueError(f"expected two 1-d arrays of the same length, got shapes {step.shape} and {lr.shape}")
    if np.any(np.diff(step) <= 0):
        raise ValueError("expected strictly increasing steps")
    if not 0.0 <= decay < 1.0:
        raise ValueError(f"expected a decay in [0, 1), got {decay}")
    last = int(np.ceil(step[-1]))
    grid = np.arange(last + 1, dtype=float)
    eta = np.interp(grid, step, lr)
    s1 = np.concatenate([[0.0], np.cumsum(eta[1:])])
    drop = np.concatenate([[0.0], eta[:-1] - eta[1:]])
    from scipy.signal import lfilter  # imported here: scipy.signal takes seconds to import

    m = lfilter([1.0], [1.0, -decay], drop)
    s2 = np.cumsum(m)
    at = step if at is None else np.asarray(at, dtype=float)
    if np.any(at < 0) or np.any(at > last):
        raise ValueError(f"expected steps within [0, {last}]")
    return np.interp(at, grid, s1), np.interp(at, grid, s2)


def _lr_fn(X, p):
    s1 = np.maximum(X["lr_sum"], 1e-300)
    return p["L0"] + p["A"] * np.exp(-p["alpha"] * np.log(s1)) - p["C"] * X["lr_anneal_area"]


def _lr_grad(X, p):
    ls1 = np.log(np.maximum(X["lr_sum"], 1e-300))
    t = np.exp(-p["alpha"] * ls1)
    return {"L0": np.ones_like(t), "A": t, "C": -np.asarray(X["lr_anneal_area"], dtype=float),
            "alpha": -p["A"] * t * ls1}


lr_annealing = Law(
    name="lr_annealing",
    variables=("lr_sum", "lr_anneal_area"),
    params=(
        Param("L0", (0.0, np.inf), linear=True),
        Param("A", (0.0, np.inf), linear=True, log=True, plausible=(0.0, 1e15)),
        Param("C", (0.0, np.inf), linear=True),
        Param("alpha", (0.0, 10.0), grid=(0.01, 2.0), plausible=(0.005, 2.0), exponent=True),
    ),
    fn=_lr_fn,
    grad=_lr_grad,
    formula="L(s) = L0 + A * S1^(-alpha) - C * S2  (S1 = lr_sum, S2 = lr_anneal_area; see lr_areas)",
    reference="Tissue et al. 2024, Scaling Law with Learning Rate Annealing",
)
