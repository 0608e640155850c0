"""The closing summary of `scaling run`: studies, runs, fits, headline forecasts, where to look."""

from __future__ import annotations

import math

import duckdb

from scaling.flags import FLAGS
from warehouse.catalog import connect
from warehouse.config import WarehousePaths


def _count(con, sql: str, params: list) -> int:
    try:
        return con.execute(sql, params).fetchall()[0][0]
    except duckdb.Error:
        return 0


def _fmt(value, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def _headlines(con, study: str) -> list[str]:
    """The recommended law's compute-optimal forecast at 10x the largest observed budget, per target,
    with the sanity warnings of that forecast (or why no forecast of the best law is recommended)."""
    try:
        rows = con.execute(
            "SELECT law, target, flops, params, tokens, predicted, ci_low, ci_high, extrapolation, warnings, "
            "tokens_per_param FROM forecasts "
            "WHERE study = ? AND kind = 'compute_optimal' AND recommended "
            "QUALIFY row_number() OVER (PARTITION BY group_name, target ORDER BY abs(ln(extrapolation / 10))) = 1 "
            "ORDER BY target", [study]).fetchall()
        units = dict(con.execute("SELECT metric, any_value(unit) FROM points WHERE study = ? GROUP BY metric",
                                 [study]).fetchall())
    except duckdb.Error:
        return []
    out = []
    for law, target, c, n, d, p, lo, hi, x, warnings, tpp in rows:
        alloc = f"N_opt={_fmt(n, '.3g')}, D_opt={_fmt(d, '.3g')}, D/N={_fmt(tpp, '.3g')}, " if n is not None else ""
        value = f"{target}={_fmt(p, '.4f')} [{_fmt(lo, '.4f')}, {_fmt(hi, '.4f')}]"
        if units.get(target) == "perplexity" and p is not None:  # fitted as ln(perplexity)
            value = (f"ln({target})={_fmt(p, '.4f')} [{_fmt(lo, '.4f')}, {_fmt(hi, '.4f')}], i.e. perplexity "
                     f"{math.exp(p):.3g} [{_exp(lo)}, {_exp(hi)}]")
        why = [w for w in (warnings or "").split(",") if w]
        label = "best in backtests" + (", but see the warnings" if why else "")
        out.append(f"      forecast ({law}, {label}): C={_fmt(c, '.2e')} FLOPs ({_fmt(x, '.0f')}x the "
                   f"largest run) -> {alloc}{value}")
        for w in why:
            out.append(f"        warning: {w}: {FLAGS.get(w.split(':', 1)[0], w)}")
    return out


def _exp(v) -> str:
    return "n/a" if v is None else f"{math.exp(v):.3g}"


def _mixture_headline(con, study: str) -> list[str]:
    """The mixing law used and the largest weights of the proposed mixture."""
    try:
        law = con.execute("SELECT law, avg(heldout_spearman) FROM mixing_laws WHERE study = ? AND law IN "
                          "(SELECT DISTINCT law FROM optimal_mixtures WHERE study = ?) GROUP BY law",
                          [study, study]).fetchall()
        top = con.execute("SELECT domain, weight FROM optimal_mixtures WHERE study = ? AND weight IS NOT NULL "
                          "ORDER BY weight DESC LIMIT 4", [study]).fetchall()
    except duckdb.Error:
        return []
    if not law or not top:
        return []
    weights = ", ".join(f"{d} {w:.2f}" for d, w in top)
    out = [f"      mixture ({law[0][0]}, mean held-out Spearman {_fmt(law[0][1], '.3f')}): {weights}, ..."]
    try:  # the chosen law's scores on held-out mixtures at other scales (extra_tests)
        extra = con.execute("SELECT split, max(params), avg(spearman), count(*) FROM mixing_scores WHERE study = ? "
                            "AND chosen AND split NOT IN ('test', 'seeded_split') GROUP BY split ORDER BY split",
                            [study]).fetchall()
    except duckdb.Error:
        extra = []
    for split, params, rho, n in extra:
        size = f", {_fmt(params, '.3g')} params" if params is not None else ""
        out.append(f"      held-out split {split}{size}: mean Spearman {_fmt(rho, '.3f')} over {n} targets")
    return out


def summary_lines(warehouse, studies: list[str], seconds: float) -> list[str]:
    """``warehouse``: the `Warehouse` resource or its `WarehousePaths` (no Dagster import needed)."""
    p = warehouse if isinstance(warehouse, WarehousePaths) else warehouse.paths
    lines = [f"Summary ({len(studies)} studies, {seconds:.1f}s)"]
    con = connect(p.catalog)
    try:
        for name in studies:
            runs = _count(con, "SELECT count(*) FROM runs WHERE study = ?", [name])
            points = _count(con, "SELECT count(*) FROM points WHERE study = ?", [name])
            fits = _count(con, "SELECT count(DISTINCT (group_name, law, target)) FROM law_fits WHERE study = ?", [name])
            mixtures = _count(con, "SELECT count(DISTINCT run) FROM mixture_points WHERE study = ?", [name])
            line = f"  {name:<22} runs {runs:>5}  points {points:>8}  fits {fits:>3}"
            if mixtures:
                line += f"  mixtures {mixtures:>4}"
            lines.append(line)
            lines += _headlines(con, name)
            lines += _mixture_headline(con, name)
    finally:
        con.close()
    lines.append(f"  catalog: {p.catalog}  (scaling sql \"SELECT * FROM runs LIMIT 5\")")
    lines.append("  UI: scaling ui  (then open http://127.0.0.1:3000)")
    return lines
