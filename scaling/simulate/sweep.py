"""The simulated model-size x token-budget sweep: run specs and per-step curves.

Per run (N params, D tokens, schedule eta), the Tissue et al. 2024 form

    L(s) = exp(eps_run) * (L0 + A_anneal * S1_tok(s)**(-beta) - C_run * S2(s)),

with L0 = E + A/N**alpha, A_anneal = (1 + CONSTANT_LR_EXCESS) * B, S1_tok = S1 * batch_tokens,
and C_run solved so that the bracket equals the Chinchilla L(N, D) at the last step; the
run-level noise exp(eps_run) scales the whole curve, so the run ends on L(N, D) * exp(eps_run).
A constant-LR run would sit (1 + CONSTANT_LR_EXCESS) times the Chinchilla data term above L0:
annealing is what brings a schedule down onto the Chinchilla value. Every loss (train and the
eval transfers) is capped at ln(vocab), the loss of a uniform guess; only the first few logged
steps of a run reach the cap.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from scaling.simulate import planted as P
from scaling.simulate.schedules import annealing_areas, lr_schedule

_STREAM_RUN = 1
_STREAM_TASKS = 2
_START_TIME = 1_717_200_000.0  # the sweep's first run starts here (unix seconds)
_FLOPS_PER_SECOND = 4e14


@dataclass
class SimulatedRun:
    run: str
    params: int
    non_embedding_params: int
    n_layer: int
    d_model: int
    batch_tokens: int
    steps: int
    warmup_steps: int
    peak_lr: float
    schedule: str
    fmt: str  # "wandb" or "jsonl"
    tokens_as_float: bool
    log_every: int
    planted: dict
    step: np.ndarray = field(repr=False)
    lr: np.ndarray = field(repr=False)
    runtime: np.ndarray = field(repr=False)
    timestamp: np.ndarray = field(repr=False)
    train_loss: np.ndarray = field(repr=False)
    evals: dict[str, np.ndarray] = field(repr=False)
    eval_logged: np.ndarray = field(repr=False)  # rows where W&B logged the evals

    @property
    def tokens(self) -> np.ndarray:
        return self.step * self.batch_tokens


def _log_every(steps: int) -> int:
    return next(k for k in P.LOG_EVERY_CHOICES if steps / k <= P.MAX_LOGGED_ROWS)


def _logged_steps(steps: int, every: int) -> np.ndarray:
    logged = np.arange(every, steps + 1, every)
    if logged[-1] != steps:
        logged = np.append(logged, steps)
    return logged


def transfer(loss: np.ndarray | float, K: float, kappa: float, offset: float) -> np.ndarray | float:
    """Loss-to-loss transfer K * (L - E)**kappa + offset, E the planted irreducible loss."""
    return K * (np.asarray(loss) - P.CHINCHILLA["E"]) ** kappa + offset


def sigmoid_accuracy(bpb: float, floor: float, ceiling: float, k: float, bpb0: float) -> float:
    """acc = floor + (ceiling - floor) * sigmoid(-k * (bpb - bpb0))."""
    return floor + (ceiling - floor) / (1.0 + math.exp(k * (bpb - bpb0)))


def _simulate_run(seed: int, index: int, size: int, budget: int) -> SimulatedRun:
    n_layer, d_model, batch = P.ARCHITECTURES[size]
    tpp = P.TOKENS_PER_PARAM[budget]
    params, non_embedding = P.params_of(n_layer, d_model)
    steps = round(tpp * params / batch)
    tokens = steps * batch
    warmup = max(P.MIN_WARMUP_STEPS, round(P.WARMUP_FRACTION * steps))
    peak = P.peak_lr_of(params)
    kind = "wsd" if (size + budget) % 3 == 0 else "cosine"
    rng = np.random.default_rng([seed, _STREAM_RUN, index])

    eta = lr_schedule(kind, steps, warmup, peak, final_ratio=P.COSINE_FINAL_RATIO, decay_fraction=P.WSD_DECAY_FRACTION)
    s1, s2 = annealing_areas(eta, warmup, P.ANNEALING_LAMBDA)
    c = P.CHINCHILLA
    s1_tokens = s1 * batch
    L0 = c["E"] + c["A"] / params ** c["alpha"]
    A_anneal = (1.0 + P.CONSTANT_LR_EXCESS) * c["B"]
    law_final = P.chinchilla_loss(params, tokens)
    anneal_c = (L0 + A_anneal * s1_tokens[-1] ** -c["beta"] - law_final) / s2[-1]
    if anneal_c <= 0:
        raise RuntimeError(f"annealing coefficient must be positive, got {anneal_c} for run {index}")
    eps_run = float(rng.normal(0.0, P.NOISE["final_loss"]))
    final = law_final * math.exp(eps_run)
    law = L0 + A_anneal * s1_tokens ** -c["beta"] - anneal_c * s2
    clean = np.minimum(law * math.exp(eps_run), P.uniform_loss())

    every = _log_every(steps)
    logged = _logged_steps(steps, every)
    rows = logged - 1
    eps_train = rng.normal(0.0, P.NOISE["train_step"], len(logged))
    train = clean[rows] * np.exp(eps_train)
    evals = {
        name: np.minimum(transfer(clean[rows], t["K"], t["kappa"], t["E_y"]), P.uniform_loss())
        * np.exp(rng.normal(0.0, P.NOISE["eval_step"], len(logged)))
        for name, t in P.EVALS.items()
    }
    seconds_per_step = 6.0 * params * batch / _FLOPS_PER_SECOND
    gaps = np.diff(np.concatenate(([0], logged)))
    runtime = 20.0 + np.cumsum(gaps * seconds_per_step * np.exp(rng.normal(0.0, 0.03, len(logged))))
    start = _START_TIME + index * 86_400.0 + float(rng.uniform(0.0, 3_600.0))

    label = f"{round(params / 1e6)}M"
    name = f"sim-{label}-{tpp}x"
    flops = 6.0 * params * tokens
    optimal = P.compute_optimal()
    fmt = "wandb" if index % 2 == 0 else "jsonl"
    record = {
        "run": name,
        "format": fmt,
        "file": f"wandb/{name}.csv" if fmt == "wandb" else f"jsonl/{name}.jsonl",
        "params": params,
        "non_embedding_params": non_embedding,
        "n_layer": n_layer,
        "d_model": d_model,
        "batch_tokens": batch,
        "steps": steps,
        "warmup_steps": warmup,
        "log_every": every,
        "tokens": tokens,
        "tokens_per_param": tokens / params,
        "training_flops": flops,
        "schedule": kind,
        "peak_lr": peak,
        "final_loss_law": law_final,
        "final_loss_noise_log": eps_run,
        "final_loss": final,
        "final_train_loss_logged_noise_log": float(eps_train[-1]),
        "annealing": {"curve": "exp(final_loss_noise_log) * (L0 + A * S1_tokens**-alpha - C * S2)",
                      "L0": L0, "A": A_anneal, "alpha": c["beta"], "C": anneal_c, "lambda": P.ANNEALING_LAMBDA,
                      "S1_tokens_final": float(s1_tokens[-1]), "S2_final": float(s2[-1])},
        "compute_optimal": {"a": optimal["a"], "b": optimal["b"],
                            "params": optimal["G"] * (flops / 6.0) ** optimal["a"],
                            "tokens": (flops / 6.0) ** optimal["b"] / optimal["G"]},
    }
    return SimulatedRun(
        run=name, params=params, non_embedding_params=non_embedding, n_layer=n_layer, d_model=d_model,
        batch_tokens=batch, steps=steps, warmup_steps=warmup, peak_lr=peak, schedule=kind, fmt=fmt,
        tokens_as_float=(index // 2) % 2 == 1, log_every=every, planted=record,
        step=logged, lr=eta[rows], runtime=runtime, timestamp=start + runtime, train_loss=train, evals=evals,
        eval_logged=(logged % (2 * every) == 0) | (logged == steps),
    )


def _add_tasks(seed: int, index: int, run: SimulatedRun) -> None:
    rng = np.random.default_rng([seed, _STREAM_TASKS, index])
    final = run.planted["final_loss"]
    tasks = {}
    for name, t in P.TASKS.items():
        bpb = float(transfer(final, t["K"], t["kappa"], t["E_bpb"])) * math.exp(rng.normal(0.0, P.NOISE["task_bpb"]))
        acc_law = sigmoid_accuracy(bpb, t["floor"], t["ceiling"], t["k"], t["bpb0"])
        acc = min(1.0, max(0.0, acc_law + float(rng.normal(0.0, P.NOISE["task_acc"]))))
        tasks[name] = {"bpb": bpb, "accuracy_law": acc_law, "accuracy": acc}
    run.planted["tasks"] = tasks


def simulate_sweep(seed: int) -> list[SimulatedRun]:
    """All runs of the sweep, in size-major order."""
    runs = []
    for size in range(len(P.ARCHITECTURES)):
        for budget in range(len(P.TOKENS_PER_PARAM)):
            index = len(runs)
            run = _simulate_run(seed, index, size, budget)
            _add_tasks(seed, index, run)
            runs.append(run)
    return runs
