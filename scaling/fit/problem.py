"""A fitting problem: data, free/fixed parameters, the optimizer's coordinates, objective and gradient.

The optimizer moves free parameters in coordinates z: z = log(theta) for parameters marked
``log`` (positive scales such as A and B), z = theta otherwise. The gradient is analytic where
the law gives partial derivatives and central differences (vectorized) for the rest.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

from ..errors import FitError
from ..laws.base import Law
from .objective import check_objective, point_loss, residuals

_POSITIVE = ("params", "tokens", "flops", "unique_tokens", "lr_sum")


def prepare_data(law: Law, X: Mapping[str, np.ndarray], y, space: str, weights=None):
    """Validate and convert inputs; errors name the variable and row that is wrong."""
    y = np.asarray(y, dtype=float).ravel()
    n = y.size
    if n == 0:
        raise FitError("expected at least one data point, got none", field="y")
    Xa = {}
    for v in law.variables:
        if v not in X:
            raise FitError(f"law {law.name!r} needs variable {v!r}; got {sorted(X)}", field=v)
        a = np.asarray(X[v], dtype=float).ravel()
        if a.size != n:
            raise FitError(f"expected {n} values (one per loss value), got {a.size}", field=v)
        bad = ~np.isfinite(a) | ((a <= 0) if v in _POSITIVE else False)
        if np.any(bad):
            i = int(np.flatnonzero(bad)[0])
            want = "a positive finite number" if v in _POSITIVE else "a finite number"
            raise FitError(f"expected {want}, got {a[i]!r}", field=v, row=i)
        Xa[v] = a
    bad = ~np.isfinite(y) | ((y <= 0) if space == "log" else False)
    if np.any(bad):
        i = int(np.flatnonzero(bad)[0])
        want = "a positive finite target (log residuals)" if space == "log" else "a finite target"
        raise FitError(f"expected {want}, got {y[i]!r}", field="y", row=i)
    if weights is None:
        w = np.ones(n)
    else:
        w = np.asarray(weights, dtype=float).ravel()
        if w.size != n or np.any(~np.isfinite(w)) or np.any(w < 0):
            raise FitError(f"expected {n} finite non-negative weights", field="weights")
    return Xa, y, w


class Problem:
    """Free parameters, bounds and coordinates for fitting ``law`` to ``(X, y)``."""

    def __init__(self, law: Law, X, y, *, objective="huber", delta=1e-3, space=None, weights=None,
                 fixed=None, bounds=None, tau=0.5):
        self.law = law
        self.space = space or law.space
        check_objective(objective, delta, self.space, tau)
        self.objective, self.delta, self.tau = objective, float(delta), float(tau)
        self.X, self.y, self.w = prepare_data(law, X, y, self.space, weights)
        self.fixed = {k: float(v) for k, v in (fixed or {}).items()}
        for k in list(self.fixed) + list(bounds or {}):
            if k not in law.param_names:
                raise FitError(f"law {law.name!r} has no parameter {k!r}; it has {law.param_names}", field=k)
        hints = law.data_bounds(self.X, self.y) if law.data_bounds else {}
        self.bounds, self.grid = {}, {}
        for p in law.params:
            lo, hi = hints.get(p.name, {}).get("bounds", p.bounds)
            lo, hi = (bounds or {}).get(p.name, (lo, hi))
            if not lo <= hi:
                raise FitError(f"expected lower <= upper bound, got ({lo}, {hi})", field=p.name)
            if p.log and not (lo >= 0 and hi > 0):
                raise FitError(f"parameter {p.name!r} of law {law.name!r} is fitted in log space, so its bounds "
                               f"must be positive (a lower bound of 0 means none); got ({lo}, {hi})", field=p.name)
            self.bounds[p.name] = (float(lo), float(hi))
            self.grid[p.name] = hints.get(p.name, {}).get("grid", p.grid)
        self.free = [p for p in law.params if p.name not in self.fixed]
        self.names = [p.name for p in self.free]
        self.is_log = np.array([p.log for p in self.free])
        self.zbounds = [self._zbound(p) for p in self.free]
        self._ly = np.log(self.y) if self.space == "log" else None
        self.zlow = np.array([-np.inf if lo is None else lo for lo, _ in self.zbounds], dtype=float)
        self.zhigh = np.array([np.inf if hi is None else hi for _, hi in self.zbounds], dtype=float)

    def _zbound(self, p):
        lo, hi = self.bounds[p.name]
        if p.log:
            return (np.log(lo) if lo > 0 else None, np.log(hi) if np.isfinite(hi) else None)
        return (lo if np.isfinite(lo) else None, hi if np.isfinite(hi) else None)

    # coordinates -----------------------------------------------------------------------------
    def theta(self, z) -> dict:
        """Parameter values (free from z, plus the fixed ones)."""
        z = np.asarray(z, dtype=float)
        vals = np.where(self.is_log, np.exp(np.minimum(z, 700.0)), z)
        out = dict(self.fixed)
        out.update(zip(self.names, vals.tolist()))
        return out

    def to_z(self, params: Mapping[str, float]) -> np.ndarray:
        z = []
        for p, (lo, hi) in zip(self.free, self.zbounds):
            v = float(params[p.name])
            v = np.log(max(v, 1e-300)) if p.log else v
            z.append(min(max(v, lo if lo is not None else -np.inf), hi if hi is not None else np.inf))
        return np.array(z)

    # objective -------------------------------------------------------------------------------
    def predict(self, z) -> np.ndarray:
        return np.asarray(self.law.fn(self.X, self.theta(z)), dtype=float)

    def value(self, z, w=None, delta=None) -> float:
        r = residuals(self.predict(z), self.y, self.space)
        rho, _ = point_loss(r, self.objective, self.delta if delta is None else delta, self.tau)
        return float(np.dot(self.w if w is None else w, rho))

    def jacobian(self, z, pred=None) -> np.ndarray:
        """d pred / d z, shape (n, n_free)."""
        z = np.asarray(z, dtype=float)
        th = self.theta(z)
        pred = self.predict(z) if pred is None else pred
        J = np.empty((pred.size, len(self.names)))
        g = self.law.grad(self.X, th) if self.law.grad else {}
        for j, name in enumerate(self.names):
            if name in g:
                J[:, j] = g[name]
                if self.is_log[j]:
                    J[:, j] *= th[name]
            else:
                h = 1e-6 * max(1.0, abs(z[j]))
                zp, zm = z.copy(), z.copy()
                zp[j] += h
                zm[j] -= h
                J[:, j] = (self.predict(zp) - self.predict(zm)) / (2 * h)
        return J

    # many parameter vectors at once (rows of Z, shape (R, n_free)), each with its own weights ----
    def theta_rows(self, Z) -> dict:
        """Parameter values of each row of ``Z``: free ones shaped (R, 1), fixed ones scalars."""
        Z = np.asarray(Z, dtype=float)
        vals = np.where(self.is_log, np.exp(np.minimum(Z, 700.0)), Z)
        out = dict(self.fixed)
        out.update({name: vals[:, j:j + 1] for j, name in enumerate(self.names)})
        return out

    def predict_rows(self, Z) -> np.ndarray:
        """The law at each row of ``Z``: shape (R, n). Laws broadcast parameters shaped (R, 1)."""
        Z = np.asarray(Z, dtype=float)
        pred = np.asarray(self.law.fn(self.X, self.theta_rows(Z)), dtype=float)
        return np.array(np.broadcast_to(pred, (Z.shape[0], self.y.size)))

    def values_rows(self, Z, W, delta=None) -> np.ndarray:
        """The objective of each row of ``Z`` under the weights of the same row of ``W``: shape (R,)."""
        r = residuals(self.predict_rows(Z), self.y, self.space)
        rho, _ = point_loss(r, self.objective, self.delta if delta is None else delta, self.tau)
        return np.einsum("rn,rn->r", W, rho)

    def jacobian_rows(self, Z, pred=None) -> np.ndarray:
        """d pred / d z at each row of ``Z``: shape (R, n, n_free)."""
        Z = np.asarray(Z, dtype=float)
        R, n = Z.shape[0], self.y.size
        th = self.theta_rows(Z)
        J = np.empty((R, n, len(self.names)))
        g = self.law.grad(self.X, th) if self.law.grad else {}
        for j, name in enumerate(self.names):
            if name in g:
                J[:, :, j] = np.broadcast_to(g[name], (R, n))
                if self.is_log[j]:
                    J[:, :, j] *= th[name]
            else:
                h = 1e-6 * np.maximum(1.0, np.abs(Z[:, j]))
                Zp, Zm = Z.copy(), Z.copy()
                Zp[:, j] += h
                Zm[:, j] -= h
                J[:, :, j] = (self.predict_rows(Zp) - self.predict_rows(Zm)) / (2 * h[:, None])
        return J

    def value_and_grad(self, z, w=None, delta=None):
        w = self.w if w is None else w
        pred = self.predict(z)
        r = residuals(pred, self.y, self.space)
        rho, psi = point_loss(r, self.objective, self.delta if delta is None else delta, self.tau)
        J = self.jacobian(z, pred)
        if self.space == "log":
            J = np.where((pred > 1e-300)[:, None], J / np.maximum(pred, 1e-300)[:, None], 0.0)
        return float(np.dot(w, rho)), (w * psi) @ J
