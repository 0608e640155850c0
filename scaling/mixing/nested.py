"""Nested scaling prediction of the mixing law at a target scale (Ye et al. 2024, Data Mixing Laws, sec. 4).

When proxy runs vary training steps and model size as well as the mixture, Ye et al. predict the
loss of each mixture at the target scale in stages and only then fit the mixing law:

1. per mixture and model size (one training run), a step law   L(S) = E + B S^-beta  ->  L(S*),
2. per mixture, a size law over the runs' L(S*)                L(N) = E + A N^-alpha ->  L(N*, S*),
3. the mixing law on (mixture, L(N*, S*)), e.g. L(r) = c + exp(sum_j t_j r_j).

Each one-variable law y = E + A x^-k (E, A >= 0, k in [0.01, 3]) is fitted by profiling: for each k,
(E, A) is the non-negative weighted least-squares solution in closed form; k minimises the profiled
sum of squares (a grid, then golden-section search in the best grid cell). Many series are fitted
at once (`fit_decays`), which makes refitting every stage on every bootstrap resample cheap.

Bootstrap (``n_resamples``), through all three stages, over runs: each resample draws the mixtures
with replacement (`scaling.fit.bootstrap.resample_counts`), a mixture bringing all its runs, and refits
every stage on the drawn runs: step laws, size laws, then the mixing law on the drawn mixtures'
L(N*, S*). This is the two-stage (cluster) bootstrap that resamples only the top level (Davison &
Hinkley 1997, sec. 3.8): each mixture's extrapolated loss already carries the noise of its own step and
size fits, so its scatter about the mixing law carries every stage's noise once (also resampling
the checkpoints inside the runs would count that noise twice). A run's checkpoints cannot
be drawn as cases (a step law needs three distinct steps), so the per-stage intervals of the step and
size laws (and of L(S*) per run and L(N*, S*) per mixture) come from resampling the checkpoints'
multiplicative residuals from the step laws (pooled over runs, centred, inflated for the fitted
degrees of freedom) and refitting stages 1 and 2. Intervals are percentile intervals
(`scaling.fit.bootstrap.percentile_interval`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Hashable, Mapping, Sequence

import numpy as np

from ..errors import FitError
from ..fit.bootstrap import percentile_interval, resample_counts
from .fit import MixingLawFit, bootstrap_mixing_law, fit_mixing_law
from .laws import MixingLaw, get_mixing_law

EXPONENT_RANGE = (0.01, 3.0)
_GRID = np.linspace(*EXPONENT_RANGE, 120)
_GOLDEN = (np.sqrt(5.0) - 1.0) / 2.0
STAGES = ("step", "size", "mixing")
STEP_FORMULA = "L(S) = E + B S^-beta"
SIZE_FORMULA = "L(N) = E + A N^-alpha"


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


def _profile(lx, y, w, k):
    """Non-negative weighted LS (E, A) of y = E + A exp(-k lx) per row at exponents k (rows,); SSE."""
    z = np.exp(-k[:, None] * lx)
    sw, sz, szz = w.sum(1), (w * z).sum(1), (w * z * z).sum(1)
    sy, szy = (w * y).sum(1), (w * z * y).sum(1)
    det = sw * szz - sz * sz
    with np.errstate(all="ignore"):
        a = np.where(det > 0, (sw * szy - sz * sy) / det, 0.0)
        e = (sy - a * sz) / sw
        e0_a = np.maximum(szy / szz, 0.0)  # E = 0 boundary
        neg_a, neg_e = a < 0, e < 0
        a = np.where(neg_a, 0.0, np.where(neg_e, e0_a, a))
        e = np.where(neg_a, sy / sw, np.where(neg_e, 0.0, e))
    r = y - e[:, None] - a[:, None] * z
    return e, a, (w * r * r).sum(1)


def fit_decays(x, y, w=None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Fit y = E + A x^-k to every row of ``x``, ``y`` (series x points; ``w`` point weights, 0 for padding).

    Returns (E, A, k, sse), one value per row. Rows need at least 3 distinct x with positive weight
    (checked by the callers, which know what a row is)."""
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    w = np.ones_like(y) if w is None else np.asarray(w, dtype=float)
    logx = np.log(np.where(w > 0, x, 1.0))
    centre = (np.where(w > 0, logx, 0.0)).sum(1) / np.maximum((w > 0).sum(1), 1)
    lx = np.where(w > 0, logx - centre[:, None], 0.0)  # centred: keeps A of order of the loss
    y0 = np.where(w > 0, y, 0.0)
    n = len(x)
    sse_grid = np.empty((n, len(_GRID)))
    for j, k in enumerate(_GRID):
        sse_grid[:, j] = _profile(lx, y0, w, np.full(n, k))[2]
    best = np.argmin(np.where(np.isfinite(sse_grid), sse_grid, np.inf), axis=1)
    lo = _GRID[np.maximum(best - 1, 0)]
    hi = _GRID[np.minimum(best + 1, len(_GRID) - 1)]
    c = hi - _GOLDEN * (hi - lo)
    d = lo + _GOLDEN * (hi - lo)
    fc, fd = _profile(lx, y0, w, c)[2], _profile(lx, y0, w, d)[2]
    for _ in range(40):  # the cell shrinks by 0.618^40 ~ 4e-9
        left = fc < fd
        hi = np.where(left, d, hi)
        lo = np.where(left, lo, c)
        d_new = np.where(left, c, lo + _GOLDEN * (hi - lo))
        c_new = np.where(left, hi - _GOLDEN * (hi - lo), d)
        f_new = _profile(lx, y0, w, np.where(left, c_new, d_new))[2]  # the one new point of each row
        fc, fd = np.where(left, f_new, fd), np.where(left, fc, f_new)
        c, d = c_new, d_new
    k = 0.5 * (lo + hi)
    e, a_c, sse = _profile(lx, y0, w, k)
    return e, a_c * np.exp(k * centre), k, sse


