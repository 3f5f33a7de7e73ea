"""DuckDB half of datasets: executors stage Parquet files, ``commit()`` ingests them.

DuckDB admits one writing process per file, and Spark runs ``write()`` in executor
processes and ``commit()`` in another driver-side process. So executors never open
the database: each task attempt streams its Arrow batches into its own Parquet file
``<db>.staging/<staging>/part-<partition>-<attempt>-<random>.parquet`` (a folder the
driver can reach), and ``publish`` (the commit process) creates the data table from
exactly the files named in the commit messages, records the catalog row, checks the
run and marks the staging published in one transaction; then the whole staging folder
goes (:func:`sqltrack.staging.finish`), files of failed or retried attempts included.
A job that fails leaves no table and no catalog row; the folder of a writer that is
gone is removed by the janitor (:mod:`sqltrack.staging`).

Reads open the file READ_ONLY (any number of processes may) and stream
``rowid`` ranges as Arrow record batches. The plan splits the table's real rowid span
(a row deleted and inserted again leaves a gap and a rowid past ``row_count``), with the
first and last range open-ended, and counts the rows of each range.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from sqltrack import _arrow, datasets, sqltext, staging
from sqltrack.backends import Backend, Session, open_backend, parse_uri
from sqltrack.datasets import Slice
from sqltrack.entities import Dataset
from sqltrack.errors import IntegrityError
from sqltrack.identifiers import quote_literal

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa

_BATCH_ROWS = 65536


def _db_path(uri: str) -> Path:
    path = parse_uri(uri).path
    assert path is not None
    return Path(path).resolve()


def staging_root(uri: str) -> Path:
    """``<db file>.staging/``: next to the database, so the driver can reach it."""
    db = _db_path(uri)
    return db.with_name(db.name + ".staging")


def _raw(s: Session) -> duckdb.DuckDBPyConnection:
    """The DuckDB connection under a session of this backend (bulk paths)."""
    from sqltrack.backends.duckdb import DuckDBSession

    return cast(DuckDBSession, s).raw


def _ident_list(columns: Sequence[str]) -> sqltext.Fragment:
    return sqltext.join(", ", (sqltext.ident(c, plain=False) for c in columns))


def sign_term(expr: str, t: pa.DataType, depth: int = 0) -> str | None:
    """A DuckDB expression of the sign bits of every float inside ``expr`` (of stored
    type ``t``), else None: ``hash()`` gives -0.0 and 0.0 the same value."""
    import pyarrow as pa

    if pa.types.is_floating(t):
        return f"signbit({expr})"
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
        var = f"_sqltrack_x{depth}"
        inner = sign_term(var, t.value_type, depth + 1)
        return None if inner is None else f"list_transform({expr}, lambda {var}: {inner})"
    if pa.types.is_map(t):
        parts = [
            sign_term(f"map_keys({expr})", pa.list_(t.key_type), depth),
            sign_term(f"map_values({expr})", pa.list_(t.item_type), depth),
        ]
        found = [p for p in parts if p is not None]
        return None if not found else f"row({', '.join(found)})"
    if pa.types.is_struct(t):
        fields = [t.field(i) for i in range(t.num_fields)]
        found = [
            p
            for f in fields
            if (p := sign_term(f"struct_extract({expr}, {quote_literal(f.name)})", f.type, depth))
            is not None
        ]
        return None if not found else f"row({', '.join(found)})"
    return None


class DuckDBDatasets:
    def prepare(self, backend: Backend, spec: datasets.WriteSpec) -> None:
        (staging_root(spec.uri) / spec.staging).mkdir(parents=True, exist_ok=True)

    def stage(
        self,
        spec: datasets.WriteSpec,
        batches: Iterator[pa.RecordBatch],
        partition: int,
        attempt: int,
    ) -> dict[str, Any]:
        import pyarrow.parquet as pq

        folder = staging_root(spec.uri) / spec.staging
        path = folder / f"part-{partition:05d}-{attempt}-{uuid.uuid4().hex[:8]}.parquet"
        writer = None
        rows = 0
        try:
            for batch in batches:
                batch = _arrow.relax(batch)
                if spec.ordered:
                    batch = datasets.with_ordinal(batch, partition, rows)
                if writer is None:
                    writer = pq.ParquetWriter(str(path), batch.schema, compression="snappy")
                writer.write_batch(batch)
                rows += batch.num_rows
        finally:
            if writer is not None:
                writer.close()
        if writer is None:
            return {"files": [], "rows": 0, "bytes": 0}
        return {"files": [str(path)], "rows": rows, "bytes": path.stat().st_size}

    def publish(
        self, backend: Backend, spec: datasets.WriteSpec, messages: list[dict[str, Any]]
    ) -> None:
        import pyarrow as pa

        files = [f for m in messages for f in m["files"]]
        rows = sum(int(m["rows"]) for m in messages)
        size = sum(int(m["bytes"]) for m in messages)
        target = sqltext.ident(datasets.DATA_SCHEMA, spec.table)
        columns = list(spec.columns)
        with backend.transaction() as s:
            replaced = datasets.check_writable(
                s, backend.uri, spec.run_id, spec.name, spec.overwrite
            )
            if replaced is not None:
                datasets.drop_table(s, spec.table)
            if files:
                sources = sqltext.Fragment("[" + ", ".join(quote_literal(f) for f in files) + "]")
                s.execute(
                    sqltext.compose(
                        "CREATE TABLE {target} AS SELECT * FROM read_parquet({sources})",
                        target=target,
                        sources=sources,
                    )
                )
            else:
                schema = spec.arrow
                if spec.ordered:
                    schema = schema.append(pa.field(datasets.ORDINAL_COLUMN, pa.int64()))
                empty = pa.Table.from_batches([], schema=schema)
                view = "_sqltrack_empty_" + spec.write_id
                _raw(s).register(view, empty)
                try:
                    s.execute(
                        sqltext.compose(
                            "CREATE TABLE {target} AS SELECT * FROM {view}",
                            target=target,
                            view=sqltext.ident(view),
                        )
                    )
                finally:
                    _raw(s).unregister(view)
            fingerprint, stored = self.fingerprint(
                s, spec.table, columns, ordered=spec.ordered, version=datasets.FINGERPRINT_VERSION
            )
            if stored != rows:
                raise IntegrityError(
                    f"dataset {spec.name!r} of run {spec.run_id}: the staged files hold "
                    f"{stored} rows where the tasks reported {rows}; nothing was published"
                )
            datasets.record(s, spec, replaced, rows, size, fingerprint)
            staging.mark_published(s, spec.staging)

    def fingerprint(
        self, s: Session, table: str, columns: Sequence[str], *, ordered: bool, version: int
    ) -> tuple[str, int]:
        """The sum of DuckDB's 64-bit row hashes (duplicates counted) with the row count.
        Version 2 adds the sign bit of every float (``hash`` takes -0.0 for 0.0) and, for
        a kept-order table, each row's rank by ordinal, so the sequence is covered."""
        t = sqltext.ident(datasets.DATA_SCHEMA, table)
        terms = _ident_list(columns) if columns else sqltext.Fragment("NULL")
        if version >= 2 and columns:
            types = s.arrow(sqltext.compose("SELECT {cols} FROM {t} LIMIT 0", cols=terms, t=t))
            signs = [
                term
                for c, f in zip(columns, types.schema, strict=True)
                if (term := sign_term(sqltext.ident(c, plain=False), f.type)) is not None
            ]
            terms = sqltext.Fragment(", ".join([terms, *signs]))
        if version >= 2 and ordered:
            source = sqltext.compose(
                "(SELECT hash({terms}) AS h, rank() OVER (ORDER BY {ord}) AS r FROM {t}) AS x",
                terms=terms,
                ord=sqltext.ident(datasets.ORDINAL_COLUMN),
                t=t,
            )
            row_hash, kind = "hash(h, r)", "seq"
        else:
            source, row_hash, kind = t, sqltext.compose("hash({terms})", terms=terms), "sum"
        rows = s.query(
            sqltext.compose(
                "SELECT count(*), CAST(coalesce(sum(CAST({h} AS HUGEINT)), 0) AS TEXT) "
                "FROM {source}",
                h=sqltext.Fragment(row_hash),
                source=sqltext.Fragment(source),
            )
        )
        count, total = rows[0]
        digest = hashlib.sha256(f"{count}:{total}".encode()).hexdigest()[:32]
        if version < 2:
            return f"duckdb-hash64-sum:{digest}", int(count)
        return f"duckdb-hash64-{kind}-v{version}:{digest}", int(count)

    def read_plan(self, backend: Backend, dataset: Dataset, partitions: int) -> list[Slice]:
        """``rowid`` ranges over the real span (CREATE TABLE AS numbers rows 0..n-1, but a
        row deleted and inserted again moves past n-1), each with its row count."""
        t = sqltext.ident(*dataset.table_name.split(".", 1))
        with backend.session(read_only=True) as s:
            lo, hi, total = s.query(
                sqltext.compose("SELECT min(rowid), max(rowid), count(*) FROM {t}", t=t)
            )[0]
            if not total:
                return [Slice("rowid", None, None, 0)]
            lo, span = int(lo), int(hi) - int(lo) + 1
            n = max(1, min(partitions, span))
            step = -(-span // n)
            counts = dict(
                s.query(
                    sqltext.compose(
                        "SELECT least((rowid - ?) // ?, ?), count(*) FROM {t} GROUP BY 1", t=t
                    ),
                    (lo, step, n - 1),
                )
            )
        return [
            Slice(
                "rowid",
                None if i == 0 else lo + i * step,
                None if i == n - 1 else lo + (i + 1) * step,
                int(counts.get(i, 0)),
            )
            for i in range(n)
        ]

    def read(
        self, uri: str, dataset: Dataset, part: Slice, target: pa.Schema
    ) -> Iterator[pa.RecordBatch]:
        schema, table = dataset.table_name.split(".", 1)
        columns = datasets.user_columns(dataset.spark_schema)
        order = sqltext.Fragment("")
        if part.kind == "ordinal":
            key = sqltext.ident(datasets.ORDINAL_COLUMN)
            order = sqltext.Fragment(sqltext.compose(" ORDER BY {key}", key=key))
        else:
            key = sqltext.Fragment("rowid")
        bounds, params = [], []
        if part.lo is not None:
            bounds.append(sqltext.compose("{key} >= ?", key=key))
            params.append(part.lo)
        if part.hi is not None:
            bounds.append(sqltext.compose("{key} < ?", key=key))
            params.append(part.hi)
        where = " AND ".join(bounds) or "TRUE"
        sql = sqltext.compose(
            "SELECT {cols} FROM {table} WHERE {where}{order}",
            cols=_ident_list(columns),
            table=sqltext.ident(schema, table),
            where=sqltext.Fragment(where),
            order=order,
        )
        backend = open_backend(uri)
        try:
            with backend.transaction(read_only=True) as s:
                rel = _raw(s).sql(sql, params=params or None)
                fetch = getattr(rel, "to_arrow_reader", None) or rel.fetch_arrow_reader
                reader = fetch(_BATCH_ROWS)  # duckdb 2 / 1
                for batch in reader:
                    if batch.num_rows:
                        yield _arrow.conform(batch, target)
        finally:
            backend.close()

    def staging_areas(self, backend: Backend) -> list[str]:
        root = staging_root(backend.full_uri())
        if not root.is_dir():
            return []
        return sorted(p.name for p in root.iterdir() if p.is_dir())

    def staging_bytes(self, backend: Backend, staging: str) -> int:
        folder = staging_root(backend.full_uri()) / staging
        total = 0
        for path in folder.rglob("*") if folder.is_dir() else ():
            try:
                total += path.stat().st_size if path.is_file() else 0
            except OSError:
                continue  # removed meanwhile
        return total

    def drop_staging(self, backend: Backend, staging: str) -> None:
        root = staging_root(backend.full_uri())
        shutil.rmtree(root / staging, ignore_errors=True)
        try:
            os.rmdir(root)  # only when empty
        except OSError:
            pass


ENGINE = DuckDBDatasets()
