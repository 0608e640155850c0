"""Comparing arms by scaling: where two groups' fitted laws cross, and which is better at a budget.

    [crossovers]
    budgets = [1e21, 1e23]   # FLOPs at which to give the probability that each arm is better
    max_flops = 1e25         # search range: from the smallest observed compute to this
                             # (default: 1000x the largest observed)
    n_grid = 80              # log-spaced compute values searched
    level = 0.95

For every pair of groups that fit the same law to the same target, the loss each arm reaches at
compute C is the law at the compute-optimal allocation (laws in N and D, Hoffmann et al. 2022)
or the law itself (laws in C alone). The crossover C_x solves L_a(C_x) = L_b(C_x) (the first sign
change of L_a - L_b on the grid, interpolated in log C). Its interval comes from pairing the two
arms' bootstrap draws (independent run resamples of different runs); ``p_cross`` is the share of
draw pairs that cross in range, and ``p_a_better`` the share in which arm a has the lower loss at
a budget. A crossover the point estimate does not reach is reported as "none in range".
"""

from __future__ import annotations

import itertools

import numpy as np
import polars as pl

from scaling.errors import SpecError
from scaling.forecast.allocation import optimal_allocation
from scaling.forecast.draws import percentile_interval
from scaling.spec import CROSSOVER_KEYS as _KEYS


def _curve(fit, params, C):
    """Loss at compute C: the compute-optimal loss (laws in N, D) or the law (laws in C); params may be draws."""
    variables = set(fit.law.variables)
    batched = any(np.ndim(v) > 0 for v in params.values())
    if variables == {"flops"}:
        p = {k: (np.asarray(v, dtype=float)[:, None] if batched else float(v)) for k, v in params.items()}
        with np.errstate(all="ignore"):
            return np.asarray(fit.law.fn({"flops": C[None, :] if batched else C}, p), dtype=float)
    if variables == {"params", "tokens"}:
        return np.asarray(optimal_allocation(fit.law, params, C).loss, dtype=float)
    return None


def _first_crossing(d, lc):
    """log C of the first sign change of d along lc (interpolated), or nan."""
    s = np.sign(d)
    idx = np.flatnonzero((s[:-1] * s[1:] < 0) & np.isfinite(d[:-1]) & np.isfinite(d[1:]))
    if idx.size == 0:
        return np.nan
    i = idx[0]
    return float(lc[i] + (lc[i + 1] - lc[i]) * d[i] / (d[i] - d[i + 1]))


def check_crossover_spec(spec: dict, study: str) -> dict:
    for key in spec:
        if key not in _KEYS:
            raise SpecError(f"unknown key {key!r}; expected one of {sorted(_KEYS)}", study=study,
                            field=f"crossovers.{key}")
    for b in spec.get("budgets", []):
        if not (isinstance(b, (int, float)) and b > 0):
            raise SpecError(f"budgets must be positive FLOPs, got {b!r}", study=study, field="crossovers.budgets")
    return spec


def crossover_rows(study: str, spec: dict, fits: dict, points: pl.DataFrame) -> list[dict]:
    """Rows of the `crossovers` table from restored fits ``{(group, law, target): (fit, boot)}``."""
    spec = check_crossover_spec(spec, study)
    level = float(spec.get("level", 0.95))
    n_grid = int(spec.get("n_grid", 80))
    max_draws = int(spec.get("max_draws", 400))
    budgets = np.asarray(spec.get("budgets", []), dtype=float)
    flops = points.filter(pl.col("is_final"))["flops"].drop_nulls() if "is_final" in points.columns else \
        points["flops"].drop_nulls()
    if flops.len() == 0:
        return []
    lo_c = float(flops.min())
    hi_c = float(spec.get("max_flops", 1000.0 * float(flops.max())))
    C = np.geomspace(lo_c, hi_c, n_grid)
    lc = np.log(C)
    by = {}
    for (group, law, target), (fit, boot) in fits.items():
        if group and fit.converged:
            by.setdefault((law, target), []).append((group, fit, boot))
    out = []
    for (law, target), arms in sorted(by.items()):
        for (ga, fa, ba), (gb, fb, bb) in itertools.combinations(sorted(arms, key=lambda t: t[0]), 2):
            la, lb = _curve(fa, fa.params, C), _curve(fb, fb.params, C)
            if la is None or lb is None:
                continue
            x = _first_crossing(la - lb, lc)
            xa = xb = None
            n_pairs = 0
            if ba is not None and bb is not None:
                da, db = ba.params_draws(), bb.params_draws()
                n_pairs = min(len(next(iter(da.values()))), len(next(iter(db.values()))), max_draws)
                da = {k: v[:n_pairs] for k, v in da.items()}
                db = {k: v[:n_pairs] for k, v in db.items()}
                xa, xb = _curve(fa, da, C), _curve(fb, db, C)
            base = {"study": study, "law": law, "target": target, "group_a": ga, "group_b": gb,
                    "n_draws": n_pairs, "flops_searched_low": lo_c, "flops_searched_high": hi_c}
            row = {**base, "kind": "crossover", "flops": float(np.exp(x)) if np.isfinite(x) else None}
            if xa is not None:
                xs = np.array([_first_crossing(xa[i] - xb[i], lc) for i in range(n_pairs)])
                row["p_cross"] = float(np.mean(np.isfinite(xs))) if n_pairs else None
                if np.isfinite(xs).any():
                    lo, hi = percentile_interval(xs, level)
                    row["flops_ci_low"], row["flops_ci_high"] = float(np.exp(lo)), float(np.exp(hi))
            # which arm is ahead below and above the crossing (or throughout)
            first, last = np.sign(la[0] - lb[0]), np.sign(la[-1] - lb[-1])
            lead = lambda s: ga if s < 0 else gb  # noqa: E731 - lower loss leads
            if np.isfinite(x):
                row["note"] = f"{lead(first)} better below, {lead(last)} better above"
            else:
                row["note"] = f"none in range: {lead(first)} better throughout"
            out.append(row)
            if budgets.size:
                pa, pb = _curve(fa, fa.params, budgets), _curve(fb, fb.params, budgets)
                pba = pbb = None
                if xa is not None:
                    pba = _curve(fa, {k: v for k, v in da.items()}, budgets)
                    pbb = _curve(fb, {k: v for k, v in db.items()}, budgets)
                for j, c in enumerate(budgets):
                    r = {**base, "kind": "budget", "flops": float(c), "predicted_a": float(pa[j]),
                         "predicted_b": float(pb[j])}
                    if pba is not None:
                        ok = np.isfinite(pba[:, j]) & np.isfinite(pbb[:, j])
                        r["p_a_better"] = float(np.mean(pba[ok, j] < pbb[ok, j])) if ok.any() else None
                        r["note"] = f"{ga} better in {r['p_a_better']:.0%} of draws" if ok.any() else None
                    out.append(r)
    return out
