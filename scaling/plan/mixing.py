"""A study's mixing laws and proposed mixture: the ``[mixing]`` table of a study file.

    [mixing]
    laws = ["linear", "ye_exp", "ye_exp_log"]   # fitted per target domain; linear is the baseline
    targets = ["pile_cc", "github"]              # default: every loss domain
    n_resamples = 200                            # bootstrap over runs
    seed = 0
    objective_weights = { pile_cc = 1.0 }         # default: the mean over the targets
    lower = { github = 0.05 }                      # per-domain bounds (or one number for all)
    upper = 0.6
    unique_tokens = { github = 2e10, ... }        # token availability ...
    planned_tokens = 1e12                           # ... for a run of this many tokens
    max_epochs = 4                                  # ... repeating each domain at most this often
    baseline = "natural"                            # "natural", "uniform" or { domain = weight }

The law optimized is the one with the best mean held-out Spearman correlation over the targets.
Every held-out split (``test`` and each ``extra_tests`` scale) is scored for every law and target
(`mixing_scores`), and every held-out run's predicted and actual loss is kept (`mixture_predictions`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import polars as pl

from scaling.errors import SpecError
from scaling.mixing import fit_mixing_study, optimize_mixture
from scaling.mixing.evaluate import collapsed, heldout_metrics

_KEYS = {"laws", "targets", "n_resamples", "seed", "objective_weights", "lower", "upper", "unique_tokens",
         "planned_tokens", "max_epochs", "baseline"}
DEFAULT_LAWS = ("linear", "ye_exp", "ye_exp_log")


@dataclass
class StudyMixing:
    law_rows: list[dict] = field(default_factory=list)
    mixture_rows: list[dict] = field(default_factory=list)
    extra_scores: list[dict] = field(default_factory=list)
    score_rows: list[dict] = field(default_factory=list)  # `mixing_scores`: every law x target x held-out split
    prediction_rows: list[dict] = field(default_factory=list)  # `mixture_predictions`: every held-out run
    heldout: dict = field(default_factory=dict)  # domain -> (actual, predicted) of the best law on the test split
    heldout_by_split: dict = field(default_factory=dict)  # split -> the same, for every held-out split
    best_law: str | None = None
    messages: list[str] = field(default_factory=list)


def _matrix(mp: pl.DataFrame, split: str, kind: str, domains: list[str]) -> tuple[list[str], np.ndarray]:
    sub = mp.filter((pl.col("split") == split) & (pl.col("kind") == kind))
    wide = sub.pivot(on="domain", index="run", values="value").sort("run")
    return wide["run"].to_list(), wide.select(domains).to_numpy()


def mixing_study(study: str, spec: dict, mixture_points: pl.DataFrame) -> StudyMixing:
    for key in spec:
        if key not in _KEYS:
            raise SpecError(f"unknown key {key!r}; expected one of {sorted(_KEYS)}", study=study, field=f"mixing.{key}")
    out = StudyMixing()
    weights = mixture_points.filter(pl.col("kind") == "weight")
    losses = mixture_points.filter(pl.col("kind") == "loss")
    domains = weights["domain"].unique(maintain_order=True).to_list()
    all_targets = losses["domain"].unique(maintain_order=True).to_list()
    targets = list(spec.get("targets", all_targets))
    missing = [t for t in targets if t not in all_targets]
    if missing:
        raise SpecError(f"targets {missing} are not loss domains of the study ({all_targets})", study=study,
                        field="mixing.targets")
    runs, W = _matrix(mixture_points, "train", "weight", domains)
    runs_l, L = _matrix(mixture_points, "train", "loss", targets)
    assert runs == runs_l
    kw = {}
    splits = mixture_points["split"].unique().to_list()
    if "test" in splits:
        _, kw["test_weights"] = _matrix(mixture_points, "test", "weight", domains)
        _, kw["test_losses"] = _matrix(mixture_points, "test", "loss", targets)
    result = fit_mixing_study(W, L, domains, targets, laws=tuple(spec.get("laws", DEFAULT_LAWS)),
                              n_resamples=int(spec.get("n_resamples", 200)), seed=int(spec.get("seed", 0)),
                              train_run_ids=runs, **kw)
    flat = {(law, t): collapsed(result.fits[(law, t)].predict(W), L[:, k])
            for law in result.laws for k, t in enumerate(targets)}
    out.law_rows = [{**r.__dict__, "estimate": r.value,
                     "flags": "mixing_constant" if flat[(r.law, r.target_domain)] else ""} for r in result.law_rows()]
    for (law, t), bad in flat.items():
        if bad:
            out.messages.append(f"{law} -> {t}: mixing_constant: its predictions barely vary over the fitted "
                                f"mixtures (a near-constant law)")
    out.best_law = result.best_law()
    usable = [law for law in result.laws if not any(flat[(law, t)] for t in targets)]
    if out.best_law not in usable and usable:  # never optimize a mixture with a law that collapsed
        out.best_law = max(usable, key=lambda law: np.nan_to_num(
            np.mean([result.heldout[(law, t)].spearman for t in targets]), nan=-np.inf))
    if "test" in splits:
        pred = result.predict(kw["test_weights"], law=out.best_law)
        out.heldout = {t: (kw["test_losses"][:, k], pred.loss[:, k]) for k, t in enumerate(targets)}
    scale = mixture_points.group_by("split").agg(pl.col("params").max())
    scale = dict(zip(scale["split"].to_list(), scale["params"].to_list()))
    for split in [s for s in splits if s != "train"]:
        run_ids, Wx = _matrix(mixture_points, split, "weight", domains)
        runs_l, Lx = _matrix(mixture_points, split, "loss", targets)
        if run_ids != runs_l:
            raise SpecError(f"split {split!r}: weights and losses name different runs", study=study,
                            field="sources.mixture")
        for law in result.laws:
            pred = result.predict(Wx, law=law)
            if law == out.best_law:
                out.heldout_by_split[split] = {t: (Lx[:, k], pred.loss[:, k]) for k, t in enumerate(targets)}
            for k, t in enumerate(targets):
                m = heldout_metrics(pred.loss[:, k], Lx[:, k])
                out.score_rows.append({"split": split, "law": law, "target_domain": t, **m,
                                       "params": scale.get(split), "chosen": law == out.best_law})
                if split != "test":
                    out.extra_scores.append({"split": split, "law": law, "target_domain": t,
                                             "spearman": m["spearman"], "mae": m["mae"], "n": m["n"]})
                for i, run in enumerate(run_ids):
                    out.prediction_rows.append({
                        "split": split, "law": law, "target_domain": t, "run": str(run), "actual": float(Lx[i, k]),
                        "predicted": float(pred.loss[i, k]), "ci_low": float(pred.ci_low[i, k]),
                        "ci_high": float(pred.ci_high[i, k]), "error": float(pred.loss[i, k] - Lx[i, k])})
    if "test" not in splits:  # held out by a seeded split of the training runs: scores only
        for (law, t), sc in result.heldout.items():
            out.score_rows.append({"split": "seeded_split", "law": law, "target_domain": t, "n": sc.n_test,
                                   "spearman": sc.spearman, "mae": sc.mae, "params": scale.get("train"),
                                   "chosen": law == out.best_law})
    opt = {k: spec[k] for k in ("objective_weights", "lower", "upper", "planned_tokens", "max_epochs", "baseline")
           if k in spec}
    if "unique_tokens" in spec:
        u = spec["unique_tokens"]
        opt["unique_tokens"] = [float(u[d]) for d in domains] if isinstance(u, dict) else u
    proposal = optimize_mixture(result, law=out.best_law, seed=int(spec.get("seed", 0)), **opt)
    out.mixture_rows = [{**r.__dict__, "law": proposal.law} for r in proposal.rows()]
    out.messages.append(
        f"proposed mixture ({proposal.law}): objective {proposal.objective_value:.4f} "
        f"[{proposal.objective_ci[0]:.4f}, {proposal.objective_ci[1]:.4f}] vs baseline "
        f"{proposal.baseline_objective_value:.4f}; better in {proposal.improvement_probability:.0%} of draws")
    return out
