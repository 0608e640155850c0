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
    ("active_params", "DOUBLE", "parameters active per token (mixture-of-experts); compute counts these"),
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
    ("flops_6nd", "DOUBLE", "6·N·D (Kaplan et al. 2020; Hoffmann et al. 2022), N the active parameters of a mixture-of-experts run"),
    ("flops_attention", "DOUBLE", "6·N·D + 6·n_layer·n_ctx·d_model·D (attention included), when the architecture is known"),
    ("flops_accelerator", "DOUBLE", "accelerator-hours · 3600 · peak FLOP/s · MFU, when the run's accelerator time is known"),
    ("gpu_hours", "DOUBLE", "accelerator-hours of the run"),
    ("peak_flops", "DOUBLE", "peak FLOP/s of one accelerator"),
    ("mfu", "DOUBLE", "model FLOPs utilization (0-1)"),
    ("schedule_steps", "BIGINT", "step at which the run's learning-rate schedule ends, when the study states it"),
    ("schedule_tokens", "DOUBLE", "tokens at which the run's learning-rate schedule ends, when the study states it"),
    ("cooldown_start_step", "BIGINT", "step at which the schedule's cooldown (decay) starts, when the study states it"),
    ("cooldown_start_tokens", "DOUBLE", "tokens at which the schedule's cooldown (decay) starts, when the study states it"),
    ("flops_convention", "VARCHAR", "which count `flops` holds: 6ND, 6ND+attention or accelerator"),
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
    ("checkpoint", "VARCHAR", "position in the run's schedule: end (its last point, or within 1% of the end the study states), cooldown (past the cooldown start the study states, else past the learning-rate peak and below half of it) or mid"),
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
    ("settings", "VARCHAR", "fit settings as JSON (objective, delta, space, bounds, fixed, resamples, seed, "
                            "max_fitted_flops)"),
    ("input_hash", "VARCHAR", "sha256 of the exact data fitted"),
)

ISOFLOP_OPTIMA = _t(
    "isoflop_optima", "compute-optimal points behind Chinchilla approaches 1 and 2: per budget (isoflop) or "
    "compute bucket (envelope), the optimal N, D and loss with intervals over run resamples",
    STUDY, GROUP,
    ("law", "VARCHAR", "isoflop (approach 2: parabola minimum per budget) or envelope (approach 1: lowest curve)"),
    ("target", "VARCHAR", "metric minimized"),
    ("flops", "DOUBLE", "compute budget under the study's convention"),
    ("params", "DOUBLE", "compute-optimal model size N*"),
    ("params_ci_low", "DOUBLE", "2.5th percentile of N* over run resamples that reach this budget"),
    ("params_ci_high", "DOUBLE", "97.5th percentile of N*"),
    ("tokens", "DOUBLE", "compute-optimal training tokens D*"),
    ("tokens_ci_low", "DOUBLE", "2.5th percentile of D*"),
    ("tokens_ci_high", "DOUBLE", "97.5th percentile of D*"),
    ("tokens_per_param", "DOUBLE", "D* / N*"),
    ("loss", "DOUBLE", "loss at the optimum L*"),
    ("loss_ci_low", "DOUBLE", "2.5th percentile of L*"),
    ("loss_ci_high", "DOUBLE", "97.5th percentile of L*"),
    ("n_runs", "BIGINT", "runs at this budget"),
    ("reached", "DOUBLE", "share of resamples with an optimum at this budget"),
    ("run", "VARCHAR", "run on the envelope (approach 1)"),
)

