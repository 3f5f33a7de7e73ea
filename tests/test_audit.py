"""Audit views, the documented audit queries, run comparison, lineage and their CLI commands,
on both backends, over a demo-like store built with plain tracker calls (datasets and models
enter the catalog as rows, so these tests need no Spark)."""

from __future__ import annotations

import csv
import io
import json
import math
import re
from pathlib import Path

import pytest
from audit_demo import COMMIT_A, COMMIT_B, Demo, build_demo

import sqltrack
from sqltrack.audit import AUDIT_QUERIES
from sqltrack.cli import main

ROOT = Path(__file__).resolve().parent.parent
SCHEMA_DOC = ROOT / "docs" / "schema.md"


@pytest.fixture
def demo(tracker, store_uri, monkeypatch) -> Demo:
    return build_demo(tracker, store_uri, monkeypatch)


# -- the views -------------------------------------------------------------------------
def test_run_summary_has_params_and_latest_metrics_as_json(tracker, demo):
    _, rows = tracker.sql(
        "SELECT run_name, params->>'numTrees' AS t, CAST(metrics->>'r2' AS DOUBLE PRECISION) "
        "AS r2, tags->>'team' AS team, duration_seconds >= 0 AS ok FROM sqltrack.run_summary "
        "WHERE CAST(params->>'numTrees' AS INTEGER) >= 50 "
        "AND CAST(metrics->>'r2' AS DOUBLE PRECISION) > 0.8 ORDER BY run_name"
    )
    assert rows == [
        ("rf-100", "100", 0.91, "pricing", True),
        ("rf-50", "50", 0.86, "pricing", True),
    ]
    _, rows = tracker.sql(
        "SELECT CAST(metrics->>'odd' AS DOUBLE PRECISION) AS odd, CAST(metrics->>'big' AS "
        "DOUBLE PRECISION) AS big, params->>'numTrees' AS t, metrics->>'r2' AS r2 "
        "FROM sqltrack.run_summary "
        "WHERE run_name = 'notes'"
    )
    odd, big, trees, r2 = rows[0]
    assert math.isnan(odd) and big == math.inf and trees is None and r2 is None
    _, rows = tracker.sql(
        "SELECT count(*) AS n, count(DISTINCT run_id) AS d FROM sqltrack.run_summary"
    )
    assert rows == [(5, 5)]


def test_run_summary_json_is_valid_json_on_both_backends(tracker, demo):
    _, rows = tracker.sql(
        "SELECT CAST(metrics AS TEXT) AS m FROM sqltrack.run_summary WHERE run_name = 'notes'"
    )
    assert json.loads(rows[0][0]) == {"odd": "NaN", "big": "Infinity"}


def test_run_lineage_has_one_row_per_run_and_artifact(tracker, demo):
    _, rows = tracker.sql(
        "SELECT run_name, lineage_kind, dataset_id, fingerprint, row_count, model_id, user_name "
        "FROM sqltrack.run_lineage ORDER BY run_name, lineage_kind"
    )
    by = {(r[0], r[1]): r for r in rows}
    assert sorted(by) == sorted(
        [(n, "dataset") for n in ("rf-10", "rf-50", "rf-100", "rf-broken")]
        + [(n, "model") for n in ("rf-10", "rf-50", "rf-100")]
        + [("notes", "run")]
    )
    assert by[("rf-100", "model")][2:] == (
        demo.datasets["rf-100"],
        "fp-house-2",
        1200,
        demo.models["rf-100"],
        "bob",
    )
    assert by[("notes", "run")][2:6] == (None, None, None, None)


# -- the documented audit questions ----------------------------------------------------
def documented_audit_queries() -> dict[str, str]:
    text = SCHEMA_DOC.read_text()
    section = text[text.index("### Auditor's SQL: the audit questions") :]
    found = re.findall(r"^#### ([a-z-]+)\n.*?```sql\n(.*?)```", section, flags=re.S | re.M)
    return dict(found)


def as_bound(doc_sql: str) -> str:
    """The documented query with its placeholders and example dates as ``?``."""
    sql = re.sub(r"'<[a-z_]+>'|'\d{4}-\d\d-\d\d[^']*'", "?", doc_sql)
    return sql.strip().rstrip(";")


def test_every_audit_question_is_documented_with_the_query_the_library_runs():
    docs = documented_audit_queries()
    assert sorted(docs) == sorted(AUDIT_QUERIES)
    for name, query in AUDIT_QUERIES.items():
        assert as_bound(docs[name]) == query.sql, name
        assert query.sql.count("?") == len(query.parameters), name


def ask(tracker, name, *params):
    """Run the query as docs/schema.md prints it, with the values bound."""
    return tracker.sql(as_bound(documented_audit_queries()[name]), list(params))


