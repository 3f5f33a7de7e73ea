"""Spark ML governance helpers on both backends with the real local Spark: pipeline stages,
feature transformations, model params and evaluator metrics (checked against Spark's own
evaluators and against a confusion matrix counted by hand)."""

from __future__ import annotations

import math

import pytest

import sqltrack
from sqltrack import evaluation, governance

pytestmark = pytest.mark.spark


# -- fixtures: small fixed data and pipelines -------------------------------------------------


@pytest.fixture(scope="module")
def orders(spark):
    rows = [
        ("Paris", "First", "Consumer", 1.0, 2, 1),
        ("Lyon", "Standard", "Corporate", 2.5, 4, 0),
        ("Paris", "Standard", "Consumer", 3.0, 1, 0),
        ("Nice", "Second", "Home Office", 0.5, 3, 1),
        ("Lyon", "First", "Consumer", 4.0, 5, 1),
        ("Nice", "Standard", "Corporate", 1.5, 2, 0),
    ] * 5
    return spark.createDataFrame(
        rows, ["CITY_destination", "mode", "segment", "price", "quantity", "label"]
    ).cache()


def _pipeline():
    from pyspark.ml import Pipeline
    from pyspark.ml.classification import LogisticRegression
    from pyspark.ml.feature import OneHotEncoder, StringIndexer, VectorAssembler

    return Pipeline(
        stages=[
            StringIndexer(
                inputCols=["CITY_destination", "mode"], outputCols=["city_idx", "mode_idx"]
            ),
            OneHotEncoder(inputCols=["city_idx", "mode_idx"], outputCols=["city_vec", "mode_vec"]),
            VectorAssembler(inputCols=["city_vec", "mode_vec", "price"], outputCol="featuresVec"),
            LogisticRegression(featuresCol="featuresVec", labelCol="label", maxIter=5),
        ]
    )


@pytest.fixture(scope="module")
def pipeline(spark):
    return _pipeline()


@pytest.fixture(scope="module")
def pipeline_model(pipeline, orders):
    return pipeline.fit(orders)


def _rows(tracker, sql, *params):
    return tracker.sql(sql, params)[1]


# -- pipeline stages --------------------------------------------------------------------------


def test_pipeline_stages_of_a_pipeline(tracker, pipeline):
    with tracker.start_run() as run:
        records = tracker.log_pipeline_stages(pipeline)
        assert tracker.log_pipeline_stages(pipeline) == records  # the same again: a no-op
    assert [r.stage_class for r in records] == [
        "StringIndexer",
        "OneHotEncoder",
        "VectorAssembler",
        "LogisticRegression",
    ]
    rows = _rows(
        tracker,
        "SELECT stage_index, stage_path, stage_class, class_path, stage_uid, stage_kind, "
        "pipeline_uid FROM sqltrack.pipeline_stages WHERE run_id = ? ORDER BY stage_index",
        run.run_id,
    )
    stages = pipeline.getStages()
    assert rows == [
        (
            0,
            "0",
            "StringIndexer",
            "pyspark.ml.feature.StringIndexer",
            stages[0].uid,
            "estimator",
            pipeline.uid,
        ),
        (
            1,
            "1",
            "OneHotEncoder",
            "pyspark.ml.feature.OneHotEncoder",
            stages[1].uid,
            "estimator",
            pipeline.uid,
        ),
        (
            2,
            "2",
            "VectorAssembler",
            "pyspark.ml.feature.VectorAssembler",
            stages[2].uid,
            "transformer",
            pipeline.uid,
        ),
        (
            3,
            "3",
            "LogisticRegression",
            "pyspark.ml.classification.LogisticRegression",
            stages[3].uid,
            "estimator",
            pipeline.uid,
        ),
    ]
    params = tracker.get_run(run.run_id).params
    assert {k: v for k, v in params.items() if k.startswith("Stage")} == {
        "Stage0": "StringIndexer",
        "Stage1": "OneHotEncoder",
        "Stage2": "VectorAssembler",
        "Stage3": "LogisticRegression",
    }


