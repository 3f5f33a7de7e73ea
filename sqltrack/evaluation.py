"""``log_evaluator_metrics``: the binary, multiclass or regression metric set of a
predictions DataFrame, computed in one aggregation per kind (a confusion matrix for
classifiers) plus Spark's own evaluators for the areas under the curves and the log loss.

Spark is imported inside the functions: ``import sqltrack`` never loads pyspark. The run
is checked RUNNING before any Spark job, and the store is released while Spark works.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from sqltrack.errors import InvalidInputError
from sqltrack.governance import _class_path

if TYPE_CHECKING:
    from sqltrack.tracking import Tracker

__all__ = [
    "BINARY_METRICS",
    "KINDS",
    "MULTICLASS_METRICS",
    "REGRESSION_METRICS",
    "binary_metrics_from_counts",
    "log_evaluator_metrics",
    "multiclass_metrics_from_counts",
]

BINARY_METRICS = (
    "areaUnderROC",
    "areaUnderPR",
    "accuracy",
    "precision",
    "recall",
    "F1",
    "TPR",
    "FPR",
    "TNR",
    "PPV",
    "NPV",
    "FDR",
    "FNR",
    "MCC",
)
MULTICLASS_METRICS = ("accuracy", "f1", "weightedPrecision", "weightedRecall", "logLoss")
REGRESSION_METRICS = ("rmse", "mse", "mae", "r2", "var")
KINDS = ("binary", "multiclass", "regression")


# -- evaluator metrics ----------------------------------------------------------------------


def _require_dataframe(obj: object, helper: str) -> None:
    from pyspark.sql import DataFrame

    if not isinstance(obj, DataFrame):
        raise InvalidInputError(
            f"{helper} needs the Spark DataFrame a model's transform() returned, not "
            f"{_class_path(obj)}"
        )


def _col(name: str) -> Any:
    from pyspark.sql import functions as F

    return F.col("`" + name.replace("`", "``") + "`")


def _require_columns(df: Any, helper: str, **named: str) -> None:
    present = set(df.columns)
    for arg, column in named.items():
        if column not in present:
            raise InvalidInputError(
                f"{helper}: {arg}={column!r} is not a column of the DataFrame (columns: "
                f"{', '.join(df.columns)}); pass {arg}= the right name"
            )


def _require_numeric(df: Any, helper: str, **named: str) -> None:
    from pyspark.sql.types import NumericType

    for arg, column in named.items():
        dtype = df.schema[column].dataType
        if not isinstance(dtype, NumericType):
            raise InvalidInputError(
                f"{helper}: column {column!r} ({arg}) is {dtype.simpleString()}, not numeric; "
                "index string labels first (StringIndexer)"
            )


def _require_score(df: Any, helper: str, column: str, *, vector_only: bool) -> None:
    from pyspark.ml.linalg import VectorUDT
    from pyspark.sql.types import NumericType

    dtype = df.schema[column].dataType
    if isinstance(dtype, VectorUDT) or (isinstance(dtype, NumericType) and not vector_only):
        return
    wanted = "a vector" if vector_only else "a vector or a number"
    raise InvalidInputError(
        f"{helper}: score column {column!r} is {dtype.simpleString()}, not {wanted}; pass "
        "probability_col= the probability (or raw prediction) column of the model's output"
    )


def _ratio(num: float, den: float) -> float:
    """``num / den``, 0.0 when the denominator is 0 (Spark's convention for precision/recall)."""
    return num / den if den else 0.0


def binary_metrics_from_counts(tp: int, fp: int, tn: int, fn: int) -> dict[str, float]:
    """The threshold metrics of a binary confusion matrix (positive class = 1)."""
    n = tp + fp + tn + fn
    precision = _ratio(tp, tp + fp)
    recall = _ratio(tp, tp + fn)
    mcc_den = math.sqrt(float(tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    return {
        "accuracy": _ratio(tp + tn, n),
        "precision": precision,
        "recall": recall,
        "F1": _ratio(2 * precision * recall, precision + recall),
        "TPR": recall,
        "FPR": _ratio(fp, fp + tn),
        "TNR": _ratio(tn, tn + fp),
        "PPV": precision,
        "NPV": _ratio(tn, tn + fn),
        "FDR": _ratio(fp, fp + tp),
        "FNR": _ratio(fn, fn + tp),
        "MCC": _ratio(float(tp) * tn - float(fp) * fn, mcc_den),
    }


def _binary(df: Any, label: str, prediction: str, score: str) -> dict[str, float]:
    from pyspark.ml.evaluation import BinaryClassificationEvaluator
    from pyspark.sql import functions as F

    y, p = _col(label).cast("double"), _col(prediction).cast("double")

    def count(cond: Any) -> Any:
        return F.sum(F.when(cond, 1).otherwise(0))

    row = df.agg(
        count((y == 1) & (p == 1)).alias("tp"),
        count((y == 0) & (p == 1)).alias("fp"),
        count((y == 0) & (p == 0)).alias("tn"),
        count((y == 1) & (p == 0)).alias("fn"),
        count(y.isNull() | ~y.isin(0.0, 1.0)).alias("bad_label"),
        count(p.isNull() | ~p.isin(0.0, 1.0)).alias("bad_prediction"),
    ).first()
    if row["bad_label"] or row["bad_prediction"]:
        raise InvalidInputError(
            f"log_evaluator_metrics(kind='binary'): {row['bad_label']} label(s) in {label!r} and "
            f"{row['bad_prediction']} prediction(s) in {prediction!r} are not 0 or 1; use "
            "kind='multiclass' for more than two classes"
        )
    tp, fp, tn, fn = (int(row[k]) for k in ("tp", "fp", "tn", "fn"))
    if tp + fp + tn + fn == 0:
        raise InvalidInputError("log_evaluator_metrics: the predictions DataFrame is empty")
    metrics: dict[str, float] = {}
    for name in ("areaUnderROC", "areaUnderPR"):
        evaluator = BinaryClassificationEvaluator(
            rawPredictionCol=score, labelCol=label, metricName=name
        )
        metrics[name] = float(evaluator.evaluate(df))
    metrics.update(binary_metrics_from_counts(tp, fp, tn, fn))
    return {k: metrics[k] for k in BINARY_METRICS}


def multiclass_metrics_from_counts(counts: dict[tuple[float, float], int]) -> dict[str, float]:
    """accuracy, f1, weightedPrecision and weightedRecall from ``{(label, prediction): n}``,
    with Spark's MulticlassMetrics formulas (weights are the true labels' frequencies)."""
    n = sum(counts.values())
    labels = sorted({y for y, _ in counts})
    tp = {c: counts.get((c, c), 0) for c in labels}
    by_label = {c: sum(v for (y, _), v in counts.items() if y == c) for c in labels}
    by_prediction: dict[float, int] = {}
    for (_, p), v in counts.items():
        by_prediction[p] = by_prediction.get(p, 0) + v
    precision = {c: _ratio(tp[c], by_prediction.get(c, 0)) for c in labels}
    recall = {c: _ratio(tp[c], by_label[c]) for c in labels}
    f1 = {c: _ratio(2 * precision[c] * recall[c], precision[c] + recall[c]) for c in labels}
    weight = {c: by_label[c] / n for c in labels}
    return {
        "accuracy": sum(tp.values()) / n,
        "f1": sum(f1[c] * weight[c] for c in labels),
        "weightedPrecision": sum(precision[c] * weight[c] for c in labels),
        "weightedRecall": sum(recall[c] * weight[c] for c in labels),
    }


def _multiclass(df: Any, label: str, prediction: str, probability: str | None) -> dict[str, float]:
    from pyspark.ml.evaluation import MulticlassClassificationEvaluator
    from pyspark.sql import functions as F

    y, p = _col(label).cast("double"), _col(prediction).cast("double")
    rows = df.groupBy(y.alias("y"), p.alias("p")).agg(F.count(F.lit(1)).alias("n")).collect()
    if not rows:
        raise InvalidInputError("log_evaluator_metrics: the predictions DataFrame is empty")
    nulls = sum(r["n"] for r in rows if r["y"] is None or r["p"] is None)
    if nulls:
        raise InvalidInputError(
            f"log_evaluator_metrics: {nulls} row(s) have a null {label!r} or {prediction!r}"
        )
    metrics = multiclass_metrics_from_counts({(r["y"], r["p"]): int(r["n"]) for r in rows})
    if probability is not None:
        options: dict[str, Any] = {"metricName": "logLoss"}  # missing from pyspark's stubs
        evaluator = MulticlassClassificationEvaluator(
            labelCol=label, predictionCol=prediction, probabilityCol=probability, **options
        )
        metrics["logLoss"] = float(evaluator.evaluate(df))
    return {k: metrics[k] for k in MULTICLASS_METRICS if k in metrics}


def _regression(df: Any, label: str, prediction: str) -> dict[str, float]:
    """Spark's RegressionMetrics in one aggregation: SSerr, SStot = n*var_pop(y) and
    SSreg = sum((p - mean(y))^2) = n*var_pop(p) + n*(mean(p) - mean(y))^2."""
    from pyspark.sql import functions as F

    y, p = _col(label).cast("double"), _col(prediction).cast("double")
    row = df.agg(
        F.count(F.lit(1)).alias("n"),
        F.sum(F.when(y.isNull() | p.isNull(), 1).otherwise(0)).alias("nulls"),
        F.sum((y - p) * (y - p)).alias("sse"),
        F.sum(F.abs(y - p)).alias("sae"),
        F.var_pop(y).alias("var_y"),
        F.var_pop(p).alias("var_p"),
        F.avg(y).alias("mean_y"),
        F.avg(p).alias("mean_p"),
    ).first()
    n = int(row["n"])
    if n == 0:
        raise InvalidInputError("log_evaluator_metrics: the predictions DataFrame is empty")
    if row["nulls"]:
        raise InvalidInputError(
            f"log_evaluator_metrics: {row['nulls']} row(s) have a null {label!r} or {prediction!r}"
        )
    sse, sst = float(row["sse"]), n * float(row["var_y"])
    ssreg = n * float(row["var_p"]) + n * (float(row["mean_p"]) - float(row["mean_y"])) ** 2
    mse = sse / n
    return {
        "rmse": math.sqrt(mse),
        "mse": mse,
        "mae": float(row["sae"]) / n,
        "r2": 1 - sse / sst if sst else float("nan"),
        "var": ssreg / n,
    }


def log_evaluator_metrics(
    tracker: Tracker,
    predictions: Any,
    run_id: str,
    *,
    label_col: str = "label",
    kind: str = "binary",
    prediction_col: str = "prediction",
    probability_col: str = "probability",
) -> dict[str, float]:
    """Compute the full metric set of ``kind`` on a predictions DataFrame and log it.

    binary: areaUnderROC and areaUnderPR from ``probability_col`` (or ``rawPrediction`` when
    there is no probability column), and accuracy, precision, recall, F1, TPR, FPR, TNR, PPV,
    NPV, FDR, FNR, MCC from the confusion matrix (label and prediction 0/1, positive = 1).
    multiclass: accuracy, f1, weightedPrecision, weightedRecall, and logLoss when
    ``probability_col`` exists. regression: rmse, mse, mae, r2, var.
    A ratio whose denominator is 0 is 0.0, as in Spark's evaluators.
    """
    helper = "log_evaluator_metrics"
    if kind not in KINDS:
        raise InvalidInputError(f"{helper}: kind={kind!r} is not one of {', '.join(KINDS)}")
    _require_dataframe(predictions, helper)
    df = predictions
    _require_columns(df, helper, label_col=label_col, prediction_col=prediction_col)
    _require_numeric(df, helper, label_col=label_col, prediction_col=prediction_col)
    tracker._require_running(run_id)
    tracker.backend.release()  # Spark works now: never hold a DuckDB file meanwhile
    if kind == "binary":
        score = next((c for c in (probability_col, "rawPrediction") if c in df.columns), None)
        if score is None:
            raise InvalidInputError(
                f"{helper}(kind='binary') needs a score column for areaUnderROC/areaUnderPR: "
                f"neither probability_col={probability_col!r} nor 'rawPrediction' is a column "
                f"(columns: {', '.join(df.columns)})"
            )
        _require_score(df, helper, score, vector_only=False)
        metrics = _binary(df, label_col, prediction_col, score)
    elif kind == "multiclass":
        probability = probability_col if probability_col in df.columns else None
        if probability is not None:
            _require_score(df, helper, probability, vector_only=True)
        metrics = _multiclass(df, label_col, prediction_col, probability)
    else:
        metrics = _regression(df, label_col, prediction_col)
    tracker.log_metrics(metrics, run_id=run_id)
    return metrics
