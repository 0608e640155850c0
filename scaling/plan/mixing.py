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
``method = "nested"`` (Ye et al. 2024: a step law per run, a size law per mixture, the mixing law at
``target_params``, ``target_steps``; `plan_nested`) and ``method = "bimix"`` (Ge et al. 2024; `plan_bimix`)
read mixture x size x step experiments (a long mixture table); their parameters go to `mixing_laws`
(the nested pipeline's step and size laws too, with ``stage``, ``mixture`` and ``params``), held-out
runs at the target scale to `mixing_scores` and `mixture_predictions` under law ``nested`` / ``bimix``.
Every held-out split (``test`` and each ``extra_tests`` scale) is scored for every law and target
(`mixing_scores`), and every held-out run's predicted and actual loss is kept (`mixture_predictions`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import polars as pl

from scaling.errors import SpecError
from scaling.spec import MIXING_KEYS
from scaling.mixing import fit_mixing_study, optimize_mixture
from scaling.fit.bootstrap import percentile_interval
from scaling.mixing.evaluate import collapsed, heldout_metrics

_KEYS = MIXING_KEYS
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
    nested: dict = field(default_factory=dict)  # target -> NestedPrediction (method "nested")
    nested_heldout: dict = field(default_factory=dict)  # target -> (run weights, actual) at the target scale
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
    method = spec.get("method", "laws")
    if method == "nested":
        return plan_nested(study, spec, mixture_points)
    if method == "bimix":
        return plan_bimix(study, spec, mixture_points)
    out = StudyMixing()
    weights = mixture_points.filter(pl.col("kind") == "weight")
    losses = mixture_points.filter(pl.col("kind") == "loss")
    domains = weights["domain"].unique(maintain_order=True).to_list()
    targets = _targets(study, spec, losses)
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
    flat = {(law, t): collapsed(result.fits[(law, t)].predict(W), L[:, k],
                                n_params=len(result.fits[(law, t)].fit.params))
            for law in result.laws for k, t in enumerate(targets)}
    out.law_rows = [{**r.__dict__, "estimate": r.value,
                     "flags": "mixing_constant" if flat[(r.law, r.target_domain)] else ""} for r in result.law_rows()]
    _collapse_messages(out, flat)
    # a target every law collapses on does not follow the mixture (its losses are noise to every law):
    # it neither picks the law nor weighs in the proposal
    dead = [t for t in targets if all(flat[(law, t)] for law in result.laws)]
    live = [t for t in targets if t not in dead] or targets
    if dead:
        out.messages.append(f"targets {dead}: every mixing law collapsed (mixing_constant): left out of the choice "
                            f"of law and of the proposed mixture's objective")
    usable = [law for law in result.laws if not any(flat[(law, t)] for t in live)] or list(result.laws)
    # the law with the best mean held-out Spearman over the live targets, among those that did not collapse
    out.best_law = max(usable, key=lambda law: np.nan_to_num(
        np.mean([result.heldout[(law, t)].spearman for t in live]), nan=-np.inf))
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
    opt = _optimize_opts(spec, domains, targets, dead)
    if opt is None:
        out.messages.append("no mixture proposed: every target collapsed")
        return out
    proposal = optimize_mixture(result, law=out.best_law, seed=int(spec.get("seed", 0)), **opt)
    out.mixture_rows = [{**r.__dict__, "law": proposal.law} for r in proposal.rows()]
    out.messages.append(
        f"proposed mixture ({proposal.law}): objective {proposal.objective_value:.4f} "
        f"[{proposal.objective_ci[0]:.4f}, {proposal.objective_ci[1]:.4f}] vs baseline "
        f"{proposal.baseline_objective_value:.4f}; better in {proposal.improvement_probability:.0%} of draws")
    return out


def _collapse_messages(out: StudyMixing, flat: dict) -> None:
    for (law, t), bad in flat.items():
        if bad:
            out.messages.append(f"{law} -> {t}: mixing_constant: its predictions barely vary over the fitted "
                                f"mixtures (a near-constant law)")


def _optimize_opts(spec: dict, domains: list[str], targets: list[str] | None = None, dead=()) -> dict | None:
    """Keyword arguments of ``optimize_mixture`` from ``[mixing]``; the objective weight of every target in
    ``dead`` (collapsed targets) is 0 (the others keep theirs: by default the mean over them). None when
    no target is left."""
    opt = {k: spec[k] for k in ("objective_weights", "lower", "upper", "planned_tokens", "max_epochs", "baseline")
           if k in spec}
    if "unique_tokens" in spec:
        u = spec["unique_tokens"]
        opt["unique_tokens"] = [float(u[d]) for d in domains] if isinstance(u, dict) else u
    if dead:
        live = [t for t in targets if t not in dead]
        if not live:
            return None
        given = opt.get("objective_weights")
        if given is None:
            a = {t: 1.0 / len(live) for t in live}
        elif isinstance(given, dict):
            a = {t: float(given.get(t, 0.0)) for t in live}
        else:
            a = {t: float(v) for t, v in zip(targets, given) if t in live}
        opt["objective_weights"] = {**{t: 0.0 for t in dead}, **a}
        if not any(a.values()):
            return None
    return opt


def _checkpoints(study: str, mp: pl.DataFrame, need: tuple[str, ...]):
    """(domains, loss rows, run -> weights) of a mixture x size x step table; errors name the missing column."""
    weights = mp.filter(pl.col("kind") == "weight")
    losses = mp.filter(pl.col("kind") == "loss")
    for col in need:
        bad = losses.filter(pl.col(col).is_null())
        if bad.height:
            r = bad.row(0, named=True)
            raise SpecError(f"run {r['run']!r} (split {r['split']!r}) has a loss without {col}; every checkpoint "
                            f"needs it", study=study, source=r["source"], field=f"sources.mixture.{col}")
    domains = weights["domain"].unique(maintain_order=True).to_list()
    wide = weights.pivot(on="domain", index="run", values="value", aggregate_function="first")
    run_w = {r: np.array(v, dtype=float) for r, *v in wide.select("run", *domains).iter_rows()}
    return domains, losses, run_w


def _targets(study: str, spec: dict, losses: pl.DataFrame) -> list[str]:
    all_targets = losses["domain"].unique(maintain_order=True).to_list()
    targets = list(spec.get("targets", all_targets))
    missing = [t for t in targets if t not in all_targets]
    if missing:
        raise SpecError(f"targets {missing} are not loss domains of the study ({all_targets})", study=study,
                        field="mixing.targets")
    return targets


def _mixture_key(w: np.ndarray) -> str:
    return "-".join(f"{v:.6g}" for v in w)


def _close(a, b) -> bool:
    return abs(a - b) <= 1e-6 * abs(b)


def plan_nested(study: str, spec: dict, mp: pl.DataFrame) -> StudyMixing:
    """Ye et al.'s nested prediction per target domain, from the train split's checkpoints: mixtures are the
    distinct weight vectors (runs of one mixture at several sizes share it). Held-out splits' runs with a
    checkpoint at (target_params, target_steps) are scored against the prediction; the proposed mixture
    minimizes the predicted target-scale losses (`optimize_mixture`, law ``nested``)."""
    import dataclasses

    from scaling.errors import FitError
    from scaling.mixing import TargetFit
    from scaling.mixing.laws import get_mixing_law
    from scaling.mixing.nested import nested_mixing_prediction
    from scaling.mixing.study import MixingStudyResult

    out = StudyMixing()
    domains, losses, run_w = _checkpoints(study, mp, ("steps", "params"))
    targets = _targets(study, spec, losses)
    n_star, s_star = float(spec["target_params"]), float(spec["target_steps"])
    n_res, seed, level = int(spec.get("n_resamples", 200)), int(spec.get("seed", 0)), float(spec.get("level", 0.95))
    law = get_mixing_law(spec.get("law", "ye_exp"))
    train = losses.filter(pl.col("split") == "train")
    if train.height == 0:
        raise SpecError("no train-split checkpoints to fit", study=study, field="sources.mixture.split")
    keys = {r: _mixture_key(w) for r, w in run_w.items()}
    mixtures = {keys[r]: run_w[r] for r in train["run"].unique().to_list()}
    heldout = losses.filter((pl.col("split") != "train"))
    at_target = heldout.filter(((pl.col("params") - n_star).abs() <= 1e-6 * n_star)
                               & ((pl.col("steps") - s_star).abs() <= 1e-6 * s_star))
    if heldout.height and at_target.height == 0:
        out.messages.append(f"no held-out run has a checkpoint at the target scale ({n_star:.3g} params, "
                            f"{s_star:.3g} steps): nothing to score")
    fits = {}
    named = dataclasses.replace(law, name="nested")
    for t in targets:
        rows = train.filter(pl.col("domain") == t)
        try:
            pred = nested_mixing_prediction(
                [keys[r] for r in rows["run"].to_list()], rows["steps"].to_numpy(), rows["params"].to_numpy(),
                rows["value"].to_numpy(), mixtures, domains, target_steps=s_star, target_params=n_star, law=law,
                n_resamples=n_res, seed=seed, level=level)
        except FitError as err:
            raise err.at(study=study, field="mixing") from None
        out.nested[t] = pred
        fits[t] = TargetFit(named, t, None, pred.fit, pred.draws if n_res else np.zeros((0, len(pred.fit.params))),
                            pred.n_failed)
        if pred.n_failed:
            out.messages.append(f"nested -> {t}: {pred.n_failed} of {n_res} mixing-law refits failed (left out)")
    n_mix = len(next(iter(out.nested.values())).mixture_ids)
    splits = at_target["split"].unique(maintain_order=True).to_list()
    scores: dict[str, dict] = {}
    for split in splits:
        sub = at_target.filter(pl.col("split") == split)
        for t in targets:
            rows = sub.filter(pl.col("domain") == t).unique("run", keep="last", maintain_order=True)
            if rows.height == 0:
                continue
            runs = rows["run"].to_list()
            wx = np.array([run_w[r] for r in runs])
            actual = rows["value"].to_numpy()
            loss, lo, hi = out.nested[t].predict_interval(wx)
            m = heldout_metrics(loss, actual)
            scores[(split, t)] = m
            out.nested_heldout.setdefault(split, {})[t] = (actual, loss, lo, hi)
            out.heldout_by_split.setdefault(split, {})[t] = (actual, loss)
            out.score_rows.append({"split": split, "law": "nested", "target_domain": t, **m, "params": n_star,
                                   "chosen": True})
            out.prediction_rows += [{"split": split, "law": "nested", "target_domain": t, "run": str(r),
                                     "actual": float(a), "predicted": float(p), "ci_low": float(lo_), "ci_high": float(hi_),
                                     "error": float(p - a)} for r, a, p, lo_, hi_ in zip(runs, actual, loss, lo, hi)]
    first = splits[0] if splits else None
    # the mixing law over the mixtures' extrapolated losses: collapsed when it barely varies
    flat = {("nested", t): collapsed(pred.predict(pred.weights), pred.losses_at_target, n_params=len(pred.fit.params))
            for t, pred in out.nested.items()}
    _collapse_messages(out, flat)
    dead = [t for (_, t), bad in flat.items() if bad]
    for t, pred in out.nested.items():
        sc = scores.get((first, t), {})
        n_test = sc.get("n", 0)
        for r in pred.stage_rows(level):
            out.law_rows.append({"target_domain": t, "law": "nested", **r,
                                 "heldout_spearman": sc.get("spearman", float("nan")),
                                 "heldout_mae": sc.get("mae", float("nan")), "n_train": n_mix, "n_test": n_test,
                                 "flags": "mixing_constant" if t in dead and r.get("stage") == "mixing" else ""})
    out.best_law = "nested"
    result = MixingStudyResult(domains=tuple(domains), targets=tuple(targets), laws=("nested",),
                               fits={("nested", t): f for t, f in fits.items()}, heldout={}, n_train=n_mix,
                               n_test=0, heldout_source="target scale", n_resamples=n_res, seed=seed,
                               confidence=level)
    out.messages.append(f"nested: {n_mix} mixtures, step law -> size law -> {law.name} at {n_star:.3g} params, "
                        f"{s_star:.3g} steps")
    opt = _optimize_opts(spec, domains, targets, dead)
    if dead:
        out.messages.append(f"targets {dead}: the nested mixing law collapsed (mixing_constant): left out of the "
                            f"proposed mixture's objective")
    if opt is None:
        out.messages.append("no mixture proposed: every target collapsed")
    elif n_res:
        proposal = optimize_mixture(result, law="nested", seed=seed, **opt)
        out.mixture_rows = [{**r.__dict__, "law": "nested"} for r in proposal.rows()]
        out.messages.append(
            f"proposed mixture (nested, at {n_star:.3g} params and {s_star:.3g} steps): objective "
            f"{proposal.objective_value:.4f} [{proposal.objective_ci[0]:.4f}, {proposal.objective_ci[1]:.4f}] vs "
            f"baseline {proposal.baseline_objective_value:.4f}; better in {proposal.improvement_probability:.0%} "
            "of draws")
    return out


def plan_bimix(study: str, spec: dict, mp: pl.DataFrame) -> StudyMixing:
    """BiMix per target domain that has an own train domain (`match_own_domains`), fitted to the train
    split's checkpoints (of the largest model size when there are several), with whole runs resampled.
    Held-out runs are predicted at each of their checkpoints' steps, and scored at their last one."""
    from scaling.errors import FitError
    from scaling.mixing import fit_bimix, match_own_domains
    from scaling.mixing.bimix import PARAM_NAMES

    out = StudyMixing()
    domains, losses, run_w = _checkpoints(study, mp, ("steps",))
    targets = _targets(study, spec, losses)
    n_res, seed, level = int(spec.get("n_resamples", 200)), int(spec.get("seed", 0)), float(spec.get("level", 0.95))
    train = losses.filter(pl.col("split") == "train")
    sizes = train["params"].drop_nulls().unique().sort().to_list()
    if len(sizes) > 1:
        train = train.filter(pl.col("params") == sizes[-1])
        out.messages.append(f"bimix: runs of {len(sizes)} model sizes; BiMix has no size term, so it is fitted "
                            f"to the largest ({sizes[-1]:.3g} params)")
    own = match_own_domains(domains, targets)
    heldout = losses.filter(pl.col("split") != "train")
    last = heldout.sort("steps").group_by("split", "run", "domain", maintain_order=True).agg(pl.all().last())
    out.best_law = "bimix"
    for t in targets:
        if own[t] is None:
            out.messages.append(f"bimix -> {t}: no train domain matches this target; BiMix needs one (skipped)")
            continue
        rows = train.filter(pl.col("domain") == t)
        r = np.array([run_w[x][own[t]] for x in rows["run"].to_list()])
        try:
            fit = fit_bimix(r, rows["steps"].to_numpy(), rows["value"].to_numpy(), runs=rows["run"].to_numpy(),
                            n_resamples=n_res, seed=seed)
        except FitError as err:
            raise err.at(study=study, field="mixing") from None
        lo, hi = fit.intervals(level) if n_res else ((np.full(4, np.nan),) * 2)
        scored = {}
        for split in last["split"].unique(maintain_order=True).to_list():
            sub = last.filter((pl.col("split") == split) & (pl.col("domain") == t))
            if sub.height == 0:
                continue
            runs = sub["run"].to_list()
            rx = np.array([run_w[x][own[t]] for x in runs])
            sx, actual = sub["steps"].to_numpy(), sub["value"].to_numpy()
            pred = fit.predict(rx, sx)
            plo, phi = percentile_interval(fit.predict_draws(rx, sx), level) if n_res else \
                (np.full(len(runs), np.nan),) * 2
            m = heldout_metrics(pred, actual)
            scored[split] = m
            out.heldout_by_split.setdefault(split, {})[t] = (actual, pred)
            out.score_rows.append({"split": split, "law": "bimix", "target_domain": t, **m,
                                   "params": sub["params"].max(), "chosen": True})
            out.prediction_rows += [{"split": split, "law": "bimix", "target_domain": t, "run": str(x),
                                     "actual": float(a), "predicted": float(p), "ci_low": float(a_), "ci_high": float(b_),
                                     "error": float(p - a)} for x, a, p, a_, b_ in zip(runs, actual, pred, plo, phi)]
        sc = next(iter(scored.values()), {})
        flat = collapsed(fit.predict(r, rows["steps"].to_numpy()), rows["value"].to_numpy(), n_params=len(fit.params))
        _collapse_messages(out, {("bimix", t): flat})
        flags = ",".join(f for f in ("" if fit.converged else "not_converged", "mixing_constant" if flat else "") if f)
        for k, name in enumerate(PARAM_NAMES):
            out.law_rows.append({"target_domain": t, "law": "bimix", "stage": None, "mixture": None,
                                 "params": sizes[-1] if sizes else None, "parameter": name,
                                 "estimate": float(fit.params[k]), "ci_low": float(lo[k]), "ci_high": float(hi[k]),
                                 "heldout_spearman": sc.get("spearman", float("nan")),
                                 "heldout_mae": sc.get("mae", float("nan")), "n_train": fit.n_groups,
                                 "n_test": sc.get("n", 0), "flags": flags})
        out.messages.append(f"bimix -> {t}: alpha {fit.params[0]:.3f}, beta {fit.params[1]:.3f} over "
                            f"{fit.n_groups} runs ({fit.n_failed} of {n_res} refits failed)")
    if not out.law_rows:
        raise SpecError(f"method 'bimix' needs targets with a matching train domain; none of {targets} matches "
                        f"{domains}", study=study, field="mixing.targets")
    return out
