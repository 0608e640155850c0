"""Observational scaling laws (Ruan, Maddison and Hashimoto 2024) over a published-results table.

1. Capability space: the models' benchmark scores S (models x benchmarks, the target left out)
   -> principal components P = (S - mean) V_K. Missing scores are imputed by EM-PCA: start from
   each benchmark's mean, then repeatedly replace the missing entries by the rank-K reconstruction
   until they change by less than 1e-6 (`impute_pca`). Every model's observed scores shape the
   space (the held-out models' too, as in the paper); the target never does.
2. Compute maps: per family f, P_k(m) = beta_{k,f} · ln C_m + alpha_{k,f}, fitted on the models at
   or below the compute cut-off. A family with fewer than ``min_family_models`` such models (or a
   single compute value) falls back to the shared map: the slope beta_k of one regression over all
   families with one intercept per family (`map = "shared_slope"`, flagged); a family with no
   model below the cut-off gets the shared slope and the mean of the fitted families' intercepts,
   a typical family (`"average"`, flagged, no efficiency).
   Compute efficiency of family f against a reference family: the reference reaches first-component
   capability P* at C* (the geometric mean of its fitted models' compute); family f reaches P* at
   C_f = exp((P* - alpha_{1,f}) / beta_{1,f}), and its efficiency is C* / C_f: how many times less
   compute f needs for the same capability (1 for the reference; with shared slopes this is
   exp((alpha_{1,f} - alpha_{1,ref}) / beta_1) at every capability).
3. Link: target = floor + (ceiling - floor) · sigmoid(w · P + b), fitted by least squares on the
   models at or below the cut-off. Accuracies rise with capability and saturate, which the sigmoid
   models; capability rises with log compute, so the target rises with compute. Models above the
   cut-off are held out and predicted from their observed scores (the link) and from their compute
   and family alone (maps then link).

Intervals come from resampling models with replacement (imputation, PCA, maps and link refitted
each time; each resample's components are matched to the full fit's by order and sign). They are
percentile intervals of parameter uncertainty; the prediction intervals (`intervals["prediction"]`,
`["prediction_from_compute"]`) add to each draw a residual of that resample's link drawn at random.
Neither carries the misfit of a linear map from log compute to a component, so on held-out models
they can cover far less than their level (measured in the tests).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import least_squares

from ..errors import FitError

MAPS = ("family", "shared_slope", "average")


def impute_pca(S: np.ndarray, k: int, n_iter: int = 100, tol: float = 1e-6) -> np.ndarray:
    """Missing entries of S (nan) filled by an iterated rank-k reconstruction (EM-PCA)."""
    S = np.array(S, dtype=float)
    miss = ~np.isfinite(S)
    if not miss.any():
        return S
    col = np.nanmean(S, axis=0)
    X = np.where(miss, col, S)
    for _ in range(n_iter):
        mu = X.mean(axis=0)
        U, s, Vt = np.linalg.svd(X - mu, full_matrices=False)
        R = mu + (U[:, :k] * s[:k]) @ Vt[:k]
        change = np.max(np.abs(R[miss] - X[miss]))
        X[miss] = R[miss]
        if change < tol:
            break
    return X


def _pca(X: np.ndarray, k: int, align: np.ndarray | None = None):
    """Mean, loadings (benchmarks x k) and explained-variance ratios. Without ``align`` each component's
    loadings sum to a positive number (higher = more capable); with it, the components are put in the
    order and sign that best match ``align``'s (a resample matched to the full fit)."""
    mu = X.mean(axis=0)
    U, s, Vt = np.linalg.svd(X - mu, full_matrices=False)
    var = s ** 2
    V, evr = Vt[:k].T, var[:k] / var.sum()
    if align is None:
        return mu, V * np.where(V.sum(axis=0) < 0, -1.0, 1.0), evr
    # components whose variances are close can swap places between resamples: match them
    C = np.abs(align.T @ V)
    best = max(itertools.permutations(range(k)), key=lambda p: sum(C[i, j] for i, j in enumerate(p))) \
        if k <= 6 else tuple(range(k))
    V, evr = V[:, best], evr[list(best)]
    return mu, V * np.where(np.sum(V * align, axis=0) < 0, -1.0, 1.0), evr


