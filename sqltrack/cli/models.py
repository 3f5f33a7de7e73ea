"""``sqltrack models``: the fitted Spark models stored in the database."""

from __future__ import annotations

import argparse

from sqltrack.cli import command, emit


@command(
    "models",
    "List stored Spark models (all, or one run's): class, Spark version, size, sha256 and "
    "the dataset each was trained on.",
    "sqltrack models 0123456789abcdef0123456789abcdef --format json",
)
def _models(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_id", nargs="?", help="only this run's models")


@_models.runner
def _run_models(args: argparse.Namespace) -> None:
    from sqltrack import models
    from sqltrack.tracking import _run_id, connect

    with connect(args.uri, read_only=True) as tracker:
        run_id = None if args.run_id is None else _run_id(args.run_id)
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
        args.format,
    )
