"""Backtest summaries per extrapolation distance, over every rollout cut-off, and interval statistics.

The study's own hold-out ranks the laws (``summarize_backtests``); the rollouts (several compute
cut-offs, fit below, predict above) say how error and interval coverage grow with the distance of
the extrapolation, in bins of held-out compute over the largest compute fitted.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Iterable, Mapping

import numpy as np

DISTANCE_BINS = ((1.0, 2.0, "1-2x"), (2.0, 5.0, "2-5x"), (5.0, 10.0, "5-10x"), (10.0, 100.0, "10-100x"),
                 (100.0, np.inf, ">100x"))
HOLDOUT_BIN = "hold-out"
KEYS = ("study", "group_name")


def distance_bin(extrapolation: float | None) -> str | None:
    """The label of the bin holding ``extrapolation`` (points at or below 1x go to the first bin)."""
    if extrapolation is None or not np.isfinite(extrapolation):
        return None
    for lo, hi, label in DISTANCE_BINS:
        if extrapolation < hi:
            return label
    return DISTANCE_BINS[-1][2]


def is_primary(row: Mapping) -> bool:
    """A backtest row from the study's own hold-out (rows written before rollouts count as such)."""
    return row.get("primary") is None or bool(row.get("primary"))


def interval_stats(rows: Iterable[Mapping]) -> dict:
    """``coverage``, ``boot_coverage`` and ``mean_rel_width`` of backtest rows (None when absent)."""
    rows = list(rows)
    cov = [bool(r["covered"]) for r in rows if r.get("covered") is not None]
    boot = [bool(r["boot_covered"]) for r in rows if r.get("boot_covered") is not None]
    widths = [(r["ci_high"] - r["ci_low"]) / abs(r["actual"]) for r in rows
              if r.get("ci_low") is not None and r.get("ci_high") is not None and r.get("actual")
              and np.isfinite(r["ci_high"] - r["ci_low"])]
    return {"coverage": float(np.mean(cov)) if cov else None,
            "boot_coverage": float(np.mean(boot)) if boot else None,
            "mean_rel_width": float(np.mean(widths)) if widths else None}


def with_interval_stats(summary: Iterable[Mapping], rows: Iterable[Mapping]) -> list[dict]:
    """``summary`` rows (of the study's hold-out) with ``extrapolation_bin``, ``boot_coverage`` and
    ``mean_rel_width`` added from the matching backtest ``rows``."""
    by: dict = defaultdict(list)
    for r in rows:
        by[tuple(r.get(k) for k in KEYS) + (r.get("law"), r.get("target"))].append(r)
    out = []
    for s in summary:
        key = tuple(s.get(k) for k in KEYS) + (s.get("law"), s.get("target"))
        stats = interval_stats(by.get(key, []))
        out.append({**s, "extrapolation_bin": HOLDOUT_BIN, "boot_coverage": stats["boot_coverage"],
                    "mean_rel_width": stats["mean_rel_width"]})
    return out


def summarize_rollouts(rows: Iterable[Mapping]) -> list[dict]:
    """``backtest_summary`` rows per (study, group, law, target, extrapolation bin) over every rollout
    row (the study's hold-out included); unranked."""
    by: dict = defaultdict(list)
    for r in rows:
        b = distance_bin(r.get("extrapolation"))
        if b is None:
            continue
        by[tuple(r.get(k) for k in KEYS) + (r["law"], r["target"], b)].append(r)
    order = {label: i for i, (_, _, label) in enumerate(DISTANCE_BINS)}
    out = []
    for key, rs in by.items():
        rel = np.abs(np.array([float(r["rel_error"]) for r in rs], dtype=float))
        row = {k: v for k, v in zip(KEYS, key[:2]) if v is not None}
        row.update({"law": key[2], "target": key[3], "extrapolation_bin": key[4], "n_heldout": len(rs),
                    "mean_abs_rel_error": float(np.nanmean(rel)) if rel.size else None,
                    "max_abs_rel_error": float(np.nanmax(rel)) if rel.size else None,
                    **interval_stats(rs), "rank": None, "verdict": None})
        out.append(row)
    out.sort(key=lambda s: (tuple(str(s.get(k, "")) for k in KEYS), s["target"], s["law"],
                            order[s["extrapolation_bin"]]))
    return out
