"""docs/schema.md is the schema contract: every column documented, every query runnable.
README code samples run too."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCHEMA_DOC = ROOT / "docs" / "schema.md"


def documented() -> dict[str, set[str]]:
    """{'sqltrack.runs': {'run_id', ...}} from '### sqltrack.x' headings and their tables."""
    objects: dict[str, set[str]] = {}
    current = None
    for line in SCHEMA_DOC.read_text().splitlines():
        heading = re.match(r"^###\s+`?(sqltrack\.[a-z_]+)`?\s*$", line)
        if heading:
            current = heading.group(1)
            objects[current] = set()
            continue
        if line.startswith("#"):
            current = None
            continue
        cell = re.match(r"^\|\s*`([^`]+)`", line)
        if current and cell:
            objects[current].add(cell.group(1))
    return objects


def test_every_table_view_and_column_is_documented(tracker):
    _, rows = tracker.sql(
        "SELECT table_name, column_name FROM information_schema.columns "
        "WHERE table_schema = 'sqltrack' AND table_catalog = current_database()"
    )
    in_db: dict[str, set[str]] = {}
    for table, column in rows:
        in_db.setdefault(f"sqltrack.{table}", set()).add(column)
    docs = documented()
    assert in_db, "no catalog tables found"
    missing_objects = sorted(set(in_db) - set(docs))
    assert not missing_objects, f"undocumented tables/views: {missing_objects}"
    missing = {t: sorted(cols - docs[t]) for t, cols in in_db.items() if cols - docs[t]}
    assert not missing, f"undocumented columns: {missing}"
    stale = {t: sorted(d - in_db.get(t, set())) for t, d in docs.items() if d - in_db.get(t, set())}
    assert not stale, f"documented columns that do not exist: {stale}"


def sql_blocks(path: Path) -> list[str]:
    return re.findall(r"```sql\n(.*?)```", path.read_text(), flags=re.S)


def test_documented_queries_run_on_both_backends(tracker):
    tracker.create_experiment("churn")
    with tracker.start_run(run_name="rf") as run:
        tracker.log_param("model", "rf")
        tracker.log_metric("r2", 0.91)
    blocks = sql_blocks(SCHEMA_DOC)
    assert len(blocks) >= 3
    for block in blocks:
        query = block.replace("<run_id>", run.run_id)
        query = re.sub(r"'<[a-z_]+>'", "'0'", query)
        tracker.sql(query.strip().rstrip(";"))


def test_best_run_query_answers(tracker):
    tracker.create_experiment("churn")
    ids = {}
    for name, r2 in (("low", 0.5), ("nan", float("nan")), ("high", 0.93)):
        with tracker.start_run(run_name=name) as run:
            tracker.log_metric("r2", r2)
        ids[name] = run.run_id
    best = next(b for b in sql_blocks(SCHEMA_DOC) if "LIMIT 1" in b and "r2" in b)
    _, rows = tracker.sql(best.strip().rstrip(";"))
    assert rows[0][0] == ids["high"] and rows[0][3] == 0.93


def python_blocks(path: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", path.read_text(), flags=re.S)


@pytest.mark.parametrize("index", range(len(python_blocks(ROOT / "README.md"))))
def test_readme_python_samples_run(index, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SQLTRACK_URI", raising=False)
    code = python_blocks(ROOT / "README.md")[index]
    exec(compile(code, f"README.md[python block {index}]", "exec"), {"__name__": "__readme__"})
