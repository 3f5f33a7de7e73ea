"""The model registry on both backends: numbered immutable versions of stored Spark models,
aliases with an append-only history, model references, governance and bad input."""

from __future__ import annotations

import threading

import pytest

import sqltrack
from sqltrack import registry

pytest.register_assert_rewrite("tests.registry_fixtures")
pytest_plugins = ["tests.registry_fixtures"]

from tests.registry_fixtures import count, predictions, train  # noqa: E402

pytestmark = pytest.mark.spark


def test_versions_are_numbered_and_keep_what_trained_them(reg, trained, fresh_name):
    first, second = trained
    v1 = reg.register_model(first.uri, fresh_name, description="first")
    v2 = reg.register_model(second.uri, fresh_name)
    assert isinstance(v1, sqltrack.RegisteredModelVersion)
    assert (v1.name, v1.version, v1.run_id, v1.model_id) == (
        fresh_name,
        1,
        first.run_id,
        first.stored.model_id,
    )
    assert (v2.version, v2.model_id) == (2, second.stored.model_id)
    assert v1.source == first.uri and v1.description == "first"
    assert v1.model_sha256 == first.stored.sha256
    assert (v1.dataset_id, v1.dataset_fingerprint) == (
        first.dataset.dataset_id,
        first.dataset.fingerprint,
    )
    assert v1.user_name and v1.aliases == ()

    model = reg.get_registered_model(fresh_name)
    assert (model.name, model.latest_version, dict(model.aliases)) == (fresh_name, 2, {})
    assert [v.version for v in reg.search_model_versions(f"name = '{fresh_name}'")] == [2, 1]
    found = reg.search_model_versions(f"name = '{fresh_name}' AND run_id = '{first.run_id}'")
    assert [(v.name, v.version) for v in found] == [(fresh_name, 1)]
    assert reg.search_model_versions(f"name LIKE '{fresh_name[:8]}%' AND version IN (2)")[0] == v2
    assert [m.name for m in reg.search_registered_models(f"name = '{fresh_name}'")] == [fresh_name]
    assert reg.search_registered_models("name = 'no-such-model'") == []
    assert reg.get_model_version(fresh_name, "2") == v2

    # the same stored model under another name is a version of that name (MLflow's promotion)
    other = reg.register_model(f"models:/{fresh_name}/1", fresh_name + "-eu")
    assert (other.version, other.model_id, other.run_id) == (1, first.stored.model_id, first.run_id)
    # one version per stored model and name
    with pytest.raises(sqltrack.ConflictError, match=f"already version 1 of '{fresh_name}'"):
        reg.register_model(first.uri, fresh_name)
    assert count(reg, "model_versions", fresh_name) == 2


def test_aliases_move_and_every_change_is_kept(reg, trained, fresh_name):
    for t in trained:
        reg.register_model(t.uri, fresh_name)
    reg.set_registered_model_alias(fresh_name, "champion", 1, reason="best AUC")
    moved = reg.set_registered_model_alias(fresh_name, "champion", "2", reason="retrained")
    assert moved.version == 2 and moved.aliases == ("champion",)
    reg.set_registered_model_alias(fresh_name, "challenger", 1)
    assert reg.get_model_version_by_alias(fresh_name, "champion").version == 2
    assert dict(reg.get_registered_model(fresh_name).aliases) == {"challenger": 1, "champion": 2}
    assert reg.get_model_version(fresh_name, 1).aliases == ("challenger",)
    with pytest.raises(sqltrack.ConflictError, match="already points at version 2"):
        reg.set_registered_model_alias(fresh_name, "champion", 2)

    reg.delete_registered_model_alias(fresh_name, "champion", reason="incident 42")
    with pytest.raises(sqltrack.NotFoundError, match="no alias 'champion' .*challenger -> 1"):
        reg.get_model_version_by_alias(fresh_name, "champion")
    with pytest.raises(sqltrack.NotFoundError, match="no alias 'champion'"):
        reg.delete_registered_model_alias(fresh_name, "champion")

    history = reg.get_model_alias_history(fresh_name, "champion")
    assert [(e.seq, e.from_version, e.to_version, e.reason) for e in history] == [
        (1, None, 1, "best AUC"),
        (2, 1, 2, "retrained"),
        (3, 2, None, "incident 42"),
    ]
    assert all(e.user_name for e in history)
    assert history[0].changed_at <= history[1].changed_at <= history[2].changed_at
    assert len(reg.get_model_alias_history(fresh_name)) == 4
    _, rows = reg.sql(
        "SELECT alias, version FROM sqltrack.model_aliases WHERE name = ?", (fresh_name,)
    )
    assert rows == [("challenger", 1)]
    # set again after removal: a new event, from nothing
    reg.set_registered_model_alias(fresh_name, "champion", 1)
    last = reg.get_model_alias_history(fresh_name, "champion")[-1]
    assert (last.seq, last.from_version, last.to_version) == (4, None, 1)


