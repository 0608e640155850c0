"""What a study's report shows, read from the catalog with SQL (and its plots from the plots folder).

One read-only connection per report; a table no study has written yet reads as empty.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import polars as pl

from scaling.report import StudyReport
from warehouse.catalog import connect, query
from warehouse.config import WarehousePaths

# (section key, SQL); every query takes the study as its one parameter
QUERIES = {
    "overview": """
        SELECT count(*) AS runs, count(DISTINCT group_name) AS groups, min(params) AS min_params,
               max(params) AS max_params, min(tokens) AS min_tokens, max(tokens) AS max_tokens,
               min(flops) AS min_flops, max(flops) AS max_flops, min(tokens_per_param) AS min_tokens_per_param,
               max(tokens_per_param) AS max_tokens_per_param, sum(n_points) AS points,
               any_value(flops_convention) AS flops_convention
        FROM runs WHERE study = ?""",
    "runs": """
        SELECT run, group_name, source, params, tokens, tokens_per_param, flops, n_points
        FROM runs WHERE study = ? ORDER BY group_name, flops, run""",
    "metrics": """
        SELECT metric, any_value(unit) AS unit, count(*) AS points, count(DISTINCT run) AS runs
        FROM points WHERE study = ? GROUP BY metric ORDER BY metric""",
    "quarantine": """SELECT source, file, "row", "column", reason FROM quarantine WHERE study = ? ORDER BY file, "row" """,
    "fits": """
        SELECT group_name, law, target, any_value(objective) AS objective, any_value(n_points) AS n_points,
               any_value(n_runs) AS n_runs, bool_and(converged) AS converged, any_value(flags) AS flags
        FROM law_fits WHERE study = ? GROUP BY group_name, law, target ORDER BY target, group_name, law""",
    "parameters": """
        SELECT group_name, law, target, parameter, estimate, ci_low, ci_high, flags
        FROM law_fits WHERE study = ? ORDER BY target, group_name, law, parameter""",
    "ranking": """
        SELECT group_name, target, rank, law, n_heldout, mean_abs_rel_error, max_abs_rel_error, coverage, verdict
        FROM backtest_summary WHERE study = ? ORDER BY target, group_name, rank""",
    "backtests": """
        SELECT group_name, law, target, run, flops, actual, predicted, ci_low, ci_high, rel_error, covered
        FROM backtests WHERE study = ? ORDER BY target, group_name, law, flops""",
    "forecasts": """
        SELECT group_name, law, target, kind, name, flops, params, params_ci_low, params_ci_high, tokens,
               tokens_ci_low, tokens_ci_high, tokens_per_param, epochs, predicted, ci_low, ci_high, extrapolation,
               actual, rel_error, recommended
        FROM forecasts WHERE study = ? ORDER BY target, group_name, NOT recommended, law, kind, flops""",
    "observational_components": """
        SELECT target, component, benchmark, loading, loading_ci_low, loading_ci_high, explained_variance
        FROM observational_components WHERE study = ? ORDER BY target, component, benchmark""",
    "observational_families": """
        SELECT target, family, n_models, n_fitted, map, slope, slope_ci_low, slope_ci_high, efficiency,
               efficiency_ci_low, efficiency_ci_high, flags
        FROM observational_families WHERE study = ? ORDER BY target, NOT reference, n_fitted DESC, family""",
    "observational_models": """
        SELECT target, run, family, split, flops, actual, predicted, ci_low, ci_high, predicted_from_compute,
               compute_ci_low, compute_ci_high
        FROM observational_models WHERE study = ? AND split IN ('held_out', 'named')
        ORDER BY target, split, flops, run""",
    "mixing_scores": """
        SELECT target_domain, law, any_value(heldout_spearman) AS heldout_spearman,
               any_value(heldout_mae) AS heldout_mae, any_value(n_train) AS n_train, any_value(n_test) AS n_test
        FROM mixing_laws WHERE study = ? GROUP BY target_domain, law ORDER BY target_domain, law""",
    "mixing_parameters": """
        SELECT target_domain, law, parameter, estimate, ci_low, ci_high
        FROM mixing_laws WHERE study = ? ORDER BY target_domain, law, parameter""",
    "mixture": """
        SELECT objective, law, domain, target_domain, weight, baseline_weight, predicted_loss, ci_low, ci_high,
               baseline_predicted_loss, baseline_ci_low, baseline_ci_high
        FROM optimal_mixtures WHERE study = ? ORDER BY objective, weight DESC NULLS LAST, target_domain""",
}


def _read(con: duckdb.DuckDBPyConnection, sql: str, study: str) -> pl.DataFrame:
    try:
        return query(con, sql, [study])
    except duckdb.CatalogException:  # no study has written this table yet: no view
        return pl.DataFrame()


def read_study_report(paths: WarehousePaths, study: str, description: str = "") -> StudyReport:
    """Every table section of `study`'s report, and its plots (PNG files under plots/<study>/)."""
    con = connect(paths.catalog, read_only=True)
    try:
        tables = {key: _read(con, sql, study) for key, sql in QUERIES.items()}
    finally:
        con.close()
    folder = paths.plots / study
    plots = {p.stem: p.read_bytes() for p in sorted(folder.glob("*.png"))} if folder.is_dir() else {}
    return StudyReport(study=study, description=description, tables=tables, plots=plots)


def report_dir(paths: WarehousePaths) -> Path:
    return paths.reports
