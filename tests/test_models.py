"""Fitted Spark models stored in the database, on both backends: stored by Spark's writer,
chunked with a sha256, linked to the run's dataset, reloaded to predict exactly the same."""

from __future__ import annotations

import hashlib
import json

import pytest

import sqltrack
from sqltrack import artifacts
from sqltrack.cli import main

pytestmark = pytest.mark.spark


@pytest.fixture(scope="module")
def orders(spark):
    rows = [
        ("Paris", "First", 1.0, 1),
        ("Lyon", "Standard", 2.5, 0),
        ("Paris", "Standard", 3.0, 0),
        ("Nice", "Second", 0.5, 1),
        ("Lyon", "First", 4.0, 1),
        ("Nice", "Standard", 1.5, 0),
        ("Paris", "Second", 2.0, 1),
        ("Lyon", "Second", 3.5, 0),
    ] * 4
    return spark.createDataFrame(rows, ["city", "mode", "price", "label"]).cache()


@pytest.fixture(scope="module")
def pipeline_model(orders):
    from pyspark.ml import Pipeline
    from pyspark.ml.classification import LogisticRegression
    from pyspark.ml.feature import OneHotEncoder, StringIndexer, VectorAssembler

    return Pipeline(
        stages=[
            StringIndexer(inputCols=["city", "mode"], outputCols=["city_idx", "mode_idx"]),
            OneHotEncoder(inputCols=["city_idx", "mode_idx"], outputCols=["city_vec", "mode_vec"]),
            VectorAssembler(inputCols=["city_vec", "mode_vec", "price"], outputCol="featuresVec"),
            LogisticRegression(featuresCol="featuresVec", maxIter=10, regParam=0.01),
        ]
    ).fit(orders)


@pytest.fixture(scope="module")
def forest(orders, pipeline_model):
    from pyspark.ml.classification import RandomForestClassifier

    features = pipeline_model.transform(orders).select("featuresVec", "label")
    return RandomForestClassifier(featuresCol="featuresVec", numTrees=3, maxDepth=3, seed=7).fit(
        features
    )


def predictions(model, df):
    """Every output row as plain Python values, sorted: equal lists = identical predictions."""
    from pyspark.ml.functions import vector_to_array

    out = model.transform(df)
    cols = [c for c in df.columns if c != "featuresVec"]
    rows = out.select(
        *cols,
        "prediction",
        vector_to_array("probability").alias("p"),
        vector_to_array("rawPrediction").alias("raw"),
    ).collect()
    return sorted(tuple(r) for r in rows)


def test_round_trip_predicts_identically_and_links_the_dataset(
    tracker, spark, orders, pipeline_model
):
    with tracker.start_run() as run:
        dataset = tracker.log_dataset(orders, "training")
        version = tracker.log_spark_model(pipeline_model)
    assert version.run_id == run.run_id and version.name == "model"
    assert version.model_class == "pyspark.ml.pipeline.PipelineModel"
    assert version.spark_version == spark.version
    assert version.dataset_id == dataset.dataset_id
    assert version.input_columns == ("city", "mode", "price")
    schema = json.loads(version.input_schema)
    assert [f["name"] for f in schema["fields"]] == ["city", "mode", "price"]
    assert [f["type"] for f in schema["fields"]] == ["string", "string", "double"]

    # "which exact data trained this model" is one join
    _, rows = tracker.sql(
        "SELECT d.table_name, d.fingerprint, d.row_count, m.sha256, m.size_bytes, "
        "m.chunk_count, m.archive_format FROM sqltrack.models m "
        "JOIN sqltrack.datasets d ON d.dataset_id = m.dataset_id WHERE m.run_id = ?",
        (run.run_id,),
    )
    assert rows == [
        (
            dataset.table_name,
            dataset.fingerprint,
            32,
            version.sha256,
            version.size_bytes,
            1,
            "tar.gz",
        )
    ]
    # the stored chunks are the archive the sha256 names
    _, chunks = tracker.sql(
        "SELECT data FROM sqltrack.model_chunks WHERE model_id = ? ORDER BY chunk_index",
        (version.model_id,),
    )
    blob = b"".join(bytes(c[0]) for c in chunks)
    assert len(blob) == version.size_bytes
    assert hashlib.sha256(blob).hexdigest() == version.sha256

    loaded = tracker.load_spark_model(run.run_id)
    assert type(loaded).__name__ == "PipelineModel"
    assert [type(s).__name__ for s in loaded.stages] == [
        type(s).__name__ for s in pipeline_model.stages
    ]
    expected = predictions(pipeline_model, orders)
    assert predictions(loaded, orders) == expected
    reloaded_data = tracker.load_dataset(spark, run.run_id, "training")
    assert predictions(loaded, reloaded_data) == expected


