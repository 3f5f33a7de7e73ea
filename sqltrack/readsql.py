"""Read-only SQL by construction: what ``Tracker.sql`` and ``sqltrack sql`` run.

A query is parsed with sqlglot in the backend's dialect, not matched by a regex, and
accepted only when it is exactly one ``SELECT`` (``WITH``, set operations, subqueries and
DuckDB's ``FROM``-first form included) with no data-modifying or session-changing part
anywhere in it (``INSERT``/``UPDATE``/``DELETE``/``MERGE`` in a CTE, ``SELECT ... INTO``,
``FOR UPDATE``, ``COPY``, ``ATTACH``, ``SET``, ``PRAGMA``, ``INSTALL``, ...), no call of a
function with side effects or access outside the store (files, network, environment,
other sessions, sequences, large objects), and no file named as a table. The backend then
runs it where writing is impossible anyway (:meth:`Backend.read_query`): DuckDB on a
separate read-only attachment with external access disabled and the configuration
locked, PostgreSQL in a READ ONLY transaction that is rolled back, under
``SQLTRACK_SQL_TIMEOUT``.

Parameters are bound where sqlglot's tokenizer finds a ``?`` placeholder: a ``?`` inside a
string literal, a quoted identifier or a comment is text. Placeholders reach the backend
as ``$1, $2, ...`` so no driver re-scans the text for ``?`` or ``%``.
"""

from __future__ import annotations

import fnmatch
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from sqltrack import config
from sqltrack.errors import InvalidInputError

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

    from sqltrack.backends import Backend

__all__ = ["REFUSED_FUNCTIONS", "Checked", "check", "run"]

Output = Literal["rows", "arrow", "pandas"]

# Functions refused on both backends (a PostgreSQL name does not exist on DuckDB and the
# reverse, so one list serves both). Shell-style patterns, matched case-insensitively.
REFUSED_FUNCTIONS: tuple[str, ...] = (
    # DuckDB: files, network, other databases, Python objects, engine state.
    "read_*", "sniff_csv", "glob", "query", "query_table", "getenv", "parquet_*",
    "*_scan", "arrow_scan_dumb", "python_map_function", "json_execute_serialized_sql",
    "*_attach", "*_query", "*_execute", "st_read*", "iceberg_*", "delta_*", "http_*",
    "duckdb_secrets", "which_secret", "*secret*", "checkpoint", "force_checkpoint",
    "enable_*", "disable_*", "truncate_duckdb_logs", "*external_resource*",
    "*grammar_extension*", "setseed", "nextval", "setval", "sleep_ms", "load_aws_credentials",
    # PostgreSQL: large objects, server files, other sessions, configuration, locks.
    "lo_*", "lowrite", "loread", "pg_read_file", "pg_read_binary_file", "pg_ls_*",
    "pg_stat_file", "pg_file_*", "pg_terminate_backend", "pg_cancel_backend",
    "pg_signal_backend", "pg_reload_conf", "pg_rotate_logfile", "pg_logfile_rotate",
    "pg_log_backend_memory_contexts", "dblink*", "set_config", "pg_advisory*",
    "pg_try_advisory*", "txid_*", "pg_current_xact_id*", "pg_notify", "pg_sleep*",
    "pg_switch_wal", "pg_create_restore_point", "pg_backup_*", "pg_start_backup",
    "pg_stop_backup", "pg_promote", "pg_wal_replay_*", "pg_create_*", "pg_drop_*",
    "pg_replication_*", "pg_logical_*", "pg_copy_*_replication_slot", "pg_import_*",
    "pg_stat_reset*", "pg_nextoid", "binary_upgrade_*", "query_to_xml*", "cursor_to_xml*",
    "ts_stat", "pg_prewarm",
)  # fmt: skip

_TOP_LEVEL = ("Select", "Union", "Intersect", "Except", "Subquery", "SetOperation")
_REFUSED_NODES = (
    "Insert", "Update", "Delete", "Merge", "Copy", "Create", "Drop", "Alter",
    "TruncateTable", "Command", "Set", "SetItem", "Use", "Pragma", "Transaction", "Commit",
    "Rollback", "Attach", "Detach", "Install", "Into", "Lock", "Describe", "Show",
    "Summarize", "Cache", "Uncache", "Refresh", "Grant", "Revoke", "Comment", "Analyze",
    "Export", "Kill", "LoadData", "Declare", "Execute", "DDL", "DML",
)  # fmt: skip
_DIALECTS = {"duckdb": "duckdb", "postgres": "postgres"}  # capabilities.name -> sqlglot
_HOW = (
    "sqltrack sql is read-only: it runs one SELECT (or WITH ... SELECT) and nothing else; "
    "to change the store, use psql or the duckdb CLI with a writer's account"
)


@dataclass(frozen=True)
class Checked:
    """A query accepted as read-only: the text to run (placeholders as ``$n``) and the
    number of parameters it takes."""

    sql: str
    parameters: int


def _refuse(what: str) -> InvalidInputError:
    return InvalidInputError(f"{what} is refused; {_HOW}")