def test_pipeline_stages_of_a_fitted_nested_pipeline(tracker, spark, orders):
    from pyspark.ml import Pipeline
    from pyspark.ml.classification import DecisionTreeClassifier
    from pyspark.ml.feature import StringIndexer, VectorAssembler

    inner = Pipeline(
        stages=[
            StringIndexer(inputCol="mode", outputCol="mode_idx"),
            VectorAssembler(inputCols=["mode_idx", "price"], outputCol="features"),
        ]
    )
    outer = Pipeline(
        stages=[
            StringIndexer(inputCol="segment", outputCol="seg_idx"),
            inner,
            DecisionTreeClassifier(maxDepth=2),
        ]
    )
    model = outer.fit(orders)
    with tracker.start_run() as run:
        tracker.log_pipeline_stages(model)
    rows = _rows(
        tracker,
        "SELECT stage_index, stage_path, stage_class, stage_kind FROM sqltrack.pipeline_stages "
        "WHERE run_id = ? ORDER BY stage_index",
        run.run_id,
    )
    assert rows == [
        (0, "0", "StringIndexerModel", "model"),
        (1, "1.0", "StringIndexerModel", "model"),
        (2, "1.1", "VectorAssembler", "transformer"),
        (3, "2", "DecisionTreeClassificationModel", "model"),
    ]
    params = tracker.get_run(run.run_id).params
    assert params["Stage1.0"] == "StringIndexerModel" and params["Stage2"].startswith("Decision")
    # the fitted pipeline's params and chains, with the nested stages' dotted paths
    with tracker.start_run() as run:
        tracker.log_model_params(model)
        chains = tracker.log_feature_transformations(model)
    params = tracker.get_run(run.run_id).params
    assert params["Stage1.0.StringIndexerModel.inputCol"] == "mode"
    assert params["Stage1.1.VectorAssembler.inputCols"] == '["mode_idx", "price"]'
    assert params["Stage2.DecisionTreeClassificationModel.maxDepth"] == "2"
    assert chains == {
        "segment": "segment -> StringIndexerModel -> seg_idx",
        "mode": "mode -> StringIndexerModel -> VectorAssembler -> features",
        "price": "price -> VectorAssembler -> features",
    }


def test_another_pipeline_in_the_same_run_is_a_conflict(tracker, pipeline):
    from pyspark.ml import Pipeline
    from pyspark.ml.feature import VectorAssembler

    other = Pipeline(stages=[VectorAssembler(inputCols=["price"], outputCol="f")])
    with tracker.start_run() as run:
        tracker.log_pipeline_stages(pipeline)
        with pytest.raises(sqltrack.ConflictError, match="already has pipeline stages"):
            tracker.log_pipeline_stages(other)
    count = _rows(
        tracker, "SELECT count(*) FROM sqltrack.pipeline_stages WHERE run_id = ?", run.run_id
    )
    assert count == [(4,)]


def test_pipeline_helpers_reject_what_is_not_a_pipeline(tracker, spark):
    from pyspark.ml import Pipeline
    from pyspark.ml.feature import VectorAssembler

    with tracker.start_run():
        with pytest.raises(sqltrack.InvalidInputError, match="not a single VectorAssembler"):
            tracker.log_pipeline_stages(VectorAssembler())
        with pytest.raises(sqltrack.InvalidInputError, match="Pipeline or PipelineModel, not"):
            tracker.log_feature_transformations({"stages": []})
        with pytest.raises(sqltrack.InvalidInputError, match="has no stages"):
            tracker.log_pipeline_stages(Pipeline())


# -- feature transformations -----------------------------------------------------------------


