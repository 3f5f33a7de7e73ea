"""Backends: DuckDB (the embedded default) and PostgreSQL (the shared team store).

Both implement :class:`Backend` and declare a frozen :class:`Capabilities`;
generic code reads the flags instead of comparing dialect names. SQL handed to a
backend uses ``?`` placeholders; values are always bound parameters. Driver
imports are lazy so that ``import sqltrack`` stays light.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from sqltrack.errors import InvalidInputError

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["Backend", "Capabilities", "Session", "open_backend", "parse_uri"]


@dataclass(frozen=True)
class Capabilities:
    """What a backend can do; generic code branches on these flags only."""

    name: str  # the ddl/<name>/ folder
    concurrent_writers: bool  # several processes may write at once
    json_type: str  # the column type documented for JSON values
    max_identifier_length: int  # longest table name the engine keeps whole
    roles: bool = False  # logins with privileges the database enforces (sqltrack db grant)


class Session(Protocol):
    """One open connection, inside or outside a transaction."""

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one statement; return the number of rows it changed (or -1)."""

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run one statement and fetch every row."""

    def script(self, sql: str) -> None:
        """Run several parameterless statements (DDL files)."""

    def insert_rows(
        self,
        table: str,
        columns: Sequence[str],
        rows: Sequence[Sequence[Any]],
        types: Sequence[str] | None = None,
    ) -> None:
        """Bulk insert through the engine's fast path (COPY / Arrow scan).

        ``types`` (PostgreSQL type names, one per column) promises that every value is
        already of the Python type psycopg dumps for it (``str`` for text, ``float`` for
        float8, ``int`` for int8, an aware ``datetime`` for timestamptz): PostgreSQL then
        takes a binary COPY instead of a text one. Other engines ignore it."""

    def arrow(self, sql: str, params: Sequence[Any] = ()) -> pa.Table:
        """Run a query and return the result as an Arrow table."""


class Backend(Protocol):
    capabilities: Capabilities
    uri: str  # the URI with any password removed, for messages

    read_only: bool  # opened for reading only: never writes, never creates the store

    def session(
        self, *, read_only: bool = False, lock_wait: float | None = None
    ) -> AbstractContextManager[Session]:
        """A connection in autocommit mode: each statement is its own transaction.
        ``lock_wait`` bounds the wait for a store another process holds (DuckDB)."""

    def transaction(
        self, *, read_only: bool = False, lock_wait: float | None = None
    ) -> AbstractContextManager[Session]:
        """A connection inside one transaction: committed on success, rolled back on error."""

    def read_query(self, sql: str, params: Sequence[Any], *, timeout: float) -> pa.Table:
        """Run one SELECT that :func:`sqltrack.readsql.check` accepted (placeholders
        ``$1, $2, ...``) where nothing can be written, cancelled after ``timeout`` seconds:
        what ``Tracker.sql`` and ``sqltrack sql`` run."""

    def lock_schema(self, session: Session) -> None:
        """Serialise schema migrations across processes (inside a transaction)."""

    def full_uri(self) -> str:
        """A URI another process (Spark's) can open: absolute path, credentials kept."""

    def journal_folder(self) -> str | None:
        """Where this store's journals live, when the backend has a place of its own."""

    def release(self) -> None:
        """Give up any idle connection so that other processes can use the store."""

    def close(self) -> None: ...


@dataclass(frozen=True)
class ParsedURI:
    scheme: str  # "duckdb" or "postgresql"
    path: str | None = None  # DuckDB file
    host: str | None = None
    port: int | None = None
    user: str | None = None
    password: str | None = None
    database: str | None = None
    query: tuple[tuple[str, str], ...] = ()

    def display(self) -> str:
        if self.scheme == "duckdb":
            return f"duckdb:///{self.path}"
        user = f"{self.user}@" if self.user else ""
        port = f":{self.port}" if self.port else ""
        return f"postgresql://{user}{self.host or 'localhost'}{port}/{self.database or ''}"


def parse_uri(uri: str) -> ParsedURI:
    """Parse a store URI, naming the accepted forms when it is not one of them."""
    forms = (
        "duckdb:///relative.duckdb, duckdb:////absolute/path.duckdb, duckdb:///:memory:, "
        "postgresql://user@host:port/db or postgresql+psycopg://user@host:port/db"
    )
    if not isinstance(uri, str) or "://" not in uri:
        raise InvalidInputError(f"store URI {uri!r} is not a URI; use one of: {forms}")
    scheme = uri.split("://", 1)[0].lower()
    if scheme == "duckdb":
        rest = uri.split("://", 1)[1]
        if not rest.startswith("/") or rest == "/":
            raise InvalidInputError(
                f"DuckDB URI {uri!r} has no file path; use duckdb:///relative.duckdb "
                "or duckdb:////absolute/path.duckdb"
            )
        path = rest[1:]
        return ParsedURI("duckdb", path=path)
    if scheme in ("postgresql", "postgres", "postgresql+psycopg", "postgresql+psycopg2"):
        from sqlalchemy.engine import make_url  # the URL seam; lazy (import cost)
        from sqlalchemy.exc import ArgumentError

        try:
            url = make_url(uri.replace("postgres://", "postgresql://", 1))
        except ArgumentError as exc:
            raise InvalidInputError(f"cannot parse store URI {uri!r}: {exc}; use {forms}") from exc
        return ParsedURI(
            "postgresql",
            host=url.host,
            port=url.port,
            user=url.username,
            password=url.password,
            database=url.database,
            query=tuple(sorted((k, str(v)) for k, v in url.query.items())),
        )
    raise InvalidInputError(f"unknown store URI scheme {scheme!r} in {uri!r}; use one of: {forms}")


def open_backend(uri: str, *, read_only: bool = False) -> Backend:
    """The backend of ``uri``; ``read_only`` opens a reader's store that is never
    written or created (a missing DuckDB file is a NotFoundError)."""
    parsed = parse_uri(uri)
    if parsed.scheme == "duckdb":
        from sqltrack.backends.duckdb import DuckDBBackend

        return DuckDBBackend(parsed, read_only=read_only)
    from sqltrack.backends.postgres import PostgresBackend

    return PostgresBackend(parsed, read_only=read_only)
