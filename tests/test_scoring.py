"""Scoring in the database: stored Spark pipelines compiled into one SQL query, run on DuckDB
and PostgreSQL, compared row by row with Spark's own ``model.transform``.

Parity, as tested here: the same rows (skip modes drop the same ones), predicted labels
identical, regression predictions, probabilities and raw predictions equal within 1e-9
relative (``math.isclose(rel_tol=1e-9)``, no absolute slack, NaN only where Spark has NaN).
Most values come out bit-identical; the rest differ in the last bits where Spark's BLAS
groups a dot product's additions differently.

Every model is fitted once per module on one synthetic data set of 10,000 orders (nulls,
NaN, categories unseen at training time, frequency ties, a binary and a three-class label
and a regression target) and stored once per backend, with the data set, in a module-scoped
store.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import pytest

import sqltrack
from sqltrack import scoring

pytestmark = pytest.mark.spark

ROWS = 10_000
CITIES = ("Lyon", "Paris", "Nice", "Lille", "Brest", "Metz", "Pau", "Dax", "Albi", "Agen")
UNSEEN = "Atlantis"  # only in rows that never train
ODD = "St. John's ?%"  # a label SQL must quote, with placeholder characters
TOLERANCE = 1e-9


# -- data ---------------------------------------------------------------------------------------
def make_orders(spark: Any) -> Any:
    import numpy as np
    import pyarrow as pa

    rng = np.random.default_rng(20_261_204)
    n = ROWS
    ids = np.arange(n, dtype=np.int64)
    cities = np.array([*CITIES, ODD], dtype=object)
    weights = 1.0 / np.arange(1, len(cities) + 1)
    city = cities[rng.choice(len(cities), size=n, p=weights / weights.sum())].astype(object)
    city[rng.random(n) < 0.03] = None
    city[ids % 97 == 5] = UNSEEN
    # segment frequencies tie in the training rows (id % 4 != 0): A = C, B = D
    segment = np.array(["A", "A", "A", "B", "B", "C", "C", "D"], dtype=object)[ids % 8]
    mode = np.array(["Standard", "Second", "First", "Same Day"], dtype=object)[
        rng.choice(4, size=n, p=[0.55, 0.25, 0.15, 0.05])
    ]
    quantity = rng.integers(1, 10, size=n)
    quantity_missing = rng.random(n) < 0.02
    price = np.round(rng.lognormal(3.0, 0.6, size=n), 2)
    price[rng.random(n) < 0.01] = 0.0
    price_nan = rng.random(n) < 0.02
    price_null = (rng.random(n) < 0.03) & ~price_nan
    price[price_nan] = np.nan
    rating = rng.integers(1, 6, size=n).astype(float)
    rating[rng.random(n) < 0.02] = np.nan
    days = np.round(rng.gamma(2.0, 2.0, size=n), 1)
    weight = np.round(rng.uniform(0.0, 30.0, size=n), 1)
    weight[rng.random(n) < 0.05] = 0.0
    flag = rng.random(n) < 0.3
    signal = (
        (mode == "Same Day") * 1.5
        + (mode == "First") * 0.8
        + np.where(city == "Paris", 0.7, 0.0)
        + np.nan_to_num(price, nan=20.0) / 40.0
        + 0.15 * quantity
        + 0.3 * flag
        - 0.1 * days
        + rng.normal(0.0, 0.8, size=n)
    )
    label = (signal > np.median(signal)).astype(np.int32)
    label3 = np.digitize(signal, np.quantile(signal, [0.33, 0.66])).astype(np.int32)
    target = 0.4 * days + 0.2 * quantity + rng.normal(0.0, 0.5, size=n)
    seen = np.array([c is not None and c != UNSEEN for c in city])
    clean = seen & ~price_nan & ~price_null & ~quantity_missing
    table = pa.table(
        {
            "id": pa.array(ids),
            "city": pa.array(list(city), pa.string()),
            "segment": pa.array(list(segment), pa.string()),
            "mode": pa.array(list(mode), pa.string()),
            "quantity": pa.array(quantity.astype(np.int32), mask=quantity_missing),
            "price": pa.array(price, mask=price_null),  # NaN and null both
            "rating": pa.array(rating),
            "days": pa.array(days),
            "weight": pa.array(weight),
            "const": pa.array(np.full(n, 5.0)),
            "flag": pa.array(flag),
            "label": pa.array(label),
            "label3": pa.array(label3),
            "target": pa.array(target),
            "clean": pa.array(clean),
        }
    )
    return spark.createDataFrame(table)


# -- the models -----------------------------------------------------------------------------------
def _stages() -> dict[str, list[Any]]:
    """Every pipeline, by name: five realistic ones, one per remaining model, and stage
    variants (each feeding a regression whose coefficients are all non-zero, so any
    difference in a feature shows in the prediction)."""
    from pyspark.ml.classification import (
        DecisionTreeClassifier,
        GBTClassifier,
        LogisticRegression,
        RandomForestClassifier,
    )
    from pyspark.ml.feature import (
        Bucketizer,
        Imputer,
        MaxAbsScaler,
        MinMaxScaler,
        OneHotEncoder,
        StandardScaler,
        StringIndexer,
        VectorAssembler,
    )
    from pyspark.ml.regression import (
        DecisionTreeRegressor,
        GBTRegressor,
        LinearRegression,
        RandomForestRegressor,
    )

    inf = float("inf")
    cats = ["city", "segment", "mode"]

    def demo_features() -> list[Any]:
        return [
            StringIndexer(
                inputCols=cats, outputCols=[f"{c}_idx" for c in cats], handleInvalid="keep"
            ),
            OneHotEncoder(
                inputCols=[f"{c}_idx" for c in cats], outputCols=[f"{c}_vec" for c in cats]
            ),
            Imputer(inputCols=["price", "quantity"], outputCols=["price_i", "quantity_i"]),
            VectorAssembler(
                inputCols=[*(f"{c}_vec" for c in cats), "price_i", "quantity_i", "flag", "days"],
                outputCol="features",
            ),
        ]

    def indexed_features() -> list[Any]:  # indices straight into trees: categorical splits
        return [
            StringIndexer(
                inputCol="city",
                outputCol="city_idx",
                handleInvalid="keep",
                stringOrderType="frequencyAsc",
            ),
            StringIndexer(
                inputCol="segment", outputCol="segment_idx", stringOrderType="alphabetDesc"
            ),
            Imputer(inputCols=["price"], outputCols=["price_i"], strategy="median"),
            VectorAssembler(
                inputCols=["city_idx", "segment_idx", "price_i", "days", "quantity"],
                outputCol="features",
                handleInvalid="keep",
            ),
        ]

    return {
        # realistic pipelines
        "churn_lr": [
            *demo_features(),
            LogisticRegression(labelCol="label", regParam=0.01, threshold=0.4),
        ],
        "forest_3class": [
            *indexed_features(),
            RandomForestClassifier(labelCol="label3", numTrees=20, maxDepth=6, seed=3),
        ],
        "gbt_days_late": [
            Imputer(inputCols=["quantity"], outputCols=["quantity_i"]),
            Bucketizer(
                inputCol="days",
                outputCol="days_b",
                splits=[-inf, 1.0, 3.0, 7.0, inf],
                handleInvalid="keep",
            ),
            StringIndexer(inputCol="mode", outputCol="mode_idx"),
            OneHotEncoder(inputCol="mode_idx", outputCol="mode_vec", dropLast=False),
            VectorAssembler(
                inputCols=["mode_vec", "days_b", "quantity_i", "price"],
                outputCol="features",
                handleInvalid="keep",
            ),
            GBTRegressor(labelCol="target", maxIter=15, maxDepth=4, seed=3),
        ],
        "softmax_scaled": [
            StringIndexer(inputCol="city", outputCol="city_idx", handleInvalid="skip"),
            OneHotEncoder(inputCol="city_idx", outputCol="city_vec"),
            Imputer(inputCols=["price", "quantity"], outputCols=["price_i", "quantity_i"]),
            VectorAssembler(
                inputCols=["city_vec", "price_i", "quantity_i", "flag"], outputCol="raw"
            ),
            StandardScaler(inputCol="raw", outputCol="std", withMean=True),
            MaxAbsScaler(inputCol="std", outputCol="features"),
            LogisticRegression(
                labelCol="label3", family="multinomial", thresholds=[0.5, 0.3, 0.2], regParam=0.01
            ),
        ],
        "gbt_minmax": [
            StringIndexer(
                inputCol="city",
                outputCol="city_idx",
                handleInvalid="keep",
                stringOrderType="alphabetAsc",
            ),
            OneHotEncoder(inputCol="city_idx", outputCol="city_vec"),
            VectorAssembler(
                inputCols=["city_vec", "price", "days", "weight"],
                outputCol="raw",
                handleInvalid="keep",
            ),
            MinMaxScaler(inputCol="raw", outputCol="features"),
            GBTClassifier(labelCol="label", maxIter=15, maxDepth=3, seed=3),
        ],
        # the remaining models
        "tree_3class": [
            *indexed_features(),
            DecisionTreeClassifier(labelCol="label3", maxDepth=6, seed=3),
        ],
        "tree_days": [*demo_features(), DecisionTreeRegressor(labelCol="target", maxDepth=6)],
        "forest_days": [
            *demo_features(),
            RandomForestRegressor(labelCol="target", numTrees=10, maxDepth=5, seed=3),
        ],
        "linear_days": [*demo_features(), LinearRegression(labelCol="target", regParam=0.01)],
        # stage variants
        "indexer_variants": [
            *(
                StringIndexer(
                    inputCol="city",
                    outputCol=f"city_{order}",
                    handleInvalid="keep",
                    stringOrderType=order,
                )
                for order in ("frequencyDesc", "frequencyAsc", "alphabetDesc", "alphabetAsc")
            ),
            StringIndexer(
                inputCol="segment", outputCol="segment_asc", stringOrderType="frequencyAsc"
            ),
            StringIndexer(inputCol="segment", outputCol="segment_desc"),
            StringIndexer(
                inputCol="rating", outputCol="rating_idx", handleInvalid="keep"
            ),  # doubles, NaN
            StringIndexer(
                inputCol="quantity", outputCol="quantity_idx", handleInvalid="keep"
            ),  # integers, nulls
            OneHotEncoder(
                inputCols=["city_alphabetAsc", "rating_idx"],
                outputCols=["city_vec", "rating_vec"],
                dropLast=False,
                handleInvalid="keep",
            ),
            VectorAssembler(
                inputCols=[
                    "city_frequencyDesc",
                    "city_frequencyAsc",
                    "city_alphabetDesc",
                    "city_vec",
                    "segment_asc",
                    "segment_desc",
                    "rating_vec",
                    "quantity_idx",
                ],
                outputCol="features",
            ),
            LinearRegression(labelCol="target", regParam=0.1),
        ],
        "scaler_variants": [
            Imputer(inputCols=["price", "quantity"], outputCols=["price_i", "quantity_i"]),
            Imputer(
                inputCols=["weight"], outputCols=["weight_i"], missingValue=0.0, strategy="median"
            ),
            Bucketizer(
                inputCols=["days", "weight_i"],
                outputCols=["days_b", "weight_b"],
                splitsArray=[[-inf, 2.0, 4.0, inf], [0.0, 10.0, 20.0, 30.0]],
            ),
            VectorAssembler(
                inputCols=["price_i", "quantity_i", "days_b", "weight_b", "weight_i", "const"],
                outputCol="raw",
            ),
            StandardScaler(inputCol="raw", outputCol="centered", withMean=True, withStd=False),
            MinMaxScaler(inputCol="centered", outputCol="ranged", min=-1.0, max=2.0),
            StandardScaler(inputCol="ranged", outputCol="features"),
            LinearRegression(labelCol="target", regParam=0.01),
        ],
        "assembler_skip": [
            VectorAssembler(
                inputCols=["price", "quantity", "days"], outputCol="raw", handleInvalid="skip"
            ),
            StandardScaler(inputCol="raw", outputCol="features"),
            LinearRegression(labelCol="target"),
        ],
    }


@pytest.fixture(scope="module")
def orders(spark) -> Iterator[Any]:
    df = make_orders(spark).cache()
    yield df
    df.unpersist()


def _outputs(model: Any, df: Any) -> dict[int, tuple[Any, ...]]:
    """Spark's transform, by id: (prediction, rawPrediction list or None, probability)."""
    from pyspark.ml.functions import vector_to_array
    from pyspark.sql import functions as F

    out = model.transform(df)
    cols = [F.col("id"), F.col("prediction")]
    for c in ("rawPrediction", "probability"):
        cols.append(vector_to_array(c).alias(c) if c in out.columns else F.lit(None).alias(c))
    return {r[0]: tuple(r[1:]) for r in out.select(*cols).collect()}


