"""The flags a fit or forecast can carry: their names and meanings, and which make a fit unusable.

Flags:
- ``at_bound:<name>``: a free parameter sits on its bound;
- ``exponent_implausible:<name>`` / ``coefficient_implausible:<name>``: outside the law's plausible
  range (e.g. an exponent near 5 or a coefficient e^89, as in a degenerate grid-search fit);
- ``flat_direction``: the objective's Hessian (in optimizer coordinates) is near-singular, so some
  combination of parameters is not determined by the data;
- ``residual_trend:<variable>``: a quadratic in the variable's log explains the residuals
  (R² > 0.3, F-test p < 0.001), i.e. the law's shape misses the data (a slope or a bend);
- ``few_points``: fewer than three points per free parameter;
- ``not_converged``: the optimizer did not report convergence (added by the fitter);
- ``not_identified:<name>``: the data do not pin the parameter down: its bootstrap interval reaches
  a bound of its box, spans more than ``SPAN_RATIO`` (10x) for a positive parameter, or it loads on
  the objective's flat direction (added by the bootstrap, ``identification_flags``);
- ``bootstrap_restarts:global``: warm-started bootstrap refits disagreed with global refits on a
  probe of resamples (a flat or multi-modal objective), so every refit restarted from the global
  search (a note, not a warning);
- ``sigmoid_inverted``: an accuracy sigmoid (a law that ``predicts`` accuracy) whose floor is not
  below its ceiling, or whose predictions on the fitted data leave [0, 1] (``sigmoid_flags``).

``FLAGS`` maps each flag's name (before ``:``) to its meaning, for messages and checks.
``BLOCKING_FLAGS`` is the one definition of which flags make a fit unusable: such a fit gets no
forecasts, fails the ``fit_converged`` check when no other law of its target is usable, and ranks
after every clean law in the backtests. The other flags are warnings.
"""

from __future__ import annotations

SPAN_RATIO = 10.0  # a positive parameter whose bootstrap interval spans more than this is not identified
BLOCKING_FLAGS = ("not_converged", "exponent_implausible", "coefficient_implausible", "flat_direction")


def blocking_flags(flags) -> list[str]:
    """The flags among ``flags`` that make a fit unusable (``BLOCKING_FLAGS``, with or without ``:<name>``)."""
    return [f for f in (flags or []) if f.split(":", 1)[0] in BLOCKING_FLAGS]


FLAGS = {
    "at_bound": "a free parameter sits on a bound of its box",
    "exponent_implausible": "an exponent outside the law's plausible range",
    "coefficient_implausible": "a coefficient outside the law's plausible range",
    "flat_direction": "the objective's Hessian is near-singular: a combination of parameters is not determined",
    "residual_trend": "the residuals follow a trend in a variable: the law's shape misses the data",
    "few_points": "fewer than three points per free parameter",
    "not_converged": "the optimizer did not converge",
    "not_identified": f"the parameter's bootstrap interval reaches a bound, spans more than {SPAN_RATIO:g}x, "
                      "or the parameter lies on the objective's flat direction",
    "bootstrap_restarts": "bootstrap refits restarted from the global search (warm starts disagreed with it)",
    "sigmoid_inverted": "the accuracy sigmoid's floor is not below its ceiling, or it predicts outside [0, 1]",
    "mixing_constant": "a mixing law no better than a constant over the mixtures: its predictions barely vary, or "
                       "explain no more of the losses than its parameters would fit to noise",
    # forecast sanity flags (``scaling.forecast.sanity``), in the forecasts table's ``warnings``
    "allocation_outside_fitted": "the compute-optimal tokens per parameter lie far (over 3x) outside the range "
                                 "the law was fitted on",
    "below_irreducible": "the prediction is below the lower end of the law's irreducible-loss interval",
    "outside_metric_range": "the prediction is outside the values the metric can take",
    "law_not_for_metric": "the law is not meant for this kind of metric (loss law on an accuracy, or the reverse)",
}


def flag_name(flag: str) -> str:
    """The vocabulary entry of a flag (``not_identified:R_D_star`` -> ``not_identified``)."""
    return flag.split(":", 1)[0]
