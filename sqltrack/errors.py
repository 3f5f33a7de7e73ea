"""The one exception tree of sqltrack.

Every error sqltrack raises derives from :class:`SqltrackError`. Each class sets
``__module__ = "sqltrack"`` so tracebacks and pickles name the public package, and
keeps only its message in ``args`` so it pickles across Spark's processes.
Driver errors are always chained (``raise ... from exc``), never dropped.
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
    """A key, name, value, URI or filter is malformed; the message says which and how to fix it."""

    __module__ = "sqltrack"


class NotFoundError(SqltrackError, LookupError):
    """A run, experiment, artifact, dataset or model does not exist."""

    __module__ = "sqltrack"


class ConflictError(SqltrackError):
    """The request contradicts what is stored (a param re-logged with another value,
    logging to a run that is no longer RUNNING, a dataset name taken)."""

    __module__ = "sqltrack"


class PermissionDeniedError(SqltrackError):
    """The database refused the login: a reader writing, or a writer changing a record of
    an ended run (PostgreSQL privileges and the guards of ``sqltrack db grant``)."""

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
    """A failure that a retry may cure (server unreachable, lock held, serialization)."""

    __module__ = "sqltrack"


class TerminalBackendError(BackendError):
    """A failure that a retry will not cure (permissions, corrupt data, bad SQL)."""

    __module__ = "sqltrack"


class StoreBusyError(TransientBackendError):
    """Another process holds the DuckDB file longer than the configured lock timeout."""

    __module__ = "sqltrack"
