"""Scalar feature stages: StringIndexer, OneHotEncoder, Imputer, Bucketizer.

Each function follows the ``transform`` of the Spark source file named in its docstring
(``mllib/src/main/scala/org/apache/spark/ml/feature/``), including what Spark does with
nulls, NaN and invalid values under each ``handleInvalid``. Where Spark raises, the value
carries a :class:`~sqltrack.scoring.plan.Check` that the model raises at query time.
"""

from __future__ import annotations

import math
import re

from sqltrack.scoring.archive import SavedStage
from sqltrack.scoring.context import Context, in_out, refuse
from sqltrack.scoring.plan import Check, Scalar, Slots, Vector

__all__ = ["STAGES"]

_JAVA_DOUBLE = re.compile(r"^-?([0-9]+\.[0-9]+(E-?[0-9]+)?|Infinity)$|^NaN$")
_JAVA_LONG = re.compile(r"^-?[0-9]+$")


def _handle_invalid(stage: SavedStage, allowed: tuple[str, ...]) -> str:
    mode = str(stage.param("handleInvalid", "error"))
    if mode not in allowed:
        raise refuse(stage, f"handleInvalid={mode!r} is not one of {', '.join(allowed)}")
    return mode


def _label_conditions(
    ctx: Context, stage: SavedStage, x: Scalar, column: str, labels: list[str]
) -> list[tuple[str, int]]:
    """``(SQL condition, index)`` for each label a value of ``x`` can match.

    Spark casts the input to a string and looks the string up: a string column compares as
    is; a number matches the labels that are Spark's text for some value of its type (a
    double ``1.0`` is ``"1.0"``, an integer ``1`` is ``"1"``), compared here as numbers so
    the engine's own number formatting never enters."""
    d = ctx.d
    out: list[tuple[str, int]] = []
    if x.kind == "string":
        return [(d.string(label), i) for i, label in enumerate(labels)]
    numbers: dict[float | int | bool, int] = {}
    for i, label in enumerate(labels):
        key: float | int | bool
        if x.kind == "double" and _JAVA_DOUBLE.match(label):
            key = float(label.replace("Infinity", "inf"))
        elif x.kind == "integer" and _JAVA_LONG.match(label):
            key = int(label)
        elif x.kind == "boolean" and label in ("true", "false"):
            key = label == "true"
        else:
            continue  # Spark's text for this type never equals the label
        if key in numbers and not (isinstance(key, float) and math.isnan(key)):
            raise refuse(
                stage,
                f"labels {labels[numbers[key]]!r} and {label!r} of column {column!r} are the "
                "same number in SQL (Spark tells them apart by their text)",
            )
        numbers[key] = i
    for key, i in numbers.items():
        if isinstance(key, bool):
            out.append(("TRUE" if key else "FALSE", i))
        elif isinstance(key, int):
            out.append((d.integer(key), i))
        else:
            out.append((d.num(key), i))
    return out


def string_indexer(stage: SavedStage, ctx: Context) -> None:
    """``feature/StringIndexer.scala`` (StringIndexerModel.transform, getIndexer,
    filterInvalidData): the input is cast to a string and looked up in the fitted labels
    (``labelsArray``, already in the fitted ``stringOrderType`` order). ``error`` raises on
    null and unseen values, ``skip`` drops those rows (and NaN rows of number columns:
    ``na.drop``), ``keep`` maps both to the number of labels."""
    d = ctx.d
    mode = _handle_invalid(stage, ("error", "skip", "keep"))
    row = stage.data[0] if stage.data else {}
    labels_array = row.get("labelsArray") or ([row["labels"]] if "labels" in row else None)
    pairs = in_out(stage)
    if labels_array is None or len(labels_array) != len(pairs):
        raise refuse(stage, "its data/ has no labels for each input column")
    lvl = ctx.level(stage)
    for (column, output), labels in zip(pairs, labels_array, strict=True):
        x = ctx.scalar(stage, column, ("string", "integer", "double", "boolean"))
        labels = [str(v) for v in labels]
        n = len(labels)
        invalid = d.num(float(n)) if mode == "keep" else "NULL"
        nan_label = next((i for i, v in enumerate(labels) if v == "NaN"), None)
        branches = [f"WHEN {x.sql} IS NULL THEN {invalid}"]
        if x.kind == "double":
            if mode == "skip":
                branches.append(f"WHEN {d.is_nan(x.sql)} THEN NULL")
            elif nan_label is not None:
                branches.append(f"WHEN {d.is_nan(x.sql)} THEN {d.num(float(nan_label))}")
        lookup = [
            f"WHEN {lit} THEN {d.num(float(i))}"
            for lit, i in _label_conditions(ctx, stage, x, column, labels)
            if i != nan_label or x.kind != "double"
        ]
        inner = f"CASE {x.sql} {' '.join(lookup)} ELSE {invalid} END" if lookup else invalid
        index = ctx.column(lvl, f"(CASE {' '.join(branches)} ELSE {inner} END)")
        checks = list(x.checks)
        if mode == "skip":
            ctx.pending_filters.append(f"{index} IS NOT NULL")
        elif mode == "error":
            checks.append(
                Check(
                    f"{x.sql} IS NULL",
                    f"{stage.uid}: StringIndexer encountered NULL value in column {column}. "
                    "To handle or skip NULLS, try setting StringIndexer.handleInvalid. Value: ",
                    x.sql,
                )
            )
            checks.append(
                Check(
                    f"{index} IS NULL AND {x.sql} IS NOT NULL",
                    f"{stage.uid}: Unseen label in column {column}. To handle unseen labels, "
                    "set Param handleInvalid to keep. Label: ",
                    x.sql,
                )
            )
        ctx.put(
            stage,
            output,
            Scalar(
                index,
                "double",
                integral=True,
                nullable=mode != "keep",
                nan=False,
                checks=tuple(checks),
            ),
        )