def test_feature_transformations_of_the_issue_pipeline(tracker, pipeline):
    with tracker.start_run() as run:
        chains = tracker.log_feature_transformations(pipeline)
        assert tracker.log_feature_transformations(pipeline) == chains  # a no-op
    assert chains == {
        "CITY_destination": "CITY_destination -> StringIndexer -> OneHotEncoder -> "
        "VectorAssembler -> featuresVec",
        "mode": "mode -> StringIndexer -> OneHotEncoder -> VectorAssembler -> featuresVec",
        "price": "price -> VectorAssembler -> featuresVec",
    }  # the LogisticRegression stage (label, featuresVec) is not part of any chain
    stages = pipeline.getStages()
    rows = _rows(
        tracker,
        "SELECT source_column, branch, step, stage_class, stage_uid, input_column, output_column "
        "FROM sqltrack.feature_transformations WHERE run_id = ? "
        "ORDER BY source_column, branch, step",
        run.run_id,
    )
    si, ohe, va = (s.uid for s in stages[:3])
    assert rows == [
        ("CITY_destination", 0, 1, "StringIndexer", si, "CITY_destination", "city_idx"),
        ("CITY_destination", 0, 2, "OneHotEncoder", ohe, "city_idx", "city_vec"),
        ("CITY_destination", 0, 3, "VectorAssembler", va, "city_vec", "featuresVec"),
        ("mode", 0, 1, "StringIndexer", si, "mode", "mode_idx"),
        ("mode", 0, 2, "OneHotEncoder", ohe, "mode_idx", "mode_vec"),
        ("mode", 0, 3, "VectorAssembler", va, "mode_vec", "featuresVec"),
        ("price", 0, 1, "VectorAssembler", va, "price", "featuresVec"),
    ]
    params = tracker.get_run(run.run_id).params
    assert params["Column- CITY_destination"] == chains["CITY_destination"]
    assert params["Column- price"] == "price -> VectorAssembler -> featuresVec"


def test_feature_chains_branch_and_continue_through_single_column_stages(spark):
    from pyspark.ml import Pipeline
    from pyspark.ml.classification import RandomForestClassifier
    from pyspark.ml.feature import (
        Bucketizer,
        ChiSqSelector,
        IndexToString,
        OneHotEncoder,
        StandardScaler,
        StringIndexer,
        VectorAssembler,
    )

    p = Pipeline(
        stages=[
            StringIndexer(inputCol="segment", outputCol="seg_idx"),
            OneHotEncoder(inputCol="seg_idx", outputCol="seg_vec"),
            Bucketizer(splits=[0, 2, 10], inputCol="quantity", outputCol="qty_bucket"),
            # quantity feeds two stages; seg_idx feeds two stages too
            VectorAssembler(
                inputCols=["seg_vec", "seg_idx", "qty_bucket", "quantity"], outputCol="raw"
            ),
            StandardScaler(inputCol="raw", outputCol="scaled"),
            ChiSqSelector(
                numTopFeatures=2, featuresCol="scaled", outputCol="selected", labelCol="label"
            ),
            RandomForestClassifier(featuresCol="selected", labelCol="label", numTrees=2),
            # after the model stage: its outputs are no source columns
            IndexToString(inputCol="prediction", outputCol="predicted_segment"),
        ]
    )
    chains = governance._summaries(governance.feature_chains(p))
    tail = "VectorAssembler -> StandardScaler -> ChiSqSelector -> selected"
    assert chains == {
        "segment": f"segment -> StringIndexer -> OneHotEncoder -> {tail}; "
        f"segment -> StringIndexer -> {tail}",
        "quantity": f"quantity -> Bucketizer -> {tail}; quantity -> {tail}",
    }
    steps = [s for s in governance.feature_chains(p) if s.source_column == "quantity"]
    assert [(s.branch, s.step, s.input_column, s.output_column) for s in steps] == [
        (0, 1, "quantity", "qty_bucket"),
        (0, 2, "qty_bucket", "raw"),
        (0, 3, "raw", "scaled"),
        (0, 4, "scaled", "selected"),
        (1, 1, "quantity", "raw"),
        (1, 2, "raw", "scaled"),
        (1, 3, "scaled", "selected"),
    ]


