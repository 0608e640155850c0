"""lm-evaluation-harness result files: one row per (task, metric).

A result file has ``results: {task: {metric: value, metric_stderr: value, ...}}``, and
usually ``versions: {task: version}`` and ``config: {...}``. Columns:

- the named groups of option ``filename_pattern`` (Utf8), matched against the file name
  (``(?P<model>.+)_step(?P<step>\\d+)\\.json``); a pattern containing ``/`` is matched
  against the end of the label instead, so folders can be captured too
  (``(?P<shots>[^/]+)/[^/]+_step(?P<step>\\d+)\\.json``);
- ``task``, ``metric``, ``filter`` (newer harness versions write ``"acc,none"``: metric
  ``acc``, filter ``none``; null otherwise), ``value`` and ``stderr`` (from
  ``<metric>_stderr``; null when absent), all Float64;
- ``version`` (Utf8) from ``versions``; ``num_fewshot`` (Int64) from the task's ``n-shot``
  entry or ``config.num_fewshot``; every other scalar of ``config`` as ``config_<key>``
  (Utf8; non-strings as JSON text). A stderr of ``"N/A"`` is null.

A file name not matching the pattern, a missing ``results`` object, or a metric value that
is not a number raises `SourceError`. Text-valued entries such as ``alias`` are not metrics.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import polars as pl

from scaling.errors import SourceError, SpecError
from scaling.sources.options import check_options
from scaling.sources.result import ReadResult, with_provenance

OPTIONS = {"filename_pattern": str}
_FIXED = ("task", "metric", "filter", "value", "stderr", "version", "num_fewshot")
_TEXT_ENTRIES = {"alias", "name", "sample_len", "sample_count"}


def compile_filename_pattern(pattern: str) -> re.Pattern:
    try:
        compiled = re.compile(pattern)
    except re.error as exc:
        raise SpecError(f"option 'filename_pattern' is not a valid regex: {exc}", field="filename_pattern") from None
    for name in compiled.groupindex:
        if name in _FIXED or name.startswith("config_") or name.startswith("_"):
            problem = f"option 'filename_pattern': group name {name!r} is taken by a column"
            raise SpecError(problem, field="filename_pattern")
    return compiled


def read(path: Path, options: Mapping[str, Any] | None = None, label: str | None = None) -> ReadResult:
    opts = check_options("lm_eval", options, OPTIONS)
    path = Path(path)
    label = label or path.name
    groups = _filename_groups(label, opts.get("filename_pattern"))
    document = _load(path, label)
    results = document.get("results")
    if not isinstance(results, dict) or not results:
        raise SourceError("no 'results' object: not an lm-eval-harness result file", file=label)
    config = document.get("config") if isinstance(document.get("config"), dict) else {}
    versions = document.get("versions") if isinstance(document.get("versions"), dict) else {}
    n_shot = document.get("n-shot") if isinstance(document.get("n-shot"), dict) else {}
    rows = []
    for task, metrics in results.items():
        if not isinstance(metrics, dict):
            raise SourceError(f"results for task {task!r}: expected an object of metrics", file=label, field=task)
        shots = n_shot.get(task, config.get("num_fewshot"))
        version = versions.get(task)
        for key, value in metrics.items():
            name, _, filt = key.partition(",")
            if name.endswith("_stderr") or name in _TEXT_ENTRIES:
                continue
            stderr = metrics.get(f"{name}_stderr" + (f",{filt}" if filt else ""))
            rows.append(
                {
                    "task": task,
                    "metric": name,
                    "filter": filt or None,
                    "value": _number(value, label, task, key),
                    "stderr": None if stderr == "N/A" else _number(stderr, label, task, f"{name}_stderr"),
                    "version": None if version is None else str(version),
                    "num_fewshot": _int(shots, label),
                }
            )
    if not rows:
        raise SourceError("no metrics in 'results'", file=label)
    frame = pl.DataFrame(rows, schema=_SCHEMA, orient="row")
    extras = {f"config_{k}": _text(v) for k, v in config.items() if k != "num_fewshot"}
    frame = frame.with_columns(
        [pl.lit(v, dtype=pl.Utf8).alias(k) for k, v in groups.items()]
        + [pl.lit(v, dtype=pl.Utf8).alias(k) for k, v in extras.items()]
    )
    ordered = list(groups) + list(_SCHEMA) + list(extras)
    return ReadResult(with_provenance(frame.select(ordered), label))


_SCHEMA = {
    "task": pl.Utf8,
    "metric": pl.Utf8,
    "filter": pl.Utf8,
    "value": pl.Float64,
    "stderr": pl.Float64,
    "version": pl.Utf8,
    "num_fewshot": pl.Int64,
}


def _filename_groups(label: str, pattern: str | None) -> dict[str, str | None]:
    if pattern is None:
        return {}
    compiled = compile_filename_pattern(pattern)
    if "/" in pattern:
        match = re.search(rf"(?:^|/)(?:{pattern})$", Path(label).as_posix())
        subject = "path"
    else:
        match = compiled.fullmatch(Path(label).name)
        subject = "file name"
    if match is None:
        raise SourceError(f"{subject} does not match filename_pattern '{pattern}'", file=label)
    return match.groupdict()


def _load(path: Path, label: str) -> dict:
    try:
        document = json.loads(path.read_bytes())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SourceError(f"invalid JSON: {exc}", file=label) from None
    if not isinstance(document, dict):
        raise SourceError(f"expected a JSON object, got {type(document).__name__}", file=label)
    return document


def _number(value: Any, label: str, task: str, key: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SourceError(f"task {task!r}: expected a number, got {value!r}", file=label, field=key)
    return float(value)


def _int(value: Any, label: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise SourceError(f"expected an integer number of shots, got {value!r}", file=label, field="num_fewshot")
    return value


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"))