def test_who_trained_what_when_on_which_data(tracker, demo):
    columns, rows = ask(tracker, "who-trained-what")
    got = [dict(zip(columns, r, strict=True)) for r in rows]
    trained = {(g["user_name"], g["run_name"], g["lineage_kind"], g["fingerprint"]) for g in got}
    assert ("alice", "rf-10", "dataset", "fp-house-1") in trained
    assert ("bob", "rf-100", "model", "fp-house-2") in trained
    assert ("carol", "notes", "run", None) in trained
    assert len(got) == 8
    model = next(g for g in got if g["run_name"] == "rf-100" and g["lineage_kind"] == "model")
    assert model["model_class"].endswith("RandomForestRegressionModel")
    assert model["table_name"] == f"sqltrack_data.ds_{demo.runs['rf-100']}_training"
    assert model["start_time"] <= model["end_time"]


def test_runs_that_used_a_dataset_with_a_fingerprint(tracker, demo):
    _, rows = ask(tracker, "runs-by-fingerprint", "fp-house-2")
    assert sorted(r[1] for r in rows) == sorted([demo.runs["rf-100"], demo.runs["rf-broken"]])
    assert ask(tracker, "runs-by-fingerprint", "no-such-fingerprint")[1] == []


def test_full_history_of_a_metric(tracker, demo):
    columns, rows = ask(tracker, "metric-history", demo.runs["rf-50"], "loss")
    assert columns == ["step", "timestamp", "value"]
    assert [r[0] for r in rows] == [0, 1, 2, 3, 4]
    assert [round(r[2], 6) for r in rows] == [round(1 / (k + 1) + 0.05, 6) for k in range(5)]


def test_runs_that_ended_failed_in_a_period(tracker, demo):
    _, rows = ask(tracker, "failed-runs", "2026-03-01 00:00:00+00", "2026-04-01 00:00:00+00")
    assert [(r[0], r[1], r[3], r[6]) for r in rows] == [
        ("demo", demo.runs["rf-broken"], "bob", COMMIT_B)
    ]
    assert ask(tracker, "failed-runs", "2026-04-01", "2026-05-01")[1] == []


def test_what_changed_between_two_runs(tracker, demo):
    _, rows = ask(tracker, "run-diff", demo.runs["rf-50"], demo.runs["rf-100"])
    assert rows == [
        ("commit", "git_commit", COMMIT_A, COMMIT_B),
        ("data", "training", "fp-house-1", "fp-house-2"),
        ("param", "numTrees", "50", "100"),
    ]
    assert ask(tracker, "run-diff", demo.runs["rf-10"], demo.runs["rf-10"])[1] == []


def test_audit_function_checks_its_arguments(tracker, demo):
    from sqltrack.audit import audit

    with pytest.raises(sqltrack.InvalidInputError, match="no audit question named 'nope'"):
        audit(tracker, "nope")
    with pytest.raises(sqltrack.InvalidInputError, match="takes 2 parameter"):
        audit(tracker, "run-diff", [demo.runs["rf-10"]])
    assert audit(tracker, "runs-by-fingerprint", ["fp-house-1"])[1]


# -- compare and lineage ---------------------------------------------------------------
def test_compare_runs_marks_differences(tracker, demo):
    ids = [demo.runs["rf-10"], demo.runs["rf-100"], demo.runs["notes"]]
    result = tracker.compare_runs(ids)
    assert [r.run_id for r in result.runs] == ids
    rows = {(r.kind, r.key): r for r in result.rows}
    assert rows[("param", "numTrees")].values == ("10", "100", None)
    assert rows[("param", "numTrees")].differs
    assert rows[("metric", "r2")].values == (0.71, 0.91, None)
    assert not tracker.compare_runs(ids[:2]).rows[0].differs  # impurity: the same in both
    same = {(r.kind, r.key): r.differs for r in tracker.compare_runs(ids[:2]).rows}
    assert same == {
        ("param", "impurity"): False,
        ("param", "maxDepth"): False,
        ("param", "numTrees"): True,
        ("metric", "loss"): True,
        ("metric", "r2"): True,
        ("metric", "rmse"): True,
    }
    assert sqltrack.compare_runs is not None


def test_compare_runs_treats_nan_as_equal_to_nan(tracker):
    ids = []
    for _ in range(2):
        with tracker.start_run() as run:
            tracker.log_metric("odd", float("nan"))
        ids.append(run.run_id)
    assert tracker.compare_runs(ids).differences == ()


