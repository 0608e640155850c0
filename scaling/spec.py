"""Study files: one TOML file describes a study, its sources and the conventions to normalize them.

A study is the unit of work (the Dagster partition). Everything in the file is validated up
front: an unknown key, a missing field, a bad unit or format is a `SpecError` that names the
study, the source and the field. See ``studies/README.md`` for the full reference.
"""

from __future__ import annotations

import fnmatch
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scaling.expressions import parse_column_expression
from scaling.sources.fetch import http_options
from scaling.errors import SpecError

KINDS = ("training_logs", "checkpoint_results", "mixture_runs")
FORMATS = ("csv", "jsonl", "json", "lm_eval", "text", "parquet", "tensorboard")
LOSS_UNITS = ("nats", "bits", "bits_per_byte", "perplexity")  # losses: lower is better, never negative in nats
UNITS = (*LOSS_UNITS, "accuracy", "other")
FLOPS_CONVENTIONS = ("6ND", "6ND+attention", "accelerator")
# Canonical per-point columns a source can map.
POINT_COLUMNS = ("run", "step", "tokens", "flops", "learning_rate", "metric", "value", "stderr")
# Per-run metadata: from files (mapped columns), a metadata table, defaults or per-run entries.
RUN_METADATA = {
    "params": float, "non_embedding_params": float, "n_layer": int, "d_model": int,
    "vocab_size": int, "seq_len": int, "batch_tokens": float, "bytes_per_token": float,
    "unique_tokens": float, "dataset": str, "tied_embeddings": bool,
    # mixture-of-experts: parameters active per token (6·N·D counts these); accelerator-time compute
    "active_params": float, "gpu_hours": float, "peak_flops": float, "mfu": float,
    # the learning-rate schedule as planned (`scaling.normalize.schedule`): where it ends, where its cooldown starts
    "schedule_steps": int, "schedule_tokens": float, "cooldown_start_step": int, "cooldown_start_tokens": float,
}
# Names that become folder names in the warehouse (study, source): checked with `check_name`.
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
NAME_MAX_LENGTH = 100


def check_name(value: Any, what: str, **where: Any) -> str:
    """The one check for every name that becomes a path: a study, a source, a mixture's held-out split.

    The whole name must match ``[A-Za-z0-9][A-Za-z0-9_.-]*`` (no separators, spaces, ``=`` or
    control characters, no newline before the end), must not contain ``..`` and is at most
    `NAME_MAX_LENGTH` characters. Raises `SpecError` naming `what` and where.
    """
    if not isinstance(value, str):
        raise SpecError(f"{what} must be a string, got {type(value).__name__} {value!r}", **where)
    shown = value if len(value) <= 40 else value[:40] + "..."
    if len(value) > NAME_MAX_LENGTH:
        raise SpecError(f"{what} is {len(value)} characters long; at most {NAME_MAX_LENGTH} are allowed, "
                        f"got {shown!r}", **where)
    if not NAME_PATTERN.fullmatch(value) or ".." in value:
        raise SpecError(f"{what} must be letters, digits, '_', '.' or '-' (starting with a letter or digit, "
                        f"no '..'), got {shown!r}", **where)
    return value


@dataclass(frozen=True)
class MetricSpec:
    name: str
    column: str
    unit: str


@dataclass(frozen=True)
class SourceSpec:
    name: str
    kind: str
    location: str
    format: str
    options: dict[str, Any] = field(default_factory=dict)
    layout: str = "wide"
    run: str = "{file_stem}"
    columns: dict[str, str | list[str]] = field(default_factory=dict)
    metrics: tuple[MetricSpec, ...] = ()
    metric_columns: tuple[str, ...] = ()
    unit: str = "nats"
    units: dict[str, str] = field(default_factory=dict)
    filter: str | None = None
    final: str = "last"
    on_error: str = "fail"
    metadata: str | None = None
    metadata_columns: dict[str, str] = field(default_factory=dict)
    defaults: dict[str, Any] = field(default_factory=dict)
    runs: dict[str, dict[str, Any]] = field(default_factory=dict)
    # mixture_runs only
    mixture: dict[str, Any] = field(default_factory=dict)
    # columns derived from the files: regex groups, labels, unit scales (see `check_source_extras`)
    extract: tuple[tuple[str, str], ...] = ()
    labels: dict[str, str] = field(default_factory=dict)
    scale: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class ComputedMetric:
    """A metric computed from others after normalization (``[computed.<name>]``).

    kind ``mean``: (weighted) mean of ``inputs`` (exact names or glob patterns) at each run x step;
    kind ``expr``: a row-wise expression over metric names at each run x step;
    kind ``last_mean``: the mean of a metric's last ``k`` evaluations of each run, at the run's last point.
    """

    name: str
    kind: str
    inputs: tuple[str, ...] = ()
    weights: tuple[float, ...] = ()
    expr: Any = None
    k: int = 0
    unit: str | None = None


@dataclass(frozen=True)
class StudySpec:
    name: str
    path: Path
    description: str
    flops_convention: str
    group_by: tuple[str, ...]
    sources: tuple[SourceSpec, ...]
    simulate: dict[str, Any] | None
    fits: tuple[dict[str, Any], ...]
    forecasts: dict[str, Any]
    mixing: dict[str, Any]
    raw: dict[str, Any]
    checks: dict[str, float] = field(default_factory=lambda: dict(CHECK_DEFAULTS))
    # Folders besides the study file's own that its locations may read (`--data-root`).
    data_roots: tuple[Path, ...] = ()
    computed: tuple[ComputedMetric, ...] = ()
    # `[observational]`: an observational scaling law over the study's models (`check_observational`)
    observational: dict[str, Any] = field(default_factory=dict)

    @property
    def base_dir(self) -> Path:
        return self.path.parent

    @property
    def allowed_roots(self) -> tuple[Path, ...]:
        """Where the study's sources may read: its own folder (the studies folder), then the data roots."""
        return (self.base_dir, *self.data_roots)

    def source(self, name: str) -> SourceSpec:
        for s in self.sources:
            if s.name == name:
                return s
        raise KeyError(name)


