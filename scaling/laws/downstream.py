"""Laws between losses and from loss to downstream accuracy."""

from __future__ import annotations

import numpy as np

from .base import Law, Param


def expit(x):
    """The logistic function 1 / (1 + e^-x), scipy's (stable for large |x|), imported on first use:
    a study file is checked against the law registry without importing scipy."""
    from scipy.special import expit as logistic

    return logistic(x)


def _transfer_fn(X, p):
    gap = np.maximum(X["loss_x"] - p["E_x"], 1e-12)
    return p["K"] * np.exp(p["kappa"] * np.log(gap)) + p["E_y"]


def _transfer_grad(X, p):
    raw = X["loss_x"] - p["E_x"]
    gap = np.maximum(raw, 1e-12)
    lg = np.log(gap)
    t = np.exp(p["kappa"] * lg)
    return {"K": t, "kappa": p["K"] * t * lg, "E_x": np.where(raw > 1e-12, -p["K"] * p["kappa"] * t / gap, 0.0),
            "E_y": np.ones_like(gap)}


def _transfer_hints(X, y):
    lo = float(np.min(X["loss_x"]))
    return {"E_x": {"bounds": (0.0, lo * (1 - 1e-9)), "grid": (0.0, lo * 0.98)}}


loss_transfer = Law(
    name="loss_transfer",
    variables=("loss_x",),
    params=(
        Param("K", (0.0, np.inf), linear=True, log=True),
        Param("kappa", (1e-2, 10.0), grid=(0.2, 3.0), exponent=True, plausible=(0.05, 5.0)),
        Param("E_x", (0.0, np.inf), grid=(0.0, 2.0)),
        Param("E_y", (0.0, np.inf), linear=True),
    ),
    fn=_transfer_fn,
    grad=_transfer_grad,
    formula="L_y = K * (L_x - E_x)^kappa + E_y",
    reference="Brandfonbrener et al. 2024, Loss-to-Loss Prediction: Scaling Laws for All Datasets",
    data_bounds=_transfer_hints,
)


def _sigmoid_fn(X, p):
    s = expit(-p["k"] * (X["loss"] - p["L0"]))
    return p["floor"] + (p["ceiling"] - p["floor"]) * s


def _sigmoid_grad(X, p):
    u = X["loss"] - p["L0"]
    s = expit(-p["k"] * u)
    ds = (p["ceiling"] - p["floor"]) * s * (1.0 - s)
    return {"floor": 1.0 - s, "ceiling": s, "k": -ds * u, "L0": ds * p["k"]}


def _sigmoid_hints(X, y):
    x = np.asarray(X["loss"], dtype=float)
    span = float(x.max() - x.min()) or 1.0
    return {"L0": {"grid": (float(x.min()) - 0.5 * span, float(x.max()) + 0.5 * span)},
            "k": {"grid": (0.3 / span, 30.0 / span)}}


downstream_sigmoid = Law(
    name="downstream_sigmoid",
    variables=("loss",),
    params=(
        Param("floor", (0.0, np.inf), linear=True),
        Param("ceiling", (0.0, np.inf), linear=True),
        Param("k", (0.0, np.inf), log=True, grid=(0.3, 30.0)),
        Param("L0", (-np.inf, np.inf), grid=(0.0, 5.0)),
    ),
    fn=_sigmoid_fn,
    grad=_sigmoid_grad,
    formula="acc = floor + (ceiling - floor) / (1 + exp(k * (L - L0))), k > 0: lower loss, higher accuracy",
    reference="Gadre et al. 2024, Language models scale reliably with over-training and on downstream tasks; "
              "Bhagia et al. 2024, Establishing Task Scaling Laws via Compute-Efficient Model Ladders",
    space="linear",
    data_bounds=_sigmoid_hints,
    predicts="accuracy",
)


def _rising_fn(X, p):
    s = expit(p["k"] * (np.log(X["flops"]) - p["log_C0"]))
    return p["floor"] + (p["ceiling"] - p["floor"]) * s


def _rising_grad(X, p):
    u = np.log(X["flops"]) - p["log_C0"]
    s = expit(p["k"] * u)
    ds = (p["ceiling"] - p["floor"]) * s * (1.0 - s)
    return {"floor": 1.0 - s, "ceiling": s, "k": ds * u, "log_C0": -ds * p["k"]}


def _rising_hints(X, y):
    lx = np.log(np.asarray(X["flops"], dtype=float))
    span = float(lx.max() - lx.min()) or 1.0
    return {"log_C0": {"grid": (float(lx.min()) - 0.5 * span, float(lx.max()) + 1.0 * span)},
            "k": {"grid": (0.3 / span, 30.0 / span)}}


accuracy_sigmoid_flops = Law(
    name="accuracy_sigmoid_flops",
    variables=("flops",),
    params=(
        Param("floor", (0.0, 1.0), linear=True),
        Param("ceiling", (0.0, 1.0), linear=True),
        Param("k", (0.0, np.inf), log=True, grid=(0.05, 5.0)),
        Param("log_C0", (-np.inf, np.inf), grid=(30.0, 70.0)),
    ),
    fn=_rising_fn,
    grad=_rising_grad,
    formula="acc = floor + (ceiling - floor) / (1 + exp(-k * (ln C - log_C0))): accuracy rising with compute "
            "to a ceiling",
    reference="Owen 2024, How predictable is language model benchmark performance?; Ruan et al. 2024, "
              "Observational Scaling Laws (sigmoid link)",
    space="linear",
    data_bounds=_rising_hints,
    predicts="accuracy",
)
