"""A simulated data-mixture experiment (RegMix-style files) from a planted mixing law.

Mixtures r are Dirichlet draws (base measure MIXTURE_PRIOR, per-row concentration
log-uniform in MIXTURE_CONCENTRATION) rounded to 3 decimals, so rows sum to 1 +- 0.0025
as in published RegMix tables. Each target loss follows Ye et al. 2024,

    L_i(r) = c_i + k_i * exp(sum_j t_ij r_j),

evaluated at the rounded weights and times log-normal noise. The planted optimum is the
mixture minimising the equal-weight mean of the noise-free target losses over the simplex.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from scipy.optimize import minimize

from scaling.simulate import planted as P

_STREAM_MIXTURE = 3


def _law_arrays() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    c = np.array([P.MIXTURE_C[t] for t in P.MIXTURE_TARGETS])
    k = np.array([P.MIXTURE_K[t] for t in P.MIXTURE_TARGETS])
    t = np.array([[P.MIXTURE_T[i][j] for j in P.MIXTURE_TRAIN_DOMAINS] for i in P.MIXTURE_TARGETS])
    return c, k, t


def mixing_law(weights: np.ndarray) -> np.ndarray:
    """Noise-free planted target losses, shape (n_mixtures, n_targets), for weights (n_mixtures, n_domains)."""
    c, k, t = _law_arrays()
    return c + k * np.exp(np.atleast_2d(weights) @ t.T)


def optimal_mixture() -> tuple[np.ndarray, float]:
    """argmin over the simplex of mean_i L_i(r) (convex: a sum of exponentials of linear maps)."""
    c, k, t = _law_arrays()
    n = len(P.MIXTURE_TRAIN_DOMAINS)

    def objective(r: np.ndarray) -> tuple[float, np.ndarray]:
        e = k * np.exp(t @ r)
        return float(np.mean(c + e)), (e @ t) / len(c)

    result = minimize(
        objective, np.full(n, 1.0 / n), jac=True, method="SLSQP", bounds=[(0.0, 1.0)] * n,
        constraints=[{"type": "eq", "fun": lambda r: r.sum() - 1.0, "jac": lambda r: np.ones_like(r)}],
        options={"ftol": 1e-15, "maxiter": 500},
    )
    if not result.success:
        raise RuntimeError(f"planted optimum did not converge: {result.message}")
    r = np.clip(result.x, 0.0, None)
    r /= r.sum()
    return r, float(np.mean(mixing_law(r)))


def _draw(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    low, high = np.log(P.MIXTURE_CONCENTRATION)
    prior = np.array(P.MIXTURE_PRIOR)
    rows = [rng.dirichlet(prior * np.exp(rng.uniform(low, high))) for _ in range(n)]
    weights = np.round(np.array(rows), 3)
    losses = mixing_law(weights) * np.exp(rng.normal(0.0, P.NOISE["mixture_loss"], (n, len(P.MIXTURE_TARGETS))))
    return weights, losses


def _write(path: Path, columns: tuple[str, ...], values: np.ndarray, fmt: str) -> None:
    with path.open("w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(("index", *columns))
        for i, row in enumerate(values.tolist(), start=1):
            writer.writerow((i, *(fmt.format(v) for v in row)))


def write_mixture_experiment(out_dir: Path, seed: int) -> dict:
    """Write train/test weights and losses; return the planted law and optimum."""
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng([seed, _STREAM_MIXTURE])
    loss_columns = tuple(f"{t}_loss" for t in P.MIXTURE_TARGETS)
    for split, n in (("train", P.MIXTURE_N_TRAIN), ("test", P.MIXTURE_N_TEST)):
        weights, losses = _draw(rng, n)
        # Trailing zeros dropped ("0.08", "0.0") as the published files have them.
        _write(out_dir / f"{split}_weights.csv", P.MIXTURE_TRAIN_DOMAINS, weights, "{!r}")
        _write(out_dir / f"{split}_losses.csv", loss_columns, losses, "{!r}")
    best, best_loss = optimal_mixture()
    return {
        "law": "L_i(r) = c_i + k_i * exp(sum_j t_ij * r_j)  (Ye et al. 2024)",
        "train_domains": list(P.MIXTURE_TRAIN_DOMAINS),
        "target_domains": list(P.MIXTURE_TARGETS),
        "loss_columns": list(loss_columns),
        "c": dict(P.MIXTURE_C),
        "k": dict(P.MIXTURE_K),
        "t": {i: dict(row) for i, row in P.MIXTURE_T.items()},
        "noise_sigma_log": P.NOISE["mixture_loss"],
        "dirichlet_prior": list(P.MIXTURE_PRIOR),
        "dirichlet_concentration_range": list(P.MIXTURE_CONCENTRATION),
        "n_train": P.MIXTURE_N_TRAIN,
        "n_test": P.MIXTURE_N_TEST,
        "optimal_mixture": dict(zip(P.MIXTURE_TRAIN_DOMAINS, best.tolist())),
        "optimal_mean_loss": best_loss,
        "optimum_objective": "equal-weight mean of the noise-free target losses, minimised over the simplex",
    }


# A mixture x size x step experiment (Ye et al. 2024's nested setting) with a planted law in which every
# stage of the nested pipeline is exact: L(r, N, S) = E + A N^-alpha + B S^-beta + exp(t . r).
NESTED_LAW = {"E": 1.7, "A": 60.0, "alpha": 0.3, "B": 9.0, "beta": 0.4, "t": (-1.0, 0.3, -0.4)}
NESTED_DOMAINS = ("web", "code", "books")
NESTED_SIZES = (2e6, 5e6, 1.5e7, 4e7)
NESTED_STEPS = (250.0, 500.0, 1000.0, 2000.0, 4000.0, 8000.0)


def nested_truth(weights, params, steps) -> np.ndarray:
    """Noise-free planted loss of each mixture (rows of ``weights``) at ``params`` and ``steps``."""
    p = NESTED_LAW
    w = np.atleast_2d(np.asarray(weights, dtype=float))
    return p["E"] + p["A"] * np.asarray(params, dtype=float) ** -p["alpha"] + \
        p["B"] * np.asarray(steps, dtype=float) ** -p["beta"] + np.exp(w @ np.array(p["t"]))


def nested_experiment(n_mixtures: int, *, seed: int = 0, checkpoint_noise: float = 0.002, run_noise: float = 0.002,
                      sizes=NESTED_SIZES, steps=NESTED_STEPS) -> dict:
    """Checkpoints of every (mixture, size) run at every step, with multiplicative log-normal noise per
    checkpoint (``checkpoint_noise``) and per run (``run_noise``, shared by the run's checkpoints).

    Returns ``weights`` (n_mixtures, 3) and ``rows``: dicts of mixture (index), run (id with size and
    weights, as ``2M_0.25-0.5-0.25``), params, step, loss; the noise-free loss is ``nested_truth``."""
    rng = np.random.default_rng([seed, _STREAM_MIXTURE, 1])
    weights = np.round(rng.dirichlet(np.ones(len(NESTED_DOMAINS)), size=n_mixtures), 3)
    weights[:, -1] = np.round(1.0 - weights[:, :-1].sum(axis=1), 3)
    rows = []
    for m, w in enumerate(weights):
        for n in sizes:
            offset = rng.normal(0.0, run_noise)
            run = f"{n / 1e6:g}M_" + "-".join(f"{v:g}" for v in w)
            for s in steps:
                loss = float(nested_truth(w, n, s)[0] * np.exp(offset + rng.normal(0.0, checkpoint_noise)))
                rows.append({"mixture": m, "run": run, "params": float(n), "step": float(s), "loss": loss})
    return {"weights": weights, "rows": rows}


def write_nested_experiment(out_dir: Path, n_mixtures: int, n_heldout: int, *, seed: int = 0,
                            target_params: float = 2e8, target_steps: float = 2e4, **noise) -> dict:
    """Long mixture tables (a row per run x step x domain ``loss``) of `nested_experiment`: ``train.csv``
    over `NESTED_SIZES` x `NESTED_STEPS`, and ``heldout.csv``, ``n_heldout`` other mixtures trained at
    (``target_params``, ``target_steps``). Run ids carry the size and weights (``2M_0.25-0.5-0.25``).
    Returns the held-out weights and their noise-free losses at the target."""
    out_dir.mkdir(parents=True, exist_ok=True)
    train = nested_experiment(n_mixtures, seed=seed, **noise)
    held = nested_experiment(n_heldout, seed=seed + 1000, sizes=(target_params,), steps=(target_steps,), **noise)
    for name, ex in (("train.csv", train), ("heldout.csv", held)):
        with (out_dir / name).open("w", newline="") as f:
            writer = csv.writer(f, lineterminator="\n")
            writer.writerow(("run_name", "step", "domain", "loss"))
            for r in ex["rows"]:
                writer.writerow((r["run"], f"{r['step']:g}", "web", repr(r["loss"])))
    return {"train_weights": train["weights"], "heldout_weights": held["weights"],
            "heldout_truth": nested_truth(held["weights"], target_params, target_steps)}
