"""The DataSource, writer and reader classes (see the package docstring for the design)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
from pyspark.sql.datasource import (
    DataSource,
    DataSourceArrowWriter,
    DataSourceReader,
    InputPartition,
    WriterCommitMessage,
)
from pyspark.sql.pandas.types import to_arrow_schema
from pyspark.sql.types import StructType

from sqltrack import config, datasets, staging
from sqltrack.backends import open_backend
from sqltrack.entities import Dataset
from sqltrack.errors import InvalidInputError, SqltrackError

__all__ = ["SqltrackDataSource"]

# Read slices: at least two (local[2] reads on both cores), about a million rows each,
# at most 64. Each slice streams Arrow batches, so a big slice needs no more memory.
_ROWS_PER_PARTITION = 1_000_000
_MIN_PARTITIONS = 2
_MAX_PARTITIONS = 64


@dataclass
class StagedAttempt(WriterCommitMessage):  # type: ignore[misc]
    """What one successful task attempt staged (files, or a transaction id)."""

    payload: dict[str, Any]


class SqltrackPartition(InputPartition):  # type: ignore[misc]
    def __init__(self, part: Any) -> None:
        super().__init__(part)
        self.part = part


def _float_option(name: str, value: str) -> float:
    try:
        return float(value)
    except ValueError as exc:
        raise InvalidInputError(f"option {name}={value!r} is not a number") from exc


def _uri(options: Any) -> str:
    return config.get("uri", options.get("uri"))


def _find(options: Any) -> tuple[str, Dataset]:
    uri = _uri(options)
    backend = open_backend(uri)
    try:
        if options.get("dataset_id"):
            try:
                dataset_id = int(options["dataset_id"])
            except ValueError as exc:
                raise InvalidInputError(
                    f"option dataset_id={options['dataset_id']!r} is not an integer"
                ) from exc
            return uri, datasets.get_dataset(backend, dataset_id=dataset_id)
        run_id = options.get("run_id")
        if not run_id:
            raise InvalidInputError(
                "reading format('sqltrack') needs option('run_id', ...) (and 'name', default "
                "'training') or option('dataset_id', ...)"
            )
        name = datasets.validate_name(options.get("name", "training"))
        return uri, datasets.get_dataset(backend, run_id=run_id, name=name)
    finally:
        backend.close()


class SqltrackDataSource(DataSource):  # type: ignore[misc]
    """``format("sqltrack")``: datasets of a sqltrack store."""

    @classmethod
    def name(cls) -> str:
        return datasets.FORMAT

    def schema(self) -> StructType:
        _, dataset = _find(self.options)
        return StructType.fromJson(json.loads(dataset.spark_schema))

    def reader(self, schema: StructType) -> DataSourceReader:
        uri, dataset = _find(self.options)
        stored = StructType.fromJson(json.loads(dataset.spark_schema))
        if [f.name for f in schema.fields] != [f.name for f in stored.fields]:
            raise InvalidInputError(
                f"dataset {dataset.name!r} has columns {stored.fieldNames()}; a user-given "
                "schema must match them (or give none)"
            )
        backend = open_backend(uri)
        try:
            if datasets.parse_bool(self.options.get("verify", "true"), "verify"):
                datasets.verify(backend, dataset)
            wanted = self.options.get("partitions")
            n = (
                int(wanted)
                if wanted
                else min(
                    _MAX_PARTITIONS,
                    max(_MIN_PARTITIONS, -(-dataset.row_count // _ROWS_PER_PARTITION)),
                )
            )
            plan = datasets.read_plan(backend, dataset, n)
        finally:
            backend.close()
        target = to_arrow_schema(schema, timezone="UTC")
        return SqltrackReader(uri, dataset, plan, target)

    def writer(self, schema: StructType, overwrite: bool) -> SqltrackWriter:
        uri = _uri(self.options)
        run_id = self.options.get("run_id")
        if not run_id:
            raise InvalidInputError(
                "writing format('sqltrack') needs option('run_id', RUN_ID); the dataset "
                "belongs to that run"
            )
        ordered = datasets.parse_bool(self.options.get("keep_order", "false"), "keep_order")
        writer = self.options.get("writer")
        retry = self.options.get("retry")
        spec = datasets.WriteSpec.new(
            uri,
            run_id,
            self.options.get("name", "training"),
            overwrite=overwrite,
            ordered=ordered,
            spark_schema=schema.json(),
            arrow_schema=to_arrow_schema(schema, timezone="UTC"),
            created_by=self.options.get("created_by"),
            staging=self.options.get("staging"),
            writer=(
                staging.Writer.parse(writer) if writer else staging.Writer.spark_driver()
            ).text(),
            retry=_float_option("retry", retry) if retry else None,
        )
        backend = open_backend(uri)
        try:

            def check() -> None:
                with backend.session(read_only=True) as s:
                    datasets.check_writable(s, backend.uri, spec.run_id, spec.name, overwrite)

            staging.retrying(f"checking run {spec.run_id}", check, spec.retry)
            staging.janitor(backend)  # the staging of writers that are gone
            staging.retrying(
                f"creating staging {spec.staging}",
                lambda: staging.begin(backend, spec),
                spec.retry,
            )
        finally:
            backend.close()
        return SqltrackWriter(spec)


class SqltrackWriter(DataSourceArrowWriter):  # type: ignore[misc]
    def __init__(self, spec: datasets.WriteSpec) -> None:
        self.spec = spec

    def _engine(self) -> Any:
        backend = open_backend(self.spec.uri)
        return backend, datasets.engine(backend)

    def write(self, iterator: Iterator[pa.RecordBatch]) -> StagedAttempt:
        from pyspark import TaskContext

        ctx = TaskContext.get()
        partition = ctx.partitionId() if ctx else 0
        attempt = ctx.attemptNumber() if ctx else 0
        backend, engine = self._engine()
        try:
            if backend.capabilities.concurrent_writers:  # never the DuckDB file from executors
                staging.heartbeat(backend, self.spec.staging)
        except SqltrackError:
            pass  # a missed beat: the lease covers it, and staging below waits for the store
        finally:
            backend.close()  # executors never hold the store; the engine opens what it needs
        payload = engine.stage(self.spec, iterator, partition, attempt)
        fail = os.environ.get("SQLTRACK_TEST_FAIL_AFTER_STAGE")  # fault injection in tests
        if fail and attempt == 0 and str(partition) in fail.split(","):
            raise RuntimeError(f"injected failure after staging partition {partition}")
        return StagedAttempt(payload)

    def commit(self, messages: list[StagedAttempt | None]) -> None:
        spec = self.spec
        backend, engine = self._engine()
        payloads = [m.payload for m in messages if m is not None]

        def publish() -> None:
            if not staging.published(backend, spec.staging):  # a lost answer to a COMMIT
                engine.publish(backend, spec, payloads)

        try:
            staging.retrying(f"publishing dataset {spec.name!r}", publish, spec.retry)
        except BaseException:
            try:
                staging.discard(backend, spec)
            except SqltrackError:
                pass  # the store is away: the janitor removes it once the writer is gone
            backend.close()
            raise
        try:
            staging.finish(backend, spec)
        except SqltrackError:
            pass  # published; the row says so and the janitor removes the rest at once
        finally:
            backend.close()

    def abort(self, messages: list[StagedAttempt | None]) -> None:
        backend, _ = self._engine()
        try:
            staging.discard(backend, self.spec)
        except SqltrackError:
            pass  # the store is away: the janitor removes it once the writer is gone
        finally:
            backend.close()


class SqltrackReader(DataSourceReader):  # type: ignore[misc]
    def __init__(self, uri: str, dataset: Dataset, plan: list[Any], target: pa.Schema) -> None:
        self.uri = uri
        self.dataset = dataset
        self.plan = plan
        self.target = target

    def partitions(self) -> list[SqltrackPartition]:
        return [SqltrackPartition(p) for p in self.plan]

    def read(self, partition: SqltrackPartition) -> Iterator[pa.RecordBatch]:
        backend = open_backend(self.uri)
        engine = datasets.engine(backend)
        backend.close()
        part = partition.part
        yield from datasets.counted(
            self.dataset, part, engine.read(self.uri, self.dataset, part, self.target)
        )
