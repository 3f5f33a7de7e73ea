"""What a compiled pipeline is made of: values, levels, and the one query they become.

Each Spark column a stage reads or writes is a :class:`Scalar` or a :class:`Vector` whose
SQL is a column reference (or a literal), never a nested expression: every stage writes
its non-trivial results as new columns of a new **level**, and later stages read those
columns by name. So the query grows with the model (linear in its size), never with the
product of the stages' sizes, and every expression is evaluated once per row.

A vector is a list of parts. :class:`Items` holds one SQL expression per element.
:class:`Slots` holds the one-hot shape that StringIndexer -> OneHotEncoder produces and
the scalers keep: one index column, and element ``k`` equals ``on[k]`` on rows whose index
is ``k`` and ``off[k]`` elsewhere, so a 1,000-category vector costs one column, a linear
model's dot product over it is one ``CASE`` and a tree's split on one of its elements is a
test of the index.

A :class:`Check` is a row on which Spark's transform raises (an unseen label under
``handleInvalid='error'``, a NaN in a VectorAssembler...). Checks travel with the values
computed from the offending input and the model raises them in the column every output
depends on: the query fails on exactly the rows, and for exactly the outputs, where
Spark's lazily evaluated transform fails.

:meth:`Plan.sql` writes the levels as a chain of common table expressions, each one
``SELECT`` over the previous one that passes on the source's columns and the internal
columns read later (a liveness pass drops the rest), then the final ``SELECT`` of the
source's columns and the model's outputs.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from sqltrack.scoring.dialect import Dialect
from sqltrack.sqltext import Fragment, compose, join

__all__ = ["Check", "Items", "Level", "Plan", "Scalar", "Slots", "Value", "Vector"]


@dataclass(frozen=True)
class Check:
    """Spark raises on rows where ``when`` holds; ``value`` (SQL, a column) completes the
    message, if any."""

    when: str
    message: str
    value: str | None


@dataclass(frozen=True)
class Scalar:
    sql: str  # a column reference or a literal
    kind: str  # string, integer, double, float, decimal, boolean or other (dialect.kind)
    integral: bool = False  # holds whole numbers only (an index)
    nullable: bool = True
    nan: bool = True  # may hold NaN (doubles only)
    checks: tuple[Check, ...] = ()


@dataclass(frozen=True)
class Items:
    """Vector elements, one SQL expression (a column or a literal) each."""

    exprs: tuple[str, ...]

    @property
    def size(self) -> int:
        return len(self.exprs)


@dataclass(frozen=True)
class Slots:
    """Element ``k`` is ``on[k]`` where ``index = k`` and ``off[k]`` elsewhere (an index
    outside ``0..size-1`` sets every element to its ``off`` value)."""

    index: str
    on: tuple[float, ...]
    off: tuple[float, ...]

    @property
    def size(self) -> int:
        return len(self.on)


Part = Items | Slots


@dataclass(frozen=True)
class Vector:
    parts: tuple[Part, ...]
    null_when: str | None = None  # SQL condition under which Spark's vector is null
    checks: tuple[Check, ...] = ()

    @property
    def size(self) -> int:
        return sum(p.size for p in self.parts)

    def element(self, i: int) -> tuple[Part, int]:
        """The part holding element ``i`` and the element's position in it."""
        if i < 0:
            raise IndexError(i)
        for part in self.parts:
            if i < part.size:
                return part, i
            i -= part.size
        raise IndexError(i)

    def spans(self) -> Iterator[tuple[int, Part]]:
        """(offset of the part's first element, part) for each part."""
        offset = 0
        for part in self.parts:
            yield offset, part
            offset += part.size


Value = Scalar | Vector


@dataclass
class Level:
    label: str
    columns: list[tuple[str, str]] = field(default_factory=list)  # (name, expression)
    filters: list[str] = field(default_factory=list)


_LABEL = re.compile(r"[^A-Za-z0-9_.\-]+")


class Plan:
    """Levels of computed columns over a source with ``source_columns`` (quoted refs)."""

    def __init__(self, dialect: Dialect, source_columns: Sequence[str], prefix: str) -> None:
        self.dialect = dialect
        self.source_columns = list(source_columns)
        self.prefix = prefix
        self.levels: list[Level] = []
        self._count = 0
        self._ref = re.compile('"' + re.escape(prefix) + r'\d+"')

    def level(self, label: str) -> Level:
        """Start a new level (its columns read the levels before it)."""
        lvl = Level(_LABEL.sub(" ", label).strip())
        self.levels.append(lvl)
        return lvl

    def column(self, level: Level, expr: str) -> str:
        """Add a column computing ``expr`` to ``level``; return its reference."""
        self._count += 1
        name = f'"{self.prefix}{self._count}"'
        level.columns.append((name, expr))
        return name

    def refs(self, text: str) -> set[str]:
        return set(self._ref.findall(text))

    def sql(self, source: str, outputs: Sequence[tuple[str, str]]) -> str:
        """The query: ``source`` (a quoted table name or a parenthesised query), the levels,
        then the source's columns and ``outputs`` (quoted name, expression)."""
        live: set[str] = set()
        for _, expr in outputs:
            live |= self.refs(expr)
        kept: list[tuple[list[tuple[str, str]], list[str]]] = []
        defined_before: list[set[str]] = []
        seen: set[str] = set()
        for lvl in self.levels:
            defined_before.append(set(seen))
            seen |= {name for name, _ in lvl.columns}
        for index in range(len(self.levels) - 1, -1, -1):
            lvl = self.levels[index]
            own = [(n, e) for n, e in lvl.columns if n in live]
            passed = sorted(live & defined_before[index], key=self._order)
            kept.append((own, passed))
            live -= {n for n, _ in lvl.columns}
            for _, expr in own:
                live |= self.refs(expr)
            for cond in lvl.filters:
                live |= self.refs(cond)
        kept.reverse()
        prefix = Fragment(self.prefix)
        ctes = [compose('"{p}_l0" AS (SELECT * FROM {src})', p=prefix, src=Fragment(source))]
        for lvl, (own, passed) in zip(self.levels, kept, strict=True):
            if not own and not lvl.filters:
                continue  # nothing computed or filtered here: the next level reads the last
            items = [f"p.{c}" for c in self.source_columns] + [f"p.{n}" for n in passed]
            items += [f"{e} AS {n}" for n, e in own]
            where = f" WHERE {' AND '.join(f'({c})' for c in lvl.filters)}" if lvl.filters else ""
            ctes.append(
                compose(
                    '"{p}_l{i}" AS (\n  -- {label}\n  SELECT {items}\n'
                    '  FROM "{p}_l{prev}" AS p{where}{fence})',
                    p=prefix,
                    i=Fragment(str(len(ctes))),
                    prev=Fragment(str(len(ctes) - 1)),
                    label=Fragment(lvl.label),
                    items=join(",\n    ", (Fragment(x) for x in items)),
                    where=Fragment(where),
                    fence=Fragment(self.dialect.fence),
                )
            )
        final = [f"p.{c}" for c in self.source_columns] + [f"{e} AS {n}" for n, e in outputs]
        return compose(
            'WITH {ctes}\nSELECT {final}\nFROM "{p}_l{last}" AS p',
            ctes=join(",\n", (Fragment(c) for c in ctes)),
            final=join(",\n  ", (Fragment(x) for x in final)),
            p=prefix,
            last=Fragment(str(len(ctes) - 1)),
        )

    def _order(self, name: str) -> int:
        return int(name.strip('"')[len(self.prefix) :])
