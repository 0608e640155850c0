"""Read a RegMix-style sweep: a mixture CSV and a loss CSV joined on ``index``.

Mixture columns are train domains (``train_<domain>``), loss columns are validation
losses per target domain (``metric/<domain>_val_loss``), one row per proxy run
(Liu et al. 2024, RegMix).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from ..errors import SourceError


@dataclass(frozen=True)
class MixtureRuns:
    """Runs of a mixture sweep: ids, weights (runs x domains), losses (runs x targets)."""

    run_ids: tuple[str, ...]
    domains: tuple[str, ...]
    targets: tuple[str, ...]
    weights: np.ndarray
    losses: np.ndarray


def read_mixture_runs(mixture_csv: str | Path, loss_csv: str | Path, key: str = "index") -> MixtureRuns:
    """Join the two CSVs on ``key``; every run must appear in both."""
    frames = []
    for path in (mixture_csv, loss_csv):
        try:
            frame = pl.read_csv(path)
        except (OSError, pl.exceptions.PolarsError) as err:
            raise SourceError(f"cannot read CSV: {err}", file=str(path)) from None
        if key not in frame.columns:
            raise SourceError(f"expected a join column {key!r}, found {frame.columns}", file=str(path))
        frames.append(frame)
    mix, loss = frames
    missing = mix.join(loss, on=key, how="anti")
    if missing.height:
        raise SourceError(f"run {missing[key][0]!r} has a mixture but no losses", file=str(loss_csv), column=key)
    joined = mix.join(loss, on=key, how="inner").sort(key)
    domains = [c for c in mix.columns if c != key]
    targets = [c for c in loss.columns if c != key]
    for path, cols in ((mixture_csv, domains), (loss_csv, targets)):
        for c in cols:
            if not joined[c].dtype.is_numeric():
                raise SourceError(f"expected numbers, got {joined[c].dtype}", file=str(path), column=c)
    return MixtureRuns(
        run_ids=tuple(str(v) for v in joined[key].to_list()),
        domains=tuple(domains),
        targets=tuple(targets),
        weights=joined.select(domains).to_numpy().astype(float),
        losses=joined.select(targets).to_numpy().astype(float),
    )