def test_load_spark_model_takes_every_model_reference(reg, trained, registry_orders, fresh_name):
    first, second = trained
    reg.register_model(first.uri, fresh_name)
    reg.register_model(second.uri, fresh_name)
    reg.set_registered_model_alias(fresh_name, "champion", 1)
    expected = [predictions(t.model, registry_orders) for t in trained]
    assert expected[0] != expected[1]  # the two versions are told apart by their predictions
    for ref, which in (
        (first.uri, 0),
        (f"runs:/{second.run_id}", 1),
        (f"models:/{fresh_name}/1", 0),
        (f"models:/{fresh_name}/latest", 1),
        (f"models:/{fresh_name}@champion", 0),
    ):
        assert predictions(reg.load_spark_model(ref), registry_orders) == expected[which], ref
    resolved = registry.resolve_model_ref(reg.backend, f"models:/{fresh_name}@champion")
    assert (resolved.run_id, resolved.model_name, resolved.version, resolved.alias) == (
        first.run_id,
        "model",
        1,
        "champion",
    )
    assert resolved.registered_name == fresh_name and resolved.model_id == first.stored.model_id
    assert resolved.model_class == "pyspark.ml.pipeline.PipelineModel"


def test_only_finished_runs_with_intact_data_are_registered(
    reg, registry_orders, registry_models, fresh_name
):
    running = train(reg, registry_orders, registry_models[0], end=False, data=False)
    with pytest.raises(sqltrack.ConflictError, match=f"{running.run_id} is RUNNING, not FINISHED"):
        reg.register_model(running.uri, fresh_name)
    reg.end_run(status="FAILED")
    with pytest.raises(sqltrack.ConflictError, match="is FAILED, not FINISHED"):
        reg.register_model(running.uri, fresh_name)
    assert count(reg, "registered_models", fresh_name) == 0

    tampered = train(reg, registry_orders, registry_models[0])
    table = tampered.dataset.table_name
    with reg.backend.session() as s:  # the stored rows change after training
        s.execute(f"UPDATE {table} SET price = price + 1 WHERE city = 'Nice'")  # noqa: S608
    with pytest.raises(sqltrack.IntegrityError, match="register_model.* does not match its fing"):
        reg.register_model(tampered.uri, fresh_name)
    assert (
        count(reg, "registered_models", fresh_name) == count(reg, "model_versions", fresh_name) == 0
    )


def delete_run(tracker, run_id):
    """Delete a run with everything sqltrack writes about it, children first (sqltrack has
    no run deletion: this is what an administrator would type)."""
    with tracker.backend.session() as s:
        for table in (
            "metrics",
            "params",
            "tags",
            "run_leases",
            "pipeline_stages",
            "feature_transformations",
        ):
            s.execute(f"DELETE FROM sqltrack.{table} WHERE run_id = ?", (run_id,))  # noqa: S608
        s.execute(
            "DELETE FROM sqltrack.model_chunks WHERE model_id IN "
            "(SELECT model_id FROM sqltrack.models WHERE run_id = ?)",
            (run_id,),
        )
        s.execute("DELETE FROM sqltrack.models WHERE run_id = ?", (run_id,))
        s.execute("DELETE FROM sqltrack.runs WHERE run_id = ?", (run_id,))


