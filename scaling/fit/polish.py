"""Local refinement on the real objective: Gauss-Newton with an Armijo line search, vectorized
across many starts or resampling weights at once (``newton_polish_rows``, ``polish_rows``), and
L-BFGS-B (``polish``, with continuation in the Huber delta) to finish and as the fallback."""

from __future__ import annotations

import copy

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


def _parts_rows(problem: Problem, Z, W):
    """Objective, gradient, Jacobian of log-or-linear predictions and residuals at each row of Z."""
    pred = problem.predict_rows(Z)
    r = residuals(pred, problem.y, problem.space)
    rho, psi = point_loss(r, problem.objective, problem.delta, problem.tau)
    J = problem.jacobian_rows(Z, pred)
    if problem.space == "log":
        J = J / np.maximum(pred, 1e-300)[:, :, None]
    return np.einsum("rn,rn->r", W, rho), np.einsum("rn,rnk->rk", W * psi, J), J, r


def _stationary_rows(problem: Problem, Z, W) -> np.ndarray:
    """``_stationary`` at each row of Z under the weights of the same row of W."""
    pred = problem.predict_rows(Z)
    r = residuals(pred, problem.y, problem.space)
    rho, psi = point_loss(r, problem.objective, problem.delta, problem.tau)
    exact = np.einsum("rn,rn->r", W, rho) <= 1e-24 * np.sum(W, axis=1)
    J = problem.jacobian_rows(Z, pred)
    if problem.space == "log":
        J = J / np.maximum(pred, 1e-300)[:, :, None]
    g = np.einsum("rn,rnk->rk", W * psi, J)
    scale = np.einsum("rn,rnk->rk", np.abs(W * psi), np.abs(J))
    g[((Z <= problem.zlow + 1e-12) & (g > 0)) | ((Z >= problem.zhigh - 1e-12) & (g < 0))] = 0.0
    return exact | np.all(np.abs(g) <= 1e-6 * scale + 1e-300, axis=1)


def _solve_rows(H, g):
    """-H^-1 g per row; rows whose H is singular get nan."""
    try:
        return -np.linalg.solve(H, g[:, :, None])[:, :, 0]
    except np.linalg.LinAlgError:
        out = np.full(g.shape, np.nan)
        for i in range(g.shape[0]):
            try:
                out[i] = -np.linalg.solve(H[i], g[i])
            except np.linalg.LinAlgError:
                pass
        return out


LINE_SEARCH = 0.5 ** np.arange(30)
CONTINUATION_ITERATIONS = 200


def _gauss_newton_rows(problem: Problem, Z, W, maxiter: int, irls: bool):
    """Gauss-Newton steps with an Armijo line search, for every row of Z (a start) with its own
    weights (the row of W) at once; each row takes the steps it would take alone. Curvature per
    point: 1 inside the Huber zone and 0 beyond (the exact second derivative in r), or, with
    ``irls``, delta/|r| beyond (Huber's iteratively reweighted least squares, Holland & Welsch
    1977), which keeps the steps well posed when most points lie beyond delta (a law the data do
    not follow). Returns (Z, objective per row, iterations per row)."""
    Z = np.array(Z, dtype=float)
    f, g, J, r = _parts_rows(problem, Z, W)
    R, k = Z.shape
    nit = np.zeros(R, dtype=int)
    active = np.ones(R, dtype=bool)
    diag = np.arange(k)
    for it in range(1, maxiter + 1):
        idx = np.flatnonzero(active)
        if idx.size == 0:
            break
        nit[idx] = it
        Wi, Ji = W[idx], J[idx]
        if problem.objective == "least_squares":
            curv = Wi
        else:
            a = np.abs(r[idx])
            beyond = problem.delta / np.maximum(a, 1e-300) if irls else 0.0
            curv = Wi * np.where(a <= problem.delta, 1.0, beyond)
            if problem.objective == "asymmetric":
                curv = curv * np.where(r[idx] > 0, problem.tau, 1 - problem.tau)
        H = np.einsum("rni,rnj->rij", Ji * curv[:, :, None], Ji)
        H[:, diag, diag] += (1e-12 * np.maximum(np.trace(H, axis1=1, axis2=2), 1e-300))[:, None]
        step = _solve_rows(H, g[idx])
        slope = np.einsum("rk,rk->r", g[idx], step)
        go = np.isfinite(slope) & (slope < 0)
        active[idx[~go]] = False
        idx, step, slope = idx[go], step[go], slope[go]
        if idx.size == 0:
            break
        # backtracking t = 1, 1/2, ..., 2^-29: the first t inside the bounds with sufficient decrease;
        # t = 1 for every row first (most take it), then the next few steps of the others at once, then the rest
        Zt = np.empty((idx.size, k))
        searching = np.ones(idx.size, dtype=bool)
        for ts in (LINE_SEARCH[:1], LINE_SEARCH[1:5], LINE_SEARCH[5:]):
            s = np.flatnonzero(searching)
            if s.size == 0:
                break
            zt = Z[idx[s]][:, None, :] + ts[None, :, None] * step[s][:, None, :]  # (rows, steps, k)
            inside = np.all((zt >= problem.zlow) & (zt <= problem.zhigh), axis=2)
            ft = np.full(inside.shape, np.inf)
            rows, cols = np.nonzero(inside)
            if rows.size:
                ft[rows, cols] = problem.values_rows(zt[rows, cols], W[idx[s[rows]]])
            ok = inside & (ft <= f[idx[s]][:, None] + 1e-4 * ts[None, :] * slope[s][:, None])
            hit = ok.any(axis=1)
            first = np.argmax(ok, axis=1)
            Zt[s[hit]] = zt[hit, first[hit]]
            searching[s[hit]] = False
        accepted = ~searching
        active[idx[~accepted]] = False
        idx = idx[accepted]
        if idx.size == 0:
            break
        Z[idx] = Zt[accepted]
        f_old = f[idx]
        f[idx], g[idx], J[idx], r[idx] = _parts_rows(problem, Z[idx], W[idx])
        active[idx[f_old - f[idx] <= 1e-13 * np.maximum(f[idx], 1e-300)]] = False
    return Z, f, nit