def _keys(table: dict, allowed: set[str], required: set[str], **where: Any) -> None:
    prefix = where.pop("field", None)
    name = (lambda key: f"{prefix}.{key}") if prefix else (lambda key: key)
    if not isinstance(table, dict):
        raise SpecError(f"expected a table, got {type(table).__name__}", field=prefix, **where)
    for key in table:
        if key not in allowed:
            raise SpecError(f"unknown key {key!r}; expected one of {sorted(allowed)}", field=name(key), **where)
    for key in sorted(required):
        if key not in table:
            raise SpecError("missing required key", field=name(key), **where)


def _choice(value: Any, choices: tuple[str, ...], fieldname: str, **where: Any) -> str:
    if value not in choices:
        raise SpecError(f"expected one of {list(choices)}, got {value!r}", field=fieldname, **where)
    return value


def _str(value: Any, fieldname: str, **where: Any) -> str:
    if not isinstance(value, str) or not value:
        raise SpecError(f"expected a non-empty string, got {value!r}", field=fieldname, **where)
    return value


def check_metadata(meta: dict[str, Any], fieldname: str, **where: Any) -> dict[str, Any]:
    """Validate per-run metadata values: known keys with the right types; `labels` is a table of strings."""
    out: dict[str, Any] = {}
    for key, value in meta.items():
        if key == "labels":
            if not isinstance(value, dict) or not all(isinstance(v, (str, int, float, bool)) for v in value.values()):
                raise SpecError("expected a table of label = value", field=f"{fieldname}.labels", **where)
            out["labels"] = {k: str(v) for k, v in value.items()}
            continue
        if key not in RUN_METADATA:
            raise SpecError(f"unknown run metadata key {key!r}; expected one of {sorted(RUN_METADATA) + ['labels']}",
                            field=f"{fieldname}.{key}", **where)
        kind = RUN_METADATA[key]
        ok = isinstance(value, bool) if kind is bool else (
            isinstance(value, str) if kind is str else isinstance(value, (int, float)) and not isinstance(value, bool))
        if not ok:
            raise SpecError(f"expected {kind.__name__}, got {value!r}", field=f"{fieldname}.{key}", **where)
        if kind in (int, float) and value <= 0:
            raise SpecError(f"expected a positive number, got {value!r}", field=f"{fieldname}.{key}", **where)
        out[key] = kind(value)
    return out


def _metadata_columns(mapping: dict, where: dict) -> dict[str, str]:
    """Canonical metadata name -> column of the metadata table (``run`` names the key column)."""
    for key, col in mapping.items():
        if key != "run" and key not in RUN_METADATA:
            raise SpecError(f"unknown metadata key {key!r}; expected 'run' or one of {sorted(RUN_METADATA)}",
                            field=f"metadata_columns.{key}", **where)
        if not isinstance(col, str):
            raise SpecError(f"expected a column name, got {col!r}", field=f"metadata_columns.{key}", **where)
    return dict(mapping)


def unit_of(metric: str, src: "SourceSpec") -> str:
    """A metric's unit: an exact `units` entry, else the first glob pattern that matches, else `unit`."""
    if metric in src.units:
        return src.units[metric]
    for pattern, unit in src.units.items():
        if fnmatch.fnmatchcase(metric, pattern):
            return unit
    return src.unit


_SOURCE_KEYS = {
    "name", "kind", "location", "format", "options", "layout", "run", "columns", "metrics", "metric_columns",
    "unit", "units", "filter", "final", "on_error", "metadata", "metadata_columns", "defaults", "runs", "mixture",
    "extract", "labels", "scale",
}
_MIXTURE_KEYS = {
    "weights", "losses", "test_weights", "test_losses", "join", "weight_columns", "loss_columns",
    "domain_pattern", "loss_domain_pattern", "params", "tokens", "steps", "test_params", "test_tokens", "test_steps",
    "extra_tests",
    # long layout: one row per (mixture run, size, step, validation domain, loss)
    "layout", "run", "domain", "loss", "run_pattern", "weight_domains", "weight_separator", "split",
}


def _location(raw: dict, kind: str, where: dict) -> str:
    """A source's `location` (and a mixture's table locations, and `metadata`): non-empty strings."""
    for key, value in (raw.get("mixture") or {}).items() if kind == "mixture_runs" else ():
        if key in ("weights", "losses", "test_weights", "test_losses"):
            _str(value, f"mixture.{key}", **where)
    for i, extra in enumerate((raw.get("mixture") or {}).get("extra_tests") or [] if kind == "mixture_runs" else []):
        for key in ("weights", "losses"):
            _str(extra.get(key), f"mixture.extra_tests[{i}].{key}", **where)
    if raw.get("metadata") is not None:
        _str(raw["metadata"], "metadata", **where)
    if kind == "mixture_runs" and "location" not in raw:
        return ""
    return _str(raw.get("location"), "location", **where)


_TABLE_KEYS = ("options", "columns", "metrics", "units", "metadata_columns", "defaults", "runs", "mixture")
_STRING_KEYS = ("kind", "format", "layout", "run", "unit", "final", "on_error", "filter")


