"""Export to MLflow's model format, checked by the real mlflow package: the exported
directory loads with mlflow.pyfunc.load_model and predicts what the stored model predicts;
the export is a deployment event, all or nothing."""

from __future__ import annotations

import json

import pytest

import sqltrack
from sqltrack import export
from sqltrack.cli import main

pytest.register_assert_rewrite("tests.registry_fixtures")
pytest_plugins = ["tests.registry_fixtures"]

pytestmark = [
    pytest.mark.spark,
    # mlflow's own import-time notice (mlflow/types/responses.py), not about this export
    pytest.mark.filterwarnings("ignore:.*Any type hint is inferred as AnyType:UserWarning"),
]


def in_order(model, spark, pdf):
    return [r.prediction for r in model.transform(spark.createDataFrame(pdf)).collect()]


def test_mlflow_loads_the_export_and_predicts_what_the_stored_model_predicts(
    reg, trained, fresh_name, registry_orders, spark, tmp_path, capsys, registry_uri
):
    import mlflow.pyfunc
    from mlflow.models import Model

    reg.register_model(trained[0].uri, fresh_name)
    reg.register_model(trained[1].uri, fresh_name)
    reg.set_registered_model_alias(fresh_name, "champion", 2)
    out = tmp_path / "exports" / "churn"
    argv = ["models", "export", f"models:/{fresh_name}@champion", str(out), "--format", "mlflow"]
    assert main([*argv, "--uri", registry_uri, "--reason", "serve it"]) == 0
    assert str(out) in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == [
        "MLmodel",
        "conda.yaml",
        "python_env.yaml",
        "requirements.txt",
        "sparkml",
    ]
    assert sorted(p.name for p in out.parent.iterdir()) == ["churn"]  # no staging left

    meta = Model.load(str(out))
    assert set(meta.flavors) == {"spark", "python_function"}
    assert meta.flavors["python_function"]["loader_module"] == "mlflow.spark"
    assert meta.flavors["spark"]["pyspark_version"] == trained[1].stored.spark_version
    assert meta.signature.inputs.input_names() == ["city", "price"]
    assert [t.name for t in meta.signature.inputs.input_types()] == ["string", "double"]
    assert meta.metadata["sqltrack_model"] == f"models:/{fresh_name}/2"
    assert meta.metadata["sqltrack_model_sha256"] == trained[1].stored.sha256
    requirements = (out / "requirements.txt").read_text().split()
    assert f"pyspark=={trained[1].stored.spark_version}" in requirements

    pdf = registry_orders.toPandas()[["city", "price"]]
    predicted = mlflow.pyfunc.load_model(str(out)).predict(pdf)
    stored = reg.load_spark_model(f"models:/{fresh_name}/2")
    assert list(predicted) == in_order(stored, spark, pdf)
    assert list(predicted) != in_order(trained[0].model, spark, pdf)  # version 2, not 1

    (deployment,) = reg.list_deployments(str(out))
    assert (deployment.kind, deployment.version, deployment.alias) == ("mlflow_dir", 2, "champion")
    assert deployment.reason == "serve it"
    assert deployment.config["path"] == str(out) and deployment.config["signature"] is True


def test_a_failed_export_leaves_no_directory_and_no_event(reg, trained, fresh_name, tmp_path):
    reg.register_model(trained[0].uri, fresh_name)
    reg.register_model(trained[1].uri, fresh_name)
    sagemaker = {"endpoint": "e", "region": "r"}
    reg.deploy(f"models:/{fresh_name}/1", fresh_name, "sagemaker", sagemaker)
    out = tmp_path / "churn"
    with pytest.raises(sqltrack.ConflictError, match="is a sagemaker target, not mlflow_dir"):
        reg.export_model(f"models:/{fresh_name}/1", out, target=fresh_name)
    assert list(tmp_path.iterdir()) == []

    first = reg.export_model(f"models:/{fresh_name}/1", out)
    with pytest.raises(sqltrack.InvalidInputError, match="already exists; export into a new"):
        reg.export_model(f"models:/{fresh_name}/2", out)
    with pytest.raises(sqltrack.ConflictError, match="already serves .* version 1 .*replace"):
        reg.export_model(f"models:/{fresh_name}/2", tmp_path / "other", target=str(out))
    with pytest.raises(sqltrack.InvalidInputError, match="not a registered model version"):
        reg.export_model(trained[0].uri, tmp_path / "unregistered")
    with pytest.raises(sqltrack.InvalidInputError, match="format 'onnx' is not one of: mlflow"):
        reg.export_model(f"models:/{fresh_name}/1", tmp_path / "onnx", "onnx")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["churn"]
    replaced = reg.export_model(
        f"models:/{fresh_name}/2", tmp_path / "v2", target=str(out), replace=True
    )
    assert [d.status for d in reg.list_deployments(str(out), include_ended=True)] == [
        "replaced",
        "live",
    ]
    assert (first.version, replaced.version) == (1, 2)


@pytest.mark.parametrize("registry_uri", ["duckdb"], indirect=True)  # Spark-only path
def test_a_model_that_is_not_a_pipeline_is_exported_wrapped(
    reg, registry_orders, registry_models, fresh_name, spark, tmp_path
):
    import mlflow.pyfunc

    features = registry_models[0].stages[-1]  # the LogisticRegressionModel alone
    with reg.start_run() as run:
        reg.log_spark_model(features)
    reg.register_model(f"runs:/{run.run_id}/model", fresh_name)
    out = tmp_path / "lr"
    reg.export_model(f"models:/{fresh_name}/1", out)
    (metadata,) = (out / "sparkml" / "metadata").glob("part-*")
    assert json.loads(metadata.read_text())["class"].endswith("ml.PipelineModel")
    assembled = registry_models[0].transform(registry_orders).select("features")
    pdf = assembled.toPandas()
    pdf["features"] = pdf["features"].map(lambda v: [float(x) for x in v.toArray()])
    predicted = mlflow.pyfunc.load_model(str(out)).predict(pdf)
    assert list(predicted) == [r.prediction for r in features.transform(assembled).collect()]


def test_signatures_follow_the_stored_input_schema():
    schema = {
        "type": "struct",
        "fields": [
            {"name": "n", "type": "integer", "nullable": True, "metadata": {}},
            {"name": "t", "type": "timestamp", "nullable": True, "metadata": {}},
            {
                "name": "v",
                "type": {"type": "udt", "pyClass": "pyspark.ml.linalg.VectorUDT"},
                "nullable": True,
                "metadata": {},
            },
            {
                "name": "a",
                "type": {"type": "array", "elementType": "double", "containsNull": True},
                "nullable": True,
                "metadata": {},
            },
        ],
    }
    signature = export.mlflow_signature(json.dumps(schema))
    assert signature is not None
    assert json.loads(signature["inputs"]) == [
        {"type": "integer", "name": "n", "required": True},
        {"type": "datetime", "name": "t", "required": True},
        {"type": "sparkml_vector", "name": "v", "required": True},
        {"type": "array", "items": {"type": "double"}, "name": "a", "required": True},
    ]
    decimal = {"fields": [{"name": "d", "type": "decimal(10,2)"}]}
    assert export.mlflow_signature(json.dumps(decimal)) is None  # MLflow has no decimal
    assert export.mlflow_signature(None) is None
