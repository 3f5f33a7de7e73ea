"""The SQL text that differs between DuckDB and PostgreSQL in a compiled model.

A compiled model is SQL text that other clients run (a view read by psql or the duckdb
CLI), so its constants are literals, not bound parameters: every literal here is produced
from a Python value by this module (numbers by ``repr``, strings by
:func:`sqltrack.identifiers.quote_literal`), never from user text.

The two dialects differ in:

- **double literals**: a plain ``1.5`` is DECIMAL in DuckDB and NUMERIC in PostgreSQL, and
  DECIMAL sums overflow; DuckDB types ``1.5e0`` as DOUBLE, PostgreSQL needs ``::float8``;
- **NaN**: DuckDB has ``isnan``; PostgreSQL has none, but orders NaN above every number and
  holds ``'NaN' = 'NaN'``, so ``x = 'NaN'::float8`` tests it;
- **errors at query time** (where Spark's transform raises): DuckDB's ``error(message)``;
  PostgreSQL has no such function, so the message is cast to a number, which fails with
  ``invalid input syntax for type double precision: "<message>"``. The message always holds
  a column value, so the planner cannot fold it into a constant and fail at plan time;
- **exp**: PostgreSQL raises on overflow and underflow where Java returns Infinity and 0;
- **optimisation fences**: PostgreSQL pulls simple subqueries up into their parent and then
  copies each column's expression into every place that reads it (a 30-tree forest over
  indexed categories grew a backend to 17 GB that way); ``OFFSET 0`` keeps a level a level.
  DuckDB keeps projections apart on its own.

The dialect is chosen by the backend's ``capabilities.name`` (the ``ddl/<name>/`` folder),
like the DDL files.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

from sqltrack.errors import InvalidInputError
from sqltrack.identifiers import quote_literal

__all__ = ["DUCKDB", "POSTGRES", "Dialect", "dialect_named"]

# Largest x whose exp(x) is finite, smallest whose exp(x) is not 0 (IEEE doubles).
_EXP_MAX = 709.782712893384
_EXP_MIN = -745.1332191019411


def _repr(value: float) -> str:
    text = repr(float(value))
    if "e" not in text and "." not in text:
        text += ".0"
    return text


class Dialect:
    """The SQL both engines share; :class:`_DuckDB` and :class:`_Postgres` override the rest."""

    name = ""
    double_type = "DOUBLE PRECISION"
    text_type = "TEXT"
    fence = ""  # appended to every level's SELECT (an optimisation fence)

    # -- literals --------------------------------------------------------------------------
    def num(self, value: float) -> str:
        """A DOUBLE literal that parses back to exactly ``value`` (NaN and infinities too)."""
        value = float(value)
        if math.isnan(value):
            return f"CAST('NaN' AS {self.double_type})"
        if math.isinf(value):
            return f"CAST('{'-' if value < 0 else ''}Infinity' AS {self.double_type})"
        text = _repr(value)
        return f"({self._double(text)})" if text.startswith("-") else self._double(text)

    def _double(self, text: str) -> str:
        raise NotImplementedError

    def integer(self, value: int) -> str:
        return str(int(value)) if value >= 0 else f"({int(value)})"

    def string(self, value: str) -> str:
        return quote_literal(value)

    def nums(self, values: Sequence[float]) -> str:
        """A constant DOUBLE array (1-based in both engines)."""
        return self.array([self.num(v) for v in values])

    def array(self, items: Sequence[str]) -> str:
        """An array of DOUBLE expressions."""
        raise NotImplementedError

    # -- expressions -----------------------------------------------------------------------
    def to_double(self, expr: str) -> str:
        return f"CAST({expr} AS {self.double_type})"

    def to_text(self, expr: str) -> str:
        return f"CAST({expr} AS {self.text_type})"

    def is_nan(self, expr: str) -> str:
        raise NotImplementedError

    def exp(self, expr: str) -> str:
        """Java's ``Math.exp``; ``expr`` must be a column or a literal (it may be repeated)."""
        return f"exp({expr})"

    def fail(self, message: str, text: str) -> str:
        """A DOUBLE expression that raises ``message`` followed by ``text`` (a TEXT
        expression that depends on the row) when it is evaluated."""
        raise NotImplementedError

    def _message(self, message: str, text: str) -> str:
        return f"{self.string('sqltrack scoring: ' + message)} || {text}"

    def typeof(self, expr: str) -> str:
        raise NotImplementedError

    def kind(self, type_name: str) -> str:
        """The family of a column type as the engine names it: ``string``, ``integer``,
        ``double``, ``float``, ``decimal``, ``boolean`` or ``other``."""
        t = type_name.strip().lower()
        if t in _STRING or t.startswith(("varchar(", "character varying(")):
            return "string"
        if t in _INTEGER:
            return "integer"
        if t in ("double", "double precision", "float8"):
            return "double"
        if t in ("float", "real", "float4"):
            return "float"
        if re.match(r"^(decimal|numeric)(\(.*\))?$", t):
            return "decimal"
        if t in ("boolean", "bool"):
            return "boolean"
        return "other"


