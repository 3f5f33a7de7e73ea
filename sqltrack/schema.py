"""The schema migration runner.

DDL is plain SQL under ``ddl/<backend>/NNNN_name.sql`` (shipped in the wheel as
``sqltrack/_ddl``). Each pending file is applied in its own transaction together
with its ``(name, checksum, applied_at)`` row in ``sqltrack.schema_migrations``.
Forward-only. An applied file whose checksum changed is refused. A database
behind the code raises :class:`~sqltrack.SchemaOutOfDateError` naming the upgrade
command; an empty database is initialised on first use.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from sqltrack.backends import Backend, Session
from sqltrack.errors import NotFoundError, SchemaOutOfDateError

__all__ = ["Migration", "applied", "ensure_schema", "migrations", "pending", "upgrade"]

_NAME_RE = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


@dataclass(frozen=True)
class Migration:
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def ddl_root() -> Path:
    """``sqltrack/_ddl`` in an installed wheel, else ``ddl/`` beside the package."""
    packaged = resources.files("sqltrack") / "_ddl"
    if packaged.is_dir():
        return Path(str(packaged))
    return Path(__file__).resolve().parent.parent / "ddl"


def migrations(backend_name: str) -> list[Migration]:
    folder = ddl_root() / backend_name
    files = sorted(p for p in folder.iterdir() if _NAME_RE.match(p.name))
    return [Migration(p.name, p.read_text(encoding="utf-8")) for p in files]


_MIGRATIONS_TABLE_EXISTS = (
    "SELECT count(*) FROM information_schema.tables WHERE table_catalog = "
    "current_database() AND table_schema = 'sqltrack' AND table_name = 'schema_migrations'"
)


def applied(backend: Backend) -> dict[str, str] | None:
    """``{name: checksum}`` of applied migrations, or None for an empty database."""
    with backend.session(read_only=True) as s:
        exists = s.query(_MIGRATIONS_TABLE_EXISTS)[0][0]
        if not exists:
            return None
        return dict(s.query("SELECT name, checksum FROM sqltrack.schema_migrations"))


def _check(backend: Backend, done: dict[str, str]) -> list[Migration]:
    known = migrations(backend.capabilities.name)
    known_names = {m.name for m in known}
    for m in known:
        if m.name in done and done[m.name] != m.checksum:
            raise SchemaOutOfDateError(
                f"migration {m.name} applied to {backend.uri} differs from this sqltrack's copy "
                "(checksum mismatch); applied migrations must never be edited"
            )
    unknown = sorted(set(done) - known_names)
    if unknown:
        raise SchemaOutOfDateError(
            f"{backend.uri} has migrations this sqltrack does not know ({', '.join(unknown)}); "
            "upgrade the sqltrack package"
        )
    return [m for m in known if m.name not in done]


def pending(backend: Backend) -> list[Migration]:
    done = applied(backend)
    return _check(backend, done or {})


def _apply_in(backend: Backend, s: Session, todo: list[Migration]) -> list[str]:
    """Apply ``todo`` inside the open transaction ``s``, holding the schema lock."""
    backend.lock_schema(s)
    names = []
    for m in todo:
        if s.query(_MIGRATIONS_TABLE_EXISTS)[0][0] and s.query(
            "SELECT 1 FROM sqltrack.schema_migrations WHERE name = ?", (m.name,)
        ):
            continue  # another process applied it while we waited for the lock
        s.script(m.sql)
        s.execute(
            "INSERT INTO sqltrack.schema_migrations (name, checksum) VALUES (?, ?)",
            (m.name, m.checksum),
        )
        names.append(m.name)
    return names


def _apply(backend: Backend, todo: list[Migration]) -> list[str]:
    """Each migration in its own transaction, together with its record."""
    names = []
    for m in todo:
        with backend.transaction() as s:
            names += _apply_in(backend, s, [m])
    return names


def upgrade(backend: Backend) -> list[str]:
    """Apply every pending migration; return the names applied."""
    return _apply(backend, pending(backend))


def ensure_schema(backend: Backend) -> None:
    """Initialise an empty database; refuse one whose schema is behind this code."""
    done = applied(backend)
    todo = _check(backend, done or {})
    if done is None and backend.read_only:
        raise NotFoundError(
            f"{backend.uri} holds no sqltrack store (no sqltrack.schema_migrations); check "
            "the URI, or log a run to create one"
        )
    if done is None:
        # First use: the whole schema in one transaction under the schema lock, so a
        # concurrent first use sees all of it or none of it (never a partial schema).
        with backend.transaction() as s:
            _apply_in(backend, s, todo)
    elif todo:
        raise SchemaOutOfDateError(
            f"the store {backend.uri} is on an older schema (missing "
            f"{', '.join(m.name for m in todo)}); run: sqltrack db upgrade {backend.uri}"
        )
