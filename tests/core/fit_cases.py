"""Shared helpers for the fitting tests (no tests here): public-data loaders and seeded
synthetic data for every law in the zoo."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl

from scaling.laws import LAWS, lr_areas


def chinchilla_epoch(shared_data: Path):
    """Epoch's 245 Chinchilla runs minus the 5 highest-loss points; D = C / (6N)."""
    df = pl.read_csv(shared_data / "chinchilla_epoch" / "svg_extracted_data.csv").sort("loss").head(240)
    N = df["Model Size"].to_numpy().astype(float)
    C = df["Training FLOP"].to_numpy().astype(float)
    return {"params": N, "tokens": C / (6 * N)}, df["loss"].to_numpy().astype(float)


def gemstone(shared_data: Path, name: str = "hot"):
    df = pl.read_ndjson(shared_data / "gemstone" / "wandb_dfs" / f"wandb_df_for_fitting_{name}.jsonl")
    X = {"params": df["params_active_precise"].to_numpy().astype(float),
         "tokens": df["tokens"].to_numpy().astype(float)}
    return X, df["final_loss"].to_numpy().astype(float), df["run_name"].to_numpy(), df["width"].to_numpy()


def gemstone_params(shared_data: Path, name: str) -> dict:
    """A published approach-3 fit (exponents, log-coefficients, log E) as Chinchilla parameters."""
    path = shared_data / "gemstone" / "parameters" / "parameters_delta-3" / f"approach_3_parameters_grid_search_0_{name}.json"
    d = json.loads(path.read_text())
    (alpha, beta), (a, b) = d["exponents"]["0"], d["coefficients"]["0"]
    return {"alpha": alpha, "beta": beta, "A": float(np.exp(a)), "B": float(np.exp(b)),
            "E": float(np.exp(d["irreducible_error"]["0"])), "objective": d["loss"]["0"]}


def _grid_nd(rng, n_sizes=8, n_tokens=8):
    N = np.geomspace(5e7, 5e9, n_sizes)
    ratio = np.geomspace(2, 200, n_tokens)
    NN, RR = np.meshgrid(N, ratio)
    return NN.ravel(), (NN * RR).ravel()


def simulate(name: str, seed: int = 0, noise: float = 1e-3):
    """(true params, X, y, fixed) for law ``name`` with multiplicative (or additive, for
    accuracies) Gaussian noise of size ``noise``."""
    rng = np.random.default_rng(seed)
    law = LAWS[name]
    fixed = None
    if name.startswith("power_law_"):
        v = name.removeprefix("power_law_")
        x = {"params": np.geomspace(1e7, 1e10, 40), "tokens": np.geomspace(1e9, 1e12, 40),
             "flops": np.geomspace(1e18, 1e23, 40)}[v]
        true = {"E": 1.9, "A": {"params": 400.0, "tokens": 2000.0, "flops": 1500.0}[v], "alpha": 0.3 if v != "flops" else 0.15}
        X = {v: x}
    elif name.startswith("broken_power_law"):
        v = name.removeprefix("broken_power_law").lstrip("_") or "flops"
        x = {"params": np.geomspace(1e6, 1e11, 60), "tokens": np.geomspace(1e8, 1e13, 60),
             "flops": np.geomspace(1e17, 1e23, 60)}[v]
        mid = float(np.sqrt(x[0] * x[-1]))
        true = {"a": 1.5, "b": 1.0, "c0": 0.05, "c1": 0.25, "d1": mid, "f1": 0.3}
        true["b"] = float(2.0 / (x[0] ** -0.05))  # b·x0^-c0 ≈ 2 at the smallest x
        X = {v: x}
    elif name == "chinchilla":
        N, D = _grid_nd(rng)
        true = {"E": 1.8, "A": 480.0, "B": 2100.0, "alpha": 0.35, "beta": 0.37}
        X = {"params": N, "tokens": D}
    elif name == "overtraining":
        N, D = _grid_nd(rng)
        true = {"E": 1.8, "a": 660.0, "b": 2900.0, "eta": 0.175}
        X = {"params": N, "tokens": D}
    elif name == "kaplan":
        N, D = _grid_nd(rng)
        true = {"N_c": 8.8e13, "D_c": 5.4e13, "alpha_N": 0.076, "alpha_D": 0.095}
        X = {"params": N, "tokens": D}
    elif name == "data_constrained":
        N = np.repeat(np.geomspace(1e8, 3e9, 6), 12)
        U = np.tile(np.repeat(np.geomspace(1e9, 2e10, 3), 4), 6)
        epochs = np.tile(np.array([1.0, 4.0, 16.0, 60.0]), 18)
        D = U * epochs
        true = {"E": 1.8, "A": 480.0, "B": 2100.0, "alpha": 0.35, "beta": 0.37, "R_D_star": 15.4, "R_N_star": 5.3}
        X = {"params": N, "tokens": D, "unique_tokens": U}
        fixed = {"R_N_star": 5.3}
    elif name == "lr_annealing":
        s1s, s2s = [], []
        for total, sched in ((20000, "cosine"), (20000, "wsd"), (10000, "constant"), (30000, "cosine")):
            s = np.arange(total + 1)
            if sched == "cosine":
                lr = 1e-5 + (3e-4 - 1e-5) * 0.5 * (1 + np.cos(np.pi * s / total))
            elif sched == "wsd":
                lr = np.where(s < 0.8 * total, 3e-4, 3e-4 * (1 - (s - 0.8 * total) / (0.2 * total)) + 1e-6)
            else:
                lr = np.full(s.size, 3e-4)
            logged = s[::50]
            at = np.linspace(500, total, 25)
            a1, a2 = lr_areas(logged, lr[::50], at=at)
            s1s.append(a1)
            s2s.append(a2)
        X = {"lr_sum": np.concatenate(s1s), "lr_anneal_area": np.concatenate(s2s)}
        true = {"L0": 2.5, "A": 0.6, "C": 0.15, "alpha": 0.5}
    elif name == "loss_transfer":
        lx = np.linspace(2.4, 4.5, 40)
        true = {"K": 0.8, "kappa": 1.3, "E_x": 1.7, "E_y": 1.2}
        X = {"loss_x": lx}
    elif name == "accuracy_sigmoid_flops":
        c = np.geomspace(1e18, 1e24, 40)
        true = {"floor": 0.25, "ceiling": 0.8, "k": 0.6, "log_C0": float(np.log(1e21))}
        X = {"flops": c}
    elif name == "downstream_sigmoid":
        l = np.linspace(2.2, 4.2, 50)
        true = {"floor": 0.25, "ceiling": 0.85, "k": 4.0, "L0": 3.0}
        X = {"loss": l}
    else:
        raise KeyError(name)
    y = law.predict(true, X)
    eps = rng.normal(0.0, noise, y.size)
    y = y + eps if law.space == "linear" else y * np.exp(eps)
    return true, X, y, fixed
