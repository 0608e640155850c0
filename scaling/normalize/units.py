"""Unit arithmetic for normalization: compute, tokens, parameter counts and loss units.

- Training compute, Kaplan et al. 2020 / Hoffmann et al. 2022: C ≈ 6·N·D
  (2 FLOPs per parameter per token forward, 4 backward).
- Attention-inclusive count (Kaplan et al. 2020, Table 1): the context-dependent term adds
  2·n_layer·n_ctx·d_model FLOPs per token forward, so C ≈ 6·N·D + 6·n_layer·n_ctx·d_model·D.
- Mixture-of-experts runs: N in 6·N·D is the active parameter count per token (`active_params`),
  not the total; the total stays in `params`.
- Accelerator time (its own convention, as budgets are often stated in GPU-hours):
  C = accelerator-hours · 3600 s/h · peak FLOP/s per accelerator · MFU.
- Tokens from steps: D = step · batch_size_in_tokens.
- Bits per byte: bpb = loss_nats / (ln 2 · bytes_per_token).
"""

from __future__ import annotations

import math

import numpy as np
import polars as pl

LN2 = math.log(2.0)


def flops_6nd(params, tokens):
    """C = 6·N·D."""
    return 6.0 * params * tokens


def flops_attention(params, tokens, n_layer, seq_len, d_model):
    """C = 6·N·D + 6·n_layer·n_ctx·d_model·D (attention scores and values included)."""
    return 6.0 * params * tokens + 6.0 * n_layer * seq_len * d_model * tokens


def flops_params(params, active_params):
    """N used to count compute: the active parameters of a mixture-of-experts run, else all parameters."""
    if isinstance(params, pl.Expr):
        return pl.coalesce(active_params, params)
    return params if active_params is None else active_params


def flops_accelerator(gpu_hours, peak_flops, mfu):
    """C = accelerator-hours · 3600 · peak FLOP/s · MFU (model FLOPs utilization, 0-1)."""
    return gpu_hours * 3600.0 * peak_flops * mfu


def tokens_from_steps(step, batch_tokens):
    """D = step · tokens per step."""
    return step * batch_tokens


def non_embedding_params(params, vocab_size, d_model, tied_embeddings: bool = True):
    """N_non-emb = N - vocab·d_model (one shared matrix) or - 2·vocab·d_model (untied input/output)."""
    return params - (1 if tied_embeddings else 2) * vocab_size * d_model


def kaplan_non_embedding_params(n_layer, d_model):
    """N ≈ 12·n_layer·d_model² (Kaplan et al. 2020, eq. 2.1, with d_ff = 4·d_model)."""
    return 12.0 * n_layer * d_model**2


def to_nats_expr(value: pl.Expr, unit: pl.Expr, bytes_per_token: pl.Expr) -> pl.Expr:
    """Loss in nats per token from a value in `unit`; null for units that are not a loss."""
    return (
        pl.when(unit == "nats").then(value)
        .when(unit == "bits").then(value * LN2)
        .when(unit == "perplexity").then(value.log())
        .when(unit == "bits_per_byte").then(value * LN2 * bytes_per_token)
        .otherwise(None)
    )


def bits_per_byte_expr(value: pl.Expr, unit: pl.Expr, loss_nats: pl.Expr, bytes_per_token: pl.Expr) -> pl.Expr:
    """bpb = loss_nats / (ln 2 · bytes_per_token), or the value itself when it is already in bits per byte."""
    return pl.when(unit == "bits_per_byte").then(value).otherwise(loss_nats / (LN2 * bytes_per_token))


def tokens_per_param_plausible(tokens_per_param: np.ndarray, low: float = 0.01, high: float = 1e5) -> np.ndarray:
    """Whether D/N lies in a range real training runs occupy (units check)."""
    return (tokens_per_param >= low) & (tokens_per_param <= high)
