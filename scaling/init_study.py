"""`scaling init DIR`: inspect a folder of logs or results and write a study file for it.

Files are grouped by format and column set (W&B history CSV exports, JSON lines, lm-eval-harness
JSON, Parquet and CSV tables); each group becomes one ``[[sources]]`` table. Common W&B and
lm-eval column names are recognized (``_step``, ``throughput/total_tokens``,
``optim/learning_rate_group0``, ``train/loss``, ``eval/*/CrossEntropyLoss``,
``eval/downstream/*`` accuracies, lm-eval's ``task``/``metric``/``value``/``stderr``); values the
files cannot give (model sizes, usually) are left as commented lines saying what to fill in. The
written file is checked with the study loader before it is returned.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from scaling.spec import load_study

STEP = ("_step", "step", "global_step", "trainer/global_step", "train/global_step", "iteration", "iter")
TOKENS = ("throughput/total_tokens", "tokens", "num_tokens", "train/tokens", "total_tokens", "tokens_seen",
          "consumed_tokens")
LR = ("optim/learning_rate_group0", "learning_rate", "lr", "train/learning_rate", "train/lr", "optim/lr")
BATCH_TOKENS = ("batch_size_in_tokens", "tokens_per_step", "batch_tokens")
PARAMS = ("params", "num_params", "n_params", "params_total", "parameters", "model_params", "params_active_precise",
          "non_embedding_params")
RUN = ("run", "run_name", "run_id", "model", "Model", "name", "model_name")
LOSS = ("train/loss", "loss", "train_loss", "val_loss", "eval/loss", "validation/loss", "train/CrossEntropyLoss",
        "final_loss", "lm loss", "train/ce_loss")
# wide metric columns recognized by pattern, with their unit
PATTERNS = {"eval/*/CrossEntropyLoss": "nats", "eval/*-validation/*": "nats", "eval/downstream_bpb/*": "bits_per_byte",
            "eval/downstream/*": "accuracy"}
# leaderboard-style columns with the unit in the name: "Model Size (B)", "Pretraining Data Size (T)", "FLOPs (1E21)"
_UNIT = re.compile(r"^(?P<what>.*?)\s*\((?P<unit>[KMBT]|1E\d+)\)\s*$", re.IGNORECASE)
_SCALE = {"K": 1e3, "M": 1e6, "B": 1e9, "T": 1e12}
FAMILY = ("family", "model family", "model_family")
_EXTENSIONS = {".csv": "csv", ".jsonl": "jsonl", ".parquet": "parquet", ".json": "json"}


@dataclass
class SourceDraft:
    files: list[Path]
    format: str
    columns: list[str]
    numeric: set[str] = field(default_factory=set)


def _columns(path: Path, fmt: str) -> tuple[str, list[str], set[str]]:
    """(format, columns, numeric columns) from a sample of the file."""
    if fmt == "csv":
        frame = pl.read_csv(path, n_rows=50, infer_schema_length=50)
    elif fmt == "jsonl":
        frame = pl.read_ndjson(path, n_rows=50, infer_schema_length=50)
    elif fmt == "parquet":
        frame = pl.read_parquet(path, n_rows=50)
    else:
        data = json.loads(path.read_text())
        if isinstance(data, dict) and isinstance(data.get("results"), dict):
            return "lm_eval", ["task", "metric", "value", "stderr", "num_fewshot"], {"value", "stderr"}
        return fmt, [], set()
    numeric = {c for c, t in frame.schema.items() if t.is_numeric() and not t == pl.Boolean}
    return fmt, frame.columns, numeric


def _is_wandb(columns: list[str]) -> bool:
    return "_step" in columns or any(c.startswith(("eval/", "throughput/", "optim/", "train/")) for c in columns)


def inspect_folder(folder: Path) -> list[SourceDraft]:
    """Readable files under `folder`, grouped into sources by folder, format and column set (W&B exports of
    one folder form one source even when some lack a column)."""
    groups: dict[tuple, SourceDraft] = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in _EXTENSIONS):
        if path.name.startswith((".", "_")):
            continue
        try:
            fmt, cols, numeric = _columns(path, _EXTENSIONS[path.suffix.lower()])
        except Exception:  # not a readable table: not a source
            continue
        if fmt == "json" or not cols:
            continue
        key = (fmt, path.parent, ("wandb",) if fmt == "csv" and _is_wandb(cols) else tuple(cols))
        draft = groups.setdefault(key, SourceDraft([], fmt, list(cols)))
        draft.files.append(path)
        draft.numeric |= numeric
        draft.columns += [c for c in cols if c not in draft.columns]
    return list(groups.values())


def _first(columns: list[str], names) -> str | None:
    lower = {c.lower(): c for c in columns}
    return next((lower[n.lower()] for n in names if n.lower() in lower), None)


def _q(text: str) -> str:
    return json.dumps(text)


def _location(draft: SourceDraft, out_dir: Path) -> str:
    folder = os.path.relpath(draft.files[0].parent, out_dir)
    if len(draft.files) == 1:
        return Path(folder, draft.files[0].name).as_posix()
    suffix = draft.files[0].suffix
    return Path(folder, f"*{suffix}").as_posix()


def _size_prefixes(stems: list[str]) -> list[str]:
    """'190M-1xC', '190M-2xC', '1B-5xC' -> ['190M-*', '1B-*'] (a size-like prefix), else []."""
    out = []
    for s in stems:
        m = re.match(r"^([0-9.]+[KMBT])[-_]", s, flags=re.IGNORECASE)
        if not m:
            return []
        if f"{m.group(1)}-*" not in out and f"{m.group(1)}_*" not in out:
            out.append(s[: m.end()] + "*")
    return out


def _looks_like_score(draft: SourceDraft, column: str) -> bool:
    """A column whose sampled values all lie in [0, 1] (an accuracy or score, not a loss)."""
    try:
        fmt, path = draft.format, draft.files[0]
        frame = (pl.read_parquet(path, columns=[column], n_rows=200) if fmt == "parquet" else
                 pl.read_ndjson(path, n_rows=200) if fmt == "jsonl" else pl.read_csv(path, n_rows=200))
        values = frame[column].cast(pl.Float64, strict=False).drop_nulls()
        return values.len() > 0 and bool(values.min() >= 0) and bool(values.max() <= 1)
    except Exception:
        return False


def _source(i: int, draft: SourceDraft, out_dir: Path) -> list[str]:
    cols = draft.columns
    step, tokens, lr = _first(cols, STEP), _first(cols, TOKENS), _first(cols, LR)
    batch, params = _first(cols, BATCH_TOKENS), _first(cols, PARAMS)
    name = re.sub(r"[^A-Za-z0-9_]+", "_", draft.files[0].parent.name or "data").strip("_") or "data"
    lines = ["[[sources]]", f"name = {_q(f'{name}_{i}' if i else name)}"]
    many = len(draft.files) > 1
    run_col = _first(cols, RUN)
    if draft.format == "lm_eval":
        lines += ['kind = "checkpoint_results"', f"location = {_q(_location(draft, out_dir))}", 'format = "lm_eval"',
                  "# the file name gives model and step, e.g. '(?P<model>.+)_step(?P<step>\\d+)\\.json':",
                  "options = { filename_pattern = '(?P<model>[^/]+)_step(?P<step>\\d+)\\.json' }",
                  'layout = "long"', 'run = "{model}"', 'unit = "other"',
                  "[sources.units]", '"*/acc" = "accuracy"', '"*/acc_norm" = "accuracy"', '"*/ppl" = "perplexity"',
                  "[sources.columns]", 'step = "step"', 'metric = ["task", "metric"]', 'value = "value"',
                  'stderr = "stderr"', "[sources.defaults]",
                  "# batch_tokens = 2097152    # FILL IN: tokens per step (tokens = step x batch_tokens)"]
        return lines
    kind = "training_logs" if step else "checkpoint_results"
    lines += [f'kind = "{kind}"', f"location = {_q(_location(draft, out_dir))}", f'format = "{draft.format}"']
    if many and not run_col:
        lines.append('run = "{file_stem}"')
    elif run_col:
        lines.append(f"run = {_q(run_col)}")
    else:
        lines.append('run = "{file_stem}"')
    if kind == "checkpoint_results":
        lines.append('final = "all"')
    patterns = [p for p in PATTERNS if any(fnmatch.fnmatchcase(c, p) for c in cols)]
    # one pattern per metric family, most specific first: CrossEntropyLoss columns under eval/
    patterns = [p for p in patterns if not (p == "eval/*-validation/*" and "eval/*/CrossEntropyLoss" in patterns)]
    loss = _first(cols, LOSS)
    if patterns:
        lines.append(f"metric_columns = [{', '.join(_q(p) for p in patterns)}]")
        units = {p: u for p, u in PATTERNS.items() if p in patterns and u != "nats"}
        if units:
            lines.append("[sources.units]")
            lines += [f"{_q(p)} = {_q(u)}" for p, u in units.items()]
    scale: dict[str, float] = {}
    flops_col = None
    for c in cols:  # sizes, data and compute given in billions, trillions, 1e21 FLOPs
        m = _UNIT.match(c)
        if not m:
            continue
        what, unit = m.group("what").lower(), m.group("unit").upper()
        factor = float("1" + unit[1:].replace("E", "e")) if unit.startswith("1E") else _SCALE[unit]
        canon = "flops" if "flop" in what else "tokens" if ("data" in what or "token" in what) else \
            "params" if ("size" in what or "param" in what) else None
        if canon == "params" and not params:
            params, scale["params"] = c, factor
        elif canon == "tokens" and not tokens:
            tokens, scale["tokens"] = c, factor
        elif canon == "flops":
            flops_col, scale["flops"] = c, factor
    family = _first(cols, FAMILY)
    if run_col is None:
        text = [c for c in cols if c not in draft.numeric and not c.startswith("_") or c == "__index_level_0__"]
        if len(text) == 1 and not many:
            run_col = text[0]
            lines[-1] = f"run = {_q(run_col)}   # CHECK: the run id column"
    if kind == "checkpoint_results" and (scale or family):
        lines.append('on_error = "quarantine"   # rows that cannot be placed (no size or data) go to `quarantine`')
    if family:
        lines.append(f"labels = {{ family = {_q(family)} }}")
    if scale:
        lines.append("scale = { " + ", ".join(f"{k} = {v:g}" for k, v in scale.items()) + " }")
    mapped = {"step": step, "tokens": tokens, "learning_rate": lr, "batch_tokens": batch, "params": params,
              "flops": flops_col}
    lines.append("[sources.columns]")
    lines += [f"{k} = {_q(v)}" for k, v in mapped.items() if v]
    if loss and not any(fnmatch.fnmatchcase(loss, p) for p in patterns):
        lines += ["[sources.metrics]", f"loss = {_q(loss)}"]
    elif not patterns:
        numeric = [c for c in cols if c in draft.numeric and c not in mapped.values() and c != run_col
                   and not c.startswith("_") and c != family]
        if not numeric:
            lines += ["[sources.metrics]", "# FILL IN: metric name = column"]
        else:  # every numeric column is a metric; check their units (default nats; accuracies: `unit`)
            lines.insert(lines.index("[sources.columns]"), "# CHECK: every numeric column is read as a metric, "
                         "in nats unless `unit`/`units` say otherwise")
            lines.insert(lines.index("[sources.columns]"), "metric_columns = [" + ", ".join(_q(c) for c in numeric)
                         + "]")
            if all(_looks_like_score(draft, c) for c in numeric):
                lines.insert(lines.index("[sources.columns]"), 'unit = "accuracy"   # CHECK: values in 0-1')
    if not params:
        prefixes = _size_prefixes([f.stem for f in draft.files]) if many else []
        if prefixes:
            lines.append("# FILL IN: parameters per model size (needed for laws in N and D)")
            for p in prefixes:
                lines += [f"# [sources.runs.{_q(p)}]", "# params = 0"]
        else:
            lines += ["[sources.defaults]", "# params = 0     # FILL IN: model size in parameters "
                      "(needed for laws in N and D)"]
    if step and not tokens and not batch:
        lines.append("# FILL IN: batch_tokens (tokens per step) in [sources.defaults], so tokens = step x batch_tokens")
    return lines


def init_study(folder: str | Path, out: str | Path | None = None) -> Path:
    """Write a study file for the data in `folder` (default ``<folder>/study.toml``) and return its path."""
    folder = Path(folder).resolve()
    out = Path(out).resolve() if out else folder / "study.toml"
    drafts = inspect_folder(folder)
    if not drafts:
        from scaling.errors import SourceError

        raise SourceError("no CSV, JSON lines, Parquet or lm-eval JSON files found", file=str(folder))
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", out.stem)
    text = [f"# Study over {folder.name}/, written by `scaling init`: check the FILL IN comments.", "",
            "[study]", f"name = {_q(name)}", f"description = {_q(f'data in {folder.name}')}", ""]
    for i, draft in enumerate(drafts):
        text += _source(i, draft, out.parent) + [""]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(text))
    load_study(out)  # the written file is valid as it stands
    return out
