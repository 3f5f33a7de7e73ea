"""The model registry: registered models, immutable numbered versions, aliases with history.

A registered model (``churn``) has versions 1, 2, ... Each version points at one model a
run stored with ``log_spark_model`` and keeps that model's sha256 and its training data's
fingerprint as verified when the version was created; versions are never changed. Aliases
(``champion``, ``challenger``, ...) name one version each; every set, move and removal is
an event in ``sqltrack.model_alias_events`` (who, when, from which version to which, why),
and ``sqltrack.model_aliases`` is the view of where each alias points now.

Governance, enforced here for every caller: a version is created only from a run that is
FINISHED and whose training dataset still matches its fingerprint
(:func:`require_governed`, which :mod:`sqltrack.deployments` applies again at deploy time).

Model references (MLflow's forms), resolved in one place, :func:`resolve_model_ref`:

- ``runs:/RUN_ID/NAME``: the model the run stored under ``NAME`` (default ``model``);
- ``models:/NAME/VERSION`` (a number, or ``latest`` for the highest version);
- ``models:/NAME@ALIAS``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any, TypeVar

from sqltrack import _context
from sqltrack.backends import Backend, Session
from sqltrack.entities import RunStatus
from sqltrack.errors import ConflictError, IntegrityError, InvalidInputError, NotFoundError
from sqltrack.identifiers import validate_key, validate_value
from sqltrack.sqltext import Fragment, compose, join, placeholders

__all__ = [
    "ALIAS_RULE",
    "MODEL_NAME_RULE",
    "AliasEvent",
    "RegisteredModel",
    "RegisteredModelVersion",
    "ResolvedModel",
    "alias_history",
    "create_registered_model",
    "delete_registered_model_alias",
    "get_model_version",
    "get_model_version_by_alias",
    "get_registered_model",
    "register_model",
    "require_governed",
    "resolve_model_ref",
    "search_model_versions",
    "search_registered_models",
    "set_registered_model_alias",
    "set_registered_model_tag",
    "validate_alias",
    "validate_model_name",
    "write",
]

_T = TypeVar("_T")

MODEL_NAME_RULE = (
    "1 to 128 ASCII letters, digits, '_', '-' or '.', starting with a letter or a digit"
)
ALIAS_RULE = (
    "1 to 64 lower-case ASCII letters, digits, '_' or '-', starting with a letter; "
    "not 'latest' and not v<number> (those name versions)"
)
_MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
_ALIAS = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")
_VERSION_ALIAS = re.compile(r"^v\d+$")
_RUN_ID = re.compile(r"^[0-9a-f]{32}$")
_REF_FORMS = "runs:/RUN_ID/NAME, models:/NAME/VERSION or models:/NAME@ALIAS"
_ATTEMPTS = 5  # a write that lost a numbering race is retried this often


def _frozen(d: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return MappingProxyType(dict(d or {}))


@dataclass(frozen=True)
class RegisteredModel:
    """A registered model: its versions are :class:`RegisteredModelVersion` rows."""

    name: str
    description: str | None
    created_at: datetime
    user_name: str
    db_user: str | None  # the database login that created it (None on DuckDB: no logins)
    latest_version: int | None
    aliases: Mapping[str, int] = field(default_factory=dict)  # alias -> version, now
    tags: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "aliases", _frozen(self.aliases))
        object.__setattr__(self, "tags", _frozen(self.tags))


@dataclass(frozen=True)
class RegisteredModelVersion:
    """One immutable version of a registered model (MLflow's ``ModelVersion``)."""

    name: str
    version: int
    run_id: str
    model_id: int  # the stored model (sqltrack.models)
    model_name: str  # its name within the run
    source: str  # runs:/RUN_ID/NAME
    description: str | None
    model_sha256: str
    dataset_id: int | None  # the data that trained it, verified at creation
    dataset_fingerprint: str | None
    created_at: datetime
    user_name: str
    db_user: str | None
    aliases: tuple[str, ...] = ()  # aliases pointing at it now


@dataclass(frozen=True)
class AliasEvent:
    """One change of an alias: set (``from_version`` None), moved, or removed
    (``to_version`` None)."""

    name: str
    alias: str
    seq: int
    from_version: int | None
    to_version: int | None
    reason: str | None
    changed_at: datetime
    user_name: str
    db_user: str | None


@dataclass(frozen=True)
class ResolvedModel:
    """The stored model a reference names, with the registered version it went through."""

    ref: str
    model_id: int
    run_id: str
    model_name: str
    model_class: str
    spark_version: str
    sha256: str
    chunk_count: int
    registered_name: str | None = None  # models:/ references only
    version: int | None = None
    alias: str | None = None


# -- validation --------------------------------------------------------------------------
def validate_model_name(name: object) -> str:
    if not isinstance(name, str) or not _MODEL_NAME.match(name):
        raise InvalidInputError(
            f"registered model name {name!r} is not valid: use {MODEL_NAME_RULE}"
        )
    return name


def validate_alias(alias: object) -> str:
    if (
        not isinstance(alias, str)
        or not _ALIAS.match(alias)
        or alias == "latest"
        or _VERSION_ALIAS.match(alias)
    ):
        raise InvalidInputError(f"alias {alias!r} is not valid: use {ALIAS_RULE}")
    return alias


def _version(version: object) -> int:
    if isinstance(version, str) and version.isdigit():
        version = int(version)
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise InvalidInputError(f"model version {version!r} must be a whole number from 1")
    return version


def _text(value: object | None, what: str) -> str | None:
    return None if value is None else validate_value(value, what)


# -- writes: one transaction, retried when a concurrent writer took the same number ------
class _Race(Exception):
    """A numbering insert lost to a concurrent writer: the transaction is retried."""


def write(backend: Backend, what: str, body: Callable[[Session], _T]) -> _T:
    """Run ``body`` in one transaction; retry it when it lost a numbering race
    (:func:`claim`), so concurrent writers each get their own version or seq."""
    for _ in range(_ATTEMPTS):
        try:
            with backend.transaction() as s:
                return body(s)
        except _Race:
            continue
    raise ConflictError(
        f"{what}: other writers changed the same model or target {_ATTEMPTS} times "
        "meanwhile; nothing was written, try again"
    )


def claim(s: Session, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
    """An INSERT that numbers its row ``max + 1``; a collision is a race, not an error."""
    try:
        return s.query(sql, params)
    except ConflictError as exc:
        raise _Race from exc


# -- reading -----------------------------------------------------------------------------
_VERSION_COLUMNS = Fragment(
    "v.name, v.version, v.run_id, v.model_id, m.name, v.source, v.description, "
    "v.model_sha256, v.dataset_id, v.dataset_fingerprint, v.created_at, v.user_name, v.db_user"
)


def _versions(
    s: Session, where: str, params: Sequence[Any], limit: int | None = None
) -> list[RegisteredModelVersion]:
    rows = s.query(
        compose(
            "SELECT {cols} FROM sqltrack.model_versions v "
            "JOIN sqltrack.models m ON m.model_id = v.model_id {where} "
            "ORDER BY v.name, v.version DESC{limit}",
            cols=_VERSION_COLUMNS,
            where=Fragment(where),
            limit=Fragment("" if limit is None else f" LIMIT {int(limit)}"),
        ),
        params,
    )
    aliases: dict[tuple[str, int], list[str]] = {}
    names = sorted({r[0] for r in rows})
    if names:
        for name, alias, version in s.query(
            compose(
                "SELECT name, alias, version FROM sqltrack.model_aliases "
                "WHERE name IN ({marks}) ORDER BY alias",
                marks=placeholders(len(names)),
            ),
            names,
        ):
            aliases.setdefault((name, int(version)), []).append(alias)
    return [
        RegisteredModelVersion(
            name=r[0],
            version=int(r[1]),
            run_id=r[2],
            model_id=int(r[3]),
            model_name=r[4],
            source=r[5],
            description=r[6],
            model_sha256=r[7],
            dataset_id=None if r[8] is None else int(r[8]),
            dataset_fingerprint=r[9],
            created_at=r[10],
            user_name=r[11],
            db_user=r[12],
            aliases=tuple(aliases.get((r[0], int(r[1])), ())),
        )
        for r in rows
    ]


def _require_model(s: Session, name: str, uri: str) -> None:
    if s.query("SELECT 1 FROM sqltrack.registered_models WHERE name = ?", (name,)):
        return
    known = [r[0] for r in s.query("SELECT name FROM sqltrack.registered_models ORDER BY name")]
    shown = ", ".join(known[:20]) + (", ..." if len(known) > 20 else "")
    raise NotFoundError(
        f"registered model {name!r} does not exist in {uri} (registered: {shown or 'none'}); "
        f"create it with register_model('runs:/RUN_ID/model', {name!r}) or "
        f"`sqltrack registry register runs:/RUN_ID/model {name}`"
    )


def _version_row(s: Session, name: str, version: int, uri: str) -> RegisteredModelVersion:
    _require_model(s, name, uri)
    found = _versions(s, "WHERE v.name = ? AND v.version = ?", (name, version))
    if not found:
        have = [int(r[0]) for r in s.query(
            "SELECT version FROM sqltrack.model_versions WHERE name = ? ORDER BY version", (name,)
        )]  # fmt: skip
        raise NotFoundError(
            f"registered model {name!r} has no version {version} (versions: "
            f"{', '.join(map(str, have)) or 'none'}); see `sqltrack registry versions {name}`"
        )
    return found[0]


def _alias_target(s: Session, name: str, alias: str, uri: str) -> int:
    _require_model(s, name, uri)
    rows = s.query(
        "SELECT version FROM sqltrack.model_aliases WHERE name = ? AND alias = ?", (name, alias)
    )
    if not rows:
        have = [f"{a} -> {v}" for a, v in s.query(
            "SELECT alias, version FROM sqltrack.model_aliases WHERE name = ? ORDER BY alias",
            (name,),
        )]  # fmt: skip
        raise NotFoundError(
            f"registered model {name!r} has no alias {alias!r} (aliases: "
            f"{', '.join(have) or 'none'}); set it with "
            f"set_registered_model_alias({name!r}, {alias!r}, VERSION)"
        )
    return int(rows[0][0])


def _latest(s: Session, name: str, uri: str) -> int:
    _require_model(s, name, uri)
    rows = s.query("SELECT max(version) FROM sqltrack.model_versions WHERE name = ?", (name,))
    if rows[0][0] is None:
        raise NotFoundError(f"registered model {name!r} has no versions yet; register one first")
    return int(rows[0][0])


# -- references --------------------------------------------------------------------------
def _parse_ref(ref: object) -> tuple[str, str, str | int | None]:
    """('runs', run_id, model name) or ('models', registered name, version | '@alias')."""
    if not isinstance(ref, str) or ":/" not in ref:
        raise InvalidInputError(f"model reference {ref!r} is not one of: {_REF_FORMS}")
    scheme, _, rest = ref.partition(":/")
    rest = rest.lstrip("/")
    if scheme == "runs":
        run_id, _, name = rest.partition("/")
        if not _RUN_ID.match(run_id):
            raise InvalidInputError(
                f"model reference {ref!r}: {run_id!r} is not a run id (32 lowercase "
                "hexadecimal characters); use runs:/RUN_ID/NAME"
            )
        return "runs", run_id, validate_key(name or "model", "model name")
    if scheme == "models":
        if "@" in rest:
            name, _, alias = rest.partition("@")
            return "models", validate_model_name(name), "@" + validate_alias(alias)
        name, _, version = rest.rpartition("/")
        if name and (version == "latest" or version.isdigit()):
            return (
                "models",
                validate_model_name(name),
                version if version == "latest" else _version(version),
            )
        raise InvalidInputError(
            f"model reference {ref!r}: use models:/NAME/VERSION (a number or 'latest') "
            "or models:/NAME@ALIAS"
        )
    raise InvalidInputError(
        f"model reference {ref!r} has scheme {scheme!r}; use one of: {_REF_FORMS}"
    )


def _stored(s: Session, ref: str, run_id: str, name: str, uri: str) -> tuple[Any, ...]:
    rows = s.query(
        "SELECT model_id, model_class, spark_version, sha256, chunk_count "
        "FROM sqltrack.models WHERE run_id = ? AND name = ?",
        (run_id, name),
    )
    if rows:
        return rows[0]
    names = [r[0] for r in s.query(
        "SELECT name FROM sqltrack.models WHERE run_id = ? ORDER BY name", (run_id,)
    )]  # fmt: skip
    if not names and not s.query("SELECT 1 FROM sqltrack.runs WHERE run_id = ?", (run_id,)):
        raise NotFoundError(f"model reference {ref!r}: run {run_id} does not exist in {uri}")
    raise NotFoundError(
        f"model reference {ref!r}: run {run_id} stored no model {name!r} (it has: "
        f"{', '.join(names) or 'none'}); store one with log_spark_model(model, {name!r})"
    )


def resolve_in(s: Session, ref: str, uri: str) -> ResolvedModel:
    """:func:`resolve_model_ref` inside the caller's session or transaction."""
    scheme, first, second = _parse_ref(ref)
    registered: str | None = None
    version: int | None = None
    alias: str | None = None
    if scheme == "runs":
        run_id, name = first, str(second)
    else:
        registered = first
        if isinstance(second, str) and second.startswith("@"):
            alias = second[1:]
            version = _alias_target(s, registered, alias, uri)
        elif second == "latest":
            version = _latest(s, registered, uri)
        else:
            assert isinstance(second, int)
            version = second
        found = _version_row(s, registered, version, uri)
        run_id, name = found.run_id, found.model_name
    model_id, model_class, spark_version, sha256, chunks = _stored(s, ref, run_id, name, uri)
    return ResolvedModel(
        ref, int(model_id), run_id, name, model_class, spark_version, sha256, int(chunks),
        registered, version, alias,
    )  # fmt: skip


def resolve_model_ref(backend: Backend, ref: str) -> ResolvedModel:
    """The stored model ``ref`` names (``runs:/RUN_ID/NAME``, ``models:/NAME/VERSION``,
    ``models:/NAME@ALIAS``), or a :class:`~sqltrack.NotFoundError` saying what exists.
    The one resolver of model references (``load_spark_model``, deploy, export and the
    SQL scoring compiler all call it)."""
    with backend.session(read_only=True) as s:
        return resolve_in(s, ref, backend.uri)


# -- governance --------------------------------------------------------------------------
def require_governed(
    backend: Backend,
    run_id: str,
    dataset_id: int | None,
    recorded_fingerprint: str | None,
    action: str,
) -> None:
    """A model may be registered or deployed only when its run is FINISHED and its
    training data still matches the fingerprint it was trained (and registered) with."""
    from sqltrack import datasets

    with backend.session(read_only=True) as s:
        rows = s.query("SELECT status FROM sqltrack.runs WHERE run_id = ?", (run_id,))
    if not rows:
        raise NotFoundError(f"{action}: run {run_id} does not exist in {backend.uri}")
    if rows[0][0] != RunStatus.FINISHED:
        raise ConflictError(
            f"{action}: run {run_id} is {rows[0][0]}, not FINISHED; only models of finished "
            "runs are registered or deployed (end the run with end_run(), or train again)"
        )
    if dataset_id is None:
        return
    dataset = datasets.get_dataset(backend, dataset_id=dataset_id)
    if recorded_fingerprint is not None and dataset.fingerprint != recorded_fingerprint:
        raise IntegrityError(
            f"{action}: dataset {dataset.table_name} (id {dataset_id}) is recorded with "
            f"fingerprint {dataset.fingerprint}, but the version was registered with "
            f"{recorded_fingerprint}; its catalog row was changed after registration"
        )
    try:
        datasets.verify(backend, dataset)
    except IntegrityError as exc:
        raise IntegrityError(f"{action} refused: {exc}") from exc


# -- registered models -------------------------------------------------------------------
def _insert_model(s: Session, name: str, description: str | None) -> None:
    s.execute(
        "INSERT INTO sqltrack.registered_models (name, description, user_name) VALUES (?, ?, ?)",
        (name, description, _context.user_name()),
    )


def create_registered_model(
    backend: Backend,
    name: str,
    description: str | None = None,
    tags: Mapping[str, Any] | None = None,
) -> RegisteredModel:
    """Create a registered model; ConflictError when the name is taken."""
    name = validate_model_name(name)
    text = _text(description, "description")
    pairs = [
        (validate_key(k, "tag key"), validate_value(v, f"tag {k!r}"))
        for k, v in (tags or {}).items()
    ]

    def body(s: Session) -> None:
        if s.query("SELECT 1 FROM sqltrack.registered_models WHERE name = ?", (name,)):
            raise ConflictError(
                f"registered model {name!r} already exists in {backend.uri}; register new "
                f"versions with register_model(MODEL_URI, {name!r})"
            )
        try:
            _insert_model(s, name, text)
        except ConflictError as exc:
            raise _Race from exc
        for key, value in pairs:
            _set_tag(s, name, key, value)

    write(backend, f"create_registered_model({name!r})", body)
    return get_registered_model(backend, name)


def _set_tag(s: Session, name: str, key: str, value: str) -> None:
    s.execute(
        "INSERT INTO sqltrack.registered_model_tags (name, key, value, user_name) "
        "VALUES (?, ?, ?, ?) ON CONFLICT (name, key) DO UPDATE SET value = excluded.value, "
        "set_at = excluded.set_at, user_name = excluded.user_name",
        (name, key, value, _context.user_name()),
    )


def set_registered_model_tag(backend: Backend, name: str, key: str, value: Any) -> None:
    """Set a tag of a registered model (the last value wins; who and when are kept)."""
    name = validate_model_name(name)
    key = validate_key(key, "tag key")
    text = validate_value(value, f"tag {key!r}")

    def body(s: Session) -> None:
        _require_model(s, name, backend.uri)
        _set_tag(s, name, key, text)

    write(backend, f"set_registered_model_tag({name!r})", body)


def _models(s: Session, where: str, params: Sequence[Any]) -> list[RegisteredModel]:
    rows = s.query(
        compose(
            "SELECT r.name, r.description, r.created_at, r.user_name, r.db_user, "
            "(SELECT max(v.version) FROM sqltrack.model_versions v WHERE v.name = r.name) "
            "FROM sqltrack.registered_models r {where} ORDER BY r.name",
            where=Fragment(where),
        ),
        params,
    )
    aliases: dict[str, dict[str, int]] = {}
    for name, alias, version in s.query("SELECT name, alias, version FROM sqltrack.model_aliases"):
        aliases.setdefault(name, {})[alias] = int(version)
    tags: dict[str, dict[str, str]] = {}
    for name, key, value in s.query("SELECT name, key, value FROM sqltrack.registered_model_tags"):
        tags.setdefault(name, {})[key] = value
    return [
        RegisteredModel(
            r[0],
            r[1],
            r[2],
            r[3],
            r[4],
            None if r[5] is None else int(r[5]),
            dict(sorted(aliases.get(r[0], {}).items())),
            tags.get(r[0], {}),
        )  # fmt: skip
        for r in rows
    ]


def get_registered_model(backend: Backend, name: str) -> RegisteredModel:
    name = validate_model_name(name)
    with backend.session(read_only=True) as s:
        _require_model(s, name, backend.uri)
        return _models(s, "WHERE r.name = ?", (name,))[0]


# -- a small filter grammar for the two searches (AND-only, as MLflow's) -----------------
_FILTER_OPS = {
    "=": "=", "==": "=", "!=": "<>", "<>": "<>", "LIKE": "LIKE", "ILIKE": "ILIKE",
    "NOT LIKE": "NOT LIKE", "NOT ILIKE": "NOT ILIKE", "IN": "IN", "NOT IN": "NOT IN",
}  # fmt: skip


def _filter(text: str, fields: Mapping[str, str]) -> tuple[str, list[Any]]:
    """Compile ``name = 'churn' AND run_id IN ('...')`` to a WHERE clause over ``fields``
    (filter field -> SQL column of sqltrack's own); values are bound parameters."""
    from sqltrack.search import _tokens, _value

    if not isinstance(text, str):
        raise InvalidInputError(f"filter_string {text!r} must be a string")
    hint = f"write clauses like name = 'churn' AND run_id = '...'; fields: {', '.join(fields)}"
    toks = _tokens(text) if text.strip() else []
    parts: list[Fragment] = []
    params: list[Any] = []
    i = 0
    while i < len(toks):
        if parts:
            if toks[i][1].upper() != "AND":
                raise InvalidInputError(f"filter {text!r}: expected AND at {toks[i][1]!r}; {hint}")
            i += 1
        if i >= len(toks) or toks[i][0] != "word" or toks[i][1].lower() not in fields:
            found = toks[i][1] if i < len(toks) else "the end"
            raise InvalidInputError(f"filter {text!r}: unknown field {found!r}; {hint}")
        column = fields[toks[i][1].lower()]
        i += 1
        op = toks[i][1].upper() if i < len(toks) else ""
        if op == "NOT" and i + 1 < len(toks):
            op, i = "NOT " + toks[i + 1][1].upper(), i + 1
        if op not in _FILTER_OPS:
            raise InvalidInputError(
                f"filter {text!r}: {op or 'nothing'!r} is not an operator; {hint}"
            )
        sql_op = _FILTER_OPS[op]
        i += 1
        if sql_op in ("IN", "NOT IN"):
            if i >= len(toks) or toks[i] != ("punct", "("):
                raise InvalidInputError(f"filter {text!r}: {op} needs a list in parentheses")
            values: list[Any] = []
            i += 1
            while i < len(toks) and toks[i] != ("punct", ")"):
                if toks[i] != ("punct", ","):
                    values.append(_value(toks[i], text))
                i += 1
            if i >= len(toks) or not values:
                raise InvalidInputError(f"filter {text!r}: unclosed or empty {op} list")
            i += 1
            parts.append(Fragment(f"{column} {sql_op} ({placeholders(len(values))})"))
            params.extend(str(v) if column != "v.version" else v for v in values)
            continue
        if i >= len(toks):
            raise InvalidInputError(f"filter {text!r} ends after {op}; expected a value")
        value = _value(toks[i], text)
        i += 1
        parts.append(Fragment(f"{column} {sql_op} ?"))
        params.append(value if column == "v.version" else str(value))
    return ("WHERE " + join(" AND ", parts)) if parts else "", params


def search_registered_models(backend: Backend, filter_string: str = "") -> list[RegisteredModel]:
    """Registered models, by name; ``filter_string`` as in MLflow (``name LIKE 'churn%'``)."""
    where, params = _filter(filter_string, {"name": "r.name", "user_name": "r.user_name"})
    with backend.session(read_only=True) as s:
        return _models(s, where, params)


# -- versions ----------------------------------------------------------------------------
def register_model(
    backend: Backend, model_uri: str, name: str, description: str | None = None
) -> RegisteredModelVersion:
    """Create the next version of ``name`` (creating the registered model if needed) from
    the stored model ``model_uri`` names; refused unless its run is FINISHED and its
    training data matches its fingerprint. A stored model is one version per name."""
    name = validate_model_name(name)
    text = _text(description, "description")
    found = resolve_model_ref(backend, model_uri)
    with backend.session(read_only=True) as s:
        dataset = s.query(
            "SELECT m.dataset_id, d.fingerprint FROM sqltrack.models m "
            "LEFT JOIN sqltrack.datasets d ON d.dataset_id = m.dataset_id WHERE m.model_id = ?",
            (found.model_id,),
        )[0]
    dataset_id = None if dataset[0] is None else int(dataset[0])
    require_governed(backend, found.run_id, dataset_id, None, f"register_model({model_uri!r})")
    source = f"runs:/{found.run_id}/{found.model_name}"

    def body(s: Session) -> int:
        if not s.query("SELECT 1 FROM sqltrack.registered_models WHERE name = ?", (name,)):
            try:
                _insert_model(s, name, None)
            except ConflictError as exc:
                raise _Race from exc
        taken = s.query(
            "SELECT version FROM sqltrack.model_versions WHERE name = ? AND model_id = ?",
            (name, found.model_id),
        )
        if taken:
            raise ConflictError(
                f"{source} is already version {taken[0][0]} of {name!r}; a stored model is "
                f"registered once per name: use models:/{name}/{taken[0][0]}"
            )
        rows = claim(
            s,
            "INSERT INTO sqltrack.model_versions (name, version, model_id, run_id, source, "
            "description, model_sha256, dataset_id, dataset_fingerprint, user_name) "
            "SELECT ?, COALESCE(max(version), 0) + 1, ?, ?, ?, ?, ?, ?, ?, ? "
            "FROM sqltrack.model_versions WHERE name = ? RETURNING version",
            (
                name, found.model_id, found.run_id, source, text, found.sha256, dataset_id,
                dataset[1], _context.user_name(), name,
            ),
        )  # fmt: skip
        return int(rows[0][0])

    version = write(backend, f"register_model({model_uri!r}, {name!r})", body)
    return get_model_version(backend, name, version)


def get_model_version(backend: Backend, name: str, version: int | str) -> RegisteredModelVersion:
    name, number = validate_model_name(name), _version(version)
    with backend.session(read_only=True) as s:
        return _version_row(s, name, number, backend.uri)


def get_model_version_by_alias(backend: Backend, name: str, alias: str) -> RegisteredModelVersion:
    name, alias = validate_model_name(name), validate_alias(alias)
    with backend.session(read_only=True) as s:
        return _version_row(s, name, _alias_target(s, name, alias, backend.uri), backend.uri)


def search_model_versions(
    backend: Backend, filter_string: str = "", max_results: int = 1000
) -> list[RegisteredModelVersion]:
    """Versions by name, newest first, with their aliases filled in (MLflow leaves them
    empty); ``filter_string`` as in MLflow: ``name = 'churn' AND run_id = '...'``."""
    if not isinstance(max_results, int) or isinstance(max_results, bool) or max_results < 1:
        raise InvalidInputError(f"max_results {max_results!r} must be a whole number from 1")
    fields = {
        "name": "v.name", "version": "v.version", "run_id": "v.run_id",
        "source": "v.source", "source_path": "v.source", "user_name": "v.user_name",
    }  # fmt: skip
    where, params = _filter(filter_string, fields)
    with backend.session(read_only=True) as s:
        return _versions(s, where, params, max_results)


# -- aliases -----------------------------------------------------------------------------
def _alias_event(
    s: Session, name: str, alias: str, to_version: int | None, reason: str | None, uri: str
) -> None:
    current = s.query(
        "SELECT seq, to_version FROM sqltrack.model_alias_events WHERE name = ? AND alias = ? "
        "ORDER BY seq DESC LIMIT 1",
        (name, alias),
    )
    seq = int(current[0][0]) + 1 if current else 1
    from_version = None if not current or current[0][1] is None else int(current[0][1])
    if to_version is None and from_version is None:
        _alias_target(s, name, alias, uri)  # raises: there is no such alias to remove
    if to_version is not None and from_version == to_version:
        raise ConflictError(
            f"alias {alias!r} of {name!r} already points at version {to_version}; nothing to change"
        )
    claim(
        s,
        "INSERT INTO sqltrack.model_alias_events (name, alias, seq, from_version, to_version, "
        "reason, user_name) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING seq",
        (name, alias, seq, from_version, to_version, reason, _context.user_name()),
    )


def set_registered_model_alias(
    backend: Backend, name: str, alias: str, version: int | str, reason: str | None = None
) -> RegisteredModelVersion:
    """Point ``alias`` at ``version`` (set or move it); the change is recorded with who,
    when, the version it came from and ``reason``."""
    name, alias, number = validate_model_name(name), validate_alias(alias), _version(version)
    text = _text(reason, "reason")

    def body(s: Session) -> None:
        _version_row(s, name, number, backend.uri)
        _alias_event(s, name, alias, number, text, backend.uri)

    write(backend, f"set_registered_model_alias({name!r}, {alias!r})", body)
    return get_model_version(backend, name, number)


def delete_registered_model_alias(
    backend: Backend, name: str, alias: str, reason: str | None = None
) -> None:
    """Remove ``alias``; its history keeps the removal (who, when, from which version)."""
    name, alias = validate_model_name(name), validate_alias(alias)
    text = _text(reason, "reason")

    def body(s: Session) -> None:
        _require_model(s, name, backend.uri)
        _alias_event(s, name, alias, None, text, backend.uri)

    write(backend, f"delete_registered_model_alias({name!r}, {alias!r})", body)


def alias_history(backend: Backend, name: str, alias: str | None = None) -> list[AliasEvent]:
    """Every change of the model's aliases (or of one), oldest first."""
    name = validate_model_name(name)
    where = "WHERE name = ?" + (" AND alias = ?" if alias is not None else "")
    params: tuple[Any, ...] = (name,) if alias is None else (name, validate_alias(alias))
    with backend.session(read_only=True) as s:
        _require_model(s, name, backend.uri)
        rows = s.query(
            compose(
                "SELECT name, alias, seq, from_version, to_version, reason, changed_at, "
                "user_name, db_user FROM sqltrack.model_alias_events {where} "
                "ORDER BY changed_at, alias, seq",
                where=Fragment(where),
            ),
            params,
        )
    return [
        AliasEvent(
            r[0],
            r[1],
            int(r[2]),
            None if r[3] is None else int(r[3]),
            None if r[4] is None else int(r[4]),
            r[5],
            r[6],
            r[7],
            r[8],
        )  # fmt: skip
        for r in rows
    ]