def _shapes(raw: dict, where: dict) -> None:
    """The kind of value each source key holds (a table, a string, a list of strings), before reading them."""
    for key in _TABLE_KEYS:
        if key in raw and not isinstance(raw[key], dict):
            raise SpecError(f"expected a table, got {type(raw[key]).__name__} {raw[key]!r}", field=key, **where)
    for key in _STRING_KEYS:
        if key in raw and not isinstance(raw[key], str):
            raise SpecError(f"expected a string, got {type(raw[key]).__name__} {raw[key]!r}", field=key, **where)
    cols = raw.get("metric_columns")
    if cols is not None and not (isinstance(cols, list) and all(isinstance(c, str) and c for c in cols)):
        raise SpecError(f"expected a list of glob patterns, got {cols!r}", field="metric_columns", **where)


def _source(raw: dict, study: str, index: int) -> SourceSpec:
    if not isinstance(raw, dict):
        raise SpecError(f"expected a [[sources]] table, got {type(raw).__name__}", study=study, source=f"#{index + 1}")
    named = isinstance(raw, dict) and isinstance(raw.get("name"), str) and len(raw["name"]) <= NAME_MAX_LENGTH
    where = {"study": study, "source": raw["name"] if named else f"#{index + 1}"}
    required = {"name", "kind"} | ({"location", "format"} if raw.get("kind") != "mixture_runs" else {"mixture"})
    _keys(raw, _SOURCE_KEYS, required, **where)
    _shapes(raw, where)
    name = check_name(raw["name"], "source name", field="name", **where)
    kind = _choice(raw["kind"], KINDS, "kind", **where)
    fmt = _choice(raw.get("format", "csv"), FORMATS, "format", **where)
    layout = _choice(raw.get("layout", "wide"), ("wide", "long"), "layout", **where)
    unit = _choice(raw.get("unit", "nats"), UNITS, "unit", **where)
    units = {}
    for metric, u in (raw.get("units") or {}).items():
        units[metric] = _choice(u, UNITS, f"units.{metric}", **where)
    columns = raw.get("columns") or {}
    for canon, col in columns.items():
        if canon not in POINT_COLUMNS and canon not in RUN_METADATA:
            raise SpecError(f"unknown canonical column {canon!r}; expected one of "
                            f"{sorted(set(POINT_COLUMNS) | set(RUN_METADATA))}", field=f"columns.{canon}", **where)
        if not (isinstance(col, str) or (isinstance(col, list) and col and all(isinstance(c, str) for c in col))):
            raise SpecError(f"expected a column name (or a list of them, joined with '/'), got {col!r}",
                            field=f"columns.{canon}", **where)
    metrics = []
    for mname, mval in (raw.get("metrics") or {}).items():
        if isinstance(mval, str):
            metrics.append(MetricSpec(mname, mval, units.get(mname, unit)))
        elif isinstance(mval, dict):
            _keys(mval, {"column", "unit"}, {"column"}, field=f"metrics.{mname}", **where)
            metrics.append(MetricSpec(mname, _str(mval["column"], f"metrics.{mname}.column", **where),
                                      _choice(mval.get("unit", units.get(mname, unit)), UNITS,
                                              f"metrics.{mname}.unit", **where)))
        else:
            raise SpecError(f"expected a column name or {{column, unit}}, got {mval!r}", field=f"metrics.{mname}", **where)
    if kind != "mixture_runs" and layout == "wide" and not metrics and not raw.get("metric_columns"):
        raise SpecError("a wide source needs `metrics` (name = column) or `metric_columns` (glob patterns)",
                        field="metrics", **where)
    if kind != "mixture_runs" and layout == "long":
        for need in ("metric", "value"):
            if need not in columns:
                raise SpecError("a long source needs this column mapped", field=f"columns.{need}", **where)
    runs = {}
    for pattern, meta in (raw.get("runs") or {}).items():
        if not isinstance(meta, dict):
            raise SpecError("expected a table of run metadata", field=f"runs.{pattern}", **where)
        runs[pattern] = check_metadata(meta, f"runs.{pattern}", **where)
    mixture = raw.get("mixture") or {}
    if kind == "mixture_runs":
        _keys(mixture, _MIXTURE_KEYS, {"weights", "losses"} if mixture.get("layout", "wide") == "wide" else
              {"losses"}, field="mixture", **where)
        check_long_mixture(mixture, where)
        for i, extra in enumerate(mixture.get("extra_tests") or []):
            _keys(extra, {"split", "weights", "losses", "params", "tokens", "steps"}, {"split", "weights", "losses"},
                  field=f"mixture.extra_tests[{i}]", **where)
            check_name(extra["split"], "split name", field=f"mixture.extra_tests[{i}].split", **where)  # a plot's name
    if fmt == "text" and not ((raw.get("options") or {}).get("pattern") or (raw.get("options") or {}).get("patterns")):
        raise SpecError("a text source needs options.pattern (a regex with named groups)", field="options.pattern",
                        **where)
    options = raw.get("options") or {}
    if not isinstance(options, dict):
        raise SpecError(f"expected a table of options, got {options!r}", field="options", **where)
    try:
        http_options(options.get("http"))
    except SpecError as exc:
        raise exc.at(**where) from None
    filt = raw.get("filter")
    if filt is not None:
        parse_column_expression(filt, field="filter", **where)
    return SourceSpec(
        name=name, kind=kind, location=_location(raw, kind, where), format=fmt,
        options=dict(raw.get("options") or {}), layout=layout, run=_str(raw.get("run", "{file_stem}"), "run", **where),
        columns=dict(columns), metrics=tuple(metrics),
        metric_columns=tuple(raw.get("metric_columns") or ()), unit=unit, units=units, filter=filt,
        final=_choice(raw.get("final", "last"), ("last", "all"), "final", **where),
        on_error=_choice(raw.get("on_error", "fail"), ("fail", "quarantine"), "on_error", **where),
        metadata=raw.get("metadata"), metadata_columns=_metadata_columns(raw.get("metadata_columns") or {}, where),
        defaults=check_metadata(raw.get("defaults") or {}, "defaults", **where), runs=runs, mixture=dict(mixture),
        **check_source_extras(raw, where),
    )