def _sigmoid(z):
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def _fit_link(P, y, floor, ceiling):
    K = P.shape[1]

    def res(x):
        return floor + (ceiling - floor) * _sigmoid(P @ x[:K] + x[K]) - y

    x0 = np.zeros(K + 1)
    x0[0] = 1.0 / max(np.std(P[:, 0]), 1e-9)
    x0[K] = -np.mean(P[:, 0]) * x0[0]
    out = least_squares(res, x0, method="lm" if y.size > K + 1 else "trf")
    return out.x, bool(out.success)


def _maps(P, logc, fam_idx, n_fam, min_models):
    """Per-family slopes and intercepts (n_fam, K), the map kind per family, and the pooled slope.

    P, logc, fam_idx: the models the maps are fitted on (compute known, at or below the cut-off)."""
    K = P.shape[1]
    slope = np.full((n_fam, K), np.nan)
    icpt = np.full((n_fam, K), np.nan)
    kind = np.array(["average"] * n_fam, dtype=object)
    present = np.unique(fam_idx)
    if present.size == 0:
        return slope, icpt, kind, np.full(K, np.nan)
    A = np.zeros((logc.size, 1 + present.size))
    A[:, 0] = logc
    A[np.arange(logc.size), 1 + np.searchsorted(present, fam_idx)] = 1.0
    coef, *_ = np.linalg.lstsq(A, P, rcond=None)
    pooled = coef[0]
    if np.ptp(logc) == 0:  # one compute value overall: no slope can be fitted
        pooled = np.full(K, np.nan)
    slope[:] = pooled
    icpt[:] = coef[1:].mean(axis=0)  # a family with no fitted model: the shared slope, the mean intercept
    kind[:] = "average"
    icpt[present] = coef[1:]
    kind[present] = "shared_slope"
    for f in present:
        m = fam_idx == f
        if m.sum() >= min_models and np.unique(logc[m]).size >= 2:
            B = np.column_stack([logc[m], np.ones(m.sum())])
            c, *_ = np.linalg.lstsq(B, P[m], rcond=None)
            slope[f], icpt[f], kind[f] = c[0], c[1], "family"
    return slope, icpt, kind, pooled


def _state_predict(st, P):
    w, b = st["link"][:-1], st["link"][-1]
    return st["floor"] + (st["ceiling"] - st["floor"]) * _sigmoid(P @ w + b)


def _forecast(st, logc, fam):
    """Target from compute (ln C) and family index through the maps, then the link."""
    logc, fam = np.atleast_1d(np.asarray(logc, dtype=float)), np.atleast_1d(np.asarray(fam, dtype=int))
    P = st["slope"][fam] * logc[:, None] + st["intercepts"][fam]
    return _state_predict(st, P)


