"""Experiments, runs, params, metrics, tags and timers on both backends."""

from __future__ import annotations

import math
import os
import pickle
import subprocess
import time
from datetime import datetime, timedelta, timezone

import pytest

import sqltrack
from sqltrack import ConflictError, InvalidInputError, NotFoundError


def test_create_experiment_returns_existing_id_and_activates(tracker):
    first = tracker.create_experiment("churn", tags={"team": "risk"})
    other = tracker.create_experiment("other")
    again = tracker.create_experiment("churn", tags={"team": "ml"})
    assert first == again != other
    with tracker.start_run() as run:
        pass
    assert run.info.experiment_id == first  # create_experiment made "churn" active again
    exp = tracker.get_experiment_by_name("churn")
    assert exp.tags == {"team": "ml"}
    assert [e.name for e in tracker.list_experiments()] == ["churn", "other"]
    with pytest.raises(NotFoundError, match="'nope'"):
        tracker.get_experiment_by_name("nope")
    with pytest.raises(InvalidInputError):
        tracker.create_experiment("")


def test_run_without_experiment_goes_to_default(tracker):
    with tracker.start_run(run_name="r") as run:
        pass
    assert tracker.get_experiment_by_name("Default").experiment_id == run.info.experiment_id


def test_run_context_manager_finishes_and_records_context(tracker, monkeypatch):
    monkeypatch.setenv("SQLTRACK_USER", "alice")
    before = datetime.now(timezone.utc)
    with tracker.start_run(run_name="first", tags={"stage": "dev"}) as run:
        assert tracker.active_run().run_id == run.run_id
        assert run.info.status == "RUNNING"
    after = datetime.now(timezone.utc)
    assert tracker.active_run() is None
    stored = tracker.get_run(run.run_id)
    info = stored.info
    assert len(info.run_id) == 32 and int(info.run_id, 16) >= 0
    assert info.status == "FINISHED"
    assert info.user_name == "alice"
    assert info.run_name == "first"
    assert before - timedelta(seconds=1) <= info.start_time <= info.end_time <= after
    assert info.start_time.tzinfo is not None
    assert info.host_name
    assert stored.tags == {"stage": "dev"}
    if info.source_type == "SCRIPT":
        expected = subprocess.run(
            ["git", "-C", os.path.dirname(info.source_name), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
        assert info.git_commit == (expected or None)


def test_exception_ends_run_failed_and_reraises(tracker):
    with pytest.raises(RuntimeError, match="boom"):
        with tracker.start_run() as run:
            raise RuntimeError("boom")
    assert tracker.get_run(run.run_id).info.status == "FAILED"
    assert tracker.active_run() is None


def test_nested_runs_and_end_run(tracker):
    parent = tracker.start_run(run_name="parent")
    with pytest.raises(ConflictError, match="already active"):
        tracker.start_run()
    child = tracker.start_run(run_name="child", nested=True)
    assert child.info.parent_run_id == parent.run_id
    tracker.end_run()
    assert tracker.active_run().run_id == parent.run_id
    tracker.end_run("KILLED")
    assert tracker.get_run(parent.run_id).info.status == "KILLED"
    assert tracker.get_run(child.run_id).info.status == "FINISHED"
    explicit = tracker.start_run(parent_run_id=parent.run_id)
    assert explicit.info.parent_run_id == parent.run_id
    tracker.end_run()
    with pytest.raises(InvalidInputError, match="RUNNING"):
        tracker.end_run("RUNNING", run_id=parent.run_id)
    with pytest.raises(ConflictError, match="no active run"):
        tracker.end_run()
    with pytest.raises(NotFoundError):
        tracker.start_run(parent_run_id="0" * 32)


def test_params_are_immutable(tracker):
    with tracker.start_run() as run:
        assert tracker.log_param("alpha", 0.5) == 0.5
        tracker.lp("alpha", 0.5)  # same value: a no-op
        with pytest.raises(ConflictError) as err:
            tracker.log_param("alpha", 0.7)
        message = str(err.value)
        assert "'alpha'" in message and "'0.5'" in message and "'0.7'" in message
        tracker.log_params({"model": "rf", "depth": 5})
        tracker.log_params([("seed", 1), ("model", "rf")])
        with pytest.raises(ConflictError, match="'depth'"):
            tracker.log_params({"new": "x", "depth": 6})
    params = tracker.get_run(run.run_id).params
    assert params == {"alpha": "0.5", "model": "rf", "depth": "5", "seed": "1"}
    assert "new" not in params  # the failed batch wrote nothing


def test_metric_history_keeps_everything_including_non_finite(tracker):
    values = [0.5, float("nan"), float("inf"), float("-inf"), -0.0, 1e-300]
    with tracker.start_run() as run:
        for step, v in enumerate(values):
            tracker.log_metric("loss", v, step=step)
        tracker.lm("acc", 0.1, step=5, timestamp=1_700_000_000_000)
        tracker.lm("acc", 0.9, step=2)
    history = tracker.get_metric_history(run.run_id, "loss")
    assert [m.step for m in history] == list(range(len(values)))
    for got, want in zip(history, values, strict=True):
        if math.isnan(want):
            assert math.isnan(got.value)
        else:
            assert got.value == want
    assert math.copysign(1, history[4].value) == -1.0  # -0.0 keeps its sign
    acc = tracker.get_metric_history(run.run_id, "acc")
    assert acc[1].timestamp == datetime.fromtimestamp(1_700_000_000, tz=timezone.utc)
    latest = tracker.get_run(run.run_id).metrics
    assert latest["acc"] == 0.1  # highest step wins, not the last call
    assert latest["loss"] == 1e-300


def test_log_metrics_batch(tracker):
    with tracker.start_run() as run:
        tracker.log_metrics({"a": 1, "b": 2.5}, step=3)
        tracker.log_metrics([("a", 2)], step=4)
        tracker.log_metric_history("curve", [0.3, 0.2, 0.1])
    assert tracker.get_run(run.run_id).metrics == {"a": 2.0, "b": 2.5, "curve": 0.1}
    assert [m.step for m in tracker.get_metric_history(run.run_id, "curve")] == [0, 1, 2]


@pytest.mark.parametrize(
    ("step", "match"),
    [(-1, "negative"), (float("nan"), "finite"), (1.5, "whole"), ("3", "whole"), (True, "whole")],
)
def test_bad_steps_are_rejected(tracker, step, match):
    with tracker.start_run() as run:
        with pytest.raises(InvalidInputError, match=match):
            tracker.log_metric("m", 1.0, step=step)
        with pytest.raises(InvalidInputError, match=match):
            tracker.log_metrics({"ok": 1.0, "m": 2.0}, step=step)
    assert tracker.get_run(run.run_id).metrics == {}


@pytest.mark.parametrize(
    "key",
    [
        "",
        "a" * 251,
        "bad;key",
        "quote'key",
        "../up",
        "/abs",
        "a//b",
        "trailing/",
        ".",
        "tab\tkey",
        "é",
    ],
)
def test_invalid_keys_are_rejected(tracker, key):
    with tracker.start_run() as run:
        for call in (
            lambda: tracker.log_param(key, 1),
            lambda: tracker.log_metric(key, 1.0),
            lambda: tracker.set_tag(key, "v"),
            lambda: tracker.log_metrics({key: 1.0}),
        ):
            with pytest.raises(InvalidInputError):
                call()
    stored = tracker.get_run(run.run_id)
    assert not stored.params and not stored.metrics and not stored.tags


def test_valid_key_characters_are_accepted(tracker):
    key = "train/loss:v2 final-a_b.c"
    with tracker.start_run() as run:
        tracker.log_metric(key, 1.0)
    assert key in tracker.get_run(run.run_id).metrics


def test_metric_value_must_be_a_number(tracker):
    with tracker.start_run():
        with pytest.raises(InvalidInputError, match="'high'"):
            tracker.log_metric("m", "high")


def test_logging_to_finished_or_unknown_run_fails_and_writes_nothing(tracker):
    with tracker.start_run() as run:
        pass
    rid = run.run_id
    for call in (
        lambda: tracker.log_metric("m", 1.0, run_id=rid),
        lambda: tracker.log_metrics({"m": 1.0}, run_id=rid),
        lambda: tracker.log_param("p", 1, run_id=rid),
        lambda: tracker.log_params({"p": 1}, run_id=rid),
        lambda: tracker.log_text("x", "a.txt", run_id=rid),
    ):
        with pytest.raises(ConflictError, match="FINISHED"):
            call()
    stored = tracker.get_run(rid)
    assert not stored.params and not stored.metrics
    assert tracker.list_artifacts(rid) == []
    unknown = "f" * 32
    with pytest.raises(NotFoundError, match=unknown):
        tracker.log_metric("m", 1.0, run_id=unknown)
    with pytest.raises(NotFoundError, match=unknown):
        tracker.get_run(unknown)
    with pytest.raises(InvalidInputError, match="not a run id"):
        tracker.get_run("'; DROP TABLE sqltrack.runs; --")


def test_tags_are_mutable_and_settable_after_the_run(tracker):
    with tracker.start_run(tags={"stage": "dev"}) as run:
        tracker.set_tag("stage", "review")
        tracker.set_tags({"owner": "bob"})
    tracker.set_tag("verdict", "approved", run_id=run.run_id)
    assert tracker.get_run(run.run_id).tags == {
        "stage": "review",
        "owner": "bob",
        "verdict": "approved",
    }


def test_long_values_are_kept_whole_or_rejected(tracker):
    long_text = "x" * 10_000  # beyond MLflow's 6,000/8,000 truncation, kept whole
    with tracker.start_run() as run:
        tracker.log_param("long", long_text)
        tracker.set_tag("long", long_text)
        with pytest.raises(InvalidInputError, match="1,000,000"):
            tracker.log_param("huge", "y" * 1_000_001)
    stored = tracker.get_run(run.run_id)
    assert stored.params["long"] == long_text and stored.tags["long"] == long_text


def test_timers_log_elapsed_seconds(tracker):
    with tracker.start_run() as run:
        tracker.start_timer("train_time")
        time.sleep(0.05)
        seconds = tracker.stop_and_log_timer()
        with pytest.raises(ConflictError, match="no timer"):
            tracker.stop_and_log_timer()
    assert seconds >= 0.05
    assert tracker.get_run(run.run_id).metrics["train_time"] == pytest.approx(seconds)


def test_run_is_frozen(tracker):
    with tracker.start_run() as run:
        tracker.log_param("p", 1)
    stored = tracker.get_run(run.run_id)
    with pytest.raises(AttributeError):
        stored.info = None  # type: ignore[misc]
    with pytest.raises(TypeError):
        stored.params["p"] = "2"  # type: ignore[index]


def test_fluent_api_mirrors_the_tracker(store_uri):
    sqltrack.set_tracking_uri(store_uri)
    try:
        eid = sqltrack.create_experiment("fluent")
        with sqltrack.start_run(run_name="f") as run:
            sqltrack.log_param("p", "v")
            sqltrack.lp("q", 1)
            sqltrack.log_metric("m", 2.0)
            sqltrack.lm("n", 3.0)
            sqltrack.set_tag("t", "x")
        stored = sqltrack.get_run(run.run_id)
        assert stored.info.experiment_id == eid
        assert stored.params == {"p": "v", "q": "1"}
        assert stored.metrics == {"m": 2.0, "n": 3.0}
        frame = sqltrack.search_runs(["fluent"])
        assert list(frame["run_id"]) == [run.run_id]
    finally:
        sqltrack.set_tracking_uri(None)


def test_errors_are_one_picklable_tree():
    for cls in (
        sqltrack.InvalidInputError,
        sqltrack.NotFoundError,
        sqltrack.ConflictError,
        sqltrack.SchemaOutOfDateError,
        sqltrack.TransientBackendError,
        sqltrack.TerminalBackendError,
        sqltrack.StoreBusyError,
        sqltrack.IntegrityError,
    ):
        assert issubclass(cls, sqltrack.SqltrackError)
        assert cls.__module__ == "sqltrack"
        copy = pickle.loads(pickle.dumps(cls("bad value 'x'")))
        assert type(copy) is cls and str(copy) == "bad value 'x'"


def test_every_public_tracker_method_has_a_fluent_twin():
    public = {
        n
        for n in dir(sqltrack.Tracker)
        if not n.startswith("_") and callable(getattr(sqltrack.Tracker, n))
    }
    public -= {"close", "sql"}  # per-connection, not part of MLflow's fluent API
    missing = sorted(n for n in public if not callable(getattr(sqltrack, n, None)))
    assert not missing, f"fluent functions missing for: {missing}"
    assert sqltrack.__all__ == sorted(sqltrack.__all__, key=lambda n: (n[0].islower(), n))
