"""Spark ML governance: pipeline stages, feature transformations, model params and
their input columns, read from Spark's param metadata (never from ``explainParams()`` text).
Evaluator metrics live in :mod:`sqltrack.evaluation`.

- :func:`log_pipeline_stages`: one ``sqltrack.pipeline_stages`` row per stage (nested
  pipelines flattened with a dotted path) plus params ``Stage0 = StringIndexer``, ...
- :func:`log_feature_transformations`: every source column traced through the stages that
  consume it, through their ``inputCol``/``inputCols``/``outputCol``/``outputCols`` params
  (``featuresCol`` -> ``outputCol`` for feature selectors), as ``sqltrack.feature_transformations``
  rows plus one param per column: ``city -> StringIndexer -> OneHotEncoder -> VectorAssembler
  -> features``. Predictors (the model stage, recognised by its ``predictionCol``) are not part
  of a chain.
- :func:`log_model_params`: every param of every stage from ``extractParamMap()``, keyed
  ``<Class>.<param>`` (a single model) or ``Stage<path>.<Class>.<param>`` (a pipeline).

Spark is imported inside the functions: ``import sqltrack`` never loads pyspark. Each helper
checks that the run is RUNNING before any Spark job, releases the store (a DuckDB file must
not be held while Spark works), and writes its rows and params in one transaction.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqltrack.entities import PipelineStage
from sqltrack.errors import InvalidInputError
from sqltrack.identifiers import MAX_KEY_LENGTH, validate_key, validate_value

if TYPE_CHECKING:
    from sqltrack.tracking import Tracker

__all__ = [
    "FeatureStep",
    "feature_chains",
    "flatten_stages",
    "input_columns",
    "log_feature_transformations",
    "log_model_params",
    "log_pipeline_stages",
    "render_param",
]

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
    """Record ``rows`` and ``params`` together; the same rows again are a no-op,
    other rows for a run that already has some are a ConflictError."""
    from sqltrack.records import WriteOnce

    tracker._submit(
        [
            WriteOnce(
                run_id,
                table,
                tuple(columns),
                order_by,
                tuple(tuple(r) for r in rows),
                tuple(params.items()),
                what,
            )
        ]
    )


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
    """Log every param of a fitted model and ``model_class``; return what was logged.

    Keys are prefixed so that they cannot collide with the user's own params (a user's
    ``seed=42`` next to the model's ``seed``): ``<Class>.<param>`` for a single model
    (``LogisticRegressionModel.regParam``), ``Stage<path>.<Class>.<param>`` for each stage
    of a ``PipelineModel`` (``Stage3.LogisticRegressionModel.regParam``)."""
    _require_fitted(model, "log_model_params")
    if _is_pipeline(model):
        stages = [(f"Stage{s.path}.{s.name}.", s.stage) for s in flatten_stages(model)]
    else:
        stages = [(f"{type(model).__name__}.", model)]
    params = {"model_class": _class_path(model)}
    for prefix, stage in stages:
        for param, value in sorted(stage.extractParamMap().items(), key=lambda kv: kv[0].name):
            key = validate_key(prefix + param.name, "param key")
            params[key] = validate_value(render_param(value), f"param {key!r}")
    tracker.log_params(params, run_id=run_id)
    return params


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
