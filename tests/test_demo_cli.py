"""``sqltrack demo`` as a first-time user runs it (issue 13): its output is sqltrack's lines
and nothing else (Spark's log4j lines, JDK warnings, NativeCodeLoader, netlib BLAS and
progress bars go to a log file), and Ctrl-C stops it quietly with exit code 130, the run in
progress KILLED, instead of dozens of Java stack traces."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import sqltrack

pytestmark = [pytest.mark.spark, pytest.mark.slow]

OURS = re.compile(r"^\[ *\d+\.\ds\] ")


def test_demo_prints_only_its_own_lines_and_ctrl_c_exits_130(tmp_path):
    uri = f"duckdb:///{tmp_path / 'demo.duckdb'}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SQLTRACK_")}
    env["TMPDIR"] = str(tmp_path)  # where the demo puts Spark's log
    sqltrack_cli = Path(sys.executable).with_name("sqltrack")
    proc = subprocess.Popen(
        [str(sqltrack_cli), "demo", "--uri", uri, "--rows", "2000"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    lines: list[str] = []
    deadline = time.monotonic() + 900
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))
            if "logistic-regression" in line:  # Spark has started and fitted a model
                proc.send_signal(signal.SIGINT)
                break
            assert time.monotonic() < deadline, lines
        rest, stderr = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    lines += rest.splitlines()
    assert proc.returncode == 130, (lines, stderr[-3000:])
    assert stderr == "", stderr[-3000:]
    assert lines[-1].startswith("interrupted:"), lines
    assert all(OURS.match(line) for line in lines[:-1]), lines
    log = next(tmp_path.glob("sqltrack-demo-spark-*.log"))
    assert "log4j" in log.read_text(errors="replace")  # Spark's output went there
    with sqltrack.connect(uri, read_only=True) as tracker:
        runs = tracker.search_runs(["supply-chain-late-delivery"])
    states = dict(zip(runs["run_name"], runs["state"], strict=True))
    assert states.pop("logistic-regression") == "FINISHED"
    assert set(states.values()) <= {"KILLED"}, states