@pytest.fixture(scope="module")
def fitted(orders) -> dict[str, tuple[Any, dict[int, tuple[Any, ...]]]]:
    """name -> (PipelineModel, Spark's outputs on all orders); fitted on the training rows."""
    from pyspark.ml import Pipeline

    train = orders.where("id % 4 <> 0 AND (city IS NULL OR city <> 'Atlantis')")
    # Spark's tree learners refuse NaN features: they train on rows without missing numbers
    # (and score every row, NaN ones included)
    complete = train.where("quantity IS NOT NULL AND price IS NOT NULL AND NOT isnan(price)")
    out = {}
    stages_by_name = _stages()
    assert tuple(stages_by_name) == MODELS
    for name, stages in stages_by_name.items():
        data = complete if name in NAN_FREE_TRAINING else train
        model = Pipeline(stages=stages).fit(data)
        out[name] = (model, _outputs(model, orders))
    return out


@pytest.fixture(scope="module", params=["duckdb", "postgres"])
def store(request, tmp_path_factory, orders, fitted) -> Iterator[tuple[Any, str, str]]:
    """(tracker, run id, table of all orders) on each backend, every model stored."""
    if request.param == "duckdb":
        uri = f"duckdb:///{tmp_path_factory.mktemp('scoring') / 'store.duckdb'}"
    else:
        uri = request.getfixturevalue("pg_uri")
        from sqltrack.backends import parse_uri
        from sqltrack.backends.postgres import PostgresBackend

        with PostgresBackend(parse_uri(uri)).connect() as conn:
            conn.execute("DROP SCHEMA IF EXISTS sqltrack CASCADE")
            conn.execute("DROP SCHEMA IF EXISTS sqltrack_data CASCADE")
    tracker = sqltrack.connect(uri)
    tracker.create_experiment("scoring")
    with tracker.start_run(run_name="models") as run:
        dataset = tracker.log_dataset(orders, "orders")
        for name, (model, _) in fitted.items():
            tracker.log_spark_model(model, name)
    yield tracker, run.run_id, dataset.table_name
    tracker.close()


