"""Compute-optimal allocation from training runs: Chinchilla approaches 1 and 2 (Hoffmann et al. 2022).

Approach 1 (training-curve envelope): every run's curve is interpolated (loss against log
compute) onto log-spaced compute buckets; at each bucket the run with the lowest loss gives
N and D on the envelope; N_opt ∝ C^a and D_opt ∝ C^b are fitted by least squares in logs.

Approach 2 (isoFLOP profiles): at fixed compute budgets every run is interpolated to the budget
(single-point runs count when within ``tolerance`` of it); a parabola of loss in log N gives the
minimum, hence N_opt(C) and D_opt(C), then the same power-law fits.

Intervals on a and b come from resampling runs with replacement.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import FitError


@dataclass
class PowerFit:
    """X_opt = exp(log_coef) · C^exponent, with a bootstrap interval on the exponent."""

    exponent: float
    log_coef: float
    interval: tuple[float, float] = (float("nan"), float("nan"))

    def __call__(self, flops):
        return np.exp(self.log_coef) * np.asarray(flops, dtype=float) ** self.exponent


@dataclass
class ApproachResult:
    params_opt: PowerFit  # N_opt(C): exponent a
    tokens_opt: PowerFit  # D_opt(C): exponent b
    points: list[dict] = field(default_factory=list)  # envelope points (approach 1) or per-budget minima (2)

    @property
    def a(self) -> float:
        return self.params_opt.exponent

    @property
    def b(self) -> float:
        return self.tokens_opt.exponent


@dataclass
class IsoflopResult:
    approach1: ApproachResult | None
    approach2: ApproachResult | None
    n_runs: int
    n_resamples: int
    n_failed: dict = field(default_factory=dict)
    settings: dict = field(default_factory=dict)


def _curves(N, D, L, C, runs):
    out = []
    for r in np.unique(runs):
        idx = np.flatnonzero(runs == r)
        idx = idx[np.argsort(C[idx], kind="stable")]
        out.append((r, np.log(C[idx]), np.log(N[idx]), np.log(D[idx]), L[idx]))
    return out


def _interp(curve, lc, tol):
    """(log N, log D, loss) of a run at log compute lc, or None when outside its range."""
    _, c, n, d, l = curve
    if c.size == 1 or c[0] == c[-1]:
        return (n[0], d[0], l[0]) if abs(c[0] - lc) <= tol else None
    if lc < c[0] - 1e-12 or lc > c[-1] + 1e-12:
        return None
    return np.interp(lc, c, n), np.interp(lc, c, d), np.interp(lc, c, l)


def _fit_power(lc, lx):
    A = np.column_stack([lc, np.ones_like(lc)])
    (slope, icpt), *_ = np.linalg.lstsq(A, lx, rcond=None)
    return float(slope), float(icpt)


def _approach1(curves, counts, grid, tol, min_runs):
    pts = []
    for lc in grid:
        cands = [(v, cur[0]) for cur, k in zip(curves, counts) if k > 0
                 for v in [_interp(cur, lc, tol)] if v is not None]
        if len(cands) < min_runs:
            continue
        (ln, ld, l), run = min(cands, key=lambda t: t[0][2])
        pts.append({"flops": float(np.exp(lc)), "loss": float(l), "params": float(np.exp(ln)),
                    "tokens": float(np.exp(ld)), "run": run, "n_runs": len(cands)})
    return pts


def _approach2(curves, counts, budgets, tol, min_runs):
    pts = []
    for lc in budgets:
        rows = [(v, k) for cur, k in zip(curves, counts) if k > 0 for v in [_interp(cur, lc, tol)] if v is not None]
        if len({round(float(v[0]), 9) for v, _ in rows}) < max(3, min_runs):
            continue
        ln = np.array([v[0] for v, _ in rows])
        ld = np.array([v[1] for v, _ in rows])
        l = np.array([v[2] for v, _ in rows])
        w = np.sqrt(np.array([k for _, k in rows], dtype=float))
        a2, a1, a0 = np.polyfit(ln, l, 2, w=w)
        if not a2 > 0:
            continue
        x = -a1 / (2 * a2)
        if x < ln.min() - 0.5 or x > ln.max() + 0.5:  # minimum far outside the sizes tried
            continue
        s, i = np.polyfit(ln, ld, 1, w=w)
        pts.append({"flops": float(np.exp(lc)), "params_opt": float(np.exp(x)), "tokens_opt": float(np.exp(s * x + i)),
                    "loss_opt": float(a0 + a1 * x + a2 * x * x), "n_runs": len(rows)})
    return pts


def _exponents(pts, nkey, dkey):
    if len(pts) < 2:
        return None
    lc = np.log([p["flops"] for p in pts])
    if np.ptp(lc) == 0:
        return None
    return _fit_power(lc, np.log([p[nkey] for p in pts])), _fit_power(lc, np.log([p[dkey] for p in pts]))


def isoflop(N, D, loss, runs=None, *, flops=None, n_buckets: int = 40, n_budgets: int = 8,
            tolerance: float = 0.1, min_runs: int = 3, n_resamples: int = 200, level: float = 0.95,
            seed: int = 0) -> IsoflopResult:
    """Approaches 1 and 2 on runs of parameters ``N``, tokens ``D`` and ``loss`` (one row per point).

    runs: run id per point (several points per run = a training curve; ``None``: one point per
    run). flops: compute per point (default 6·N·D). n_buckets: log-spaced compute values for the
    envelope (approach 1); n_budgets: isoFLOP budgets (approach 2), log-spaced between the 10th and
    90th percentile of the runs' final compute. tolerance: relative compute window within which a single-point run counts
    at a budget. min_runs: fewest runs at a compute value for it to be used. Intervals on the
    exponents a (N_opt ∝ C^a) and b (D_opt ∝ C^b) come from ``n_resamples`` run resamples.
    """
    N, D, L = (np.asarray(v, dtype=float).ravel() for v in (N, D, loss))
    n = L.size
    if not (N.size == D.size == n) or n == 0:
        raise FitError(f"expected N, D and loss of the same non-zero length, got {N.size}, {D.size}, {n}")
    C = 6.0 * N * D if flops is None else np.asarray(flops, dtype=float).ravel()
    for name, v in (("params", N), ("tokens", D), ("flops", C), ("loss", L)):
        bad = ~np.isfinite(v) | (v <= 0)
        if np.any(bad):
            i = int(np.flatnonzero(bad)[0])
            raise FitError(f"expected a positive finite number, got {v[i]!r}", field=name, row=i)
    runs = np.arange(n) if runs is None else np.asarray(runs).ravel()
    curves = _curves(N, D, L, C, runs)
    tol = float(np.log1p(tolerance))
    lC = np.log(C)
    grid = np.linspace(lC.min(), lC.max(), n_buckets)
    finals = np.array([cur[1][-1] for cur in curves])
    budgets = np.linspace(np.quantile(finals, 0.1), np.quantile(finals, 0.9), n_budgets)
    ones = np.ones(len(curves))

    def run_both(counts):
        return (_approach1(curves, counts, grid, tol, min_runs), _approach2(curves, counts, budgets, tol, min_runs))

    p1, p2 = run_both(ones)
    rng = np.random.default_rng(seed)
    draws = {1: [], 2: []}
    failed = {1: 0, 2: 0}
    for _ in range(n_resamples):
        counts = np.bincount(rng.integers(0, len(curves), len(curves)), minlength=len(curves))
        for k, pts in zip((1, 2), run_both(counts)):
            e = _exponents(pts, *(("params", "tokens") if k == 1 else ("params_opt", "tokens_opt")))
            if e is None:
                failed[k] += 1
            else:
                draws[k].append((e[0][0], e[1][0]))
    q = [(1 - level) / 2, (1 + level) / 2]

    def result(k, pts, keys):
        e = _exponents(pts, *keys)
        if e is None:
            return None
        ia = ib = (float("nan"), float("nan"))
        if draws[k]:
            d = np.array(draws[k])
            ia = tuple(float(v) for v in np.quantile(d[:, 0], q))
            ib = tuple(float(v) for v in np.quantile(d[:, 1], q))
        return ApproachResult(PowerFit(e[0][0], e[0][1], ia), PowerFit(e[1][0], e[1][1], ib), pts)

    return IsoflopResult(
        approach1=result(1, p1, ("params", "tokens")),
        approach2=result(2, p2, ("params_opt", "tokens_opt")),
        n_runs=len(curves), n_resamples=n_resamples, n_failed=failed,
        settings={"n_buckets": n_buckets, "n_budgets": n_budgets, "tolerance": tolerance,
                  "min_runs": min_runs, "level": level, "seed": seed,
                  "flops": "6*N*D" if flops is None else "given"},
    )
