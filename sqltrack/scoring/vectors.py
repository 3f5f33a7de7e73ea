"""Vector stages: VectorAssembler and the scalers (StandardScaler, MinMaxScaler,
MaxAbsScaler).

Each function follows the Spark source file named in its docstring
(``mllib/src/main/scala/org/apache/spark/ml/feature/``). A scaler maps each element
through one formula with constants fitted by Spark; on a one-hot part the formula is
applied here, in Python, to the part's two values per slot (the same IEEE operations in the
same order as Spark's), so the part stays one index column.
"""

from __future__ import annotations

from collections.abc import Callable

from sqltrack.scoring.archive import SavedStage, vector_values
from sqltrack.scoring.context import Context, checks_of, refuse
from sqltrack.scoring.plan import Check, Items, Level, Part, Slots, Vector

__all__ = ["STAGES"]


def vector_assembler(stage: SavedStage, ctx: Context) -> None:
    """``feature/VectorAssembler.scala`` (transform, assemble): numeric and boolean columns
    are cast to double, vectors are appended whole. ``error`` raises on a null, or a NaN
    number (NaN inside a vector is not checked); ``skip`` drops those rows (``na.drop``);
    ``keep`` writes NaN for a null number and NaN times the vector's size for a null vector
    (the sizes come from the upstream stages here, from column metadata in Spark)."""
    d = ctx.d
    mode = str(stage.param("handleInvalid", "error"))
    if mode not in ("error", "skip", "keep"):
        raise refuse(stage, f"handleInvalid={mode!r} is not one of error, skip, keep")
    lvl = ctx.level(stage)
    parts: list[Part] = []
    checks: list[Check] = []
    for column in stage.param("inputCols") or ():
        value = ctx.get(stage, column)
        checks += value.checks
        message = (
            f"{stage.uid}: Encountered {{}} while assembling column {column} with "
            'handleInvalid = "error". Value: '
        )
        if isinstance(value, Vector):
            if value.null_when is None:
                parts += value.parts
            elif mode == "error":
                checks.append(Check(value.null_when, message.format("null"), None))
                parts += value.parts
            elif mode == "skip":
                lvl.filters.append(f"NOT ({value.null_when})")
                parts += value.parts
            else:
                parts += _nan_when_null(ctx, lvl, value)
            continue
        if value.kind not in ("integer", "double", "float", "decimal", "boolean"):
            raise refuse(
                stage,
                f"column {column!r} has type {value.kind}; VectorAssembler reads numbers, "
                "booleans and vectors",
            )
        element = ctx.as_double(value)
        nan = ctx.nan_test(value)
        if mode == "error":
            if value.nullable:
                checks.append(Check(f"{value.sql} IS NULL", message.format("null"), value.sql))
            if nan:
                checks.append(Check(nan, message.format("NaN"), value.sql))
        elif mode == "skip":
            if value.nullable:
                lvl.filters.append(f"{value.sql} IS NOT NULL")
            if nan:
                lvl.filters.append(f"NOT {nan}")
        elif value.nullable:
            element = f"COALESCE({element}, {d.num(float('nan'))})"
        parts.append(Items((ctx.column(lvl, element),)))
    ctx.put(stage, str(stage.param("outputCol")), Vector(_merge(parts), checks=tuple(checks)))


def _nan_when_null(ctx: Context, lvl: Level, value: Vector) -> list[Part]:
    d = ctx.d
    cond, nan = value.null_when, d.num(float("nan"))
    out: list[Part] = []
    for part in value.parts:
        if isinstance(part, Items):
            exprs = [f"(CASE WHEN {cond} THEN {nan} ELSE {e} END)" for e in part.exprs]
        else:
            exprs = [
                f"(CASE WHEN {cond} THEN {nan} WHEN {part.index} = {k} THEN {d.num(on)} "
                f"ELSE {d.num(off)} END)"
                for k, (on, off) in enumerate(zip(part.on, part.off, strict=True))
            ]
        out.append(Items(tuple(ctx.column(lvl, e) for e in exprs)))
    return out


def _merge(parts: list[Part]) -> tuple[Part, ...]:
    out: list[Part] = []
    for part in parts:
        if isinstance(part, Items) and out and isinstance(out[-1], Items):
            out[-1] = Items(out[-1].exprs + part.exprs)
        else:
            out.append(part)
    return tuple(out)


