"""Observational scaling laws (Ruan, Maddison and Hashimoto 2024) over a published-results table.

1. Capability space: the models' benchmark scores S (models x benchmarks, centred per benchmark)
   -> principal components P = (S - mean) V_K; missing scores are imputed by iterating a rank-K
   reconstruction (EM-PCA) from the benchmark means.
2. Compute maps: P_k(m) = beta_k · log C_m + alpha_{k, f(m)}, one slope per component shared by
   all families and one intercept per family (families with a single model still get an
   intercept). A family's compute efficiency relative to a reference family is
   exp((alpha_{1,f} - alpha_{1,ref}) / beta_1): how much more compute the reference family needs
   for the same first-component capability.
3. Link: target = floor + (ceiling - floor) · sigmoid(w · P + b), fitted on models at or below a
   compute cut-off; models above it are held out and predicted from their observed scores (the
   link) and from their compute alone (maps then link).

Intervals come from resampling models with replacement (PCA, maps and link refitted each time):
parameter uncertainty only. They do not carry the misfit of a linear map from log compute to a
component, so on held-out models they can cover far less than their level (measured in the tests:
2 of 15 planted held-out targets; 19 of 21 GSM8K scores on the public table).
Accuracy-like targets rise with capability and saturate, which the sigmoid models.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import least_squares

from ..errors import FitError


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


def _pca(X: np.ndarray, k: int):
    mu = X.mean(axis=0)
    U, s, Vt = np.linalg.svd(X - mu, full_matrices=False)
    V = Vt[:k].T
    # sign convention: the loadings of each component sum to a positive number (higher = more capable)
    sign = np.where(V.sum(axis=0) < 0, -1.0, 1.0)
    V = V * sign
    var = s ** 2
    return mu, V, var[:k] / var.sum()


def _maps(P, logc, fam_idx, n_fam):
    """Least squares P_k = beta_k log C + alpha_{k, f}; returns beta (K,), alpha (n_fam, K)."""
    A = np.zeros((logc.size, 1 + n_fam))
    A[:, 0] = logc
    A[np.arange(logc.size), 1 + fam_idx] = 1.0
    coef, *_ = np.linalg.lstsq(A, P, rcond=None)
    return coef[0], coef[1:]


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


@dataclass
class ObservationalResult:
    benchmarks: tuple[str, ...]
    target: str
    n_components: int
    explained_variance: np.ndarray  # (K,) ratios of the full-data PCA
    loadings: np.ndarray  # (n_benchmarks, K)
    families: tuple[str, ...]
    slope: np.ndarray  # (K,) beta_k per log compute (natural log)
    intercepts: np.ndarray  # (n_families, K)
    efficiency: dict[str, float]  # compute multiplier relative to the reference family
    reference_family: str
    link: np.ndarray  # (K + 1,) w, b
    floor: float
    ceiling: float
    cutoff: float
    train: np.ndarray  # bool per model: fitted the link
    predicted: np.ndarray  # target from the model's scores (link on its PCs)
    predicted_from_compute: np.ndarray  # target from compute and family (maps then link); nan without compute
    intervals: dict = field(default_factory=dict)  # name -> (lo, hi) arrays over model resamples
    draws: dict = field(default_factory=dict)
    converged: bool = True
    messages: list[str] = field(default_factory=list)
    _state: dict = field(default_factory=dict, repr=False)

    def forecast(self, flops, family: str) -> float:
        """Target predicted for a model of ``family`` trained with ``flops`` (in the table's units)."""
        return float(_forecast(self._state, np.log(float(flops)), family))

    def forecast_interval(self, flops, family: str, level: float = 0.95) -> tuple[float, float]:
        vals = np.array([_forecast(st, np.log(float(flops)), family) for st in self.draws.get("states", [])])
        vals = vals[np.isfinite(vals)]
        if vals.size == 0:
            return float("nan"), float("nan")
        lo, hi = np.quantile(vals, [(1 - level) / 2, (1 + level) / 2])
        return float(lo), float(hi)


def _forecast(st, logc, family):
    if family not in st["families"]:
        return np.nan
    f = st["families"].index(family)
    P = st["slope"] * logc + st["intercepts"][f]
    w, b = st["link"][:-1], st["link"][-1]
    return st["floor"] + (st["ceiling"] - st["floor"]) * _sigmoid(P @ w + b)


def _fit_once(S, logc, fam, target_idx, k, floor, ceiling, cutoff, reference, families):
    X = impute_pca(S, k)
    mu, V, evr = _pca(np.delete(X, target_idx, axis=1) if target_idx is not None else X, k)
    Xb = np.delete(X, target_idx, axis=1) if target_idx is not None else X
    P = (Xb - mu) @ V
    has_c = np.isfinite(logc)
    fam_idx = np.array([families.index(f) for f in fam])
    present = sorted(set(fam_idx[has_c]))
    slope, icpt = _maps(P[has_c], logc[has_c], np.searchsorted(present, fam_idx[has_c]), len(present))
    intercepts = np.full((len(families), k), np.nan)
    intercepts[present] = icpt
    y = S[:, target_idx] if target_idx is not None else None
    train = (~has_c | (logc <= np.log(cutoff))) & np.isfinite(y)
    link, ok = _fit_link(P[train], y[train], floor, ceiling)
    ref = families.index(reference)
    eff = np.exp((intercepts[:, 0] - intercepts[ref, 0]) / slope[0])
    state = {"families": list(families), "slope": slope, "intercepts": intercepts, "link": link,
             "floor": floor, "ceiling": ceiling}
    pred = floor + (ceiling - floor) * _sigmoid(P @ link[:-1] + link[-1])
    pred_c = np.array([_forecast(state, lc, families[f]) if np.isfinite(lc) else np.nan
                       for lc, f in zip(logc, fam_idx)])
    return dict(mu=mu, evr=evr, V=V, slope=slope, intercepts=intercepts, eff=eff, link=link, ok=ok, train=train,
                pred=pred, pred_c=pred_c, state=state)


def observational_scaling(scores, benchmarks, flops, families, *, target: str, n_components: int = 3,
                          cutoff: float, floor: float = 0.0, ceiling: float = 1.0,
                          reference_family: str | None = None, n_resamples: int = 200, level: float = 0.95,
                          seed: int = 0) -> ObservationalResult:
    """Fit an observational scaling law (see the module docstring).

    scores: (models x benchmarks) with nan for missing; ``target`` is one of ``benchmarks`` and is
    left out of the capability space (it is what the space predicts). flops: training compute per
    model (nan when unknown; any unit, ``cutoff`` in the same). families: family name per model.
    floor: the target's random-chance score. Intervals from ``n_resamples`` model resamples.
    """
    S = np.asarray(scores, dtype=float)
    benchmarks = list(benchmarks)
    n, m = S.shape
    if m != len(benchmarks):
        raise FitError(f"expected {len(benchmarks)} benchmark columns, got {m}")
    if target not in benchmarks:
        raise FitError(f"target {target!r} is not one of the benchmarks {benchmarks}", field="target")
    if not 1 <= n_components <= m - 1:
        raise FitError(f"expected 1 <= n_components <= {m - 1}, got {n_components}", field="n_components")
    C = np.asarray(flops, dtype=float)
    fam = [str(f) for f in families]
    if C.size != n or len(fam) != n:
        raise FitError(f"expected {n} compute values and families, got {C.size} and {len(fam)}")
    bad = np.isfinite(C) & (C <= 0)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise FitError(f"expected positive compute, got {C[i]!r}", field="flops", row=i)
    logc = np.where(np.isfinite(C), np.log(np.where(np.isfinite(C), C, 1.0)), np.nan)
    families_u = sorted(set(fam))
    reference = reference_family or max(families_u, key=lambda f: (sum(1 for x in fam if x == f), f))
    if reference not in families_u:
        raise FitError(f"reference family {reference!r} not in the table", field="reference_family")
    t = benchmarks.index(target)
    if np.sum(np.isfinite(C) & (C <= cutoff) & np.isfinite(S[:, t])) < n_components + 2:
        raise FitError(f"too few models at or below the cut-off {cutoff:g} to fit the link", field="cutoff")
    full = _fit_once(S, logc, fam, t, n_components, floor, ceiling, cutoff, reference, families_u)
    Xb_full = np.delete(impute_pca(S, n_components), t, axis=1)
    rng = np.random.default_rng(seed)
    keys = {"explained_variance": [], "slope": [], "efficiency": [], "link": [], "predicted": [],
            "predicted_from_compute": [], "loadings": []}
    states = []
    for _ in range(n_resamples):
        idx = rng.integers(0, n, n)
        if len(set(np.array(fam)[idx][np.isfinite(logc[idx])])) < 1:
            continue
        try:
            r = _fit_once(S[idx], logc[idx], [fam[i] for i in idx], t, n_components, floor, ceiling, cutoff,
                          reference if reference in {fam[i] for i in idx} else fam[idx[0]], families_u)
        except (FitError, np.linalg.LinAlgError, ValueError):
            continue
        # align component signs with the full fit (PCA signs are arbitrary)
        flip = np.sign(np.sum(r["V"] * full["V"], axis=0))
        flip[flip == 0] = 1.0
        if np.any(flip < 0):
            continue  # a resample whose components reorder is not comparable; skip it
        # predictions for every original model under this resample's fit
        P = (Xb_full - r["mu"]) @ r["V"]
        pred = floor + (ceiling - floor) * _sigmoid(P @ r["link"][:-1] + r["link"][-1])
        pred_c = np.array([_forecast(r["state"], lc, f) if np.isfinite(lc) else np.nan for lc, f in zip(logc, fam)])
        has_ref = reference in {fam[i] for i in idx}
        keys["explained_variance"].append(r["evr"])
        keys["slope"].append(r["slope"])
        keys["efficiency"].append(r["eff"] if has_ref else np.full(len(families_u), np.nan))
        keys["link"].append(r["link"])
        keys["predicted"].append(pred)
        keys["predicted_from_compute"].append(pred_c)
        keys["loadings"].append(r["V"])
        states.append(r["state"])
    q = [(1 - level) / 2, (1 + level) / 2]
    intervals = {}
    for k_, v in keys.items():
        if v:
            a = np.array(v, dtype=float)
            with np.errstate(all="ignore"):
                import warnings

                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)
                    lo, hi = np.nanquantile(a, q, axis=0)
            intervals[k_] = (lo, hi)
    msgs = [f"{len(states)} of {n_resamples} model resamples kept (others reordered components or failed)"]
    return ObservationalResult(
        benchmarks=tuple(b for b in benchmarks if b != target), target=target, n_components=n_components,
        explained_variance=full["evr"], loadings=full["V"], families=tuple(families_u), slope=full["slope"],
        intercepts=full["intercepts"], efficiency=dict(zip(families_u, full["eff"].tolist())),
        reference_family=reference, link=full["link"], floor=floor, ceiling=ceiling, cutoff=float(cutoff),
        train=full["train"], predicted=full["pred"], predicted_from_compute=full["pred_c"], intervals=intervals,
        draws={"states": states}, converged=full["ok"], messages=msgs, _state=full["state"])
