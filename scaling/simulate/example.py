"""`write_example_data`: the example study's files and PLANTED.json, idempotently."""

from __future__ import annotations

import json
import os
from pathlib import Path

from scaling.simulate import planted as P
from scaling.simulate.mixture import write_mixture_experiment
from scaling.simulate.sweep import simulate_sweep
from scaling.simulate.writers import write_checkpoints_table, write_jsonl, write_runs_table, write_wandb_csv

PLANTED_FILE = "PLANTED.json"


def _existing(out_dir: Path, seed: int) -> dict | None:
    path = out_dir / PLANTED_FILE
    if not path.is_file():
        return None
    try:
        planted = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if planted.get("seed") == seed and planted.get("simulator_version") == P.SIMULATOR_VERSION:
        return planted
    return None


def _description() -> dict:
    c = P.CHINCHILLA
    return {
        "final_loss": "L(N, D) = E + A / N**alpha + B / D**beta (Hoffmann et al. 2022), times exp(eps_run), "
                      "eps_run ~ Normal(0, noise.final_loss); N = params, D = tokens = steps * batch_tokens",
        "curve": "L(s) = exp(eps_run) * (L0 + A_anneal * S1_tok(s)**(-beta) - C_run * S2(s)) (Tissue et al. 2024 form), "
                 "capped at ln(vocab); L0 = E + A / N**alpha; A_anneal = (1 + constant_lr_excess) * B; "
                 "S1_tok = batch_tokens * sum_{i<=s} eta_i/eta_max; "
                 "S2 = sum_{i<=s} m_i, m_i = lambda * m_{i-1} + (eta_{i-1} - eta_i)/eta_max after warmup (0 during warmup); "
                 "C_run solved per run so that the bracket equals L(N, D) at the last step; "
                 "logged train/loss = L(s) * exp(eps), eps ~ Normal(0, noise.train_step)",
        "evals": "L_y(s) = K * (L(s) - E)**kappa + E_y, times exp(eps), eps ~ Normal(0, noise.eval_step)",
        "tasks": "bpb = (K * (final_loss - E)**kappa + E_bpb) * exp(eps), eps ~ Normal(0, noise.task_bpb); "
                 "acc = floor + (ceiling - floor) * sigmoid(-k * (bpb - bpb0)) + Normal(0, noise.task_acc), clipped to [0, 1]",
        "compute_optimal": "N_opt = G * (C/6)**a, D_opt = (C/6)**b / G, a = beta/(alpha+beta), b = alpha/(alpha+beta), "
                           "G = (alpha*A/(beta*B))**(1/(alpha+beta))",
        "params": "params = 12 * n_layer * d_model**2 + vocab * d_model; non_embedding = 12 * n_layer * d_model**2",
        "values_note": f"E={c['E']}, A={c['A']}, B={c['B']}, alpha={c['alpha']}, beta={c['beta']}",
    }


def write_example_data(out_dir: Path, *, seed: int = 0) -> dict:
    """Write the example study under `out_dir` and return the planted truth (also in PLANTED.json).

    Does nothing when `out_dir/PLANTED.json` already records this seed and simulator version.
    Deterministic: the same seed writes byte-identical files.
    """
    out_dir = Path(out_dir)
    existing = _existing(out_dir, seed)
    if existing is not None:
        return existing
    for sub in ("wandb", "jsonl", "mixture"):
        (out_dir / sub).mkdir(parents=True, exist_ok=True)

    runs = simulate_sweep(seed)
    for run in runs:
        if run.fmt == "wandb":
            write_wandb_csv(out_dir / run.planted["file"], run)
        else:
            write_jsonl(out_dir / run.planted["file"], run)
    write_runs_table(out_dir / "runs.csv", runs)
    write_checkpoints_table(out_dir / "checkpoints.csv", runs)
    mixture = write_mixture_experiment(out_dir / "mixture", seed)

    planted = {
        "simulator": "scaling.simulate",
        "simulator_version": P.SIMULATOR_VERSION,
        "seed": seed,
        "how": _description(),
        "chinchilla": dict(P.CHINCHILLA),
        "compute_optimal": P.compute_optimal(),
        "vocab_size": P.VOCAB_SIZE,
        "seq_len": P.SEQ_LEN,
        "bytes_per_token": P.BYTES_PER_TOKEN,
        "schedules": {
            "cosine": {"final_ratio": P.COSINE_FINAL_RATIO},
            "wsd": {"decay_fraction": P.WSD_DECAY_FRACTION, "final_ratio": 0.0},
            "warmup": {"fraction": P.WARMUP_FRACTION, "min_steps": P.MIN_WARMUP_STEPS},
            "peak_lr": {"at_20M": P.PEAK_LR_AT_20M, "exponent": P.PEAK_LR_EXPONENT},
        },
        "annealing_lambda": P.ANNEALING_LAMBDA,
        "constant_lr_excess": P.CONSTANT_LR_EXCESS,
        "noise": dict(P.NOISE),
        "evals": {name: dict(t) for name, t in P.EVALS.items()},
        "tasks": {name: dict(t) for name, t in P.TASKS.items()},
        "runs": [run.planted for run in runs],
        "mixture": mixture,
        "files": {
            "wandb": "wandb/<run>.csv (W&B history export; evals on every other row)",
            "jsonl": "jsonl/<run>.jsonl",
            "runs": "runs.csv",
            "checkpoints": "checkpoints.csv",
            "mixture": ["mixture/train_weights.csv", "mixture/train_losses.csv",
                        "mixture/test_weights.csv", "mixture/test_losses.csv"],
        },
    }
    text = json.dumps(planted, indent=2) + "\n"
    tmp = out_dir / (PLANTED_FILE + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, out_dir / PLANTED_FILE)  # written last: its presence means the study is complete
    return json.loads(text)
