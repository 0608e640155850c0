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


def get_law(name: str | Law) -> Law:
    """The registered law called ``name`` (a ``Law`` is returned as is)."""
    if isinstance(name, Law):
        return name
    try:
        return LAWS[name]
    except KeyError:
        raise SpecError(f"unknown law {name!r}; expected one of {sorted(LAWS)}") from None