def test_a_single_model_in_several_chunks(tracker, orders, pipeline_model, forest, monkeypatch):
    monkeypatch.setattr(artifacts, "CHUNK_SIZE", 1024)
    features = pipeline_model.transform(orders).select("featuresVec", "label")
    with tracker.start_run() as run:
        version = tracker.log_spark_model(forest, name="forest")
    assert version.model_class == "pyspark.ml.classification.RandomForestClassificationModel"
    assert version.dataset_id is None and version.input_schema is None
    assert version.input_columns == ("featuresVec",)
    _, rows = tracker.sql(
        "SELECT chunk_count FROM sqltrack.models WHERE model_id = ?", (version.model_id,)
    )
    assert rows[0][0] == -(-version.size_bytes // 1024) > 1
    loaded = tracker.load_spark_model(run.run_id, "forest")
    assert loaded.getNumTrees == 3
    assert predictions(loaded, features) == predictions(forest, features)


def test_the_hash_is_verified_on_load(tracker, forest):
    with tracker.start_run() as run:
        version = tracker.log_spark_model(forest)
    with tracker.backend.session() as s:
        s.execute(
            "UPDATE sqltrack.model_chunks SET data = ? WHERE model_id = ? AND chunk_index = 0",
            (b"not a model", version.model_id),
        )
    with pytest.raises(sqltrack.IntegrityError, match="sha256 .* does not match"):
        tracker.load_spark_model(run.run_id)


def test_names_are_stored_once_per_run(tracker, store_uri, capsys, forest, pipeline_model):
    with tracker.start_run() as run:
        tracker.log_spark_model(forest)
        with pytest.raises(sqltrack.ConflictError, match="already stored a model named 'model'"):
            tracker.log_spark_model(pipeline_model)
        tracker.log_spark_model(pipeline_model, name="pipeline")
    _, rows = tracker.sql(
        "SELECT name, model_class FROM sqltrack.models WHERE run_id = ? ORDER BY name",
        (run.run_id,),
    )
    assert rows == [
        ("model", "pyspark.ml.classification.RandomForestClassificationModel"),
        ("pipeline", "pyspark.ml.pipeline.PipelineModel"),
    ]
    assert main(["models", run.run_id, "--uri", store_uri, "--format", "json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(m["name"], m["input_columns"]) for m in listed] == [
        ("model", "featuresVec"),
        ("pipeline", "city, mode, price"),
    ]
    with pytest.raises(sqltrack.NotFoundError, match="no stored model 'other' .*model, pipeline"):
        tracker.load_spark_model(run.run_id, "other")
    with pytest.raises(sqltrack.NotFoundError, match="does not exist"):
        tracker.load_spark_model("0" * 32)


def test_dataset_link_follows_the_runs_datasets(tracker, orders, forest):
    small = orders.limit(4)
    with tracker.start_run():
        with pytest.raises(sqltrack.NotFoundError, match="has no dataset 'training'"):
            tracker.log_spark_model(forest, dataset="training")
        first = tracker.log_dataset(small, "first")
        second = tracker.log_dataset(orders, "second")
        unlinked = tracker.log_spark_model(forest, name="unlinked")  # two, none 'training'
        linked = tracker.log_spark_model(forest, name="linked", dataset="first")
    assert unlinked.dataset_id is None
    assert linked.dataset_id == first.dataset_id != second.dataset_id
    assert linked.input_schema is None  # 'first' has no featuresVec column


def test_wrong_inputs_fail_before_any_spark_work(tracker, pipeline_model):
    from pyspark.ml import Pipeline
    from pyspark.ml.feature import StringIndexer

    with tracker.start_run() as run:
        with pytest.raises(sqltrack.InvalidInputError, match="StringIndexer .* unfitted"):
            tracker.log_spark_model(StringIndexer(inputCol="city"))
        with pytest.raises(sqltrack.InvalidInputError, match="Pipeline .* unfitted"):
            tracker.log_spark_model(Pipeline(stages=[]))
        with pytest.raises(sqltrack.InvalidInputError, match="not builtins.str"):
            tracker.log_spark_model("model.bin")
        with pytest.raises(sqltrack.InvalidInputError, match="model name"):
            tracker.log_spark_model(pipeline_model, name="../escape")
    with pytest.raises(sqltrack.ConflictError, match="not RUNNING"):
        tracker.log_spark_model(pipeline_model, run_id=run.run_id)
    _, rows = tracker.sql("SELECT count(*) FROM sqltrack.models")
    assert rows == [(0,)]


def test_data_that_trained_a_stored_model_cannot_be_overwritten(tracker, orders, forest):
    with tracker.start_run() as run:
        first = tracker.log_dataset(orders, "training")
        tracker.log_spark_model(forest)
        with pytest.raises(sqltrack.ConflictError, match="trained the stored model"):
            tracker.log_dataset(orders.limit(3), "training", mode="overwrite")
    (stored,) = tracker.list_datasets(run.run_id)
    assert (stored.dataset_id, stored.row_count, stored.fingerprint) == (
        first.dataset_id,
        first.row_count,
        first.fingerprint,
    )
