"""Data-mixing laws: per-target-domain loss as a function of the training mixture r.

Each law is a small declarative object: a name, a formula, a reference, and the
features it builds from the mixture. Two shapes share one fitter:

- ``linear``:  L(r) = sum_j beta_j r_j
- ``exp``:     L(r) = c + exp(phi(r) . theta)

with phi(r) the mixture features. Rows of r lie on the simplex (sum_j r_j = 1), so an
intercept is absorbed: in the linear law beta_j plays the role of intercept + slope_j,
and in Ye et al.'s ``c + k exp(sum_j t_j r_j)`` the scale k is absorbed into the t_j
(k exp(t.r) = exp((t + ln k).r)), so k is reported as 1.

Log-weight terms use ln(r_j + floor). A zero weight is common in proxy sweeps (RegMix
sets about 40% of weights to 0), and r^-alpha is infinite there; the floor (default
1e-3, the rounding step of published mixture weights) caps that.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DEFAULT_FLOOR = 1e-3


@dataclass(frozen=True)
class MixingLaw:
    """A data-mixing law.

    ``shape`` is ``"linear"`` or ``"exp"``; ``log_terms`` says which domains get an extra
    ``ln(r_j + floor)`` feature: ``"none"``, ``"own"`` (only the train domain matching the
    target, BiMix's r_i^-alpha factor) or ``"all"``. ``ridge`` is the default penalty
    weight (see ``penalty``).
    """

    name: str
    shape: str
    log_terms: str
    formula: str
    reference: str
    floor: float = DEFAULT_FLOOR
    ridge: float = 0.0

    @property
    def needs_own_domain(self) -> bool:
        return self.log_terms == "own"

    def features(self, weights: np.ndarray, own: int | None = None) -> np.ndarray:
        """Design matrix phi(r), shape (n_runs, n_features)."""
        r = np.atleast_2d(np.asarray(weights, dtype=float))
        if self.log_terms == "none":
            return r
        if self.log_terms == "own":
            return np.column_stack([r, np.log(r[:, own] + self.floor)])
        return np.column_stack([r, np.log(r + self.floor)])

    def feature_jacobian_diag(self, weights: np.ndarray, own: int | None = None) -> np.ndarray:
        """d phi / d r_j for the log terms: 1/(r_j + floor), shape (n_runs, n_log_terms)."""
        r = np.atleast_2d(np.asarray(weights, dtype=float))
        if self.log_terms == "own":
            return 1.0 / (r[:, [own]] + self.floor)
        return 1.0 / (r + self.floor)

    def penalty(self, n_domains: int) -> np.ndarray:
        """Ridge penalty matrix R on theta (everything but c): penalty = ridge * |R theta|^2.

        The t_j (and linear beta_j) are penalized about their mean, since a common shift of
        them is the absorbed scale k (or intercept); the s_j are penalized towards 0.
        """
        centered = np.eye(n_domains) - 1.0 / n_domains
        if self.log_terms == "none":
            return centered
        n_log = 1 if self.log_terms == "own" else n_domains
        r = np.zeros((n_domains + n_log, n_domains + n_log))
        r[:n_domains, :n_domains] = centered
        r[n_domains:, n_domains:] = np.eye(n_log)
        return r

    def param_names(self, domains: list[str], own: int | None = None) -> tuple[str, ...]:
        if self.shape == "linear":
            return tuple(f"beta[{d}]" for d in domains)
        names = ["c"] + [f"t[{d}]" for d in domains]
        if self.log_terms == "own":
            names.append(f"s[{domains[own]}]")
        elif self.log_terms == "all":
            names += [f"s[{d}]" for d in domains]
        return tuple(names)

    def predict(self, theta: np.ndarray, weights: np.ndarray, own: int | None = None) -> np.ndarray:
        """Predicted loss for each row of ``weights``; ``theta`` may be (p,) or (B, p)."""
        phi = self.features(weights, own)
        theta = np.asarray(theta, dtype=float)
        if self.shape == "linear":
            return theta @ phi.T
        c = theta[..., :1]
        return c + np.exp(np.minimum(theta[..., 1:] @ phi.T, 700.0))

    def gradient(self, theta: np.ndarray, weights: np.ndarray, own: int | None = None) -> np.ndarray:
        """dL/dr_j for each row of ``weights`` (theta shape (p,)), shape (n_runs, n_domains)."""
        r = np.atleast_2d(np.asarray(weights, dtype=float))
        n = r.shape[1]
        if self.shape == "linear":
            return np.broadcast_to(theta, r.shape).copy()
        phi = self.features(r, own)
        e = np.exp(np.minimum(phi @ theta[1:], 700.0))
        g = np.broadcast_to(theta[1 : 1 + n], r.shape).copy()
        if self.log_terms == "own":
            g[:, own] += theta[1 + n] * self.feature_jacobian_diag(r, own)[:, 0]
        elif self.log_terms == "all":
            g += theta[1 + n :] * self.feature_jacobian_diag(r, own)
        return e[:, None] * g


LINEAR = MixingLaw(
    name="linear",
    shape="linear",
    log_terms="none",
    formula="L_i(r) = sum_j beta_ij r_j",
    reference="Liu et al. 2024, RegMix (linear-regression baseline)",
)

YE_EXP = MixingLaw(
    name="ye_exp",
    shape="exp",
    log_terms="none",
    formula="L_i(r) = c_i + k_i exp(sum_j t_ij r_j)  (k_i absorbed into t_ij)",
    reference="Ye et al. 2024, Data Mixing Laws, eq. 6",
)

YE_EXP_OWN = MixingLaw(
    name="ye_exp_own",
    shape="exp",
    log_terms="own",
    formula="L_i(r) = c_i + exp(sum_j t_ij r_j) (r_i + floor)^(s_i)",
    reference="Ye et al. 2024 exp law times BiMix's own-domain power factor (Ge et al. 2024)",
    ridge=1e-2,  # t_i and s_i trade off when domain i is rarely upweighted (see ye_exp_log)
)

YE_EXP_LOG = MixingLaw(
    name="ye_exp_log",
    shape="exp",
    log_terms="all",
    formula="L_i(r) = c_i + exp(sum_j t_ij r_j) prod_j (r_j + floor)^(s_ij)",
    reference="Ye et al. 2024 exp law with a BiMix-style power factor per domain (Ge et al. 2024)",
    # t_j and s_j of a domain that is rarely upweighted trade off along a flat valley;
    # 0.01 is negligible next to a sweep's residual sum of squares and removes it.
    ridge=1e-2,
)

MIXING_LAWS: dict[str, MixingLaw] = {law.name: law for law in (LINEAR, YE_EXP, YE_EXP_OWN, YE_EXP_LOG)}


def get_mixing_law(name: str | MixingLaw) -> MixingLaw:
    """The mixing law called ``name`` (or ``name`` itself when already a law)."""
    if isinstance(name, MixingLaw):
        return name
    try:
        return MIXING_LAWS[name]
    except KeyError:
        raise ValueError(f"unknown mixing law {name!r}; expected one of {sorted(MIXING_LAWS)}") from None
