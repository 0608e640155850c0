"""Bootstrap over runs: resample runs with replacement, refit each from the full fit.

Resampling whole runs (not points) keeps a run's correlated points together (Besiroglu et al.
2024 resample points; with one point per run the two coincide). A resample is a vector of
counts per run, applied as point weights, so no data are copied; each refit starts from the
full fit's optimum and takes Gauss-Newton steps with a line search on the target objective
(Huber IRLS, then L-BFGS-B, for the few left short of a stationary point), the fast path. The
refits of a batch of resamples run together, vectorized (``newton_polish_rows``); each ends where
it would alone, and the batches are the same whatever ``n_jobs``.

A warm start stays in the full fit's basin, which understates the spread where the objective is
flat or has several minima. ``restarts="auto"`` (the default) decides per law and data by
evidence: when the warm refits leave a parameter unidentified (or the fit has a flat direction), a
probe of ``PROBE`` resamples is refitted both ways, and if a global refit (grid seeds, as
``fit_law``) reaches a lower objective at parameters away from the warm refit's, every refit
restarts from the global search (flag ``bootstrap_restarts:global``).
"""

from __future__ import annotations

import copy
import multiprocessing as mp
import os
import warnings
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Callable, Mapping

import numpy as np

from ..errors import FitError
from ..laws.base import Law
from ..laws.registry import get_law
from .diagnostics import identification_flags
from .fitter import fit_law
from .polish import newton_polish, newton_polish_rows, polish_rows
from .problem import Problem
from .result import FitResult
from .threads import single_thread_blas


@dataclass
class BootstrapResult:
    """Refits on resampled runs. ``draws`` is (n_resamples, n_params) in ``param_names`` order
    (fixed parameters appear as constant columns); ``converged`` marks refits whose optimizer
    reported convergence and ``n_failed`` counts the others. ``valid`` (converged and finite) is the
    one selection of draws that every interval, prediction and the stored `law_draws` use."""

    law: Law
    fit: FitResult
    param_names: tuple[str, ...]
    draws: np.ndarray
    converged: np.ndarray
    level: float = 0.95
    seed: int = 0
    resampled: str = "runs"
    n_groups: int = 0
    settings: dict = field(default_factory=dict)
    flags: list[str] = field(default_factory=list)
    restarts: str = "warm"

    @property
    def n_resamples(self) -> int:
        return int(self.draws.shape[0])

    @property
    def n_failed(self) -> int:
        return int(np.sum(~self.converged))

    @property
    def valid(self) -> np.ndarray:
        """Draws that enter intervals: the refit converged and every value is finite."""
        return np.asarray(self.converged, dtype=bool) & np.all(np.isfinite(self.draws), axis=1)

    def _ok(self) -> np.ndarray:
        return self.valid

    def interval(self, name: str, level: float | None = None) -> tuple[float, float]:
        """Percentile interval of parameter ``name`` at ``level`` (default: the result's level)."""
        j = self.param_names.index(name)
        values = self.draws[self._ok(), j]
        if values.size == 0:
            return float("nan"), float("nan")
        lo, hi = percentile_interval(values, level or self.level)
        return float(lo), float(hi)

    def intervals(self, level: float | None = None) -> dict[str, tuple[float, float]]:
        return {n: self.interval(n, level) for n in self.param_names}

    def params_draws(self) -> dict[str, np.ndarray]:
        ok = self._ok()
        return {n: self.draws[ok, j] for j, n in enumerate(self.param_names)}

    def predict_interval(self, X: Mapping[str, np.ndarray], level: float | None = None):
        """``(median, lo, hi)`` over draws of the law evaluated on ``X`` (arrays of length n)."""
        Xa = {v: np.asarray(X[v], dtype=float) for v in self.law.variables}
        p = {n: d[:, None] for n, d in self.params_draws().items()}
        with np.errstate(all="ignore"):
            pred = np.asarray(self.law.fn(Xa, p), dtype=float)
        med = np.nanmedian(pred, axis=0)
        lo, hi = percentile_interval(pred, level or self.level)
        return med, lo, hi

    def prediction_interval(self, X: Mapping[str, np.ndarray], X_fit: Mapping[str, np.ndarray], y_fit,
                            level: float | None = None, seed: int = 0):
        """``(lo, hi)`` for a new observation at ``X``: each parameter draw's prediction plus a residual
        resampled from the full fit's residuals on ``(X_fit, y_fit)``, in the fit's residual space
        (log: multiplicative scatter; linear: additive). Wider than `predict_interval`, which covers
        only the uncertainty of the law's parameters, not the scatter of single runs around it."""
        Xa = {v: np.asarray(X[v], dtype=float) for v in self.law.variables}
        p = {n: d[:, None] for n, d in self.params_draws().items()}
        with np.errstate(all="ignore"):
            pred = np.asarray(self.law.fn(Xa, p), dtype=float)  # (draws, points)
        y_fit = np.asarray(y_fit, dtype=float)
        fitted = self.fit.predict(X_fit)
        log_space = self.fit.settings.get("space", "log") == "log"
        resid = np.log(y_fit) - np.log(fitted) if log_space else y_fit - fitted
        resid = resid[np.isfinite(resid)]
        rng = np.random.default_rng(seed)
        r = rng.choice(resid, size=pred.shape) if resid.size else np.zeros(pred.shape)
        with np.errstate(all="ignore"):
            sample = pred * np.exp(r) if log_space else pred + r
        return percentile_interval(sample, level or self.level)

    def derived(self, fn: Callable[[dict], float], level: float | None = None):
        """``(estimate, lo, hi)`` of a derived quantity ``fn(params)`` (e.g. beta/(alpha+beta)):
        the estimate from the full fit, the interval from the draws."""
        est = float(fn(dict(self.fit.params)))
        vals = np.array([fn(dict(zip(self.param_names, row))) for row in self.draws[self._ok()]], dtype=float)
        lo, hi = percentile_interval(vals, level or self.level)
        return est, float(lo), float(hi)


