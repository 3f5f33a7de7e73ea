"""The README quickstart works as written, run the way many people run it: ``.venv/bin/python
qs.py`` in a fresh interpreter, the venv not activated (no PYSPARK_PYTHON, no
PYSPARK_DRIVER_PYTHON, the venv's bin not on PATH), so that Spark's Python workers would
start another ``python3``. Before the fix it failed inside ``log_dataset`` with
``No module named 'spark_datasource'`` and the run ended FAILED."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import weakref
from pathlib import Path

import duckdb
import pytest

import sqltrack
from sqltrack import datasets

pytestmark = [pytest.mark.spark, pytest.mark.slow]

ROOT = Path(__file__).resolve().parent.parent


def quickstart() -> str:
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)
    (block,) = [b for b in blocks if "sqltrack.connect" in b and "log_dataset" in b]
    return block


def test_readme_quickstart_runs_in_a_fresh_interpreter_without_an_activated_venv(tmp_path):
    script = tmp_path / "qs.py"
    script.write_text(quickstart())
    venv_bin = str(Path(sys.executable).parent)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYSPARK_", "SQLTRACK_"))}
    env.pop("VIRTUAL_ENV", None)
    env["PATH"] = os.pathsep.join(
        p for p in env.get("PATH", "").split(os.pathsep) if p and Path(p) != Path(venv_bin)
    )
    done = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    con = duckdb.connect(str(tmp_path / "quickstart.duckdb"), read_only=True)
    try:
        ((status, rows),) = con.execute(
            "SELECT r.status, d.row_count FROM sqltrack.runs r "
            "JOIN sqltrack.datasets d ON d.run_id = r.run_id"
        ).fetchall()
        assert (status, rows) == ("FINISHED", 2)
        (table,) = con.execute("SELECT table_name FROM sqltrack.datasets").fetchone()
        stored = con.execute(f"SELECT * FROM {table} ORDER BY age").fetchall()  # noqa: S608
    finally:
        con.close()
    assert stored == [(34, "Paris", 1.0), (51, "Lyon", 0.0)]


def test_workers_that_cannot_import_sqltrack_give_one_clear_error(
    tracker, spark, monkeypatch, tmp_path
):
    """PYSPARK_PYTHON chosen by the user names an interpreter without sqltrack: one
    InvalidInputError naming PYSPARK_PYTHON, raised before anything is written (never a
    46-line Spark traceback); sqltrack does not override the user's choice."""
    bare = tmp_path / "bare-python"
    bare.write_text("#!/bin/sh\necho \"No module named 'spark_datasource'\" >&2\nexit 1\n")
    bare.chmod(0o755)
    sc = spark.sparkContext
    monkeypatch.setattr(sc, "pythonExec", str(bare))
    monkeypatch.setenv("PYSPARK_PYTHON", str(bare))
    monkeypatch.setattr(datasets, "_REGISTERED", weakref.WeakSet())  # register afresh
    df = spark.createDataFrame([(1, "a")], ["id", "name"])
    with tracker.start_run() as run:
        with pytest.raises(sqltrack.InvalidInputError) as err:
            tracker.log_dataset(df, "training")
        message = str(err.value)
        assert "PYSPARK_PYTHON" in message and str(bare) in message
        assert sys.executable in message and "spark_datasource" in message
        assert "Traceback" not in message and len(message.splitlines()) == 1
    assert tracker.list_datasets(run.run_id) == []
    assert tracker.get_run(run.run_id).info.status == "FINISHED"
