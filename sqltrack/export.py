"""Export a registered model version as a directory in MLflow's model format.

``sqltrack models export models:/churn@champion DIR --format mlflow`` writes::

    DIR/MLmodel            the spark and python_function flavors, a signature, provenance
    DIR/sparkml/           the Spark model, as Spark's writer saved it (a PipelineModel)
    DIR/requirements.txt   pyspark at the version that wrote the model, mlflow 3
    DIR/python_env.yaml    for mlflow models serve --env-manager virtualenv
    DIR/conda.yaml         for --env-manager conda

so that ``mlflow.pyfunc.load_model(DIR).predict(pandas_df)`` returns the stored model's
predictions, and MLflow's tooling (``mlflow models serve``, ``mlflow sagemaker``, Azure ML)
takes it as it takes a model MLflow saved itself. The ``mlflow`` package is not needed to
export.

The bytes are the stored ones: the archive is read back and its sha256 verified. A
``PipelineModel`` is extracted as it is (no Spark needed); any other model is loaded by Spark
and saved wrapped in a one-stage ``PipelineModel``, which is what MLflow's spark flavor
loads. The signature's inputs are the stored input schema (the training dataset's columns
the model reads); a model without one, or with a column type MLflow's schema cannot
express, is exported without a signature.

The export is a deployment (kind ``mlflow_dir``, target the directory unless named): the
directory is built beside ``DIR`` and moved into place inside the transaction that records
the event, so there is either both or neither.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sqltrack import artifacts, deployments, registry
from sqltrack.backends import Backend, Session
from sqltrack.errors import InvalidInputError

__all__ = ["FORMATS", "export_model", "mlflow_signature"]

FORMATS = ("mlflow",)
PIPELINE_MODEL = "pyspark.ml.pipeline.PipelineModel"
MODEL_DATA = "sparkml"
# Spark schema type names -> MLflow's column types (mlflow.types.DataType), as MLflow
# itself infers them from a Spark DataFrame.
_MLFLOW_TYPES = {
    "string": "string",
    "double": "double",
    "float": "float",
    "long": "long",
    "integer": "integer",
    "short": "integer",
    "byte": "integer",
    "boolean": "boolean",
    "binary": "binary",
    "timestamp": "datetime",
    "timestamp_ntz": "datetime",
    "date": "datetime",
}
_VECTOR_UDT = "pyspark.ml.linalg.VectorUDT"


def _column_type(spark_type: Any) -> dict[str, Any] | None:
    if isinstance(spark_type, str):
        return {"type": _MLFLOW_TYPES[spark_type]} if spark_type in _MLFLOW_TYPES else None
    if isinstance(spark_type, dict):
        if spark_type.get("type") == "udt" and spark_type.get("pyClass") == _VECTOR_UDT:
            return {"type": "sparkml_vector"}
        if spark_type.get("type") == "array":
            items = _column_type(spark_type.get("elementType"))
            return None if items is None else {"type": "array", "items": items}
    return None


def mlflow_signature(input_schema: str | None) -> dict[str, str] | None:
    """MLmodel's ``signature`` (inputs and outputs as MLflow's JSON column specs) from a
    stored input schema (Spark StructType JSON); None when MLflow cannot express it."""
    if input_schema is None:
        return None
    inputs = []
    for f in json.loads(input_schema).get("fields", []):
        spec = _column_type(f.get("type"))
        if spec is None:
            return None
        inputs.append({**spec, "name": f["name"], "required": True})
    if not inputs:
        return None
    outputs = [{"type": "double", "required": True}]  # the model's prediction column
    return {"inputs": json.dumps(inputs), "outputs": json.dumps(outputs)}


def _yaml(value: Any, indent: int = 0) -> str:
    """Block YAML for dicts of dicts/lists/scalars; scalars are JSON-quoted (valid YAML)."""
    pad = "  " * indent
    lines = []
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, dict | list) and item:
                lines.append(f"{pad}{key}:\n{_yaml(item, indent + 1)}")
            else:
                lines.append(f"{pad}{key}: {_scalar(item)}")
    else:
        for item in value:
            if isinstance(item, dict | list) and item:
                body = _yaml(item, indent + 1).lstrip()
                lines.append(f"{pad}- {body}")
            else:
                lines.append(f"{pad}- {_scalar(item)}")
    return "\n".join(lines)


def _scalar(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return json.dumps(value)
    if isinstance(value, dict | list):
        return "{}" if isinstance(value, dict) else "[]"
    return json.dumps(str(value))


def _spark_folder(backend: Backend, found: registry.ResolvedModel, work: Path) -> tuple[Path, str]:
    """The stored model as the folder MLflow's spark flavor loads (a PipelineModel), and
    the Spark version that wrote that folder."""
    from sqltrack import models

    archive = work / "model.tar.gz"
    with archive.open("wb") as out:
        for block in artifacts.read_chunks(
            backend,
            models.MODEL_CHUNKS,
            found.model_id,
            found.chunk_count,
            found.sha256,
            f"model {found.model_name!r} of run {found.run_id}",
        ):
            out.write(block)
    raw = work / "stored"
    models._extract(archive, raw)
    if found.model_class == PIPELINE_MODEL:
        return raw, found.spark_version
    spark = models._active_spark("export_model (a model that is not a PipelineModel)")
    from pyspark.ml import PipelineModel

    cls = models._model_class(found.model_class)
    backend.release()  # Spark reads and writes now
    wrapped = work / "wrapped"
    PipelineModel(stages=[cls.load(raw.as_uri())]).write().save(wrapped.as_uri())
    return wrapped, str(spark.version)


def _write_mlflow(
    folder: Path, found: registry.ResolvedModel, spark_version: str, schema: str | None, uri: str
) -> dict[str, Any]:
    python = ".".join(map(str, sys.version_info[:3]))
    requirements = [f"pyspark=={spark_version}", "mlflow>=3,<4"]
    signature = mlflow_signature(schema)
    mlmodel: dict[str, Any] = {
        "flavors": {
            "python_function": {
                "data": MODEL_DATA,
                "env": {"conda": "conda.yaml", "virtualenv": "python_env.yaml"},
                "loader_module": "mlflow.spark",
                "python_version": python,
            },
            "spark": {
                "code": None,
                "model_class": PIPELINE_MODEL,
                "model_data": MODEL_DATA,
                "pyspark_version": spark_version,
            },
        },
        "metadata": {
            "sqltrack_store": uri,
            "sqltrack_model": f"models:/{found.registered_name}/{found.version}",
            "sqltrack_source": f"runs:/{found.run_id}/{found.model_name}",
            "sqltrack_model_sha256": found.sha256,
            "sqltrack_stored_class": found.model_class,
        },
        "model_uuid": uuid.uuid4().hex,
        "utc_time_created": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f"),
    }
    if signature is not None:
        mlmodel["signature"] = signature
    (folder / "MLmodel").write_text(_yaml(mlmodel) + "\n", encoding="utf-8")
    (folder / "requirements.txt").write_text("\n".join(requirements) + "\n", encoding="utf-8")
    env = {
        "python": python,
        "build_dependencies": ["pip", "setuptools", "wheel"],
        "dependencies": ["-r requirements.txt"],
    }
    (folder / "python_env.yaml").write_text(_yaml(env) + "\n", encoding="utf-8")
    conda = {
        "channels": ["conda-forge"],
        "dependencies": [f"python={python}", "pip", {"pip": requirements}],
        "name": "mlflow-env",
    }
    (folder / "conda.yaml").write_text(_yaml(conda) + "\n", encoding="utf-8")
    return {"signature": signature is not None, "requirements": requirements}


def _input_schema(s: Session, model_id: int) -> str | None:
    rows = s.query(
        "SELECT CAST(input_schema AS TEXT) FROM sqltrack.models WHERE model_id = ?", (model_id,)
    )
    return rows[0][0] if rows else None


def export_model(
    backend: Backend,
    model_uri: str,
    path: str | os.PathLike[str],
    fmt: str = "mlflow",
    *,
    target: str | None = None,
    replace: bool = False,
    reason: str | None = None,
) -> deployments.Deployment:
    """Write the registered version ``model_uri`` names into the new directory ``path`` in
    MLflow's model format and record it as a deployment (kind ``mlflow_dir``, target
    ``target`` or the directory's absolute path). Nothing is left behind on failure."""
    if fmt not in FORMATS:
        raise InvalidInputError(f"export format {fmt!r} is not one of: {', '.join(FORMATS)}")
    dest = Path(os.path.abspath(os.fspath(path)))
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise InvalidInputError(
            f"export: {dest} already exists; export into a new or empty directory"
        )
    found = registry.resolve_model_ref(backend, model_uri)
    if found.registered_name is None:
        raise InvalidInputError(
            f"export: {model_uri!r} is not a registered model version; register it first "
            f"(sqltrack registry register {model_uri} NAME) and export models:/NAME/VERSION"
        )
    with backend.session(read_only=True) as s:
        schema = _input_schema(s, found.model_id)
    dest.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".sqltrack-export-", dir=dest.parent))
    moved = False
    try:
        spark_folder, spark_version = _spark_folder(backend, found, work)
        staged = work / "export"
        staged.mkdir()
        shutil.move(str(spark_folder), staged / MODEL_DATA)
        facts = _write_mlflow(staged, found, spark_version, schema, backend.uri)

        def publish(s: Session, _: registry.ResolvedModel, __: Any) -> None:
            nonlocal moved
            if dest.exists():
                dest.rmdir()  # empty, checked above
            os.replace(staged, dest)
            moved = True

        config = {"path": str(dest), "format": fmt, **facts}
        return deployments.deploy(
            backend,
            model_uri,
            target or str(dest),
            "mlflow_dir",
            config,
            replace=replace,
            reason=reason,
            publish=publish,
        )
    except BaseException:
        if moved:
            shutil.rmtree(dest, ignore_errors=True)
        raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