def _quantiles(level: float):
    if not 0.0 < level < 1.0:
        raise ValueError(f"expected a level in (0, 1), got {level}")
    return [(1 - level) / 2, (1 + level) / 2]


def percentile_interval(draws, level: float = 0.95, axis: int = 0):
    """The one percentile-interval rule of the library: ``(lo, hi)``, the (1 - level)/2 and (1 + level)/2
    quantiles (linear interpolation) of the finite ``draws`` along ``axis`` (NaN and inf, failed refits or
    overflowing predictions, are left out). Arrays for array draws, NaN where a slice has no finite draw.
    Every bootstrap interval uses it (fits, forecasts, mixing laws)."""
    draws = np.asarray(draws, dtype=float)
    draws = np.where(np.isfinite(draws), draws, np.nan)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices give NaN, as documented
        lo, hi = np.nanquantile(draws, _quantiles(level), axis=axis)
    return lo, hi


def resample_counts(n_groups: int, n_resamples: int, seed: int) -> np.ndarray:
    """Seeded bootstrap resamples of ``n_groups`` runs, as draw counts per run, shape (n_resamples, n_groups):
    each resample draws ``n_groups`` runs with replacement (``numpy.random.default_rng(seed)``). Every
    bootstrap over runs (`bootstrap`, the mixing laws, the nested mixing pipeline, BiMix) draws these."""
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, n_groups, size=(n_resamples, n_groups))
    return np.stack([np.bincount(p, minlength=n_groups) for p in picks]).astype(float) if n_resamples else \
        np.zeros((0, n_groups))


_WORK: dict = {}
PROBE = 4
PROBE_OBJECTIVE, PROBE_DISTANCE = 1e-4, 0.05
RESTARTS = ("auto", "warm", "global")


