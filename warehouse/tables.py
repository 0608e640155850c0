"""The catalog's tables: names, columns, types and what each column means.

This is the one place the output schema is written down. The DuckDB catalog's views, the
Parquet files the assets write, and the table reference in docs/tables.md all follow it. `group_name`
is used instead of `group` because GROUP is reserved in SQL.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

_POLARS = {
    "VARCHAR": pl.Utf8,
    "DOUBLE": pl.Float64,
    "BIGINT": pl.Int64,
    "BOOLEAN": pl.Boolean,
    "TIMESTAMP": pl.Datetime("us"),
}


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    doc: str


@dataclass(frozen=True)
class Table:
    name: str
    doc: str
    columns: tuple[Column, ...]

    @property
    def polars_schema(self) -> dict[str, pl.DataType]:
        return {c.name: _POLARS[c.type] for c in self.columns}

    def conform(self, frame: pl.DataFrame | pl.LazyFrame) -> pl.DataFrame | pl.LazyFrame:
        """Select the documented columns in order, casting types; missing columns become nulls."""
        exprs = []
        present = set(frame.collect_schema())
        for c in self.columns:
            dtype = _POLARS[c.type]
            if c.name in present:
                exprs.append(pl.col(c.name).cast(dtype, strict=False))
            else:
                exprs.append(pl.lit(None, dtype=dtype).alias(c.name))
        return frame.select(exprs)

    def empty(self) -> pl.DataFrame:
        return pl.DataFrame(schema=self.polars_schema)


def _t(name: str, doc: str, *cols: tuple[str, str, str]) -> Table:
    return Table(name, doc, tuple(Column(*c) for c in cols))


STUDY = ("study", "VARCHAR", "study name (the Dagster partition key)")
GROUP = ("group_name", "VARCHAR", "group inside the study, as label=value pairs joined by ','; '' for the whole study")

RUNS = _t(
    "runs", "one row per training run (or per published model), with its size, data and compute",
    STUDY,
    ("source", "VARCHAR", "source name in the study file"),
    ("run", "VARCHAR", "run id, unique within the study"),
    GROUP,
    ("labels", "VARCHAR", "all group labels of the run as a JSON object"),
    ("kind", "VARCHAR", "training_logs or checkpoint_results"),
    ("params", "DOUBLE", "total parameters N, embeddings included"),
    ("non_embedding_params", "DOUBLE", "parameters without (input and output) embeddings, when known"),
    ("n_layer", "BIGINT", "transformer layers"),
    ("d_model", "BIGINT", "model width"),
    ("vocab_size", "BIGINT", "vocabulary size"),
    ("seq_len", "BIGINT", "training context length n_ctx"),
    ("batch_tokens", "DOUBLE", "tokens per optimizer step"),
    ("bytes_per_token", "DOUBLE", "tokenizer bytes per token (for bits per byte)"),
    ("unique_tokens", "DOUBLE", "unique tokens available (data-constrained studies)"),
    ("dataset", "VARCHAR", "training data set"),
    ("final_step", "BIGINT", "last step logged"),
    ("tokens", "DOUBLE", "training tokens D at the final point"),
    ("flops", "DOUBLE", "training compute at the final point under the study's convention"),
    ("flops_6nd", "DOUBLE", "6·N·D (Kaplan et al. 2020; Hoffmann et al. 2022)"),
    ("flops_attention", "DOUBLE", "6·N·D + 6·n_layer·n_ctx·d_model·D (attention included), when the architecture is known"),
    ("flops_convention", "VARCHAR", "which count `flops` holds: 6ND or 6ND+attention"),
    ("tokens_per_param", "DOUBLE", "D / N"),
    ("n_points", "BIGINT", "rows this run has in `points`"),
)

POINTS = _t(
    "points", "one row per run x step x metric",
    STUDY,
    ("source", "VARCHAR", "source name"),
    ("run", "VARCHAR", "run id"),
    GROUP,
    ("step", "BIGINT", "optimizer step (null when the source has none)"),
    ("tokens", "DOUBLE", "tokens seen so far (from the log, or step x batch tokens)"),
    ("flops", "DOUBLE", "compute so far under the study's convention"),
    ("learning_rate", "DOUBLE", "learning rate at this step, when logged"),
    ("metric", "VARCHAR", "metric name as mapped in the study file"),
    ("unit", "VARCHAR", "unit of `value`: nats, bits, bits_per_byte, perplexity, accuracy or other"),
    ("value", "DOUBLE", "the value as logged"),
    ("loss_nats", "DOUBLE", "loss in nats per token (for loss-like units)"),
    ("bits_per_byte", "DOUBLE", "loss_nats / (ln 2 · bytes_per_token), when bytes per token is known"),
    ("stderr", "DOUBLE", "standard error of `value`, when published"),
    ("is_final", "BOOLEAN", "the run's last point for this metric"),
    ("file", "VARCHAR", "file the value came from"),
    ("row", "BIGINT", "line or record number in that file"),
)

QUARANTINE = _t(
    "quarantine", "rows a study chose to set aside instead of failing, with the reason",
    STUDY,
    ("source", "VARCHAR", "source name"),
    ("file", "VARCHAR", "file"),
    ("row", "BIGINT", "line or record number"),
    ("column", "VARCHAR", "column at fault"),
    ("reason", "VARCHAR", "what was wrong and what was expected"),
    ("record", "VARCHAR", "the raw row as JSON"),
)

LAW_FITS = _t(
    "law_fits", "one row per fitted parameter (and derived quantity) of each law, target and group",
    STUDY, GROUP,
    ("law", "VARCHAR", "law name in the zoo"),
    ("target", "VARCHAR", "metric the law predicts"),
    ("parameter", "VARCHAR", "parameter or derived quantity name"),
    ("estimate", "DOUBLE", "point estimate from the full-data fit"),
    ("ci_low", "DOUBLE", "2.5th percentile over bootstrap refits (resampling runs)"),
    ("ci_high", "DOUBLE", "97.5th percentile over bootstrap refits"),
    ("objective", "DOUBLE", "objective at the optimum"),
    ("n_points", "BIGINT", "points fitted"),
    ("n_runs", "BIGINT", "runs fitted"),
    ("converged", "BOOLEAN", "the optimizer converged and no blocking flag was raised"),
    ("flags", "VARCHAR", "comma-separated warnings: at_bound:<p>, exponent_implausible, ..."),
    ("settings", "VARCHAR", "fit settings as JSON (objective, delta, space, bounds, fixed, resamples, seed)"),
    ("input_hash", "VARCHAR", "sha256 of the exact data fitted"),
)

BACKTESTS = _t(
    "backtests", "held-out checks: fit without the largest-compute runs, predict them",
    STUDY, GROUP,
    ("law", "VARCHAR", "law name"),
    ("target", "VARCHAR", "metric"),
    ("run", "VARCHAR", "held-out run"),
    ("flops", "DOUBLE", "compute of the held-out point"),
    ("actual", "DOUBLE", "observed value"),
    ("predicted", "DOUBLE", "prediction of the restricted fit"),
    ("ci_low", "DOUBLE", "2.5th percentile of the prediction"),
    ("ci_high", "DOUBLE", "97.5th percentile of the prediction"),
    ("rel_error", "DOUBLE", "(predicted - actual) / actual"),
    ("covered", "BOOLEAN", "actual inside [ci_low, ci_high]"),
)

LAW_DRAWS = _t(
    "law_draws", "bootstrap draws of every fitted law (one row per draw x parameter), for your own intervals",
    STUDY, GROUP,
    ("law", "VARCHAR", "law name"),
    ("target", "VARCHAR", "metric"),
    ("draw", "BIGINT", "resample number"),
    ("parameter", "VARCHAR", "parameter name"),
    ("value", "DOUBLE", "refitted value"),
)

FORECASTS = _t(
    "forecasts", "compute-optimal allocations and named target runs with predicted values and intervals",
    STUDY, GROUP,
    ("law", "VARCHAR", "law name"),
    ("target", "VARCHAR", "metric predicted"),
    ("kind", "VARCHAR", "compute_optimal, target_run, data_constrained, fixed_size or downstream"),
    ("name", "VARCHAR", "target run name or budget label"),
    ("flops", "DOUBLE", "compute budget under the study's convention"),
    ("params", "DOUBLE", "model size N (N_opt for compute_optimal)"),
    ("tokens", "DOUBLE", "training tokens D (D_opt for compute_optimal)"),
    ("tokens_per_param", "DOUBLE", "D / N"),
    ("epochs", "DOUBLE", "passes over the unique data (data-constrained forecasts)"),
    ("params_ci_low", "DOUBLE", "2.5th percentile of N"),
    ("params_ci_high", "DOUBLE", "97.5th percentile of N"),
    ("tokens_ci_low", "DOUBLE", "2.5th percentile of D"),
    ("tokens_ci_high", "DOUBLE", "97.5th percentile of D"),
    ("predicted", "DOUBLE", "predicted value of the target"),
    ("ci_low", "DOUBLE", "2.5th percentile of the prediction"),
    ("ci_high", "DOUBLE", "97.5th percentile of the prediction"),
    ("extrapolation", "DOUBLE", "budget / largest observed budget"),
    ("actual", "DOUBLE", "observed value, when the target run exists"),
    ("rel_error", "DOUBLE", "(predicted - actual) / actual, when observed"),
    ("recommended", "BOOLEAN", "from the law that backtests best for this target"),
)

BACKTEST_SUMMARY = _t(
    "backtest_summary", "per study, group, law and target: how well the law predicted held-out runs",
    STUDY, GROUP,
    ("law", "VARCHAR", "law name"),
    ("target", "VARCHAR", "metric"),
    ("n_heldout", "BIGINT", "held-out points"),
    ("mean_abs_rel_error", "DOUBLE", "mean |rel_error|"),
    ("max_abs_rel_error", "DOUBLE", "max |rel_error|"),
    ("coverage", "DOUBLE", "share of held-out points inside the 95% interval"),
    ("rank", "BIGINT", "1 = best law for this study, group and target"),
    ("verdict", "VARCHAR", "best, ok, or poor (and why)"),
)

MIXTURE_POINTS = _t(
    "mixture_points", "mixture experiments in long form: one row per run x domain weight or target loss",
    STUDY,
    ("source", "VARCHAR", "source name"),
    ("run", "VARCHAR", "mixture run id (the join key)"),
    ("split", "VARCHAR", "train or test"),
    ("kind", "VARCHAR", "weight (a training domain's share) or loss (a validation domain's loss)"),
    ("domain", "VARCHAR", "domain name"),
    ("value", "DOUBLE", "weight after renormalization, or loss in nats"),
    ("raw_value", "DOUBLE", "weight as given"),
    ("renormalized", "BOOLEAN", "the run's weights did not sum to 1 and were rescaled"),
    ("params", "DOUBLE", "proxy model size, when given"),
    ("tokens", "DOUBLE", "training tokens, when given"),
    ("steps", "DOUBLE", "training steps, when given"),
)

MIXING_LAWS = _t(
    "mixing_laws", "fitted data-mixing laws per target domain with held-out scores",
    STUDY,
    ("target_domain", "VARCHAR", "validation domain predicted"),
    ("law", "VARCHAR", "linear, ye_exp, bimix or nested"),
    ("parameter", "VARCHAR", "parameter name"),
    ("estimate", "DOUBLE", "point estimate"),
    ("ci_low", "DOUBLE", "2.5th percentile over bootstrap refits"),
    ("ci_high", "DOUBLE", "97.5th percentile over bootstrap refits"),
    ("heldout_spearman", "DOUBLE", "Spearman rank correlation on held-out mixtures"),
    ("heldout_mae", "DOUBLE", "mean absolute error on held-out mixtures"),
    ("n_train", "BIGINT", "mixtures fitted"),
    ("n_test", "BIGINT", "mixtures held out"),
)

OPTIMAL_MIXTURES = _t(
    "optimal_mixtures", "proposed mixture per objective with predicted per-domain losses, beside a baseline",
    STUDY,
    ("objective", "VARCHAR", "what was minimized"),
    ("law", "VARCHAR", "mixing law used"),
    ("domain", "VARCHAR", "training domain (or, for a target without a training domain, the target)"),
    ("target_domain", "VARCHAR", "validation domain whose loss this row reports, when there is one"),
    ("weight", "DOUBLE", "proposed weight of the training domain"),
    ("baseline_weight", "DOUBLE", "baseline mixture weight"),
    ("predicted_loss", "DOUBLE", "predicted loss of target_domain under the proposed mixture"),
    ("ci_low", "DOUBLE", "2.5th percentile"),
    ("ci_high", "DOUBLE", "97.5th percentile"),
    ("baseline_predicted_loss", "DOUBLE", "predicted loss under the baseline mixture"),
    ("baseline_ci_low", "DOUBLE", "2.5th percentile"),
    ("baseline_ci_high", "DOUBLE", "97.5th percentile"),
)

TABLES: dict[str, Table] = {
    t.name: t
    for t in (RUNS, POINTS, QUARANTINE, LAW_FITS, BACKTESTS, LAW_DRAWS, FORECASTS, BACKTEST_SUMMARY,
              MIXTURE_POINTS, MIXING_LAWS, OPTIMAL_MIXTURES)
}
