"""Match each target (validation) domain to the train domain it measures.

Laws with an own-domain term (BiMix, ``ye_exp_own``) need to know which train weight
r_i belongs to target i. Names in sweeps differ by prefixes and suffixes
(``train_the_pile_pile_cc`` vs ``metric/the_pile_pile_cc_val_loss``), so a train domain
matches a target when its name, without a leading ``train_``, occurs in the target's
name; the longest such match wins. An explicit mapping overrides the rule.
"""

from __future__ import annotations

from typing import Mapping, Sequence

from ..errors import SpecError

_PREFIXES = ("train_", "train/", "train-")


def _core(name: str) -> str:
    for p in _PREFIXES:
        if name.startswith(p):
            return name[len(p):]
    return name


def match_own_domains(
    domains: Sequence[str], targets: Sequence[str], explicit: Mapping[str, str] | None = None
) -> dict[str, int | None]:
    """Index into ``domains`` of each target's own train domain, or None when none matches."""
    out: dict[str, int | None] = {}
    explicit = dict(explicit or {})
    for t in targets:
        if t in explicit:
            if explicit[t] not in domains:
                raise SpecError(f"own domain {explicit[t]!r} of target {t!r} is not a train domain",
                                field="own_domains")
            out[t] = list(domains).index(explicit[t])
            continue
        hits = [(len(_core(d)), j) for j, d in enumerate(domains) if _core(d) and _core(d) in t]
        out[t] = max(hits)[1] if hits else None
    return out