def _elementwise(
    stage: SavedStage,
    ctx: Context,
    size: int,
    python: Callable[[int, float], float],
    sql: Callable[[int, str], str],
) -> None:
    """Apply ``python(i, x)`` to one-hot values and ``sql(i, expr)`` to expressions, element
    ``i`` of the input vector; a null input vector makes Spark's UDF raise."""
    source = ctx.vector(stage, str(stage.param("inputCol")))
    if source.size != size:
        raise refuse(stage, f"it was fitted on vectors of size {size}, its input has {source.size}")
    lvl = ctx.level(stage)
    parts: list[Part] = []
    for offset, part in source.spans():
        if isinstance(part, Slots):
            on = tuple(python(offset + k, v) for k, v in enumerate(part.on))
            off = tuple(python(offset + k, v) for k, v in enumerate(part.off))
            parts.append(Slots(part.index, on, off))
        else:
            parts.append(
                Items(tuple(ctx.column(lvl, sql(offset + k, e)) for k, e in enumerate(part.exprs)))
            )
    checks = list(checks_of(source))
    if source.null_when is not None:
        checks.append(Check(source.null_when, f"{stage.uid}: {stage.name} got a null vector", None))
    ctx.put(stage, str(stage.param("outputCol")), Vector(tuple(parts), checks=tuple(checks)))


def standard_scaler(stage: SavedStage, ctx: Context) -> None:
    """``feature/StandardScaler.scala`` (StandardScalerModel.transform, getTransformFunc):
    ``(x - mean) * scale`` with ``scale = 1 / std`` (0 where std is 0; std is the sample
    standard deviation, fitted by Spark); ``withMean`` and ``withStd`` drop either part."""
    d = ctx.d
    row = stage.data[0]
    std, mean = vector_values(row["std"]), vector_values(row["mean"])
    with_mean, with_std = bool(stage.param("withMean", False)), bool(stage.param("withStd", True))
    scale = [0.0 if v == 0 else 1.0 / v for v in std]

    def python(i: int, x: float) -> float:
        if with_mean:
            x = x - mean[i]
        return x * scale[i] if with_std else x

    def sql(i: int, e: str) -> str:
        if with_mean and with_std:
            return f"(({e} - {d.num(mean[i])}) * {d.num(scale[i])})"
        if with_mean:
            return f"({e} - {d.num(mean[i])})"
        return f"({e} * {d.num(scale[i])})" if with_std else e

    _elementwise(stage, ctx, len(std), python, sql)


def min_max_scaler(stage: SavedStage, ctx: Context) -> None:
    """``feature/MinMaxScaler.scala`` (MinMaxScalerModel.transform):
    ``(x - originalMin) * (max - min) / (originalMax - originalMin) + min`` with the factor
    fitted per element, ``(max - min) / 2 + min`` for a constant element; NaN stays NaN."""
    d = ctx.d
    row = stage.data[0]
    omin, omax = vector_values(row["originalMin"]), vector_values(row["originalMax"])
    lo, hi = float(stage.param("min", 0.0)), float(stage.param("max", 1.0))
    scale = hi - lo
    factor = [scale / (b - a) if (b - a) != 0 else 0.0 for a, b in zip(omin, omax, strict=True)]
    constant = scale / 2 + lo

    def python(i: int, x: float) -> float:
        if x != x:
            return x
        return (x - omin[i]) * factor[i] + lo if factor[i] != 0 else constant

    def sql(i: int, e: str) -> str:
        if factor[i] != 0:
            return f"((({e} - {d.num(omin[i])}) * {d.num(factor[i])}) + {d.num(lo)})"
        return f"(CASE WHEN {d.is_nan(e)} THEN {e} ELSE {d.num(constant)} END)"

    _elementwise(stage, ctx, len(omin), python, sql)


def max_abs_scaler(stage: SavedStage, ctx: Context) -> None:
    """``feature/MaxAbsScaler.scala`` (MaxAbsScalerModel.transform): ``x * (1 / maxAbs)``,
    the factor 1 where maxAbs is 0."""
    d = ctx.d
    max_abs = vector_values(stage.data[0]["maxAbs"])
    scale = [1.0 if v == 0 else 1.0 / v for v in max_abs]
    _elementwise(
        stage,
        ctx,
        len(max_abs),
        lambda i, x: x * scale[i],
        lambda i, e: f"({e} * {d.num(scale[i])})",
    )


STAGES = {
    "org.apache.spark.ml.feature.VectorAssembler": vector_assembler,
    "org.apache.spark.ml.feature.StandardScalerModel": standard_scaler,
    "org.apache.spark.ml.feature.MinMaxScalerModel": min_max_scaler,
    "org.apache.spark.ml.feature.MaxAbsScalerModel": max_abs_scaler,
}
