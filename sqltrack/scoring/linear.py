"""Linear models: LogisticRegression (binary and multinomial) and LinearRegression.

A margin is ``features . coefficients + intercept``, summed left to right in feature order
like Spark's ``BLAS.dot`` over a sparse vector (over a dense one Spark's BLAS may group
the additions differently: the results differ in the last bits, well inside the parity
tolerance). A one-hot part adds one ``CASE`` on its index whose values are the part's
partial sums, computed here in Python in the same order.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from sqltrack.scoring import classifier
from sqltrack.scoring.archive import SavedStage, matrix_rows, vector_values
from sqltrack.scoring.context import Context, model_checks, refuse
from sqltrack.scoring.plan import Items, Vector

__all__ = ["STAGES"]


def _dot(
    ctx: Context,
    stage: SavedStage,
    features: Vector,
    coefficients: Sequence[float],
    intercept: float,
) -> str:
    d = ctx.d
    if len(coefficients) != features.size:
        raise refuse(stage, f"it has {len(coefficients)} coefficients for {features.size} features")
    terms: list[str] = []
    for offset, part in features.spans():
        c = coefficients[offset : offset + part.size]
        if isinstance(part, Items):
            terms += [f"({e} * {d.num(w)})" for e, w in zip(part.exprs, c, strict=True)]
            continue
        sums = []
        for j in range(part.size + 1):  # j = part.size: no slot set
            total = 0.0
            for k, w in enumerate(c):
                total += w * (part.on[k] if k == j else part.off[k])
            sums.append(total)
        if all(s == 0.0 and math.copysign(1.0, s) > 0 for s in sums):
            continue
        whens = " ".join(f"WHEN {k} THEN {d.num(s)}" for k, s in enumerate(sums[:-1]))
        terms.append(f"(CASE {part.index} {whens} ELSE {d.num(sums[-1])} END)")
    return " + ".join([*terms, d.num(intercept)])


def logistic_regression(stage: SavedStage, ctx: Context) -> None:
    """``classification/LogisticRegression.scala`` (LogisticRegressionModel): binary
    ``m = x.b + a``, rawPrediction ``[-m, m]``, probability ``p0 = 1 / (1 + exp(m))``,
    ``p1 = 1 - p0`` (raw2probabilityInPlace), prediction ``m > log(t / (1 - t))`` with the
    threshold ``t`` (from ``thresholds`` when set; ``t = 0`` and ``1`` mean always 1 and
    never); multinomial margins ``m_k``, softmax ``exp(m_k - max) * (1 / sum)``
    (``ml/impl/Utils.softmax``), prediction by the classifier plumbing."""
    d = ctx.d
    features = ctx.vector(stage, str(stage.param("featuresCol", "features")))
    row = stage.data[0]
    rows = matrix_rows(row["coefficientMatrix"])
    intercepts = vector_values(row["interceptVector"])
    lvl = ctx.level(stage, "margins")
    checks = model_checks(stage, features)
    margins = []
    for k, (coefficients, intercept) in enumerate(zip(rows, intercepts, strict=True)):
        expr = _dot(ctx, stage, features, coefficients, intercept)
        margins.append(ctx.plan.column(lvl, ctx.guard(expr, checks) if k == 0 else expr))
    if not bool(row["isMultinomial"]):
        (m,) = margins
        one, zero = d.num(1.0), d.num(0.0)
        lvl = ctx.level(stage, "probability")
        p0 = ctx.plan.column(lvl, f"({one} / ({one} + {d.exp(m)}))")
        t = _binary_threshold(stage)
        raw_threshold = -math.inf if t == 0.0 else math.inf if t == 1.0 else math.log(t / (1.0 - t))
        above = f"{m} > {d.num(raw_threshold)} AND NOT {d.is_nan(m)}"
        prediction = f"(CASE WHEN {above} THEN {one} ELSE {zero} END)"
        classifier.emit(ctx, stage, prediction, [f"(-{m})", m], [p0, f"({one} - {p0})"])
        return
    lvl = ctx.level(stage, "softmax max")
    top = ctx.plan.column(lvl, f"GREATEST({', '.join(margins)})")
    lvl = ctx.level(stage, "softmax exp")
    exps = [ctx.plan.column(lvl, d.exp(f"({m} - {top})")) for m in margins]
    lvl = ctx.level(stage, "softmax sum")
    inverse = ctx.plan.column(lvl, f"({d.num(1.0)} / ({' + '.join(exps)}))")
    lvl = ctx.level(stage, "probability")
    probability = [ctx.plan.column(lvl, f"({e} * {inverse})") for e in exps]
    prediction = classifier.predict(ctx, stage, margins, probability)
    classifier.emit(ctx, stage, prediction, margins, probability)


def _binary_threshold(stage: SavedStage) -> float:
    """``getThreshold``: ``thresholds`` when set (``1 / (1 + t0 / t1)``), else ``threshold``."""
    ts = classifier.thresholds(stage, 2)
    if ts is not None:
        return 1.0 / (1.0 + ts[0] / ts[1])
    return float(stage.param("threshold", 0.5))


def linear_regression(stage: SavedStage, ctx: Context) -> None:
    """``regression/LinearRegression.scala`` (LinearRegressionModel.predict):
    ``x.coefficients + intercept``."""
    features = ctx.vector(stage, str(stage.param("featuresCol", "features")))
    row = stage.data[0]
    expr = _dot(ctx, stage, features, vector_values(row["coefficients"]), float(row["intercept"]))
    lvl = ctx.level(stage)
    prediction = ctx.plan.column(lvl, ctx.guard(expr, model_checks(stage, features)))
    classifier.emit(ctx, stage, prediction)


STAGES = {
    "org.apache.spark.ml.classification.LogisticRegressionModel": logistic_regression,
    "org.apache.spark.ml.regression.LinearRegressionModel": linear_regression,
}
