"""PostgreSQL half of datasets: executors COPY into one staging table, ``commit()``
publishes it by renaming, in one transaction.

PostgreSQL takes writers from any number of processes and hosts, so each task
attempt streams its Arrow batches straight into the staging table
``sqltrack_data._stg_<started>_<write id>`` with the ADBC PostgreSQL driver (binary
COPY, Arrow end to end), in its own transaction, and reports that transaction's id
in its commit message. ``publish`` locks the staging table (waiting out any attempt
still copying), deletes rows whose ``xmin`` is not one of the committed attempts'
transactions (a retried, failed or speculative attempt that got as far as
committing its COPY; only when the table holds more rows than the kept attempts
staged), computes the fingerprint, renames the table to its final
name and records the catalog row, all in one transaction. An attempt that fails
mid-COPY is rolled back by the server. A failed job drops the staging table
(``abort``); the table of a writer that is gone is dropped by the janitor
(:mod:`sqltrack.staging`). A task that starts while the server is away waits for it
(bounded by ``SQLTRACK_BULK_RETRY``); one that loses it mid-COPY fails with
:class:`~sqltrack.TransientBackendError`.

Column types are PostgreSQL's own (smallint for Spark's byte, numeric(p,s),
timestamptz, bytea, native arrays of simple types). Maps, structs, nested arrays and
ML vectors are ``json`` text that psql and Spark's JDBC reader show as is; the
encoding (doubles as shortest round-trip text, NaN/Infinity as strings, -0.0 kept,
decimals and binary as strings) is exact and is decoded on read by DuckDB's JSON
casts, both directions vectorised over Arrow.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from sqltrack import _arrow, datasets, sqltext, staging
from sqltrack.backends import Backend, Session
from sqltrack.datasets import Slice
from sqltrack.entities import Dataset
from sqltrack.errors import InvalidInputError, TerminalBackendError, TransientBackendError
from sqltrack.identifiers import quote_literal

if TYPE_CHECKING:
    import pyarrow as pa

DROP_LOCK_TIMEOUT = "5s"  # a staging table a running COPY still locks is left for later
_XID = "SELECT CAST(CAST(pg_current_xact_id() AS TEXT) AS BIGINT) % 4294967296"
# Fingerprint version 2: columns hashed by their binary form (udt_name -> function).
_BINARY_HASHED = {
    "float4": "float4send",
    "float8": "float8send",
    "_float4": "array_send",
    "_float8": "array_send",
}


# -- types -------------------------------------------------------------------------------
def _simple_pg_type(t: pa.DataType) -> str | None:
    import pyarrow as pa

    if pa.types.is_int8(t) or pa.types.is_int16(t):
        return "SMALLINT"
    if pa.types.is_int32(t):
        return "INTEGER"
    if pa.types.is_int64(t):
        return "BIGINT"
    if pa.types.is_float32(t):
        return "REAL"
    if pa.types.is_float64(t):
        return "DOUBLE PRECISION"
    if pa.types.is_boolean(t):
        return "BOOLEAN"
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return "TEXT"
    return None


def pg_type(t: pa.DataType) -> str:
    """The column type of one Arrow (Spark) type; ``JSON`` for nested values."""
    import pyarrow as pa

    simple = _simple_pg_type(t)
    if simple:
        return simple
    if pa.types.is_decimal(t):
        return f"NUMERIC({t.precision}, {t.scale})"
    if pa.types.is_binary(t) or pa.types.is_large_binary(t):
        return "BYTEA"
    if pa.types.is_date32(t):
        return "DATE"
    if pa.types.is_timestamp(t):
        return "TIMESTAMPTZ" if t.tz else "TIMESTAMP"
    if pa.types.is_null(t):
        return "TEXT"
    if (pa.types.is_list(t) or pa.types.is_large_list(t)) and _simple_pg_type(t.value_type):
        return _simple_pg_type(t.value_type) + "[]"  # type: ignore[operator]
    return "JSON"


def _to_copy(col: pa.Array) -> pa.Array:
    """What the COPY gets for one column: JSON text for nested values, int16 for int8."""
    import pyarrow as pa

    t = col.type
    kind = pg_type(t)
    if kind == "JSON":
        return encode_json(col)
    if pa.types.is_int8(t):
        return col.cast(pa.int16())
    if pa.types.is_null(t):
        return col.cast(pa.string())
    if kind.endswith("[]") and pa.types.is_int8(t.value_type):
        return col.cast(pa.list_(pa.int16()))
    return col


# -- JSON encoding, vectorised ----------------------------------------------------------
def _quote(s: pa.Array) -> pa.Array:
    import pyarrow.compute as pc

    return pc.binary_join_element_wise('"', s, '"', "")


def _escape(s: pa.Array) -> pa.Array:
    import pyarrow.compute as pc

    s = pc.replace_substring(s, "\\", "\\\\")
    s = pc.replace_substring(s, '"', '\\"')
    if pc.any(pc.match_substring_regex(s, "[\\x00-\\x1f]")).as_py():
        for code in range(32):
            s = pc.replace_substring(s, chr(code), f"\\u{code:04x}")
    return s


def _lists(arr: pa.Array, children: pa.Array, open_: str, close: str) -> pa.Array:
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    raw = arr.offsets.to_numpy(zero_copy_only=False)
    offsets = (raw - raw[0]).astype(np.int32)
    grouped = pa.ListArray.from_arrays(pa.array(offsets), children)
    return pc.binary_join_element_wise(open_, pc.binary_join(grouped, ","), close, "")


def encode_json(arr: pa.Array) -> pa.Array:
    """Each value as JSON text (``null`` for nulls); exact for every Spark type."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    t = arr.type
    if pa.types.is_null(t):
        return pa.array(["null"] * len(arr), pa.string())
    if pa.types.is_integer(t) or pa.types.is_boolean(t):
        s = pc.cast(arr, pa.string())
    elif pa.types.is_floating(t):
        s = pc.cast(arr, pa.string())
        values = arr.to_numpy(zero_copy_only=False)
        s = pc.if_else(pa.array(np.isnan(values)), '"NaN"', s)
        s = pc.if_else(pa.array(np.isposinf(values)), '"Infinity"', s)
        s = pc.if_else(pa.array(np.isneginf(values)), '"-Infinity"', s)
        s = pc.if_else(pa.array((values == 0) & np.signbit(values)), "-0.0", s)
    elif pa.types.is_decimal(t) or pa.types.is_date(t):
        s = _quote(pc.cast(arr, pa.string()))
    elif pa.types.is_timestamp(t):
        if t.tz:
            arr = arr.cast(pa.timestamp(t.unit, "UTC"))
        s = _quote(pc.cast(arr, pa.string()))
    elif pa.types.is_string(t) or pa.types.is_large_string(t):
        s = _quote(_escape(arr))
    elif pa.types.is_binary(t) or pa.types.is_large_binary(t):
        # DuckDB reads '\xHH' escapes back into BLOB bytes.
        s = pa.array(
            [
                None if b is None else '"' + "".join(f"\\\\x{c:02x}" for c in b) + '"'
                for b in arr.to_pylist()
            ],
            pa.string(),
        )
    elif pa.types.is_map(t):
        # keys/items are the whole children; the offsets say which belong to this slice.
        start, stop = arr.offsets[0].as_py(), arr.offsets[-1].as_py()
        keys = encode_json(arr.keys.slice(start, stop - start))
        if not (pa.types.is_string(t.key_type) or pa.types.is_large_string(t.key_type)):
            keys = _quote(_escape(keys))
        values = encode_json(arr.items.slice(start, stop - start))
        pairs = pc.binary_join_element_wise(keys, values, ":")
        s = _lists(arr, pairs, "{", "}")
    elif pa.types.is_list(t) or pa.types.is_large_list(t):
        s = _lists(arr, encode_json(arr.flatten()), "[", "]")
    elif pa.types.is_struct(t):
        parts: list[Any] = []
        for i, child in enumerate(arr.flatten()):
            name = json.dumps(t.field(i).name, ensure_ascii=False)
            parts += [("{" if i == 0 else ",") + name + ":", encode_json(child)]
        if not parts:
            parts = ["{"]
        s = pc.binary_join_element_wise(*parts, "}", "")
    else:
        raise InvalidInputError(
            f"Arrow type {t} cannot be stored by sqltrack; cast the column to a Spark SQL type"
        )
    if arr.null_count:
        s = pc.if_else(arr.is_valid(), s, "null")
    return s


