"""Writers for the example study's files, each in the dialect its real counterpart uses."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from scaling.simulate import planted as P
from scaling.simulate.sweep import SimulatedRun

WANDB_COLUMNS = (
    "_step", "_runtime", "_timestamp", "train/loss", "eval/web/loss", "eval/code/loss", "eval/books/loss",
    "optim/lr", "throughput/total_tokens",
)
JSONL_EVALS = {"eval/web/loss": "eval_web_loss", "eval/code/loss": "eval_code_loss", "eval/books/loss": "eval_books_loss"}
RUNS_COLUMNS = (
    "run", "params", "non_embedding_params", "n_layer", "d_model", "vocab_size", "seq_len", "batch_tokens",
    "schedule", "bytes_per_token", "peak_lr", "warmup_steps", "total_steps",
)


def _float32_text(values: np.ndarray) -> list[str]:
    """Float32 metrics as W&B exports them: the float64 repr of a float32 value."""
    return [repr(v) for v in values.astype(np.float32).astype(np.float64).tolist()]


def write_wandb_csv(path: Path, run: SimulatedRun) -> None:
    """A W&B history export: evals logged on every other row (blank cells between)."""
    columns = {
        "_step": [str(s) for s in run.step.tolist()],
        "_runtime": [repr(round(v, 6)) for v in run.runtime.tolist()],
        "_timestamp": [repr(round(v, 6)) for v in run.timestamp.tolist()],
        "train/loss": _float32_text(run.train_loss),
        "optim/lr": _float32_text(run.lr),
        "throughput/total_tokens": [f"{t}.0" if run.tokens_as_float else str(t) for t in run.tokens.tolist()],
    }
    for name, values in run.evals.items():
        columns[name] = [v if logged else "" for v, logged in zip(_float32_text(values), run.eval_logged.tolist())]
    with path.open("w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(WANDB_COLUMNS)
        writer.writerows(zip(*(columns[c] for c in WANDB_COLUMNS)))


def write_jsonl(path: Path, run: SimulatedRun) -> None:
    """A trainer's own JSON-lines log: one object per logged step, every key on every line."""
    lines = []
    evals = {key: run.evals[name].tolist() for name, key in JSONL_EVALS.items()}
    for i, (step, tokens, lr, loss) in enumerate(
        zip(run.step.tolist(), run.tokens.tolist(), run.lr.tolist(), run.train_loss.tolist())
    ):
        record = {"run": run.run, "step": step, "tokens": tokens, "lr": float(f"{lr:.6g}"), "loss": round(loss, 5)}
        record.update({key: round(values[i], 5) for key, values in evals.items()})
        lines.append(json.dumps(record))
    path.write_text("\n".join(lines) + "\n")


def write_runs_table(path: Path, runs: list[SimulatedRun]) -> None:
    with path.open("w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(RUNS_COLUMNS)
        for r in runs:
            writer.writerow((
                r.run, r.params, r.non_embedding_params, r.n_layer, r.d_model, P.VOCAB_SIZE, P.SEQ_LEN,
                r.batch_tokens, r.schedule, P.BYTES_PER_TOKEN, repr(r.peak_lr), r.warmup_steps, r.steps,
            ))


def write_checkpoints_table(path: Path, runs: list[SimulatedRun]) -> None:
    """Published final-checkpoint results, rounded as a paper's table would be."""
    tasks = list(P.TASKS)
    with path.open("w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["model", "params", "tokens", "training_flops", "final_loss"]
                        + [f"bpb_{t}" for t in tasks] + [f"acc_{t}" for t in tasks])
        for r in runs:
            p = r.planted
            writer.writerow(
                [r.run, r.params, p["tokens"], f"{p['training_flops']:.4e}", f"{p['final_loss']:.4f}"]
                + [f"{p['tasks'][t]['bpb']:.4f}" for t in tasks]
                + [f"{p['tasks'][t]['accuracy']:.4f}" for t in tasks]
            )
