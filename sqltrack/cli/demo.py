"""``sqltrack demo``: the end-to-end supply-chain demo (what ``make demo`` runs)."""

from __future__ import annotations

import argparse

from sqltrack.cli import command


@command(
    "demo",
    "Run the end-to-end demo: two data scientists train Spark models on synthetic "
    "supply-chain orders, logging pipelines, feature chains, metrics, training data and "
    "models; then plain SQL finds the best run, its exact training data and feature chains, "
    "and the reloaded data and model reproduce its predictions. Re-runnable: runs accumulate.",
    "sqltrack demo --rows 20000",
    formats=False,
)
def _demo(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--rows",
        type=int,
        default=100_000,
        help="number of synthetic orders to generate (default: 100000)",
    )
    p.add_argument(
        "--verbose",
        action="store_true",
        help="also show Spark's own output (log4j, JVM warnings) and Python warnings; "
        "without it they go to the log file named on the 'starting Spark' line",
    )


@_demo.runner
def _run_demo(args: argparse.Namespace) -> int:
    from sqltrack.demo import run_demo

    try:
        run_demo(args.uri, rows=args.rows, quiet=not args.verbose)
    except KeyboardInterrupt:
        print("interrupted: a run in progress ended KILLED; Spark stopped", flush=True)
        return 130
    return 0
