"""DuckDB backend: one file, one writing process at a time.

DuckDB locks the file for the process that opens it read-write, and Spark runs
data-source code in other processes. So this backend never holds the file
longer than it needs: a connection is opened on demand, kept while calls keep
coming, and closed after ``SQLTRACK_DUCKDB_IDLE`` seconds without use, or at once
by :meth:`release` (the journal's flusher releases after every batch). When
another process holds the file, opening waits with back-off up to
``SQLTRACK_LOCK_TIMEOUT`` seconds, then raises :class:`~sqltrack.StoreBusyError`
naming the holder DuckDB reports.

The file is opened with a plain ``duckdb.connect(path)``: its catalog is the file's
stem, and a user's own ``duckdb.connect(path)`` in the same process shares DuckDB's
database instance with the tracker instead of conflicting with it. New files are
written in the storage format ``SQLTRACK_DUCKDB_STORAGE_VERSION`` (default v1.5.0),
which the newest duckdb CLI on PyPI reads. A file whose stem is ``sqltrack`` (the
old default name, whose catalog collides with the ``sqltrack`` schema) is still
opened, attached under the alias ``store``; new files may not take that name.
``duckdb:///:memory:`` is an in-memory store that lives as long as the process.
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqltrack import config, sqltext
from sqltrack.backends import Capabilities, ParsedURI
from sqltrack.errors import (
    BackendError,
    ConflictError,
    InvalidInputError,
    NotFoundError,
    StoreBusyError,
    TerminalBackendError,
    TransientBackendError,
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
    if isinstance(exc, duckdb.FatalException) or "invalidated" in text:
        # DuckDB closed this database instance after a fatal error: reopening cures it.
        return TransientBackendError(f"DuckDB error in {where}: {text}")
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


LEGACY_STEM = "sqltrack"  # catalog name == schema name: attached under CATALOG instead
MEMORY = ":memory:"


def _is_lock_error(exc: Exception) -> bool:
    text = str(exc).lower()
    return "lock" in text or "different configuration" in text or "file handle conflict" in text


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

    @property
    def memory(self) -> bool:
        return self.path == MEMORY

    def _create(self) -> None:
        """Create an empty store file in the configured storage format."""
        import duckdb

        version = config.get("duckdb_storage_version")
        con = duckdb.connect(MEMORY)
        try:
            con.execute(
                "ATTACH "
                + quote_literal(self.path)
                + " AS sqltrack_new (STORAGE_VERSION "
                + quote_literal(version)
                + ")"
            )
            con.execute("DETACH sqltrack_new")
        except duckdb.Error as exc:
            raise InvalidInputError(
                f"cannot create DuckDB store {self.path!r} with storage version {version!r}: "
                f"{str(exc).splitlines()[0]}; set SQLTRACK_DUCKDB_STORAGE_VERSION to one "
                "DuckDB knows (e.g. v1.5.0)"
            ) from exc
        finally:
            con.close()

    def _connect(self, read_only: bool) -> duckdb.DuckDBPyConnection:
        import duckdb

        if Path(self.path).stem != LEGACY_STEM:
            return duckdb.connect(self.path, read_only=read_only)
        con = duckdb.connect(MEMORY)
        try:
            attach = "ATTACH " + quote_literal(self.path) + " AS " + CATALOG
            con.execute(attach + (" (READ_ONLY)" if read_only else ""))
            con.execute("USE " + CATALOG)
        except BaseException:
            con.close()
            raise
        return con

    def open(
        self, read_only: bool, *, create: bool = True, wait: float | None = None
    ) -> duckdb.DuckDBPyConnection:
        import duckdb

        if self.memory:
            return duckdb.connect(MEMORY)
        timeout = self.timeout if wait is None else wait
        deadline = time.monotonic() + timeout
        delay = 0.01
        if not os.path.exists(self.path):
            if not create:
                raise NotFoundError(
                    f"no DuckDB store at {self.path!r}; check the path (an absolute path "
                    "takes four slashes: duckdb:////abs/file.duckdb), or log a run to create it"
                )
            if Path(self.path).stem == LEGACY_STEM:
                raise InvalidInputError(
                    f"a new DuckDB store may not be named {os.path.basename(self.path)!r}: its "
                    "catalog would be 'sqltrack', the schema's name, and `sqltrack.runs` would "
                    "be ambiguous in the duckdb CLI; use another name, e.g. tracking.duckdb"
                )
            self._create()
        want_ro = read_only
        while True:
            try:
                con = self._connect(want_ro)
                return con
            except duckdb.Error as exc:
                message = str(exc)
                if "different configuration" in message and want_ro and create:
                    want_ro = False  # this process already has it open read-write: share it
                    continue
                if isinstance(exc, duckdb.IOException) and "permission" in message.lower():
                    if not want_ro:
                        raise TerminalBackendError(
                            f"cannot open DuckDB store {self.path!r} for writing: {message}; "
                            "read-only users can still run read commands"
                        ) from exc
                if not _is_lock_error(exc):
                    raise TerminalBackendError(
                        f"cannot open DuckDB store {self.path!r}: {message}"
                    ) from exc
                if time.monotonic() >= deadline:
                    holder = message.split("Conflicting lock is held in", 1)[-1].split(". See")[0]
                    raise StoreBusyError(
                        f"DuckDB store {self.path!r} is held by another process "
                        f"({holder.strip()}) for more than {timeout:g} s; DuckDB admits "
                        "one writing process per file. Close that process, raise "
                        "SQLTRACK_LOCK_TIMEOUT, or use PostgreSQL for concurrent writers."
                    ) from exc
                time.sleep(delay * random.uniform(0.5, 1.5))
                delay = min(delay * 2, 0.25)

    def connection(
        self, read_only: bool, *, create: bool = True, wait: float | None = None
    ) -> duckdb.DuckDBPyConnection:
        if self.con is not None and self.read_only and not read_only:
            self.close()
        if self.con is None:
            self.con = self.open(read_only, create=create, wait=wait)
            self.read_only = read_only
            if not self.memory:
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
        if self.con is not None and not self.memory:
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


def _resolve(path: str) -> str:
    """The absolute file path of a URI path, with a hint for a path that lost a slash."""
    if path == MEMORY:
        return path
    resolved = os.path.abspath(path)
    directory = os.path.dirname(resolved)
    if not os.path.isdir(directory):
        hint = ""
        if not os.path.isabs(path) and os.path.isdir(os.path.dirname("/" + path)):
            hint = (
                f"; duckdb:///{path} is relative to the working directory, did you mean "
                f"the absolute path duckdb:////{path} (four slashes)?"
            )
        hint = hint or "; create it or point SQLTRACK_URI elsewhere"
        raise InvalidInputError(f"DuckDB store {path!r}: folder {directory!r} does not exist{hint}")
    return resolved


class DuckDBBackend:
    capabilities = CAPABILITIES

    def __init__(self, parsed: ParsedURI, *, read_only: bool = False) -> None:
        assert parsed.path is not None
        self.path = _resolve(parsed.path)
        self.uri = f"duckdb:///{parsed.path}"
        self.read_only = read_only  # a reader's store: opened read-only, never created

    @property
    def _file(self) -> _SharedFile:
        return _shared(self.path)

    @contextmanager
    def session(
        self, *, read_only: bool = False, lock_wait: float | None = None
    ) -> Iterator[DuckDBSession]:
        f = self._file
        with f.lock:
            con = f.connection(
                read_only or self.read_only, create=not self.read_only, wait=lock_wait
            )
            try:
                yield DuckDBSession(con, self.uri)
            finally:
                f.last_used = time.monotonic()
                if f.idle <= 0:
                    f.close()

    @contextmanager
    def transaction(
        self, *, read_only: bool = False, lock_wait: float | None = None
    ) -> Iterator[DuckDBSession]:
        import duckdb

        with self.session(read_only=read_only, lock_wait=lock_wait) as session:
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

    def journal_folder(self) -> str | None:
        """Journals live beside the file (none for an in-memory store)."""
        return None if self.path == MEMORY else self.path + ".journal"

    def lock_schema(self, session: Any) -> None:
        """DuckDB already admits one writer per file."""

    def full_uri(self) -> str:
        if self.path == MEMORY:
            raise InvalidInputError(
                "an in-memory DuckDB store (duckdb:///:memory:) cannot be opened by Spark's "
                "processes; log datasets to a file store (duckdb:///tracking.duckdb)"
            )
        return f"duckdb:///{self.path}"  # path is absolute: duckdb:////abs/file.duckdb

    def release(self) -> None:
        f = self._file
        with f.lock:
            f.close()

    def close(self) -> None:
        self.release()
