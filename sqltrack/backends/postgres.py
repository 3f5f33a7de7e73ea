"""PostgreSQL backend through psycopg 3: the shared team store.

One connection per process (re-opened after a fork), in autocommit mode so a
single-statement call such as ``log_metric`` costs one round trip; multi-statement
calls run inside ``transaction()``. Bulk rows go through ``COPY``. Errors are
mapped to transient (a retry may help: connection lost, serialization failure,
deadlock) or terminal, and always chained to the driver error.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from sqltrack import config
from sqltrack.backends import Capabilities, ParsedURI
from sqltrack.errors import (
    BackendError,
    ConflictError,
    InvalidInputError,
    TerminalBackendError,
    TransientBackendError,
)

if TYPE_CHECKING:
    import psycopg
    import pyarrow as pa

CAPABILITIES = Capabilities(
    name="postgres",
    concurrent_writers=True,
    json_type="JSONB",
    max_identifier_length=63,
)
_SCHEMA_LOCK_KEY = 0x5C17AC  # pg_advisory_xact_lock key for migrations


def to_pg(sql: str) -> str:
    """Translate sqltrack's ``?`` placeholders to psycopg's ``%s``."""
    return sql.replace("%", "%%").replace("?", "%s")


def _map_error(exc: Exception, where: str) -> BackendError | ConflictError | InvalidInputError:
    import psycopg
    from psycopg import errors as pgerr

    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if isinstance(exc, pgerr.UniqueViolation | pgerr.ForeignKeyViolation | pgerr.CheckViolation):
        return ConflictError(f"{where}: {text}")
    if isinstance(exc, pgerr.DataError | pgerr.InvalidTextRepresentation):
        return InvalidInputError(f"{where}: {text}")
    if isinstance(
        exc,
        psycopg.OperationalError
        | pgerr.SerializationFailure
        | pgerr.DeadlockDetected
        | pgerr.LockNotAvailable,
    ):
        return TransientBackendError(f"PostgreSQL error at {where}: {text}")
    return TerminalBackendError(f"PostgreSQL error at {where}: {text}")


class PostgresSession:
    def __init__(self, conn: psycopg.Connection[Any], where: str) -> None:
        self._conn = conn
        self._where = where

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        import psycopg

        try:
            cur = self._conn.execute(to_pg(sql), list(params) or None)
        except psycopg.Error as exc:
            raise _map_error(exc, self._where) from exc
        return cur.rowcount

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        import psycopg

        try:
            return self._conn.execute(to_pg(sql), list(params) or None).fetchall()
        except psycopg.Error as exc:
            raise _map_error(exc, self._where) from exc

    def script(self, sql: str) -> None:
        import psycopg

        try:
            self._conn.execute(sql.encode())  # bytes: no placeholder parsing, many statements
        except psycopg.Error as exc:
            raise _map_error(exc, self._where) from exc

    def insert_rows(
        self,
        table: str,
        columns: Sequence[str],
        rows: Sequence[Sequence[Any]],
        types: Sequence[str] | None = None,
    ) -> None:
        if not rows:
            return
        import psycopg
        from psycopg import sql as pgsql

        schema, _, name = table.partition(".")
        stmt = pgsql.SQL("COPY {} ({}) FROM STDIN{}").format(
            pgsql.Identifier(schema, name) if name else pgsql.Identifier(schema),
            pgsql.SQL(", ").join(pgsql.Identifier(c) for c in columns),
            pgsql.SQL(" (FORMAT BINARY)" if types else ""),
        )
        try:
            with self._conn.cursor() as cur, cur.copy(stmt) as copy:
                if types:
                    copy.set_types(list(types))
                for row in rows:
                    copy.write_row(row)
        except psycopg.Error as exc:
            raise _map_error(exc, self._where) from exc

    def arrow(self, sql: str, params: Sequence[Any] = ()) -> pa.Table:
        import psycopg
        import pyarrow as pa

        try:
            # Binary results force the extended protocol, which runs exactly one statement:
            # "SELECT 1; COMMIT; DROP ..." is refused instead of escaping READ ONLY.
            cur = self._conn.execute(to_pg(sql), list(params), binary=True)
            names = [d.name for d in cur.description or ()]
            rows = cur.fetchall()
        except psycopg.Error as exc:
            raise _map_error(exc, self._where) from exc
        return pa.table({n: [r[i] for r in rows] for i, n in enumerate(names)})

    @property
    def raw(self) -> psycopg.Connection[Any]:
        """The psycopg connection, for COPY in bulk paths."""
        return self._conn


class PostgresBackend:
    capabilities = CAPABILITIES

    def __init__(self, parsed: ParsedURI, *, read_only: bool = False) -> None:
        self.parsed = parsed
        self.read_only = read_only  # a reader's store: every transaction READ ONLY
        self.uri = parsed.display()
        self._lock = threading.RLock()
        self._conn: psycopg.Connection[Any] | None = None
        self._pid = os.getpid()

    def conninfo(self) -> dict[str, Any]:
        p = self.parsed
        info: dict[str, Any] = {
            "host": p.host or "localhost",
            "port": p.port or 5432,
            "dbname": p.database or (p.user or "postgres"),
            "connect_timeout": int(float(config.get("connect_timeout"))),
            "application_name": "sqltrack",
            # sqltrack's queries are short index lookups; when the planner's cost crosses
            # jit_above_cost, JIT compilation (0.1-0.3 s) dwarfs them. A URI query
            # ``?options=...`` replaces this.
            "options": "-c jit=off",
        }
        if p.user:
            info["user"] = p.user
        if p.password:
            info["password"] = p.password
        info.update(dict(p.query))
        return info

    def connect(self, *, autocommit: bool = True) -> psycopg.Connection[Any]:
        """A new psycopg connection; the message of a failure names host and port."""
        import psycopg

        info = self.conninfo()
        try:
            return psycopg.connect(**info, autocommit=autocommit)
        except psycopg.OperationalError as exc:
            detail = str(exc).strip().splitlines()[-1] if str(exc).strip() else ""
            raise TransientBackendError(
                f"cannot connect to PostgreSQL at {info['host']}:{info['port']} "
                f"(database {info['dbname']!r}, user {info.get('user', 'default')!r}): "
                f"{detail}. Check that the server runs and the URI is right."
            ) from exc

    def _connection(self) -> psycopg.Connection[Any]:
        if self._pid != os.getpid():
            self._conn = None  # forked: the parent's socket is not ours
            self._pid = os.getpid()
            self._lock = threading.RLock()
        if self._conn is None or self._conn.closed or self._conn.broken:
            self._conn = self.connect()
        return self._conn

    @contextmanager
    def session(
        self, *, read_only: bool = False, lock_wait: float | None = None
    ) -> Iterator[PostgresSession]:
        import psycopg

        with self._lock:
            conn = self._connection()
            if read_only or self.read_only:
                try:
                    with conn.transaction():
                        conn.execute("SET TRANSACTION READ ONLY")
                        yield PostgresSession(conn, self.uri)
                except psycopg.Error as exc:  # e.g. a connection that broke since its last use
                    raise _map_error(exc, self.uri) from exc
            else:
                yield PostgresSession(conn, self.uri)

    @contextmanager
    def transaction(
        self, *, read_only: bool = False, lock_wait: float | None = None
    ) -> Iterator[PostgresSession]:
        import psycopg

        with self._lock:
            conn = self._connection()
            try:
                with conn.transaction():
                    if read_only or self.read_only:
                        conn.execute("SET TRANSACTION READ ONLY")
                    yield PostgresSession(conn, self.uri)
            except psycopg.Error as exc:
                raise _map_error(exc, self.uri) from exc

    def full_uri(self) -> str:
        from sqlalchemy.engine import URL

        p = self.parsed
        url = URL.create(
            "postgresql",
            username=p.user,
            password=p.password,
            host=p.host,
            port=p.port,
            database=p.database,
            query=dict(p.query),
        )
        return url.render_as_string(hide_password=False)

    def lock_schema(self, session: Any) -> None:
        session.execute("SELECT pg_advisory_xact_lock(?)", (_SCHEMA_LOCK_KEY,))

    def journal_folder(self) -> str | None:
        """None: journals live in the user's cache folder, one sub-folder per store."""
        return None

    def release(self) -> None:
        """PostgreSQL admits many connections; nothing to give up."""

    def close(self) -> None:
        with self._lock:
            if self._conn is not None and self._pid == os.getpid():
                self._conn.close()
            self._conn = None
