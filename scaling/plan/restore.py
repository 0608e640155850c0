"""Rebuild fits and their bootstrap draws from the `law_fits` and `law_draws` tables."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import polars as pl

from scaling.fit.bootstrap import BootstrapResult
from scaling.fit.result import FitResult
from scaling.laws import base_name, get_law, rescale_inputs

Key = tuple[str, str, str]  # (group_name, law, target)


def restore_fits(law_fits: pl.DataFrame, law_draws: pl.DataFrame | None) -> dict[Key, tuple[FitResult, BootstrapResult | None]]:
    """One (fit, bootstrap) per group, law and target; derived quantities are skipped."""
    out = {}
    for (group, law_name, target), rows in law_fits.group_by("group_name", "law", "target", maintain_order=True):
        if law_name in ("envelope", "isoflop"):  # approaches 1 and 2 are not laws (scaling.plan.isoflop)
            continue
        first = rows.row(0, named=True)
        settings = json.loads(first["settings"] or "{}")
        # tied parameters are stored in full (rows and draws), so only the input scale is re-applied
        law = replace(rescale_inputs(get_law(base_name(law_name)), settings.get("scale") or {}), name=law_name)
        values = dict(zip(rows["parameter"], rows["estimate"]))
        fit = FitResult(
            law=law, params={p: float(values[p]) for p in law.param_names}, objective=float(first["objective"]),
            converged=bool(first["converged"]), message="restored from law_fits", n_points=int(first["n_points"]),
            n_runs=int(first["n_runs"]), n_starts=0,
            flags=[f for f in (first["flags"] or "").split(",") if f], settings=settings)
        boot = None
        if law_draws is not None and law_draws.height:
            d = law_draws.filter((pl.col("group_name") == group) & (pl.col("law") == law_name)
                                 & (pl.col("target") == target))
            if d.height:
                wide = d.pivot(on="parameter", index="draw", values="value").sort("draw")
                draws = np.column_stack([wide[p].to_numpy() for p in law.param_names])
                boot = BootstrapResult(law=law, fit=fit, param_names=law.param_names, draws=draws,
                                       converged=np.ones(draws.shape[0], dtype=bool))
        out[(group, law_name, target)] = (fit, boot)
    return out
