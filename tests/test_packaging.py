"""The wheel ships the DDL, the typing marker and both packages."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_wheel_contains_ddl_and_packages(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for backend in ("duckdb", "postgres"):
        for sql in sorted((ROOT / "ddl" / backend).glob("*.sql")):
            assert f"sqltrack/_ddl/{backend}/{sql.name}" in names
    assert "sqltrack/py.typed" in names
    assert "sqltrack/__init__.py" in names
    assert "spark_datasource/__init__.py" in names
    assert not any(n.startswith("tests/") for n in names)


def test_installed_wheel_finds_its_ddl(tmp_path, wheel):
    """Unpack the wheel into a fresh folder and run the migration runner from it."""
    target = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(target)
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); import sqltrack.schema as s; "
        "root = s.ddl_root(); assert str(root).startswith(sys.argv[1]), root; "
        "assert s.migrations('duckdb') and s.migrations('postgres'); "
        "import sqltrack; t = sqltrack.connect('duckdb:///' + sys.argv[2]); t.close()"
    )
    subprocess.run(
        [sys.executable, "-c", code, str(target), str(tmp_path / "w.duckdb")],
        check=True,
        cwd=tmp_path,
    )
