"""Fit mixing laws for every target domain of a proxy-run sweep, with bootstrap intervals
and held-out scores.

Each (law, target) pair is fitted on the training runs, refitted on ``n_resamples``
bootstrap resamples of those runs (the same seeded resamples for every pair, so
intervals of sums over targets are joint), and scored on held-out mixtures: the test
set when given, else a seeded split of the runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np

from ..errors import FitError, SourceError
from .domains import match_own_domains
from .evaluate import HeldoutScore, score_heldout, seeded_split
from ..fit.bootstrap import percentile_interval, resample_counts
from .fit import MixingLawFit, bootstrap_mixing_law, fit_mixing_law
from .laws import MixingLaw, get_mixing_law
from .weights import WeightFlag, validate_weights


@dataclass(frozen=True)
class TargetFit:
    """One law fitted to one target domain, with its bootstrap parameter draws."""

    law: MixingLaw
    target: str
    own: int | None
    fit: MixingLawFit
    draws: np.ndarray
    n_failed: int

    def predict(self, weights: np.ndarray) -> np.ndarray:
        return self.law.predict(self.fit.params, weights, self.own)

    def predict_draws(self, weights: np.ndarray) -> np.ndarray:
        """Predictions under every bootstrap draw, shape (n_resamples, n_mixtures); NaN for failed refits."""
        return self.law.predict(self.draws, weights, self.own)

    def gradient(self, weights: np.ndarray) -> np.ndarray:
        return self.law.gradient(self.fit.params, weights, self.own)


@dataclass(frozen=True)
class LossPrediction:
    """Predicted losses (n_mixtures, n_targets) with percentile bootstrap intervals."""

    law: str
    targets: tuple[str, ...]
    loss: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    draws: np.ndarray  # (n_resamples, n_mixtures, n_targets)
    confidence: float


@dataclass(frozen=True)
class MixingLawRow:
    """One row of the ``mixing_laws`` table."""

    target_domain: str
    law: str
    parameter: str
    value: float
    ci_low: float
    ci_high: float
    heldout_spearman: float
    heldout_mae: float
    n_train: int
    n_test: int


@dataclass
class MixingStudyResult:
    """Fitted laws per target domain, held-out scores, and the data used."""

    domains: tuple[str, ...]
    targets: tuple[str, ...]
    laws: tuple[str, ...]
    fits: dict[tuple[str, str], TargetFit]
    heldout: dict[tuple[str, str], HeldoutScore]
    n_train: int
    n_test: int
    heldout_source: str
    n_resamples: int
    seed: int
    confidence: float
    weight_flags: tuple[WeightFlag, ...] = field(default=())
    train_weights: np.ndarray | None = None

    def law_rows(self) -> list[MixingLawRow]:
        rows = []
        for (law, target), tf in self.fits.items():
            lo, hi = percentile_interval(tf.draws, self.confidence)
            score = self.heldout.get((law, target))
            for k, name in enumerate(tf.fit.param_names):
                rows.append(MixingLawRow(
                    target, law, name, float(tf.fit.params[k]), float(lo[k]), float(hi[k]),
                    score.spearman if score else float("nan"), score.mae if score else float("nan"),
                    self.n_train, self.n_test,
                ))
        return rows

    def best_law(self, targets: Sequence[str] | None = None) -> str:
        """The law with the highest mean held-out Spearman over ``targets`` (default all)."""
        targets = list(targets or self.targets)
        scores = {law: np.mean([self.heldout[(law, t)].spearman for t in targets]) for law in self.laws}
        return max(scores, key=lambda law: (np.nan_to_num(scores[law], nan=-np.inf)))

    def predict(self, weights, *, law: str | None = None, targets: Sequence[str] | None = None) -> LossPrediction:
        """Predicted losses of any mixtures (rows on the simplex) with bootstrap intervals."""
        law = law or self.best_law()
        targets = tuple(targets or self.targets)
        w = np.atleast_2d(np.asarray(weights, dtype=float))
        if w.shape[1] != len(self.domains):
            raise ValueError(f"expected mixtures over {len(self.domains)} domains, got {w.shape[1]} columns")
        loss = np.column_stack([self.fits[(law, t)].predict(w) for t in targets])
        draws = np.stack([self.fits[(law, t)].predict_draws(w) for t in targets], axis=-1)
        lo, hi = percentile_interval(draws, self.confidence)
        return LossPrediction(law, targets, loss, lo, hi, draws, self.confidence)


def _check_losses(losses, n_runs: int, targets: Sequence[str], run_ids, what: str) -> np.ndarray:
    y = np.asarray(losses, dtype=float)
    if y.ndim == 1:
        y = y[:, None]
    if y.shape != (n_runs, len(targets)):
        raise SourceError(f"expected {what} losses of shape ({n_runs}, {len(targets)}) (runs x targets), got {y.shape}")
    bad = ~np.isfinite(y)
    if bad.any():
        i, j = map(int, np.argwhere(bad)[0])
        run = run_ids[i] if run_ids is not None else i
        raise SourceError(f"run {str(run)!r}: expected a finite loss, got {y[i, j]}", row=i, column=targets[j])
    return y


def fit_mixing_study(
    train_weights,
    train_losses,
    domains: Sequence[str],
    targets: Sequence[str],
    *,
    test_weights=None,
    test_losses=None,
    laws: Sequence[str | MixingLaw] = ("linear", "ye_exp"),
    n_resamples: int = 200,
    seed: int = 0,
    confidence: float = 0.95,
    own_domains: Mapping[str, str] | None = None,
    train_run_ids: Sequence | None = None,
    test_run_ids: Sequence | None = None,
    test_fraction: float = 0.25,
    weight_tol: float = 0.01,
    ridge: float | None = None,
) -> MixingStudyResult:
    """Fit each law to each target domain; bootstrap intervals; held-out Spearman and MAE.

    ``train_weights`` is (n_runs, n_domains) on the simplex (rounded rows are renormalized
    and flagged, see ``validate_weights``); ``train_losses`` is (n_runs, n_targets).
    Without a test set, a seeded ``test_fraction`` of the runs is held out. ``ridge``
    overrides each law's default penalty weight (``MixingLaw.ridge``).
    """
    domains, targets = list(domains), list(targets)
    w, flags = validate_weights(train_weights, train_run_ids, tol=weight_tol, domains=domains)
    y = _check_losses(train_losses, len(w), targets, train_run_ids, "train")
    if (test_weights is None) != (test_losses is None):
        raise ValueError("give both test_weights and test_losses, or neither")
    if test_weights is not None:
        wt, tflags = validate_weights(test_weights, test_run_ids, tol=weight_tol, domains=domains)
        yt = _check_losses(test_losses, len(wt), targets, test_run_ids, "test")
        flags, source = flags + tflags, "test set"
    else:
        tr, te = seeded_split(len(w), test_fraction, seed)
        w, wt, y, yt = w[tr], w[te], y[tr], y[te]
        source = f"seeded split ({test_fraction:g})"

    law_objs = [get_mixing_law(law) for law in laws]
    own = match_own_domains(domains, targets, own_domains)
    counts = resample_counts(len(w), n_resamples, seed)
    fits: dict[tuple[str, str], TargetFit] = {}
    heldout: dict[tuple[str, str], HeldoutScore] = {}
    for law in law_objs:
        for k, target in enumerate(targets):
            if law.needs_own_domain and own[target] is None:
                raise FitError(f"law {law.name!r} needs the train domain matching target {target!r}; "
                               "none matched, give own_domains")
            o = own[target]
            fit = fit_mixing_law(law, w, y[:, k], domains, own=o, ridge=ridge)
            draws, failed = bootstrap_mixing_law(law, w, y[:, k], domains, fit, counts, own=o, ridge=ridge)
            tf = TargetFit(law, target, o, fit, draws, failed)
            fits[(law.name, target)] = tf
            heldout[(law.name, target)] = score_heldout(law.name, target, tf.predict(wt), yt[:, k])
    return MixingStudyResult(
        domains=tuple(domains), targets=tuple(targets), laws=tuple(l.name for l in law_objs), fits=fits,
        heldout=heldout, n_train=len(w), n_test=len(wt), heldout_source=source, n_resamples=n_resamples,
        seed=seed, confidence=confidence, weight_flags=flags, train_weights=w,
    )
