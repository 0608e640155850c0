"""Checking a format's options: unknown keys and wrong types are spec errors."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from scaling.errors import SpecError


def check_options(fmt: str, options: Mapping[str, Any] | None, allowed: Mapping[str, type | tuple[type, ...]]) -> dict:
    """Return `options` as a dict after checking every key is known and has the right type."""
    options = dict(options or {})
    for key, value in options.items():
        if key not in allowed:
            known = ", ".join(sorted(allowed)) or "none"
            raise SpecError(f"unknown option {key!r} for format {fmt!r} (known: {known})", field=key)
        if not isinstance(value, allowed[key]):
            problem = f"option {key!r} for format {fmt!r}: expected {_names(allowed[key])}, got {value!r}"
            raise SpecError(problem, field=key)
    return options


def _names(types: type | tuple[type, ...]) -> str:
    types = types if isinstance(types, tuple) else (types,)
    return " or ".join(_WORDS.get(t.__name__, t.__name__) for t in types)


_WORDS = {"str": "a string", "list": "a list", "int": "an integer", "bool": "true/false"}
