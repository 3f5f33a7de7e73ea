"""Compile a stored Spark model into one SQL query for the store's backend.

:func:`compile_model` resolves the model reference, reads the stages from the stored archive
(:mod:`sqltrack.scoring.archive`, no JVM), describes the source (its columns and their
types, from the database), then lets each stage add its levels and columns
(:mod:`~sqltrack.scoring.features`, :mod:`~sqltrack.scoring.vectors`,
:mod:`~sqltrack.scoring.linear`, :mod:`~sqltrack.scoring.trees`) and writes the query
(:meth:`sqltrack.scoring.plan.Plan.sql`). A stage outside the supported list is refused
with its name and the list; so is a pipeline that does not end in a model.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqltrack.backends import Backend
from sqltrack.errors import InvalidInputError, SqltrackError
from sqltrack.identifiers import quote_ident
from sqltrack.scoring import archive, features, linear, refs, trees, vectors
from sqltrack.scoring.context import Context, refuse
from sqltrack.scoring.dialect import Dialect, dialect_named
from sqltrack.scoring.plan import Plan, Scalar
from sqltrack.sqltext import Fragment, compose

__all__ = ["SUPPORTED_STAGES", "CompiledModel", "compile_model", "create_view"]

StageCompiler = Callable[[archive.SavedStage, Context], None]
_STAGES: dict[str, StageCompiler] = {
    **features.STAGES,
    **vectors.STAGES,
    **linear.STAGES,
    **trees.STAGES,
}
_MODELS = frozenset(linear.STAGES) | frozenset(trees.STAGES)
SUPPORTED_STAGES: tuple[str, ...] = tuple(sorted(c.rsplit(".", 1)[-1] for c in _STAGES))

_TABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$")
_QUERY = re.compile(r"^\s*(\(|select\b|with\b|values\b|from\b|table\b)", re.IGNORECASE)


@dataclass(frozen=True)
class CompiledModel:
    """A stored model as one SQL query over a source."""

    sql: str
    model_ref: str
    model_id: int
    model_class: str
    backend: str  # the dialect: duckdb or postgres
    stages: tuple[str, ...]  # the stages' class names, in order
    columns: tuple[str, ...]  # the query's result columns
    compile_seconds: float

    def __str__(self) -> str:
        return self.sql


def _backend(store: Any) -> Backend:
    backend = getattr(store, "backend", store)
    if not hasattr(backend, "capabilities") or not hasattr(backend, "session"):
        raise InvalidInputError(
            f"compile_model needs a Tracker or a Backend, not {type(store).__name__}"
        )
    return backend  # type: ignore[no-any-return]


def _source(source: str) -> str:
    """The FROM item of ``source``: a table name as written, or a parenthesised query."""
    if not isinstance(source, str) or not source.strip():
        raise InvalidInputError("the scoring source must be a table name or a query")
    text = source.strip()
    if _TABLE.match(text):
        return text
    if ";" in text:
        raise InvalidInputError(
            f"source {text[:60]!r}: give one query without ';' (or a table name)"
        )
    if not _QUERY.match(text):
        raise InvalidInputError(
            f"source {text[:60]!r} is neither a table name (schema.table) nor a query "
            "(SELECT ..., WITH ..., VALUES ...)"
        )
    return f"({text}) AS src"


def _describe(backend: Backend, dialect: Dialect, from_item: str) -> list[tuple[str, str]]:
    """(column name, type family) of the source, asked of the database (read-only)."""
    probe = compose("SELECT * FROM {src} LIMIT 0", src=Fragment(from_item))
    try:
        with backend.transaction(read_only=True) as s:
            names = list(s.arrow(probe).column_names)
            if not names:
                return []
            types = ", ".join(dialect.typeof(f"s.{quote_ident(n, plain=False)}") for n in names)
            typed = compose(
                "SELECT {types} FROM (SELECT 1 AS one) AS one LEFT JOIN "
                "(SELECT * FROM {src} LIMIT 0) AS s ON TRUE",
                types=Fragment(types),
                src=Fragment(from_item),
            )
            row = s.query(typed)[0]
    except SqltrackError as exc:
        raise InvalidInputError(
            f"cannot read the scoring source {from_item[:80]!r} in {backend.uri}: {exc}"
        ) from exc
    return [(n, dialect.kind(str(t))) for n, t in zip(names, row, strict=True)]


def _prefix(columns: list[str]) -> str:
    prefix = "__sq"
    while any(c.startswith(prefix) for c in columns):
        prefix += "_"
    return prefix


def compile_model(store: Any, model_ref: str, source: str) -> CompiledModel:
    """Compile the stored model ``model_ref`` (``runs:/RUN_ID/NAME``) into one SQL query over
    ``source`` (a table name or a query) for ``store``'s backend (a Tracker or a Backend).

    The query returns the source's columns and the model's outputs: ``prediction``, and
    for classifiers ``rawPrediction`` and ``probability`` as DOUBLE arrays and one column
    per class (``probability_0``...), named by the model's column params."""
    started = time.perf_counter()
    backend = _backend(store)
    dialect = dialect_named(backend.capabilities.name)
    stored = refs.resolve(backend, model_ref)
    stages = archive.read_stages(
        backend, stored.model_id, stored.chunk_count, stored.sha256, f"model {model_ref}"
    )
    if not stages:
        raise InvalidInputError(f"model {model_ref} has no stages")
    for stage in stages:
        if stage.class_name not in _STAGES:
            raise refuse(
                stage,
                f"{stage.name} is not supported; the supported stages are "
                f"{', '.join(SUPPORTED_STAGES)}",
            )
    if stages[-1].class_name not in _MODELS:
        raise refuse(
            stages[-1],
            "the pipeline must end in a model (one of "
            f"{', '.join(sorted(c.rsplit('.', 1)[-1] for c in _MODELS))}); "
            f"it ends in {stages[-1].name}",
        )
    for stage in stages[:-1]:
        if stage.class_name in _MODELS:
            raise refuse(stage, "a model inside the pipeline (only the last stage may be one)")
    from_item = _source(source)
    described = _describe(backend, dialect, from_item)
    names = [n for n, _ in described]
    quoted = [quote_ident(n, plain=False) for n in names]
    plan = Plan(dialect, quoted, _prefix(names))
    env: dict[str, Any] = {
        n: Scalar(q, kind) for (n, kind), q in zip(described, quoted, strict=True)
    }
    ctx = Context(plan, env)
    for stage in stages:
        _STAGES[stage.class_name](stage, ctx)
    if ctx.pending_filters:
        ctx.level(stages[-1], "filters")
    sql = plan.sql(from_item, ctx.outputs)
    columns = tuple(names) + tuple(n.strip('"').replace('""', '"') for n, _ in ctx.outputs)
    return CompiledModel(
        sql=sql,
        model_ref=model_ref,
        model_id=stored.model_id,
        model_class=stored.model_class,
        backend=dialect.name,
        stages=tuple(s.name for s in stages),
        columns=columns,
        compile_seconds=time.perf_counter() - started,
    )


def create_view(
    store: Any, model_ref: str, source: str, view: str, *, replace: bool = False
) -> CompiledModel:
    """Create view ``view`` (``name`` or ``schema.name``) scoring ``source`` with the stored
    model; ``replace`` drops a view of that name first. Returns the compiled model."""
    backend = _backend(store)
    parts = view.split(".") if isinstance(view, str) else []
    if not 1 <= len(parts) <= 2:
        raise InvalidInputError(f"view name {view!r}: use name or schema.name")
    name = Fragment(".".join(quote_ident(p) for p in parts))
    compiled = compile_model(backend, model_ref, source)
    drop = compose("DROP VIEW IF EXISTS {name};\n", name=name) if replace else ""
    create = compose("CREATE VIEW {name} AS\n{sql}", name=name, sql=Fragment(compiled.sql))
    with backend.transaction() as s:
        s.script(drop + create)
    return compiled
