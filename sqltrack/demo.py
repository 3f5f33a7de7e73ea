"""The end-to-end demo (``sqltrack demo``, what ``make demo`` runs): the supply-chain scenario
of Splice Machine's MLManager article, on sqltrack.

A deterministic synthetic data set of orders (generated here, seeded) is split into training
and test orders. Two data scientists (``alice`` and ``bob``, recorded as the runs' user and
tagged) work in one experiment: each fits the preprocessing ``StringIndexer ->
OneHotEncoder -> VectorAssembler`` on a training sample of their own size, then loops over
models. Every run logs its pipeline stages, feature transformations, ``dataSize``, the model's
params, the evaluator metrics, a training timer, its exact training DataFrame (as a SQL
table, through the data source), the fitted ``PipelineModel`` and, for classifiers, an ROC
curve. The demo ends with plain SQL against the store: this invocation's leaderboard, the best
run by areaUnderROC, the exact table and fingerprint of its training data, and its feature
chains; then it reloads that training set and model from the store and checks that they give
the original predictions.

Runs accumulate when the demo runs again on the same store; every run is tagged with this
invocation's id (``demo.invocation``) and the queries select by it.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import tempfile
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqltrack.tracking import Tracker

__all__ = ["DemoResult", "QUERIES", "generate_orders", "run_demo"]

EXPERIMENT = "supply-chain-late-delivery"
LABEL = "late_delivery"
TARGET = "days_late"
CATEGORICAL = ("shipping_mode", "destination_city", "customer_segment", "product_category")
NUMERIC = ("quantity", "price", "scheduled_shipping_days")
FEATURES = "featuresVec"
INVOCATION_TAG = "demo.invocation"

_MODES = (("Standard Class", 0.60, 4, 0.05), ("Second Class", 0.20, 2, 0.9),
          ("First Class", 0.15, 1, 1.4), ("Same Day", 0.05, 0, 0.4))  # fmt: skip
_SEGMENTS = (("Consumer", 0.52), ("Corporate", 0.30), ("Home Office", 0.18))
_CATEGORIES = ("Cleats", "Men's Footwear", "Women's Apparel", "Indoor/Outdoor Games",
               "Cardio Equipment", "Shop By Sport", "Camping & Hiking", "Fishing",
               "Water Sports", "Electronics", "Golf Balls", "Accessories")  # fmt: skip
_CITIES = ("Caguas", "Chicago", "Los Angeles", "Brooklyn", "New York", "Philadelphia",
           "San Diego", "Houston", "Dallas", "Miami", "Denver", "Seattle", "Atlanta",
           "Phoenix", "Detroit", "Boston", "Austin", "Portland", "San Jose", "Columbus",
           "Las Vegas", "Tucson", "Memphis", "Baltimore", "Albuquerque", "Fresno",
           "Sacramento", "Mesa", "Omaha", "Raleigh")  # fmt: skip

# The SQL the demo runs, shown as it is in the README. '?' is this invocation's id or the
# best run's id.
QUERIES: dict[str, str] = {
    "leaderboard": """
SELECT r.run_name, r.user_name, CAST(n.value AS INTEGER) AS data_size,
       auc.value AS area_under_roc, f1.value AS f1, r2.value AS r2,
       t.value AS training_seconds
FROM sqltrack.runs r
JOIN sqltrack.tags i ON i.run_id = r.run_id AND i.key = 'demo.invocation' AND i.value = ?
JOIN sqltrack.tags n ON n.run_id = r.run_id AND n.key = 'dataSize'
LEFT JOIN sqltrack.latest_metrics auc ON auc.run_id = r.run_id AND auc.key = 'areaUnderROC'
LEFT JOIN sqltrack.latest_metrics f1 ON f1.run_id = r.run_id AND f1.key = 'F1'
LEFT JOIN sqltrack.latest_metrics r2 ON r2.run_id = r.run_id AND r2.key = 'r2'
LEFT JOIN sqltrack.latest_metrics t ON t.run_id = r.run_id AND t.key = 'training_time'
ORDER BY r.start_time
""",
    "best_run": """
