"""Nested scaling prediction of the mixing law at a target scale (Ye et al. 2024, sec. 4).

When proxy runs vary training steps and model size as well as the mixture, Ye et al.
predict the loss of each mixture at the target scale in stages and only then fit the
mixing law:

1. per mixture and model size, a step law    L(S) = E + B S^-beta  ->  L(S*),
2. per mixture, a size law across sizes       L(N) = E + A N^-alpha ->  L(N*, S*),
3. the mixing law on (mixture, L(N*, S*)).

Each one-variable law is fitted by a grid over the exponent with (E, A) solved by
non-negative least squares, then polished with scipy ``least_squares``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Hashable, Mapping, Sequence

import numpy as np
from scipy.optimize import least_squares, nnls

from ..errors import FitError
from .fit import LawFit, fit_law
from .laws import MixingLaw, get_law


@dataclass(frozen=True)
class DecayFit:
    """y = E + A x^-exponent, fitted to one series."""

    E: float
    A: float
    exponent: float
    sse: float
    n_points: int

    def predict(self, x) -> np.ndarray:
        return self.E + self.A * np.asarray(x, dtype=float) ** (-self.exponent)


def fit_decay(x, y) -> DecayFit:
    """Fit y = E + A x^-exponent (E, A >= 0, exponent in [0.01, 3]) to at least 3 points."""
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    if len(np.unique(x)) < 3:
        raise FitError(f"a decay law needs at least 3 distinct x values, got {len(np.unique(x))}")
    lx = np.log(x / np.exp(np.mean(np.log(x))))  # centred: keeps A of order of the loss
    best = (np.inf, None)
    for k in np.linspace(0.01, 3.0, 120):
        design = np.column_stack([np.ones_like(lx), np.exp(-k * lx)])
        (e, a), rnorm = nnls(design, y)
        if rnorm < best[0]:
            best = (rnorm, np.array([e, a, k]))

    def res(p):
        return p[0] + p[1] * np.exp(-p[2] * lx) - y

    def jac(p):
        t = np.exp(-p[2] * lx)
        return np.column_stack([np.ones_like(lx), t, -p[1] * lx * t])

    out = least_squares(res, best[1], jac=jac, bounds=([0, 0, 0.01], [np.inf, np.inf, 3.0]), method="trf")
    e, a_c, k = out.x
    scale = np.exp(np.mean(np.log(x)))
    return DecayFit(float(e), float(a_c * scale**k), float(k), float(2 * out.cost), len(x))


@dataclass(frozen=True)
class NestedPrediction:
    """Losses of each mixture extrapolated to (target_params, target_steps), and the mixing law fitted on them."""

    mixture_ids: tuple
    weights: np.ndarray
    target_steps: float
    target_params: float
    step_fits: dict  # (mixture id, params) -> DecayFit over steps
    size_fits: dict  # mixture id -> DecayFit over params
    losses_at_target: np.ndarray
    law: MixingLaw
    fit: LawFit

    def predict(self, weights) -> np.ndarray:
        """Mixing-law prediction of the target-scale loss for any mixtures."""
        return self.law.predict(self.fit.params, weights)


def nested_mixing_prediction(
    mixture_ids: Sequence[Hashable],
    steps,
    params,
    losses,
    mixtures: Mapping[Hashable, Sequence[float]],
    domains: Sequence[str],
    *,
    target_steps: float,
    target_params: float,
    law: str | MixingLaw = "ye_exp",
) -> NestedPrediction:
    """Step law per (mixture, size) -> size law per mixture -> mixing law at the target scale.

    One row per evaluated checkpoint: ``mixture_ids[k]`` ran with ``params[k]`` parameters
    and had ``losses[k]`` on one target domain after ``steps[k]`` steps. ``mixtures`` maps
    each id to its weights over ``domains``.
    """
    ids = list(mixture_ids)
    s = np.asarray(steps, dtype=float)
    n = np.asarray(params, dtype=float)
    y = np.asarray(losses, dtype=float)
    if not (len(ids) == len(s) == len(n) == len(y)):
        raise FitError(f"expected equal lengths, got {len(ids)} ids, {len(s)} steps, {len(n)} params, {len(y)} losses")
    missing = sorted({str(i) for i in ids if i not in mixtures})
    if missing:
        raise FitError(f"mixtures {missing} have runs but no weights")
    law = get_law(law)
    order = list(dict.fromkeys(ids))
    id_arr = np.array([order.index(i) for i in ids])
    step_fits, size_fits, at_target = {}, {}, []
    for m, mid in enumerate(order):
        rows = id_arr == m
        sizes = np.unique(n[rows])
        at_steps = []
        for size in sizes:
            sel = rows & (n == size)
            try:
                fit = fit_decay(s[sel], y[sel])
            except FitError as err:
                raise FitError(f"mixture {mid!r}, {size:.4g} params: step law: {err.problem}") from None
            step_fits[(mid, float(size))] = fit
            at_steps.append(float(fit.predict(target_steps)))
        try:
            size_fit = fit_decay(sizes, np.array(at_steps))
        except FitError as err:
            raise FitError(f"mixture {mid!r}: size law: {err.problem}") from None
        size_fits[mid] = size_fit
        at_target.append(float(size_fit.predict(target_params)))
    w = np.array([np.asarray(mixtures[mid], dtype=float) for mid in order])
    at_target = np.array(at_target)
    mix_fit = fit_law(law, w, at_target, list(domains))
    return NestedPrediction(tuple(order), w, float(target_steps), float(target_params), step_fits, size_fits,
                            at_target, law, mix_fit)
