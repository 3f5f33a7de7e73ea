"""What exact loads cost (issue 9, point 6): the checks ``load_dataset`` runs before Spark
reads a row, without Spark, on both backends.

Data: data tables of 1,000,000 rows made in the engine itself, in the shape of the data
source benchmark: 15 mixed columns (ints, longs, doubles with some nulls, strings, a
boolean, a date, a timestamp), and the same with a 20-dim ML vector (DuckDB: the stored
struct; PostgreSQL: its ``json`` text); plus a kept-order table (an ordinal column).

Figure: the version-2 fingerprint (float signs, and the row sequence for kept order)
together with the counted read plan, i.e. what every load does now. Anchor, measured in
the same run: the version-1 fingerprint alone, what every load did before (its read plan
ran no query on DuckDB, one size lookup on PostgreSQL). The cases take turns, repeat by
repeat, after a warm-up; each figure is the median.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from benchmarks._common import pg_available, pg_database, pg_dsn, result

SIZES = {"full": (1_000_000, 5), "small": (200_000, 3), "tiny": (2_000, 1)}
COLUMNS_15 = [
    "i1",
    "i2",
    "l1",
    "l2",
    "d1",
    "d2",
    "d3",
    "d4",
    "s1",
    "s2",
    "s3",
    "flag",
    "day",
    "ts",
    "d5",
]


def _log(message: str) -> None:
    print(f"[exact_loads] {message}", file=sys.stderr, flush=True)


_PLAIN = (
    "SELECT CAST(mod(i, 1000) AS INTEGER) AS i1, CAST(mod(i, 7) AS INTEGER) AS i2, "
    "CAST(i AS BIGINT) AS l1, CAST(i * 31 AS BIGINT) AS l2, CAST(i * 0.5 AS {dbl}) AS d1, "
    "CASE WHEN mod(i, 10) = 0 THEN NULL ELSE CAST(i / 3.0 AS {dbl}) END AS d2, "
    "CAST(mod(i, 13) AS {dbl}) AS d3, CAST(-i AS {dbl}) AS d4, CAST('name-' || i AS {txt}) AS s1, "
    "CAST('city-' || (mod(i, 97)) AS {txt}) AS s2, "
    "CAST(repeat('x', CAST(10 + mod(i, 20) AS INTEGER)) AS {txt}) AS s3, "
    "mod(i, 2) = 0 AS flag, DATE '2024-01-01' + CAST(mod(i, 365) AS INTEGER) AS day, "
    "{ts} AS ts, CAST(mod(i, 5) AS {dbl}) AS d5 FROM {src}"
)
_VECTOR_DUCKDB = (
    "SELECT CAST(i AS BIGINT) AS id, {{'type': CAST(1 AS TINYINT), 'size': 20, "
    "'indices': CAST([] AS INTEGER[]), 'values': [CAST(i * k AS DOUBLE) / 7 FOR k IN range(20)]}} "
    "AS vec FROM {src}"
)
_VECTOR_POSTGRES = (
    'SELECT CAST(i AS BIGINT) AS id, CAST(\'{{"type":1,"size":20,"indices":[],'
    "\"values\":[' || (SELECT string_agg(CAST(i * k / 7.0 AS TEXT), ',') "
    "FROM generate_series(0, 19) k) || ']}}' AS JSON) AS vec FROM {src}"
)
_ORDERED = (
    "SELECT CAST(mod(i * 7919, 100003) AS BIGINT) AS v, CAST(i AS {dbl}) AS x, "
    "CAST((i {div} 250000) * 1099511627776 + mod(i, 250000) AS BIGINT) AS _sqltrack_ordinal "
    "FROM {src}"
)


def _sql(template: str, backend: str, n: int) -> str:
    """``template`` over ``n`` rows in the engine's own SQL (constants only)."""
    from sqltrack.sqltext import Fragment, compose

    duck = backend == "duckdb"
    parts = {
        "src": f"range({int(n)}) r(i)" if duck else f"generate_series(0, {int(n) - 1}) r(i)",
        "dbl": "DOUBLE" if duck else "DOUBLE PRECISION",
        "txt": "VARCHAR" if duck else "TEXT",
        "ts": "TIMESTAMPTZ '2024-01-01 00:00:00+00' + "
        + ("to_seconds(i)" if duck else "i * INTERVAL '1 second'"),
        "div": "//" if duck else "/",  # integer division
    }
    used = {k: Fragment(v) for k, v in parts.items() if "{" + k + "}" in template}
    return compose(template, **used)


