"""Backtest summaries and law ranking: which law predicted the held-out runs best.

Per (study, group, target) the laws are ranked by mean |relative error| on held-out points;
laws whose fit was flagged as degenerate or did not converge are ranked after all clean laws.
Verdicts: ``best`` (rank 1, clean), ``ok``, or ``poor (why)`` for a flagged fit, an error more
than twice the best law's and above 5%, or fewer than half of the held-out points covered.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Iterable, Mapping

import numpy as np

from ..flags import blocking_flags

KEYS = ("study", "group_name")
POOR_ERROR_RATIO, POOR_ERROR_FLOOR, POOR_COVERAGE = 2.0, 0.05, 0.5


def severe_flags(flags: Iterable[str] | None) -> list[str]:
    """The flags that make a fit untrustworthy for forecasting (``scaling.flags.BLOCKING_FLAGS``)."""
    return blocking_flags(flags)


def _key(row: Mapping) -> tuple:
    return tuple(row.get(k) for k in KEYS) + (row.get("target"),)


def summarize_backtests(rows: Iterable[Mapping], fit_flags: Mapping | None = None) -> list[dict]:
    """``backtest_summary`` rows from backtest rows.

    rows: dicts with ``law``, ``target``, ``actual``, ``predicted`` (``rel_error`` and ``covered``
    are used when present, else computed; ``study``/``group_name`` kept when present).
    fit_flags: ``{(group_name, law, target): flags}``, ``{(law, target): flags}`` or ``{law: flags}``
    (the most specific key present wins); blocking flags (not converged, implausible values, a flat
    direction) demote a law within its own group only.
    """
    by_law: dict = defaultdict(list)
    for r in rows:
        if r.get("law") is None or r.get("target") is None:
            raise ValueError(f"expected backtest rows with 'law' and 'target', got {sorted(r)}")
        by_law[_key(r) + (r["law"],)].append(r)
    summaries = []
    for key, rs in by_law.items():
        rel = np.array([_rel(r) for r in rs], dtype=float)
        cov = [r.get("covered") for r in rs if r.get("covered") is not None]
        law, target = key[-1], key[-2]
        group = dict(zip(KEYS, key[:2])).get("group_name") or ""
        flags = severe_flags(_flags_for(fit_flags, group, law, target))
        summaries.append({**dict(zip(KEYS, key[:2])), "law": law, "target": target, "n_heldout": len(rs),
                          "mean_abs_rel_error": float(np.nanmean(np.abs(rel))) if rel.size else None,
                          "max_abs_rel_error": float(np.nanmax(np.abs(rel))) if rel.size else None,
                          "coverage": float(np.mean(cov)) if cov else None, "_flags": flags})
    groups: dict = defaultdict(list)
    for s in summaries:
        groups[_key(s)].append(s)
    for members in groups.values():
        members.sort(key=lambda s: (bool(s["_flags"]), _inf(s["mean_abs_rel_error"]), s["law"]))
        best_err = _inf(members[0]["mean_abs_rel_error"])
        for rank, s in enumerate(members, 1):
            s["rank"] = rank
            s["verdict"] = _verdict(s, rank, best_err)
    out = []
    for s in summaries:
        s.pop("_flags")
        out.append({k: v for k, v in s.items() if not (k in KEYS and v is None)})
    out.sort(key=lambda s: (tuple(str(s.get(k, "")) for k in KEYS), s["target"], s["rank"]))
    return out


def _rel(r):
    if r.get("rel_error") is not None:
        return float(r["rel_error"])
    return (float(r["predicted"]) - float(r["actual"])) / float(r["actual"])


def _inf(v):
    return float("inf") if v is None or not np.isfinite(v) else float(v)


def _flags_for(fit_flags, group, law, target):
    if not fit_flags:
        return []
    if (group, law, target) in fit_flags:
        return fit_flags[(group, law, target)]
    if (law, target) in fit_flags:
        return fit_flags[(law, target)]
    return fit_flags.get(law, [])


def _verdict(s, rank, best_err):
    if s["_flags"]:
        return f"poor (fit flagged: {', '.join(s['_flags'])})"
    err = _inf(s["mean_abs_rel_error"])
    if not np.isfinite(err):
        return "poor (no finite prediction)"
    if rank > 1 and err > POOR_ERROR_RATIO * best_err and err > POOR_ERROR_FLOOR:
        return f"poor (mean error {err:.1%} vs best {best_err:.1%})"
    if s["coverage"] is not None and s["coverage"] < POOR_COVERAGE:
        return f"poor (interval covers {s['coverage']:.0%} of held-out points)"
    return "best" if rank == 1 else "ok"


def best_laws(summary: Iterable[Mapping]) -> dict:
    """``{(study, group_name, target): law}`` of the rank-1 law of each group."""
    return {_key(s): s["law"] for s in summary if s.get("rank") == 1}


def mark_recommended(forecast_rows: Iterable[Mapping], summary: Iterable[Mapping]) -> list[dict]:
    """Copies of ``forecast_rows`` with ``recommended=True`` where the row's law is the best law of
    its (study, group_name, target) in ``summary`` (rows of groups without a summary stay False)."""
    best = best_laws(summary)
    out = []
    for r in forecast_rows:
        row = dict(r)
        row["recommended"] = best.get(_key(row)) == row.get("law")
        out.append(row)
    return out
