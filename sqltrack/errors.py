"""The one exception tree of sqltrack.

Every error that leaves sqltrack's public API derives from :class:`SqltrackError`
(property tests of the filter parser and the logging API check it). Each class sets
``__module__ = "sqltrack"`` so tracebacks and pickles name the public package, and
keeps only its message in ``args`` so it pickles across Spark's processes.
Driver errors are always chained (``raise ... from exc``), never dropped.

Only :class:`TransientBackendError` (and its :class:`StoreBusyError`) is worth retrying;
sqltrack itself retries it where a retry is safe (the journal, bulk writes, PostgreSQL
reads and transaction starts, within ``SQLTRACK_RETRY``). Every other class means the
same call will fail the same way.
"""

from __future__ import annotations

__all__ = [
    "BackendError",
    "ConflictError",
    "IntegrityError",
    "InvalidInputError",
    "NotFoundError",
    "PermissionDeniedError",
    "SchemaOutOfDateError",
    "SqltrackError",
    "StoreBusyError",
    "TerminalBackendError",
    "TransientBackendError",
]


class SqltrackError(Exception):
    """Base class of every error sqltrack raises."""

    __module__ = "sqltrack"


class InvalidInputError(SqltrackError, ValueError):
    """A key, name, value, URI or filter is malformed, or exceeds a limit of the engine
    (a number beyond a double or BIGINT, NUL or a lone surrogate in text, an indexed name
    over 2,000 bytes, more than 65,535 bound values); the message names the value, the
    limit and the fix. Raised at the call, before anything is journaled or written."""

    __module__ = "sqltrack"


class NotFoundError(SqltrackError, LookupError):
    """A run, experiment, artifact, dataset or model does not exist."""

    __module__ = "sqltrack"


class ConflictError(SqltrackError):
    """The request contradicts what is stored (a param re-logged with another value,
    logging to a run that is no longer RUNNING, a dataset name taken)."""

    __module__ = "sqltrack"


class IntegrityError(SqltrackError):
    """Stored bytes or rows do not match their recorded sha256 or fingerprint."""

    __module__ = "sqltrack"


class SchemaOutOfDateError(SqltrackError):
    """The database schema is older (or newer) than this version of sqltrack."""

    __module__ = "sqltrack"


class BackendError(SqltrackError):
    """The database failed; see the chained driver error."""

    __module__ = "sqltrack"


class TransientBackendError(BackendError):
    """A failure that a retry may cure: the server unreachable or restarting, a lost
    connection, a serialization failure or deadlock, a lock or resource not available
    (PostgreSQL SQLSTATE classes 08, 40, 53 and 55P03, 57P01-57P03)."""

    __module__ = "sqltrack"


class TerminalBackendError(BackendError):
    """A failure that a retry will not cure: permissions (:class:`PermissionDeniedError`),
    an unknown database or role,
    bad SQL, a read-only transaction, corrupt data, an internal error of the engine."""

    __module__ = "sqltrack"


class PermissionDeniedError(TerminalBackendError):
    """The database refused this login a statement (SQLSTATE 42501): a reader writing, or a
    writer changing what the guards of migration 0007 protect (a record of an ended run, an
    append-only record). The message names the run, the table and the role."""

    __module__ = "sqltrack"


class StoreBusyError(TransientBackendError):
    """Another process holds the DuckDB file longer than the configured lock timeout."""

    __module__ = "sqltrack"
