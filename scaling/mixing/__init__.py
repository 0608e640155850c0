"""Data-mixing laws: fit per-domain loss as a function of the training mixture, score
the laws on held-out mixtures, and propose the mixture for a large run.

The names below are imported from their modules on first use (a module ``__getattr__``, PEP 562),
not with the package: checking a study's ``[mixing]`` table reads the law registry
(`scaling.mixing.laws`) without importing the fitting code and scipy.
"""

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the same names, for type checkers and for the code versions (`pipelines.freshness` reads imports)
    from .bimix import BiMixFit, bimix_loss, fit_bimix
    from .domains import match_own_domains
    from .evaluate import HeldoutScore, score_heldout, seeded_split
    from .fit import MixingLawFit, bootstrap_mixing_law, fit_mixing_law
    from .laws import LINEAR, MIXING_LAWS, YE_EXP, YE_EXP_LOG, YE_EXP_OWN, MixingLaw, get_mixing_law
    from .nested import DecayFit, NestedPrediction, fit_decay, fit_decays, nested_mixing_prediction
    from .optimize import MixtureProposal, MixtureRow, optimize_mixture, project_to_feasible, token_upper_bounds
    from .regmix import MixtureRuns, read_mixture_runs
    from .simulate import random_mixtures
    from .study import LossPrediction, MixingLawRow, MixingStudyResult, TargetFit, fit_mixing_study
    from .weights import WeightFlag, validate_weights

_EXPORTS = {
    "bimix": ("BiMixFit", "bimix_loss", "fit_bimix"),
    "domains": ("match_own_domains",),
    "evaluate": ("HeldoutScore", "score_heldout", "seeded_split"),
    "fit": ("MixingLawFit", "bootstrap_mixing_law", "fit_mixing_law"),
    "laws": ("LINEAR", "MIXING_LAWS", "YE_EXP", "YE_EXP_LOG", "YE_EXP_OWN", "MixingLaw", "get_mixing_law"),
    "nested": ("DecayFit", "NestedPrediction", "fit_decay", "fit_decays", "nested_mixing_prediction"),
    "optimize": ("MixtureProposal", "MixtureRow", "optimize_mixture", "project_to_feasible", "token_upper_bounds"),
    "regmix": ("MixtureRuns", "read_mixture_runs"),
    "simulate": ("random_mixtures",),
    "study": ("LossPrediction", "MixingLawRow", "MixingStudyResult", "TargetFit", "fit_mixing_study"),
    "weights": ("WeightFlag", "validate_weights"),
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = list(_MODULE_OF)


def __getattr__(name: str):
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value
