"""Settings, declared once.

Precedence, for every setting: an explicit argument, then the ``SQLTRACK_*``
environment variable, then the default below. ``sqltrack --help`` and
README list the same table.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

__all__ = ["SETTINGS", "Setting", "get"]


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
            "duckdb:///sqltrack.duckdb",
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
            "0.25",
            "Seconds of inactivity after which the DuckDB file is released to other processes.",
        ),
        Setting(
            "connect_timeout",
            "SQLTRACK_CONNECT_TIMEOUT",
            "10",
            "Seconds to wait for a PostgreSQL server to answer a connection.",
        ),
    )
}


def get(name: str, explicit: object | None = None) -> str:
    """Resolve a setting: explicit argument, then environment, then default."""
    if explicit is not None:
        return str(explicit)
    setting = SETTINGS[name]
    value = os.environ.get(setting.env)
    if value:
        return value
    return setting.default