def test_feature_key_of_an_unusual_column_name(tracker, spark):
    from pyspark.ml import Pipeline
    from pyspark.ml.feature import VectorAssembler

    p = Pipeline(stages=[VectorAssembler(inputCols=["price ($)", "qty"], outputCol="f")])
    with tracker.start_run() as run:
        chains = tracker.log_feature_transformations(p)
    assert chains["price ($)"] == "price ($) -> VectorAssembler -> f"
    params = tracker.get_run(run.run_id).params
    assert params["Column- price ___"] == "price ($) -> VectorAssembler -> f"
    rows = _rows(
        tracker,
        "SELECT DISTINCT source_column FROM sqltrack.feature_transformations WHERE run_id = ? "
        "ORDER BY source_column",
        run.run_id,
    )
    assert rows == [("price ($)",), ("qty",)]


# -- model params -----------------------------------------------------------------------------


def test_model_params_of_a_single_model(tracker, pipeline_model):
    lr = pipeline_model.stages[-1]
    with tracker.start_run() as run:
        logged = tracker.log_model_params(lr)
    prefix = "LogisticRegressionModel."
    expected = {prefix + p.name: v for p, v in lr.extractParamMap().items()}
    params = tracker.get_run(run.run_id).params
    assert params["model_class"] == "pyspark.ml.classification.LogisticRegressionModel"
    assert set(params) == set(expected) | {"model_class"} == set(logged)
    assert params[prefix + "maxIter"] == "5" and params[prefix + "regParam"] == "0.0"
    assert params[prefix + "featuresCol"] == "featuresVec"
    assert params[prefix + "fitIntercept"] == "True"
    for name, value in expected.items():
        assert params[name] == governance.render_param(value)


def test_model_params_of_a_bare_model_do_not_collide_with_user_params(tracker, pipeline_model):
    """A user's ``seed``/``maxIter`` next to a bare model's own params: no ConflictError,
    the run ends FINISHED (it ended FAILED when the model's keys were unprefixed)."""
    lr = pipeline_model.stages[-1]
    with tracker.start_run() as run:
        tracker.log_params({"maxIter": 42, "threshold": "mine"})
        tracker.log_model_params(lr)
    got = tracker.get_run(run.run_id)
    assert got.info.status == "FINISHED"
    assert got.params["maxIter"] == "42" and got.params["threshold"] == "mine"
    assert got.params["LogisticRegressionModel.maxIter"] == "5"


def test_model_params_of_a_pipeline_model_are_stage_prefixed(tracker, pipeline_model):
    with tracker.start_run() as run:
        tracker.log_model_params(pipeline_model)
    params = tracker.get_run(run.run_id).params
    assert params["model_class"] == "pyspark.ml.pipeline.PipelineModel"
    assert params["Stage0.StringIndexerModel.inputCols"] == '["CITY_destination", "mode"]'
    assert params["Stage1.OneHotEncoderModel.dropLast"] == "True"
    assert params["Stage2.VectorAssembler.outputCol"] == "featuresVec"
    assert params["Stage3.LogisticRegressionModel.maxIter"] == "5"
    every = sum(len(s.extractParamMap()) for s in pipeline_model.stages)
    assert len(params) == every + 1


def test_param_values_render_readably(spark):
    from pyspark.ml.linalg import DenseMatrix, Vectors

    assert governance.render_param(["a", "b"]) == '["a", "b"]'
    assert governance.render_param([0.0, 0.5, float("inf")]) == "[0.0, 0.5, Infinity]"
    assert governance.render_param(Vectors.dense([1.0, 2.5])) == "[1.0, 2.5]"
    assert (
        governance.render_param(Vectors.sparse(4, {1: 3.0}))
        == '{"size": 4, "indices": [1], "values": [3.0]}'
    )
    assert governance.render_param(DenseMatrix(2, 2, [1.0, 2.0, 3.0, 4.0])) == (
        "[[1.0, 3.0], [2.0, 4.0]]"
    )
    assert governance.render_param(0.1) == "0.1" and governance.render_param(True) == "True"
    assert governance.render_param(1e-06) == "1e-06" and governance.render_param(7) == "7"