@contextmanager
def _store(backend: str, args: Any) -> Iterator[str]:
    if backend == "duckdb":
        yield f"duckdb:///{Path(args.workdir) / 'exact.duckdb'}"
        return
    with pg_database(pg_dsn(args), "sqltrack_bench_exact") as uri:
        yield uri


def _dataset(table: str, columns: list[str], ordered: bool, rows: int) -> Any:
    import json

    from sqltrack.entities import Dataset

    schema = {"type": "struct", "fields": [{"name": c, "type": "string"} for c in columns]}
    return Dataset(
        dataset_id=0,
        run_id="0" * 32,
        name=table,
        table_name=f"sqltrack_data.{table}",
        row_count=rows,
        size_bytes=0,
        spark_schema=json.dumps(schema),
        fingerprint="",
        created_at=None,  # type: ignore[arg-type]
        created_by="bench",
        ordered=ordered,
        fingerprint_version=2,
    )


def measure(backend_name: str, uri: str, rows: int, repeats: int) -> list[dict[str, Any]]:
    import sqltrack
    from sqltrack import datasets
    from sqltrack.sqltext import Fragment, compose, ident

    tracker = sqltrack.connect(uri)
    backend = tracker.backend
    vector = _VECTOR_DUCKDB if backend_name == "duckdb" else _VECTOR_POSTGRES
    tables = {
        "plain": (_sql(_PLAIN, backend_name, rows), COLUMNS_15, False),
        "vector": (_sql(vector, backend_name, rows), ["id", "vec"], False),
        "kept order": (_sql(_ORDERED, backend_name, rows), ["v", "x"], True),
    }
    with backend.transaction() as s:
        for name, (sql, _, _) in tables.items():
            target = ident("sqltrack_data", "bench_" + name.replace(" ", "_"))
            s.execute(compose("CREATE TABLE {t} AS {q}", t=target, q=Fragment(sql)))
    eng = datasets.engine(backend)
    out = []
    for name, (_, columns, ordered) in tables.items():
        table = f"bench_{name.replace(' ', '_')}"
        ds = _dataset(table, columns, ordered, rows)

        def v1(table: str = table, columns: list[str] = columns) -> None:
            with backend.session(read_only=True) as s:
                eng.fingerprint(s, table, columns, ordered=False, version=1)

        def v2(
            table: str = table, columns: list[str] = columns, ordered: bool = ordered, ds: Any = ds
        ) -> None:
            with backend.session(read_only=True) as s:
                eng.fingerprint(s, table, columns, ordered=ordered, version=2)
            datasets.read_plan(backend, ds, 2)

        cases: dict[str, Callable[[], None]] = {"v1": v1, "v2": v2}
        for body in cases.values():
            body()  # warm-up: caches, JIT, buffers
        times: dict[str, list[float]] = {k: [] for k in cases}
        for _ in range(repeats):
            for key, body in cases.items():
                start = time.perf_counter()
                body()
                times[key].append(time.perf_counter() - start)
        figure, anchor = (statistics.median(times[k]) for k in ("v2", "v1"))
        _log(f"{backend_name} {name}: v2+plan {figure:.3f} s, v1 {anchor:.3f} s")
        out.append(
            result(
                f"load checks, {rows:,} rows, {name}: fingerprint v2 + counted plan",
                backend_name,
                anchor="fingerprint v1 alone (the check before 0008)",
                anchor_figure=anchor,
                seconds=figure,
                note="no Spark: the checks that run before the first row is read",
            )
        )
    tracker.close()
    return out


def run(args: Any) -> list[dict[str, Any]]:
    backends = tuple(getattr(args, "backends", ("duckdb", "postgres")))
    if "postgres" in backends:
        reason = pg_available(pg_dsn(args))
        if reason:
            _log(f"PostgreSQL is unreachable ({reason}); skipping it")
            backends = tuple(b for b in backends if b != "postgres")
    rows, repeats = SIZES[getattr(args, "size", "full")]
    out: list[dict[str, Any]] = []
    for backend in backends:
        with _store(backend, args) as uri:
            out += measure(backend, uri, rows, repeats)
    return out
