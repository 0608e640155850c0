"""The law registry: ``LAWS`` by name and ``get_law(name)``."""

from __future__ import annotations

from ..errors import SpecError
from .base import Law
from .chinchilla import chinchilla, data_constrained, kaplan, overtraining
from .downstream import accuracy_sigmoid_flops, downstream_sigmoid, loss_transfer
from .power import broken_power_law, power_law
from .schedule import lr_annealing

LAWS: dict[str, Law] = {
    law.name: law
    for law in (
        power_law("params"), power_law("tokens"), power_law("flops"),
        kaplan, chinchilla, data_constrained, overtraining, lr_annealing,
        broken_power_law("params"), broken_power_law("tokens"), broken_power_law("flops"),
        loss_transfer, downstream_sigmoid, accuracy_sigmoid_flops,
    )
}
LAWS["broken_power_law"] = LAWS["broken_power_law_flops"]
# the laws meant for accuracies (``Law.predicts``), derived from the laws themselves
ACCURACY_LAWS = tuple(sorted(name for name, law in LAWS.items() if law.predicts == "accuracy"))


def law_predicts(name: str | Law) -> str | None:
    """The kind of metric a law is meant for (``Law.predicts``: "loss" or "accuracy"); a derived
    law (``chinchilla[beta=alpha]``) is its zoo law's kind; None for a name that is no law."""
    if isinstance(name, Law):
        return name.predicts
    law = LAWS.get(str(name).split("[")[0])
    return law.predicts if law is not None else None


def get_law(name: str | Law) -> Law:
    """The registered law called ``name`` (a ``Law`` is returned as is)."""
    if isinstance(name, Law):
        return name
    try:
        return LAWS[name]
    except KeyError:
        raise SpecError(f"unknown law {name!r}; expected one of {sorted(LAWS)}") from None