def test_model_params_refuse_unfitted_and_foreign_objects(tracker, pipeline):
    from pyspark.ml.classification import LogisticRegression

    with tracker.start_run() as run:
        with pytest.raises(sqltrack.InvalidInputError, match="LogisticRegression .* unfitted"):
            tracker.log_model_params(LogisticRegression())
        with pytest.raises(sqltrack.InvalidInputError, match="Pipeline .* unfitted"):
            tracker.log_model_params(pipeline)
        with pytest.raises(sqltrack.InvalidInputError, match="not builtins.dict"):
            tracker.log_model_params({"maxIter": 5})
    assert tracker.get_run(run.run_id).params == {}


# -- evaluator metrics ------------------------------------------------------------------------

# 5 positives and 7 negatives with distinct scores; at threshold 0.5:
# TP = 4 (0.9 0.8 0.7 0.6), FN = 1 (0.3), FP = 2 (0.75 0.55), TN = 5. FP != FN, so a swap of
# the two (MLManager's bug) changes precision, recall, FPR, ...
POSITIVES = (0.9, 0.8, 0.7, 0.6, 0.3)
NEGATIVES = (0.75, 0.55, 0.4, 0.35, 0.2, 0.1, 0.05)
TP, FN, FP, TN = 4, 1, 2, 5


@pytest.fixture(scope="module")
def binary_predictions(spark):
    from pyspark.ml.linalg import Vectors

    rows = [(1, float(p > 0.5), Vectors.dense([1 - p, p])) for p in POSITIVES] + [
        (0, float(p > 0.5), Vectors.dense([1 - p, p])) for p in NEGATIVES
    ]
    return spark.createDataFrame(rows, ["late", "prediction", "probability"]).cache()


def _hand_binary() -> dict[str, float]:
    # Area under ROC = share of (positive, negative) pairs ranked right: 7+7+6+6+3 of 35.
    auc = (7 + 7 + 6 + 6 + 3) / 35
    # Area under PR, Spark's way: trapezoids over (recall, precision) from (0, 1), taking
    # every distinct score as a threshold (widths of 0.2 where recall moves).
    pr = (
        0.2 * 1
        + 0.2 * 1
        + 0.2 * (2 / 3 + 3 / 4) / 2
        + 0.2 * (3 / 4 + 4 / 5) / 2
        + 0.2 * (1 / 2 + 5 / 9) / 2
    )
    precision, recall = TP / (TP + FP), TP / (TP + FN)
    return {
        "areaUnderROC": auc,
        "areaUnderPR": pr,
        "accuracy": 9 / 12,
        "precision": 4 / 6,
        "recall": 4 / 5,
        "F1": 2 * precision * recall / (precision + recall),
        "TPR": 4 / 5,
        "FPR": 2 / 7,
        "TNR": 5 / 7,
        "PPV": 4 / 6,
        "NPV": 5 / 6,
        "FDR": 2 / 6,
        "FNR": 1 / 5,
        "MCC": (4 * 5 - 2 * 1) / math.sqrt(6 * 5 * 7 * 6),
    }


def _spark_binary(df) -> dict[str, float]:
    from pyspark.ml.evaluation import (
        BinaryClassificationEvaluator,
        MulticlassClassificationEvaluator,
    )

    def mc(metric, label=1.0):
        return MulticlassClassificationEvaluator(
            labelCol="late", metricName=metric, metricLabel=label
        ).evaluate(df)

    def bc(metric):
        return BinaryClassificationEvaluator(
            labelCol="late", rawPredictionCol="probability", metricName=metric
        ).evaluate(df)

    return {
        "areaUnderROC": bc("areaUnderROC"),
        "areaUnderPR": bc("areaUnderPR"),
        "accuracy": mc("accuracy"),
        "precision": mc("precisionByLabel"),
        "recall": mc("recallByLabel"),
        "F1": mc("fMeasureByLabel"),
        "TPR": mc("truePositiveRateByLabel"),
        "FPR": mc("falsePositiveRateByLabel"),
        "TNR": mc("truePositiveRateByLabel", 0.0),
        "PPV": mc("precisionByLabel"),
        "NPV": mc("precisionByLabel", 0.0),
        "FDR": 1 - mc("precisionByLabel"),
        "FNR": 1 - mc("recallByLabel"),
    }