def _global_refits(problem: Problem, W):
    """For each row of weights in ``W``, the refit ``fit_law`` makes from its global search (grid
    seeds, then refinement), the seeds of all rows refined together: (z, objective, converged) per
    row; a row whose grid has no finite seed is returned as not converged."""
    from .seeding import seed_grid

    starts, owner, has = [], [], np.zeros(len(W), dtype=bool)
    for i, w in enumerate(W):
        weighted = copy.copy(problem)
        weighted.w = w
        seeds, _ = seed_grid(weighted)
        has[i] = bool(seeds)
        starts += [problem.to_z(s) for s in seeds]
        owner += [int(np.sum(has[:i + 1])) - 1] * len(seeds)
    k = len(problem.names)
    Z, F, ok = np.full((len(W), k), np.nan), np.full(len(W), np.nan), np.zeros(len(W), dtype=bool)
    if starts:
        rows = np.flatnonzero(has)
        ends = polish_rows(problem, np.array(starts), np.asarray(W)[rows][owner], owner)
        for i, (z, _, conv, _, _) in zip(rows, ends):
            Z[i] = problem.to_z(problem.theta(z))  # as fit_law reports it: parameters, back to coordinates
            F[i], ok[i] = problem.value(Z[i], W[i]), conv
    return Z, F, ok


def _global_refit(problem: Problem, w):
    """One refit from the global search (grid seeds + refinement), as ``fit_law`` does on the full data."""
    Z, F, ok = _global_refits(problem, np.asarray(w, dtype=float)[None, :])
    if not np.all(np.isfinite(Z[0])):
        raise FitError("no finite starting point for the global refit")
    return Z[0], float(F[0]), bool(ok[0])


# refits vectorized together: at most this many (rows x points x free parameters) Jacobian entries
BATCH_ENTRIES = 2_000_000


def _refit_chunk(rows: np.ndarray):
    problem, z0, base_w, point_group, counts = (_WORK[k] for k in ("problem", "z0", "w", "group", "counts"))
    glob = _WORK.get("global", False)
    out = np.empty((rows.size, len(problem.law.params)))
    ok = np.zeros(rows.size, dtype=bool)
    names = problem.law.param_names
    with single_thread_blas(), np.errstate(all="ignore"):
        size = _batch_size(problem, glob)
        if glob:  # every refit from its own global search; the seeds of all refined together
            for s in range(0, rows.size, size):
                part = rows[s:s + size]
                Z, _, conv = _global_refits(problem, base_w * counts[part][:, point_group])
                th = problem.theta_rows(Z)
                out[s:s + part.size] = np.column_stack([np.broadcast_to(th[n], (part.size, 1))[:, 0] for n in names])
                ok[s:s + part.size] = conv
            return out, ok
        # warm refits: Gauss-Newton on many resamples at once (each row as it would be alone)
        for s in range(0, rows.size, size):
            part = rows[s:s + size]
            W = base_w * counts[part][:, point_group]
            Z, _, conv, _, _ = newton_polish_rows(problem, z0, W)
            th = problem.theta_rows(Z)
            out[s:s + part.size] = np.column_stack([np.broadcast_to(th[n], (part.size, 1))[:, 0] for n in names])
            ok[s:s + part.size] = conv
    return out, ok


def _needs_global(problem: Problem, z0, base_w, point_group, counts) -> bool:
    """True when, on a probe of resamples, a global refit finds a lower objective (by more than
    ``PROBE_OBJECTIVE`` relative) at parameters more than ``PROBE_DISTANCE`` away (in the optimizer's
    coordinates) from the warm-started refit: the objective is flat or multi-modal there."""
    with single_thread_blas(), np.errstate(all="ignore"):
        for r in range(min(PROBE, counts.shape[0])):
            w = base_w * counts[r][point_group]
            zw, fw, _, _, _ = newton_polish(problem, z0, w)
            try:
                zg, fg, conv = _global_refit(problem, w)
            except Exception:
                continue
            if conv and fg < fw - PROBE_OBJECTIVE * abs(fw) and np.max(np.abs(zg - zw)) > PROBE_DISTANCE:
                return True
    return False


