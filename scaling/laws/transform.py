"""Laws derived from a law of the zoo: inputs in other units, parameters tied to each other.

``rescale_inputs(law, {"params": 1e6, "tokens": 1e9})`` fits L(N/1e6, D/1e9), so the fitted
coefficients are in the units a paper reports (e.g. A for N in millions, B for D in billions);
predictions still take raw N and D. ``tie_params(law, {"beta": "alpha"})`` fits the law with
beta = alpha (one exponent for both terms, as in the over-training law of Gadre et al. 2024).
``configure`` applies both. A derived law is named after its base and what was done to it
(``chinchilla[beta=alpha]``, ``chinchilla[params/1e6,tokens/1e9]``), so a study can fit both
beside the plain law, and records it in ``input_scale`` and ``ties``; ``base_name`` recovers
the zoo's name.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Mapping

import numpy as np

from ..errors import SpecError
from .base import Law


def rescale_inputs(law: Law, scale: Mapping[str, float]) -> Law:
    """``law`` evaluated on X[v] / scale[v] for every variable named in ``scale``."""
    if not scale:
        return law
    for v, s in scale.items():
        if v not in law.variables:
            raise SpecError(f"law {law.name!r} has no variable {v!r} to rescale; it takes {list(law.variables)}",
                            field=f"scale.{v}")
        if not (isinstance(s, (int, float)) and np.isfinite(s) and s > 0):
            raise SpecError(f"expected a positive finite scale for {v!r}, got {s!r}", field=f"scale.{v}")
    sc = {v: float(s) for v, s in scale.items()}

    def scaled(X):
        return {k: (np.asarray(x, dtype=float) / sc[k] if k in sc else x) for k, x in X.items()}

    fn, grad, bounds = law.fn, law.grad, law.data_bounds
    units = ", ".join(f"{v}/{s:g}" for v, s in sc.items())
    return replace(law, name=f"{law.name}[{','.join(f'{v}/{s:g}' for v, s in sc.items())}]",
                   fn=lambda X, p: fn(scaled(X), p),
                   grad=(lambda X, p: grad(scaled(X), p)) if grad else None,
                   data_bounds=(lambda X, y: bounds(scaled(X), y)) if bounds else None,
                   formula=f"{law.formula}  [inputs: {units}]",
                   input_scale={**law.input_scale, **sc})


def tie_params(law: Law, ties: Mapping[str, str]) -> Law:
    """``law`` with each parameter ``t`` in ``ties`` set equal to ``ties[t]`` (and no longer free).

    A tied pair must both be linear coefficients or both non-linear (the fitter's variable
    projection solves linear ones by least squares)."""
    if not ties:
        return law
    names = law.param_names
    for t, src in ties.items():
        if t not in names or src not in names:
            bad = t if t not in names else src
            raise SpecError(f"law {law.name!r} has no parameter {bad!r}; it has {list(names)}", field=f"tie.{t}")
        if src in ties or t == src:
            raise SpecError(f"tie {t} = {src}: a parameter must be tied to a free parameter", field=f"tie.{t}")
        if law.param(t).linear != law.param(src).linear:
            raise SpecError(f"tie {t} = {src}: both must be linear coefficients or both non-linear",
                            field=f"tie.{t}")
    ties = dict(ties)
    fn, grad = law.fn, law.grad

    def full(p):
        q = dict(p)
        for t, src in ties.items():
            q[t] = p[src]
        return q

    def tied_grad(X, p):
        g = dict(grad(X, full(p)))
        for t, src in ties.items():
            if t in g and src in g:
                g[src] = g[src] + g.pop(t)
            else:  # let the fitter difference the source numerically
                g.pop(t, None)
                g.pop(src, None)
        return g

    return replace(law, name=f"{law.name}[{','.join(f'{t}={s}' for t, s in ties.items())}]",
                   params=tuple(p for p in law.params if p.name not in ties),
                   fn=lambda X, p: fn(X, full(p)), grad=tied_grad if grad else None,
                   formula=law.formula + "  [" + ", ".join(f"{t} = {s}" for t, s in ties.items()) + "]",
                   ties={**law.ties, **ties})


def base_name(law: Law | str) -> str:
    """The zoo's name of a (possibly derived) law: ``chinchilla[beta=alpha]`` -> ``chinchilla``."""
    return (law if isinstance(law, str) else law.name).split("[")[0]


def expand_ties(law: Law, params: Mapping[str, object]) -> dict:
    """Parameter values of the untied law: every tied parameter takes its source's value."""
    out = dict(params)
    for t, src in law.ties.items():
        out[t] = out[src]
    return out


def configure(law: Law, *, tie: Mapping[str, str] | None = None, scale: Mapping[str, float] | None = None) -> Law:
    """``law`` with inputs rescaled by ``scale`` and parameters tied by ``tie``."""
    return tie_params(rescale_inputs(law, scale or {}), tie or {})
