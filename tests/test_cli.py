"""The CLI: thin commands over library calls; every command documented with an example."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
import time

import pytest

from sqltrack.cli import COMMANDS, build_parser, main


@pytest.fixture
def populated(tracker, store_uri):
    tracker.create_experiment("cli")
    with tracker.start_run(run_name="good") as good:
        tracker.log_param("model", "rf")
        tracker.log_metric("r2", 0.9)
    with tracker.start_run(run_name="bad") as bad:
        tracker.log_param("model", "lr")
        tracker.log_metric("r2", 0.2)
    tracker.close()
    return store_uri, good.run_id, bad.run_id


def run_cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_every_command_has_help_with_an_example():
    parser = build_parser()
    assert COMMANDS, "no commands registered"
    sub = next(a for a in parser._actions if a.dest == "command")
    for name, cmd in COMMANDS.items():
        assert cmd.help and cmd.example.startswith("sqltrack "), name
        text = sub.choices[name].format_help()
        assert "Example: sqltrack " in text and "--uri" in text, name


def test_help_is_fast():
    started = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-m", "sqltrack", "--help"], capture_output=True, text=True, check=True
    ).stdout
    assert time.perf_counter() - started < 5  # generous: a cold interpreter on a busy machine
    for name in COMMANDS:
        assert name in out


def test_runs_filter_and_formats(capsys, populated):
    uri, good, _ = populated
    code, out, _ = run_cli(
        capsys, "runs", "--uri", uri, "--filter", "metrics.r2 > 0.5", "--format", "csv"
    )
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["run_id"] for r in rows] == [good]
    assert rows[0]["params.model"] == "rf" and float(rows[0]["metrics.r2"]) == 0.9
    code, out, _ = run_cli(
        capsys,
        "runs",
        "--uri",
        uri,
        "--experiment",
        "cli",
        "--order-by",
        "metrics.r2 ASC",
        "--format",
        "json",
    )
    assert [r["run_name"] for r in json.loads(out)] == ["bad", "good"]
    code, out, _ = run_cli(capsys, "runs", "--uri", uri)
    assert "good" in out and "(2 rows)" in out


def test_experiments_show_and_sql(capsys, populated):
    uri, good, _ = populated
    code, out, _ = run_cli(capsys, "experiments", "--uri", uri, "--format", "json")
    assert [e["name"] for e in json.loads(out)] == ["cli"]
    code, out, _ = run_cli(capsys, "show", good, "--uri", uri, "--format", "json")
    rows = {(r["section"], r["key"]): r["value"] for r in json.loads(out)}
    assert rows[("param", "model")] == "rf" and rows[("metric", "r2")] == 0.9
    assert rows[("info", "status")] == "FINISHED"
    code, out, _ = run_cli(
        capsys,
        "sql",
        "SELECT key, value FROM sqltrack.params ORDER BY value",
        "--uri",
        uri,
        "--format",
        "csv",
    )
    assert out.splitlines() == ["key,value", "model,lr", "model,rf"]


def test_sql_is_read_only(capsys, populated):
    uri, _, _ = populated
    for statement in (
        "DELETE FROM sqltrack.runs",
        "SELECT 1; DELETE FROM sqltrack.runs",
        "SELECT 1; COMMIT; DELETE FROM sqltrack.runs",
    ):
        code, _, err = run_cli(capsys, "sql", statement, "--uri", uri)
        assert code == 1 and "sqltrack: error:" in err, statement
        assert "Traceback" not in err
    code, out, _ = run_cli(
        capsys, "sql", "SELECT count(*) AS n FROM sqltrack.runs", "--uri", uri, "--format", "json"
    )
    assert json.loads(out) == [{"n": 2}]


def test_errors_are_one_line_without_traceback(capsys, populated):
    uri, _, _ = populated
    code, _, err = run_cli(capsys, "show", "f" * 32, "--uri", uri)
    assert code == 1 and "does not exist" in err
    code, _, err = run_cli(capsys, "runs", "--uri", uri, "--filter", "metrics.r2 >")
    assert code == 1 and "expected a value" in err


def test_python_dash_m_entry_point(populated):
    uri, good, _ = populated
    out = subprocess.run(
        [sys.executable, "-m", "sqltrack", "runs", "--uri", uri, "--format", "json"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert good in {r["run_id"] for r in json.loads(out)}
