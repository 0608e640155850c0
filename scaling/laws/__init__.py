"""The scaling-law zoo: declarative laws (variables, bounded parameters, formula, reference)."""

from .base import VARIABLES, Law, Param
from .chinchilla import chinchilla, compute_optimal, data_constrained, kaplan, overtraining
from .downstream import downstream_sigmoid, loss_transfer
from .power import broken_power_law, power_law
from .registry import LAWS, get_law
from .schedule import lr_annealing, lr_areas
from .transform import base_name, configure, expand_ties, rescale_inputs, tie_params

__all__ = [
    "VARIABLES", "Law", "Param", "LAWS", "get_law",
    "power_law", "kaplan", "chinchilla", "data_constrained", "lr_annealing", "lr_areas",
    "broken_power_law", "loss_transfer", "downstream_sigmoid", "compute_optimal", "overtraining",
    "base_name", "configure", "expand_ties", "rescale_inputs", "tie_params",
]