@dataclass
class ObservationalResult:
    benchmarks: tuple[str, ...]  # the capability space's benchmarks (the target left out)
    target: str
    n_components: int
    explained_variance: np.ndarray  # (K,) ratios of the full-data PCA
    loadings: np.ndarray  # (n_benchmarks, K)
    families: tuple[str, ...]
    slopes: np.ndarray  # (n_families, K) beta per ln compute of each family's map (nan: no map)
    intercepts: np.ndarray  # (n_families, K)
    family_map: tuple[str, ...]  # per family: "family", "shared_slope" (too few models) or "average" (none fitted)
    n_map_models: np.ndarray  # per family: models its map was fitted on
    efficiency: dict[str, float]  # compute multiplier relative to the reference family
    reference_family: str
    reference_flops: float  # C*: where the efficiencies compare capability (geometric mean of the reference's models)
    link: np.ndarray  # (K + 1,) w, b
    floor: float
    ceiling: float
    cutoff: float | None
    capabilities: np.ndarray  # (n_models, K) every model's components
    imputed: np.ndarray  # (n_models,) benchmark scores imputed per model
    train: np.ndarray  # bool per model: fitted the link (and the maps, when its compute is known)
    held_out: np.ndarray  # bool per model: compute above the cut-off, target observed
    predicted: np.ndarray  # target from the model's scores (link on its components)
    predicted_from_compute: np.ndarray  # target from compute and family (maps then link); nan without compute
    intervals: dict = field(default_factory=dict)  # name -> (lo, hi) arrays over model resamples
    draws: dict = field(default_factory=dict)
    converged: bool = True
    messages: list[str] = field(default_factory=list)
    _state: dict = field(default_factory=dict, repr=False)

    @property
    def slope(self) -> np.ndarray:
        """The reference family's slopes (K,)."""
        return self.slopes[self.families.index(self.reference_family)]

    def family_flags(self, family: str) -> list[str]:
        i = self.families.index(family)
        out = []
        if self.family_map[i] == "shared_slope":
            out.append("shared_slope")
        if self.family_map[i] == "average":
            out.append("no_fitted_model")
        if not self.slopes[i, 0] > 0:
            out.append("slope_not_positive")
        return out

    def forecast(self, flops, family: str) -> float:
        """Target predicted for a model of ``family`` trained with ``flops`` (in the table's units)."""
        if family not in self.families:
            return float("nan")
        return float(_forecast(self._state, np.log(float(flops)), self.families.index(family))[0])

    def forecast_interval(self, flops, family: str, level: float = 0.95, *,
                          prediction: bool = False) -> tuple[float, float]:
        """Percentile interval over the model resamples; ``prediction`` adds a resampled link residual."""
        from ..forecast.draws import percentile_interval  # the one percentile helper (imports scaling.fit)

        if family not in self.families:
            return float("nan"), float("nan")
        f = self.families.index(family)
        states = self.draws.get("states", [])
        vals = np.array([_forecast(st, np.log(float(flops)), f)[0] for st in states])
        if prediction and vals.size:
            rng = np.random.default_rng(len(states))
            vals = vals + np.array([rng.choice(st["residuals"]) for st in states])
        if not np.isfinite(vals).any():
            return float("nan"), float("nan")
        lo, hi = percentile_interval(vals, level)
        return float(lo), float(hi)


def _fit_once(S, y, logc, fam_idx, n_fam, k, fit_mask, floor, ceiling, min_models, ref, align=None,
              X_project=None):
    """One fit on the models given; ``X_project``: the full table's imputed scores, projected with this fit."""
    X = impute_pca(S, k)
    mu, V, evr = _pca(X, k, align)
    P = (X - mu) @ V
    has_c = np.isfinite(logc)
    on_map = fit_mask & has_c
    slope, icpt, kind, pooled = _maps(P[on_map], logc[on_map], fam_idx[on_map], n_fam, min_models)
    train = fit_mask & np.isfinite(y)
    link, ok = _fit_link(P[train], y[train], floor, ceiling)
    state = {"slope": slope, "intercepts": icpt, "link": link, "floor": floor, "ceiling": ceiling}
    fitted = _state_predict(state, P[train])
    state["residuals"] = y[train] - fitted
    ref_models = on_map & (fam_idx == ref)
    eff = np.full(n_fam, np.nan)
    logc_ref = float(np.mean(logc[ref_models])) if ref_models.any() else np.nan
    if np.isfinite(logc_ref) and slope[ref, 0] > 0:
        p_star = slope[ref, 0] * logc_ref + icpt[ref, 0]
        with np.errstate(all="ignore"):
            lc_f = np.where(slope[:, 0] > 0, (p_star - icpt[:, 0]) / slope[:, 0], np.nan)
        eff = np.where(kind == "average", np.nan, np.exp(logc_ref - lc_f))
        eff[ref] = 1.0
    n_map = np.bincount(fam_idx[on_map], minlength=n_fam)
    out = dict(mu=mu, V=V, evr=evr, P=P, slope=slope, icpt=icpt, kind=kind, pooled=pooled, link=link, ok=ok,
               train=train, eff=eff, state=state, logc_ref=logc_ref, n_map=n_map)
    if X_project is not None:
        out["P_project"] = (X_project - mu) @ V
    return out