BACKTESTS = _t(
    "backtests", "held-out checks and rollouts: fit without the largest-compute runs, predict them",
    STUDY, GROUP,
    ("law", "VARCHAR", "law name"),
    ("target", "VARCHAR", "metric"),
    ("holdout", "VARCHAR", "which hold-out: the study's own (`holdout`, or the top `holdout_fraction` of runs by compute) or a rollout cut-off (top 50% / 35% / 20% of runs by compute)"),
    ("primary", "BOOLEAN", "the row is from the study's own hold-out (the one laws are ranked on)"),
    ("run", "VARCHAR", "held-out run"),
    ("flops", "DOUBLE", "compute of the held-out point"),
    ("fitted_max_flops", "DOUBLE", "largest compute the restricted fit saw"),
    ("extrapolation", "DOUBLE", "flops / fitted_max_flops"),
    ("actual", "DOUBLE", "observed value"),
    ("predicted", "DOUBLE", "prediction of the restricted fit"),
    ("ci_low", "DOUBLE", "2.5th percentile of the calibrated 95% prediction interval"),
    ("ci_high", "DOUBLE", "97.5th percentile of the calibrated 95% prediction interval"),
    ("rel_error", "DOUBLE", "(predicted - actual) / actual"),
    ("covered", "BOOLEAN", "actual inside [ci_low, ci_high]"),
    ("boot_ci_low", "DOUBLE", "2.5th percentile before calibration (bootstrap draws plus run scatter)"),
    ("boot_ci_high", "DOUBLE", "97.5th percentile before calibration"),
    ("boot_covered", "BOOLEAN", "actual inside [boot_ci_low, boot_ci_high]"),
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
    ("extrapolation", "DOUBLE", "budget / largest compute the fit used (target runs never enter a fit)"),
    ("actual", "DOUBLE", "observed value, when the target run exists"),
    ("rel_error", "DOUBLE", "(predicted - actual) / actual, when observed"),
    ("recommended", "BOOLEAN", "from the law that backtests best for this target, unless the forecast fails a sanity check below"),
    ("warnings", "VARCHAR", "comma-separated sanity flags: allocation_outside_fitted:tokens_per_param, below_irreducible, outside_metric_range, law_not_for_metric, sigmoid_inverted (the last three also unset recommended), and the fit's not_identified:<p>"),
)

BACKTEST_SUMMARY = _t(
    "backtest_summary", "per study, group, law and target: how well the law predicted held-out runs, on the "
    "study's hold-out and per extrapolation distance over all rollouts",
    STUDY, GROUP,
    ("law", "VARCHAR", "law name"),
    ("target", "VARCHAR", "metric"),
    ("extrapolation_bin", "VARCHAR", "'hold-out' (the study's own hold-out, ranked) or a range of extrapolation over all rollout cut-offs: 1-2x, 2-5x, 5-10x, 10-100x, >100x"),
    ("n_heldout", "BIGINT", "held-out points"),
    ("mean_abs_rel_error", "DOUBLE", "mean |rel_error|"),
    ("max_abs_rel_error", "DOUBLE", "max |rel_error|"),
    ("coverage", "DOUBLE", "share of held-out points inside the calibrated 95% interval"),
    ("boot_coverage", "DOUBLE", "share inside the interval before calibration (bootstrap draws plus run scatter)"),
    ("mean_rel_width", "DOUBLE", "mean (ci_high - ci_low) / actual of the calibrated interval"),
    ("rank", "BIGINT", "1 = best law for this study, group and target (hold-out rows only)"),
    ("verdict", "VARCHAR", "best, ok, or poor (and why) (hold-out rows only)"),
)

CROSSOVERS = _t(
    "crossovers", "arms compared by scaling: per pair of groups, law and target, the compute where the fitted "
    "laws cross (kind crossover) and the probability each arm is better at named budgets (kind budget)",
    STUDY,
    ("law", "VARCHAR", "law both arms fitted"),
    ("target", "VARCHAR", "metric compared (lower is better)"),
    ("group_a", "VARCHAR", "first arm (group_name)"),
    ("group_b", "VARCHAR", "second arm"),
    ("kind", "VARCHAR", "crossover or budget"),
    ("flops", "DOUBLE", "crossover compute (null: none in range), or the named budget"),
    ("flops_ci_low", "DOUBLE", "2.5th percentile of the crossover over paired draws that cross in range"),
    ("flops_ci_high", "DOUBLE", "97.5th percentile of the crossover"),
    ("p_cross", "DOUBLE", "share of paired draws whose laws cross in the searched range"),
    ("predicted_a", "DOUBLE", "arm a's loss at the budget (compute-optimal for laws in N and D)"),
    ("predicted_b", "DOUBLE", "arm b's loss at the budget"),
    ("p_a_better", "DOUBLE", "share of paired draws in which arm a has the lower loss at the budget"),
    ("n_draws", "BIGINT", "paired bootstrap draws used"),
    ("flops_searched_low", "DOUBLE", "smallest compute searched (smallest observed)"),
    ("flops_searched_high", "DOUBLE", "largest compute searched"),
    ("note", "VARCHAR", "which arm leads where, or 'none in range'"),
)

