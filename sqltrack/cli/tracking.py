"""Commands over the tracking store: experiments, runs (and end-stale), show, sql, sync,
db upgrade. Read commands open the store read-only: they never create it, never take a
DuckDB writer's lock, and work on a file the reader may only read."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from typing import Any

from sqltrack.cli import command, emit


def _tracker(args: argparse.Namespace, *, write: bool = False):  # type: ignore[no-untyped-def]
    from sqltrack.tracking import connect

    return connect(args.uri, read_only=not write)


@command("experiments", "List experiments.", "sqltrack experiments --format json")
def _experiments(p: argparse.ArgumentParser) -> None:
    pass


@_experiments.runner
def _run_experiments(args: argparse.Namespace) -> None:
    exps = _tracker(args).list_experiments()
    emit(
        ["experiment_id", "name", "created_at", "created_by", "tags"],
        [
            (
                e.experiment_id,
                e.name,
                e.created_at,
                e.created_by,
                json.dumps(dict(e.tags)) if e.tags else "",
            )
            for e in exps
        ],
        args.format,
    )


@command(
    "runs",
    "Search runs with MLflow's filter grammar; params, latest metrics and tags as columns.",
    "sqltrack runs --experiment supply-chain-late-delivery "
    "--filter \"params.Stage3 = 'RandomForestClassifier' and metrics.areaUnderROC > 0.5\" "
    '--order-by "metrics.areaUnderROC DESC" --columns run_name,metrics.areaUnderROC,'
    "params.RandomForestClassificationModel.numTrees",
)
def _runs(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "action",
        nargs="?",
        choices=("end-stale",),
        help="end-stale: end runs whose process is gone (state CRASHED) as FAILED at their "
        "last heartbeat; with --dry-run only list them",
    )
    p.add_argument("--dry-run", action="store_true", help="with end-stale: list, change nothing")
    p.add_argument("--experiment", action="append", help="experiment name (repeatable)")
    p.add_argument("--filter", default="", help='filter, e.g. "metrics.r2 > 0.5"')
    p.add_argument("--order-by", action="append", help='e.g. "metrics.r2 DESC" (repeatable)')
    p.add_argument("--max-results", type=int, default=1000)
    p.add_argument(
        "--columns",
        action="append",
        metavar="COLS",
        help="comma-separated columns, MLflow names: run_id, run_name, state, status, "
        "start_time, end_time, user, experiment_id (or attributes.<name>), metrics.<key>, "
        "params.<key>, tags.<key>; 'all' for every column (repeatable). Default for a "
        "table: run_id, run_name, state, the primary metric and the params that vary, as "
        "many as fit the terminal; csv and json give every column",
    )


# `sqltrack runs --columns`: MLflow's attribute names, and aliases, to search_runs columns
_ATTRIBUTE_COLUMNS = {
    "run_id": "run_id",
    "run_name": "run_name",
    "status": "status",
    "state": "state",
    "start_time": "start_time",
    "end_time": "end_time",
    "user": "user",
    "user_name": "user",
    "user_id": "user",
    "experiment_id": "experiment_id",
}
_PREFIXES = {"metrics": "metrics", "metric": "metrics", "params": "params", "param": "params",
             "tags": "tags", "tag": "tags"}  # fmt: skip
_DEFAULT_WIDTH = 120  # the default table's width when stdout is not a terminal
_MIN_WIDTH = 80


def _column(name: str) -> str:
    """A --columns name as a search_runs column (``attributes.user_name`` -> ``user``)."""
    text = name.strip()
    head, dot, rest = text.partition(".")
    if dot and head.lower() in ("attributes", "attribute", "attr", "run"):
        text, dot = rest, ""
    if not dot:
        found = _ATTRIBUTE_COLUMNS.get(text.lower())
        if found is None:
            from sqltrack.errors import InvalidInputError

            raise InvalidInputError(
                f"--columns: unknown column {name!r}; use one of "
                f"{', '.join(sorted(set(_ATTRIBUTE_COLUMNS)))}, metrics.<key>, params.<key>, "
                "tags.<key> or 'all'"
            )
        return found
    prefix = _PREFIXES.get(head.lower())
    if prefix is None or not rest:
        from sqltrack.errors import InvalidInputError

        raise InvalidInputError(
            f"--columns: unknown column {name!r}; write metrics.<key>, params.<key>, "
            "tags.<key> or an attribute such as run_name"
        )
    return f"{prefix}.{rest}"


def _default_columns(frame: Any, limit: int) -> list[str]:
    """run_id, run_name, state, the primary metric (the report's choice), then the params
    that vary across these runs (those most runs have first), while the table fits
    ``limit`` characters."""
    from sqltrack.report.ranking import rank_metrics

    def width(col: str) -> int:
        values = ["" if v is None else str(_shown(v)) for v in frame[col].tolist()]
        return min(max(len(t) for t in [col, *values]), 60)

    columns = ["run_id", "run_name", "state"]
    metrics = [c for c in frame.columns if c.startswith("metrics.")]
    logged = frame[metrics].notna()
    ranked = rank_metrics(
        {c[len("metrics.") :]: 1 for c in metrics if row[c]} for _, row in logged.iterrows()
    )
    if ranked:
        columns.append("metrics." + ranked[0])
    used = sum(width(c) for c in columns) + 2 * (len(columns) - 1)
    varying = [
        c for c in frame.columns if c.startswith("params.") and frame[c].dropna().nunique() > 1
    ]
    for col in sorted(varying, key=lambda c: (int(frame[c].isna().sum()), c)):
        w = width(col)
        if used + 2 + w <= limit:
            columns.append(col)
            used += 2 + w
    return columns


def _shown(value: Any) -> Any:
    """A value as the table shows it: times to the second, floats to 6 digits."""
    from datetime import datetime

    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, float) and value == value and abs(value) != float("inf"):
        return f"{value:.6g}"
    return value


@_runs.runner
def _run_runs(args: argparse.Namespace) -> None:
    if args.action == "end-stale":
        tracker = _tracker(args, write=not args.dry_run)
        stale = tracker.end_stale_runs(dry_run=args.dry_run)
        emit(
            ["run_id", "host_name", "process_id", "last_heartbeat", "action"],
            [
                (r.run_id, r.host_name, r.process_id, r.heartbeat_at,
                 "would end FAILED" if args.dry_run else "ended FAILED")
                for r in stale
            ],
            args.format,
        )  # fmt: skip
        return
    frame = _tracker(args).search_runs(
        args.experiment, args.filter, args.order_by, args.max_results
    )
    frame = frame.astype(object).where(frame.notna(), None)
    wanted = [c.strip() for spec in args.columns or () for c in spec.split(",") if c.strip()]
    if wanted and [w.lower() for w in wanted] != ["all"]:
        columns = [_column(c) for c in wanted]
    elif wanted or args.format != "table":
        columns = list(frame.columns)
    else:
        terminal = shutil.get_terminal_size((_DEFAULT_WIDTH, 24)).columns
        columns = _default_columns(frame, max(terminal, _MIN_WIDTH))
    for col in columns:
        if col not in frame.columns:
            frame[col] = None  # a key no run shown has: an empty column, as in SQL
    rows = list(frame[columns].itertuples(index=False))
    if args.format == "table":
        rows = [tuple(_shown(v) for v in row) for row in rows]
    emit(columns, rows, args.format)


@command(
    "show",
    "Show one run: info, params, latest metrics, tags, and the artifacts, datasets and "
    "models it stored.",
    "sqltrack show 0123456789abcdef0123456789abcdef",
)
def _show(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_id")


@_show.runner
def _run_show(args: argparse.Namespace) -> None:
    from sqltrack import models

    tracker = _tracker(args)
    run = tracker.get_run(args.run_id)
    rows: list[tuple[str, str, object]] = [("info", k, v) for k, v in vars(run.info).items()]
    rows += [("param", k, v) for k, v in sorted(run.params.items())]
    rows += [("metric", k, v) for k, v in sorted(run.metrics.items())]
    rows += [("tag", k, v) for k, v in sorted(run.tags.items())]
    rows += [
        ("artifact", a.name, f"{a.media_type}, {a.size_bytes:,} bytes, sha256 {a.sha256[:12]}")
        for a in tracker.list_artifacts(run.info.run_id)
    ]
    datasets = tracker.list_datasets(run.info.run_id)
    rows += [
        ("dataset", d.name, f"{d.table_name}, {d.row_count:,} rows, fingerprint {d.fingerprint}")
        for d in datasets
    ]
    names = {d.dataset_id: d.name for d in datasets}
    rows += [
        (
            "model",
            m.name,
            m.model_class
            + (
                f", trained on dataset {names.get(m.dataset_id, m.dataset_id)!s}"
                if m.dataset_id is not None
                else ""
            ),
        )  # fmt: skip
        for m in models.list_models(tracker, run.info.run_id)
    ]
    emit(["section", "key", "value"], rows, args.format)


@command(
    "sql",
    "Run one read-only SELECT against the store (parsed: any write, second statement or "
    "function reaching outside the store is refused; ? placeholders take --param values).",
    'sqltrack sql "SELECT key, value FROM sqltrack.latest_metrics WHERE run_id = ?" '
    "--param 0123456789abcdef0123456789abcdef --format csv",
)
def _sql(p: argparse.ArgumentParser) -> None:
    p.add_argument("query", help="one SELECT (WITH, UNION, subqueries); ? marks a value")
    p.add_argument(
        "--param", action="append", default=[], help="value for the next ? (repeatable, text)"
    )


@_sql.runner
def _run_sql(args: argparse.Namespace) -> None:
    columns, rows = _tracker(args).sql(args.query, list(args.param))
    emit(columns, rows, args.format)


@command(
    "sync",
    "Deliver the journals that dead or killed processes left behind to the store.",
    "sqltrack sync --uri postgresql://root@127.0.0.1/test",
    formats=False,
)
def _sync(p: argparse.ArgumentParser) -> None:
    pass


@_sync.runner
def _run_sync(args: argparse.Namespace) -> None:
    tracker = _tracker(args, write=True)
    try:
        written = tracker.sync()
    finally:
        tracker.close()
    print(f"{tracker.uri}: delivered {written} journaled record(s)")


@command(
    "db",
    "Schema management: 'db upgrade URI' applies pending migrations; 'db status URI' lists "
    "them; 'db grant --reader ROLE --writer ROLE URI' (PostgreSQL, as the store's owner) "
    "makes existing login roles readers (read everything, write nothing) or writers (log "
    "runs, never change an ended one).",
    "sqltrack db grant --reader auditor --writer trainer postgresql://root@127.0.0.1/test",
    formats=False,
)
def _db(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    actions = {
        "upgrade": ("apply pending migrations", "sqltrack db upgrade URI"),
        "status": ("list applied and pending migrations", "sqltrack db status URI"),
        "grant": (
            "make existing PostgreSQL login roles readers or writers of the store (run as "
            "its owner or a superuser; again after db upgrade)",
            "sqltrack db grant --reader auditor --writer trainer postgresql://root@host/db",
        ),
    }
    parsers = {}
    for name, (text, example) in actions.items():
        q = sub.add_parser(
            name,
            help=text,
            description=text,
            epilog="Example: " + example,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        q.add_argument("target", nargs="?", help="store URI (or use --uri)")
        q.add_argument("--uri", default=argparse.SUPPRESS, help="store URI")
        parsers[name] = q
    parsers["grant"].add_argument(
        "--reader",
        action="append",
        default=[],
        metavar="ROLE",
        help="ROLE may read every table, view and dataset table (also later ones) and "
        "write nothing (repeatable)",
    )
    parsers["grant"].add_argument(
        "--writer",
        action="append",
        default=[],
        metavar="ROLE",
        help="ROLE may log runs, params, metrics, tags, artifacts, datasets and models, but "
        "not change or delete what is stored (repeatable)",
    )


@_db.runner
def _run_db(args: argparse.Namespace) -> int | None:
    from sqltrack import config, roles, schema
    from sqltrack.backends import open_backend

    if args.action == "grant" and not (args.reader or args.writer):
        print("sqltrack: error: db grant needs --reader ROLE or --writer ROLE", file=sys.stderr)
        return 2
    backend = open_backend(config.store_uri(args.target or args.uri))
    try:
        if args.action == "upgrade":
            names = schema.upgrade(backend)
            print(
                f"{backend.uri}: applied {len(names)} migration(s)"
                + (": " + ", ".join(names) if names else "; already up to date")
            )
        elif args.action == "grant":
            wanted = [(r, roles.READER) for r in args.reader]
            wanted += [(r, roles.WRITER) for r in args.writer]
            for role, kind in wanted:
                done = roles.grant(backend, role, kind)
                print(
                    f"{backend.uri}: {done.role} is a {done.kind} ({done.catalog_objects} "
                    f"catalog tables and views, {done.dataset_tables} dataset tables; owner "
                    f"{done.owner})"
                )
                for table in done.not_shared:
                    print(
                        f"sqltrack: warning: could not share {table} with {done.role}: it "
                        "belongs to a role this login cannot act for; grant again as a "
                        "superuser",
                        file=sys.stderr,
                    )
        else:
            done_names = schema.applied(backend) or {}
            for m in schema.migrations(backend.capabilities.name):
                print(f"{'applied' if m.name in done_names else 'pending'}  {m.name}")
    finally:
        backend.close()
    return None
