"""Fitted Spark models stored inside the database.

:func:`log_spark_model` saves a fitted model or ``PipelineModel`` with Spark's own writer
(``model.write().save(folder)``) into a private temporary folder, archives the folder as
``tar.gz`` and stores the archive in ``sqltrack.model_chunks`` (4 MiB chunks, the shared
writer of :mod:`sqltrack.artifacts`) with one ``sqltrack.models`` row: run, name, model
class, Spark version, size, sha256, the columns the model reads, their Spark schema, and the
dataset the run logged (so "which exact data trained this model" is a join). Row and chunks
are one transaction: a failure leaves nothing behind.

:func:`load_spark_model` streams the chunks to a temporary file, verifies the sha256, extracts
the archive (refusing paths outside its folder) and loads it with the recorded class's reader;
Spark's model readers load everything into memory, so the folder is removed afterwards.

Cluster note: the folder is on the driver's local disk (``file://``). Spark's writers run on
the driver for the metadata and in tasks for the model data; in local mode both are this
machine. On a cluster whose executors do not share the driver's disk, save with a shared
filesystem instead.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import tarfile
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqltrack import _context, artifacts, ledger
from sqltrack.entities import ModelVersion
from sqltrack.errors import ConflictError, IntegrityError, InvalidInputError, NotFoundError
from sqltrack.identifiers import validate_key
from sqltrack.sqltext import Fragment

if TYPE_CHECKING:
    from sqltrack.backends import Session
    from sqltrack.tracking import Tracker

__all__ = [
    "MODEL_CHUNKS",
    "get_model_version",
    "list_models",
    "load_spark_model",
    "log_spark_model",
]

ARCHIVE_FORMAT = "tar.gz"
MODEL_CHUNKS = artifacts.ChunkTable(Fragment("sqltrack.model_chunks"), Fragment("model_id"))
_MODEL_COLUMNS = (
    "model_id, run_id, name, model_class, spark_version, sha256, size_bytes, dataset_id, "
    "CAST(input_schema AS TEXT), created_at, CAST(input_columns AS TEXT)"
)


def _active_spark(helper: str) -> Any:
    """The running SparkContext (process-wide, unlike the thread-local active session)."""
    from pyspark import SparkContext

    sc = SparkContext._active_spark_context
    if sc is None:
        raise InvalidInputError(
            f"{helper} needs a running Spark; create a session first "
            "(SparkSession.builder.getOrCreate())"
        )
    return sc


def _require_writable(model: object) -> None:
    from pyspark.ml.util import MLWritable

    from sqltrack.governance import _require_fitted

    _require_fitted(model, "log_spark_model")
    if not isinstance(model, MLWritable):
        raise InvalidInputError(
            f"log_spark_model: {type(model).__name__} cannot be saved by Spark (it is not "
            "MLWritable); store a model whose class has .write()"
        )


def _row_to_version(row: tuple[Any, ...]) -> ModelVersion:
    model_id, run_id, name, model_class, spark_version, sha256, size, dataset_id = row[:8]
    input_schema, created_at, columns = row[8:]
    return ModelVersion(
        model_id=int(model_id),
        run_id=run_id,
        name=name,
        model_class=model_class,
        spark_version=spark_version,
        sha256=sha256,
        size_bytes=int(size),
        dataset_id=None if dataset_id is None else int(dataset_id),
        input_schema=input_schema,
        created_at=created_at,
        input_columns=tuple(json.loads(columns)),
    )


def _get(s: Session, run_id: str, name: str) -> ModelVersion | None:
    from sqltrack.sqltext import compose

    rows = s.query(
        compose(
            "SELECT {cols} FROM sqltrack.models WHERE run_id = ? AND name = ?",
            cols=Fragment(_MODEL_COLUMNS),
        ),
        (run_id, name),
    )
    return _row_to_version(rows[0]) if rows else None


def _resolve_dataset(
    s: Session, run_id: str, dataset: str | None
) -> tuple[int | None, dict[str, Any] | None]:
    """(dataset_id, its Spark schema as a dict) of the dataset a model was trained on: the
    one named, else the run's only dataset, else its ``training`` one, else none."""
    rows = s.query(
        "SELECT dataset_id, name, CAST(spark_schema AS TEXT) FROM sqltrack.datasets "
        "WHERE run_id = ? ORDER BY dataset_id",
        (run_id,),
    )
    by_name = {name: (int(did), schema) for did, name, schema in rows}
    if dataset is not None:
        if dataset not in by_name:
            raise NotFoundError(
                f"run {run_id} has no dataset {dataset!r} (it has: "
                f"{', '.join(sorted(by_name)) or 'none'}); log it first with "
                "log_dataset(df, name) or pass dataset=None"
            )
        chosen = by_name[dataset]
    elif len(by_name) == 1:
        chosen = next(iter(by_name.values()))
    elif "training" in by_name:
        chosen = by_name["training"]
    else:
        return None, None
    return chosen[0], json.loads(chosen[1])


