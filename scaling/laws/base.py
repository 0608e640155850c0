"""Declarative scaling laws: variables, parameters with bounds, a formula, a reference.

A law is a prediction function ``fn(X, p)`` over named input arrays ``X`` (``params``,
``tokens``, ``flops``, ``unique_tokens``, ``lr_sum``, ``lr_anneal_area``, ``loss_x``,
``loss``) and a mapping ``p`` of parameter values. ``fn`` must broadcast: the fitter
evaluates it with parameters shaped ``(G, 1)`` against data shaped ``(n,)`` to score a
whole grid of starting points at once.

Parameters marked ``linear`` enter the prediction linearly once the others are fixed
(``E``, ``A``, ``B`` in Chinchilla's form); the fitter solves them by non-negative least
squares on a grid of the others (variable projection). Parameters marked ``log`` are
positive scale parameters that the optimizer moves on a log scale.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Mapping

import numpy as np

Arrays = Mapping[str, np.ndarray]

VARIABLES = (
    "params",          # N, parameters
    "tokens",          # D, training tokens
    "flops",           # C, training compute
    "unique_tokens",   # U_D, distinct tokens in the training set
    "lr_sum",          # S1, forward area: sum of per-step learning rates
    "lr_anneal_area",  # S2, momentum-decayed annealing area
    "loss_x",          # loss on the source distribution (loss-to-loss transfer)
    "loss",            # a loss or bits-per-byte (downstream accuracy laws)
)


@dataclass(frozen=True)
class Param:
    """One law parameter.

    ``bounds`` are the default box (natural units). ``grid`` gives the seed grid for a
    non-linear parameter as ``(low, high)`` (linearly spaced, or log-spaced when ``log``).
    ``plausible`` is the range outside which a fitted value is flagged
    (``exponent_implausible`` when ``exponent`` is set, otherwise ``coefficient_implausible``).
    """

    name: str
    bounds: tuple[float, float]
    linear: bool = False
    log: bool = False
    grid: tuple[float, float] | None = None
    plausible: tuple[float, float] | None = None
    exponent: bool = False


@dataclass(frozen=True)
class Law:
    """A scaling law: ``name``, needed ``variables``, ``params``, ``formula``, ``reference``.

    ``fn(X, p)`` returns the prediction; ``grad(X, p)`` (optional) returns a dict of
    partial derivatives of the prediction per parameter (missing ones are taken by
    central differences). ``space`` is the default residual space: ``"log"`` for losses,
    ``"linear"`` for accuracies. ``data_bounds(X, y)`` may tighten bounds from the data
    (e.g. an offset must stay below the smallest observed loss). ``predicts`` is the kind of metric
    the law is meant for: ``"loss"`` (falling with scale towards a floor: losses, bits per byte, ln
    perplexity) or ``"accuracy"`` (a share in [0, 1] between a ``floor`` and a ``ceiling``).
    """

    name: str
    variables: tuple[str, ...]
    params: tuple[Param, ...]
    fn: Callable[[Arrays, Mapping[str, np.ndarray]], np.ndarray]
    formula: str
    reference: str
    grad: Callable[[Arrays, Mapping[str, np.ndarray]], dict] | None = None
    space: str = "log"
    data_bounds: Callable[[Arrays, np.ndarray], dict] | None = None
    defaults: Mapping[str, float] = field(default_factory=dict)
    input_scale: Mapping[str, float] = field(default_factory=dict)  # inputs divided by these (scaling.laws.transform)
    ties: Mapping[str, str] = field(default_factory=dict)  # parameter -> the parameter it equals
    predicts: str = "loss"  # "loss" or "accuracy": the kind of metric the law is meant for

    @property
    def param_names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.params)

    def param(self, name: str) -> Param:
        for p in self.params:
            if p.name == name:
                return p
        raise KeyError(f"law {self.name!r} has no parameter {name!r}; it has {self.param_names}")

    def predict(self, params: Mapping[str, float], X: Arrays) -> np.ndarray:
        """Evaluate the law at fitted ``params`` on inputs ``X`` (a mapping of arrays)."""
        missing = [v for v in self.variables if v not in X]
        if missing:
            raise KeyError(f"law {self.name!r} needs variables {missing}; got {sorted(X)}")
        missing_p = [n for n in self.param_names if n not in params]
        if missing_p:
            raise KeyError(f"law {self.name!r} needs parameters {missing_p}")
        Xa = {v: np.asarray(X[v], dtype=float) for v in self.variables}
        return np.asarray(self.fn(Xa, {k: float(params[k]) for k in self.param_names}), dtype=float)

    def __repr__(self) -> str:
        return f"Law({self.name!r}: {self.formula})"
