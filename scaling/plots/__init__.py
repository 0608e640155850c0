"""Plots of a study (PNG files, matplotlib's Agg canvas, no pyplot state): loss vs compute with
the compute-optimal frontier, isoFLOP profiles, backtests, mixing laws on held-out mixtures, and
observational scaling laws."""

from .backtest import plot_predicted_vs_actual
from .frontier import plot_loss_vs_compute
from .isoflop import isoflop_profiles, plot_isoflop
from .mixing import plot_mixture_heldout, plot_nested_mixing
from .observational import plot_observational

__all__ = ["plot_loss_vs_compute", "isoflop_profiles", "plot_isoflop", "plot_predicted_vs_actual",
           "plot_mixture_heldout", "plot_nested_mixing", "plot_observational"]