def fit_decay(x, y) -> DecayFit:
    """Fit y = E + A x^-exponent (E, A >= 0, exponent in [0.01, 3]) to at least 3 points."""
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    if len(np.unique(x)) < 3:
        raise FitError(f"a decay law needs at least 3 distinct x values, got {len(np.unique(x))}")
    e, a, k, sse = fit_decays(x[None], y[None])
    return DecayFit(float(e[0]), float(a[0]), float(k[0]), float(sse[0]), len(x))


def _padded(groups: list[np.ndarray], *arrays: np.ndarray) -> list[np.ndarray]:
    """Rows of ``arrays`` indexed by each group, padded to one width; the last array is the weight mask."""
    width = max(len(g) for g in groups)
    out = []
    for arr in arrays:
        m = np.zeros((len(groups), width))
        for i, g in enumerate(groups):
            m[i, :len(g)] = arr[g]
        out.append(m)
    mask = np.zeros((len(groups), width))
    for i, g in enumerate(groups):
        mask[i, :len(g)] = 1.0
    return out + [mask]


@dataclass(frozen=True)
class NestedPrediction:
    """Losses of each mixture extrapolated to (target_params, target_steps), the mixing law fitted on
    them, and bootstrap draws of every stage (empty when ``n_resamples`` was 0).

    ``runs`` are (mixture id, model size) in the order of ``step_params`` (E, B, beta per run);
    ``size_params`` are (E, A, alpha) per mixture in ``mixture_ids`` order."""

    mixture_ids: tuple
    weights: np.ndarray
    target_steps: float
    target_params: float
    step_fits: dict  # (mixture id, params) -> DecayFit over steps
    size_fits: dict  # mixture id -> DecayFit over params
    losses_at_target: np.ndarray
    law: MixingLaw
    fit: MixingLawFit
    domains: tuple[str, ...] = ()
    runs: tuple = ()
    step_params: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))
    size_params: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))
    at_steps: np.ndarray = field(default_factory=lambda: np.zeros(0))  # L(S*) per run
    draws: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))  # mixing-law parameters (B, p)
    step_draws: np.ndarray = field(default_factory=lambda: np.zeros((0, 0, 3)))  # (B, runs, 3)
    size_draws: np.ndarray = field(default_factory=lambda: np.zeros((0, 0, 3)))  # (B, mixtures, 3)
    at_steps_draws: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))  # (B, runs)
    at_target_draws: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))  # (B, mixtures)
    n_failed: int = 0
    level: float = 0.95
    seed: int = 0
    checkpoints: dict = field(default_factory=dict)  # run (mixture id, size) -> (steps, losses) fitted

    @property
    def n_resamples(self) -> int:
        return int(self.draws.shape[0])

    def predict(self, weights) -> np.ndarray:
        """Mixing-law prediction of the target-scale loss for any mixtures."""
        return self.law.predict(self.fit.params, weights)

    def predict_draws(self, weights) -> np.ndarray:
        """Predictions under every bootstrap draw, (n_resamples, n_mixtures); NaN for failed refits."""
        return self.law.predict(self.draws, np.atleast_2d(np.asarray(weights, dtype=float)))

    def predict_interval(self, weights, level: float | None = None):
        """(loss, lo, hi) at the target scale for each mixture: the point fit and the percentile interval
        of the draws, whose refits went through all three stages."""
        loss = self.predict(weights)
        if not self.n_resamples:
            nan = np.full_like(loss, np.nan)
            return loss, nan, nan
        lo, hi = percentile_interval(self.predict_draws(weights), level or self.level)
        return loss, lo, hi

    def stage_rows(self, level: float | None = None) -> list[dict]:
        """Every stage's parameters with intervals: dicts of stage, mixture, params (model size of a step
        law's run), parameter, estimate, ci_low, ci_high."""
        lv = level or self.level
        have = self.n_resamples > 0

        def ci(d):
            return percentile_interval(d, lv) if have else (np.full(d.shape[1:], np.nan),) * 2

        rows = []
        lo, hi = ci(self.step_draws)
        lo_s, hi_s = ci(self.at_steps_draws)
        for i, (mid, size) in enumerate(self.runs):
            vals = (*self.step_params[i], self.at_steps[i])
            los, his = (*lo[i], lo_s[i]), (*hi[i], hi_s[i])
            for name, v, a, b in zip(("E", "B", "beta", "loss_at_target_steps"), vals, los, his):
                rows.append({"stage": "step", "mixture": str(mid), "params": float(size), "parameter": name,
                             "estimate": float(v), "ci_low": float(a), "ci_high": float(b)})
        lo, hi = ci(self.size_draws)
        lo_t, hi_t = ci(self.at_target_draws)
        for m, mid in enumerate(self.mixture_ids):
            vals = (*self.size_params[m], self.losses_at_target[m])
            los, his = (*lo[m], lo_t[m]), (*hi[m], hi_t[m])
            for name, v, a, b in zip(("E", "A", "alpha", "loss_at_target"), vals, los, his):
                rows.append({"stage": "size", "mixture": str(mid), "params": None, "parameter": name,
                             "estimate": float(v), "ci_low": float(a), "ci_high": float(b)})
        lo, hi = ci(self.draws) if have else (np.full(len(self.fit.params), np.nan),) * 2
        for j, name in enumerate(self.fit.param_names):
            rows.append({"stage": "mixing", "mixture": None, "params": None, "parameter": name,
                         "estimate": float(self.fit.params[j]), "ci_low": float(lo[j]), "ci_high": float(hi[j])})
        return rows


