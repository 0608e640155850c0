"""Local refinement: L-BFGS-B on the real objective, with continuation in the Huber delta."""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize

from .objective import point_loss, residuals
from .problem import Problem

CONTINUATION = (100.0, 10.0, 1.0)


def _lbfgs(problem: Problem, z0, w, delta, maxiter, ftol=1e-14):
    f0, _ = problem.value_and_grad(z0, w, delta)
    scale = 1.0 / f0 if f0 > 0 and np.isfinite(f0) else 1.0

    def fun(z):
        f, g = problem.value_and_grad(z, w, delta)
        return f * scale, g * scale

    return minimize(fun, z0, jac=True, method="L-BFGS-B", bounds=problem.zbounds,
                    options={"maxiter": maxiter, "ftol": ftol, "gtol": 1e-11, "maxcor": 20})


def polish(problem: Problem, z0, w=None, *, continuation=True, maxiter=1000, ftol=1e-14):
    """Minimise from z0; returns (z, objective, converged, message, n_iterations).

    With ``continuation`` and a Huber-type objective, the fit runs first with delta x100 and
    x10 (smoother, closer to least squares), each stage starting where the last ended.
    """
    z = np.asarray(z0, dtype=float)
    factors = CONTINUATION if continuation and problem.objective != "least_squares" else (1.0,)
    nit = 0
    res = None
    for fac in factors:
        res = _lbfgs(problem, z, w, problem.delta * fac, maxiter, ftol)
        nit += int(res.nit)
        if np.all(np.isfinite(res.x)):
            z = res.x
    f = problem.value(z, w)
    msg = str(res.message)
    ok = bool(res.success) or "ABNORMAL" in msg.upper() and _stationary(problem, z, w)
    return z, f, ok, msg, nit


def _stationary(problem: Problem, z, w) -> bool:
    """Accept a line-search stop when each projected partial derivative is negligible (1e-6)
    against the sum of the absolute per-point contributions to it, or the fit is exact."""
    w = problem.w if w is None else w
    pred = problem.predict(z)
    r = residuals(pred, problem.y, problem.space)
    rho, psi = point_loss(r, problem.objective, problem.delta, problem.tau)
    if float(np.dot(w, rho)) <= 1e-24 * float(np.sum(w)):  # residuals at rounding level: an exact fit
        return True
    J = problem.jacobian(z, pred)
    if problem.space == "log":
        J = J / np.maximum(pred, 1e-300)[:, None]
    g = (w * psi) @ J
    scale = np.abs(w * psi) @ np.abs(J)
    for j, (lo, hi) in enumerate(problem.zbounds):
        if (lo is not None and z[j] <= lo + 1e-12 and g[j] > 0) or (hi is not None and z[j] >= hi - 1e-12 and g[j] < 0):
            g[j] = 0.0
    return bool(np.all(np.abs(g) <= 1e-6 * scale + 1e-300))


def _parts(problem: Problem, z, w):
    pred = problem.predict(z)
    r = residuals(pred, problem.y, problem.space)
    rho, psi = point_loss(r, problem.objective, problem.delta, problem.tau)
    J = problem.jacobian(z, pred)
    if problem.space == "log":
        J = J / np.maximum(pred, 1e-300)[:, None]
    return float(np.dot(w, rho)), (w * psi) @ J, J, r


def _inside(z, zbounds) -> bool:
    return all((lo is None or v >= lo) and (hi is None or v <= hi) for v, (lo, hi) in zip(z, zbounds))


def _gauss_newton(problem: Problem, z, w, maxiter: int, irls: bool):
    """Gauss-Newton steps with an Armijo line search. Curvature per point: 1 inside the Huber
    zone and 0 beyond (the exact second derivative in r), or, with ``irls``, delta/|r| beyond
    (Huber's iteratively reweighted least squares, Holland & Welsch 1977), which keeps the
    steps well posed when most points lie beyond delta (a law the data do not follow)."""
    f, g, J, r = _parts(problem, z, w)
    nit = 0
    for nit in range(1, maxiter + 1):
        if problem.objective == "least_squares":
            curv = w
        else:
            a = np.abs(r)
            beyond = problem.delta / np.maximum(a, 1e-300) if irls else 0.0
            curv = w * np.where(a <= problem.delta, 1.0, beyond)
            if problem.objective == "asymmetric":
                curv = curv * np.where(r > 0, problem.tau, 1 - problem.tau)
        H = (J * curv[:, None]).T @ J
        H[np.diag_indices_from(H)] += 1e-12 * max(np.trace(H), 1e-300)
        try:
            step = -np.linalg.solve(H, g)
        except np.linalg.LinAlgError:
            break
        slope = float(g @ step)
        if not np.isfinite(slope) or slope >= 0:
            break
        t, accepted = 1.0, False
        for _ in range(30):
            zt = z + t * step
            if _inside(zt, problem.zbounds):
                ft = problem.value(zt, w)
                if ft <= f + 1e-4 * t * slope:
                    accepted = True
                    break
            t *= 0.5
        if not accepted:
            break
        z = zt
        f_old = f
        f, g, J, r = _parts(problem, z, w)
        if f_old - f <= 1e-13 * max(f, 1e-300):
            break
    return z, f, nit


def newton_polish(problem: Problem, z0, w=None, *, maxiter: int = 40):
    """Fast refinement from a nearby start (the bootstrap's warm start): Gauss-Newton steps on
    the points inside the Huber quadratic zone, with a backtracking (Armijo) line search; when
    that does not end at a stationary point, the same from there with Huber's IRLS weights;
    then ``polish`` (L-BFGS-B) as the last resort. Returns the same tuple as ``polish``."""
    w = problem.w if w is None else w
    z, f, nit = _gauss_newton(problem, np.asarray(z0, dtype=float).copy(), w, maxiter, irls=False)
    if _stationary(problem, z, w):
        return z, f, True, "Gauss-Newton converged", nit
    if problem.objective != "least_squares":
        z2, f2, it2 = _gauss_newton(problem, z, w, 3 * maxiter, irls=True)
        nit += it2
        if f2 <= f:
            z, f = z2, f2
        if _stationary(problem, z, w):
            return z, f, True, "Gauss-Newton (IRLS) converged", nit
    zf, ff, ok, msg, it2 = polish(problem, z, w, continuation=False)
    return zf, ff, ok, msg, nit + it2
