"""DuckDB backend: one file, one writing process at a time.

DuckDB locks the file for the process that opens it read-write, and Spark runs
data-source code in other processes. So this backend never holds the file
longer than it needs: a connection is opened on demand and closed when the call that
needed it ends (or ``SQLTRACK_DUCKDB_IDLE`` seconds later, when that is raised above 0),
and the journal's flusher releases after every batch. When another process holds the
file, opening waits with back-off up to ``SQLTRACK_LOCK_TIMEOUT`` seconds, then raises
:class:`~sqltrack.StoreBusyError` naming the holder DuckDB reports.

The file is opened with a plain ``duckdb.connect(path)``, read-write whenever this user
may write it: its catalog is the file's stem, and a user's own ``duckdb.connect(path)`` in
the same process shares DuckDB's database instance with the tracker instead of
conflicting with it. A file the user may only read is opened read-only (read commands
work; a write is a clear error). New files are written in the storage format
``SQLTRACK_DUCKDB_STORAGE_VERSION`` (default v1.5.0), which the newest duckdb CLI on PyPI
reads. A file whose stem is ``sqltrack`` (the old default name, whose catalog collides
with the ``sqltrack`` schema) is still opened, attached under the alias ``store``; new
files may not take that name. ``duckdb:///:memory:`` is an in-memory store that lives as
long as the process. User SQL (``Tracker.sql``) runs on a separate, locked, read-only
attachment: :meth:`DuckDBBackend.read_query`.
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
    if "read-only mode" in text:
        return TerminalBackendError(
            f"{where} is open read-only (a read command, connect(uri, read_only=True), or a "
            f"file or folder this user may not write): {text}; write as a user who may "
            "write the file and its folder"
        )
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
RW, RO = "read-write", "read-only"


def _first_line(exc: BaseException) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def _is_lock_error(exc: Exception) -> bool:
    text = str(exc).lower()
    return "lock" in text or "file handle conflict" in text


def _is_config_clash(exc: Exception) -> bool:
    """This process already has the file open with another configuration (a user's
    ``duckdb.connect(path, read_only=True)`` while we ask read-write, or the reverse)."""
    return "different configuration" in str(exc)


def _is_permission_error(exc: Exception) -> bool:
    text = str(exc).lower()
    return "permission" in text or "not permitted" in text or "read-only file system" in text


class _SharedFile:
    """The one connection this process keeps to one DuckDB file, shared by every
    backend object on that path (DuckDB refuses a second attachment of the same file
    within a process).

    The file is opened with a plain ``duckdb.connect(path)`` whenever it may be written,
    so that a user's own ``duckdb.connect(path)`` in this process shares DuckDB's database
    instance with the tracker at any moment; read-only only when the backend is a reader,
    the file is not writable, or this process already holds it read-only. The connection
    is closed when the outermost session ends (``SQLTRACK_DUCKDB_IDLE`` = 0, the default),
    so a ``duckdb.connect(path, read_only=True)`` after a tracker call finds the file free.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self.lock = threading.RLock()
        self.con: duckdb.DuckDBPyConnection | None = None
        self.read_only = False
        self.depth = 0  # open sessions (nested in one thread) using self.con
        self.last_used = 0.0
        self.idle = float(config.get("duckdb_idle"))
        self.timeout = float(config.get("lock_timeout"))
        self.reaper: threading.Thread | None = None

    @property
    def memory(self) -> bool:
        return self.path == MEMORY

    @property
    def legacy(self) -> bool:
        return Path(self.path).stem == LEGACY_STEM

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
                f"{_first_line(exc)}; set SQLTRACK_DUCKDB_STORAGE_VERSION to one "
                "DuckDB knows (e.g. v1.5.0)"
            ) from exc
        finally:
            con.close()

    def _connect(self, mode: str) -> duckdb.DuckDBPyConnection:
        import duckdb

        if not self.legacy:
            return duckdb.connect(self.path, read_only=mode == RO)
        con = duckdb.connect(MEMORY)
        try:
            attach = "ATTACH " + quote_literal(self.path) + " AS " + CATALOG
            con.execute(attach + (" (READ_ONLY)" if mode == RO else ""))
            con.execute("USE " + CATALOG)
        except BaseException:
            con.close()
            raise
        return con

    def check_exists(self, create: bool) -> None:
        if os.path.exists(self.path):
            return
        if not create:
            raise NotFoundError(
                f"no DuckDB store at {self.path!r}; check the path (an absolute path "
                "takes four slashes: duckdb:////abs/file.duckdb), or log a run to create it"
            )
        if self.legacy:
            raise InvalidInputError(
                f"a new DuckDB store may not be named {os.path.basename(self.path)!r}: its "
                "catalog would be 'sqltrack', the schema's name, and `sqltrack.runs` would "
                "be ambiguous in the duckdb CLI; use another name, e.g. tracking.duckdb"
            )
        self._create()

    def wait_for(self, attempt: Any, timeout: float, what: str) -> Any:
        """Call ``attempt()`` until it does not raise a lock error, backing off while
        another holder has the file; raise StoreBusyError after ``timeout`` seconds."""
        import duckdb

        deadline = time.monotonic() + timeout
        delay = 0.01
        while True:
            try:
                found = attempt()
            except duckdb.Error as exc:
                if not (_is_lock_error(exc) or _is_config_clash(exc)):
                    raise TerminalBackendError(
                        f"cannot open DuckDB store {self.path!r}: {_first_line(exc)}"
                    ) from exc
                if time.monotonic() >= deadline:
                    raise self._busy(exc, timeout, what) from exc
                time.sleep(delay * random.uniform(0.5, 1.5))
                delay = min(delay * 2, 0.25)
                continue
            return found

    def _busy(self, exc: Exception, timeout: float, what: str) -> StoreBusyError:
        message = str(exc)
        if _is_config_clash(exc) or "file handle conflict" in message.lower():
            return StoreBusyError(
                f"DuckDB store {self.path!r} is open in this process through another "
                f"connection (e.g. duckdb.connect(path, read_only=True)) that does not admit "
                f"{what} for more than {timeout:g} s; close it, or open it with a plain "
                "duckdb.connect(path), which shares the tracker's database instance"
            )
        holder = message.split("Conflicting lock is held in", 1)[-1].split(". See")[0]
        return StoreBusyError(
            f"DuckDB store {self.path!r} is held by another process "
            f"({holder.strip()}) for more than {timeout:g} s; DuckDB admits "
            "one writing process per file. Close that process, raise "
            "SQLTRACK_LOCK_TIMEOUT, or use PostgreSQL for concurrent writers."
        )

    def open(
        self, write: bool, *, reader: bool, wait: float | None = None
    ) -> tuple[duckdb.DuckDBPyConnection, str]:
        """A connection and its mode. A write needs read-write; a read takes read-write when
        it can (so a user's plain connection shares the instance), else read-only; a
        reader's backend takes read-only, else joins the instance this process holds."""
        import duckdb

        if self.memory:
            return duckdb.connect(MEMORY), RW
        self.check_exists(create=not reader)
        modes = [RW] if write else ([RO, RW] if reader else [RW, RO])

        def attempt() -> tuple[duckdb.DuckDBPyConnection, str]:
            last: duckdb.Error | None = None
            for mode in modes:
                try:
                    return self._connect(mode), mode
                except duckdb.Error as exc:
                    last = exc
                    if _is_config_clash(exc) or (
                        mode == RW
                        and not write
                        and (_is_permission_error(exc) or _is_lock_error(exc))
                    ):
                        continue  # try the other mode
                    if _is_permission_error(exc) and write:
                        raise TerminalBackendError(
                            f"cannot open DuckDB store {self.path!r} for writing: "
                            f"{_first_line(exc)}; read-only users can still run read commands"
                        ) from exc
                    raise
            assert last is not None
            raise last

        return self.wait_for(  # type: ignore[no-any-return]
            attempt, self.timeout if wait is None else wait, "writing" if write else "reading"
        )

    def connection(
        self, write: bool, *, reader: bool, wait: float | None = None
    ) -> duckdb.DuckDBPyConnection:
        if self.con is not None and self.read_only and write and self.depth == 0:
            self.close()
        if self.con is None:
            self.con, mode = self.open(write, reader=reader, wait=wait)
            self.read_only = mode == RO
            if not self.memory and self.idle > 0:
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
                if self.depth == 0 and time.monotonic() - self.last_used >= self.idle:
                    self.close()
                    return

    def close(self) -> None:
        if self.con is not None and not self.memory:
            try:
                self.con.close()
            finally:
                self.con = None