def test_binary_metrics_match_hand_counts_and_spark(tracker, binary_predictions):
    with tracker.start_run() as run:
        metrics = tracker.log_evaluator_metrics(binary_predictions, label_col="late")
    assert list(metrics) == list(evaluation.BINARY_METRICS)
    hand = _hand_binary()
    for name, value in hand.items():
        assert metrics[name] == pytest.approx(value, rel=1e-12, abs=1e-12), name
    for name, value in _spark_binary(binary_predictions).items():
        assert metrics[name] == pytest.approx(value, rel=1e-12, abs=1e-12), name
    assert dict(tracker.get_run(run.run_id).metrics) == metrics


def test_binary_auc_from_raw_prediction_when_there_is_no_probability(tracker, binary_predictions):
    from pyspark.ml.functions import vector_to_array
    from pyspark.sql import functions as F

    raw = binary_predictions.select(
        "late",
        "prediction",
        (vector_to_array("probability")[1] - F.lit(0.5)).alias("rawPrediction"),
    )
    with tracker.start_run():
        metrics = tracker.log_evaluator_metrics(raw, label_col="late")
    assert metrics["areaUnderROC"] == pytest.approx(29 / 35, rel=1e-12)
    assert metrics["MCC"] == pytest.approx(18 / math.sqrt(1260), rel=1e-12)


def test_multiclass_metrics_match_hand_counts_and_spark(tracker, spark):
    from pyspark.ml.evaluation import MulticlassClassificationEvaluator
    from pyspark.ml.linalg import Vectors

    # (label, prediction, probability of each class)
    data = [
        (0.0, 0.0, [0.7, 0.2, 0.1]),
        (0.0, 0.0, [0.6, 0.3, 0.1]),
        (0.0, 1.0, [0.3, 0.5, 0.2]),
        (1.0, 1.0, [0.1, 0.8, 0.1]),
        (1.0, 2.0, [0.2, 0.3, 0.5]),
        (2.0, 2.0, [0.1, 0.1, 0.8]),
        (2.0, 2.0, [0.2, 0.2, 0.6]),
        (2.0, 0.0, [0.5, 0.2, 0.3]),
    ]
    df = spark.createDataFrame(
        [(y, p, Vectors.dense(pr)) for y, p, pr in data], ["label", "prediction", "probability"]
    )
    with tracker.start_run() as run:
        metrics = tracker.log_evaluator_metrics(df, kind="multiclass")
    assert list(metrics) == list(evaluation.MULTICLASS_METRICS)
    # By hand: class 0: tp 2, predicted 3, actual 3; class 1: tp 1, predicted 2, actual 2;
    # class 2: tp 2, predicted 3, actual 3.
    prec = {0: 2 / 3, 1: 1 / 2, 2: 2 / 3}
    rec = {0: 2 / 3, 1: 1 / 2, 2: 2 / 3}
    w = {0: 3 / 8, 1: 2 / 8, 2: 3 / 8}
    f1 = {c: 2 * prec[c] * rec[c] / (prec[c] + rec[c]) for c in prec}
    hand = {
        "accuracy": 5 / 8,
        "weightedPrecision": sum(prec[c] * w[c] for c in w),
        "weightedRecall": sum(rec[c] * w[c] for c in w),
        "f1": sum(f1[c] * w[c] for c in w),
        "logLoss": -sum(math.log(pr[int(y)]) for y, _, pr in data) / len(data),
    }
    for name, value in hand.items():
        assert metrics[name] == pytest.approx(value, rel=1e-12), name
        spark_value = MulticlassClassificationEvaluator(metricName=name).evaluate(df)
        assert metrics[name] == pytest.approx(spark_value, rel=1e-12), name
    assert dict(tracker.get_run(run.run_id).metrics) == metrics


