"""The closing summary of `scaling run`: studies, runs, fits, headline forecasts, where to look."""

from __future__ import annotations

import duckdb

from pipelines.resources import Warehouse


def _count(con, sql: str, params: list) -> int:
    try:
        return con.execute(sql, params).fetchall()[0][0]
    except duckdb.Error:
        return 0


def summary_lines(warehouse: Warehouse, studies: list[str], seconds: float) -> list[str]:
    p = warehouse.paths
    lines = [f"Summary ({len(studies)} studies, {seconds:.1f}s)"]
    con = duckdb.connect(str(p.catalog), read_only=True)
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
            try:
                row = con.execute(
                    "SELECT law, target, flops, params, tokens, predicted, ci_low, ci_high FROM forecasts "
                    "WHERE study = ? AND kind = 'compute_optimal' AND recommended ORDER BY flops LIMIT 1 OFFSET 2",
                    [name]).fetchall()
                row = row[0] if row else None
            except duckdb.Error:
                row = None
            if row:
                law, target, c, n, d, pred, lo, hi = row
                lines.append(f"      headline: at C={c:.2e} FLOPs, {law} says N_opt={n:.3g}, D_opt={d:.3g}, "
                             f"{target}={pred:.4f} [{lo:.4f}, {hi:.4f}]")
    finally:
        con.close()
    lines.append(f"  catalog: {p.catalog}  (scaling sql \"SELECT * FROM runs LIMIT 5\")")
    lines.append("  UI: scaling ui  (then open http://127.0.0.1:3000)")
    return lines