def _run_select(
    con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any], timeout: float
) -> pa.Table:
    """Run ``sql`` when DuckDB's own parser also sees exactly one SELECT in it."""
    import duckdb

    try:
        statements = con.extract_statements(sql)
    except duckdb.Error as exc:
        raise InvalidInputError(f"sql {sql.strip()[:80]!r}: {_first_line(exc)}") from exc
    if len(statements) != 1 or statements[0].type != duckdb.StatementType.SELECT:
        kinds = ", ".join(str(s.type).rsplit(".", 1)[-1] for s in statements)
        raise InvalidInputError(
            f"sql {sql.strip()[:80]!r} is {kinds or 'empty'} to DuckDB, not one SELECT: "
            "refused; sqltrack sql is read-only"
        )
    timer = threading.Timer(timeout, con.interrupt)
    timer.daemon = True
    timer.start()
    try:
        rel = con.sql(sql, params=list(params) or None)
        if rel is None:
            raise InvalidInputError(f"sql {sql.strip()[:80]!r} returned no result")
        fetch = getattr(rel, "to_arrow_table", None) or rel.arrow  # duckdb 2 / 1
        return fetch()
    except duckdb.InterruptException as exc:
        raise InvalidInputError(
            f"sql {sql.strip()[:80]!r} ran longer than {timeout:g} s and was cancelled; "
            "narrow the query or raise SQLTRACK_SQL_TIMEOUT"
        ) from exc
    except duckdb.Error as exc:
        raise _map_error(exc, "sql") from exc
    finally:
        timer.cancel()


