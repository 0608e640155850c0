"""A JSON Schema of the study file format, generated from the key sets the loader validates against.

The loader (`scaling.spec`, and `scaling.plan.fits` / `forecasts` / `mixing` for their tables) accepts
exactly the keys in its key sets; this module walks those same sets, so the schema cannot list a key the
loader rejects or miss one it accepts. Types come from `TYPES`; a key without an entry there is still
listed, with no type constraint. Editors that read JSON Schema for TOML (Taplo, Even Better TOML)
complete and check study files with it:

    #:schema ./study.schema.json          (first line of a study file)
    python -m scaling.study_schema > studies/study.schema.json
"""

from __future__ import annotations

import json
from typing import Any

from scaling import spec

S: dict = {"type": "string"}
N: dict = {"type": "number"}
I: dict = {"type": "integer"}
B: dict = {"type": "boolean"}
STRS: dict = {"type": "array", "items": S}
NUMS: dict = {"type": "array", "items": N}
STR_OR_STRS: dict = {"anyOf": [S, STRS]}
COL_OR_NUM: dict = {"anyOf": [S, N]}
TABLE: dict = {"type": "object"}


def _enum(values) -> dict:
    return {"enum": list(values)}


def _metadata() -> dict:
    kinds = {float: N, int: I, str: S, bool: B}
    props = {k: kinds[t] for k, t in spec.RUN_METADATA.items()}
    props["labels"] = {"type": "object", "additionalProperties": {"type": ["string", "number", "boolean"]}}
    return {"type": "object", "properties": props, "additionalProperties": False}


def _types() -> dict[str, dict[str, Any]]:
    metadata = _metadata()
    return {
        "top": {"study": {"$ref": "#/$defs/study"}, "sources": {"type": "array", "minItems": 1,
                                                                "items": {"$ref": "#/$defs/source"}},
                "fits": {"type": "array", "items": {"$ref": "#/$defs/fit"}},
                "forecasts": {"$ref": "#/$defs/forecasts"}, "mixing": {"$ref": "#/$defs/mixing"},
                "computed": {"type": "object", "additionalProperties": {"$ref": "#/$defs/computed"}},
                "crossovers": {"$ref": "#/$defs/crossovers"}, "observational": {"$ref": "#/$defs/observational"}},
        "study": {"name": {"type": "string", "pattern": f"^{spec.NAME_PATTERN.pattern}$",
                           "maxLength": spec.NAME_MAX_LENGTH}, "description": S,
                  "flops_convention": _enum(spec.FLOPS_CONVENTIONS), "group_by": STRS,
                  "simulate": {"type": "object", "properties": {"seed": I, "out": S}, "required": ["out"],
                               "additionalProperties": False},
                  "checks": {"type": "object", "properties": {k: N for k in spec.CHECK_DEFAULTS},
                             "additionalProperties": False}},
        "source": {"name": S, "kind": _enum(spec.KINDS), "location": S, "format": _enum(spec.FORMATS),
                   "options": TABLE, "layout": _enum(("wide", "long")), "run": S,
                   "columns": {"type": "object", "additionalProperties": STR_OR_STRS},
                   "metrics": {"type": "object", "additionalProperties": {"anyOf": [S, {
                       "type": "object", "properties": {"column": S, "unit": _enum(spec.UNITS)},
                       "required": ["column"], "additionalProperties": False}]}},
                   "metric_columns": STRS, "unit": _enum(spec.UNITS),
                   "units": {"type": "object", "additionalProperties": _enum(spec.UNITS)},
                   "filter": S, "final": _enum(("last", "all")), "on_error": _enum(("fail", "quarantine")),
                   "metadata": S, "metadata_columns": {"type": "object", "additionalProperties": S},
                   "defaults": metadata, "runs": {"type": "object", "additionalProperties": metadata},
                   "mixture": {"$ref": "#/$defs/mixture"},
                   "extract": {"type": "array", "items": {"type": "object", "properties": {"column": S, "pattern": S},
                                                          "required": ["column", "pattern"],
                                                          "additionalProperties": False}},
                   "labels": {"type": "object", "additionalProperties": S},
                   "scale": {"type": "object", "propertyNames": _enum(spec.SCALABLE),
                             "additionalProperties": {"type": "number", "exclusiveMinimum": 0}}},
        "mixture": {"weights": S, "losses": S, "test_weights": S, "test_losses": S, "join": S,
                    "weight_columns": STRS, "loss_columns": STRS, "domain_pattern": S, "loss_domain_pattern": S,
                    "params": COL_OR_NUM, "tokens": COL_OR_NUM, "steps": COL_OR_NUM, "test_params": N,
                    "test_tokens": N, "test_steps": N, "extra_tests": {"type": "array", "items": TABLE},
                    "layout": _enum(("wide", "long")), "run": S, "domain": S, "loss": S, "run_pattern": S,
                    "weight_domains": STRS, "weight_separator": S, "split": S},
        "computed": {"mean_of": STR_OR_STRS, "weights": {"type": "object", "additionalProperties": N},
                     "expr": S, "last_mean_of": S, "k": {"type": "integer", "minimum": 1},
                     "unit": _enum(spec.UNITS)},
        "fit": {"law": S, "target": S, "points": _enum(("final", "all")), "x_metric": S, "by_run": B,
                "objective": _enum(("huber", "least_squares", "asymmetric")), "delta": N, "space": S,
                "n_resamples": I, "backtest_resamples": I, "holdout_fraction": N, "min_tokens": N, "filter": S,
                "fixed": {"type": "object", "additionalProperties": N},
                "bounds": {"type": "object", "additionalProperties": NUMS}, "seed": I,
                "holdout": {"anyOf": [S, STRS]}, "rollout_resamples": I,
                "tie": {"type": "object", "additionalProperties": S},
                "scale": {"type": "object", "additionalProperties": {"type": "number", "exclusiveMinimum": 0}},
                # approaches 1 and 2 (law = "isoflop" / "envelope", scaling.plan.isoflop)
                "budgets": {"anyOf": [_enum(("auto", "data", "grid")), NUMS]}, "n_budgets": I, "tolerance": N,
                "min_runs": I, "n_buckets": I, "level": N,
                "seed_noise": {"anyOf": [{"type": "number", "minimum": 0, "exclusiveMaximum": 1},
                                         _enum(("replicates",))]}},
        "crossovers": {"budgets": NUMS, "max_flops": N, "n_grid": I, "level": N, "max_draws": I},
        "observational": {"benchmarks": {**STRS, "minItems": 2}, "target": S, "cutoff": N, "n_components": I,
                          "family": S, "reference_family": S, "min_family_models": I, "floor": N, "ceiling": N,
                          "n_resamples": I, "backtest_resamples": I,
                          "baselines": {"type": "array", "items": _enum(spec.OBSERVATIONAL_BASELINES)},
                          "level": N, "seed": I,
                          "models": {"type": "array", "items": {"$ref": "#/$defs/observational_model"}}},
        "observational_model": {"name": S, "family": S, "flops": N},
        "forecasts": {"budgets": NUMS, "n_budgets": I, "factor": N, "unique_tokens": N, "fixed_size": NUMS,
                      "targets": {"type": "array", "items": {"$ref": "#/$defs/target"}},
                      "downstream": {"type": "array", "items": {"$ref": "#/$defs/downstream"}}, "level": N,
                      "n_resamples": I},
        "target": {"name": S, "params": N, "tokens": N, "tokens_per_param": N, "unique_tokens": N, "actual_run": S, "actual": N,
                   "n_layer": I, "seq_len": I, "d_model": I},
        "downstream": {"task_loss": S, "accuracy": S, "floor": N, "ceiling": N, "min_tokens_fraction": N,
                       "n_resamples": I, "filter": S},
        "mixing": {"method": _enum(spec.MIXING_METHODS), "law": S, "target_params": N, "target_steps": N,
                   "level": N, "laws": STRS, "targets": STRS, "n_resamples": I, "seed": I, "objective_weights": TABLE,
                   "lower": {"anyOf": [N, TABLE]}, "upper": {"anyOf": [N, TABLE]}, "unique_tokens": TABLE,
                   "planned_tokens": N, "max_epochs": N, "baseline": {"anyOf": [S, TABLE]}},
    }