def _check_counts(ids_per_group, distinct, what):
    for key, xs in zip(ids_per_group, distinct):
        if len(np.unique(xs)) < 3:
            raise FitError(f"{what(key)}: a decay law needs at least 3 distinct x values, got {len(np.unique(xs))}")


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
    n_resamples: int = 0,
    seed: int = 0,
    level: float = 0.95,
) -> NestedPrediction:
    """Step law per (mixture, size) -> size law per mixture -> mixing law at the target scale.

    One row per evaluated checkpoint: ``mixture_ids[k]`` ran with ``params[k]`` parameters and had
    ``losses[k]`` on one target domain after ``steps[k]`` steps. ``mixtures`` maps each id to its
    weights over ``domains``. With ``n_resamples`` > 0, every stage is refitted on seeded bootstrap
    resamples (see the module docstring) and the result carries the draws.
    """
    ids = list(mixture_ids)
    s = np.asarray(steps, dtype=float)
    n = np.asarray(params, dtype=float)
    y = np.asarray(losses, dtype=float)
    if not (len(ids) == len(s) == len(n) == len(y)):
        raise FitError(f"expected equal lengths, got {len(ids)} ids, {len(s)} steps, {len(n)} params, {len(y)} losses")
    if not (np.all(np.isfinite(s)) and np.all(s > 0) and np.all(np.isfinite(n)) and np.all(n > 0)):
        raise FitError("expected positive steps and model sizes on every checkpoint")
    if not (np.all(np.isfinite(y)) and np.all(y > 0)):
        raise FitError("expected positive finite losses on every checkpoint")
    missing = sorted({str(i) for i in ids if i not in mixtures})
    if missing:
        raise FitError(f"mixtures {missing} have runs but no weights")
    law = get_mixing_law(law)
    order = list(dict.fromkeys(ids))
    m_of = {mid: m for m, mid in enumerate(order)}
    id_arr = np.array([m_of[i] for i in ids])
    # runs: (mixture, size), mixture-major, sizes ascending
    runs, run_rows, run_mix = [], [], []
    for m, mid in enumerate(order):
        for size in np.unique(n[id_arr == m]):
            runs.append((mid, float(size)))
            run_rows.append(np.flatnonzero((id_arr == m) & (n == size)))
            run_mix.append(m)
    run_mix = np.array(run_mix)
    for (mid, size), rows in zip(runs, run_rows):
        if len(np.unique(s[rows])) < 3:
            raise FitError(f"mixture {mid!r}, {size:.4g} params: step law: a decay law needs at least 3 distinct "
                           f"x values, got {len(np.unique(s[rows]))}")
    sizes_of = [np.array([runs[i][1] for i in np.flatnonzero(run_mix == m)]) for m in range(len(order))]
    for mid, sizes in zip(order, sizes_of):
        if len(sizes) < 3:
            raise FitError(f"mixture {mid!r}: size law: a decay law needs at least 3 distinct x values, "
                           f"got {len(sizes)}")
    law_params = len(law.param_names(list(domains)))
    if len(order) < law_params:
        raise FitError(f"mixing law {law.name!r} has {law_params} parameters and needs at least that many "
                       f"mixtures, got {len(order)}")

    xs, ys, mask = _padded(run_rows, s, y)
    size_groups = [np.flatnonzero(run_mix == m) for m in range(len(order))]
    run_index = np.arange(len(runs), dtype=float)
    (size_pos,) = _padded(size_groups, run_index)[:1]
    size_mask = _padded(size_groups, run_index)[1]
    size_x = np.zeros_like(size_pos)
    for m, g in enumerate(size_groups):
        size_x[m, :len(g)] = sizes_of[m]
    size_pos = size_pos.astype(int)

    def stages(y_runs: np.ndarray, reps: int):
        """Stages 1 and 2 for ``reps`` stacked copies of the runs' checkpoint losses ((reps*R, P))."""
        e1, a1, k1, _ = fit_decays(np.tile(xs, (reps, 1)), y_runs, np.tile(mask, (reps, 1)))
        at_s = (e1 + a1 * target_steps ** (-k1)).reshape(reps, len(runs))
        sy = np.concatenate([at_s[b][size_pos] for b in range(reps)])
        e2, a2, k2, _ = fit_decays(np.tile(size_x, (reps, 1)), sy, np.tile(size_mask, (reps, 1)))
        at_t = (e2 + a2 * target_params ** (-k2)).reshape(reps, len(order))
        step = np.stack([e1, a1, k1], axis=-1).reshape(reps, len(runs), 3)
        size = np.stack([e2, a2, k2], axis=-1).reshape(reps, len(order), 3)
        return step, at_s, size, at_t

    step, at_s, size, at_t = stages(ys, 1)
    w = np.array([np.asarray(mixtures[mid], dtype=float) for mid in order])
    if w.ndim != 2 or w.shape[1] != len(domains):
        raise FitError(f"expected weights over {len(domains)} domains for every mixture")
    mix_fit = fit_mixing_law(law, w, at_t[0], list(domains))
    step_fits = {runs[i]: DecayFit(*map(float, step[0, i]), 0.0, len(run_rows[i])) for i in range(len(runs))}
    size_fits = {mid: DecayFit(*map(float, size[0, m]), 0.0, len(sizes_of[m])) for m, mid in enumerate(order)}
    extra = {}
    if n_resamples > 0:
        # stages 1-2 of each mixture, refitted on its runs' checkpoints with resampled residuals: the
        # per-stage intervals (step and size laws, L(S*) per run, L(N*, S*) per mixture)
        fitted = step[0, :, :1] + step[0, :, 1:2] * xs ** (-step[0, :, 2:3])
        on = mask > 0
        resid = np.log(ys[on]) - np.log(fitted[on])
        dof = max(on.sum() - 3 * len(runs), 1)
        resid = (resid - resid.mean()) * np.sqrt(on.sum() / dof)  # centred, inflated for the 3 fitted per run
        rng = np.random.default_rng([seed, 1])
        pert = np.concatenate([fitted * np.exp(rng.choice(resid, size=fitted.shape)) for _ in range(n_resamples)])
        step_d, at_s_d, size_d, at_t_d = stages(np.where(np.tile(on, (n_resamples, 1)), pert, 0.0), n_resamples)
        # the prediction: mixtures drawn with replacement, each with all its runs, and every stage refitted
        # on the drawn runs (a mixture's stage-1/2 fits are the same in every resample that draws it, so the
        # point fits are reused) -- the mixing law is refitted on the drawn mixtures' L(N*, S*)
        counts = resample_counts(len(order), n_resamples, seed)
        draws, failed = bootstrap_mixing_law(law, w, at_t[0], list(domains), mix_fit, counts)
        extra = dict(draws=draws, step_draws=step_d, size_draws=size_d, at_steps_draws=at_s_d,
                     at_target_draws=at_t_d, n_failed=failed)
    return NestedPrediction(tuple(order), w, float(target_steps), float(target_params), step_fits, size_fits,
                            at_t[0], law, mix_fit, domains=tuple(domains), runs=tuple(runs), step_params=step[0],
                            size_params=size[0], at_steps=at_s[0], level=level, seed=seed,
                            checkpoints={runs[i]: (s[g], y[g]) for i, g in enumerate(run_rows)}, **extra)