OBSERVATIONAL_COMPONENTS = _t(
    "observational_components", "observational scaling laws (Ruan et al. 2024): the capability space's principal "
    "components, one row per component x benchmark, with intervals over model resamples",
    STUDY,
    ("target", "VARCHAR", "benchmark the law predicts (left out of the components)"),
    ("component", "BIGINT", "principal component, 1 = the most variance"),
    ("benchmark", "VARCHAR", "benchmark metric"),
    ("loading", "DOUBLE", "the benchmark's weight in the component (each component's weights sum to a positive number on the full fit)"),
    ("loading_ci_low", "DOUBLE", "2.5th percentile over model resamples (components matched to the full fit's by order and sign)"),
    ("loading_ci_high", "DOUBLE", "97.5th percentile over model resamples"),
    ("explained_variance", "DOUBLE", "share of the benchmarks' variance the component explains"),
    ("explained_variance_ci_low", "DOUBLE", "2.5th percentile over model resamples"),
    ("explained_variance_ci_high", "DOUBLE", "97.5th percentile over model resamples"),
    ("n_models", "BIGINT", "models whose scores span the space (missing scores imputed)"),
)

OBSERVATIONAL_FAMILIES = _t(
    "observational_families", "observational scaling laws: each model family's map from log compute to "
    "capability and its compute efficiency against the reference family, with intervals over model resamples",
    STUDY,
    ("target", "VARCHAR", "benchmark the law predicts"),
    ("family", "VARCHAR", "model family (the study's family label)"),
    ("group_name", "VARCHAR", "the family as a group (label=value)"),
    ("n_models", "BIGINT", "models of the family in the table"),
    ("n_fitted", "BIGINT", "models of known compute at or below the cut-off its map was fitted on"),
    ("map", "VARCHAR", "family (its own slope and intercept), shared_slope (too few models: the slope shared by all families, its own intercept) or average (no fitted model: the shared slope and the mean intercept)"),
    ("slope", "DOUBLE", "first component per unit of ln compute"),
    ("slope_ci_low", "DOUBLE", "2.5th percentile over model resamples"),
    ("slope_ci_high", "DOUBLE", "97.5th percentile over model resamples"),
    ("efficiency", "DOUBLE", "reference_flops / the compute this family needs for the reference family's capability at reference_flops (above 1: more efficient); null for average maps"),
    ("efficiency_ci_low", "DOUBLE", "2.5th percentile over model resamples (resamples without the family or the reference left out)"),
    ("efficiency_ci_high", "DOUBLE", "97.5th percentile over model resamples"),
    ("reference", "BOOLEAN", "the reference family (efficiency 1)"),
    ("reference_flops", "DOUBLE", "where capabilities are compared: geometric mean of the reference family's fitted models' compute"),
    ("flags", "VARCHAR", "shared_slope, no_fitted_model, slope_not_positive"),
)

