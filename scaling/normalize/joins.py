"""Several files per run: the points of one run may come from several sources, joined by run id.

Loss curves in a W&B export, benchmark scores in a Parquet table and evaluation results in
lm-eval JSON describe the same runs when their run ids agree (each source sets its own ``run``
template, with ``extract`` for ids buried in a column). Their points are simply the union; what
must not happen is two sources giving the same run, metric and step (or tokens, when there is no
step): that is a conflict, reported with both files.
"""

from __future__ import annotations

import polars as pl

from scaling.errors import SourceError

_KEY = pl.coalesce(pl.col("step").cast(pl.Float64), pl.col("tokens")).alias("_key")


def check_cross_source_conflicts(points: list[pl.LazyFrame], study: str) -> None:
    """Raise `SourceError` naming both files when two sources give one run x metric x step a value."""
    if len(points) < 2:
        return
    pairs = [p.select("run", "metric").unique().collect(engine="streaming") for p in points]
    for i in range(len(points)):
        for j in range(i + 1, len(points)):
            both = pairs[i].join(pairs[j], on=["run", "metric"])
            if both.height == 0:
                continue
            cols = ["source", "run", "metric", "step", "tokens", "value", "file", "row"]
            a = points[i].join(both.lazy(), on=["run", "metric"]).select(*cols, _KEY)
            b = points[j].join(both.lazy(), on=["run", "metric"]).select(*cols, _KEY)
            hit = a.join(b, on=["run", "metric", "_key"], suffix="_2").sort("run", "metric", "_key").head(1) \
                .collect(engine="streaming")
            if hit.height:
                r = hit.row(0, named=True)
                at = f"step {r['step']}" if r["step"] is not None else f"tokens {r['tokens']:g}"
                raise SourceError(
                    f"run {r['run']!r}, metric {r['metric']!r}, {at} has two values: {r['value']!r} in file "
                    f"{r['file']!r} (source {r['source']!r}, line/row {r['row']}) and {r['value_2']!r} in file "
                    f"{r['file_2']!r} (source {r['source_2']!r}, line/row {r['row_2']}); a run's metric at one "
                    f"step must come from one file (rename one metric, or filter one source)",
                    study=study, source=r["source_2"], file=r["file_2"], row=r["row_2"], column=r["metric"])