def _statement_name(node: Any) -> str:
    """SELECT, DELETE, ... or, for what sqlglot keeps as a raw command, its first word."""
    from sqlglot import exp

    if isinstance(node, exp.Command) and isinstance(node.this, str):
        return node.this.upper()
    return type(node).__name__.upper()


def _refused_function(name: str) -> bool:
    lowered = name.lower()
    return any(fnmatch.fnmatchcase(lowered, pattern) for pattern in REFUSED_FUNCTIONS)


def check(query: object, dialect: str) -> Checked:
    """Accept ``query`` as one read-only SELECT in ``dialect`` (a backend's capabilities
    name), or raise :class:`~sqltrack.InvalidInputError` naming what is refused."""
    import sqlglot
    from sqlglot import exp
    from sqlglot.dialects.dialect import Dialect
    from sqlglot.errors import SqlglotError

    if not isinstance(query, str) or not query.strip():
        raise InvalidInputError(f"sql {query!r}: give one SELECT query as a non-empty string")
    read = _DIALECTS.get(dialect)
    if read is None:
        raise InvalidInputError(f"no SQL dialect known for backend {dialect!r}")
    shown = query.strip()[:80]
    logging.getLogger("sqlglot").setLevel(logging.ERROR)  # no "falling back to Command"
    try:
        tokens = Dialect.get_or_raise(read).tokenize(query)
        trees = [t for t in sqlglot.parse(query, read=read) if t is not None]
    except SqlglotError as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InvalidInputError(
            f"sql {shown!r} cannot be parsed as {dialect} SQL ({first}); only a query that "
            f"parses as one SELECT is run. {_HOW}"
        ) from exc
    if len(trees) != 1:
        kinds = ", ".join(_statement_name(t) for t in trees) or "nothing"
        raise _refuse(f"more than one statement ({kinds}) in {shown!r}")
    tree = trees[0]
    if type(tree).__name__ not in _TOP_LEVEL:
        raise _refuse(f"statement {tokens[0].text.upper()} in {shown!r}")
    refused_nodes = tuple(getattr(exp, n) for n in _REFUSED_NODES if hasattr(exp, n))
    for node in tree.walk():
        if isinstance(node, refused_nodes):
            raise _refuse(f"{_statement_name(node)} inside {shown!r}")
        if isinstance(node, exp.Anonymous) and _refused_function(node.name):
            raise _refuse(f"function {node.name}() in {shown!r}")
        if isinstance(node, exp.Func) and not isinstance(node, exp.Anonymous):
            for name in type(node).sql_names():
                if _refused_function(name):
                    raise _refuse(f"function {name.lower()}() in {shown!r}")
        if isinstance(node, exp.Table) and isinstance(node.this, exp.Identifier):
            start = node.this.meta.get("start")
            if isinstance(start, int) and query[start : start + 1] == "'":
                raise _refuse(f"reading the file {node.this.name!r} as a table in {shown!r}")
    marks = []
    for i, token in enumerate(tokens):
        following = tokens[i + 1] if i + 1 < len(tokens) else None
        if following is not None and following.token_type.name == "L_PAREN":
            if _refused_function(token.text):
                raise _refuse(f"function {token.text.lower()}() in {shown!r}")
        if token.token_type.name == "PLACEHOLDER" and token.text == "?":
            marks.append(token)
        elif token.token_type.name in ("PLACEHOLDER", "PARAMETER"):
            raise InvalidInputError(
                f"sql {shown!r}: parameter {token.text!r} is not supported; write ? where "
                "a value goes and pass the values as params"
            )
    pieces, last = [], 0
    for n, token in enumerate(marks, start=1):
        pieces.append(query[last : token.start])
        pieces.append(f"${n}")
        last = token.end + 1
    pieces.append(query[last:])
    return Checked("".join(pieces), len(marks))


def run(
    backend: Backend, query: str, params: Sequence[Any] = (), *, output: Output = "rows"
) -> tuple[list[str], list[tuple[Any, ...]]] | pa.Table | pd.DataFrame:
    """Check ``query`` and run it read-only; return ``(column names, rows)``, an Arrow
    table or a pandas DataFrame, as ``output`` asks."""
    if output not in ("rows", "arrow", "pandas"):
        raise InvalidInputError(f"output {output!r}: use 'rows', 'arrow' or 'pandas'")
    if isinstance(params, str | bytes) or not isinstance(params, Sequence):
        raise InvalidInputError(
            f"params {params!r} must be a list or tuple of values, one per ? in the query"
        )
    checked = check(query, backend.capabilities.name)
    if checked.parameters != len(params):
        raise InvalidInputError(
            f"sql {query.strip()[:80]!r} has {checked.parameters} ? placeholder(s) but "
            f"{len(params)} param(s) were given; a ? inside quotes is text, not a placeholder"
        )
    timeout = float(config.get("sql_timeout"))
    table = backend.read_query(checked.sql, list(params), timeout=timeout)
    if output == "arrow":
        return table
    if output == "pandas":
        return table.to_pandas()
    names = list(table.column_names)
    columns = [table.column(i).to_pylist() for i in range(table.num_columns)]
    return names, list(zip(*columns, strict=True))
