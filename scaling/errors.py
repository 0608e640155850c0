"""Errors that say where bad input is and what was expected.

Every error the pipeline raises about user input carries a location: the study, the
source, the file, the line or row, the column or field. `str(err)` renders them in
that order, so a message reads like
``study 'ladder', source 'runs', file 'a.csv', line 17, column 'loss': expected a number, got 'abc'``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any


@dataclass
class Location:
    study: str | None = None
    source: str | None = None
    file: str | None = None
    line: int | None = None
    row: int | None = None
    column: str | None = None
    field: str | None = None

    def render(self) -> str:
        parts = []
        for name in ("study", "source", "file"):
            value = getattr(self, name)
            if value is not None:
                parts.append(f"{name} {value!r}")
        if self.line is not None:
            parts.append(f"line {self.line}")
        if self.row is not None:
            parts.append(f"row {self.row}")
        if self.column is not None:
            parts.append(f"column {self.column!r}")
        if self.field is not None:
            parts.append(f"field {self.field!r}")
        return ", ".join(parts)


class ScalingError(Exception):
    """Base class: a problem with user input, with where it is and what was expected."""

    def __init__(self, problem: str, **where: Any):
        self.problem = problem
        self.where = Location(**where)
        super().__init__(str(self))

    def __str__(self) -> str:
        loc = self.where.render()
        return f"{loc}: {self.problem}" if loc else self.problem

    def at(self, **where: Any) -> "ScalingError":
        """Return the same error with more of its location filled in (existing parts win)."""
        merged = {k: v for k, v in where.items() if getattr(self.where, k) is None}
        err = type(self)(self.problem)
        err.where = replace(self.where, **merged)
        err.args = (str(err),)
        return err


class SpecError(ScalingError):
    """A study file is invalid: unknown key, missing field, bad unit or value."""


class SourceError(ScalingError):
    """A source cannot be read: unreachable location, malformed file, missing column, bad value."""


class FitError(ScalingError):
    """A law cannot be fitted to the data given (too few points, missing variables)."""


class StorageError(ScalingError):
    """The warehouse cannot be written: a path that would leave it, a read-only folder, a full disk."""


def problem_of(exc: BaseException) -> str:
    """What went wrong, for a failure reported against one fit or forecast while the others go on: a
    `ScalingError` as it reads (location and problem), anything unexpected with its type."""
    return str(exc) if isinstance(exc, ScalingError) else f"{type(exc).__name__}: {exc}"
