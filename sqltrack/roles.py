"""Roles on PostgreSQL: readers and writers of a store, enforced by the database.

``grant(backend, role, kind)`` (``sqltrack db grant``) gives an existing login role one
of two sets of privileges on a store, and records it in ``sqltrack.role_grants``:

* a **reader** may read every table and view of ``sqltrack`` and every dataset table of
  ``sqltrack_data``, also those created after the grant, and write nothing;
* a **writer** may log runs, params, metrics, tags, artifacts, datasets and models, and
  update exactly what sqltrack itself updates (a run's end, tags, an artifact being
  written, a dataset overwritten while its run runs, journal progress, run leases).

Privileges alone cannot say "not once the run has ended"; the triggers of migration
``0007_roles`` do (see ``ddl/postgres/0007_roles.sql``): they refuse, for every role but
the tables' owner, a change to an ended run, rows added to an ended run, and any UPDATE
or DELETE of append-only records. The owner, the role that ran ``sqltrack db upgrade``,
keeps full rights. DuckDB has no logins: there the file's permissions are the only
access control.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqltrack import schema
from sqltrack.backends import Backend, Session
from sqltrack.errors import (
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
    SchemaOutOfDateError,
)
from sqltrack.sqltext import Fragment, compose, ident

__all__ = ["KINDS", "READER", "WRITER", "RoleGrant", "grant", "grants"]

READER = "reader"
WRITER = "writer"
KINDS = (READER, WRITER)
CATALOG_SCHEMA = "sqltrack"
DATA_SCHEMA = "sqltrack_data"

# Tables sqltrack itself updates: a writer may UPDATE them, within what the guards of
# 0007_roles allow (a run ends once; tags change value; artifacts and datasets change
# only while their run runs; a chain's head moves forward). Every other table is
# append-only for a writer, but for the bookkeeping of WRITER_DELETES.
WRITER_UPDATES = frozenset(
    {
        "runs",
        "tags",
        "experiment_tags",
        "artifacts",
        "datasets",
        "journal_progress",
        "run_leases",
        "ledger_heads",  # moved forward by each append (compare-and-set), never back
        "staging_writers",
        "registered_model_tags",  # the last value wins, as for run tags
    }
)
# Bookkeeping a writer also deletes from: the row of a dataset staging area goes with it
# (its own writes, and the janitor's removal of a gone writer's staging).
WRITER_DELETES = frozenset({"staging_writers"})
# Tables a writer only reads: the migrations and the grants themselves.
WRITER_READS = frozenset({"schema_migrations", "role_grants"})


@dataclass(frozen=True)
class RoleGrant:
    """What ``grant`` did: the role, its kind, how many catalog tables and views and
    dataset tables it may now read, and the dataset tables the granting login could not
    share (owned by a role it cannot act for; grant again as a superuser)."""

    role: str
    kind: str
    owner: str
    catalog_objects: int
    dataset_tables: int
    not_shared: tuple[str, ...]


def _role_name(role: object) -> str:
    if not isinstance(role, str) or not role or len(role.encode()) > 63 or "\x00" in role:
        raise InvalidInputError(
            f"role name {role!r} must be a PostgreSQL role name (1 to 63 bytes, no NUL)"
        )
    return role


def _owner(s: Session, uri: str) -> str:
    rows = s.query(
        "SELECT pg_get_userbyid(c.relowner) FROM pg_class c WHERE c.oid = "
        "to_regclass('sqltrack.runs')"
    )
    if not rows or rows[0][0] is None:
        raise NotFoundError(f"{uri} holds no sqltrack store; run: sqltrack db upgrade {uri}")
    return str(rows[0][0])


def _check_role(s: Session, role: str, owner: str, uri: str) -> None:
    rows = s.query("SELECT rolsuper FROM pg_roles WHERE rolname = ?", (role,))
    if not rows:
        raise NotFoundError(
            f"role {role!r} does not exist on the server of {uri}; create it first "
            f"(CREATE ROLE {ident(role, plain=False)} LOGIN), then grant again"
        )
    if rows[0][0]:
        raise InvalidInputError(
            f"role {role!r} is a superuser: PostgreSQL lets it do anything, so no grant can "
            "limit it; use a role without SUPERUSER"
        )
    if s.query("SELECT pg_has_role(?, ?, 'MEMBER')", (role, owner))[0][0]:
        raise InvalidInputError(
            f"role {role!r} is (or is a member of) {owner!r}, the owner of the store, which "
            "keeps full rights; grant to a role that is not a member of the owner"
        )


def _check_granter(s: Session, owner: str, uri: str) -> None:
    if not s.query("SELECT pg_has_role(current_user, ?, 'MEMBER')", (owner,))[0][0]:
        who = s.query("SELECT current_user")[0][0]
        raise PermissionDeniedError(
            f"{uri}: role {who!r} may not grant access to this store; run `sqltrack db grant` "
            f"as its owner {owner!r} (the role that ran `sqltrack db upgrade`) or a superuser"
        )


def _catalog(s: Session) -> list[tuple[str, bool]]:
    """Every table and view of the catalog schema, with whether it is a view."""
    rows = s.query(
        "SELECT c.relname, c.relkind IN ('v', 'm') FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = ? AND c.relkind IN ('r', 'p', 'v', 'm') ORDER BY c.relname",
        (CATALOG_SCHEMA,),
    )
    return [(str(r[0]), bool(r[1])) for r in rows]


def _writer_privileges(table: str, is_view: bool) -> Fragment:
    if is_view or table in WRITER_READS:
        return Fragment("SELECT")
    if table in WRITER_DELETES:
        return Fragment("SELECT, INSERT, UPDATE, DELETE")
    if table in WRITER_UPDATES:
        return Fragment("SELECT, INSERT, UPDATE")
    return Fragment("SELECT, INSERT")


def _revoke(s: Session, role: Fragment, owner: Fragment) -> None:
    """Start from nothing, so that a writer granted --reader can no longer write."""
    for sql in (
        "REVOKE ALL ON ALL TABLES IN SCHEMA {cat} FROM {role}",
        "REVOKE ALL ON ALL SEQUENCES IN SCHEMA {cat} FROM {role}",
        "REVOKE ALL ON SCHEMA {cat}, {data} FROM {role}",
        "ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA {cat} REVOKE ALL ON TABLES "
        "FROM {role}",
        "ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA {cat} REVOKE ALL ON SEQUENCES "
        "FROM {role}",
        "ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA {data} REVOKE ALL ON TABLES "
        "FROM {role}",
    ):
        s.execute(
            compose(sql, role=role, owner=owner, cat=ident(CATALOG_SCHEMA), data=ident(DATA_SCHEMA))
        )


def _share_datasets(s: Session, role: Fragment) -> tuple[int, tuple[str, ...]]:
    """SELECT on every stored dataset table the granting login may share."""
    rows = s.query(
        "SELECT d.table_name, n.nspname, c.relname, has_table_privilege(current_user, c.oid, "
        "'SELECT WITH GRANT OPTION') FROM sqltrack.datasets d "
        "JOIN pg_class c ON c.oid = to_regclass(d.table_name) "
        "JOIN pg_namespace n ON n.oid = c.relnamespace ORDER BY d.dataset_id"
    )
    shared, skipped = 0, []
    for table, schema_name, name, grantable in rows:
        if not grantable:
            skipped.append(str(table))
            continue
        t = ident(str(schema_name), str(name), plain=False)
        s.execute(compose("GRANT SELECT ON {t} TO {role}", t=t, role=role))
        shared += 1
    return shared, tuple(skipped)


def grant(backend: Backend, role: str, kind: str) -> RoleGrant:
    """Make the existing PostgreSQL role ``role`` a ``reader`` or a ``writer`` of the store
    (replacing what it had), in one transaction; run it as the store's owner or a
    superuser. Granting again is harmless: do it after ``sqltrack db upgrade`` so that
    writers may update tables new migrations add."""
    role = _role_name(role)
    if kind not in KINDS:
        raise InvalidInputError(f"role kind {kind!r} is not one of {', '.join(KINDS)}")
    if not backend.capabilities.roles:
        raise InvalidInputError(
            f"{backend.uri}: a DuckDB file has no logins, so it has no roles to grant; give "
            "auditors a read-only copy of the file (chmod a-w, or cp) and open it with "
            "read-only commands"
        )
    todo = schema.pending(backend)
    if todo:
        raise SchemaOutOfDateError(
            f"the store {backend.uri} is missing {', '.join(m.name for m in todo)}; run: "
            f"sqltrack db upgrade {backend.uri}"
        )
    with backend.transaction() as s:
        owner = _owner(s, backend.uri)
        _check_granter(s, owner, backend.uri)
        _check_role(s, role, owner, backend.uri)
        r, o = ident(role, plain=False), ident(owner, plain=False)
        cat, data = ident(CATALOG_SCHEMA), ident(DATA_SCHEMA)
        _revoke(s, r, o)
        objects = _catalog(s)
        if kind == READER:
            s.execute(
                compose("GRANT USAGE ON SCHEMA {cat}, {data} TO {r}", cat=cat, data=data, r=r)
            )
            s.execute(compose("GRANT SELECT ON ALL TABLES IN SCHEMA {cat} TO {r}", cat=cat, r=r))
            defaults = [
                "ALTER DEFAULT PRIVILEGES FOR ROLE {o} IN SCHEMA {cat} GRANT SELECT ON TABLES "
                "TO {r}"
            ]
        else:
            s.execute(compose("GRANT USAGE ON SCHEMA {cat} TO {r}", cat=cat, r=r))
            s.execute(compose("GRANT USAGE, CREATE ON SCHEMA {data} TO {r}", data=data, r=r))
            for table, is_view in objects:
                s.execute(
                    compose(
                        "GRANT {privileges} ON {t} TO {r}",
                        privileges=_writer_privileges(table, is_view),
                        t=ident(CATALOG_SCHEMA, table),
                        r=r,
                    )
                )
            s.execute(compose("GRANT USAGE ON ALL SEQUENCES IN SCHEMA {cat} TO {r}", cat=cat, r=r))
            defaults = [
                "ALTER DEFAULT PRIVILEGES FOR ROLE {o} IN SCHEMA {cat} GRANT SELECT, INSERT "
                "ON TABLES TO {r}",
                "ALTER DEFAULT PRIVILEGES FOR ROLE {o} IN SCHEMA {cat} GRANT USAGE "
                "ON SEQUENCES TO {r}",
            ]
        # Dataset tables the owner creates later; those a writer creates are shared by the
        # datasets_share trigger, in the transaction that publishes them.
        defaults.append(
            "ALTER DEFAULT PRIVILEGES FOR ROLE {o} IN SCHEMA {data} GRANT SELECT ON TABLES TO {r}"
        )
        for sql in defaults:
            s.execute(compose(sql, o=o, r=r, cat=cat, data=data))
        shared, skipped = _share_datasets(s, r)
        s.execute(
            "INSERT INTO sqltrack.role_grants (role_name, kind) VALUES (?, ?) "
            "ON CONFLICT (role_name) DO UPDATE SET kind = excluded.kind, "
            "granted_at = now(), granted_by = session_user",
            (role, kind),
        )
    return RoleGrant(role, kind, owner, len(objects), shared, skipped)


def grants(backend: Backend) -> list[tuple[str, str, object, str]]:
    """``(role, kind, granted_at, granted_by)`` of every role granted, by name."""
    with backend.session(read_only=True) as s:
        rows = s.query(
            "SELECT role_name, kind, granted_at, granted_by FROM sqltrack.role_grants "
            "ORDER BY role_name"
        )
    return [(str(r[0]), str(r[1]), r[2], str(r[3])) for r in rows]