_TOP_KEYS = {"study", "sources", "fits", "forecasts", "mixing", "computed", "crossovers",  # crossovers: scaling.plan.crossovers
             "observational"}
_STUDY_KEYS = {"name", "description", "flops_convention", "group_by", "simulate", "checks"}
CHECK_DEFAULTS = {
    "max_rmse": 0.05,               # rms of log residuals of a usable fit
    "max_relative_ci_width": 2.0,   # (ci_high - ci_low) / |estimate| for exponents
    "max_backtest_error": 0.10,     # mean |relative error| on held-out runs
}


def load_study(path: str | Path, *, data_roots: tuple[str | Path, ...] | list = ()) -> StudySpec:
    """Read and validate one study file.

    `data_roots` are the folders (besides the study file's own) its locations may read; see
    `scaling.sources.locate.resolve_location`.
    """
    path = Path(path).resolve()
    study = path.stem
    try:
        raw = tomllib.loads(path.read_text())
    except OSError as exc:
        raise SpecError(f"cannot read study file: {exc.strerror or exc}", study=study, file=str(path.name)) from exc
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"invalid TOML: {exc}", study=study, file=str(path.name)) from exc
    _keys(raw, _TOP_KEYS, {"sources"}, study=study, file=path.name)
    check_against_schema(raw, study, shapes_only=True)
    head = raw.get("study", {})
    _keys(head, _STUDY_KEYS, set(), study=study, field="study")
    study = head.get("name", study)
    check_name(study, "study name", file=path.name, field="study.name" if "name" in head else None)
    conv = _choice(head.get("flops_convention", "6ND"), FLOPS_CONVENTIONS, "study.flops_convention", study=study)
    if not isinstance(raw["sources"], list) or not raw["sources"]:
        raise SpecError("expected at least one [[sources]] table", study=study, field="sources")
    sources = tuple(_source(s, study, i) for i, s in enumerate(raw["sources"]))
    names = [s.name for s in sources]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise SpecError(f"source names must be unique; repeated: {sorted(dup)}", study=study, field="sources.name")
    fits = raw.get("fits", [])
    if not isinstance(fits, list) or not all(isinstance(f, dict) for f in fits):
        raise SpecError("expected [[fits]] tables", study=study, field="fits")
    for key in ("forecasts", "mixing", "crossovers", "observational"):
        if not isinstance(raw.get(key, {}), dict):
            raise SpecError("expected a table", study=study, field=key)
    checks = dict(CHECK_DEFAULTS)
    for key, value in (head.get("checks") or {}).items():
        if key not in CHECK_DEFAULTS:
            raise SpecError(f"unknown check threshold {key!r}; expected one of {sorted(CHECK_DEFAULTS)}",
                            study=study, field=f"study.checks.{key}")
        if not isinstance(value, (int, float)) or value <= 0:
            raise SpecError(f"expected a positive number, got {value!r}", study=study, field=f"study.checks.{key}")
        checks[key] = float(value)
    simulate = head.get("simulate")
    if simulate is not None:
        _keys(simulate, {"seed", "out"}, {"out"}, study=study, field="study.simulate")
        _simulate_out(simulate["out"], path.parent, study)
    spec = StudySpec(
        name=study, path=path, description=str(head.get("description", "")), flops_convention=conv,
        group_by=tuple(head.get("group_by", ())), sources=sources, simulate=simulate,
        fits=tuple(fits), forecasts=dict(raw.get("forecasts", {})),
        mixing=check_mixing(raw.get("mixing", {}), study, sources), raw=raw,
        checks=checks, data_roots=tuple(Path(r).expanduser().resolve() for r in data_roots),
        computed=check_computed(raw.get("computed", {}), study),
        observational=check_observational(raw.get("observational", {}), study, tuple(head.get("group_by", ()))),
    )
    check_against_schema(raw, study)  # after the loader's own checks, which give the more specific messages
    check_plans(spec)
    return spec


# Canonical columns whose values a source may scale (model size in billions, tokens in trillions, ...).
SCALABLE = ("tokens", "flops", "params", "non_embedding_params", "batch_tokens", "unique_tokens", "active_params",
            "gpu_hours", "schedule_tokens", "cooldown_start_tokens")


def check_source_extras(raw: dict, where: dict) -> dict[str, Any]:
    """``extract`` (regex groups of a column become columns), ``labels`` (group labels from columns) and
    ``scale`` (a canonical column's unit, e.g. ``params = 1e9`` for a column in billions).

        extract = [{ column = "__index_level_0__", pattern = 'Gemstone-(?P<arch>\\d+x\\d+)-step_(?P<step>\\d+)' }]
        labels = { family = "Model Family" }
        scale = { params = 1e9, tokens = 1e12, flops = 1e21 }
    """
    extract = []
    items = raw.get("extract") or []
    if not isinstance(items, list):
        raise SpecError("expected a list of { column, pattern } tables", field="extract", **where)
    for i, item in enumerate(items):
        _keys(item, {"column", "pattern"}, {"column", "pattern"}, field=f"extract[{i}]", **where)
        column = _str(item["column"], f"extract[{i}].column", **where)
        pattern = _str(item["pattern"], f"extract[{i}].pattern", **where)
        try:
            rx = re.compile(pattern)
        except re.error as exc:
            raise SpecError(f"invalid regex {pattern!r}: {exc}", field=f"extract[{i}].pattern", **where) from None
        if not rx.groupindex:
            raise SpecError(f"the pattern {pattern!r} has no named group (?P<name>...): nothing to extract",
                            field=f"extract[{i}].pattern", **where)
        extract.append((column, pattern))
    labels = raw.get("labels") or {}
    if not isinstance(labels, dict) or not all(isinstance(v, str) and v for v in labels.values()):
        raise SpecError("expected a table of label = column", field="labels", **where)
    scale = {}
    for key, factor in (raw.get("scale") or {}).items():
        if key not in SCALABLE:
            raise SpecError(f"cannot scale {key!r}; scalable columns: {list(SCALABLE)}", field=f"scale.{key}",
                            **where)
        if isinstance(factor, bool) or not isinstance(factor, (int, float)) or not factor > 0:
            raise SpecError(f"expected a positive number, got {factor!r}", field=f"scale.{key}", **where)
        scale[key] = float(factor)
    return {"extract": tuple(extract), "labels": dict(labels), "scale": scale}


