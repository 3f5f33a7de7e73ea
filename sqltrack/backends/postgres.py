"""PostgreSQL backend through psycopg 3: the shared team store.

One connection per process (re-opened after a fork), in autocommit mode so a
single-statement call such as ``log_metric`` costs one round trip; multi-statement
calls run inside ``transaction()``. Bulk rows go through ``COPY``.

Errors are mapped by SQLSTATE class (:func:`map_error`) and always chained to the
driver's: only failures that a retry may cure are :class:`~sqltrack.TransientBackendError`
(08 connection, 40 serialization failure and deadlock, 53 insufficient resources, 55P03
lock not available, 57P01-57P03 shutdown and start-up); a value the server refuses (22
data exception, 54 program limit) is :class:`~sqltrack.InvalidInputError`; a constraint
(23505, 23503, 23514) is :class:`~sqltrack.ConflictError`; everything else (42 syntax and
access, 25 transaction state, XX internal, ...) is :class:`~sqltrack.TerminalBackendError`.

Idempotent statements are retried on transient errors with jittered back-off, for at most
``SQLTRACK_RETRY`` seconds (or the caller's ``lock_wait``): reads (statements of a read-only
session, and ``SELECT`` in an autocommit session), and the start of a transaction, before
any of its statements ran. A statement inside a transaction is never re-run here: the
transaction is gone with the connection, and its caller (the journal, a bulk write) retries
the whole of it.
"""

from __future__ import annotations

import os
import random
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

from sqltrack import config
from sqltrack.backends import Capabilities, ParsedURI
from sqltrack.errors import (
    ConflictError,
    InvalidInputError,
    PermissionDeniedError,
    SqltrackError,
    TerminalBackendError,
    TransientBackendError,
)

if TYPE_CHECKING:
    import psycopg
    import pyarrow as pa

__all__ = ["CAPABILITIES", "MAX_BIND_PARAMETERS", "PostgresBackend", "map_error", "to_pg"]

CAPABILITIES = Capabilities(
    name="postgres",
    concurrent_writers=True,
    json_type="JSONB",
    max_identifier_length=63,
    roles=True,
)
_SCHEMA_LOCK_KEY = 0x5C17AC  # pg_advisory_xact_lock key for migrations
# The protocol's limit of bind parameters in one statement (a 16-bit count).
MAX_BIND_PARAMETERS = 65_535

_T = TypeVar("_T")

# SQLSTATEs (and classes) a retry may cure.
_TRANSIENT_CLASSES = ("08", "40", "53")
_TRANSIENT_STATES = frozenset({"55P03", "57P01", "57P02", "57P03"})
_NOT_TRANSIENT = frozenset({"53400"})  # configuration_limit_exceeded: a retry meets it again
_CONFLICT_STATES = frozenset({"23505", "23503", "23514"})
# Phrases of a refused connection that a retry cannot cure (the server said who or what
# is wrong). libpq gives no SQLSTATE for a failed connection attempt.
_CONNECT_TERMINAL = re.compile(
    r"does not exist|authentication failed|no pg_hba\.conf entry|password|permission denied"
    r"|not permitted|invalid (?:connection option|URI|port|sslmode)",
    re.IGNORECASE,
)
_READ_STATEMENT = re.compile(r"\s*(?:SELECT|SHOW|VALUES|TABLE)\b", re.IGNORECASE)


def to_pg(sql: str) -> str:
    """Translate sqltrack's ``?`` placeholders to psycopg's ``%s``."""
    return sql.replace("%", "%%").replace("?", "%s")


def _whole(text: str) -> str:
    """A driver message on one line, every line of it kept."""
    return " ".join(line.strip() for line in text.strip().splitlines() if line.strip())


def _message(exc: BaseException) -> str:
    """The server's primary message with its detail and hint, else the driver's whole text."""
    diag: Any = getattr(exc, "diag", None)
    primary = getattr(diag, "message_primary", None)
    if not primary:
        return _whole(str(exc)) or type(exc).__name__
    parts = [_whole(primary)]
    for label, value in (("detail", diag.message_detail), ("hint", diag.message_hint)):
        if value:
            parts.append(f"{label}: {_whole(value)}")
    return "; ".join(parts)


