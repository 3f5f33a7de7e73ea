"""Fixtures of the registry tests: one store per backend and test module, holding two
finished runs that each logged their training data and stored a registry_models Spark pipeline
(Spark's writes are the slow part, so they happen once per module, not once per test).

Each test registers its own model names (``name`` fixture), so tests share the store
without seeing each other's registry rows."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.conftest import IN_CI, _pg_admin


@dataclass(frozen=True)
class Trained:
    run_id: str
    dataset: Any  # sqltrack.Dataset
    stored: Any  # sqltrack.ModelVersion (the stored model)
    model: Any  # the registry_models PipelineModel

    @property
    def uri(self) -> str:
        return f"runs:/{self.run_id}/model"


@pytest.fixture(scope="module")
def registry_orders(spark):
    rows = [
        ("Paris", 1.0, 1),
        ("Lyon", 2.5, 0),
        ("Paris", 3.0, 0),
        ("Nice", 0.5, 1),
        ("Lyon", 4.0, 1),
        ("Nice", 1.5, 0),
    ] * 3
    return spark.createDataFrame(rows, ["city", "price", "label"]).cache()


@pytest.fixture(scope="module")
def registry_models(registry_orders):
    from pyspark.ml import Pipeline
    from pyspark.ml.classification import LogisticRegression
    from pyspark.ml.feature import StringIndexer, VectorAssembler

    def fit(reg: float) -> Any:
        return Pipeline(
            stages=[
                StringIndexer(inputCol="city", outputCol="city_idx"),
                VectorAssembler(inputCols=["city_idx", "price"], outputCol="features"),
                LogisticRegression(maxIter=5, regParam=reg),
            ]
        ).fit(registry_orders)

    return fit(0.01), fit(1.0)


@pytest.fixture(scope="module", params=["duckdb", "postgres"])
def registry_uri(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """An empty store of its own for this module, per backend."""
    if request.param == "duckdb":
        yield f"duckdb:///{tmp_path_factory.mktemp('registry') / 'store.duckdb'}"
        return
    try:
        conn, p = _pg_admin()
    except Exception as exc:
        if IN_CI:
            pytest.fail(f"PostgreSQL is unreachable in CI: {exc}")
        pytest.skip(f"PostgreSQL is unreachable: {exc}")
    db = f"sqltrack_registry_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    with conn:
        conn.execute(f'CREATE DATABASE "{db}"')  # test-only name built above
    user = f"{p.user}@" if p.user else ""
    yield f"postgresql://{user}{p.host or '127.0.0.1'}:{p.port or 5432}/{db}"
    conn, _ = _pg_admin()
    with conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')


def train(
    tracker: Any, registry_orders: Any, model: Any, *, end: bool = True, data: bool = True
) -> Trained:
    """A run that logged its training data (``data``) and stored ``model``."""
    run = tracker.start_run()
    dataset = tracker.log_dataset(registry_orders, "training") if data else None
    stored = tracker.log_spark_model(model)
    if end:
        tracker.end_run()
    return Trained(run.run_id, dataset, stored, model)


@pytest.fixture(scope="module")
def trained(registry_uri: str, registry_orders: Any, registry_models: Any) -> list[Trained]:
    import sqltrack

    with sqltrack.connect(registry_uri) as tracker:
        return [train(tracker, registry_orders, model) for model in registry_models]


@pytest.fixture
def reg(registry_uri: str, trained: list[Trained]) -> Iterator[Any]:
    """A tracker on the module's trained store."""
    import sqltrack

    t = sqltrack.connect(registry_uri)
    yield t
    t.close()


@pytest.fixture
def fresh_name() -> str:
    """A registered model name no other test uses."""
    return f"churn-{uuid.uuid4().hex[:8]}"


def count(tracker: Any, table: str, name: str) -> int:
    column = "model_name" if table == "deployment_events" else "name"
    return int(
        tracker.sql(
            f"SELECT count(*) FROM sqltrack.{table} WHERE {column} = ?",  # noqa: S608 (constants)
            (name,),
        )[1][0][0]
    )


def predictions(model: Any, df: Any) -> list[float]:
    return [r.prediction for r in model.transform(df).orderBy("city", "price").collect()]


__all__ = [
    "Trained",
    "count",
    "registry_models",
    "fresh_name",
    "registry_orders",
    "predictions",
    "reg",
    "registry_uri",
    "train",
    "trained",
]