def duck_type(t: pa.DataType) -> str:
    """The DuckDB type that a JSON value of Arrow type ``t`` is cast to on read."""
    import pyarrow as pa

    simple = {
        pa.int8(): "TINYINT",
        pa.int16(): "SMALLINT",
        pa.int32(): "INTEGER",
        pa.int64(): "BIGINT",
        pa.float32(): "FLOAT",
        pa.float64(): "DOUBLE",
        pa.bool_(): "BOOLEAN",
        pa.string(): "VARCHAR",
        pa.large_string(): "VARCHAR",
        pa.binary(): "BLOB",
        pa.large_binary(): "BLOB",
        pa.date32(): "DATE",
        pa.null(): "VARCHAR",
    }
    if t in simple:
        return simple[t]
    if pa.types.is_decimal(t):
        return f"DECIMAL({t.precision}, {t.scale})"
    if pa.types.is_timestamp(t):
        return "TIMESTAMPTZ" if t.tz else "TIMESTAMP"
    if pa.types.is_map(t):
        return f"MAP({duck_type(t.key_type)}, {duck_type(t.item_type)})"
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return duck_type(t.value_type) + "[]"
    if pa.types.is_struct(t):
        fields = ", ".join(
            sqltext.ident(t.field(i).name, plain=False) + " " + duck_type(t.field(i).type)
            for i in range(t.num_fields)
        )
        return f"STRUCT({fields})"
    raise InvalidInputError(f"cannot read Arrow type {t} back from JSON")


