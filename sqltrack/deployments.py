"""Deployments: which registered model version serves on which target, since when, by whom.

Every deploy and undeploy is an append-only row of ``sqltrack.deployment_events``, numbered
per target; ``sqltrack.deployments`` is the view of each deployment with how it ended
(undeployed, or replaced by the next deploy) and ``sqltrack.live_deployments`` what is live
now, with the version's run, model sha256 and training data (table and fingerprint).

A target is a name chosen by the user (``churn-eu``, ``/srv/models/churn``); its kind is
fixed by its first deployment:

- ``sql_view``: in-database scoring through a view; config ``{"view": "schema.name"}``
  (default ``sqltrack_scoring.<target>``). The view itself is created by the SQL scoring
  compiler through the ``publish`` hook of :func:`deploy`.
- ``mlflow_dir``: a directory in MLflow's model format (``sqltrack models export``);
  config ``{"path": "/absolute/dir", "format": "mlflow"}``.
- ``sagemaker``, ``azureml``, ``vertexai``, ``databricks``, ``external``: a serving
  platform outside the database, recorded (not driven) by sqltrack; config must hold
  ``endpoint`` and ``region``, and may hold anything else (instance type, ...).

A deployment pins the version its reference resolved to: moving an alias later does not
change what is live until someone deploys again. Deploying re-checks governance (the run
is FINISHED, the training data still matches its fingerprint).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType
from typing import Any

from sqltrack import _context, registry
from sqltrack.backends import Backend, Session
from sqltrack.errors import ConflictError, InvalidInputError, NotFoundError
from sqltrack.identifiers import quote_ident, validate_value
from sqltrack.sqltext import Fragment, compose

__all__ = [
    "EXTERNAL_KINDS",
    "KINDS",
    "Deployment",
    "Publish",
    "deploy",
    "LIVE_AT_WHERE",
    "deployment_at",
    "list_deployments",
    "undeploy",
    "validate_config",
]

EXTERNAL_KINDS = ("sagemaker", "azureml", "vertexai", "databricks", "external")
KINDS = ("sql_view", "mlflow_dir", *EXTERNAL_KINDS)
_MAX_TARGET = 1000
SCORING_SCHEMA = "sqltrack_scoring"
# What was live on a target at a time: the documented query's predicate (docs/schema.md,
# "Auditor's SQL: registry and deployments"; a test keeps the two the same).
LIVE_AT_WHERE = (
    "WHERE target = ? AND deployed_at <= CAST(? AS TIMESTAMPTZ) "
    "AND (ended_at IS NULL OR ended_at > CAST(? AS TIMESTAMPTZ))"
)

# Called inside the deployment's transaction, after its event row is written, with the
# session, the resolved version and the config: what it does (create a scoring view, move
# an exported directory into place) commits or rolls back with the event.
Publish = Callable[[Session, "registry.ResolvedModel", Mapping[str, Any]], None]


@dataclass(frozen=True)
class Deployment:
    """One deployment of a registered model version to a target (a ``deploy`` event) and,
    once it ended, how: ``status`` is ``live``, ``undeployed`` or ``replaced``."""

    deployment_id: int
    target: str
    kind: str
    model_name: str
    version: int
    alias: str | None  # the alias the reference named, if any (the version is pinned)
    config: Mapping[str, Any]
    reason: str | None
    deployed_at: datetime
    deployed_by: str
    deployed_db_user: str | None
    status: str
    ended_at: datetime | None
    ended_by: str | None
    end_reason: str | None
    run_id: str
    model_id: int
    model_sha256: str
    dataset_id: int | None
    table_name: str | None
    row_count: int | None
    fingerprint: str | None

    def __post_init__(self) -> None:
        object.__setattr__(self, "config", MappingProxyType(dict(self.config)))


_COLUMNS = Fragment(
    "deployment_id, target, kind, model_name, version, alias, CAST(config AS TEXT), reason, "
    "deployed_at, deployed_by, deployed_db_user, status, ended_at, ended_by, end_reason, "
    "run_id, model_id, model_sha256, dataset_id, table_name, row_count, fingerprint"
)


def _row(r: tuple[Any, ...]) -> Deployment:
    return Deployment(
        int(r[0]), r[1], r[2], r[3], int(r[4]), r[5], json.loads(r[6]), r[7], r[8], r[9],
        r[10], r[11], r[12], r[13], r[14], r[15], int(r[16]), r[17],
        None if r[18] is None else int(r[18]), r[19], None if r[20] is None else int(r[20]),
        r[21],
    )  # fmt: skip


def validate_target(target: object) -> str:
    if not isinstance(target, str) or not target.strip() or target != target.strip():
        raise InvalidInputError(
            f"deployment target {target!r} must be a non-empty name without surrounding spaces"
        )
    if len(target) > _MAX_TARGET or any(ord(c) < 32 for c in target):
        raise InvalidInputError(
            f"deployment target {target[:40]!r} must be at most {_MAX_TARGET} printable characters"
        )
    return validate_value(target, "deployment target")


def validate_config(kind: object, target: str, config: Mapping[str, Any] | None) -> dict[str, Any]:
    """The config as stored: checked for the kind, defaults filled in, JSON-safe."""
    if kind not in KINDS:
        raise InvalidInputError(f"deployment kind {kind!r} is not one of: {', '.join(KINDS)}")
    if config is not None and not isinstance(config, Mapping):
        raise InvalidInputError(f"deployment config must be a JSON object (a dict), not {config!r}")
    out = dict(config or {})
    try:
        json.dumps(out, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"deployment config {out!r} is not JSON: {exc}") from exc
    if kind == "sql_view":
        view = out.setdefault("view", f"{SCORING_SCHEMA}.{target}")
        parts = view.split(".") if isinstance(view, str) else []
        try:
            if len(parts) != 2:
                raise InvalidInputError("not schema.name")
            for part in parts:
                quote_ident(part, max_length=63)
        except InvalidInputError as exc:
            raise InvalidInputError(
                f"sql_view deployment {target!r}: view {view!r} is not a plain schema.name "
                f"({exc}); pass config={{'view': '{SCORING_SCHEMA}.churn_live'}}"
            ) from exc
    elif kind == "mlflow_dir":
        if not isinstance(out.get("path"), str) or not out["path"].startswith("/"):
            raise InvalidInputError(
                f"mlflow_dir deployment {target!r} needs config 'path', an absolute directory "
                "(sqltrack models export MODEL_URI DIR --format mlflow writes and records it)"
            )
        out.setdefault("format", "mlflow")
    else:
        missing = [
            k for k in ("endpoint", "region") if not isinstance(out.get(k), str) or not out[k]
        ]
        if missing:
            raise InvalidInputError(
                f"{kind} deployment {target!r} needs config {' and '.join(missing)} (text), e.g. "
                "{'endpoint': 'churn-prod', 'region': 'eu-west-1'}"
            )
    return out


def _last_event(s: Session, target: str) -> tuple[Any, ...] | None:
    rows = s.query(
        "SELECT seq, action, kind, model_name, version, event_time FROM "
        "sqltrack.deployment_events WHERE target = ? ORDER BY seq DESC LIMIT 1",
        (target,),
    )
    return rows[0] if rows else None


def _insert(
    s: Session,
    target: str,
    seq: int,
    action: str,
    kind: str,
    model_name: str,
    version: int,
    alias: str | None,
    config: Mapping[str, Any],
    reason: str | None,
) -> int:
    rows = registry.claim(
        s,
        "INSERT INTO sqltrack.deployment_events (target, seq, action, kind, model_name, "
        "version, alias, config, reason, user_name) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
        "RETURNING event_id",
        (
            target, seq, action, kind, model_name, version, alias,
            json.dumps(config, sort_keys=True), reason, _context.user_name(),
        ),
    )  # fmt: skip
    return int(rows[0][0])


def _get(s: Session, deployment_id: int) -> Deployment:
    rows = s.query(
        compose("SELECT {c} FROM sqltrack.deployments WHERE deployment_id = ?", c=_COLUMNS),
        (deployment_id,),
    )
    return _row(rows[0])


def deploy(
    backend: Backend,
    model_uri: str,
    target: str,
    kind: str,
    config: Mapping[str, Any] | None = None,
    *,
    replace: bool = False,
    reason: str | None = None,
    publish: Publish | None = None,
) -> Deployment:
    """Deploy the registered version ``model_uri`` names (``models:/NAME/VERSION`` or
    ``models:/NAME@ALIAS``) to ``target``. A live target is replaced only with
    ``replace=True``; the same version twice is refused. All or nothing: the event and
    whatever ``publish`` does commit together."""
    target = validate_target(target)
    stored = validate_config(kind, target, config)
    text = None if reason is None else validate_value(reason, "reason")
    found = registry.resolve_model_ref(backend, model_uri)
    if found.registered_name is None or found.version is None:
        raise InvalidInputError(
            f"deploy: {model_uri!r} is not a registered model version; register it first "
            f"(register_model({model_uri!r}, NAME)) and deploy models:/NAME/VERSION"
        )
    name, version = found.registered_name, found.version
    v = registry.get_model_version(backend, name, version)
    registry.require_governed(
        backend, v.run_id, v.dataset_id, v.dataset_fingerprint, f"deploy({model_uri!r})"
    )

    def body(s: Session) -> int:
        last = _last_event(s, target)
        if last is not None and last[2] != kind:
            raise ConflictError(
                f"target {target!r} is a {last[2]} target, not {kind}; use another target name"
            )
        if last is not None and last[1] == "deploy":
            if (last[3], int(last[4])) == (name, version):
                raise ConflictError(
                    f"{name} version {version} is already live on {target!r} (since "
                    f"{last[5]}); nothing to deploy"
                )
            if not replace:
                raise ConflictError(
                    f"target {target!r} already serves {last[3]} version {last[4]} (since "
                    f"{last[5]}); pass replace=True (--replace) to replace it, or undeploy it first"
                )
        seq = 1 if last is None else int(last[0]) + 1
        event_id = _insert(s, target, seq, "deploy", kind, name, version, found.alias, stored, text)
        if publish is not None:
            publish(s, found, stored)
        return event_id

    event_id = registry.write(backend, f"deploy({model_uri!r}, {target!r})", body)
    with backend.session(read_only=True) as s:
        return _get(s, event_id)


def undeploy(backend: Backend, target: str, reason: str | None = None) -> Deployment:
    """Take down what is live on ``target``; return that deployment, now ended."""
    target = validate_target(target)
    text = None if reason is None else validate_value(reason, "reason")

    def body(s: Session) -> int:
        last = _last_event(s, target)
        if last is None:
            known = [r[0] for r in s.query(
                "SELECT DISTINCT target FROM sqltrack.deployment_events ORDER BY target"
            )]  # fmt: skip
            raise NotFoundError(
                f"nothing was ever deployed to target {target!r} in {backend.uri} (targets: "
                f"{', '.join(known[:20]) or 'none'}); see `sqltrack deploy list`"
            )
        if last[1] != "deploy":
            raise ConflictError(
                f"target {target!r} has nothing live: {last[3]} version {last[4]} was "
                f"undeployed at {last[5]}; nothing to undeploy"
            )
        seq, kind, name, version = int(last[0]), last[2], last[3], int(last[4])
        live = s.query(
            "SELECT event_id, alias, CAST(config AS TEXT) FROM sqltrack.deployment_events "
            "WHERE target = ? AND seq = ?",
            (target, seq),
        )[0]
        _insert(
            s, target, seq + 1, "undeploy", kind, name, version, live[1], json.loads(live[2]), text
        )
        return int(live[0])

    deployment_id = registry.write(backend, f"undeploy({target!r})", body)
    with backend.session(read_only=True) as s:
        return _get(s, deployment_id)


def list_deployments(
    backend: Backend, target: str | None = None, *, include_ended: bool = False
) -> list[Deployment]:
    """What is live (per target), or with ``include_ended`` every deployment ever made,
    oldest first."""
    clauses = []
    params: list[Any] = []
    if target is not None:
        clauses.append("target = ?")
        params.append(validate_target(target))
    if not include_ended:
        clauses.append("status = 'live'")
    where = Fragment(("WHERE " + " AND ".join(clauses)) if clauses else "")
    with backend.session(read_only=True) as s:
        rows = s.query(
            compose(
                "SELECT {c} FROM sqltrack.deployments {where} ORDER BY deployed_at, deployment_id",
                c=_COLUMNS,
                where=where,
            ),
            params,
        )
    return [_row(r) for r in rows]


def deployment_at(backend: Backend, target: str, when: datetime) -> Deployment | None:
    """The deployment that was live on ``target`` at ``when`` (an aware datetime), or None."""
    target = validate_target(target)
    if not isinstance(when, datetime) or when.tzinfo is None:
        raise InvalidInputError(
            f"time {when!r} must be a timezone-aware datetime, e.g. 2026-11-01T09:00:00+00:00"
        )
    with backend.session(read_only=True) as s:
        rows = s.query(
            compose(
                "SELECT {c} FROM sqltrack.deployments {where}",
                c=_COLUMNS,
                where=Fragment(LIVE_AT_WHERE),
            ),
            (target, when, when),
        )
    return _row(rows[0]) if rows else None
