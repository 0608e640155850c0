"""Starting points without user guesses: a grid over the non-linear parameters, with the
linear ones (E, A, B, ...) solved at every grid point by non-negative least squares on
relative residuals (variable projection), scored on the real objective, best distinct seeds kept.
"""

from __future__ import annotations

import itertools

import numpy as np
from scipy.optimize import nnls

from ..errors import FitError
from .objective import point_loss, residuals
from .problem import Problem

GRID_BUDGET = 2000
CHUNK = 256


def _axis(problem: Problem, p, n: int) -> np.ndarray:
    lo, hi = problem.bounds[p.name]
    g = problem.grid[p.name]
    if g is None:
        g = (lo, hi)
    glo, ghi = max(g[0], lo), min(g[1], hi)
    if p.log:
        glo = max(glo, 1e-300)
        if not (np.isfinite(glo) and np.isfinite(ghi)) or glo >= ghi:
            raise FitError(f"parameter {p.name!r} needs a finite range to search: give it finite bounds, got "
                           f"({lo}, {hi})", field=p.name)
        return np.geomspace(glo, ghi, n)
    if not (np.isfinite(glo) and np.isfinite(ghi)):
        raise FitError(f"parameter {p.name!r} needs a finite range to search: give it finite bounds, got "
                       f"({lo}, {hi})", field=p.name)
    if glo == ghi:
        return np.array([glo])
    return np.linspace(glo, ghi, n)


def grid_points(problem: Problem, budget: int = GRID_BUDGET):
    """The seed grid over free non-linear parameters: (names, values (G, k), index (G, k))."""
    nonlin = [p for p in problem.free if not p.linear]
    if not nonlin:
        return [], np.zeros((1, 0)), np.zeros((1, 0), dtype=int)
    per = int(min(200, max(3, np.floor(budget ** (1.0 / len(nonlin)) + 1e-9))))
    axes = [_axis(problem, p, per) for p in nonlin]
    idx = np.array(list(itertools.product(*[range(len(a)) for a in axes])), dtype=int)
    vals = np.column_stack([axes[j][idx[:, j]] for j in range(len(axes))])
    return [p.name for p in nonlin], vals, idx


def _solve_linear(B, t, lows, highs):
    """Batched least squares t ≈ B c with lows <= c <= highs (NNLS on shifted variables where needed)."""
    G, n, k = B.shape
    BtB = np.einsum("gni,gnj->gij", B, B) + 1e-12 * np.eye(k)
    Btt = np.einsum("gni,gn->gi", B, t)
    try:
        c = np.linalg.solve(BtB, Btt[..., None])[..., 0]
    except np.linalg.LinAlgError:
        c = np.full((G, k), np.nan)
    bad = ~np.all(np.isfinite(c) & (c >= lows) & (c <= highs), axis=1)
    shift = np.where(np.isfinite(lows), lows, 0.0)
    for g in np.flatnonzero(bad):
        Bg = B[g]
        tg = t[g] - Bg @ shift
        scale = np.linalg.norm(Bg, axis=0)
        scale[scale == 0] = 1.0
        try:
            sol, _ = nnls(Bg / scale, tg, maxiter=50 * k)
            c[g] = sol / scale + shift
        except RuntimeError:
            c[g] = shift
    return np.clip(c, lows, highs)


def seed_grid(problem: Problem, n_starts: int = 4, budget: int = GRID_BUDGET):
    """Best ``n_starts`` distinct grid seeds as parameter dicts, with their objective values."""
    names, vals, idx = grid_points(problem, budget)
    lin = [p for p in problem.free if p.linear]
    lows = np.array([problem.bounds[p.name][0] for p in lin])
    highs = np.array([problem.bounds[p.name][1] for p in lin])
    y, w, space = problem.y, problem.w, problem.space
    rw = np.sqrt(w) / (y if space == "log" else 1.0)
    G = vals.shape[0]
    scores = np.empty(G)
    lin_vals = np.zeros((G, len(lin)))
    for s in range(0, G, CHUNK):
        e = min(G, s + CHUNK)
        th = dict(problem.fixed)
        th.update({n: vals[s:e, j][:, None] for j, n in enumerate(names)})
        for p in lin:
            th[p.name] = 0.0
        with np.errstate(all="ignore"):
            off = np.broadcast_to(problem.law.fn(problem.X, th), (e - s, y.size)).astype(float)
            if lin:
                B = np.empty((e - s, y.size, len(lin)))
                for j, p in enumerate(lin):
                    th[p.name] = 1.0
                    B[..., j] = np.broadcast_to(problem.law.fn(problem.X, th), (e - s, y.size)) - off
                    th[p.name] = 0.0
                ok = np.all(np.isfinite(B), axis=(1, 2)) & np.all(np.isfinite(off), axis=1)
                Bw = np.where(ok[:, None, None], B, 0.0) * rw[:, None]
                tw = np.where(ok[:, None], y - off, 0.0) * rw
                c = _solve_linear(Bw, tw, lows, highs)
                lin_vals[s:e] = c
                pred = off + np.einsum("gnk,gk->gn", np.where(ok[:, None, None], B, 0.0), c)
                pred[~ok] = np.nan
            else:
                pred = off
            r = residuals(pred, y, space)
            rho, _ = point_loss(r, problem.objective, problem.delta, problem.tau)
            sc = rho @ w
        scores[s:e] = np.where(np.isfinite(sc), sc, np.inf)
    order = np.argsort(scores, kind="stable")
    chosen: list[int] = []
    for g in order:
        if not np.isfinite(scores[g]) or len(chosen) >= n_starts:
            break
        if all(np.max(np.abs(idx[g] - idx[c])) >= 2 for c in chosen) or not names:
            chosen.append(int(g))
        if not names:
            break
    seeds = []
    for g in chosen:
        d = dict(problem.fixed)
        d.update({n: float(vals[g, j]) for j, n in enumerate(names)})
        d.update({p.name: float(lin_vals[g, j]) for j, p in enumerate(lin)})
        seeds.append(d)
    return seeds, scores[chosen]