def decode_json(col: pa.Array, t: pa.DataType) -> pa.Array:
    """JSON text (as written by :func:`encode_json`) back into Arrow values of type ``t``."""
    import duckdb
    import pyarrow as pa

    if isinstance(col.type, pa.ExtensionType):
        col = col.storage
    con = duckdb.connect()
    try:
        con.register("_sqltrack_json", pa.table({"j": col}))
        sql = sqltext.compose(
            "SELECT CAST(CAST(j AS JSON) AS {t}) AS v FROM _sqltrack_json",
            t=sqltext.Fragment(duck_type(t)),
        )
        out = con.sql(sql).to_arrow_table().column(0).combine_chunks()
    finally:
        con.close()
    return _arrow.conform_array(out, t)


# -- the engine --------------------------------------------------------------------------
def _adbc_connect(uri: str) -> Any:
    import adbc_driver_postgresql.dbapi as adbc

    from sqltrack.backends import parse_uri

    parsed = parse_uri(uri)
    from sqlalchemy.engine import URL

    url = URL.create(
        "postgresql",
        username=parsed.user,
        password=parsed.password,
        host=parsed.host or "localhost",
        port=parsed.port,
        database=parsed.database,
        query=dict(parsed.query),
    ).render_as_string(hide_password=False)
    return adbc.connect(url)