def check_plans(spec: "StudySpec") -> None:
    """`[[fits]]` and `[forecasts]` checked when the study loads (unknown law, bad filter, missing keys), not
    first when the fits run."""
    from scaling.plan import isoflop
    from scaling.plan.fits import _plan

    for i, fit in enumerate(spec.fits):
        try:  # approaches 1 and 2 ("isoflop", "envelope") have keys of their own
            (isoflop._plan if isoflop.is_isoflop(fit) else _plan)(fit, spec.name, i)
        except SpecError as exc:
            raise exc.at(study=spec.name, field=f"fits[{i}]") from None
    check_forecast_spec(spec.forecasts, spec.name)


def check_against_schema(raw: dict, study: str, *, shapes_only: bool = False) -> None:
    """The generated JSON Schema (`scaling.study_schema`) is part of validation: anything it rejects, the
    loader rejects, as a `SpecError` naming the source and the field. Shapes (a table where a list is
    expected) are checked first; the loader's own checks then give their specific messages."""
    from scaling.study_schema import schema_errors

    errors = schema_errors(raw, shapes_only=shapes_only)
    if not errors:
        return
    path, message = errors[0]
    where: dict[str, Any] = {"study": study}
    if len(path) >= 2 and path[0] == "sources" and isinstance(path[1], int):
        src = raw["sources"][path[1]]
        where["source"] = src.get("name", f"#{path[1] + 1}") if isinstance(src, dict) else f"#{path[1] + 1}"
        path = path[2:]
    fieldname = ".".join(str(p) if not isinstance(p, int) else f"[{p}]" for p in path).replace(".[", "[") or None
    raise SpecError(f"invalid value: {message}", field=fieldname, **where)


def check_long_mixture(mixture: dict, where: dict) -> None:
    """A long mixture table (``layout = "long"``): ``losses`` is one file with a row per run x step x domain.

        [sources.mixture]
        layout = "long"
        losses = "mixtures.csv"
        run = "run_name"                 # mixture run id column (default "run")
        domain = "domain"                # validation domain column (default "domain")
        loss = "loss"                    # loss column (default "loss")
        params = "model_size"            # a column, or a number; so are tokens and steps
        steps = "step"
        # weights as columns (weight_columns + domain_pattern) or parsed from the run id:
        run_pattern = '(?P<params>\\d+[KMB])_(?P<weights>[0-9.]+(?:-[0-9.]+)*)'
        weight_domains = ["RP", "C4", "code"]
    """
    layout = _choice(mixture.get("layout", "wide"), ("wide", "long"), "mixture.layout", **where)
    if layout == "wide":
        extra = sorted({"run", "domain", "loss", "run_pattern", "weight_domains", "weight_separator", "split"}
                       & set(mixture))
        if extra:
            raise SpecError(f"keys {extra} need layout = \"long\"", field=f"mixture.{extra[0]}", **where)
        return
    if "split" in mixture:  # the split names a plot file, like an extra test's
        check_name(mixture["split"], "split name", field="mixture.split", **where)
    if "run_pattern" in mixture:
        try:
            rx = re.compile(_str(mixture["run_pattern"], "mixture.run_pattern", **where))
        except re.error as exc:
            raise SpecError(f"invalid regex: {exc}", field="mixture.run_pattern", **where) from None
        if "weights" not in rx.groupindex:
            raise SpecError("run_pattern needs a (?P<weights>...) group", field="mixture.run_pattern", **where)
        domains = mixture.get("weight_domains")
        if not isinstance(domains, list) or not domains or not all(isinstance(d, str) for d in domains):
            raise SpecError("run_pattern needs weight_domains, the domain of each weight in order",
                            field="mixture.weight_domains", **where)
    elif "weight_columns" not in mixture:
        raise SpecError("a long mixture table needs weight_columns or run_pattern", field="mixture.weight_columns",
                        **where)


_OBSERVATIONAL_KEYS = {"benchmarks", "target", "cutoff", "n_components", "family", "reference_family",
                       "min_family_models", "floor", "ceiling", "n_resamples", "backtest_resamples", "baselines",
                       "level", "seed", "models"}
_OBSERVATIONAL_MODEL_KEYS = {"name", "family", "flops"}
# compute-only laws fitted to the same models as an observational law, scored on the same hold-out
OBSERVATIONAL_BASELINES = ("accuracy_sigmoid_flops", "power_law_flops")