def test_compare_runs_errors_name_the_fix(tracker, demo):
    one = demo.runs["rf-10"]
    with pytest.raises(sqltrack.InvalidInputError, match="at least 2 run ids"):
        tracker.compare_runs([one])
    with pytest.raises(sqltrack.InvalidInputError, match="given twice"):
        tracker.compare_runs([one, one])
    with pytest.raises(sqltrack.InvalidInputError, match="not one string"):
        tracker.compare_runs(one)
    with pytest.raises(sqltrack.InvalidInputError, match="32 lowercase hexadecimal"):
        tracker.compare_runs([one, "nope"])
    with pytest.raises(sqltrack.NotFoundError, match="f" * 32):
        tracker.compare_runs([one, "f" * 32])


def test_lineage_of_a_run(tracker, demo):
    result = tracker.lineage(demo.runs["rf-100"])
    assert result.experiment_name == "demo"
    assert [d.fingerprint for d in result.datasets] == ["fp-house-2"]
    assert [(m.model_id, m.dataset_fingerprint) for m in result.models] == [
        (demo.models["rf-100"], "fp-house-2")
    ]
    tree = "\n".join(result.tree())
    assert tree.startswith(f"run {demo.runs['rf-100']} 'rf-100' [FINISHED]")
    for part in (
        "├── user: bob",
        f"commit {COMMIT_B}",
        "1,200 rows, fingerprint fp-house-2",
        "RandomForestRegressionModel (trained on training",
    ):
        assert part in tree
    alone = tracker.lineage(demo.runs["notes"])
    assert alone.datasets == () and alone.models == ()
    assert "(no dataset logged)" in alone.tree()[-3]
    with pytest.raises(sqltrack.NotFoundError):
        tracker.lineage("e" * 32)


# -- the CLI ---------------------------------------------------------------------------
def cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_compare_formats(capsys, tracker, demo):
    a, b = demo.runs["rf-10"], demo.runs["rf-100"]
    code, out, _ = cli(capsys, "compare", a, b, "--uri", demo.uri)
    assert code == 0
    line = next(x for x in out.splitlines() if x.startswith("param   numTrees"))
    assert line.split() == ["param", "numTrees", "10", "100", "*"]
    assert next(x for x in out.splitlines() if "impurity" in x).split()[-1] == "variance"
    code, out, _ = cli(capsys, "compare", a, b, "--uri", demo.uri, "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert rows[0].keys() == {"kind", "key", "rf-10", "rf-100", "differs"}
    r2 = next(r for r in rows if r["key"] == "r2")
    assert (r2["rf-10"], r2["rf-100"], r2["differs"]) == ("0.71", "0.91", "True")
    code, out, _ = cli(
        capsys, "compare", a, b, "--uri", demo.uri, "--format", "json", "--only-differences"
    )
    data = json.loads(out)
    assert [r["run_id"] for r in data["runs"]] == [a, b]
    assert {r["key"] for r in data["rows"]} == {"numTrees", "loss", "r2", "rmse"}
    assert next(r for r in data["rows"] if r["key"] == "numTrees")["values"] == {a: "10", b: "100"}
    code, _, err = cli(capsys, "compare", a, "--uri", demo.uri)
    assert code == 1 and "at least 2 run ids" in err


def test_cli_lineage_tree_and_json(capsys, tracker, demo):
    run_id = demo.runs["rf-50"]
    code, out, _ = cli(capsys, "lineage", run_id, "--uri", demo.uri)
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == f"run {run_id} 'rf-50' [FINISHED]"
    assert "├── experiment: demo" in lines and "└── model" in lines
    code, out, _ = cli(capsys, "lineage", run_id, "--uri", demo.uri, "--format", "csv")
    assert [r["kind"] for r in csv.DictReader(io.StringIO(out))] == ["data", "model"]
    code, out, _ = cli(capsys, "lineage", run_id, "--uri", demo.uri, "--format", "json")
    data = json.loads(out)
    assert data["run"]["user_name"] == "alice" and data["run"]["git_commit"] == COMMIT_A
    assert data["datasets"][0]["fingerprint"] == "fp-house-1"
    assert data["models"][0]["model_id"] == demo.models["rf-50"]


def test_cli_audit_runs_the_documented_queries(capsys, tracker, demo):
    code, out, _ = cli(
        capsys,
        "audit",
        "failed-runs",
        "2026-03-01",
        "2026-04-01",
        "--uri",
        demo.uri,
        "--format",
        "json",
    )
    assert code == 0 and [r["run_name"] for r in json.loads(out)] == ["rf-broken"]
    code, out, _ = cli(capsys, "audit", "run-diff", "--show-sql")
    assert code == 0 and out.strip() == AUDIT_QUERIES["run-diff"].sql
    code, _, err = cli(capsys, "audit", "who", "--uri", demo.uri)
    assert code == 1 and "known: failed-runs" in err