def test_a_run_with_registered_versions_cannot_be_deleted(
    reg, registry_orders, registry_models, fresh_name
):
    kept = train(reg, registry_orders, registry_models[0], data=False)
    free = train(reg, registry_orders, registry_models[1], data=False)
    reg.register_model(kept.uri, fresh_name)
    delete_run(reg, free.run_id)  # the same statements delete an unregistered run
    assert not reg.sql("SELECT 1 FROM sqltrack.runs WHERE run_id = ?", (free.run_id,))[1]
    with pytest.raises(sqltrack.ConflictError, match="foreign key"):
        delete_run(reg, kept.run_id)
    assert reg.get_run(kept.run_id).info.status == "FINISHED"
    assert reg.get_model_version(fresh_name, 1).run_id == kept.run_id
    assert reg.sql("SELECT 1 FROM sqltrack.models WHERE run_id = ?", (kept.run_id,))[1]


@pytest.mark.parametrize("registry_uri", ["postgres"], indirect=True)
def test_postgres_versions_and_events_are_append_only_and_logins_are_the_databases(
    reg, trained, fresh_name
):
    reg.register_model(trained[0].uri, fresh_name)
    reg.set_registered_model_alias(fresh_name, "champion", 1)
    for statement in (
        "UPDATE sqltrack.model_versions SET description = 'edited' WHERE name = ?",
        "DELETE FROM sqltrack.model_versions WHERE name = ?",
        "UPDATE sqltrack.model_alias_events SET to_version = 1 WHERE name = ?",
        "DELETE FROM sqltrack.model_alias_events WHERE name = ?",
    ):
        with pytest.raises(sqltrack.SqltrackError, match="append-only"):
            with reg.backend.session() as s:
                s.execute(statement, (fresh_name,))
    for table in ("model_versions", "model_alias_events", "deployment_events"):
        with pytest.raises(sqltrack.SqltrackError, match="append-only: TRUNCATE refused"):
            with reg.backend.session() as s:
                s.execute(f"TRUNCATE sqltrack.{table} CASCADE")
    # a login the client names is replaced by the database's own
    with reg.backend.session() as s:
        s.execute(
            "INSERT INTO sqltrack.model_alias_events (name, alias, seq, to_version, user_name, "
            "db_user) VALUES (?, 'forged', 1, 1, 'x', 'somebody_else')",
            (fresh_name,),
        )
        login = s.query("SELECT session_user")[0][0]
    _, rows = reg.sql(
        "SELECT DISTINCT db_user FROM sqltrack.model_alias_events WHERE name = ?", (fresh_name,)
    )
    assert rows == [(login,)]
    assert reg.get_model_version(fresh_name, 1).db_user == login


@pytest.mark.parametrize("registry_uri", ["duckdb"], indirect=True)
def test_duckdb_has_no_logins(reg, trained, fresh_name):
    version = reg.register_model(trained[0].uri, fresh_name)
    assert version.db_user is None and version.user_name


@pytest.mark.parametrize("registry_uri", ["postgres"], indirect=True)
def test_postgres_concurrent_registrations_each_get_a_version(
    reg, trained, fresh_name, registry_uri
):
    """A registration that collides with another writer's uncommitted version number waits,
    then takes the next number (PostgreSQL; a DuckDB file has one writer at a time)."""
    from tests.conftest import _pg_connect

    first, second = trained
    reg.create_registered_model(fresh_name)
    rival = _pg_connect(registry_uri)
    rival.autocommit = False
    rival.execute(
        "INSERT INTO sqltrack.model_versions (name, version, model_id, run_id, source, "
        "model_sha256, user_name) VALUES (%s, 1, %s, %s, 'rival', %s, 'rival')",
        (fresh_name, first.stored.model_id, first.run_id, first.stored.sha256),
    )
    result: list[object] = []
    worker = threading.Thread(
        target=lambda: result.append(reg.register_model(second.uri, fresh_name))
    )
    worker.start()
    waiting = 0
    while not waiting:  # until the registration waits for the rival's uncommitted row
        waiting = rival.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
            "AND datname = current_database()"
        ).fetchone()[0]
    rival.commit()
    rival.close()
    worker.join()
    assert [v.version for v in result] == [2]  # type: ignore[attr-defined]
    assert [v.source for v in reg.search_model_versions(f"name = '{fresh_name}'")] == [
        second.uri,
        "rival",
    ]