def _number(value: Any, fieldname: str, *, positive: bool = False, **where: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value or \
            (positive and not value > 0):
        raise SpecError(f"expected a {'positive ' if positive else ''}number, got {value!r}", field=fieldname,
                        **where)
    return float(value)


def _integer(value: Any, fieldname: str, minimum: int, **where: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise SpecError(f"expected an integer of at least {minimum}, got {value!r}", field=fieldname, **where)
    return value


# The keys of the `[[fits]]`, `[forecasts]` and `[crossovers]` tables (the planners in `scaling.plan` read
# them); here, with the other tables' keys, so that checking a study file imports no fitting code.
FIT_KEYS = {"law", "target", "points", "x_metric", "by_run", "objective", "delta", "space", "n_resamples",
            "holdout_fraction", "min_tokens", "filter", "fixed", "bounds", "seed", "backtest_resamples",
            "holdout", "rollout_resamples", "tie", "scale"}
ISOFLOP_KEYS = {"law", "target", "budgets", "n_budgets", "tolerance", "min_runs", "n_buckets", "n_resamples", "level",
                "filter", "min_tokens", "seed", "seed_noise"}  # approaches 1 and 2 (law "envelope" or "isoflop")
FORECAST_KEYS = {"budgets", "n_budgets", "factor", "unique_tokens", "fixed_size", "targets", "downstream", "level",
                 "n_resamples"}
TARGET_KEYS = {"name", "params", "tokens", "tokens_per_param", "unique_tokens", "actual_run", "actual", "n_layer",
               "seq_len", "d_model"}
DOWNSTREAM_KEYS = {"task_loss", "accuracy", "floor", "ceiling", "min_tokens_fraction", "n_resamples", "filter"}
CROSSOVER_KEYS = {"budgets", "max_flops", "n_grid", "level", "max_draws"}


def check_forecast_spec(table: dict, study: str) -> dict:
    """The `[forecasts]` table: known keys; each target with name, params and one of tokens or
    tokens_per_param; each downstream forecast with its task_loss and accuracy metrics."""
    for key in table:
        if key not in FORECAST_KEYS:
            raise SpecError(f"unknown key {key!r}; expected one of {sorted(FORECAST_KEYS)}", study=study,
                            field=f"forecasts.{key}")
    for i, t in enumerate(table.get("targets", [])):
        bad = set(t) - TARGET_KEYS
        if bad or "name" not in t or "params" not in t or (("tokens" in t) == ("tokens_per_param" in t)):
            raise SpecError(f"a target needs name, params and one of tokens or tokens_per_param "
                            f"(known keys {sorted(TARGET_KEYS)}; "
                            f"unknown {sorted(bad)})", study=study, field=f"forecasts.targets[{i}]")
    for i, d in enumerate(table.get("downstream", [])):
        bad = set(d) - DOWNSTREAM_KEYS
        if bad or "task_loss" not in d or "accuracy" not in d:
            raise SpecError(f"a downstream forecast needs task_loss and accuracy metrics (known keys "
                            f"{sorted(DOWNSTREAM_KEYS)}; unknown {sorted(bad)})", study=study,
                            field=f"forecasts.downstream[{i}]")
    return table


MIXING_KEYS = {"method", "laws", "law", "targets", "n_resamples", "seed", "level", "target_params", "target_steps",
               "objective_weights", "lower", "upper", "unique_tokens", "planned_tokens", "max_epochs", "baseline"}
MIXING_METHODS = ("laws", "nested", "bimix")
_MIXING_ONLY = {"law": ("nested",), "target_params": ("nested",), "target_steps": ("nested",),
                "objective_weights": ("laws", "nested"), "lower": ("laws", "nested"), "upper": ("laws", "nested"),
                "unique_tokens": ("laws", "nested"), "planned_tokens": ("laws", "nested"),
                "max_epochs": ("laws", "nested"), "baseline": ("laws", "nested")}


def check_mixing(table: Any, study: str, sources: tuple = ()) -> dict[str, Any]:
    """Validate ``[mixing]`` (run by ``scaling.plan.mixing``): every error names the field, e.g.
    ``field 'mixing.target_steps'``.

        [mixing]
        method = "nested"      # "laws" (default): mixing laws over each run's final losses at one scale;
                               # "nested": step law -> size law -> mixing law at (target_params, target_steps)
                               #   (Ye et al. 2024); "bimix": BiMix over own-domain weight and steps (Ge et al. 2024)
        law = "ye_exp"         # nested: the mixing law fitted at the target scale
        target_params = 1e9    # nested: model size predicted (larger than any trained, typically)
        target_steps = 1e5     # nested: training steps predicted
        n_resamples = 200      # bootstrap over runs (mixtures, for nested)
        level = 0.95

    ``nested`` and ``bimix`` need a ``mixture_runs`` source with a ``steps`` column (``nested`` also model
    sizes: ``params``, or a ``(?P<params>...)`` group in ``run_pattern``), as a long table gives them."""
    from scaling.mixing.laws import MIXING_LAWS

    where = {"study": study}
    _keys(table, MIXING_KEYS, set(), field="mixing", **where)
    method = _choice(table.get("method", "laws"), MIXING_METHODS, "mixing.method", **where)
    for key, methods in _MIXING_ONLY.items():
        if key in table and method not in methods:
            raise SpecError(f"only for method {' or '.join(repr(m) for m in methods)}, not {method!r}",
                            field=f"mixing.{key}", **where)
    for key in ("laws", "targets"):
        if key in table and not (isinstance(table[key], list) and table[key]
                                 and all(isinstance(v, str) and v for v in table[key])):
            raise SpecError(f"expected a non-empty list of names, got {table[key]!r}", field=f"mixing.{key}", **where)
    if "laws" in table and method != "laws":
        raise SpecError(f"only for method 'laws'; method {method!r} takes " +
                        ("law (one mixing law at the target scale)" if method == "nested" else "no laws"),
                        field="mixing.laws", **where)
    for name in table.get("laws", []):
        if name not in MIXING_LAWS:
            raise SpecError(f"unknown mixing law {name!r}; expected some of {sorted(MIXING_LAWS)}",
                            field="mixing.laws", **where)
    nested_laws = sorted(n for n, law in MIXING_LAWS.items() if not law.needs_own_domain)
    if "law" in table and table["law"] not in nested_laws:
        raise SpecError(f"expected one of {nested_laws}, got {table['law']!r}", field="mixing.law", **where)
    for key in ("n_resamples", "seed"):
        if key in table:
            _integer(table[key], f"mixing.{key}", 0, **where)
    if "level" in table and not (0 < _number(table["level"], "mixing.level", **where) < 1):
        raise SpecError(f"expected a level in (0, 1), got {table['level']!r}", field="mixing.level", **where)
    if method == "nested":
        for key in ("target_params", "target_steps"):
            if key not in table:
                raise SpecError("method 'nested' needs the scale to predict: target_params and target_steps",
                                field=f"mixing.{key}", **where)
            _number(table[key], f"mixing.{key}", positive=True, **where)
    if method != "laws" and sources:
        mixtures = [s for s in sources if s.kind == "mixture_runs"]
        need = ("steps", "params") if method == "nested" else ("steps",)
        for col in need:
            def has(src, col=col):
                mx = src.mixture
                return col in mx or (col == "params" and "(?P<params>" in str(mx.get("run_pattern", "")))
            if not any(has(src) for src in mixtures):
                raise SpecError(f"method {method!r} needs a mixture_runs source with a {col!r} column for every "
                                f"checkpoint (a long table: layout = \"long\", {col} = \"<column>\")",
                                field="mixing.method", **where)
    return dict(table)


def check_observational(table: Any, study: str, group_by: tuple[str, ...] = ()) -> dict[str, Any]:
    """Validate ``[observational]`` (Ruan et al. 2024; run by ``scaling.plan.observational``) and fill in
    its defaults. Every error names the field, e.g. ``field 'observational.n_components'``.

        [observational]
        benchmarks = ["mmlu", "arc_c", "hellaswag"]   # metrics forming the capability space (at least 2)
        target = "gsm8k"                # metric predicted, not one of the benchmarks
        cutoff = 2e22                   # FLOPs: models above are held out and predicted (default: none)
        n_components = 3                # principal components kept (default min(3, benchmarks))
        family = "family"               # group label naming a model's family (default: first of group_by)
        reference_family = "Pythia"     # efficiencies relative to it (default: most models fitted)
        min_family_models = 3           # fewer models below the cut-off: the family uses the shared slope
        floor = 0.0                     # the target's chance score; ceiling = 1.0 its maximum
        n_resamples = 200               # model resamples for intervals
        backtest_resamples = 200        # bootstrap refits of each compute-only baseline's backtest
        baselines = ["accuracy_sigmoid_flops", "power_law_flops"]   # on the same hold-out
        level = 0.95
        seed = 0
        models = [{ name = "Llama-2-13B", family = "Llama-2", flops = 1.56e23 }]   # forecasts
    """
    if not table:
        return {}
    where = {"study": study}
    f = "observational"
    _keys(table, _OBSERVATIONAL_KEYS, {"benchmarks", "target"}, field=f, **where)
    bench = table["benchmarks"]
    if not isinstance(bench, list) or len(bench) < 2 or not all(isinstance(b, str) and b for b in bench):
        raise SpecError(f"expected a list of at least two metric names, got {bench!r}", field=f"{f}.benchmarks",
                        **where)
    dup = sorted({b for b in bench if bench.count(b) > 1})
    if dup:
        raise SpecError(f"benchmarks must be unique; repeated: {dup}", field=f"{f}.benchmarks", **where)
    target = _str(table["target"], f"{f}.target", **where)
    if target in bench:
        raise SpecError(f"the target {target!r} is predicted from the benchmarks, so it cannot be one of them",
                        field=f"{f}.target", **where)
    out: dict[str, Any] = {"benchmarks": list(bench), "target": target}
    k = _integer(table.get("n_components", min(3, len(bench))), f"{f}.n_components", 1, **where)
    if k > len(bench):
        raise SpecError(f"expected at most {len(bench)} components (one per benchmark), got {k}",
                        field=f"{f}.n_components", **where)
    out["n_components"] = k
    out["cutoff"] = _number(table["cutoff"], f"{f}.cutoff", positive=True, **where) if "cutoff" in table else None
    if "family" in table:
        family = _str(table["family"], f"{f}.family", **where)
        if family not in group_by:
            raise SpecError(f"expected one of the study's group_by labels {list(group_by)}, got {family!r}",
                            field=f"{f}.family", **where)
    else:
        family = group_by[0] if group_by else None
    out["family"] = family
    out["reference_family"] = _str(table["reference_family"], f"{f}.reference_family", **where) \
        if "reference_family" in table else None
    out["min_family_models"] = _integer(table.get("min_family_models", 3), f"{f}.min_family_models", 2, **where)
    out["floor"] = _number(table.get("floor", 0.0), f"{f}.floor", **where)
    out["ceiling"] = _number(table.get("ceiling", 1.0), f"{f}.ceiling", **where)
    if not out["floor"] < out["ceiling"]:
        raise SpecError(f"expected floor < ceiling, got {out['floor']} and {out['ceiling']}", field=f"{f}.ceiling",
                        **where)
    out["n_resamples"] = _integer(table.get("n_resamples", 200), f"{f}.n_resamples", 0, **where)
    out["backtest_resamples"] = _integer(table.get("backtest_resamples", 200), f"{f}.backtest_resamples", 0,
                                         **where)
    baselines = table.get("baselines", list(OBSERVATIONAL_BASELINES))
    if not isinstance(baselines, list):
        raise SpecError(f"expected a list of laws, got {baselines!r}", field=f"{f}.baselines", **where)
    for i, b in enumerate(baselines):
        _choice(b, OBSERVATIONAL_BASELINES, f"{f}.baselines[{i}]", **where)
    out["baselines"] = list(dict.fromkeys(baselines))
    level = _number(table.get("level", 0.95), f"{f}.level", **where)
    if not 0 < level < 1:
        raise SpecError(f"expected a level in (0, 1), got {level}", field=f"{f}.level", **where)
    out["level"] = level
    out["seed"] = _integer(table.get("seed", 0), f"{f}.seed", 0, **where)
    models = table.get("models", [])
    if not isinstance(models, list):
        raise SpecError("expected a list of { name, family, flops } tables", field=f"{f}.models", **where)
    out["models"] = []
    for i, model in enumerate(models):
        mf = f"{f}.models[{i}]"
        _keys(model, _OBSERVATIONAL_MODEL_KEYS, _OBSERVATIONAL_MODEL_KEYS, field=mf, **where)
        out["models"].append({"name": _str(model["name"], f"{mf}.name", **where),
                              "family": _str(model["family"], f"{mf}.family", **where),
                              "flops": _number(model["flops"], f"{mf}.flops", positive=True, **where)})
    names = [m["name"] for m in out["models"]]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise SpecError(f"model names must be unique; repeated: {dup}", field=f"{f}.models", **where)
    return out


_COMPUTED_KEYS = {"mean_of", "weights", "expr", "last_mean_of", "k", "unit"}


def check_computed(table: Any, study: str) -> tuple[ComputedMetric, ...]:
    """Validate ``[computed.<name>]`` tables: exactly one of ``mean_of``/``weights``, ``expr``, ``last_mean_of``.

        [computed.mmlu_acc]                      # mean (or weighted mean) of several metrics
        weights = { "mmlu_stem/acc" = 0.215, "mmlu_humanities/acc" = 0.335 }
        [computed.error]                         # row-wise expression over metric names
        expr = '1 - "arc_easy/acc"'
        [computed.c4_last5]                      # mean of each run's last k evaluations
        last_mean_of = "c4_loss"
        k = 5
    """
    if not isinstance(table, dict):
        raise SpecError("expected a table of [computed.<name>] tables", study=study, field="computed")
    out = []
    for name, raw in table.items():
        f = f"computed.{name}"
        where = {"study": study}
        _keys(raw, _COMPUTED_KEYS, set(), field=f, **where)
        kinds = [k for k in ("mean_of", "weights", "expr", "last_mean_of") if k in raw]
        if not kinds or (len(kinds) > 1 and set(kinds) != {"mean_of", "weights"}):
            raise SpecError("expected one of mean_of (or weights), expr, last_mean_of", field=f, **where)
        unit = _choice(raw["unit"], UNITS, f"{f}.unit", **where) if "unit" in raw else None
        if "k" in raw and "last_mean_of" not in raw:
            raise SpecError("k is only used with last_mean_of", field=f"{f}.k", **where)
        if "expr" in raw:
            expr = parse_column_expression(raw["expr"], field=f"{f}.expr", **where)
            out.append(ComputedMetric(name, "expr", inputs=tuple(sorted(expr.columns)), expr=expr, unit=unit))
        elif "last_mean_of" in raw:
            k = raw.get("k", 5)
            if isinstance(k, bool) or not isinstance(k, int) or k < 1:
                raise SpecError(f"expected a positive integer, got {k!r}", field=f"{f}.k", **where)
            out.append(ComputedMetric(name, "last_mean", inputs=(_str(raw["last_mean_of"], f"{f}.last_mean_of",
                                                                         **where),), k=k, unit=unit))
        else:
            weights = raw.get("weights")
            if weights is not None:
                if not isinstance(weights, dict) or not weights or not all(
                        isinstance(w, (int, float)) and not isinstance(w, bool) and w > 0 for w in weights.values()):
                    raise SpecError("expected a table of metric = positive weight", field=f"{f}.weights", **where)
                if "mean_of" in raw:
                    raise SpecError("give mean_of or weights (whose names are the inputs), not both",
                                    field=f"{f}.mean_of", **where)
                out.append(ComputedMetric(name, "mean", inputs=tuple(weights), unit=unit,
                                          weights=tuple(float(w) for w in weights.values())))
                continue
            inputs = raw["mean_of"]
            inputs = [inputs] if isinstance(inputs, str) else inputs
            if not isinstance(inputs, list) or not inputs or not all(isinstance(i, str) and i for i in inputs):
                raise SpecError("expected a metric name, a glob pattern or a list of them", field=f"{f}.mean_of",
                                **where)
            out.append(ComputedMetric(name, "mean", inputs=tuple(inputs), unit=unit))
    return tuple(out)


def _simulate_out(out: Any, base_dir: Path, study: str) -> None:
    """The simulator writes only inside the studies folder (the study file's own folder)."""
    out = _str(out, "study.simulate.out", study=study)
    if "\0" in out or any(ord(c) < 32 for c in out):
        raise SpecError("control characters are not allowed in a path", study=study, field="study.simulate.out")
    target = Path(os.path.realpath(base_dir / os.path.expanduser(out)))
    if not target.is_relative_to(Path(os.path.realpath(base_dir))):
        raise SpecError(f"the simulator may only write inside the studies folder, and {out!r} leaves it; "
                        "give a path below the study file's folder (for example 'data/example')",
                        study=study, field="study.simulate.out")


def discover_studies(folder: str | Path) -> list[Path]:
    """Study files in a folder: every ``*.toml`` not starting with '_' or '.'."""
    folder = Path(folder)
    return sorted(p for p in folder.glob("*.toml") if not p.name.startswith(("_", ".")))