def observational_scaling(scores, benchmarks, flops, families, *, target: str, n_components: int = 3,
                          cutoff: float | None = None, floor: float = 0.0, ceiling: float = 1.0,
                          reference_family: str | None = None, min_family_models: int = 3,
                          n_resamples: int = 200, level: float = 0.95, seed: int = 0) -> ObservationalResult:
    """Fit an observational scaling law (see the module docstring).

    scores: (models x benchmarks) with nan for missing; ``target`` is one of ``benchmarks`` and is
    left out of the capability space (it is what the space predicts). flops: training compute per
    model (nan when unknown; any unit, ``cutoff`` in the same). cutoff: models with compute above it
    are held out (None: no hold-out); models of unknown compute then shape the capability space only.
    families: family name per model. floor, ceiling: the target's chance score and its maximum.
    min_family_models: fewest models (at or below the cut-off) for a family's own map.
    reference_family: efficiencies are relative to it (default: the family with most fitted models).
    Intervals from ``n_resamples`` model resamples at ``level``.
    """
    from ..forecast.draws import percentile_interval  # the one percentile helper (imports scaling.fit)

    S = np.asarray(scores, dtype=float)
    benchmarks = list(benchmarks)
    if S.ndim != 2:
        raise FitError(f"expected a models x benchmarks table of scores, got shape {S.shape}")
    n, m = S.shape
    if m != len(benchmarks):
        raise FitError(f"expected {len(benchmarks)} benchmark columns, got {m}")
    if target not in benchmarks:
        raise FitError(f"target {target!r} is not one of the benchmarks {benchmarks}", field="target")
    if not 1 <= n_components <= m - 1:
        raise FitError(f"expected 1 <= n_components <= {m - 1} (the benchmarks besides the target), "
                       f"got {n_components}", field="n_components")
    if not floor < ceiling:
        raise FitError(f"expected floor < ceiling, got {floor} and {ceiling}", field="floor")
    if isinstance(min_family_models, bool) or not isinstance(min_family_models, (int, np.integer)) \
            or min_family_models < 2:
        raise FitError(f"expected an integer of at least 2, got {min_family_models!r}", field="min_family_models")
    C = np.asarray(flops, dtype=float).ravel()
    fam = [str(f) for f in families]
    if C.size != n or len(fam) != n:
        raise FitError(f"expected {n} compute values and families, got {C.size} and {len(fam)}")
    bad = np.isfinite(C) & (C <= 0)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise FitError(f"expected positive compute, got {C[i]!r}", field="flops", row=i)
    if cutoff is not None and not (np.isfinite(cutoff) and cutoff > 0):
        raise FitError(f"expected a positive compute cut-off, got {cutoff!r}", field="cutoff")
    t = benchmarks.index(target)
    Sb, y = np.delete(S, t, axis=1), S[:, t]
    empty = ~np.isfinite(Sb).any(axis=0)
    if empty.any():
        name = [b for b in benchmarks if b != target][int(np.flatnonzero(empty)[0])]
        raise FitError(f"benchmark {name!r} has no score for any model", field="benchmarks")
    none = ~np.isfinite(Sb).any(axis=1)
    if none.any():
        raise FitError(f"model {int(np.flatnonzero(none)[0])} has no benchmark score besides the target",
                       row=int(np.flatnonzero(none)[0]))
    logc = np.log(np.where(np.isfinite(C), C, np.nan))
    families_u = sorted(set(fam))
    fam_idx = np.array([families_u.index(f) for f in fam])
    fit_mask = np.ones(n, bool) if cutoff is None else (np.isfinite(C) & (C <= cutoff))
    held_out = np.zeros(n, bool) if cutoff is None else (np.isfinite(C) & (C > cutoff) & np.isfinite(y))
    n_train = int(np.sum(fit_mask & np.isfinite(y)))
    if n_train < n_components + 2:
        where = f"at or below the cut-off {cutoff:g}" if cutoff is not None else "with a target score"
        raise FitError(f"{n_train} models {where}; the link needs at least {n_components + 2}",
                       field="cutoff" if cutoff is not None else "target")
    on_map = fit_mask & np.isfinite(C)
    counts = {f: int(np.sum(on_map & (fam_idx == i))) for i, f in enumerate(families_u)}
    if reference_family is None:
        reference = max(families_u, key=lambda f: (counts[f], f))
    elif reference_family not in families_u:
        raise FitError(f"reference family {reference_family!r} is not among the families {families_u}",
                       field="reference_family")
    else:
        reference = reference_family
    if counts[reference] == 0:
        raise FitError(f"reference family {reference!r} has no model of known compute at or below the cut-off",
                       field="reference_family")
    ref = families_u.index(reference)
    X_full = impute_pca(Sb, n_components)
    full = _fit_once(Sb, y, logc, fam_idx, len(families_u), n_components, fit_mask, floor, ceiling,
                     min_family_models, ref)
    P = full["P"]
    pred = _state_predict(full["state"], P)
    pred_c = np.full(n, np.nan)
    ok_c = np.isfinite(logc)
    if ok_c.any():
        pred_c[ok_c] = _forecast(full["state"], logc[ok_c], fam_idx[ok_c])
    rng = np.random.default_rng(seed)
    keys = ("explained_variance", "loadings", "slopes", "efficiency", "link", "predicted",
            "predicted_from_compute", "prediction", "prediction_from_compute")
    acc: dict[str, list] = {k: [] for k in keys}
    states = []
    failed = 0
    for _ in range(n_resamples):
        idx = rng.integers(0, n, n)
        if np.sum(fit_mask[idx] & np.isfinite(y[idx])) < n_components + 2 or not np.isfinite(Sb[idx]).any(0).all():
            failed += 1
            continue
        try:
            r = _fit_once(Sb[idx], y[idx], logc[idx], fam_idx[idx], len(families_u), n_components, fit_mask[idx],
                          floor, ceiling, min_family_models, ref, align=full["V"], X_project=X_full)
        except (FitError, np.linalg.LinAlgError, ValueError):
            failed += 1
            continue
        st = r["state"]
        p = _state_predict(st, r["P_project"])  # every original model under this resample's fit
        pc = np.full(n, np.nan)
        if ok_c.any():
            pc[ok_c] = _forecast(st, logc[ok_c], fam_idx[ok_c])
        noise = rng.choice(st["residuals"], size=n) if st["residuals"].size else np.zeros(n)
        for name, value in (("explained_variance", r["evr"]), ("loadings", r["V"]), ("slopes", r["slope"]),
                            ("efficiency", r["eff"]), ("link", r["link"]), ("predicted", p),
                            ("predicted_from_compute", pc), ("prediction", p + noise),
                            ("prediction_from_compute", pc + noise)):
            acc[name].append(value)
        states.append(st)
    intervals = {}
    for name, values in acc.items():
        if values:
            lo, hi = percentile_interval(np.array(values, dtype=float), level)
            intervals[name] = (lo, hi)
    msgs = [f"{len(states)} of {n_resamples} model resamples kept" + (f" ({failed} could not be fitted)"
                                                                       if failed else "")]
    shared = [f for i, f in enumerate(families_u) if full["kind"][i] == "shared_slope"]
    if shared:
        msgs.append(f"{len(shared)} of {len(families_u)} families have fewer than {min_family_models} models at or "
                    f"below the cut-off and use the shared slope: {shared}")
    return ObservationalResult(
        benchmarks=tuple(b for b in benchmarks if b != target), target=target, n_components=n_components,
        explained_variance=full["evr"], loadings=full["V"], families=tuple(families_u), slopes=full["slope"],
        intercepts=full["icpt"], family_map=tuple(str(k) for k in full["kind"]), n_map_models=full["n_map"],
        efficiency=dict(zip(families_u, full["eff"].tolist())), reference_family=reference,
        reference_flops=float(np.exp(full["logc_ref"])), link=full["link"], floor=float(floor),
        ceiling=float(ceiling), cutoff=None if cutoff is None else float(cutoff), capabilities=P,
        imputed=np.sum(~np.isfinite(Sb), axis=1), train=full["train"], held_out=held_out, predicted=pred,
        predicted_from_compute=pred_c, intervals=intervals, draws={"states": states}, converged=full["ok"],
        messages=msgs, _state=full["state"])