SELECT r.run_id, r.run_name, r.user_name, m.value AS area_under_roc
FROM sqltrack.runs r
JOIN sqltrack.tags i ON i.run_id = r.run_id AND i.key = 'demo.invocation' AND i.value = ?
JOIN sqltrack.latest_metrics m ON m.run_id = r.run_id AND m.key = 'areaUnderROC'
WHERE r.status = 'FINISHED' AND m.value <> CAST('NaN' AS DOUBLE PRECISION)
ORDER BY m.value DESC, r.start_time
LIMIT 1
""",
    "training_data": """
SELECT m.name AS model, m.model_class, d.table_name, d.row_count, d.fingerprint
FROM sqltrack.models m
JOIN sqltrack.datasets d ON d.dataset_id = m.dataset_id
WHERE m.run_id = ?
""",
    "feature_chains": """
SELECT source_column,
       source_column || ' -> '
         || string_agg(stage_class || ' -> ' || output_column, ' -> ' ORDER BY step) AS chain
FROM sqltrack.feature_transformations
WHERE run_id = ?
GROUP BY source_column, branch
ORDER BY source_column, branch
""",
}


@dataclass(frozen=True)
class QueryResult:
    name: str
    sql: str
    columns: list[str]
    rows: list[tuple[Any, ...]]


@dataclass
class DemoResult:
    """What the demo found, for tests and callers: the answers of its SQL and the checks."""

    uri: str
    invocation: str
    experiment: str
    run_ids: list[str] = field(default_factory=list)
    queries: dict[str, QueryResult] = field(default_factory=dict)
    best_run_id: str = ""
    best_run_name: str = ""
    best_auc: float = float("nan")
    training_table: str = ""
    training_fingerprint: str = ""
    training_rows: int = 0
    chains: list[str] = field(default_factory=list)
    predictions_compared: int = 0
    predictions_identical: int = 0
    seconds: float = 0.0


# -- the data ---------------------------------------------------------------------------------


def generate_orders(spark: Any, rows: int = 100_000, seed: int = 20_240_501) -> Any:
    """A deterministic synthetic table of orders: the same ``rows`` and ``seed`` give the same
    rows on every machine. Lateness depends on shipping mode, city, category, quantity and
    noise, so that models have something to find."""
    import datetime

    import numpy as np
    import pyarrow as pa

    rng = np.random.default_rng(seed)
    modes = np.array([m[0] for m in _MODES])
    mode_i = rng.choice(len(_MODES), size=rows, p=[m[1] for m in _MODES])
    scheduled = np.array([m[2] for m in _MODES])[mode_i]
    mode_delay = np.array([m[3] for m in _MODES])[mode_i]
    city_weights = 1.0 / np.arange(1, len(_CITIES) + 1) ** 0.6
    city_i = rng.choice(len(_CITIES), size=rows, p=city_weights / city_weights.sum())
    city_delay = np.random.default_rng(seed + 1).normal(0.0, 0.6, len(_CITIES))[city_i]
    segment_i = rng.choice(len(_SEGMENTS), size=rows, p=[s[1] for s in _SEGMENTS])
    category_i = rng.integers(0, len(_CATEGORIES), size=rows)
    category_delay = np.random.default_rng(seed + 2).normal(0.0, 0.3, len(_CATEGORIES))
    base_price = np.random.default_rng(seed + 3).uniform(15, 400, len(_CATEGORIES))
    quantity = rng.integers(1, 6, size=rows)
    price = np.round(base_price[category_i] * rng.lognormal(0.0, 0.25, rows), 2)
    delay = (
        mode_delay
        + city_delay
        + category_delay[category_i]
        + 0.2 * (quantity - 3)
        + 0.3 * (segment_i == 0)
        + rng.normal(0.0, 0.9, rows)
    )
    actual = np.maximum(0, np.rint(scheduled + delay)).astype(np.int64)
    days_late = (actual - scheduled).astype(np.float64)
    start = datetime.date(2024, 1, 1)
    order_date = [start + datetime.timedelta(days=int(d)) for d in rng.integers(0, 730, rows)]
    table = pa.table(
        {
            "order_id": pa.array(np.arange(1, rows + 1), pa.int64()),
            "order_date": pa.array(order_date, pa.date32()),
            "shipping_mode": pa.array(modes[mode_i]),
            "destination_city": pa.array(np.array(_CITIES)[city_i]),
            "customer_segment": pa.array(np.array([s[0] for s in _SEGMENTS])[segment_i]),
            "product_category": pa.array(np.array(_CATEGORIES)[category_i]),
            "quantity": pa.array(quantity, pa.int32()),
            "price": pa.array(price, pa.float64()),
            "scheduled_shipping_days": pa.array(scheduled, pa.int32()),
            LABEL: pa.array((days_late > 0).astype(np.int32), pa.int32()),
            TARGET: pa.array(days_late, pa.float64()),
        }
    )
    return spark.createDataFrame(table)


# -- the scenario -----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Spec:
    run_name: str
    kind: str  # binary or regression
    build: Callable[[], Any]


def _specs(scientist: str) -> list[_Spec]:
    from pyspark.ml.classification import (
        DecisionTreeClassifier,
        GBTClassifier,
        LogisticRegression,
        RandomForestClassifier,
    )
    from pyspark.ml.regression import RandomForestRegressor

    common: dict[str, Any] = {"featuresCol": FEATURES, "labelCol": LABEL}
    if scientist == "alice":
        return [
            _Spec("logistic-regression", "binary",
                  lambda: LogisticRegression(maxIter=10, regParam=0.01, **common)),
            _Spec("decision-tree", "binary",
                  lambda: DecisionTreeClassifier(maxDepth=5, seed=1, **common)),
            _Spec("gradient-boosted-trees", "binary",
                  lambda: GBTClassifier(maxIter=8, maxDepth=3, seed=1, **common)),
        ]  # fmt: skip
    return [
        *(
            _Spec(f"random-forest-{n}", "binary",
                  partial(RandomForestClassifier, numTrees=n, maxDepth=4, seed=1, **common))
            for n in (5, 10, 20)
        ),
        _Spec("random-forest-days-late", "regression",
              lambda: RandomForestRegressor(numTrees=10, maxDepth=4, seed=1,
                                            featuresCol=FEATURES, labelCol=TARGET)),
    ]  # fmt: skip


def _preprocessing() -> list[Any]:
    from pyspark.ml.feature import OneHotEncoder, StringIndexer, VectorAssembler

    indexed = [f"{c}_idx" for c in CATEGORICAL]
    encoded = [f"{c}_vec" for c in CATEGORICAL]
    return [
        StringIndexer(inputCols=list(CATEGORICAL), outputCols=indexed, handleInvalid="keep"),
        OneHotEncoder(inputCols=indexed, outputCols=encoded),
        VectorAssembler(inputCols=[*encoded, *NUMERIC], outputCol=FEATURES),
    ]


@contextmanager
def _as_user(name: str) -> Iterator[None]:
    """Record ``name`` as the user of the runs started inside (SQLTRACK_USER)."""
    old = os.environ.get("SQLTRACK_USER")
    os.environ["SQLTRACK_USER"] = name
    try:
        yield
    finally:
        if old is None:
            del os.environ["SQLTRACK_USER"]
        else:
            os.environ["SQLTRACK_USER"] = old


def _roc_figure(predictions: Any, title: str) -> Any | None:
    """The ROC curve of a classifier's test predictions, or None without matplotlib."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        return None
    import numpy as np
    from pyspark.ml.functions import vector_to_array
    from pyspark.sql import functions as F

    table = predictions.select(
        vector_to_array(F.col("probability"))[1].alias("score"), LABEL
    ).toArrow()
    score = table.column("score").to_numpy()
    label = table.column(LABEL).to_numpy()
    order = np.argsort(-score, kind="stable")
    tp = np.concatenate([[0], np.cumsum(label[order] == 1)])
    fp = np.concatenate([[0], np.cumsum(label[order] == 0)])
    fig = Figure(figsize=(4.5, 4.5))
    ax = fig.add_subplot()
    ax.plot(fp / max(fp[-1], 1), tp / max(tp[-1], 1), label=title)
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=0.8)
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title(f"ROC curve: {title}")
    ax.legend(loc="lower right")
    fig.tight_layout()
    return fig


