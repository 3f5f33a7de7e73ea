"""The state a stage compiles against: the plan, the Spark columns computed so far, and the
model's outputs; plus the helpers every stage module shares."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqltrack.errors import InvalidInputError
from sqltrack.scoring.archive import SavedStage
from sqltrack.scoring.dialect import Dialect
from sqltrack.scoring.plan import Check, Level, Plan, Scalar, Value, Vector

__all__ = ["Context", "checks_of", "in_out", "model_checks", "refuse"]

_NUMERIC = ("integer", "double", "float", "decimal")


def refuse(stage: SavedStage, why: str) -> InvalidInputError:
    return InvalidInputError(f"cannot compile {stage.label} to SQL: {why}")


@dataclass
class Context:
    plan: Plan
    env: dict[str, Value]  # Spark column name -> its value
    outputs: list[tuple[str, str]] = field(default_factory=list)  # (quoted name, expression)
    pending_filters: list[str] = field(default_factory=list)  # for the next level

    @property
    def d(self) -> Dialect:
        return self.plan.dialect

    # -- levels ------------------------------------------------------------------------------
    def level(self, stage: SavedStage, what: str = "") -> Level:
        lvl = self.plan.level(f"{stage.label} {what}".strip())
        lvl.filters += self.pending_filters
        self.pending_filters = []
        return lvl

    def column(self, level: Level, expr: str) -> str:
        """``expr`` as a new column of ``level``, unless it is already a column or literal."""
        if _simple(expr):
            return expr
        return self.plan.column(level, expr)

    # -- columns -----------------------------------------------------------------------------
    def get(self, stage: SavedStage, name: str) -> Value:
        if name not in self.env:
            raise refuse(
                stage,
                f"it reads column {name!r}, which neither the source nor an earlier stage "
                f"has (available: {', '.join(sorted(self.env)) or 'none'})",
            )
        return self.env[name]

    def scalar(self, stage: SavedStage, name: str, kinds: Sequence[str] = _NUMERIC) -> Scalar:
        value = self.get(stage, name)
        if not isinstance(value, Scalar):
            raise refuse(stage, f"column {name!r} is a vector; this stage reads a scalar")
        if value.kind not in kinds:
            raise refuse(
                stage,
                f"column {name!r} has type {value.kind}; this stage reads {', '.join(kinds)}",
            )
        return value

    def vector(self, stage: SavedStage, name: str) -> Vector:
        value = self.get(stage, name)
        if not isinstance(value, Vector):
            raise refuse(stage, f"column {name!r} is a scalar; this stage reads a vector")
        return value

    def put(self, stage: SavedStage, name: str, value: Value) -> None:
        if name in self.env:
            raise refuse(stage, f"output column {name!r} already exists (Spark refuses it too)")
        self.env[name] = value

    # -- shared expressions ------------------------------------------------------------------
    def as_double(self, value: Scalar) -> str:
        """Spark's ``cast(DoubleType)`` of a numeric or boolean scalar."""
        if value.kind == "double":
            return value.sql
        if value.kind == "boolean":
            one, zero = self.d.num(1.0), self.d.num(0.0)
            return f"(CASE WHEN {value.sql} THEN {one} WHEN NOT {value.sql} THEN {zero} END)"
        return self.d.to_double(value.sql)

    def nan_test(self, value: Scalar) -> str | None:
        """The SQL test for NaN of a scalar that may hold it, else None."""
        if value.kind in ("double", "float") and value.nan:
            return self.d.is_nan(value.sql)
        return None

    def guard(self, expr: str, checks: Sequence[Check], *, array: bool = False) -> str:
        """``expr`` (a DOUBLE, or a DOUBLE array), raising Spark's error on rows where a
        check holds."""
        seen: set[tuple[str, str]] = set()
        branches = []
        for c in checks:
            if (c.when, c.message) in seen:
                continue
            seen.add((c.when, c.message))
            # the message must depend on the row, else PostgreSQL folds it (and raises) at
            # plan time: the value's text, or an empty text that only exists where c.when holds
            if c.value is None:
                text = f"(CASE WHEN {c.when} THEN '' END)"
            else:
                text = f"COALESCE({self.d.to_text(c.value)}, 'NULL')"
            fail = self.d.fail(c.message, text)
            branches.append(f"WHEN {c.when} THEN {self.d.array([fail]) if array else fail}")
        if not branches:
            return expr
        return f"(CASE {' '.join(branches)} ELSE {expr} END)"


_LITERAL = re.compile(r"^\(?'?-?[0-9.]+(e[-+]?[0-9]+)?'?(::float8)?\)?$")


def _simple(expr: str) -> bool:
    """A quoted column, or a number literal as the dialects write it."""
    if expr.startswith('"') and expr.endswith('"') and expr.count('"') == 2:
        return True
    return bool(_LITERAL.match(expr))


def in_out(stage: SavedStage) -> list[tuple[str, str]]:
    """The (input, output) column pairs of a stage with ``inputCol(s)``/``outputCol(s)``."""
    if "inputCols" in stage.explicit:
        ins, outs = list(stage.param("inputCols")), list(stage.param("outputCols") or ())
        if len(ins) != len(outs):
            raise refuse(stage, f"it has {len(ins)} inputCols but {len(outs)} outputCols")
        return list(zip(ins, outs, strict=True))
    if stage.param("inputCol") is None:
        raise refuse(stage, "it has neither inputCol nor inputCols")
    return [(str(stage.param("inputCol")), str(stage.param("outputCol")))]


def model_checks(stage: SavedStage, features: Vector) -> list[Check]:
    """The checks a model raises: its features' own, and Spark's error on a null vector."""
    checks = list(features.checks)
    if features.null_when is not None:
        message = f"{stage.uid}: {stage.name} got a null features vector"
        checks.append(Check(features.null_when, message, None))
    return checks


def checks_of(*values: Value) -> tuple[Check, ...]:
    out: list[Check] = []
    for v in values:
        out += v.checks
    return tuple(out)
