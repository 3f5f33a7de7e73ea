"""Which tables the ledger covers, and how a row of each is found and read.

A :class:`TableSpec` names a table of the ``sqltrack`` schema, the column whose value
picks the row's chain (its *scope*: the run, or the experiment), the columns that name
the row within that chain, and the columns its digest covers. Writers and the verifier
read rows through the same SELECT list, so what a writer read back is what the verifier
recomputes. A new kind of record (model registry, deployment events) registers its
spec with :func:`register` and records each row it writes (``Book.values`` or
:func:`sqltrack.ledger.record`) in the transaction that writes it.

Metrics are the one table without a natural key: each row carries ``ledger_entry``, the
``entry_id`` of the ledger entry that recorded it plus its position in that entry, and
points are digested per entry, in that order (see ``_encoding.metrics_digest``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqltrack.sqltext import Fragment, compose, ident, join

__all__ = ["TABLES", "TableSpec", "register", "spec"]


@dataclass(frozen=True)
class TableSpec:
    table: str  # in schema sqltrack, e.g. "params"
    key: tuple[str, ...]  # columns naming a row within its chain
    columns: tuple[str, ...]  # columns the digest covers, in order
    scope_column: str = "run_id"
    scope_prefix: str = ""  # "experiment:" for experiment chains
    text_columns: tuple[str, ...] = ()  # JSON columns, read as their text

    @property
    def run_scoped(self) -> bool:
        return not self.scope_prefix

    def scope_of(self, value: object) -> str:
        return f"{self.scope_prefix}{value}"

    def _select_list(self) -> Fragment:
        parts = []
        for c in self.columns:
            if c in self.text_columns:
                parts.append(Fragment(f"CAST({ident(c)} AS TEXT)"))
            else:
                parts.append(ident(c))
        return join(", ", parts)

    def select(self, by_scope: bool = False, by_key: bool = False) -> str:
        """SELECT of the covered columns, optionally for one scope and one key."""
        where = []
        if by_scope:
            where.append(Fragment(f"{ident(self.scope_column)} = ?"))
        if by_key:
            where += [Fragment(f"{ident(c)} = ?") for c in self.key]
        return compose(
            "SELECT {cols} FROM {table}{where}",
            cols=self._select_list(),
            table=ident("sqltrack", self.table),
            where=Fragment(" WHERE " + join(" AND ", where)) if where else Fragment(""),
        )

    def index(self, names: Sequence[str]) -> list[int]:
        return [self.columns.index(n) for n in names]


TABLES: dict[str, TableSpec] = {}


def register(table_spec: TableSpec) -> TableSpec:
    """Cover another table (the hook for registry and deployment events)."""
    TABLES[table_spec.table] = table_spec
    return table_spec


def spec(table: str) -> TableSpec:
    """The spec of ``table`` (``params`` or ``sqltrack.params``)."""
    name = table.split(".", 1)[1] if table.startswith("sqltrack.") else table
    try:
        return TABLES[name]
    except KeyError:
        raise KeyError(f"the ledger does not cover table {table!r}; register a TableSpec") from None


RUNS = register(
    TableSpec(
        "runs",
        key=("run_id",),
        columns=(
            "run_id",
            "experiment_id",
            "run_name",
            "status",
            "user_name",
            "start_time",
            "end_time",
            "parent_run_id",
            "host_name",
            "source_name",
            "source_type",
            "git_commit",
        ),
    )
)
register(TableSpec("params", key=("key",), columns=("run_id", "key", "value")))
register(TableSpec("tags", key=("key",), columns=("run_id", "key", "value")))
register(
    TableSpec(
        "artifacts",
        key=("name",),
        columns=(
            "artifact_id",
            "run_id",
            "name",
            "media_type",
            "size_bytes",
            "sha256",
            "chunk_count",
            "created_at",
        ),
    )
)
register(
    TableSpec(
        "datasets",
        key=("name",),
        columns=(
            "dataset_id",
            "run_id",
            "name",
            "table_name",
            "row_count",
            "size_bytes",
            "spark_schema",
            "fingerprint",
            "ordered",
            "created_at",
            "created_by",
        ),
        text_columns=("spark_schema",),
    )
)
register(
    TableSpec(
        "models",
        key=("name",),
        columns=(
            "model_id",
            "run_id",
            "name",
            "model_class",
            "spark_version",
            "archive_format",
            "size_bytes",
            "sha256",
            "chunk_count",
            "dataset_id",
            "input_columns",
            "input_schema",
            "created_at",
            "created_by",
        ),
        text_columns=("input_columns", "input_schema"),
    )
)
register(
    TableSpec(
        "pipeline_stages",
        key=("stage_index",),
        columns=(
            "run_id",
            "stage_index",
            "stage_path",
            "stage_class",
            "class_path",
            "stage_uid",
            "stage_kind",
            "pipeline_uid",
        ),
    )
)
register(
    TableSpec(
        "feature_transformations",
        key=("source_column", "branch", "step"),
        columns=(
            "run_id",
            "source_column",
            "branch",
            "step",
            "stage_class",
            "stage_uid",
            "input_column",
            "output_column",
        ),
    )
)
register(
    TableSpec(
        "experiments",
        key=("experiment_id",),
        columns=("experiment_id", "name", "created_at", "created_by"),
        scope_column="experiment_id",
        scope_prefix="experiment:",
    )
)
register(
    TableSpec(
        "experiment_tags",
        key=("key",),
        columns=("experiment_id", "key", "value"),
        scope_column="experiment_id",
        scope_prefix="experiment:",
    )
)