def spark_log_path() -> Path:
    """Where a quiet demo sends the output of Spark's JVM (and of its Python workers)."""
    return Path(tempfile.gettempdir()) / f"sqltrack-demo-spark-{os.getuid()}.log"


@contextmanager
def _process_output_to(log: Path) -> Iterator[None]:
    """Point file descriptors 1 and 2 at ``log`` while the block runs. Spark's JVM, started
    inside, inherits them: its log4j lines, JDK warnings, stack traces and progress bars
    (and those of the Python workers it starts) go to the file for good, while this
    process gets its own terminal back when the block ends."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = (os.dup(1), os.dup(2))
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for f in (fd, *saved):
            os.close(f)


def _spark_session(quiet: bool = False) -> Any:
    from pyspark.sql import SparkSession

    builder = (
        SparkSession.builder.master("local[2]")
        .appName("sqltrack-demo")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.sql.session.timeZone", "UTC")
    )
    if not quiet:
        spark = builder.config("spark.ui.showConsoleProgress", "false").getOrCreate()
        spark.sparkContext.setLogLevel("ERROR")
        return spark
    builder = builder.config("spark.ui.showConsoleProgress", "false")
    with _process_output_to(spark_log_path()):
        spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")  # to the log file, where warnings help
    return spark


@contextmanager
def _quiet_python() -> Iterator[None]:
    """Only sqltrack's lines: Python warnings (pyspark's) and log records (py4j logs every
    call that Ctrl-C breaks, on the root logger) are dropped while the demo runs;
    sqltrack's own warnings still show (sqltrack does not log)."""
    from sqltrack.journal import JournalWarning

    disabled = logging.root.manager.disable
    logging.disable(logging.CRITICAL)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            warnings.simplefilter("default", JournalWarning)
            yield
    finally:
        logging.disable(disabled)


