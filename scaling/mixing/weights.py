"""Check that mixture weights are proportions: non-negative rows summing to 1.

Published mixtures are rounded (RegMix rows sum to 0.996-1.003), so a row whose sum is
within ``tol`` of 1 is renormalized and flagged; a negative or missing weight, or a sum
far from 1, is an error naming the run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..errors import SourceError


@dataclass(frozen=True)
class WeightFlag:
    """A run whose weights were renormalized: its row, id and original sum."""

    row: int
    run: str
    total: float
    action: str = "renormalized"


def validate_weights(
    weights,
    run_ids: Sequence | None = None,
    *,
    tol: float = 0.01,
    domains: Sequence[str] | None = None,
    source: str | None = None,
    file: str | None = None,
) -> tuple[np.ndarray, tuple[WeightFlag, ...]]:
    """Return (weights renormalized to sum 1 per row, flags for the rows that changed).

    Raises ``SourceError`` naming the run (and the domain column) for a non-finite or
    negative weight, or a row whose sum differs from 1 by more than ``tol``.
    """
    w = np.array(weights, dtype=float, copy=True)
    if w.ndim != 2:
        raise SourceError(f"expected mixture weights as a 2-D table (runs x domains), got {w.ndim} dimension(s)",
                          source=source, file=file)
    n, d = w.shape
    ids = [str(i) for i in (run_ids if run_ids is not None else range(n))]
    if len(ids) != n:
        raise SourceError(f"expected {n} run ids, one per mixture row, got {len(ids)}", source=source, file=file)
    if domains is not None and len(domains) != d:
        raise SourceError(f"expected {d} domain names, one per weight column, got {len(domains)}",
                          source=source, file=file)

    def where(i: int, j: int | None = None) -> dict:
        col = None if j is None else (domains[j] if domains is not None else str(j))
        return dict(source=source, file=file, row=i, column=col)

    bad = ~np.isfinite(w)
    if bad.any():
        i, j = map(int, np.argwhere(bad)[0])
        raise SourceError(f"run {ids[i]!r}: expected a finite mixture weight, got {w[i, j]}", **where(i, j))
    neg = w < 0
    if neg.any():
        i, j = map(int, np.argwhere(neg)[0])
        raise SourceError(f"run {ids[i]!r}: expected a non-negative mixture weight, got {w[i, j]:.6g}", **where(i, j))

    totals = w.sum(axis=1)
    off = np.abs(totals - 1.0)
    far = off > tol
    if far.any():
        i = int(np.flatnonzero(far)[0])
        raise SourceError(
            f"run {ids[i]!r}: mixture weights sum to {totals[i]:.6g}, expected 1 within {tol:g}", **where(i)
        )
    changed = np.flatnonzero(off > 1e-12)
    w /= totals[:, None]
    flags = tuple(WeightFlag(row=int(i), run=ids[i], total=float(totals[i])) for i in changed)
    return w, flags