def one_hot_encoder(stage: SavedStage, ctx: Context) -> None:
    """``feature/OneHotEncoder.scala`` (OneHotEncoderModel.transform, encoder,
    getConfigedCategorySizes): a value ``v`` in ``[0, categorySize)`` sets slot ``floor(v)``;
    any other value (NaN too) is invalid: ``error`` raises, ``keep`` sets the extra slot.
    ``dropLast`` drops the last slot (the extra one under ``keep``); a null input gives a
    null vector."""
    d = ctx.d
    mode = _handle_invalid(stage, ("error", "keep"))
    drop_last = bool(stage.param("dropLast", True))
    sizes = [int(s) for s in (stage.data[0].get("categorySizes") or ())] if stage.data else []
    pairs = in_out(stage)
    if len(sizes) != len(pairs):
        raise refuse(stage, "its data/ has no categorySizes for each input column")
    lvl = ctx.level(stage)
    for (column, output), original in zip(pairs, sizes, strict=True):
        x = ctx.scalar(stage, column)
        size = original + (1 if mode == "keep" else 0) - (1 if drop_last else 0)
        v = ctx.as_double(x)
        slot = v if x.integral or x.kind == "integer" else f"floor({v})"
        invalid = d.integer(original) if mode == "keep" else "NULL"
        branches = [f"WHEN {x.sql} IS NULL THEN NULL"]
        nan = ctx.nan_test(x)
        if nan:
            branches.append(f"WHEN {nan} THEN {invalid}")
        branches.append(f"WHEN {v} >= {d.num(0.0)} AND {v} < {d.num(float(original))} THEN {slot}")
        index = ctx.column(lvl, f"(CASE {' '.join(branches)} ELSE {invalid} END)")
        checks = list(x.checks)
        if mode == "error":
            checks.append(
                Check(
                    f"{index} IS NULL AND {x.sql} IS NOT NULL",
                    f"{stage.uid}: OneHotEncoder got an invalid (negative, unseen or NaN) "
                    f"value in column {column}. To handle invalid values, set Param "
                    "handleInvalid to keep. Value: ",
                    x.sql,
                )
            )
        null_when = f"{x.sql} IS NULL" if x.nullable else None
        slots = Slots(index, (1.0,) * size, (0.0,) * size)
        ctx.put(stage, output, Vector((slots,), null_when=null_when, checks=tuple(checks)))


def imputer(stage: SavedStage, ctx: Context) -> None:
    """``feature/Imputer.scala`` (ImputerModel.transform): null and ``missingValue`` (NaN by
    default; Spark's ``===`` holds NaN = NaN) become the column's surrogate, then the value is
    cast back to the input type: Spark truncates the surrogate toward zero for an integer
    column (computed here, not by the engine's rounding CAST)."""
    d = ctx.d
    missing = float(stage.param("missingValue", "NaN"))
    surrogates = stage.data[0] if stage.data else {}
    lvl = ctx.level(stage)
    for column, output in in_out(stage):
        x = ctx.scalar(stage, column, ("double", "integer"))
        if column not in surrogates:
            raise refuse(stage, f"its data/ has no surrogate for column {column!r}")
        s = float(surrogates[column])
        if x.kind == "integer":
            if math.isnan(s) or math.isinf(s):
                raise refuse(stage, f"the surrogate of integer column {column!r} is {s}")
            fill = d.integer(math.trunc(s))
            test = "FALSE" if math.isnan(missing) else f"{d.to_double(x.sql)} = {d.num(missing)}"
        else:
            fill = d.num(s)
            test = d.is_nan(x.sql) if math.isnan(missing) else f"{x.sql} = {d.num(missing)}"
        expr = f"(CASE WHEN {x.sql} IS NULL THEN {fill} WHEN {test} THEN {fill} ELSE {x.sql} END)"
        out = ctx.column(lvl, expr)
        keeps_nan = x.nan and not math.isnan(missing)
        ctx.put(stage, output, Scalar(out, x.kind, nullable=False, nan=keeps_nan, checks=x.checks))


