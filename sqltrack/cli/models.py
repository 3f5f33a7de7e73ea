"""``sqltrack models``: the fitted Spark models stored in the database, and their export."""

from __future__ import annotations

import argparse
import sys

from sqltrack.cli import command, emit


@command(
    "models",
    "List stored Spark models (all, or one run's): class, Spark version, size, sha256 and "
    "the dataset each was trained on. 'models export MODEL_URI DIR --format mlflow' writes "
    "a registered version as an MLflow model directory (spark and python_function flavors, "
    "signature, requirements) and records it as a deployment.",
    "sqltrack models 0123456789abcdef0123456789abcdef --format json; "
    "sqltrack models export models:/churn@champion ./churn-model --format mlflow",
    formats=False,
)
def _models(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "words",
        nargs="*",
        metavar="RUN_ID | export MODEL_URI DIR",
        help="a run id (only its models), or: export MODEL_URI DIR",
    )
    p.add_argument(
        "--format",
        choices=("table", "csv", "json", "mlflow"),
        default=None,
        help="listing: table (default), csv or json; export: mlflow (the default)",
    )
    p.add_argument("--target", default=None, help="export: deployment target (default: DIR)")
    p.add_argument("--replace", action="store_true", help="export: replace a live target")
    p.add_argument("--reason", default=None, help="export: why, kept with the deployment")


@_models.runner
def _run_models(args: argparse.Namespace) -> int | None:
    from sqltrack.tracking import connect

    if args.words[:1] == ["export"]:
        if len(args.words) != 3:
            print("usage: sqltrack models export MODEL_URI DIR [--format mlflow]", file=sys.stderr)
            return 2
        with connect(args.uri) as tracker:
            d = tracker.export_model(
                args.words[1],
                args.words[2],
                args.format or "mlflow",
                target=args.target,
                replace=args.replace,
                reason=args.reason,
            )
        print(
            f"exported {d.model_name} version {d.version} to {d.config['path']} (target {d.target})"
        )
        return None
    if len(args.words) > 1 or args.format == "mlflow":
        print("usage: sqltrack models [RUN_ID] [--format table|csv|json]", file=sys.stderr)
        return 2
    from sqltrack import models
    from sqltrack.tracking import _run_id

    with connect(args.uri, read_only=True) as tracker:
        run_id = _run_id(args.words[0]) if args.words else None
        found = models.list_models(tracker, run_id)
    emit(
        [
            "model_id",
            "run_id",
            "name",
            "model_class",
            "spark_version",
            "size_bytes",
            "sha256",
            "dataset_id",
            "input_columns",
            "created_at",
        ],
        [
            (
                m.model_id,
                m.run_id,
                m.name,
                m.model_class,
                m.spark_version,
                m.size_bytes,
                m.sha256,
                m.dataset_id,
                ", ".join(m.input_columns),
                m.created_at,
            )
            for m in found
        ],
        args.format or "table",
    )
    return None
