"""Two-variable laws in parameters N and tokens D: Kaplan, Chinchilla, data-constrained."""

from __future__ import annotations

from typing import Mapping

import numpy as np

from .base import Law, Param

_EXP = dict(bounds=(0.0, 10.0), grid=(0.02, 2.0), plausible=(0.005, 2.0), exponent=True)
_COEF = dict(linear=True, log=True, plausible=(0.0, 1e15))


def _chinchilla_fn(X, p):
    return (p["E"] + p["A"] * np.exp(-p["alpha"] * np.log(X["params"]))
            + p["B"] * np.exp(-p["beta"] * np.log(X["tokens"])))


def _chinchilla_grad(X, p):
    ln, ld = np.log(X["params"]), np.log(X["tokens"])
    tn, td = np.exp(-p["alpha"] * ln), np.exp(-p["beta"] * ld)
    return {"E": np.ones_like(ln), "A": tn, "B": td,
            "alpha": -p["A"] * tn * ln, "beta": -p["B"] * td * ld}


chinchilla = Law(
    name="chinchilla",
    variables=("params", "tokens"),
    params=(
        Param("E", (0.0, np.inf), linear=True),
        Param("A", (0.0, np.inf), **_COEF),
        Param("B", (0.0, np.inf), **_COEF),
        Param("alpha", **_EXP),
        Param("beta", **_EXP),
    ),
    fn=_chinchilla_fn,
    grad=_chinchilla_grad,
    formula="L = E + A / N^alpha + B / D^beta",
    reference="Hoffmann et al. 2022, Training Compute-Optimal Large Language Models (approach 3)",
)


def compute_optimal(params: Mapping[str, float], flops) -> tuple[np.ndarray, np.ndarray]:
    """Chinchilla compute-optimal allocation for C = 6·N·D (Hoffmann et al. 2022, eq. 4).

    N_opt = G·(C/6)^a, D_opt = G^(-1)·(C/6)^b, G = (alpha·A / (beta·B))^(1/(alpha+beta)),
    a = beta/(alpha+beta), b = alpha/(alpha+beta). Returns ``(N_opt, D_opt)``.
    """
    A, B, al, be = (float(params[k]) for k in ("A", "B", "alpha", "beta"))
    G = (al * A / (be * B)) ** (1.0 / (al + be))
    c6 = np.asarray(flops, dtype=float) / 6.0
    return G * c6 ** (be / (al + be)), c6 ** (al / (al + be)) / G


def _kaplan_fn(X, p):
    u = np.exp(p["alpha_N"] / p["alpha_D"] * (np.log(p["N_c"]) - np.log(X["params"])))
    return np.exp(p["alpha_D"] * np.log(u + p["D_c"] / X["tokens"]))


def _kaplan_grad(X, p):
    lgap = np.log(p["N_c"]) - np.log(X["params"])
    u = np.exp(p["alpha_N"] / p["alpha_D"] * lgap)
    s = u + p["D_c"] / X["tokens"]
    loss = np.exp(p["alpha_D"] * np.log(s))
    ds = p["alpha_D"] * loss / s  # dL/dS
    return {
        "N_c": ds * u * (p["alpha_N"] / p["alpha_D"]) / p["N_c"],
        "D_c": ds / X["tokens"],
        "alpha_N": ds * u * lgap / p["alpha_D"],
        "alpha_D": loss * np.log(s) - ds * u * lgap * p["alpha_N"] / p["alpha_D"] ** 2,
    }


kaplan = Law(
    name="kaplan",
    variables=("params", "tokens"),
    params=(
        Param("N_c", (0.0, np.inf), log=True, grid=(1e5, 1e18)),
        Param("D_c", (0.0, np.inf), log=True, grid=(1e5, 1e18)),
        Param("alpha_N", (1e-4, 5.0), grid=(0.02, 1.0), plausible=(0.005, 2.0), exponent=True),
        Param("alpha_D", (1e-4, 5.0), grid=(0.02, 1.0), plausible=(0.005, 2.0), exponent=True),
    ),
    fn=_kaplan_fn,
    grad=_kaplan_grad,
    formula="L = [(N_c/N)^(alpha_N/alpha_D) + D_c/D]^alpha_D",
    reference="Kaplan et al. 2020, Scaling Laws for Neural Language Models, eq. 1.5",
)


def _effective(U, R_star, repeats):
    """U + U·R*·(1 - exp(-R/R*)): the value of U·(1+R) repeated units (Muennighoff et al. 2023, eq. 5)."""
    return U + U * R_star * (-np.expm1(-repeats / R_star))


def _data_constrained_fn(X, p):
    N, D, U_D = X["params"], X["tokens"], X["unique_tokens"]
    al, be = p["alpha"], p["beta"]
    R_D = np.maximum(D / U_D - 1.0, 0.0)
    # Compute-optimal N for U_D tokens, from alpha·A/N^alpha = beta·B/D^beta at the optimum.
    log_n_opt = (np.log(al * p["A"]) - np.log(be * p["B"]) + be * np.log(U_D)) / al
    U_N = np.minimum(N, np.exp(log_n_opt))
    R_N = np.maximum(N / U_N - 1.0, 0.0)
    N_eff = _effective(U_N, p["R_N_star"], R_N)
    D_eff = _effective(U_D, p["R_D_star"], R_D)
    return p["E"] + p["A"] * np.exp(-al * np.log(N_eff)) + p["B"] * np.exp(-be * np.log(D_eff))


