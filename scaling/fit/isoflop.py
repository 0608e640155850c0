"""Compute-optimal allocation from training runs: Chinchilla approaches 1 and 2 (Hoffmann et al. 2022).

Approach 1 (training-curve envelope): every run's curve is interpolated (loss against log
compute) onto log-spaced compute buckets; at each bucket the run with the lowest loss gives
N and D on the envelope; N_opt ∝ C^a and D_opt ∝ C^b are fitted by least squares in logs.

Approach 2 (isoFLOP profiles): at fixed compute budgets every run is interpolated to the budget
(single-point runs count when within ``tolerance`` of it); a parabola of loss in log N gives the
minimum, hence N_opt(C) and D_opt(C), then the same power-law fits.

Budgets for approach 2 are log-spaced over the runs' final compute, or the budgets the runs
share (``budgets="data"``: IsoFLOP grids and digitised figures, where every run ends near one
of a few budgets), or given.

Intervals come from resampling runs with replacement: on the exponents a and b, on the
coefficients, and on every budget's optimum N*, D* and loss* (percentiles over the resamples
that reach that budget).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import FitError


@dataclass
class PowerFit:
    """X_opt = exp(log_coef) · C^exponent, with bootstrap intervals on the exponent and log_coef."""

    exponent: float
    log_coef: float
    interval: tuple[float, float] = (float("nan"), float("nan"))
    log_coef_interval: tuple[float, float] = (float("nan"), float("nan"))

    def __call__(self, flops):
        return np.exp(self.log_coef) * np.asarray(flops, dtype=float) ** self.exponent


@dataclass
class ApproachResult:
    params_opt: PowerFit  # N_opt(C): exponent a
    tokens_opt: PowerFit  # D_opt(C): exponent b
    points: list[dict] = field(default_factory=list)  # envelope points (approach 1) or per-budget minima (2)
    draws: np.ndarray | None = None  # (n_ok, 4): a, log_coef of N_opt, b, log_coef of D_opt per resample
    n_failed: int = 0  # resamples that gave fewer than two compute values
    skipped: list[dict] = field(default_factory=list)  # budgets without a usable minimum, with the reason

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


def _table(curves, lcs, tol):
    """Per compute value: (lc, run indices, log N, log D, loss) of every run reaching it. The
    interpolation does not depend on the resample, so it is done once."""
    out = []
    for lc in lcs:
        hits = [(j, v) for j, cur in enumerate(curves) for v in [_interp(cur, lc, tol)] if v is not None]
        idx = np.array([j for j, _ in hits], dtype=int)
        vals = np.array([v for _, v in hits], dtype=float).reshape(-1, 3)
        out.append((float(lc), idx, vals[:, 0], vals[:, 1], vals[:, 2]))
    return out


def _approach1(table, counts, names, min_runs, factor=None):
    pts = []
    for lc, idx, ln, ld, l in table:
        l = l if factor is None else l * factor[idx]
        keep = counts[idx] > 0
        if keep.sum() < min_runs:
            continue
        j = int(np.flatnonzero(keep)[np.argmin(l[keep])])
        pts.append({"flops": float(np.exp(lc)), "loss": float(l[j]), "params": float(np.exp(ln[j])),
                    "tokens": float(np.exp(ld[j])), "run": names[idx[j]], "n_runs": int(keep.sum())})
    return pts


def _approach2(table, counts, min_runs, skipped=None, factor=None):
    pts = []
    for lc, idx, ln, ld, l in table:
        l = l if factor is None else l * factor[idx]
        keep = counts[idx] > 0
        ln, ld, l, k = ln[keep], ld[keep], l[keep], counts[idx][keep]
        if len(np.unique(np.round(ln, 9))) < max(3, min_runs):
            if skipped is not None:
                skipped.append({"flops": float(np.exp(lc)), "reason": f"{ln.size} runs reach it, "
                                f"fewer than {max(3, min_runs)} sizes"})
            continue
        w = np.sqrt(k.astype(float))
        a2, a1, a0 = np.polyfit(ln, l, 2, w=w)
        if not a2 > 0:
            if skipped is not None:
                skipped.append({"flops": float(np.exp(lc)), "reason": "the parabola in log N opens downward"})
            continue
        x = -a1 / (2 * a2)
        if x < ln.min() - 0.5 or x > ln.max() + 0.5:  # minimum far outside the sizes tried
            if skipped is not None:
                skipped.append({"flops": float(np.exp(lc)), "reason": "the minimum lies outside the sizes tried"})
            continue
        s, i = np.polyfit(ln, ld, 1, w=w)
        pts.append({"flops": float(np.exp(lc)), "params_opt": float(np.exp(x)), "tokens_opt": float(np.exp(s * x + i)),
                    "loss_opt": float(a0 + a1 * x + a2 * x * x), "n_runs": int(ln.size)})
    return pts


def _exponents(pts, nkey, dkey):
    if len(pts) < 2:
        return None
    lc = np.log([p["flops"] for p in pts])
    if np.ptp(lc) == 0:
        return None
    return _fit_power(lc, np.log([p[nkey] for p in pts])), _fit_power(lc, np.log([p[dkey] for p in pts]))


def replicate_noise(curves, *, digits: int = 6) -> tuple[float, int]:
    """Seed noise from replicates: the pooled standard deviation of ln(final loss) over runs that
    share their parameters and tokens (to `digits` significant digits), and its degrees of freedom
    (0 when no configuration was run twice)."""
    groups: dict = {}
    for _, _, n, d, l in curves:
        key = (float(f"{np.exp(n[-1]):.{digits}g}"), float(f"{np.exp(d[-1]):.{digits}g}"))
        groups.setdefault(key, []).append(np.log(l[-1]))
    ss, dof = 0.0, 0
    for v in groups.values():
        if len(v) > 1:
            ss += float(np.sum((np.array(v) - np.mean(v)) ** 2))
            dof += len(v) - 1
    return (float(np.sqrt(ss / dof)) if dof else float("nan")), dof


def shared_budgets(final_flops, *, tolerance: float = 0.1, min_runs: int = 3) -> np.ndarray:
    """Compute budgets the runs share, from each run's final compute.

    Greedy mode-finding in log compute: the run with the most others within log(1 + tolerance)
    of it seeds a budget, at the geometric mean of that neighbourhood, whose runs are then taken
    out; repeated while a neighbourhood holds at least ``min_runs`` runs. An IsoFLOP grid
    (Hoffmann et al. 2022, Fig. 3) or a digitised figure (Besiroglu et al. 2024) has a few such
    budgets; a sweep over N x D mostly has none.
    """
    lc = np.sort(np.log(np.asarray(final_flops, dtype=float).ravel()))
    tol = float(np.log1p(tolerance))
    out = []
    while lc.size >= min_runs:
        near = np.abs(lc[:, None] - lc[None, :]) <= tol
        counts = near.sum(axis=1)
        i = int(np.argmax(counts))
        if counts[i] < min_runs:
            break
        members = near[i]
        centre = float(lc[members].mean())
        members = np.abs(lc - centre) <= tol  # recentre, so the budget sits in the middle of its runs
        if members.sum() < min_runs:
            members = near[i]
        out.append(float(np.exp(lc[members].mean())))
        lc = lc[~members]
    return np.sort(np.array(out))


def _finals(curves) -> np.ndarray:
    return np.exp([cur[1][-1] for cur in curves])


def choose_budgets(curves, budgets, n_budgets: int, tolerance: float, min_runs: int) -> tuple[np.ndarray, str]:
    """Log budgets for approach 2 and where they came from ("given", "data" or "grid").

    budgets: a sequence of FLOPs (given); "data" (the budgets the runs share, see
    ``shared_budgets``); "auto" (shared budgets when at least two of them hold half the runs,
    else the grid); None (the grid: ``n_budgets`` log-spaced between the 10th and 90th
    percentile of the runs' final compute).
    """
    finals = _finals(curves)
    if budgets is not None and not isinstance(budgets, str):
        b = np.asarray(budgets, dtype=float).ravel()
        if b.size == 0 or np.any(~np.isfinite(b) | (b <= 0)):
            raise FitError(f"expected positive finite budgets, got {list(b)}", field="budgets")
        return np.log(np.sort(b)), "given"
    if budgets in ("data", "auto"):
        shared = shared_budgets(finals, tolerance=tolerance, min_runs=max(3, min_runs))
        tol = np.log1p(tolerance)
        covered = sum(bool(np.any(np.abs(np.log(f) - np.log(shared)) <= tol)) for f in finals) if shared.size else 0
        if budgets == "data":
            if shared.size == 0:
                raise FitError(f"the runs share no compute budget: no {max(3, min_runs)} runs end within "
                               f"{tolerance:.0%} of each other's compute", field="budgets")
            return np.log(shared), "data"
        if shared.size >= 2 and covered >= 0.5 * finals.size:
            return np.log(shared), "data"
    elif budgets is not None:
        raise FitError(f"expected budgets as FLOPs, 'data' or 'auto', got {budgets!r}", field="budgets")
    lf = np.log(finals)
    return np.linspace(np.quantile(lf, 0.1), np.quantile(lf, 0.9), n_budgets), "grid"


def isoflop(N, D, loss, runs=None, *, flops=None, n_buckets: int = 40, n_budgets: int = 8,
            budgets=None, tolerance: float = 0.1, min_runs: int = 3, n_resamples: int = 200,
            level: float = 0.95, seed: int = 0, approaches=(1, 2), seed_noise=None) -> IsoflopResult:
    """Approaches 1 and 2 (Hoffmann et al. 2022) on runs of parameters ``N``, tokens ``D`` and ``loss``.

    Approach 1: L_env(C) = min over runs of L_run(C); N_opt(C), D_opt(C) are the size and tokens of
    the run on the envelope. Approach 2: at each budget C_i, L ≈ a0 + a1·ln N + a2·(ln N)^2 over the
    runs at C_i, ln N*_i = -a1 / (2 a2). Both then fit N_opt = k_N·C^a and D_opt = k_D·C^b by least
    squares in logs.

    runs: run id per point (several points per run = a training curve; ``None``: one point per
    run). flops: compute per point (default 6·N·D). n_buckets: log-spaced compute values for the
    envelope (approach 1). budgets: approach 2's budgets (see ``choose_budgets``; default the grid
    of ``n_budgets``). tolerance: relative compute window within which a single-point run counts at
    a budget. min_runs: fewest runs at a compute value for it to be used. Intervals on the
    exponents, the coefficients and every budget's optimum come from ``n_resamples`` run resamples.
    approaches: which of 1 and 2 to run (the other is ``None`` in the result).

    seed_noise: a parametric bootstrap over seed noise instead of run resamples (Porian et al. 2024,
    Resolving Discrepancies in Compute-Optimal Scaling of Language Models): the relative standard
    deviation sigma of a run's loss across training seeds, or ``"replicates"`` to estimate it from
    runs repeated at the same parameters and tokens (`replicate_noise`). Each resample keeps every
    run and multiplies its losses by exp(sigma·z), z ~ Normal(0, 1), one draw per run: the spread
    of the optima if the same grid were trained again. Run resamples of a grid with few sizes per
    budget drop sizes and overstate the spread (measured in tests/core/test_isoflop.py); with a
    known sigma the parametric intervals keep their coverage and are narrower. ``None`` (default):
    run resamples.
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
    lbudgets, budget_source = choose_budgets(curves, budgets, n_budgets, tolerance, min_runs)
    ones = np.ones(len(curves))
    keys = {1: ("params", "tokens", "loss"), 2: ("params_opt", "tokens_opt", "loss_opt")}

    skipped: list[dict] = []
    do1, do2 = 1 in approaches, 2 in approaches
    t1 = _table(curves, grid, tol) if do1 else []
    # Budgets the runs share are where they ended: only each run's final point is an isoFLOP point
    # there (an earlier checkpoint of a longer run has not finished its schedule).
    finals = [(r, c[-1:], n[-1:], d[-1:], l[-1:]) for r, c, n, d, l in curves]
    t2 = _table(finals if budget_source == "data" else curves, lbudgets, tol) if do2 else []
    names = [cur[0] for cur in curves]
    sigma, sigma_dof = _seed_sigma(seed_noise, curves)
    p1 = _approach1(t1, ones, names, min_runs) if do1 else []
    p2 = _approach2(t2, ones, min_runs, skipped) if do2 else []
    rng = np.random.default_rng(seed)
    draws = {1: [], 2: []}
    failed = {1: 0, 2: 0}
    # per compute value (bucket or budget): draws of (ln N, ln D, loss), nan where a resample misses it
    at = {1: {p["flops"]: [] for p in p1}, 2: {p["flops"]: [] for p in p2}}
    for _ in range(n_resamples):
        if sigma:  # a parametric resample: every run, trained again with fresh seed noise
            counts, factor = ones, np.exp(sigma * rng.standard_normal(len(curves)))
        else:
            counts, factor = np.bincount(rng.integers(0, len(curves), len(curves)), minlength=len(curves)), None
        for k, pts in ((1, _approach1(t1, counts, names, min_runs, factor) if do1 else None),
                       (2, _approach2(t2, counts, min_runs, factor=factor) if do2 else None)):
            if pts is None:
                continue
            e = _exponents(pts, *keys[k][:2])
            if e is None:
                failed[k] += 1
            else:
                draws[k].append((e[0][0], e[0][1], e[1][0], e[1][1]))
            got = {p["flops"]: p for p in pts}
            for c, acc in at[k].items():
                p = got.get(c)
                acc.append((np.log(p[keys[k][0]]), np.log(p[keys[k][1]]), p[keys[k][2]]) if p else (np.nan,) * 3)

    from ..forecast.draws import percentile_interval  # the one percentile helper (imports scaling.fit)

    def result(k, pts):
        e = _exponents(pts, *keys[k][:2])
        if e is None:
            return None
        d = np.array(draws[k]) if draws[k] else np.full((0, 4), np.nan)
        iv = [tuple(float(v) for v in percentile_interval(d[:, j], level)) if d.size else (np.nan, np.nan)
              for j in range(4)]
        for p in pts:
            a = np.array(at[k][p["flops"]]) if at[k][p["flops"]] else np.full((0, 3), np.nan)
            for j, name in enumerate(keys[k]):
                v = a[:, j] if a.size else np.array([np.nan])
                lo, hi = percentile_interval(np.exp(v) if j < 2 else v, level)
                p[f"{name}_ci_low"], p[f"{name}_ci_high"] = float(lo), float(hi)
            p["reached"] = float(np.mean(np.isfinite(a[:, 0]))) if a.size else float("nan")
        return ApproachResult(PowerFit(e[0][0], e[0][1], iv[0], iv[1]), PowerFit(e[1][0], e[1][1], iv[2], iv[3]),
                              pts, draws=d, n_failed=failed[k], skipped=skipped if k == 2 else [])

    return IsoflopResult(
        approach1=result(1, p1),
        approach2=result(2, p2),
        n_runs=len(curves), n_resamples=n_resamples, n_failed=failed,
        settings={"n_buckets": n_buckets, "n_budgets": n_budgets, "tolerance": tolerance,
                  "min_runs": min_runs, "level": level, "seed": seed, "budgets": budget_source,
                  "budget_values": [float(v) for v in np.exp(lbudgets)],
                  "flops": "6*N*D" if flops is None else "given",
                  "seed_noise": sigma, "seed_noise_source": "none" if seed_noise is None else
                  "replicates" if seed_noise == "replicates" else "given", "seed_noise_dof": sigma_dof},
    )


def _seed_sigma(seed_noise, curves) -> tuple[float, int]:
    """(sigma, degrees of freedom of its estimate; 0 when given or none) from ``seed_noise``."""
    if seed_noise is None:
        return 0.0, 0
    if seed_noise == "replicates":
        sigma, dof = replicate_noise(curves)
        if not dof:
            raise FitError('seed_noise = "replicates" needs runs repeated at the same parameters and tokens; '
                           "none are: give the relative seed noise as a number (e.g. 0.003)", field="seed_noise")
        return sigma, dof
    if isinstance(seed_noise, bool) or not isinstance(seed_noise, (int, float)) or not 0 <= seed_noise < 1:
        raise FitError(f'expected a relative standard deviation in [0, 1) or "replicates", got {seed_noise!r}',
                       field="seed_noise")
    return float(seed_noise), 0
