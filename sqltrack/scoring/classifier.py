"""What every model shares: its output columns, and the classifier plumbing of
``classification/ProbabilisticClassifier.scala``.

A classifier's transform appends ``rawPredictionCol``, ``probabilityCol`` and
``predictionCol`` (each skipped when its param is empty); the compiled query writes the two
vectors as DOUBLE arrays, then one column per class (``probability_0``...). Without
``thresholds`` the prediction is the first index of the largest raw prediction
(``Vector.argmax``); with them it is ``probability2prediction``: the largest
``probability / threshold``, where a zero threshold wins (the last zero one).

SQL orders NaN above every number where Java's comparisons are false; the expressions
here only compare values that are all NaN or none NaN (a NaN feature makes every margin of
a linear model NaN; tree outputs are never NaN), where both agree.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqltrack.identifiers import quote_ident
from sqltrack.scoring.archive import SavedStage
from sqltrack.scoring.context import Context, refuse

__all__ = ["argmax", "emit", "py_predict", "thresholds"]


def thresholds(stage: SavedStage, classes: int) -> list[float] | None:
    """The model's ``thresholds`` when set, else None."""
    if "thresholds" not in stage.explicit or stage.param("thresholds") is None:
        return None
    values = [float(t) for t in stage.param("thresholds")]
    if len(values) != classes:
        raise refuse(stage, f"it has {len(values)} thresholds for {classes} classes")
    return values


def argmax(ctx: Context, values: Sequence[str]) -> str:
    """The first index of the largest of ``values`` (columns), as a DOUBLE."""
    d = ctx.d
    if len(values) == 1:
        return d.num(0.0)
    branches = []
    for i, v in enumerate(values[:-1]):
        cond = " AND ".join(f"{v} >= {w}" for w in values[i + 1 :])
        branches.append(f"WHEN {cond} THEN {d.num(float(i))}")
    return f"(CASE {' '.join(branches)} ELSE {d.num(float(len(values) - 1))} END)"


def _py_argmax(values: Sequence[float]) -> int:
    best, index = values[0], 0
    for i, v in enumerate(values[1:], 1):
        if v > best:
            best, index = v, i
    return index


def py_predict(raw: Sequence[float], probability: Sequence[float], ts: list[float] | None) -> float:
    """``raw2prediction`` for constant vectors (a decision tree's leaf)."""
    if ts is None:
        return float(_py_argmax(raw))
    zero = [i for i, t in enumerate(ts) if t == 0.0]
    if zero:
        return float(zero[-1])
    return float(_py_argmax([p / t for p, t in zip(probability, ts, strict=True)]))


def predict(ctx: Context, stage: SavedStage, raw: Sequence[str], probability: Sequence[str]) -> str:
    """The prediction column's expression, from raw and probability columns."""
    ts = thresholds(stage, len(raw))
    if ts is None:
        return argmax(ctx, raw)
    zero = [i for i, t in enumerate(ts) if t == 0.0]
    if zero:
        return ctx.d.num(float(zero[-1]))
    lvl = ctx.level(stage, "thresholds")
    scaled = [
        ctx.column(lvl, f"({p} / {ctx.d.num(t)})") for p, t in zip(probability, ts, strict=True)
    ]
    return argmax(ctx, scaled)


def emit(
    ctx: Context,
    stage: SavedStage,
    prediction: str,
    raw: Sequence[str] = (),
    probability: Sequence[str] = (),
) -> None:
    """Set the query's outputs: prediction, and for a classifier the two arrays and their
    elements, named by the model's column params."""
    d = ctx.d
    out: list[tuple[str, str]] = []
    raw_col = str(stage.param("rawPredictionCol", "rawPrediction") or "") if raw else ""
    prob_col = str(stage.param("probabilityCol", "probability") or "") if probability else ""
    if raw_col:
        out.append((raw_col, d.array(raw)))
    if prob_col:
        out.append((prob_col, d.array(probability)))
    pred_col = str(stage.param("predictionCol", "prediction") or "")
    if pred_col:
        out.append((pred_col, prediction))
    if raw_col:
        out += [(f"{raw_col}_{k}", e) for k, e in enumerate(raw)]
    if prob_col:
        out += [(f"{prob_col}_{k}", e) for k, e in enumerate(probability)]
    for name, _ in out:
        if name in ctx.env:
            raise refuse(stage, f"output column {name!r} already exists (Spark refuses it too)")
    ctx.outputs = [(quote_ident(name, plain=False), expr) for name, expr in out]
