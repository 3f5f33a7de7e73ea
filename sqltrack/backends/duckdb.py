"""DuckDB backend: one file, one writing process at a time.

DuckDB locks the file for the process that opens it read-write, and Spark runs
data-source code in other processes. So this backend never holds the file
longer than it needs: a connection is opened on demand, kept while calls keep
coming (so a loop of ``log_metric`` calls does not reopen the file each time),
and closed after ``SQLTRACK_DUCKDB_IDLE`` seconds without use, or at once by
:meth:`release`. When another process holds the file, opening waits with
back-off up to ``SQLTRACK_LOCK_TIMEOUT`` seconds, then raises
:class:`~sqltrack.StoreBusyError` naming the holder DuckDB reports.

The file is attached under the catalog alias ``store`` so that the schema name
``sqltrack`` is never ambiguous with a file called ``sqltrack.duckdb``.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from sqltrack import config, sqltext
from sqltrack.backends import Capabilities, ParsedURI
from sqltrack.errors import (
    BackendError,
    ConflictError,
    InvalidInputError,
    StoreBusyError,
    TerminalBackendError,
)
from sqltrack.identifiers import quote_literal

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa

CAPABILITIES = Capabilities(
    name="duckdb",
    concurrent_writers=False,
    json_type="JSON",
    max_identifier_length=255,
)
CATALOG = "store"


def _map_error(exc: Exception, where: str) -> BackendError | ConflictError | InvalidInputError:
    import duckdb

    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if isinstance(exc, duckdb.ConstraintException):
        return ConflictError(f"{where}: {text}")
    if isinstance(exc, duckdb.ConversionException | duckdb.InvalidInputException):
        return InvalidInputError(f"{where}: {text}")
    return TerminalBackendError(f"DuckDB error in {where}: {text}")


class DuckDBSession:
    def __init__(self, con: duckdb.DuckDBPyConnection, where: str) -> None:
        self._con = con
        self._where = where

    def _run(self, sql: str, params: Sequence[Any]) -> duckdb.DuckDBPyConnection:
        import duckdb

        try:
            return self._con.execute(sql, list(params))
        except duckdb.Error as exc:
            raise _map_error(exc, self._where) from exc

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        cur = self._run(sql, params)
        try:
            row = cur.fetchone()
        except Exception:  # statements without a result set
            return -1
        return int(row[0]) if row and isinstance(row[0], int) else -1

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self._run(sql, params).fetchall()

    def script(self, sql: str) -> None:
        import duckdb

        try:
            self._con.execute(sql)
        except duckdb.Error as exc:
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
        import pyarrow as pa

        arrays = {c: [r[i] for r in rows] for i, c in enumerate(columns)}
        batch = pa.table(arrays)
        view = f"_sqltrack_ins_{threading.get_ident()}"
        self._con.register(view, batch)
        try:
            cols = sqltext.join(", ", (sqltext.ident(c, plain=False) for c in columns))
            sql = sqltext.compose(
                "INSERT INTO {table} ({cols}) SELECT {cols} FROM {view}",
                table=sqltext.ident(*table.split(".")),
                cols=cols,
                view=sqltext.ident(view),
            )
            self._run(sql, ())
        finally:
            self._con.unregister(view)

    def arrow(self, sql: str, params: Sequence[Any] = ()) -> pa.Table:
        import duckdb

        try:
            rel = self._con.sql(sql, params=list(params) or None)
            if rel is None:
                raise InvalidInputError(f"{self._where}: the statement returned no rows")
            fetch = getattr(rel, "to_arrow_table", None) or rel.arrow  # duckdb 2 / 1
            return fetch()
        except duckdb.Error as exc:
            raise _map_error(exc, self._where) from exc

    @property
    def raw(self) -> duckdb.DuckDBPyConnection:
        """The DuckDB connection, for Arrow scans and Parquet reads in bulk paths."""
        return self._con


class _SharedFile:
    """The one connection this process keeps to one DuckDB file, shared by every
    backend object on that path (DuckDB refuses a second attachment of the same file
    within a process)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.lock = threading.RLock()
        self.con: duckdb.DuckDBPyConnection | None = None
        self.read_only = False
        self.last_used = 0.0
        self.idle = float(config.get("duckdb_idle"))
        self.timeout = float(config.get("lock_timeout"))
        self.reaper: threading.Thread | None = None

    def open(self, read_only: bool) -> duckdb.DuckDBPyConnection:
        import duckdb

        deadline = time.monotonic() + self.timeout
        delay = 0.01
        directory = os.path.dirname(self.path)
        if directory and not os.path.isdir(directory):
            raise InvalidInputError(
                f"DuckDB store {self.path!r}: folder {directory!r} does not exist; create it "
                "or point SQLTRACK_URI elsewhere"
            )
        if read_only and not os.path.exists(self.path):
            read_only = False  # first use creates the file
        while True:
            con = duckdb.connect(":memory:")
            try:
                attach = "ATTACH " + quote_literal(self.path) + " AS " + CATALOG
                if read_only:
                    attach += " (READ_ONLY)"
                con.execute(attach)
                con.execute("USE " + CATALOG)
                return con
            except duckdb.IOException as exc:
                con.close()
                message = str(exc)
                if "lock" not in message.lower():
                    raise TerminalBackendError(
                        f"cannot open DuckDB store {self.path!r}: {message}"
                    ) from exc
                if time.monotonic() >= deadline:
                    holder = message.split("Conflicting lock is held in", 1)[-1].split(". See")[0]
                    raise StoreBusyError(
                        f"DuckDB store {self.path!r} is held by another process "
                        f"({holder.strip()}) for more than {self.timeout:g} s; DuckDB admits "
                        "one writing process per file. Close that process, raise "
                        "SQLTRACK_LOCK_TIMEOUT, or use PostgreSQL for concurrent writers."
                    ) from exc
                time.sleep(delay)
                delay = min(delay * 2, 0.25)
            except duckdb.Error as exc:
                con.close()
                raise TerminalBackendError(
                    f"cannot open DuckDB store {self.path!r}: {exc}"
                ) from exc

    def connection(self, read_only: bool) -> duckdb.DuckDBPyConnection:
        if self.con is not None and self.read_only and not read_only:
            self.close()
        if self.con is None:
            self.con = self.open(read_only)
            self.read_only = read_only
            self._start_reaper()
        return self.con

    def _start_reaper(self) -> None:
        if self.idle <= 0 or (self.reaper is not None and self.reaper.is_alive()):
            return
        self.reaper = threading.Thread(target=self._reap, name="sqltrack-duckdb-idle", daemon=True)
        self.reaper.start()

    def _reap(self) -> None:
        while True:
            time.sleep(self.idle / 2)
            with self.lock:
                if self.con is None:
                    return
                if time.monotonic() - self.last_used >= self.idle:
                    self.close()
                    return

    def close(self) -> None:
        if self.con is not None:
            try:
                self.con.close()
            finally:
                self.con = None


