"""Which Python interpreter Spark's Python workers start for sqltrack's data source.

Spark's Python workers (and the planner processes that run a Python data source's
``schema()``/``writer()``/``commit()``) start ``SparkContext.pythonExec``: the
``PYSPARK_PYTHON`` of the moment the context was created, else ``python3`` on PATH.
A user who runs ``.venv/bin/python script.py`` without activating the venv gets
workers that start another ``python3``, which cannot import ``spark_datasource``, and
``log_dataset`` fails deep inside Spark.

:func:`datasource_interpreter` is what registration runs inside:

- the workers' interpreter is the caller's own, or it imports ``spark_datasource``:
  nothing to do;
- a local master whose ``pythonExec`` is Spark's default (``PYSPARK_PYTHON`` unset):
  the data source is registered with this process's interpreter (``sys.executable``),
  which is on the same machine; the context's ``pythonExec`` is restored afterwards, so
  the user's own UDFs are untouched;
- otherwise (``PYSPARK_PYTHON`` names an interpreter that cannot import it, or a
  cluster whose workers fail a one-task probe): one :class:`~sqltrack.InvalidInputError`
  that names ``PYSPARK_PYTHON``, raised before anything is written.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqltrack.errors import InvalidInputError

__all__ = ["datasource_interpreter"]


def _data_source_module() -> str:
    """The data source's module, as its entry point names it (the core never names the
    package itself: the dependency points one way)."""
    from importlib.metadata import entry_points

    found = list(entry_points(group="sqltrack.spark_datasource"))
    return found[0].module if found else "sqltrack"


_DEFAULT_EXEC = "python3"  # pyspark's SparkContext default without PYSPARK_PYTHON


def _same_interpreter(exec_: str) -> bool:
    found = shutil.which(exec_) or exec_
    # abspath, not realpath: a venv's python is a symlink to the base interpreter, and
    # the venv is chosen by the path it is started from.
    return os.path.abspath(found) == os.path.abspath(sys.executable)


def _local_probe(exec_: str) -> str | None:
    """None when ``exec_`` starts and imports the data source with this Python's version,
    else why not."""
    want = f"{sys.version_info[0]}.{sys.version_info[1]}"
    code = f"import sys, {_data_source_module()}; print('%d.%d' % sys.version_info[:2])"
    try:
        done = subprocess.run(
            [exec_, "-c", code], capture_output=True, text=True, timeout=60, check=False
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return f"it does not start ({exc})"
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or [f"exit code {done.returncode}"])[-1]
        return f"it cannot import {_data_source_module()} ({last})"
    got = done.stdout.strip()
    if got != want:
        return f"it is Python {got}, the driver is Python {want}"
    return None


def _cluster_probe(sc: Any) -> str | None:
    """One task on the cluster that imports the data source; None when it works."""

    def probe(_: Any) -> list[str]:
        import importlib

        importlib.import_module(_data_source_module())
        return ["ok"]

    try:
        sc.parallelize([0], 1).mapPartitions(probe).collect()
    except Exception as exc:  # Spark wraps the worker's error in its own
        lines = [ln for ln in str(exc).splitlines() if "Error" in ln]
        last = (lines or ["failed"])[-1].strip()
        return f"a task could not import {_data_source_module()} ({last})"
    return None


def _error(exec_: str, why: str) -> InvalidInputError:
    return InvalidInputError(
        f"Spark's Python workers start {exec_!r}, and {why}. Set PYSPARK_PYTHON to an "
        f"interpreter that has sqltrack installed (this one is {sys.executable}) before the "
        'SparkSession is created (e.g. export PYSPARK_PYTHON="$(which python)"), or '
        "activate the venv before starting Python"
    )


@contextmanager
def datasource_interpreter(spark: Any) -> Iterator[None]:
    """Register the data source inside this block: it sees an interpreter that can import
    it, or the block raises before anything is written (see the module's docstring)."""
    sc = spark.sparkContext
    exec_ = str(getattr(sc, "pythonExec", "") or _DEFAULT_EXEC)
    local = str(sc.master).startswith("local")
    if _same_interpreter(exec_):
        yield
        return
    if not local:
        why = _cluster_probe(sc)
        if why is not None:
            raise _error(exec_, why)
        yield
        return
    why = _local_probe(exec_)
    if why is None:
        yield
        return
    if exec_ != _DEFAULT_EXEC or os.environ.get("PYSPARK_PYTHON"):
        raise _error(exec_, why)  # the user chose that interpreter: say so, never override
    sc.pythonExec = sys.executable
    try:
        yield
    finally:
        sc.pythonExec = exec_