_STRING = frozenset({"varchar", "text", "character varying", "string"})
_INTEGER = frozenset(
    {"tinyint", "smallint", "integer", "bigint", "int", "int2", "int4", "int8"}
    | {"hugeint", "utinyint", "usmallint", "uinteger", "ubigint"}
)


class _DuckDB(Dialect):
    name = "duckdb"
    double_type = "DOUBLE"
    text_type = "VARCHAR"

    def _double(self, text: str) -> str:
        return text if "e" in text else text + "e0"

    def array(self, items: Sequence[str]) -> str:
        return f"CAST([{', '.join(items)}] AS DOUBLE[])"

    def is_nan(self, expr: str) -> str:
        return f"isnan({expr})"

    def fail(self, message: str, text: str) -> str:
        return f"CAST(error({self._message(message, text)}) AS DOUBLE)"

    def typeof(self, expr: str) -> str:
        return f"typeof({expr})"


class _Postgres(Dialect):
    name = "postgres"
    double_type = "float8"
    text_type = "text"
    fence = " OFFSET 0"

    def _double(self, text: str) -> str:
        # a quoted literal becomes one float8 constant when parsed; a bare 0.5 is a NUMERIC
        # constant plus a cast the planner folds, which costs it more time and memory
        return f"'{text}'::float8"

    def array(self, items: Sequence[str]) -> str:
        return f"ARRAY[{', '.join(items)}]::float8[]"

    def is_nan(self, expr: str) -> str:
        return f"({expr} = 'NaN'::float8)"

    def exp(self, expr: str) -> str:
        return (
            f"(CASE WHEN {self.is_nan(expr)} THEN {expr} "
            f"WHEN {expr} > {self.num(_EXP_MAX)} THEN {self.num(math.inf)} "
            f"WHEN {expr} < {self.num(_EXP_MIN)} THEN {self.num(0.0)} ELSE exp({expr}) END)"
        )

    def fail(self, message: str, text: str) -> str:
        return f"CAST({self._message(message, text)} AS float8)"

    def typeof(self, expr: str) -> str:
        return f"CAST(pg_typeof({expr}) AS text)"


DUCKDB: Dialect = _DuckDB()
POSTGRES: Dialect = _Postgres()
_DIALECTS = {"duckdb": DUCKDB, "postgres": POSTGRES}


def dialect_named(name: str) -> Dialect:
    """The dialect of a backend, by its ``capabilities.name``."""
    try:
        return _DIALECTS[name]
    except KeyError:
        raise InvalidInputError(
            f"scoring has no SQL dialect for backend {name!r}; supported: "
            f"{', '.join(sorted(_DIALECTS))}"
        ) from None
