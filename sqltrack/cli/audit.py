"""Commands for auditors and reviewers: compare, lineage, audit, report."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING

from sqltrack.cli import command, emit

if TYPE_CHECKING:
    from sqltrack.tracking import Tracker


def _tracker(args: argparse.Namespace) -> Tracker:
    from sqltrack.tracking import connect

    return connect(args.uri, read_only=True)


@command(
    "compare",
    "Params and latest metrics of two or more runs side by side; '*' marks a difference.",
    "sqltrack compare 0123456789abcdef0123456789abcdef fedcba9876543210fedcba9876543210 "
    "--format csv",
)
def _compare(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_ids", nargs="+", metavar="RUN_ID", help="two or more run ids")
    p.add_argument(
        "--only-differences", action="store_true", help="show only params/metrics that differ"
    )


@_compare.runner
def _run_compare(args: argparse.Namespace) -> None:
    with _tracker(args) as tracker:
        result = tracker.compare_runs(args.run_ids)
    labels = result.labels()
    rows = [r for r in result.rows if r.differs or not args.only_differences]
    if args.format == "json":
        data = {
            "runs": [
                {"run_id": r.run_id, "run_name": r.info.run_name, "status": r.info.status}
                for r in result.runs
            ],
            "rows": [
                {
                    "kind": r.kind,
                    "key": r.key,
                    "values": {run.run_id: v for run, v in zip(result.runs, r.values, strict=True)},
                    "differs": r.differs,
                }
                for r in rows
            ],
        }
        sys.stdout.write(json.dumps(data, indent=2, allow_nan=True) + "\n")
        return
    header = ["kind", "key", *labels, "differs"]
    body = [
        (
            r.kind,
            r.key,
            *r.values,
            ("*" if r.differs else "") if args.format == "table" else r.differs,
        )
        for r in rows
    ]
    if args.format == "table":
        ids = ", ".join(
            f"{label} = {run.run_id}" for label, run in zip(labels, result.runs, strict=True)
        )
        print(f"runs: {ids}")
    emit(header, body, args.format)


@command(
    "lineage",
    "A run's lineage as a small tree: experiment, user, code commit, data and model.",
    "sqltrack lineage 0123456789abcdef0123456789abcdef",
)
def _lineage(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_id", metavar="RUN_ID")


@_lineage.runner
def _run_lineage(args: argparse.Namespace) -> None:
    with _tracker(args) as tracker:
        result = tracker.lineage(args.run_id)
    if args.format == "json":
        sys.stdout.write(json.dumps(result.as_dict(), indent=2, default=str) + "\n")
    elif args.format == "csv":
        rows: list[tuple[object, ...]] = [
            ("data", d.name, d.table_name, d.row_count, d.fingerprint) for d in result.datasets
        ]
        rows += [
            ("model", m.name, m.model_class, m.dataset_name, m.dataset_fingerprint)
            for m in result.models
        ]
        emit(["kind", "name", "table_or_class", "rows_or_dataset", "fingerprint"], rows, "csv")
    else:
        print("\n".join(result.tree()))


@command(
    "audit",
    "Answer an auditor's question with its documented query (docs/schema.md): "
    "who-trained-what, runs-by-fingerprint FP, metric-history RUN_ID KEY, "
    "failed-runs START END, run-diff RUN_A RUN_B.",
    "sqltrack audit failed-runs 2026-11-01 2026-12-01 --format csv",
)
def _audit(p: argparse.ArgumentParser) -> None:
    p.add_argument("question", help="the question's name (see above)")
    p.add_argument("params", nargs="*", help="its parameters, in order")
    p.add_argument("--show-sql", action="store_true", help="print the query instead of running it")


@_audit.runner
def _run_audit(args: argparse.Namespace) -> None:
    from sqltrack.audit import AUDIT_QUERIES, audit

    if args.show_sql and args.question in AUDIT_QUERIES:
        print(AUDIT_QUERIES[args.question].sql)
        return
    with _tracker(args) as tracker:
        columns, rows = audit(tracker, args.question, args.params)
    emit(columns, rows, args.format)


@command(
    "report",
    "Write a self-contained HTML report (runs table, charts, a page per run) to a folder.",
    "sqltrack report --experiment supply-chain-late-delivery --out sqltrack-report",
    formats=False,
)
def _report(p: argparse.ArgumentParser) -> None:
    p.add_argument("--experiment", default=None, help="one experiment (default: all with runs)")
    p.add_argument("--out", default="sqltrack-report", help="folder (default: sqltrack-report)")
    p.add_argument("--metric", default=None, help="primary metric for the charts")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")


@_report.runner
def _run_report(args: argparse.Namespace) -> None:
    def progress(what: str, done: int, total: int) -> None:
        if args.quiet:
            return
        end = "\n" if done == total else ""
        if sys.stderr.isatty() or done == total or done % 100 == 0:
            sys.stderr.write(f"\r{what}: {done}/{total}{end}")
            sys.stderr.flush()

    with _tracker(args) as tracker:
        if not args.quiet:
            sys.stderr.write(f"reading {tracker.uri}\n")
        index = tracker.write_report(
            args.out, args.experiment, metric=args.metric, progress=progress
        )
    print(f"report written: {index}")
