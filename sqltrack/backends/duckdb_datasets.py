"""DuckDB half of datasets: executors stage Parquet files, ``commit()`` ingests them.

DuckDB admits one writing process per file, and Spark runs ``write()`` in executor
processes and ``commit()`` in another driver-side process. So executors never open
the database: each task attempt streams its Arrow batches into its own Parquet file
``<db>.staging/<staging>/part-<partition>-<attempt>-<random>.parquet`` (a folder the
driver can reach), and ``publish`` (the commit process) creates the data table from
exactly the files named in the commit messages, records the catalog row and checks
the run in one transaction, then removes the whole staging folder, files of failed
or retried attempts included. A job that fails leaves no table and no catalog row;
the folder of a dead driver is removed by the janitor.

Reads open the file READ_ONLY (any number of processes may) and stream
``rowid`` ranges as Arrow record batches.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from sqltrack import datasets, sqltext
from sqltrack.backends import Backend, Session, open_backend, parse_uri
from sqltrack.entities import Dataset
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
                batch = datasets.relax(batch)
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
            fingerprint = self.fingerprint(s, spec.table, columns)
            datasets.record(s, spec, replaced, rows, size, fingerprint)
        self.discard(backend, spec)

    def discard(self, backend: Backend, spec: datasets.WriteSpec) -> None:
        self.drop_staging(backend, spec.staging)

    def fingerprint(self, s: Session, table: str, columns: Sequence[str]) -> str:
        """The sum of DuckDB's 64-bit row hashes (order-independent, duplicates
        counted), with the row count."""
        rows = s.query(
            sqltext.compose(
                "SELECT count(*), CAST(coalesce(sum(CAST(hash({cols}) AS HUGEINT)), 0) AS TEXT) "
                "FROM {table}",
                cols=_ident_list(columns) if columns else sqltext.Fragment("NULL"),
                table=sqltext.ident(datasets.DATA_SCHEMA, table),
            )
        )
        count, total = rows[0]
        digest = hashlib.sha256(f"{count}:{total}".encode()).hexdigest()[:32]
        return f"duckdb-hash64-sum:{digest}"

    def read_plan(self, backend: Backend, dataset: Dataset, partitions: int) -> list[Any]:
        """``rowid`` ranges: a table made by CREATE TABLE AS numbers its rows 0..n-1."""
        n = max(1, min(partitions, dataset.row_count))
        step = -(-dataset.row_count // n) if dataset.row_count else 1
        return [("rowid", i * step, (i + 1) * step) for i in range(n)]

    def read(
        self, uri: str, dataset: Dataset, part: Any, target: pa.Schema
    ) -> Iterator[pa.RecordBatch]:
        kind, lo, hi = part
        schema, table = dataset.table_name.split(".", 1)
        columns = datasets.user_columns(dataset.spark_schema)
        order = sqltext.Fragment("")
        if kind == "ordinal":
            key = sqltext.ident(datasets.ORDINAL_COLUMN)
            order = sqltext.Fragment(sqltext.compose(" ORDER BY {key}", key=key))
        else:
            key = sqltext.Fragment("rowid")
        sql = sqltext.compose(
            "SELECT {cols} FROM {table} WHERE {key} >= ? AND {key} < ?{order}",
            cols=_ident_list(columns),
            table=sqltext.ident(schema, table),
            key=key,
            order=order,
        )
        backend = open_backend(uri)
        try:
            with backend.transaction(read_only=True) as s:
                rel = _raw(s).sql(sql, params=[lo, hi])
                fetch = getattr(rel, "to_arrow_reader", None) or rel.fetch_arrow_reader
                reader = fetch(_BATCH_ROWS)  # duckdb 2 / 1
                for batch in reader:
                    if batch.num_rows:
                        yield datasets.conform(batch, target)
        finally:
            backend.close()

    def staging_areas(self, backend: Backend) -> list[str]:
        root = staging_root(backend.full_uri())
        if not root.is_dir():
            return []
        return sorted(p.name for p in root.iterdir() if p.is_dir())

    def drop_staging(self, backend: Backend, staging: str) -> None:
        root = staging_root(backend.full_uri())
        shutil.rmtree(root / staging, ignore_errors=True)
        try:
            os.rmdir(root)  # only when empty
        except OSError:
            pass


ENGINE = DuckDBDatasets()
