"""Tree models: DecisionTree, RandomForest and GBT classifiers and regressors.

Saved layout (``tree/treeModels.scala``, DecisionTreeModelReadWrite and
EnsembleModelReadWrite): one row per node (``id``, ``prediction``, ``impurityStats``,
``leftChild``, ``rightChild``, ``split{featureIndex, leftCategoriesOrThreshold,
numCategories}``), ensembles prefix a ``treeID`` and keep each tree's weight in
``treesMetadata/``.

Each tree becomes one nested ``CASE`` column (``tree/Node.scala``, InternalNode.predictImpl;
``tree/Split.scala``, shouldGoLeft): a continuous split goes left iff ``x <= threshold``
(NaN goes right: ``NaN <= t`` is false, and SQL orders NaN above every number, so
``x <= t`` is false too); a categorical split goes left iff ``x`` is in the left
categories, tested as ``x IN (left)`` when the left set is the smaller one and as
``x NOT IN (right)`` otherwise, like Spark (so NaN goes right, respectively left). Splits on
one-hot elements are decided here when both values go the same way, else become a test of
the part's index.

What a leaf yields (``classification/RandomForestClassifier.scala``, ``GBTClassifier.scala``,
``regression/*.scala``):

- DecisionTreeClassifier: its class counts (rawPrediction), their normalisation
  (probability) and the prediction, all constants of the leaf: one array per leaf;
- RandomForestClassifier: the leaf's counts divided by their sum (zeros for an empty
  leaf), summed over the trees in order (rawPrediction), normalised (probability);
- RandomForestRegressor: the mean of the leaf predictions (sum in order, / numTrees);
- GBT: ``margin = sum of weight_t * prediction_t`` (``blas.ddot``, here left to right: last
  bits may differ); the classifier's rawPrediction is ``[-margin, margin]``, its
  probability ``p0 = 1 / (1 + exp(2 * margin))`` (``LogLoss.computeProbability`` of
  ``-margin``), ``p1 = 1 - p0``.

Trees go into levels of at most ``TREES_PER_LEVEL`` columns, each followed by a level that
adds them to the running sums, so PostgreSQL never sees one select list of thousands of
columns (its limit is 1,664) and the query stays linear in the number of nodes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqltrack.scoring import classifier
from sqltrack.scoring.archive import SavedStage
from sqltrack.scoring.context import Context, model_checks, refuse
from sqltrack.scoring.plan import Check, Slots, Vector

__all__ = ["STAGES", "TREES_PER_LEVEL"]

TREES_PER_LEVEL = 100

Node = dict[str, Any]


def _trees(stage: SavedStage) -> list[tuple[float, dict[int, Node]]]:
    """(weight, nodes by id) per tree, in tree order."""
    if not stage.data:
        raise refuse(stage, "its data/ holds no tree nodes")
    if "treeID" not in stage.data[0]:
        return [(1.0, {int(n["id"]): n for n in stage.data})]
    by_tree: dict[int, dict[int, Node]] = {}
    for row in stage.data:
        node = row["nodeData"]
        by_tree.setdefault(int(row["treeID"]), {})[int(node["id"])] = node
    weights = {int(t["_1"]): float(t["_3"]) for t in stage.trees}
    if sorted(by_tree) != list(range(len(by_tree))) or set(weights) != set(by_tree):
        raise refuse(stage, "its trees and treesMetadata/ do not list the same tree ids 0..n-1")
    return [(weights[t], by_tree[t]) for t in sorted(by_tree)]


class _Compiler:
    def __init__(self, ctx: Context, stage: SavedStage, features: Vector) -> None:
        self.ctx, self.stage, self.features = ctx, stage, features
        self.d = ctx.d

    def goes_left(self, split: dict[str, Any], x: float) -> bool:
        cats = [float(c) for c in split["leftCategoriesOrThreshold"]]
        n = int(split["numCategories"])
        if n < 0:
            return x <= cats[0]
        left = set(cats)
        if len(left) <= n // 2:
            return x in left
        return x not in {float(c) for c in range(n)} - left

    def condition(self, split: dict[str, Any]) -> str | bool:
        """The SQL condition for going left, or True/False when it is decided here."""
        index = int(split["featureIndex"])
        try:
            part, k = self.features.element(index)
        except IndexError:
            raise refuse(
                self.stage,
                f"a split reads feature {index} of a {self.features.size}-element vector",
            ) from None
        if isinstance(part, Slots):
            on, off = self.goes_left(split, part.on[k]), self.goes_left(split, part.off[k])
            if on == off:
                return on
            return f"{part.index} = {k}" if on else f"{part.index} <> {k}"
        x = part.exprs[k]
        cats = [float(c) for c in split["leftCategoriesOrThreshold"]]
        n = int(split["numCategories"])
        if n < 0:
            return f"{x} <= {self.d.num(cats[0])}"
        left = sorted(set(cats))
        if len(left) <= n // 2:
            return f"{x} IN ({', '.join(self.d.num(c) for c in left)})" if left else False
        right = sorted({float(c) for c in range(n)} - set(left))
        return f"{x} NOT IN ({', '.join(self.d.num(c) for c in right)})" if right else True

    def tree(self, nodes: dict[int, Node], leaf: Callable[[Node], str]) -> str:
        def walk(node_id: int) -> str:
            node = nodes[node_id]
            if int(node["leftChild"]) < 0:
                return leaf(node)
            cond = self.condition(node["split"])
            if cond is True:
                return walk(int(node["leftChild"]))
            if cond is False:
                return walk(int(node["rightChild"]))
            left, right = walk(int(node["leftChild"])), walk(int(node["rightChild"]))
            if left == right:
                return left
            return f"CASE WHEN {cond} THEN {left} ELSE {right} END"

        return walk(0)

    def checks(self) -> list[Check]:
        return model_checks(self.stage, self.features)

    def sums(
        self,
        trees: Sequence[tuple[float, dict[int, Node]]],
        leaf: Callable[[float, Node], list[float]],
        width: int,
    ) -> list[str]:
        """Per output element, the column holding the sum over the trees (in tree order) of
        ``leaf(weight, node)``; the first tree column raises the features' checks."""
        d = self.d
        sums: list[str] = []
        for start in range(0, len(trees), TREES_PER_LEVEL):
            chunk = trees[start : start + TREES_PER_LEVEL]
            lvl = self.ctx.level(self.stage, f"trees {start}-{start + len(chunk) - 1}")
            cols = []
            for t, (weight, nodes) in enumerate(chunk):

                def value(node: Node, w: float = weight) -> str:
                    values = leaf(w, node)
                    return d.num(values[0]) if width == 1 else d.nums(values)

                expr = self.tree(nodes, value)
                if start == 0 and t == 0:
                    expr = self.ctx.guard(f"({expr})", self.checks(), array=width > 1)
                cols.append(self.ctx.plan.column(lvl, expr))
            lvl = self.ctx.level(self.stage, f"sums of trees 0-{start + len(chunk) - 1}")
            new = []
            for k in range(width):
                items = [c if width == 1 else f"{c}[{k + 1}]" for c in cols]
                new.append(
                    self.ctx.plan.column(lvl, " + ".join(([sums[k]] if sums else []) + items))
                )
            sums = new
        return sums


