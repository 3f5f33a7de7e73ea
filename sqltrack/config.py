"""Settings, declared once.

Precedence, for every setting: an explicit argument, then the ``SQLTRACK_*``
environment variable, then the default below. ``sqltrack --help`` and
README list the same table.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

__all__ = ["SETTINGS", "Setting", "get", "store_uri"]


@dataclass(frozen=True)
class Setting:
    name: str
    env: str
    default: str
    help: str


SETTINGS: dict[str, Setting] = {
    s.name: s
    for s in (
        Setting(
            "uri",
            "SQLTRACK_URI",
            "duckdb:///tracking.duckdb",
            "Store URI: duckdb:///relative.duckdb, duckdb:////abs/path.duckdb or "
            "postgresql://user@host:port/db.",
        ),
        Setting("user", "SQLTRACK_USER", "", "User recorded on runs (default: the OS user)."),
        Setting(
            "lock_timeout",
            "SQLTRACK_LOCK_TIMEOUT",
            "30",
            "Seconds to wait for a DuckDB file held by another process before failing.",
        ),
        Setting(
            "duckdb_idle",
            "SQLTRACK_DUCKDB_IDLE",
            "0",
            "Seconds the DuckDB file stays open after a call (0: released at the end of each "
            "call, so other processes and read-only connections of this one get it at once).",
        ),
        Setting(
            "duckdb_storage_version",
            "SQLTRACK_DUCKDB_STORAGE_VERSION",
            "v1.5.0",
            "Storage format of new DuckDB store files (v1.5.0: readable by the duckdb CLI 1.5).",
        ),
        Setting(
            "journal_dir",
            "SQLTRACK_JOURNAL_DIR",
            "",
            "Folder for journals (default: beside a DuckDB file, else ~/.cache/sqltrack/journal).",
        ),
        Setting(
            "journal",
            "SQLTRACK_JOURNAL",
            "on",
            "on: run records go through the durable journal; off: each call writes the store.",
        ),
        Setting(
            "journal_fsync",
            "SQLTRACK_JOURNAL_FSYNC",
            "1",
            "Seconds between fsyncs of the journal (what a machine crash can lose); 0: every call.",
        ),
        Setting(
            "journal_interval",
            "SQLTRACK_JOURNAL_INTERVAL",
            "0.2",
            "Seconds between deliveries of the journal to the store.",
        ),
        Setting(
            "journal_batch",
            "SQLTRACK_JOURNAL_BATCH",
            "20000",
            "Most records delivered in one transaction (bounds the flusher's memory).",
        ),
        Setting(
            "end_wait",
            "SQLTRACK_END_WAIT",
            "60",
            "Seconds end_run and close wait for the journal to reach the store.",
        ),
        Setting(
            "retry",
            "SQLTRACK_RETRY",
            "30",
            "Seconds a bulk write (artifact, dataset, model), a PostgreSQL read or the start "
            "of a PostgreSQL transaction retries a busy or unreachable store.",
        ),
        Setting(
            "lease",
            "SQLTRACK_LEASE",
            "120",
            "Seconds a run's heartbeat stays valid; a RUNNING run past it shows as CRASHED.",
        ),
        Setting(
            "sql_timeout",
            "SQLTRACK_SQL_TIMEOUT",
            "60",
            "Seconds a query of sqltrack sql / Tracker.sql may run before it is cancelled.",
        ),
        Setting(
            "ledger",
            "SQLTRACK_LEDGER",
            "on",
            "on: every record is bound into the ledger's hash chain; off only to measure its "
            "cost (sqltrack verify then reports those records as written behind its back).",
        ),
        Setting(
            "bulk_retry",
            "SQLTRACK_BULK_RETRY",
            "60",
            "Seconds each step of a dataset write waits (with back-off) for a store that is "
            "unreachable or busy before the write gives up.",
        ),
        Setting(
            "connect_timeout",
            "SQLTRACK_CONNECT_TIMEOUT",
            "10",
            "Seconds to wait for a PostgreSQL server to answer a connection.",
        ),
    )
}


LEGACY_DEFAULT_FILE = "sqltrack.duckdb"


def store_uri(explicit: str | None = None) -> str:
    """The store URI: the argument, else ``SQLTRACK_URI``, else the default file. When
    neither is given and only a store under the old default name exists in the working
    directory (``sqltrack.duckdb``, before 0.2), that store is used."""
    uri = get("uri", explicit)
    if explicit is None and not os.environ.get(SETTINGS["uri"].env):
        default_file = SETTINGS["uri"].default.split(":///", 1)[1]
        if not os.path.exists(default_file) and os.path.exists(LEGACY_DEFAULT_FILE):
            return "duckdb:///" + LEGACY_DEFAULT_FILE
    return uri


def get(name: str, explicit: object | None = None) -> str:
    """Resolve a setting: explicit argument, then environment, then default."""
    if explicit is not None:
        return str(explicit)
    setting = SETTINGS[name]
    value = os.environ.get(setting.env)
    if value:
        return value
    return setting.default
