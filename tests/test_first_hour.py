"""What a data scientist runs into in the first hour (issue 13), library side: metric
timestamps, unknown experiments, order_by and end_run messages. Each test failed on the
code before the change."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import pytest

import sqltrack
from sqltrack.cli import main


def test_metric_timestamp_accepts_a_datetime_and_refuses_seconds(tracker):
    when = datetime(2026, 3, 1, 12, 30, 15, 250_000, tzinfo=timezone.utc)
    with tracker.start_run() as run:
        tracker.log_metric("loss", 0.5, step=0, timestamp=when)
        tracker.log_metric("loss", 0.4, step=1, timestamp=int(when.timestamp() * 1000) + 1000)
        with pytest.raises(sqltrack.InvalidInputError, match="looks like seconds") as err:
            tracker.log_metric("loss", 0.3, step=2, timestamp=time.time())
        assert "time.time() * 1000" in str(err.value) and "datetime" in str(err.value)
        with pytest.raises(sqltrack.InvalidInputError, match="looks like seconds"):
            tracker.log_metrics({"a": 1.0}, timestamp=1_700_000_000)
    history = tracker.get_metric_history(run.run_id, "loss")
    assert [m.timestamp for m in history] == [when, when + timedelta(seconds=1)]
    assert len(history) == 2  # the refused points wrote nothing


def test_unknown_experiment_is_the_same_error_in_search_runs_runs_and_report(
    capsys, tracker, tmp_path
):
    tracker.create_experiment("churn")
    with tracker.start_run(run_name="a"):
        tracker.log_metric("r2", 0.5)
    with pytest.raises(sqltrack.NotFoundError, match="no experiment named 'demo'") as err:
        tracker.search_runs(["demo"])
    message = str(err.value)
    assert "'churn'" in message  # names the experiments that exist
    assert len(tracker.search_runs(["churn"])) == 1
    uri = tracker.uri
    tracker.close()
    for argv in (
        ["runs", "--uri", uri, "--experiment", "demo"],
        ["report", "--uri", uri, "--experiment", "demo", "--out", str(tmp_path / "r"), "--quiet"],
    ):
        code = main(argv)
        _, stderr = capsys.readouterr()
        assert code == 1, argv
        assert stderr.strip() == f"sqltrack: error: {message}", argv


def test_bad_order_by_is_reported_as_order_by(tracker):
    tracker.create_experiment("churn")
    for bad in ("foo DESC", "metrics.r2 DESC LIMIT", "attributes.nope", "(r2)"):
        with pytest.raises(sqltrack.InvalidInputError) as err:
            tracker.search_runs(["churn"], order_by=[bad])
        assert str(err.value).startswith(f"order_by {bad!r}") or f"order_by {bad!r}" in str(
            err.value
        ), str(err.value)
        assert "filter" not in str(err.value)


def test_second_end_run_says_the_run_already_ended(tracker, store_uri):
    run = tracker.start_run(run_name="once")
    tracker.end_run()
    with pytest.raises(sqltrack.ConflictError, match=r"has already ended \(FINISHED\)"):
        tracker.end_run(run_id=run.run_id)
    # another process knew the run as RUNNING and ends it after this one did
    other = sqltrack.connect(store_uri)
    try:
        second = other.start_run(run_name="twice")
        other.flush()
        with sqltrack.connect(store_uri) as third:
            third.end_run("KILLED", run_id=second.run_id)
        with pytest.raises(sqltrack.ConflictError, match=r"has already ended \(KILLED\)"):
            other.end_run(run_id=second.run_id)
    finally:
        other.close()
    assert tracker.get_run(second.run_id).info.status == "KILLED"