def _refits(n_resamples: int, n_jobs: int, use_global: bool):
    _WORK["global"] = use_global
    rows = np.arange(n_resamples)
    # the same batches of refits whatever the number of workers, so the draws do not depend on it
    size = _batch_size(_WORK["problem"], use_global)
    chunks = [rows[s:s + size] for s in range(0, n_resamples, size)]
    n_jobs = max(1, min(int(n_jobs), os.cpu_count() or 1, len(chunks)))
    if n_jobs == 1:
        parts = [_refit_chunk(c) for c in chunks]
    else:
        with ProcessPoolExecutor(n_jobs, mp_context=mp.get_context("fork")) as ex:
            parts = list(ex.map(_refit_chunk, chunks))
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def _batch_size(problem: Problem, use_global: bool) -> int:
    """Refits per batch: at most ``BATCH_ENTRIES`` Jacobian entries (a global refit has 4 seeds),
    and at most a quarter of the default 1,000 so that workers share the batches."""
    size = max(1, BATCH_ENTRIES // max(1, problem.y.size * (len(problem.names) + 1)))
    return max(1, min(size // 4 if use_global else size, 250))


def bootstrap(law: Law | str, X: Mapping[str, np.ndarray], y, runs=None, *, n_resamples: int = 1000,
              seed: int = 0, level: float = 0.95, n_jobs: int = 1, fit: FitResult | None = None,
              restarts: str = "auto", **fit_kwargs) -> BootstrapResult:
    """Bootstrap intervals for every parameter of ``law`` fitted to ``(X, y)``.

    runs: a run id per point; resampling draws runs with replacement (each point its own run when
    ``None``). fit: the full-data fit if already computed (else ``fit_law`` is called with
    ``fit_kwargs``). n_jobs: worker processes (fork) for the refits; results do not depend on it.
    Resampling is seeded by ``seed`` (``numpy.random.default_rng``). restarts: ``"warm"`` (every
    refit from the full fit), ``"global"`` (every refit from the global search) or ``"auto"`` (global
    when a probe of resamples shows warm starts miss the global optimum). The result's ``flags``
    name parameters the data do not identify (``not_identified:<name>``, see ``diagnostics``).
    """
    law = get_law(law)
    if n_resamples < 1:
        raise ValueError(f"expected n_resamples >= 1, got {n_resamples}")
    if restarts not in RESTARTS:
        raise ValueError(f"expected restarts in {RESTARTS}, got {restarts!r}")
    fit = fit or fit_law(law, X, y, runs=runs, **fit_kwargs)
    st = fit.settings  # refit with the full fit's own settings
    problem = Problem(law, X, y, objective=st["objective"], delta=st["delta"], space=st["space"],
                      weights=fit_kwargs.get("weights"), fixed=st["fixed"], bounds=st["bounds"] or None,
                      tau=st["tau"])
    n = problem.y.size
    if runs is None:
        group, n_groups, resampled = np.arange(n), n, "points"
    else:
        runs = np.asarray(runs).ravel()
        if runs.size != n:
            raise FitError(f"expected {n} run ids (one per point), got {runs.size}", field="runs")
        _, group = np.unique(runs, return_inverse=True)
        n_groups, resampled = int(group.max()) + 1, "runs"
    counts = resample_counts(n_groups, n_resamples, seed)
    z0 = problem.to_z(fit.params)
    _WORK.update(problem=problem, z0=z0, w=problem.w, group=group, counts=counts, settings=st)
    flat = fit.diagnostics.get("flat_parameters", ())
    try:
        use_global = restarts == "global"
        draws, ok = _refits(n_resamples, n_jobs, use_global)
        flags = identification_flags(problem, draws[ok] if ok.sum() >= 2 else draws, level, flat_parameters=flat)
        # the evidence for global restarts is only sought where warm refits already look unsure
        if restarts == "auto" and (flags or "flat_direction" in fit.flags) and \
                _needs_global(problem, z0, problem.w, group, counts):
            use_global = True
            draws, ok = _refits(n_resamples, n_jobs, True)
            flags = identification_flags(problem, draws[ok] if ok.sum() >= 2 else draws, level, flat_parameters=flat)
    finally:
        _WORK.clear()
    if use_global:
        flags.append("bootstrap_restarts:global")
    return BootstrapResult(law=law, fit=fit, param_names=law.param_names, draws=draws, converged=ok,
                           level=level, seed=seed, resampled=resampled, n_groups=n_groups,
                           settings={**fit.settings, "restarts": "global" if use_global else "warm"},
                           flags=flags, restarts="global" if use_global else "warm")