def _features(stage: SavedStage, ctx: Context) -> Vector:
    return ctx.vector(stage, str(stage.param("featuresCol", "features")))


def _classes(stage: SavedStage, trees: list[tuple[float, dict[int, Node]]]) -> int:
    n = stage.metadata.get("numClasses")
    if n is None:
        n = len(trees[0][1][0]["impurityStats"])
    return int(n)


def _normalized(stats: Sequence[float]) -> list[float]:
    total = 0.0
    for s in stats:
        total += s
    return [s / total for s in stats] if total != 0 else [0.0] * len(stats)


def decision_tree_classifier(stage: SavedStage, ctx: Context) -> None:
    (_, nodes), *rest = _trees(stage)
    classes = _classes(stage, [(1.0, nodes)])
    ts = classifier.thresholds(stage, classes)
    c = _Compiler(ctx, stage, _features(stage, ctx))

    def leaf(node: Node) -> str:
        raw = [float(s) for s in node["impurityStats"]]
        probability = _normalized(raw)
        return ctx.d.nums([classifier.py_predict(raw, probability, ts), *raw, *probability])

    lvl = ctx.level(stage, "tree")
    column = ctx.plan.column(lvl, ctx.guard(f"({c.tree(nodes, leaf)})", c.checks(), array=True))
    raw = [f"{column}[{k + 2}]" for k in range(classes)]
    probability = [f"{column}[{classes + k + 2}]" for k in range(classes)]
    classifier.emit(ctx, stage, f"{column}[1]", raw, probability)