@pytest.mark.parametrize(
    ("alias", "why"),
    [
        ("Champion", "lower-case"),
        ("latest", "not 'latest'"),
        ("v3", "v<number>"),
        ("two words", "lower-case"),
        ("", "lower-case"),
        ("x" * 65, "1 to 64"),
    ],
)
def test_alias_names_outside_the_documented_set(reg, trained, fresh_name, alias, why):
    reg.register_model(trained[0].uri, fresh_name)
    with pytest.raises(sqltrack.InvalidInputError, match=f"alias '{alias}' is not valid") as e:
        reg.set_registered_model_alias(fresh_name, alias, 1)
    assert why in str(e.value)
    assert count(reg, "model_alias_events", fresh_name) == 0


def test_bad_references_and_names_say_what_exists(reg, trained, fresh_name):
    rid = trained[0].run_id
    for ref, error, message in [
        (f"runs:/{rid}/forest", sqltrack.NotFoundError, "stored no model 'forest' .*model"),
        (f"runs:/{'0' * 32}/model", sqltrack.NotFoundError, f"run {'0' * 32} does not exist"),
        ("runs:/abc/model", sqltrack.InvalidInputError, "'abc' is not a run id"),
        ("models:/nope/1", sqltrack.NotFoundError, "registered model 'nope' does not exist"),
        ("s3://bucket/model", sqltrack.InvalidInputError, "scheme .s3.; use one of: runs:/"),
        ("models:/churn", sqltrack.InvalidInputError, "use models:/NAME/VERSION"),
    ]:
        with pytest.raises(error, match=message):
            reg.register_model(ref, fresh_name)
    assert count(reg, "registered_models", fresh_name) == 0

    reg.register_model(trained[0].uri, fresh_name)
    for call, error, message in [
        (lambda: reg.get_model_version(fresh_name, 7), sqltrack.NotFoundError, "no version 7 .*1"),
        (lambda: reg.get_model_version(fresh_name, 0), sqltrack.InvalidInputError, "from 1"),
        (
            lambda: reg.get_model_version("nope", 1),
            sqltrack.NotFoundError,
            f"registered: .*{fresh_name}",
        ),
        (
            lambda: reg.get_model_version_by_alias(fresh_name, "champion"),
            sqltrack.NotFoundError,
            "no alias 'champion' .*none.*set_registered_model_alias",
        ),
        (
            lambda: reg.load_spark_model(f"models:/{fresh_name}@champion"),
            sqltrack.NotFoundError,
            "no alias 'champion'",
        ),
        (
            lambda: reg.set_registered_model_alias(fresh_name, "champion", 9),
            sqltrack.NotFoundError,
            "no version 9",
        ),
        (
            lambda: reg.register_model(trained[0].uri, "bad/name"),
            sqltrack.InvalidInputError,
            "'bad/name' is not valid",
        ),
        (
            lambda: reg.create_registered_model(fresh_name),
            sqltrack.ConflictError,
            f"'{fresh_name}' already exists",
        ),
        (
            lambda: reg.search_model_versions("stage = 'Production'"),
            sqltrack.InvalidInputError,
            "unknown field 'stage'",
        ),
    ]:
        with pytest.raises(error, match=message):
            call()
    assert count(reg, "model_versions", fresh_name) == 1
    assert count(reg, "model_alias_events", fresh_name) == 0


def test_registered_model_tags_and_description(reg, fresh_name):
    created = reg.create_registered_model(fresh_name, "who leaves", tags={"team": "ml"})
    assert (created.description, dict(created.tags), created.latest_version) == (
        "who leaves",
        {"team": "ml"},
        None,
    )
    reg.set_registered_model_tag(fresh_name, "team", "risk")
    assert dict(reg.get_registered_model(fresh_name).tags) == {"team": "risk"}
    with pytest.raises(sqltrack.NotFoundError, match="no versions yet"):
        reg.load_spark_model(f"models:/{fresh_name}/latest")