@contextmanager
def _interruptible() -> Iterator[None]:
    """Ctrl-C raises KeyboardInterrupt and nothing else. pyspark's own SIGINT handler
    calls Spark (cancelAllJobs) from inside the handler, which breaks the py4j call the
    main thread is in the middle of ("reentrant call") and can leave it waiting; the demo
    cancels its jobs afterwards, from ordinary code."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGINT, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _query(tracker: Tracker, result: DemoResult, name: str, param: str) -> QueryResult:
    sql = QUERIES[name].strip()
    columns, rows = tracker.sql(sql, (param,))
    found = QueryResult(name, sql, columns, rows)
    result.queries[name] = found
    return found


def _show(out: Callable[[str], None], q: QueryResult) -> None:
    def cell(v: Any) -> str:
        if v is None:
            return ""
        if isinstance(v, float):
            return f"{v:.4f}"
        return str(v)

    text = [[cell(v) for v in row] for row in q.rows]
    widths = [max([len(c), *(len(r[i]) for r in text)]) for i, c in enumerate(q.columns)]
    out("  " + "  ".join(c.ljust(w) for c, w in zip(q.columns, widths, strict=True)).rstrip())
    for row in text:
        out("  " + "  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())


def _identical(original: Any, reloaded: Any) -> tuple[int, int]:
    """(rows compared, rows whose prediction and probability are bit-identical)."""
    from pyspark.ml.functions import vector_to_array
    from pyspark.sql import functions as F

    def view(df: Any) -> Any:
        return df.select(
            "order_id", "prediction", vector_to_array(F.col("probability")).alias("probability")
        )

    a, b = view(original).alias("a"), view(reloaded).alias("b")
    joined = a.join(b, F.col("a.order_id") == F.col("b.order_id"), "full_outer")
    same = (F.col("a.prediction") == F.col("b.prediction")) & (
        F.col("a.probability") == F.col("b.probability")
    )
    row = joined.agg(
        F.count(F.lit(1)).alias("compared"),
        F.sum(F.when(same, 1).otherwise(0)).alias("same"),
    ).first()
    return int(row["compared"]), int(row["same"] or 0)


def run_demo(
    uri: str | None = None,
    *,
    spark: Any = None,
    rows: int = 100_000,
    out: Callable[[str], None] = print,
    quiet: bool = False,
) -> DemoResult:
    """Run the scenario against the store at ``uri`` (default: SQLTRACK_URI, else
    ``duckdb:///tracking.duckdb``) with a local Spark (or ``spark``); return its answers.

    ``quiet`` (what ``sqltrack demo`` does without ``--verbose``): the only output is
    ``out``'s lines; Spark's JVM writes to :func:`spark_log_path` and Python warnings
    of pyspark are dropped."""
    if not quiet:
        return _run_demo(uri, spark, rows, out, quiet)
    with _quiet_python():
        return _run_demo(uri, spark, rows, out, quiet)


def _run_demo(
    uri: str | None, spark: Any, rows: int, out: Callable[[str], None], quiet: bool
) -> DemoResult:
    import sqltrack
    from sqltrack import config, schema
    from sqltrack.backends import open_backend

    started = time.perf_counter()

    def say(text: str) -> None:
        out(f"[{time.perf_counter() - started:6.1f}s] {text}")

    backend = open_backend(config.store_uri(uri))
    try:
        applied = schema.upgrade(backend)  # the demo owns its store: bring it up to date
    finally:
        backend.close()
    tracker = sqltrack.connect(uri)
    invocation = uuid.uuid4().hex[:12]
    result = DemoResult(tracker.uri, invocation, EXPERIMENT)
    say(f"store {tracker.uri}" + (f" (applied {', '.join(applied)})" if applied else ""))
    own_spark = spark is None
    if own_spark:
        say("starting Spark (local[2])" + (f"; its log: {spark_log_path()}" if quiet else ""))
        spark = _spark_session(quiet)
    cached: list[Any] = []
    try:
        with _interruptible() if own_spark else _nothing():
            fitted = _scenario(tracker, spark, rows, result, say, cached)
            _answers(tracker, spark, result, fitted, say, out)
    except BaseException:
        # Ctrl-C (or an error): the runs in progress already ended (KILLED or FAILED) as
        # their blocks exited; release Spark without letting a broken py4j call (Ctrl-C
        # interrupts it) replace the original exception.
        try:
            _release(spark if own_spark else None, cached, interrupted=True)
        except Exception:
            pass
        try:
            tracker.close()
        except Exception:
            pass
        raise
    tracker.close()
    _release(spark if own_spark else None, cached)
    result.seconds = time.perf_counter() - started
    say(f"done in {result.seconds:.0f} s; demo invocation {invocation}")
    return result


@contextmanager
def _nothing() -> Iterator[None]:
    yield


def _release(spark: Any, cached: list[Any], interrupted: bool = False) -> None:
    if spark is not None and interrupted:
        spark.sparkContext.cancelAllJobs()
    for df in cached:
        df.unpersist()
    if spark is not None:
        spark.stop()


def _scenario(
    tracker: Tracker,
    spark: Any,
    rows: int,
    result: DemoResult,
    say: Callable[[str], None],
    cached: list[Any],
) -> dict[str, tuple[Any, Any]]:
    """Run both scientists' runs; return ``{run_id: (fitted PipelineModel, training rows)}``.
    DataFrames it caches for the rest of the demo are added to ``cached``."""
    from pyspark.ml import Pipeline
    from pyspark.sql import functions as F

    say(f"generating {rows:,} synthetic supply-chain orders")
    orders = generate_orders(spark, rows).cache()
    train = orders.where(F.col("order_id") % 5 != 0)
    test = orders.where(F.col("order_id") % 5 == 0).cache()
    cached += [orders, test]
    tracker.set_experiment(EXPERIMENT)
    # alice trains on order ids ending in 1, 2 or 3 (30% of all orders), bob on all 80%
    samples = {"alice": train.where(F.col("order_id") % 10 < 4), "bob": train}
    fitted: dict[str, tuple[Any, Any]] = {}
    for scientist, sample in samples.items():
        training = sample.cache()
        size = training.count()
        say(f"{scientist}: preprocessing {size:,} training orders "
            "(StringIndexer -> OneHotEncoder -> VectorAssembler)")  # fmt: skip
        stages = _preprocessing()
        prep = Pipeline(stages=stages).fit(training)
        train_features = prep.transform(training).cache()
        test_features = prep.transform(test).cache()
        train_features.count()
        for spec in _specs(scientist):
            run_id, model = _model_run(tracker, spec, scientist, size, training, stages, prep,
                                       train_features, test_features, result, say)  # fmt: skip
            fitted[run_id] = (model, sample)
        train_features.unpersist()
        test_features.unpersist()
        training.unpersist()
    return fitted


def _model_run(
    tracker: Tracker,
    spec: _Spec,
    scientist: str,
    size: int,
    training: Any,
    stages: list[Any],
    prep: Any,
    train_features: Any,
    test_features: Any,
    result: DemoResult,
    say: Callable[[str], None],
) -> tuple[str, Any]:
    """One model run: the unfitted ``stages`` + estimator are what the scientist wrote (and
    what the stage and feature records describe); ``prep`` is their fitted form."""
    from pyspark.ml import Pipeline, PipelineModel

    estimator = spec.build()
    tags = {"user": scientist, INVOCATION_TAG: result.invocation, "dataSize": size,
            "target": TARGET if spec.kind == "regression" else LABEL}  # fmt: skip
    with _as_user(scientist), tracker.start_run(run_name=spec.run_name, tags=tags) as run:
        result.run_ids.append(run.run_id)
        pipeline = Pipeline(stages=[*stages, estimator])
        tracker.log_pipeline_stages(pipeline)
        tracker.log_feature_transformations(pipeline)
        tracker.start_timer("training_time")
        fitted = estimator.fit(train_features)
        seconds = tracker.stop_and_log_timer("training_time")
        _log_training_curve(tracker, fitted, train_features)
        tracker.log_model_params(fitted)
        predictions = fitted.transform(test_features)
        label = TARGET if spec.kind == "regression" else LABEL
        metrics = tracker.log_evaluator_metrics(predictions, label_col=label, kind=spec.kind)
        tracker.log_dataset(training, "training")
        model = PipelineModel(stages=[*prep.stages, fitted])
        tracker.log_spark_model(model)
        if spec.kind == "binary":
            figure = _roc_figure(predictions, spec.run_name)
            if figure is not None:
                tracker.log_figure(figure, "roc_curve.png")
        shown = (
            f"r2={metrics['r2']:.3f} rmse={metrics['rmse']:.3f}"
            if spec.kind == "regression"
            else f"areaUnderROC={metrics['areaUnderROC']:.3f} F1={metrics['F1']:.3f}"
        )
        say(f"{scientist:5} {spec.run_name:24} {shown}  (fit {seconds:.1f} s)")
    return run.run_id, model


def _log_training_curve(tracker: Tracker, fitted: Any, train_features: Any) -> None:
    """A per-iteration training curve, where Spark keeps one: logistic regression's
    objective history (free: the fit recorded it), and gradient-boosted trees' loss on
    their training data after each tree (one Spark job)."""
    from pyspark.ml.classification import GBTClassificationModel, LogisticRegressionModel

    if isinstance(fitted, LogisticRegressionModel) and fitted.hasSummary:
        tracker.log_metric_history("training_objective", fitted.summary.objectiveHistory)
    elif isinstance(fitted, GBTClassificationModel):
        tracker.log_metric_history("training_loss", fitted.evaluateEachIteration(train_features))


def _answers(
    tracker: Tracker,
    spark: Any,
    result: DemoResult,
    fitted: dict[str, tuple[Any, Any]],
    say: Callable[[str], None],
    out: Callable[[str], None],
) -> None:
    say("what the store says, in plain SQL:")
    for name, title, param in (
        ("leaderboard", "this demo's runs", result.invocation),
        ("best_run", "the best run by areaUnderROC", result.invocation),
    ):
        out(f"\n-- {title}")
        _show(out, _query(tracker, result, name, param))
    best = result.queries["best_run"].rows[0]
    result.best_run_id, result.best_run_name, result.best_auc = best[0], best[1], float(best[3])
    out("\n-- the exact data that trained it")
    data = _query(tracker, result, "training_data", result.best_run_id)
    _show(out, data)
    result.training_table, result.training_rows = data.rows[0][2], int(data.rows[0][3])
    result.training_fingerprint = data.rows[0][4]
    out("\n-- its feature chains")
    chains = _query(tracker, result, "feature_chains", result.best_run_id)
    _show(out, chains)
    result.chains = [row[1] for row in chains.rows]
    out("")
    say(f"reloading the training set and the model of {result.best_run_name} from the store")
    reloaded_data = tracker.load_dataset(spark, result.best_run_id, "training")
    reloaded_model = tracker.load_spark_model(result.best_run_id)
    model, training = fitted[result.best_run_id]
    compared, same = _identical(model.transform(training), reloaded_model.transform(reloaded_data))
    result.predictions_compared, result.predictions_identical = compared, same
    say(f"{same:,} of {compared:,} predictions identical to the original model's")
