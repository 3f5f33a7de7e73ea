"""A demo-like store for the audit and report tests, built with plain tracker calls:
datasets, models and feature chains enter the catalog as rows (the columns documented in
docs/schema.md), so these tests need no Spark."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone

COMMIT_A = "a" * 40
COMMIT_B = "b" * 40


@dataclass
class Demo:
    uri: str
    runs: dict[str, str]  # run name -> run id
    datasets: dict[str, int]  # run name -> dataset id
    models: dict[str, int]


def add_dataset(tracker, run_id, fingerprint, rows, name="training"):
    schema = {
        "type": "struct",
        "fields": [
            {"name": "numTrees_feature", "type": "double", "nullable": True, "metadata": {}},
            {"name": "label", "type": "double", "nullable": False, "metadata": {}},
        ],
    }
    tracker.flush()  # raw SQL below: the journal must have delivered the run first
    with tracker.backend.transaction() as s:
        return int(
            s.query(
                "INSERT INTO sqltrack.datasets (run_id, name, table_name, row_count, size_bytes, "
                "spark_schema, fingerprint, created_by) VALUES (?, ?, ?, ?, ?, ?, ?, 'alice') "
                "RETURNING dataset_id",
                (
                    run_id,
                    name,
                    f"sqltrack_data.ds_{run_id}_{name}",
                    rows,
                    rows * 16,
                    json.dumps(schema),
                    fingerprint,
                ),
            )[0][0]
        )


def add_model(tracker, run_id, dataset_id, name="model"):
    tracker.flush()
    with tracker.backend.transaction() as s:
        model_id = int(
            s.query(
                "INSERT INTO sqltrack.models (run_id, name, model_class, spark_version, "
                "archive_format, size_bytes, sha256, chunk_count, dataset_id, input_columns, "
                "created_by) VALUES (?, ?, 'pyspark.ml.regression.RandomForestRegressionModel', "
                "'4.0.0', 'zip', 0, ?, 0, ?, '[\"features\"]', 'alice') RETURNING model_id",
                (run_id, name, "0" * 64, dataset_id),
            )[0][0]
        )
        s.execute(
            "INSERT INTO sqltrack.feature_transformations (run_id, source_column, branch, step, "
            "stage_class, stage_uid, input_column, output_column) VALUES "
            "(?, 'age', 0, 0, 'Imputer', 'imp_1', 'age', 'age_imputed'), "
            "(?, 'age', 0, 1, 'VectorAssembler', 'va_1', 'age_imputed', 'features')",
            (run_id, run_id),
        )
    return model_id


def build_demo(tracker, store_uri, monkeypatch) -> Demo:
    """Four rf runs by two users (one FAILED, one on other data and code), a run without
    data, and a loss history: what `sqltrack demo` makes, minus Spark."""
    tracker.create_experiment("demo")
    runs, datasets, models = {}, {}, {}
    plan = [
        ("rf-10", "alice", 10, 0.71, "fp-house-1", 1000, COMMIT_A, "FINISHED"),
        ("rf-50", "alice", 50, 0.86, "fp-house-1", 1000, COMMIT_A, "FINISHED"),
        ("rf-100", "bob", 100, 0.91, "fp-house-2", 1200, COMMIT_B, "FINISHED"),
        ("rf-broken", "bob", 200, None, "fp-house-2", 1200, COMMIT_B, "FAILED"),
    ]
    for name, user, trees, r2, fp, rows, _commit, status in plan:
        monkeypatch.setenv("SQLTRACK_USER", user)
        run = tracker.start_run(run_name=name)
        runs[name] = run.run_id
        tracker.log_params({"numTrees": trees, "maxDepth": 5, "impurity": "variance"})
        if r2 is not None:
            tracker.log_metrics({"r2": r2, "rmse": round(2 - 2 * r2, 4)})
            tracker.log_metric_history("loss", [1 / (k + 1) + trees / 1000 for k in range(5)])
        tracker.set_tag("team", "pricing")
        datasets[name] = add_dataset(tracker, run.run_id, fp, rows)
        if status == "FINISHED":
            models[name] = add_model(tracker, run.run_id, datasets[name])
        tracker.end_run(status)
    monkeypatch.setenv("SQLTRACK_USER", "carol")
    with tracker.start_run(run_name="notes") as run:
        tracker.log_metric("odd", float("nan"))
        tracker.log_metric("big", float("inf"))
    runs["notes"] = run.run_id
    tracker.flush()
    with tracker.backend.transaction() as s:  # fixed facts the audit answers are checked on
        for name, (_, _, _, _, _, _, commit, _) in zip(runs, plan, strict=False):
            s.execute(
                "UPDATE sqltrack.runs SET git_commit = ? WHERE run_id = ?", (commit, runs[name])
            )
        s.execute(
            "UPDATE sqltrack.runs SET start_time = ?, end_time = ? WHERE run_id = ?",
            (
                datetime(2026, 3, 15, 9, 0, tzinfo=timezone.utc),
                datetime(2026, 3, 15, 10, 0, tzinfo=timezone.utc),
                runs["rf-broken"],
            ),
        )
    return Demo(store_uri, runs, datasets, models)