def key_sets() -> dict[str, tuple[set[str], set[str]]]:
    """Per table of the format: (keys the loader accepts, keys it requires) — the loader's own sets."""
    return {
        "top": (spec._TOP_KEYS, {"sources"}), "study": (spec._STUDY_KEYS, set()),
        "source": (spec._SOURCE_KEYS, {"name", "kind"}), "mixture": (spec._MIXTURE_KEYS, set()),
        "computed": (spec._COMPUTED_KEYS, set()), "fit": (spec.FIT_KEYS | spec.ISOFLOP_KEYS, {"law", "target"}),
        "forecasts": (spec.FORECAST_KEYS, set()), "target": (spec.TARGET_KEYS, {"name", "params"}),
        "downstream": (spec.DOWNSTREAM_KEYS, {"task_loss", "accuracy"}), "mixing": (spec.MIXING_KEYS, set()),
        "crossovers": (spec.CROSSOVER_KEYS, set()),
        "observational": (spec._OBSERVATIONAL_KEYS, {"benchmarks", "target"}),
        "observational_model": (spec._OBSERVATIONAL_MODEL_KEYS, spec._OBSERVATIONAL_MODEL_KEYS),
    }


def study_schema() -> dict[str, Any]:
    types = _types()
    defs = {}
    for name, (keys, required) in key_sets().items():
        props = {k: types.get(name, {}).get(k, {}) for k in sorted(keys)}
        defs[name] = {"type": "object", "properties": props, "additionalProperties": False}
        if required:
            defs[name]["required"] = sorted(required)
    top = defs.pop("top")
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "title": "scaling-studies study file",
            "description": "One TOML study file (see studies/README.md).", **top, "$defs": defs}


def schema_text() -> str:
    return json.dumps(study_schema(), indent=1, sort_keys=True) + "\n"


if __name__ == "__main__":
    print(schema_text(), end="")


def schema_errors(document: dict, *, shapes_only: bool = False) -> list[tuple[list, str]]:
    """(path, message) for each place `document` breaks the schema, outermost first; `shapes_only` keeps
    the container errors (a number where a table or a list is expected), which the loader's own checks
    assume away."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(study_schema())
    errors = sorted(validator.iter_errors(document), key=lambda e: (len(e.absolute_path), list(map(str, e.path))))
    if shapes_only:
        errors = [e for e in errors if e.validator == "type" and e.validator_value in ("object", "array")]
    return [(list(e.absolute_path), e.message) for e in errors]