def test_regression_metrics_match_hand_formulas_and_spark(tracker, spark):
    from pyspark.ml.evaluation import RegressionEvaluator

    data = [(3.0, 2.5), (-0.5, 0.0), (2.0, 2.0), (7.0, 8.0), (4.5, 4.0), (1.0, 1.5)]
    df = spark.createDataFrame(data, ["days_late", "prediction"])
    with tracker.start_run() as run:
        metrics = tracker.log_evaluator_metrics(df, label_col="days_late", kind="regression")
    assert list(metrics) == list(evaluation.REGRESSION_METRICS)
    n = len(data)
    mean_y = sum(y for y, _ in data) / n
    sse = sum((y - p) ** 2 for y, p in data)
    hand = {
        "mse": sse / n,
        "rmse": math.sqrt(sse / n),
        "mae": sum(abs(y - p) for y, p in data) / n,
        "r2": 1 - sse / sum((y - mean_y) ** 2 for y, _ in data),
        "var": sum((p - mean_y) ** 2 for _, p in data) / n,
    }
    for name, value in hand.items():
        assert metrics[name] == pytest.approx(value, rel=1e-12), name
        spark_value = RegressionEvaluator(labelCol="days_late", metricName=name).evaluate(df)
        assert metrics[name] == pytest.approx(spark_value, rel=1e-12), name
    assert dict(tracker.get_run(run.run_id).metrics) == metrics


def test_evaluator_metrics_fail_clearly_on_wrong_inputs(tracker, spark, binary_predictions):
    three = spark.createDataFrame([(0, 0.0, 0.1), (2, 2.0, 0.9)], ["label", "prediction", "p"])
    with tracker.start_run() as run:
        with pytest.raises(sqltrack.InvalidInputError, match="label_col='label' is not a column"):
            tracker.log_evaluator_metrics(binary_predictions)
        with pytest.raises(sqltrack.InvalidInputError, match="prediction_col='pred' is not"):
            tracker.log_evaluator_metrics(binary_predictions, "late", prediction_col="pred")
        with pytest.raises(sqltrack.InvalidInputError, match="kind='ranking' is not one of"):
            tracker.log_evaluator_metrics(binary_predictions, "late", kind="ranking")
        with pytest.raises(sqltrack.InvalidInputError, match="not pandas"):
            tracker.log_evaluator_metrics(binary_predictions.toPandas(), "late")
        with pytest.raises(sqltrack.InvalidInputError, match="needs a score column"):
            tracker.log_evaluator_metrics(three.drop("p"), probability_col="p2")
        with pytest.raises(sqltrack.InvalidInputError, match="'late' is string, not a vector"):
            tracker.log_evaluator_metrics(
                binary_predictions.withColumn("late", binary_predictions["late"].cast("string")),
                "prediction",
                probability_col="late",
            )
        with pytest.raises(sqltrack.InvalidInputError, match="use kind='multiclass'"):
            tracker.log_evaluator_metrics(three, probability_col="p")
        with pytest.raises(sqltrack.InvalidInputError, match="not numeric"):
            tracker.log_evaluator_metrics(
                spark.createDataFrame([("a", 0.0)], ["label", "prediction"]), kind="regression"
            )
    assert tracker.get_run(run.run_id).metrics == {}
    with pytest.raises(sqltrack.ConflictError, match="not RUNNING"):
        tracker.log_evaluator_metrics(binary_predictions, "late", run_id=run.run_id)


def test_fluent_functions_forward_to_the_helpers(store_uri, pipeline):
    sqltrack.set_tracking_uri(store_uri)
    try:
        with sqltrack.start_run() as run:
            sqltrack.log_pipeline_stages(pipeline)
            sqltrack.log_feature_transformations(pipeline)
        params = sqltrack.get_run(run.run_id).params
    finally:
        sqltrack.set_tracking_uri(None)
    assert params["Stage3"] == "LogisticRegression" and "Column- mode" in params