def map_error(exc: BaseException, where: str) -> SqltrackError:
    """The sqltrack error for a psycopg error (or an encoding error of a parameter)."""
    import psycopg

    if isinstance(exc, UnicodeError):
        return InvalidInputError(
            f"{where}: a value is not valid UTF-8 text ({exc}); remove lone surrogates"
        )
    text = _message(exc)
    state = getattr(exc, "sqlstate", None)
    tag = f" [SQLSTATE {state}]" if state else ""
    if state is None:
        # Raised by libpq or psycopg before or without the server: a lost connection is
        # an OperationalError or InterfaceError; a value psycopg cannot send a DataError.
        if isinstance(exc, psycopg.DataError):
            return InvalidInputError(f"{where}: the driver refused a value: {text}")
        if isinstance(exc, psycopg.ProgrammingError):  # "cannot adapt type ...", placeholders
            return InvalidInputError(
                f"{where}: the driver refused the statement or its parameters: {text}"
            )
        if isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError):
            return TransientBackendError(f"PostgreSQL connection to {where} failed: {text}")
        return TerminalBackendError(f"PostgreSQL error at {where}: {text}")
    if state == "42501":  # insufficient_privilege: a reader writing, or a guard of 0007
        if text.startswith("sqltrack: "):  # a guard's message names the run and the fix
            return PermissionDeniedError(f"{where}: {text.removeprefix('sqltrack: ')}{tag}")
        return PermissionDeniedError(
            f"{where}: the database refused this login: {text}{tag}; see "
            "`sqltrack db grant --help` for what readers and writers may do"
        )
    if state in _CONFLICT_STATES:
        return ConflictError(f"{where}: {text}{tag}")
    if state.startswith("22"):
        return InvalidInputError(f"{where}: the server refused a value: {text}{tag}")
    if state.startswith("54"):
        return InvalidInputError(
            f"{where}: a request exceeds a PostgreSQL limit: {text}{tag}. Shorten the value "
            "or split the request; retrying will not help"
        )
    if state not in _NOT_TRANSIENT and (
        state[:2] in _TRANSIENT_CLASSES or state in _TRANSIENT_STATES
    ):
        return TransientBackendError(f"PostgreSQL error at {where} (a retry may help): {text}{tag}")
    return TerminalBackendError(f"PostgreSQL error at {where}: {text}{tag}")


def _check_parameters(params: Sequence[Any], where: str) -> list[Any] | None:
    if len(params) > MAX_BIND_PARAMETERS:
        raise InvalidInputError(
            f"{where}: a statement with {len(params):,} bound values; PostgreSQL takes at most "
            f"{MAX_BIND_PARAMETERS:,} per statement. Split the request (a shorter IN list)"
        )
    return list(params) or None


class _Retry:
    """Jittered exponential back-off within a deadline, after one immediate retry (the
    usual transient failure is a connection that died while idle: a new one cures it)."""

    def __init__(self, bound: float) -> None:
        self.bound = max(bound, 0.0)
        self.deadline = time.monotonic() + self.bound
        self.delay = 0.05
        self.attempts = 0

    def wait(self) -> bool:
        """Sleep before the next attempt; False when the deadline leaves no room."""
        self.attempts += 1
        if self.attempts == 1:
            return True
        pause = self.delay * random.uniform(0.5, 1.0)
        if time.monotonic() + pause > self.deadline:
            return False
        time.sleep(pause)
        self.delay = min(self.delay * 2, 2.0)
        return True

    def exhausted(self, error: TransientBackendError) -> TransientBackendError:
        if self.attempts <= 1 or not self.bound:
            return error
        return TransientBackendError(
            f"{error} (gave up after {self.attempts} attempts in {self.bound:g} s; "
            "SQLTRACK_RETRY bounds the retries)"
        )


