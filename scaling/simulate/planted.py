"""The planted truth: every constant the example study is generated from.

Values sit near the literature (Hoffmann et al. 2022; Besiroglu et al. 2024) but are
deliberately not equal to any published fit, so a fitter that returns a published number
instead of fitting the data is caught.
"""

from __future__ import annotations

import math

SIMULATOR_VERSION = "1"

VOCAB_SIZE = 50304
SEQ_LEN = 2048
BYTES_PER_TOKEN = 4.2

# Chinchilla form L(N, D) = E + A / N**alpha + B / D**beta  (Hoffmann et al. 2022, eq. 2).
CHINCHILLA = {"E": 1.76, "A": 430.0, "B": 560.0, "alpha": 0.335, "beta": 0.305}

# (n_layer, d_model, batch_tokens): about 19M .. 1.0B parameters, batch 0.25M .. 2M tokens.
ARCHITECTURES = (
    (8, 256, 262_144),
    (8, 512, 262_144),
    (12, 768, 524_288),
    (16, 1024, 524_288),
    (20, 1280, 1_048_576),
    (18, 2048, 2_097_152),
)
TOKENS_PER_PARAM = (5, 10, 20, 40, 80)

# Learning-rate schedules.
PEAK_LR_AT_20M = 3e-3  # peak_lr = PEAK_LR_AT_20M * (params / 2e7) ** PEAK_LR_EXPONENT
PEAK_LR_EXPONENT = -0.6
WARMUP_FRACTION = 0.02  # warmup steps = max(MIN_WARMUP_STEPS, round(WARMUP_FRACTION * steps))
MIN_WARMUP_STEPS = 20
COSINE_FINAL_RATIO = 0.1  # cosine decays to 10% of peak
WSD_DECAY_FRACTION = 0.2  # WSD: the last 20% of steps decay linearly to zero
LOG_EVERY_CHOICES = (1, 2, 4, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000)
MAX_LOGGED_ROWS = 200

# LR-annealing law of Tissue et al. 2024: momentum of the annealing area.
ANNEALING_LAMBDA = 0.999
# A constant-LR curve lies this fraction of the Chinchilla data term above the annealed one:
# the S1 coefficient of the annealing law is (1 + CONSTANT_LR_EXCESS) * B.
CONSTANT_LR_EXCESS = 0.15

# Multiplicative log-normal noise (standard deviations of the log).
NOISE = {
    "final_loss": 0.003,  # one draw per run, scaling the run's whole curve
    "train_step": 0.003,  # each logged train/loss value
    "eval_step": 0.001,  # each logged eval loss value
    "task_bpb": 0.005,  # each task's bits-per-byte at the final checkpoint
    "task_acc": 0.005,  # additive, on accuracy
    "mixture_loss": 0.003,  # each mixture-experiment loss
}

# Loss-to-loss transfer L_y = K * (L - E)**kappa + E_y, L the (noise-free) train loss.
EVALS = {
    "eval/web/loss": {"K": 1.05, "kappa": 0.95, "E_y": 1.95},
    "eval/code/loss": {"K": 0.80, "kappa": 1.15, "E_y": 1.10},
    "eval/books/loss": {"K": 1.12, "kappa": 1.05, "E_y": 2.05},
}

# Downstream tasks at the final checkpoint (two steps, as in the OLMo ladder):
#   bpb = K * (L_final - E)**kappa + E_bpb            (task bits per byte)
#   acc = floor + (ceiling - floor) * sigmoid(-k * (bpb - bpb0))
TASKS = {
    "taskA": {"K": 0.35, "kappa": 1.0, "E_bpb": 0.55, "floor": 0.25, "ceiling": 0.95, "k": 6.0, "bpb0": 1.10},
    "taskB": {"K": 0.30, "kappa": 1.1, "E_bpb": 0.60, "floor": 0.50, "ceiling": 0.90, "k": 5.0, "bpb0": 1.05},
    "taskC": {"K": 0.40, "kappa": 0.9, "E_bpb": 0.50, "floor": 0.25, "ceiling": 0.85, "k": 9.0, "bpb0": 0.95},
}

# Data-mixing law of Ye et al. 2024: L_i(r) = c_i + k_i * exp(sum_j t_ij r_j).
MIXTURE_TRAIN_DOMAINS = ("web", "code", "books", "papers", "wiki")
MIXTURE_TARGETS = ("web", "code", "books", "math")  # "math" is no train domain
MIXTURE_C = {"web": 2.90, "code": 1.40, "books": 3.10, "math": 2.00}
MIXTURE_K = {"web": 1.40, "code": 1.60, "books": 1.30, "math": 1.50}
MIXTURE_T = {
    "web": {"web": -1.6, "code": -0.1, "books": -0.4, "papers": -0.2, "wiki": -0.9},
    "code": {"web": -0.2, "code": -2.0, "books": 0.0, "papers": -0.1, "wiki": 0.0},
    "books": {"web": -0.5, "code": 0.0, "books": -1.8, "papers": -0.1, "wiki": -0.7},
    "math": {"web": -0.2, "code": -0.6, "books": -0.1, "papers": -2.0, "wiki": -0.4},
}
MIXTURE_PRIOR = (0.45, 0.15, 0.15, 0.15, 0.10)  # Dirichlet base measure
MIXTURE_CONCENTRATION = (0.5, 5.0)  # per-row concentration, log-uniform
MIXTURE_N_TRAIN = 120
MIXTURE_N_TEST = 40


def chinchilla_loss(params: float, tokens: float) -> float:
    """L(N, D) = E + A / N**alpha + B / D**beta with the planted values."""
    c = CHINCHILLA
    return c["E"] + c["A"] / params ** c["alpha"] + c["B"] / tokens ** c["beta"]


def compute_optimal() -> dict:
    """Planted compute-optimal allocation under C = 6ND (Hoffmann et al. 2022, eq. 4).

    N_opt(C) = G * (C/6)**a, D_opt(C) = (C/6)**b / G, a = beta/(alpha+beta),
    b = alpha/(alpha+beta), G = (alpha*A / (beta*B))**(1/(alpha+beta)).
    """
    c = CHINCHILLA
    s = c["alpha"] + c["beta"]
    return {
        "a": c["beta"] / s,
        "b": c["alpha"] / s,
        "G": (c["alpha"] * c["A"] / (c["beta"] * c["B"])) ** (1.0 / s),
    }


def params_of(n_layer: int, d_model: int) -> tuple[int, int]:
    """(params, non_embedding_params) = (12 n_layer d^2 + vocab d, 12 n_layer d^2)."""
    non_embedding = 12 * n_layer * d_model * d_model
    return non_embedding + VOCAB_SIZE * d_model, non_embedding


def peak_lr_of(params: int) -> float:
    return PEAK_LR_AT_20M * (params / 2e7) ** PEAK_LR_EXPONENT


def uniform_loss() -> float:
    """ln(vocab): the loss of a uniform guess, where every logged curve is capped."""
    return math.log(VOCAB_SIZE)