def _adbc(where: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Call an ADBC function; its errors become sqltrack's, transient ones (connection
    lost or refused) marked so."""
    import adbc_driver_manager

    try:
        return fn(*args, **kwargs)
    except adbc_driver_manager.Error as exc:
        text = " ".join(str(exc).split())
        if isinstance(exc, adbc_driver_manager.OperationalError):
            raise TransientBackendError(f"PostgreSQL error {where}: {text}") from exc
        raise TerminalBackendError(f"PostgreSQL error {where}: {text}") from exc


def _cols(columns: Sequence[str]) -> sqltext.Fragment:
    return sqltext.join(", ", (sqltext.ident(c, plain=False) for c in columns))


class PostgresDatasets:
    def prepare(self, backend: Backend, spec: datasets.WriteSpec) -> None:
        defs = [
            sqltext.Fragment(sqltext.ident(f.name, plain=False) + " " + pg_type(f.type))
            for f in spec.arrow
        ]
        if spec.ordered:
            defs.append(sqltext.Fragment(sqltext.ident(datasets.ORDINAL_COLUMN) + " BIGINT"))
        with backend.session() as s:
            s.execute(
                sqltext.compose(
                    "CREATE TABLE IF NOT EXISTS {t} ({defs})",
                    t=sqltext.ident(datasets.DATA_SCHEMA, spec.staging),
                    defs=sqltext.join(", ", defs),
                )
            )

    def stage(
        self,
        spec: datasets.WriteSpec,
        batches: Iterator[pa.RecordBatch],
        partition: int,
        attempt: int,
    ) -> dict[str, Any]:
        import pyarrow as pa

        rows = 0

        def converted() -> Iterator[pa.RecordBatch]:
            nonlocal rows
            for batch in batches:
                if spec.ordered:
                    batch = datasets.with_ordinal(batch, partition, rows)
                rows += batch.num_rows
                arrays = [_to_copy(c) for c in batch.columns]
                yield pa.RecordBatch.from_arrays(arrays, names=batch.schema.names)

        stream = converted()
        first = next(stream, None)
        if first is None:
            return {"xid": None, "rows": 0}
        reader = pa.RecordBatchReader.from_batches(first.schema, _chain(first, stream))
        where = f"staging rows of dataset {spec.name!r} into {spec.staging}"
        # Nothing is consumed before the connection is up: a store that is away when the
        # task starts is waited for (bounded); one lost mid-COPY fails the attempt.
        conn = staging.retrying(where, lambda: _adbc(where, _adbc_connect, spec.uri), spec.retry)
        try:
            with conn.cursor() as cur:
                _adbc(
                    where,
                    cur.adbc_ingest,
                    spec.staging,
                    reader,
                    mode="append",
                    db_schema_name=datasets.DATA_SCHEMA,
                )
                _adbc(where, cur.execute, _XID)
                xid = int(cur.fetchone()[0])
            _adbc(where, conn.commit)
        finally:
            try:
                conn.close()
            except Exception:  # a broken connection may fail to close; nothing to undo
                pass
        return {"xid": xid, "rows": rows}

    def publish(
        self, backend: Backend, spec: datasets.WriteSpec, messages: list[dict[str, Any]]
    ) -> None:
        xids = [int(m["xid"]) for m in messages if m["xid"] is not None]
        stg = sqltext.ident(datasets.DATA_SCHEMA, spec.staging)
        with backend.transaction() as s:
            replaced = datasets.check_writable(
                s, backend.uri, spec.run_id, spec.name, spec.overwrite
            )
            s.execute(sqltext.compose("LOCK TABLE {t} IN ACCESS EXCLUSIVE MODE", t=stg))
            if replaced is not None:
                datasets.drop_table(s, spec.table)
            s.execute(
                sqltext.compose(
                    "ALTER TABLE {t} RENAME TO {name}",
                    t=stg,
                    name=sqltext.ident(spec.table),
                )
            )
            final = sqltext.ident(datasets.DATA_SCHEMA, spec.table)
            fingerprint, rows = self._publish_fingerprint(s, spec)
            if rows != sum(int(m["rows"]) for m in messages):
                # More rows than the kept attempts staged: an attempt committed its COPY
                # and was then retried (or ran speculatively). Keep only the kept ones.
                s.execute(
                    sqltext.compose(
                        "DELETE FROM {t} WHERE NOT (CAST(CAST(xmin AS TEXT) AS BIGINT) = ANY(?))",
                        t=final,
                    ),
                    (xids,),
                )
                fingerprint, rows = self._publish_fingerprint(s, spec)
            size = int(
                s.query(
                    "SELECT pg_total_relation_size(CAST(? AS regclass))",
                    (datasets.qualified(spec.table),),
                )[0][0]
            )
            datasets.record(s, spec, replaced, rows, size, fingerprint)
            staging.mark_published(s, spec.staging)

    def _publish_fingerprint(self, s: Session, spec: datasets.WriteSpec) -> tuple[str, int]:
        return self.fingerprint(
            s, spec.table, spec.columns, ordered=spec.ordered, version=datasets.FINGERPRINT_VERSION
        )

    def fingerprint(
        self, s: Session, table: str, columns: Sequence[str], *, ordered: bool, version: int
    ) -> tuple[str, int]:
        """The sum of PostgreSQL's 64-bit record hashes (``hash_record_extended``) over the
        user columns, ``json`` ones as text (exact: -0.0 stays "-0.0"), with the row count.
        Version 2 hashes floats and float arrays by their binary form (``float8send``,
        ``array_send``: the float hash takes -0.0 for 0.0) and, for a kept-order table,
        each row's rank by ordinal, so the sequence is covered."""
        kinds = dict(
            s.query(
                "SELECT column_name, udt_name FROM information_schema.columns "
                "WHERE table_schema = ? AND table_name = ?",
                (datasets.DATA_SCHEMA, table),
            )
        )
        parts = []
        for c in columns:
            col = sqltext.ident(c, plain=False)
            kind = kinds.get(c)
            if kind == "json":  # json has no hash function; its text is exact
                col = sqltext.Fragment(sqltext.compose("CAST({c} AS TEXT)", c=col))
            elif version >= 2 and kind in _BINARY_HASHED:
                col = sqltext.Fragment(_BINARY_HASHED[kind] + "(" + col + ")")
            parts.append(col)
        cols = sqltext.join(", ", parts) if parts else sqltext.Fragment("NULL")
        t = sqltext.ident(datasets.DATA_SCHEMA, table)
        if version >= 2 and ordered:
            source = sqltext.compose(
                "(SELECT hash_record_extended(ROW({cols}), 0) AS h, "
                "rank() OVER (ORDER BY {ord}) AS r FROM {t}) AS x",
                cols=cols,
                ord=sqltext.ident(datasets.ORDINAL_COLUMN),
                t=t,
            )
            row_hash, shape = "hash_record_extended(ROW(h, r), 0)", "seq"
        else:
            source = t
            row_hash = sqltext.compose("hash_record_extended(ROW({cols}), 0)", cols=cols)
            shape = "sum"
        rows = s.query(
            sqltext.compose(
                "SELECT count(*), CAST(coalesce(sum(CAST({h} AS NUMERIC)), 0) AS TEXT) "
                "FROM {source}",
                h=sqltext.Fragment(row_hash),
                source=sqltext.Fragment(source),
            )
        )
        count, total = rows[0]
        digest = hashlib.sha256(f"{count}:{total}".encode()).hexdigest()[:32]
        if version < 2:
            return f"pg-hash-record-sum:{digest}", int(count)
        return f"pg-hash-record-{shape}-v{version}:{digest}", int(count)

    def read_plan(self, backend: Backend, dataset: Dataset, partitions: int) -> list[Slice]:
        """Ranges of whole heap pages (``ctid``), read by TID range scans; the first and
        last are open-ended, and each counts the rows it holds."""
        with backend.session(read_only=True) as s:
            pages = int(
                s.query(
                    "SELECT pg_relation_size(CAST(? AS regclass)) / "
                    "CAST(current_setting('block_size') AS BIGINT)",
                    (dataset.table_name,),
                )[0][0]
            )
            n = max(1, min(partitions, pages))
            step = -(-pages // n) if pages else 1
            counts = dict(
                s.query(
                    sqltext.compose(
                        "SELECT least(CAST((CAST(CAST(ctid AS TEXT) AS point))[0] AS BIGINT) / ?, "
                        "?), count(*) FROM {t} GROUP BY 1",
                        t=sqltext.ident(*dataset.table_name.split(".", 1)),
                    ),
                    (step, n - 1),
                )
            )
        return [
            Slice(
                "ctid",
                None if i == 0 else i * step,
                None if i == n - 1 else (i + 1) * step,
                int(counts.get(i, 0)),
            )
            for i in range(n)
        ]

    def read(
        self, uri: str, dataset: Dataset, part: Slice, target: pa.Schema
    ) -> Iterator[pa.RecordBatch]:
        import pyarrow as pa

        schema, table = dataset.table_name.split(".", 1)
        columns = datasets.user_columns(dataset.spark_schema)
        if part.kind == "ordinal":
            k = sqltext.ident(datasets.ORDINAL_COLUMN)
            bounds = []
            if part.lo is not None:
                bounds.append(sqltext.compose("{k} >= ", k=k) + str(int(part.lo)))
            if part.hi is not None:
                bounds.append(sqltext.compose("{k} < ", k=k) + str(int(part.hi)))
            where = sqltext.Fragment(
                (" AND ".join(bounds) or "TRUE") + sqltext.compose(" ORDER BY {k}", k=k)
            )
        else:
            where = _tid_range(part.lo or 0, part.hi)
        sql = sqltext.compose(
            "SELECT {cols} FROM {t} WHERE {where}",
            cols=_cols(columns),
            t=sqltext.ident(schema, table),
            where=where,
        )
        json_cols = [pg_type(f.type) == "JSON" for f in target]
        conn = _adbc_connect(uri)
        try:
            with conn.cursor() as cur:
                cur.execute(sql)
                for batch in cur.fetch_record_batch():
                    if not batch.num_rows:
                        continue
                    arrays = [
                        decode_json(c, f.type) if is_json else c
                        for c, f, is_json in zip(batch.columns, target, json_cols, strict=True)
                    ]
                    yield _arrow.conform(
                        pa.RecordBatch.from_arrays(arrays, names=target.names), target
                    )
        finally:
            conn.close()

    def staging_areas(self, backend: Backend) -> list[str]:
        with backend.session(read_only=True) as s:
            rows = s.query(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = ? "
                "AND table_name LIKE ?",
                (datasets.DATA_SCHEMA, datasets.STAGING_PREFIX.replace("_", "\\_") + "%"),
            )
        return sorted(r[0] for r in rows)

    def staging_bytes(self, backend: Backend, staging: str) -> int:
        with backend.session(read_only=True) as s:
            rows = s.query(
                "SELECT coalesce(pg_total_relation_size(to_regclass(?)), 0)",
                (datasets.qualified(staging),),
            )
        return int(rows[0][0])

    def drop_staging(self, backend: Backend, staging: str) -> None:
        with backend.transaction() as s:
            s.execute("SELECT set_config('lock_timeout', ?, true)", (DROP_LOCK_TIMEOUT,))
            s.execute(
                sqltext.compose(
                    "DROP TABLE IF EXISTS {t}", t=sqltext.ident(datasets.DATA_SCHEMA, staging)
                )
            )


def _tid_range(lo: int, hi: int | None) -> sqltext.Fragment:
    """Whole heap pages [lo, hi): a TID range scan reads only those pages."""
    low = sqltext.Fragment(quote_literal(f"({lo},0)"))
    if hi is None:
        return sqltext.Fragment(sqltext.compose("ctid >= CAST({lo} AS tid)", lo=low))
    high = sqltext.Fragment(quote_literal(f"({hi},0)"))
    return sqltext.Fragment(
        sqltext.compose("ctid >= CAST({lo} AS tid) AND ctid < CAST({hi} AS tid)", lo=low, hi=high)
    )


def _chain(first: pa.RecordBatch, rest: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    yield first
    yield from rest


ENGINE = PostgresDatasets()