def _retry_bound(lock_wait: float | None) -> float:
    return float(config.get("retry")) if lock_wait is None else lock_wait


class PostgresSession:
    """One connection's statements. In a read-only session each statement runs in a READ
    ONLY transaction that the session opens on first use; reads are retried on transient
    errors within ``retry`` seconds, on a new connection when the old one broke."""

    def __init__(
        self,
        backend: PostgresBackend,
        conn: psycopg.Connection[Any],
        where: str,
        *,
        reader: bool = False,
        retry: float | None = None,
    ) -> None:
        self._backend = backend
        self._conn = conn
        self._where = where
        self._reader = reader  # opens its own READ ONLY transaction
        self._retry = retry  # None: never re-run a statement (inside a transaction)
        self._open = False

    # -- statements -------------------------------------------------------------------
    def _run(self, op: Callable[[psycopg.Connection[Any]], _T], idempotent: bool) -> _T:
        import psycopg

        retry = _Retry(self._retry) if (idempotent and self._retry is not None) else None
        while True:
            try:
                conn = self._ready()
                return op(conn)
            except (psycopg.Error, UnicodeError) as exc:
                error = map_error(exc, self._where)
                cause: BaseException = exc
            except TransientBackendError as exc:  # reconnecting failed
                error, cause = exc, exc
            self._abandon()
            if not isinstance(error, TransientBackendError) or retry is None:
                raise error from cause
            if not retry.wait():
                raise retry.exhausted(error) from cause

    def _ready(self) -> psycopg.Connection[Any]:
        """The connection, reconnected when broken, inside this session's READ ONLY
        transaction when it is a reader's."""
        conn = self._conn
        if (conn.closed or conn.broken) and self._retry is not None:
            # Autocommit or a reader's: nothing is lost with the old connection. Inside a
            # transaction the statement fails instead (never half a transaction).
            conn = self._conn = self._backend._connection()
        if self._reader and not self._open:
            conn.execute("BEGIN TRANSACTION READ ONLY")
            self._open = True
        return conn

    def _abandon(self) -> None:
        """After a failed statement of a reader: end its transaction (a new one is opened
        for the next statement)."""
        if self._reader and self._open:
            self._open = False
            conn = self._conn
            if not (conn.closed or conn.broken):
                try:
                    conn.execute("ROLLBACK")
                except Exception:  # the connection broke meanwhile: it is replaced
                    pass

    def finish(self, ok: bool) -> None:
        """End a reader's transaction: commit (nothing to write) or roll back."""
        import psycopg

        if not (self._reader and self._open):
            return
        self._open = False
        conn = self._conn
        if conn.closed or conn.broken:
            return
        try:
            conn.execute("COMMIT" if ok else "ROLLBACK")
        except psycopg.Error as exc:
            if ok:
                raise map_error(exc, self._where) from exc

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        bound = _check_parameters(params, self._where)
        cur = self._run(lambda c: c.execute(to_pg(sql), bound), idempotent=self._reader)
        return cur.rowcount

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        bound = _check_parameters(params, self._where)
        read = self._reader or bool(_READ_STATEMENT.match(sql))
        return self._run(lambda c: c.execute(to_pg(sql), bound).fetchall(), idempotent=read)

    def script(self, sql: str) -> None:
        # bytes: no placeholder parsing, many statements
        self._run(lambda c: c.execute(sql.encode()), idempotent=False)

    def insert_rows(
        self,
        table: str,
        columns: Sequence[str],
        rows: Sequence[Sequence[Any]],
        types: Sequence[str] | None = None,
    ) -> None:
        if not rows:
            return
        from psycopg import sql as pgsql

        schema, _, name = table.partition(".")
        stmt = pgsql.SQL("COPY {} ({}) FROM STDIN{}").format(
            pgsql.Identifier(schema, name) if name else pgsql.Identifier(schema),
            pgsql.SQL(", ").join(pgsql.Identifier(c) for c in columns),
            pgsql.SQL(" (FORMAT BINARY)" if types else ""),
        )

        def copy_rows(conn: psycopg.Connection[Any]) -> None:
            with conn.cursor() as cur, cur.copy(stmt) as copy:
                if types:
                    copy.set_types(list(types))
                for row in rows:
                    copy.write_row(row)

        self._run(copy_rows, idempotent=False)

    def arrow(self, sql: str, params: Sequence[Any] = ()) -> pa.Table:
        import pyarrow as pa

        bound = _check_parameters(params, self._where) or []

        def fetch(conn: psycopg.Connection[Any]) -> tuple[list[str], list[Any]]:
            # Binary results force the extended protocol, which runs exactly one statement:
            # "SELECT 1; COMMIT; DROP ..." is refused instead of escaping READ ONLY.
            cur = conn.execute(to_pg(sql), bound, binary=True)
            return [d.name for d in cur.description or ()], cur.fetchall()

        names, rows = self._run(fetch, idempotent=self._reader)
        try:
            return pa.table({n: [r[i] for r in rows] for i, n in enumerate(names)})
        except (pa.ArrowException, OverflowError, ValueError, TypeError) as exc:
            raise InvalidInputError(
                f"{self._where}: the result has values Arrow cannot hold ({exc}); cast the "
                "column in the query (for example to TEXT)"
            ) from exc

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
        self.connected = False  # a connection succeeded once: later failures are retried

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
        """A new psycopg connection. A failure names host, port, database and user and
        keeps libpq's whole message; it is transient unless the server named something
        a retry cannot cure (an unknown database or role, a refused password)."""
        import psycopg

        info = self.conninfo()
        try:
            return psycopg.connect(**info, autocommit=autocommit)
        except psycopg.Error as exc:
            detail = _whole(str(exc)) or type(exc).__name__
            terminal = bool(_CONNECT_TERMINAL.search(detail))
            cls = TerminalBackendError if terminal else TransientBackendError
            fix = (
                "Check the URI's database, user and password"
                if terminal
                else "Check that the server runs and the URI's host and port are right"
            )
            raise cls(
                f"cannot connect to PostgreSQL at {info['host']}:{info['port']} "
                f"(database {info['dbname']!r}, user {info.get('user', 'default')!r}): "
                f"{detail}. {fix}."
            ) from exc

    def _connection(self) -> psycopg.Connection[Any]:
        if self._pid != os.getpid():
            self._conn = None  # forked: the parent's socket is not ours
            self._pid = os.getpid()
            self._lock = threading.RLock()
        if self._conn is None or self._conn.closed or self._conn.broken:
            self._conn = self.connect()
            self.connected = True
        return self._conn

    @contextmanager
    def session(
        self, *, read_only: bool = False, lock_wait: float | None = None
    ) -> Iterator[PostgresSession]:
        """Autocommit statements, or with ``read_only`` each in a READ ONLY transaction;
        reads are retried on transient errors for up to ``lock_wait`` seconds (default
        ``SQLTRACK_RETRY``)."""
        from psycopg.pq import TransactionStatus

        with self._lock:
            conn = self._begin(lock_wait, None)
            reader = read_only or self.read_only
            if conn.info.transaction_status != TransactionStatus.IDLE:
                # Inside a caller's transaction on this connection: its statements, never
                # re-run (the transaction would be lost with a new connection).
                yield PostgresSession(self, conn, self.uri)
                return
            session = PostgresSession(
                self, conn, self.uri, reader=reader, retry=_retry_bound(lock_wait)
            )
            try:
                yield session
            except BaseException:
                session.finish(ok=False)
                raise
            session.finish(ok=True)

    def _begin(self, lock_wait: float | None, start: Callable[[Any], Any] | None) -> Any:
        """The connection, and ``start(conn)``'s result, retried while nothing has run:
        a connection found dead is replaced at once, an unreachable server is retried
        with back-off for up to ``lock_wait`` (default ``SQLTRACK_RETRY``) seconds. The
        first connection of a backend is not retried: a wrong URI fails at once."""
        import psycopg

        retry = _Retry(_retry_bound(lock_wait))
        while True:
            try:
                conn = self._connection()
                return conn if start is None else start(conn)
            except (psycopg.Error, TransientBackendError) as exc:
                error = exc if isinstance(exc, SqltrackError) else map_error(exc, self.uri)
                if not isinstance(error, TransientBackendError) or not self.connected:
                    if error is exc:
                        raise
                    raise error from exc
                if not retry.wait():
                    raise retry.exhausted(error) from exc

    @contextmanager
    def transaction(
        self, *, read_only: bool = False, lock_wait: float | None = None
    ) -> Iterator[PostgresSession]:
        """One transaction: committed on success, rolled back on error. Its start is
        retried (see :meth:`_begin`); its statements are not: a transient error inside
        it is raised for the caller to run the whole transaction again."""
        import psycopg

        def start(conn: psycopg.Connection[Any]) -> tuple[Any, Any]:
            tx = conn.transaction()
            tx.__enter__()  # BEGIN: fails here when the connection died while idle
            try:
                if read_only or self.read_only:
                    conn.execute("SET TRANSACTION READ ONLY")
            except BaseException as exc:
                tx.__exit__(type(exc), exc, exc.__traceback__)
                raise
            return conn, tx

        with self._lock:
            conn, tx = self._begin(lock_wait, start)
            try:
                try:
                    yield PostgresSession(self, conn, self.uri)
                except BaseException as exc:
                    if not tx.__exit__(type(exc), exc, exc.__traceback__):
                        raise
                else:
                    tx.__exit__(None, None, None)  # COMMIT
            except (psycopg.Error, UnicodeError) as exc:
                raise map_error(exc, self.uri) from exc

    def read_query(self, sql: str, params: Sequence[Any], *, timeout: float) -> pa.Table:
        """One checked SELECT in a READ ONLY transaction that is always rolled back, under
        ``SET LOCAL statement_timeout``. PostgreSQL's own ``$n`` placeholders (a raw
        cursor): a ``?`` or ``%`` in the text stays text. Binary results force the
        extended protocol, which runs exactly one statement."""
        import psycopg
        import pyarrow as pa
        from psycopg import errors as pgerr

        with self._lock:
            conn = self._connection()
            try:
                with conn.transaction(force_rollback=True):
                    conn.execute("SET TRANSACTION READ ONLY")
                    conn.execute(
                        "SELECT set_config('statement_timeout', %s, true)",
                        (str(max(1, int(timeout * 1000))),),
                    )
                    cur = psycopg.RawCursor(conn)
                    cur.execute(sql, _check_parameters(params, "sql"), binary=True)
                    names = [d.name for d in cur.description or ()]
                    rows = cur.fetchall()
            except pgerr.QueryCanceled as exc:
                raise InvalidInputError(
                    f"sql {sql.strip()[:80]!r} ran longer than {timeout:g} s and was "
                    "cancelled; narrow the query or raise SQLTRACK_SQL_TIMEOUT"
                ) from exc
            except pgerr.ReadOnlySqlTransaction as exc:
                raise InvalidInputError(
                    f"sql {sql.strip()[:80]!r} tried to write: refused; sqltrack sql is "
                    f"read-only ({str(exc).strip().splitlines()[0]})"
                ) from exc
            except (psycopg.Error, UnicodeError) as exc:
                raise map_error(exc, "sql") from exc
        try:
            arrays = [pa.array([r[i] for r in rows]) for i in range(len(names))]
        except (pa.ArrowException, OverflowError, ValueError, TypeError) as exc:
            raise InvalidInputError(
                f"sql: the result has values Arrow cannot hold ({exc}); cast the column in "
                "the query (for example to TEXT)"
            ) from exc
        return pa.Table.from_arrays(arrays, names=names)

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
