"""Deployments on both backends: append-only events per target, the live view, the
documented "what was live on target X at time T, and which exact data trained it" query
against a scripted sequence of deploys and alias moves, governance and bad input."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path

import pytest

import sqltrack
from sqltrack import deployments

pytest.register_assert_rewrite("tests.registry_fixtures")
pytest_plugins = ["tests.registry_fixtures"]

from tests.registry_fixtures import count, train  # noqa: E402

pytestmark = pytest.mark.spark

SCHEMA_DOC = Path(__file__).resolve().parent.parent / "docs" / "schema.md"
SAGEMAKER = {"endpoint": "churn-prod", "region": "eu-west-1", "instance_type": "ml.m5.large"}
T_LITERAL = "CAST('2026-11-01 00:00:00+00' AS TIMESTAMPTZ)"


def doc_query(marker: str) -> str:
    """The documented SQL block containing ``marker``, with its placeholders as ``?``."""
    blocks = re.findall(r"```sql\n(.*?)```", SCHEMA_DOC.read_text(), flags=re.S)
    (block,) = [b for b in blocks if marker in b]
    block = block.strip().rstrip(";")
    return re.sub(r"'<[a-z_]+>'", "?", block).replace(T_LITERAL, "CAST(? AS TIMESTAMPTZ)")


def live_at(tracker, target, when):
    sql = doc_query("(ended_at IS NULL OR ended_at > CAST(")
    _, rows = tracker.sql(sql, (target, when, when))
    return rows


def alias_at(tracker, name, alias, when):
    _, rows = tracker.sql(doc_query("x.changed_at <= CAST("), (name, alias, when))
    return [r[2] for r in rows]


def event_times(tracker, name):
    _, rows = tracker.sql(
        "SELECT event_time FROM sqltrack.deployment_events WHERE model_name = ? ORDER BY event_id",
        (name,),
    )
    return [r[0] for r in rows]


def test_what_was_live_at_any_time_after_deploys_alias_moves_and_undeploys(
    reg, trained, fresh_name
):
    name, target = fresh_name, f"{fresh_name}-sagemaker"
    first, second = trained
    reg.register_model(first.uri, name)
    reg.register_model(second.uri, name)
    reg.set_registered_model_alias(name, "champion", 1)
    # the script: deploy the champion, move the alias, redeploy it, take it down, roll back
    d1 = reg.deploy(f"models:/{name}@champion", target, "sagemaker", SAGEMAKER, reason="launch")
    reg.set_registered_model_alias(name, "champion", 2, reason="retrained")
    moved_at = reg.get_model_alias_history(name, "champion")[-1].changed_at
    assert reg.list_deployments(target)[0].version == 1  # the deployment pinned version 1
    d2 = reg.deploy(f"models:/{name}@champion", target, "sagemaker", SAGEMAKER, replace=True)
    view = reg.deploy(
        f"models:/{name}/1", f"{name}-view", "sql_view", {"view": "sqltrack_scoring.timeline"}
    )
    down = reg.undeploy(target, reason="incident 7")
    d3 = reg.deploy(f"models:/{name}/1", target, "sagemaker", SAGEMAKER, reason="rollback")

    t_d1, t_d2, t_view, t_down, t_d3 = event_times(reg, name)
    assert t_d1 < moved_at < t_d2 < t_view < t_down < t_d3  # the database's clock, in order
    tick = timedelta(microseconds=1)
    expected = [
        (t_d1 - tick, None),
        (t_d1, 1),
        (moved_at, 1),  # the alias moved, the deployment did not
        (t_d2 - tick, 1),
        (t_d2, 2),
        (t_view, 2),
        (t_down - tick, 2),
        (t_down, None),
        (t_d3 - tick, None),
        (t_d3, 1),
        (t_d3 + timedelta(days=1), 1),
    ]
    data = {1: first.dataset, 2: second.dataset}
    runs = {1: first.run_id, 2: second.run_id}
    for when, version in expected:
        rows = live_at(reg, target, when)
        if version is None:
            assert rows == [], when
            assert reg.get_deployment_at(target, when) is None
            continue
        ((tgt, model, v, alias, _, by, _, run_id, sha, table, n, fingerprint),) = rows
        assert (tgt, model, v, run_id) == (target, name, version, runs[version]), when
        assert (table, n, fingerprint) == (
            data[version].table_name,
            data[version].row_count,
            data[version].fingerprint,
        )
        assert sha == trained[version - 1].stored.sha256 and by
        assert reg.get_deployment_at(target, when).version == version
    # which version the alias named, at the same moments
    assert alias_at(reg, name, "champion", t_d1 - timedelta(days=1)) == []
    assert alias_at(reg, name, "champion", t_d1) == [1]
    assert alias_at(reg, name, "champion", moved_at) == [2]

    # the returned records and the views agree
    assert (d1.status, d1.alias, d1.version, d1.reason) == ("live", "champion", 1, "launch")
    assert (d2.version, down.deployment_id, down.status) == (2, d2.deployment_id, "undeployed")
    assert down.end_reason == "incident 7" and down.ended_at == t_down
    history = reg.list_deployments(target, include_ended=True)
    assert [(d.version, d.status) for d in history] == [
        (1, "replaced"),
        (2, "undeployed"),
        (1, "live"),
    ]
    assert history[0].ended_at == t_d2 and history[0].ended_by
    live = {d.target: d for d in reg.list_deployments() if d.model_name == name}
    assert set(live) == {target, f"{name}-view"}
    assert live[target] == d3 and dict(live[target].config) == SAGEMAKER
    assert dict(view.config) == {"view": "sqltrack_scoring.timeline"}
    _, rows = reg.sql(
        "SELECT target, version, fingerprint FROM sqltrack.live_deployments "
        "WHERE model_name = ? ORDER BY target",
        (name,),
    )
    assert rows == [
        (target, 1, first.dataset.fingerprint),
        (f"{name}-view", 1, first.dataset.fingerprint),
    ]
    _, rows = reg.sql(
        "SELECT action, seq, user_name FROM sqltrack.deployment_events WHERE target = ? "
        "ORDER BY seq",
        (target,),
    )
    assert [r[:2] for r in rows] == [("deploy", 1), ("deploy", 2), ("undeploy", 3), ("deploy", 4)]
    assert all(r[2] for r in rows)


def test_sql_view_targets_record_their_view(reg, trained, fresh_name):
    reg.register_model(trained[0].uri, fresh_name)
    d = reg.deploy(f"models:/{fresh_name}/1", "churn_live", "sql_view")
    assert dict(d.config) == {"view": "sqltrack_scoring.churn_live"}
    named = reg.deploy(
        f"models:/{fresh_name}/1", f"{fresh_name}-b", "sql_view", {"view": "scoring.churn_b"}
    )
    assert dict(named.config) == {"view": "scoring.churn_b"}
    reg.undeploy("churn_live")
    reg.undeploy(f"{fresh_name}-b")


def test_deploy_rechecks_the_training_data(reg, registry_orders, registry_models, fresh_name):
    trained = train(reg, registry_orders, registry_models[0])
    reg.register_model(trained.uri, fresh_name)
    with reg.backend.session() as s:
        s.execute(f"DELETE FROM {trained.dataset.table_name} WHERE city = 'Lyon'")  # noqa: S608
    # Exact loads count rows before hashing: deleted rows are reported as a row-count gap.
    refused = r"deploy.* refused: .*(does not match its fin|holds \d+ rows but its catalog)"
    with pytest.raises(sqltrack.IntegrityError, match=refused):
        reg.deploy(f"models:/{fresh_name}/1", fresh_name, "azureml", SAGEMAKER)
    assert count(reg, "deployment_events", fresh_name) == 0


def test_bad_deployments_say_what_to_do_and_write_nothing(reg, trained, fresh_name):
    name = fresh_name
    reg.register_model(trained[0].uri, name)
    reg.register_model(trained[1].uri, name)
    reg.deploy(f"models:/{name}/1", name, "sagemaker", SAGEMAKER)
    for call, error, message in [
        (
            lambda: reg.deploy(f"models:/{name}/1", name, "sagemaker", SAGEMAKER),
            sqltrack.ConflictError,
            f"{name} version 1 is already live on '{name}'",
        ),
        (
            lambda: reg.deploy(f"models:/{name}/2", name, "sagemaker", SAGEMAKER),
            sqltrack.ConflictError,
            "already serves .* version 1 .*replace=True",
        ),
        (
            lambda: reg.deploy(f"models:/{name}/2", name, "azureml", SAGEMAKER, replace=True),
            sqltrack.ConflictError,
            "is a sagemaker target, not azureml",
        ),
        (
            lambda: reg.deploy(trained[0].uri, name + "-x", "sagemaker", SAGEMAKER),
            sqltrack.InvalidInputError,
            "not a registered model version; register it first",
        ),
        (
            lambda: reg.deploy(f"models:/{name}@champion", name + "-x", "sagemaker", SAGEMAKER),
            sqltrack.NotFoundError,
            "no alias 'champion'",
        ),
        (
            lambda: reg.deploy(f"models:/{name}/1", name + "-x", "heroku", SAGEMAKER),
            sqltrack.InvalidInputError,
            "kind 'heroku' is not one of: sql_view, mlflow_dir, sagemaker",
        ),
        (
            lambda: reg.deploy(f"models:/{name}/1", name + "-x", "sagemaker", {"endpoint": "e"}),
            sqltrack.InvalidInputError,
            "needs config region",
        ),
        (
            lambda: reg.deploy(f"models:/{name}/1", name + "-x", "sql_view", {"view": "a;b"}),
            sqltrack.InvalidInputError,
            "view 'a;b' is not a plain schema.name",
        ),
        (
            lambda: reg.deploy(f"models:/{name}/1", name + "-x", "mlflow_dir", {"path": "rel"}),
            sqltrack.InvalidInputError,
            "needs config 'path', an absolute directory",
        ),
        (
            lambda: reg.deploy(f"models:/{name}/1", " ", "sagemaker", SAGEMAKER),
            sqltrack.InvalidInputError,
            "deployment target ' ' must be a non-empty name",
        ),
        (
            lambda: reg.undeploy(name + "-never"),
            sqltrack.NotFoundError,
            f"nothing was ever deployed to target '{name}-never'",
        ),
    ]:
        with pytest.raises(error, match=message):
            call()
    reg.undeploy(name)
    with pytest.raises(sqltrack.ConflictError, match=f"target '{name}' has nothing live"):
        reg.undeploy(name)
    _, rows = reg.sql(
        "SELECT action, version FROM sqltrack.deployment_events WHERE model_name = ? "
        "ORDER BY event_id",
        (name,),
    )
    assert rows == [("deploy", 1), ("undeploy", 1)]


@pytest.mark.parametrize("registry_uri", ["postgres"], indirect=True)
def test_postgres_deployment_events_are_append_only(reg, trained, fresh_name):
    reg.register_model(trained[0].uri, fresh_name)
    reg.deploy(f"models:/{fresh_name}/1", fresh_name, "sagemaker", SAGEMAKER)
    for statement in (
        "UPDATE sqltrack.deployment_events SET version = 2 WHERE model_name = ?",
        "DELETE FROM sqltrack.deployment_events WHERE model_name = ?",
    ):
        with pytest.raises(sqltrack.SqltrackError, match="deployment_events is append-only"):
            with reg.backend.session() as s:
                s.execute(statement, (fresh_name,))
    assert reg.list_deployments(fresh_name)[0].deployed_db_user


def test_the_cli_runs_the_documented_live_at_query():
    """``sqltrack deploy live-at`` and get_deployment_at apply the documented predicate."""
    documented = doc_query("(ended_at IS NULL OR ended_at > CAST(")
    where = documented[documented.index("WHERE") :]
    assert " ".join(where.split()) == " ".join(deployments.LIVE_AT_WHERE.split())


def test_registry_and_deploy_commands(reg, trained, fresh_name, registry_uri, capsys):
    from sqltrack.cli import main

    name, uri = fresh_name, ["--uri", registry_uri]

    def run(*argv):
        code = main([*argv, *uri])
        out, err = capsys.readouterr()
        assert code == 0, err
        return out

    def rows(*argv):
        return json.loads(run(*argv, "--format", "json"))

    (v1,) = rows("registry", "register", trained[0].uri, name, "--description", "first")
    assert (v1["name"], v1["version"], v1["run_id"]) == (name, 1, trained[0].run_id)
    rows("registry", "register", trained[1].uri, name)
    assert "-> version 1" in run("registry", "alias", name, "champion", "1", "--reason", "best")
    run("registry", "alias", name, "champion", "2")
    assert [v["version"] for v in rows("registry", "versions", name)] == [2, 1]
    assert rows("registry", "versions", name)[0]["aliases"] == "champion"
    shown = {r["field"]: r["value"] for r in rows("registry", "show", name)}
    assert shown["alias champion"] == 2 and shown["latest_version"] == 2
    history = rows("registry", "history", name, "champion")
    assert [(h["from_version"], h["to_version"], h["reason"]) for h in history] == [
        (None, 1, "best"),
        (1, 2, None),
    ]
    assert name in [m["name"] for m in rows("registry", "list", "--filter", f"name = '{name}'")]
    run("registry", "tag", name, "team", "risk")
    run("registry", "unalias", name, "champion")

    target = f"{name}-az"
    (d,) = rows(
        "deploy", f"models:/{name}/2", target, "--kind", "azureml", "--endpoint", "churn",
        "--region", "westeurope", "--config", '{"sku": "small"}', "--reason", "go",
    )  # fmt: skip
    assert (d["target"], d["version"], d["status"]) == (target, 2, "live")
    assert json.loads(d["config"]) == {"endpoint": "churn", "region": "westeurope", "sku": "small"}
    assert [x["version"] for x in rows("deploy", "list", target)] == [2]
    (at,) = rows("deploy", "live-at", target, d["deployed_at"])
    assert at["deployment_id"] == d["deployment_id"]
    (down,) = rows("deploy", "undeploy", target, "--reason", "done")
    assert down["status"] == "undeployed"
    assert rows("deploy", "list", target) == []
    assert [x["status"] for x in rows("deploy", "list", target, "--all")] == ["undeployed"]

    # errors are one line naming the value and the fix, with no traceback
    assert main(["deploy", "undeploy", target, *uri]) == 1
    err = capsys.readouterr().err
    assert err.startswith("sqltrack: error: target") and "nothing live" in err
    assert "Traceback" not in err
    assert main(["registry", "alias", name, "Champion", "1", *uri]) == 1
    assert "alias 'Champion' is not valid" in capsys.readouterr().err
    assert main(["deploy", "live-at", target, "yesterday", *uri]) == 1
    assert "is not ISO 8601" in capsys.readouterr().err
    assert main(["registry", "frobnicate", *uri]) == 2
    assert "unknown registry action" in capsys.readouterr().err