def _input_schema(schema: dict[str, Any] | None, columns: list[str]) -> str | None:
    """The dataset's fields the model reads, as StructType JSON; None unless all are there."""
    if schema is None:
        return None
    fields = {f["name"]: f for f in schema.get("fields", [])}
    if not columns or any(c not in fields for c in columns):
        return None
    return json.dumps({"type": "struct", "fields": [fields[c] for c in columns]})


def _archive(folder: Path, target: Path) -> None:
    with tarfile.open(target, "w:gz") as tar:
        for path in sorted(folder.rglob("*")):
            tar.add(path, arcname=path.relative_to(folder).as_posix(), recursive=False)


def _sha256(path: Path) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as f:
        for block in iter(lambda: f.read(artifacts.CHUNK_SIZE), b""):
            digest.update(block)
            size += len(block)
    return size, digest.hexdigest()


def log_spark_model(
    tracker: Tracker, model: Any, name: str, run_id: str, dataset: str | None = None
) -> ModelVersion:
    """Store a fitted model or PipelineModel in the database under ``name`` for the run,
    linked to the dataset it was trained on (``dataset=``, else the run's only or
    ``training`` dataset). A name is stored once per run."""
    from sqltrack.governance import input_columns

    name = validate_key(name, "model name")
    _require_writable(model)
    spark = _active_spark("log_spark_model")
    columns = input_columns(model)
    with tracker.backend.session() as s:
        tracker._check_running(s, run_id)
        if _get(s, run_id, name) is not None:
            raise ConflictError(
                f"run {run_id} already stored a model named {name!r}; stored models are "
                "immutable: use another name"
            )
        _resolve_dataset(s, run_id, dataset)  # fail before the Spark work, not after
    tracker.backend.release()  # Spark writes now: never hold a DuckDB file meanwhile
    with tempfile.TemporaryDirectory(prefix="sqltrack-model-") as tmp:
        folder = Path(tmp) / "model"
        try:
            model.write().save(folder.as_uri())
        except Exception as exc:
            raise InvalidInputError(
                f"log_spark_model: Spark could not save {type(model).__name__}: {exc}"
            ) from exc
        archive = Path(tmp) / "model.tar.gz"
        _archive(folder, archive)
        size, sha256 = _sha256(archive)
        count = -(-size // artifacts.CHUNK_SIZE)
        with tracker.backend.transaction() as s, archive.open("rb") as stream:
            tracker._check_running(s, run_id)
            dataset_id, schema = _resolve_dataset(s, run_id, dataset)
            model_id = s.query(
                "INSERT INTO sqltrack.models (run_id, name, model_class, spark_version, "
                "archive_format, size_bytes, sha256, chunk_count, dataset_id, input_columns, "
                "input_schema, created_by) VALUES (?, ?, ?, ?, ?, ?, ?, "
                "?, ?, ?, ?, ?) RETURNING model_id",
                (
                    run_id,
                    name,
                    f"{type(model).__module__}.{type(model).__qualname__}",
                    str(spark.version),
                    ARCHIVE_FORMAT,
                    size,
                    sha256,
                    count,
                    dataset_id,
                    json.dumps(columns),
                    _input_schema(schema, columns),
                    _context.user_name(),
                ),
            )[0][0]
            written = artifacts.write_chunks(s, MODEL_CHUNKS, model_id, stream)
            if written != (size, sha256, count):
                raise IntegrityError(
                    f"log_spark_model: the archive of {name!r} changed while it was stored"
                )
            ledger.record(s, "models", run_id, (name,), "insert")
            version = _get(s, run_id, name)
    assert version is not None
    return version


def get_model_version(tracker: Tracker, run_id: str, name: str = "model") -> ModelVersion:
    with tracker.backend.session(read_only=True) as s:
        version = _get(s, run_id, name)
        if version is None:
            names = [
                r[0]
                for r in s.query(
                    "SELECT name FROM sqltrack.models WHERE run_id = ? ORDER BY name", (run_id,)
                )
            ]
            if not names and not s.query("SELECT 1 FROM sqltrack.runs WHERE run_id = ?", (run_id,)):
                raise NotFoundError(f"run {run_id} does not exist in {tracker.uri}")
            raise NotFoundError(
                f"run {run_id} has no stored model {name!r} (it has: "
                f"{', '.join(names) or 'none'}); store one with log_spark_model(model, name)"
            )
    return version


def list_models(tracker: Tracker, run_id: str | None = None) -> list[ModelVersion]:
    from sqltrack.sqltext import compose

    where = Fragment("WHERE run_id = ?" if run_id is not None else "")
    with tracker.backend.session(read_only=True) as s:
        rows = s.query(
            compose(
                "SELECT {cols} FROM sqltrack.models {where} ORDER BY model_id",
                cols=Fragment(_MODEL_COLUMNS),
                where=where,
            ),
            (run_id,) if run_id is not None else (),
        )
    return [_row_to_version(r) for r in rows]


def _model_class(path: str) -> Any:
    from pyspark.ml.base import Transformer
    from pyspark.ml.util import MLReadable

    module, _, qualname = path.rpartition(".")
    try:
        cls: Any = importlib.import_module(module)
        for part in qualname.split("."):
            cls = getattr(cls, part)
    except (ImportError, AttributeError, ValueError) as exc:
        raise InvalidInputError(
            f"load_spark_model: the stored model class {path!r} cannot be imported here "
            f"({exc}); install the package that defines it"
        ) from exc
    if not (isinstance(cls, type) and issubclass(cls, Transformer) and issubclass(cls, MLReadable)):
        raise IntegrityError(
            f"load_spark_model: stored model class {path!r} is not a readable pyspark.ml model"
        )
    return cls


def _extract(archive: Path, target: Path) -> None:
    with tarfile.open(archive, "r:gz") as tar:
        tar.extractall(target, filter="data")  # refuses absolute paths, '..' and links out


def load_spark_model(tracker: Tracker, run_id: str, name: str = "model") -> Any:
    """Reload a stored model after verifying its sha256; it predicts exactly what the
    original predicted. ``run_id`` may be a model URI instead (then ``name`` is unused)."""
    _active_spark("load_spark_model")
    if ":/" in run_id:  # a model URI: runs:/RUN_ID/NAME, models:/NAME/VERSION or @ALIAS
        from sqltrack.registry import resolve_model_ref

        found = resolve_model_ref(tracker.backend, run_id)
        run_id, name = found.run_id, found.model_name
    version = get_model_version(tracker, run_id, name)
    with tracker.backend.session(read_only=True) as s:
        model_class, count = s.query(
            "SELECT model_class, chunk_count FROM sqltrack.models WHERE model_id = ?",
            (version.model_id,),
        )[0]
    cls = _model_class(model_class)
    with tempfile.TemporaryDirectory(prefix="sqltrack-model-") as tmp:
        archive = Path(tmp) / "model.tar.gz"
        with archive.open("wb") as out:
            for block in artifacts.read_chunks(
                tracker.backend,
                MODEL_CHUNKS,
                version.model_id,
                int(count),
                version.sha256,
                f"model {name!r} of run {run_id}",
            ):
                out.write(block)
        folder = Path(tmp) / "model"
        _extract(archive, folder)
        tracker.backend.release()  # Spark reads now
        try:
            return cls.load(folder.as_uri())
        except Exception as exc:
            raise IntegrityError(
                f"load_spark_model: Spark could not load model {name!r} of run {run_id} "
                f"({model_class}, written by Spark {version.spark_version}): {exc}"
            ) from exc