# -- comparison -----------------------------------------------------------------------------------
def _close(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    if math.isnan(b):
        return math.isnan(a)
    return math.isclose(a, b, rel_tol=TOLERANCE, abs_tol=0.0)


def score(
    store: tuple[Any, str, str], name: str, source: str | None = None
) -> tuple[list[str], list[tuple[Any, ...]]]:
    tracker, run_id, table = store
    view = f"score_{name}"
    scoring.create_view(tracker, f"runs:/{run_id}/{name}", source or table, view, replace=True)
    return tracker.sql(f'SELECT * FROM "{view}"')  # noqa: S608 (a test's own view name)


def assert_parity(
    columns: list[str],
    rows: list[tuple[Any, ...]],
    expected: dict[int, tuple[Any, ...]],
    classifier: bool,
) -> float:
    """Row-by-row parity; returns the share of bit-identical output values."""
    got = {r[columns.index("id")]: dict(zip(columns, r, strict=True)) for r in rows}
    assert sorted(got) == sorted(expected), "the SQL keeps other rows than Spark"
    same = total = 0
    for key, (prediction, raw, probability) in expected.items():
        row = got[key]
        if classifier:
            assert row["prediction"] == prediction, (key, row["prediction"], prediction)
        else:
            assert _close(row["prediction"], prediction), (key, row["prediction"], prediction)
        values = [(row["prediction"], prediction)]
        for col, want in (("rawPrediction", raw), ("probability", probability)):
            if want is None:
                assert col not in row
                continue
            have = row[col]
            assert len(have) == len(want), (key, col)
            for k, (a, b) in enumerate(zip(have, want, strict=True)):
                assert _close(a, b), (key, col, k, a, b)
                assert row[f"{col}_{k}"] == a or (math.isnan(a) and math.isnan(row[f"{col}_{k}"]))
                values.append((a, b))
        total += len(values)
        same += sum(1 for a, b in values if a == b or (math.isnan(a) and math.isnan(b)))
    return same / total


CLASSIFIERS = {"churn_lr", "forest_3class", "softmax_scaled", "gbt_minmax", "tree_3class"}
NAN_FREE_TRAINING = {"forest_3class", "gbt_days_late", "gbt_minmax", "tree_3class"}
MODELS = (
    *("churn_lr", "forest_3class", "gbt_days_late", "softmax_scaled", "gbt_minmax"),
    *("tree_3class", "tree_days", "forest_days", "linear_days"),
    *("indexer_variants", "scaler_variants", "assembler_skip"),
)


@pytest.mark.parametrize("name", MODELS)
def test_sql_matches_spark_row_by_row(store, fitted, name):
    columns, rows = score(store, name)
    share = assert_parity(columns, rows, fitted[name][1], name in CLASSIFIERS)
    assert share > 0.5  # most values are bit-identical, not merely close


def test_the_data_exercises_nulls_nan_unseen_and_skips(fitted):
    _, churn = fitted["churn_lr"]
    assert len(churn) == ROWS
    _, skipped = fitted["softmax_scaled"]  # null and unseen cities dropped
    assert ROWS * 0.9 < len(skipped) < ROWS
    _, dropped = fitted["assembler_skip"]  # null and NaN prices, null quantities dropped
    assert ROWS * 0.85 < len(dropped) < ROWS
    _, forest = fitted["forest_3class"]
    assert {p for p, _, _ in forest.values()} == {0.0, 1.0, 2.0}
