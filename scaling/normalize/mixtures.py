"""Mixture experiments -> `mixture_points`: one row per run x training-domain weight or target loss.

A `mixture_runs` source names a weights file and a losses file (and optionally test files),
joined on a key column (``join``, default ``index``). Weight columns and loss columns are
all non-key columns unless ``weight_columns`` / ``loss_columns`` (glob patterns) say
otherwise; ``domain_pattern`` / ``loss_domain_pattern`` (regexes with a ``domain`` group)
turn column names into domain names, e.g. ``train_the_pile_(?P<domain>.+)``.
Weights are validated: rows within rounding of 1 are renormalized and flagged, negative
weights or sums far from 1 are an error naming the run.

A long table (``layout = "long"``, `normalize_long_mixtures`) has one row per mixture run x model
size x step x validation domain, as mixture x size x step experiments are published; weights are
columns of it, or parsed from the run id by ``run_pattern`` (``70M_RP_0.25-0.125-...``).
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
    if mx.get("layout", "wide") == "long":
        return normalize_long_mixtures(raw, src, study)
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


_SIZE_SUFFIX = {"": 1.0, "K": 1e3, "M": 1e6, "B": 1e9, "T": 1e12}


def _size(text: str, where: dict, run: str) -> float:
    """'70M' -> 7e7, '1.3B' -> 1.3e9, '160000' -> 1.6e5."""
    m = re.fullmatch(r"([0-9.]+(?:e[+-]?\d+)?)([KMBT]?)", text.strip(), flags=re.IGNORECASE)
    if not m:
        raise SourceError(f"run {run!r}: expected a size such as 70M or 1.3B, got {text!r}", field="run_pattern",
                          **where)
    return float(m.group(1)) * _SIZE_SUFFIX[m.group(2).upper()]


def _column_or_number(frame: pl.DataFrame, spec, where: dict, name: str) -> pl.Series:
    if spec is None:
        return pl.Series(name, [None] * frame.height, dtype=pl.Float64)
    if isinstance(spec, (int, float)) and not isinstance(spec, bool):
        return pl.Series(name, [float(spec)] * frame.height)
    if spec not in frame.columns:
        raise SourceError(f"mixture.{name} names a column the table does not have; it has "
                          f"{[c for c in frame.columns if not c.startswith('_')][:12]}", column=spec, **where)
    return pl.Series(name, _numbers(frame, [spec], where)[:, 0])


def normalize_long_mixtures(raw: pl.DataFrame, src: SourceSpec, study: StudySpec) -> pl.DataFrame:
    """One row per run x step x validation domain -> weight rows (once per run) and loss rows (per step)."""
    mx = src.mixture
    where = {"study": study.name, "source": src.name}
    frame = raw.filter(pl.col("_role") == "losses")
    if frame.height == 0:
        raise SourceError("no mixture rows found", **where)
    where_f = {**where, "file": str(frame["_file"][0])}
    run_col, domain_col, loss_col = mx.get("run", "run"), mx.get("domain", "domain"), mx.get("loss", "loss")
    for key, col in (("run", run_col), ("domain", domain_col), ("loss", loss_col)):
        if col not in frame.columns:
            raise SourceError(f"mixture.{key} names a column the table does not have; it has "
                              f"{[c for c in frame.columns if not c.startswith('_')][:12]}", column=col, **where_f)
    runs_all = frame[run_col].cast(pl.Utf8)
    first = frame.with_columns(_run=runs_all).unique("_run", keep="first", maintain_order=True)
    runs = first["_run"].to_list()
    run_params: list[float | None] = [None] * len(runs)
    if "run_pattern" in mx:
        rx = re.compile(mx["run_pattern"])
        sep = mx.get("weight_separator", "-")
        domains = list(mx["weight_domains"])
        raw_w = np.empty((len(runs), len(domains)))
        for i, run in enumerate(runs):
            m = rx.search(run)
            if not m:
                row = int(first["_row"][i])
                raise SourceError(f"run {run!r} does not match run_pattern {mx['run_pattern']!r}", line=row,
                                  column=run_col, **where_f)
            parts = m.group("weights").split(sep)
            if len(parts) != len(domains):
                raise SourceError(f"run {run!r} gives {len(parts)} weights for {len(domains)} weight_domains",
                                  line=int(first["_row"][i]), column=run_col, **where_f)
            try:
                raw_w[i] = [float(p) for p in parts]
            except ValueError:
                raise SourceError(f"run {run!r}: expected numbers separated by {sep!r}, got {m.group('weights')!r}",
                                  line=int(first["_row"][i]), column=run_col, **where_f) from None
            if "params" in rx.groupindex and m.group("params"):
                run_params[i] = _size(m.group("params"), where_f, run)
    else:
        wcols = _pick(first, run_col, mx.get("weight_columns"), where_f)
        raw_w = _numbers(first, wcols, where_f)
        domains = _domain_names(wcols, mx.get("domain_pattern"), where_f)
    try:
        weights, flags = validate_weights(raw_w, runs, domains=domains, source=src.name, file=where_f["file"])
    except SourceError as exc:
        raise exc.at(study=study.name) from None
    renorm = np.zeros(len(runs), dtype=bool)
    for f in flags:
        renorm[f.row] = True
    # params: a column or number of the spec, else the size parsed from the run id
    params = _column_or_number(frame, mx.get("params"), where_f, "params")
    if mx.get("params") is None and any(p is not None for p in run_params):
        params = runs_all.replace_strict(dict(zip(runs, run_params)), return_dtype=pl.Float64).alias("params")
    losses = pl.DataFrame({
        "run": runs_all, "kind": "loss", "domain": frame[domain_col].cast(pl.Utf8),
        "value": _numbers(frame, [loss_col], where_f)[:, 0], "params": params,
        "tokens": _column_or_number(frame, mx.get("tokens"), where_f, "tokens"),
        "steps": _column_or_number(frame, mx.get("steps"), where_f, "steps"),
    }).with_columns(raw_value=pl.col("value"), renormalized=pl.col("run").replace_strict(
        dict(zip(runs, renorm.tolist())), return_dtype=pl.Boolean))
    run_size = losses.group_by("run", maintain_order=True).agg(pl.col("params").first())
    n = len(domains)
    weight_rows = pl.DataFrame({
        "run": np.repeat(runs, n), "kind": "weight", "domain": np.tile(domains, len(runs)),
        "value": weights.ravel(), "raw_value": raw_w.ravel(), "renormalized": np.repeat(renorm, n),
    }).join(run_size, on="run", how="left")
    out = pl.concat([weight_rows, losses], how="diagonal_relaxed")
    return out.with_columns(study=pl.lit(study.name), source=pl.lit(src.name),
                            split=pl.lit(mx.get("split", "train")))
