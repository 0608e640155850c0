"""Mixture experiments -> `mixture_points`: one row per run x training-domain weight or target loss.

A `mixture_runs` source names a weights file and a losses file (and optionally test files),
joined on a key column (``join``, default ``index``). Weight columns and loss columns are
all non-key columns unless ``weight_columns`` / ``loss_columns`` (glob patterns) say
otherwise; ``domain_pattern`` / ``loss_domain_pattern`` (regexes with a ``domain`` group)
turn column names into domain names, e.g. ``train_the_pile_(?P<domain>.+)``.
Weights are validated: rows within rounding of 1 are renormalized and flagged, negative
weights or sums far from 1 are an error naming the run.
"""

from __future__ import annotations

import fnmatch
import re

import numpy as np
import polars as pl

from scaling.errors import SourceError
from scaling.mixing.weights import validate_weights
from scaling.spec import SourceSpec, StudySpec


def _domain_names(columns: list[str], pattern: str | None, where: dict) -> list[str]:
    if not pattern:
        return columns
    rx = re.compile(pattern)
    out = []
    for c in columns:
        m = rx.fullmatch(c)
        if not m or "domain" not in m.groupdict():
            raise SourceError(f"column does not match domain pattern {pattern!r} (needs a (?P<domain>...) group)",
                              column=c, **where)
        out.append(m.group("domain"))
    return out


def _pick(frame: pl.DataFrame, key: str, patterns, where: dict) -> list[str]:
    cols = [c for c in frame.columns if c != key and not c.startswith("_")]
    cols = [c for c in cols if frame[c].null_count() < frame.height]
    if patterns:
        cols = [c for c in cols if any(fnmatch.fnmatchcase(c, p) for p in patterns)]
    if not cols:
        raise SourceError(f"no columns found (patterns {patterns or 'all'})", **where)
    return cols


def _numbers(frame: pl.DataFrame, cols: list[str], where: dict) -> np.ndarray:
    out = np.empty((frame.height, len(cols)))
    for j, c in enumerate(cols):
        text = frame[c].cast(pl.Utf8).str.strip_chars()
        vals = text.cast(pl.Float64, strict=False)
        bad = (vals.is_null() & text.is_not_null() & (text != "")) | text.is_null() | (text == "")
        if bad.any():
            i = int(bad.arg_max())
            raise SourceError(f"expected a number, got {frame[c][i]!r}", file=frame["_file"][i],
                              line=int(frame["_row"][i]), column=c, **where)
        out[:, j] = vals.to_numpy()
    return out


def normalize_mixtures(raw: pl.DataFrame, src: SourceSpec, study: StudySpec) -> pl.DataFrame:
    mx = src.mixture
    key = mx.get("join", "index")
    where = {"study": study.name, "source": src.name}
    parts = []
    splits = {"train": ("weights", "losses"), "test": ("test_weights", "test_losses")}
    extra_params = {}
    for i, extra in enumerate(mx.get("extra_tests") or []):
        name = extra.get("split", f"test_{i + 1}")
        splits[name] = (f"extra{i}_weights", f"extra{i}_losses")
        extra_params[name] = extra
    for split, (wrole, lrole) in splits.items():
        w = raw.filter(pl.col("_role") == wrole)
        l = raw.filter(pl.col("_role") == lrole)
        if w.height == 0:
            continue
        for frame, role in ((w, wrole), (l, lrole)):
            if key not in frame.columns or frame[key].null_count() == frame.height:
                raise SourceError(f"join column {key!r} not found in the {role} file", column=key,
                                  file=str(frame["_file"][0]) if frame.height else None, **where)
        wcols = _pick(w, key, mx.get("weight_columns"), {**where, "file": str(w["_file"][0])})
        lcols = _pick(l, key, mx.get("loss_columns"), {**where, "file": str(l["_file"][0])})
        joined = w.select(key, "_file", "_row", *wcols).join(
            l.select(key, *lcols), on=key, how="inner", suffix="_loss")
        missing = w.join(l.select(key), on=key, how="anti")
        if missing.height:
            raise SourceError(f"mixture run {missing[key][0]!r} has weights but no losses (joined on {key!r})",
                              file=str(missing["_file"][0]), line=int(missing["_row"][0]), **where)
        runs = joined[key].cast(pl.Utf8).to_list()
        raw_w = _numbers(joined, wcols, {**where})
        wdomains = _domain_names(wcols, mx.get("domain_pattern"), {**where, "file": str(w["_file"][0])})
        try:
            weights, flags = validate_weights(raw_w, runs, domains=wdomains, source=src.name, file=str(w["_file"][0]))
        except SourceError as exc:
            raise exc.at(study=study.name) from None
        renorm = np.zeros(len(runs), dtype=bool)
        for f in flags:
            renorm[f.row] = True
        losses = _numbers(joined, [c if c not in wcols else f"{c}_loss" for c in lcols], where)
        ldomains = _domain_names(lcols, mx.get("loss_domain_pattern"), {**where, "file": str(l["_file"][0])})
        n = len(runs)
        parts.append(pl.DataFrame({
            "run": np.repeat(runs, len(wdomains)), "kind": "weight", "domain": np.tile(wdomains, n),
            "value": weights.ravel(), "raw_value": raw_w.ravel(), "renormalized": np.repeat(renorm, len(wdomains)),
        }).with_columns(split=pl.lit(split)))
        parts.append(pl.DataFrame({
            "run": np.repeat(runs, len(ldomains)), "kind": "loss", "domain": np.tile(ldomains, n),
            "value": losses.ravel(), "raw_value": losses.ravel(), "renormalized": np.repeat(renorm, len(ldomains)),
        }).with_columns(split=pl.lit(split)))
    if not parts:
        raise SourceError("no mixture rows found", **where)
    out = pl.concat(parts, how="diagonal_relaxed").with_columns(study=pl.lit(study.name), source=pl.lit(src.name))
    for col in ("params", "tokens", "steps"):
        expr = pl.when(pl.col("split") == "train").then(pl.lit(mx.get(col), dtype=pl.Float64))
        for name, extra in extra_params.items():
            expr = expr.when(pl.col("split") == name).then(pl.lit(extra.get(col), dtype=pl.Float64))
        out = out.with_columns(expr.otherwise(pl.lit(mx.get(f"test_{col}", mx.get(col)), dtype=pl.Float64)).alias(col))
    return out
