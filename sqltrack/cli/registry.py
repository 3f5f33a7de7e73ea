"""``sqltrack registry`` and ``sqltrack deploy``: the model registry and deployments, each
action a thin wrapper over one Tracker call."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqltrack.cli import command, emit

_REGISTRY_USAGE = """actions:
  list                                  registered models (--filter "name LIKE 'churn%'")
  create NAME                           create a registered model (--description)
  register MODEL_URI NAME               the next version of NAME (--description)
  versions [NAME]                       versions, newest first (--filter)
  show NAME                             one registered model: versions, aliases, tags
  alias NAME ALIAS VERSION              set or move an alias (--reason)
  unalias NAME ALIAS                    remove an alias (--reason)
  history NAME [ALIAS]                  every change of the aliases
  tag NAME KEY VALUE                    set a tag of a registered model"""

_DEPLOY_USAGE = """forms:
  deploy MODEL_URI TARGET --kind KIND   record a deployment (--config JSON, --endpoint,
                                        --region, --replace, --reason)
  deploy list [TARGET]                  what is live (--all: every deployment ever)
  deploy undeploy TARGET                take down what is live (--reason)
  deploy live-at TARGET TIME            what was live at TIME (ISO 8601 with a zone)"""

_VERSION_COLUMNS = [
    "name",
    "version",
    "aliases",
    "run_id",
    "source",
    "description",
    "model_sha256",
    "dataset_id",
    "dataset_fingerprint",
    "created_at",
    "user_name",
    "db_user",
]
_DEPLOYMENT_COLUMNS = [
    "deployment_id",
    "target",
    "kind",
    "model_name",
    "version",
    "alias",
    "status",
    "deployed_at",
    "deployed_by",
    "ended_at",
    "ended_by",
    "run_id",
    "table_name",
    "fingerprint",
    "config",
]


def _usage(text: str, usage: str) -> int:
    print(f"sqltrack: error: {text}\n{usage}", file=sys.stderr)
    return 2


def _versions(rows: Sequence[Any], fmt: str) -> None:
    emit(
        _VERSION_COLUMNS,
        [
            (
                v.name, v.version, ", ".join(v.aliases), v.run_id, v.source, v.description,
                v.model_sha256, v.dataset_id, v.dataset_fingerprint, v.created_at, v.user_name,
                v.db_user,
            )
            for v in rows
        ],
        fmt,
    )  # fmt: skip


def _deployments(rows: Sequence[Any], fmt: str) -> None:
    emit(
        _DEPLOYMENT_COLUMNS,
        [
            (
                d.deployment_id, d.target, d.kind, d.model_name, d.version, d.alias, d.status,
                d.deployed_at, d.deployed_by, d.ended_at, d.ended_by, d.run_id, d.table_name,
                d.fingerprint, json.dumps(dict(d.config), sort_keys=True),
            )
            for d in rows
        ],
        fmt,
    )  # fmt: skip


@command(
    "registry",
    "The model registry: registered models, their numbered versions and aliases with "
    "history (actions: list, create, register, versions, show, alias, unalias, history, tag).",
    "sqltrack registry register runs:/0123456789abcdef0123456789abcdef/model churn; "
    "sqltrack registry alias churn champion 1 --reason 'best AUC'",
)
def _registry(p: argparse.ArgumentParser) -> None:
    p.epilog = f"{_REGISTRY_USAGE}\n\n{p.epilog}"
    p.add_argument("action", nargs="?", default="list", help="see the actions below")
    p.add_argument("words", nargs="*", help="the action's arguments")
    p.add_argument("--description", default=None, help="create, register: a description")
    p.add_argument("--reason", default=None, help="alias, unalias: why (kept in the history)")
    p.add_argument("--filter", default="", help="list, versions: e.g. \"name = 'churn'\"")


_ARITY = {
    "list": (0, 0),
    "create": (1, 1),
    "register": (2, 2),
    "versions": (0, 1),
    "show": (1, 1),
    "alias": (3, 3),
    "unalias": (2, 2),
    "history": (1, 2),
    "tag": (3, 3),
}


@_registry.runner
def _run_registry(args: argparse.Namespace) -> int | None:
    from sqltrack.tracking import connect

    action, words, fmt = args.action, args.words, args.format
    if action not in _ARITY:
        return _usage(f"unknown registry action {action!r}", _REGISTRY_USAGE)
    low, high = _ARITY[action]
    if not low <= len(words) <= high:
        return _usage(f"registry {action}: wrong number of arguments", _REGISTRY_USAGE)
    reading = action in ("list", "versions", "show", "history")
    with connect(args.uri, read_only=reading) as t:
        if action == "list":
            models = t.search_registered_models(args.filter)
            emit(
                ["name", "latest_version", "aliases", "description", "created_at", "user_name"],
                [
                    (
                        m.name, m.latest_version,
                        ", ".join(f"{a}={v}" for a, v in m.aliases.items()),
                        m.description, m.created_at, m.user_name,
                    )
                    for m in models
                ],
                fmt,
            )  # fmt: skip
        elif action == "create":
            m = t.create_registered_model(words[0], args.description)
            print(f"created registered model {m.name}")
        elif action == "register":
            _versions([t.register_model(words[0], words[1], args.description)], fmt)
        elif action == "versions":
            where = " AND ".join(
                c for c in (f"name = '{words[0]}'" if words else "", args.filter) if c
            )
            _versions(t.search_model_versions(where), fmt)
        elif action == "show":
            m = t.get_registered_model(words[0])
            rows: list[tuple[str, Any]] = [
                ("name", m.name),
                ("description", m.description),
                ("latest_version", m.latest_version),
                ("created_at", m.created_at),
                ("user_name", m.user_name),
                ("db_user", m.db_user),
            ]
            rows += [(f"alias {a}", v) for a, v in m.aliases.items()]
            rows += [(f"tag {k}", v) for k, v in sorted(m.tags.items())]
            emit(["field", "value"], rows, fmt)
        elif action == "alias":
            v = t.set_registered_model_alias(words[0], words[1], words[2], args.reason)
            print(f"{words[0]}@{words[1]} -> version {v.version}")
        elif action == "unalias":
            t.delete_registered_model_alias(words[0], words[1], args.reason)
            print(f"removed {words[0]}@{words[1]}")
        elif action == "history":
            events = t.get_model_alias_history(words[0], words[1] if len(words) > 1 else None)
            emit(
                ["changed_at", "alias", "seq", "from_version", "to_version", "reason",
                 "user_name", "db_user"],
                [
                    (e.changed_at, e.alias, e.seq, e.from_version, e.to_version, e.reason,
                     e.user_name, e.db_user)
                    for e in events
                ],
                fmt,
            )  # fmt: skip
        else:
            t.set_registered_model_tag(words[0], words[1], words[2])
            print(f"tagged {words[0]}: {words[1]}")
    return None


@command(
    "deploy",
    "Deployments of registered model versions: record a deploy to a target (sql_view, "
    "mlflow_dir, sagemaker, azureml, vertexai, databricks, external), list what is live, "
    "undeploy, and answer what was live at a time (forms: MODEL_URI TARGET, list, undeploy, "
    "live-at).",
    "sqltrack deploy models:/churn@champion churn-eu --kind sagemaker --endpoint churn-prod "
    "--region eu-west-1; sqltrack deploy live-at churn-eu 2026-11-01T09:00:00+00:00",
)
def _deploy(p: argparse.ArgumentParser) -> None:
    p.epilog = f"{_DEPLOY_USAGE}\n\n{p.epilog}"
    p.add_argument("words", nargs="+", help="MODEL_URI TARGET, or list / undeploy / live-at")
    p.add_argument("--kind", default=None, help="the target's kind (deploy)")
    p.add_argument("--config", default=None, help="the target's config as JSON, e.g. '{\"x\": 1}'")
    p.add_argument("--endpoint", default=None, help="external targets: the endpoint")
    p.add_argument("--region", default=None, help="external targets: the region")
    p.add_argument("--replace", action="store_true", help="replace what is live on TARGET")
    p.add_argument("--reason", default=None, help="why (kept with the event)")
    p.add_argument("--all", action="store_true", help="list: every deployment, ended ones too")


@_deploy.runner
def _run_deploy(args: argparse.Namespace) -> int | None:
    from sqltrack.errors import InvalidInputError
    from sqltrack.tracking import connect

    words, fmt = args.words, args.format
    action = words[0] if words[0] in ("list", "undeploy", "live-at") else "deploy"
    arity = {"list": (1, 2), "undeploy": (2, 2), "live-at": (3, 3), "deploy": (2, 2)}[action]
    if not arity[0] <= len(words) <= arity[1]:
        return _usage(f"deploy {action}: wrong number of arguments", _DEPLOY_USAGE)
    if action == "deploy":
        if args.kind is None:
            return _usage("deploy: --kind is required", _DEPLOY_USAGE)
        try:
            config = {} if args.config is None else json.loads(args.config)
        except json.JSONDecodeError as exc:
            raise InvalidInputError(f"--config {args.config!r} is not JSON: {exc}") from exc
        if not isinstance(config, dict):
            raise InvalidInputError(f"--config {args.config!r} must be a JSON object")
        for key in ("endpoint", "region"):
            if getattr(args, key) is not None:
                config[key] = getattr(args, key)
    when: datetime | None = None
    if action == "live-at":
        try:
            when = datetime.fromisoformat(words[2])
        except ValueError as exc:
            raise InvalidInputError(
                f"time {words[2]!r} is not ISO 8601; write e.g. 2026-11-01T09:00:00+00:00"
            ) from exc
    with connect(args.uri, read_only=action in ("list", "live-at")) as t:
        if action == "deploy":
            d = t.deploy(
                words[0], words[1], args.kind, config, replace=args.replace, reason=args.reason
            )
            _deployments([d], fmt)
        elif action == "list":
            target = words[1] if len(words) > 1 else None
            _deployments(t.list_deployments(target, include_ended=args.all), fmt)
        elif action == "undeploy":
            _deployments([t.undeploy(words[1], args.reason)], fmt)
        else:
            assert when is not None
            found = t.get_deployment_at(words[1], when)
            _deployments([] if found is None else [found], fmt)
    return None