def _effective_grad_star(U, R_star, repeats):
    """d/dR* of `_effective`: U·((1 - e) - e·R/R*), e = exp(-R/R*)."""
    e = np.exp(-repeats / R_star)
    return U * ((1.0 - e) - e * repeats / R_star)


def _data_constrained_grad(X, p):
    """Partial derivatives of the data-constrained law. N' depends on A, B, alpha and beta through
    U_N = N_opt(U_D) where N exceeds it (the min's other branch, U_N = N, does not)."""
    N, D, U_D = X["params"], X["tokens"], X["unique_tokens"]
    A, B, al, be, rn, rd = (p[k] for k in ("A", "B", "alpha", "beta", "R_N_star", "R_D_star"))
    R_D = np.maximum(D / U_D - 1.0, 0.0)
    log_n_opt = (np.log(al * A) - np.log(be * B) + be * np.log(U_D)) / al
    n_opt = np.exp(log_n_opt)
    capped = n_opt < N
    U_N = np.where(capped, n_opt, N)
    R_N = np.maximum(N / U_N - 1.0, 0.0)
    N_eff = _effective(U_N, rn, R_N)
    D_eff = _effective(U_D, rd, R_D)
    tn, td = np.exp(-al * np.log(N_eff)), np.exp(-be * np.log(D_eff))
    dpred_dn = -al * A * tn / N_eff  # d pred / d N'
    e = np.exp(-R_N / rn)
    dn_du = np.where(capped, 1.0 + rn * (1.0 - e) - e * N / U_N, 0.0)  # d N' / d U_N (through R_N too)
    chain = dpred_dn * dn_du * U_N  # times d log U_N / d theta
    return {
        "E": np.ones_like(N),
        "A": tn + chain / (al * A),
        "B": td - chain / (al * B),
        "alpha": -A * tn * np.log(N_eff) + chain * (1.0 / al - log_n_opt) / al,
        "beta": -B * td * np.log(D_eff) + chain * (np.log(U_D) - 1.0 / be) / al,
        "R_N_star": dpred_dn * np.where(capped, _effective_grad_star(U_N, rn, R_N), 0.0),
        "R_D_star": -be * B * td / D_eff * _effective_grad_star(U_D, rd, R_D),
    }


data_constrained = Law(
    name="data_constrained",
    variables=("params", "tokens", "unique_tokens"),
    params=(
        Param("E", (0.0, np.inf), linear=True),
        Param("A", (0.0, np.inf), log=True, grid=(1.0, 1e5), plausible=(0.0, 1e15)),
        Param("B", (0.0, np.inf), log=True, grid=(1.0, 1e7), plausible=(0.0, 1e15)),
        Param("alpha", (1e-3, 10.0), grid=(0.05, 1.0), plausible=(0.005, 2.0), exponent=True),
        Param("beta", (1e-3, 10.0), grid=(0.05, 1.0), plausible=(0.005, 2.0), exponent=True),
        Param("R_D_star", (1e-2, 1e4), log=True, grid=(1.0, 100.0)),
        Param("R_N_star", (1e-2, 1e4), log=True, grid=(1.0, 100.0)),
    ),
    fn=_data_constrained_fn,
    grad=_data_constrained_grad,
    formula=("L = E + A / N'^alpha + B / D'^beta, D' = U_D + U_D*R_D*(1 - exp(-R_D/R_D*)), "
             "N' = U_N + U_N*R_N*(1 - exp(-R_N/R_N*)), R_D = D/U_D - 1, U_N = min(N, N_opt(U_D)), "
             "R_N = N/U_N - 1"),
    reference="Muennighoff et al. 2023, Scaling Data-Constrained Language Models (published R_D*=15.4, R_N*=5.3)",
    defaults={"R_D_star": 15.4, "R_N_star": 5.3},
)


def _overtraining_terms(X, p):
    lc = np.log(6.0) + np.log(X["params"]) + np.log(X["tokens"])  # C = 6·N·D
    lm = np.log(X["tokens"]) - np.log(X["params"])  # M = D/N, tokens per parameter
    return lc, lm, np.exp(p["eta"] * (lm - lc)), np.exp(-p["eta"] * (lm + lc))


def _overtraining_fn(X, p):
    _, _, t1, t2 = _overtraining_terms(X, p)
    return p["E"] + p["a"] * t1 + p["b"] * t2


def _overtraining_grad(X, p):
    lc, lm, t1, t2 = _overtraining_terms(X, p)
    return {"E": np.ones_like(t1), "a": t1, "b": t2,
            "eta": p["a"] * t1 * (lm - lc) - p["b"] * t2 * (lm + lc)}


overtraining = Law(
    name="overtraining",
    variables=("params", "tokens"),
    params=(
        Param("E", (0.0, np.inf), linear=True),
        Param("a", (0.0, np.inf), **_COEF),
        Param("b", (0.0, np.inf), **_COEF),
        Param("eta", (0.0, 5.0), grid=(0.01, 1.0), plausible=(0.005, 1.0), exponent=True),
    ),
    fn=_overtraining_fn,
    grad=_overtraining_grad,
    formula="L(C, M) = E + (a·M^eta + b·M^-eta)·C^-eta, C = 6·N·D, M = D/N",
    reference=("Gadre et al. 2024, Language models scale reliably with over-training and on downstream tasks, "
               "eq. 4 (Chinchilla's form with alpha = beta = 2·eta, a = A·6^eta, b = B·6^eta)"),
)