OBSERVATIONAL_MODELS = _t(
    "observational_models", "observational scaling laws: every model's capability and predicted target (from its "
    "benchmark scores, and from its compute and family alone), and forecasts for named models",
    STUDY,
    ("target", "VARCHAR", "benchmark predicted"),
    ("run", "VARCHAR", "model (run id), or a named model's name"),
    GROUP,
    ("family", "VARCHAR", "model family"),
    ("flops", "DOUBLE", "training compute"),
    ("split", "VARCHAR", "fitted (at or below the cut-off), held_out (above it), no_target, no_compute (shape the components only) or named (a forecast)"),
    ("actual", "DOUBLE", "observed target"),
    ("capability", "DOUBLE", "first principal component"),
    ("imputed", "BIGINT", "benchmark scores of the model that were missing and imputed"),
    ("predicted", "DOUBLE", "target from the model's benchmark scores (the sigmoid link on its components)"),
    ("ci_low", "DOUBLE", "2.5th percentile of the prediction interval: model resamples plus a resampled link residual"),
    ("ci_high", "DOUBLE", "97.5th percentile of the prediction interval"),
    ("predicted_from_compute", "DOUBLE", "target from compute and family alone (the family's map, then the link)"),
    ("compute_ci_low", "DOUBLE", "2.5th percentile of that prediction (model resamples plus a link residual)"),
    ("compute_ci_high", "DOUBLE", "97.5th percentile of that prediction"),
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
    ("law", "VARCHAR", "linear, ye_exp, ye_exp_log, ye_exp_own, bimix or nested"),
    ("stage", "VARCHAR", "nested only: step (a step law per run), size (a size law per mixture) or mixing (the "
                         "mixing law at the target scale)"),
    ("mixture", "VARCHAR", "nested step and size stages: the mixture (its weights joined by '-')"),
    ("params", "DOUBLE", "nested step stage: the run's model size; bimix: the model size fitted"),
    ("parameter", "VARCHAR", "parameter name (nested step/size stages: E, B/A, beta/alpha, and the loss "
                             "extrapolated to the target steps / target scale)"),
    ("estimate", "DOUBLE", "point estimate"),
    ("ci_low", "DOUBLE", "2.5th percentile over bootstrap refits"),
    ("ci_high", "DOUBLE", "97.5th percentile over bootstrap refits"),
    ("heldout_spearman", "DOUBLE", "Spearman rank correlation on held-out mixtures"),
    ("heldout_mae", "DOUBLE", "mean absolute error on held-out mixtures"),
    ("n_train", "BIGINT", "mixtures fitted"),
    ("n_test", "BIGINT", "mixtures held out"),
    ("flags", "VARCHAR", "mixing_constant when the law is no better than a constant over the fitted mixtures (predictions' sd under 0.1x the observed losses', or an F-test against a constant with p >= 0.05); not_converged (bimix)"),
)

MIXING_SCORES = _t(
    "mixing_scores", "held-out scores of every mixing law and target domain on every held-out split "
    "(the test mixtures and each extra_tests scale)",
    STUDY,
    ("split", "VARCHAR", "held-out split: test, an extra_tests split (e.g. another model scale), or seeded_split"),
    ("law", "VARCHAR", "mixing law"),
    ("target_domain", "VARCHAR", "validation domain predicted"),
    ("n", "BIGINT", "held-out mixtures"),
    ("spearman", "DOUBLE", "Spearman rank correlation of predicted and actual losses"),
    ("kendall", "DOUBLE", "Kendall rank correlation (tau-b)"),
    ("mae", "DOUBLE", "mean absolute error"),
    ("rmse", "DOUBLE", "root mean squared error"),
    ("bias", "DOUBLE", "mean of predicted - actual"),
    ("params", "DOUBLE", "model size of the split's runs, when given"),
    ("chosen", "BOOLEAN", "the law the study optimizes (best mean held-out Spearman on the test split)"),
)

MIXTURE_PREDICTIONS = _t(
    "mixture_predictions", "every held-out mixture run's predicted and actual loss, per law and target domain",
    STUDY,
    ("split", "VARCHAR", "held-out split"),
    ("law", "VARCHAR", "mixing law"),
    ("target_domain", "VARCHAR", "validation domain"),
    ("run", "VARCHAR", "mixture run id"),
    ("actual", "DOUBLE", "observed loss"),
    ("predicted", "DOUBLE", "predicted loss"),
    ("ci_low", "DOUBLE", "2.5th percentile over bootstrap refits (parameter uncertainty only)"),
    ("ci_high", "DOUBLE", "97.5th percentile over bootstrap refits"),
    ("error", "DOUBLE", "predicted - actual"),
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
    for t in (RUNS, POINTS, QUARANTINE, LAW_FITS, ISOFLOP_OPTIMA, BACKTESTS, LAW_DRAWS, OBSERVATIONAL_COMPONENTS,
              OBSERVATIONAL_FAMILIES, OBSERVATIONAL_MODELS, FORECASTS, BACKTEST_SUMMARY, CROSSOVERS,
              MIXTURE_POINTS, MIXING_LAWS, MIXING_SCORES, MIXTURE_PREDICTIONS, OPTIMAL_MIXTURES)
}