def decision_tree_regressor(stage: SavedStage, ctx: Context) -> None:
    (_, nodes), *_ = _trees(stage)
    c = _Compiler(ctx, stage, _features(stage, ctx))
    lvl = ctx.level(stage, "tree")
    expr = c.tree(nodes, lambda n: ctx.d.num(float(n["prediction"])))
    classifier.emit(ctx, stage, ctx.plan.column(lvl, ctx.guard(f"({expr})", c.checks())))


def random_forest_classifier(stage: SavedStage, ctx: Context) -> None:
    d = ctx.d
    trees = _trees(stage)
    classes = _classes(stage, trees)
    c = _Compiler(ctx, stage, _features(stage, ctx))
    raw = c.sums(trees, lambda w, n: _normalized([float(s) for s in n["impurityStats"]]), classes)
    lvl = ctx.level(stage, "probability")
    total = ctx.plan.column(lvl, " + ".join(raw))
    lvl = ctx.level(stage, "probability")
    probability = [
        ctx.plan.column(lvl, f"(CASE WHEN {total} <> {d.num(0.0)} THEN {r} / {total} ELSE {r} END)")
        for r in raw
    ]
    classifier.emit(ctx, stage, classifier.predict(ctx, stage, raw, probability), raw, probability)


def random_forest_regressor(stage: SavedStage, ctx: Context) -> None:
    trees = _trees(stage)
    c = _Compiler(ctx, stage, _features(stage, ctx))
    (total,) = c.sums(trees, lambda w, n: [float(n["prediction"])], 1)
    lvl = ctx.level(stage, "mean")
    classifier.emit(ctx, stage, ctx.plan.column(lvl, f"({total} / {ctx.d.num(float(len(trees)))})"))


def _margin(stage: SavedStage, ctx: Context) -> str:
    trees = _trees(stage)
    c = _Compiler(ctx, stage, _features(stage, ctx))
    (margin,) = c.sums(trees, lambda w, n: [float(n["prediction"]) * w], 1)
    return margin


def gbt_classifier(stage: SavedStage, ctx: Context) -> None:
    d = ctx.d
    loss = str(stage.param("lossType", "logistic"))
    if loss != "logistic":
        raise refuse(stage, f"lossType={loss!r}; only logistic has a probability")
    m = _margin(stage, ctx)
    one, two = d.num(1.0), d.num(2.0)
    lvl = ctx.level(stage, "probability")
    twice = ctx.plan.column(lvl, f"({two} * {m})")
    lvl = ctx.level(stage, "probability")
    p0 = ctx.plan.column(lvl, f"({one} / ({one} + {d.exp(twice)}))")
    lvl = ctx.level(stage, "probability")
    p1 = ctx.plan.column(lvl, f"({one} - {p0})")
    raw = [ctx.plan.column(lvl, f"(-{m})"), m]
    classifier.emit(ctx, stage, classifier.predict(ctx, stage, raw, [p0, p1]), raw, [p0, p1])


def gbt_regressor(stage: SavedStage, ctx: Context) -> None:
    classifier.emit(ctx, stage, _margin(stage, ctx))


STAGES = {
    "org.apache.spark.ml.classification.DecisionTreeClassificationModel": decision_tree_classifier,
    "org.apache.spark.ml.regression.DecisionTreeRegressionModel": decision_tree_regressor,
    "org.apache.spark.ml.classification.RandomForestClassificationModel": random_forest_classifier,
    "org.apache.spark.ml.regression.RandomForestRegressionModel": random_forest_regressor,
    "org.apache.spark.ml.classification.GBTClassificationModel": gbt_classifier,
    "org.apache.spark.ml.regression.GBTRegressionModel": gbt_regressor,
}
