"""Single-variable laws: a power law with an offset, and a broken power law."""

from __future__ import annotations

import numpy as np

from .base import Law, Param

_X_VARIABLES = ("params", "tokens", "flops")


def _check_variable(variable: str) -> None:
    if variable not in _X_VARIABLES:
        raise ValueError(f"expected one of {_X_VARIABLES} as the variable, got {variable!r}")


def power_law(variable: str = "flops") -> Law:
    """L(x) = E + A·x^(-alpha) in one variable (``params``, ``tokens`` or ``flops``).

    The saturating power law of Hestness et al. 2017 and Kaplan et al. 2020 (single-variable form).
    """
    _check_variable(variable)

    def fn(X, p):
        return p["E"] + p["A"] * np.exp(-p["alpha"] * np.log(X[variable]))

    def grad(X, p):
        lx = np.log(X[variable])
        t = np.exp(-p["alpha"] * lx)
        return {"E": np.ones_like(lx), "A": t, "alpha": -p["A"] * t * lx}

    return Law(
        name=f"power_law_{variable}",
        variables=(variable,),
        params=(
            Param("E", (0.0, np.inf), linear=True),
            Param("A", (0.0, np.inf), linear=True, log=True, plausible=(0.0, 1e15)),
            Param("alpha", (0.0, 10.0), grid=(0.01, 2.0), plausible=(0.005, 2.0), exponent=True),
        ),
        fn=fn,
        grad=grad,
        formula=f"L = E + A * {variable}^(-alpha)",
        reference="Hestness et al. 2017, Deep Learning Scaling is Predictable, Empirically; Kaplan et al. 2020",
    )


def broken_power_law(variable: str = "flops") -> Law:
    """y = a + b·x^(-c0)·(1 + (x/d1)^(1/f1))^(-c1·f1), one break at x = d1 (Caballero et al. 2022).

    Below the break the slope is c0, above it c0 + c1; f1 sets the sharpness of the break.
    Evaluated in logs so large x and small f1 do not overflow.
    """
    _check_variable(variable)

    def fn(X, p):
        lx = np.log(X[variable])
        t = (lx - np.log(p["d1"])) / p["f1"]
        return p["a"] + p["b"] * np.exp(-p["c0"] * lx - p["c1"] * p["f1"] * np.logaddexp(0.0, t))

    def grad(X, p):
        lx = np.log(X[variable])
        t = (lx - np.log(p["d1"])) / p["f1"]
        soft, sig = np.logaddexp(0.0, t), 1.0 / (1.0 + np.exp(-t))
        u = np.exp(-p["c0"] * lx - p["c1"] * p["f1"] * soft)  # d pred / d b (broadcasts over rows of p)
        bu = p["b"] * u
        return {"a": np.ones_like(lx), "b": u, "c0": -bu * lx, "c1": -bu * p["f1"] * soft,
                "d1": bu * p["c1"] * sig / p["d1"], "f1": bu * p["c1"] * (sig * t - soft)}

    def hints(X, y):
        x = np.asarray(X[variable], dtype=float)
        return {"d1": {"grid": (float(x.min()), float(x.max()))}}

    return Law(
        name=f"broken_power_law_{variable}",
        variables=(variable,),
        params=(
            Param("a", (0.0, np.inf), linear=True),
            Param("b", (0.0, np.inf), linear=True, log=True),
            Param("c0", (-1.0, 5.0), grid=(0.0, 1.0), exponent=True, plausible=(-1.0, 3.0)),
            Param("c1", (-5.0, 5.0), grid=(-0.5, 1.5), exponent=True, plausible=(-3.0, 3.0)),
            Param("d1", (0.0, np.inf), log=True, grid=(1.0, 1e25)),
            Param("f1", (1e-3, 1e2), log=True, grid=(0.05, 2.0)),
        ),
        fn=fn,
        grad=grad,
        formula=f"y = a + b * {variable}^(-c0) * (1 + ({variable}/d1)^(1/f1))^(-c1*f1)",
        reference="Caballero et al. 2022, Broken Neural Scaling Laws",
        data_bounds=hints,
    )
