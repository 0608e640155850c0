"""Checking a format's options: unknown keys and wrong types are spec errors."""

from __future__ import annotations

import codecs
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


# what a reader says when a line is not UTF-8 (the default) and the file may be in another encoding
ENCODING_HINT = "if the file is in another encoding, set options.encoding (for example 'latin-1')"


def encoding_option(fmt: str, name: str | None, *, by_lines: bool = False) -> str | None:
    """The codec of a format's ``encoding`` option, or None for UTF-8 (every reader's native encoding).

    `by_lines`: the reader splits the file's bytes at ``\\n`` before decoding, so the encoding must write
    a newline as that one byte (latin-1, cp1252 and the like; not UTF-16)."""
    if name is None:
        return None
    try:
        canonical = codecs.lookup(name).name
    except LookupError:
        raise SpecError(f"option 'encoding' for format {fmt!r}: unknown encoding {name!r} "
                        "(a Python codec name such as 'utf-8', 'latin-1', 'cp1252')", field="encoding") from None
    if canonical in ("utf-8", "utf-8-sig"):
        return None
    if by_lines:
        try:
            newline = "\n".encode(canonical)
        except LookupError:  # a codec that is not a text encoding (rot13, base64, ...)
            newline = None
        if newline != b"\n":
            raise SpecError(f"option 'encoding' for format {fmt!r}: {name!r} does not write a newline as the one "
                            "byte \\n, which this format splits lines at (one byte per newline: e.g. 'latin-1', "
                            "'cp1252')", field="encoding")
    return canonical
