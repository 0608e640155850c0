"""Sanity checks on forecasts: a number can come out of a good backtest and still be impossible.

Each forecast row gets ``warnings`` (comma-separated flags, defined in ``scaling.flags.FLAGS``):

- ``allocation_outside_fitted:tokens_per_param``: a compute-optimal allocation whose D/N lies more
  than ``TPP_FACTOR`` (3x) outside the range of D/N the law was fitted on: the law's shape there
  is an extrapolation in a direction the backtests never tested (e.g. 0.56 tokens per parameter
  from a ladder trained at 20-200);
- ``below_irreducible``: a predicted loss under the lower end of the interval of the law's
  irreducible term E (the law cannot reach it; its interval can, once calibrated);
- ``outside_metric_range``: a prediction the metric cannot take (an accuracy outside [0, 1], a
  negative loss in nats or bits per byte, i.e. a perplexity below 1);
- ``law_not_for_metric``: a law applied to a metric of a kind it is not meant for (``Law.predicts``: a
  loss law on an accuracy, an accuracy sigmoid on a loss).

A forecast from an accuracy law (a two-step downstream forecast's sigmoid, or ``accuracy_sigmoid_flops``)
also carries ``sigmoid_inverted`` when its sigmoid has a floor not below its ceiling or predicts
outside [0, 1] on the fitted data. ``DEMOTING`` flags (the last two, and
``sigmoid_inverted``) make a forecast unusable: such rows are never ``recommended``.
"""

from __future__ import annotations

from typing import Iterable, Mapping

import numpy as np

from scaling.laws.registry import ACCURACY_LAWS, law_predicts  # noqa: F401  (re-exported)
from scaling.spec import LOSS_UNITS

TPP_FACTOR = 3.0
DEMOTING = ("outside_metric_range", "law_not_for_metric", "sigmoid_inverted")


def metric_kind(unit: str | None) -> str | None:
    """'loss' for loss-like units (fitted in nats, or bits per byte), 'accuracy', or None (unknown)."""
    if unit in LOSS_UNITS:
        return "loss"
    if unit == "accuracy":
        return "accuracy"
    return None


def law_metric_flags(law: str, unit: str | None) -> list[str]:
    """``law_not_for_metric`` when ``law`` is applied to a metric of the wrong kind (``Law.predicts``;
    a two-step ``step1+step2`` forecast is its last law's kind)."""
    kind = metric_kind(unit)
    wants = law_predicts(law.split("+")[-1])
    if kind is None or wants is None:
        return []
    return [] if kind == wants else ["law_not_for_metric"]


def row_flags(row: Mapping, *, unit: str | None, fitted_tokens_per_param: tuple[float, float] | None = None,
              irreducible: tuple[float, float] | None = None) -> list[str]:
    """The sanity flags of one forecast row (see the module docstring).

    unit: the target metric's unit; fitted_tokens_per_param: (min, max) D/N of the fitted runs;
    irreducible: (estimate, ci_low) of the law's irreducible term, in the fit's units."""
    flags = law_metric_flags(str(row.get("law")), unit)
    tpp = row.get("tokens_per_param")
    if row.get("kind") == "compute_optimal" and tpp is not None and fitted_tokens_per_param:
        lo, hi = fitted_tokens_per_param
        if np.isfinite(tpp) and (tpp < lo / TPP_FACTOR or tpp > hi * TPP_FACTOR):
            flags.append("allocation_outside_fitted:tokens_per_param")
    pred = row.get("predicted")
    if pred is not None and np.isfinite(pred):
        kind = metric_kind(unit)
        if (kind == "accuracy" and not 0.0 <= pred <= 1.0) or (kind == "loss" and pred < 0.0):
            flags.append("outside_metric_range")
        if irreducible is not None and irreducible[1] is not None and np.isfinite(irreducible[1]) \
                and kind != "accuracy" and pred < irreducible[1]:
            flags.append("below_irreducible")
    return flags


def explain(flag: str, row: Mapping, *, unit: str | None, fitted_tokens_per_param=None) -> str:
    """A sentence saying why ``flag`` was raised on ``row``."""
    name = flag.split(":", 1)[0]
    if name == "allocation_outside_fitted" and fitted_tokens_per_param:
        lo, hi = fitted_tokens_per_param
        return (f"D/N = {row['tokens_per_param']:.3g} tokens per parameter, far outside the fitted "
                f"{lo:.3g}-{hi:.3g}")
    if name == "outside_metric_range":
        return f"predicted {row['predicted']:.4g} is outside the possible range of a {unit} metric"
    if name == "law_not_for_metric":
        return f"law {row['law']} is not meant for a metric in {unit}"
    if name == "below_irreducible":
        return f"predicted {row['predicted']:.4g} is below the law's irreducible term"
    return flag


def annotate(rows: Iterable[dict], *, unit: str | None, fitted_tokens_per_param=None,
             irreducible=None) -> list[str]:
    """Set each row's ``warnings`` (comma-separated flags, merged with any already there) and return
    one message per distinct flag saying why."""
    messages = []
    for r in rows:
        flags = row_flags(r, unit=unit, fitted_tokens_per_param=fitted_tokens_per_param, irreducible=irreducible)
        if not flags:
            continue
        old = [f for f in (r.get("warnings") or "").split(",") if f]
        r["warnings"] = ",".join(old + [f for f in flags if f not in old])
        messages += [f"{r['law']} -> {r['target']} ({r['name']}): {f}: "
                     f"{explain(f, r, unit=unit, fitted_tokens_per_param=fitted_tokens_per_param)}" for f in flags]
    return messages


def demoted(row: Mapping) -> bool:
    """True when the row's warnings make the forecast unusable (never recommended)."""
    return any(f.split(":", 1)[0] in DEMOTING for f in (row.get("warnings") or "").split(",") if f)