# IRLS converges linearly along a direction the data barely pin down (Kaplan's N_c and D_c on data
# it does not follow): it gets many iterations, which cost little across rows at once, before a
# row falls back to L-BFGS-B (one row at a time, about a hundred times the cost of a Gauss-Newton refit)
IRLS_ITERATIONS = 5


def newton_polish_rows(problem: Problem, Z0, W, *, maxiter: int = 40):
    """``newton_polish`` for many refits at once: row i starts from ``Z0[i]`` (or the one start
    ``Z0``) with weights ``W[i]``. Gauss-Newton runs on all rows together (vectorized), the IRLS
    continuation on the rows it leaves short of a stationary point, and L-BFGS-B on the rest one
    by one. Each row gets what ``newton_polish`` gives it alone. Returns (Z, objective,
    converged, messages, iterations), one entry per row."""
    W = np.atleast_2d(np.asarray(W, dtype=float))
    R = W.shape[0]
    Z0 = np.broadcast_to(np.asarray(Z0, dtype=float), (R, len(problem.names)))
    Z, f, nit = _gauss_newton_rows(problem, Z0, W, maxiter, irls=False)
    ok = _stationary_rows(problem, Z, W)
    msgs = np.where(ok, "Gauss-Newton converged", "").astype(object)
    rest = np.flatnonzero(~ok)
    if rest.size and problem.objective != "least_squares":
        Z2, f2, it2 = _gauss_newton_rows(problem, Z[rest], W[rest], IRLS_ITERATIONS * maxiter, irls=True)
        nit[rest] += it2
        better = f2 <= f[rest]
        Z[rest[better]], f[rest[better]] = Z2[better], f2[better]
        now = _stationary_rows(problem, Z[rest], W[rest])
        ok[rest[now]] = True
        msgs[rest[now]] = "Gauss-Newton (IRLS) converged"
        rest = rest[~now]
    for i in rest:
        Z[i], f[i], ok[i], msgs[i], it2 = polish(problem, Z[i], W[i], continuation=False)
        nit[i] += it2
    return Z, f, ok, list(msgs), nit


def newton_polish(problem: Problem, z0, w=None, *, maxiter: int = 40):
    """Fast refinement from a nearby start (the bootstrap's warm start): Gauss-Newton steps on
    the points inside the Huber quadratic zone, with a backtracking (Armijo) line search; when
    that does not end at a stationary point, the same from there with Huber's IRLS weights;
    then ``polish`` (L-BFGS-B) as the last resort. Returns the same tuple as ``polish``."""
    w = problem.w if w is None else w
    Z, f, ok, msgs, nit = newton_polish_rows(problem, np.asarray(z0, dtype=float)[None, :], np.asarray(w)[None, :],
                                             maxiter=maxiter)
    return Z[0], float(f[0]), bool(ok[0]), msgs[0], int(nit[0])


def polish_rows(problem: Problem, Z0, W=None, owner=None):
    """The global fit's refinement from several starts (rows of ``Z0``) at once, for one fit or
    many (row i belongs to fit ``owner[i]``, weighted by ``W[i]``; default: one fit, the
    problem's weights): continuation in the Huber delta (x100, x10: smoother, closer to least
    squares) by Gauss-Newton with IRLS weights on all rows together, then ``newton_polish_rows``
    on the target objective; each fit's best end is finished by L-BFGS-B (``polish``, with its
    own continuation), whose convergence test it must pass. Returns ``polish``'s tuple per fit
    (``owner`` 0, 1, ...)."""
    Z = np.array(np.atleast_2d(Z0), dtype=float)
    W = np.array(np.broadcast_to(problem.w if W is None else W, (Z.shape[0], problem.y.size)), dtype=float)
    owner = np.zeros(Z.shape[0], dtype=int) if owner is None else np.asarray(owner, dtype=int)
    nit = np.zeros(Z.shape[0], dtype=int)
    if problem.objective != "least_squares":
        for fac in CONTINUATION[:-1]:
            stage = copy.copy(problem)
            stage.delta = problem.delta * fac
            Z, _, it = _gauss_newton_rows(stage, Z, W, CONTINUATION_ITERATIONS, irls=True)
            nit += it
    Z, f, _, _, it = newton_polish_rows(problem, Z, W)
    nit += it
    f = np.where(np.isfinite(f), f, np.inf)
    out = []
    for o in range(int(owner.max()) + 1 if owner.size else 0):
        rows = np.flatnonzero(owner == o)
        best = rows[int(np.argmin(f[rows]))]
        z, fb, ok, msg, it = polish(problem, Z[best], W[best], continuation=True)
        out.append((z, fb, ok, msg, int(nit[best]) + it))
    return out
