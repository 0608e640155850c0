"""Data-mixing laws: fit per-domain loss as a function of the training mixture, score
the laws on held-out mixtures, and propose the mixture for a large run."""

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

__all__ = [
    "BiMixFit", "bimix_loss", "fit_bimix", "match_own_domains", "HeldoutScore", "score_heldout",
    "seeded_split", "MixingLawFit", "bootstrap_mixing_law", "fit_mixing_law", "LINEAR", "MIXING_LAWS",
    "YE_EXP", "YE_EXP_LOG", "YE_EXP_OWN", "MixingLaw", "get_mixing_law", "DecayFit", "NestedPrediction",
    "fit_decay", "fit_decays", "nested_mixing_prediction", "MixtureProposal", "MixtureRow", "optimize_mixture",
    "project_to_feasible", "token_upper_bounds", "MixtureRuns", "read_mixture_runs", "random_mixtures",
    "LossPrediction", "MixingLawRow", "MixingStudyResult", "TargetFit", "fit_mixing_study",
    "WeightFlag", "validate_weights",
]
