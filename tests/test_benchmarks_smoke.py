"""The benchmark code runs (tiny sizes, DuckDB only, no MLflow): it cannot rot unnoticed.

No timing is asserted; only the shape of the rows the runner collects.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import __main__ as runner  # noqa: E402
from benchmarks import journal, ledger, tracking  # noqa: E402

KEYS = {"benchmark", "backend", "anchor", "anchor_figure", "ratio"}


def _check_row(row: dict[str, object]) -> None:
    assert KEYS <= row.keys(), row
    assert "error" not in row, row
    figure = row.get("rate", row.get("seconds"))
    assert isinstance(figure, float) and math.isfinite(figure) and figure > 0, row
    assert isinstance(row["anchor_figure"], float) and row["anchor_figure"] > 0, row
    assert isinstance(row["ratio"], float) and row["ratio"] > 0, row
    assert row["backend"] == "duckdb"


def test_tracking_benchmark_rows(tmp_path: Path) -> None:
    args = argparse.Namespace(
        size="tiny", backends=("duckdb",), mlflow=False, pg_dsn=None, workdir=str(tmp_path)
    )
    rows = tracking.run(args)
    assert {r["benchmark"].split(",")[0].split(":")[0] for r in rows} == {
        "log_metric",
        "log_metrics",
        "search_runs",
    }
    for row in rows:
        _check_row(row)
    search = next(r for r in rows if r["benchmark"].startswith("search_runs"))
    assert "DIFFERS" not in search.get("note", ""), search  # same answer as the plain SQL


def test_runner_selects_a_module_prints_a_table_and_writes_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert "tracking" in runner.available()
    code = runner.main(
        [
            "tracking",
            "--size",
            "tiny",
            "--backends",
            "duckdb",
            "--no-mlflow",
            "--results-dir",
            str(tmp_path),
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "anchor figure" in out and "log_metric" in out
    payload = json.loads((tmp_path / "latest.json").read_text())
    assert payload["machine"]["cpus"] >= 1
    assert payload["results"]
    for row in payload["results"]:
        _check_row(row)
        assert row["module"] == "tracking"


def test_runner_names_the_modules_it_has() -> None:
    with pytest.raises(SystemExit, match="no benchmark module nosuch"):
        runner.run(runner.parse_args(["nosuch"]))


def test_journal_benchmark_rows(tmp_path: Path) -> None:
    args = argparse.Namespace(
        size="tiny", backends=("duckdb",), mlflow=False, pg_dsn=None, workdir=str(tmp_path)
    )
    rows = journal.run(args)
    assert [r["benchmark"].split(" ")[0] for r in rows] == ["log_metric,", "drain", "resident"]
    for row in rows:
        _check_row(row)


def test_ledger_benchmark_rows(tmp_path: Path) -> None:
    args = argparse.Namespace(
        size="tiny", backends=("duckdb",), mlflow=False, pg_dsn=None, workdir=str(tmp_path)
    )
    rows = ledger.run(args)
    assert [r["benchmark"].split("(")[-1] for r in rows] == ["journaled)", "SQLTRACK_JOURNAL=off)"]
    for row in rows:
        _check_row(row)
        assert "verifies: True" in row["note"]
