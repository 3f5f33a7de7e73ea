"""Spark ML governance: pipeline stages, feature transformations, model params and
evaluator metrics, read from Spark's param metadata (never from ``explainParams()`` text).

- :func:`log_pipeline_stages`: one ``sqltrack.pipeline_stages`` row per stage (nested
  pipelines flattened with a dotted path) plus params ``Stage0 = StringIndexer``, ...
- :func:`log_feature_transformations`: every source column traced through the stages that
  consume it, through their ``inputCol``/``inputCols``/``outputCol``/``outputCols`` params
  (``featuresCol`` -> ``outputCol`` for feature selectors), as ``sqltrack.feature_transformations``
  rows plus one param per column: ``city -> StringIndexer -> OneHotEncoder -> VectorAssembler
  -> features``. Predictors (the model stage, recognised by its ``predictionCol``) are not part
  of a chain.
- :func:`log_model_params`: every param of every stage from ``extractParamMap()``.
- :func:`log_evaluator_metrics`: the binary, multiclass or regression metric set, computed in
  one aggregation per kind (a confusion matrix for classifiers) plus Spark's own evaluators for
  the areas under the curves and the log loss.

Spark is imported inside the functions: ``import sqltrack`` never loads pyspark. Each helper
checks that the run is RUNNING before any Spark job, releases the store (a DuckDB file must
not be held while Spark works), and writes its rows and params in one transaction.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqltrack.entities import PipelineStage
from sqltrack.errors import ConflictError, InvalidInputError
from sqltrack.identifiers import MAX_KEY_LENGTH, validate_key, validate_value

if TYPE_CHECKING:
    from sqltrack.tracking import Tracker

__all__ = [
    "BINARY_METRICS",
    "KINDS",
    "MULTICLASS_METRICS",
    "REGRESSION_METRICS",
    "FeatureStep",
    "feature_chains",
    "flatten_stages",
    "input_columns",
    "log_evaluator_metrics",
    "log_feature_transformations",
    "log_model_params",
    "log_pipeline_stages",
    "render_param",
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
FEATURE_PARAM_PREFIX = "Column- "

_STAGE_COLUMNS = (
    "run_id",
    "stage_index",
    "stage_path",
    "stage_class",
    "class_path",
    "stage_uid",
    "stage_kind",
    "pipeline_uid",
)
_FEATURE_COLUMNS = (
    "run_id",
    "source_column",
    "branch",
    "step",
    "stage_class",
    "stage_uid",
    "input_column",
    "output_column",
)
_BAD_KEY_CHARS = re.compile(r"[^A-Za-z0-9_\-. /:]")


# -- recognising what Spark users pass ----------------------------------------------------


def _class_path(obj: object) -> str:
    cls = type(obj)
    return f"{cls.__module__}.{cls.__qualname__}"


def _is_pipeline(obj: object) -> bool:
    from pyspark.ml import Pipeline, PipelineModel

    return isinstance(obj, Pipeline | PipelineModel)


def _require_pipeline(obj: object, helper: str) -> None:
    try:
        from pyspark.ml.base import Estimator, Transformer
    except ImportError as exc:  # pragma: no cover - pyspark is a dependency
        raise InvalidInputError(f"{helper} needs pyspark installed: {exc}") from exc
    if _is_pipeline(obj):
        return
    if isinstance(obj, Estimator | Transformer):
        raise InvalidInputError(
            f"{helper} needs a pyspark.ml Pipeline or PipelineModel, not a single "
            f"{type(obj).__name__} stage; wrap it: Pipeline(stages=[...])"
        )
    raise InvalidInputError(
        f"{helper} needs a pyspark.ml Pipeline or PipelineModel, not {_class_path(obj)}"
    )


def _stages_of(pipeline: Any) -> list[Any]:
    from pyspark.ml import Pipeline

    if isinstance(pipeline, Pipeline):
        if not pipeline.isDefined(pipeline.stages):
            raise InvalidInputError(
                f"pipeline {pipeline.uid} has no stages; build it as Pipeline(stages=[...])"
            )
        return list(pipeline.getStages())
    return list(pipeline.stages)


@dataclass(frozen=True)
class _Stage:
    index: int
    path: str
    stage: Any

    @property
    def name(self) -> str:
        return type(self.stage).__name__


def flatten_stages(pipeline: Any) -> list[_Stage]:
    """The leaf stages of a Pipeline/PipelineModel in order; nested pipelines are opened and
    their stages get a dotted path (``1.0``)."""
    from pyspark.ml.base import Estimator, Transformer

    out: list[_Stage] = []

    def walk(p: Any, prefix: str) -> None:
        for i, stage in enumerate(_stages_of(p)):
            path = f"{prefix}{i}"
            if _is_pipeline(stage):
                walk(stage, path + ".")
            elif isinstance(stage, Estimator | Transformer):
                out.append(_Stage(len(out), path, stage))
            else:
                raise InvalidInputError(
                    f"stage {path} of pipeline {pipeline.uid} is {_class_path(stage)}, not a "
                    "pyspark.ml Estimator or Transformer"
                )

    walk(pipeline, "")
    return out


def _kind(stage: Any) -> str:
    from pyspark.ml.base import Estimator, Model

    if isinstance(stage, Model):
        return "model"
    if isinstance(stage, Estimator):
        return "estimator"
    return "transformer"


def _param(stage: Any, name: str) -> Any:
    """The value of a param (set or default), or None when the stage has no such param."""
    if not stage.hasParam(name):
        return None
    p = stage.getParam(name)
    return stage.getOrDefault(p) if stage.isDefined(p) else None


def _is_predictor(stage: Any) -> bool:
    return bool(stage.hasParam("predictionCol"))


def _column_edges(stage: Any) -> list[tuple[str, str]]:
    """The (input column, output column) pairs a feature stage declares through its params."""
    if _is_predictor(stage):
        return []
    in_col, in_cols = _param(stage, "inputCol"), _param(stage, "inputCols")
    out_col, out_cols = _param(stage, "outputCol"), _param(stage, "outputCols")
    if in_col is None and not in_cols:
        in_col = _param(stage, "featuresCol")  # selectors: featuresCol -> outputCol
    edges: list[tuple[str, str]] = []
    if in_cols:  # multi-column form wins (StringIndexer keeps a default outputCol anyway)
        if out_cols and len(out_cols) == len(in_cols):
            edges = list(zip(in_cols, out_cols, strict=True))
        elif out_col is not None:
            edges = [(c, out_col) for c in in_cols]
        elif out_cols:
            edges = [(c, o) for c in in_cols for o in out_cols]
    elif in_col is not None:
        if out_col is not None:
            edges = [(in_col, out_col)]
        elif out_cols:
            edges = [(in_col, o) for o in out_cols]
    seen: set[tuple[str, str]] = set()
    unique = []
    for edge in edges:
        if edge not in seen:
            seen.add(edge)
            unique.append(edge)
    return unique


# -- pipeline stages ------------------------------------------------------------------------


def _stage_records(pipeline: Any, run_id: str) -> list[PipelineStage]:
    return [
        PipelineStage(
            run_id,
            s.index,
            s.path,
            s.name,
            _class_path(s.stage),
            str(s.stage.uid),
            _kind(s.stage),
            str(pipeline.uid),
        )
        for s in flatten_stages(pipeline)
    ]


def _write_once(
    tracker: Tracker,
    run_id: str,
    table: str,
    columns: Sequence[str],
    order_by: str,
    rows: list[tuple[Any, ...]],
    params: dict[str, str],
    what: str,
) -> None:
    """Insert ``rows`` and ``params`` in one transaction; the same rows again are a no-op,
    other rows for a run that already has some are a ConflictError."""
    from sqltrack.sqltext import Fragment, compose, ident, join

    select = compose(
        "SELECT {cols} FROM {table} WHERE run_id = ? ORDER BY {order}",
        cols=join(", ", (ident(c) for c in columns)),
        table=ident(*table.split(".")),
        order=Fragment(order_by),
    )
    with tracker.backend.transaction() as s:
        tracker._check_running(s, run_id)
        existing = [tuple(r) for r in s.query(select, (run_id,))]
        if existing:
            if sorted(existing) != sorted(rows):
                raise ConflictError(
                    f"run {run_id} already has {what} from another pipeline; they are "
                    "immutable records: log this pipeline in another run"
                )
        else:
            s.insert_rows(table, columns, rows)
        tracker._write_params(s, run_id, params)


def log_pipeline_stages(tracker: Tracker, pipeline: Any, run_id: str) -> list[PipelineStage]:
    """Record every stage of a ``Pipeline`` or ``PipelineModel`` (nested ones flattened) and
    log params ``Stage<path> = <class name>``."""
    _require_pipeline(pipeline, "log_pipeline_stages")
    records = _stage_records(pipeline, run_id)
    params = {validate_key(f"Stage{r.stage_path}", "param key"): r.stage_class for r in records}
    _write_once(
        tracker,
        run_id,
        "sqltrack.pipeline_stages",
        _STAGE_COLUMNS,
        "stage_index",
        [tuple(getattr(r, c) for c in _STAGE_COLUMNS) for r in records],
        params,
        "pipeline stages",
    )
    return records


# -- feature transformations -----------------------------------------------------------------


@dataclass(frozen=True)
class FeatureStep:
    """One step of a feature chain: ``input_column`` -> stage -> ``output_column``."""

    source_column: str
    branch: int
    step: int
    stage_class: str
    stage_uid: str
    input_column: str
    output_column: str


def feature_chains(pipeline: Any) -> list[FeatureStep]:
    """Trace every source column through the feature stages of a pipeline.

    A source column is one a stage reads that no earlier stage wrote. Columns are versioned
    by the stage that wrote them, so a name re-used later starts no false chain. A column
    read by several stages yields one branch per path to a column nothing reads further.
    """
    Key = tuple[int, str]  # (position of the writing stage, or -1 for a source; column)
    consumers: dict[Key, list[tuple[_Stage, str, str, Key]]] = {}
    version: dict[str, Key] = {}
    sources: list[str] = []
    for st in flatten_stages(pipeline):
        written: dict[str, Key] = {}
        for in_col, out_col in _column_edges(st.stage):
            in_key = version.get(in_col)
            if in_key is None:
                in_key = (-1, in_col)
                if in_col not in sources:
                    sources.append(in_col)
            out_key = (st.index, out_col)
            consumers.setdefault(in_key, []).append((st, in_col, out_col, out_key))
            written[out_col] = out_key
        if _is_predictor(st.stage):  # its outputs start no chain (e.g. IndexToString after it)
            written.update({c: (st.index, c) for c in _produced(st.stage)})
        version.update(written)  # after the stage: a stage reading its own output name is fine

    Path = list[tuple[_Stage, str, str]]

    def paths(key: Key, path: Path) -> Iterator[Path]:
        nexts = consumers.get(key, [])
        if not nexts and path:
            yield path
        for st, in_col, out_col, out_key in nexts:
            yield from paths(out_key, [*path, (st, in_col, out_col)])

    steps: list[FeatureStep] = []
    for source in sources:
        for b, path in enumerate(paths((-1, source), [])):
            for i, (st, in_col, out_col) in enumerate(path, start=1):
                steps.append(FeatureStep(source, b, i, st.name, str(st.stage.uid), in_col, out_col))
    return steps


def _summaries(steps: Sequence[FeatureStep]) -> dict[str, str]:
    """``{source column: "col -> StageA -> StageB -> final output"}``, branches joined by '; '."""
    chains: dict[str, dict[int, list[FeatureStep]]] = {}
    for s in steps:
        chains.setdefault(s.source_column, {}).setdefault(s.branch, []).append(s)
    out: dict[str, str] = {}
    for source, branches in chains.items():
        texts = []
        for _, path in sorted(branches.items()):
            path.sort(key=lambda s: s.step)
            texts.append(
                " -> ".join([source, *(s.stage_class for s in path), path[-1].output_column])
            )
        out[source] = "; ".join(texts)
    return out


def _feature_key(column: str, taken: set[str]) -> str:
    base = FEATURE_PARAM_PREFIX + _BAD_KEY_CHARS.sub("_", column).strip("/")
    base = base[:MAX_KEY_LENGTH]
    key, n = base, 2
    while key in taken:
        suffix = f"_{n}"
        key = base[: MAX_KEY_LENGTH - len(suffix)] + suffix
        n += 1
    return validate_key(key, "param key")


def log_feature_transformations(tracker: Tracker, pipeline: Any, run_id: str) -> dict[str, str]:
    """Record each source column's chain of feature stages; return ``{column: chain text}``
    (also logged as params ``Column- <column>``)."""
    _require_pipeline(pipeline, "log_feature_transformations")
    steps = feature_chains(pipeline)
    summaries = _summaries(steps)
    params: dict[str, str] = {}
    for column, text in summaries.items():
        params[_feature_key(column, set(params))] = validate_value(text, f"chain of {column!r}")
    rows = [
        (
            run_id,
            s.source_column,
            s.branch,
            s.step,
            s.stage_class,
            s.stage_uid,
            s.input_column,
            s.output_column,
        )
        for s in steps
    ]
    _write_once(
        tracker,
        run_id,
        "sqltrack.feature_transformations",
        _FEATURE_COLUMNS,
        "source_column, branch, step",
        rows,
        params,
        "feature transformations",
    )
    return summaries


# -- model params ----------------------------------------------------------------------------


def _require_fitted(model: object, helper: str) -> None:
    from pyspark.ml import Pipeline
    from pyspark.ml.base import Estimator, Transformer

    if isinstance(model, Pipeline) or (
        isinstance(model, Estimator) and not isinstance(model, Transformer)
    ):
        raise InvalidInputError(
            f"{helper} needs a fitted model, but {type(model).__name__} ({model.uid}) is an "
            "unfitted estimator: call .fit(df) and pass the model it returns"
        )
    if not isinstance(model, Transformer):
        raise InvalidInputError(
            f"{helper} needs a fitted pyspark.ml model or PipelineModel, not {_class_path(model)}"
        )


def _plain(value: Any) -> Any:
    """A JSON-ready form of a param value: vectors and matrices as lists, numpy as Python."""
    from pyspark.ml.linalg import DenseVector, Matrix, SparseVector

    if isinstance(value, DenseVector):
        return [float(v) for v in value.toArray()]
    if isinstance(value, SparseVector):
        return {
            "size": int(value.size),
            "indices": [int(i) for i in value.indices],
            "values": [float(v) for v in value.values],
        }
    if isinstance(value, Matrix):
        return value.toArray().tolist()
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if hasattr(value, "tolist"):  # numpy arrays and scalars
        return value.tolist()
    return value


def render_param(value: Any) -> str:
    """Param values as readable text: strings as they are, numbers as Python writes them,
    arrays/vectors/matrices as JSON (a sparse vector as ``{"size", "indices", "values"}``)."""
    if isinstance(value, str):
        return value
    plain = _plain(value)
    if isinstance(plain, list | dict):
        return json.dumps(plain, allow_nan=True)
    if isinstance(plain, float):
        return repr(plain)
    return str(plain)


def log_model_params(tracker: Tracker, model: Any, run_id: str) -> dict[str, str]:
    """Log every param of a fitted model (or of every stage of a ``PipelineModel``, keyed
    ``Stage<path>.<Class>.<param>``) and ``model_class``; return what was logged."""
    _require_fitted(model, "log_model_params")
    if _is_pipeline(model):
        stages = [(f"Stage{s.path}.{s.name}.", s.stage) for s in flatten_stages(model)]
    else:
        stages = [("", model)]
    params = {"model_class": _class_path(model)}
    for prefix, stage in stages:
        for param, value in sorted(stage.extractParamMap().items(), key=lambda kv: kv[0].name):
            key = validate_key(prefix + param.name, "param key")
            params[key] = validate_value(render_param(value), f"param {key!r}")
    tracker.log_params(params, run_id=run_id)
    return params


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


# -- the columns a model reads ---------------------------------------------------------------


def _produced(stage: Any) -> Iterator[str]:
    for _, out in _column_edges(stage):
        yield out
    if _is_predictor(stage):
        for name in ("predictionCol", "probabilityCol", "rawPredictionCol", "varianceCol"):
            value = _param(stage, name)
            if value:
                yield value


def _consumed(stage: Any) -> Iterator[str]:
    if _is_predictor(stage):
        value = _param(stage, "featuresCol")
        if value:
            yield value
        return
    for column, _ in _column_edges(stage):
        yield column


def input_columns(model: Any) -> list[str]:
    """The columns a fitted model or PipelineModel reads from its input DataFrame: those its
    stages consume (``inputCol(s)``, a predictor's ``featuresCol``) that no earlier stage
    writes; in first-use order."""
    stages = [s.stage for s in flatten_stages(model)] if _is_pipeline(model) else [model]
    written: set[str] = set()
    needed: list[str] = []
    for stage in stages:
        for column in _consumed(stage):
            if column not in written and column not in needed:
                needed.append(column)
        written.update(_produced(stage))
    return needed