def bucketizer(stage: SavedStage, ctx: Context) -> None:
    """``feature/Bucketizer.scala`` (transform, binarySearchForBuckets): bucket ``i`` holds
    ``[s_i, s_i+1)``, the last one also its upper bound; a value outside the splits raises
    in every mode; NaN raises (``error``), drops the row (``skip``, with nulls: ``na.drop``)
    or goes to an extra last bucket (``keep``); a null stays null."""
    d = ctx.d
    mode = _handle_invalid(stage, ("error", "skip", "keep"))
    pairs = in_out(stage)
    if "inputCols" in stage.explicit:
        splits_array = stage.param("splitsArray")
    else:
        splits_array = [stage.param("splits")]
    if not splits_array or len(splits_array) != len(pairs):
        raise refuse(stage, "it has no splits for each input column")
    lvl = ctx.level(stage)
    for (column, output), raw in zip(pairs, splits_array, strict=True):
        x = ctx.scalar(stage, column)
        splits = [float(s) for s in raw]  # Spark writes "-Inf" and "Inf", which float() reads
        if len(splits) < 3 or any(b <= a for a, b in zip(splits, splits[1:], strict=False)):
            raise refuse(stage, f"the splits of column {column!r} are not increasing: {raw}")
        v = ctx.as_double(x)
        nan = ctx.nan_test(x)
        last = len(splits) - 2
        branches = [f"WHEN {x.sql} IS NULL THEN NULL"]
        if nan:
            branches.append(
                f"WHEN {nan} THEN {d.num(float(last + 1)) if mode == 'keep' else 'NULL'}"
            )
        branches.append(f"WHEN {v} = {d.num(splits[-1])} THEN {d.num(float(last))}")
        bounds = []
        if splits[0] > -math.inf:
            bounds.append(f"{v} < {d.num(splits[0])}")
        if splits[-1] < math.inf:
            bounds.append(f"{v} > {d.num(splits[-1])}")
        outside = f"({' OR '.join(bounds)})" if bounds else ""
        if outside:
            branches.append(f"WHEN {outside} THEN NULL")
        for i, upper in enumerate(splits[1:-1]):
            branches.append(f"WHEN {v} < {d.num(upper)} THEN {d.num(float(i))}")
        out = ctx.column(lvl, f"(CASE {' '.join(branches)} ELSE {d.num(float(last))} END)")
        checks = list(x.checks)
        if outside:
            checks.append(
                Check(
                    f"NOT {nan} AND {outside}" if nan else outside,
                    f"{stage.uid}: Bucketizer value of column {column} out of bounds "
                    f"[{splits[0]}, {splits[-1]}]. Check your features, or loosen the "
                    "lower/upper bound constraints. Value: ",
                    x.sql,
                )
            )
        if nan and mode == "error":
            checks.append(
                Check(
                    nan,
                    f"{stage.uid}: Bucketizer encountered NaN value in column {column}. To "
                    "handle or skip NaNs, try setting Bucketizer.handleInvalid. Value: ",
                    x.sql,
                )
            )
        if mode == "skip":
            lvl.filters.append(f"{x.sql} IS NOT NULL" + (f" AND NOT {nan}" if nan else ""))
        ctx.put(
            stage,
            output,
            Scalar(
                out,
                "double",
                integral=True,
                nullable=x.nullable and mode != "skip",
                nan=False,
                checks=tuple(checks),
            ),
        )


STAGES = {
    "org.apache.spark.ml.feature.StringIndexerModel": string_indexer,
    "org.apache.spark.ml.feature.OneHotEncoderModel": one_hot_encoder,
    "org.apache.spark.ml.feature.ImputerModel": imputer,
    "org.apache.spark.ml.feature.Bucketizer": bucketizer,
}
