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


def test_version(capsys):
    import sqltrack

    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.strip() == f"sqltrack {sqltrack.__version__}"


@pytest.fixture
def wide(tracker, store_uri):
    """An experiment like the demo's: 40 params and 12 metrics per run."""
    tracker.create_experiment("wide")
    ids = {}
    for i, auc in enumerate((0.71, 0.83, 0.77)):
        with tracker.start_run(run_name=f"model-{i}") as run:
            tracker.log_params({f"Stage{k}.SomeLongStageClassName.param{k}": k for k in range(36)})
            tracker.log_params({"numTrees": 5 * (i + 1), "seed": 1, "model": f"m{i}"})
            tracker.log_params({"note": "x" * 70})
            tracker.log_metrics({f"metric_{k}": k / 10 for k in range(10)})
            tracker.log_metrics({"areaUnderROC": auc, "training_time": 3.5 + i})
        ids[f"model-{i}"] = run.run_id
    tracker.close()
    return store_uri, ids


def test_runs_default_table_fits_a_terminal_with_the_primary_metric(capsys, wide, monkeypatch):
    uri, ids = wide
    monkeypatch.setenv("COLUMNS", "120")
    code, out, _ = run_cli(capsys, "runs", "--uri", uri, "--experiment", "wide")
    assert code == 0
    lines = out.splitlines()
    assert max(len(line) for line in lines) <= 120, max(len(line) for line in lines)
    head = lines[0].split()
    assert head[:4] == ["run_id", "run_name", "state", "metrics.areaUnderROC"]
    assert "params.numTrees" in head and "params.model" in head  # params that vary
    assert "params.seed" not in head  # the same in every run
    row = next(line for line in lines if ids["model-1"] in line).split()
    assert row[1:4] == ["model-1", "FINISHED", "0.83"]
    monkeypatch.setenv("COLUMNS", "80")
    _, out, _ = run_cli(capsys, "runs", "--uri", uri, "--experiment", "wide")
    assert max(len(line) for line in out.splitlines()) <= 80


def test_runs_columns_by_mlflow_names(capsys, wide):
    uri, ids = wide
    code, out, _ = run_cli(
        capsys,
        "runs",
        "--uri",
        uri,
        "--columns",
        "run_name,metrics.areaUnderROC,params.numTrees",
        "--columns",
        "attributes.user_name,tags.missing",
        "--order-by",
        "metrics.areaUnderROC DESC",
        "--format",
        "csv",
    )
    assert code == 0
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0] == [
        "run_name",
        "metrics.areaUnderROC",
        "params.numTrees",
        "user",
        "tags.missing",
    ]
    assert [r[:3] for r in rows[1:]] == [
        ["model-1", "0.83", "10"],
        ["model-2", "0.77", "15"],
        ["model-0", "0.71", "5"],
    ]
    assert {r[4] for r in rows[1:]} == {""}  # a key no run has: an empty column
    _, out, _ = run_cli(capsys, "runs", "--uri", uri, "--columns", "all", "--format", "json")
    assert len(json.loads(out)[0]) == 8 + 40 + 12  # attributes, params, metrics
    code, _, err = run_cli(capsys, "runs", "--uri", uri, "--columns", "nope")
    assert code == 1 and "unknown column 'nope'" in err and "metrics.<key>" in err
    code, _, err = run_cli(capsys, "runs", "--uri", uri, "--columns", "metric_x.r2")
    assert code == 1 and "unknown column 'metric_x.r2'" in err


def test_show_lists_artifacts_datasets_and_models(capsys, tracker, store_uri, tmp_path):
    from audit_demo import add_dataset, add_model

    tracker.create_experiment("show")
    with tracker.start_run(run_name="r") as run:
        tracker.log_text("hello", "notes/readme.txt")
        dataset_id = add_dataset(tracker, run.run_id, "fp-1", 1200)
        add_model(tracker, run.run_id, dataset_id)
    tracker.close()
    code, out, _ = run_cli(capsys, "show", run.run_id, "--uri", store_uri, "--format", "json")
    assert code == 0
    rows = {(r["section"], r["key"]): r["value"] for r in json.loads(out)}
    assert rows[("artifact", "notes/readme.txt")].startswith("text/plain")
    assert "5 bytes" in rows[("artifact", "notes/readme.txt")]
    assert rows[("dataset", "training")] == (
        f"sqltrack_data.ds_{run.run_id}_training, 1,200 rows, fingerprint fp-1"
    )
    assert rows[("model", "model")] == (
        "pyspark.ml.regression.RandomForestRegressionModel, trained on dataset training"
    )