_FILES: dict[tuple[int, str], _SharedFile] = {}
_FILES_LOCK = threading.Lock()


def _shared(path: str) -> _SharedFile:
    key = (os.getpid(), path)  # after a fork, never reuse the parent's handle
    with _FILES_LOCK:
        if key not in _FILES:
            _FILES[key] = _SharedFile(path)
        return _FILES[key]


def _writable(path: str) -> bool:
    """Whether this user may write the store file (when it exists) and its folder (the
    WAL and the journal live there)."""
    folder = os.path.dirname(path)
    return os.access(folder, os.W_OK) and (not os.path.exists(path) or os.access(path, os.W_OK))


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
        if not read_only and self.path != MEMORY and not _writable(self.path):
            self.read_only = True  # a file this user may only read: read commands still work

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
                not (read_only or self.read_only), reader=self.read_only, wait=lock_wait
            )
            f.depth += 1
            try:
                yield DuckDBSession(con, self.uri)
            finally:
                f.depth -= 1
                f.last_used = time.monotonic()
                if f.idle <= 0 and f.depth == 0:
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

    def read_query(self, sql: str, params: Sequence[Any], *, timeout: float) -> pa.Table:
        """Run one SELECT that :mod:`sqltrack.readsql` accepted (``$n`` placeholders) on
        a connection that cannot write: a separate DuckDB instance with the file attached
        READ_ONLY, external access disabled and the configuration locked, cancelled after
        ``timeout`` seconds. When this process already holds the file through a connection
        of its own (a user's ``duckdb.connect``), DuckDB admits no second instance: the
        query then runs on a cursor of that instance, inside a transaction rolled back
        afterwards, with Python replacement scans off."""
        import duckdb

        f = self._file
        with f.lock:
            if f.memory:  # the tracker's own instance: no second one can see it
                return self._read_shared(f, sql, params, timeout)
            if f.depth == 0:
                f.close()  # our own connection (idle > 0) would block the separate instance
            f.check_exists(create=False)

            def attempt() -> duckdb.DuckDBPyConnection | None:
                try:
                    return self._locked_reader(f)
                except duckdb.Error as exc:
                    if "file handle conflict" in str(exc).lower():
                        return None  # held in this process by a connection of the user's
                    raise

            con = f.wait_for(attempt, f.timeout, "reading")
            if con is not None:
                try:
                    return _run_select(con, sql, params, timeout)
                finally:
                    con.close()
            return self._read_shared(f, sql, params, timeout)

    def _read_shared(
        self, f: _SharedFile, sql: str, params: Sequence[Any], timeout: float
    ) -> pa.Table:
        """On a cursor of the instance this process already has, rolled back afterwards."""
        with f.lock:
            shared = f.connection(False, reader=self.read_only).cursor()
            f.depth += 1
            try:
                shared.execute("SET python_enable_replacements = false")
                shared.execute("BEGIN TRANSACTION")
                try:
                    return _run_select(shared, sql, params, timeout)
                finally:
                    shared.execute("ROLLBACK")
            finally:
                shared.close()
                f.depth -= 1
                if f.idle <= 0 and f.depth == 0:
                    f.close()

    def _locked_reader(self, f: _SharedFile) -> duckdb.DuckDBPyConnection:
        import duckdb

        con = duckdb.connect(
            MEMORY,
            config={
                "autoinstall_known_extensions": False,
                "autoload_known_extensions": False,
                "allow_community_extensions": False,
                "python_enable_replacements": False,
            },
        )
        try:
            alias = CATALOG if f.legacy else Path(f.path).stem
            name = sqltext.ident(alias, plain=False)
            path = sqltext.Fragment(quote_literal(f.path))  # ATTACH takes no bound values
            con.execute(
                sqltext.compose("ATTACH {path} AS {name} (READ_ONLY)", path=path, name=name)
            )
            con.execute(sqltext.compose("USE {name}", name=name))
            con.execute("SET enable_external_access = false")
            con.execute("SET lock_configuration = true")
        except BaseException:
            con.close()
            raise
        return con

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