_FILES: dict[tuple[int, str], _SharedFile] = {}
_FILES_LOCK = threading.Lock()


def _shared(path: str) -> _SharedFile:
    key = (os.getpid(), path)  # after a fork, never reuse the parent's handle
    with _FILES_LOCK:
        if key not in _FILES:
            _FILES[key] = _SharedFile(path)
        return _FILES[key]


class DuckDBBackend:
    capabilities = CAPABILITIES

    def __init__(self, parsed: ParsedURI) -> None:
        assert parsed.path is not None
        self.path = os.path.abspath(parsed.path)
        self.uri = f"duckdb:///{parsed.path}"

    @property
    def _file(self) -> _SharedFile:
        return _shared(self.path)

    @contextmanager
    def session(self, *, read_only: bool = False) -> Iterator[DuckDBSession]:
        f = self._file
        with f.lock:
            con = f.connection(read_only)
            try:
                yield DuckDBSession(con, self.uri)
            finally:
                f.last_used = time.monotonic()
                if f.idle <= 0:
                    f.close()

    @contextmanager
    def transaction(self, *, read_only: bool = False) -> Iterator[DuckDBSession]:
        import duckdb

        if read_only:
            # Strict read-only (``sqltrack sql``): a fresh READ_ONLY attachment, so the
            # database itself refuses writes whatever the query says.
            f = self._file
            with f.lock:
                f.close()
                con = f.open(True)
                try:
                    con.execute("BEGIN TRANSACTION")
                    yield DuckDBSession(con, self.uri)
                    con.execute("COMMIT")
                except duckdb.Error as exc:
                    raise _map_error(exc, self.uri) from exc
                finally:
                    con.close()
            return
        with self.session() as session:
            con = session.raw
            con.execute("BEGIN TRANSACTION")
            try:
                yield session
            except BaseException:
                try:
                    con.execute("ROLLBACK")
                except duckdb.Error:
                    pass
                raise
            try:
                con.execute("COMMIT")
            except duckdb.Error as exc:
                raise _map_error(exc, self.uri) from exc

    def lock_schema(self, session: Any) -> None:
        """DuckDB already admits one writer per file."""

    def full_uri(self) -> str:
        return f"duckdb:///{self.path}"  # path is absolute: duckdb:////abs/file.duckdb

    def release(self) -> None:
        f = self._file
        with f.lock:
            f.close()

    def close(self) -> None:
        self.release()
